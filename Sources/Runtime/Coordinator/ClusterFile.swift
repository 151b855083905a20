import ClusterPlan
import Foundation
import Yams

/// A cluster described in YAML (`--cluster FILE`), the same plan the command-line flags give:
///
///     workers:                      # stage-major: stage s is workers[s*tp ..< (s+1)*tp]
///       - tcp://10.0.0.11:5601
///       - address: tcp://10.0.0.12:5601
///         weight: 2                 # TP split weight (default 1)
///     tp: 2
///     pp: 1
///     allreduce: star               # star | ring | mesh | auto
///     sync: f32                     # f32 | f16 | bf16 | q8_0
///     layers: "0-10,11-21"          # optional PP ranges (inclusive)
///     token: ${SHOAL_TOKEN}         # optional; ${VAR} is read from the environment
public struct ClusterFile: Equatable, Sendable {
    public var workers: [String]
    public var weights: [Double]?
    public var tp: Int?
    public var pp: Int?
    public var allReduce: String?
    public var sync: String?
    public var layers: String?
    public var token: String?

    public init(workers: [String], weights: [Double]? = nil, tp: Int? = nil, pp: Int? = nil, allReduce: String? = nil,
                sync: String? = nil, layers: String? = nil, token: String? = nil) {
        self.workers = workers
        self.weights = weights
        self.tp = tp
        self.pp = pp
        self.allReduce = allReduce
        self.sync = sync
        self.layers = layers
        self.token = token
    }

    public static func load(_ url: URL) throws -> ClusterFile {
        guard let text = try? String(contentsOf: url, encoding: .utf8) else {
            throw RuntimeError.invalidPlan("\(url.path): cannot read the cluster file")
        }
        return try parse(text, source: url.path)
    }

    public static func parse(_ text: String, source: String = "cluster file") throws -> ClusterFile {
        let node: Any?
        do { node = try Yams.load(yaml: text) } catch {
            throw RuntimeError.invalidPlan("\(source): not valid YAML: \(error)")
        }
        guard let root = node as? [String: Any] else { throw RuntimeError.invalidPlan("\(source): expected a mapping with 'workers'") }
        let known: Set<String> = ["workers", "tp", "pp", "allreduce", "sync", "layers", "token"]
        if let unknown = root.keys.first(where: { !known.contains($0) }) {
            throw RuntimeError.invalidPlan("\(source): unknown field '\(unknown)' (fields: \(known.sorted().joined(separator: ", ")))")
        }
        guard let list = root["workers"] as? [Any], !list.isEmpty else {
            throw RuntimeError.invalidPlan("\(source): 'workers' must be a non-empty list of addresses")
        }
        var workers: [String] = []
        var weights: [Double] = []
        var anyWeight = false
        for (i, entry) in list.enumerated() {
            if let address = entry as? String {
                workers.append(address)
                weights.append(1)
            } else if let map = entry as? [String: Any], let address = map["address"] as? String {
                workers.append(address)
                if let w = map["weight"] {
                    guard let value = (w as? Double) ?? (w as? Int).map(Double.init), value > 0 else {
                        throw RuntimeError.invalidPlan("\(source): workers[\(i)].weight must be a positive number")
                    }
                    weights.append(value)
                    anyWeight = true
                } else {
                    weights.append(1)
                }
            } else {
                throw RuntimeError.invalidPlan("\(source): workers[\(i)] must be an address or {address, weight}")
            }
        }
        func int(_ key: String) throws -> Int? {
            guard let v = root[key] else { return nil }
            guard let i = v as? Int else { throw RuntimeError.invalidPlan("\(source): '\(key)' must be an integer") }
            return i
        }
        func string(_ key: String) throws -> String? {
            guard let v = root[key] else { return nil }
            guard let s = v as? String ?? (v as? CustomStringConvertible)?.description else {
                throw RuntimeError.invalidPlan("\(source): '\(key)' must be a string")
            }
            return expandEnvironment(s)
        }
        return ClusterFile(workers: workers.map(expandEnvironment), weights: anyWeight ? weights : nil, tp: try int("tp"),
                           pp: try int("pp"), allReduce: try string("allreduce"), sync: try string("sync"),
                           layers: try string("layers"), token: try string("token"))
    }

    /// Replaces ${VAR} with the environment's value (empty when unset).
    static func expandEnvironment(_ s: String) -> String {
        var out = ""
        var rest = Substring(s)
        while let start = rest.range(of: "${"), let end = rest[start.upperBound...].firstIndex(of: "}") {
            out += rest[..<start.lowerBound]
            let name = String(rest[start.upperBound ..< end])
            out += ProcessInfo.processInfo.environment[name] ?? ""
            rest = rest[rest.index(after: end)...]
        }
        return out + rest
    }

    /// The YAML for a list of workers (what the multi-host launcher writes).
    public func yaml() -> String {
        var lines = ["workers:"]
        for (i, w) in workers.enumerated() {
            if let weights, weights[i] != 1 {
                lines.append("  - address: \(w)")
                lines.append("    weight: \(weights[i])")
            } else {
                lines.append("  - \(w)")
            }
        }
        if let tp { lines.append("tp: \(tp)") }
        if let pp { lines.append("pp: \(pp)") }
        if let allReduce { lines.append("allreduce: \(allReduce)") }
        if let sync { lines.append("sync: \(sync)") }
        if let layers { lines.append("layers: \"\(layers)\"") }
        if let token { lines.append("token: \(token)") }
        return lines.joined(separator: "\n") + "\n"
    }
}
