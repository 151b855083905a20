import Foundation

/// Rotary position embedding frequencies, computed as transformers computes them (in f32), with
/// the `linear` and `llama3` scalings.
public struct Rope: Sendable {
    public let headDim: Int
    /// [headDim / 2] inverse frequencies.
    public let inverseFrequencies: [Float]

    public init(config c: ModelConfig) {
        headDim = c.headDim
        let half = c.headDim / 2
        let base = Float(c.ropeTheta)
        // inv_freq = 1 / base^(arange(0, dim, 2) / dim), in float32 as torch does it.
        var inv = (0 ..< half).map { i -> Float in 1 / powf(base, Float(2 * i) / Float(c.headDim)) }
        switch c.ropeScaling {
        case .none: break
        case .linear(let factor):
            inv = inv.map { $0 / Float(factor) }
        case let .llama3(factor, lowFreqFactor, highFreqFactor, originalMax):
            let old = Float(originalMax)
            let lowWavelen = old / Float(lowFreqFactor)
            let highWavelen = old / Float(highFreqFactor)
            inv = inv.map { f in
                let wavelen = 2 * Float.pi / f
                if wavelen < highWavelen { return f }                      // high frequency: unchanged
                if wavelen > lowWavelen { return f / Float(factor) }        // low frequency: scaled
                let smooth = (old / wavelen - Float(lowFreqFactor)) / Float(highFreqFactor - lowFreqFactor)
                return (1 - smooth) * f / Float(factor) + smooth * f       // in between: interpolated
            }
        }
        inverseFrequencies = inv
    }

    /// cos and sin of position * inv_freq for one position, [headDim/2] each.
    public func angles(position: Int, cos: UnsafeMutablePointer<Float>, sin: UnsafeMutablePointer<Float>) {
        let p = Float(position)
        for i in 0 ..< inverseFrequencies.count {
            let a = p * inverseFrequencies[i]
            cos[i] = Float(Foundation.cos(Double(a)))
            sin[i] = Float(Foundation.sin(Double(a)))
        }
    }
}
