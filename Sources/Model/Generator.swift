import Foundation

public struct GenerationRequest: Sendable {
    public var promptTokens: [Int]
    public var maxTokens: Int
    public var sampling: SamplingParameters
    /// Keep the prompt's logits and every step's (for --dump-logits and parity checks).
    public var recordLogits: Bool
    public init(promptTokens: [Int], maxTokens: Int, sampling: SamplingParameters = .init(), recordLogits: Bool = false) {
        self.promptTokens = promptTokens
        self.maxTokens = maxTokens
        self.sampling = sampling
        self.recordLogits = recordLogits
    }
}

public enum FinishReason: String, Sendable, Codable {
    case eos
    case length
}

public struct GenerationOutput: Sendable {
    public var promptTokens: [Int]
    public var tokens: [Int] = []
    public var finishReason: FinishReason = .length
    /// From the start of the request to the first generated token.
    public var ttftMs: Double = 0
    /// Mean time per generated token after the first.
    public var tpotMs: Double = 0
    /// Wall time of each generated token since the request started.
    public var tokenTimesMs: [Double] = []
    /// [prompt tokens, vocab] and per generated token [vocab], when recorded.
    public var prefillLogits: [Float]?
    public var stepLogits: [[Float]] = []
}

/// Prefill then decode, for one prompt or several in lockstep (their steps share each forward
/// pass), streaming each token as it is chosen.
public final class Generator {
    public let backend: any InferenceBackend
    public let eos: Set<Int>

    public init(backend: any InferenceBackend, eos: Set<Int>? = nil) {
        self.backend = backend
        self.eos = eos ?? Set(backend.config.eosTokenIDs)
    }

    /// - microBatches: the requests are split into this many groups whose steps are kept in flight
    ///   together, so pipeline stages work on different groups at once (1: one batch).
    /// - onToken: (request index, token id), called as soon as each token is chosen.
    public func run(_ requests: [GenerationRequest], microBatches: Int = 1, onToken: (Int, Int) -> Void = { _, _ in }) throws -> [GenerationOutput] {
        let start = DispatchTime.now().uptimeNanoseconds
        func elapsedMs() -> Double { Double(DispatchTime.now().uptimeNanoseconds - start) / 1e6 }
        let limit = backend.config.maxPositions
        for r in requests {
            try r.sampling.validate()
            guard !r.promptTokens.isEmpty else { throw ModelError.invalidRequest("the prompt is empty (no tokens to condition on)") }
            guard r.maxTokens >= 1 else { throw ModelError.invalidRequest("--max-tokens must be at least 1, got \(r.maxTokens)") }
            guard r.promptTokens.count + r.maxTokens <= limit else {
                throw ModelError.promptTooLong(prompt: r.promptTokens.count, generate: r.maxTokens, limit: limit)
            }
        }
        var sequences: [Int] = []
        defer { sequences.forEach(backend.closeSequence) }
        for r in requests { sequences.append(try backend.openSequence(capacity: r.promptTokens.count + r.maxTokens)) }

        var outputs = requests.map { GenerationOutput(promptTokens: $0.promptTokens) }
        var samplers = requests.map { Sampler($0.sampling) }
        var pending: [Int: [Int]] = [:]  // request -> tokens to feed next
        var prefilled = Set<Int>()
        for (i, r) in requests.enumerated() { pending[i] = r.promptTokens }
        let groupCount = max(1, min(microBatches, requests.count))
        let groups = (0 ..< groupCount).map { g in Array(stride(from: g, to: requests.count, by: groupCount)) }
        // Tickets in flight, oldest first, with the requests each step carries.
        var inFlight: [(ticket: Int, members: [Int])] = []

        func submit(_ group: [Int]) throws {
            let members = group.filter { pending[$0] != nil }
            guard !members.isEmpty else { return }
            let inputs = members.map { i in
                StepInput(sequence: sequences[i], tokens: pending[i]!, allLogits: !prefilled.contains(i) && requests[i].recordLogits)
            }
            inFlight.append((try backend.submit(inputs), members))
        }

        for g in groups { try submit(g) }
        let vocab = backend.config.vocabSize
        while !inFlight.isEmpty {
            let (ticket, members) = inFlight.removeFirst()
            let logits = try backend.collect(ticket)
            for (slot, i) in members.enumerated() {
                let rows = logits[slot]
                let last = Array(rows[(rows.count - vocab)...])
                if requests[i].recordLogits {
                    if !prefilled.contains(i) { outputs[i].prefillLogits = rows }
                    outputs[i].stepLogits.append(last)
                }
                prefilled.insert(i)
                let token = last.withUnsafeBufferPointer { samplers[i].sample($0) }
                outputs[i].tokens.append(token)
                outputs[i].tokenTimesMs.append(elapsedMs())
                onToken(i, token)
                if eos.contains(token) {
                    outputs[i].finishReason = .eos
                    pending[i] = nil
                } else if outputs[i].tokens.count >= requests[i].maxTokens {
                    outputs[i].finishReason = .length
                    pending[i] = nil
                } else {
                    pending[i] = [token]
                }
            }
            try submit(members)
        }
        for i in outputs.indices {
            let times = outputs[i].tokenTimesMs
            outputs[i].ttftMs = times.first ?? 0
            outputs[i].tpotMs = times.count > 1 ? (times.last! - times.first!) / Double(times.count - 1) : 0
        }
        return outputs
    }
}
