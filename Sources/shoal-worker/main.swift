import ArgumentParser
import Foundation
import Logging
import Runtime
import Synchronization
import Transport

/// Set by SIGINT/SIGTERM; the serve loop checks it between messages.
let stopRequested = Atomic<Bool>(false)

struct ShoalWorker: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "shoal-worker",
        abstract: "Serve a slice of a model to one Shoal coordinator at a time, until stopped.")

    @Option(help: "Address to listen on, e.g. tcp://0.0.0.0:5601.") var listen: String
    @Option(help: "Compute threads.") var threads: Int = ProcessInfo.processInfo.activeProcessorCount
    @Option(name: .customLong("model-dir"), help: "Where this host keeps models (checked before asking the coordinator for weights).")
    var modelDir: String?
    @Option(name: .customLong("cache-dir"), help: "Where slices sent by a coordinator are cached.")
    var cacheDir: String = FileManager.default.homeDirectoryForCurrentUser.appendingPathComponent(".cache/shoal").path
    @Option(help: "Cluster token coordinators must present (default: $SHOAL_TOKEN, or none).")
    var token: String?
    @Option(name: .customLong("log-level"), help: "trace, debug, info, warning or error.") var logLevel: String = "info"
    @Option(name: .customLong("sync-prefetch-mb"), help: "MB of the next weights to pull toward the cache while waiting for TP peers (0: off).")
    var syncPrefetchMB: Int = 4

    func validate() throws {
        guard threads >= 1 else { throw ValidationError("--threads must be at least 1") }
        guard Logger.Level(rawValue: logLevel) != nil else { throw ValidationError("--log-level: unknown level '\(logLevel)'") }
    }

    func run() throws {
        LoggingSystem.bootstrap { StreamLogHandler.standardError(label: $0) }
        var logger = Logger(label: "shoal-worker")
        logger.logLevel = Logger.Level(rawValue: logLevel)!
        // A parent may have blocked these (test runners do); a worker must always be stoppable.
        var unblock = sigset_t()
        sigemptyset(&unblock)
        sigaddset(&unblock, SIGINT)
        sigaddset(&unblock, SIGTERM)
        sigprocmask(SIG_UNBLOCK, &unblock, nil)
        signal(SIGINT) { _ in stopRequested.store(true, ordering: .relaxed) }
        signal(SIGTERM) { _ in stopRequested.store(true, ordering: .relaxed) }
        signal(SIGPIPE, SIG_IGN)
        let options = WorkerOptions(listen: listen, threads: threads, modelDirectory: modelDir, cacheDirectory: cacheDir,
                                    token: token ?? ProcessInfo.processInfo.environment["SHOAL_TOKEN"] ?? "")
        var tuned = options
        tuned.syncPrefetchBytes = max(0, syncPrefetchMB) << 20
        let service = try WorkerService(options: tuned, transport: try ZMQTransport(), logger: logger)
        service.run { stopRequested.load(ordering: .relaxed) }
    }
}

ShoalWorker.main()
