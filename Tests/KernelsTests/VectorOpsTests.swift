import CKernels
import Foundation
import Kernels
import Testing
import Tokenizer

/// Relative closeness with an absolute floor, in units of float epsilon.
func close(_ got: Float, _ want: Double, ulps: Double, floor: Double = 1e-30) -> Bool {
    abs(Double(got) - want) <= ulps * Double(Float.ulpOfOne) * max(abs(want), floor)
}

extension KernelTests {
    @Suite struct VectorOps {
        static let sizes = [1, 3, 8, 15, 16, 17, 31, 100, 2048, 5633]

        @Test func rmsnormMatchesReference() throws {
            var rng = SplitMix64(seed: 500)
            for n in Self.sizes {
                let x = rng.floats(n, scale: 3), w = rng.floats(n)
                let eps: Float = 1e-5
                let ms = x.reduce(0.0) { $0 + Double($1) * Double($1) } / Double(n)
                let inv = 1 / (ms + Double(eps)).squareRoot()
                try forEachPath { path in
                    for weight in [w, nil] {
                        var out = [Float](repeating: .nan, count: n)
                        x.withUnsafeBufferPointer { xb in
                            out.withUnsafeMutableBufferPointer { ob in
                                if let weight {
                                    weight.withUnsafeBufferPointer { ck_rmsnorm(xb.baseAddress, $0.baseAddress, eps, ob.baseAddress, Int32(n)) }
                                } else {
                                    ck_rmsnorm(xb.baseAddress, nil, eps, ob.baseAddress, Int32(n))
                                }
                            }
                        }
                        for i in 0..<n {
                            let want = Double(x[i]) * inv * Double(weight?[i] ?? 1)
                            try #require(close(out[i], want, ulps: 8, floor: 1e-6), "\(path) n=\(n) [\(i)]: \(out[i]) vs \(want)")
                        }
                    }
                }
            }
        }

        /// f32 mean of squares like PyTorch: with values whose squares sum exactly, the result is
        /// what x * (1 / sqrtf(mean + eps)) * w gives in f32.
        @Test func rmsnormFollowsPyTorchF32Formula() {
            let x: [Float] = [1, 2, 3, 4, -5, 6, 7, -8, 0.5, 0.25]
            let w: [Float] = [1, 0.5, 2, 1, 1, 1, -1, 1, 3, 1]
            let eps: Float = 1e-6
            let mean = x.reduce(Float(0)) { $0 + $1 * $1 } / Float(x.count) // exact: small dyadic sums
            let scale = 1 / (mean + eps).squareRoot()
            var out = [Float](repeating: 0, count: x.count)
            ck_rmsnorm(x, w, eps, &out, Int32(x.count))
            #expect(out == zip(x, w).map { ($0 * scale) * $1 })
        }

        @Test func softmaxMatchesReference() throws {
            var rng = SplitMix64(seed: 501)
            for n in Self.sizes {
                var x = rng.floats(n, scale: 20)
                if n > 4 { x[1] = -.infinity; x[n - 2] = -.infinity } // masked positions
                // x - max rounds in f32 as in every f32 softmax (PyTorch's too); exp is then exact.
                let m = x.max()!
                let e = x.map { exp(Double($0 - m)) }
                let s = e.reduce(0, +)
                try forEachPath { path in
                    var y = x
                    ck_softmax(&y, Int32(n))
                    for i in 0..<n {
                        if x[i] == -.infinity {
                            try #require(y[i] == 0, "\(path) n=\(n): masked entry \(i) = \(y[i])")
                        } else {
                            try #require(close(y[i], e[i] / s, ulps: 16, floor: 1e-30), "\(path) n=\(n) [\(i)]: \(y[i]) vs \(e[i] / s)")
                        }
                    }
                    #expect(abs(y.reduce(0.0) { $0 + Double($1) } - 1) < 1e-5)
                }
            }
        }

        @Test func softmaxHandlesExtremes() {
            forEachPath { path in
                var big: [Float] = [1e30, 1e30, -1e30]
                ck_softmax(&big, 3)
                #expect(big == [0.5, 0.5, 0], "\(path)")
                var single: [Float] = [-3]
                ck_softmax(&single, 1)
                #expect(single == [1], "\(path)")
            }
        }

        @Test func swigluMatchesReference() throws {
            var rng = SplitMix64(seed: 502)
            for n in Self.sizes {
                var g = rng.floats(n, scale: 12)
                let u = rng.floats(n, scale: 2)
                if n > 3 { g[0] = 95; g[1] = -95; g[2] = 0 } // exp over- and underflow of the sigmoid
                try forEachPath { path in
                    var out = g
                    ck_swiglu(&out, u, Int32(n))
                    for i in 0..<n {
                        let gi = Double(g[i])
                        let want = gi / (1 + exp(-gi)) * Double(u[i])
                        try #require(close(out[i], want, ulps: 16, floor: 1e-30) || abs(Double(out[i]) - want) < 1e-30,
                                     "\(path) n=\(n) [\(i)]: silu(\(g[i])) * \(u[i]) = \(out[i]) vs \(want)")
                    }
                }
            }
        }

        @Test func axpyAndDotMatchReference() throws {
            var rng = SplitMix64(seed: 503)
            for n in Self.sizes {
                let x = rng.floats(n), y = rng.floats(n)
                let a: Float = -1.75
                let dotRef = zip(x, y).reduce(0.0) { $0 + Double($1.0) * Double($1.1) }
                let dotAbs = zip(x, y).reduce(0.0) { $0 + abs(Double($1.0) * Double($1.1)) }
                try forEachPath { path in
                    var z = y
                    ck_axpy(a, x, &z, Int32(n))
                    for i in 0..<n {
                        let want = Double(y[i]) + Double(a) * Double(x[i])
                        // one rounding (fused) or two (multiply, then add)
                        try #require(abs(Double(z[i]) - want) <= 2 * Double(Float.ulpOfOne) * (abs(want) + abs(Double(a) * Double(x[i]))),
                                     "\(path) axpy n=\(n) [\(i)]")
                    }
                    let d = ck_dot(x, y, Int32(n))
                    #expect(abs(Double(d) - dotRef) <= Double(Float.ulpOfOne) * Double(n / 4 + 8) * dotAbs, "\(path) dot n=\(n)")
                }
            }
        }
    }
}
