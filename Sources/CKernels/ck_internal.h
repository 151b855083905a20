// Private to CKernels: the per-ISA kernel table, scalar format helpers shared by every path, and
// per-thread scratch memory.
#ifndef SHOAL_CK_INTERNAL_H
#define SHOAL_CK_INTERNAL_H

#include "ckernels.h"

#include <stdint.h>
#include <string.h>

#define CK_QK 32 // weights per q8_0 / q4_0 block (GGML's QK8_0 == QK4_0)
#define CK_Q8_BLOCK_BYTES 34
#define CK_Q4_BLOCK_BYTES 18

#if defined(__x86_64__) || defined(_M_X64) || defined(__i386__)
#define CK_X86 1
#endif

// ---------------------------------------------------------------------------------------------
// Scalar format conversions (bit-exact reference behaviour; the SIMD paths must agree with them)
// ---------------------------------------------------------------------------------------------

static inline uint32_t ck_f32_bits(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}

static inline float ck_bits_f32(uint32_t u) {
    float f;
    memcpy(&f, &u, 4);
    return f;
}

/// IEEE binary16 -> binary32, exact (subnormals, inf and NaN payloads included).
static inline float ck_fp16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t exp = (h >> 10) & 0x1Fu;
    uint32_t mant = h & 0x3FFu;
    if (exp == 0x1F) return ck_bits_f32(sign | 0x7F800000u | (mant << 13));
    if (exp == 0) {
        float v = (float)mant * 0x1p-24f; // exact: mant < 2^10
        return sign ? -v : v;
    }
    return ck_bits_f32(sign | ((exp + 112u) << 23) | (mant << 13));
}

/// binary32 -> binary16 with round-to-nearest-even, as F16C's vcvtps2ph with imm 0 does
/// (overflow to inf, gradual underflow, NaN kept quiet with its top payload bits).
static inline uint16_t ck_f32_to_fp16(float f) {
    uint32_t x = ck_f32_bits(f);
    uint16_t sign = (uint16_t)((x >> 16) & 0x8000u);
    uint32_t ax = x & 0x7FFFFFFFu;
    if (ax > 0x7F800000u) return (uint16_t)(sign | 0x7E00u | ((ax >> 13) & 0x3FFu));
    if (ax >= 0x477FF000u) return (uint16_t)(sign | 0x7C00u); // >= 65520 rounds to inf
    if (ax < 0x38800000u) {
        // Below 2^-14: result is a subnormal multiple of 2^-24. Adding 0.5 (whose ulp is 2^-24)
        // makes the FPU round to that grid with ties-to-even; the low bits are the mantissa.
        float v = ck_bits_f32(ax) + 0.5f;
        return (uint16_t)(sign | (ck_f32_bits(v) - 0x3F000000u));
    }
    uint32_t odd = (ax >> 13) & 1u;
    ax += 0xC8000FFFu + odd; // rebias exponent (127 -> 15) and round half to even
    return (uint16_t)(sign | (ax >> 13));
}

static inline float ck_bf16_to_f32(uint16_t b) { return ck_bits_f32((uint32_t)b << 16); }

/// binary32 -> bfloat16 with round-to-nearest-even (PyTorch's rule; NaN stays a quiet NaN).
static inline uint16_t ck_f32_to_bf16(float f) {
    uint32_t x = ck_f32_bits(f);
    if ((x & 0x7FFFFFFFu) > 0x7F800000u) return (uint16_t)((x >> 16) | 0x40u);
    return (uint16_t)((x + 0x7FFFu + ((x >> 16) & 1u)) >> 16);
}

static inline uint16_t ck_load_u16(const void *p) {
    uint16_t v;
    memcpy(&v, p, 2);
    return v;
}

/// roundf (half away from zero) for |v| < 2^31, written with truncation so SIMD paths can
/// reproduce it exactly: v - trunc(v) is exact in binary32.
static inline int ck_round_half_away(float v) {
    int t = (int)v;
    float frac = v - (float)t;
    if (frac >= 0.5f) t += 1;
    else if (frac <= -0.5f) t -= 1;
    return t;
}

/// How the matrix-vector kernels prefetch weights (ck_mv_driver.inc): not at all, the next
/// segment they will read (into L1, used soon), or the weight stream far ahead (non-temporal, so
/// the lines wait in L1 as the first to go instead of pushing out the activations).
enum { CK_PF_NONE = 0, CK_PF_NEXT = 1, CK_PF_AHEAD = 2 };

/// Prefetches for `mode` the lines at base + off, + 64, ... below base + off + n. The addresses
/// are computed as integers: they may run past the end of the weights (prefetches never fault),
/// where pointer arithmetic would not be defined.
static inline __attribute__((always_inline)) void ck_prefetch_mode(int mode, const uint8_t *base, size_t off, size_t n) {
    const uintptr_t p = (uintptr_t)base + off;
    if (mode == CK_PF_NEXT)
        for (size_t o = 0; o < n; o += 64) __builtin_prefetch((const void *)(p + o), 0, 3);
    else if (mode == CK_PF_AHEAD)
        for (size_t o = 0; o < n; o += 64) __builtin_prefetch((const void *)(p + o), 0, 0);
}

// ---------------------------------------------------------------------------------------------
// Activations quantized for integer dot products against q8_0 / q4_0 weights
// ---------------------------------------------------------------------------------------------

/// Activation rows quantized per block of 32 like GGML's q8_0 but with an f32 scale (no fp16
/// rounding of d): d = amax / 127, q = roundf(x / d). Same rule on every ISA, so integer dots agree
/// exactly.
typedef struct {
    int8_t *q; // [ntok, cols]
    float *d;  // [ntok, cols / 32]
    int ntok;
    void *aux; // per-ISA layout derived from q and d for one weight dtype (xq_aux_prepare)
} ck_xq;

// ---------------------------------------------------------------------------------------------
// Per-ISA kernel table
// ---------------------------------------------------------------------------------------------

typedef struct {
    ck_isa isa;
    unsigned extensions; // CK_EXT_* this table uses

    /// Y[t, r] (+)= dot(W[r, 0:cols], X[t, 0:cols]) for r < nrows, t < ntok; W of a float dtype
    /// (f32, f16, bf16); Y is [ntok, ldy]; X comes packed by pack_x. Each row is read from
    /// memory once and its dot with every token is summed exactly as with ntok == 1.
    void (*matvec_float)(ck_dtype wtype, const uint8_t *w, size_t row_bytes, int nrows, int cols,
                         const float *xp, int ntok, float *y, int ldy, int accumulate);
    /// Lanes of one block of the packed activation layout (the vector width), and the packer:
    /// X [ntok, ldx] (cols used) as xp[(c / lanes) * ntok + t][c % lanes], all tokens of a block
    /// side by side, so a pass over several tokens reads one aligned sequential stream (rows of X
    /// read side by side are as many streams, and unaligned vector loads split across cache lines
    /// at twice the cost). Lanes past cols are never read. One token's packed row is its x row
    /// itself, so ck_linear packs only for ntok > 1.
    int x_lanes;
    void (*pack_x)(const float *x, int ldx, int cols, int ntok, float *xp);
    /// Same for q8_0 / q4_0 weights against the xq->ntok activation rows quantized by quantize_x.
    void (*matvec_quant)(ck_dtype wtype, const uint8_t *w, size_t row_bytes, int nrows, int cols,
                         const ck_xq *xq, float *y, int ldy, int accumulate);
    /// Quantizes cols (multiple of 32) values of x: q[0:cols], d[0:cols/32].
    void (*quantize_x)(const float *x, int cols, int8_t *q, float *d);
    /// Optional (NULL when unused): bytes of, and builder for, xq->aux for ntok rows of cols
    /// activations facing weights of dtype t.
    size_t (*xq_aux_bytes)(ck_dtype t, int cols, int ntok);
    void (*xq_aux_prepare)(ck_dtype t, int cols, const ck_xq *xq, void *aux);

    /// GEMM micro-kernel: tile[t * gemm_nr + r] = dot(x[t][0:kc], w[r][0:kc]) for t < gemm_mr,
    /// r < gemm_nr. Rows are given by pointers so edges can repeat a valid row.
    int gemm_mr, gemm_nr;
    void (*gemm_tile)(int kc, const float *const *x, const float *const *w, float *tile);

    /// dst[i] = float(src[i]) for n elements; n a multiple of 32 for block types.
    void (*to_f32)(ck_dtype dtype, const void *src, float *dst, size_t n);

    float (*dot)(const float *x, const float *y, int n);
    void (*axpy)(float a, const float *x, float *y, int n);
    float (*sum_squares)(const float *x, int n);
    /// out[i] = (x[i] * s) * w[i]  (w may be NULL)
    void (*scale_mul)(const float *x, float s, const float *w, float *out, int n);
    void (*softmax)(float *x, int n);
    void (*swiglu)(float *gate, const float *up, int n);

    /// Probes: sum over a buffer (forces every byte to be read); runs of independent FMAs.
    float (*read_sum)(const void *p, size_t bytes);
    /// Executes `iters` rounds of the widest FMA block; returns flops done (2 per lane per FMA).
    double (*fma_burn)(long iters, float *sink);
} ck_kernels;

extern const ck_kernels ck_kernels_portable;
#if CK_X86
extern const ck_kernels ck_kernels_avx2;
extern const ck_kernels ck_kernels_avx2_vnni;
extern const ck_kernels ck_kernels_avx512;
extern const ck_kernels ck_kernels_avx512_vnni;
#endif
#if defined(__aarch64__)
extern const ck_kernels ck_kernels_neon;
#endif

/// Matrix-vector blocking and prefetch (ck_mv_driver.inc, tuned on Zen 5 with 48 KB of L1D):
/// rows stream whole while the activations of all tokens for one row fit CK_MV_X_BUDGET bytes
/// (next to the streaming weights in L1), or while they are at most CK_MV_X_RATIO bytes per weight
/// byte (L2 feeds that much alongside: one-token rows of any length). Otherwise bands of
/// CK_MV_BAND rows are swept in column blocks with CK_MV_BLOCK_BUDGET bytes of activations,
/// prefetching CK_MV_PF_SEGMENTS segments ahead (bands of 32 rows ran 10-20% faster than of 8:
/// fewer block switches per weight byte; 64 gained nothing more). Whole rows prefetch CK_MV_AHEAD
/// bytes ahead.
#ifndef CK_MV_X_BUDGET
#define CK_MV_X_BUDGET (32 * 1024)
#endif
#ifndef CK_MV_X_RATIO
#define CK_MV_X_RATIO 2
#endif
#ifndef CK_MV_BAND
#define CK_MV_BAND 32
#endif
#ifndef CK_MV_BLOCK_BUDGET
#define CK_MV_BLOCK_BUDGET (24 * 1024)
#endif
#ifndef CK_MV_PF_SEGMENTS
#define CK_MV_PF_SEGMENTS 2
#endif
#ifndef CK_MV_AHEAD
#define CK_MV_AHEAD (16 * 1024)
#endif

/// Switch cases CK_MV_CASE(1) ... CK_MV_CASE(CK_MV_NT) (the including ISA file defines CK_MV_NT,
/// 4 or 8, and CK_MV_CASE): one specialization of a matvec kernel per token count, so each keeps
/// its accumulators in registers.
#define CK_MV_CASES_4 CK_MV_CASE(1) CK_MV_CASE(2) CK_MV_CASE(3) CK_MV_CASE(4)
#define CK_MV_CASES_8 CK_MV_CASES_4 CK_MV_CASE(5) CK_MV_CASE(6) CK_MV_CASE(7) CK_MV_CASE(8)
#define CK_MV_CASES_PASTE(n) CK_MV_CASES_##n
#define CK_MV_CASES_N(n) CK_MV_CASES_PASTE(n)
#define CK_MV_CASES CK_MV_CASES_N(CK_MV_NT)

/// Start of the segment `d` places after segment (row r of the band starting at b0, block
/// starting at step s0) in processing order, or NULL past the last row.
static inline const uint8_t *ck_mv_segment_after(const uint8_t *w, size_t row_bytes, size_t step_bytes, int nrows, int band,
                                                    int block, int nblocks, int b0, int r, int s0, int d) {
    const long per_band = (long)band * nblocks; // segments of a whole band
    long j = (long)(s0 / block) * band + (r - b0) + d;
    const long r2 = b0 + j / per_band * band + j % per_band % band, blk = j % per_band / band;
    return r2 < nrows ? w + (size_t)r2 * row_bytes + (size_t)blk * (size_t)block * step_bytes : NULL;
}

/// Kernel table of the active ISA and extensions.
const ck_kernels *ck_kernels_active(void);
/// The calling thread's override of the process-wide table (ck_set_thread_isa), or NULL.
extern _Thread_local const ck_kernels *ck_thread_kernels;

/// Floats of the packed activation layout (see ck_kernels.pack_x).
static inline size_t ck_packed_x_floats(int cols, int ntok, int lanes) {
    return (size_t)((cols + lanes - 1) / lanes) * (size_t)ntok * (size_t)lanes;
}

// Portable pieces reused by SIMD paths for tails and rarely-hot work.
void ck_portable_to_f32(ck_dtype dtype, const void *src, float *dst, size_t n);
void ck_portable_quantize_x(const float *x, int cols, int8_t *q, float *d);

// ---------------------------------------------------------------------------------------------
// Per-thread scratch (grows on demand, freed at thread exit)
// ---------------------------------------------------------------------------------------------

enum { CK_SCRATCH_XQ = 0, CK_SCRATCH_GEMM = 1, CK_SCRATCH_MV = 2, CK_SCRATCH_SLOTS = 3 };
/// 64-byte aligned buffer of at least `bytes` owned by the calling thread; contents undefined.
void *ck_scratch(int slot, size_t bytes);

/// Monotonic time in seconds.
double ck_now(void);

#endif
