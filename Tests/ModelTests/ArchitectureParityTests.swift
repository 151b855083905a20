import Foundation
import Model
import Testing

/// Every supported architecture against transformers, on tiny synthetic checkpoints that switch
/// on each architecture's quirks (biases, tied embeddings, q/k norms, llama3 RoPE, sliding
/// windows, shared experts, sparse steps). The references were made by
/// Scripts/transformers-reference.py from the committed checkpoints (Scripts/make-arch-fixtures.sh).
struct ArchitectureParityTests {
    static let presets = ["tiny-llama3", "tiny-mistral", "tiny-qwen2", "tiny-qwen3", "tiny-mixtral", "tiny-qwen2-moe", "tiny-qwen3-moe"]

    @Test(arguments: presets)
    func logitsMatchTransformersTeacherForced(preset: String) throws {
        let dir = Fixtures.root.appendingPathComponent("arch").appendingPathComponent(preset)
        let model = try LoadedModel(directory: dir, threads: 2)
        #expect(model.config.architecture.rawValue == (try JSONSerialization.jsonObject(with: Data(contentsOf: dir.appendingPathComponent("config.json"))) as! [String: Any])["architectures"].flatMap { ($0 as? [String])?.first })
        let ref = try SafetensorsFile(url: dir.appendingPathComponent("reference.safetensors"))
        let vocab = model.config.vocabSize
        var i = 0
        while ref.tensors["p\(i).input_ids"] != nil {
            let ids = try ref.ints("p\(i).input_ids")
            let greedy = try ref.ints("p\(i).greedy_ids")
            let prefill = try ref.floats("p\(i).prefill_logits")
            let steps = try ref.floats("p\(i).greedy_step_logits")
            let backend = model.makeBackend()
            let seq = try backend.openSequence(capacity: ids.count + greedy.count)
            var logits = try backend.step([StepInput(sequence: seq, tokens: ids, allLogits: true)])[0]
            let scale = max(1, prefill.map(abs).max()!)
            let prefillError = maxAbsDifference(logits, prefill)
            #expect(prefillError <= 1e-4 * scale, "\(preset) prompt \(i): prefill logits differ by \(prefillError) (scale \(scale))")
            for (s, token) in greedy.enumerated() {
                let last = Array(logits[(logits.count - vocab)...])
                let err = maxAbsDifference(last[...], steps[s * vocab ..< (s + 1) * vocab])
                #expect(err <= 1e-4 * scale, "\(preset) prompt \(i) step \(s): logits differ by \(err)")
                #expect(last.withUnsafeBufferPointer { Sampler.argmax($0) } == token, "\(preset) prompt \(i) step \(s): greedy token differs")
                logits = try backend.step([StepInput(sequence: seq, tokens: [token])])[0]
            }
            i += 1
        }
        #expect(i == 2, "\(preset): reference prompts missing")
    }
}
