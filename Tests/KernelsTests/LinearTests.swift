import CKernels
import Kernels
import Testing

/// One Y (+)= X W^T problem: a `rows x cols` view of a weight matrix that may be a column slice of
/// a wider one (row stride > cols, first column at `columnOffset`, block aligned for q8_0/q4_0),
/// X with a leading dimension above cols and Y with one above rows.
struct LinearCase: CustomStringConvertible {
    var rows: Int, cols: Int, tokens: Int, columnOffset: Int, extraColumns: Int, accumulate: Bool
    var description: String { "rows \(rows) cols \(cols) tokens \(tokens) offset \(columnOffset) extra \(extraColumns) accumulate \(accumulate)" }

    /// Odd shapes (not multiples of any vector width) for float types, block multiples for q8_0/q4_0;
    /// tokens == 1 (matrix-vector) and > 1 (GEMM, incl. more columns than one K block).
    static func all(for type: WeightType) -> [LinearCase] {
        let q = type.isQuantized
        return [
            LinearCase(rows: 1, cols: q ? 32 : 1, tokens: 1, columnOffset: 0, extraColumns: 0, accumulate: false),
            LinearCase(rows: 3, cols: q ? 64 : 7, tokens: 1, columnOffset: q ? 32 : 2, extraColumns: q ? 64 : 5, accumulate: true),
            LinearCase(rows: 17, cols: q ? 96 : 33, tokens: 1, columnOffset: 0, extraColumns: 0, accumulate: false),
            LinearCase(rows: 67, cols: q ? 544 : 517, tokens: 1, columnOffset: q ? 64 : 3, extraColumns: q ? 96 : 9, accumulate: true),
            LinearCase(rows: 301, cols: q ? 64 : 65, tokens: 1, columnOffset: 0, extraColumns: 0, accumulate: false),
            LinearCase(rows: 5, cols: q ? 160 : 100, tokens: 2, columnOffset: 0, extraColumns: 0, accumulate: false),
            LinearCase(rows: 29, cols: q ? 288 : 300, tokens: 5, columnOffset: q ? 32 : 1, extraColumns: q ? 32 : 3, accumulate: true),
            LinearCase(rows: 67, cols: q ? 544 : 517, tokens: 13, columnOffset: q ? 64 : 3, extraColumns: q ? 96 : 9, accumulate: true),
            LinearCase(rows: 130, cols: q ? 1120 : 1100, tokens: 9, columnOffset: 0, extraColumns: 0, accumulate: false),
        ]
    }
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
    let activationBound: [Double] // per output: error from quantizing x to int8 blocks (T == 1, q8_0/q4_0)

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
                if type.isQuantized && c.tokens == 1 {
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
        activationBound = ab
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
        @Test(arguments: [1, 4])
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
