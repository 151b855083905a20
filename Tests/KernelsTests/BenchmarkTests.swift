import CKernels
import Foundation
import Kernels
import Testing

/// The kernel performance targets, measured on this machine. Off by default (they take a minute,
/// allocate ~1 GB and need an otherwise idle machine); run with
/// `SHOAL_KERNEL_BENCH=1 swift test --filter KernelBenchmarks`.
/// Optional: SHOAL_KERNEL_BENCH_THREADS (default 2).
extension KernelTests {
    @Suite(.enabled(if: ProcessInfo.processInfo.environment["SHOAL_KERNEL_BENCH"] == "1"))
    struct KernelBenchmarks {
        let pool = ThreadPool(threads: Int(ProcessInfo.processInfo.environment["SHOAL_KERNEL_BENCH_THREADS"] ?? "") ?? 2)

        /// TinyLlama-1.1B shapes (q/o, gate/up, down, lm_head). Each shape gets enough copies to
        /// exceed the last-level cache several times over, so every call streams from DRAM.
        static let decodeShapes = [(2048, 2048), (5632, 2048), (2048, 5632), (32000, 2048)]

        /// Seconds per call of `ops`, best of `passes` sweeps over the copies.
        func secondsPerCall(_ ops: [ck_linear], tokens: Int, passes: Int = 3) -> Double {
            var best = Double.infinity
            for _ in 0..<passes {
                let start = DispatchTime.now().uptimeNanoseconds
                for var op in ops { ck_linear_run(pool.pointer, &op, 1, Int32(tokens)) }
                best = min(best, Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9 / Double(ops.count))
            }
            return best
        }

        @Test func decodeMatvecReachesEightyPercentOfReadBandwidth() {
            let bandwidth = MachineLimits.readBandwidth(pool: pool, bytes: 512 << 20, repeats: 5)
            print(String(format: "read bandwidth: %.2f GB/s (%d threads, %@)", bandwidth / 1e9, pool.threads, CPUFeatures.activeISA))
            var rng = SplitMix64(seed: 1)
            for type in WeightType.allCases {
                var bytesTotal = 0.0, secondsTotal = 0.0
                for (rows, cols) in Self.decodeShapes {
                    let rowBytes = try! type.bytesPerRow(cols)
                    let matrixBytes = rows * rowBytes
                    let copies = max(2, (768 << 20) / matrixBytes)
                    // 64 distinct random rows tiled over the matrix: real data, cheap to build.
                    let pattern = (0..<64).flatMap { _ in encode(type, rng.floats(cols)) }
                    let buffers = (0..<copies).map { _ in
                        let b = UnsafeMutableRawBufferPointer.allocate(byteCount: matrixBytes, alignment: 64)
                        for r in stride(from: 0, to: rows, by: 64) {
                            let n = min(64, rows - r) * rowBytes
                            pattern.withUnsafeBytes { b.baseAddress!.advanced(by: r * rowBytes).copyMemory(from: $0.baseAddress!, byteCount: n) }
                        }
                        return b
                    }
                    let x = UnsafeMutableBufferPointer<Float>.allocate(capacity: cols)
                    let y = UnsafeMutableBufferPointer<Float>.allocate(capacity: rows)
                    defer { buffers.forEach { $0.deallocate() }; x.deallocate(); y.deallocate() }
                    for i in 0..<cols { x[i] = rng.uniform() }
                    let ops = buffers.map {
                        ck_linear(wtype: type.ckType, w: UnsafeRawPointer($0.baseAddress), row_bytes: rowBytes, rows: Int32(rows),
                                  cols: Int32(cols), x: x.baseAddress, ldx: Int32(cols), y: y.baseAddress, ldy: Int32(rows), accumulate: 0)
                    }
                    let seconds = secondsPerCall(ops, tokens: 1)
                    bytesTotal += Double(matrixBytes)
                    secondsTotal += seconds
                    print(String(format: "matvec %-4@ %5d x %-5d %8.1f us %7.2f GB/s %5.1f%%", type.name, rows, cols, seconds * 1e6,
                                 Double(matrixBytes) / seconds / 1e9, 100 * Double(matrixBytes) / seconds / bandwidth))
                }
                let rate = bytesTotal / secondsTotal
                print(String(format: "matvec %-4@ all shapes: %.2f GB/s = %.1f%% of read bandwidth", type.name, rate / 1e9, 100 * rate / bandwidth))
                #expect(rate >= 0.8 * bandwidth, "\(type) matvec at \(rate / 1e9) GB/s")
            }
        }

        @Test(arguments: [2048, 5632])
        func prefillGemmReachesHalfOfFmaPeak(rows: Int) {
            let peak = MachineLimits.fmaPeak(pool: pool, seconds: 1)
            let tokens = 128, cols = 2048
            var rng = SplitMix64(seed: 2)
            let w = rng.floats(rows * cols), x = rng.floats(tokens * cols)
            var y = [Float](repeating: 0, count: tokens * rows)
            let flops = 2.0 * Double(tokens * rows * cols)
            for type in WeightType.allCases {
                let bytes = w.withUnsafeBufferPointer { _ in (0..<rows).flatMap { r in encode(type, Array(w[(r * cols)..<((r + 1) * cols)])) } }
                let seconds = bytes.withUnsafeBytes { wb in
                    x.withUnsafeBufferPointer { xb in
                        y.withUnsafeMutableBufferPointer { yb in
                            let op = ck_linear(wtype: type.ckType, w: wb.baseAddress, row_bytes: try! type.bytesPerRow(cols), rows: Int32(rows),
                                               cols: Int32(cols), x: xb.baseAddress, ldx: Int32(cols), y: yb.baseAddress, ldy: Int32(rows), accumulate: 0)
                            return secondsPerCall([op], tokens: tokens, passes: 5)
                        }
                    }
                }
                print(String(format: "gemm %-4@ T=%d C=%d R=%d: %.2f ms, %.1f GFLOP/s = %.1f%% of FMA peak (%.1f GFLOP/s)", type.name, tokens, cols,
                             rows, seconds * 1e3, flops / seconds / 1e9, 100 * flops / seconds / peak, peak / 1e9))
                if type == .f32 { #expect(flops / seconds >= 0.5 * peak) }
            }
        }
    }
}
