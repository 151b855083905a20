import Foundation
import Testing

/// Scripts/run-local-cluster.sh: the quick start's distributed run, workers on loopback.
@Suite("local cluster script")
struct LocalClusterTests {
    @Test func generatesAcrossLoopbackWorkersAndStopsThem() throws {
        try Repo.requireExecutables()
        let prompt = "The meaning of life is"
        let reference = try localGeneration(prompt: prompt, maxTokens: 8)
        // A port range of its own: other tests and developers' workers use 5601.
        let port = Int.random(in: 20000 ... 40000)
        let r = try bash(Repo.path("Scripts/run-local-cluster.sh"), [
            "--workers", "2", "--port", "\(port)", "--bin", Repo.products.path, "--",
            "sh", "-c", "shoal-coordinator generate --model \(Repo.tinyLlama.path) --prompt '\(prompt)' --max-tokens 8 --json --workers \"$SHOAL_WORKERS\"",
        ], timeout: 120)
        try #require(r.succeeded, "\(r.transcript)")
        #expect(r.stderr.contains("2 workers: tcp://127.0.0.1:\(port),tcp://127.0.0.1:\(port + 1)"))
        let output = try GenerationOutput.lastLine(of: r.stdout)
        #expect(output.backend.hasPrefix("tp=2 "))
        #expect(output.tokens == reference.tokens)
        // The workers are gone: their ports can be bound again.
        #expect(Namespaces.processes(mentioning: "tcp://127.0.0.1:\(port)").isEmpty)

        // A failing command's status comes back, and the workers are still stopped.
        let failing = try bash(Repo.path("Scripts/run-local-cluster.sh"), [
            "--workers", "1", "--port", "\(port + 2)", "--bin", Repo.products.path, "--", "sh", "-c", "exit 3",
        ], timeout: 60)
        #expect(failing.status == 3, "\(failing.transcript)")
        #expect(Namespaces.processes(mentioning: "tcp://127.0.0.1:\(port + 2)").isEmpty)
    }
}
