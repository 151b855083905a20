import CKernels
import Kernels
import Testing
import Tokenizer

/// All kernel tests live under one serialized suite. Paths are switched per thread
/// (ck_set_thread_isa), so tests elsewhere in the process keep the detected kernels.
@Suite(.serialized) struct KernelTests {}

/// Test data from the project's deterministic generator, so failures reproduce.
extension SplitMix64 {
    /// Uniform in [-1, 1).
    mutating func uniform() -> Float { Float(unit() * 2 - 1) }
    mutating func floats(_ n: Int, scale: Float = 1) -> [Float] { (0..<n).map { _ in uniform() * scale } }
}

/// Every ISA path this CPU can run, each with and without its optional extensions (VNNI), as
/// (label, isa) pairs; `body` runs with that path active on this thread (and the pool tasks it
/// starts). The thread follows the process-wide choice again after.
func forEachPath(_ body: (String) throws -> Void) rethrows {
    defer { ck_clear_thread_isa() }
    for isa in [CK_ISA_PORTABLE, CK_ISA_AVX2, CK_ISA_AVX512, CK_ISA_NEON] {
        var seen = Set<Int32>()
        for mask: UInt32 in [~0, 0] {
            let used = ck_set_thread_isa(isa, mask)
            guard used >= 0, seen.insert(used).inserted else { continue }
            try body(CPUFeatures.activeISA + (used != 0 ? "+" + CPUFeatures.activeExtensions.joined(separator: "+") : ""))
        }
    }
}

/// Runs `body` with the portable kernels active on this thread.
func withPortable<T>(_ body: () throws -> T) rethrows -> T {
    defer { ck_clear_thread_isa() }
    _ = ck_set_thread_isa(CK_ISA_PORTABLE, 0)
    return try body()
}

// ---------------------------------------------------------------------------------------------
// Independent Swift decoders of the weight formats (written from the format definitions, not
// from the C code), used as references.
// ---------------------------------------------------------------------------------------------

func halfToFloat(_ bits: UInt16) -> Float { Float(Float16(bitPattern: bits)) }

/// bfloat16 with round-to-nearest-even: keep the top 16 bits, round up when the dropped half is
/// above the midpoint or at it with an odd kept part. NaNs stay NaN.
func floatToBF16(_ x: Float) -> UInt16 {
    if x.isNaN { return UInt16(x.bitPattern >> 16) | 0x40 }
    let bits = x.bitPattern
    var upper = bits >> 16
    let lower = bits & 0xFFFF
    if lower > 0x8000 || (lower == 0x8000 && upper & 1 == 1) { upper += 1 }
    return UInt16(upper)
}

func loadU16(_ bytes: [UInt8], _ offset: Int) -> UInt16 { UInt16(bytes[offset]) | UInt16(bytes[offset + 1]) << 8 }

/// Decodes `count` weights of `type` starting at byte `offset` of `bytes`.
func decode(_ type: WeightType, _ bytes: [UInt8], offset: Int = 0, count: Int) -> [Float] {
    var out = [Float]()
    out.reserveCapacity(count)
    switch type {
    case .f32:
        for i in 0..<count {
            let o = offset + 4 * i
            out.append(Float(bitPattern: UInt32(loadU16(bytes, o)) | UInt32(loadU16(bytes, o + 2)) << 16))
        }
    case .f16:
        for i in 0..<count { out.append(halfToFloat(loadU16(bytes, offset + 2 * i))) }
    case .bf16:
        for i in 0..<count { out.append(Float(bitPattern: UInt32(loadU16(bytes, offset + 2 * i)) << 16)) }
    case .q8_0:
        for b in 0..<count / 32 {
            let o = offset + 34 * b
            let d = halfToFloat(loadU16(bytes, o))
            for i in 0..<32 { out.append(Float(Int8(bitPattern: bytes[o + 2 + i])) * d) }
        }
    case .q4_0:
        for b in 0..<count / 32 {
            let o = offset + 18 * b
            let d = halfToFloat(loadU16(bytes, o))
            var block = [Float](repeating: 0, count: 32)
            for i in 0..<16 {
                block[i] = Float(Int(bytes[o + 2 + i] & 0x0F) - 8) * d
                block[i + 16] = Float(Int(bytes[o + 2 + i] >> 4) - 8) * d
            }
            out += block
        }
    }
    return out
}

/// Encodes with ck_from_f32 (whose bit-exactness is tested separately against GGML's rules).
func encode(_ type: WeightType, _ values: [Float]) -> [UInt8] {
    var bytes = [UInt8](repeating: 0, count: try! type.bytesPerRow(values.count))
    values.withUnsafeBufferPointer { src in
        bytes.withUnsafeMutableBytes { ck_from_f32(type.ckType, src.baseAddress, $0.baseAddress, values.count) }
    }
    return bytes
}
