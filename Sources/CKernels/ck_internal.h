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

/// Prefetches every cache line of [p, p + n).
static inline __attribute__((always_inline)) void ck_prefetch_range(const uint8_t *p, size_t n) {
    for (size_t o = 0; o < n; o += 64) __builtin_prefetch(p + o, 0, 3);
    __builtin_prefetch(p + n - 1, 0, 3);
}

// ---------------------------------------------------------------------------------------------
// Activations quantized for integer dot products against q8_0 / q4_0 weights
// ---------------------------------------------------------------------------------------------

/// x quantized per block of 32 like GGML's q8_0 but with an f32 scale (no fp16 rounding of d):
/// d = amax / 127, q = roundf(x / d). Same rule on every ISA, so integer dots agree exactly.
typedef struct {
    int8_t *q; // [cols]
    float *d;  // [cols / 32]
    void *aux; // per-ISA layout derived from q and d for one weight dtype (xq_aux_prepare)
} ck_xq;

// ---------------------------------------------------------------------------------------------
// Per-ISA kernel table
// ---------------------------------------------------------------------------------------------

typedef struct {
    ck_isa isa;
    unsigned extensions; // CK_EXT_* this table uses

    /// y[r] (+)= dot(W[r, 0:cols], x) for r < nrows; W of a float dtype (f32, f16, bf16).
    void (*matvec_float)(ck_dtype wtype, const uint8_t *w, size_t row_bytes, int nrows, int cols,
                         const float *x, float *y, int accumulate);
    /// Same for q8_0 / q4_0 weights against an activation quantized by quantize_x.
    void (*matvec_quant)(ck_dtype wtype, const uint8_t *w, size_t row_bytes, int nrows, int cols,
                         const ck_xq *xq, float *y, int accumulate);
    /// Fills xq for cols (multiple of 32) values of x.
    void (*quantize_x)(const float *x, int cols, ck_xq *xq);
    /// Optional (NULL when unused): bytes of, and builder for, xq->aux for weights of dtype t.
    size_t (*xq_aux_bytes)(ck_dtype t, int cols);
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

/// Kernel table of the active ISA and extensions.
const ck_kernels *ck_kernels_active(void);

// Portable pieces reused by SIMD paths for tails and rarely-hot work.
void ck_portable_to_f32(ck_dtype dtype, const void *src, float *dst, size_t n);
void ck_portable_quantize_x(const float *x, int cols, ck_xq *xq);

// ---------------------------------------------------------------------------------------------
// Per-thread scratch (grows on demand, freed at thread exit)
// ---------------------------------------------------------------------------------------------

enum { CK_SCRATCH_XQ = 0, CK_SCRATCH_GEMM = 1, CK_SCRATCH_QG = 2, CK_SCRATCH_SLOTS = 3 };
/// 64-byte aligned buffer of at least `bytes` owned by the calling thread; contents undefined.
void *ck_scratch(int slot, size_t bytes);

/// Monotonic time in seconds.
double ck_now(void);

#endif
