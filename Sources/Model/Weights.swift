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
/// against the config, and keeping f32/f16/bf16 tensors in the mapping rather than copying.
///
/// The checkpoint may be the full model, or a slice cache a worker wrote earlier (`preSliced`):
/// then each tensor already has the slice's shape. Every tensor read is recorded, which is how a
/// coordinator knows exactly which bytes to stream to a worker that lacks its slice.
public final class WeightLoader {
    public let checkpoint: Checkpoint
    public let slice: ShardSlice
    public let preSliced: Bool
    public private(set) var requirements: [TensorRequirement] = []
    var config: ModelConfig { checkpoint.config }

    public init(checkpoint: Checkpoint, slice: ShardSlice, preSliced: Bool = false) throws {
        try slice.validate(against: checkpoint.config)
        self.checkpoint = checkpoint
        self.slice = slice
        self.preSliced = preSliced
    }

    /// Rows and columns of a weight matrix, viewed in place when aligned (else copied into an aligned buffer).
    public func matrix(_ name: String, rows: Int, cols: Int, rowRange: Range<Int>? = nil, colRange: Range<Int>? = nil) throws -> Linear {
        let need = TensorRequirement(name: name, fullShape: [rows, cols], rows: rowRange ?? 0 ..< rows, columns: colRange ?? 0 ..< cols)
        requirements.append(need)
        let shape = preSliced ? need.slicedShape : [rows, cols]
        let t = try checkpoint.tensor(preSliced ? need.storageName : name, shape: shape)
        guard let type = t.info.dtype.weightType else {
            throw ModelError.tensorDType(name: name, found: t.info.dtype.rawValue, supported: ["F32", "F16", "BF16"])
        }
        let base = t.bytes.baseAddress!
        var whole: Linear
        if Int(bitPattern: base) % t.info.dtype.size == 0 {
            whole = Linear(type: type, base: base, rowBytes: type.rowBytes(shape[1]), rows: shape[0], cols: shape[1], owner: t.owner)
        } else {
            let copy = AlignedBytes(count: t.bytes.count)
            copy.pointer.copyMemory(from: base, byteCount: t.bytes.count)
            whole = Linear(type: type, base: UnsafeRawPointer(copy.pointer), rowBytes: type.rowBytes(shape[1]), rows: shape[0], cols: shape[1], owner: copy)
        }
        if preSliced { return whole }
        if need.rows != 0 ..< rows { whole = whole.rows(need.rows) }
        if need.columns != 0 ..< cols { whole = whole.columns(need.columns) }
        return whole
    }

    func vector(_ name: String, count: Int, range: Range<Int>? = nil) throws -> FloatBuffer {
        let need = TensorRequirement(name: name, fullShape: [count], rows: 0 ..< 1, columns: range ?? 0 ..< count)
        requirements.append(need)
        if preSliced { return FloatBuffer(try checkpoint.floats(need.storageName, shape: need.slicedShape)) }
        let all = try checkpoint.floats(name, shape: [count])
        return FloatBuffer(Array(all[need.columns]))
    }

    func optionalVector(_ name: String, count: Int, range: Range<Int>? = nil, when present: Bool) throws -> FloatBuffer? {
        present ? try vector(name, count: count, range: range) : nil
    }

    public func embedding() throws -> Linear {
        try matrix(TensorNames.embedding, rows: config.vocabSize, cols: config.hiddenSize)
    }

    public func finalNorm() throws -> FloatBuffer { try vector(TensorNames.finalNorm, count: config.hiddenSize) }

    /// lm_head rows for this slice's vocabulary range (the embedding when tied).
    public func lmHead() throws -> Linear? {
        guard let rows = slice.logitRows else { return nil }
        let name = config.tieWordEmbeddings ? TensorNames.embedding : TensorNames.lmHead
        return try matrix(name, rows: config.vocabSize, cols: config.hiddenSize, rowRange: rows)
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
        let router = try matrix(p + n.router, rows: moe.expertCount, cols: c.hiddenSize)
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
            sharedGate = try matrix(p + sg, rows: 1, cols: c.hiddenSize)
        }
        return .sparse(SparseFFN(router: router, experts: experts, shared: shared, sharedGate: sharedGate,
                                 topK: moe.topK, routing: moe.routing))
    }

    public func layer(_ l: Int) throws -> LayerWeights {
        LayerWeights(inputNorm: try vector(TensorNames.inputNorm(l), count: config.hiddenSize),
                     postAttentionNorm: try vector(TensorNames.postAttentionNorm(l), count: config.hiddenSize),
                     attention: try attention(layer: l), ffn: try ffn(layer: l))
    }
}

/// Owned 64-byte aligned bytes (weights copied out of misaligned mappings, or converted).
public final class AlignedBytes: @unchecked Sendable {
    // Sendable: written once at creation, read-only afterwards.
    public let pointer: UnsafeMutableRawPointer
    public let count: Int
    public init(count: Int) {
        self.count = count
        pointer = UnsafeMutableRawPointer.allocate(byteCount: max(count, 1), alignment: 64)
    }
    deinit { pointer.deallocate() }
}

extension WeightType {
    /// Bytes of `columns` weights of one row (block types: columns is a multiple of 32).
    public func rowBytes(_ columns: Int) -> Int { ck_dtype_row_bytes(ckType, columns) }
}
