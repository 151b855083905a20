import ArgumentParser
import Foundation
import Model
import Runtime

struct Generate: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Generate text from a prompt.")

    @OptionGroup var model: ModelOptions
    @Option(help: "The prompt text.") var prompt: String
    @Option(name: .customLong("max-tokens"), help: "Most tokens to generate.") var maxTokens: Int = 64
    @OptionGroup var sampling: SamplingOptions
    @Flag(help: "Print one JSON object (ids, text, timings) as the last line instead of streaming text.") var json = false
    @Option(name: .customLong("dump-logits"), help: "Write prefill and per-step logits (f32 safetensors) to this file.")
    var dumpLogits: String?

    func run() throws {
        var progress = TerminalProgress("loading \(model.directory.lastPathComponent)")
        let loaded = try LoadedModel(directory: model.directory, threads: model.threads)
        loaded.config.notes.forEach(printNote)
        loaded.prefault { progress.update($0, $1) }
        let job = TextGeneration(prompt: prompt, maxTokens: maxTokens, sampling: sampling.parameters, json: json,
                                 dumpLogits: dumpLogits.map { URL(fileURLWithPath: $0) })
        try job.run(backend: loaded.makeBackend(), tokenizer: loaded.tokenizer, threads: model.threads, backendName: "local")
    }
}
