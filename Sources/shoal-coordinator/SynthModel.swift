import ArgumentParser
import Foundation
import Model

struct SynthModel: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "synth-model",
        abstract: "Write a deterministic random checkpoint in Hugging Face layout for benchmarks and tests.",
        discussion: "Presets: " + SyntheticPreset.all.map(\.name).joined(separator: ", "))

    @Option(help: "Model shape to synthesize.") var preset: String
    @Option(help: "Weight dtype: f32, f16 or bf16.") var dtype: String = "bf16"
    @Option(help: "Output directory.") var out: String
    @Option(help: "Random seed.") var seed: UInt64 = 0
    @Option(name: .customLong("shard-mb"), help: "Split weights into shards of at most this many MB.") var shardMB: Int = 2048
    @Option(help: "Override the preset's layer count (same layer shape, less compute per token).") var layers: Int?
    @Option(help: "Override the preset's vocabulary size (>= 260).") var vocab: Int?

    func run() throws {
        var p = try SyntheticPreset.named(preset)
        if let layers {
            guard layers >= 1 else { throw ValidationError("--layers must be at least 1") }
            p.layers = layers
            p.name += "-L\(layers)"
        }
        if let vocab {
            guard vocab >= 260 else { throw ValidationError("--vocab must be at least 260 (256 bytes and the special tokens)") }
            p.vocab = vocab
            p.name += "-V\(vocab)"
        }
        guard let type = ["f32": TensorDType.f32, "f16": .f16, "bf16": .bf16][dtype.lowercased()] else {
            throw ValidationError("--dtype must be f32, f16 or bf16, got \(dtype)")
        }
        var progress = TerminalProgress("writing \(p.name)")
        try SyntheticCheckpoint.write(p, dtype: type, to: URL(fileURLWithPath: out), seed: seed, maxShardBytes: shardMB << 20) {
            progress.update($0, $1)
        }
        print("wrote \(p.description) (\(dtype)) to \(out)")
    }
}
