import Foundation
import Testing
import WireProtocol

@testable import Transport

@Suite struct CodecTests {
    func stepEnvelope() -> Envelope {
        var sequence = Shoal_V1_SequenceStep()
        sequence.seqID = 4
        sequence.startPosition = 17
        sequence.tokenIds = [1, 2, -3]
        var step = Shoal_V1_Step()
        step.requestID = 9
        step.stepID = 100
        step.sequences = [sequence]
        step.wantLogits = true
        let hidden = Payload(elements: [Float](repeating: 0.5, count: 2 * 8))
        return Envelope(
            .step(step),
            tensors: [
                WireTensor(name: "hidden", dtype: .f32, shape: [2, 8], payload: hidden),
                WireTensor(name: "empty", dtype: .f16, shape: [0, 8], payload: Payload()),
                WireTensor(name: "blob", bytes: Payload([1, 2, 3])),
            ])
    }

    @Test func roundTripKeepsHeaderAndFrames() throws {
        let envelope = stepEnvelope()
        let frames = try FrameCodec.encode(envelope, to: "w1")
        #expect(frames.count == 4)
        let decoded = try FrameCodec.decode(frames, from: "w1")
        #expect(decoded.header == envelope.header)
        #expect(decoded.header.protocolVersion == WireProtocol.version)
        #expect(decoded.payloads == envelope.payloads)
        #expect(decoded.tensor(named: "hidden")?.payload.copyElements(as: Float.self) == [Float](repeating: 0.5, count: 16))
        #expect(decoded.tensor(named: "missing") == nil)
        #expect(decoded.header.kindName == "step")
    }

    @Test func tensorFramesAreSharedNotCopied() throws {
        let envelope = stepEnvelope()
        let decoded = try FrameCodec.decode(try FrameCodec.encode(envelope, to: "w1"), from: "w1")
        #expect(decoded.payloads[0].storage === envelope.payloads[0].storage)
    }

    @Test func versionMismatchNamesPeerAndVersions() throws {
        var envelope = stepEnvelope()
        envelope.header.protocolVersion = WireProtocol.version + 1
        let frames = try FrameCodec.encode(envelope, to: "w1")
        let error = caught { _ = try FrameCodec.decode(frames, from: "worker-7") }
        #expect(error as? WireError == .versionMismatch(peer: "worker-7", received: WireProtocol.version + 1, expected: WireProtocol.version))
        #expect("\(error!)".contains("worker-7"))
    }

    @Test func frameCountMismatchIsRejectedOnBothSides() throws {
        var envelope = stepEnvelope()
        envelope.payloads.removeLast()
        #expect(caught { _ = try FrameCodec.encode(envelope, to: "w2") } as? WireError == .frameCountMismatch(peer: "w2", declared: 3, received: 2))
        let frames = try FrameCodec.encode(stepEnvelope(), to: "w2")
        let error = caught { _ = try FrameCodec.decode(frames + [Payload([9])], from: "w2") }
        #expect(error as? WireError == .frameCountMismatch(peer: "w2", declared: 3, received: 4))
    }

    @Test func byteLengthMismatchNamesTensor() throws {
        var frames = try FrameCodec.encode(stepEnvelope(), to: "w3")
        frames[3] = Payload([1, 2])  // "blob" declared 3 bytes
        let error = caught { _ = try FrameCodec.decode(frames, from: "w3") }
        #expect(error as? WireError == .byteLengthMismatch(peer: "w3", tensor: "blob", declared: 3, received: 2))
        #expect("\(error!)".contains("'blob'"))
    }

    @Test func byteLengthMustMatchDtypeAndShape() throws {
        let wrong = Envelope(.ping(Shoal_V1_Ping()), tensors: [WireTensor(name: "x", dtype: .bf16, shape: [3, 4], payload: Payload(count: 20) { $0.initializeMemory(as: UInt8.self, repeating: 0) })])
        let error = caught { _ = try FrameCodec.encode(wrong, to: "w4") }
        guard case .inconsistentTensor(let peer, let tensor, let detail)? = error as? WireError else {
            Issue.record("expected inconsistentTensor, got \(String(describing: error))")
            return
        }
        #expect(peer == "w4" && tensor == "x" && detail.contains("24"))

        let partialBlock = Envelope(.ping(Shoal_V1_Ping()), tensors: [WireTensor(name: "q", dtype: .q80, shape: [1, 40], payload: Payload(count: 34) { $0.initializeMemory(as: UInt8.self, repeating: 0) })])
        #expect(caught { _ = try FrameCodec.encode(partialBlock, to: "w4") } is WireError)
    }

    @Test func undecodableHeaderIsReported() {
        let garbage = Payload([0xFF, 0xFF, 0xFF, 0xFF, 0x0F])
        let error = caught { _ = try FrameCodec.decode([garbage], from: "rogue") }
        guard case .undecodableHeader(let peer, _)? = error as? WireError else {
            Issue.record("expected undecodableHeader, got \(String(describing: error))")
            return
        }
        #expect(peer == "rogue")
    }

    @Test func emptyMessageHasNoHeader() {
        #expect(caught { _ = try FrameCodec.decode([], from: "p") } as? WireError == .missingHeader(peer: "p"))
    }

    @Test func unsetVersionDecodesAsMismatch() throws {
        // A hand-built header that forgot the version is refused, not taken for version 1.
        var header = Shoal_V1_Header()
        header.body = .goodbye(Shoal_V1_Goodbye())
        let bytes: [UInt8] = try header.serializedBytes()
        let error = caught { _ = try FrameCodec.decode([Payload(bytes)], from: "p") }
        #expect(error as? WireError == .versionMismatch(peer: "p", received: 0, expected: WireProtocol.version))
    }

    @Test(arguments: [
        (Shoal_V1_DType.f32, [2, 3] as [UInt64], 24 as UInt64?),
        (.f16, [5], 10), (.bf16, [1, 1, 4], 8), (.i32, [7], 28),
        (.q80, [2, 64], 2 * 2 * 34), (.q40, [3, 32], 3 * 18),
        (.q40, [31], nil), (.unspecified, [4], nil), (.f32, [UInt64.max, 2], nil), (.f32, [], 4),
    ])
    func dtypeByteLengths(dtype: Shoal_V1_DType, shape: [UInt64], expected: UInt64?) {
        #expect(dtype.byteLength(shape: shape) == expected)
    }

    @Test func payloadConstructorsAgree() {
        let bytes: [UInt8] = [1, 2, 3, 4]
        #expect(Payload(bytes) == Payload(Data(bytes)))
        #expect(Payload(bytes) == bytes.withUnsafeBytes { Payload(copying: $0) })
        #expect(Payload(elements: [UInt32(0x0403_0201)]) == Payload(bytes))
        #expect(Payload(bytes).copyElements(as: UInt16.self) == [0x0201, 0x0403])
        #expect(Payload([1, 2, 3]).copyElements(as: UInt16.self) == nil)
        #expect(Payload().isEmpty && Payload() == Payload([]))
    }

    @Test func externalPayloadRunsDeallocatorOnce() throws {
        let freed = Mailbox<Int>()
        let memory = UnsafeMutableRawBufferPointer.allocate(byteCount: 8, alignment: 8)
        memory.initializeMemory(as: UInt8.self, repeating: 7)
        do {
            let payload = Payload(bytesNoCopy: UnsafeRawBufferPointer(memory)) { bytes in
                freed.put(bytes.count)
                bytes.deallocate()
            }
            let copy = payload
            #expect(copy.count == 8)
        }
        #expect(try freed.take(timeout: .seconds(1)) == 8)
    }

    @Test func peerIDsRenderAsText() {
        #expect(PeerID("worker-1").name == "worker-1")
        #expect(PeerID(bytes: [0, 0x12, 0xAB]).name == "0x0012ab")
        #expect(caught { _ = try PeerID(linkIdentity: "", address: "tcp://x:1") } is TransportError)
        #expect(caught { _ = try PeerID(linkIdentity: String(repeating: "a", count: 256), address: "tcp://x:1") } is TransportError)
    }
}

@Suite struct HelloCheckTests {
    func helloHeader(token: String, version: UInt32 = WireProtocol.version) -> Shoal_V1_Header {
        var hello = Shoal_V1_Hello()
        hello.clusterToken = token
        hello.coordinatorName = "coord"
        var header = Envelope(.hello(hello)).header
        header.protocolVersion = version
        return header
    }

    @Test func acceptsMatchingHello() {
        #expect(checkHello(helloHeader(token: "s3cret"), expectedToken: "s3cret") == nil)
    }

    @Test func refusesWrongToken() {
        #expect(checkHello(helloHeader(token: "s3cre"), expectedToken: "s3cret")?.code == .badToken)
        #expect(checkHello(helloHeader(token: "s3cret!"), expectedToken: "s3cret")?.code == .badToken)
    }

    @Test func refusesOtherVersionFirst() {
        let refusal = checkHello(helloHeader(token: "wrong", version: 2), expectedToken: "s3cret")
        #expect(refusal?.code == .versionMismatch)
        #expect(refusal?.reason.contains("2") == true)
    }

    @Test func refusesOtherMessages() {
        let refusal = checkHello(ping(1).header, expectedToken: "s3cret")
        #expect(refusal?.code == .badRequest)
        #expect(refusal?.reason.contains("ping") == true)
    }
}
