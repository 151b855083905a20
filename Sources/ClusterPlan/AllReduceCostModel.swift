/// The all-reduce algorithms a TP group can use.
public enum AllReduceAlgorithm: String, CaseIterable, Codable, Sendable {
    /// Everyone sends to a hub (rank 0 of the group, a worker), which sums and broadcasts (TPI-LLM).
    case star
    /// Reduce-scatter then all-gather around a ring: bandwidth-optimal, 2(N-1) steps.
    case ring
    /// Everyone sends its partial to everyone and sums locally (distributed-llama): one hop.
    case mesh
}

/// t = hops x latency + bytes on the busiest link / bandwidth, per algorithm: the rule that
/// picks an algorithm for `--allreduce auto` from measured link latency and bandwidth.
public struct AllReduceCostModel: Sendable, Equatable {
    /// One-way link latency in seconds.
    public var latency: Double
    /// Link bandwidth in bytes per second.
    public var bandwidth: Double

    public init(latency: Double, bandwidth: Double) {
        self.latency = latency
        self.bandwidth = bandwidth
    }

    public static func hops(_ a: AllReduceAlgorithm, nodes n: Int) -> Int {
        guard n > 1 else { return 0 }
        switch a {
        case .star: return 2
        case .ring: return 2 * (n - 1)
        case .mesh: return 1
        }
    }

    /// Bytes crossing the busiest link for a vector of `bytes`.
    public static func busiestLinkBytes(_ a: AllReduceAlgorithm, nodes n: Int, bytes: Int) -> Double {
        guard n > 1 else { return 0 }
        let b = Double(bytes), m = Double(n - 1)
        switch a {
        case .star: return 2 * m * b
        case .ring: return 2 * m * b / Double(n)
        case .mesh: return m * b
        }
    }

    public func seconds(_ a: AllReduceAlgorithm, nodes n: Int, bytes: Int) -> Double {
        Double(Self.hops(a, nodes: n)) * latency + Self.busiestLinkBytes(a, nodes: n, bytes: bytes) / bandwidth
    }

    /// The cheapest algorithm (ties go to star, then ring, then mesh).
    public func best(nodes n: Int, bytes: Int) -> AllReduceAlgorithm {
        AllReduceAlgorithm.allCases.min { seconds($0, nodes: n, bytes: bytes) < seconds($1, nodes: n, bytes: bytes) }!
    }
}
