import Foundation
import Runtime
import Testing

/// Scripts/launch-hosts.sh against hosts that exist: sshd servers in network namespaces
/// (netns-cluster.sh up --sshd), each its own address, ssh port and worker directory.
@Suite("multi-host launcher", .serialized)
struct LauncherTests {
    /// A process that exists and is not a zombie waiting to be reaped.
    static func alive(_ pid: Int32) -> Bool {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
              let close = stat.lastIndex(of: ")") else { return false }
        let state = stat[stat.index(close, offsetBy: 2)...].prefix(1)
        return state != "Z" && state != "X"
    }

    @Test(.enabled(if: Namespaces.available, "needs root and network namespaces (`ip netns add` failed here)"))
    func bringsUpChecksAndStopsWorkersOnTwoHosts() throws {
        try Repo.requireExecutables()
        let prompt = "Once upon a time"
        let reference = try localGeneration(prompt: prompt, maxTokens: 8)
        let work = FileManager.default.temporaryDirectory.appendingPathComponent("shoal-launch-\(getpid())-\(UInt32.random(in: 0 ... .max))")
        try FileManager.default.createDirectory(at: work, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: work) }
        let environment = ["SHOAL_NETNS_STATE": work.appendingPathComponent("netns").path]
        let name = Namespaces.uniqueName("ol")
        defer { _ = try? bash(Repo.netnsCluster, ["down", "--name", name], environment: environment) }
        let up = try bash(Repo.netnsCluster, ["up", "--name", name, "--hosts", "2", "--sshd", "--ssh-port", "2222"],
                          environment: environment, timeout: 60)
        try #require(up.succeeded, "\(up.transcript)")

        let hosts = work.appendingPathComponent("hosts.txt")
        try """
        # two hosts in namespaces; the second gets twice the slice
        root@10.77.0.11:2222 port=5601 threads=1 dir=\(work.path)/h1
        root@10.77.0.12:2222   port=5602 threads=1 weight=2 dir=\(work.path)/h2   # trailing comment

        """.write(to: hosts, atomically: true, encoding: .utf8)
        let clusterFile = work.appendingPathComponent("cluster.yaml")
        let key = work.appendingPathComponent("netns/\(name)/ssh/id_ed25519").path
        func launcher(_ command: String, _ extra: [String] = []) throws -> CommandResult {
            try bash(Repo.netnsCluster, ["exec", "--name", name, "c", "--", "bash", Repo.launcher.path, command, hosts.path,
                                         "--identity", key, "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
                                         "--cluster-out", clusterFile.path] + extra, environment: environment, timeout: 180)
        }

        // up: copy the binary, start, ping every worker, run a generation (slices streamed and cached).
        let started = try launcher("up", ["--binary", Repo.worker.path, "--coordinator", Repo.coordinator.path,
                                          "--check-model", Repo.tinyLlama.path, "--allreduce", "ring"])
        try #require(started.succeeded, "\(started.transcript)")
        #expect(started.stderr.contains("tcp://10.77.0.11:5601: ok") && started.stderr.contains("tcp://10.77.0.12:5602: ok"), "\(started.stderr)")
        #expect(started.stderr.contains("end-to-end check"), "\(started.stderr)")
        for (host, port) in [("h1", 5601), ("h2", 5602)] {
            #expect(FileManager.default.isExecutableFile(atPath: "\(work.path)/\(host)/bin/shoal-worker"))
            #expect(FileManager.default.fileExists(atPath: "\(work.path)/\(host)/log/worker-\(port).log"))
        }

        // The cluster file is one the coordinator reads, with the hosts' weights.
        let file = try ClusterFile.load(clusterFile)
        #expect(file.workers == ["tcp://10.77.0.11:5601", "tcp://10.77.0.12:5602"])
        #expect(file.weights == [1, 2])
        #expect(file.allReduce == "ring")

        let generated = try bash(Repo.netnsCluster, ["exec", "--name", name, "c", "--", Repo.coordinator.path, "generate",
                                                     "--cluster", clusterFile.path, "--model", Repo.tinyLlama.path, "--prompt", prompt,
                                                     "--max-tokens", "8", "--json"], environment: environment, timeout: 120)
        try #require(generated.succeeded, "\(generated.transcript)")
        #expect(try GenerationOutput.lastLine(of: generated.stdout).tokens == reference.tokens)

        let pids = try ["h1/run/worker-5601.pid", "h2/run/worker-5602.pid"].map { path -> Int32 in
            let text = try String(contentsOfFile: "\(work.path)/\(path)", encoding: .utf8)
            return try #require(Int32(text.trimmingCharacters(in: .whitespacesAndNewlines)), "pid file \(path): '\(text)'")
        }
        #expect(pids.allSatisfy(Self.alive))
        let status = try launcher("status")
        #expect(status.stdout.components(separatedBy: "running (pid").count == 3, "\(status.transcript)")

        // stop: processes gone, pid files removed; a second stop finds nothing to stop.
        let stopped = try launcher("stop")
        #expect(stopped.succeeded && stopped.stderr.components(separatedBy: ": stopped").count == 3, "\(stopped.transcript)")
        #expect(!pids.contains(where: Self.alive))
        #expect(!FileManager.default.fileExists(atPath: "\(work.path)/h1/run/worker-5601.pid"))
        let again = try launcher("stop")
        #expect(again.succeeded && again.stderr.components(separatedBy: "was not running").count == 3, "\(again.transcript)")
        let checked = try launcher("check", ["--no-check"])
        #expect(!checked.succeeded && checked.stderr.contains("does not answer"), "\(checked.transcript)")
    }

    @Test func refusesBadHostsFilesNamingTheLine() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("shoal-hosts-\(getpid())-\(UInt32.random(in: 0 ... .max))")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let cases: [(String, String)] = [
            ("a@h1 port=5601\nb@h2 port=http\n", ":2: bad port 'http'"),
            ("a@h1 weight=0\n", ":1: weight must be a positive number"),
            ("a@h1 speed=3\n", ":1: unknown field 'speed=3'"),
            ("a@h1:ssh\n", ":1: 'a@h1:ssh' is not user@host[:ssh-port]"),
            ("a@h1 port=5601\na@h1 port=5601\n", "two workers on h1:5601"),
            ("# nothing but a comment\n\n", "lists no hosts"),
        ]
        for (i, (text, message)) in cases.enumerated() {
            let file = dir.appendingPathComponent("hosts-\(i).txt")
            try text.write(to: file, atomically: true, encoding: .utf8)
            let r = try bash(Repo.launcher, ["status", file.path])
            #expect(!r.succeeded && r.stderr.contains(message), "\(text) -> \(r.transcript)")
        }
        let missing = try bash(Repo.launcher, ["up", dir.appendingPathComponent("none.txt").path])
        #expect(!missing.succeeded && missing.stderr.contains("no such hosts file"))
    }
}
