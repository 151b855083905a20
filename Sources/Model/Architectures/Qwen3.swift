/// `Qwen3ForCausalLM`: no q/k/v bias by default (`attention_bias`), an explicit `head_dim` that need
/// not equal hidden_size / heads, and RMSNorm over each query and key head (q_norm, k_norm) before RoPE.
public enum Qwen3 {
    public static let traits = ArchitectureTraits(
        configClass: "Qwen3Config", qkvBias: false, readsAttentionBias: true, readsMLPBias: false, qkNorm: true,
        defaultHeadDim: 128, defaultTieEmbeddings: false, slidingWindow: .qwen, moe: nil)
}
