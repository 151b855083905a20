import ArgumentParser
import Foundation
import Model

struct ModelOptions: ParsableArguments {
    @Option(help: "Hugging Face model directory (config.json, *.safetensors, tokenizer.json).")
    var model: String

    @Option(help: "Compute threads on this machine.")
    var threads: Int = ProcessInfo.processInfo.activeProcessorCount

    var directory: URL { URL(fileURLWithPath: model) }

    func validate() throws {
        guard threads >= 1 else { throw ValidationError("--threads must be at least 1") }
    }
}

struct SamplingOptions: ParsableArguments {
    @Option(help: "Sampling temperature; 0 is greedy.")
    var temperature: Float = 0
    @Option(name: .customLong("top-k"), help: "Keep the k most likely tokens (0: all).")
    var topK: Int = 0
    @Option(name: .customLong("top-p"), help: "Keep the smallest set of tokens with this much probability.")
    var topP: Float = 1
    @Option(help: "Random seed for sampling.")
    var seed: UInt64 = 0

    var parameters: SamplingParameters { SamplingParameters(temperature: temperature, topK: topK, topP: topP, seed: seed) }

    func validate() throws {
        do { try parameters.validate() } catch { throw ValidationError("\(error)") }
    }
}

/// Progress on a terminal only: logs and pipes get no carriage-return noise.
struct TerminalProgress {
    let label: String
    let enabled = isatty(STDERR_FILENO) != 0
    private var lastPercent = -1

    init(_ label: String) { self.label = label }

    mutating func update(_ done: Int, _ total: Int) {
        guard enabled, total > 0 else { return }
        let percent = done * 100 / total
        guard percent != lastPercent else { return }
        lastPercent = percent
        FileHandle.standardError.write(Data("\r\(label): \(percent)%".utf8))
        if done >= total { FileHandle.standardError.write(Data("\n".utf8)) }
    }
}

func printNote(_ s: String) {
    FileHandle.standardError.write(Data("note: \(s)\n".utf8))
}
