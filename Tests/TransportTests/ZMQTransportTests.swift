import CZeroMQ
import Foundation
import Testing
import WireProtocol

@testable import Transport

/// ZeroMQ-only behaviour: zero-copy, real processes that die or hang, raw sockets, the probe.
@Suite struct ZMQTransportTests {
    /// Loss must be reported within heartbeat interval + timeout (plus scheduling slack).
    let lossBound = testOptions.heartbeatInterval + testOptions.heartbeatTimeout + lossSlack

    @Test func largeFramesAreLentToZeroMQAndReceivedInPlace() throws {
        let transport = try ZMQTransport(options: testOptions)
        let inbox = try transport.bind("tcp://127.0.0.1:*")
        let link = try transport.connect(inbox.address, identity: "sender")
        let zmqLink = try #require(link as? ZMQLink)
        let freed = Mailbox<Int>()
        let size = 8 * 1024 * 1024
        do {
            let memory = UnsafeMutableRawBufferPointer.allocate(byteCount: size, alignment: 64)
            for index in 0..<size { memory[index] = UInt8(truncatingIfNeeded: index / 4096) }
            let lent = Payload(bytesNoCopy: UnsafeRawBufferPointer(memory)) { bytes in
                freed.put(bytes.count)
                bytes.deallocate()
            }
            let envelope = Envelope(.activation(Shoal_V1_Activation()), tensors: [WireTensor(name: "h", bytes: lent)])
            try link.send(envelope)
            #expect(zmqLink.zeroCopyFramesSent == 1, "the 8 MB frame was copied")
            let (_, received) = try #require(try inbox.receive(deadline: .now + .seconds(10)))
            #expect(received.payloads == [lent])
            #expect(received.payloads[0].storage.isZeroMQMessage, "received frame was copied out of its message")
        }
        // ZeroMQ released its reference from its I/O thread, so the memory went back to its owner.
        #expect(try freed.take(timeout: .seconds(5)) == size)
        try link.send(tensorEnvelope(size: 1024))
        #expect(zmqLink.zeroCopyFramesSent == 1, "small frames are copied, not lent")
    }

    @Test func peerClosedInItsOwnContextIsLost() throws {
        let ready = Mailbox<String>()
        let closed = Mailbox<ContinuousClock.Instant>()
        let peer = PeerThread("own-context-peer") {
            var options = testOptions
            options.linger = .zero
            let transport = try ZMQTransport(options: options)  // a context of its own
            let inbox = try transport.bind("tcp://127.0.0.1:*")
            ready.put(inbox.address)
            guard let (from, _) = try inbox.receive(deadline: .now + .seconds(10)) else { throw TestFailure("no ping") }
            try inbox.send(pong(1), to: from)
            Thread.sleep(forTimeInterval: 0.2)
            inbox.close()  // abrupt: linger 0, then the context terminates
            closed.put(.now)
        }
        let transport = try ZMQTransport(options: testOptions)
        let address = try ready.take()
        let link = try transport.connect(address, identity: "coordinator")
        try link.send(ping(1))
        #expect(try link.receive(deadline: .now + .seconds(5))?.body == pong(1).body)
        let error = caught { _ = try link.receive(deadline: .now + .seconds(10)) }
        let delay = ContinuousClock.now - (try closed.take())
        #expect((error as? TransportError)?.lossReason != nil, "got \(String(describing: error))")
        #expect("\(error!)".contains(address))
        #expect(delay < lossBound, "noticed after \(delay)")
        try peer.join()
    }

    @Test(arguments: [SIGSTOP, SIGKILL])
    func linkNoticesWorkerProcessThatHangsOrDies(_ signal: Int32) throws {
        let worker = try CPeerProcess(["serve"])
        let transport = try ZMQTransport(options: testOptions)
        let link = try transport.connect(worker.firstLine, identity: "coordinator")
        try link.send(ping(9))
        #expect(try link.receive(deadline: .now + .seconds(5))?.body == pong(9).body)
        worker.signal(signal)
        let signalled = ContinuousClock.now
        let error = caught { _ = try link.receive(deadline: .now + .seconds(15)) }
        let delay = ContinuousClock.now - signalled
        #expect(error as? TransportError == .peerLost(peer: worker.firstLine, reason: (error as? TransportError)?.lossReason ?? "-"))
        #expect("\(error!)".hasPrefix("peer \(worker.firstLine) lost: "))
        #expect(delay < lossBound, "noticed after \(delay)")
        if signal == SIGSTOP {
            // A stopped process keeps its TCP connection: only missing heartbeats reveal it.
            #expect(delay >= testOptions.heartbeatTimeout - .milliseconds(100), "noticed after \(delay), before the heartbeat timeout")
        }
    }

    @Test func inboxNoticesClientProcessThatHangs() throws {
        let transport = try ZMQTransport(options: testOptions)
        let inbox = try transport.bind("tcp://127.0.0.1:*")
        let client = try CPeerProcess(["client", inbox.address, "c-worker"])
        let watched: Set<PeerID> = [PeerID("c-worker")]
        let (from, envelope) = try #require(try inbox.receive(deadline: .now + .seconds(5), watching: watched))
        #expect(from == PeerID("c-worker") && envelope.body == ping(77).body)
        client.signal(SIGSTOP)
        let stopped = ContinuousClock.now
        let error = caught { _ = try inbox.receive(deadline: .now + .seconds(15), watching: watched) }
        let delay = ContinuousClock.now - stopped
        #expect((error as? TransportError)?.lossReason != nil && "\(error!)".contains("c-worker"), "got \(String(describing: error))")
        #expect(delay < lossBound, "noticed after \(delay)")
    }

    @Test func listenerThatNeverSpeaksZeroMQCountsAsNeverConnected() throws {
        // The kernel completes the TCP handshake into the backlog; the ZMTP greeting never comes.
        let (fd, endpoint) = try loopbackSocket(listening: true)
        defer { close(fd) }
        let link = try ZMQTransport(options: testOptions).connect(endpoint, identity: "coordinator")
        let (error, elapsed) = timed { caught { _ = try link.receive(deadline: .now + .seconds(10)) } }
        #expect(error as? TransportError == .neverConnected(peer: endpoint, timeout: testOptions.connectTimeout))
        #expect(elapsed < testOptions.connectTimeout + lossSlack)
    }

    @Test func garbageFromARawSocketNamesItsSender() throws {
        let transport = try ZMQTransport(options: testOptions)
        let inbox = try transport.bind("tcp://127.0.0.1:*")
        let rogue = try transport.makeSocket(ZMQ_DEALER)
        try rogue.set(ZMQ_ROUTING_ID, bytes: Array("rogue".utf8), "ROUTING_ID")
        try rogue.connect(inbox.address)
        try rogue.send([Payload([0xFF, 0xFF, 0xFF, 0xFF, 0x0F]), Payload([1])])
        let error = caught { _ = try inbox.receive(deadline: .now + .seconds(5)) }
        guard case .undecodableHeader(let peer, _)? = error as? WireError else {
            Issue.record("expected undecodableHeader, got \(String(describing: error))")
            return
        }
        #expect(peer == "rogue")
        // The inbox keeps working after a bad message.
        try rogue.send(try FrameCodec.encode(ping(2), to: "inbox"))
        #expect(try inbox.receive(deadline: .now + .seconds(5))?.envelope.body == ping(2).body)
    }

    @Test(arguments: [2 * 1024, 64 * 1024])
    func roundTripProbeMeasuresLoopback(_ size: Int) throws {
        let measurement = try RoundTripProbe.measure(payloadBytes: size, iterations: 300, warmup: 30)
        print("RoundTripProbe: \(measurement)")
        #expect(measurement.payloadBytes == size && measurement.iterations == 300)
        #expect(measurement.min > .zero && measurement.min <= measurement.p50)
        #expect(measurement.p50 <= measurement.p90 && measurement.p90 <= measurement.max)
        #expect(measurement.p50 < .milliseconds(50), "loopback round trip of \(size) B took \(measurement.p50)")
    }

    @Test func roundTripProbeRejectsBadParameters() {
        #expect(caught { _ = try RoundTripProbe.measure(payloadBytes: 16, iterations: 0) } is RoundTripProbe.InvalidParameters)
        #expect(caught { _ = try RoundTripProbe.measure(payloadBytes: -1, iterations: 10) } is RoundTripProbe.InvalidParameters)
    }
}
