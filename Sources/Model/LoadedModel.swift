import Foundation
import Kernels
import Tokenizer

/// A checkpoint, its tokenizer and an engine over the whole model, ready for requests.
public final class LoadedModel {
    public let checkpoint: Checkpoint
    public let tokenizer: Tokenizer
    public let transformer: Transformer
    public let pool: ThreadPool

    /// How the weights are held (precision, residency).
    public let weightPolicy: WeightPolicy

    /// - weights: quantize at load and/or stream a window of blocks; `context` is the KV capacity
    ///   a memory budget must leave room for (default: the model's whole context).
    /// - progress: (blocks loaded, total blocks) while weights are mapped and checked.
    public init(directory: URL, threads: Int, weights: WeightPolicy = WeightPolicy(), context: Int? = nil,
                progress: ((Int, Int) -> Void)? = nil) throws {
        checkpoint = try Checkpoint(directory: directory)
        tokenizer = try Tokenizer(directory: directory)
        guard tokenizer.vocabularySize <= checkpoint.config.vocabSize else {
            throw ModelError.badConfigField(file: directory.appendingPathComponent("config.json").path, field: "vocab_size",
                                            reason: "\(checkpoint.config.vocabSize) is smaller than the tokenizer's \(tokenizer.vocabularySize) tokens")
        }
        pool = ThreadPool(threads: threads)
        weightPolicy = weights
        // One node reads the whole file through the mapping: on 2 MB pages, asked for before the
        // first read (a norm copied at load would otherwise fault 4 KB folios in around it).
        if !weights.streams && weights.quantization == nil { checkpoint.files.forEach { $0.mapping.preferHugePages() } }
        let provider = try weights.makeProvider(checkpoint: checkpoint, slice: .full(checkpoint.config),
                                                context: min(context ?? checkpoint.config.maxPositions, checkpoint.config.maxPositions),
                                                progress: progress)
        transformer = Transformer(weights: provider, pool: pool)
    }

    /// Whether the engine reads weights straight from the mapping (resident and not converted),
    /// which is when prefaulting pays off; otherwise it would only add the file to the RSS.
    public var weightsAreMapped: Bool { !weightPolicy.streams && weightPolicy.quantization == nil }

    public var config: ModelConfig { checkpoint.config }

    /// Reads every weight page once so the first request does not pay for page faults (TTFT is
    /// measured with the model loaded). - progress: (bytes read, total bytes).
    public func prefault(progress: ((Int, Int) -> Void)? = nil) {
        guard weightsAreMapped else { return }
        let total = checkpoint.files.reduce(0) { $0 + $1.mapping.bytes.count }
        var done = 0
        let chunk = 64 << 20
        for file in checkpoint.files {
            // Populated on 2 MB pages (asked for at init): WILLNEED readahead and 4 KB faults
            // filled the page cache with 4 KB folios, and a streamed run that later mapped those
            // ran 2.4-4x slower.
            let bytes = file.mapping.bytes
            var offset = 0
            while offset < bytes.count {
                let end = min(bytes.count, offset + chunk)
                file.mapping.populate(offset: offset, count: end - offset)
                done += end - offset
                offset = end
                progress?(done, total)
            }
        }
    }

    /// Prompt ids as the tokenizer's template makes them (BOS where the template says).
    public func encode(_ prompt: String) -> [Int] { tokenizer.encode(prompt, addSpecialTokens: true) }

    public func makeBackend() -> LocalBackend { LocalBackend(transformer: transformer) }
}

/// Writes logits in the layout of the reference fixtures: `prefill_logits` [prompt, vocab] and
/// `step_logits` [generated, vocab], f32.
public enum LogitDump {
    public static func write(_ output: GenerationOutput, vocab: Int, to url: URL) throws {
        var w = SafetensorsWriter(metadata: ["producer": "shoal"])
        if let prefill = output.prefillLogits {
            w.add("prefill_logits", floats: prefill, shape: [prefill.count / vocab, vocab])
        }
        w.add("step_logits", floats: output.stepLogits.flatMap { $0 }, shape: [output.stepLogits.count, vocab])
        w.add("prompt_ids", ints: output.promptTokens.map(Int32.init), shape: [output.promptTokens.count])
        w.add("generated_ids", ints: output.tokens.map(Int32.init), shape: [output.tokens.count])
        try w.write(to: url)
    }
}
