import CZeroMQ
import Foundation

/// The process's ZeroMQ context: its I/O threads and the sockets made from it.
///
/// `@unchecked Sendable`: libzmq contexts are thread-safe. Every socket retains its context, so
/// `zmq_ctx_term` (which waits for all sockets to close) runs only after the last one closed.
final class ZMQContext: @unchecked Sendable {
    let handle: UnsafeMutableRawPointer
    private let counterLock = NSLock()
    private var counter = 0

    init() throws {
        guard let handle = zmq_ctx_new() else { throw zmqError("zmq_ctx_new") }
        self.handle = handle
    }

    /// A name unique within this context, for inproc monitor endpoints.
    func uniqueName(_ prefix: String) -> String {
        counterLock.lock()
        defer { counterLock.unlock() }
        counter += 1
        return "\(prefix)-\(counter)"
    }

    deinit {
        while zmq_ctx_term(handle) != 0, zmq_errno() == EINTR {}
    }
}

/// One ZeroMQ socket. Not Sendable: libzmq sockets belong to one thread at a time.
final class ZMQSocket {
    let handle: UnsafeMutableRawPointer
    private let context: ZMQContext
    private let zeroCopyThreshold: Int
    /// Reused for every outgoing frame: the message must not move between init and send.
    private let outgoing = UnsafeMutablePointer<zmq_msg_t>.allocate(capacity: 1)
    private(set) var isClosed = false
    /// Frames handed to ZeroMQ without a copy (observable in tests).
    private(set) var zeroCopyFramesSent = 0

    /// Only `ZMQTransport.makeSocket` creates sockets, so every socket gets the same options.
    init(context: ZMQContext, type: Int32, zeroCopyThreshold: Int) throws {
        guard let handle = zmq_socket(context.handle, type) else { throw zmqError("zmq_socket") }
        self.handle = handle
        self.context = context
        self.zeroCopyThreshold = zeroCopyThreshold
    }

    deinit {
        close()
        outgoing.deallocate()
    }

    func close() {
        guard !isClosed else { return }
        isClosed = true
        zmq_close(handle)
    }

    func set(_ option: Int32, _ value: Int32, _ name: String) throws {
        var value = value
        guard zmq_setsockopt(handle, option, &value, MemoryLayout<Int32>.size) == 0 else {
            throw zmqError("setsockopt \(name)")
        }
    }

    func set(_ option: Int32, bytes: [UInt8], _ name: String) throws {
        guard bytes.withUnsafeBytes({ zmq_setsockopt(handle, option, $0.baseAddress, $0.count) }) == 0 else {
            throw zmqError("setsockopt \(name)")
        }
    }

    func bind(_ address: String) throws {
        guard zmq_bind(handle, address) == 0 else {
            throw TransportError.bindFailed(address: address, reason: zmqErrorText())
        }
    }

    func connect(_ address: String) throws {
        guard zmq_connect(handle, address) == 0 else {
            throw TransportError.connectFailed(address: address, reason: zmqErrorText())
        }
    }

    /// Stops reconnecting to `address` (errors ignored: the connection may be gone already).
    func disconnect(_ address: String) {
        _ = zmq_disconnect(handle, address)
    }

    /// The endpoint last bound, with wildcard ports resolved.
    var lastEndpoint: String {
        var buffer = [CChar](repeating: 0, count: 1024)
        var size = buffer.count
        guard zmq_getsockopt(handle, ZMQ_LAST_ENDPOINT, &buffer, &size) == 0 else { return "" }
        return String(decoding: buffer.prefix(while: { $0 != 0 }).map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    enum SendFailure: Error {
        case wouldBlock      // EAGAIN: queue full past the send timeout
        case unroutable      // EHOSTUNREACH: ROUTER has no such peer
        case other(TransportError)
    }

    /// Sends `frames` as one multipart message. Frames of `zeroCopyThreshold` bytes or more are
    /// lent to ZeroMQ: it retains the payload and releases it from its I/O thread once sent.
    func send(_ frames: [Payload]) throws(SendFailure) {
        guard !isClosed else { throw .other(.closed("socket")) }
        for (index, frame) in frames.enumerated() {
            let count = frame.count
            if count >= zeroCopyThreshold, let base = frame.storage.base {
                let hint = Unmanaged.passRetained(frame.storage).toOpaque()
                zmq_msg_init_data(outgoing, UnsafeMutableRawPointer(mutating: base), count, releasePayloadStorage, hint)
                zeroCopyFramesSent += 1
            } else {
                zmq_msg_init_size(outgoing, count)
                if count > 0 {
                    frame.withUnsafeBytes { zmq_msg_data(outgoing).copyMemory(from: $0.baseAddress!, byteCount: count) }
                }
            }
            let flags = index < frames.count - 1 ? ZMQ_SNDMORE : 0
            while zmq_msg_send(outgoing, handle, flags) < 0 {
                let code = zmq_errno()
                if code == EINTR { continue }
                zmq_msg_close(outgoing)  // releases a lent payload
                switch code {
                case EAGAIN: throw .wouldBlock
                case EHOSTUNREACH: throw .unroutable
                default: throw .other(zmqError("send", code: code))
                }
            }
        }
    }

    /// A message that arrived on the socket.
    struct Received {
        var frames: [Payload]
        /// File descriptor of the connection it came through (-1 if unknown).
        var sourceFD: Int32
    }

    /// The next message if one is queued (never waits). Its frames keep the received ZeroMQ
    /// messages alive and expose their bytes in place.
    func receive() throws -> Received? {
        guard !isClosed else { throw TransportError.closed("socket") }
        var received = Received(frames: [], sourceFD: -1)
        var more = true
        while more {
            let message = UnsafeMutablePointer<zmq_msg_t>.allocate(capacity: 1)
            zmq_msg_init(message)
            // The first frame decides whether a message is there; the rest of a multipart
            // message is delivered atomically with it.
            while zmq_msg_recv(message, handle, received.frames.isEmpty ? ZMQ_DONTWAIT : 0) < 0 {
                let code = zmq_errno()
                if code == EINTR { continue }
                zmq_msg_close(message)
                message.deallocate()
                if code == EAGAIN, received.frames.isEmpty { return nil }
                throw zmqError("receive", code: code)
            }
            more = zmq_msg_more(message) != 0
            let fd = zmq_msg_get(message, ZMQ_SRCFD)
            if fd >= 0 { received.sourceFD = fd }
            received.frames.append(Payload(adopting: message))
        }
        return received
    }
}

/// zmq_free_fn for lent payloads: drops the retain taken in `ZMQSocket.send`.
private func releasePayloadStorage(_ data: UnsafeMutableRawPointer?, _ hint: UnsafeMutableRawPointer?) {
    guard let hint else { return }
    Unmanaged<PayloadStorage>.fromOpaque(hint).release()
}

/// How long a receive polls (yielding the core between polls) before it sleeps in zmq_poll.
/// A sleeping thread is woken by the scheduler tens of microseconds after ZeroMQ's I/O thread
/// signals it, and a token waits on dozens of all-reduces.
let pollSpin: Duration = .microseconds(Int(ProcessInfo.processInfo.environment["SHOAL_SPIN_US"] ?? "") ?? 100)

/// Waits until one of `sockets` is readable or `deadline` passes.
func pollReadable(_ sockets: [ZMQSocket], until deadline: ContinuousClock.Instant) throws {
    var items = sockets.map { zmq_pollitem_t(socket: $0.handle, fd: 0, events: Int16(ZMQ_POLLIN), revents: 0) }
    if pollSpin > .zero {
        let spinEnd = min(deadline, ContinuousClock.now + pollSpin)
        while ContinuousClock.now < spinEnd {
            sched_yield()
            let ready = zmq_poll(&items, Int32(items.count), 0)
            if ready > 0 { return }
            if ready < 0 { break } // the blocking poll below reports the error
        }
    }
    let timeout = max(Duration.zero, deadline - ContinuousClock.now)
    let (seconds, attoseconds) = timeout.components
    // Round up so a wait never ends just short of the deadline and spins.
    let milliseconds = min(Int64(Int32.max), seconds * 1000 + (attoseconds + 999_999_999_999_999) / 1_000_000_000_000_000)
    if zmq_poll(&items, Int32(items.count), Int(milliseconds)) < 0 {
        let code = zmq_errno()
        if code != EINTR { throw zmqError("poll", code: code) }
    }
}

/// Reads a socket's monitor events (libzmq's v1 monitor protocol over an inproc PAIR).
final class ZMQMonitor {
    struct Event {
        var event: UInt16
        var value: UInt32  // fd for connection events
        var endpoint: String
    }

    let socket: ZMQSocket
    private let monitored: ZMQSocket

    init(_ monitored: ZMQSocket, events: Int32, context: ZMQContext, makeSocket: (Int32) throws -> ZMQSocket) throws {
        let endpoint = "inproc://" + context.uniqueName("shoal-monitor")
        guard zmq_socket_monitor(monitored.handle, endpoint, events) == 0 else {
            throw zmqError("socket_monitor")
        }
        self.monitored = monitored
        socket = try makeSocket(ZMQ_PAIR)
        try socket.connect(endpoint)
    }

    deinit { close() }

    func close() {
        guard !socket.isClosed else { return }
        if !monitored.isClosed { _ = zmq_socket_monitor(monitored.handle, nil, 0) }
        socket.close()
    }

    /// Events queued so far, oldest first (never waits).
    func drain() throws -> [Event] {
        var events: [Event] = []
        while let message = try socket.receive() {
            guard message.frames.count >= 2, message.frames[0].count >= 6 else { continue }
            let event = message.frames[0].withUnsafeBytes { bytes in
                Event(
                    // libzmq writes both in host byte order.
                    event: bytes.loadUnaligned(as: UInt16.self),
                    value: bytes.loadUnaligned(fromByteOffset: 2, as: UInt32.self),
                    endpoint: String(decoding: message.frames[1].withUnsafeBytes { Array($0) }, as: UTF8.self))
            }
            events.append(event)
        }
        return events
    }
}

func zmqError(_ operation: String, code: Int32 = zmq_errno()) -> TransportError {
    .zmq(operation: operation, code: code, message: zmqErrorText(code))
}

func zmqErrorText(_ code: Int32 = zmq_errno()) -> String {
    String(cString: zmq_strerror(code))
}
