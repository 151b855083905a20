import CKernels
import Kernels
import Testing
import Tokenizer

/// One Y (+)= X W^T problem: a `rows x cols` view of a weight matrix that may be a column slice of
/// a wider one (row stride > cols, first column at `columnOffset`, block aligned for q8_0/q4_0),
/// X with a leading dimension above cols and Y with one above rows.
struct LinearCase: CustomStringConvertible {
    var rows: Int, cols: Int, tokens: Int, columnOffset: Int, extraColumns: Int, accumulate: Bool
    var description: String { "rows \(rows) cols \(cols) tokens \(tokens) offset \(columnOffset) extra \(extraColumns) accumulate \(accumulate)" }

    /// Odd shapes (not multiples of any vector width) for float types, block multiples for q8_0/q4_0;
    /// tokens == 1 (decode), 2...16 (batched decode: the matrix-vector path up to its limit, incl.
    /// rows long enough that the activations of all tokens exceed L1 and rows go in column-blocked
    /// bands, and passes of several tokens), and more (GEMM, incl. more columns than one K block).
    /// (The view of columns [columnOffset, columnOffset + cols) needs extraColumns >= columnOffset.)
    static func all(for type: WeightType) -> [LinearCase] {
        let q = type.isQuantized
        return [
            LinearCase(rows: 1, cols: q ? 32 : 1, tokens: 1, columnOffset: 0, extraColumns: 0, accumulate: false),
            LinearCase(rows: 3, cols: q ? 64 : 7, tokens: 1, columnOffset: q ? 32 : 2, extraColumns: q ? 64 : 5, accumulate: true),
            LinearCase(rows: 17, cols: q ? 96 : 33, tokens: 1, columnOffset: 0, extraColumns: 0, accumulate: false),
            LinearCase(rows: 67, cols: q ? 544 : 517, tokens: 1, columnOffset: q ? 64 : 3, extraColumns: q ? 96 : 9, accumulate: true),
            LinearCase(rows: 301, cols: q ? 64 : 65, tokens: 1, columnOffset: 0, extraColumns: 0, accumulate: false),
            LinearCase(rows: 9, cols: q ? 8192 : 6500, tokens: 1, columnOffset: q ? 32 : 1, extraColumns: q ? 32 : 1, accumulate: false),
            LinearCase(rows: 7, cols: q ? 64 : 40, tokens: 2, columnOffset: q ? 32 : 3, extraColumns: q ? 32 : 3, accumulate: true),
            LinearCase(rows: 5, cols: q ? 160 : 100, tokens: 2, columnOffset: 0, extraColumns: 0, accumulate: false),
            LinearCase(rows: 33, cols: q ? 128 : 130, tokens: 3, columnOffset: 0, extraColumns: 0, accumulate: false),
            LinearCase(rows: 19, cols: q ? 256 : 257, tokens: 4, columnOffset: q ? 64 : 5, extraColumns: q ? 96 : 7, accumulate: true),
            LinearCase(rows: 29, cols: q ? 288 : 300, tokens: 5, columnOffset: q ? 32 : 1, extraColumns: q ? 32 : 3, accumulate: true),
            LinearCase(rows: 23, cols: q ? 2048 : 2050, tokens: 5, columnOffset: 0, extraColumns: 0, accumulate: false),
            LinearCase(rows: 22, cols: q ? 1120 : 1100, tokens: 6, columnOffset: q ? 32 : 2, extraColumns: q ? 64 : 2, accumulate: true),
            LinearCase(rows: 17, cols: q ? 96 : 95, tokens: 7, columnOffset: 0, extraColumns: 0, accumulate: false),
            LinearCase(rows: 41, cols: q ? 2048 : 1100, tokens: 8, columnOffset: q ? 96 : 1, extraColumns: q ? 96 : 4, accumulate: false),
            LinearCase(rows: 13, cols: q ? 160 : 150, tokens: 8, columnOffset: 0, extraColumns: 0, accumulate: true),
            LinearCase(rows: 130, cols: q ? 1120 : 1100, tokens: 9, columnOffset: 0, extraColumns: 0, accumulate: false),
            LinearCase(rows: 67, cols: q ? 544 : 517, tokens: 13, columnOffset: q ? 64 : 3, extraColumns: q ? 96 : 9, accumulate: true),
            LinearCase(rows: 21, cols: q ? 2048 : 2000, tokens: 16, columnOffset: 0, extraColumns: 0, accumulate: false),
            LinearCase(rows: 18, cols: q ? 320 : 333, tokens: 17, columnOffset: q ? 32 : 1, extraColumns: q ? 32 : 1, accumulate: true),
        ]
    }

    /// Does this case run on the matrix-vector path (where q8_0/q4_0 activations are quantized)?
    func isMatrixVector(_ type: WeightType) -> Bool { tokens <= Int(ck_linear_matvec_max_tokens(type.ckType)) }
}

/// Data of one case plus its double-precision reference.
struct LinearProblem {
    let type: WeightType
    let c: LinearCase
    let matrix: [UInt8] // rows x (cols + extraColumns) weights of `type`
    let rowBytes: Int, viewOffset: Int
    let ldx: Int, ldy: Int
    let x: [Float], y0: [Float]
    let reference: [Double] // [tokens * ldy], y0 included when accumulating
    let floatBound: [Double] // per output: f32 summation error allowance
    let quantizationBound: [Double] // per output: error from quantizing x to int8 blocks (q8_0/q4_0)
    let activationBound: [Double] // the same where this case's path quantizes x (matrix-vector), else 0

    init(_ type: WeightType, _ c: LinearCase, seed: UInt64) {
        self.type = type
        self.c = c
        var rng = SplitMix64(seed: seed)
        let fullCols = c.cols + c.extraColumns
        var bytes = [UInt8]()
        for _ in 0..<c.rows { bytes += encode(type, rng.floats(fullCols)) }
        matrix = bytes
        rowBytes = try! type.bytesPerRow(fullCols)
        viewOffset = try! type.bytesPerRow(c.columnOffset)
        ldx = c.cols + 3
        ldy = c.rows + 2
        x = rng.floats(c.tokens * ldx)
        y0 = rng.floats(c.tokens * ldy)
        var ref = c.accumulate ? y0.map(Double.init) : [Double](repeating: 0, count: c.tokens * ldy)
        var fb = [Double](repeating: 0, count: c.tokens * ldy), ab = fb
        let eps = Double(Float.ulpOfOne)
        for r in 0..<c.rows {
            let w = decode(type, bytes, offset: r * rowBytes + viewOffset, count: c.cols)
            for t in 0..<c.tokens {
                var s = 0.0, sa = 0.0, qa = 0.0
                for k in 0..<c.cols {
                    let p = Double(w[k]) * Double(x[t * ldx + k])
                    s += p
                    sa += abs(p)
                }
                if type.isQuantized {
                    // x is rounded to int8 per block: |error| <= amax/127/2 per element.
                    for b in 0..<c.cols / 32 {
                        let xs = x[(t * ldx + 32 * b)..<(t * ldx + 32 * b + 32)]
                        let amax = Double(xs.reduce(Float(0)) { max($0, abs($1)) })
                        qa += w[(32 * b)..<(32 * b + 32)].reduce(0.0) { $0 + abs(Double($1)) } * amax / 254
                    }
                }
                ref[t * ldy + r] += s
                // Each output sums cols products in lanes of at most cols/4 terms, then a tree;
                // scaled products of quantized blocks add a few roundings of the same size.
                fb[t * ldy + r] = eps * Double(c.cols / 4 + 32) * (sa + qa) + eps * abs(ref[t * ldy + r]) * 2
                ab[t * ldy + r] = qa * 1.0001
            }
        }
        reference = ref
        floatBound = fb
        quantizationBound = ab
        activationBound = c.isMatrixVector(type) ? ab : ab.map { _ in 0 }
    }

    func run(_ pool: ThreadPool?) -> [Float] {
        var y = y0
        matrix.withUnsafeBytes { w in
            x.withUnsafeBufferPointer { x in
                y.withUnsafeMutableBufferPointer { y in
                    var op = ck_linear(wtype: type.ckType, w: w.baseAddress! + viewOffset, row_bytes: rowBytes,
                                       rows: Int32(c.rows), cols: Int32(c.cols), x: x.baseAddress, ldx: Int32(ldx),
                                       y: y.baseAddress, ldy: Int32(ldy), accumulate: c.accumulate ? 1 : 0)
                    ck_linear_run(pool?.pointer, &op, 1, Int32(c.tokens))
                }
            }
        }
        return y
    }

    /// The same problem as one call per token (each a one-token decode into its row of Y).
    func runOneTokenAtATime(_ pool: ThreadPool?) -> [Float] {
        var y = y0
        matrix.withUnsafeBytes { w in
            x.withUnsafeBufferPointer { x in
                y.withUnsafeMutableBufferPointer { y in
                    for t in 0..<c.tokens {
                        var op = ck_linear(wtype: type.ckType, w: w.baseAddress! + viewOffset, row_bytes: rowBytes,
                                           rows: Int32(c.rows), cols: Int32(c.cols), x: x.baseAddress! + t * ldx, ldx: Int32(ldx),
                                           y: y.baseAddress! + t * ldy, ldy: Int32(ldy), accumulate: c.accumulate ? 1 : 0)
                        ck_linear_run(pool?.pointer, &op, 1, 1)
                    }
                }
            }
        }
        return y
    }
}

extension KernelTests {
    @Suite struct Linear {
        let pool = ThreadPool(threads: 2)

        @Test(arguments: WeightType.allCases)
        func matchesDoublePrecisionReferenceOnEveryPath(type: WeightType) throws {
            for (i, c) in LinearCase.all(for: type).enumerated() {
                let p = LinearProblem(type, c, seed: UInt64(100 + i))
                try forEachPath { path in
                    let y = p.run(pool)
                    for t in 0..<c.tokens {
                        for r in 0..<p.ldy {
                            let k = t * p.ldy + r
                            if r >= c.rows {
                                try #require(y[k] == p.y0[k], "\(type) \(c) on \(path): wrote past the rows at [\(t), \(r)]")
                                continue
                            }
                            let err = abs(Double(y[k]) - p.reference[k]), bound = p.floatBound[k] + p.activationBound[k]
                            try #require(err <= bound, "\(type) \(c) on \(path): y[\(t), \(r)] = \(y[k]), want \(p.reference[k]) (error \(err) > \(bound))")
                        }
                    }
                }
            }
        }

        /// The SIMD paths agree with the portable one up to float rounding: for q8_0/q4_0 too, since
        /// every path quantizes x identically and computes exact integer block dots.
        @Test(arguments: WeightType.allCases)
        func everyPathAgreesWithPortable(type: WeightType) throws {
            for (i, c) in LinearCase.all(for: type).enumerated() {
                let p = LinearProblem(type, c, seed: UInt64(200 + i))
                let portable = withPortable { p.run(pool) }
                try forEachPath { path in
                    let y = p.run(pool)
                    for t in 0..<c.tokens {
                        for r in 0..<c.rows {
                            let k = t * p.ldy + r
                            try #require(abs(Double(y[k]) - Double(portable[k])) <= 2 * p.floatBound[k],
                                         "\(type) \(c) on \(path): \(y[k]) vs portable \(portable[k])")
                        }
                    }
                }
            }
        }

        /// Batched decode: with several tokens on the matrix-vector path every token's outputs are
        /// bit-identical to decoding that token alone (so batched and single-sequence decode give
        /// the same logits, and quantized activations round the same way), on every path. Past the
        /// path's limit the GEMM agrees within float rounding (and x's int8 rounding for q8_0/q4_0).
        @Test(arguments: WeightType.allCases)
        func batchedTokensMatchOneTokenCalls(type: WeightType) throws {
            let limit = Int(ck_linear_matvec_max_tokens(type.ckType))
            #expect(limit >= 8, "\(type): batched decode of up to 8 sequences should stream the weights once")
            for (i, c) in LinearCase.all(for: type).enumerated() where c.tokens > 1 {
                let p = LinearProblem(type, c, seed: UInt64(500 + i))
                try forEachPath { path in
                    let batched = p.run(pool), single = p.runOneTokenAtATime(pool)
                    if c.tokens <= limit {
                        if let k = batched.indices.first(where: { batched[$0].bitPattern != single[$0].bitPattern }) {
                            Issue.record("\(type) \(c) on \(path): y[\(k / p.ldy), \(k % p.ldy)] = \(batched[k]) batched, \(single[k]) alone")
                        }
                    } else {
                        for t in 0..<c.tokens {
                            for r in 0..<c.rows {
                                let k = t * p.ldy + r
                                let bound = 2 * p.floatBound[k] + p.quantizationBound[k]
                                try #require(abs(Double(batched[k]) - Double(single[k])) <= bound,
                                             "\(type) \(c) on \(path): y[\(t), \(r)] = \(batched[k]) (GEMM), \(single[k]) alone")
                            }
                        }
                    }
                }
            }
        }

        /// Each output is computed by one task in an order fixed by the kernel, so thread count and
        /// scheduling never change a bit.
        @Test(arguments: WeightType.allCases)
        func resultsAreIdenticalForAnyThreadCount(type: WeightType) throws {
            let pools = [ThreadPool(threads: 1), ThreadPool(threads: 3), pool]
            for (i, c) in LinearCase.all(for: type).enumerated() where c.rows > 16 {
                let p = LinearProblem(type, c, seed: UInt64(300 + i))
                let first = p.run(nil).map(\.bitPattern)
                for (j, other) in pools.enumerated() {
                    #expect(p.run(other).map(\.bitPattern) == first, "\(type) \(c) pool #\(j)")
                    #expect(p.run(other).map(\.bitPattern) == first, "\(type) \(c) pool #\(j), repeated")
                }
            }
        }

        /// Ops of mixed dtypes in one call (q/k/v sharing x, plus one with its own x) give exactly
        /// what separate calls give.
        @Test(arguments: [1, 3, 8, 16])
        func batchedOpsEqualSeparateCalls(tokens: Int) throws {
            let cols = 96
            var rng = SplitMix64(seed: 400)
            let shared = rng.floats(tokens * cols), own = rng.floats(tokens * cols)
            let specs: [(WeightType, Int, Bool)] = [(.f32, 37, false), (.bf16, 9, false), (.q8_0, 21, true), (.q4_0, 50, false), (.f16, 3, true)]
            let mats = specs.map { spec in (0..<spec.1).flatMap { _ in encode(spec.0, rng.floats(cols)) } }
            let y0 = specs.map { rng.floats(tokens * $0.1) }
            func run(_ indices: [Int]) -> [[Float]] {
                var ys = y0
                let xs = [shared, shared, shared, own, shared]
                let raw: [UnsafeMutableRawBufferPointer] = mats.map { m in
                    let b = UnsafeMutableRawBufferPointer.allocate(byteCount: m.count, alignment: 64)
                    b.copyBytes(from: m)
                    return b
                }
                let xb = xs.map { v in let b = UnsafeMutableBufferPointer<Float>.allocate(capacity: v.count); _ = b.initialize(from: v); return b }
                let yb = ys.map { v in let b = UnsafeMutableBufferPointer<Float>.allocate(capacity: v.count); _ = b.initialize(from: v); return b }
                defer { raw.forEach { $0.deallocate() }; xb.forEach { $0.deallocate() }; yb.forEach { $0.deallocate() } }
                var ops = indices.map { i in
                    ck_linear(wtype: specs[i].0.ckType, w: UnsafeRawPointer(raw[i].baseAddress), row_bytes: try! specs[i].0.bytesPerRow(cols),
                              rows: Int32(specs[i].1), cols: Int32(cols), x: xb[i].baseAddress, ldx: Int32(cols),
                              y: yb[i].baseAddress, ldy: Int32(specs[i].1), accumulate: specs[i].2 ? 1 : 0)
                }
                ck_linear_run(pool.pointer, &ops, Int32(ops.count), Int32(tokens))
                for i in indices { ys[i] = Array(yb[i]) }
                return ys
            }
            let together = run(Array(specs.indices))
            for i in specs.indices {
                #expect(run([i])[i].map(\.bitPattern) == together[i].map(\.bitPattern), "op \(i) (\(specs[i].0)), tokens \(tokens)")
            }
        }

        @Test func zeroColumnsGiveZeroOrLeaveYAlone() {
            var y: [Float] = [1, 2, 3, 4]
            let x: [Float] = [5]
            let w: [Float] = [6]
            w.withUnsafeBytes { wb in
                x.withUnsafeBufferPointer { xb in
                    y.withUnsafeMutableBufferPointer { yb in
                        var ops = [ck_linear(wtype: CK_F32, w: wb.baseAddress, row_bytes: 4, rows: 2, cols: 0, x: xb.baseAddress, ldx: 1,
                                             y: yb.baseAddress, ldy: 2, accumulate: 1),
                                   ck_linear(wtype: CK_F32, w: wb.baseAddress, row_bytes: 4, rows: 2, cols: 0, x: xb.baseAddress, ldx: 1,
                                             y: yb.baseAddress! + 2, ldy: 2, accumulate: 0)]
                        ck_linear_run(pool.pointer, &ops, 2, 1)
                    }
                }
            }
            #expect(y == [1, 2, 0, 0])
        }
    }
}
