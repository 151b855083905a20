/// Failures of a distributed run, each naming the node (address) at fault.
public enum RuntimeError: Error, CustomStringConvertible, Equatable {
    /// A worker died, hung or became unreachable.
    case workerLost(address: String, detail: String)
    /// A worker reported an error while serving a request.
    case workerFailed(address: String, message: String)
    /// A worker refused the session.
    case refused(address: String, reason: String)
    /// A peer sent something the protocol does not allow here.
    case protocolViolation(String)
    /// The request was aborted (by the coordinator, or because a peer failed).
    case aborted(String)
    /// A deadline passed while waiting for a peer.
    case timedOut(address: String, waitingFor: String)
    case invalidPlan(String)

    public var description: String {
        switch self {
        case let .workerLost(address, detail): return "worker \(address) lost: \(detail)"
        case let .workerFailed(address, message): return "worker \(address) failed: \(message)"
        case let .refused(address, reason): return "worker \(address) refused the session: \(reason)"
        case let .protocolViolation(s): return "protocol violation: \(s)"
        case let .aborted(s): return "aborted: \(s)"
        case let .timedOut(address, what): return "no \(what) from \(address) before the deadline"
        case let .invalidPlan(s): return s
        }
    }
}
