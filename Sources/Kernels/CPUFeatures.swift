import CKernels

/// Which SIMD path the kernels use. Binaries move between hosts, so the path is picked at run time:
/// the best one this CPU has, or the one named by the SHOAL_ISA environment variable.
public enum CPUFeatures {
    /// Best instruction set this CPU supports: "portable", "avx2", "avx512" or "neon".
    public static var detectedISA: String { String(cString: ck_isa_name(ck_detected_isa())) }

    /// Instruction set the kernels use now.
    public static var activeISA: String { String(cString: ck_isa_name(ck_active_isa())) }

    /// Optional extensions the active path uses, e.g. ["vnni"] for int8 dot products.
    public static var activeExtensions: [String] {
        let mask = ck_active_extensions()
        return mask & UInt32(CK_EXT_VNNI) != 0 ? ["vnni"] : []
    }

    /// Every instruction set this CPU can run, portable first.
    public static var availableISAs: [String] {
        let all: [ck_isa] = [CK_ISA_PORTABLE, CK_ISA_AVX2, CK_ISA_AVX512, CK_ISA_NEON]
        let best = ck_detected_isa()
        return all.filter { isa in
            switch isa {
            case CK_ISA_PORTABLE: return true
            case CK_ISA_AVX2: return best == CK_ISA_AVX2 || best == CK_ISA_AVX512
            default: return isa == best
            }
        }.map { String(cString: ck_isa_name($0)) }
    }

    /// Switches every kernel to `isa` (process-wide), e.g. to compare paths or to reproduce results
    /// of another host.
    public static func use(isa name: String) throws(KernelError) {
        let isas: [ck_isa] = [CK_ISA_PORTABLE, CK_ISA_AVX2, CK_ISA_AVX512, CK_ISA_NEON]
        guard let isa = isas.first(where: { String(cString: ck_isa_name($0)) == name.lowercased() }),
              ck_set_isa(isa) == 0
        else { throw .unsupportedISA(name) }
    }
}
