import ArgumentParser
import ClusterPlan
import Foundation
import Model
import Runtime
import Transport

func parseList<T>(_ s: String, _ name: String, _ parse: (String) throws -> T?) throws -> [T] {
    try s.split(separator: ",").map {
        guard let v = try parse(String($0).trimmingCharacters(in: .whitespaces)) else {
            throw ValidationError("--\(name): '\($0)' is not valid")
        }
        return v
    }
}

func writeOutput(_ path: String?, csvHeader: [String], csvLines: [String], json: Data) throws {
    guard let path else { return }
    if path.hasSuffix(".json") {
        try json.write(to: URL(fileURLWithPath: path))
    } else {
        try ([csvHeader.joined(separator: ",")] + csvLines).joined(separator: "\n").appending("\n")
            .write(toFile: path, atomically: true, encoding: .utf8)
    }
    FileHandle.standardError.write(Data("wrote \(path)\n".utf8))
}

struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Latency experiments across workers: TTFT, time per token, compute/communication split, bytes, all-reduce latency.",
        discussion: "Comma-separated lists sweep every combination, e.g. --nodes 2,3,4 --allreduce star,ring,mesh.")

    @Option(help: "Model directory.") var model: String
    @Option(help: "Comma-separated worker addresses (stage-major).") var workers: String?
    @Option(help: "Cluster file (YAML) with the workers.") var cluster: String?
    @Option(help: "Worker counts to use (the first N workers); default: all.") var nodes: String?
    @Option(help: "TP sizes (default: nodes / pp).") var tp: String?
    @Option(help: "Pipeline stage counts.") var pp: String = "1"
    @Option(help: "All-reduce algorithms: star, ring, mesh, auto (picked from measured links; the row says which).") var allreduce: String = "star"
    @Option(help: "All-reduce wire formats.") var sync: String = "f32"
    @Option(name: .customLong("prompt-len"), help: "Prompt tokens.") var promptLen: Int = 32
    @Option(help: "Tokens generated per sequence.") var gen: Int = 32
    @Option(help: "Repeats per plan.") var `repeat`: Int = 3
    @Option(help: "Sequences generated together.") var sequences: Int = 1
    @Option(name: .customLong("micro-batches"), help: "Steps in flight: the sequences are split into this many micro-batches (default: one per sequence, so pipeline stages overlap; 1 batches them all).")
    var microBatches: Int?
    @Option(help: "Cluster token (default: $SHOAL_TOKEN).") var token: String?
    @Option(help: "Write results to FILE.csv or FILE.json.") var out: String?
    @OptionGroup var weights: WeightFlags

    func run() throws {
        var addresses = workers?.split(separator: ",").map(String.init) ?? []
        var fileToken: String?
        if let cluster {
            let file = try ClusterFile.load(URL(fileURLWithPath: cluster))
            addresses = file.workers
            fileToken = file.token
        }
        guard !addresses.isEmpty else { throw ValidationError("bench needs --workers or --cluster") }
        let checkpoint = try Checkpoint(directory: URL(fileURLWithPath: model))
        let plans = LatencyExperiment.sweep(
            nodes: try nodes.map { try parseList($0, "nodes") { Int($0) } } ?? [addresses.count],
            tp: try tp.map { try parseList($0, "tp") { Int($0) } },
            pp: try parseList(pp, "pp") { Int($0) },
            allReduce: try parseList(allreduce, "allreduce") { try? ClusterSpec.parseAllReduce($0) },
            sync: try parseList(sync, "sync") { SyncDType(rawValue: $0) })
        guard !plans.isEmpty else { throw ValidationError("no plan fits: check --nodes, --tp and --pp") }
        var experiment = LatencyExperiment(
            checkpoint: checkpoint, workers: addresses, token: token ?? ProcessInfo.processInfo.environment["SHOAL_TOKEN"] ?? fileToken ?? "",
            promptLength: promptLen, generate: gen, repeats: `repeat`, sequences: sequences, microBatches: microBatches, logger: coordinatorLogger())
        experiment.weights = try weights.policy()
        let transport = try ZMQTransport()
        var rows: [LatencyExperiment.Row] = []
        print(LatencyExperiment.Row.csvColumns.joined(separator: ","))
        for plan in plans {
            let row = try experiment.run(plan, transport: transport)
            rows.append(row)
            print(row.csvLine)
            for n in row.per_node {
                FileHandle.standardError.write(Data(String(format: "  %@ stage %d rank %d: compute %.2f ms, comm %.2f ms, sent %.0f B, received %.0f B per step, all-reduce p50 %.0f us\n",
                                                           n.address, n.stage, n.rank, n.compute_ms_per_step, n.comm_ms_per_step,
                                                           n.bytes_sent_per_step, n.bytes_received_per_step, n.allreduce_us_p50).utf8))
            }
        }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        try writeOutput(out, csvHeader: LatencyExperiment.Row.csvColumns, csvLines: rows.map(\.csvLine), json: try encoder.encode(rows))
    }
}

struct BenchAllReduce: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench-allreduce",
        abstract: "All-reduce latency (star, ring, mesh) among N workers vs the raw ZeroMQ round trip.")

    @Option(help: "Model directory (any model: only its plan is used to connect the workers).") var model: String
    @Option(help: "Comma-separated worker addresses.") var workers: String
    @Option(help: "Group sizes.") var nodes: String = "2"
    @Option(help: "Vector sizes in bytes (f32).") var sizes: String = "2048,8192,16384,65536"
    @Option(help: "Algorithms.") var allreduce: String = "star,ring,mesh"
    @Option(help: "Wire format of partials.") var sync: String = "f32"
    @Option(help: "Timed iterations per measurement.") var iterations: Int = 300
    @Option(help: "Cluster token (default: $SHOAL_TOKEN).") var token: String?
    @Option(help: "Write results to FILE.csv or FILE.json.") var out: String?

    func run() throws {
        let bench = AllReduceBenchmark(checkpoint: try Checkpoint(directory: URL(fileURLWithPath: model)),
                                       workers: workers.split(separator: ",").map(String.init),
                                       token: token ?? ProcessInfo.processInfo.environment["SHOAL_TOKEN"] ?? "",
                                       iterations: iterations, logger: coordinatorLogger())
        let transport = try ZMQTransport()
        let algorithms = try parseList(allreduce, "allreduce") { AllReduceAlgorithm(rawValue: $0) }
        guard let syncType = SyncDType(rawValue: sync) else { throw ValidationError("--sync: unknown format \(sync)") }
        var rows: [AllReduceBenchmark.Row] = []
        let header = ["nodes", "bytes", "algorithm", "p50_us", "p90_us", "round_trip_p50_us", "ratio_to_round_trip"]
        print(header.joined(separator: ","))
        var lines: [String] = []
        let nodeCounts = try parseList(nodes, "nodes") { Int($0) }
        let sizeList = try parseList(sizes, "sizes") { Int($0) }
        for n in nodeCounts {
            for r in try bench.run(nodes: n, sizes: sizeList, algorithms: algorithms, sync: syncType, transport: transport) {
                rows.append(r)
                let line = String(format: "%d,%d,%@,%.1f,%.1f,%.1f,%.3f", r.nodes, r.bytes, r.algorithm, r.p50_us, r.p90_us, r.round_trip_p50_us, r.ratio_to_round_trip)
                lines.append(line)
                print(line)
            }
        }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        try writeOutput(out, csvHeader: header, csvLines: lines, json: try encoder.encode(rows))
    }
}

struct Ping: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Handshake with workers and show what they report (a health check).")

    @Option(help: "Comma-separated worker addresses.") var workers: String
    @Option(help: "Cluster token (default: $SHOAL_TOKEN).") var token: String?
    @Option(help: "Seconds to wait for each worker.") var timeout: Double = 5

    func run() throws {
        let transport = try ZMQTransport()
        var failures = 0
        for address in workers.split(separator: ",").map(String.init) {
            let link = try transport.connect(address, identity: "ping-\(getpid())-\(UInt32.random(in: 0 ... .max))")
            defer {
                try? link.send(Envelope(.goodbye(.init())))
                link.close()
            }
            do {
                let w = try handshake(link, token: token ?? ProcessInfo.processInfo.environment["SHOAL_TOKEN"] ?? "", name: "ping",
                                      deadline: .now + .milliseconds(Int(timeout * 1000)))
                print("\(address): ok (\(w.hostname), \(w.threads) threads, \(w.isa), \(w.memoryBytes / 1_000_000) MB)")
            } catch {
                failures += 1
                print("\(address): \(error)")
            }
        }
        if failures > 0 { throw ExitCode(1) }
    }
}
