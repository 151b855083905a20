import ArgumentParser
import Foundation
import Kernels
import Runtime

struct BenchLocal: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench-local",
        abstract: "Single-node decode and prefill speed next to this machine's bandwidth and FMA limits.")

    @Option(help: "Model directory (e.g. one written by synth-model).") var model: String
    @Option(help: "Comma-separated thread counts.") var threads: String = "1,2"
    @Option(name: .customLong("prompt-len"), help: "Prompt tokens for the prefill measurement.") var promptLen: Int = 128
    @Option(help: "Tokens decoded per repeat.") var gen: Int = 16
    @Option(help: "Repeats (best is reported).") var `repeat`: Int = 3
    @Flag(help: "Print the rows as JSON lines too.") var json = false
    @OptionGroup var weights: WeightFlags

    func run() throws {
        let counts = try threads.split(separator: ",").map { s -> Int in
            guard let n = Int(s), n > 0 else { throw ValidationError("--threads: '\(s)' is not a positive integer") }
            return n
        }
        let bench = NodeBenchmark(directory: URL(fileURLWithPath: model), threads: counts, promptLength: promptLen,
                                  decodeTokens: gen, repeats: `repeat`, weights: try weights.policy())
        let rows = try bench.run { print($0) }
        if json {
            let enc = JSONEncoder()
            enc.outputFormatting = .sortedKeys
            for r in rows { print(String(decoding: try enc.encode(r), as: UTF8.self)) }
        }
    }
}

struct BenchKernels: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench-kernels",
        abstract: "Linear-layer kernels alone: decode matvec vs read bandwidth, prefill GEMM vs FMA peak, per weight type.")

    @Option(help: "Threads.") var threads: Int = 2
    @Option(help: "Weight types (F32,F16,BF16,Q8_0,Q4_0).") var types: String = "F32,F16,BF16,Q8_0,Q4_0"
    @Option(help: "Prompt tokens for the GEMM.") var tokens: Int = 128
    @Option(name: .customLong("tokens-list"), help: "Batched decode only: time one call per shape with each of these row counts (e.g. 1,2,4,8).")
    var tokensList: String?
    @Option(name: .customLong("column-slices"), help: "Decode reads only the first 1/N of each row's columns, in place (a TP rank's o_proj/down_proj slice).")
    var columnSlices: Int = 1

    func run() throws {
        let list = try types.split(separator: ",").map { try WeightType(name: String($0)) }
        let bench = KernelBenchmark(threads: threads)
        if let tokensList {
            let counts = try tokensList.split(separator: ",").map { s -> Int in
                guard let n = Int(s), n > 0 else { throw ValidationError("--tokens-list: '\(s)' is not a positive integer") }
                return n
            }
            _ = bench.decodeBatched(types: list, tokens: counts) { print($0) }
            return
        }
        guard columnSlices >= 1 else { throw ValidationError("--column-slices must be at least 1") }
        _ = bench.decode(types: list, columnSlices: columnSlices) { print($0) }
        _ = bench.prefill(types: list, tokens: tokens) { print($0) }
    }
}
