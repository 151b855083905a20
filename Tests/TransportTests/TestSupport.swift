import Foundation
import Testing
import WireProtocol

@testable import Transport

/// Timeouts short enough for tests, long enough for a loaded 2-core CI machine.
let testOptions: TransportOptions = {
    var options = TransportOptions()
    options.heartbeatInterval = .milliseconds(100)
    options.heartbeatTimeout = .milliseconds(600)
    options.connectTimeout = .seconds(1)
    options.sendTimeout = .seconds(5)
    options.linger = .milliseconds(200)
    return options
}()

/// How late a loss report may come beyond heartbeat interval + timeout (scheduling noise).
let lossSlack: Duration = .milliseconds(1500)

/// The transports every scenario runs against.
enum Backend: String, CaseIterable, CustomTestStringConvertible, Sendable {
    case zmq
    case inMemory

    func makeTransport(_ options: TransportOptions = testOptions) throws -> any TransportFactory {
        switch self {
        case .zmq: try ZMQTransport(options: options)
        case .inMemory: InMemoryTransport(options: options)
        }
    }

    var testDescription: String { rawValue }
}

struct TestFailure: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// A value handed from one thread to another.
final class Mailbox<Value: Sendable>: @unchecked Sendable {
    private let condition = NSCondition()
    private var value: Value?

    func put(_ newValue: Value) {
        condition.lock()
        value = newValue
        condition.broadcast()
        condition.unlock()
    }

    /// Waits up to `timeout` for the value.
    func take(timeout: Duration = .seconds(20)) throws -> Value {
        let deadline = Date(timeIntervalSinceNow: Double(timeout.components.seconds))
        condition.lock()
        defer { condition.unlock() }
        while value == nil {
            guard condition.wait(until: deadline) else { throw TestFailure("mailbox: nothing arrived within \(timeout)") }
        }
        return value!
    }
}

/// Runs `body` on its own thread (sockets are created and used there, as the runtime must).
final class PeerThread: @unchecked Sendable {
    private let outcome = Mailbox<Result<Void, any Error>>()

    init(_ name: String, _ body: @escaping @Sendable () throws -> Void) {
        let thread = Thread { [outcome] in
            outcome.put(Result { try body() })
        }
        thread.name = name
        thread.start()
    }

    /// Waits for the thread to end and rethrows its error.
    func join(timeout: Duration = .seconds(30)) throws {
        try outcome.take(timeout: timeout).get()
    }
}

/// A payload whose bytes depend on position and `seed`, so misordered or truncated data shows.
func patternPayload(count: Int, seed: UInt8 = 0) -> Payload {
    Payload(count: count) { bytes in
        for index in bytes.indices { bytes[index] = UInt8(truncatingIfNeeded: index &* 31 &+ Int(seed)) }
    }
}

/// An envelope with one opaque tensor frame of `size` bytes.
func tensorEnvelope(size: Int, stepID: UInt64 = 1) -> Envelope {
    var part = Shoal_V1_AllReducePart()
    part.stepID = stepID
    part.layer = 3
    return Envelope(
        .allReducePart(part),
        tensors: [WireTensor(name: "partial", dtype: .unspecified, shape: [], payload: patternPayload(count: size, seed: UInt8(truncatingIfNeeded: size)))])
}

func ping(_ nonce: UInt64) -> Envelope {
    var ping = Shoal_V1_Ping()
    ping.nonce = nonce
    return Envelope(.ping(ping))
}

func pong(_ nonce: UInt64) -> Envelope {
    var pong = Shoal_V1_Pong()
    pong.nonce = nonce
    return Envelope(.pong(pong))
}

/// An inbox on its own thread that answers Ping with Pong and echoes everything else, until it
/// receives Goodbye (or `closeAfter` messages, after which it closes abruptly).
final class EchoPeer: @unchecked Sendable {
    let address: String
    private let thread: PeerThread
    /// When the inbox was closed (set by `closeAfter`).
    let closedAt = Mailbox<ContinuousClock.Instant>()

    init(_ transport: any TransportFactory, closeAfter limit: Int? = nil) throws {
        let ready = Mailbox<String>()
        let closedAt = closedAt
        thread = PeerThread("echo-peer") {
            let inbox = try transport.bind("tcp://127.0.0.1:*")
            ready.put(inbox.address)
            var handled = 0
            while limit.map({ handled < $0 }) ?? true {
                guard let (from, envelope) = try inbox.receive(deadline: .now + .seconds(20)) else {
                    throw TestFailure("echo peer: no message within 20 s")
                }
                if case .goodbye = envelope.body { break }
                if case .ping(let ping) = envelope.body {
                    try inbox.send(pong(ping.nonce), to: from)
                } else {
                    try inbox.send(envelope, to: from)
                }
                handled += 1
            }
            if limit != nil {
                // Let the last reply leave before the abrupt close.
                Thread.sleep(forTimeInterval: 0.2)
                inbox.close()
                closedAt.put(.now)
            }
        }
        address = try ready.take()
    }

    func join() throws { try thread.join() }
}

/// Elapsed time of `body`.
func timed<R>(_ body: () throws -> R) rethrows -> (R, Duration) {
    let start = ContinuousClock.now
    let result = try body()
    return (result, ContinuousClock.now - start)
}

/// Runs `body`, expecting it to throw; returns the error.
func caught(_ body: () throws -> Void) -> (any Error)? {
    do {
        try body()
        return nil
    } catch {
        return error
    }
}

/// A plain (non-ZeroMQ) socket bound to a free loopback port, listening if asked.
func loopbackSocket(listening: Bool) throws -> (fd: Int32, address: String) {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else { throw TestFailure("socket() failed") }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    let ready = withUnsafeMutablePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { pointer in
            bind(fd, pointer, length) == 0 && (!listening || listen(fd, 8) == 0) && getsockname(fd, pointer, &length) == 0
        }
    }
    guard ready else {
        close(fd)
        throw TestFailure("binding a loopback socket failed")
    }
    return (fd, "tcp://127.0.0.1:\(UInt16(bigEndian: address.sin_port))")
}

/// A loopback tcp address where nothing listens: a plain socket's port, closed at once (closing a
/// ZeroMQ socket is asynchronous: its port may still accept for a while).
func vacantAddress() throws -> String {
    let (fd, address) = try loopbackSocket(listening: false)
    close(fd)
    return address
}
