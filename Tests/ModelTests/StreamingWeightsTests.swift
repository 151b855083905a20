import Foundation
import Kernels
import Model
import Testing

/// The sliding-window provider against resident weights: the same bits out, never more than W
/// blocks in, and budgets refused up front with their numbers.
@Suite(.serialized)
struct StreamingWeightsTests {
    struct Setup: CustomTestStringConvertible, Sendable {
        var model: String
        var window: Int
        var prefetch: WeightPolicy.Prefetch
        var quantize: WeightType?
        var dropPageCache = false
        var testDescription: String {
            "\(model) W=\(window) \(prefetch)" + (quantize.map { " \($0)" } ?? "") + (dropPageCache ? " cold" : "")
        }
    }

    static let setups: [Setup] = [
        Setup(model: "tiny-llama", window: 1, prefetch: .read, quantize: nil),
        Setup(model: "tiny-llama", window: 2, prefetch: .mmap, quantize: nil),
        Setup(model: "tiny-llama", window: 2, prefetch: .read, quantize: .q8_0, dropPageCache: true),
        Setup(model: "tiny-llama", window: 4, prefetch: .mmap, quantize: .q4_0),
        Setup(model: "tiny-mixtral", window: 2, prefetch: .mmap, quantize: nil, dropPageCache: true),
        Setup(model: "tiny-mixtral", window: 3, prefetch: .read, quantize: .q8_0),
    ]

    static func run(_ model: LoadedModel, _ refs: [ReferencePrompt], tokens: Int) throws -> [GenerationOutput] {
        try Generator(backend: model.makeBackend(), eos: [])
            .run(refs.map { GenerationRequest(promptTokens: $0.inputIDs, maxTokens: tokens, recordLogits: true) })
    }

    @Test(arguments: setups)
    func streamingGivesBitwiseTheResidentResults(setup: Setup) throws {
        let dir = Fixtures.model(setup.model)
        let refs = try ReferencePrompt.load(dir)
        let quantization = try setup.quantize.map { try Quantization($0) }
        // Compare like with like: one sequence per step decodes by matrix-vector products, a
        // batch by GEMM, and the two round differently.
        let residentModel = try LoadedModel(directory: dir, threads: 2, weights: WeightPolicy(quantization: quantization))
        var resident: [GenerationOutput] = []
        for ref in refs { resident += try Self.run(residentModel, [ref], tokens: 12) }
        let residentBatched = try Self.run(residentModel, refs, tokens: 12)
        let policy = WeightPolicy(quantization: quantization, window: setup.window, prefetch: setup.prefetch, dropPageCache: setup.dropPageCache)
        let model = try LoadedModel(directory: dir, threads: 2, weights: policy)
        let streaming = try #require(model.transformer.weights as? StreamingWeights)
        #expect(streaming.window == setup.window)
        // One request at a time (a step per token) and all four batched.
        var outputs: [GenerationOutput] = []
        for ref in refs { outputs += try Self.run(model, [ref], tokens: 12) }
        let batched = try Self.run(model, refs, tokens: 12)
        for i in refs.indices {
            let (r, s, rb, b) = (resident[i], outputs[i], residentBatched[i], batched[i])
            #expect(s.tokens == r.tokens && b.tokens == rb.tokens, "prompt \(i): greedy ids differ")
            #expect(s.prefillLogits == r.prefillLogits && s.stepLogits == r.stepLogits, "prompt \(i): logits differ")
            #expect(b.prefillLogits == rb.prefillLogits && b.stepLogits == rb.stepLogits, "prompt \(i): batched logits differ")
        }
        let stats = streaming.stats
        let blocks = streaming.plan.blocks.count
        #expect(blocks == 2 * model.config.layerCount + 1)
        #expect(stats.maxResidentBlocks <= setup.window, "\(stats.maxResidentBlocks) blocks held at once with W=\(setup.window)")
        // Every step re-reads every block: at least one load per block per forward pass.
        let passes = 4 * 12 + 12
        #expect(stats.blocksLoaded >= passes * blocks, "\(stats.blocksLoaded) loads for \(passes) passes of \(blocks) blocks")
        #expect(streaming.residentBytes == streaming.plan.peakBytes(window: setup.window))
    }

    @Test func aWindowCoveringEveryBlockLoadsEachOnce() throws {
        let model = try LoadedModel(directory: Fixtures.model("tiny-llama"), threads: 1, weights: WeightPolicy(window: 100))
        let streaming = try #require(model.transformer.weights as? StreamingWeights)
        _ = try Self.run(model, try ReferencePrompt.load(Fixtures.model("tiny-llama")), tokens: 4)
        #expect(streaming.window == 9 && streaming.stats.blocksLoaded == 9)
    }

    @Test func theBlockPlanAccountsForEveryWeight() throws {
        let checkpoint = try Checkpoint(directory: Fixtures.model("tiny-llama"))
        let c = checkpoint.config
        let plan = try BlockPlan(checkpoint: checkpoint, slice: .full(c), quantization: nil)
        let loader = try WeightLoader(checkpoint: checkpoint, slice: .full(c))
        let resident = try ResidentWeights(loader: loader)
        // Everything resident holds is in some block, except the embedding table (read by row).
        #expect(plan.totalHeldBytes + plan.embeddingBytes == resident.residentBytes)
        let h = c.hiddenSize, f = c.intermediateSize
        #expect(plan.heldBytes[0] == 4 * (h + c.qDim * h + 2 * c.kvDim * h + h * c.qDim))
        #expect(plan.heldBytes[1] == 4 * (h + 3 * f * h))
        #expect(plan.blocks.last == .head && plan.heldBytes.last == 4 * (h + c.vocabSize * h))
        #expect(plan.peakBytes(window: 1) == plan.heldBytes.max())
        // Two blocks are at their fullest on the last FFN and lm_head.
        #expect(plan.peakBytes(window: 2) == plan.heldBytes.last! + plan.heldBytes[plan.blocks.count - 2])
        #expect(plan.peakBytes(window: plan.blocks.count) == plan.totalHeldBytes)
        // q4_0 holds 18 bytes per 32 weights of every matrix but the embedding.
        let q4 = try BlockPlan(checkpoint: checkpoint, slice: .full(c), quantization: try Quantization(.q4_0))
        #expect(q4.heldBytes[1] == 4 * h + 3 * f * h / 32 * 18)
        #expect(q4.readBytes[1] == plan.readBytes[1])
    }

    @Test func budgetsPickTheLargestWindowThatFits() throws {
        let checkpoint = try Checkpoint(directory: Fixtures.model("tiny-llama"))
        let c = checkpoint.config
        let plan = try BlockPlan(checkpoint: checkpoint, slice: .full(c), quantization: nil)
        let kv = BlockPlan.kvCacheBytes(config: c, slice: .full(c), context: 100)
        #expect(kv == c.layerCount * 2 * c.kvHeadCount * 100 * c.headDim * 4)
        for w in [1, 2, 5] {
            let budget = plan.peakBytes(window: w) + kv
            let chosen = try WeightPolicy(budget: budget).resolveWindow(plan: plan, config: c, slice: .full(c), context: 100)
            #expect(chosen >= w && plan.peakBytes(window: chosen) + kv <= budget && plan.peakBytes(window: chosen + 1) + kv > budget)
        }
        #expect(try WeightPolicy(budget: 1 << 40).resolveWindow(plan: plan, config: c, slice: .full(c), context: 100) == plan.blocks.count)
        // An explicit window must fit the budget too.
        #expect(throws: MemoryBudgetError.self) {
            _ = try WeightPolicy(window: 3, budget: plan.peakBytes(window: 2) + kv).resolveWindow(plan: plan, config: c, slice: .full(c), context: 100)
        }
    }

    @Test func aBudgetTooSmallForOneBlockIsRefusedWithTheNumbers() throws {
        let dir = Fixtures.model("tiny-llama")
        do {
            _ = try LoadedModel(directory: dir, threads: 1, weights: WeightPolicy(budget: 3_000_000), context: 512)
            Issue.record("a 3 MB budget was accepted")
        } catch let e as MemoryBudgetError {
            // The largest block is layer 0's FFN: 3 x 768 x 256 f32 + its norm.
            #expect(e.largestBlockBytes == 4 * (256 + 3 * 768 * 256) && e.budget == 3_000_000)
            #expect(e.kvCacheBytes == 4 * 2 * 2 * 512 * 32 * 4 && e.context == 512)
            let text = e.description
            #expect(text.contains("3.0 MB") && text.contains("2.4 MB") && text.contains("needs 3.4 MB") && text.contains("KV cache for 512 tokens (1.0 MB)") && text.contains("lm_head 2.1 MB"), "\(text)")
        }
        // Quantized, the same budget fits two blocks.
        let q8 = try LoadedModel(directory: dir, threads: 1, weights: WeightPolicy(quantization: try Quantization(.q8_0), budget: 3_000_000), context: 512)
        let streaming = try #require(q8.transformer.weights as? StreamingWeights)
        #expect(streaming.window >= 2 && streaming.residentBytes + BlockPlan.kvCacheBytes(config: q8.config, slice: .full(q8.config), context: 512) <= 3_000_000)
    }

    @Test func quantizingTheEmbeddingAtLoadWhileStreamingIsRefused() throws {
        #expect(throws: ModelError.self) {
            _ = try LoadedModel(directory: Fixtures.model("tiny-llama"), threads: 1,
                                weights: WeightPolicy(quantization: try Quantization(.q8_0, embeddings: true), window: 2))
        }
    }
}
