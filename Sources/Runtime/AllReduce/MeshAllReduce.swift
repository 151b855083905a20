import ClusterPlan
import Kernels

/// distributed-llama's mesh: every rank sends its partial to every other and adds all N in rank
/// order itself. One hop; N-1 sends per rank.
public final class MeshAllReduce: AllReduce {
    public let algorithm = AllReduceAlgorithm.mesh
    private var received: [[Float]] = []
    public init() {}

    public func reduce(_ values: UnsafeMutableBufferPointer<Float>, tag: ReduceTag, over c: any GroupChannel) throws {
        let n = c.size
        guard n > 1 else { return }
        for r in 0 ..< n where r != c.rank {
            try c.send(UnsafeBufferPointer(values), to: r, tag: tag, phase: AllReducePhase.reduce, chunk: 0)
        }
        c.codec.roundTrip(values)
        if received.count < n { received = Array(repeating: [], count: n) }
        for r in 0 ..< n where r != c.rank {
            if received[r].count != values.count { received[r] = [Float](repeating: 0, count: values.count) }
            try received[r].withUnsafeMutableBufferPointer {
                try c.receive(from: r, tag: tag, phase: AllReducePhase.reduce, chunk: 0, into: $0, accumulate: false)
            }
        }
        // Sum in rank order so that every rank computes the same floating-point result.
        let own = Array(values)
        for r in 0 ..< n {
            let source = r == c.rank ? own : received[r]
            if r == 0 {
                source.withUnsafeBufferPointer { values.baseAddress!.update(from: $0.baseAddress!, count: values.count) }
            } else {
                source.withUnsafeBufferPointer { ck_axpy(1, $0.baseAddress, values.baseAddress, Int32(values.count)) }
            }
        }
    }
}
