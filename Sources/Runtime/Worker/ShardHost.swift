import ClusterPlan
import Foundation
import Kernels
import Model
import Transport
import WireProtocol

/// What a worker runs for its coordinator: one slice of the model, the KV caches of the
/// sequences it has seen, and its links to the rest of its TP group and the next stage.
final class ShardHost {
    let slice: ShardSlice
    let config: ModelConfig
    let transformer: Transformer
    let stage: Int
    let ppSize: Int
    let rank: Int
    let group: PeerGroup?
    let allReduce: any AllReduce
    /// Rank `rank` of the next stage (activations go rank to rank, never through the coordinator).
    let next: (any Link)?
    let nextAddress: String?
    private var caches: [UInt64: ContiguousKVCache] = [:]
    /// Steps are processed in increasing id order, so older partials in the mailbox are stale.
    private var lastStep: UInt64 = 0

    init(slice: ShardSlice, transformer: Transformer, stage: Int, ppSize: Int, rank: Int, group: PeerGroup?,
         allReduce: any AllReduce, next: (any Link)?, nextAddress: String?) {
        self.slice = slice
        config = transformer.config
        self.transformer = transformer
        self.stage = stage
        self.ppSize = ppSize
        self.rank = rank
        self.group = group
        self.allReduce = allReduce
        self.next = next
        self.nextAddress = nextAddress
    }

    var isLastStage: Bool { stage == ppSize - 1 }

    func release(_ ids: [UInt64]) { ids.forEach { caches[$0] = nil } }

    var cachedSequences: Int { caches.count }

    /// One row range of a step's batch.
    struct Span {
        var seq: UInt64
        var start: Int
        var count: Int
        var allLogits: Bool
    }

    /// Runs a step's rows through this slice. `input` is token ids (first stage) or hidden states
    /// from the previous stage. Returns what to send on: activations or logits, and the step's stats.
    func run(step: UInt64, request: UInt64, spans: [Span], tokens: [Int]?, hidden: Payload?, wantLogits: Bool,
             mailbox: Mailbox, statsBase: TrafficStats) throws -> (outgoing: Envelope?, result: Envelope) {
        let t0 = DispatchTime.now().uptimeNanoseconds
        mailbox.discard { _, e in
            if case .allReducePart(let p)? = e.body { return p.stepID <= lastStep }
            return false
        }
        lastStep = step
        var entries: [SequenceBatch.Entry] = []
        for s in spans {
            let cache: ContiguousKVCache
            if let c = caches[s.seq] {
                cache = c
            } else if s.start == 0 {
                cache = transformer.makeCache(capacity: max(256, s.count))
                caches[s.seq] = cache
            } else {
                throw RuntimeError.protocolViolation("sequence \(s.seq) starts at position \(s.start) but this worker has no cache for it")
            }
            guard cache.length == s.start else {
                throw RuntimeError.protocolViolation("sequence \(s.seq): step starts at position \(s.start) but the cache holds \(cache.length)")
            }
            entries.append(.init(cache: cache, tokens: s.count))
        }
        let rows = spans.reduce(0) { $0 + $1.count }
        let h = config.hiddenSize
        let x: FloatBuffer
        if let tokens {
            x = try transformer.embed(tokens)
        } else if let hidden {
            guard hidden.count == rows * h * 4 else {
                throw RuntimeError.protocolViolation("activation of \(hidden.count) bytes for \(rows) rows of \(h)")
            }
            x = FloatBuffer(count: rows * h, zeroed: false)
            hidden.withUnsafeBytes { UnsafeMutableRawBufferPointer(start: x.pointer, count: rows * h * 4).copyMemory(from: $0) }
        } else {
            throw RuntimeError.protocolViolation("step \(step) has neither tokens nor hidden states")
        }
        let reducer: any PartialSumReducer
        var network: NetworkReducer?
        if let group {
            group.commNanoseconds = 0
            let n = NetworkReducer(group: group, algorithm: allReduce, step: step)
            network = n
            reducer = n
        } else {
            reducer = LocalReducer()
        }
        try transformer.forwardLayers(x, batch: SequenceBatch(entries), reducer: reducer)

        var outgoing: Envelope?
        var result = Shoal_V1_StepResult()
        result.stepID = step
        result.requestID = request
        result.seqIds = spans.map(\.seq)
        var logitTensors: [WireTensor] = []
        var sendNanoseconds: UInt64 = 0
        if isLastStage {
            if wantLogits {
                var rowsWanted: [Int] = []
                var row = 0
                var counts: [Int] = []
                for s in spans {
                    let r = s.allLogits ? Array(row ..< row + s.count) : [row + s.count - 1]
                    rowsWanted += r
                    counts.append(r.count)
                    row += s.count
                }
                let logits = try transformer.logits(x, rows: rowsWanted)
                let width = slice.logitRows?.count ?? 0
                var offset = 0
                for (s, n) in zip(spans, counts) {
                    let bytes = UnsafeRawBufferPointer(start: logits.pointer + offset * width, count: n * width * 4)
                    logitTensors.append(WireTensor(name: "logits.\(s.seq)", dtype: .f32, shape: [n, width], payload: Payload(copying: bytes)))
                    offset += n
                }
            }
        } else {
            var a = Shoal_V1_Activation()
            a.stepID = step
            a.requestID = request
            a.fromStage = UInt32(stage)
            a.fromRank = UInt32(rank)
            a.wantLogits = wantLogits
            a.sequences = spans.map { s in
                var span = Shoal_V1_SequenceSpan()
                span.seqID = s.seq
                span.startPosition = UInt32(s.start)
                span.tokenCount = UInt32(s.count)
                span.allLogits = s.allLogits
                return span
            }
            let payload = Payload(copying: UnsafeRawBufferPointer(start: x.pointer, count: rows * h * 4))
            outgoing = Envelope(.activation(a), tensors: [WireTensor(name: "hidden", dtype: .f32, shape: [rows, h], payload: payload)])
            let s0 = DispatchTime.now().uptimeNanoseconds
            if let next, let outgoing {
                do { try next.send(outgoing) } catch {
                    throw RuntimeError.workerLost(address: nextAddress ?? "next stage", detail: "\(error)")
                }
            }
            sendNanoseconds = DispatchTime.now().uptimeNanoseconds - s0
        }
        let total = DispatchTime.now().uptimeNanoseconds - t0
        let comm = (group?.commNanoseconds ?? 0) + sendNanoseconds
        var stats = Shoal_V1_StepStats()
        stats.commNs = comm
        stats.computeNs = total > comm ? total - comm : 0
        stats.allReduceNs = network?.durations ?? []
        let now = trafficNow(mailbox: mailbox)
        stats.bytesSent = now.bytesSent - statsBase.bytesSent
        stats.bytesReceived = now.bytesReceived - statsBase.bytesReceived
        result.stats = stats
        return (outgoing, Envelope(.stepResult(result), tensors: logitTensors))
    }

    /// Bytes through this worker's sockets so far (its inbox and its links).
    func trafficNow(mailbox: Mailbox) -> TrafficStats {
        var s = mailbox.inbox.stats
        if let g = group {
            s.bytesSent += g.linkStats.bytesSent
        }
        if let next { s.bytesSent += next.stats.bytesSent }
        return s
    }
}
