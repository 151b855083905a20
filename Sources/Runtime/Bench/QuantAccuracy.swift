import Foundation
import Model

/// How far a weight format moves a model's next-token distributions from a reference, teacher-
/// forced: each reference prompt is prefilled, then the reference's greedy tokens are fed one
/// decode step at a time (so the quantized decode path is what is measured), and at every step
/// our logits are compared with the reference's `greedy_step_logits`: does our argmax pick the
/// reference's greedy token, and KL(reference || ours) of the two softmax distributions.
public struct QuantAccuracy {
    public struct Row: Codable, Sendable {
        public var model: String
        public var weight_format: String
        public var prompts: Int
        public var steps: Int
        /// Fraction of steps whose argmax is the reference's greedy token.
        public var greedy_match: Double
        public var mean_kl: Double
        public var max_kl: Double
        /// Largest |logit - reference logit| over all steps and tokens.
        public var max_logit_error: Double

        public var summary: String {
            String(format: "%@ %@: greedy ids %.1f%% (%d steps over %d prompts), KL(ref||q) mean %.5f max %.5f, max |logit error| %.4f",
                   model, weight_format, 100 * greedy_match, steps, prompts, mean_kl, max_kl, max_logit_error)
        }
    }

    /// One prompt of a reference file: `p{i}.input_ids`, `p{i}.greedy_ids`, `p{i}.greedy_step_logits`.
    public struct Reference: Sendable {
        public var inputIDs: [Int]
        public var greedyIDs: [Int]
        /// [greedy steps, vocab]
        public var stepLogits: [Float]

        /// Every prompt in a reference.safetensors (as the fixtures store them).
        public static func load(_ url: URL) throws -> [Reference] {
            let file = try SafetensorsFile(url: url)
            var out: [Reference] = []
            while file.tensors["p\(out.count).input_ids"] != nil {
                let key = "p\(out.count)."
                out.append(Reference(inputIDs: try file.ints(key + "input_ids"), greedyIDs: try file.ints(key + "greedy_ids"),
                                     stepLogits: try file.floats(key + "greedy_step_logits")))
            }
            guard !out.isEmpty else { throw ModelError.missingTensor(name: "p0.input_ids", directory: url.path) }
            return out
        }
    }

    public var directory: URL
    public var references: [Reference]
    public var threads: Int

    public init(directory: URL, references: [Reference], threads: Int = 1) {
        self.directory = directory
        self.references = references
        self.threads = threads
    }

    /// Measures one weight policy (no quantization: the stored weights, the baseline).
    public func measure(_ weights: WeightPolicy) throws -> Row {
        let model = try LoadedModel(directory: directory, threads: threads, weights: weights)
        let format = weights.quantization?.description ?? model.checkpoint.storedQuantization
            ?? model.checkpoint.files.first?.tensors.values.first { $0.shape.count == 2 }?.dtype.rawValue.lowercased() ?? "?"
        return try measure(model.makeBackend(), label: format)
    }

    /// Measures any backend — one node, or a cluster whose partial sums travel in a compressed
    /// sync format — along the references' greedy paths.
    public func measure(_ backend: any InferenceBackend, label: String) throws -> Row {
        let vocab = backend.config.vocabSize
        var steps = 0, matches = 0
        var klSum = 0.0, klMax = 0.0
        var logitError: Float = 0
        for (p, ref) in references.enumerated() {
            guard ref.stepLogits.count == ref.greedyIDs.count * vocab else {
                throw ModelError.invalidRequest("reference prompt \(p): greedy_step_logits hold \(ref.stepLogits.count) values, expected \(ref.greedyIDs.count) x \(vocab)")
            }
            let seq = try backend.openSequence(capacity: ref.inputIDs.count + ref.greedyIDs.count)
            defer { backend.closeSequence(seq) }
            var logits = try backend.step([StepInput(sequence: seq, tokens: ref.inputIDs)])[0]
            for (s, greedy) in ref.greedyIDs.enumerated() {
                let expected = ref.stepLogits[s * vocab ..< (s + 1) * vocab]
                if logits.withUnsafeBufferPointer({ Sampler.argmax($0) }) == greedy { matches += 1 }
                let kl = Self.klDivergence(reference: expected, other: logits[...])
                klSum += kl
                klMax = max(klMax, kl)
                for (a, b) in zip(expected, logits) { logitError = max(logitError, abs(a - b)) }
                steps += 1
                if s + 1 < ref.greedyIDs.count { logits = try backend.step([StepInput(sequence: seq, tokens: [greedy])])[0] }
            }
        }
        return Row(model: directory.lastPathComponent, weight_format: label, prompts: references.count, steps: steps,
                   greedy_match: Double(matches) / Double(max(steps, 1)), mean_kl: klSum / Double(max(steps, 1)), max_kl: klMax,
                   max_logit_error: Double(logitError))
    }

    /// KL(P || Q) = sum p (log p - log q) for P = softmax(reference), Q = softmax(other), in double.
    public static func klDivergence(reference: ArraySlice<Float>, other: ArraySlice<Float>) -> Double {
        func logSoftmax(_ x: ArraySlice<Float>) -> [Double] {
            let m = Double(x.max() ?? 0)
            let lse = m + log(x.reduce(0.0) { $0 + exp(Double($1) - m) })
            return x.map { Double($0) - lse }
        }
        let lp = logSoftmax(reference), lq = logSoftmax(other)
        var kl = 0.0
        for (a, b) in zip(lp, lq) { kl += exp(a) * (a - b) }
        return max(kl, 0)
    }
}
