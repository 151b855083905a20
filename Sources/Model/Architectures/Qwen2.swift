/// `Qwen2ForCausalLM`: biases on q/k/v (never on o_proj), embeddings often tied to lm_head in the
/// small models, and sliding windows only with `use_sliding_window` from `max_window_layers` on.
public enum Qwen2 {
    public static let traits = ArchitectureTraits(
        configClass: "Qwen2Config", qkvBias: true, readsAttentionBias: false, readsMLPBias: false, qkNorm: false,
        defaultHeadDim: nil, defaultTieEmbeddings: false, slidingWindow: .qwen, moe: nil)
}
