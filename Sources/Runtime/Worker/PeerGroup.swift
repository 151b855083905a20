import Foundation
import Kernels
import Model
import Transport
import WireProtocol

/// The links of one TP rank to the other ranks of its stage, as a `GroupChannel`: parts go out
/// through links to the peers' inboxes and come back in through this worker's mailbox.
final class PeerGroup: GroupChannel {
    let rank: Int
    let size: Int
    let codec: SyncCodec
    let addresses: [String]
    private let links: [Int: any Link]
    private let mailbox: Mailbox
    private let partTimeout: Duration
    private let isAborted: (PeerID, Envelope) -> Error?
    private var scratch: [Float] = []
    /// Time spent sending and waiting, for the step's compute/communication split.
    var commNanoseconds: UInt64 = 0
    /// Weights read right after this all-reduce: while a peer's part has not arrived, they are
    /// pulled toward the cache piece by piece, so the wait overlaps the next layer's memory traffic.
    var prefetch: [UnsafeRawBufferPointer] = []
    /// Bytes of `prefetch` worth reading per all-reduce (what the last-level cache keeps).
    let prefetchBudget: Int

    init(rank: Int, addresses: [String], codec: SyncCodec, links: [Int: any Link], mailbox: Mailbox,
         partTimeout: Duration, prefetchBudget: Int = 4 << 20, isAborted: @escaping (PeerID, Envelope) -> Error?) {
        self.rank = rank
        self.prefetchBudget = prefetchBudget
        size = addresses.count
        self.addresses = addresses
        self.codec = codec
        self.links = links
        self.mailbox = mailbox
        self.partTimeout = partTimeout
        self.isAborted = isAborted
    }

    var linkStats: TrafficStats {
        links.values.reduce(into: TrafficStats()) { acc, l in
            acc.bytesSent += l.stats.bytesSent
            acc.messagesSent += l.stats.messagesSent
        }
    }

    func send(_ values: UnsafeBufferPointer<Float>, to peer: Int, tag: ReduceTag, phase: Int, chunk: Int) throws {
        guard let link = links[peer] else { throw RuntimeError.protocolViolation("rank \(rank) has no link to rank \(peer)") }
        var part = Shoal_V1_AllReducePart()
        part.stepID = tag.step
        part.layer = UInt32(tag.layer)
        part.point = Shoal_V1_SyncPoint(rawValue: tag.point) ?? .unspecified
        part.phase = Shoal_V1_AllReducePhase(rawValue: phase) ?? .unspecified
        part.chunk = UInt32(chunk)
        part.fromRank = UInt32(rank)
        let tensor = WireTensor(name: "partial", dtype: codec.wireDType, shape: [values.count], payload: codec.encode(values))
        do {
            try link.send(Envelope(.allReducePart(part), tensors: [tensor]))
        } catch {
            throw RuntimeError.workerLost(address: addresses[peer], detail: "\(error)")
        }
    }

    func receive(from peer: Int, tag: ReduceTag, phase: Int, chunk: Int, into: UnsafeMutableBufferPointer<Float>, accumulate: Bool) throws {
        let deadline = ContinuousClock.now + partTimeout
        let matches: (PeerID, Envelope) -> Bool = { _, e in
            guard case .allReducePart(let p)? = e.body else { return false }
            return p.stepID == tag.step && p.layer == tag.layer && p.point.rawValue == tag.point
                && p.phase.rawValue == phase && p.chunk == chunk && p.fromRank == peer
        }
        var got = try mailbox.wait(deadline: .now, interrupt: isAborted, match: matches)
        // Not here yet: touch upcoming weights a piece at a time, looking again between pieces.
        while got == nil, let piece = nextPrefetchPiece() {
            _ = ck_touch(piece.baseAddress, piece.count)
            got = try mailbox.wait(deadline: .now, interrupt: isAborted, match: matches)
        }
        if got == nil { got = try mailbox.wait(deadline: deadline, interrupt: isAborted, match: matches) }
        guard let (_, envelope) = got else {
            throw RuntimeError.timedOut(address: addresses[peer], waitingFor: "all-reduce part (step \(tag.step), layer \(tag.layer))")
        }
        guard envelope.payloads.count == 1 else {
            throw RuntimeError.protocolViolation("all-reduce part from \(addresses[peer]) carries \(envelope.payloads.count) frames")
        }
        try codec.decode(envelope.payloads[0], into: into, accumulate: accumulate, scratch: &scratch)
    }
}

/// `PartialSumReducer` over the network: each of a layer's two sums runs the plan's all-reduce,
/// timing every one for the step's statistics.
final class NetworkReducer: PartialSumReducer {
    let group: PeerGroup
    let algorithm: any AllReduce
    let step: UInt64
    var durations: [UInt64] = []

    init(group: PeerGroup, algorithm: any AllReduce, step: UInt64) {
        self.group = group
        self.algorithm = algorithm
        self.step = step
    }

    func allReduce(_ values: UnsafeMutableBufferPointer<Float>, layer: Int, phase: ReducePhase,
                   upcoming: () -> [UnsafeRawBufferPointer]) throws {
        let t0 = DispatchTime.now().uptimeNanoseconds
        if group.prefetchBudget > 0 { group.prefetch(upcoming()) }
        defer { group.prefetch = [] }
        let point = phase == .attention ? Shoal_V1_SyncPoint.attention.rawValue : Shoal_V1_SyncPoint.ffn.rawValue
        try algorithm.reduce(values, tag: ReduceTag(step: step, layer: layer, point: point), over: group)
        let dt = DispatchTime.now().uptimeNanoseconds - t0
        durations.append(dt)
        group.commNanoseconds += dt
    }
}

extension PeerGroup {
    /// Sets what to prefetch during this all-reduce's waits, cut to the budget.
    func prefetch(_ regions: [UnsafeRawBufferPointer]) {
        var left = prefetchBudget
        prefetch = []
        for r in regions where left > 0 {
            let n = min(left, r.count)
            prefetch.append(UnsafeRawBufferPointer(rebasing: r[0 ..< n]))
            left -= n
        }
    }

    /// The next 256 KB of the prefetch list (about 10 us of DRAM traffic), or nil when done.
    fileprivate func nextPrefetchPiece() -> UnsafeRawBufferPointer? {
        guard let first = prefetch.first else { return nil }
        let n = min(256 << 10, first.count)
        let piece = UnsafeRawBufferPointer(rebasing: first[0 ..< n])
        if n == first.count { prefetch.removeFirst() } else { prefetch[0] = UnsafeRawBufferPointer(rebasing: first[n...]) }
        return piece
    }

    /// Round trips of `bytes` to `rank` and back over the same sockets partials use (the peer's
    /// mailbox echoes pings), in nanoseconds.
    func pingPong(rank peer: Int, bytes: Int, iterations: Int, warmup: Int) throws -> [UInt64] {
        guard let link = links[peer] else { throw RuntimeError.protocolViolation("rank \(rank) has no link to rank \(peer)") }
        let payload = Payload(count: bytes) { $0.initializeMemory(as: UInt8.self, repeating: 7) }
        var latencies: [UInt64] = []
        for i in 0 ..< warmup + iterations {
            var ping = Shoal_V1_Ping()
            ping.nonce = UInt64(i)
            let t0 = DispatchTime.now().uptimeNanoseconds
            try link.send(Envelope(.ping(ping), tensors: [WireTensor(name: "probe", bytes: payload)]))
            guard let reply = try link.receive(deadline: .now + partTimeout) else {
                throw RuntimeError.timedOut(address: addresses[peer], waitingFor: "pong")
            }
            guard case .pong(let pong)? = reply.body, pong.nonce == UInt64(i) else {
                throw RuntimeError.protocolViolation("\(addresses[peer]) answered a ping with \(reply.body?.kind ?? "nothing")")
            }
            if i >= warmup { latencies.append(DispatchTime.now().uptimeNanoseconds - t0) }
        }
        return latencies
    }
}
