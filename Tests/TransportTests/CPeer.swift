import Foundation
import Testing

/// The C peer (CInterop/shoal_c_peer.c), compiled once per test run against code protoc-c
/// generates from Proto/shoal.proto. Missing tools fail the tests that need them, loudly: CI
/// installs protobuf-c-compiler, libprotobuf-c-dev, libzmq3-dev and a C compiler.
enum CPeer {
    static let build: Result<URL, any Error> = Result { try compile() }

    static func executable() throws -> URL { try build.get() }

    /// The repository root, found from this file (works in any clone).
    static let repositoryRoot: URL = {
        var directory = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        while directory.path != "/" {
            if FileManager.default.fileExists(atPath: directory.appendingPathComponent("Proto/shoal.proto").path) {
                return directory
            }
            directory.deleteLastPathComponent()
        }
        return URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    }()

    /// Generated C code and the executable, removed when the test process exits.
    static let buildDirectory = FileManager.default.temporaryDirectory
        .appendingPathComponent("shoal-c-peer-\(ProcessInfo.processInfo.processIdentifier)")

    private static func compile() throws -> URL {
        let protocC = try tool("protoc-c", package: "protobuf-c-compiler")
        let cc = try tool("cc", package: "gcc")
        let pkgConfig = try tool("pkg-config", package: "pkg-config")
        let output = buildDirectory
        try FileManager.default.createDirectory(at: output, withIntermediateDirectories: true)
        atexit { try? FileManager.default.removeItem(at: CPeer.buildDirectory) }
        let proto = repositoryRoot.appendingPathComponent("Proto")
        _ = try run(protocC, ["--c_out=\(output.path)", "--proto_path=\(proto.path)", "shoal.proto"])
        let flags = try run(pkgConfig, ["--cflags", "--libs", "libprotobuf-c", "libzmq"])
        let executable = output.appendingPathComponent("shoal_c_peer")
        let source = repositoryRoot.appendingPathComponent("Tests/TransportTests/CInterop/shoal_c_peer.c")
        _ = try run(
            cc,
            ["-O1", "-Wall", "-o", executable.path, source.path, output.appendingPathComponent("shoal.pb-c.c").path, "-I", output.path]
                + String(decoding: flags, as: UTF8.self).split(whereSeparator: \.isWhitespace).map(String.init))
        return executable
    }

    private static func tool(_ name: String, package: String) throws -> URL {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
        for directory in path.split(separator: ":") {
            let candidate = URL(fileURLWithPath: String(directory)).appendingPathComponent(name)
            if FileManager.default.isExecutableFile(atPath: candidate.path) { return candidate }
        }
        throw TestFailure("\(name) not found on PATH; the C interop tests need it (apt-get install \(package))")
    }

    /// Runs `executable` to completion, feeding `input`; returns stdout or throws with stderr.
    @discardableResult
    static func run(_ executable: URL, _ arguments: [String], input: Data = Data()) throws -> Data {
        let process = Process()
        process.executableURL = executable
        process.arguments = arguments
        let stdin = Pipe(), stdout = Pipe(), stderr = Pipe()
        process.standardInput = stdin
        process.standardOutput = stdout
        process.standardError = stderr
        try process.run()
        // Drain both pipes on their own threads so a chatty child cannot block on a full pipe.
        let outBox = Mailbox<Data>(), errBox = Mailbox<Data>()
        PeerThread.detach { outBox.put(stdout.fileHandleForReading.readDataToEndOfFile()) }
        PeerThread.detach { errBox.put(stderr.fileHandleForReading.readDataToEndOfFile()) }
        stdin.fileHandleForWriting.write(input)
        try stdin.fileHandleForWriting.close()
        process.waitUntilExit()
        let out = try outBox.take(), err = try errBox.take()
        guard process.terminationStatus == 0 else {
            throw TestFailure("\(executable.lastPathComponent) \(arguments.joined(separator: " ")) exited with \(process.terminationStatus): \(String(decoding: err, as: UTF8.self))")
        }
        return out
    }
}

/// A long-running C peer process (serve / client modes), killed when the test drops it.
final class CPeerProcess {
    private let process = Process()
    /// First line the peer printed (its endpoint in serve mode).
    let firstLine: String

    init(_ arguments: [String]) throws {
        process.executableURL = try CPeer.executable()
        process.arguments = arguments
        let stdout = Pipe()
        process.standardOutput = stdout
        try process.run()
        let line = Mailbox<String>()
        PeerThread.detach {
            var bytes: [UInt8] = []
            while let byte = try? stdout.fileHandleForReading.read(upToCount: 1)?.first, byte != UInt8(ascii: "\n") {
                bytes.append(byte)
            }
            line.put(String(decoding: bytes, as: UTF8.self))
        }
        firstLine = try line.take(timeout: .seconds(10))
    }

    func signal(_ signal: Int32) {
        kill(process.processIdentifier, signal)
    }

    deinit {
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
    }
}

extension PeerThread {
    /// Fire-and-forget thread (its result is delivered through a mailbox by the caller).
    static func detach(_ body: @escaping @Sendable () -> Void) {
        Thread { body() }.start()
    }
}
