import ClusterPlan
import Foundation
import Kernels
@testable import Runtime
import Testing
import Transport

/// Star, ring and mesh over the in-memory transport: N ranks on N threads, each with its own
/// inbox and links, exactly as workers are wired. Every rank must end with the same bits, equal
/// to the sum (exactly in f32, within the format's rounding for compressed partials).
struct AllReduceTests {
    /// Runs one all-reduce among `n` ranks and returns each rank's result.
    func reduce(_ algorithm: AllReduceAlgorithm, ranks n: Int, length: Int, sync: SyncDType, inputs: [[Float]]) throws -> [[Float]] {
        let transport = InMemoryTransport()
        let addresses = (0 ..< n).map { "mem://rank\($0)-\(UUID().uuidString)" }
        let results = Locked([[Float]](repeating: [], count: n))
        let errors = Locked([String]())
        let ready = DispatchGroup()
        let bound = DispatchSemaphore(value: 0)
        for r in 0 ..< n {
            ready.enter()
            Thread {
                defer { ready.leave() }
                do {
                    let inbox = try transport.bind(addresses[r])
                    bound.signal()
                    var links: [Int: any Link] = [:]
                    for p in 0 ..< n where p != r { links[p] = try transport.connect(addresses[p], identity: "rank\(r)") }
                    let mailbox = Mailbox(inbox: inbox)
                    let group = PeerGroup(rank: r, addresses: addresses, codec: SyncCodec(sync), links: links, mailbox: mailbox,
                                          partTimeout: .seconds(10), isAborted: { _, _ in nil })
                    var values = inputs[r]
                    try values.withUnsafeMutableBufferPointer {
                        try makeAllReduce(algorithm).reduce($0, tag: ReduceTag(step: 1, layer: 0, point: 1), over: group)
                    }
                    results.withLock { $0[r] = values }
                } catch {
                    errors.withLock { $0.append("rank \(r): \(error)") }
                }
            }.start()
        }
        for _ in 0 ..< n { bound.wait() }
        ready.wait()
        if let e = errors.withLock({ $0.first }) { throw TestFailure(e) }
        return results.withLock { $0 }
    }

    static let cases: [(AllReduceAlgorithm, Int)] = AllReduceAlgorithm.allCases.flatMap { a in [2, 3, 4, 5].map { (a, $0) } }

    @Test(arguments: cases)
    func sumsExactlyAndIdenticallyInF32(algorithm: AllReduceAlgorithm, ranks: Int) throws {
        var rng = SystemRandomNumberGenerator()
        let length = 2048 + 32 * ranks + 7  // not a multiple of the rank count
        let inputs = (0 ..< ranks).map { _ in (0 ..< length).map { _ in Float.random(in: -1 ... 1, using: &rng) } }
        let out = try reduce(algorithm, ranks: ranks, length: length, sync: .f32, inputs: inputs)
        for r in 1 ..< ranks { #expect(out[r] == out[0], "\(algorithm) rank \(r) differs from rank 0") }
        var worst: Float = 0
        for i in 0 ..< length {
            let exact = inputs.reduce(0.0) { $0 + Double($1[i]) }
            worst = max(worst, abs(out[0][i] - Float(exact)))
        }
        #expect(worst < 1e-5, "\(algorithm) with \(ranks) ranks: error \(worst)")
    }

    @Test(arguments: AllReduceAlgorithm.allCases, [SyncDType.f16, .bf16, .q8_0])
    func compressedPartialsAreIdenticalEverywhereAndClose(algorithm: AllReduceAlgorithm, sync: SyncDType) throws {
        let ranks = 3, length = 4096
        let inputs = (0 ..< ranks).map { r in (0 ..< length).map { Float(sin(Double($0 * (r + 1)) * 0.01)) } }
        let out = try reduce(algorithm, ranks: ranks, length: length, sync: sync, inputs: inputs)
        for r in 1 ..< ranks { #expect(out[r] == out[0], "\(algorithm)/\(sync): ranks disagree") }
        let bound: Float = sync == .bf16 ? 0.05 : sync == .q8_0 ? 0.05 : 0.005
        for i in stride(from: 0, to: length, by: 97) {
            let exact = inputs.reduce(Float(0)) { $0 + $1[i] }
            #expect(abs(out[0][i] - exact) < bound, "\(algorithm)/\(sync) element \(i): \(out[0][i]) vs \(exact)")
        }
    }

    @Test func ringChunksAlignToTheFormat() {
        let chunks = ringChunks(count: 4096 + 17, ranks: 3, granularity: 32)
        #expect(chunks.first?.lowerBound == 0 && chunks.last?.upperBound == 4096 + 17)
        #expect(chunks.dropLast().allSatisfy { $0.upperBound % 32 == 0 })
    }

    @Test func missingPeerTimesOutNamingIt() throws {
        let transport = InMemoryTransport()
        let inbox = try transport.bind("mem://alone-\(UUID().uuidString)")
        let group = PeerGroup(rank: 0, addresses: [inbox.address, "mem://nobody"], codec: SyncCodec(.f32), links: [:],
                              mailbox: Mailbox(inbox: inbox), partTimeout: .milliseconds(200), isAborted: { _, _ in nil })
        var v = [Float](repeating: 1, count: 64)
        #expect { try v.withUnsafeMutableBufferPointer { try group.receive(from: 1, tag: ReduceTag(step: 1, layer: 0, point: 1), phase: 1, chunk: 0, into: $0, accumulate: true) } }
            throws: { "\($0)".contains("mem://nobody") }
    }
}

/// A value behind a lock, for results gathered from threads.
final class Locked<T>: @unchecked Sendable {
    // Sendable: every access holds the lock.
    private var value: T
    private let lock = NSLock()
    init(_ v: T) { value = v }
    func withLock<R>(_ body: (inout T) -> R) -> R {
        lock.lock()
        defer { lock.unlock() }
        return body(&value)
    }
}
