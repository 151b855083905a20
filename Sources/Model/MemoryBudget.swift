import Foundation
import Kernels

/// One unit of weight streaming: half a decoder layer, or the output head (final norm + lm_head).
public enum WeightBlock: Hashable, Sendable, CustomStringConvertible {
    case attention(Int)
    case ffn(Int)
    case head

    public var description: String {
        switch self {
        case .attention(let l): return "layer \(l) attention"
        case .ffn(let l): return "layer \(l) FFN"
        case .head: return "lm_head"
        }
    }
}

/// A contiguous byte range of one checkpoint file.
public struct FileSpan: Sendable {
    public let file: SafetensorsFile
    public let range: Range<Int>

    /// The tensors' ranges, sorted and merged where they touch or nearly do (norms between
    /// matrices), so readahead and cache dropping take a few calls per block.
    static func merged(_ parts: [FileSpan], gap: Int = 64 << 10) -> [FileSpan] {
        var out: [FileSpan] = []
        for p in parts.sorted(by: { ($0.file.url.path, $0.range.lowerBound) < ($1.file.url.path, $1.range.lowerBound) }) {
            if let last = out.last, last.file === p.file, p.range.lowerBound <= last.range.upperBound + gap {
                out[out.count - 1] = FileSpan(file: p.file, range: last.range.lowerBound ..< max(last.range.upperBound, p.range.upperBound))
            } else {
                out.append(p)
            }
        }
        return out
    }
}

/// A slice's blocks in the order the engine runs them, with the bytes each holds in memory and
/// reads from disk, measured by a loader pass that reads nothing. A window of W blocks is at its
/// fullest on the W consecutive blocks (wrapping from lm_head to layer 0) with the largest sum.
public struct BlockPlan: Sendable {
    public let blocks: [WeightBlock]
    public let heldBytes: [Int]
    public let readBytes: [Int]
    /// Where each block's tensors lie in the files (whole tensors, even when a slice reads part).
    public let spans: [[FileSpan]]
    /// The embedding table's stored bytes (read a row at a time, never held).
    public let embeddingBytes: Int

    public init(checkpoint: Checkpoint, slice: ShardSlice, preSliced: Bool = false, quantization: Quantization?) throws {
        let loader = try WeightLoader(checkpoint: checkpoint, slice: slice, preSliced: preSliced)
        loader.sizingOnly = true
        loader.quantization = quantization
        var blocks: [WeightBlock] = []
        var held: [Int] = [], read: [Int] = []
        var spans: [[FileSpan]] = []
        func measure(_ block: WeightBlock, _ load: () throws -> Void) throws {
            let (h, r) = (loader.heldBytes, loader.readBytes)
            try load()
            blocks.append(block)
            held.append(loader.heldBytes - h)
            read.append(loader.readBytes - r)
            spans.append(FileSpan.merged(try loader.takeRequirements().map { need in
                let name = preSliced ? need.storageName : need.name
                return FileSpan(file: try checkpoint.file(of: name), range: try checkpoint.info(name).range)
            }))
        }
        for l in slice.layers {
            try measure(.attention(l)) { _ = try loader.attentionBlock(l) }
            try measure(.ffn(l)) { _ = try loader.ffnBlock(l) }
        }
        if slice.logitRows != nil {
            try measure(.head) {
                _ = try loader.lmHead()
                _ = try loader.finalNorm()
            }
        }
        if slice.embeds {
            let r = loader.readBytes
            _ = try loader.embedding()
            embeddingBytes = loader.readBytes - r
        } else {
            embeddingBytes = 0
        }
        self.blocks = blocks
        heldBytes = held
        readBytes = read
        self.spans = spans
    }

    /// Index of a block in `blocks` (the engine's order).
    public func index(of block: WeightBlock) -> Int? { blocks.firstIndex(of: block) }

    /// The most bytes `window` consecutive blocks hold (all blocks when the window covers them).
    public func peakBytes(window: Int) -> Int {
        let n = blocks.count
        guard n > 0, window > 0 else { return 0 }
        guard window < n else { return heldBytes.reduce(0, +) }
        var best = 0
        for start in 0 ..< n {
            var sum = 0
            for d in 0 ..< window { sum += heldBytes[(start + d) % n] }
            best = max(best, sum)
        }
        return best
    }

    public var totalHeldBytes: Int { heldBytes.reduce(0, +) }
    /// What one pass over every block (one forward step) reads from disk.
    public var totalReadBytes: Int { readBytes.reduce(0, +) }

    /// The largest block, for error messages.
    var largest: (block: WeightBlock, bytes: Int)? {
        heldBytes.indices.max { heldBytes[$0] < heldBytes[$1] }.map { (blocks[$0], heldBytes[$0]) }
    }

    /// Bytes of a `ContiguousKVCache` of `context` positions for this slice.
    public static func kvCacheBytes(config: ModelConfig, slice: ShardSlice, context: Int) -> Int {
        slice.layers.count * 2 * slice.kvHeads(config).count * context * config.headDim * MemoryLayout<Float>.size
    }
}

/// A memory budget that cannot hold what the run needs, with the numbers that decide it.
public struct MemoryBudgetError: Error, CustomStringConvertible, Equatable {
    public var budget: Int
    public var window: Int
    public var windowBytes: Int
    public var largestBlock: String
    public var largestBlockBytes: Int
    public var kvCacheBytes: Int
    public var context: Int
    public var blockSummary: String

    public var description: String {
        let need = windowBytes + kvCacheBytes
        let what = window == 1
            ? "one block (the largest, \(largestBlock), is \(mb(largestBlockBytes)))"
            : "a window of \(window) blocks (at its fullest \(mb(windowBytes)))"
        return "memory budget of \(mb(budget)) is too small: \(what) plus the KV cache for \(context) tokens (\(mb(kvCacheBytes))) needs \(mb(need)); "
            + "blocks: \(blockSummary). Raise --memory-budget, shorten the context, or quantize (--quantize q8_0|q4_0)."
    }
}

func mb(_ bytes: Int) -> String { String(format: "%.1f MB", Double(bytes) / 1e6) }

/// How a node holds its weights: their precision (quantized at load or as stored) and how many
/// blocks stay resident (all, a window of W, or as many as a byte budget allows), and how a
/// streamed block is brought in.
public struct WeightPolicy: Sendable, Equatable {
    /// Measured on TinyLlama-1.1B (docs/benchmarks/quantization.md): mmap is several times
    /// faster with the file in page cache (no copy; the engine maps cached pages itself) and as
    /// fast or faster from disk, so it is the default.
    public enum Prefetch: String, Sendable, CaseIterable {
        /// pread into owned buffers, freed when the block is dropped.
        case read
        /// Views into the mapping: blocks not in the page cache are read ahead and populated by
        /// the loader, cached ones are left to the engine's page faults; unmapped
        /// (MADV_DONTNEED) when the block is dropped. Converted matrices are still read.
        case mmap
    }

    public var quantization: Quantization?
    /// At most this many blocks resident (nil: all of them, unless `budget` decides).
    public var window: Int?
    /// Bytes for weight blocks plus the KV cache; W is the largest window that fits.
    public var budget: Int?
    public var prefetch: Prefetch
    /// Drop each streamed block's file pages after use, and all of them at start: every step
    /// reads from disk, as on a device whose page cache cannot hold the model.
    public var dropPageCache: Bool

    public init(quantization: Quantization? = nil, window: Int? = nil, budget: Int? = nil, prefetch: Prefetch = .mmap, dropPageCache: Bool = false) {
        self.quantization = quantization
        self.window = window
        self.budget = budget
        self.prefetch = prefetch
        self.dropPageCache = dropPageCache
    }

    public var streams: Bool { window != nil || budget != nil }

    /// The window for `plan`: the one asked for, checked against the budget, or the largest
    /// the budget allows. Throws `MemoryBudgetError` when not even one block fits.
    public func resolveWindow(plan: BlockPlan, config: ModelConfig, slice: ShardSlice, context: Int) throws -> Int {
        let n = max(plan.blocks.count, 1)
        if let window, window < 1 { throw ModelError.invalidRequest("--memory-window must be at least 1, got \(window)") }
        guard let budget else { return window ?? n }
        let kv = BlockPlan.kvCacheBytes(config: config, slice: slice, context: context)
        func error(_ w: Int) -> MemoryBudgetError {
            let largest = plan.largest
            var kinds: [String] = []
            if let a = plan.heldBytes.indices.first(where: { if case .attention = plan.blocks[$0] { return true }; return false }) {
                kinds.append("attention \(mb(plan.heldBytes[a]))")
            }
            if let f = plan.heldBytes.indices.filter({ if case .ffn = plan.blocks[$0] { return true }; return false }).max(by: { plan.heldBytes[$0] < plan.heldBytes[$1] }) {
                kinds.append("FFN \(mb(plan.heldBytes[f]))")
            }
            if let h = plan.index(of: .head) { kinds.append("lm_head \(mb(plan.heldBytes[h]))") }
            return MemoryBudgetError(budget: budget, window: w, windowBytes: plan.peakBytes(window: w), largestBlock: largest.map { "\($0.block)" } ?? "none",
                                     largestBlockBytes: largest?.bytes ?? 0, kvCacheBytes: kv, context: context,
                                     blockSummary: kinds.joined(separator: ", ") + " (\(plan.blocks.count) blocks)")
        }
        if let window {
            guard plan.peakBytes(window: window) + kv <= budget else { throw error(window) }
            return window
        }
        guard plan.peakBytes(window: 1) + kv <= budget else { throw error(1) }
        var w = 1
        while w < n, plan.peakBytes(window: w + 1) + kv <= budget { w += 1 }
        return w
    }

    /// The provider this policy makes for a slice. `context` is the KV capacity a budget must
    /// leave room for.
    public func makeProvider(checkpoint: Checkpoint, slice: ShardSlice, preSliced: Bool = false, context: Int,
                             progress: ((Int, Int) -> Void)? = nil) throws -> any WeightProvider {
        guard streams else {
            if dropPageCache { throw ModelError.invalidRequest("--drop-page-cache only applies to streamed weights (--memory-window or --memory-budget)") }
            let loader = try WeightLoader(checkpoint: checkpoint, slice: slice, preSliced: preSliced)
            loader.quantization = quantization
            return try ResidentWeights(loader: loader, progress: progress)
        }
        let plan = try BlockPlan(checkpoint: checkpoint, slice: slice, preSliced: preSliced, quantization: quantization)
        let w = try resolveWindow(plan: plan, config: checkpoint.config, slice: slice, context: context)
        return try StreamingWeights(checkpoint: checkpoint, slice: slice, preSliced: preSliced, plan: plan, window: w, policy: self)
    }
}

extension AttentionWeights {
    /// q, k, v, o.
    public var matrices: [Linear] { [q, k, v, o] }
}

extension DenseFFN {
    public var matrices: [Linear] { [gate, up, down] }
}

extension FFNWeights {
    /// Every matrix: the dense FFN's, or the router, held experts, shared expert and its gate.
    public var matrices: [Linear] {
        switch self {
        case .dense(let f): return f.matrices
        case .sparse(let m):
            return [m.router] + m.experts.compactMap { $0 }.flatMap(\.matrices) + (m.shared?.matrices ?? []) + (m.sharedGate.map { [$0] } ?? [])
        }
    }
}

/// The part of a checkpoint mapping a view reads: `rows` runs of `run` bytes, `stride` apart
/// (one run when rows are packed; a TP column slice reads part of every row).
struct MappedRegion: @unchecked Sendable {
    // Sendable: an address range of a read-only mapping the provider keeps alive.
    let start: UnsafeRawPointer
    let run: Int
    let stride: Int
    let rows: Int
    /// Everything from the first run's start to the last run's end.
    var span: Int { (rows - 1) * stride + run }
}

extension MappedRegion {
    /// Packed regions that follow each other in the mapping (a block's matrices, stored in a
    /// row) joined into one, so a block takes a few madvise calls, not one per matrix (each
    /// unmap interrupts the compute threads to flush their TLBs).
    static func coalesced(_ regions: [MappedRegion], gap: Int = 64 << 10) -> [MappedRegion] {
        var out: [MappedRegion] = []
        for r in regions.sorted(by: { $0.start < $1.start }) {
            if r.rows == 1, let last = out.last, last.rows == 1, r.start >= last.start, r.start <= last.start + last.run + gap {
                out[out.count - 1] = MappedRegion(start: last.start, run: max(last.run, r.start - last.start + r.run), stride: 0, rows: 1)
            } else {
                out.append(r)
            }
        }
        return out
    }
}

extension Linear {
    /// The region of the checkpoint mapping this view reads, or nil for an owned buffer.
    var mappedRegion: MappedRegion? {
        guard owner is SafetensorsFile, rows > 0 else { return nil }
        let run = type.rowBytes(cols)
        return rowBytes == run ? MappedRegion(start: base, run: rows * run, stride: 0, rows: 1)
            : MappedRegion(start: base, run: run, stride: rowBytes, rows: rows)
    }
}
