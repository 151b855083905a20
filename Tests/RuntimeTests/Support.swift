import Foundation
import Model
import Testing

/// Paths of the built executables and the fixtures, found from the test binary and this file.
enum Paths {
    static let products: URL = {
        // `swift test` runs .build/<triple>/debug/ShoalPackageTests.xctest; the executables sit beside it.
        var dir = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        for _ in 0 ..< 3 {
            if FileManager.default.isExecutableFile(atPath: dir.appendingPathComponent("shoal-worker").path) { return dir }
            dir.deleteLastPathComponent()
        }
        var root = URL(fileURLWithPath: #filePath)
        while !FileManager.default.fileExists(atPath: root.appendingPathComponent("Package.swift").path) { root.deleteLastPathComponent() }
        return root.appendingPathComponent(".build/debug")
    }()

    static var worker: URL { products.appendingPathComponent("shoal-worker") }
    static var coordinator: URL { products.appendingPathComponent("shoal-coordinator") }

    static let fixtures: URL = {
        var url = URL(fileURLWithPath: #filePath)
        while url.path != "/" {
            url.deleteLastPathComponent()
            let candidate = url.appendingPathComponent("Fixtures")
            if FileManager.default.fileExists(atPath: candidate.appendingPathComponent("tiny-llama").path) { return candidate }
        }
        fatalError("Tests/Fixtures not found")
    }()

    static func model(_ name: String) -> URL { fixtures.appendingPathComponent(name) }

    static func temporaryDirectory(_ label: String) -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("shoal-\(label)-\(UUID().uuidString)")
        try? FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }
}

/// Collects a pipe's output on a background thread (so a chatty child never blocks on a full pipe).
final class OutputCollector: @unchecked Sendable {
    // Sendable: all access goes through the lock.
    private let lock = NSLock()
    private var data = Data()

    init(_ pipe: Pipe) {
        pipe.fileHandleForReading.readabilityHandler = { [weak self] handle in
            let chunk = handle.availableData
            guard let self, !chunk.isEmpty else { return }
            self.lock.lock()
            self.data.append(chunk)
            self.lock.unlock()
        }
    }

    var text: String {
        lock.lock()
        defer { lock.unlock() }
        return String(decoding: data, as: UTF8.self)
    }
}

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

struct TestFailure: Error, CustomStringConvertible {
    let description: String
    init(_ d: String) { description = d }
}

/// Runs a command to completion (or kills it at `timeout`), returning status, stdout, stderr and duration.
func runCommand(_ url: URL, _ arguments: [String], timeout: TimeInterval = 60, whileRunning: ((Process, OutputCollector) -> Void)? = nil)
    throws -> (status: Int32, stdout: String, stderr: String, seconds: Double) {
    let p = Process()
    p.executableURL = url
    p.arguments = arguments
    let out = Pipe(), err = Pipe()
    p.standardOutput = out
    p.standardError = err
    let o = OutputCollector(out), e = OutputCollector(err)
    let start = Date()
    try p.run()
    whileRunning?(p, o)
    while p.isRunning, Date().timeIntervalSince(start) < timeout { Thread.sleep(forTimeInterval: 0.02) }
    if p.isRunning {
        p.terminate()
        p.waitUntilExit()
        throw TestFailure("\(url.lastPathComponent) \(arguments.joined(separator: " ")) did not finish within \(timeout) s")
    }
    p.waitUntilExit()
    Thread.sleep(forTimeInterval: 0.05)  // let the collectors drain
    return (p.terminationStatus, o.text, e.text, Date().timeIntervalSince(start))
}

func maxAbsDifference(_ a: [Float], _ b: [Float]) -> Float {
    precondition(a.count == b.count)
    var m: Float = 0
    for (x, y) in zip(a, b) { m = max(m, abs(x - y)) }
    return m
}
