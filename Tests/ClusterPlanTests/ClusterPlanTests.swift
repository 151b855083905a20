import ClusterPlan
import Foundation
import Model
import Testing

struct ClusterPlanTests {
    /// TinyLlama-1.1B's shape: 32 query heads in 4 KV groups, FFN 5632, vocab 32000.
    static let tinyllama: ModelConfig = {
        let json: [String: Any] = [
            "architectures": ["LlamaForCausalLM"], "hidden_size": 2048, "intermediate_size": 5632, "num_hidden_layers": 22,
            "num_attention_heads": 32, "num_key_value_heads": 4, "vocab_size": 32000, "rms_norm_eps": 1e-5,
            "max_position_embeddings": 2048, "hidden_act": "silu", "rope_theta": 10000.0, "tie_word_embeddings": false,
            "attention_bias": false, "mlp_bias": false]
        return try! ModelConfig.parse(configJSON: try! JSONSerialization.data(withJSONObject: json))
    }()

    func covers(_ ranges: [Range<Int>], _ total: Int) -> Bool {
        var next = 0
        for r in ranges {
            if r.lowerBound != next { return false }
            next = r.upperBound
        }
        return next == total
    }

    @Test(arguments: 1 ... 8)
    func anyRankCountCoversEverythingOnBlockBoundaries(tp: Int) throws {
        let c = Self.tinyllama
        let split = try TensorParallelSplit(config: c, weights: Array(repeating: 1, count: tp))
        #expect(covers(split.queryHeads, c.headCount) && covers(split.ffnColumns, c.intermediateSize) && covers(split.vocabRows, c.vocabSize))
        #expect(split.ffnColumns.dropLast().allSatisfy { $0.upperBound % 32 == 0 })
        #expect(split.queryHeads.allSatisfy { !$0.isEmpty })
        if tp <= c.kvHeadCount {
            // Whole KV groups: no KV head is shared.
            #expect(split.queryHeads.allSatisfy { $0.lowerBound % c.groupSize == 0 && $0.upperBound % c.groupSize == 0 })
        }
    }

    @Test func moreRanksThanKVHeadsShareKVHeads() throws {
        let c = Self.tinyllama
        let plan = try ClusterPlan(config: c, workers: (0 ..< 6).map { "tcp://h\($0):1" }, tp: 6, pp: 1)
        let kv = plan.nodes.map { $0.slice.kvHeads(c) }
        #expect(kv.allSatisfy { !$0.isEmpty && $0.upperBound <= 4 })
        #expect(kv.map(\.count).reduce(0, +) > c.kvHeadCount, "some KV head must be computed on two ranks")
    }

    @Test func unevenWeightsGiveUnevenSlices() throws {
        let split = try TensorParallelSplit(config: Self.tinyllama, weights: [3, 1])
        #expect(split.ffnColumns[0].count == 4224 && split.ffnColumns[1].count == 1408)
        #expect(split.queryHeads[0].count == 24 && split.queryHeads[1].count == 8)
    }

    @Test func stageMajorLayoutAndPipelineRanges() throws {
        let w = (0 ..< 6).map { "tcp://10.0.0.\($0):5000" }
        let plan = try ClusterPlan(config: Self.tinyllama, workers: w, tp: 2, pp: 3)
        #expect(plan.layerRanges == [0 ..< 8, 8 ..< 15, 15 ..< 22])
        #expect(plan.stage(1).map(\.address) == [w[2], w[3]])
        #expect(plan.nodes.filter { $0.slice.embeds }.map(\.stage) == [0, 0])
        #expect(plan.nodes.filter { $0.slice.logitRows != nil }.map(\.stage) == [2, 2])
        #expect(plan.nodes.filter { $0.slice.addsReducedBiases }.map(\.rank) == [0, 0, 0])
    }

    @Test func explicitLayerRangesAreChecked() throws {
        #expect(try PipelineSplit.parse("0-9,10-21", layers: 22) == [0 ..< 10, 10 ..< 22])
        #expect(throws: PlanError.self) { try PipelineSplit.parse("0-9,11-21", layers: 22) }
        #expect(throws: PlanError.self) { try PipelineSplit.parse("0-9,10-20", layers: 22) }
        #expect(throws: PlanError.self) { try PipelineSplit.parse("nine", layers: 22) }
    }

    @Test func workerCountMustMatchThePlan() {
        #expect(throws: PlanError.self) { try ClusterPlan(config: Self.tinyllama, workers: ["a", "b", "c"], tp: 2, pp: 1) }
        #expect(throws: PlanError.self) { try ClusterPlan(config: Self.tinyllama, workers: ["a", "a"], tp: 2, pp: 1) }
        #expect(throws: PlanError.self) { try ClusterPlan(config: Self.tinyllama, workers: ["a", "b"], tp: 2, pp: 1, split: [1]) }
    }

    @Test func costModelPrefersStarWhenLatencyDominatesAndRingWhenBandwidthDoes() {
        // Edge link: 5 ms, 100 Mbit/s, a 4 KB hidden vector among 4 nodes: star's 2 hops win.
        let edge = AllReduceCostModel(latency: 5e-3, bandwidth: 12.5e6)
        #expect(edge.best(nodes: 4, bytes: 4096) == .mesh || edge.best(nodes: 4, bytes: 4096) == .star)
        #expect(edge.seconds(.star, nodes: 4, bytes: 4096) < edge.seconds(.ring, nodes: 4, bytes: 4096))
        // Fast, low-latency link with a huge vector: ring's bandwidth optimality wins.
        let datacenter = AllReduceCostModel(latency: 2e-6, bandwidth: 1e9)
        #expect(datacenter.best(nodes: 4, bytes: 64 << 20) == .ring)
        #expect(AllReduceCostModel.hops(.ring, nodes: 4) == 6 && AllReduceCostModel.hops(.star, nodes: 4) == 2)
    }
}
