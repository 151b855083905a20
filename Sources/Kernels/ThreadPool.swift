import CKernels

/// Persistent kernel threads (ck_pool): `threads - 1` workers plus the calling thread, which works
/// as thread 0 of every run. Workers spin briefly after a run before sleeping, because decode
/// issues a few hundred short runs per token.
///
/// `@unchecked Sendable`: the pool is immutable after init and the C side serializes runs from
/// different threads with a mutex (a run started from inside a task of the same pool executes
/// inline), so sharing one pool between threads or tasks is safe.
public final class ThreadPool: @unchecked Sendable {
    /// The ck_pool for C calls such as ck_linear_run. Valid for the lifetime of this object.
    public let pointer: OpaquePointer
    /// Threads taking part in a run, the caller included.
    public let threads: Int

    public init(threads: Int) {
        let handle = ck_pool_create(Int32(clamping: max(1, threads)))
        // ck_pool_create fails only when allocating its small control block fails.
        guard let handle else { fatalError("ck_pool_create(\(threads)) failed: out of memory") }
        pointer = handle
        self.threads = Int(ck_pool_threads(handle))
    }

    deinit { ck_pool_destroy(pointer) }

    /// Calls `body(i)` for every i in 0..<n, spread over the pool's threads; returns when all calls
    /// have finished.
    ///
    /// The rule: `body` runs on several threads at once, so calls for different indices must only
    /// write disjoint memory (typically slice i of an output buffer) and read shared data that
    /// nobody writes during the run. Calling `parallelFor` again from inside `body` is allowed and
    /// runs the inner loop on the current thread.
    public func parallelFor(_ n: Int, _ body: (Int) -> Void) {
        guard n > 0 else { return }
        withoutActuallyEscaping(body) { body in
            var task = ParallelTask(body: body)
            withUnsafeMutablePointer(to: &task) { context in
                ck_pool_run(pointer, { context, index, _ in
                    context!.assumingMemoryBound(to: ParallelTask.self).pointee.body(Int(index))
                }, context, Int32(clamping: n))
            }
        }
    }
}

/// Carries the Swift closure through the C `void *ctx` of a ck_pool run.
private struct ParallelTask {
    let body: (Int) -> Void
}
