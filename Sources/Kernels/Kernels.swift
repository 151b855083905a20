// Swift face of the C kernels. Everything in CKernels stays callable directly (ck_linear_run with a
// ThreadPool's pointer, ck_rmsnorm, ...); this module adds the Swift-side types around it.
@_exported import CKernels

/// Errors from validating arguments before they reach the C kernels (which do not check).
public enum KernelError: Error, CustomStringConvertible, Equatable {
    /// A q8_0/q4_0 row must hold whole blocks of 32 weights.
    case columnsNotBlockAligned(type: WeightType, columns: Int)
    /// A dtype string (safetensors / GGML naming) that no kernel handles.
    case unknownWeightType(String)
    /// SHOAL_ISA-style name that is unknown or not supported by this CPU.
    case unsupportedISA(String)

    public var description: String {
        switch self {
        case let .columnsNotBlockAligned(type, columns):
            return "\(type.name) rows need a multiple of \(type.blockSize) columns, got \(columns)"
        case let .unknownWeightType(name):
            return "unknown weight type '\(name)' (expected one of \(WeightType.allCases.map(\.name).joined(separator: ", ")))"
        case let .unsupportedISA(name):
            return "instruction set '\(name)' is unknown or not supported by this CPU (detected: \(CPUFeatures.detectedISA))"
        }
    }
}
