import CZeroMQ
import Foundation

/// Raw ZeroMQ round-trip latency over loopback: a DEALER sends one frame of the given size to a
/// ROUTER that echoes it from another thread. No protobuf, no validation: the floor under every
/// Shoal message of that size, for comparing against measured per-step communication time.
public enum RoundTripProbe {
    public struct Measurement: Sendable, CustomStringConvertible {
        public var payloadBytes: Int
        public var iterations: Int
        public var p50: Duration
        public var p90: Duration
        public var min: Duration
        public var max: Duration

        public var description: String {
            "\(payloadBytes) B round trip over \(iterations) iterations: p50 \(p50.microseconds) µs, "
                + "p90 \(p90.microseconds) µs, min \(min.microseconds) µs, max \(max.microseconds) µs"
        }
    }

    public struct InvalidParameters: Error, CustomStringConvertible {
        public var payloadBytes: Int, iterations: Int, warmup: Int
        public var description: String {
            "round-trip probe needs payloadBytes >= 0, iterations > 0, warmup >= 0 (got \(payloadBytes), \(iterations), \(warmup))"
        }
    }

    /// Measures `iterations` echoes of `payloadBytes` after `warmup` unmeasured ones.
    public static func measure(
        payloadBytes: Int, iterations: Int = 1000, warmup: Int = 50, options: TransportOptions = TransportOptions()
    ) throws -> Measurement {
        guard payloadBytes >= 0, iterations > 0, warmup >= 0 else {
            throw InvalidParameters(payloadBytes: payloadBytes, iterations: iterations, warmup: warmup)
        }
        let transport = try ZMQTransport(options: options)
        let router = try transport.makeSocket(ZMQ_ROUTER)
        try router.bind("tcp://127.0.0.1:*")
        let dealer = try transport.makeSocket(ZMQ_DEALER)
        try dealer.connect(router.lastEndpoint)

        let total = warmup + iterations
        let echo = EchoThread(router: router, messages: total, timeout: options.sendTimeout)
        let payload = Payload(count: payloadBytes) { bytes in
            for index in bytes.indices { bytes[index] = UInt8(truncatingIfNeeded: index) }
        }
        var samples: [Duration] = []
        samples.reserveCapacity(iterations)
        let clock = ContinuousClock()
        defer { echo.join() }
        for round in 0..<total {
            let start = clock.now
            try send(dealer, [payload], timeout: options.sendTimeout)
            guard let reply = try receive(dealer, deadline: start + options.sendTimeout) else {
                throw TransportError.timedOut(peer: "loopback echo", waitingFor: "echo \(round)")
            }
            let elapsed = clock.now - start
            guard reply.frames.count == 1, reply.frames[0].count == payloadBytes else {
                throw TransportError.unexpectedMessage(peer: "loopback echo", expected: "\(payloadBytes) bytes", received: "\(reply.frames.map(\.count)) bytes")
            }
            if round >= warmup { samples.append(elapsed) }
        }
        samples.sort()
        func percentile(_ fraction: Double) -> Duration {
            samples[Swift.min(samples.count - 1, Int((Double(samples.count) * fraction).rounded(.down)))]
        }
        return Measurement(
            payloadBytes: payloadBytes, iterations: iterations, p50: percentile(0.5), p90: percentile(0.9),
            min: samples.first!, max: samples.last!)
    }

    fileprivate static func send(_ socket: ZMQSocket, _ frames: [Payload], timeout: Duration) throws {
        do {
            try socket.send(frames)
        } catch .other(let error) {
            throw error
        } catch {
            throw TransportError.sendTimedOut(peer: "loopback echo", timeout: timeout)
        }
    }

    fileprivate static func receive(_ socket: ZMQSocket, deadline: ContinuousClock.Instant) throws -> ZMQSocket.Received? {
        while true {
            if let message = try socket.receive() { return message }
            if ContinuousClock.now >= deadline { return nil }
            try pollReadable([socket], until: deadline)
        }
    }
}

/// Echoes `messages` messages back to their sender, then ends. Owns the ROUTER from the moment it
/// starts: the measuring thread never touches that socket again.
private final class EchoThread: @unchecked Sendable {
    private let router: ZMQSocket
    private let done = DispatchSemaphore(value: 0)

    init(router: ZMQSocket, messages: Int, timeout: Duration) {
        self.router = router
        let thread = Thread { [self] in
            defer { done.signal() }
            for _ in 0..<messages {
                guard let message = try? RoundTripProbe.receive(self.router, deadline: .now + timeout),
                    (try? RoundTripProbe.send(self.router, message.frames, timeout: timeout)) != nil
                else { return }
            }
        }
        thread.name = "shoal-rtt-echo"
        thread.start()
    }

    func join() {
        done.wait()
    }
}
