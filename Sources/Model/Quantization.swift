import Foundation
import Kernels

/// What a weight matrix is for, which decides whether quantization touches it: the layers'
/// projections and an untied lm_head are quantized; the embedding table (and an lm_head tied to
/// it) only when asked, because its rows are looked up one at a time and cost nothing per token;
/// the MoE router and Qwen2-MoE's shared-expert gate never, because a flipped expert choice
/// changes the whole layer's output.
public enum MatrixRole: String, Sendable {
    case linear
    case lmHead
    case embedding
    case router
}

/// Block quantization of a model's matrices (GGML q8_0 / q4_0: one f16 scale per 32 weights
/// along a row), applied when a checkpoint is written (`QuantizedCheckpoint`) or when it is loaded.
public struct Quantization: Sendable, Equatable, CustomStringConvertible {
    public var type: WeightType
    /// Also the embedding table, and an lm_head tied to it.
    public var embeddings: Bool
    /// Leave an untied lm_head as stored (llama.cpp's --leave-output-tensor): the last matrix
    /// decides every token, and q4_0 errors there show most.
    public var keepLMHead: Bool

    public init(_ type: WeightType, embeddings: Bool = false, keepLMHead: Bool = false) throws {
        guard type.isQuantized else {
            throw ModelError.invalidRequest("quantization needs a block format (q8_0 or q4_0), not \(type.name)")
        }
        self.type = type
        self.embeddings = embeddings
        self.keepLMHead = keepLMHead
    }

    /// Parses "q8_0" / "q4_0" (any case).
    public init(name: String, embeddings: Bool = false, keepLMHead: Bool = false) throws {
        guard let t = WeightType(rawValue: name.uppercased()), t.isQuantized else {
            throw ModelError.invalidRequest("unknown quantization '\(name)': expected q8_0 or q4_0")
        }
        try self.init(t, embeddings: embeddings, keepLMHead: keepLMHead)
    }

    /// The block type a matrix of this role is stored in, or nil to keep its precision.
    public func target(for role: MatrixRole) -> WeightType? {
        switch role {
        case .linear: return type
        case .lmHead: return keepLMHead ? nil : type
        case .embedding: return embeddings ? type : nil
        case .router: return nil
        }
    }

    public var description: String {
        type.name.lowercased() + (embeddings ? "+embeddings" : "") + (keepLMHead ? "+keep-lm_head" : "")
    }
}

/// Keys in a safetensors `__metadata__` that describe quantized tensors (docs/QUANTIZED_FORMAT.md).
public enum QuantizedFormat {
    /// `shoal.dtype.<tensor name>` = "Q8_0" | "Q4_0": the tensor is U8 [rows, cols / 32, block bytes].
    public static let dtypePrefix = "shoal.dtype."
    /// `shoal.quantization` = "q8_0" | "q4_0" (+ "+embeddings", "+keep-lm_head"): how the checkpoint was written.
    public static let summaryKey = "shoal.quantization"
    /// `shoal.format_version` = "1".
    public static let versionKey = "shoal.format_version"
    public static let version = "1"

    /// Bytes of one block of 32 weights.
    public static func blockBytes(_ type: WeightType) -> Int { type.rowBytes(type.blockSize) }
}

/// A weight matrix as the checkpoint stores it, in the mapping: float dtypes as they are, block
/// formats as U8 [rows, cols / 32, block bytes] named in the file's metadata.
struct StoredMatrix {
    let name: String
    let type: WeightType
    let file: SafetensorsFile
    /// All of the tensor's bytes in the mapping.
    let bytes: UnsafeRawBufferPointer
    /// Offset of the first byte in the file (for positional reads).
    let fileOffset: Int
    let rows: Int
    let cols: Int
    var rowBytes: Int { type.rowBytes(cols) }
}

extension Checkpoint {
    /// The stored form of matrix `name`, checked against its logical shape [rows, cols].
    func storedMatrix(_ name: String, rows: Int, cols: Int) throws -> StoredMatrix {
        let info = try info(name)
        let file = try file(of: name)
        if let type = try blockFormat(of: name) {
            guard info.dtype == .u8 else {
                throw ModelError.tensorDType(name: name, found: info.dtype.rawValue, supported: ["U8 (raw \(type.name) blocks)"])
            }
            guard cols % type.blockSize == 0 else {
                throw ModelError.badSafetensors(file: file.url.path, reason: "tensor '\(name)': \(type.name) needs a multiple of 32 columns, the model has \(cols)")
            }
            let expected = [rows, cols / type.blockSize, QuantizedFormat.blockBytes(type)]
            guard info.shape == expected else { throw ModelError.tensorShape(name: name, expected: expected, found: info.shape) }
            return StoredMatrix(name: name, type: type, file: file, bytes: file.bytes(of: info), fileOffset: info.range.lowerBound, rows: rows, cols: cols)
        }
        guard let type = info.dtype.weightType else {
            throw ModelError.tensorDType(name: name, found: info.dtype.rawValue, supported: ["F32", "F16", "BF16", "U8 with shoal.dtype metadata"])
        }
        guard info.shape == [rows, cols] else { throw ModelError.tensorShape(name: name, expected: [rows, cols], found: info.shape) }
        return StoredMatrix(name: name, type: type, file: file, bytes: file.bytes(of: info), fileOffset: info.range.lowerBound, rows: rows, cols: cols)
    }

    /// The block format matrix `name` is stored in (its file's `shoal.dtype.<name>`), nil when
    /// it is stored as a plain dtype.
    public func blockFormat(of name: String) throws -> WeightType? {
        let file = try file(of: name)
        guard let declared = file.metadata[QuantizedFormat.dtypePrefix + name] else { return nil }
        guard let type = WeightType(rawValue: declared.uppercased()), type.isQuantized else {
            throw ModelError.badSafetensors(file: file.url.path, reason: "tensor '\(name)': metadata names unknown block format '\(declared)'")
        }
        return type
    }

    /// How the checkpoint's matrices were quantized when it was written, if they were.
    public var storedQuantization: String? { files.lazy.compactMap { $0.metadata[QuantizedFormat.summaryKey] }.first }
}

/// Re-encodes rows of a matrix: `rows` rows of `cols` weights from `source` (rows `sourceStride`
/// bytes apart, any kernel dtype) into `target` (rows packed). Goes through f32 one row at a time.
func convertRows(from source: UnsafeRawPointer, type: WeightType, sourceStride: Int, rows: Int, cols: Int,
                 to target: WeightType, destination: UnsafeMutableRawPointer) {
    let scratch = UnsafeMutablePointer<Float>.allocate(capacity: max(cols, 1))
    defer { scratch.deallocate() }
    let outBytes = target.rowBytes(cols)
    for r in 0 ..< rows {
        ck_to_f32(type.ckType, source + r * sourceStride, scratch, cols)
        ck_from_f32(target.ckType, scratch, destination + r * outBytes, cols)
    }
}
