import ClusterPlan
import Kernels
import Transport
import WireProtocol

/// Encodes partial sums for the wire in the plan's sync dtype and decodes them back.
/// f32 travels as is; f16/bf16 halve the bytes; q8_0 (GGML blocks of 32 with an f16 scale) cuts
/// them to 34/128, which needs chunk lengths that are multiples of 32.
public struct SyncCodec: Sendable {
    public let dtype: SyncDType

    public init(_ dtype: SyncDType) { self.dtype = dtype }

    var weightType: WeightType {
        switch dtype {
        case .f32: return .f32
        case .f16: return .f16
        case .bf16: return .bf16
        case .q8_0: return .q8_0
        }
    }

    public var wireDType: Shoal_V1_DType {
        switch dtype {
        case .f32: return .f32
        case .f16: return .f16
        case .bf16: return .bf16
        case .q8_0: return .q80
        }
    }

    /// Elements per encoding unit: chunk boundaries must be multiples of this.
    public var granularity: Int { dtype == .q8_0 ? 32 : 1 }

    public func byteCount(_ elements: Int) -> Int { weightType.rowBytes(elements) }

    public func encode(_ values: UnsafeBufferPointer<Float>) -> Payload {
        if dtype == .f32 { return Payload(copying: UnsafeRawBufferPointer(values)) }
        return Payload(count: byteCount(values.count)) { out in
            ck_from_f32(weightType.ckType, values.baseAddress, out.baseAddress, values.count)
        }
    }

    /// out (+)= decode(payload); throws when the frame's size does not fit `out`.
    public func decode(_ payload: Payload, into out: UnsafeMutableBufferPointer<Float>, accumulate: Bool, scratch: inout [Float]) throws {
        guard payload.count == byteCount(out.count) else {
            throw RuntimeError.protocolViolation("all-reduce part of \(payload.count) bytes, expected \(byteCount(out.count)) for \(out.count) \(dtype.rawValue) values")
        }
        if !accumulate {
            payload.withUnsafeBytes { raw in
                if dtype == .f32 {
                    UnsafeMutableRawBufferPointer(out).copyMemory(from: raw)
                } else {
                    // Received frames may be unaligned; the kernels read block formats bytewise.
                    ck_to_f32(weightType.ckType, raw.baseAddress, out.baseAddress, out.count)
                }
            }
            return
        }
        if scratch.count < out.count { scratch = [Float](repeating: 0, count: out.count) }
        scratch.withUnsafeMutableBufferPointer { tmp in
            payload.withUnsafeBytes { raw in
                if dtype == .f32 {
                    UnsafeMutableRawBufferPointer(start: tmp.baseAddress, count: out.count * 4).copyMemory(from: raw)
                } else {
                    ck_to_f32(weightType.ckType, raw.baseAddress, tmp.baseAddress, out.count)
                }
            }
            ck_axpy(1, tmp.baseAddress, out.baseAddress, Int32(out.count))
        }
    }

    /// values = decode(encode(values)): what a sender does to its own copy so that every rank
    /// holds the same numbers as the ranks that received them.
    public func roundTrip(_ values: UnsafeMutableBufferPointer<Float>) {
        guard dtype != .f32 else { return }
        let bytes = UnsafeMutableRawPointer.allocate(byteCount: byteCount(values.count), alignment: 64)
        defer { bytes.deallocate() }
        ck_from_f32(weightType.ckType, values.baseAddress, bytes, values.count)
        ck_to_f32(weightType.ckType, bytes, values.baseAddress, values.count)
    }
}
