import CZeroMQ

/// ROUTER socket bound to the process's address.
///
/// Peer loss: the monitor reports connections by file descriptor only, and a message's source
/// descriptor (ZMQ_SRCFD) ties a descriptor to the identity that sent it. So a peer is tracked
/// from its first message on, and its connection's DISCONNECTED event marks it lost.
final class ZMQInbox: Inbox {
    let address: String
    private(set) var stats = TrafficStats()

    private let socket: ZMQSocket
    private let monitor: ZMQMonitor
    private var peerByFD: [Int32: PeerID] = [:]
    private var lostPeers: [PeerID: String] = [:]
    private let lossReason: String
    private let sendTimeout: Duration

    init(transport: ZMQTransport, address: String) throws {
        socket = try transport.makeSocket(ZMQ_ROUTER)
        monitor = try transport.makeMonitor(for: socket, events: ZMQ_EVENT_ACCEPTED | ZMQ_EVENT_DISCONNECTED)
        try socket.bind(address)
        self.address = socket.lastEndpoint
        sendTimeout = transport.options.sendTimeout
        lossReason = "connection closed or no heartbeat for \(transport.options.heartbeatTimeout.shoalSeconds)"
    }

    deinit { close() }

    func close() {
        monitor.close()
        socket.close()
    }

    func receive(deadline: ContinuousClock.Instant, watching: Set<PeerID>) throws -> (from: PeerID, envelope: Envelope)? {
        try checkOpen()
        while true {
            if let message = try socket.receive() {
                return try accept(message)
            }
            try applyMonitorEvents()
            if let lost = watching.first(where: { lostPeers[$0] != nil }) {
                throw TransportError.peerLost(peer: lost.name, reason: lostPeers[lost]!)
            }
            if ContinuousClock.now >= deadline { return nil }
            try pollReadable([socket, monitor.socket], until: deadline)
        }
    }

    func send(_ envelope: Envelope, to peer: PeerID) throws {
        try checkOpen()
        let frames = try FrameCodec.encode(envelope, to: peer.name)
        do {
            try socket.send([Payload(peer.bytes)] + frames)
        } catch .unroutable {
            throw TransportError.unreachable(peer: peer.name, inbox: address)
        } catch .wouldBlock {
            throw TransportError.sendTimedOut(peer: peer.name, timeout: sendTimeout)
        } catch .other(let error) {
            throw error
        }
        stats.countSent(frames)
    }

    private func checkOpen() throws {
        if socket.isClosed { throw TransportError.closed("inbox \(address)") }
    }

    private func accept(_ message: ZMQSocket.Received) throws -> (from: PeerID, envelope: Envelope) {
        let peer = PeerID(bytes: message.frames[0].withUnsafeBytes { Array($0) })
        let frames = Array(message.frames.dropFirst())
        // Events emitted before this message arrived (the close of an earlier connection that
        // had the same descriptor) must be applied before the descriptor is re-mapped.
        try applyMonitorEvents()
        if message.sourceFD >= 0 { peerByFD[message.sourceFD] = peer }
        lostPeers[peer] = nil
        stats.countReceived(frames)
        return (peer, try FrameCodec.decode(frames, from: peer.name))
    }

    private func applyMonitorEvents() throws {
        for event in try monitor.drain() {
            let fd = Int32(bitPattern: event.value)
            switch Int32(event.event) {
            case ZMQ_EVENT_ACCEPTED:
                peerByFD[fd] = nil  // a new connection reuses the descriptor
            case ZMQ_EVENT_DISCONNECTED:
                if let peer = peerByFD.removeValue(forKey: fd) { lostPeers[peer] = lossReason }
            default:
                break
            }
        }
    }
}
