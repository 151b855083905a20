import ClusterPlan
import Foundation
import Kernels
import Logging
import Model
import Transport
import WireProtocol

public struct WorkerOptions: Sendable {
    public var listen: String
    public var threads: Int
    /// Where this host keeps models; a LoadShard's path is also looked up under it by name.
    public var modelDirectory: String?
    public var cacheDirectory: String
    public var token: String
    /// A session whose coordinator has been silent this long is over. Heartbeats end a session
    /// at once when the coordinator's connection drops; this is the backstop.
    public var sessionTimeout: Duration
    /// Longest wait for a peer's all-reduce part or activation within a step.
    public var peerTimeout: Duration
    /// Bytes of the next weights to pull toward the cache while waiting on an all-reduce (0: off).
    public var syncPrefetchBytes: Int = 4 << 20

    public init(listen: String, threads: Int, modelDirectory: String?, cacheDirectory: String, token: String,
                sessionTimeout: Duration = .seconds(600), peerTimeout: Duration = .seconds(20)) {
        self.listen = listen
        self.threads = threads
        self.modelDirectory = modelDirectory
        self.cacheDirectory = cacheDirectory
        self.token = token
        self.sessionTimeout = sessionTimeout
        self.peerTimeout = peerTimeout
    }
}

/// `shoal-worker`: serves one coordinator at a time until stopped. It learns its slice from
/// the coordinator, loads only that slice (from the model path, its cache, or a one-time
/// transfer from the coordinator), and runs steps, exchanging partial sums with its TP peers
/// and activations with the next pipeline stage. Whatever goes wrong in a step is reported
/// to the coordinator and the worker keeps serving.
public final class WorkerService {
    public let options: WorkerOptions
    let transport: any TransportFactory
    let mailbox: Mailbox
    let pool: ThreadPool
    var logger: Logger
    public var address: String { mailbox.inbox.address }

    private final class Session {
        let coordinator: PeerID
        var lastHeard = ContinuousClock.now
        var shard: ShardHost?
        var receiver: SliceReceiver?
        var pendingLoad: Shoal_V1_LoadShard?
        var aborted: Set<UInt64> = []
        init(coordinator: PeerID) { self.coordinator = coordinator }
    }

    private var session: Session?
    private var currentRequest: UInt64 = 0

    public init(options: WorkerOptions, transport: any TransportFactory, logger: Logger) throws {
        self.options = options
        self.transport = transport
        self.logger = logger
        mailbox = Mailbox(inbox: try transport.bind(options.listen))
        pool = ThreadPool(threads: options.threads)
        mailbox.onReceive = { [unowned self] from in
            if let s = self.session, s.coordinator == from { s.lastHeard = .now }
        }
    }

    /// Serves until `shouldStop` says so (checked at least every half second).
    public func run(shouldStop: () -> Bool) {
        logger.info("shoal-worker listening on \(address) (\(options.threads) threads, \(CPUFeatures.activeISA))")
        while !shouldStop() {
            expireSessionIfSilent()
            do {
                guard let (from, envelope) = try mailbox.wait(deadline: .now + .milliseconds(500), match: { _, e in
                    // Partials and chunks wait for the step/transfer that asks for them.
                    if case .allReducePart? = e.body { return false }
                    return true
                }) else { continue }
                handle(envelope, from: from)
            } catch let error as WireError {
                logger.warning("refused malformed message: \(error)")
                var refusal = Shoal_V1_Refused()
                refusal.code = {
                    if case .versionMismatch = error { return .versionMismatch }
                    return .badRequest
                }()
                refusal.reason = "\(error)"
                try? mailbox.inbox.send(Envelope(.refused(refusal)), to: PeerID(error.peer))
            } catch TransportError.peerLost(let peer, let reason) {
                // Heartbeats tell us at once when the coordinator is gone (crashed, stopped, cut off).
                if let s = session, peer == s.coordinator.name {
                    endSession(s, reason: "coordinator \(peer) lost (\(reason)); session closed")
                } else {
                    logger.warning("peer \(peer) lost: \(reason)")
                }
            } catch {
                logger.warning("\(error)")
            }
        }
        if let s = session { endSession(s, reason: "worker stopping") }
        logger.info("shoal-worker stopped")
    }

    private func expireSessionIfSilent() {
        guard let s = session, ContinuousClock.now - s.lastHeard > options.sessionTimeout else { return }
        endSession(s, reason: "coordinator \(s.coordinator) silent for \(options.sessionTimeout); session closed")
    }

    private func endSession(_ s: Session, reason: String) {
        logger.info("\(reason)")
        s.receiver?.cancel()
        mailbox.watching = []
        mailbox.discard { _, _ in true }
        session = nil
    }

    private func reply(_ body: Shoal_V1_Header.OneOf_Body, to peer: PeerID, tensors: [WireTensor] = []) {
        do { try mailbox.inbox.send(Envelope(body, tensors: tensors), to: peer) } catch {
            logger.warning("cannot answer \(peer): \(error)")
        }
    }

    private func refuse(_ peer: PeerID, _ code: Shoal_V1_Refused.Code, _ reason: String) {
        logger.warning("refused \(peer): \(reason)")
        var r = Shoal_V1_Refused()
        r.code = code
        r.reason = reason
        reply(.refused(r), to: peer)
    }

    private func handle(_ envelope: Envelope, from: PeerID) {
        guard let body = envelope.body else {
            refuse(from, .badRequest, "message without a body")
            return
        }
        if case .hello = body {
            hello(envelope, from: from)
            return
        }
        // Everything but a Hello belongs to the session: from its coordinator, or (activations)
        // from a peer worker while a shard is loaded.
        guard let s = session else {
            if case .goodbye = body { return }
            refuse(from, .badRequest, "no session: send hello first (got \(body.kind))")
            return
        }
        if case .activation = body, s.shard != nil {
            runStep(envelope, from: from, session: s)
            return
        }
        guard from == s.coordinator else {
            refuse(from, .busy, "this worker serves coordinator \(s.coordinator); \(body.kind) from \(from) ignored")
            return
        }
        switch body {
        case .loadShard(let load):
            loadShard(load, session: s)
        case .sliceManifest, .tensorChunk, .sliceComplete:
            receiveSlice(envelope, session: s)
        case .step:
            runStep(envelope, from: from, session: s)
        case .releaseSequences(let r):
            s.shard?.release(r.seqIds)
        case .abort(let a):
            s.aborted.insert(a.requestID)
            logger.info("request \(a.requestID) aborted by the coordinator: \(a.reason)")
            mailbox.discard { _, e in
                switch e.body {
                case .activation(let x)?: return x.requestID == a.requestID
                case .step(let x)?: return x.requestID == a.requestID
                default: return false
                }
            }
        case .allReduceBench(let b):
            runAllReduceBench(b, session: s)
        case .peerRoundTrip(let p):
            runPeerRoundTrip(p, session: s)
        case .goodbye:
            endSession(s, reason: "coordinator \(s.coordinator) said goodbye")
        case .pong:
            break
        default:
            refuse(from, .badRequest, "unexpected \(body.kind) from the coordinator")
        }
    }

    private func hello(_ envelope: Envelope, from: PeerID) {
        if let refusal = checkHello(envelope.header, expectedToken: options.token) {
            logger.warning("refused \(from): \(refusal.reason)")
            reply(.refused(refusal), to: from)
            return
        }
        if let s = session, s.coordinator != from {
            refuse(from, .busy, "busy: serving coordinator \(s.coordinator) (idle for \(ContinuousClock.now - s.lastHeard))")
            return
        }
        if let s = session { endSession(s, reason: "coordinator \(from) started over") }
        let s = Session(coordinator: from)
        session = s
        mailbox.watching = [from]
        var w = Shoal_V1_Welcome()
        w.workerName = address
        w.hostname = ProcessInfo.processInfo.hostName
        w.threads = UInt32(options.threads)
        w.memoryBytes = ProcessInfo.processInfo.physicalMemory
        w.isa = CPUFeatures.activeISA
        if case .hello(let h)? = envelope.body { logger.info("session with coordinator \(h.coordinatorName) (\(from))") }
        reply(.welcome(w), to: from)
    }

    // MARK: - Loading

    private func status(_ state: Shoal_V1_ShardStatus.OneOf_State, to s: Session) {
        var st = Shoal_V1_ShardStatus()
        st.state = state
        reply(.shardStatus(st), to: s.coordinator)
    }

    /// Model directories to try for a LoadShard path: with --model-dir, the model of that name
    /// under it (or the directory itself); without, the coordinator's path (a shared or local disk).
    private func candidateDirectories(_ path: String) -> [URL] {
        guard let root = options.modelDirectory else { return path.isEmpty ? [] : [URL(fileURLWithPath: path)] }
        let r = URL(fileURLWithPath: root)
        return path.isEmpty ? [r] : [r.appendingPathComponent(URL(fileURLWithPath: path).lastPathComponent), r]
    }

    private func loadShard(_ load: Shoal_V1_LoadShard, session s: Session) {
        s.shard = nil
        do {
            let slice = try ShardSlice(spec: load.shard)
            // 1. The model path on this host, if it holds the same checkpoint.
            for dir in candidateDirectories(load.modelPath) where FileManager.default.fileExists(atPath: dir.appendingPathComponent("config.json").path) {
                if let identity = try? ModelIdentity.of(directory: dir), identity == load.modelIdentity {
                    try install(load, slice: slice, checkpoint: try Checkpoint(directory: dir), preSliced: false, session: s, source: dir.path)
                    return
                }
                logger.info("\(dir.path) holds another checkpoint than the coordinator's; not using it")
            }
            // 2. A slice cached by an earlier transfer.
            let cache = SliceCache(root: URL(fileURLWithPath: options.cacheDirectory))
            if let dir = cache.lookup(identity: load.modelIdentity, slice: slice) {
                try install(load, slice: slice, checkpoint: try Checkpoint(directory: dir), preSliced: true, session: s, source: dir.path)
                return
            }
            // 3. Ask the coordinator to send the slice once.
            s.pendingLoad = load
            var need = Shoal_V1_ShardStatus.NeedTensors()
            need.names = []  // the whole slice: the coordinator knows its parts
            logger.info("model \(load.modelIdentity.prefix(12)) not on this host; asking the coordinator for the slice")
            status(.needTensors(need), to: s)
        } catch {
            logger.error("load failed: \(error)")
            status(.error("\(error)"), to: s)
        }
    }

    private func receiveSlice(_ envelope: Envelope, session s: Session) {
        do {
            guard let load = s.pendingLoad else { throw RuntimeError.protocolViolation("slice data without a pending LoadShard") }
            let slice = try ShardSlice(spec: load.shard)
            switch envelope.body {
            case .sliceManifest(let m):
                let dir = SliceCache(root: URL(fileURLWithPath: options.cacheDirectory)).directory(identity: load.modelIdentity, slice: slice)
                s.receiver = try SliceReceiver(directory: dir, manifest: m.tensors, configJSON: load.configJson,
                                               generationJSON: load.generationConfigJson.isEmpty ? nil : load.generationConfigJson)
                logger.info("receiving slice: \(m.tensors.count) tensors, \(s.receiver!.total) bytes")
            case .tensorChunk(let c):
                guard let r = s.receiver, envelope.payloads.count == 1 else { throw RuntimeError.protocolViolation("tensor chunk without a manifest") }
                try r.append(name: c.name, offset: Int(c.offset), payload: envelope.payloads[0])
                if c.ack {
                    var ack = Shoal_V1_TransferAck()
                    ack.bytes = UInt64(r.received)
                    reply(.transferAck(ack), to: s.coordinator)
                }
            case .sliceComplete:
                guard let r = s.receiver else { throw RuntimeError.protocolViolation("slice complete without a manifest") }
                try r.finish(slice: slice)
                s.receiver = nil
                s.pendingLoad = nil
                logger.info("slice cached at \(r.directory.path)")
                try install(load, slice: slice, checkpoint: try Checkpoint(directory: r.directory), preSliced: true, session: s, source: r.directory.path)
            default:
                break
            }
        } catch {
            logger.error("slice transfer failed: \(error)")
            s.receiver?.cancel()
            s.receiver = nil
            status(.error("\(error)"), to: s)
        }
    }

    private func install(_ load: Shoal_V1_LoadShard, slice: ShardSlice, checkpoint: Checkpoint, preSliced: Bool, session s: Session, source: String) throws {
        let policy = try WeightPolicy(wire: load.weights)
        let context = load.weights.contextTokens > 0 ? Int(load.weights.contextTokens) : checkpoint.config.maxPositions
        let weights = try policy.makeProvider(checkpoint: checkpoint, slice: slice, preSliced: preSliced, context: context)
        let transformer = Transformer(weights: weights, pool: pool)
        let spec = load.shard
        let rank = Int(spec.rank), stage = Int(spec.ppStage)
        // Identities name stage, rank, inbox and session, so a peer's connection from an earlier
        // session closing is never mistaken for the current one failing.
        let sessionTag = s.coordinator.name.suffix(24)
        let identity = { (st: Int, r: Int, addr: String) in "s\(st)r\(r)@\(addr)/\(sessionTag)" }
        var group: PeerGroup?
        let tp = load.peerInboxes.count
        if tp > 1 {
            var links: [Int: any Link] = [:]
            for (r, addr) in load.peerInboxes.enumerated() where r != rank {
                links[r] = try transport.connect(addr, identity: identity(stage, rank, address))
            }
            group = PeerGroup(rank: rank, addresses: load.peerInboxes, codec: SyncCodec(try SyncDType(wire: load.syncDtype)),
                              links: links, mailbox: mailbox, partTimeout: options.peerTimeout, prefetchBudget: options.syncPrefetchBytes,
                              isAborted: { [unowned self] _, e in self.abortError(e) })
            // A peer's link identity names its stage, rank and inbox; watch them all.
            var watch: Set<PeerID> = [s.coordinator]
            for (r, addr) in load.peerInboxes.enumerated() where r != rank { watch.insert(PeerID(identity(stage, r, addr))) }
            mailbox.watching = watch
        }
        var next: (any Link)?
        var nextAddress: String?
        if !load.nextStageInboxes.isEmpty {
            guard rank < load.nextStageInboxes.count else {
                throw RuntimeError.protocolViolation("next stage has \(load.nextStageInboxes.count) ranks; rank \(rank) has no partner")
            }
            nextAddress = load.nextStageInboxes[rank]
            next = try transport.connect(nextAddress!, identity: identity(stage, rank, address) + ">next")
        }
        let algorithm = makeAllReduce(try AllReduceAlgorithm(wire: load.allReduce))
        s.shard = ShardHost(slice: slice, transformer: transformer, stage: stage, ppSize: Int(spec.ppSize), rank: rank,
                            group: group, allReduce: algorithm, next: next, nextAddress: nextAddress)
        var ready = Shoal_V1_ShardStatus.Ready()
        ready.residentBytes = UInt64(weights.residentBytes)
        logger.info("loaded stage \(stage) rank \(rank) from \(source): layers \(slice.layers), heads \(slice.queryHeads), ffn \(slice.ffnColumns)")
        if let streaming = weights as? StreamingWeights { logger.info("\(streaming.summary)") }
        status(.ready(ready), to: s)
    }

    // MARK: - Steps

    private func abortError(_ e: Envelope) -> Error? {
        if case .abort(let a)? = e.body, a.requestID == currentRequest {
            return RuntimeError.aborted("request \(a.requestID) aborted by the coordinator: \(a.reason)")
        }
        return nil
    }

    private func runStep(_ envelope: Envelope, from: PeerID, session s: Session) {
        guard let shard = s.shard else {
            refuse(from, .badRequest, "step before a shard was loaded")
            return
        }
        let base = shard.trafficNow(mailbox: mailbox)
        var stepID: UInt64 = 0
        do {
            let spans: [ShardHost.Span]
            var tokens: [Int]?
            var hidden: Payload?
            let request: UInt64
            let wantLogits: Bool
            switch envelope.body {
            case .step(let st):
                guard shard.stage == 0 else { throw RuntimeError.protocolViolation("token step sent to stage \(shard.stage)") }
                stepID = st.stepID
                request = st.requestID
                wantLogits = st.wantLogits
                spans = st.sequences.map { .init(seq: $0.seqID, start: Int($0.startPosition), count: $0.tokenIds.count, allLogits: $0.allLogits) }
                tokens = st.sequences.flatMap { $0.tokenIds.map(Int.init) }
            case .activation(let a):
                stepID = a.stepID
                request = a.requestID
                wantLogits = a.wantLogits
                spans = a.sequences.map { .init(seq: $0.seqID, start: Int($0.startPosition), count: Int($0.tokenCount), allLogits: $0.allLogits) }
                guard envelope.payloads.count == 1 else { throw RuntimeError.protocolViolation("activation without its hidden-state frame") }
                hidden = envelope.payloads[0]
            default:
                return
            }
            if s.aborted.contains(request) { return }
            currentRequest = request
            let out = try shard.run(step: stepID, request: request, spans: spans, tokens: tokens, hidden: hidden,
                                    wantLogits: wantLogits, mailbox: mailbox, statsBase: base)
            try mailbox.inbox.send(out.result, to: s.coordinator)
        } catch {
            if case RuntimeError.aborted = error { return }
            logger.error("step \(stepID) failed: \(error)")
            var report = Shoal_V1_ErrorReport()
            report.message = "\(error)"
            report.stepID = stepID
            reply(.errorReport(report), to: s.coordinator)
        }
    }

    // MARK: - Benchmarks

    /// Times all-reduces of a vector among this stage's ranks (every rank runs the same loop).
    private func runAllReduceBench(_ b: Shoal_V1_AllReduceBench, session s: Session) {
        replyBenchResult(to: s) {
            guard let shard = s.shard, let group = shard.group else { throw RuntimeError.protocolViolation("all-reduce benchmark needs a TP group") }
            let algorithm = makeAllReduce(try AllReduceAlgorithm(wire: b.algorithm))
            var values = [Float](repeating: Float(shard.rank + 1), count: Int(b.elements))
            var latencies: [UInt64] = []
            currentRequest = b.requestID
            for i in 0 ..< Int(b.warmup + b.iterations) {
                for j in values.indices { values[j] = Float(shard.rank + 1) }
                let t0 = DispatchTime.now().uptimeNanoseconds
                try values.withUnsafeMutableBufferPointer {
                    try algorithm.reduce($0, tag: ReduceTag(step: b.stepBase + UInt64(i), layer: 0, point: 0), over: group)
                }
                let dt = DispatchTime.now().uptimeNanoseconds - t0
                if i >= Int(b.warmup) { latencies.append(dt) }
            }
            // Every rank must hold the same exact sum 1 + 2 + ... + N.
            let n = Float(group.size)
            let expected = n * (n + 1) / 2
            guard values.allSatisfy({ abs($0 - expected) <= expected * 1e-2 }) else {
                throw RuntimeError.protocolViolation("all-reduce benchmark produced \(values.first ?? 0), expected \(expected)")
            }
            return latencies
        }
    }

    /// Raw ZeroMQ ping-pong to another rank of the group: the floor under any all-reduce.
    private func runPeerRoundTrip(_ p: Shoal_V1_PeerRoundTrip, session s: Session) {
        replyBenchResult(to: s) {
            guard let shard = s.shard, let group = shard.group else { throw RuntimeError.protocolViolation("round-trip probe needs a TP group") }
            return try group.pingPong(rank: Int(p.rank), bytes: Int(p.bytes), iterations: Int(p.iterations), warmup: Int(p.warmup))
        }
    }

    /// Sends a benchmark's latencies to the coordinator, or what went wrong.
    private func replyBenchResult(to s: Session, _ measure: () throws -> [UInt64]) {
        do {
            var r = Shoal_V1_BenchResult()
            r.latenciesNs = try measure()
            reply(.benchResult(r), to: s.coordinator)
        } catch {
            var report = Shoal_V1_ErrorReport()
            report.message = "\(error)"
            reply(.errorReport(report), to: s.coordinator)
        }
    }
}
