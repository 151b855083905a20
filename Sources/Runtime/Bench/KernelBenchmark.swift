import Foundation
import Kernels
import Model

/// `shoal-coordinator bench-kernels`: the linear-layer kernels alone, next to the machine's
/// limits measured in the same run — matrix-vector (decode) per weight type against the read
/// bandwidth on the TinyLlama-1.1B matrix shapes, and the prefill GEMM against the FMA peak.
public struct KernelBenchmark {
    /// TinyLlama-1.1B shapes (q/o, gate/up, down, lm_head).
    public static let decodeShapes = [(2048, 2048), (5632, 2048), (2048, 5632), (32000, 2048)]

    public let pool: ThreadPool
    public init(threads: Int) { pool = ThreadPool(threads: threads) }

    /// Encodes `rows` x `cols` random weights of `type` (64 distinct rows tiled: real data, cheap to build).
    static func matrix(_ type: WeightType, rows: Int, cols: Int, seed: UInt64) -> UnsafeMutableRawBufferPointer {
        var rng = SeededGenerator(seed: seed)
        let rowBytes = type.rowBytes(cols)
        let pattern = UnsafeMutableRawBufferPointer.allocate(byteCount: 64 * rowBytes, alignment: 64)
        defer { pattern.deallocate() }
        let values = (0 ..< 64 * cols).map { _ in Float(Double(rng.next() >> 11) / Double(1 << 53) * 2 - 1) }
        values.withUnsafeBufferPointer { ck_from_f32(type.ckType, $0.baseAddress, pattern.baseAddress, 64 * cols) }
        let b = UnsafeMutableRawBufferPointer.allocate(byteCount: rows * rowBytes, alignment: 64)
        for r in stride(from: 0, to: rows, by: 64) {
            let n = min(64, rows - r) * rowBytes
            (b.baseAddress! + r * rowBytes).copyMemory(from: pattern.baseAddress!, byteCount: n)
        }
        return b
    }

    func secondsPerCall(_ ops: [ck_linear], tokens: Int, passes: Int) -> Double {
        var best = Double.infinity
        for _ in 0 ..< passes {
            let start = DispatchTime.now().uptimeNanoseconds
            for var op in ops { ck_linear_run(pool.pointer, &op, 1, Int32(tokens)) }
            best = min(best, Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9 / Double(ops.count))
        }
        return best
    }

    /// Decode: bytes of weights streamed per second for each type, and that as a fraction of
    /// the read bandwidth probed just before (memory bandwidth on shared machines drifts).
    /// `columnSlices` > 1 reads only the first 1/N of each row's columns, as a TP rank reads its
    /// o_proj and down_proj slices in place (strided rows); bytes count what is read.
    public func decode(types: [WeightType], columnSlices: Int = 1, log: (String) -> Void) -> [(type: WeightType, gbs: Double, fraction: Double)] {
        var out: [(WeightType, Double, Double)] = []
        for type in types {
            let bandwidth = MachineLimits.readBandwidth(pool: pool, bytes: 512 << 20, repeats: 5)
            var bytes = 0.0, seconds = 0.0
            for (rows, cols) in Self.decodeShapes {
                let matrixBytes = rows * type.rowBytes(cols)
                // Enough copies to exceed the last-level cache several times: every call streams from DRAM.
                let copies = max(2, (768 << 20) / matrixBytes)
                let buffers = (0 ..< copies).map { Self.matrix(type, rows: rows, cols: cols, seed: UInt64($0)) }
                let x = UnsafeMutableBufferPointer<Float>.allocate(capacity: cols)
                let y = UnsafeMutableBufferPointer<Float>.allocate(capacity: rows)
                defer {
                    buffers.forEach { $0.deallocate() }
                    x.deallocate()
                    y.deallocate()
                }
                for i in 0 ..< cols { x[i] = Float(i % 7) / 7 - 0.5 }
                let used = max(32, cols / columnSlices / 32 * 32)
                let ops = buffers.map {
                    ck_linear(wtype: type.ckType, w: UnsafeRawPointer($0.baseAddress), row_bytes: type.rowBytes(cols), rows: Int32(rows),
                              cols: Int32(used), x: x.baseAddress, ldx: Int32(cols), y: y.baseAddress, ldy: Int32(rows), accumulate: 0)
                }
                bytes += Double(rows * type.rowBytes(used))
                seconds += secondsPerCall(ops, tokens: 1, passes: 3)
            }
            let rate = bytes / seconds
            log(String(format: "decode matvec %-4@%@: %6.2f GB/s = %5.1f%% of read bandwidth %.1f GB/s (%d threads, %@)",
                       type.name, columnSlices > 1 ? " (1/\(columnSlices) of columns)" : "", rate / 1e9, 100 * rate / bandwidth,
                       bandwidth / 1e9, pool.threads, CPUFeatures.activeISA))
            out.append((type, rate / 1e9, rate / bandwidth))
        }
        return out
    }

    /// Batched decode: one call with T activation rows per TinyLlama shape, for each T in `tokens`,
    /// as microseconds per call and as a multiple of the first T's time (T = 1 first: the cost of
    /// decoding T sequences together against one).
    public func decodeBatched(types: [WeightType], tokens: [Int], log: (String) -> Void)
        -> [(type: WeightType, rows: Int, cols: Int, tokens: Int, microseconds: Double)]
    {
        var out: [(WeightType, Int, Int, Int, Double)] = []
        let maxTokens = tokens.max() ?? 1
        for type in types {
            for (rows, cols) in Self.decodeShapes {
                let matrixBytes = rows * type.rowBytes(cols)
                let copies = max(2, (768 << 20) / matrixBytes)
                let buffers = (0 ..< copies).map { Self.matrix(type, rows: rows, cols: cols, seed: UInt64($0)) }
                let x = UnsafeMutableBufferPointer<Float>.allocate(capacity: maxTokens * cols)
                let y = UnsafeMutableBufferPointer<Float>.allocate(capacity: maxTokens * rows)
                defer {
                    buffers.forEach { $0.deallocate() }
                    x.deallocate()
                    y.deallocate()
                }
                for i in 0 ..< maxTokens * cols { x[i] = Float(i % 7) / 7 - 0.5 }
                let ops = buffers.map {
                    ck_linear(wtype: type.ckType, w: UnsafeRawPointer($0.baseAddress), row_bytes: type.rowBytes(cols), rows: Int32(rows),
                              cols: Int32(cols), x: x.baseAddress, ldx: Int32(cols), y: y.baseAddress, ldy: Int32(rows), accumulate: 0)
                }
                var line = String(format: "decode %-4@ %5dx%-5d", type.name, rows, cols)
                var first = 0.0
                for t in tokens {
                    let us = secondsPerCall(ops, tokens: t, passes: 3) * 1e6
                    if first == 0 { first = us }
                    line += String(format: "  T=%d %8.1f us (%4.2fx)", t, us, us / first)
                    out.append((type, rows, cols, t, us))
                }
                log(line + String(format: "  [%d threads, %@]", pool.threads, CPUFeatures.activeISA))
            }
        }
        return out
    }

    /// Prefill: GEMM of `tokens` rows against each TinyLlama matrix width, as a fraction of the FMA peak.
    public func prefill(types: [WeightType], tokens: Int, log: (String) -> Void) -> [(type: WeightType, rows: Int, gflops: Double, fraction: Double)] {
        var out: [(WeightType, Int, Double, Double)] = []
        let peak = MachineLimits.fmaPeak(pool: pool, seconds: 1)
        let cols = 2048
        let x = (0 ..< tokens * cols).map { Float($0 % 13) / 13 - 0.5 }
        for rows in [2048, 5632] {
            var y = [Float](repeating: 0, count: tokens * rows)
            let flops = 2.0 * Double(tokens * rows * cols)
            for type in types {
                let w = Self.matrix(type, rows: rows, cols: cols, seed: 9)
                defer { w.deallocate() }
                let seconds = x.withUnsafeBufferPointer { xb in
                    y.withUnsafeMutableBufferPointer { yb in
                        secondsPerCall([ck_linear(wtype: type.ckType, w: UnsafeRawPointer(w.baseAddress), row_bytes: type.rowBytes(cols),
                                                  rows: Int32(rows), cols: Int32(cols), x: xb.baseAddress, ldx: Int32(cols),
                                                  y: yb.baseAddress, ldy: Int32(rows), accumulate: 0)], tokens: tokens, passes: 5)
                    }
                }
                let rate = flops / seconds
                log(String(format: "prefill gemm  %-4@ T=%d %dx%d: %6.1f GFLOP/s = %5.1f%% of FMA peak %.0f GFLOP/s",
                           type.name, tokens, rows, cols, rate / 1e9, 100 * rate / peak, peak / 1e9))
                out.append((type, rows, rate / 1e9, rate / peak))
            }
        }
        return out
    }
}
