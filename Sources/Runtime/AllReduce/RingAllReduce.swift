import ClusterPlan

/// Ring all-reduce: the vector is cut into N chunks; N-1 reduce-scatter steps leave each rank
/// with one fully summed chunk, N-1 all-gather steps pass the sums around. Bandwidth-optimal
/// (2(N-1)/N vectors per link) but 2(N-1) hops of latency.
public final class RingAllReduce: AllReduce {
    public let algorithm = AllReduceAlgorithm.ring
    public init() {}

    public func reduce(_ values: UnsafeMutableBufferPointer<Float>, tag: ReduceTag, over c: any GroupChannel) throws {
        let n = c.size
        guard n > 1 else { return }
        let chunks = ringChunks(count: values.count, ranks: n, granularity: c.codec.granularity)
        let next = (c.rank + 1) % n, previous = (c.rank + n - 1) % n
        func part(_ i: Int) -> UnsafeMutableBufferPointer<Float> {
            let r = chunks[((i % n) + n) % n]
            return UnsafeMutableBufferPointer(rebasing: values[r])
        }
        // Reduce-scatter: at step k send chunk (rank - k), add the received chunk (rank - k - 1).
        for k in 0 ..< n - 1 {
            let out = c.rank - k, incoming = c.rank - k - 1
            try c.send(UnsafeBufferPointer(part(out)), to: next, tag: tag, phase: AllReducePhase.reduce, chunk: ((out % n) + n) % n)
            try c.receive(from: previous, tag: tag, phase: AllReducePhase.reduce, chunk: ((incoming % n) + n) % n,
                          into: part(incoming), accumulate: true)
        }
        // This rank now owns the sum of chunk (rank + 1); make its copy what the others will receive.
        c.codec.roundTrip(part(c.rank + 1))
        // All-gather: at step k send chunk (rank + 1 - k), receive chunk (rank - k) as is.
        for k in 0 ..< n - 1 {
            let out = c.rank + 1 - k, incoming = c.rank - k
            try c.send(UnsafeBufferPointer(part(out)), to: next, tag: tag, phase: AllReducePhase.gather, chunk: ((out % n) + n) % n)
            try c.receive(from: previous, tag: tag, phase: AllReducePhase.gather, chunk: ((incoming % n) + n) % n,
                          into: part(incoming), accumulate: false)
        }
    }
}

/// N contiguous chunks covering `count`, boundaries on multiples of `granularity`.
func ringChunks(count: Int, ranks: Int, granularity: Int) -> [Range<Int>] {
    proportionalBoundaries(total: count, weights: Array(repeating: 1, count: ranks), granularity: granularity)
}
