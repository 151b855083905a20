import ArgumentParser
import Foundation
import Logging
import Model
import Runtime
import Tokenizer
import Transport

struct Generate: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Generate text from a prompt, on this machine or across workers.")

    @OptionGroup var model: ModelOptions
    @OptionGroup var cluster: ClusterFlags
    @OptionGroup var weights: WeightFlags
    @Option(help: "The prompt text.") var prompt: String
    @Option(name: .customLong("max-tokens"), help: "Most tokens to generate.") var maxTokens: Int = 64
    @OptionGroup var sampling: SamplingOptions
    @Flag(help: "Print one JSON object (ids, text, timings) as the last line instead of streaming text.") var json = false
    @Option(name: .customLong("dump-logits"), help: "Write prefill and per-step logits (f32 safetensors) to this file.")
    var dumpLogits: String?

    func run() throws {
        let job = TextGeneration(prompt: prompt, maxTokens: maxTokens, sampling: sampling.parameters, json: json,
                                 dumpLogits: dumpLogits.map { URL(fileURLWithPath: $0) })
        // KV room a memory budget must leave: a token is at least one byte of the prompt, plus BOS.
        let context = prompt.utf8.count + 2 + maxTokens
        if let spec = try cluster.spec() {
            let checkpoint = try Checkpoint(directory: model.directory)
            checkpoint.config.notes.forEach(printNote)
            let tokenizer = try Tokenizer(directory: model.directory)
            let backend = try Cluster(spec: spec, checkpoint: checkpoint, transport: try ZMQTransport(),
                                      options: ClusterOptions(weights: try weights.policy(), contextTokens: context),
                                      logger: coordinatorLogger())
            defer { backend.shutdown() }
            try job.run(backend: backend, tokenizer: tokenizer, threads: model.threads, backendName: backend.plan.summary)
        } else {
            var progress = TerminalProgress("loading \(model.directory.lastPathComponent)")
            let loaded = try LoadedModel(directory: model.directory, threads: model.threads, weights: try weights.policy(), context: context)
            loaded.config.notes.forEach(printNote)
            if let streaming = loaded.transformer.weights as? StreamingWeights { printNote(streaming.summary) }
            loaded.prefault { progress.update($0, $1) }
            try job.run(backend: loaded.makeBackend(), tokenizer: loaded.tokenizer, threads: model.threads, backendName: "local")
        }
    }
}

func coordinatorLogger() -> Logger {
    var logger = Logger(label: "shoal-coordinator")
    logger.logLevel = ProcessInfo.processInfo.environment["SHOAL_LOG_LEVEL"].flatMap(Logger.Level.init(rawValue:)) ?? .info
    return logger
}
