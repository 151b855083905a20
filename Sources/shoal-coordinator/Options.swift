import ArgumentParser
import Foundation
import Model
import Runtime

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

/// Where the model runs: in this process (no flags), or on workers listed with --workers or a
/// cluster file, with the plan's knobs.
struct ClusterFlags: ParsableArguments {
    @Option(help: "Comma-separated worker addresses, stage-major (tcp://host:port,...).") var workers: String?
    @Option(help: "Cluster file (YAML; see README) with the workers and the plan.") var cluster: String?
    @Option(help: "Tensor-parallel ranks per stage (default: workers / pp).") var tp: Int?
    @Option(help: "Pipeline stages.") var pp: Int?
    @Option(help: "All-reduce: star, ring, mesh or auto.") var allreduce: String?
    @Option(help: "TP split weights, e.g. 2,1 for a node twice as fast.") var split: String?
    @Option(help: "Layer ranges per stage, e.g. 0-10,11-21.") var layers: String?
    @Option(help: "All-reduce wire format: f32, f16, bf16 or q8_0.") var sync: String?
    @Option(help: "Cluster token (default: $SHOAL_TOKEN).") var token: String?

    var isDistributed: Bool { workers != nil || cluster != nil }

    func spec() throws -> ClusterSpec? {
        var spec: ClusterSpec
        if let cluster {
            spec = try ClusterSpec(file: try ClusterFile.load(URL(fileURLWithPath: cluster)))
        } else if let workers {
            spec = ClusterSpec(workers: workers.split(separator: ",").map { String($0).trimmingCharacters(in: .whitespaces) })
        } else {
            return nil
        }
        if let workers, cluster != nil { spec.workers = workers.split(separator: ",").map(String.init) }
        if let pp { spec.pp = pp }
        spec.tp = tp ?? (cluster != nil && tp == nil && pp == nil ? spec.tp : max(1, spec.workers.count / spec.pp))
        if let allreduce { spec.allReduce = try ClusterSpec.parseAllReduce(allreduce) }
        if let split { spec.split = try ClusterSpec.parseSplit(split) }
        if let layers { spec.layers = layers }
        if let sync { spec.sync = try ClusterSpec.parseSync(sync) }
        spec.token = token ?? ProcessInfo.processInfo.environment["SHOAL_TOKEN"] ?? spec.token
        return spec
    }
}
