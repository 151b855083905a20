/// `MixtralForCausalLM`: every FFN is a mixture of `num_local_experts` SwiGLU experts (w1 = gate,
/// w3 = up, w2 = down) under `block_sparse_moe`; the router takes a softmax over all experts, keeps
/// the top `num_experts_per_tok` and renormalizes their weights to sum to one.
public enum Mixtral {
    public static let traits = ArchitectureTraits(
        configClass: "MixtralConfig", qkvBias: false, readsAttentionBias: false, readsMLPBias: false, qkNorm: false,
        defaultHeadDim: nil, defaultTieEmbeddings: false, slidingWindow: .allLayers(default: nil),
        moe: .init(expertCountField: "num_local_experts", expertSizeField: "intermediate_size", readsNormTopK: false,
                   hasSharedExpert: false, readsSparseStep: false,
                   naming: .init(router: "block_sparse_moe.gate.weight", expertPrefix: "block_sparse_moe.experts.",
                                 gate: "w1", up: "w3", down: "w2", sharedExpertPrefix: nil, sharedExpertGate: nil)))
}
