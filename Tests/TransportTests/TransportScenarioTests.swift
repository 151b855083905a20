import Foundation
import Testing
import WireProtocol

@testable import Transport

/// Scenarios written once and run against ZeroMQ over loopback tcp and the in-memory fabric, so
/// the runtime's unit tests (in memory) exercise the semantics production (ZeroMQ) has.
@Suite struct TransportScenarioTests {
    @Test(arguments: Backend.allCases)
    func tensorFramesRoundTripThroughInbox(_ backend: Backend) throws {
        let transport = try backend.makeTransport()
        let peer = try EchoPeer(transport)
        let link = try transport.connect(peer.address, identity: "coordinator")
        for size in [0, 1, 64 * 1024, 8 * 1024 * 1024] {
            let sent = tensorEnvelope(size: size, stepID: UInt64(size))
            try link.send(sent)
            let echoed = try #require(try link.receive(deadline: .now + .seconds(10)), "no echo of \(size) bytes")
            #expect(echoed.header == sent.header)
            #expect(echoed.payloads == sent.payloads, "payload of \(size) bytes differs")
        }
        #expect(link.state == .connected)
        try link.send(Envelope(.goodbye(Shoal_V1_Goodbye())))
        try peer.join()
    }

    @Test(arguments: Backend.allCases)
    func statisticsCountEveryFrameOnBothSides(_ backend: Backend) throws {
        let transport = try backend.makeTransport()
        let inbox = try transport.bind("tcp://127.0.0.1:*")
        let link = try transport.connect(inbox.address, identity: "w0")
        let messages = [tensorEnvelope(size: 1000), ping(5), tensorEnvelope(size: 3)]
        for message in messages { try link.send(message) }
        var senders: [PeerID] = []
        for _ in messages {
            let (from, _) = try #require(try inbox.receive(deadline: .now + .seconds(5)))
            senders.append(from)
        }
        try inbox.send(pong(5), to: PeerID("w0"))
        _ = try #require(try link.receive(deadline: .now + .seconds(5)))

        let wireBytes = try messages.map { try FrameCodec.encode($0, to: "").reduce(0) { $0 + $1.count } }
        let pongBytes = try FrameCodec.encode(pong(5), to: "").reduce(0) { $0 + $1.count }
        #expect(senders == [PeerID("w0"), PeerID("w0"), PeerID("w0")])
        #expect(link.stats.messagesSent == 3 && link.stats.bytesSent == UInt64(wireBytes.reduce(0, +)))
        #expect(inbox.stats.messagesReceived == 3 && inbox.stats.bytesReceived == link.stats.bytesSent)
        #expect(inbox.stats.messagesSent == 1 && inbox.stats.bytesSent == UInt64(pongBytes))
        #expect(link.stats.messagesReceived == 1 && link.stats.bytesReceived == inbox.stats.bytesSent)
    }

    @Test(arguments: Backend.allCases)
    func receiveReturnsNilAtTheDeadline(_ backend: Backend) throws {
        let transport = try backend.makeTransport()
        let inbox = try transport.bind("tcp://127.0.0.1:*")
        let link = try transport.connect(inbox.address, identity: "idle")
        let (fromInbox, inboxWait) = try timed { try inbox.receive(deadline: .now + .milliseconds(300)) }
        let (fromLink, linkWait) = try timed { try link.receive(deadline: .now + .milliseconds(300)) }
        #expect(fromInbox == nil && fromLink == nil)
        for wait in [inboxWait, linkWait] {
            #expect(wait >= .milliseconds(290) && wait < .milliseconds(1500), "waited \(wait)")
        }
        // A deadline in the past polls once and returns at once.
        let (_, immediate) = try timed { try link.receive(deadline: .now - .seconds(1)) }
        #expect(immediate < .milliseconds(100))
    }

    @Test(arguments: Backend.allCases)
    func linkToVacantAddressReportsNeverConnected(_ backend: Backend) throws {
        let transport = try backend.makeTransport()
        let address = try vacantAddress()
        let link = try transport.connect(address, identity: "coordinator")
        try link.send(ping(1))  // queued while connecting, as ZeroMQ does
        let (error, elapsed) = timed { caught { _ = try link.receive(deadline: .now + .seconds(10)) } }
        #expect(error as? TransportError == .neverConnected(peer: address, timeout: testOptions.connectTimeout))
        #expect(elapsed >= .milliseconds(900) && elapsed < testOptions.connectTimeout + lossSlack, "reported after \(elapsed)")
        #expect("\(error!)".contains(address))
        // The failure is final.
        #expect(caught { try link.send(ping(2)) } as? TransportError == .neverConnected(peer: address, timeout: testOptions.connectTimeout))
    }

    @Test(arguments: Backend.allCases)
    func linkMadeBeforeTheInboxDeliversOnceItBinds(_ backend: Backend) throws {
        let transport = try backend.makeTransport()
        let address = try vacantAddress()
        let link = try transport.connect(address, identity: "early")
        try link.send(ping(11))
        Thread.sleep(forTimeInterval: 0.2)
        let inbox = try transport.bind(address)
        let (from, envelope) = try #require(try inbox.receive(deadline: .now + .seconds(5)))
        #expect(from == PeerID("early"))
        #expect(envelope.body == ping(11).body)
    }

    @Test(arguments: Backend.allCases)
    func closedInboxIsReportedAsLostAfterItsLastReply(_ backend: Backend) throws {
        let transport = try backend.makeTransport()
        let peer = try EchoPeer(transport, closeAfter: 1)
        let link = try transport.connect(peer.address, identity: "coordinator")
        try link.send(ping(3))
        let reply = try #require(try link.receive(deadline: .now + .seconds(5)))
        #expect(reply.body == pong(3).body)
        let error = caught { _ = try link.receive(deadline: .now + .seconds(10)) }
        let closedAt = try peer.closedAt.take()
        let delay = ContinuousClock.now - closedAt
        guard case .peerLost(let address, _)? = error as? TransportError else {
            Issue.record("expected peerLost, got \(String(describing: error))")
            return
        }
        #expect(address == peer.address)
        #expect("\(error!)".hasPrefix("peer \(peer.address) lost: "))
        #expect(delay < testOptions.heartbeatInterval + testOptions.heartbeatTimeout + lossSlack, "noticed after \(delay)")
        guard case .failed = link.state else {
            Issue.record("link state is \(link.state) after the loss")
            return
        }
        #expect(caught { try link.send(ping(4)) } is TransportError)
        try peer.join()
    }

    @Test(arguments: Backend.allCases)
    func inboxReportsWatchedPeerThatWentAway(_ backend: Backend) throws {
        let transport = try backend.makeTransport()
        let inbox = try transport.bind("tcp://127.0.0.1:*")
        let address = inbox.address
        let worker = PeerThread("worker-1") {
            let link = try transport.connect(address, identity: "worker-1")
            try link.send(ping(8))
            // Wait for the answer so the message surely left before the close.
            _ = try link.receive(deadline: .now + .seconds(5))
            link.close()
        }
        let (from, envelope) = try #require(try inbox.receive(deadline: .now + .seconds(5), watching: [PeerID("worker-1")]))
        #expect(from == PeerID("worker-1") && envelope.body == ping(8).body)
        try inbox.send(pong(8), to: from)
        try worker.join()
        // An unwatched loss is not an error...
        #expect(try inbox.receive(deadline: .now + .milliseconds(200), watching: [PeerID("someone-else")]) == nil)
        // ...a watched one is.
        let (error, elapsed) = timed { caught { _ = try inbox.receive(deadline: .now + .seconds(10), watching: [PeerID("worker-1")]) } }
        #expect(error as? TransportError == .peerLost(peer: "worker-1", reason: (error as? TransportError)?.lossReason ?? ""))
        #expect(elapsed < testOptions.heartbeatInterval + testOptions.heartbeatTimeout + lossSlack)
    }

    @Test(arguments: Backend.allCases)
    func sendingToUnknownPeerFails(_ backend: Backend) throws {
        let transport = try backend.makeTransport()
        let inbox = try transport.bind("tcp://127.0.0.1:*")
        let error = caught { try inbox.send(ping(1), to: PeerID("nobody")) }
        #expect(error as? TransportError == .unreachable(peer: "nobody", inbox: inbox.address))
    }

    @Test(arguments: Backend.allCases)
    func versionMismatchIsReportedWithTheSender(_ backend: Backend) throws {
        let transport = try backend.makeTransport()
        let inbox = try transport.bind("tcp://127.0.0.1:*")
        let link = try transport.connect(inbox.address, identity: "future-coordinator")
        var message = ping(1)
        message.header.protocolVersion = 99
        try link.send(message)
        let error = caught { _ = try inbox.receive(deadline: .now + .seconds(5)) }
        #expect(error as? WireError == .versionMismatch(peer: "future-coordinator", received: 99, expected: WireProtocol.version))
        // The sender can be answered, e.g. with a Refused.
        var refusal = Shoal_V1_Refused()
        refusal.code = .versionMismatch
        try inbox.send(Envelope(.refused(refusal)), to: PeerID((error as! WireError).peer))
        #expect(try link.receive(deadline: .now + .seconds(5))?.body == .refused(refusal))
    }

    @Test(arguments: Backend.allCases)
    func linkSetServesEveryLinkAndReportsTheLostOne(_ backend: Backend) throws {
        let transport = try backend.makeTransport()
        let steady = try EchoPeer(transport)
        let dying = try EchoPeer(transport, closeAfter: 2)
        let links = [
            try transport.connect(steady.address, identity: "coordinator"),
            try transport.connect(dying.address, identity: "coordinator"),
        ]
        let set = try transport.linkSet(links)
        var answered: [Int: [UInt64]] = [:]
        for round in 0..<2 {
            for (index, link) in links.enumerated() { try link.send(ping(UInt64(10 * index + round))) }
            for _ in links {
                let (index, envelope) = try #require(try set.receiveAny(deadline: .now + .seconds(5)))
                guard case .pong(let pong) = envelope.body else { throw TestFailure("unexpected \(envelope.header.kindName)") }
                answered[index, default: []].append(pong.nonce)
            }
        }
        #expect(answered[0] == [0, 1] && answered[1] == [10, 11])
        let error = caught { _ = try set.receiveAny(deadline: .now + .seconds(10)) }
        guard case .peerLost(let address, _)? = error as? TransportError else {
            Issue.record("expected peerLost, got \(String(describing: error))")
            return
        }
        #expect(address == dying.address)
        #expect(links[0].state == .connected)
        try links[0].send(Envelope(.goodbye(Shoal_V1_Goodbye())))
        try steady.join()
        try dying.join()
    }

    @Test(arguments: Backend.allCases)
    func linkSetReturnsNilAtTheDeadline(_ backend: Backend) throws {
        let transport = try backend.makeTransport()
        let inbox = try transport.bind("tcp://127.0.0.1:*")
        let set = try transport.linkSet([try transport.connect(inbox.address, identity: "a"), try transport.connect(inbox.address, identity: "b")])
        let (result, elapsed) = try timed { try set.receiveAny(deadline: .now + .milliseconds(300)) }
        #expect(result == nil)
        #expect(elapsed >= .milliseconds(290) && elapsed < .milliseconds(1500))
    }

    @Test(arguments: Backend.allCases)
    func handshakeWelcomesRefusesAndTimesOut(_ backend: Backend) throws {
        let transport = try backend.makeTransport()
        let ready = Mailbox<String>()
        let worker = PeerThread("worker") {
            let inbox = try transport.bind("tcp://127.0.0.1:*")
            ready.put(inbox.address)
            for _ in 0..<2 {
                guard let (from, envelope) = try inbox.receive(deadline: .now + .seconds(10)) else { throw TestFailure("no Hello") }
                if let refusal = checkHello(envelope.header, expectedToken: "s3cret") {
                    try inbox.send(Envelope(.refused(refusal)), to: from)
                } else {
                    var welcome = Shoal_V1_Welcome()
                    welcome.workerName = "w0"
                    welcome.threads = 2
                    welcome.isa = "avx512"
                    try inbox.send(Envelope(.welcome(welcome)), to: from)
                }
            }
            // Stay silent for the third coordinator (and keep the inbox open meanwhile).
            let quietUntil = ContinuousClock.now + .seconds(2)
            while try inbox.receive(deadline: quietUntil) != nil {}
        }
        let address = try ready.take()
        let welcome = try handshake(try transport.connect(address, identity: "c1"), token: "s3cret", name: "c1", deadline: .now + .seconds(5))
        #expect(welcome.workerName == "w0" && welcome.threads == 2 && welcome.isa == "avx512")

        let refused = caught { _ = try handshake(try transport.connect(address, identity: "c2"), token: "guess", name: "c2", deadline: .now + .seconds(5)) }
        guard case .refused(let peer, let code, _)? = refused as? TransportError else {
            Issue.record("expected refused, got \(String(describing: refused))")
            return
        }
        #expect(peer == address && code == .badToken)

        let (silence, elapsed) = timed { caught { _ = try handshake(try transport.connect(address, identity: "c3"), token: "s3cret", name: "c3", deadline: .now + .milliseconds(400)) } }
        #expect(silence as? TransportError == .timedOut(peer: address, waitingFor: "answer to Hello"))
        #expect(elapsed < .seconds(2))
        try worker.join()
    }

    @Test(arguments: Backend.allCases)
    func closedSocketsRefuseWork(_ backend: Backend) throws {
        let transport = try backend.makeTransport()
        let inbox = try transport.bind("tcp://127.0.0.1:*")
        let link = try transport.connect(inbox.address, identity: "x")
        link.close()
        inbox.close()
        #expect(caught { try link.send(ping(1)) } as? TransportError == .closed("link to \(inbox.address)"))
        #expect(caught { _ = try inbox.receive(deadline: .now) } as? TransportError == .closed("inbox \(inbox.address)"))
    }

    @Test(arguments: Backend.allCases)
    func bindingATakenAddressFails(_ backend: Backend) throws {
        let transport = try backend.makeTransport()
        let inbox = try transport.bind("tcp://127.0.0.1:*")
        guard case .bindFailed(let address, _)? = caught({ _ = try transport.bind(inbox.address) }) as? TransportError else {
            Issue.record("second bind did not fail with bindFailed")
            return
        }
        #expect(address == inbox.address)
    }

    @Test func linkSetRejectsAnotherTransportsLinks() throws {
        let memory = InMemoryTransport(options: testOptions)
        let zmq = try ZMQTransport(options: testOptions)
        let inbox = try memory.bind("tcp://127.0.0.1:*")
        let link = try memory.connect(inbox.address, identity: "x")
        #expect(caught { _ = try zmq.linkSet([link]) } is TransportError)
        #expect(caught { _ = try InMemoryTransport().linkSet([link]) } is TransportError)
    }

    @Test func severedInMemoryPeerLooksLikeAHang() throws {
        let transport = InMemoryTransport(options: testOptions)
        let inbox = try transport.bind("tcp://127.0.0.1:*")
        let link = try transport.connect(inbox.address, identity: "c")
        try link.send(ping(1))
        transport.sever(inbox.address, reason: "no heartbeat for 0.6 s (simulated hang)")
        let error = caught { _ = try link.receive(deadline: .now + .seconds(1)) }
        #expect(error as? TransportError == .peerLost(peer: inbox.address, reason: "no heartbeat for 0.6 s (simulated hang)"))
    }
}

extension TransportError {
    var lossReason: String? {
        if case .peerLost(_, let reason) = self { return reason }
        return nil
    }
}
