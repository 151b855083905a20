import Foundation
import Model
import Tokenizer

/// What `generate` reports with --json: the last line of stdout.
public struct GenerationReport: Codable, Sendable {
    public var prompt_tokens: [Int]
    public var tokens: [Int]
    public var text: String
    public var finish_reason: String
    public var ttft_ms: Double
    public var tpot_ms: Double
    public var decode_tokens_per_s: Double
    public var prefill_tokens_per_s: Double
    public var threads: Int
    public var backend: String
}

/// One text-generation request end to end: tokenize, generate on a backend (local or cluster),
/// stream text or report JSON, optionally dump logits.
public struct TextGeneration {
    public var prompt: String
    public var maxTokens: Int
    public var sampling: SamplingParameters
    public var json: Bool
    public var dumpLogits: URL?

    public init(prompt: String, maxTokens: Int, sampling: SamplingParameters, json: Bool, dumpLogits: URL?) {
        self.prompt = prompt
        self.maxTokens = maxTokens
        self.sampling = sampling
        self.json = json
        self.dumpLogits = dumpLogits
    }

    @discardableResult
    public func run(backend: any InferenceBackend, tokenizer: Tokenizer, threads: Int, backendName: String,
                    output: (String) -> Void = { FileHandle.standardOutput.write(Data($0.utf8)) }) throws -> GenerationReport {
        let promptTokens = tokenizer.encode(prompt, addSpecialTokens: true)
        let generator = Generator(backend: backend, eos: Set(backend.config.eosTokenIDs + (tokenizer.eosTokenID.map { [$0] } ?? [])))
        var stream = StreamingDetokenizer(tokenizer: tokenizer)
        let request = GenerationRequest(promptTokens: promptTokens, maxTokens: maxTokens, sampling: sampling,
                                        recordLogits: dumpLogits != nil)
        let result = try generator.run([request]) { _, token in
            let piece = stream.append(token)
            if !json, !piece.isEmpty { output(piece) }
        }[0]
        let tail = stream.flush()
        if !json {
            output(tail + "\n")
        }
        if let dumpLogits {
            try LogitDump.write(result, vocab: backend.config.vocabSize, to: dumpLogits)
        }
        let decodeSeconds = result.tpotMs / 1000
        let report = GenerationReport(
            prompt_tokens: promptTokens, tokens: result.tokens, text: tokenizer.decode(result.tokens),
            finish_reason: result.finishReason.rawValue, ttft_ms: result.ttftMs, tpot_ms: result.tpotMs,
            decode_tokens_per_s: decodeSeconds > 0 ? 1 / decodeSeconds : 0,
            prefill_tokens_per_s: result.ttftMs > 0 ? Double(promptTokens.count) / (result.ttftMs / 1000) : 0,
            threads: threads, backend: backendName)
        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
            output(String(decoding: try encoder.encode(report), as: UTF8.self) + "\n")
        }
        return report
    }
}
