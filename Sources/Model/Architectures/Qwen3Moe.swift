/// `Qwen3MoeForCausalLM`: Qwen3's attention (q_norm/k_norm, explicit head_dim) with Qwen-MoE sparse
/// FFNs and no shared expert; `norm_topk_prob` is usually true in released checkpoints.
public enum Qwen3Moe {
    public static let traits = ArchitectureTraits(
        configClass: "Qwen3MoeConfig", qkvBias: false, readsAttentionBias: true, readsMLPBias: false, qkNorm: true,
        defaultHeadDim: 128, defaultTieEmbeddings: false, slidingWindow: .qwen,
        moe: .init(expertCountField: "num_experts", expertSizeField: "moe_intermediate_size", readsNormTopK: true,
                   hasSharedExpert: false, readsSparseStep: true,
                   naming: .init(router: "mlp.gate.weight", expertPrefix: "mlp.experts.", gate: "gate_proj", up: "up_proj",
                                 down: "down_proj", sharedExpertPrefix: nil, sharedExpertGate: nil)))
}
