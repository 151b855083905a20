import Foundation
import Model
import Testing

struct SamplerTests {
    let logits: [Float] = [2.0, 1.0, 0.5, 0.5, -1.0, 3.0]

    func filtered(_ p: SamplingParameters) -> [(id: Int, p: Double)] {
        logits.withUnsafeBufferPointer { Sampler.filteredProbabilities($0, p) }
    }

    @Test func greedyIsArgmaxWithFirstIndexOnTies() {
        var s = Sampler(SamplingParameters())
        #expect(logits.withUnsafeBufferPointer { s.sample($0) } == 5)
        let tied: [Float] = [1, 3, 3]
        #expect(tied.withUnsafeBufferPointer { Sampler.argmax($0) } == 1)
    }

    @Test func temperatureScalesTheSoftmax() {
        let p = filtered(SamplingParameters(temperature: 0.5))
        // softmax(logits / 0.5): the top two are e^6 and e^4 relative.
        let top = p[0].p, second = p[1].p
        #expect(p[0].id == 5 && p[1].id == 0)
        #expect(abs(top / second - exp(2.0)) < 1e-9)
        #expect(abs(p.reduce(0) { $0 + $1.p } - 1) < 1e-12)
    }

    @Test func topKKeepsKAndTies() {
        #expect(filtered(SamplingParameters(temperature: 1, topK: 2)).map(\.id) == [5, 0])
        // The 3rd and 4th logits tie (0.5): top-3 keeps both, as transformers' `< kth value` mask does.
        #expect(filtered(SamplingParameters(temperature: 1, topK: 3)).map(\.id) == [5, 0, 1])
        #expect(filtered(SamplingParameters(temperature: 1, topK: 4)).map(\.id).count == 5)
    }

    @Test func topPKeepsTheSmallestSetAboveP() {
        let all = filtered(SamplingParameters(temperature: 1))
        let kept = filtered(SamplingParameters(temperature: 1, topP: 0.8))
        // Keep tokens while the mass of the ones dropped (least likely first) stays <= 0.2.
        var dropped = 0.0
        var expected = all.count
        for q in all.reversed() {
            if dropped + q.p <= 0.2 { dropped += q.p; expected -= 1 } else { break }
        }
        #expect(kept.count == expected && kept.count < all.count)
        #expect(filtered(SamplingParameters(temperature: 1, topP: 1e-6)).map(\.id) == [5])
    }

    @Test func seededSamplingIsReproducibleAndFollowsTheDistribution() {
        let params = SamplingParameters(temperature: 1, topK: 0, topP: 1, seed: 42)
        var a = Sampler(params), b = Sampler(params)
        var counts = [Int](repeating: 0, count: logits.count)
        for _ in 0 ..< 20000 {
            let x = logits.withUnsafeBufferPointer { a.sample($0) }
            #expect(x == logits.withUnsafeBufferPointer { b.sample($0) })
            counts[x] += 1
        }
        for (id, p) in filtered(SamplingParameters(temperature: 1)) {
            #expect(abs(Double(counts[id]) / 20000 - p) < 0.015, "token \(id): \(counts[id]) draws for p = \(p)")
        }
    }

    @Test func invalidParametersAreRejected() {
        #expect(throws: ModelError.self) { try SamplingParameters(temperature: -0.1).validate() }
        #expect(throws: ModelError.self) { try SamplingParameters(temperature: 1, topP: 0).validate() }
        #expect(throws: ModelError.self) { try SamplingParameters(temperature: 1, topK: -1).validate() }
    }
}
