import CKernels
import Kernels
import Testing
import Tokenizer

/// GGML's quantize_row_q8_0_ref, transcribed: d = amax / 127, q = roundf(x * (1 / d)).
func ggmlQuantizeQ8_0(_ x: [Float]) -> [UInt8] {
    var out = [UInt8]()
    for b in 0..<x.count / 32 {
        let block = x[(32 * b)..<(32 * b + 32)]
        let amax = block.reduce(Float(0)) { max($0, abs($1)) }
        let d = amax / 127
        let id: Float = d != 0 ? 1 / d : 0
        let h = Float16(d).bitPattern
        out += [UInt8(h & 0xFF), UInt8(h >> 8)]
        out += block.map { UInt8(bitPattern: Int8(($0 * id).rounded(.toNearestOrAwayFromZero))) }
    }
    return out
}

/// GGML's quantize_row_q4_0_ref, transcribed: d = max / -8 (max = the value of largest magnitude,
/// first on ties), q = min(15, int8(x * (1 / d) + 8.5)), low nibbles = weights 0..15.
func ggmlQuantizeQ4_0(_ x: [Float]) -> [UInt8] {
    var out = [UInt8]()
    for b in 0..<x.count / 32 {
        let block = Array(x[(32 * b)..<(32 * b + 32)])
        var amax: Float = 0, maxValue: Float = 0
        for v in block where amax < abs(v) {
            amax = abs(v)
            maxValue = v
        }
        let d = maxValue / -8
        let id: Float = d != 0 ? 1 / d : 0
        let h = Float16(d).bitPattern
        out += [UInt8(h & 0xFF), UInt8(h >> 8)]
        for j in 0..<16 {
            let lo = min(15, Int8(block[j] * id + 8.5)), hi = min(15, Int8(block[j + 16] * id + 8.5))
            out.append(UInt8(lo) | UInt8(hi) << 4)
        }
    }
    return out
}

func toF32(_ type: WeightType, _ bytes: [UInt8], count: Int) -> [Float] {
    var out = [Float](repeating: .nan, count: count)
    bytes.withUnsafeBytes { src in out.withUnsafeMutableBufferPointer { ck_to_f32(type.ckType, src.baseAddress, $0.baseAddress, count) } }
    return out
}

/// Floats that stress rounding: signed zeros, infinities, NaN, the edges of f16's range and
/// subnormals, exact halfway points of f16 and bf16, and random bit patterns.
func conversionSamples() -> [Float] {
    var samples: [Float] = [0, -0.0, 1, -1, .infinity, -.infinity, .nan, 65504, 65519.99, 65520, -65520, 1e-8, -1e-8,
                            Float(bitPattern: 0x3880_0000), Float(bitPattern: 0x3800_0000), 5.9604645e-8, 2.9802322e-8,
                            2.9802326e-8, .leastNonzeroMagnitude, .greatestFiniteMagnitude]
    var rng = SplitMix64(seed: 7)
    for _ in 0..<20000 {
        let half = UInt16(truncatingIfNeeded: rng.next())
        let f = Float(Float16(bitPattern: half))
        guard f.isFinite else { continue }
        // f16 and bf16 ties: the exact midpoints between neighbours, and one ulp either side
        let mid16 = f.bitPattern + 0x1000, mid16b = Float(bitPattern: (f.bitPattern & 0xFFFF_0000) | 0x8000)
        samples += [Float(bitPattern: mid16), Float(bitPattern: mid16 &+ 1), Float(bitPattern: mid16 &- 1), mid16b,
                    Float(bitPattern: mid16b.bitPattern &+ 1)]
    }
    for _ in 0..<100_000 { samples.append(Float(bitPattern: UInt32(truncatingIfNeeded: rng.next()))) }
    return samples
}

extension KernelTests {
    @Suite struct Conversions {
        @Test func halfToFloatIsExactForEveryBitPattern() throws {
            let all = (0...0xFFFF).map { UInt16($0) }
            let bytes = all.flatMap { [UInt8($0 & 0xFF), UInt8($0 >> 8)] }
            try forEachPath { path in
                let got = toF32(.f16, bytes, count: all.count)
                for (i, h) in all.enumerated() {
                    let want = halfToFloat(h)
                    if want.isNaN {
                        #expect(got[i].isNaN, "\(path): f16 0x\(String(h, radix: 16)) must stay NaN")
                    } else {
                        try #require(got[i].bitPattern == want.bitPattern, "\(path): f16 0x\(String(h, radix: 16)) -> \(got[i]), want \(want)")
                    }
                }
            }
        }

        @Test func bfloat16ToFloatIsExactForEveryBitPattern() throws {
            let all = (0...0xFFFF).map { UInt16($0) }
            let bytes = all.flatMap { [UInt8($0 & 0xFF), UInt8($0 >> 8)] }
            try forEachPath { path in
                let got = toF32(.bf16, bytes, count: all.count)
                for (i, b) in all.enumerated() {
                    let want = Float(bitPattern: UInt32(b) << 16)
                    try #require(got[i].bitPattern == want.bitPattern || (want.isNaN && got[i].isNaN), "\(path): bf16 \(b)")
                }
            }
        }

        @Test func floatToHalfRoundsToNearestEven() throws {
            let samples = conversionSamples()
            let bytes = encode(.f16, samples)
            for (i, x) in samples.enumerated() {
                let got = loadU16(bytes, 2 * i)
                if x.isNaN {
                    #expect(Float16(bitPattern: got).isNaN, "NaN must stay NaN")
                } else {
                    try #require(got == Float16(x).bitPattern, "f16(\(x) = 0x\(String(x.bitPattern, radix: 16))) -> 0x\(String(got, radix: 16)), want 0x\(String(Float16(x).bitPattern, radix: 16))")
                }
            }
        }

        @Test func floatToBFloat16RoundsToNearestEven() throws {
            let samples = conversionSamples()
            let bytes = encode(.bf16, samples)
            for (i, x) in samples.enumerated() {
                let got = loadU16(bytes, 2 * i)
                if x.isNaN {
                    #expect(Float(bitPattern: UInt32(got) << 16).isNaN, "NaN must stay NaN")
                } else {
                    try #require(got == floatToBF16(x), "bf16(\(x)) -> \(got), want \(floatToBF16(x))")
                }
            }
            // Ties go to even: 1 + 2^-8 is halfway between 1 and 1 + 2^-7 and rounds down to 1,
            // 1 + 3 * 2^-8 is halfway between 1 + 2^-7 and 1 + 2^-6 and rounds up.
            #expect(encode(.bf16, [1 + 0x1p-8, 1 + 3 * 0x1p-8]) == [0x80, 0x3F, 0x82, 0x3F])
        }

        @Test func q8_0MatchesGGMLReferenceBitForBit() {
            var rng = SplitMix64(seed: 11)
            for scale: Float in [1, 1e-3, 300, 7.5] {
                var x = rng.floats(32 * 40, scale: scale)
                for i in 0..<32 { x[i] = 0 } // an all-zero block: d = 0, q = 0
                for i in stride(from: 64, to: 96, by: 1) { x[i] = Float(i - 80) / 2 } // exact .5 ties
                #expect(encode(.q8_0, x) == ggmlQuantizeQ8_0(x), "scale \(scale)")
            }
        }

        @Test func q4_0MatchesGGMLReferenceBitForBit() {
            var rng = SplitMix64(seed: 12)
            for scale: Float in [1, 1e-3, 300, 7.5] {
                var x = rng.floats(32 * 40, scale: scale)
                for i in 0..<32 { x[i] = 0 }
                for i in 32..<64 { x[i] = Float(i - 48) / 2 } // ties of x / d + 8.5
                x[70] = 5; x[71] = -5 // equal magnitudes: the first one sets the sign of d
                #expect(encode(.q4_0, x) == ggmlQuantizeQ4_0(x), "scale \(scale)")
            }
        }

        /// Blocks worked out by hand from GGML's definitions.
        @Test func handComputedBlocksHaveGGMLLayout() {
            // q8_0 with amax = 127: d = 1 (fp16 0x3C00), q = roundf(x), ties away from zero.
            var x = (0..<32).map { Float($0 - 16) }
            x[0] = 127; x[1] = -127; x[2] = 2.5; x[3] = -2.5; x[4] = 0.49; x[5] = -0.5
            let q8: [UInt8] = [0x00, 0x3C, 0x7F, 0x81, 0x03, 0xFD, 0x00, 0xFF]
                + (6..<32).map { UInt8(bitPattern: Int8($0 - 16)) }
            #expect(encode(.q8_0, x) == q8)
            // q8_0 with amax = 63.5: d = 0.5 (fp16 0x3800), q = 2x.
            var half = [Float]()
            for i in 0..<31 { half.append(Float(i) - 0.5 * Float(i % 3)) }
            half.append(63.5)
            let q8half: [UInt8] = [0x00, 0x38] + half.map { UInt8(bitPattern: Int8((2 * $0).rounded())) }
            #expect(encode(.q8_0, half) == q8half)

            // q4_0 with max = -8: d = 1 (0x3C00), q = min(15, int(x + 8.5)).
            // x[i] = -8 + i/2 for i < 32: weights 0..15 are -8 ... -0.5, 16..31 are 0 ... 7.5.
            let y = (0..<32).map { -8 + Float($0) / 2 }
            var q4: [UInt8] = [0x00, 0x3C]
            for j in 0..<16 {
                let lo = min(15, Int(y[j] + 8.5)), hi = min(15, Int(y[j + 16] + 8.5))
                q4.append(UInt8(lo | hi << 4))
            }
            #expect(q4[2...] == [0x80, 0x91, 0x91, 0xA2, 0xA2, 0xB3, 0xB3, 0xC4, 0xC4, 0xD5, 0xD5, 0xE6, 0xE6, 0xF7, 0xF7, 0xF8])
            #expect(encode(.q4_0, y) == q4)
            // q4_0 with max = +8: d = -1 (0xBC00), q = int(-x + 8.5): 8 -> 0, -7 -> 15, 0 -> 8.
            var z = [Float](repeating: 0, count: 32)
            z[0] = 8; z[1] = -7; z[17] = 3
            // byte 1: weight 1 (-7 -> 15) low, weight 17 (3 -> 5) high
            let q4neg: [UInt8] = [0x00, 0xBC, 0x80, 0x5F] + [UInt8](repeating: 0x88, count: 14)
            #expect(encode(.q4_0, z) == q4neg)
            // All zeros: d = 0 / -8 = -0.0 (fp16 0x8000), every nibble int(0 + 8.5) = 8.
            #expect(encode(.q4_0, [Float](repeating: 0, count: 32)) == [0x00, 0x80] + [UInt8](repeating: 0x88, count: 16))
        }

        @Test func blockRoundTripsStayWithinFormatBounds() {
            var rng = SplitMix64(seed: 13)
            let x = rng.floats(32 * 64, scale: 3)
            let q8 = toF32(.q8_0, encode(.q8_0, x), count: x.count)
            let q4 = toF32(.q4_0, encode(.q4_0, x), count: x.count)
            for b in 0..<x.count / 32 {
                let amax = x[(32 * b)..<(32 * b + 32)].reduce(Float(0)) { max($0, abs($1)) }
                for i in (32 * b)..<(32 * b + 32) {
                    // q8_0: half a step of d = amax/127, plus |q| <= 127 times fp16's error on d.
                    #expect(abs(q8[i] - x[i]) <= amax / 127 * (0.5 + 127 * 0x1p-11) * 1.0001)
                    // q4_0: one step of |d| = amax/8 at most (the clamp at 15), plus fp16 error.
                    #expect(abs(q4[i] - x[i]) <= amax / 8 * (1 + 8 * 0x1p-11) * 1.0001)
                }
            }
        }

        @Test func dequantizationMatchesFormatDefinitionOnEveryPath() {
            var rng = SplitMix64(seed: 14)
            let x = rng.floats(32 * 37, scale: 2)
            for type in WeightType.allCases {
                let bytes = encode(type, x)
                let want = decode(type, bytes, count: x.count)
                forEachPath { path in
                    let got = toF32(type, bytes, count: x.count)
                    #expect(got.map(\.bitPattern) == want.map(\.bitPattern), "\(type) on \(path)")
                }
            }
        }

        @Test func weightTypeNamesAndSizes() throws {
            #expect(try WeightType(name: "bf16") == .bf16)
            #expect(try WeightType(name: "Q4_0") == .q4_0)
            #expect(throws: KernelError.unknownWeightType("I8")) { try WeightType(name: "I8") }
            #expect(try WeightType.f32.bytesPerRow(7) == 28)
            #expect(try WeightType.f16.bytesPerRow(7) == 14)
            #expect(try WeightType.q8_0.bytesPerRow(64) == 68)
            #expect(try WeightType.q4_0.bytesPerRow(64) == 36)
            #expect(throws: KernelError.columnsNotBlockAligned(type: .q8_0, columns: 40)) { try WeightType.q8_0.bytesPerRow(40) }
            for type in WeightType.allCases { #expect(WeightType(type.ckType) == type) }
            #expect(KernelError.columnsNotBlockAligned(type: .q4_0, columns: 40).description.contains("Q4_0"))
        }
    }
}
