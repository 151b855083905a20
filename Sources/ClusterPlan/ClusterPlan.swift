import Model

/// How partial sums travel: f32 by default; f16/bf16 halve the bytes, q8_0 (blocks of 32 with an
/// f16 scale, as GGML's) cuts them to ~27%, each at a measured accuracy cost.
public enum SyncDType: String, CaseIterable, Codable, Sendable {
    case f32, f16, bf16, q8_0
}

/// One worker's part of the plan.
public struct NodePlan: Sendable, Equatable {
    public var address: String
    public var stage: Int
    /// Rank inside the stage's TP group.
    public var rank: Int
    public var slice: ShardSlice
}

/// Who holds what: workers listed stage-major (stage s is workers[s*tp ..< (s+1)*tp]), a TP
/// split inside every stage and contiguous layer ranges across stages.
public struct ClusterPlan: Sendable, Equatable {
    public var workers: [String]
    public var tp: Int
    public var pp: Int
    public var splitWeights: [Double]
    public var layerRanges: [Range<Int>]
    public var allReduce: AllReduceAlgorithm
    public var syncDType: SyncDType
    public var nodes: [NodePlan]

    public init(config c: ModelConfig, workers: [String], tp: Int, pp: Int, split: [Double]? = nil,
                layers: [Range<Int>]? = nil, allReduce: AllReduceAlgorithm = .star, syncDType: SyncDType = .f32) throws {
        guard tp >= 1, pp >= 1 else { throw PlanError.invalid("--tp and --pp must be at least 1 (got tp \(tp), pp \(pp))") }
        guard workers.count == tp * pp else {
            throw PlanError.invalid("--tp \(tp) x --pp \(pp) needs \(tp * pp) workers, but \(workers.count) were given (\(workers.joined(separator: ",")))")
        }
        guard Set(workers).count == workers.count else { throw PlanError.invalid("a worker address is listed twice: \(workers)") }
        let weights = split ?? Array(repeating: 1, count: tp)
        guard weights.count == tp else { throw PlanError.invalid("--split has \(weights.count) weights but --tp is \(tp)") }
        let ranges = try layers ?? PipelineSplit.even(layers: c.layerCount, stages: pp)
        guard ranges.count == pp else { throw PlanError.invalid("--layers has \(ranges.count) ranges but --pp is \(pp)") }
        try PipelineSplit.check(ranges, layers: c.layerCount)
        let split = try TensorParallelSplit(config: c, weights: weights)
        self.workers = workers
        self.tp = tp
        self.pp = pp
        splitWeights = weights
        layerRanges = ranges
        self.allReduce = allReduce
        self.syncDType = syncDType
        var nodes: [NodePlan] = []
        for s in 0 ..< pp {
            for r in 0 ..< tp {
                let slice = ShardSlice(
                    layers: ranges[s], queryHeads: split.queryHeads[r], ffnColumns: split.ffnColumns[r],
                    expertColumns: split.expertColumns[r], sharedExpertColumns: split.sharedExpertColumns[r],
                    embeds: s == 0, logitRows: s == pp - 1 ? split.vocabRows[r] : nil, addsReducedBiases: r == 0)
                try slice.validate(against: c)
                nodes.append(NodePlan(address: workers[s * tp + r], stage: s, rank: r, slice: slice))
            }
        }
        self.nodes = nodes
    }

    public func stage(_ s: Int) -> ArraySlice<NodePlan> { nodes[s * tp ..< (s + 1) * tp] }
    public var lastStage: ArraySlice<NodePlan> { stage(pp - 1) }

    public var summary: String {
        "tp=\(tp) pp=\(pp) allreduce=\(allReduce.rawValue) sync=\(syncDType.rawValue) layers=\(layerRanges.map { "\($0.lowerBound)-\($0.upperBound - 1)" }.joined(separator: ","))"
    }
}
