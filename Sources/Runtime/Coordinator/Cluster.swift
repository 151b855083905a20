import ClusterPlan
import Foundation
import Logging
import Model
import Transport
import WireProtocol

public struct ClusterOptions: Sendable {
    /// Shared secret workers check before accepting this coordinator.
    public var token: String
    public var name: String
    /// Time for every worker to answer the handshake.
    public var connectTimeout: Duration
    /// Time for a worker to load its shard (including a first-time slice transfer).
    public var loadTimeout: Duration
    /// Longest silence from all workers while a step is in flight (heartbeats catch dead
    /// workers within seconds; this is the backstop for live-locked ones).
    public var stepTimeout: Duration
    /// Bytes per slice-transfer chunk.
    public var chunkBytes: Int
    /// How workers hold their weights (quantized at load, streamed through a window).
    public var weights: WeightPolicy
    /// KV capacity a worker's memory budget must leave room for (nil: the model's context).
    public var contextTokens: Int?

    public init(token: String = "", name: String = ProcessInfo.processInfo.hostName, connectTimeout: Duration = .seconds(10),
                loadTimeout: Duration = .seconds(600), stepTimeout: Duration = .seconds(120), chunkBytes: Int = 4 << 20,
                weights: WeightPolicy = WeightPolicy(), contextTokens: Int? = nil) {
        self.weights = weights
        self.contextTokens = contextTokens
        self.token = token
        self.name = name
        self.connectTimeout = connectTimeout
        self.loadTimeout = loadTimeout
        self.stepTimeout = stepTimeout
        self.chunkBytes = chunkBytes
    }
}

/// What one worker reported about one step.
public struct WorkerStepStats: Sendable {
    public var worker: Int
    public var computeNs: UInt64
    public var commNs: UInt64
    public var bytesSent: UInt64
    public var bytesReceived: UInt64
    public var allReduceNs: [UInt64]
}

/// One step as the coordinator saw it.
public struct StepRecord: Sendable {
    public var step: UInt64
    public var rows: Int
    public var sequences: Int
    public var wallNs: UInt64
    public var workers: [WorkerStepStats]
}

/// The coordinator's long-lived view of a cluster: links to every worker, their shards loaded,
/// and steps run across them. It is an `InferenceBackend`, so generation runs on it unchanged;
/// the CLI's `generate` is one request, and a server can keep one `Cluster` for many.
public final class Cluster: InferenceBackend {
    public private(set) var plan: ClusterPlan
    /// Link latency and bandwidth measured for `--allreduce auto` (nil otherwise).
    public private(set) var measuredLinks: AllReduceCostModel?
    public let config: ModelConfig
    public let options: ClusterOptions
    public private(set) var welcomes: [Shoal_V1_Welcome] = []
    /// Bytes streamed to workers that lacked their slice (0 when every worker had it).
    public private(set) var transferredBytes = 0
    private let checkpoint: Checkpoint
    private let links: [any Link]
    private let linkSet: any LinkSet
    private var logger: Logger
    private var nextSequence = 1
    private var nextStep: UInt64 = 0
    private var request: UInt64 = 1
    private var lastSent = ContinuousClock.now
    private var failed: Error?

    private struct PendingStep {
        var inputs: [StepInput]
        var results: [Int: Envelope] = [:]
        var submitted: UInt64
    }

    private var pending: [UInt64: PendingStep] = [:]
    /// Steps' statistics, oldest first (kept for `bench`; `clearRecords()` empties it).
    public private(set) var records: [StepRecord] = []

    public convenience init(spec: ClusterSpec, checkpoint: Checkpoint, transport: any TransportFactory, options: ClusterOptions, logger: Logger) throws {
        var o = options
        if o.token.isEmpty { o.token = spec.token }
        try self.init(plan: try spec.plan(for: checkpoint.config), autoAllReduce: spec.allReduce == .auto, checkpoint: checkpoint,
                      transport: transport, options: o, logger: logger)
    }

    public init(plan: ClusterPlan, autoAllReduce: Bool = false, checkpoint: Checkpoint, transport: any TransportFactory,
                options: ClusterOptions, logger: Logger) throws {
        self.plan = plan
        self.checkpoint = checkpoint
        config = checkpoint.config
        self.options = options
        self.logger = logger
        let identity = "coordinator-\(options.name)-\(getpid())-\(UInt32.random(in: 0 ... .max))"
        links = try plan.workers.map { try transport.connect($0, identity: identity) }
        linkSet = try transport.linkSet(links)
        do {
            try connect()
            if autoAllReduce { try chooseAllReduce() }
            try loadShards()
        } catch {
            shutdown()
            throw error
        }
    }

    deinit { shutdown() }

    // MARK: - Setup

    private func connect() throws {
        let deadline = ContinuousClock.now + options.connectTimeout
        for (i, link) in links.enumerated() {
            while true {
                do {
                    welcomes.append(try handshake(link, token: options.token, name: options.name, deadline: deadline))
                    break
                } catch TransportError.refused(_, let code, let reason) {
                    // A worker whose previous coordinator just left may not have seen its goodbye yet.
                    if code == .busy, ContinuousClock.now + .milliseconds(200) < deadline {
                        Thread.sleep(forTimeInterval: 0.2)
                        continue
                    }
                    throw RuntimeError.refused(address: plan.workers[i], reason: reason)
                } catch {
                    throw RuntimeError.workerLost(address: plan.workers[i], detail: "\(error)")
                }
            }
        }
        lastSent = .now
    }

    /// `--allreduce auto`: latency from small round trips, bandwidth from large ones, then the
    /// cost model's pick for one token's hidden vector.
    private func chooseAllReduce() throws {
        func medianRoundTrip(_ i: Int, bytes: Int) throws -> Double {
            var samples: [Double] = []
            let payload = Payload(count: bytes) { $0.initializeMemory(as: UInt8.self, repeating: 1) }
            for n in 0 ..< 12 {
                var ping = Shoal_V1_Ping()
                ping.nonce = UInt64(n)
                let t0 = DispatchTime.now().uptimeNanoseconds
                try send(.ping(ping), to: i, tensors: [WireTensor(name: "probe", bytes: payload)])
                while true {
                    guard let reply = try links[i].receive(deadline: .now + options.connectTimeout) else {
                        throw RuntimeError.timedOut(address: plan.workers[i], waitingFor: "pong")
                    }
                    if case .pong(let p)? = reply.body, p.nonce == UInt64(n) { break }
                }
                if n >= 2 { samples.append(Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9) }
            }
            return samples.sorted()[samples.count / 2]
        }
        var latency = 0.0, bandwidth = Double.infinity
        for i in plan.stage(0).indices {
            let small = try medianRoundTrip(i, bytes: 64)
            let large = try medianRoundTrip(i, bytes: 1 << 20)
            latency = max(latency, small / 2)
            bandwidth = min(bandwidth, Double(1 << 20) / max((large - small) / 2, 1e-9))
        }
        let model = AllReduceCostModel(latency: latency, bandwidth: bandwidth)
        measuredLinks = model
        plan.allReduce = model.best(nodes: plan.tp, bytes: config.hiddenSize * 4)
        logger.info("allreduce auto: link latency \(String(format: "%.1f", latency * 1e6)) us, bandwidth \(String(format: "%.0f", bandwidth / 1e6)) MB/s -> \(plan.allReduce.rawValue)")
    }

    private func loadShards() throws {
        let identity = try ModelIdentity.of(directory: checkpoint.directory)
        let configJSON = try Data(contentsOf: checkpoint.directory.appendingPathComponent("config.json"))
        let generationJSON = try? Data(contentsOf: checkpoint.directory.appendingPathComponent("generation_config.json"))
        for (i, node) in plan.nodes.enumerated() {
            var load = Shoal_V1_LoadShard()
            load.modelPath = checkpoint.directory.standardizedFileURL.path
            load.modelIdentity = identity
            load.configJson = configJSON
            if let generationJSON { load.generationConfigJson = generationJSON }
            load.shard = node.slice.spec(rank: node.rank, tpSize: plan.tp, stage: node.stage, ppSize: plan.pp, config: config)
            load.peerInboxes = plan.stage(node.stage).map(\.address)
            load.nextStageInboxes = node.stage + 1 < plan.pp ? plan.stage(node.stage + 1).map(\.address) : []
            load.syncDtype = SyncCodec(plan.syncDType).wireDType
            load.allReduce = plan.allReduce.wire
            load.weights = options.weights.wire(context: options.contextTokens)
            try send(.loadShard(load), to: i)
        }
        var ready = Set<Int>()
        let deadline = ContinuousClock.now + options.loadTimeout
        while ready.count < links.count {
            guard let (i, envelope) = try receive(until: deadline, waitingFor: "shard status") else {
                let missing = (0 ..< links.count).filter { !ready.contains($0) }.map { plan.workers[$0] }
                throw RuntimeError.timedOut(address: missing.joined(separator: ", "), waitingFor: "shard status")
            }
            guard case .shardStatus(let status)? = envelope.body else {
                throw RuntimeError.protocolViolation("\(plan.workers[i]) sent \(envelope.body?.kind ?? "nothing") while loading")
            }
            switch status.state {
            case .ready(let r)?:
                logger.info("\(plan.workers[i]) ready: stage \(plan.nodes[i].stage) rank \(plan.nodes[i].rank), \(r.residentBytes / 1_000_000) MB of weights")
                ready.insert(i)
            case .needTensors?:
                try streamSlice(to: i)
            case .error(let message)?:
                throw RuntimeError.workerFailed(address: plan.workers[i], message: message)
            case nil:
                throw RuntimeError.protocolViolation("\(plan.workers[i]) sent an empty shard status")
            }
        }
    }

    /// Sends worker `i` exactly the parts of the model its slice reads, once; it caches them.
    private func streamSlice(to i: Int) throws {
        let node = plan.nodes[i]
        let extract = try SliceExtract(checkpoint: checkpoint, slice: node.slice)
        var manifest = Shoal_V1_SliceManifest()
        manifest.tensors = try extract.requirements.map { r in
            var d = Shoal_V1_TensorDesc()
            d.name = r.storageName
            d.dtype = try extract.wireDType(of: r)
            d.shape = r.slicedShape.map { UInt64($0) }
            d.byteLength = UInt64(try extract.byteCount(of: r))
            return d
        }
        logger.info("streaming \(extract.totalBytes / 1_000_000) MB slice to \(plan.workers[i]) (it will cache it)")
        try send(.sliceManifest(manifest), to: i)
        var chunks = 0
        for r in extract.requirements {
            var offset = 0
            try extract.forEachPiece(of: r, maxBytes: options.chunkBytes) { piece in
                var c = Shoal_V1_TensorChunk()
                c.name = r.storageName
                c.offset = UInt64(offset)
                c.totalBytes = UInt64(try extract.byteCount(of: r))
                chunks += 1
                // Every 16th chunk asks for an acknowledgement: at most 16 chunks wait in queues.
                c.ack = chunks % 16 == 0
                try send(.tensorChunk(c), to: i, tensors: [WireTensor(name: r.storageName, bytes: Payload(copying: piece))])
                offset += piece.count
                transferredBytes += piece.count
                if c.ack { try waitForAck(from: i) }
            }
        }
        try send(.sliceComplete(Shoal_V1_SliceComplete()), to: i)
    }

    private func waitForAck(from i: Int) throws {
        let deadline = ContinuousClock.now + options.loadTimeout
        while true {
            do {
                guard let envelope = try links[i].receive(deadline: deadline) else {
                    throw RuntimeError.timedOut(address: plan.workers[i], waitingFor: "transfer acknowledgement")
                }
                switch envelope.body {
                case .transferAck?: return
                case .shardStatus(let s)?:
                    if case .error(let m)? = s.state { throw RuntimeError.workerFailed(address: plan.workers[i], message: m) }
                    throw RuntimeError.protocolViolation("\(plan.workers[i]) sent a shard status mid-transfer")
                default:
                    throw RuntimeError.protocolViolation("\(plan.workers[i]) sent \(envelope.body?.kind ?? "nothing") mid-transfer")
                }
            } catch let e as TransportError {
                throw RuntimeError.workerLost(address: plan.workers[i], detail: "\(e)")
            }
        }
    }

    // MARK: - Messaging

    private func send(_ body: Shoal_V1_Header.OneOf_Body, to i: Int, tensors: [WireTensor] = []) throws {
        do {
            try links[i].send(Envelope(body, tensors: tensors))
        } catch {
            throw RuntimeError.workerLost(address: plan.workers[i], detail: "\(error)")
        }
        lastSent = .now
    }

    /// The next message from any worker; pings everyone when the links have been quiet, so
    /// workers know their coordinator is alive through long steps.
    private func receive(until deadline: ContinuousClock.Instant, waitingFor what: String) throws -> (Int, Envelope)? {
        while true {
            if ContinuousClock.now - lastSent > .seconds(2) {
                for i in links.indices { try? links[i].send(Envelope(.ping(Shoal_V1_Ping()))) }
                lastSent = .now
            }
            let slice = min(deadline, ContinuousClock.now + .seconds(1))
            let got: (index: Int, envelope: Envelope)?
            do {
                got = try linkSet.receiveAny(deadline: slice)
            } catch let e as TransportError {
                throw RuntimeError.workerLost(address: lostAddress(e), detail: "\(e)")
            } catch let e as WireError {
                throw RuntimeError.protocolViolation("\(e)")
            }
            if let got {
                if case .pong? = got.envelope.body { continue }
                if case .refused(let r)? = got.envelope.body {
                    throw RuntimeError.refused(address: plan.workers[got.index], reason: r.reason)
                }
                return (got.index, got.envelope)
            }
            if ContinuousClock.now >= deadline { return nil }
        }
    }

    private func lostAddress(_ e: TransportError) -> String {
        switch e {
        case .peerLost(let peer, _), .neverConnected(let peer, _), .sendTimedOut(let peer, _): return peer
        default: return plan.workers.joined(separator: ",")
        }
    }

    // MARK: - InferenceBackend

    public func openSequence(capacity: Int) throws -> Int {
        guard capacity <= config.maxPositions else { throw ModelError.promptTooLong(prompt: capacity, generate: 0, limit: config.maxPositions) }
        defer { nextSequence += 1 }
        return nextSequence
    }

    public func closeSequence(_ id: Int) {
        guard failed == nil else { return }
        var r = Shoal_V1_ReleaseSequences()
        r.seqIds = [UInt64(id)]
        for i in links.indices { try? send(.releaseSequences(r), to: i) }
    }

    /// Starts a new request id (steps of an aborted request are dropped by every worker).
    public func beginRequest() { request += 1 }

    public func submit(_ inputs: [StepInput]) throws -> Int {
        if let failed { throw failed }
        nextStep += 1
        var step = Shoal_V1_Step()
        step.requestID = request
        step.stepID = nextStep
        step.wantLogits = true
        step.sequences = inputs.map { input in
            var s = Shoal_V1_SequenceStep()
            s.seqID = UInt64(input.sequence)
            s.startPosition = UInt32(positions[input.sequence, default: 0])
            s.tokenIds = input.tokens.map { Int32($0) }
            s.allLogits = input.allLogits
            return s
        }
        for input in inputs { positions[input.sequence, default: 0] += input.tokens.count }
        pending[nextStep] = PendingStep(inputs: inputs, submitted: DispatchTime.now().uptimeNanoseconds)
        do {
            for node in plan.stage(0) { try send(.step(step), to: plan.nodes.firstIndex(of: node)!) }
        } catch {
            fail(error)
            throw error
        }
        return Int(nextStep)
    }

    private var positions: [Int: Int] = [:]

    public func collect(_ ticket: Int) throws -> [[Float]] {
        if let failed { throw failed }
        let id = UInt64(ticket)
        guard pending[id] != nil else { throw RuntimeError.protocolViolation("unknown step \(ticket)") }
        do {
            while pending[id]!.results.count < links.count {
                guard let (i, envelope) = try receive(until: .now + options.stepTimeout, waitingFor: "step result") else {
                    let missing = (0 ..< links.count).filter { pending[id]!.results[$0] == nil }.map { plan.workers[$0] }
                    throw RuntimeError.timedOut(address: missing.joined(separator: ", "), waitingFor: "result of step \(id)")
                }
                switch envelope.body {
                case .stepResult(let r)?:
                    guard pending[r.stepID] != nil else {
                        throw RuntimeError.protocolViolation("\(plan.workers[i]) sent a result for unknown step \(r.stepID)")
                    }
                    pending[r.stepID]!.results[i] = envelope
                case .errorReport(let e)?:
                    throw RuntimeError.workerFailed(address: plan.workers[i], message: e.message)
                default:
                    throw RuntimeError.protocolViolation("\(plan.workers[i]) sent \(envelope.body?.kind ?? "nothing") during a step")
                }
            }
        } catch {
            fail(error)
            throw error
        }
        let step = pending.removeValue(forKey: id)!
        return try assemble(step, id: id)
    }

    /// Logits of each input: rows of the last stage's vocabulary slices, side by side in rank order.
    private func assemble(_ step: PendingStep, id: UInt64) throws -> [[Float]] {
        let wall = DispatchTime.now().uptimeNanoseconds - step.submitted
        var workers: [WorkerStepStats] = []
        for (i, env) in step.results.sorted(by: { $0.key < $1.key }) {
            guard case .stepResult(let r)? = env.body else { continue }
            workers.append(WorkerStepStats(worker: i, computeNs: r.stats.computeNs, commNs: r.stats.commNs, bytesSent: r.stats.bytesSent,
                                           bytesReceived: r.stats.bytesReceived, allReduceNs: r.stats.allReduceNs))
        }
        records.append(StepRecord(step: id, rows: step.inputs.reduce(0) { $0 + $1.tokens.count }, sequences: step.inputs.count,
                                  wallNs: wall, workers: workers))
        let vocab = config.vocabSize
        var out: [[Float]] = []
        for (k, input) in step.inputs.enumerated() {
            let rows = input.allLogits ? input.tokens.count : 1
            var logits = [Float](repeating: 0, count: rows * vocab)
            var covered = 0
            for node in plan.lastStage {
                let index = plan.nodes.firstIndex(of: node)!
                guard let env = step.results[index], k < env.payloads.count, let range = node.slice.logitRows else {
                    throw RuntimeError.protocolViolation("\(node.address) returned no logits for sequence \(input.sequence)")
                }
                let payload = env.payloads[k]
                guard payload.count == rows * range.count * 4 else {
                    throw RuntimeError.protocolViolation("\(node.address) returned \(payload.count) bytes of logits, expected \(rows * range.count * 4)")
                }
                payload.withUnsafeBytes { raw in
                    logits.withUnsafeMutableBufferPointer { dst in
                        for r in 0 ..< rows {
                            let src = UnsafeRawBufferPointer(rebasing: raw[(r * range.count * 4) ..< ((r + 1) * range.count * 4)])
                            UnsafeMutableRawBufferPointer(start: dst.baseAddress! + r * vocab + range.lowerBound, count: range.count * 4)
                                .copyMemory(from: src)
                        }
                    }
                }
                covered += range.count
            }
            guard covered == vocab else { throw RuntimeError.protocolViolation("logit slices cover \(covered) of \(vocab) tokens") }
            out.append(logits)
        }
        return out
    }

    /// After a failure: tell the surviving workers to drop the request, and refuse further steps.
    private func fail(_ error: Error) {
        guard failed == nil else { return }
        failed = error
        var abort = Shoal_V1_Abort()
        abort.requestID = request
        abort.reason = "\(error)"
        for link in links where link.state == .connected { try? link.send(Envelope(.abort(abort))) }
    }

    public func clearRecords() { records = [] }

    /// Says goodbye so workers are free for the next coordinator at once.
    public func shutdown() {
        for link in links {
            try? link.send(Envelope(.goodbye(Shoal_V1_Goodbye())))
            link.close()
        }
    }

    // MARK: - Benchmarks

    /// Each worker of stage 0 runs `iterations` all-reduces of `elements` floats; returns the
    /// per-iteration latencies (ns) of every rank, as each measured them on its own clock.
    public func benchmarkAllReduce(algorithm: AllReduceAlgorithm, elements: Int, iterations: Int, warmup: Int) throws -> [[UInt64]] {
        nextStep += UInt64(iterations + warmup + 1)
        var b = Shoal_V1_AllReduceBench()
        b.algorithm = algorithm.wire
        b.elements = UInt32(elements)
        b.iterations = UInt32(iterations)
        b.warmup = UInt32(warmup)
        b.stepBase = nextStep
        b.requestID = request
        nextStep += UInt64(iterations + warmup + 1)
        let members = Array(plan.stage(0).indices)
        for i in members { try send(.allReduceBench(b), to: i) }
        return try gatherBenchResults(members)
    }

    /// Raw ZeroMQ round trips between stage 0's rank 0 and `rank` (ns): the floor under an all-reduce.
    public func benchmarkRoundTrip(rank: Int, bytes: Int, iterations: Int, warmup: Int) throws -> [UInt64] {
        var p = Shoal_V1_PeerRoundTrip()
        p.rank = UInt32(rank)
        p.bytes = UInt32(bytes)
        p.iterations = UInt32(iterations)
        p.warmup = UInt32(warmup)
        try send(.peerRoundTrip(p), to: 0)
        return try gatherBenchResults([0])[0]
    }

    private func gatherBenchResults(_ members: [Int]) throws -> [[UInt64]] {
        var results: [Int: [UInt64]] = [:]
        while results.count < members.count {
            guard let (i, envelope) = try receive(until: .now + options.stepTimeout, waitingFor: "benchmark result") else {
                throw RuntimeError.timedOut(address: plan.workers.joined(separator: ","), waitingFor: "benchmark result")
            }
            switch envelope.body {
            case .benchResult(let r)?: results[i] = r.latenciesNs
            case .errorReport(let e)?: throw RuntimeError.workerFailed(address: plan.workers[i], message: e.message)
            default: throw RuntimeError.protocolViolation("\(plan.workers[i]) sent \(envelope.body?.kind ?? "nothing") during a benchmark")
            }
        }
        return members.map { results[$0]! }
    }
}
