import CZeroMQ

/// DEALER socket connected to a remote inbox, with a monitor that turns connection events into
/// `LinkState`.
final class ZMQLink: Link {
    let address: String
    let identity: String
    /// Current health, including monitor events that arrived since the last call.
    var state: LinkState {
        _ = try? refreshState()
        return knownState
    }
    private var knownState: LinkState = .connecting
    private(set) var stats = TrafficStats()

    private let socket: ZMQSocket
    private let monitor: ZMQMonitor
    private let connectDeadline: ContinuousClock.Instant
    private let options: TransportOptions
    /// Messages that had reached the socket when the loss was noticed; delivered before the error.
    private var backlog: [ZMQSocket.Received] = []

    init(transport: ZMQTransport, address: String, identity: String) throws {
        let routingID = try PeerID(linkIdentity: identity, address: address)
        self.address = address
        self.identity = identity
        options = transport.options
        socket = try transport.makeSocket(ZMQ_DEALER)
        try socket.set(ZMQ_ROUTING_ID, bytes: routingID.bytes, "ROUTING_ID")
        monitor = try transport.makeMonitor(
            for: socket,
            events: ZMQ_EVENT_HANDSHAKE_SUCCEEDED | ZMQ_EVENT_DISCONNECTED | ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL
                | ZMQ_EVENT_HANDSHAKE_FAILED_AUTH)
        connectDeadline = .now + options.connectTimeout
        try socket.connect(address)
    }

    deinit { close() }

    func close() {
        monitor.close()
        socket.close()
        backlog = []
        knownState = .failed(.closed("link to \(address)"))
    }

    func send(_ envelope: Envelope) throws {
        try refreshState()
        if case .failed(let error) = knownState { throw error }
        let frames = try FrameCodec.encode(envelope, to: address)
        do {
            try socket.send(frames)
        } catch .wouldBlock {
            throw TransportError.sendTimedOut(peer: address, timeout: options.sendTimeout)
        } catch .unroutable {
            throw TransportError.peerLost(peer: address, reason: "no route")
        } catch .other(let error) {
            throw error
        }
        stats.countSent(frames)
    }

    func receive(deadline: ContinuousClock.Instant) throws -> Envelope? {
        while true {
            if let envelope = try receiveNow() { return envelope }
            if try refreshState() { continue }
            if ContinuousClock.now >= deadline { return nil }
            try pollReadable(pollSockets, until: wakeTime(deadline))
        }
    }

    /// Frames this link lent to ZeroMQ instead of copying (observable in tests).
    var zeroCopyFramesSent: Int { socket.zeroCopyFramesSent }

    // MARK: Pieces shared with ZMQLinkSet

    /// Sockets whose readiness means "call receiveNow / refreshState again".
    var pollSockets: [ZMQSocket] { [socket, monitor.socket] }

    /// A queued message if there is one; throws the link's failure once nothing that arrived
    /// before it is left (messages that reached the socket before a loss are still delivered).
    func receiveNow() throws -> Envelope? {
        let message: ZMQSocket.Received
        if !backlog.isEmpty {
            message = backlog.removeFirst()
        } else if case .failed(let error) = knownState {
            throw error
        } else if let received = try socket.receive() {
            message = received
        } else {
            return nil
        }
        stats.countReceived(message.frames)
        return try FrameCodec.decode(message.frames, from: address)
    }

    /// Applies monitor events and the connect deadline to the state; true if the link just failed.
    @discardableResult
    func refreshState() throws -> Bool {
        if case .failed = knownState { return false }
        for event in try monitor.drain() {
            switch Int32(event.event) {
            case ZMQ_EVENT_HANDSHAKE_SUCCEEDED:
                knownState = .connected
            case ZMQ_EVENT_DISCONNECTED where knownState == .connected:
                // Before the handshake, a dropped attempt (or a handshake that timed out:
                // HANDSHAKE_FAILED_NO_DETAIL) is retried until the connect deadline.
                return fail(.peerLost(
                    peer: address,
                    reason: "connection closed or no heartbeat for \(options.heartbeatTimeout.shoalSeconds)"))
            case ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL:
                return fail(.peerLost(peer: address, reason: "ZeroMQ handshake failed (not a Shoal inbox?)"))
            case ZMQ_EVENT_HANDSHAKE_FAILED_AUTH:
                return fail(.peerLost(peer: address, reason: "authentication failed"))
            default:
                break
            }
        }
        if knownState == .connecting, ContinuousClock.now >= connectDeadline {
            return fail(.neverConnected(peer: address, timeout: options.connectTimeout))
        }
        return false
    }

    /// When a wait must end to re-check health: the connect deadline matters while connecting.
    func wakeTime(_ deadline: ContinuousClock.Instant) -> ContinuousClock.Instant {
        knownState == .connecting ? min(deadline, connectDeadline) : deadline
    }

    private func fail(_ error: TransportError) -> Bool {
        while let message = try? socket.receive() { backlog.append(message) }
        knownState = .failed(error)
        // Stop reconnecting: whatever answers at this address later is a new session.
        socket.disconnect(address)
        return true
    }
}

/// Several ZMQ links polled together.
final class ZMQLinkSet: LinkSet {
    private let zmqLinks: [ZMQLink]
    private var next = 0

    init(_ links: [any Link]) throws {
        zmqLinks = try links.map { link in
            guard let zmqLink = link as? ZMQLink else {
                throw TransportError.foreignLink("link to \(link.address) was not made by a ZMQTransport")
            }
            return zmqLink
        }
    }

    var links: [any Link] { zmqLinks }

    func receiveAny(deadline: ContinuousClock.Instant) throws -> (index: Int, envelope: Envelope)? {
        let count = zmqLinks.count
        let sockets = zmqLinks.flatMap(\.pollSockets)
        while true {
            for offset in 0..<count {
                let index = (next + offset) % count
                if let envelope = try zmqLinks[index].receiveNow() {
                    next = (index + 1) % count
                    return (index, envelope)
                }
            }
            // A link that just failed is revisited at once to deliver its backlog, then throw.
            if try zmqLinks.reduce(false, { try $1.refreshState() || $0 }) { continue }
            if ContinuousClock.now >= deadline { return nil }
            let wake = zmqLinks.map { $0.wakeTime(deadline) }.min() ?? deadline
            try pollReadable(sockets, until: wake)
        }
    }
}
