import Foundation
import Tokenizer

/// Next-token choice as transformers' `generate` makes it: temperature, then top-k, then top-p,
/// then a draw from the softmax — or argmax when temperature is 0.
public struct SamplingParameters: Sendable, Equatable, Codable {
    public var temperature: Float
    public var topK: Int
    public var topP: Float
    public var seed: UInt64

    public init(temperature: Float = 0, topK: Int = 0, topP: Float = 1, seed: UInt64 = 0) {
        self.temperature = temperature
        self.topK = topK
        self.topP = topP
        self.seed = seed
    }

    public var isGreedy: Bool { temperature <= 0 }

    public func validate() throws {
        guard temperature >= 0, temperature.isFinite else { throw ModelError.invalidRequest("--temperature must be >= 0, got \(temperature)") }
        guard topK >= 0 else { throw ModelError.invalidRequest("--top-k must be >= 0 (0 disables it), got \(topK)") }
        guard topP > 0, topP <= 1 else { throw ModelError.invalidRequest("--top-p must be in (0, 1], got \(topP)") }
    }
}

/// xoshiro256** seeded by SplitMix64: small, fast, and the same sequence on every host.
public struct SeededGenerator: RandomNumberGenerator, Sendable {
    private var s: (UInt64, UInt64, UInt64, UInt64)

    public init(seed: UInt64) {
        var x = SplitMix64(seed: seed)
        s = (x.next(), x.next(), x.next(), x.next())
    }

    public mutating func next() -> UInt64 {
        func rotl(_ v: UInt64, _ k: UInt64) -> UInt64 { (v << k) | (v >> (64 - k)) }
        let result = rotl(s.1 &* 5, 7) &* 9
        let t = s.1 << 17
        s.2 ^= s.0
        s.3 ^= s.1
        s.1 ^= s.2
        s.0 ^= s.3
        s.2 ^= t
        s.3 = rotl(s.3, 45)
        return result
    }
}

public struct Sampler {
    public let parameters: SamplingParameters
    private var rng: SeededGenerator

    public init(_ parameters: SamplingParameters) {
        self.parameters = parameters
        rng = SeededGenerator(seed: parameters.seed)
    }

    /// Index of the largest logit (the first one on ties, like torch.argmax).
    public static func argmax(_ logits: UnsafeBufferPointer<Float>) -> Int {
        var best = 0
        var bestValue = -Float.infinity
        for (i, v) in logits.enumerated() where v > bestValue {
            best = i
            bestValue = v
        }
        return best
    }

    public mutating func sample(_ logits: UnsafeBufferPointer<Float>) -> Int {
        if parameters.isGreedy { return Self.argmax(logits) }
        let candidates = Self.filteredProbabilities(logits, parameters)
        var u = Double.random(in: 0 ..< 1, using: &rng)
        for (id, p) in candidates {
            u -= p
            if u < 0 { return id }
        }
        return candidates.last!.id
    }

    /// The distribution sampled from: (id, probability) in descending probability, after
    /// temperature, top-k and top-p, renormalized.
    public static func filteredProbabilities(_ logits: UnsafeBufferPointer<Float>, _ p: SamplingParameters) -> [(id: Int, p: Double)] {
        let t = Double(max(p.temperature, 1e-6))
        var scored = logits.enumerated().map { (id: $0.offset, logit: Double($0.element) / t) }
        scored.sort { $0.logit > $1.logit || ($0.logit == $1.logit && $0.id < $1.id) }
        if p.topK > 0, p.topK < scored.count {
            // Keep everything tied with the k-th logit, as TopKLogitsWarper's `< kth value` mask does.
            let kth = scored[p.topK - 1].logit
            scored = Array(scored.prefix { $0.logit >= kth })
        }
        let maxLogit = scored[0].logit
        var probs = scored.map { exp($0.logit - maxLogit) }
        let total = probs.reduce(0, +)
        probs = probs.map { $0 / total }
        if p.topP < 1 {
            // TopPLogitsWarper sorts ascending and drops the tokens whose cumulative probability
            // stays <= 1 - top_p, always keeping the most likely one.
            var ascendingMass = 0.0
            var drop = 0
            for q in probs.reversed() {
                ascendingMass += q
                if ascendingMass <= 1 - Double(p.topP) { drop += 1 } else { break }
            }
            let keep = max(1, probs.count - drop)
            scored = Array(scored.prefix(keep))
            probs = Array(probs.prefix(keep))
            let kept = probs.reduce(0, +)
            probs = probs.map { $0 / kept }
        }
        return zip(scored, probs).map { ($0.id, $1) }
    }
}
