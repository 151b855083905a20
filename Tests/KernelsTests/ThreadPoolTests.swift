import CKernels
import Kernels
import Testing

extension KernelTests {
    @Suite struct Pool {
        @Test(arguments: [1, 2, 3, 5])
        func everyIndexRunsExactlyOnce(threads: Int) {
            let pool = ThreadPool(threads: threads)
            #expect(pool.threads == threads)
            let counts = UnsafeMutableBufferPointer<Int>.allocate(capacity: 1000)
            defer { counts.deallocate() }
            // Many small runs back to back: the decode pattern the spin-then-sleep workers serve.
            for round in 0..<3000 {
                let n = round % 97
                counts.initialize(repeating: 0)
                pool.parallelFor(n) { counts[$0] += 1 }
                if !counts[0..<n].allSatisfy({ $0 == 1 }) || counts[n...].contains(where: { $0 != 0 }) {
                    Issue.record("round \(round), n \(n): counts \(Array(counts[0..<n]))")
                    return
                }
            }
        }

        @Test func runsAfterIdleWakeSleepingWorkers() async throws {
            let pool = ThreadPool(threads: 3)
            let hits = UnsafeMutableBufferPointer<Int>.allocate(capacity: 64)
            defer { hits.deallocate() }
            for _ in 0..<3 {
                try await Task.sleep(nanoseconds: 5_000_000) // longer than the spin: workers sleep
                hits.initialize(repeating: 0)
                pool.parallelFor(64) { hits[$0] = $0 + 1 }
                #expect(Array(hits) == Array(1...64))
            }
        }

        @Test func nestedParallelForRunsInline() {
            let pool = ThreadPool(threads: 2)
            let cells = UnsafeMutableBufferPointer<Int>.allocate(capacity: 8 * 8)
            defer { cells.deallocate() }
            cells.initialize(repeating: 0)
            pool.parallelFor(8) { i in
                pool.parallelFor(8) { j in cells[i * 8 + j] += i * 8 + j }
            }
            #expect(Array(cells) == Array(0..<64))
        }

        @Test func concurrentCallersAreSerialized() async {
            let pool = ThreadPool(threads: 2)
            let sums = await withTaskGroup(of: Int.self) { group in
                for caller in 0..<4 {
                    group.addTask {
                        let cells = UnsafeMutableBufferPointer<Int>.allocate(capacity: 50)
                        defer { cells.deallocate() }
                        var total = 0
                        for _ in 0..<200 {
                            cells.initialize(repeating: 0)
                            pool.parallelFor(50) { cells[$0] = caller + 1 }
                            total += cells.reduce(0, +)
                        }
                        return total
                    }
                }
                var all = [Int]()
                for await s in group { all.append(s) }
                return all.sorted()
            }
            #expect(sums == [1, 2, 3, 4].map { 200 * 50 * $0 })
        }

        @Test func cTaskFunctionsSeeIndexAndCount() {
            let pool = ThreadPool(threads: 2)
            var seen = [Int32](repeating: -1, count: 10)
            seen.withUnsafeMutableBufferPointer { buffer in
                ck_pool_run(pool.pointer, { ctx, task, ntasks in
                    ctx!.assumingMemoryBound(to: Int32.self)[Int(task)] = ntasks
                }, buffer.baseAddress, 10)
            }
            #expect(seen == [Int32](repeating: 10, count: 10))
        }
    }

    @Suite struct Machine {
        @Test func probesReportPlausibleLimits() {
            let pool = ThreadPool(threads: 2)
            let bandwidth = MachineLimits.readBandwidth(pool: pool, bytes: 64 << 20, repeats: 2)
            let peak = MachineLimits.fmaPeak(pool: pool, seconds: 0.1)
            // Any machine that runs this streams over 1 GB/s and does over 1 GFLOP/s.
            #expect(bandwidth > 1e9 && bandwidth.isFinite)
            #expect(peak > 1e9 && peak.isFinite)
        }

        /// The process-wide switch takes only the names this CPU
        /// runs; it is exercised with the detected ISA so tests running beside this one keep it.
        @Test func isaSelection() throws {
            #expect(CPUFeatures.availableISAs.first == "portable")
            #expect(CPUFeatures.availableISAs.contains(CPUFeatures.detectedISA))
            let active = CPUFeatures.activeISA // the detected one, or SHOAL_ISA's
            try CPUFeatures.use(isa: active.uppercased())
            #expect(CPUFeatures.activeISA == active)
            #expect(throws: KernelError.unsupportedISA("sse9")) { try CPUFeatures.use(isa: "sse9") }
            #if arch(x86_64)
            #expect(throws: KernelError.unsupportedISA("neon")) { try CPUFeatures.use(isa: "neon") }
            #endif
            #expect(CPUFeatures.activeISA == active)
        }

        /// A thread's override reaches the pool tasks it starts and no other thread.
        @Test func threadOverrideStaysOnItsThread() throws {
            let pool = ThreadPool(threads: 2)
            let global = ck_active_isa()
            defer { ck_clear_thread_isa() }
            for isa in [CK_ISA_PORTABLE, CK_ISA_AVX2, CK_ISA_AVX512, CK_ISA_NEON] where ck_set_thread_isa(isa, ~0) >= 0 {
                #expect(ck_active_isa() == isa)
                var seen = [ck_isa](repeating: CK_ISA_NEON, count: 16)
                seen.withUnsafeMutableBufferPointer { buffer in
                    ck_pool_run(pool.pointer, { ctx, task, _ in
                        usleep(200) // long enough for the other worker to take some
                        ctx!.assumingMemoryBound(to: ck_isa.self)[Int(task)] = ck_active_isa()
                    }, buffer.baseAddress, 16)
                }
                #expect(seen.allSatisfy { $0 == isa }, "\(seen)")
                let other = Thread.detachedResult { ck_active_isa() }
                #expect(other == global)
            }
            ck_clear_thread_isa()
            #expect(ck_active_isa() == global)
            #expect(ck_set_thread_isa(ck_isa(rawValue: 99), ~0) == -1)
        }
    }
}

import Foundation

extension Thread {
    /// Runs `body` on a new thread and waits for its result.
    static func detachedResult<T: Sendable>(_ body: @escaping @Sendable () -> T) -> T {
        nonisolated(unsafe) var result: T?
        let done = DispatchSemaphore(value: 0)
        Thread.detachNewThread {
            result = body()
            done.signal()
        }
        done.wait()
        return result!
    }
}
