import ClusterPlan
import Foundation
import Model

/// A cluster as the user describes it (flags or a cluster file), before it is checked against
/// a model: worker addresses and the plan's knobs.
public struct ClusterSpec: Sendable, Equatable {
    public enum AllReduceChoice: Sendable, Equatable {
        case fixed(AllReduceAlgorithm)
        /// Picked after connecting, from measured link latency and bandwidth.
        case auto

        /// The algorithm when fixed; nil for `auto`.
        public var fixedAlgorithm: AllReduceAlgorithm? {
            if case .fixed(let a) = self { return a }
            return nil
        }

        /// The name `parseAllReduce` reads.
        public var name: String { fixedAlgorithm?.rawValue ?? "auto" }
    }

    public var workers: [String]
    public var tp: Int
    public var pp: Int
    public var split: [Double]?
    public var layers: String?
    public var allReduce: AllReduceChoice
    public var sync: SyncDType
    public var token: String

    public init(workers: [String], tp: Int? = nil, pp: Int = 1, split: [Double]? = nil, layers: String? = nil,
                allReduce: AllReduceChoice = .fixed(.star), sync: SyncDType = .f32, token: String = "") {
        self.workers = workers
        self.pp = pp
        self.tp = tp ?? max(1, workers.count / max(pp, 1))
        self.split = split
        self.layers = layers
        self.allReduce = allReduce
        self.sync = sync
        self.token = token
    }

    public static func parseAllReduce(_ s: String) throws -> AllReduceChoice {
        if s == "auto" { return .auto }
        guard let a = AllReduceAlgorithm(rawValue: s) else {
            throw RuntimeError.invalidPlan("--allreduce must be star, ring, mesh or auto, got '\(s)'")
        }
        return .fixed(a)
    }

    public static func parseSync(_ s: String) throws -> SyncDType {
        guard let d = SyncDType(rawValue: s) else { throw RuntimeError.invalidPlan("--sync must be f32, f16, bf16 or q8_0, got '\(s)'") }
        return d
    }

    public static func parseSplit(_ s: String) throws -> [Double] {
        try s.split(separator: ",").map {
            guard let v = Double($0), v > 0 else { throw RuntimeError.invalidPlan("--split: '\($0)' is not a positive number") }
            return v
        }
    }

    /// Starts from a cluster file; flags given on the command line override its fields.
    public init(file: ClusterFile) throws {
        self.init(workers: file.workers, tp: file.tp, pp: file.pp ?? 1, split: file.weights, layers: file.layers,
                  allReduce: try file.allReduce.map(Self.parseAllReduce) ?? .fixed(.star),
                  sync: try file.sync.map(Self.parseSync) ?? .f32, token: file.token ?? "")
    }

    /// The plan for `config` (with `auto` standing in as star until measured).
    public func plan(for config: ModelConfig) throws -> ClusterPlan {
        do {
            let ranges = try layers.map { try PipelineSplit.parse($0, layers: config.layerCount) }
            return try ClusterPlan(config: config, workers: workers, tp: tp, pp: pp, split: split, layers: ranges,
                                   allReduce: allReduce.fixedAlgorithm ?? .star, syncDType: sync)
        } catch let e as PlanError {
            throw RuntimeError.invalidPlan(e.description)
        }
    }
}
