import Foundation
import Transport
import WireProtocol

/// A worker's inbox with a memory: messages that arrive before they are wanted (a peer's partial
/// for a layer not reached yet, the coordinator's next step while this one runs) wait here in
/// arrival order. Pings are answered on the spot so round-trip probes see no queueing.
final class Mailbox {
    let inbox: any Inbox
    private var stash: [(from: PeerID, envelope: Envelope)] = []
    /// Peers whose disconnection should interrupt a wait (the TP group and the coordinator).
    var watching: Set<PeerID> = []
    /// Called with every message taken from the socket (session liveness).
    var onReceive: (PeerID) -> Void = { _ in }

    init(inbox: any Inbox) { self.inbox = inbox }

    /// The first stashed or new message `match` accepts; the others stay stashed. Nil at the deadline.
    /// `interrupt` may turn a non-matching message into an error (an Abort for the running request).
    func wait(deadline: ContinuousClock.Instant,
              interrupt: (PeerID, Envelope) -> Error? = { _, _ in nil },
              match: (PeerID, Envelope) -> Bool) throws -> (from: PeerID, envelope: Envelope)? {
        if let i = stash.firstIndex(where: { match($0.from, $0.envelope) }) {
            return stash.remove(at: i)
        }
        while true {
            guard let (from, envelope) = try inbox.receive(deadline: deadline, watching: watching) else { return nil }
            onReceive(from)
            if case .ping(let ping)? = envelope.body {
                var pong = Shoal_V1_Pong()
                pong.nonce = ping.nonce
                // Echo the payload so a probe of N bytes measures N bytes each way.
                try? inbox.send(Envelope(header: { var h = Shoal_V1_Header(); h.body = .pong(pong); h.tensors = envelope.header.tensors; return h }(),
                                         payloads: envelope.payloads), to: from)
                continue
            }
            if match(from, envelope) { return (from, envelope) }
            if let error = interrupt(from, envelope) {
                stash.append((from, envelope))
                throw error
            }
            stash.append((from, envelope))
        }
    }

    /// Drops stashed messages `predicate` selects (parts of an aborted step).
    func discard(where predicate: (PeerID, Envelope) -> Bool) {
        stash.removeAll { predicate($0.from, $0.envelope) }
    }

    var stashedCount: Int { stash.count }
}
