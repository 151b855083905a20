import ClusterPlan
import Foundation
import Logging
import Model
import Transport

/// `shoal-coordinator bench`: token latency of cluster plans, with the split between compute and
/// communication per node, bytes on the wire and all-reduce latencies — every duration measured
/// by the process it belongs to on its own clock, never by comparing clocks across hosts.
public struct LatencyExperiment {
    public struct Plan: Sendable, CustomStringConvertible {
        public var nodes: Int
        public var tp: Int
        public var pp: Int
        /// A fixed algorithm, or `auto`: the cluster picks one from its measured links (the row
        /// names the pick, e.g. `auto:mesh`).
        public var allReduce: ClusterSpec.AllReduceChoice
        public var sync: SyncDType
        public var description: String { "nodes=\(nodes) tp=\(tp) pp=\(pp) allreduce=\(allReduce.name) sync=\(sync.rawValue)" }

        public init(nodes: Int, tp: Int, pp: Int, allReduce: ClusterSpec.AllReduceChoice, sync: SyncDType) {
            (self.nodes, self.tp, self.pp, self.allReduce, self.sync) = (nodes, tp, pp, allReduce, sync)
        }
    }

    public struct NodeFigures: Codable, Sendable {
        public var address: String
        public var stage: Int
        public var rank: Int
        public var compute_ms_per_step: Double
        public var comm_ms_per_step: Double
        public var bytes_sent_per_step: Double
        public var bytes_received_per_step: Double
        public var allreduce_us_p50: Double
    }

    public struct Row: Codable, Sendable {
        public var plan: String
        public var nodes: Int
        public var tp: Int
        public var pp: Int
        public var allreduce: String
        public var sync: String
        public var prompt_len: Int
        public var gen: Int
        public var `repeat`: Int
        public var sequences: Int
        public var micro_batches: Int
        public var ttft_ms_p50: Double
        public var tpot_ms_p50: Double
        public var tpot_ms_p90: Double
        public var tokens_per_s: Double
        public var compute_ms_per_token: Double
        public var comm_ms_per_token: Double
        public var allreduce_us_p50: Double
        public var allreduce_us_p90: Double
        public var bytes_per_token_per_node: Double
        public var bytes_per_token_analytic: Double
        public var per_node: [NodeFigures]

        public static let csvColumns = ["plan", "nodes", "tp", "pp", "allreduce", "sync", "prompt_len", "gen", "repeat", "sequences", "micro_batches",
                                        "ttft_ms_p50", "tpot_ms_p50", "tpot_ms_p90", "tokens_per_s", "compute_ms_per_token",
                                        "comm_ms_per_token", "allreduce_us_p50", "allreduce_us_p90", "bytes_per_token_per_node",
                                        "bytes_per_token_analytic"]

        public var csvLine: String {
            let f = { (x: Double) in String(format: "%.4f", x) }
            return [plan, "\(nodes)", "\(tp)", "\(pp)", allreduce, sync, "\(prompt_len)", "\(gen)", "\(`repeat`)", "\(sequences)", "\(micro_batches)",
                    f(ttft_ms_p50), f(tpot_ms_p50), f(tpot_ms_p90), f(tokens_per_s), f(compute_ms_per_token), f(comm_ms_per_token),
                    f(allreduce_us_p50), f(allreduce_us_p90), f(bytes_per_token_per_node), f(bytes_per_token_analytic)]
                .joined(separator: ",")
        }
    }

    public var checkpoint: Checkpoint
    public var workers: [String]
    public var token: String
    public var promptLength: Int
    public var generate: Int
    public var repeats: Int
    public var sequences: Int
    /// Groups the sequences are split into, each a step of its own in flight (stages overlap);
    /// 1 runs all sequences as one batch (weights read once per step for all of them).
    public var microBatches: Int
    public var logger: Logger
    /// How workers hold their weights (`--quantize`, `--memory-window`, ...).
    public var weights = WeightPolicy()

    public init(checkpoint: Checkpoint, workers: [String], token: String, promptLength: Int, generate: Int, repeats: Int,
                sequences: Int, microBatches: Int? = nil, logger: Logger) {
        self.checkpoint = checkpoint
        self.workers = workers
        self.token = token
        self.promptLength = promptLength
        self.generate = generate
        self.repeats = repeats
        self.sequences = sequences
        self.microBatches = microBatches ?? sequences
        self.logger = logger
    }

    /// Every combination of the lists (tp defaults to nodes / pp; combinations that don't fit are skipped).
    public static func sweep(nodes: [Int], tp: [Int]?, pp: [Int], allReduce: [ClusterSpec.AllReduceChoice], sync: [SyncDType]) -> [Plan] {
        var plans: [Plan] = []
        for n in nodes {
            for p in pp {
                for t in tp ?? [n / max(p, 1)] where t >= 1 && t * p == n {
                    // The algorithm only matters with a TP group.
                    for a in t > 1 ? allReduce : [allReduce.first ?? .fixed(.star)] {
                        for s in t > 1 ? sync : [sync.first ?? .f32] {
                            plans.append(Plan(nodes: n, tp: t, pp: p, allReduce: a, sync: s))
                        }
                    }
                }
            }
        }
        return plans
    }

    public func run(_ plan: Plan, transport: any TransportFactory) throws -> Row {
        guard plan.nodes <= workers.count else {
            throw RuntimeError.invalidPlan("plan \(plan) needs \(plan.nodes) workers, \(workers.count) given")
        }
        let spec = ClusterSpec(workers: Array(workers.prefix(plan.nodes)), tp: plan.tp, pp: plan.pp,
                               allReduce: plan.allReduce, sync: plan.sync, token: token)
        let cluster = try Cluster(spec: spec, checkpoint: checkpoint, transport: transport,
                                  options: ClusterOptions(token: token, weights: weights, contextTokens: promptLength + generate), logger: logger)
        defer { cluster.shutdown() }
        let config = checkpoint.config
        let generator = Generator(backend: cluster, eos: [])
        func requests(seed: UInt64) -> [GenerationRequest] {
            var rng = SeededGenerator(seed: seed)
            return (0 ..< sequences).map { _ in
                GenerationRequest(promptTokens: (0 ..< promptLength).map { _ in Int(rng.next() % UInt64(config.vocabSize)) },
                                  maxTokens: generate)
            }
        }
        // One warm-up request: first-touch page faults and connection setup stay out of the figures.
        cluster.beginRequest()
        _ = try generator.run(requests(seed: 99), microBatches: microBatches)
        cluster.clearRecords()

        var ttft: [Double] = []
        var tpot: [Double] = []
        var decodeWall = 0.0
        var decodeTokens = 0
        for r in 0 ..< repeats {
            cluster.beginRequest()
            let outs = try generator.run(requests(seed: UInt64(r)), microBatches: microBatches)
            for o in outs {
                ttft.append(o.ttftMs)
                for (a, b) in zip(o.tokenTimesMs, o.tokenTimesMs.dropFirst()) { tpot.append(b - a) }
            }
            let first = outs.map { $0.tokenTimesMs.first ?? 0 }.max() ?? 0
            let last = outs.map { $0.tokenTimesMs.last ?? 0 }.max() ?? 0
            decodeWall += (last - first) / 1000
            decodeTokens += outs.reduce(0) { $0 + max(0, $1.tokens.count - 1) }
        }
        // Decode steps only (one row per sequence): the per-token figures.
        let decode = cluster.records.filter { $0.rows == $0.sequences }
        let tokensInDecode = Double(decode.reduce(0) { $0 + $1.rows })
        var perNode: [NodeFigures] = []
        var allReduces: [Double] = []
        for (i, node) in cluster.plan.nodes.enumerated() {
            let stats = decode.compactMap { $0.workers.first { $0.worker == i } }
            let n = Double(max(stats.count, 1))
            let ar = stats.flatMap(\.allReduceNs).map { Double($0) / 1000 }
            allReduces += ar
            perNode.append(NodeFigures(
                address: node.address, stage: node.stage, rank: node.rank,
                compute_ms_per_step: stats.reduce(0) { $0 + Double($1.computeNs) } / n / 1e6,
                comm_ms_per_step: stats.reduce(0) { $0 + Double($1.commNs) } / n / 1e6,
                bytes_sent_per_step: stats.reduce(0) { $0 + Double($1.bytesSent) } / n,
                bytes_received_per_step: stats.reduce(0) { $0 + Double($1.bytesReceived) } / n,
                allreduce_us_p50: percentile(ar, 0.5)))
        }
        let steps = Double(max(decode.count, 1))
        let perToken = Double(max(tokensInDecode, 1)) / steps  // rows per decode step
        // A step's critical path: each stage's slowest rank, summed over stages.
        var compute = 0.0, comm = 0.0
        for s in 0 ..< plan.pp {
            let stage = perNode.filter { $0.stage == s }
            compute += stage.map(\.compute_ms_per_step).max() ?? 0
            comm += stage.map(\.comm_ms_per_step).max() ?? 0
        }
        let bytesPerToken = (perNode.map { $0.bytes_sent_per_step + $0.bytes_received_per_step }.max() ?? 0) / perToken
        let algorithm = cluster.plan.allReduce
        let allreduce = plan.allReduce == .auto ? "auto:\(algorithm.rawValue)" : algorithm.rawValue
        return Row(plan: plan.description, nodes: plan.nodes, tp: plan.tp, pp: plan.pp, allreduce: allreduce,
                   sync: plan.sync.rawValue, prompt_len: promptLength, gen: generate, repeat: repeats, sequences: sequences, micro_batches: microBatches,
                   ttft_ms_p50: percentile(ttft, 0.5), tpot_ms_p50: percentile(tpot, 0.5), tpot_ms_p90: percentile(tpot, 0.9),
                   tokens_per_s: decodeWall > 0 ? Double(decodeTokens) / decodeWall : 0,
                   compute_ms_per_token: compute / perToken, comm_ms_per_token: comm / perToken,
                   allreduce_us_p50: percentile(allReduces, 0.5), allreduce_us_p90: percentile(allReduces, 0.9),
                   bytes_per_token_per_node: bytesPerToken,
                   bytes_per_token_analytic: Self.analyticBytesPerToken(config: config, plan: plan, algorithm: algorithm),
                   per_node: perNode)
    }

    /// Bytes one token puts on the busiest worker's links to other workers (sent + received),
    /// from the plan's definition: per layer two all-reduces of a hidden vector in the sync dtype,
    /// plus the f32 hidden state a stage boundary passes on (received from the stage before,
    /// sent to the one after). Frame headers and traffic with the coordinator are not counted.
    /// `algorithm` is the one the cluster ran (what `auto` picked); by default the plan's own.
    public static func analyticBytesPerToken(config: ModelConfig, plan: Plan, algorithm: AllReduceAlgorithm? = nil) -> Double {
        let n = plan.tp
        let v = Double(SyncCodec(plan.sync).byteCount(config.hiddenSize))
        let layersPerStage = Double(config.layerCount) / Double(plan.pp)
        let perReduce: Double
        switch algorithm ?? plan.allReduce.fixedAlgorithm ?? .star {
        case _ where n == 1: perReduce = 0
        case .star: perReduce = 2 * Double(n - 1) * v  // the hub receives N-1 partials and sends N-1 sums
        case .ring: perReduce = 2 * 2 * Double(n - 1) / Double(n) * v  // sent + received per rank
        case .mesh: perReduce = 2 * Double(n - 1) * v  // N-1 out, N-1 in per rank
        }
        let boundaries = Double(min(plan.pp - 1, 2))  // a middle stage receives and sends
        return 2 * layersPerStage * perReduce + boundaries * Double(config.hiddenSize * 4)
    }
}

func percentile(_ values: [Double], _ q: Double) -> Double {
    guard !values.isEmpty else { return 0 }
    let sorted = values.sorted()
    let index = min(sorted.count - 1, max(0, Int((Double(sorted.count - 1) * q).rounded())))
    return sorted[index]
}
