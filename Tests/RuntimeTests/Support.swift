import Foundation
import Model
@_exported import TestSupport
import Testing

typealias Paths = Repo
typealias OutputCollector = PipeCollector

/// A real `shoal-worker` process on a loopback port of its own choosing.
final class WorkerProcess {
    let process = Process()
    let log: OutputCollector
    private(set) var address = ""

    init(arguments: [String] = [], threads: Int = 1) throws {
        process.executableURL = Paths.worker
        process.arguments = ["--listen", "tcp://127.0.0.1:*", "--threads", "\(threads)"] + arguments
        let err = Pipe()
        process.standardError = err
        process.standardOutput = FileHandle.nullDevice
        log = OutputCollector(err)
        try process.run()
        let deadline = Date().addingTimeInterval(20)
        while Date() < deadline {
            if let line = log.text.split(separator: "\n").first(where: { $0.contains("listening on") }),
               let range = line.range(of: "tcp://[0-9.]+:[0-9]+", options: .regularExpression) {
                address = String(line[range])
                return
            }
            guard process.isRunning else { break }
            Thread.sleep(forTimeInterval: 0.02)
        }
        stop()
        throw TestFailure("shoal-worker did not start listening: \(log.text)")
    }

    func kill(_ signal: Int32 = SIGKILL) { Foundation.kill(process.processIdentifier, signal) }

    func stop() {
        guard process.isRunning else { return }
        process.terminate()
        let deadline = Date().addingTimeInterval(5)
        while process.isRunning, Date() < deadline { Thread.sleep(forTimeInterval: 0.02) }
        if process.isRunning { kill(SIGKILL) }
        process.waitUntilExit()
    }

    deinit {
        if process.isRunning {
            Foundation.kill(process.processIdentifier, SIGCONT)
            stop()
        }
    }
}

/// Stops workers together (each takes up to half a second to notice).
func stopAll(_ workers: [WorkerProcess]) {
    for w in workers where w.process.isRunning { w.process.terminate() }
    workers.forEach { $0.stop() }
}

/// Runs a command to completion (or kills it at `timeout`).
func runCommand(_ url: URL, _ arguments: [String], timeout: TimeInterval = 60,
                whileRunning: ((Process, PipeCollector) -> Void)? = nil) throws -> CommandResult {
    try run(url, arguments, timeout: timeout, whileRunning: whileRunning)
}

func maxAbsDifference(_ a: [Float], _ b: [Float]) -> Float {
    precondition(a.count == b.count)
    var m: Float = 0
    for (x, y) in zip(a, b) { m = max(m, abs(x - y)) }
    return m
}
