/// `LlamaForCausalLM`: Llama 2/3, TinyLlama, and the reference design the others differ from.
/// - `attention_bias` adds biases to q/k/v *and* o_proj; `mlp_bias` to gate/up/down.
/// - `rope_scaling` of type `llama3` (Llama 3.1+) reshapes the rotary frequencies.
public enum Llama {
    public static let traits = ArchitectureTraits.dense
}
