import CKernels

/// What this machine can do at most, for judging kernel and benchmark figures.
public enum MachineLimits {
    /// Streaming read bandwidth in bytes/s with all pool threads, each summing its own contiguous
    /// part of a `bytes` buffer (keep it well above the last-level cache); best of `repeats`.
    public static func readBandwidth(pool: ThreadPool, bytes: Int = 512 << 20, repeats: Int = 5) -> Double {
        ck_probe_read_bandwidth(pool.pointer, max(0, bytes), Int32(clamping: repeats))
    }

    /// Peak f32 FMA throughput in FLOP/s with all pool threads and the active ISA's widest vectors,
    /// measured for about `seconds`.
    public static func fmaPeak(pool: ThreadPool, seconds: Double = 1.0) -> Double {
        ck_probe_fma_peak(pool.pointer, seconds)
    }
}
