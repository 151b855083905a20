import WireProtocol

// The transport interface the runtime is written against. Two implementations:
// `ZMQTransport` (ZeroMQ over tcp/ipc/inproc) and `InMemoryTransport` (an in-process fabric for
// unit tests, with simulated peer loss).
//
// Topology: every worker binds one `Inbox` (ROUTER) and receives everything there. To talk to a
// process, a node connects a `Link` (DEALER) to that process's inbox; the link's identity is the
// `PeerID` the inbox sees, and the inbox answers by addressing that identity.
//
// Threading: inboxes, links and link sets wrap ZeroMQ sockets, which must be used by one thread
// at a time. They are deliberately not Sendable: create them on the thread that uses them (the
// factory is Sendable, so pass that instead).

/// Creates inboxes and links. Sendable: one factory serves every thread of a process.
public protocol TransportFactory: Sendable {
    /// Binds an inbox at `address` (e.g. "tcp://0.0.0.0:5601", "tcp://127.0.0.1:*" for any free
    /// port). `Inbox.address` reports the address actually bound.
    func bind(_ address: String) throws -> any Inbox

    /// Connects a link to the inbox at `address`, identifying this node as `identity` (1-255
    /// bytes of UTF-8). Returns at once; the connection is made in the background, sends are
    /// queued meanwhile, and `receive` reports a peer that never answers.
    func connect(_ address: String, identity: String) throws -> any Link

    /// Groups links (made by this factory) so one thread can wait on all of them.
    func linkSet(_ links: [any Link]) throws -> any LinkSet
}

/// Where a process receives everything addressed to it.
public protocol Inbox: AnyObject {
    /// The bound address, with wildcards resolved (what peers should connect to).
    var address: String { get }
    var stats: TrafficStats { get }

    /// The next message and its sender, or nil once `deadline` passes.
    ///
    /// Throws `TransportError.peerLost` when a peer in `watching` has disconnected (closed,
    /// crashed, or stopped answering heartbeats) since it last sent something here; queued
    /// messages are delivered first. A peer is only tracked once it has sent a message here.
    /// Throws `WireError` for a malformed message (its `peer` says who sent it, so it can be
    /// answered with a `Refused`).
    func receive(deadline: ContinuousClock.Instant, watching: Set<PeerID>) throws -> (from: PeerID, envelope: Envelope)?

    /// Sends to a connected peer. Throws `TransportError.unreachable` if `peer` is not connected.
    func send(_ envelope: Envelope, to peer: PeerID) throws

    /// Closes the socket; later calls throw `TransportError.closed`. Also done on deinit.
    func close()
}

extension Inbox {
    /// The next message, or nil once `deadline` passes.
    public func receive(deadline: ContinuousClock.Instant) throws -> (from: PeerID, envelope: Envelope)? {
        try receive(deadline: deadline, watching: [])
    }
}

/// A connection to another process's inbox.
public protocol Link: AnyObject {
    /// The remote inbox address (as given to `connect`).
    var address: String { get }
    /// The identity the remote inbox sees.
    var identity: String { get }
    var state: LinkState { get }
    var stats: TrafficStats { get }

    /// Queues `envelope` for the peer. Throws if the peer is lost, never connected, or does not
    /// drain its queue within the send timeout.
    func send(_ envelope: Envelope) throws

    /// The next message from the peer, or nil once `deadline` passes. Throws
    /// `TransportError.peerLost` / `.neverConnected` when the peer is gone (after delivering
    /// whatever it sent before), `WireError` for a malformed message.
    func receive(deadline: ContinuousClock.Instant) throws -> Envelope?

    /// Closes the socket; later calls throw `TransportError.closed`. Also done on deinit.
    func close()
}

/// Several links waited on together (the coordinator's view of its workers).
public protocol LinkSet: AnyObject {
    var links: [any Link] { get }

    /// The next message from any link and that link's index, or nil once `deadline` passes.
    /// Links are served in turn so a busy one cannot starve the others. Throws as
    /// `Link.receive` does for the first link found lost (the error names its address).
    func receiveAny(deadline: ContinuousClock.Instant) throws -> (index: Int, envelope: Envelope)?
}

/// Health of a link, as learned from the transport (ZeroMQ socket monitor events).
public enum LinkState: Sendable, Equatable {
    /// Waiting for the peer to accept the connection (since the link was created).
    case connecting
    /// ZeroMQ handshake done; heartbeats are flowing.
    case connected
    /// The peer is gone for good: the error every call now throws.
    case failed(TransportError)
}

/// The identity a link presents to an inbox: how an inbox tells its senders apart and
/// addresses replies.
public struct PeerID: Hashable, Sendable, CustomStringConvertible {
    /// Raw ZeroMQ routing id (1-255 bytes).
    public let bytes: [UInt8]

    public init(_ name: String) {
        bytes = Array(name.utf8)
    }

    init(bytes: [UInt8]) {
        self.bytes = bytes
    }

    /// The identity of a new link, checked against ZeroMQ's rules for routing ids.
    init(linkIdentity identity: String, address: String) throws {
        self.init(identity)
        guard (1...255).contains(bytes.count), bytes.first != 0 else {
            throw TransportError.connectFailed(
                address: address, reason: "identity '\(identity)' must be 1-255 bytes and not start with a zero byte")
        }
    }

    /// The identity as text (hex for the binary ids ZeroMQ invents for anonymous peers).
    public var name: String {
        if bytes.first != 0, let text = String(validating: bytes, as: UTF8.self) { return text }
        return "0x" + bytes.map { String($0, radix: 16).leftPadded(to: 2) }.joined()
    }

    public var description: String { name }
}

/// Traffic through one inbox or link, for the runtime's statistics. Bytes count every frame
/// (header and tensors, not ZeroMQ's framing).
public struct TrafficStats: Sendable, Equatable {
    public var messagesSent: UInt64 = 0
    public var messagesReceived: UInt64 = 0
    public var bytesSent: UInt64 = 0
    public var bytesReceived: UInt64 = 0

    public init() {}

    mutating func countSent(_ frames: [Payload]) {
        messagesSent += 1
        bytesSent += frames.reduce(0) { $0 + UInt64($1.count) }
    }

    mutating func countReceived(_ frames: [Payload]) {
        messagesReceived += 1
        bytesReceived += frames.reduce(0) { $0 + UInt64($1.count) }
    }
}

/// Settings shared by both transports (the in-memory one uses only `connectTimeout`).
public struct TransportOptions: Sendable {
    /// How often idle connections send ZMTP PINGs.
    public var heartbeatInterval: Duration = .milliseconds(500)
    /// A connection with no traffic (not even a PONG) for this long is declared lost. Peer loss is
    /// reported within about heartbeatInterval + heartbeatTimeout.
    public var heartbeatTimeout: Duration = .seconds(2)
    /// How long a new link may take to reach its peer before `receive`/`send` report it.
    public var connectTimeout: Duration = .seconds(5)
    /// How long a send may wait for room in a full queue before failing.
    public var sendTimeout: Duration = .seconds(10)
    /// How long closing a socket may wait to flush queued messages.
    public var linger: Duration = .milliseconds(500)
    /// Messages queued per connection and direction before sends block. Tensor messages are
    /// large, so this bounds memory: hwm x largest message.
    public var highWaterMark: Int32 = 1000
    /// Frames at least this large are handed to ZeroMQ without copying (it keeps the payload
    /// alive until sent); smaller ones are copied, which is cheaper than the bookkeeping.
    public var zeroCopyThreshold: Int = 16 * 1024

    public init() {}
}

extension String {
    func leftPadded(to width: Int) -> String {
        count >= width ? self : String(repeating: "0", count: width - count) + self
    }
}

extension Duration {
    /// "2.5 s" — for error messages.
    var shoalSeconds: String {
        let (seconds, attoseconds) = components
        let value = Double(seconds) + Double(attoseconds) / 1e18
        return "\((value * 1000).rounded() / 1000) s"
    }

    /// Whole milliseconds, clamped to Int32 (ZeroMQ's option type).
    var milliseconds: Int32 {
        let (seconds, attoseconds) = components
        let value = seconds * 1000 + attoseconds / 1_000_000_000_000_000
        return Int32(clamping: value)
    }

    /// Microseconds with one decimal, for reports.
    var microseconds: Double {
        let (seconds, attoseconds) = components
        return ((Double(seconds) * 1e6 + Double(attoseconds) / 1e12) * 10).rounded() / 10
    }
}
