import CZeroMQ

/// Transport over ZeroMQ: inboxes are ROUTER sockets, links DEALER sockets.
///
/// One `ZMQTransport` per process: it owns the ZeroMQ context, and `makeSocket` is the only place
/// sockets are created, so socket-wide policy (heartbeats, queue limits, and later CURVE keys)
/// lives here. `@unchecked Sendable`: it holds only the thread-safe context and immutable options.
public final class ZMQTransport: TransportFactory, @unchecked Sendable {
    public let options: TransportOptions
    let context: ZMQContext

    public init(options: TransportOptions = TransportOptions()) throws {
        self.options = options
        context = try ZMQContext()
    }

    /// The libzmq version in use, e.g. "4.3.4".
    public static var libraryVersion: String {
        var major: Int32 = 0, minor: Int32 = 0, patch: Int32 = 0
        zmq_version(&major, &minor, &patch)
        return "\(major).\(minor).\(patch)"
    }

    public func bind(_ address: String) throws -> any Inbox {
        try ZMQInbox(transport: self, address: address)
    }

    public func connect(_ address: String, identity: String) throws -> any Link {
        try ZMQLink(transport: self, address: address, identity: identity)
    }

    public func linkSet(_ links: [any Link]) throws -> any LinkSet {
        try ZMQLinkSet(links)
    }

    /// A socket of `type` (ZMQ_ROUTER, ZMQ_DEALER, ZMQ_PAIR) with the transport's options.
    func makeSocket(_ type: Int32) throws -> ZMQSocket {
        let socket = try ZMQSocket(context: context, type: type, zeroCopyThreshold: options.zeroCopyThreshold)
        // Closing waits this long for queued messages (a Goodbye) to leave, never forever.
        try socket.set(ZMQ_LINGER, options.linger.milliseconds, "LINGER")
        try socket.set(ZMQ_SNDHWM, options.highWaterMark, "SNDHWM")
        try socket.set(ZMQ_RCVHWM, options.highWaterMark, "RCVHWM")
        try socket.set(ZMQ_SNDTIMEO, options.sendTimeout.milliseconds, "SNDTIMEO")
        // ZMTP heartbeats detect dead and hung peers without an application heartbeat thread.
        // TTL tells the remote side to drop us if we go silent, even if it sets no heartbeat.
        try socket.set(ZMQ_HEARTBEAT_IVL, options.heartbeatInterval.milliseconds, "HEARTBEAT_IVL")
        try socket.set(ZMQ_HEARTBEAT_TIMEOUT, options.heartbeatTimeout.milliseconds, "HEARTBEAT_TIMEOUT")
        try socket.set(ZMQ_HEARTBEAT_TTL, min(options.heartbeatTimeout.milliseconds, 6_553_500), "HEARTBEAT_TTL")
        // A TCP peer that accepts but never completes the ZMTP handshake counts as unreachable.
        try socket.set(ZMQ_HANDSHAKE_IVL, options.connectTimeout.milliseconds, "HANDSHAKE_IVL")
        if type == ZMQ_ROUTER {
            // Sending to an unknown peer fails instead of silently dropping the message.
            try socket.set(ZMQ_ROUTER_MANDATORY, 1, "ROUTER_MANDATORY")
            // A restarted peer that reconnects with the same identity takes over its old slot.
            try socket.set(ZMQ_ROUTER_HANDOVER, 1, "ROUTER_HANDOVER")
        }
        return socket
    }

    /// A monitor reporting `events` of `socket`.
    func makeMonitor(for socket: ZMQSocket, events: Int32) throws -> ZMQMonitor {
        try ZMQMonitor(socket, events: events, context: context, makeSocket: makeSocket)
    }
}
