import WireProtocol

/// A message that cannot be accepted as it is. `peer` names the other side: a link's remote
/// address, or the sender's identity on an inbox (`PeerID(name:)` turns it back into an address
/// to answer, e.g. with a `Refused`).
public enum WireError: Error, Equatable, CustomStringConvertible {
    /// The peer speaks another protocol version.
    case versionMismatch(peer: String, received: UInt32, expected: UInt32)
    /// The header announces `declared` tensors but `received` frames followed it.
    case frameCountMismatch(peer: String, declared: Int, received: Int)
    /// A frame's size differs from its description's byte_length.
    case byteLengthMismatch(peer: String, tensor: String, declared: UInt64, received: Int)
    /// A tensor's byte_length does not fit its dtype and shape.
    case inconsistentTensor(peer: String, tensor: String, detail: String)
    /// The header frame is not a valid `Shoal_V1_Header`.
    case undecodableHeader(peer: String, detail: String)
    /// A message without even a header frame.
    case missingHeader(peer: String)

    public var peer: String {
        switch self {
        case .versionMismatch(let peer, _, _), .frameCountMismatch(let peer, _, _),
            .byteLengthMismatch(let peer, _, _, _), .inconsistentTensor(let peer, _, _),
            .undecodableHeader(let peer, _), .missingHeader(let peer):
            peer
        }
    }

    public var description: String {
        switch self {
        case .versionMismatch(let peer, let received, let expected):
            "\(peer) speaks Shoal protocol version \(received), this node speaks \(expected)"
        case .frameCountMismatch(let peer, let declared, let received):
            "message from \(peer) describes \(declared) tensor frame(s) but carries \(received)"
        case .byteLengthMismatch(let peer, let tensor, let declared, let received):
            "tensor '\(tensor)' from \(peer) declares \(declared) bytes but its frame has \(received)"
        case .inconsistentTensor(let peer, let tensor, let detail):
            "tensor '\(tensor)' from \(peer): \(detail)"
        case .undecodableHeader(let peer, let detail):
            "undecodable Shoal header from \(peer): \(detail)"
        case .missingHeader(let peer):
            "empty message from \(peer) (no header frame)"
        }
    }
}

/// Failures of the transport itself. `peer` strings are remote addresses for links and
/// identities for inbox peers, so the message says which node is at fault.
public enum TransportError: Error, Equatable, CustomStringConvertible {
    /// The connection to a peer broke: it closed, crashed, or stopped answering heartbeats.
    case peerLost(peer: String, reason: String)
    /// A link never reached its peer within the connect timeout.
    case neverConnected(peer: String, timeout: Duration)
    /// An inbox was asked to send to a peer that is not connected to it.
    case unreachable(peer: String, inbox: String)
    /// The peer did not take the message before the send timeout (its queue is full).
    case sendTimedOut(peer: String, timeout: Duration)
    /// Binding an inbox failed (address in use, malformed, not a local interface).
    case bindFailed(address: String, reason: String)
    /// A link's address is malformed or its transport unsupported.
    case connectFailed(address: String, reason: String)
    /// The socket was already closed.
    case closed(String)
    /// The handshake was refused by the worker.
    case refused(peer: String, code: Shoal_V1_Refused.Code, reason: String)
    /// A reply of the wrong kind.
    case unexpectedMessage(peer: String, expected: String, received: String)
    /// No reply arrived before the deadline.
    case timedOut(peer: String, waitingFor: String)
    /// A ZeroMQ call failed; `operation` says which and on what.
    case zmq(operation: String, code: Int32, message: String)
    /// A transport was asked to work with another transport's links.
    case foreignLink(String)

    public var description: String {
        switch self {
        case .peerLost(let peer, let reason):
            "peer \(peer) lost: \(reason)"
        case .neverConnected(let peer, let timeout):
            "peer \(peer) never connected within \(timeout.shoalSeconds)"
        case .unreachable(let peer, let inbox):
            "peer \(peer) is not connected to inbox \(inbox)"
        case .sendTimedOut(let peer, let timeout):
            "send to \(peer) timed out after \(timeout.shoalSeconds) (peer not reading?)"
        case .bindFailed(let address, let reason):
            "cannot bind inbox at \(address): \(reason)"
        case .connectFailed(let address, let reason):
            "cannot connect to \(address): \(reason)"
        case .closed(let what):
            "\(what) is closed"
        case .refused(let peer, let code, let reason):
            "\(peer) refused the handshake (\(code)): \(reason)"
        case .unexpectedMessage(let peer, let expected, let received):
            "\(peer) sent '\(received)' where '\(expected)' was expected"
        case .timedOut(let peer, let waitingFor):
            "no \(waitingFor) from \(peer) before the deadline"
        case .zmq(let operation, let code, let message):
            "ZeroMQ \(operation) failed: \(message) (errno \(code))"
        case .foreignLink(let detail):
            detail
        }
    }
}
