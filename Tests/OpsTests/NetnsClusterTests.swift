import Foundation
import Testing

/// Scripts/netns-cluster.sh for real: hosts as network namespaces behind a bridge, workers in
/// them, links shaped. Needs root; skipped (with this reason) where namespaces cannot be made.
@Suite("emulated network (network namespaces)", .serialized,
       .enabled(if: Namespaces.available, "needs root and network namespaces (`ip netns add` failed here)"))
struct NetnsClusterTests {
    static let prompt = "The quick brown fox"

    /// The compose file's topology — its worker count, port, threads, discovery name and the
    /// coordinator's helper — run across namespaces instead of containers, TP with each
    /// all-reduce, giving the in-process tokens.
    @Test func composeTopologyRunsAcrossNamespaces() throws {
        try Repo.requireExecutables()
        let compose = try ComposeTopology.load()
        let worker = try #require(compose.worker)
        let coordinator = try #require(compose.coordinator)
        let port = try #require(compose.workerPort)
        let threads = try #require(worker.option("--threads"))
        let n = worker.replicas
        let reference = try localGeneration(prompt: Self.prompt, maxTokens: 8)

        let name = Namespaces.uniqueName("oc")
        defer { _ = try? bash(Repo.netnsCluster, ["down", "--name", name]) }
        let clusterFile = FileManager.default.temporaryDirectory.appendingPathComponent("\(name)-cluster.yaml")
        defer { try? FileManager.default.removeItem(at: clusterFile) }
        // The coordinator container's environment, with the model where this checkout has it.
        var environment = coordinator.environment
        environment["SHOAL_MODEL"] = Repo.tinyLlama.path
        environment["SHOAL_CLUSTER_FILE"] = clusterFile.path
        environment["SHOAL_PROMPT"] = Self.prompt
        let r = try bash(Repo.netnsCluster, [
            "run", "--name", name, "--hosts", "\(n)", "--alias", try #require(environment["SHOAL_WORKER_HOST"]),
            "--port", "\(port)", "--threads", threads, "--model-dir", Repo.tinyLlama.deletingLastPathComponent().path,
            "--bin", Repo.products.path, "--",
            "sh", "-c", "for a in star ring mesh; do \(Repo.path("Cluster/shoal-cluster").path) generate --allreduce $a --max-tokens 8 --json || exit 1; done",
        ], environment: environment, timeout: 240)
        try #require(r.succeeded, "\(r.transcript)")
        let outputs = try GenerationOutput.all(in: r.stdout)
        #expect(outputs.count == 3)
        for (output, algorithm) in zip(outputs, ["star", "ring", "mesh"]) {
            #expect(output.backend.contains("tp=\(n) ") && output.backend.contains("allreduce=\(algorithm)"), "\(output.backend)")
            #expect(output.tokens == reference.tokens, "\(algorithm) across \(n) namespaces")
        }
        // Discovery found every worker behind the service name, in address order (rank 0 = hub).
        #expect(r.stderr.contains("shoal-cluster: \(n) workers: " + (1 ... n).map { "10.77.0.\(10 + $0)" }.joined(separator: " ")), "\(r.stderr)")
        #expect(try Namespaces.leftovers(name).isEmpty)
    }

    /// Delay and rate change a running cluster's links, and token time obeys the delay: a star
    /// all-reduce is two one-way trips, a token two all-reduces per layer plus the coordinator's
    /// own round trip.
    @Test func shapedLinksBoundTokenLatency() throws {
        try Repo.requireExecutables()
        let reference = try localGeneration(prompt: Self.prompt, maxTokens: 6)
        let name = Namespaces.uniqueName("od")
        defer { _ = try? bash(Repo.netnsCluster, ["down", "--name", name]) }
        let up = try bash(Repo.netnsCluster, ["up", "--name", name, "--hosts", "2"], timeout: 60)
        try #require(up.succeeded, "\(up.transcript)")
        let start = try bash(Repo.netnsCluster, ["start-workers", "--name", name, "--bin", Repo.products.path], timeout: 60)
        try #require(start.succeeded, "\(start.transcript)")

        func generate() throws -> GenerationOutput {
            let r = try bash(Repo.netnsCluster, [
                "exec", "--name", name, "c", "--", "sh", "-c",
                "shoal-coordinator generate --model \(Repo.tinyLlama.path) --prompt '\(Self.prompt)' --max-tokens 6 --json --allreduce star --workers \"$SHOAL_WORKERS\"",
            ], timeout: 120)
            guard r.succeeded else { throw OpsFailure("generation failed:\n\(r.transcript)") }
            return try GenerationOutput.lastLine(of: r.stdout)
        }
        #expect(try generate().tokens == reference.tokens)

        let delayMs = 2.0
        let shape = try bash(Repo.netnsCluster, ["shape", "--name", name, "--delay", "\(delayMs)ms", "--rate", "100mbit"], timeout: 60)
        try #require(shape.succeeded, "\(shape.transcript)")
        let status = try bash(Repo.netnsCluster, ["status", "--name", name])
        #expect(status.stdout.contains("delay=\(delayMs)ms") && status.stdout.contains("rate=100mbit"), "\(status.stdout)")
        let shaped = try generate()
        #expect(shaped.tokens == reference.tokens)
        let layers = 4  // tiny-llama
        let lowerBound = Double(2 * layers * 2 + 2) * delayMs
        #expect(shaped.tpotMs >= lowerBound, "time per token \(shaped.tpotMs) ms with \(delayMs) ms links; at least \(lowerBound) ms expected")

        // Presets load; unknown ones are refused by name.
        #expect(try bash(Repo.netnsCluster, ["shape", "--name", name, "--profile", "wifi"]).succeeded)
        let bad = try bash(Repo.netnsCluster, ["shape", "--name", name, "--profile", "moon"])
        #expect(!bad.succeeded && bad.stderr.contains("unknown profile 'moon'"), "\(bad.transcript)")
    }

    /// Whatever fails, `run` leaves no namespace, process or /etc/netns entry behind.
    @Test func runTearsDownAfterFailure() throws {
        try Repo.requireExecutables()
        let state = FileManager.default.temporaryDirectory.appendingPathComponent("shoal-netns-state-\(getpid())-\(UInt32.random(in: 0 ... .max))")
        defer { try? FileManager.default.removeItem(at: state) }
        let environment = ["SHOAL_NETNS_STATE": state.path]

        // The command fails: its status comes back, after teardown.
        let name = Namespaces.uniqueName("of")
        defer { _ = try? bash(Repo.netnsCluster, ["down", "--name", name], environment: environment) }
        let failing = try bash(Repo.netnsCluster, ["run", "--name", name, "--hosts", "2", "--delay", "1ms", "--bin", Repo.products.path,
                                                   "--", "sh", "-c", "exit 7"], environment: environment, timeout: 120)
        #expect(failing.status == 7, "\(failing.transcript)")
        #expect(try Namespaces.leftovers(name).isEmpty)
        // Workers (their cache is in the state directory) and delay lines (built there) are gone.
        #expect(Namespaces.processes(mentioning: state.path).isEmpty)
        #expect(!FileManager.default.fileExists(atPath: "/etc/netns/\(name)-c"))
        #expect(!FileManager.default.fileExists(atPath: state.appendingPathComponent(name).path))

        // Setup fails half-way (no worker binary there): same.
        let broken = Namespaces.uniqueName("ob")
        defer { _ = try? bash(Repo.netnsCluster, ["down", "--name", broken], environment: environment) }
        let r = try bash(Repo.netnsCluster, ["run", "--name", broken, "--hosts", "2", "--bin", "/nonexistent", "--", "true"],
                         environment: environment, timeout: 120)
        #expect(!r.succeeded && r.stderr.contains("/nonexistent/shoal-worker is not an executable"), "\(r.transcript)")
        #expect(try Namespaces.leftovers(broken).isEmpty)
    }

    /// The containers' entry point: NETEM shapes eth0 with tc netem (or fails saying why),
    /// and without NETEM it only runs the command.
    @Test func entrypointAppliesNetem() throws {
        let name = Namespaces.uniqueName("oe")
        defer { _ = try? bash(Repo.netnsCluster, ["down", "--name", name]) }
        let up = try bash(Repo.netnsCluster, ["up", "--name", name, "--hosts", "1"], timeout: 60)
        try #require(up.succeeded, "\(up.transcript)")
        let entrypoint = Repo.path("Cluster/entrypoint.sh").path

        let plain = try bash(Repo.netnsCluster, ["exec", "--name", name, "h1", "--", "env", "NETEM=", entrypoint, "echo", "ran"])
        #expect(plain.succeeded && plain.stdout == "ran\n", "\(plain.transcript)")

        let shaped = try bash(Repo.netnsCluster, ["exec", "--name", name, "h1", "--", "env", "NETEM=delay 7ms", entrypoint,
                                                  "tc", "qdisc", "show", "dev", "eth0"])
        let kernelHasNetem = up.stderr.contains("backend=netem")
        if kernelHasNetem {
            #expect(shaped.succeeded && shaped.stdout.contains("netem") && shaped.stdout.contains("delay 7ms"), "\(shaped.transcript)")
        } else {
            #expect(!shaped.succeeded && shaped.stderr.contains("sch_netem"), "\(shaped.transcript)")
        }
    }
}
