/// `Qwen2MoeForCausalLM`: Qwen2's attention (q/k/v bias) with sparse FFNs of `num_experts` experts of
/// width `moe_intermediate_size`, top-k weights renormalized only with `norm_topk_prob`, plus a shared
/// expert of width `shared_expert_intermediate_size` scaled by sigmoid(shared_expert_gate · x).
/// Layers in `mlp_only_layers` or off the `decoder_sparse_step` grid are dense (`intermediate_size`).
public enum Qwen2Moe {
    public static let traits = ArchitectureTraits(
        configClass: "Qwen2MoeConfig", qkvBias: true, readsAttentionBias: false, readsMLPBias: false, qkNorm: false,
        defaultHeadDim: nil, defaultTieEmbeddings: false, slidingWindow: .qwen,
        moe: .init(expertCountField: "num_experts", expertSizeField: "moe_intermediate_size", readsNormTopK: true,
                   hasSharedExpert: true, readsSparseStep: true,
                   naming: .init(router: "mlp.gate.weight", expertPrefix: "mlp.experts.", gate: "gate_proj", up: "up_proj",
                                 down: "down_proj", sharedExpertPrefix: "mlp.shared_expert.", sharedExpertGate: "mlp.shared_expert_gate.weight")))
}
