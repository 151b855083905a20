import Foundation
import Kernels
import Model

/// Single-node speed next to the machine's own limits, measured in the same run: decode against
/// the memory-bandwidth bound, prefill against the FMA-throughput bound.
public struct NodeBenchmark {
    public struct Row: Codable, Sendable {
        public var model: String
        public var weight_dtype: String
        public var threads: Int
        public var read_bandwidth_gbs: Double
        public var fma_peak_gflops: Double
        public var weight_bytes_per_token: Int
        public var decode_tokens_per_s: Double
        public var decode_bound_tokens_per_s: Double
        public var decode_fraction_of_bound: Double
        public var prefill_tokens: Int
        public var prefill_tokens_per_s: Double
        public var prefill_bound_tokens_per_s: Double
        public var prefill_fraction_of_bound: Double
        /// How the weights were held: their format after loading, the streaming window (0:
        /// all resident), the bytes held at most, and the process's peak RSS over the run.
        public var weight_format: String
        public var memory_window: Int
        public var resident_weight_mb: Double
        public var peak_rss_mb: Double
        /// Streaming only: "warm" (file in page cache) or "cold" (pages dropped before and after
        /// every block), bytes read per step, the loader's and the engine's waiting time.
        public var page_cache: String?
        public var bytes_read_per_token: Int?
        public var engine_wait_ms_per_token: Double?
        public var loader_ms_per_token: Double?
        /// Cold only: the disk's sequential read bandwidth and the token rate it allows.
        public var disk_read_gbs: Double?
        public var disk_bound_tokens_per_s: Double?
        public var decode_fraction_of_disk_bound: Double?
    }

    public var directory: URL
    public var threads: [Int]
    public var promptLength: Int
    public var decodeTokens: Int
    public var repeats: Int
    /// Quantization and streaming of the weights.
    public var weights: WeightPolicy

    public init(directory: URL, threads: [Int], promptLength: Int, decodeTokens: Int, repeats: Int, weights: WeightPolicy = WeightPolicy()) {
        self.weights = weights
        self.directory = directory
        self.threads = threads
        self.promptLength = promptLength
        self.decodeTokens = decodeTokens
        self.repeats = repeats
    }

    /// Bytes of every matrix a decode step reads (all layers and lm_head; one embedding row is noise).
    public static func bytesPerToken(_ t: Transformer) throws -> (bytes: Int, params: Int) {
        var bytes = 0
        var params = 0
        func add(_ l: Linear) {
            bytes += l.byteCount
            params += l.rows * l.cols
        }
        for layer in t.slice.layers {
            let a = try t.weights.attentionBlock(layer).weights
            [a.q, a.k, a.v, a.o].forEach(add)
            switch try t.weights.ffnBlock(layer).weights {
            case .dense(let f): [f.gate, f.up, f.down].forEach(add)
            case .sparse(let m):
                // A token reads the router and its top-k experts (and the shared expert).
                add(m.router)
                if let e = m.experts.compactMap({ $0 }).first {
                    for _ in 0 ..< m.topK { [e.gate, e.up, e.down].forEach(add) }
                }
                if let s = m.shared { [s.gate, s.up, s.down].forEach(add) }
            }
        }
        if let head = try t.weights.lmHead() { add(head) }
        return (bytes, params)
    }

    public func run(log: (String) -> Void) throws -> [Row] {
        var rows: [Row] = []
        for n in threads {
            // Machine limits first, with a pool of their own: the probe's 1 GB buffer must be
            // gone before the peak-RSS measurement starts.
            let (bandwidth, peak) = {
                let pool = ThreadPool(threads: n)
                return (MachineLimits.readBandwidth(pool: pool, bytes: 1 << 30, repeats: 5), MachineLimits.fmaPeak(pool: pool, seconds: 0.5))
            }()
            var diskBandwidth: Double?
            if weights.dropPageCache { diskBandwidth = try DiskProbe.readBandwidth(checkpoint: try Checkpoint(directory: directory)) }
            ProcessMemory.resetPeak()
            let model = try LoadedModel(directory: directory, threads: n, weights: weights, context: promptLength + decodeTokens + 1)
            model.prefault()
            let (bytes, params) = try Self.bytesPerToken(model.transformer)
            let stored = model.checkpoint.files.first?.tensors.values.first { $0.shape.count == 2 }?.dtype.rawValue ?? "?"
            let dtype = weights.quantization?.description.uppercased() ?? model.checkpoint.storedQuantization?.uppercased() ?? stored
            let streaming = model.transformer.weights as? StreamingWeights
            let waitBefore = streaming?.stats.engineWaitSeconds ?? 0
            let loadBefore = streaming?.stats.loadSeconds ?? 0
            let backend = model.makeBackend()
            var bestDecode = 0.0
            var bestPrefill = 0.0
            var steps = 0
            var rng = SeededGenerator(seed: 7)
            for _ in 0 ..< repeats {
                let prompt = (0 ..< promptLength).map { _ in Int(rng.next() % UInt64(model.config.vocabSize)) }
                // Prefill: one forward pass over the prompt.
                let seq = try backend.openSequence(capacity: promptLength + decodeTokens + 1)
                let t0 = DispatchTime.now().uptimeNanoseconds
                _ = try backend.step([StepInput(sequence: seq, tokens: prompt)])
                let t1 = DispatchTime.now().uptimeNanoseconds
                bestPrefill = max(bestPrefill, Double(promptLength) / (Double(t1 - t0) / 1e9))
                // Decode: one token at a time after the prompt.
                var token = prompt.last!
                let d0 = DispatchTime.now().uptimeNanoseconds
                for _ in 0 ..< decodeTokens {
                    let logits = try backend.step([StepInput(sequence: seq, tokens: [token])])[0]
                    token = logits.withUnsafeBufferPointer { Sampler.argmax($0) }
                }
                steps += 1 + decodeTokens
                let d1 = DispatchTime.now().uptimeNanoseconds
                bestDecode = max(bestDecode, Double(decodeTokens) / (Double(d1 - d0) / 1e9))
                backend.closeSequence(seq)
            }
            let decodeBound = bandwidth / Double(bytes)
            let prefillBound = peak / (2 * Double(params))
            var row = Row(model: directory.lastPathComponent, weight_dtype: dtype, threads: n,
                          read_bandwidth_gbs: bandwidth / 1e9, fma_peak_gflops: peak / 1e9, weight_bytes_per_token: bytes,
                          decode_tokens_per_s: bestDecode, decode_bound_tokens_per_s: decodeBound,
                          decode_fraction_of_bound: bestDecode / decodeBound, prefill_tokens: promptLength,
                          prefill_tokens_per_s: bestPrefill, prefill_bound_tokens_per_s: prefillBound,
                          prefill_fraction_of_bound: bestPrefill / prefillBound,
                          weight_format: dtype, memory_window: streaming?.window ?? 0,
                          resident_weight_mb: Double(model.transformer.weights.residentBytes) / 1e6,
                          peak_rss_mb: Double(ProcessMemory.peakBytes) / 1e6)
            var extra = ""
            if let streaming {
                row.page_cache = weights.dropPageCache ? "cold" : "warm"
                row.bytes_read_per_token = streaming.plan.totalReadBytes
                row.engine_wait_ms_per_token = 1000 * (streaming.stats.engineWaitSeconds - waitBefore) / Double(max(steps, 1))
                row.loader_ms_per_token = 1000 * (streaming.stats.loadSeconds - loadBefore) / Double(max(steps, 1))
                extra = String(format: " | window %d (%@ cache): %.1f MB read/token, loader busy %.1f ms/token, engine waits %.1f ms/token",
                               streaming.window, row.page_cache!, Double(streaming.plan.totalReadBytes) / 1e6, row.loader_ms_per_token!,
                               row.engine_wait_ms_per_token!)
                if let disk = diskBandwidth {
                    let bound = disk / Double(streaming.plan.totalReadBytes)
                    row.disk_read_gbs = disk / 1e9
                    row.disk_bound_tokens_per_s = bound
                    row.decode_fraction_of_disk_bound = bestDecode / bound
                    extra += String(format: "; disk %.2f GB/s bounds decode at %.2f tok/s (%.0f%%)", disk / 1e9, bound, 100 * bestDecode / bound)
                }
            }
            log(String(format: "%@ %@ threads=%d  bandwidth %.1f GB/s  peak %.0f GFLOP/s | decode %.2f tok/s = %.0f%% of %.2f | prefill(%d) %.1f tok/s = %.0f%% of %.1f | weights %.0f MB, peak RSS %.0f MB",
                       row.model, dtype, n, row.read_bandwidth_gbs, row.fma_peak_gflops, bestDecode, 100 * row.decode_fraction_of_bound,
                       decodeBound, promptLength, bestPrefill, 100 * row.prefill_fraction_of_bound, prefillBound,
                       row.resident_weight_mb, row.peak_rss_mb) + extra)
            rows.append(row)
        }
        return rows
    }
}
