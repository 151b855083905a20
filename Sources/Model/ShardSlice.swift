/// Which part of a model one node computes: a layer range (pipeline stage) and, inside each layer,
/// a set of query heads and FFN columns (tensor-parallel rank). The whole model is one slice.
///
/// A slice is a pure value: ClusterPlan computes one per node, the weight loader reads just
/// those rows and columns, and the engine runs them unchanged.
public struct ShardSlice: Sendable, Codable, Equatable, Hashable {
    public var layers: Range<Int>
    /// Query heads this node attends with; the KV heads they read are derived (`kvHeads(_:)`).
    public var queryHeads: Range<Int>
    /// Columns of dense FFN layers (rows of gate/up, columns of down).
    public var ffnColumns: Range<Int>
    /// Columns of every routed expert (experts sliced like an FFN; the router is replicated).
    public var expertColumns: Range<Int>
    /// Columns of Qwen2-MoE's shared expert.
    public var sharedExpertColumns: Range<Int>
    /// Whether this node turns token ids into hidden states (first pipeline stage).
    public var embeds: Bool
    /// Vocabulary rows of lm_head whose logits this node computes (last stage), or nil.
    public var logitRows: Range<Int>?
    /// Row-parallel biases (o_proj, down_proj) must enter an all-reduce sum once: only one rank adds them.
    public var addsReducedBiases: Bool

    public init(layers: Range<Int>, queryHeads: Range<Int>, ffnColumns: Range<Int>, expertColumns: Range<Int>,
                sharedExpertColumns: Range<Int>, embeds: Bool, logitRows: Range<Int>?, addsReducedBiases: Bool) {
        self.layers = layers
        self.queryHeads = queryHeads
        self.ffnColumns = ffnColumns
        self.expertColumns = expertColumns
        self.sharedExpertColumns = sharedExpertColumns
        self.embeds = embeds
        self.logitRows = logitRows
        self.addsReducedBiases = addsReducedBiases
    }

    /// Everything: what a single node runs.
    public static func full(_ c: ModelConfig) -> ShardSlice {
        ShardSlice(layers: 0 ..< c.layerCount, queryHeads: 0 ..< c.headCount, ffnColumns: 0 ..< c.intermediateSize,
                   expertColumns: 0 ..< (c.moe?.expertIntermediateSize ?? 0),
                   sharedExpertColumns: 0 ..< (c.moe?.sharedExpertIntermediateSize ?? 0),
                   embeds: true, logitRows: 0 ..< c.vocabSize, addsReducedBiases: true)
    }

    /// KV heads serving this slice's query heads. With more ranks than KV heads a KV head is
    /// shared: every rank that needs it computes and caches it.
    public func kvHeads(_ c: ModelConfig) -> Range<Int> {
        guard !queryHeads.isEmpty else { return 0 ..< 0 }
        let g = c.groupSize
        return (queryHeads.lowerBound / g) ..< ((queryHeads.upperBound + g - 1) / g)
    }

    /// Checks the slice against the model, naming the field that is out of range.
    public func validate(against c: ModelConfig) throws {
        func check(_ r: Range<Int>, _ limit: Int, _ name: String) throws {
            guard r.lowerBound >= 0, r.upperBound <= limit else {
                throw ModelError.invalidRequest("shard slice: \(name) \(r) outside 0..<\(limit)")
            }
        }
        try check(layers, c.layerCount, "layers")
        try check(queryHeads, c.headCount, "query heads")
        try check(ffnColumns, c.intermediateSize, "FFN columns")
        try check(expertColumns, c.moe?.expertIntermediateSize ?? 0, "expert columns")
        try check(sharedExpertColumns, c.moe?.sharedExpertIntermediateSize ?? 0, "shared expert columns")
        if let logitRows { try check(logitRows, c.vocabSize, "lm_head rows") }
    }
}
