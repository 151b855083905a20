import Foundation
import Kernels
import Tokenizer

/// The shape of a model to synthesize: real architectures' dimensions for benchmarks, tiny
/// ones exercising every architecture quirk for tests.
public struct SyntheticPreset: Sendable {
    public var name: String
    public var architecture: Architecture
    public var hidden: Int
    public var intermediate: Int
    public var layers: Int
    public var heads: Int
    public var kvHeads: Int
    /// Written as `head_dim` when set (Qwen3 and Mistral files carry it explicitly).
    public var headDim: Int?
    public var vocab: Int
    public var maxPositions: Int
    public var ropeTheta: Double
    /// `rope_scaling` / `rope_parameters` extras, e.g. llama3's factors.
    public var ropeScaling: [String: Double]?
    public var tieEmbeddings: Bool
    /// The newer layout (`rope_parameters`, `dtype`) rather than top-level `rope_theta` / `torch_dtype`.
    public var newConfigLayout: Bool
    /// Extra config.json fields (biases, sliding windows, MoE settings).
    public var extra: [String: any Sendable]

    public var description: String {
        "\(name): \(architecture.rawValue), \(layers) layers, hidden \(hidden), heads \(heads)/\(kvHeads), vocab \(vocab)"
    }

    public static let all: [SyntheticPreset] = [
        // Benchmark shapes of released checkpoints.
        .init(name: "tinyllama-1.1b", architecture: .llama, hidden: 2048, intermediate: 5632, layers: 22, heads: 32, kvHeads: 4,
              headDim: nil, vocab: 32000, maxPositions: 2048, ropeTheta: 10000, ropeScaling: nil, tieEmbeddings: false,
              newConfigLayout: false, extra: ["attention_bias": false, "mlp_bias": false]),
        .init(name: "llama-3.2-1b", architecture: .llama, hidden: 2048, intermediate: 8192, layers: 16, heads: 32, kvHeads: 8,
              headDim: 64, vocab: 128_256, maxPositions: 131_072, ropeTheta: 500_000,
              ropeScaling: ["factor": 32, "low_freq_factor": 1, "high_freq_factor": 4, "original_max_position_embeddings": 8192],
              tieEmbeddings: true, newConfigLayout: false, extra: ["attention_bias": false, "mlp_bias": false]),
        .init(name: "llama-2-7b", architecture: .llama, hidden: 4096, intermediate: 11008, layers: 32, heads: 32, kvHeads: 32,
              headDim: nil, vocab: 32000, maxPositions: 4096, ropeTheta: 10000, ropeScaling: nil, tieEmbeddings: false,
              newConfigLayout: false, extra: ["attention_bias": false, "mlp_bias": false]),
        .init(name: "moe-small", architecture: .mixtral, hidden: 1024, intermediate: 2048, layers: 8, heads: 16, kvHeads: 4,
              headDim: nil, vocab: 32000, maxPositions: 4096, ropeTheta: 1_000_000, ropeScaling: nil, tieEmbeddings: false,
              newConfigLayout: false, extra: ["num_local_experts": 8, "num_experts_per_tok": 2, "sliding_window": NSNull()]),
        // Tiny checkpoints, one per architecture, each switching on what makes it different.
        .init(name: "tiny-llama3", architecture: .llama, hidden: 64, intermediate: 160, layers: 2, heads: 4, kvHeads: 2,
              headDim: nil, vocab: 384, maxPositions: 256, ropeTheta: 500_000,
              ropeScaling: ["factor": 8, "low_freq_factor": 1, "high_freq_factor": 4, "original_max_position_embeddings": 32],
              tieEmbeddings: true, newConfigLayout: false, extra: ["attention_bias": true, "mlp_bias": true]),
        .init(name: "tiny-mistral", architecture: .mistral, hidden: 64, intermediate: 128, layers: 2, heads: 4, kvHeads: 1,
              headDim: 24, vocab: 384, maxPositions: 256, ropeTheta: 10000, ropeScaling: nil, tieEmbeddings: false,
              newConfigLayout: true, extra: ["sliding_window": 6]),
        .init(name: "tiny-qwen2", architecture: .qwen2, hidden: 64, intermediate: 96, layers: 2, heads: 4, kvHeads: 2,
              headDim: nil, vocab: 384, maxPositions: 256, ropeTheta: 1_000_000, ropeScaling: nil, tieEmbeddings: true,
              newConfigLayout: false, extra: ["use_sliding_window": false, "sliding_window": 4096, "max_window_layers": 2]),
        .init(name: "tiny-qwen3", architecture: .qwen3, hidden: 64, intermediate: 96, layers: 2, heads: 4, kvHeads: 2,
              headDim: 32, vocab: 384, maxPositions: 256, ropeTheta: 1_000_000, ropeScaling: nil, tieEmbeddings: false,
              newConfigLayout: true, extra: ["attention_bias": false, "use_sliding_window": false, "sliding_window": NSNull(), "max_window_layers": 2]),
        .init(name: "tiny-mixtral", architecture: .mixtral, hidden: 64, intermediate: 96, layers: 2, heads: 4, kvHeads: 2,
              headDim: nil, vocab: 384, maxPositions: 256, ropeTheta: 10000, ropeScaling: nil, tieEmbeddings: false,
              newConfigLayout: true, extra: ["num_local_experts": 4, "num_experts_per_tok": 2, "sliding_window": NSNull()]),
        .init(name: "tiny-qwen2-moe", architecture: .qwen2Moe, hidden: 64, intermediate: 128, layers: 3, heads: 4, kvHeads: 2,
              headDim: nil, vocab: 384, maxPositions: 256, ropeTheta: 1_000_000, ropeScaling: nil, tieEmbeddings: false,
              newConfigLayout: false,
              extra: ["num_experts": 4, "num_experts_per_tok": 2, "moe_intermediate_size": 48, "shared_expert_intermediate_size": 80,
                      "norm_topk_prob": false, "decoder_sparse_step": 1, "mlp_only_layers": [1], "use_sliding_window": false,
                      "sliding_window": 4096, "max_window_layers": 3]),
        .init(name: "tiny-qwen3-moe", architecture: .qwen3Moe, hidden: 64, intermediate: 128, layers: 2, heads: 4, kvHeads: 2,
              headDim: 16, vocab: 384, maxPositions: 256, ropeTheta: 1_000_000, ropeScaling: nil, tieEmbeddings: false,
              newConfigLayout: true,
              extra: ["num_experts": 6, "num_experts_per_tok": 2, "moe_intermediate_size": 32, "norm_topk_prob": true,
                      "decoder_sparse_step": 1, "mlp_only_layers": [Int](), "attention_bias": false, "use_sliding_window": false,
                      "sliding_window": NSNull(), "max_window_layers": 2]),
    ]

    public static func named(_ name: String) throws -> SyntheticPreset {
        guard let p = all.first(where: { $0.name == name }) else {
            throw ModelError.invalidRequest("unknown preset '\(name)'; presets: \(all.map(\.name).joined(separator: ", "))")
        }
        return p
    }
}

/// Writes a deterministic random checkpoint in Hugging Face layout (config.json,
/// generation_config.json, safetensors — sharded above `maxShardBytes` — and tokenizer.json),
/// so realistic sizes can be benchmarked and every architecture tested without downloads.
public enum SyntheticCheckpoint {
    public static func write(_ preset: SyntheticPreset, dtype: TensorDType, to directory: URL, seed: UInt64 = 0,
                             maxShardBytes: Int = 2 << 30, progress: ((Int, Int) -> Void)? = nil) throws {
        guard [.f32, .f16, .bf16].contains(dtype) else {
            throw ModelError.invalidRequest("synthetic checkpoints are written in F32, F16 or BF16, not \(dtype.rawValue)")
        }
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let tokenizerJSON = SyntheticTokenizer.byteLevelBPE(vocabularySize: preset.vocab, seed: seed)
        try tokenizerJSON.write(to: directory.appendingPathComponent("tokenizer.json"))
        let tokenizer = try Tokenizer(tokenizerJSON: tokenizerJSON, source: "synthetic tokenizer.json")
        guard let bos = tokenizer.tokenID("<s>"), let eos = tokenizer.tokenID("</s>") else {
            throw ModelError.invalidRequest("synthetic tokenizer lacks <s> or </s>")
        }
        let tokenizerConfig: [String: Any] = ["bos_token": "<s>", "eos_token": "</s>", "tokenizer_class": "PreTrainedTokenizerFast"]
        try JSONSerialization.data(withJSONObject: tokenizerConfig, options: [.prettyPrinted, .sortedKeys])
            .write(to: directory.appendingPathComponent("tokenizer_config.json"))
        try configJSON(preset, dtype: dtype, bos: bos, eos: eos).write(to: directory.appendingPathComponent("config.json"))
        let generation: [String: Any] = ["bos_token_id": bos, "eos_token_id": eos, "_from_model_config": true]
        try JSONSerialization.data(withJSONObject: generation, options: [.prettyPrinted, .sortedKeys])
            .write(to: directory.appendingPathComponent("generation_config.json"))

        // Check our own tensor list against the loader's expectations by parsing the config back.
        let config = try ModelConfig.load(directory: directory)
        let tensors = tensorList(config)
        var shards: [[(name: String, shape: [Int], scale: Float, offset: Float)]] = [[]]
        var shardBytes = 0
        for t in tensors {
            let bytes = t.shape.reduce(1, *) * dtype.size
            if shardBytes + bytes > maxShardBytes, !shards[shards.count - 1].isEmpty {
                shards.append([])
                shardBytes = 0
            }
            shards[shards.count - 1].append(t)
            shardBytes += bytes
        }
        let totalElements = tensors.reduce(0) { $0 + $1.shape.reduce(1, *) }
        var written = 0
        var weightMap: [String: String] = [:]
        for (i, shard) in shards.enumerated() {
            let fileName = shards.count == 1 ? "model.safetensors" : String(format: "model-%05d-of-%05d.safetensors", i + 1, shards.count)
            var writer = SafetensorsWriter(metadata: ["format": "pt"])
            for t in shard {
                let count = t.shape.reduce(1, *)
                weightMap[t.name] = fileName
                writer.add(t.name, dtype: dtype, shape: t.shape, byteCount: count * dtype.size) { handle in
                    try writeRandom(name: t.name, count: count, scale: t.scale, offset: t.offset, seed: seed, dtype: dtype, to: handle)
                    written += count
                    progress?(written, totalElements)
                }
            }
            try writer.write(to: directory.appendingPathComponent(fileName))
        }
        if shards.count > 1 {
            let index: [String: Any] = ["metadata": ["total_size": totalElements * dtype.size], "weight_map": weightMap]
            try JSONSerialization.data(withJSONObject: index, options: [.prettyPrinted, .sortedKeys])
                .write(to: directory.appendingPathComponent("model.safetensors.index.json"))
        }
    }

    static func configJSON(_ p: SyntheticPreset, dtype: TensorDType, bos: Int, eos: Int) throws -> Data {
        let dtypeName = ["F32": "float32", "F16": "float16", "BF16": "bfloat16"][dtype.rawValue]!
        var c: [String: Any] = [
            "architectures": [p.architecture.rawValue],
            "model_type": modelType(p.architecture),
            "hidden_size": p.hidden, "intermediate_size": p.intermediate, "num_hidden_layers": p.layers,
            "num_attention_heads": p.heads, "num_key_value_heads": p.kvHeads, "vocab_size": p.vocab,
            "max_position_embeddings": p.maxPositions, "rms_norm_eps": 1e-5, "hidden_act": "silu",
            "tie_word_embeddings": p.tieEmbeddings, "bos_token_id": bos, "eos_token_id": eos,
            "initializer_range": 0.02, "use_cache": true,
        ]
        if let hd = p.headDim { c["head_dim"] = hd }
        var rope: [String: Any] = [:]
        if let s = p.ropeScaling {
            rope = s.mapValues { $0 == $0.rounded() && $0 >= 1 ? Int($0) as Any : $0 as Any }
            rope["rope_type"] = p.architecture == .llama ? "llama3" : "linear"
        }
        if p.newConfigLayout {
            rope["rope_theta"] = p.ropeTheta
            if rope["rope_type"] == nil { rope["rope_type"] = "default" }
            c["rope_parameters"] = rope
            c["dtype"] = dtypeName
        } else {
            c["rope_theta"] = p.ropeTheta
            c["rope_scaling"] = rope.isEmpty ? NSNull() : rope
            c["torch_dtype"] = dtypeName
        }
        for (k, v) in p.extra { c[k] = v }
        return try JSONSerialization.data(withJSONObject: c, options: [.prettyPrinted, .sortedKeys])
    }

    static func modelType(_ a: Architecture) -> String {
        switch a {
        case .llama: return "llama"
        case .mistral: return "mistral"
        case .qwen2: return "qwen2"
        case .qwen3: return "qwen3"
        case .mixtral: return "mixtral"
        case .qwen2Moe: return "qwen2_moe"
        case .qwen3Moe: return "qwen3_moe"
        }
    }

    /// Every tensor the architecture needs, with the spread of its random values: matrices with
    /// standard deviation 1/sqrt(fan-in) so activations stay O(1) and logits are far from flat.
    static func tensorList(_ c: ModelConfig) -> [(name: String, shape: [Int], scale: Float, offset: Float)] {
        var out: [(String, [Int], Float, Float)] = []
        let h = c.hiddenSize
        func matrix(_ name: String, _ rows: Int, _ cols: Int) { out.append((name, [rows, cols], 1 / Float(cols).squareRoot(), 0)) }
        func norm(_ name: String, _ n: Int) { out.append((name, [n], 0.1, 1)) }
        func bias(_ name: String, _ n: Int) { out.append((name, [n], 0.1, 0)) }
        func swiglu(_ prefix: String, _ gate: String, _ up: String, _ down: String, _ width: Int, biases: Bool) {
            matrix(prefix + gate + ".weight", width, h)
            matrix(prefix + up + ".weight", width, h)
            matrix(prefix + down + ".weight", h, width)
            if biases {
                bias(prefix + gate + ".bias", width)
                bias(prefix + up + ".bias", width)
                bias(prefix + down + ".bias", h)
            }
        }
        out.append((TensorNames.embedding, [c.vocabSize, h], 1, 0))
        for l in 0 ..< c.layerCount {
            norm(TensorNames.inputNorm(l), h)
            norm(TensorNames.postAttentionNorm(l), h)
            for (p, rows) in [("q_proj", c.qDim), ("k_proj", c.kvDim), ("v_proj", c.kvDim)] {
                matrix(TensorNames.attention(l, "\(p).weight"), rows, h)
                if c.qkvBias { bias(TensorNames.attention(l, "\(p).bias"), rows) }
            }
            matrix(TensorNames.attention(l, "o_proj.weight"), h, c.qDim)
            if c.oBias { bias(TensorNames.attention(l, "o_proj.bias"), h) }
            if c.qkNorm {
                norm(TensorNames.attention(l, "q_norm.weight"), c.headDim)
                norm(TensorNames.attention(l, "k_norm.weight"), c.headDim)
            }
            if c.isSparse(layer: l), let moe = c.moe, let n = c.architecture.traits.moe?.naming {
                let p = TensorNames.layer(l)
                matrix(p + n.router, moe.expertCount, h)
                for e in 0 ..< moe.expertCount {
                    swiglu(p + n.expertPrefix + "\(e).", n.gate, n.up, n.down, moe.expertIntermediateSize, biases: false)
                }
                if let sp = n.sharedExpertPrefix, let sg = n.sharedExpertGate, let width = moe.sharedExpertIntermediateSize {
                    swiglu(p + sp, "gate_proj", "up_proj", "down_proj", width, biases: false)
                    matrix(p + sg, 1, h)
                }
            } else {
                swiglu("model.layers.\(l).mlp.", "gate_proj", "up_proj", "down_proj", c.intermediateSize, biases: c.mlpBias)
            }
        }
        norm(TensorNames.finalNorm, h)
        if !c.tieWordEmbeddings { matrix(TensorNames.lmHead, c.vocabSize, h) }
        return out
    }

    /// Normal(offset, scale) values from a generator seeded by the tensor's name, streamed in chunks.
    static func writeRandom(name: String, count: Int, scale: Float, offset: Float, seed: UInt64, dtype: TensorDType, to handle: FileHandle) throws {
        var nameHash: UInt64 = 0xCBF2_9CE4_8422_2325
        for b in name.utf8 { nameHash = (nameHash ^ UInt64(b)) &* 0x100_0000_01B3 }
        var rng = SeededGenerator(seed: seed ^ nameHash)
        let chunk = 1 << 20
        let values = UnsafeMutablePointer<Float>.allocate(capacity: chunk)
        let encoded = UnsafeMutableRawPointer.allocate(byteCount: chunk * 4, alignment: 64)
        defer {
            values.deallocate()
            encoded.deallocate()
        }
        var done = 0
        while done < count {
            let n = min(chunk, count - done)
            var i = 0
            while i < n {
                // Box-Muller: two normals from two uniforms.
                let u1 = Float(rng.next() >> 40 | 1) / Float(1 << 24)
                let u2 = Float(rng.next() >> 40) / Float(1 << 24)
                let r = (-2 * logf(u1)).squareRoot()
                values[i] = offset + scale * r * cosf(2 * .pi * u2)
                if i + 1 < n { values[i + 1] = offset + scale * r * sinf(2 * .pi * u2) }
                i += 2
            }
            ck_from_f32(dtype.weightType!.ckType, values, encoded, n)
            handle.write(Data(bytesNoCopy: encoded, count: n * dtype.size, deallocator: .none))
            done += n
        }
    }
}
