import CKernels

/// Storage types of weight matrices the kernels multiply by, named like safetensors dtypes
/// ("F32", "F16", "BF16") and GGML block formats ("Q8_0", "Q4_0").
public enum WeightType: String, Sendable, CaseIterable, CustomStringConvertible {
    case f32 = "F32"
    case f16 = "F16"
    case bf16 = "BF16"
    /// GGML block_q8_0: fp16 scale + 32 int8 (34 bytes per 32 weights).
    case q8_0 = "Q8_0"
    /// GGML block_q4_0: fp16 scale + 16 bytes of nibbles (18 bytes per 32 weights).
    case q4_0 = "Q4_0"

    /// Parses a dtype name as written in safetensors headers or GGML (case-insensitive).
    public init(name: String) throws(KernelError) {
        guard let type = WeightType(rawValue: name.uppercased()) else { throw .unknownWeightType(name) }
        self = type
    }

    public init(_ dtype: ck_dtype) {
        switch dtype {
        case CK_F16: self = .f16
        case CK_BF16: self = .bf16
        case CK_Q8_0: self = .q8_0
        case CK_Q4_0: self = .q4_0
        default: self = .f32
        }
    }

    public var name: String { rawValue }
    public var description: String { rawValue }

    public var ckType: ck_dtype {
        switch self {
        case .f32: return CK_F32
        case .f16: return CK_F16
        case .bf16: return CK_BF16
        case .q8_0: return CK_Q8_0
        case .q4_0: return CK_Q4_0
        }
    }

    /// Weights per block: rows (and column slices) of block types come in multiples of this.
    public var blockSize: Int {
        switch self {
        case .f32, .f16, .bf16: return 1
        case .q8_0, .q4_0: return 32
        }
    }

    public var isQuantized: Bool { blockSize > 1 }

    /// Bytes holding `columns` consecutive weights of one row.
    public func bytesPerRow(_ columns: Int) throws(KernelError) -> Int {
        guard columns >= 0, columns % blockSize == 0 else { throw .columnsNotBlockAligned(type: self, columns: columns) }
        return ck_dtype_row_bytes(ckType, columns)
    }
}
