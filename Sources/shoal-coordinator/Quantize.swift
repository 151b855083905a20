import ArgumentParser
import Foundation
import Kernels
import Model
import Runtime
import Transport

/// How this run holds its weights: `--quantize` at load, `--memory-window` / `--memory-budget`
/// streaming (on this machine or, carried in LoadShard, on every worker).
struct WeightFlags: ParsableArguments {
    @Option(help: "Re-encode the layers' matrices at load: q8_0 or q4_0 (embeddings, norms and routers stay).")
    var quantize: String?
    @Flag(name: .customLong("quantize-embeddings"), help: "With --quantize: the embedding table (and a tied lm_head) too.")
    var quantizeEmbeddings = false
    @Flag(name: .customLong("keep-lm-head"), help: "With --quantize: leave an untied lm_head in its stored precision.")
    var keepLMHead = false
    @Option(name: .customLong("memory-window"), help: "Keep at most W weight blocks (half layers; lm_head is one) resident, streaming the rest from disk.")
    var memoryWindow: Int?
    @Option(name: .customLong("memory-budget"), help: "Bytes for weight blocks + KV cache (suffixes k, M, G = 1000^n; Ki, Mi, Gi = 1024^n); picks the window.")
    var memoryBudget: String?
    @Option(help: "How streamed blocks are read: mmap (through the mapping, madvise) or read (pread into owned buffers).")
    var prefetch: String = "mmap"
    @Flag(name: .customLong("drop-page-cache"), help: "Streaming: drop each block's file pages after use, so every step reads from disk.")
    var dropPageCache = false

    func policy() throws -> WeightPolicy {
        guard let mode = WeightPolicy.Prefetch(rawValue: prefetch) else {
            throw ValidationError("--prefetch must be read or mmap, got '\(prefetch)'")
        }
        if (quantizeEmbeddings || keepLMHead), quantize == nil {
            throw ValidationError("--quantize-embeddings and --keep-lm-head need --quantize q8_0|q4_0")
        }
        if let w = memoryWindow, w < 1 { throw ValidationError("--memory-window must be at least 1, got \(w)") }
        let quantization = try quantize.map { try Quantization(name: $0, embeddings: quantizeEmbeddings, keepLMHead: keepLMHead) }
        let policy = WeightPolicy(quantization: quantization, window: memoryWindow, budget: try memoryBudget.map(parseBytes),
                                  prefetch: mode, dropPageCache: dropPageCache)
        if dropPageCache, !policy.streams { throw ValidationError("--drop-page-cache needs --memory-window or --memory-budget") }
        return policy
    }
}

/// "3G", "512Mi", "1.5GB", "123456789".
func parseBytes(_ s: String) throws -> Int {
    let gi = Double(1 << 30), mi = Double(1 << 20), ki = Double(1 << 10)
    let units: [(String, Double)] = [("gib", gi), ("gi", gi), ("mib", mi), ("mi", mi), ("kib", ki), ("ki", ki),
                                     ("gb", 1e9), ("g", 1e9), ("mb", 1e6), ("m", 1e6), ("kb", 1e3), ("k", 1e3), ("b", 1)]
    let t = s.trimmingCharacters(in: .whitespaces).lowercased()
    for (suffix, scale) in units where t.hasSuffix(suffix) {
        if let v = Double(t.dropLast(suffix.count).trimmingCharacters(in: .whitespaces)), v > 0 { return Int(v * scale) }
    }
    if let v = Int(t), v > 0 { return v }
    throw ValidationError("--memory-budget: '\(s)' is not a byte count (e.g. 800M, 2G, 1.5Gi)")
}

struct Quantize: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Write a copy of a checkpoint with its matrices in q8_0 or q4_0 (see docs/QUANTIZED_FORMAT.md).")

    @Option(help: "Model directory to read.") var model: String
    @Option(help: "Block format: q8_0 or q4_0.") var to: String
    @Option(help: "Output directory (config and tokenizer files are copied).") var out: String
    @Flag(name: .customLong("quantize-embeddings"), help: "Quantize the embedding table (and a tied lm_head) too.") var quantizeEmbeddings = false
    @Flag(name: .customLong("keep-lm-head"), help: "Leave an untied lm_head in its stored precision.") var keepLMHead = false
    @Option(name: .customLong("shard-mb"), help: "Split the weights into files of at most this many MB.") var shardMB: Int = 2048

    func run() throws {
        let checkpoint = try Checkpoint(directory: URL(fileURLWithPath: model))
        let q = try Quantization(name: to, embeddings: quantizeEmbeddings, keepLMHead: keepLMHead)
        var progress = TerminalProgress("quantizing \(checkpoint.directory.lastPathComponent) to \(q)")
        let summary = try QuantizedCheckpoint.write(from: checkpoint, quantization: q, to: URL(fileURLWithPath: out),
                                                    maxShardBytes: shardMB << 20) { progress.update($0, $1) }
        for name in summary.keptPrecision { printNote("\(name): width is not a multiple of 32, kept in its stored precision") }
        print(String(format: "wrote %@: %d of %d tensors quantized to %@, %.1f MB -> %.1f MB in %@", out, summary.quantized, summary.tensors,
                     q.description, Double(summary.inputBytes) / 1e6, Double(summary.outputBytes) / 1e6, summary.files.joined(separator: ", ")))
    }
}

struct Accuracy: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Greedy-id agreement and KL(reference || ours) of next-token distributions, teacher-forced along a reference's prompts and greedy paths.",
        discussion: "The reference is a safetensors file with p{i}.input_ids, p{i}.greedy_ids and p{i}.greedy_step_logits per prompt (as Tests/Fixtures/*/reference.safetensors).")

    @Option(help: "Model directory.") var model: String
    @Option(help: "Reference file (default: MODEL/reference.safetensors).") var reference: String?
    @Option(help: "Comma-separated formats: stored (the checkpoint as is), q8_0, q4_0.") var formats: String = "stored,q8_0,q4_0"
    @Flag(name: .customLong("keep-lm-head"), help: "Leave an untied lm_head in its stored precision.") var keepLMHead = false
    @Option(help: "Compute threads.") var threads: Int = 1
    @Flag(help: "Print the rows as JSON lines too.") var json = false
    @OptionGroup var cluster: ClusterFlags

    func run() throws {
        let dir = URL(fileURLWithPath: model)
        let refs = try QuantAccuracy.Reference.load(reference.map { URL(fileURLWithPath: $0) } ?? dir.appendingPathComponent("reference.safetensors"))
        let bench = QuantAccuracy(directory: dir, references: refs, threads: threads)
        let enc = JSONEncoder()
        enc.outputFormatting = .sortedKeys
        if let spec = try cluster.spec() {
            // Across workers: the cost of the plan's sync format (--sync) on the same metric.
            let backend = try Cluster(spec: spec, checkpoint: try Checkpoint(directory: dir), transport: try ZMQTransport(),
                                      options: ClusterOptions(), logger: coordinatorLogger())
            defer { backend.shutdown() }
            let row = try bench.measure(backend, label: "stored, \(backend.plan.summary)")
            print(row.summary)
            if json { print(String(decoding: try enc.encode(row), as: UTF8.self)) }
            return
        }
        for f in formats.split(separator: ",").map(String.init) {
            let policy = f == "stored" ? WeightPolicy() : WeightPolicy(quantization: try Quantization(name: f, keepLMHead: keepLMHead))
            let row = try bench.measure(policy)
            print(row.summary)
            if json { print(String(decoding: try enc.encode(row), as: UTF8.self)) }
        }
    }
}
