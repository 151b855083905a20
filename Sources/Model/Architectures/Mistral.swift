/// `MistralForCausalLM`: Llama's layout without any biases, with a sliding attention window
/// (`sliding_window`, MistralConfig's default 4096 when absent, null for full attention).
public enum Mistral {
    public static let traits = ArchitectureTraits(
        configClass: "MistralConfig", qkvBias: false, readsAttentionBias: false, readsMLPBias: false, qkNorm: false,
        defaultHeadDim: nil, defaultTieEmbeddings: false, slidingWindow: .allLayers(default: 4096), moe: nil)
}
