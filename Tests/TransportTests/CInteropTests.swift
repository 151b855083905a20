import Foundation
import Testing
import WireProtocol

@testable import Transport

/// The schema serves C peers: headers encoded by protobuf-c decode in Swift and vice versa, and a
/// C process speaks the framing over ZeroMQ.
@Suite struct CInteropTests {
    @Test func swiftDecodesWhatCEncodes() throws {
        let header = try CPeer.run(try CPeer.executable(), ["encode"])
        // The C header describes a bf16 [2, 4] and an i32 [3] tensor: the codec checks both frames.
        let frames = [Payload(header), Payload(count: 16) { $0.initializeMemory(as: UInt8.self, repeating: 1) }, Payload(elements: [Int32(1), 2, 3])]
        let envelope = try FrameCodec.decode(frames, from: "c-peer")
        #expect(envelope.header.tensors.map(\.name) == ["hidden", "ids"])
        #expect(envelope.header.tensors.map(\.dtype) == [.bf16, .i32])
        #expect(envelope.header.tensors.map(\.shape) == [[2, 4], [3]])
        guard case .step(let step)? = envelope.body else {
            Issue.record("expected a Step body, got \(envelope.header.kindName)")
            return
        }
        #expect(step.requestID == 7 && step.stepID == 42 && step.wantLogits)
        #expect(step.sequences.map(\.seqID) == [3, 9])
        #expect(step.sequences.map(\.startPosition) == [5, 0])
        #expect(step.sequences.map(\.tokenIds) == [[1, -2, 300], [11]])
    }

    static let swiftHeaders: [(name: String, envelope: Envelope, expected: [String])] = {
        var shard = Shoal_V1_ShardSpec()
        shard.rank = 1
        shard.tpSize = 2
        shard.ppSize = 1
        shard.layers = range(0, 4)
        shard.queryHeads = range(4, 8)
        shard.kvHeads = range(2, 4)
        shard.ffnColumns = [range(0, 64), range(128, 192)]
        var experts = Shoal_V1_LayerExperts()
        experts.layer = 1
        experts.experts = [range(0, 2), range(5, 6)]
        shard.experts = [experts]
        shard.lmHeadVocab = range(16000, 32000)
        var load = Shoal_V1_LoadShard()
        load.modelPath = "/models/tiny"
        load.modelIdentity = "sha256:abc"
        load.shard = shard
        load.peerInboxes = ["tcp://10.0.0.1:5601", "tcp://10.0.0.2:5601"]
        load.syncDtype = .bf16
        load.allReduce = .ring
        let loadShard = Envelope(.loadShard(load), tensors: [WireTensor(name: "logits", dtype: .f32, shape: [1, 4], payload: Payload(elements: [Float](repeating: 1, count: 4)))])

        var stats = Shoal_V1_StepStats()
        stats.computeNs = 1_500_000
        stats.commNs = 250_000
        stats.bytesSent = 4096
        stats.bytesReceived = 8192
        stats.allReduceNs = [1000, 2000, 3000]
        var result = Shoal_V1_StepResult()
        result.stepID = 42
        result.requestID = 7
        result.stats = stats
        result.seqIds = [3, 9]

        var part = Shoal_V1_AllReducePart()
        part.stepID = 5
        part.layer = 11
        part.point = .ffn
        part.phase = .gather
        part.chunk = 1
        part.fromRank = 2
        let q8 = Payload(count: 68) { $0.initializeMemory(as: UInt8.self, repeating: 0) }

        var refused = Shoal_V1_Refused()
        refused.code = .busy
        refused.reason = "serving coordinator-a"

        return [
            ("load_shard", loadShard, [
                "protocol_version=1",
                "tensors[0].name=\"logits\"", "tensors[0].dtype=DTYPE_F32", "tensors[0].shape=[1,4]", "tensors[0].byte_length=16",
                "load_shard={}",
                "load_shard.model_path=\"/models/tiny\"", "load_shard.model_identity=\"sha256:abc\"",
                "load_shard.shard={}", "load_shard.shard.rank=1", "load_shard.shard.tp_size=2", "load_shard.shard.pp_size=1",
                "load_shard.shard.layers={}", "load_shard.shard.layers.end=4",
                "load_shard.shard.query_heads={}", "load_shard.shard.query_heads.start=4", "load_shard.shard.query_heads.end=8",
                "load_shard.shard.kv_heads={}", "load_shard.shard.kv_heads.start=2", "load_shard.shard.kv_heads.end=4",
                "load_shard.shard.ffn_columns[0].end=64", "load_shard.shard.ffn_columns[1].start=128", "load_shard.shard.ffn_columns[1].end=192",
                "load_shard.shard.experts[0].layer=1", "load_shard.shard.experts[0].experts[0].end=2",
                "load_shard.shard.experts[0].experts[1].start=5", "load_shard.shard.experts[0].experts[1].end=6",
                "load_shard.shard.lm_head_vocab={}", "load_shard.shard.lm_head_vocab.start=16000", "load_shard.shard.lm_head_vocab.end=32000",
                "load_shard.peer_inboxes=[\"tcp://10.0.0.1:5601\",\"tcp://10.0.0.2:5601\"]",
                "load_shard.sync_dtype=DTYPE_BF16", "load_shard.all_reduce=ALL_REDUCE_ALGORITHM_RING",
            ]),
            ("step_result", Envelope(.stepResult(result)), [
                "protocol_version=1", "step_result={}", "step_result.step_id=42", "step_result.request_id=7",
                "step_result.stats={}", "step_result.stats.compute_ns=1500000", "step_result.stats.comm_ns=250000",
                "step_result.stats.bytes_sent=4096", "step_result.stats.bytes_received=8192",
                "step_result.stats.all_reduce_ns=[1000,2000,3000]", "step_result.seq_ids=[3,9]",
            ]),
            ("all_reduce_part", Envelope(.allReducePart(part), tensors: [WireTensor(name: "partial", dtype: .q80, shape: [1, 64], payload: q8)]), [
                "protocol_version=1",
                "tensors[0].name=\"partial\"", "tensors[0].dtype=DTYPE_Q8_0", "tensors[0].shape=[1,64]", "tensors[0].byte_length=68",
                "all_reduce_part={}", "all_reduce_part.step_id=5", "all_reduce_part.layer=11",
                "all_reduce_part.point=SYNC_POINT_FFN", "all_reduce_part.phase=ALL_REDUCE_PHASE_GATHER",
                "all_reduce_part.chunk=1", "all_reduce_part.from_rank=2",
            ]),
            ("refused", Envelope(.refused(refused)), [
                "protocol_version=1", "refused={}", "refused.code=CODE_BUSY", "refused.reason=\"serving coordinator-a\"",
            ]),
            ("goodbye", Envelope(.goodbye(Shoal_V1_Goodbye())), ["protocol_version=1", "goodbye={}"]),
        ]
    }()

    @Test(arguments: swiftHeaders.map(\.name))
    func cDecodesWhatSwiftEncodes(_ name: String) throws {
        let (_, envelope, expected) = try #require(Self.swiftHeaders.first { $0.name == name })
        let headerFrame = try FrameCodec.encode(envelope, to: "c-peer")[0]
        let printed = try CPeer.run(try CPeer.executable(), ["decode"], input: headerFrame.withUnsafeBytes { Data($0) })
        let lines = String(decoding: printed, as: UTF8.self).split(separator: "\n").map(String.init)
        #expect(lines == expected)
    }

    @Test func cServerAnswersOverZeroMQ() throws {
        let server = try CPeerProcess(["serve"])
        let transport = try ZMQTransport(options: testOptions)
        let link = try transport.connect(server.firstLine, identity: "swift-coordinator")
        try link.send(ping(123))
        #expect(try link.receive(deadline: .now + .seconds(5))?.body == pong(123).body)
        // Tensor frames survive the C side untouched (it echoes what it validated).
        let envelope = tensorEnvelope(size: 100_000)
        try link.send(envelope)
        let echoed = try #require(try link.receive(deadline: .now + .seconds(5)))
        #expect(echoed.header == envelope.header && echoed.payloads == envelope.payloads)
    }

    private static func range(_ start: UInt32, _ end: UInt32) -> Shoal_V1_Range {
        var range = Shoal_V1_Range()
        range.start = start
        range.end = end
        return range
    }
}
