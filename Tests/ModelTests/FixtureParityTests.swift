import Foundation
import Model
import Testing

/// Shoal against Hugging Face transformers on the reference fixtures: prompt ids, prefill logits,
/// every greedy step's logits and ids, and for the MoE the router's choices.
@Suite(.serialized)
struct FixtureParityTests {
    static let tolerance: Float = 1e-3

    @Test(arguments: ["tiny-llama", "tiny-mixtral"])
    func singleSequenceMatchesTransformers(model name: String) throws {
        let dir = Fixtures.model(name)
        let model = try LoadedModel(directory: dir, threads: 2)
        let trace = RoutingTrace()
        model.transformer.routingTrace = trace
        let vocab = model.config.vocabSize
        for (i, ref) in try ReferencePrompt.load(dir).enumerated() {
            #expect(model.encode(ref.text) == ref.inputIDs, "prompt \(i): token ids differ from the reference")
            trace.reset()
            let generator = Generator(backend: model.makeBackend())
            let out = try generator.run([GenerationRequest(promptTokens: ref.inputIDs, maxTokens: ref.greedyIDs.count, recordLogits: true)])[0]
            let prefillError = maxAbsDifference(out.prefillLogits!, ref.prefillLogits)
            #expect(prefillError <= Self.tolerance, "prompt \(i): prefill logits differ by \(prefillError)")
            // The reference generates exactly 32 tokens (EOS is not a stop there); compare the common prefix
            // of ids, then every step's logits along the reference's path.
            #expect(Array(out.tokens) == Array(ref.greedyIDs.prefix(out.tokens.count)), "prompt \(i): greedy ids differ")
            #expect(out.tokens.count == ref.greedyIDs.count || out.finishReason == .eos)
            for (s, logits) in out.stepLogits.enumerated() {
                let err = maxAbsDifference(logits[...], ref.stepLogits[s * vocab ..< (s + 1) * vocab])
                #expect(err <= Self.tolerance, "prompt \(i) step \(s): logits differ by \(err)")
            }
            if let expected = ref.topKExperts {
                // [layers, T, 2] in descending router weight.
                let t = ref.inputIDs.count
                for layer in 0 ..< model.config.layerCount {
                    let rows = trace.experts[layer] ?? []
                    for row in 0 ..< t {
                        let want = Array(expected[(layer * t + row) * 2 ..< (layer * t + row) * 2 + 2])
                        #expect(rows.count > row && rows[row] == want, "prompt \(i) layer \(layer) token \(row): experts \(rows.count > row ? rows[row] : []) vs \(want)")
                    }
                }
            }
        }
    }

    /// All prompts in one forward pass (different lengths, one cache each) give what each gives alone.
    @Test(arguments: ["tiny-llama", "tiny-mixtral"])
    func batchedSequencesMatchTransformers(model name: String) throws {
        let dir = Fixtures.model(name)
        let model = try LoadedModel(directory: dir, threads: 2)
        let refs = try ReferencePrompt.load(dir)
        let generator = Generator(backend: model.makeBackend(), eos: [])
        let outs = try generator.run(refs.map { GenerationRequest(promptTokens: $0.inputIDs, maxTokens: $0.greedyIDs.count, recordLogits: true) })
        let vocab = model.config.vocabSize
        for (i, (ref, out)) in zip(refs, outs).enumerated() {
            #expect(out.tokens == ref.greedyIDs, "prompt \(i): batched greedy ids differ")
            #expect(maxAbsDifference(out.prefillLogits!, ref.prefillLogits) <= Self.tolerance)
            for (s, logits) in out.stepLogits.enumerated() {
                #expect(maxAbsDifference(logits[...], ref.stepLogits[s * vocab ..< (s + 1) * vocab]) <= Self.tolerance, "prompt \(i) step \(s)")
            }
        }
    }
}
