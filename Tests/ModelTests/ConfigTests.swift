import Foundation
import Model
import Testing

struct ConfigTests {
    func parse(_ object: [String: Any], generation: [String: Any]? = nil) throws -> ModelConfig {
        try ModelConfig.parse(configJSON: try JSONSerialization.data(withJSONObject: object),
                              generationJSON: try generation.map { try JSONSerialization.data(withJSONObject: $0) })
    }

    var llama: [String: Any] {
        ["architectures": ["LlamaForCausalLM"], "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2,
         "num_attention_heads": 4, "num_key_value_heads": 2, "vocab_size": 100, "rms_norm_eps": 1e-6,
         "max_position_embeddings": 128, "hidden_act": "silu", "rope_theta": 500000.0, "torch_dtype": "bfloat16",
         "attention_bias": false, "mlp_bias": false, "tie_word_embeddings": false, "eos_token_id": [5, 7]]
    }

    @Test func readsFixtureConfigsInTheNewLayout() throws {
        let llama = try ModelConfig.load(directory: Fixtures.model("tiny-llama"))
        #expect(llama.architecture == .llama && llama.hiddenSize == 256 && llama.headDim == 32 && llama.kvHeadCount == 2)
        #expect(llama.ropeTheta == 10000 && llama.ropeScaling == .none && llama.eosTokenIDs == [1] && llama.storedDType == "float32")
        let mixtral = try ModelConfig.load(directory: Fixtures.model("tiny-mixtral"))
        #expect(mixtral.moe?.expertCount == 8 && mixtral.moe?.topK == 2 && mixtral.moe?.routing == .softmaxTopKRenormalized)
        #expect(mixtral.headDim == 32 && mixtral.slidingWindow.allSatisfy { $0 == nil } && mixtral.intermediateSize == 384)
    }

    @Test func readsTheOlderLayoutWithLlama3Scaling() throws {
        var c = llama
        c["rope_scaling"] = ["rope_type": "llama3", "factor": 32.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                             "original_max_position_embeddings": 8192]
        let config = try parse(c, generation: ["eos_token_id": 9])
        #expect(config.ropeTheta == 500000)
        #expect(config.ropeScaling == .llama3(factor: 32, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositions: 8192))
        #expect(config.eosTokenIDs == [5, 7, 9])
        #expect(config.storedDType == "bfloat16")
    }

    @Test func llama3ScalingMatchesTransformersFrequencies() throws {
        var c = llama
        c["head_dim"] = 128
        c["rope_scaling"] = ["rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                             "original_max_position_embeddings": 8192]
        let rope = Rope(config: try parse(c))
        // transformers 5.24's ROPE_INIT_FUNCTIONS["llama3"] for theta 500000, head_dim 128, factor 8:
        // high frequencies unchanged (0, 20), smoothed (40, 45, 50), low ones divided by 8 (63).
        let expected: [Int: Double] = [0: 1.0, 20: 0.016560440883040428, 40: 3.428102354519069e-05,
                                       45: 1.2297638932068367e-05, 50: 4.411534519022098e-06, 63: 3.068925877869333e-07]
        for (i, value) in expected {
            #expect(abs(Double(rope.inverseFrequencies[i]) / value - 1) < 1e-5, "inv_freq[\(i)] = \(rope.inverseFrequencies[i]), transformers \(value)")
        }
    }

    @Test(arguments: ["hidden_size", "num_hidden_layers", "num_attention_heads", "num_key_value_heads", "vocab_size",
                      "rms_norm_eps", "max_position_embeddings", "hidden_act", "intermediate_size"])
    func missingMathFieldIsAnErrorNamingIt(field: String) throws {
        var c = llama
        c.removeValue(forKey: field)
        #expect(throws: ModelError.missingConfigField(file: "config.json", field: field)) { try parse(c) }
    }

    @Test func missingRopeThetaIsAnError() {
        var c = llama
        c.removeValue(forKey: "rope_theta")
        #expect(throws: ModelError.missingConfigField(file: "config.json", field: "rope_theta (or rope_parameters.rope_theta)")) { try parse(c) }
    }

    @Test func defaultsAppliedAreReportedNotSilent() throws {
        var c = llama
        c.removeValue(forKey: "attention_bias")
        c.removeValue(forKey: "tie_word_embeddings")
        let config = try parse(c)
        #expect(config.qkvBias == false && config.tieWordEmbeddings == false)
        #expect(config.notes.contains { $0.contains("attention_bias") })
        #expect(config.notes.contains { $0.contains("tie_word_embeddings") })
    }

    @Test func unknownArchitectureNamesTheSupportedOnes() {
        var c = llama
        c["architectures"] = ["GPTNeoXForCausalLM"]
        do {
            _ = try parse(c)
            Issue.record("expected an error")
        } catch {
            let text = "\(error)"
            #expect(text.contains("GPTNeoXForCausalLM") && text.contains("LlamaForCausalLM") && text.contains("Qwen3MoeForCausalLM"))
        }
    }

    @Test func unsupportedRopeTypeIsAnError() {
        var c = llama
        c["rope_scaling"] = ["rope_type": "yarn", "factor": 4.0]
        #expect(throws: ModelError.self) { try parse(c) }
    }

    @Test func qwenMoeSparseLayersFollowStepAndDenseList() throws {
        let c: [String: Any] = [
            "architectures": ["Qwen2MoeForCausalLM"], "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 4,
            "num_attention_heads": 4, "num_key_value_heads": 4, "vocab_size": 100, "rms_norm_eps": 1e-6,
            "max_position_embeddings": 128, "hidden_act": "silu", "rope_theta": 1e6, "num_experts": 4,
            "num_experts_per_tok": 2, "moe_intermediate_size": 32, "shared_expert_intermediate_size": 48,
            "decoder_sparse_step": 2, "mlp_only_layers": [3], "norm_topk_prob": false, "tie_word_embeddings": false]
        let config = try parse(c)
        #expect(config.moe?.sparseLayers == [false, true, false, false])
        #expect(config.moe?.routing == .softmaxTopK && config.moe?.sharedExpertIntermediateSize == 48)
        #expect(config.qkvBias && !config.oBias)
    }

    @Test func mistralSlidingWindowAppliesToEveryLayer() throws {
        var c = llama
        c["architectures"] = ["MistralForCausalLM"]
        c["sliding_window"] = 4096
        let config = try parse(c)
        #expect(config.slidingWindow == [4096, 4096])
    }
}

struct RequestErrorTests {
    @Test func promptPlusGenerationBeyondTheContextIsRefused() throws {
        let model = try LoadedModel(directory: Fixtures.model("tiny-llama"), threads: 1)
        let generator = Generator(backend: model.makeBackend())
        #expect(throws: ModelError.promptTooLong(prompt: 500, generate: 20, limit: 512)) {
            try generator.run([GenerationRequest(promptTokens: Array(repeating: 5, count: 500), maxTokens: 20)])
        }
        #expect(throws: ModelError.self) { try generator.run([GenerationRequest(promptTokens: [], maxTokens: 4)]) }
        #expect(throws: ModelError.self) { try generator.run([GenerationRequest(promptTokens: [0], maxTokens: 4, sampling: .init(temperature: -1))]) }
        // An out-of-vocabulary id is an error, not a read past the embedding table.
        #expect(throws: ModelError.self) { try generator.run([GenerationRequest(promptTokens: [0, 99999], maxTokens: 1)]) }
    }
}
