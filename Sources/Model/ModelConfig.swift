import Foundation

/// The Hugging Face architectures Shoal runs. They share one decoder (pre-norm RMSNorm, RoPE,
/// GQA attention, SwiGLU FFN or a mixture of SwiGLU experts); the differences are listed per
/// architecture in `Architectures/`.
public enum Architecture: String, CaseIterable, Sendable, Codable {
    case llama = "LlamaForCausalLM"
    case mistral = "MistralForCausalLM"
    case qwen2 = "Qwen2ForCausalLM"
    case qwen3 = "Qwen3ForCausalLM"
    case mixtral = "MixtralForCausalLM"
    case qwen2Moe = "Qwen2MoeForCausalLM"
    case qwen3Moe = "Qwen3MoeForCausalLM"

    public var traits: ArchitectureTraits {
        switch self {
        case .llama: return Llama.traits
        case .mistral: return Mistral.traits
        case .qwen2: return Qwen2.traits
        case .qwen3: return Qwen3.traits
        case .mixtral: return Mixtral.traits
        case .qwen2Moe: return Qwen2Moe.traits
        case .qwen3Moe: return Qwen3Moe.traits
        }
    }
}

/// How rotary frequencies are derived (transformers' `rope_type`).
public enum RopeScaling: Sendable, Equatable {
    case none
    case linear(factor: Double)
    case llama3(factor: Double, lowFreqFactor: Double, highFreqFactor: Double, originalMaxPositions: Int)
}

/// How the router turns logits into expert weights.
public enum RouterNormalization: Sendable, Equatable {
    /// softmax over all experts, top-k, then divide by the top-k sum (Mixtral; `norm_topk_prob`).
    case softmaxTopKRenormalized
    /// softmax over all experts, top-k, weights used as they are (Qwen-MoE with norm_topk_prob false).
    case softmaxTopK
}

public struct MoEConfig: Sendable, Equatable {
    public var expertCount: Int
    public var topK: Int
    public var expertIntermediateSize: Int
    public var routing: RouterNormalization
    /// Qwen2-MoE's always-on expert and its sigmoid gate; nil where there is none.
    public var sharedExpertIntermediateSize: Int?
    /// Which layers are sparse (Qwen-MoE's decoder_sparse_step / mlp_only_layers); others are dense.
    public var sparseLayers: [Bool]
}

/// A model's hyper-parameters: every field the math depends on, read from `config.json`.
public struct ModelConfig: Sendable, Equatable {
    public var architecture: Architecture
    public var hiddenSize: Int
    /// Width of dense FFN layers (0 when every layer is sparse and the file has none).
    public var intermediateSize: Int
    public var layerCount: Int
    public var headCount: Int
    public var kvHeadCount: Int
    public var headDim: Int
    public var vocabSize: Int
    public var rmsNormEps: Float
    public var ropeTheta: Double
    public var ropeScaling: RopeScaling
    public var maxPositions: Int
    public var tieWordEmbeddings: Bool
    public var qkvBias: Bool
    public var oBias: Bool
    public var mlpBias: Bool
    /// Qwen3's per-head RMSNorm on queries and keys before RoPE.
    public var qkNorm: Bool
    /// Per layer: attend only to the last `window` positions (Mistral, Qwen sliding layers), or nil.
    public var slidingWindow: [Int?]
    public var moe: MoEConfig?
    /// The dtype the checkpoint was saved in (informational: tensors carry their own dtype).
    public var storedDType: String?
    public var bosTokenID: Int?
    public var eosTokenIDs: [Int]
    /// Defaults applied the way transformers' config class applies them, shown to the user at load.
    public var notes: [String]

    public var groupSize: Int { headCount / kvHeadCount }
    public var qDim: Int { headCount * headDim }
    public var kvDim: Int { kvHeadCount * headDim }

    public func isSparse(layer: Int) -> Bool { moe?.sparseLayers[layer] ?? false }

    /// Parses `config.json` (and `generation_config.json` if present) in either layout in circulation:
    /// top-level `rope_theta`/`rope_scaling`/`torch_dtype`, or `rope_parameters`/`dtype`.
    public static func load(directory: URL) throws -> ModelConfig {
        let url = directory.appendingPathComponent("config.json")
        guard FileManager.default.fileExists(atPath: url.path) else {
            throw ModelError.missingFile(url.path, hint: "a Hugging Face model directory needs config.json")
        }
        let data = try Data(contentsOf: url)
        var generation: Data?
        let genURL = directory.appendingPathComponent("generation_config.json")
        if FileManager.default.fileExists(atPath: genURL.path) { generation = try Data(contentsOf: genURL) }
        return try parse(configJSON: data, generationJSON: generation, source: url.path)
    }

    public static func parse(configJSON: Data, generationJSON: Data? = nil, source: String = "config.json") throws -> ModelConfig {
        let r = try ConfigReader(data: configJSON, file: source)
        guard let archs = r.raw["architectures"] as? [String], let first = archs.first else {
            throw ModelError.missingConfigField(file: source, field: "architectures")
        }
        guard let arch = Architecture(rawValue: first) else {
            throw ModelError.unsupportedArchitecture(file: source, found: first, supported: Architecture.allCases.map(\.rawValue))
        }
        let traits = arch.traits
        var notes: [String] = []

        let hidden = try r.int("hidden_size")
        let layers = try r.int("num_hidden_layers")
        let heads = try r.int("num_attention_heads")
        let kvHeads = try r.int("num_key_value_heads")
        let vocab = try r.int("vocab_size")
        let eps = try r.double("rms_norm_eps")
        let maxPositions = try r.int("max_position_embeddings")
        let act = try r.string("hidden_act")
        guard act == "silu" || act == "swish" else {
            throw ModelError.badConfigField(file: source, field: "hidden_act", reason: "'\(act)' is not supported (Shoal implements SwiGLU with silu)")
        }
        guard heads > 0, kvHeads > 0, heads % kvHeads == 0 else {
            throw ModelError.badConfigField(file: source, field: "num_key_value_heads", reason: "\(kvHeads) must divide num_attention_heads \(heads)")
        }
        var headDim = hidden / max(heads, 1)
        if let hd = r.optionalInt("head_dim") {
            headDim = hd
        } else if let fallback = traits.defaultHeadDim {
            headDim = fallback
            if !r.has("head_dim") { notes.append("'head_dim' absent: using \(traits.configClass)'s default \(fallback)") }
        } else if !r.has("head_dim") {
            guard hidden % heads == 0 else {
                throw ModelError.missingConfigField(file: source, field: "head_dim")
            }
            notes.append("'head_dim' absent: hidden_size / num_attention_heads = \(headDim)")
        }

        // RoPE: newer files nest it in rope_parameters, older ones keep rope_theta / rope_scaling at top level.
        var ropeBlock: [String: Any]? = nil
        var ropeField = "rope_scaling"
        if let params = r.raw["rope_parameters"] as? [String: Any] {
            ropeBlock = params
            ropeField = "rope_parameters"
        } else if let scaling = r.raw["rope_scaling"] as? [String: Any] {
            ropeBlock = scaling
        }
        let theta: Double
        if let t = (ropeBlock?["rope_theta"] as? NSNumber)?.doubleValue {
            theta = t
        } else if let t = r.optionalDouble("rope_theta") {
            theta = t
        } else {
            throw ModelError.missingConfigField(file: source, field: "rope_theta (or rope_parameters.rope_theta)")
        }
        let scaling = try parseRopeScaling(ropeBlock, field: ropeField, file: source)

        let tie: Bool
        if let t = r.optionalBool("tie_word_embeddings") { tie = t } else {
            tie = traits.defaultTieEmbeddings
            notes.append("'tie_word_embeddings' absent: using \(traits.configClass)'s default \(tie)")
        }
        var qkvBias = traits.qkvBias
        var oBias = false
        if traits.readsAttentionBias {
            if let b = r.optionalBool("attention_bias") { qkvBias = b; oBias = b } else {
                notes.append("'attention_bias' absent: using \(traits.configClass)'s default false")
            }
        }
        var mlpBias = false
        if traits.readsMLPBias {
            if let b = r.optionalBool("mlp_bias") { mlpBias = b } else {
                notes.append("'mlp_bias' absent: using \(traits.configClass)'s default false")
            }
        }
        let sliding = try parseSlidingWindow(r, traits: traits, layers: layers, notes: &notes)

        var moe: MoEConfig?
        var intermediate = 0
        if let moeTraits = traits.moe {
            let experts = try r.int(moeTraits.expertCountField)
            let topK = try r.int("num_experts_per_tok")
            let expertSize = try r.int(moeTraits.expertSizeField)
            var routing = RouterNormalization.softmaxTopKRenormalized
            if moeTraits.readsNormTopK {
                if let n = r.optionalBool("norm_topk_prob") {
                    routing = n ? .softmaxTopKRenormalized : .softmaxTopK
                } else {
                    routing = .softmaxTopK
                    notes.append("'norm_topk_prob' absent: using \(traits.configClass)'s default false")
                }
            }
            var shared: Int?
            if moeTraits.hasSharedExpert { shared = try r.int("shared_expert_intermediate_size") }
            var sparse = [Bool](repeating: true, count: layers)
            if moeTraits.readsSparseStep {
                let step: Int
                if let s = r.optionalInt("decoder_sparse_step") { step = s } else {
                    step = 1
                    notes.append("'decoder_sparse_step' absent: using \(traits.configClass)'s default 1")
                }
                let dense = Set((r.raw["mlp_only_layers"] as? [NSNumber])?.map(\.intValue) ?? [])
                for l in 0 ..< layers {
                    sparse[l] = !dense.contains(l) && experts > 0 && step > 0 && (l + 1) % step == 0
                }
            }
            guard topK >= 1, topK <= experts else {
                throw ModelError.badConfigField(file: source, field: "num_experts_per_tok", reason: "\(topK) must be between 1 and the expert count \(experts)")
            }
            moe = MoEConfig(expertCount: experts, topK: topK, expertIntermediateSize: expertSize, routing: routing,
                            sharedExpertIntermediateSize: shared, sparseLayers: sparse)
            if sparse.contains(false) || moeTraits.expertSizeField != "intermediate_size" {
                intermediate = sparse.contains(false) ? try r.int("intermediate_size") : (r.optionalInt("intermediate_size") ?? 0)
            } else {
                intermediate = expertSize
            }
        } else {
            intermediate = try r.int("intermediate_size")
        }

        var eos = Set<Int>()
        var bos = r.optionalInt("bos_token_id")
        for id in ConfigReader.intList(r.raw["eos_token_id"]) { eos.insert(id) }
        if let generationJSON {
            let g = try ConfigReader(data: generationJSON, file: "generation_config.json")
            for id in ConfigReader.intList(g.raw["eos_token_id"]) { eos.insert(id) }
            if bos == nil { bos = g.optionalInt("bos_token_id") }
        }
        let dtype = (r.raw["dtype"] as? String) ?? (r.raw["torch_dtype"] as? String)

        for (name, value) in [("hidden_size", hidden), ("num_hidden_layers", layers), ("vocab_size", vocab), ("head_dim", headDim), ("max_position_embeddings", maxPositions)] where value <= 0 {
            throw ModelError.badConfigField(file: source, field: name, reason: "must be positive, found \(value)")
        }
        guard headDim % 2 == 0 else {
            throw ModelError.badConfigField(file: source, field: "head_dim", reason: "RoPE needs an even head_dim, found \(headDim)")
        }
        return ModelConfig(
            architecture: arch, hiddenSize: hidden, intermediateSize: intermediate, layerCount: layers,
            headCount: heads, kvHeadCount: kvHeads, headDim: headDim, vocabSize: vocab, rmsNormEps: Float(eps),
            ropeTheta: theta, ropeScaling: scaling, maxPositions: maxPositions, tieWordEmbeddings: tie,
            qkvBias: qkvBias, oBias: oBias, mlpBias: mlpBias, qkNorm: traits.qkNorm, slidingWindow: sliding,
            moe: moe, storedDType: dtype, bosTokenID: bos, eosTokenIDs: eos.sorted(), notes: notes)
    }

    private static func parseRopeScaling(_ block: [String: Any]?, field: String, file: String) throws -> RopeScaling {
        guard let block else { return .none }
        let type = (block["rope_type"] as? String) ?? (block["type"] as? String) ?? "default"
        func number(_ key: String) throws -> Double {
            guard let v = (block[key] as? NSNumber)?.doubleValue else {
                throw ModelError.missingConfigField(file: file, field: "\(field).\(key)")
            }
            return v
        }
        switch type {
        case "default": return .none
        case "linear": return .linear(factor: try number("factor"))
        case "llama3":
            return .llama3(factor: try number("factor"), lowFreqFactor: try number("low_freq_factor"),
                           highFreqFactor: try number("high_freq_factor"),
                           originalMaxPositions: Int(try number("original_max_position_embeddings")))
        default:
            throw ModelError.badConfigField(file: file, field: "\(field).rope_type",
                                            reason: "'\(type)' is not supported (supported: default, linear, llama3)")
        }
    }

    private static func parseSlidingWindow(_ r: ConfigReader, traits: ArchitectureTraits, layers: Int, notes: inout [String]) throws -> [Int?] {
        switch traits.slidingWindow {
        case .none:
            return Array(repeating: nil, count: layers)
        case .allLayers(let defaultWindow):
            let window: Int?
            if r.has("sliding_window") { window = r.optionalInt("sliding_window") } else {
                window = defaultWindow
                notes.append("'sliding_window' absent: using \(traits.configClass)'s default \(defaultWindow.map(String.init) ?? "none")")
            }
            if let types = r.raw["layer_types"] as? [String], types.count == layers {
                return types.map { $0 == "sliding_attention" ? window : nil }
            }
            return Array(repeating: window, count: layers)
        case .qwen:
            let use = r.optionalBool("use_sliding_window") ?? false
            let window = r.optionalInt("sliding_window")
            if let types = r.raw["layer_types"] as? [String], types.count == layers {
                return types.map { $0 == "sliding_attention" ? window : nil }
            }
            guard use, let window else { return Array(repeating: nil, count: layers) }
            guard let maxWindowLayers = r.optionalInt("max_window_layers") else {
                throw ModelError.missingConfigField(file: r.file, field: "max_window_layers")
            }
            return (0 ..< layers).map { $0 >= maxWindowLayers ? window : nil }
        }
    }
}

/// Typed access to a config JSON object, with errors that name the file and field.
struct ConfigReader {
    let raw: [String: Any]
    let file: String

    init(data: Data, file: String) throws {
        self.file = file
        let object: Any
        do { object = try JSONSerialization.jsonObject(with: data) } catch {
            throw ModelError.badJSON(file: file, reason: "\(error.localizedDescription)")
        }
        guard let dict = object as? [String: Any] else { throw ModelError.badJSON(file: file, reason: "top level is not an object") }
        raw = dict
    }

    func has(_ key: String) -> Bool { raw[key] != nil }

    private func number(_ key: String) -> NSNumber? {
        guard let v = raw[key], !(v is NSNull) else { return nil }
        return v as? NSNumber
    }

    func int(_ key: String) throws -> Int {
        guard raw[key] != nil, !(raw[key] is NSNull) else { throw ModelError.missingConfigField(file: file, field: key) }
        guard let n = number(key), Double(n.intValue) == n.doubleValue else {
            throw ModelError.badConfigField(file: file, field: key, reason: "expected an integer, found \(raw[key]!)")
        }
        return n.intValue
    }

    func double(_ key: String) throws -> Double {
        guard raw[key] != nil, !(raw[key] is NSNull) else { throw ModelError.missingConfigField(file: file, field: key) }
        guard let n = number(key) else { throw ModelError.badConfigField(file: file, field: key, reason: "expected a number, found \(raw[key]!)") }
        return n.doubleValue
    }

    func string(_ key: String) throws -> String {
        guard let v = raw[key], !(v is NSNull) else { throw ModelError.missingConfigField(file: file, field: key) }
        guard let s = v as? String else { throw ModelError.badConfigField(file: file, field: key, reason: "expected a string") }
        return s
    }

    func optionalInt(_ key: String) -> Int? { number(key)?.intValue }
    func optionalDouble(_ key: String) -> Double? { number(key)?.doubleValue }
    func optionalBool(_ key: String) -> Bool? {
        guard let v = raw[key], !(v is NSNull) else { return nil }
        return (v as? Bool) ?? (v as? NSNumber)?.boolValue
    }

    static func intList(_ value: Any?) -> [Int] {
        if let n = value as? NSNumber { return [n.intValue] }
        if let list = value as? [NSNumber] { return list.map(\.intValue) }
        return []
    }
}
