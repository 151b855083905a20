import Foundation
import Kernels

/// A weight matrix [rows, cols] the kernels read in place: inside the checkpoint's mapping (or an
/// owned buffer), possibly a strided column slice of a larger matrix, as TP row-parallel layers need.
public struct Linear: @unchecked Sendable {
    // Sendable: points at read-only memory kept alive by `owner`.
    public let type: WeightType
    public let base: UnsafeRawPointer
    public let rowBytes: Int
    public let rows: Int
    public let cols: Int
    let owner: AnyObject

    public init(type: WeightType, base: UnsafeRawPointer, rowBytes: Int, rows: Int, cols: Int, owner: AnyObject) {
        self.type = type
        self.base = base
        self.rowBytes = rowBytes
        self.rows = rows
        self.cols = cols
        self.owner = owner
    }

    /// Rows `r` (output features): contiguous, no copy.
    public func rows(_ r: Range<Int>) -> Linear {
        Linear(type: type, base: base + r.lowerBound * rowBytes, rowBytes: rowBytes, rows: r.count, cols: cols, owner: owner)
    }

    /// Columns `c` (input features): a strided view, no copy. Block formats need block-aligned bounds.
    public func columns(_ c: Range<Int>) -> Linear {
        precondition(type.blockSize == 1 || c.lowerBound % type.blockSize == 0, "column slice must start on a block boundary")
        return Linear(type: type, base: base + type.rowBytes(c.lowerBound), rowBytes: rowBytes, rows: rows, cols: c.count, owner: owner)
    }

    /// The view's bytes when its rows are back to back (not a strided column slice).
    public var contiguousBytes: UnsafeRawBufferPointer? {
        rowBytes == type.rowBytes(cols) ? UnsafeRawBufferPointer(start: base, count: rows * rowBytes) : nil
    }

    /// Bytes a full pass over this view reads.
    public var byteCount: Int { rows * type.rowBytes(cols) }

    /// The kernel descriptor for Y[t, 0..<rows] (+)= W X[t, 0..<cols].
    func op(x: UnsafePointer<Float>, ldx: Int, y: UnsafeMutablePointer<Float>, ldy: Int, accumulate: Bool = false) -> ck_linear {
        ck_linear(wtype: type.ckType, w: base, row_bytes: rowBytes, rows: Int32(rows), cols: Int32(cols),
                  x: x, ldx: Int32(ldx), y: y, ldy: Int32(ldy), accumulate: accumulate ? 1 : 0)
    }

    /// Dequantizes row `r` into `out` (embedding lookups).
    func readRow(_ r: Int, into out: UnsafeMutablePointer<Float>) {
        ck_to_f32(type.ckType, base + r * rowBytes, out, cols)
    }
}

public struct AttentionWeights: @unchecked Sendable {
    public var q, k, v, o: Linear
    public var qBias, kBias, vBias: FloatBuffer?
    /// Added once across a TP group (only by the rank whose slice `addsReducedBiases`).
    public var oBias: FloatBuffer?
    public var qNorm, kNorm: FloatBuffer?
}

/// A SwiGLU FFN (or one expert): down(silu(gate x) * up x), possibly a column slice of it.
public struct DenseFFN: @unchecked Sendable {
    public var gate, up, down: Linear
    public var gateBias, upBias: FloatBuffer?
    public var downBias: FloatBuffer?
    public var width: Int { gate.rows }
}

public struct SparseFFN: @unchecked Sendable {
    /// [experts, hidden], replicated on every TP rank so all ranks route alike.
    public var router: Linear
    /// Indexed by expert id; nil for experts this node does not hold.
    public var experts: [DenseFFN?]
    public var shared: DenseFFN?
    /// [1, hidden]: sigmoid(gate · x) scales the shared expert (Qwen2-MoE).
    public var sharedGate: Linear?
    public var topK: Int
    public var routing: RouterNormalization
}

public enum FFNWeights: @unchecked Sendable {
    case dense(DenseFFN)
    case sparse(SparseFFN)
}

public struct LayerWeights: @unchecked Sendable {
    public var inputNorm: FloatBuffer
    public var postAttentionNorm: FloatBuffer
    public var attention: AttentionWeights
    public var ffn: FFNWeights
}

/// One tensor (or the part of it) a slice needs: rows and columns of the full tensor.
public struct TensorRequirement: Sendable, Equatable {
    public var name: String
    public var fullShape: [Int]
    public var rows: Range<Int>
    /// Columns of a matrix (the whole width for vectors, which have one "row").
    public var columns: Range<Int>
    public var slicedShape: [Int] { fullShape.count == 1 ? [columns.count] : [rows.count, columns.count] }
    public var isWhole: Bool { slicedShape == fullShape }
    /// The name the part is stored under in a slice cache: distinct parts of one tensor (a tied
    /// embedding read whole and as lm_head rows) never collide.
    public var storageName: String {
        if isWhole { return name }
        return fullShape.count == 1 ? "\(name)[\(columns.lowerBound):\(columns.upperBound)]"
            : "\(name)[\(rows.lowerBound):\(rows.upperBound),\(columns.lowerBound):\(columns.upperBound)]"
    }
}

/// Reads the weights of one `ShardSlice` out of a checkpoint, checking every tensor's shape
/// against the config, and keeping f32/f16/bf16 tensors in the mapping rather than copying
/// (all but a TP rank's column slices, which are packed: see `packsColumnSlices`).
///
/// The checkpoint may be the full model, or a slice cache a worker wrote earlier (`preSliced`):
/// then each tensor already has the slice's shape. Every tensor read is recorded, which is how a
/// coordinator knows exactly which bytes to stream to a worker that lacks its slice.
///
/// With `quantization`, matrices are re-encoded to q8_0/q4_0 as they are read; with a `reader`,
/// parts are read into owned buffers instead of viewed in the mapping (streamed blocks).
public final class WeightLoader {
    public let checkpoint: Checkpoint
    public let slice: ShardSlice
    public let preSliced: Bool
    public private(set) var requirements: [TensorRequirement] = []
    /// Re-encode matrices at load (nil: as stored).
    public var quantization: Quantization?
    /// Read parts into owned buffers rather than view the mapping.
    public var reader: TensorReader?
    /// Read strided column slices (a TP rank's o_proj/down_proj part) into rows of their own:
    /// decode streamed them at 52-59% of the read bandwidth in place, against 85-89% for
    /// contiguous rows. Off where blocks must stay views of the mapping (mmap streaming).
    public var packsColumnSlices = true
    /// Only account sizes: nothing is read or converted, matrices come back as views of the
    /// stored bytes and vectors as zeros, while `heldBytes` / `readBytes` count a real load.
    public var sizingOnly = false
    /// Off for loaders that run for the life of a process (streaming re-reads every block).
    public var recordsRequirements = true
    /// Bytes the returned weights occupy (matrices in their final type, vectors as f32).
    public private(set) var heldBytes = 0
    /// Bytes of the stored tensors the returned weights come from.
    public private(set) var readBytes = 0
    /// Matrices re-encoded at load, and matrices kept in their stored precision although
    /// quantization was asked for (widths that are not a multiple of 32).
    public private(set) var convertedMatrices = 0
    public private(set) var keptPrecision: [String] = []
    /// The role of every matrix read, by tensor name (which tensors `QuantizedCheckpoint` re-encodes).
    public private(set) var matrixRoles: [String: MatrixRole] = [:]
    var config: ModelConfig { checkpoint.config }
    /// Reads the sources of conversions and packed slices when no `reader` is set.
    private var conversionReader: TensorReader?

    public init(checkpoint: Checkpoint, slice: ShardSlice, preSliced: Bool = false) throws {
        try slice.validate(against: checkpoint.config)
        self.checkpoint = checkpoint
        self.slice = slice
        self.preSliced = preSliced
    }

    /// The requirements recorded since the last call, which are forgotten.
    public func takeRequirements() -> [TensorRequirement] {
        defer { requirements = [] }
        return requirements
    }

    private func record(_ need: TensorRequirement) {
        if recordsRequirements { requirements.append(need) }
    }

    /// Rows and columns of a weight matrix: viewed in place when aligned (else copied into an
    /// aligned buffer), read into an owned buffer with a `reader`, re-encoded with `quantization`.
    public func matrix(_ name: String, rows: Int, cols: Int, rowRange: Range<Int>? = nil, colRange: Range<Int>? = nil,
                       role: MatrixRole = .linear) throws -> Linear {
        let need = TensorRequirement(name: name, fullShape: [rows, cols], rows: rowRange ?? 0 ..< rows, columns: colRange ?? 0 ..< cols)
        record(need)
        matrixRoles[name] = role
        let shape = preSliced ? need.slicedShape : [rows, cols]
        let stored = try checkpoint.storedMatrix(preSliced ? need.storageName : name, rows: shape[0], cols: shape[1])
        // The part this slice needs, in the stored tensor's coordinates.
        let partRows = preSliced ? 0 ..< shape[0] : need.rows
        let partCols = preSliced ? 0 ..< shape[1] : need.columns
        let target = try targetType(stored, role: role, columns: partCols)
        if stored.type.isQuantized, partCols != 0 ..< stored.cols {
            try requireBlockAligned(name, columns: partCols, type: stored.type, why: "is stored as \(stored.type.name)")
        }
        heldBytes += partRows.count * target.rowBytes(partCols.count)
        readBytes += partRows.count * stored.type.rowBytes(partCols.count)
        if target != stored.type, !sizingOnly {
            convertedMatrices += 1
            return try converted(stored, rows: partRows, cols: partCols, to: target)
        }
        if !sizingOnly, reader == nil, packsColumnSlices, partCols != 0 ..< stored.cols {
            return try packed(stored, rows: partRows, cols: partCols)
        }
        if let reader, !sizingOnly {
            let runBytes = stored.type.rowBytes(partCols.count)
            let copy = AlignedBytes(count: partRows.count * runBytes)
            try reader.readRows(stored.file, offset: stored.fileOffset + partRows.lowerBound * stored.rowBytes + stored.type.rowBytes(partCols.lowerBound),
                                stride: stored.rowBytes, rows: partRows.count, runBytes: runBytes, into: copy.pointer)
            return Linear(type: stored.type, base: UnsafeRawPointer(copy.pointer), rowBytes: runBytes, rows: partRows.count, cols: partCols.count, owner: copy)
        }
        let base = stored.bytes.baseAddress!
        var whole: Linear
        if stored.type.isQuantized || sizingOnly || Int(bitPattern: base) % stored.type.rowBytes(1) == 0 {
            whole = Linear(type: stored.type, base: base, rowBytes: stored.rowBytes, rows: shape[0], cols: shape[1], owner: stored.file)
        } else {
            let copy = AlignedBytes(count: stored.bytes.count)
            copy.pointer.copyMemory(from: base, byteCount: stored.bytes.count)
            whole = Linear(type: stored.type, base: UnsafeRawPointer(copy.pointer), rowBytes: stored.rowBytes, rows: shape[0], cols: shape[1], owner: copy)
        }
        if partRows != 0 ..< shape[0] { whole = whole.rows(partRows) }
        if partCols != 0 ..< shape[1] { whole = whole.columns(partCols) }
        return whole
    }

    /// The type a matrix ends up in: its stored type, or the quantization's for its role.
    private func targetType(_ stored: StoredMatrix, role: MatrixRole, columns: Range<Int>) throws -> WeightType {
        guard let q = quantization, let want = q.target(for: role), want != stored.type else { return stored.type }
        if stored.type.isQuantized {
            throw ModelError.invalidRequest("tensor '\(stored.name)' is already stored as \(stored.type.name); re-quantizing it to \(want.name) is refused (load it without --quantize, or quantize the original checkpoint)")
        }
        if columns == 0 ..< stored.cols, stored.cols % want.blockSize != 0 {
            // A width that is not whole blocks stays as it is (llama.cpp does the same).
            if !keptPrecision.contains(stored.name) { keptPrecision.append(stored.name) }
            return stored.type
        }
        try requireBlockAligned(stored.name, columns: columns, type: want, why: "is quantized to \(want.name)")
        return want
    }

    /// Column slices of block formats must start and end on block boundaries.
    private func requireBlockAligned(_ name: String, columns: Range<Int>, type: WeightType, why: String) throws {
        let b = type.blockSize
        guard columns.lowerBound % b != 0 || columns.count % b != 0 else { return }
        throw ModelError.invalidRequest(
            "tensor '\(name)' \(why) (blocks of \(b) columns), but this node's slice needs columns \(columns.lowerBound)..<\(columns.upperBound), "
                + "which do not start and end on block boundaries; use a tensor-parallel split whose heads (head_dim \(config.headDim)) and FFN columns are multiples of \(b), or no quantization")
    }

    /// Reads a column slice into rows of its own, with whole-row sequential reads rather than
    /// through the mapping, so the RSS holds the copy only.
    private func packed(_ stored: StoredMatrix, rows: Range<Int>, cols: Range<Int>) throws -> Linear {
        let runBytes = stored.type.rowBytes(cols.count)
        let copy = AlignedBytes(count: rows.count * runBytes)
        try sourceReader().readRows(stored.file, offset: stored.fileOffset + rows.lowerBound * stored.rowBytes + stored.type.rowBytes(cols.lowerBound),
                                    stride: stored.rowBytes, rows: rows.count, runBytes: runBytes, into: copy.pointer)
        return Linear(type: stored.type, base: UnsafeRawPointer(copy.pointer), rowBytes: runBytes, rows: rows.count, cols: cols.count, owner: copy)
    }

    /// The `reader`, else one of the loader's own (so converting never maps pages).
    private func sourceReader() throws -> TensorReader {
        if let r = reader ?? conversionReader { return r }
        let r = try TensorReader(checkpoint: checkpoint)
        conversionReader = r
        return r
    }

    /// Reads the part and re-encodes it, a few MB of source rows at a time.
    private func converted(_ stored: StoredMatrix, rows: Range<Int>, cols: Range<Int>, to target: WeightType) throws -> Linear {
        let out = AlignedBytes(count: rows.count * target.rowBytes(cols.count))
        let source = try sourceReader()
        let runBytes = stored.type.rowBytes(cols.count)
        let chunkRows = max(1, (8 << 20) / max(runBytes, 1))
        let scratch = AlignedBytes(count: min(chunkRows, rows.count) * runBytes)
        var r = 0
        while r < rows.count {
            let n = min(chunkRows, rows.count - r)
            try source.readRows(stored.file, offset: stored.fileOffset + (rows.lowerBound + r) * stored.rowBytes + stored.type.rowBytes(cols.lowerBound),
                                stride: stored.rowBytes, rows: n, runBytes: runBytes, into: scratch.pointer)
            convertRows(from: scratch.pointer, type: stored.type, sourceStride: runBytes, rows: n, cols: cols.count,
                        to: target, destination: out.pointer + r * target.rowBytes(cols.count))
            r += n
        }
        return Linear(type: target, base: UnsafeRawPointer(out.pointer), rowBytes: target.rowBytes(cols.count), rows: rows.count, cols: cols.count, owner: out)
    }

    func vector(_ name: String, count: Int, range: Range<Int>? = nil) throws -> FloatBuffer {
        let need = TensorRequirement(name: name, fullShape: [count], rows: 0 ..< 1, columns: range ?? 0 ..< count)
        record(need)
        heldBytes += need.columns.count * 4
        let stored = try checkpoint.info(preSliced ? need.storageName : name)
        readBytes += need.columns.count * stored.dtype.size
        if sizingOnly {
            _ = try checkpoint.tensor(preSliced ? need.storageName : name, shape: preSliced ? need.slicedShape : [count])
            return FloatBuffer(count: need.columns.count)
        }
        if let reader { return try readVector(preSliced ? need.storageName : name, columns: preSliced ? 0 ..< need.columns.count : need.columns, reader: reader) }
        if preSliced { return FloatBuffer(try checkpoint.floats(need.storageName, shape: need.slicedShape)) }
        let all = try checkpoint.floats(name, shape: [count])
        return FloatBuffer(Array(all[need.columns]))
    }

    /// A vector's elements `columns` through the reader (no page of the mapping touched).
    private func readVector(_ name: String, columns: Range<Int>, reader: TensorReader) throws -> FloatBuffer {
        let info = try checkpoint.info(name)
        guard let type = info.dtype.weightType, info.shape.count == 1, columns.upperBound <= info.shape[0] else {
            throw ModelError.tensorDType(name: name, found: "\(info.dtype.rawValue) \(info.shape)", supported: ["F32", "F16", "BF16 vectors"])
        }
        let raw = AlignedBytes(count: columns.count * info.dtype.size)
        try reader.read(try checkpoint.file(of: name), offset: info.range.lowerBound + columns.lowerBound * info.dtype.size,
                        count: raw.count, into: raw.pointer)
        let out = FloatBuffer(count: columns.count, zeroed: false)
        ck_to_f32(type.ckType, raw.pointer, out.pointer, columns.count)
        return out
    }

    func optionalVector(_ name: String, count: Int, range: Range<Int>? = nil, when present: Bool) throws -> FloatBuffer? {
        present ? try vector(name, count: count, range: range) : nil
    }

    public func embedding() throws -> Linear {
        try matrix(TensorNames.embedding, rows: config.vocabSize, cols: config.hiddenSize, role: .embedding)
    }

    public func finalNorm() throws -> FloatBuffer { try vector(TensorNames.finalNorm, count: config.hiddenSize) }

    /// lm_head rows for this slice's vocabulary range (the embedding when tied).
    public func lmHead() throws -> Linear? {
        guard let rows = slice.logitRows else { return nil }
        let name = config.tieWordEmbeddings ? TensorNames.embedding : TensorNames.lmHead
        return try matrix(name, rows: config.vocabSize, cols: config.hiddenSize, rowRange: rows,
                          role: config.tieWordEmbeddings ? .embedding : .lmHead)
    }

    public func attention(layer l: Int) throws -> AttentionWeights {
        let c = config
        let hd = c.headDim
        let qRows = slice.queryHeads.lowerBound * hd ..< slice.queryHeads.upperBound * hd
        let kv = slice.kvHeads(c)
        let kvRows = kv.lowerBound * hd ..< kv.upperBound * hd
        func proj(_ p: String, _ rows: Int, _ cols: Int, _ rowRange: Range<Int>?, _ colRange: Range<Int>?) throws -> Linear {
            try matrix(TensorNames.attention(l, "\(p).weight"), rows: rows, cols: cols, rowRange: rowRange, colRange: colRange)
        }
        let q = try proj("q_proj", c.qDim, c.hiddenSize, qRows, nil)
        let k = try proj("k_proj", c.kvDim, c.hiddenSize, kvRows, nil)
        let v = try proj("v_proj", c.kvDim, c.hiddenSize, kvRows, nil)
        let o = try proj("o_proj", c.hiddenSize, c.qDim, nil, qRows)
        func bias(_ p: String, _ n: Int, _ r: Range<Int>?, _ on: Bool) throws -> FloatBuffer? {
            try optionalVector(TensorNames.attention(l, "\(p).bias"), count: n, range: r, when: on)
        }
        return AttentionWeights(
            q: q, k: k, v: v, o: o,
            qBias: try bias("q_proj", c.qDim, qRows, c.qkvBias),
            kBias: try bias("k_proj", c.kvDim, kvRows, c.qkvBias),
            vBias: try bias("v_proj", c.kvDim, kvRows, c.qkvBias),
            oBias: try bias("o_proj", c.hiddenSize, nil, c.oBias && slice.addsReducedBiases),
            qNorm: try optionalVector(TensorNames.attention(l, "q_norm.weight"), count: hd, when: c.qkNorm),
            kNorm: try optionalVector(TensorNames.attention(l, "k_norm.weight"), count: hd, when: c.qkNorm))
    }

    /// One SwiGLU block under `prefix` (gate/up/down names given), sliced to `columns`.
    func swiglu(prefix: String, gate: String, up: String, down: String, width: Int, columns: Range<Int>, biases: Bool) throws -> DenseFFN {
        let h = config.hiddenSize
        let g = try matrix(prefix + gate + ".weight", rows: width, cols: h, rowRange: columns)
        let u = try matrix(prefix + up + ".weight", rows: width, cols: h, rowRange: columns)
        let d = try matrix(prefix + down + ".weight", rows: h, cols: width, colRange: columns)
        return DenseFFN(
            gate: g, up: u, down: d,
            gateBias: try optionalVector(prefix + gate + ".bias", count: width, range: columns, when: biases),
            upBias: try optionalVector(prefix + up + ".bias", count: width, range: columns, when: biases),
            downBias: try optionalVector(prefix + down + ".bias", count: h, when: biases && slice.addsReducedBiases))
    }

    public func ffn(layer l: Int) throws -> FFNWeights {
        let c = config
        guard c.isSparse(layer: l), let moe = c.moe, let traits = c.architecture.traits.moe else {
            return .dense(try swiglu(prefix: "model.layers.\(l).mlp.", gate: "gate_proj", up: "up_proj", down: "down_proj",
                                     width: c.intermediateSize, columns: slice.ffnColumns, biases: c.mlpBias))
        }
        let n = traits.naming
        let p = TensorNames.layer(l)
        let router = try matrix(p + n.router, rows: moe.expertCount, cols: c.hiddenSize, role: .router)
        var experts: [DenseFFN?] = []
        for e in 0 ..< moe.expertCount {
            experts.append(try swiglu(prefix: p + n.expertPrefix + "\(e).", gate: n.gate, up: n.up, down: n.down,
                                      width: moe.expertIntermediateSize, columns: slice.expertColumns, biases: false))
        }
        var shared: DenseFFN?
        var sharedGate: Linear?
        if let sp = n.sharedExpertPrefix, let sg = n.sharedExpertGate, let width = moe.sharedExpertIntermediateSize {
            shared = try swiglu(prefix: p + sp, gate: "gate_proj", up: "up_proj", down: "down_proj",
                                width: width, columns: slice.sharedExpertColumns, biases: false)
            sharedGate = try matrix(p + sg, rows: 1, cols: c.hiddenSize, role: .router)
        }
        return .sparse(SparseFFN(router: router, experts: experts, shared: shared, sharedGate: sharedGate,
                                 topK: moe.topK, routing: moe.routing))
    }

    /// The first half of layer `l`: its input norm and attention.
    public func attentionBlock(_ l: Int) throws -> AttentionBlock {
        AttentionBlock(norm: try vector(TensorNames.inputNorm(l), count: config.hiddenSize), weights: try attention(layer: l))
    }

    /// The second half: its post-attention norm and FFN.
    public func ffnBlock(_ l: Int) throws -> FFNBlock {
        FFNBlock(norm: try vector(TensorNames.postAttentionNorm(l), count: config.hiddenSize), weights: try ffn(layer: l))
    }

    public func layer(_ l: Int) throws -> LayerWeights {
        LayerWeights(inputNorm: try vector(TensorNames.inputNorm(l), count: config.hiddenSize),
                     postAttentionNorm: try vector(TensorNames.postAttentionNorm(l), count: config.hiddenSize),
                     attention: try attention(layer: l), ffn: try ffn(layer: l))
    }
}

/// Owned 64-byte aligned bytes (weights copied out of misaligned mappings, converted, or read
/// for a streamed block).
///
/// Large buffers are anonymous mappings of their own: freeing one returns its pages to the
/// system at once, whereas malloc keeps freed blocks of up to 32 MB for reuse and a streamed
/// model's RSS would grow to everything it ever read. They ask for transparent huge pages,
/// which make the first touch of a freshly read block cheaper.
public final class AlignedBytes: @unchecked Sendable {
    // Sendable: written once at creation, read-only afterwards.
    public let pointer: UnsafeMutableRawPointer
    public let count: Int
    private let mapped: Bool
    static let mappingThreshold = 1 << 20

    public init(count: Int) {
        self.count = count
        if count >= Self.mappingThreshold, let p = mmap(nil, count, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0), p != MAP_FAILED {
            _ = madvise(p, count, MADV_HUGEPAGE)
            pointer = p
            mapped = true
        } else {
            pointer = UnsafeMutableRawPointer.allocate(byteCount: max(count, 1), alignment: 64)
            mapped = false
        }
    }

    deinit {
        if mapped { munmap(pointer, count) } else { pointer.deallocate() }
    }
}

extension WeightType {
    /// Bytes of `columns` weights of one row (block types: columns is a multiple of 32).
    public func rowBytes(_ columns: Int) -> Int { ck_dtype_row_bytes(ckType, columns) }
}
