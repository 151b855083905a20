import Foundation
import Kernels

/// A block as the loader thread hands it over: its weights, and what releasing it involves.
struct LoadedBlock: @unchecked Sendable {
    // Sendable: the weights are read-only once loaded; the regions lie in a mapping that
    // outlives the block (the checkpoint is held by the provider).
    enum Weights {
        case attention(AttentionBlock)
        case ffn(FFNBlock)
        case head(lmHead: Linear, norm: FloatBuffer)
    }

    var weights: Weights
    /// mmap prefetch: the parts of the mapping the block's views read, unmapped on release.
    var mappedRegions: [MappedRegion]
    /// Drop-behind: file ranges whose cached pages go on release.
    var fileSpans: [FileSpan]
}

/// Loads and releases blocks on the loader thread: the only user of its `WeightLoader`.
final class BlockSource: @unchecked Sendable {
    // Sendable: created by the provider, then used by the loader thread alone (and by the
    // provider's deinit once that thread has exited).
    let loader: WeightLoader
    let reader: TensorReader
    let policy: WeightPolicy
    let plan: BlockPlan

    init(checkpoint: Checkpoint, slice: ShardSlice, preSliced: Bool, plan: BlockPlan, policy: WeightPolicy, reader: TensorReader) throws {
        loader = try WeightLoader(checkpoint: checkpoint, slice: slice, preSliced: preSliced)
        loader.quantization = policy.quantization
        loader.recordsRequirements = false
        loader.packsColumnSlices = false // mmap blocks stay views, to be released; pread blocks are packed as read
        if policy.prefetch == .read { loader.reader = reader }
        self.reader = reader
        self.policy = policy
        self.plan = plan
    }

    private func looksCached(_ index: Int) -> Bool {
        plan.spans[index].allSatisfy { s in MappingAdvice.looksCached(s.file.mapping.bytes.baseAddress! + s.range.lowerBound, s.range.count) }
    }

    /// Loads block `index`. Only its own reads are queued: queueing the next block's as well
    /// (fadvise WILLNEED on a busy queue) cut the disk's throughput from 3.5 to 1.4 GB/s here.
    func load(_ index: Int) throws -> LoadedBlock {
        let block = plan.blocks[index]
        flushDrops(overlapping: index)
        let cached = looksCached(index)
        if !cached, policy.prefetch == .read {
            // Queue the whole block's reads at once: preads tensor by tensor would wait on one
            // readahead window at a time. (mmap needs none: populating a huge-page mapping reads
            // 2 MB folios at full speed, and fadvise would fill the cache with 4 KB pages, which
            // cost ten times more to map on every later pass.)
            for s in plan.spans[index] { reader.willNeed(s.file, range: s.range) }
        }
        let weights: LoadedBlock.Weights
        var matrices: [Linear]
        switch block {
        case .attention(let l):
            let b = try loader.attentionBlock(l)
            weights = .attention(b)
            matrices = b.weights.matrices
        case .ffn(let l):
            let b = try loader.ffnBlock(l)
            weights = .ffn(b)
            matrices = b.weights.matrices
        case .head:
            guard let head = try loader.lmHead() else { throw ModelError.invalidRequest("this node's slice has no lm_head") }
            weights = .head(lmHead: head, norm: try loader.finalNorm())
            matrices = [head]
        }
        var regions: [MappedRegion] = []
        if policy.prefetch == .mmap {
            regions = MappedRegion.coalesced(matrices.compactMap(\.mappedRegion))
            if !cached { regions.forEach(MappingAdvice.populate) }
        }
        matrices = []
        return LoadedBlock(weights: weights, mappedRegions: regions, fileSpans: policy.dropPageCache ? plan.spans[index] : [])
    }

    /// Drop-behind spans not dropped yet: each fadvise(DONTNEED) drains the LRU lists of every
    /// CPU (about 2 ms here), so drops are gathered into large calls.
    private var pendingDrops: [FileSpan] = []
    private var pendingDropBytes = 0
    static let dropBatchBytes = 256 << 20

    /// Gives a dropped block's pages back (its owned buffers go with the last reference).
    func release(_ block: LoadedBlock) {
        block.mappedRegions.forEach(MappingAdvice.release)
        guard !block.fileSpans.isEmpty else { return }
        pendingDrops += block.fileSpans
        pendingDropBytes += block.fileSpans.reduce(0) { $0 + $1.range.count }
        if pendingDropBytes >= Self.dropBatchBytes { flushDrops() }
    }

    func flushDrops() {
        for s in FileSpan.merged(pendingDrops) { reader.dropCache(s.file, range: s.range) }
        pendingDrops = []
        pendingDropBytes = 0
    }

    /// A block must not be read back from pages its previous pass left behind.
    private func flushDrops(overlapping index: Int) {
        let spans = plan.spans[index]
        if pendingDrops.contains(where: { d in spans.contains { $0.file === d.file && $0.range.overlaps(d.range) } }) { flushDrops() }
    }
}

/// What the engine and the loader thread share, all under one lock.
final class StreamWindow: @unchecked Sendable {
    // Sendable: every stored property is read and written with `condition` locked.
    enum Slot {
        case loading
        case ready(LoadedBlock)
        case failed(any Error)
    }

    let condition = NSCondition()
    let blocks: [WeightBlock]
    let window: Int
    /// The block the engine is on: the window is blocks cursor ..< cursor + window (wrapping).
    var cursor = 0
    var slots: [Int: Slot] = [:]
    /// Blocks the engine moved past, for the loader to release before it loads the next one
    /// (unmapping and freeing cost milliseconds that stay off the engine's path).
    var toRelease: [LoadedBlock] = []
    var stopping = false
    var exited = false
    var loadCount = 0
    /// The most blocks loaded or loading at once (the window's bound, checked by tests).
    var peakSlots = 0
    var waitNanoseconds: UInt64 = 0
    var loadNanoseconds: UInt64 = 0

    init(blocks: [WeightBlock], window: Int) {
        self.blocks = blocks
        self.window = min(window, blocks.count)
    }

    func inWindow(_ i: Int) -> Bool { (i - cursor + blocks.count) % blocks.count < window }

    /// The window's blocks without a slot, in the order the engine will want them.
    func unloaded() -> [Int] {
        (0 ..< window).map { (cursor + $0) % blocks.count }.filter { slots[$0] == nil }
    }
}

/// TPI-LLM's sliding-window memory scheduler: at most W blocks (attention or FFN halves of
/// layers, and the output head) of the slice are resident. A loader thread reads the window's
/// blocks ahead of the engine; when the engine moves to block i, blocks behind it are released
/// and the loader brings in block i + W - 1 while i computes. The embedding table is never held:
/// its rows are read through the mapping and unmapped after the step.
///
/// The engine calls this provider from one thread; blocks cross from the loader thread through
/// `StreamWindow` under its lock.
public final class StreamingWeights: WeightProvider, @unchecked Sendable {
    // Sendable: the engine's calls come from one thread at a time; shared state is in `state`.
    public let config: ModelConfig
    public let slice: ShardSlice
    public let plan: BlockPlan
    public let window: Int
    public let policy: WeightPolicy
    private let checkpoint: Checkpoint
    private let source: BlockSource
    private let state: StreamWindow
    private let embedTable: Linear?
    private var embeddingTouched = false

    public init(checkpoint: Checkpoint, slice: ShardSlice, preSliced: Bool = false, plan: BlockPlan, window: Int, policy: WeightPolicy) throws {
        guard window >= 1 else { throw ModelError.invalidRequest("--memory-window must be at least 1, got \(window)") }
        config = checkpoint.config
        self.slice = slice
        self.plan = plan
        self.policy = policy
        self.checkpoint = checkpoint
        let reader = try TensorReader(checkpoint: checkpoint)
        source = try BlockSource(checkpoint: checkpoint, slice: slice, preSliced: preSliced, plan: plan, policy: policy, reader: reader)
        if slice.embeds {
            // A view into the mapping: rows are paged in by lookups and unmapped after the step.
            let viewer = try WeightLoader(checkpoint: checkpoint, slice: slice, preSliced: preSliced)
            viewer.recordsRequirements = false
            let table = try viewer.embedding()
            if let q = policy.quantization, let want = q.target(for: .embedding), want != table.type {
                throw ModelError.invalidRequest(
                    "--quantize-embeddings with streamed weights needs a checkpoint whose embedding table is already \(want.name) "
                        + "(shoal-coordinator quantize --quantize-embeddings): quantizing it at load would hold the whole table")
            }
            embedTable = table
        } else {
            embedTable = nil
        }
        if policy.prefetch == .mmap { checkpoint.files.forEach { $0.mapping.preferHugePages() } }
        if policy.dropPageCache { reader.dropCache(checkpoint) }
        state = StreamWindow(blocks: plan.blocks, window: window)
        self.window = state.window
        guard !plan.blocks.isEmpty else { return }
        let (state, source) = (self.state, self.source)
        let thread = Thread { StreamingWeights.loaderLoop(state: state, source: source) }
        thread.name = "shoal-weight-loader"
        thread.start()
    }

    deinit {
        state.condition.lock()
        state.stopping = true
        state.condition.broadcast()
        while !state.exited, !plan.blocks.isEmpty { state.condition.wait() }
        let remaining = state.slots.values
        let pending = state.toRelease
        state.slots = [:]
        state.toRelease = []
        state.condition.unlock()
        for case .ready(let b) in remaining { source.release(b) }
        for b in pending { source.release(b) }
        source.flushDrops()
        releaseEmbeddingRows()
    }

    /// Loads whatever the window lacks, nearest first, until the provider goes away.
    private static func loaderLoop(state: StreamWindow, source: BlockSource) {
        state.condition.lock()
        while !state.stopping {
            if !state.toRelease.isEmpty {
                let done = state.toRelease
                state.toRelease = []
                state.condition.unlock()
                let t0 = DispatchTime.now().uptimeNanoseconds
                for b in done { source.release(b) }
                let elapsed = DispatchTime.now().uptimeNanoseconds - t0
                state.condition.lock()
                state.loadNanoseconds += elapsed
                continue
            }
            guard let next = state.unloaded().first else {
                state.condition.wait()
                continue
            }
            state.slots[next] = .loading
            state.peakSlots = max(state.peakSlots, state.slots.count)
            state.condition.unlock()
            let t0 = DispatchTime.now().uptimeNanoseconds
            let slot: StreamWindow.Slot
            do { slot = .ready(try source.load(next)) } catch { slot = .failed(error) }
            let elapsed = DispatchTime.now().uptimeNanoseconds - t0
            state.condition.lock()
            state.loadCount += 1
            state.loadNanoseconds += elapsed
            if !state.stopping, state.inWindow(next) {
                state.slots[next] = slot
            } else {
                // The engine jumped past it while it loaded.
                state.slots[next] = nil
                if case .ready(let b) = slot { source.release(b) }
            }
            state.condition.broadcast()
        }
        state.exited = true
        state.condition.broadcast()
        state.condition.unlock()
    }

    /// Moves the window to block `i` and waits for it.
    private func acquire(_ block: WeightBlock) throws -> LoadedBlock.Weights {
        guard let i = plan.index(of: block) else {
            throw ModelError.invalidRequest("\(block) is not in this node's slice (layers \(slice.layers))")
        }
        releaseEmbeddingRows()
        let result: Result<LoadedBlock, any Error>
        state.condition.lock()
        if state.cursor != i {
            state.cursor = i
            for (k, slot) in state.slots where !state.inWindow(k) {
                switch slot {
                case .ready(let b):
                    state.toRelease.append(b)
                    state.slots[k] = nil
                case .failed:
                    state.slots[k] = nil
                case .loading:
                    break  // the loader drops it when done
                }
            }
            state.condition.broadcast()
        }
        var waitedFrom: UInt64?
        while true {
            if case .ready(let b)? = state.slots[i] {
                result = .success(b)
                break
            }
            if case .failed(let e)? = state.slots[i] {
                state.slots[i] = nil
                result = .failure(e)
                break
            }
            if waitedFrom == nil { waitedFrom = DispatchTime.now().uptimeNanoseconds }
            state.condition.wait()
        }
        if let w = waitedFrom { state.waitNanoseconds += DispatchTime.now().uptimeNanoseconds - w }
        state.condition.unlock()
        return try result.get().weights
    }

    private func releaseEmbeddingRows() {
        guard embeddingTouched, let t = embedTable else { return }
        embeddingTouched = false
        if let r = t.mappedRegion { MappingAdvice.release(r) }
    }

    public func attentionBlock(_ layer: Int) throws -> AttentionBlock {
        guard case .attention(let b) = try acquire(.attention(layer)) else { preconditionFailure("block kinds are fixed by the plan") }
        return b
    }

    public func ffnBlock(_ layer: Int) throws -> FFNBlock {
        guard case .ffn(let b) = try acquire(.ffn(layer)) else { preconditionFailure("block kinds are fixed by the plan") }
        return b
    }

    public func embedding() throws -> Linear? {
        embeddingTouched = embedTable != nil
        return embedTable
    }

    public func finalNorm() throws -> FloatBuffer? {
        guard slice.logitRows != nil else { return nil }
        guard case .head(_, let norm) = try acquire(.head) else { preconditionFailure("block kinds are fixed by the plan") }
        return norm
    }

    public func lmHead() throws -> Linear? {
        guard slice.logitRows != nil else { return nil }
        guard case .head(let head, _) = try acquire(.head) else { preconditionFailure("block kinds are fixed by the plan") }
        return head
    }

    public var residentBytes: Int { plan.peakBytes(window: window) }

    /// One line for logs: the window and what it holds and reads.
    public var summary: String {
        "streaming weights: window of \(window) of \(plan.blocks.count) blocks (\(policy.prefetch) prefetch), at most \(mb(residentBytes)) held, "
            + "\(mb(plan.totalReadBytes)) read per step" + (policy.dropPageCache ? ", page cache dropped behind" : "")
    }

    /// Loader and engine counters since the provider started.
    public struct Stats: Sendable {
        public var blocksLoaded: Int
        /// The most blocks held (or being loaded) at once.
        public var maxResidentBlocks: Int
        /// Time the engine waited for blocks (I/O not hidden behind compute).
        public var engineWaitSeconds: Double
        /// Time the loader spent reading (and converting) blocks and releasing them.
        public var loadSeconds: Double
    }

    public var stats: Stats {
        state.condition.lock()
        defer { state.condition.unlock() }
        return Stats(blocksLoaded: state.loadCount, maxResidentBlocks: state.peakSlots, engineWaitSeconds: Double(state.waitNanoseconds) / 1e9,
                     loadSeconds: Double(state.loadNanoseconds) / 1e9)
    }
}
