import ClusterPlan
import Foundation
import Logging
import Model
import Runtime
import Testing
import Transport
import WireProtocol

/// Workers that die, hang, can't be reached, are busy, or are spoken to wrongly: the coordinator
/// fails fast with the worker's address, and surviving workers keep serving.
@Suite(.serialized)
struct FailureTests {
    static let logger: Logger = {
        var l = Logger(label: "test")
        l.logLevel = .critical
        return l
    }()

    /// Starts `generate` across two workers, hits worker 2 with `signal` once text streams, and
    /// checks the coordinator exits non-zero within 15 s naming worker 2.
    func coordinatorFailsFast(when signal: Int32) throws {
        let workers = try (0 ..< 2).map { _ in try WorkerProcess() }
        defer { stopAll(workers) }
        let victim = workers[1]
        var signalled: Date?
        let result = try runCommand(Paths.coordinator, [
            "generate", "--model", Paths.model("tiny-llama").path, "--prompt", "The future of distributed inference",
            "--max-tokens", "480", "--workers", workers.map(\.address).joined(separator: ","),
        ], timeout: 60) { process, stdout in
            // Wait for streamed text: the request is mid-generation.
            let deadline = Date().addingTimeInterval(30)
            while stdout.text.count < 20, process.isRunning, Date() < deadline { Thread.sleep(forTimeInterval: 0.005) }
            victim.kill(signal)
            signalled = Date()
        }
        #expect(result.status != 0, "the coordinator must fail when a worker is lost")
        let failedAfter = Date().timeIntervalSince(signalled ?? Date())
        #expect(failedAfter < 15, "coordinator took \(failedAfter) s to notice")
        #expect(result.stderr.contains(victim.address), "error must name the lost worker: \(result.stderr)")
        if signal == SIGSTOP { victim.kill(SIGCONT) }

        // The survivor serves the next coordinator at once (TP = 1 on it alone).
        let again = try runCommand(Paths.coordinator, [
            "generate", "--model", Paths.model("tiny-llama").path, "--prompt", "You will be", "--max-tokens", "8", "--json",
            "--workers", workers[0].address,
        ], timeout: 60)
        #expect(again.status == 0, "surviving worker unusable: \(again.stderr)")
    }

    @Test func killedWorkerFailsTheRequestWithinFifteenSeconds() throws {
        try coordinatorFailsFast(when: SIGKILL)
    }

    @Test func hungWorkerFailsTheRequestWithinFifteenSeconds() throws {
        try coordinatorFailsFast(when: SIGSTOP)
    }

    @Test func killedCoordinatorFreesItsWorkersWithinSeconds() throws {
        let worker = try WorkerProcess()
        defer { worker.stop() }
        _ = try? runCommand(Paths.coordinator, [
            "generate", "--model", Paths.model("tiny-llama").path, "--prompt", "The future", "--max-tokens", "480",
            "--workers", worker.address,
        ], timeout: 60) { process, stdout in
            let deadline = Date().addingTimeInterval(30)
            while stdout.text.count < 10, process.isRunning, Date() < deadline { Thread.sleep(forTimeInterval: 0.005) }
            kill(process.processIdentifier, SIGKILL)
        }
        // The worker learns from heartbeats that its coordinator is gone; a new one is served, not refused as busy.
        var served = false
        let deadline = Date().addingTimeInterval(15)
        while !served, Date() < deadline {
            let r = try runCommand(Paths.coordinator, ["generate", "--model", Paths.model("tiny-llama").path, "--prompt", "x",
                                                        "--max-tokens", "2", "--workers", worker.address], timeout: 30)
            served = r.status == 0
            if !served { Thread.sleep(forTimeInterval: 0.5) }
        }
        #expect(served, "worker still busy with a dead coordinator: \(worker.log.text.suffix(500))")
    }

    @Test func unreachableWorkerIsNamed() throws {
        let result = try runCommand(Paths.coordinator, [
            "generate", "--model", Paths.model("tiny-llama").path, "--prompt", "x", "--max-tokens", "2",
            "--workers", "tcp://127.0.0.1:9",
        ], timeout: 30)
        #expect(result.status != 0 && result.stderr.contains("tcp://127.0.0.1:9"), "\(result.stderr)")
        #expect(result.seconds < 15)
    }

    @Test func secondCoordinatorGetsBusyAndTokensAreChecked() throws {
        let worker = try WorkerProcess(arguments: ["--token", "s3cret"])
        defer { worker.stop() }
        let checkpoint = try Checkpoint(directory: Paths.model("tiny-llama"))
        let transport = try ZMQTransport()
        let spec = ClusterSpec(workers: [worker.address], token: "s3cret")
        #expect { try Cluster(spec: ClusterSpec(workers: [worker.address], token: "wrong"), checkpoint: checkpoint, transport: transport,
                              options: ClusterOptions(), logger: Self.logger) } throws: { "\($0)".contains("token") && "\($0)".contains(worker.address) }
        let first = try Cluster(spec: spec, checkpoint: checkpoint, transport: transport, options: ClusterOptions(), logger: Self.logger)
        let impatient = ClusterOptions(connectTimeout: .seconds(1))
        #expect { try Cluster(spec: spec, checkpoint: checkpoint, transport: transport, options: impatient, logger: Self.logger) }
            throws: { "\($0)".contains("busy") && "\($0)".contains(worker.address) }
        first.shutdown()
        // Goodbye frees the worker for the next coordinator.
        let second = try Cluster(spec: spec, checkpoint: checkpoint, transport: transport, options: ClusterOptions(), logger: Self.logger)
        _ = try second.step([StepInput(sequence: try second.openSequence(capacity: 4), tokens: [0, 1])])
        second.shutdown()
    }

    @Test func wrongProtocolVersionAndGarbageAreRefusedAndTheWorkerKeepsServing() throws {
        let worker = try WorkerProcess()
        defer { worker.stop() }
        let transport = try ZMQTransport()
        let link = try transport.connect(worker.address, identity: "old-peer")
        var header = Shoal_V1_Header()
        header.protocolVersion = 99
        header.body = .hello(Shoal_V1_Hello())
        try link.send(Envelope(header: header))
        // The reply says why; whatever it is, it must not be a welcome.
        let reply = try? link.receive(deadline: .now + .seconds(5))
        if case .welcome? = reply?.body { Issue.record("a version-99 hello was welcomed") }
        // A step without a session is refused too.
        try? link.send(Envelope(.step(Shoal_V1_Step())))
        link.close()
        #expect(worker.process.isRunning)
        let ok = try runCommand(Paths.coordinator, [
            "generate", "--model", Paths.model("tiny-llama").path, "--prompt", "You will be", "--max-tokens", "4",
            "--workers", worker.address,
        ], timeout: 60)
        #expect(ok.status == 0, "\(ok.stderr)")
        #expect(worker.log.text.contains("refused"), "the worker should log what it refused")
    }

    /// Also for a checkpoint stored in a block format: its slices travel as whole blocks.
    @Test(arguments: [false, true])
    func sliceIsStreamedOnceThenLoadedFromTheCache(quantized: Bool) throws {
        let empty = Paths.temporaryDirectory("models")
        let cache = Paths.temporaryDirectory("cache")
        let q8 = Paths.temporaryDirectory("tiny-mixtral-q8_0")
        defer {
            for d in [empty, cache, q8] { try? FileManager.default.removeItem(at: d) }
        }
        var model = Paths.model("tiny-mixtral")
        if quantized {
            try QuantizedCheckpoint.write(from: try Checkpoint(directory: model), quantization: try Quantization(.q8_0), to: q8)
            model = q8
        }
        let workers = try (0 ..< 2).map { _ in try WorkerProcess(arguments: ["--model-dir", empty.path, "--cache-dir", cache.path]) }
        defer { stopAll(workers) }
        let checkpoint = try Checkpoint(directory: model)
        let transport = try ZMQTransport()
        let spec = ClusterSpec(workers: workers.map(\.address), tp: 2)
        var tokens: [[Int]] = []
        var transferred: [Int] = []
        for _ in 0 ..< 2 {
            let cluster = try Cluster(spec: spec, checkpoint: checkpoint, transport: transport, options: ClusterOptions(), logger: Self.logger)
            tokens.append(try Generator(backend: cluster, eos: []).run([GenerationRequest(promptTokens: [0, 331, 1911, 430], maxTokens: 8)])[0].tokens)
            transferred.append(cluster.transferredBytes)
            cluster.shutdown()
        }
        // Two workers, each sent only its slice: well under the whole model apiece.
        #expect(transferred[0] > 1_000_000 && transferred[0] / 2 < checkpoint.weightBytes * 3 / 4,
                 "slices of \(transferred[0]) bytes for a \(checkpoint.weightBytes)-byte model")
        #expect(transferred[1] == 0, "the second start must load from the cache")
        #expect(tokens[0] == tokens[1])
        let local = try LoadedModel(directory: model, threads: 1)
        #expect(try Generator(backend: local.makeBackend(), eos: []).run([GenerationRequest(promptTokens: [0, 331, 1911, 430], maxTokens: 8)])[0].tokens == tokens[0])
    }
}
