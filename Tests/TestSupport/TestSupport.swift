import Foundation

/// Where the repository, its scripts, fixtures and the built executables are, found from this
/// file and the test binary (works in any clone, from any working directory).
public enum Repo {
    public static let root: URL = {
        var dir = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        while dir.path != "/" {
            if FileManager.default.fileExists(atPath: dir.appendingPathComponent("Package.swift").path) { return dir }
            dir.deleteLastPathComponent()
        }
        fatalError("Package.swift not found above \(#filePath)")
    }()

    public static func path(_ relative: String) -> URL { root.appendingPathComponent(relative) }
    public static var fixtures: URL { path("Tests/Fixtures") }
    public static func model(_ name: String) -> URL { fixtures.appendingPathComponent(name) }

    /// `swift test` runs .build/<triple>/debug/ShoalPackageTests.xctest; the executables sit beside it.
    public static let products: URL = {
        var dir = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        for _ in 0 ..< 3 {
            if FileManager.default.isExecutableFile(atPath: dir.appendingPathComponent("shoal-worker").path) { return dir }
            dir.deleteLastPathComponent()
        }
        return root.appendingPathComponent(".build/debug")
    }()

    public static var worker: URL { products.appendingPathComponent("shoal-worker") }
    public static var coordinator: URL { products.appendingPathComponent("shoal-coordinator") }

    /// Fails with a message that says what to build, rather than a missing-file error later.
    public static func requireExecutables() throws {
        for url in [worker, coordinator] where !FileManager.default.isExecutableFile(atPath: url.path) {
            throw TestFailure("\(url.path) is missing: build the executables first (swift build --build-tests)")
        }
    }

    /// A fresh directory under the temporary directory.
    public static func temporaryDirectory(_ label: String) -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("shoal-\(label)-\(UUID().uuidString)")
        try? FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }
}

public struct TestFailure: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// A pipe drained on a background thread, so a chatty child never blocks on a full pipe.
public final class PipeCollector: @unchecked Sendable {
    // Sendable: `data` is only touched under `lock`.
    private let lock = NSLock()
    private var data = Data()

    public init(_ pipe: Pipe) {
        pipe.fileHandleForReading.readabilityHandler = { [weak self] handle in
            let chunk = handle.availableData
            guard let self, !chunk.isEmpty else { return }
            self.lock.lock()
            self.data.append(chunk)
            self.lock.unlock()
        }
    }

    public var text: String {
        lock.lock()
        defer { lock.unlock() }
        return String(decoding: data, as: UTF8.self)
    }
}

public struct CommandResult {
    public var status: Int32
    public var stdout: String
    public var stderr: String
    public var seconds: Double
    public var succeeded: Bool { status == 0 }
    /// For failure messages: what the command printed.
    public var transcript: String { "exit \(status)\nstdout:\n\(stdout)\nstderr:\n\(stderr)" }
}

/// Runs `executable` to completion; kills it (SIGKILL: test runners may block SIGTERM in
/// children) when `timeout` passes, and says so. `whileRunning` sees the process and its
/// stdout as they go (to signal it mid-run).
@discardableResult
public func run(_ executable: URL, _ arguments: [String], environment: [String: String] = [:], timeout: TimeInterval = 120,
                whileRunning: ((Process, PipeCollector) -> Void)? = nil) throws -> CommandResult {
    let p = Process()
    p.executableURL = executable
    p.arguments = arguments
    p.currentDirectoryURL = Repo.root
    var env = ProcessInfo.processInfo.environment
    env.merge(environment) { $1 }
    p.environment = env
    let out = Pipe(), err = Pipe()
    p.standardOutput = out
    p.standardError = err
    p.standardInput = FileHandle.nullDevice
    let o = PipeCollector(out), e = PipeCollector(err)
    let start = Date()
    try p.run()
    whileRunning?(p, o)
    while p.isRunning, Date().timeIntervalSince(start) < timeout { Thread.sleep(forTimeInterval: 0.02) }
    if p.isRunning {
        kill(p.processIdentifier, SIGKILL)
        p.waitUntilExit()
        throw TestFailure("\(executable.lastPathComponent) \(arguments.joined(separator: " ")) did not finish within \(Int(timeout)) s\nstderr:\n\(e.text)")
    }
    p.waitUntilExit()
    // Let the readability handlers drain what is left in the pipes.
    Thread.sleep(forTimeInterval: 0.05)
    return CommandResult(status: p.terminationStatus, stdout: o.text, stderr: e.text, seconds: Date().timeIntervalSince(start))
}
