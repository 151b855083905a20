import ClusterPlan

/// TPI-LLM's star: every rank sends its partial to the hub (rank 0, a worker), the hub adds them
/// in rank order and broadcasts the sum. Two hops whatever the group size; the hub's link
/// carries 2(N-1) vectors.
public final class StarAllReduce: AllReduce {
    public let algorithm = AllReduceAlgorithm.star
    public init() {}

    public func reduce(_ values: UnsafeMutableBufferPointer<Float>, tag: ReduceTag, over c: any GroupChannel) throws {
        guard c.size > 1 else { return }
        if c.rank == 0 {
            c.codec.roundTrip(values)  // the hub's own partial counts as the others' do: as sent
            for r in 1 ..< c.size {
                try c.receive(from: r, tag: tag, phase: AllReducePhase.reduce, chunk: 0, into: values, accumulate: true)
            }
            c.codec.roundTrip(values)
            for r in 1 ..< c.size {
                try c.send(UnsafeBufferPointer(values), to: r, tag: tag, phase: AllReducePhase.gather, chunk: 0)
            }
        } else {
            try c.send(UnsafeBufferPointer(values), to: 0, tag: tag, phase: AllReducePhase.reduce, chunk: 0)
            try c.receive(from: 0, tag: tag, phase: AllReducePhase.gather, chunk: 0, into: values, accumulate: false)
        }
    }
}
