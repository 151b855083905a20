import Foundation

/// An in-process fabric with the same semantics as `ZMQTransport`, for unit tests of the runtime:
/// messages are encoded and validated by `FrameCodec` exactly as on the wire (payloads are
/// shared, not copied), links connect when an inbox appears at their address, and `sever`
/// simulates a peer that crashed or hung.
///
/// `@unchecked Sendable`: all fabric state is guarded by one condition variable's lock.
public final class InMemoryTransport: TransportFactory, @unchecked Sendable {
    public let options: TransportOptions
    private let fabric = Fabric()

    public init(options: TransportOptions = TransportOptions()) {
        self.options = options
    }

    /// Binds an inbox; an address ending in "*" gets a unique number in place of the "*", so
    /// "tcp://127.0.0.1:*" works as it does with ZeroMQ.
    public func bind(_ address: String) throws -> any Inbox {
        try fabric.withLock {
            var resolved = address
            if resolved.hasSuffix("*") {
                resolved.removeLast()
                resolved += String(fabric.takePortNumber())
            }
            guard fabric.inboxes[resolved] == nil else {
                throw TransportError.bindFailed(address: resolved, reason: "address already in use")
            }
            let inbox = InboxEndpoint(fabric: fabric, address: resolved)
            fabric.inboxes[resolved] = inbox
            for link in fabric.connecting where link.address == resolved {
                fabric.attach(link, to: inbox)
            }
            fabric.connecting.removeAll { $0.address == resolved }
            return MemoryInbox(inbox)
        }
    }

    public func connect(_ address: String, identity: String) throws -> any Link {
        let peer = try PeerID(linkIdentity: identity, address: address)
        return fabric.withLock {
            let link = LinkEndpoint(
                fabric: fabric, address: address, peer: peer,
                connectDeadline: .now + options.connectTimeout, connectTimeout: options.connectTimeout)
            if let inbox = fabric.inboxes[address] {
                fabric.attach(link, to: inbox)
            } else {
                fabric.connecting.append(link)
            }
            return MemoryLink(link)
        }
    }

    public func linkSet(_ links: [any Link]) throws -> any LinkSet {
        try MemoryLinkSet(links.map { link in
            guard let memoryLink = link as? MemoryLink, memoryLink.endpoint.fabric === fabric else {
                throw TransportError.foreignLink("link to \(link.address) was not made by this InMemoryTransport")
            }
            return memoryLink
        })
    }

    /// Simulates the death of the process owning the inbox at `address` (crash, or a hang noticed
    /// by heartbeats): the inbox closes without a word, queued messages are dropped, and every
    /// link to it fails with `peerLost(address, reason)`.
    public func sever(_ address: String, reason: String = "connection closed (simulated crash)") {
        fabric.withLock {
            fabric.inboxes[address]?.shutDown(reason: reason)
        }
    }
}

/// Shared state of one in-memory fabric. The fabric holds only endpoint state, never the
/// handles users own, so a handle's deinit (which locks to close) never runs under the lock.
/// Everything below is only touched with `condition` locked.
final class Fabric: @unchecked Sendable {
    private let condition = NSCondition()
    var inboxes: [String: InboxEndpoint] = [:]
    /// Links whose address has no inbox yet.
    var connecting: [LinkEndpoint] = []
    private var nextPort = 49152

    func withLock<R>(_ body: () throws -> R) rethrows -> R {
        condition.lock()
        defer { condition.unlock() }
        return try body()
    }

    func takePortNumber() -> Int {
        defer { nextPort += 1 }
        return nextPort
    }

    /// Wakes every waiter to re-check its queue (state changed).
    func changed() {
        condition.broadcast()
    }

    /// Waits for `changed()` or `instant`, whichever is first.
    func wait(until instant: ContinuousClock.Instant) {
        let remaining = instant - .now
        guard remaining > .zero else { return }
        let (seconds, attoseconds) = remaining.components
        _ = condition.wait(until: Date(timeIntervalSinceNow: Double(seconds) + Double(attoseconds) / 1e18))
    }

    func attach(_ link: LinkEndpoint, to inbox: InboxEndpoint) {
        if let previous = inbox.links[link.peer], previous !== link {
            // As ZMQ_ROUTER_HANDOVER does: the newer connection takes the identity over.
            previous.fail(.peerLost(peer: inbox.address, reason: "replaced by a newer connection with the same identity"))
        }
        link.state = .connected
        link.inbox = inbox
        inbox.links[link.peer] = link
        for frames in link.pending { inbox.queue.append((link.peer, frames)) }
        link.pending = []
        changed()
    }
}

/// An inbox's queue and connections (fabric lock held for every access).
final class InboxEndpoint {
    let fabric: Fabric
    let address: String
    var queue: [(PeerID, [Payload])] = []
    var links: [PeerID: LinkEndpoint] = [:]
    /// Peers that sent something, and of those the ones whose link went away since.
    var heard: Set<PeerID> = []
    var lost: [PeerID: String] = [:]
    var isOpen = true

    init(fabric: Fabric, address: String) {
        self.fabric = fabric
        self.address = address
    }

    func shutDown(reason: String) {
        guard isOpen else { return }
        isOpen = false
        fabric.inboxes[address] = nil
        for link in links.values { link.fail(.peerLost(peer: address, reason: reason)) }
        links = [:]
        queue = []
        fabric.changed()
    }

    /// `link` went away (closed by its owner).
    func detach(_ link: LinkEndpoint) {
        guard links[link.peer] === link else { return }
        links[link.peer] = nil
        if heard.contains(link.peer) { lost[link.peer] = "connection closed" }
        fabric.changed()
    }
}

/// A link's queues and state (fabric lock held for every access).
final class LinkEndpoint {
    let fabric: Fabric
    let address: String
    let peer: PeerID
    let connectDeadline: ContinuousClock.Instant
    let connectTimeout: Duration
    var state: LinkState = .connecting
    var inbound: [[Payload]] = []
    /// Sent before the inbox appeared; handed over on connection.
    var pending: [[Payload]] = []
    weak var inbox: InboxEndpoint?

    init(fabric: Fabric, address: String, peer: PeerID, connectDeadline: ContinuousClock.Instant, connectTimeout: Duration) {
        self.fabric = fabric
        self.address = address
        self.peer = peer
        self.connectDeadline = connectDeadline
        self.connectTimeout = connectTimeout
    }

    /// Applies the connect deadline; true if the link just failed.
    @discardableResult
    func refreshState() -> Bool {
        guard state == .connecting, ContinuousClock.now >= connectDeadline else { return false }
        fail(.neverConnected(peer: address, timeout: connectTimeout))
        return true
    }

    func wakeTime(_ deadline: ContinuousClock.Instant) -> ContinuousClock.Instant {
        state == .connecting ? min(deadline, connectDeadline) : deadline
    }

    func fail(_ error: TransportError) {
        if case .failed = state { return }
        state = .failed(error)
        fabric.connecting.removeAll { $0 === self }
        pending = []
        fabric.changed()
    }
}

/// The owner's handle on an inbox endpoint; closing (or dropping) it closes the inbox.
final class MemoryInbox: Inbox {
    let endpoint: InboxEndpoint
    private(set) var stats = TrafficStats()

    init(_ endpoint: InboxEndpoint) {
        self.endpoint = endpoint
    }

    deinit { close() }

    var address: String { endpoint.address }
    private var fabric: Fabric { endpoint.fabric }

    func close() {
        fabric.withLock { endpoint.shutDown(reason: "connection closed") }
    }

    func receive(deadline: ContinuousClock.Instant, watching: Set<PeerID>) throws -> (from: PeerID, envelope: Envelope)? {
        let taken: (PeerID, [Payload])? = try fabric.withLock {
            while true {
                guard endpoint.isOpen else { throw TransportError.closed("inbox \(address)") }
                if !endpoint.queue.isEmpty {
                    let (peer, frames) = endpoint.queue.removeFirst()
                    endpoint.heard.insert(peer)
                    endpoint.lost[peer] = nil
                    return (peer, frames)
                }
                if let peer = watching.first(where: { endpoint.lost[$0] != nil }) {
                    throw TransportError.peerLost(peer: peer.name, reason: endpoint.lost[peer]!)
                }
                if ContinuousClock.now >= deadline { return nil }
                fabric.wait(until: deadline)
            }
        }
        guard let (peer, frames) = taken else { return nil }
        stats.countReceived(frames)
        return (peer, try FrameCodec.decode(frames, from: peer.name))
    }

    func send(_ envelope: Envelope, to peer: PeerID) throws {
        let frames = try FrameCodec.encode(envelope, to: peer.name)
        try fabric.withLock {
            guard endpoint.isOpen else { throw TransportError.closed("inbox \(address)") }
            guard let link = endpoint.links[peer], link.state == .connected else {
                throw TransportError.unreachable(peer: peer.name, inbox: address)
            }
            link.inbound.append(frames)
            fabric.changed()
        }
        stats.countSent(frames)
    }
}

/// The owner's handle on a link endpoint; closing (or dropping) it closes the link.
final class MemoryLink: Link {
    let endpoint: LinkEndpoint
    private(set) var stats = TrafficStats()

    init(_ endpoint: LinkEndpoint) {
        self.endpoint = endpoint
    }

    deinit { close() }

    var address: String { endpoint.address }
    var identity: String { endpoint.peer.name }
    var state: LinkState { fabric.withLock { endpoint.state } }
    private var fabric: Fabric { endpoint.fabric }

    func close() {
        fabric.withLock {
            endpoint.inbox?.detach(endpoint)
            endpoint.fail(.closed("link to \(address)"))
            endpoint.inbound = []
        }
    }

    func send(_ envelope: Envelope) throws {
        let frames = try FrameCodec.encode(envelope, to: address)
        try fabric.withLock {
            endpoint.refreshState()
            switch endpoint.state {
            case .failed(let error):
                throw error
            case .connecting:
                endpoint.pending.append(frames)
            case .connected:
                endpoint.inbox?.queue.append((endpoint.peer, frames))
                fabric.changed()
            }
        }
        stats.countSent(frames)
    }

    func receive(deadline: ContinuousClock.Instant) throws -> Envelope? {
        let frames: [Payload]? = try fabric.withLock {
            while true {
                if let frames = try takeNow() { return frames }
                if endpoint.refreshState() { continue }
                if ContinuousClock.now >= deadline { return nil }
                fabric.wait(until: endpoint.wakeTime(deadline))
            }
        }
        return try frames.map(decode)
    }

    /// Lock held. What arrived before a failure, then the failure (as ZMQLink does).
    func takeNow() throws -> [Payload]? {
        if !endpoint.inbound.isEmpty { return endpoint.inbound.removeFirst() }
        if case .failed(let error) = endpoint.state { throw error }
        return nil
    }

    func decode(_ frames: [Payload]) throws -> Envelope {
        stats.countReceived(frames)
        return try FrameCodec.decode(frames, from: address)
    }
}

final class MemoryLinkSet: LinkSet {
    private let memoryLinks: [MemoryLink]
    private var next = 0

    init(_ links: [MemoryLink]) {
        memoryLinks = links
    }

    var links: [any Link] { memoryLinks }

    func receiveAny(deadline: ContinuousClock.Instant) throws -> (index: Int, envelope: Envelope)? {
        guard let fabric = memoryLinks.first?.endpoint.fabric else { return nil }
        let taken: (Int, [Payload])? = try fabric.withLock {
            while true {
                for offset in 0..<memoryLinks.count {
                    let index = (next + offset) % memoryLinks.count
                    if let frames = try memoryLinks[index].takeNow() {
                        next = (index + 1) % memoryLinks.count
                        return (index, frames)
                    }
                }
                if memoryLinks.reduce(false, { $1.endpoint.refreshState() || $0 }) { continue }
                if ContinuousClock.now >= deadline { return nil }
                fabric.wait(until: memoryLinks.map { $0.endpoint.wakeTime(deadline) }.min() ?? deadline)
            }
        }
        guard let (index, frames) = taken else { return nil }
        return (index, try memoryLinks[index].decode(frames))
    }
}
