/// What distinguishes one Hugging Face decoder architecture from another: tensor names and the
/// config fields it reads. The math itself is shared (`Transformer.swift`).
public struct ArchitectureTraits: Sendable {
    public enum SlidingWindowRule: Sendable {
        case none
        /// One `sliding_window` for every layer (or the layers `layer_types` marks), with the
        /// config class's default when the field is absent.
        case allLayers(default: Int?)
        /// Qwen's rule: only with `use_sliding_window`, for layers from `max_window_layers` on.
        case qwen
    }

    public struct MoETraits: Sendable {
        public var expertCountField: String
        public var expertSizeField: String
        public var readsNormTopK: Bool
        public var hasSharedExpert: Bool
        public var readsSparseStep: Bool
        public var naming: ExpertNaming
    }

    /// Names of the sparse FFN's tensors under `model.layers.{l}.`.
    public struct ExpertNaming: Sendable {
        public var router: String
        public var expertPrefix: String
        public var gate: String
        public var up: String
        public var down: String
        public var sharedExpertPrefix: String?
        public var sharedExpertGate: String?
    }

    public var configClass: String
    public var qkvBias: Bool
    public var readsAttentionBias: Bool
    public var readsMLPBias: Bool
    public var qkNorm: Bool
    public var defaultHeadDim: Int?
    public var defaultTieEmbeddings: Bool
    public var slidingWindow: SlidingWindowRule
    public var moe: MoETraits?

    static let dense = ArchitectureTraits(
        configClass: "LlamaConfig", qkvBias: false, readsAttentionBias: true, readsMLPBias: true, qkNorm: false,
        defaultHeadDim: nil, defaultTieEmbeddings: false, slidingWindow: .none, moe: nil)
}

/// Tensor names shared by every architecture Shoal runs.
public enum TensorNames {
    public static let embedding = "model.embed_tokens.weight"
    public static let finalNorm = "model.norm.weight"
    public static let lmHead = "lm_head.weight"

    public static func layer(_ l: Int) -> String { "model.layers.\(l)." }
    public static func attention(_ l: Int, _ proj: String) -> String { "model.layers.\(l).self_attn.\(proj)" }
    public static func inputNorm(_ l: Int) -> String { "model.layers.\(l).input_layernorm.weight" }
    public static func postAttentionNorm(_ l: Int) -> String { "model.layers.\(l).post_attention_layernorm.weight" }
    public static func denseMLP(_ l: Int, _ proj: String) -> String { "model.layers.\(l).mlp.\(proj).weight" }
    public static func denseMLPBias(_ l: Int, _ proj: String) -> String { "model.layers.\(l).mlp.\(proj).bias" }
}
