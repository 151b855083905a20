import ClusterPlan
import Foundation
import Logging
import Model
import Transport

/// All-reduce latency of star, ring and mesh among N workers for several vector sizes, next to
/// the raw ZeroMQ round trip between two of the same workers (the floor), all measured by the
/// workers themselves.
public struct AllReduceBenchmark {
    public struct Row: Codable, Sendable {
        public var nodes: Int
        public var bytes: Int
        public var algorithm: String
        public var p50_us: Double
        public var p90_us: Double
        /// Raw ZeroMQ round trip of the same bytes between rank 0 and rank 1.
        public var round_trip_p50_us: Double
        public var ratio_to_round_trip: Double
    }

    public var checkpoint: Checkpoint
    public var workers: [String]
    public var token: String
    public var iterations: Int
    public var logger: Logger

    public init(checkpoint: Checkpoint, workers: [String], token: String, iterations: Int, logger: Logger) {
        self.checkpoint = checkpoint
        self.workers = workers
        self.token = token
        self.iterations = iterations
        self.logger = logger
    }

    public func run(nodes: Int, sizes: [Int], algorithms: [AllReduceAlgorithm], sync: SyncDType, transport: any TransportFactory) throws -> [Row] {
        guard nodes >= 2, nodes <= workers.count else { throw RuntimeError.invalidPlan("--nodes \(nodes): need 2...\(workers.count)") }
        let spec = ClusterSpec(workers: Array(workers.prefix(nodes)), tp: nodes, pp: 1, sync: sync, token: token)
        let cluster = try Cluster(spec: spec, checkpoint: checkpoint, transport: transport, options: ClusterOptions(token: token), logger: logger)
        defer { cluster.shutdown() }
        let warmup = max(10, iterations / 10)
        var rows: [Row] = []
        for bytes in sizes {
            let elements = max(32, bytes / 4 / 32 * 32)
            let rtt = try cluster.benchmarkRoundTrip(rank: 1, bytes: elements * 4, iterations: iterations, warmup: warmup).map { Double($0) / 1000 }
            let floor = percentile(rtt, 0.5)
            for a in algorithms {
                let perRank = try cluster.benchmarkAllReduce(algorithm: a, elements: elements, iterations: iterations, warmup: warmup)
                // An all-reduce is done when its slowest rank is: per iteration, the max over ranks.
                let done = (0 ..< iterations).map { i in perRank.map { Double($0[i]) / 1000 }.max() ?? 0 }
                let p50 = percentile(done, 0.5)
                rows.append(Row(nodes: nodes, bytes: elements * 4, algorithm: a.rawValue, p50_us: p50, p90_us: percentile(done, 0.9),
                                round_trip_p50_us: floor, ratio_to_round_trip: floor > 0 ? p50 / floor : 0))
            }
        }
        return rows
    }
}
