import ClusterPlan
import Transport

/// Identifies one all-reduce: partials of different layers or steps never mix.
public struct ReduceTag: Hashable, Sendable {
    public var step: UInt64
    public var layer: Int
    public var point: Int
}

/// The network as an all-reduce algorithm sees it: numbered ranks and tagged vectors. Encoding
/// in the sync dtype happens here, so algorithms are dtype-agnostic.
public protocol GroupChannel: AnyObject {
    var rank: Int { get }
    var size: Int { get }
    var codec: SyncCodec { get }
    /// Sends `values` to `rank` (queued, never blocks on the receiver).
    func send(_ values: UnsafeBufferPointer<Float>, to rank: Int, tag: ReduceTag, phase: Int, chunk: Int) throws
    /// Waits for the matching part from `rank` and writes (or adds) it into `into`.
    func receive(from rank: Int, tag: ReduceTag, phase: Int, chunk: Int, into: UnsafeMutableBufferPointer<Float>, accumulate: Bool) throws
}

/// Sums equal-length vectors across a TP group, leaving bit-identical results on every rank
/// (ranks must agree exactly: they route MoE tokens and sample from the same numbers).
public protocol AllReduce: AnyObject {
    var algorithm: AllReduceAlgorithm { get }
    func reduce(_ values: UnsafeMutableBufferPointer<Float>, tag: ReduceTag, over channel: any GroupChannel) throws
}

public enum AllReducePhase {
    static let reduce = 1
    static let gather = 2
}

public func makeAllReduce(_ algorithm: AllReduceAlgorithm) -> any AllReduce {
    switch algorithm {
    case .star: return StarAllReduce()
    case .ring: return RingAllReduce()
    case .mesh: return MeshAllReduce()
    }
}
