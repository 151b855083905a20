import WireProtocol

/// Coordinator side of session setup: sends Hello on `link` and waits for the worker's answer.
///
/// Returns the worker's `Welcome`. Throws `TransportError.refused` (with the worker's code and
/// reason) if it refused, `.timedOut` if no answer came before `deadline`, `.unexpectedMessage`
/// for any other reply, and whatever the link throws (peer lost, version mismatch, ...).
public func handshake(
    _ link: any Link, token: String, name: String, deadline: ContinuousClock.Instant
) throws -> Shoal_V1_Welcome {
    var hello = Shoal_V1_Hello()
    hello.clusterToken = token
    hello.coordinatorName = name
    try link.send(Envelope(.hello(hello)))
    guard let reply = try link.receive(deadline: deadline) else {
        throw TransportError.timedOut(peer: link.address, waitingFor: "answer to Hello")
    }
    switch reply.body {
    case .welcome(let welcome):
        return welcome
    case .refused(let refused):
        throw TransportError.refused(peer: link.address, code: refused.code, reason: refused.reason)
    default:
        throw TransportError.unexpectedMessage(peer: link.address, expected: "welcome", received: reply.header.kindName)
    }
}

/// Worker side: why `header` must be refused as the start of a session, or nil to accept it.
/// Checks the protocol version, that it is a Hello, and the cluster token. Refusing a busy
/// worker is the runtime's call (`Refused.Code.busy`).
public func checkHello(_ header: Shoal_V1_Header, expectedToken: String) -> Shoal_V1_Refused? {
    var refusal = Shoal_V1_Refused()
    if header.protocolVersion != WireProtocol.version {
        refusal.code = .versionMismatch
        refusal.reason = "worker speaks Shoal protocol version \(WireProtocol.version), coordinator sent \(header.protocolVersion)"
    } else if case .hello(let hello)? = header.body {
        guard !constantTimeEqual(hello.clusterToken, expectedToken) else { return nil }
        refusal.code = .badToken
        refusal.reason = "cluster token does not match this worker's"
    } else {
        refusal.code = .badRequest
        refusal.reason = "expected hello, got \(header.kindName)"
    }
    return refusal
}

/// Compares secrets without an early exit, so response timing does not reveal how much of a
/// guessed token was right.
private func constantTimeEqual(_ a: String, _ b: String) -> Bool {
    let x = Array(a.utf8), y = Array(b.utf8)
    var difference = UInt8(truncatingIfNeeded: x.count ^ y.count)
    for index in 0..<max(x.count, y.count) {
        difference |= (index < x.count ? x[index] : 0) ^ (index < y.count ? y[index] : 0)
    }
    return difference == 0 && x.count == y.count
}
