import Foundation
@_exported import TestSupport
import Testing

extension Repo {
    static var netnsCluster: URL { path("Scripts/netns-cluster.sh") }
    static var launcher: URL { path("Scripts/launch-hosts.sh") }
    static var tinyLlama: URL { path("Tests/Fixtures/tiny-llama") }
}

typealias OpsFailure = TestFailure

func bash(_ script: URL, _ arguments: [String], environment: [String: String] = [:], timeout: TimeInterval = 120) throws -> CommandResult {
    try run(URL(fileURLWithPath: "/bin/bash"), [script.path] + arguments, environment: environment, timeout: timeout)
}

/// The JSON object `generate --json` prints as its last line.
struct GenerationOutput {
    var tokens: [Int]
    var backend: String
    var tpotMs: Double
    var ttftMs: Double

    static func lastLine(of text: String) throws -> GenerationOutput {
        try all(in: text).last ?? { throw OpsFailure("no generation JSON in output:\n\(text)") }()
    }

    /// Every `generate --json` line in `text`, in order.
    static func all(in text: String) throws -> [GenerationOutput] {
        try text.split(separator: "\n").filter { $0.hasPrefix("{") && $0.contains("\"tokens\"") }.map { line in
            guard let object = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any],
                  let tokens = object["tokens"] as? [Int], let backend = object["backend"] as? String else {
                throw OpsFailure("unexpected generation JSON: \(line)")
            }
            return GenerationOutput(tokens: tokens, backend: backend, tpotMs: object["tpot_ms"] as? Double ?? 0,
                                    ttftMs: object["ttft_ms"] as? Double ?? 0)
        }
    }
}

/// The reference: the same generation in one process.
func localGeneration(prompt: String, maxTokens: Int) throws -> GenerationOutput {
    let r = try run(Repo.coordinator, ["generate", "--model", Repo.tinyLlama.path, "--prompt", prompt, "--max-tokens", "\(maxTokens)",
                                        "--json", "--threads", "1"])
    guard r.succeeded else { throw OpsFailure("local generation failed:\n\(r.transcript)") }
    return try GenerationOutput.lastLine(of: r.stdout)
}

/// Network namespaces need root (CAP_SYS_ADMIN + CAP_NET_ADMIN); CI runs as root, so the
/// namespace tests run there and skip only where a namespace cannot be made.
enum Namespaces {
    static let available: Bool = {
        let name = "shoal-probe-\(getpid())"
        guard let add = try? run(URL(fileURLWithPath: "/bin/sh"), ["-c", "ip netns add \(name)"], timeout: 20) else { return false }
        _ = try? run(URL(fileURLWithPath: "/bin/sh"), ["-c", "ip netns del \(name)"], timeout: 20)
        return add.succeeded
    }()

    /// A cluster name no other test (or test run) uses: namespaces are machine-wide.
    static func uniqueName(_ tag: String) -> String {
        "\(tag)\(getpid() % 100_000)\(UInt16.random(in: 0 ... .max))"
    }

    /// Namespaces of cluster `name` still present.
    static func leftovers(_ name: String) throws -> [String] {
        let r = try run(URL(fileURLWithPath: "/bin/sh"), ["-c", "ip netns list"], timeout: 20)
        return r.stdout.split(separator: "\n").map { String($0.split(separator: " ")[0]) }.filter { $0.hasPrefix("\(name)-") }
    }

    /// Processes whose command line mentions `needle` (a path unique to one cluster).
    static func processes(mentioning needle: String) -> [Int32] {
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
        return entries.compactMap(Int32.init).filter { pid in
            guard pid != getpid(), let data = FileManager.default.contents(atPath: "/proc/\(pid)/cmdline") else { return false }
            return String(decoding: data, as: UTF8.self).replacingOccurrences(of: "\0", with: " ").contains(needle)
        }
    }
}

/// `docker compose`'s variable interpolation for the forms the compose file uses:
/// `${VAR}`, `${VAR:-default}`, `${VAR-default}`, with `environment` standing in for the shell.
func composeInterpolate(_ s: String, environment: [String: String] = [:]) -> String {
    var out = ""
    var rest = Substring(s)
    while let start = rest.range(of: "${"), let end = rest[start.upperBound...].firstIndex(of: "}") {
        out += rest[..<start.lowerBound]
        let body = rest[start.upperBound ..< end]
        if let sep = body.range(of: ":-") {
            let value = environment[String(body[..<sep.lowerBound])] ?? ""
            out += value.isEmpty ? String(body[sep.upperBound...]) : value
        } else if let sep = body.range(of: "-") {
            out += environment[String(body[..<sep.lowerBound])] ?? String(body[sep.upperBound...])
        } else {
            out += environment[String(body)] ?? ""
        }
        rest = rest[rest.index(after: end)...]
    }
    return out + rest
}
