import Model

/// Megatron-style tensor parallelism for one pipeline stage: attention split by query heads
/// (whole KV-head groups while there are at least as many KV heads as ranks; otherwise KV heads
/// are shared and recomputed by each rank that needs them), FFN and every expert split by
/// columns on multiples of 32, lm_head split by vocabulary rows. Uneven weights give uneven slices.
public struct TensorParallelSplit: Sendable, Equatable {
    public var queryHeads: [Range<Int>]
    public var ffnColumns: [Range<Int>]
    public var expertColumns: [Range<Int>]
    public var sharedExpertColumns: [Range<Int>]
    public var vocabRows: [Range<Int>]

    public static let columnGranularity = 32

    public init(config c: ModelConfig, weights: [Double]) throws {
        let n = weights.count
        guard n >= 1 else { throw PlanError.invalid("tensor parallelism needs at least one rank") }
        guard weights.allSatisfy({ $0 > 0 && $0.isFinite }) else { throw PlanError.invalid("--split weights must be positive numbers, got \(weights)") }
        guard n <= c.headCount else {
            throw PlanError.invalid("TP = \(n) exceeds the model's \(c.headCount) query heads: a rank would have no attention work")
        }
        if n <= c.kvHeadCount {
            // Whole groups: no KV head is computed twice.
            let groups = proportionalBoundaries(total: c.kvHeadCount, weights: weights, minimumPerPart: 1)
            queryHeads = groups.map { $0.lowerBound * c.groupSize ..< $0.upperBound * c.groupSize }
        } else {
            queryHeads = proportionalBoundaries(total: c.headCount, weights: weights, minimumPerPart: 1)
        }
        let g = Self.columnGranularity
        ffnColumns = proportionalBoundaries(total: c.intermediateSize, weights: weights, granularity: g)
        expertColumns = proportionalBoundaries(total: c.moe?.expertIntermediateSize ?? 0, weights: weights, granularity: g)
        sharedExpertColumns = proportionalBoundaries(total: c.moe?.sharedExpertIntermediateSize ?? 0, weights: weights, granularity: g)
        vocabRows = proportionalBoundaries(total: c.vocabSize, weights: weights, granularity: g)
    }
}

public enum PlanError: Error, CustomStringConvertible, Equatable {
    case invalid(String)
    public var description: String {
        switch self {
        case .invalid(let s): return s
        }
    }
}
