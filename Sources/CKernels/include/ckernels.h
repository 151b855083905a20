// CKernels: the hot loops of Shoal, in C with SIMD paths picked at run time.
//
// Binaries travel between hosts (AVX2-only boxes, AVX-512 with bf16/VNNI, arm64 boards), so
// nothing here is compiled for one ISA: each kernel has a portable version and per-ISA versions
// built with function-level target attributes, and ck_active_isa() picks one on first use.
//
// Conventions (llama2.c style):
//   - Weights are row-major [rows, cols] like PyTorch's Linear.weight ([out_features, in_features]).
//     A weight view may be a strided column slice: consecutive rows are `row_bytes` apart.
//   - Activations are f32, row-major [tokens, features] with a leading dimension (ld) in elements.
#ifndef SHOAL_CKERNELS_H
#define SHOAL_CKERNELS_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

// ---------------------------------------------------------------------------------------------
// Types and ISA selection
// ---------------------------------------------------------------------------------------------

typedef enum {
    CK_F32 = 0,
    CK_F16 = 1,
    CK_BF16 = 2,
    CK_Q8_0 = 3, // GGML block_q8_0: {fp16 d; int8 qs[32]}           (34 bytes / 32 weights)
    CK_Q4_0 = 4, // GGML block_q4_0: {fp16 d; uint8 qs[16]} nibbles  (18 bytes / 32 weights)
} ck_dtype;

typedef enum {
    CK_ISA_PORTABLE = 0,
    CK_ISA_AVX2 = 1,   // AVX2 + FMA + F16C
    CK_ISA_AVX512 = 2, // AVX-512 F/BW/VL/DQ
    CK_ISA_NEON = 3,
} ck_isa;

/// Best ISA this CPU supports (detected once, cached).
ck_isa ck_detected_isa(void);
/// ISA the kernels use now: the detected one unless overridden by ck_set_isa or the
/// environment variable SHOAL_ISA=portable|avx2|avx512|neon.
ck_isa ck_active_isa(void);
/// Force an ISA (tests compare every path against the portable one). Returns 0 on success,
/// -1 if this CPU cannot run it.
int ck_set_isa(ck_isa isa);
const char *ck_isa_name(ck_isa isa);

/// Optional extensions an ISA path uses when the CPU has them. Results do not depend on them
/// (integer dot products are exact either way); the switch exists so tests cover both code paths.
enum {
    CK_EXT_VNNI = 1u << 0, // int8 dot products: AVX-512 VNNI on avx512, AVX-VNNI on avx2
};
/// Extensions of the active ISA path in use now (detected, minus any disabled).
unsigned ck_active_extensions(void);
/// Uses only the extensions in `mask` that the CPU has; returns the resulting set.
unsigned ck_set_extensions(unsigned mask);
/// Overrides ISA and extensions for the calling thread only, and for the pool tasks it starts,
/// so a test comparing two paths neither sees nor causes a switch in code running beside it.
/// Returns the extensions in use, or -1 if this CPU cannot run `isa`.
int ck_set_thread_isa(ck_isa isa, unsigned ext_mask);
/// Drops the calling thread's override: it follows the process-wide choice again.
void ck_clear_thread_isa(void);

/// Bytes taken by `n` elements of `dtype` (n must be a multiple of 32 for block formats).
size_t ck_dtype_row_bytes(ck_dtype dtype, size_t n);

// ---------------------------------------------------------------------------------------------
// Thread pool: persistent workers, the caller participates as thread 0.
// ---------------------------------------------------------------------------------------------

typedef struct ck_pool ck_pool;
typedef void (*ck_task_fn)(void *ctx, int task, int ntasks);

ck_pool *ck_pool_create(int nthreads);
void ck_pool_destroy(ck_pool *pool);
int ck_pool_threads(const ck_pool *pool);
/// Runs fn(ctx, i, ntasks) for i in [0, ntasks) across the pool; returns when all are done.
/// Runs from different threads are serialized; a run started from inside a task of the same pool
/// executes inline on the calling thread. A NULL pool runs everything on the caller.
void ck_pool_run(ck_pool *pool, ck_task_fn fn, void *ctx, int ntasks);

// ---------------------------------------------------------------------------------------------
// Linear layers: Y[t, r] (+)= sum_c W[r, c] * X[t, c]   for r < rows, t < tokens
// ---------------------------------------------------------------------------------------------

typedef struct {
    ck_dtype wtype;
    const void *w;    // first element of row 0 (of the slice)
    size_t row_bytes; // distance between rows of W in bytes (>= ck_dtype_row_bytes(wtype, cols))
    int rows;
    int cols;
    const float *x; // [tokens, ldx]
    int ldx;
    float *y; // [tokens, ldy]
    int ldy;
    int accumulate; // 0: Y = W X,  1: Y += W X
} ck_linear;

/// Runs several independent linear ops over the same token count in one parallel region
/// (q/k/v or gate/up together), so small decode steps pay one dispatch, not three.
/// Up to ck_linear_matvec_max_tokens() tokens (decode, batched decode of a few sequences) take
/// the matrix-vector path, bound by memory bandwidth: each weight row is read once and dotted
/// with every token while it is in cache. Larger counts (prefill) run a blocked GEMM.
///
/// Numerics: f32 accumulation with a summation order fixed per ISA, so results are bit-identical
/// for any pool size and run. On the matrix-vector path each token's outputs are bit-identical to
/// a call with that token alone. There, with q8_0/q4_0 weights, x is first quantized to int8 per
/// block of 32 (scale amax/127, kept in f32) and block dots are exact integer sums; the result
/// then differs from the dequantized-f32 product by at most
///     sum over blocks b of (sum |w| in b) * amax_b(|x|) / 254     plus f32 rounding.
/// The GEMM dequantizes weights to f32 (no activation rounding).
void ck_linear_run(ck_pool *pool, const ck_linear *ops, int nops, int tokens);

/// Largest token count ck_linear_run computes on the matrix-vector path for weights of `dtype`
/// (8 for f32, whose GEMM reads weights directly; 16 for the others). Ops of one call may take
/// different paths.
int ck_linear_matvec_max_tokens(ck_dtype dtype);

// ---------------------------------------------------------------------------------------------
// Conversions and small vector ops (single-threaded; callers parallelize over rows if needed)
// ---------------------------------------------------------------------------------------------

/// dst[i] = float(src[i]) for n elements of dtype (n multiple of 32 for block formats).
void ck_to_f32(ck_dtype dtype, const void *src, float *dst, size_t n);
/// Encodes n f32 values as dtype (round-to-nearest-even for f16/bf16; GGML's rules for blocks).
void ck_from_f32(ck_dtype dtype, const float *src, void *dst, size_t n);

/// out = x * rsqrt(mean(x^2) + eps) * weight   (weight may be NULL for no scale)
void ck_rmsnorm(const float *x, const float *weight, float eps, float *out, int n);
/// x = softmax(x) in place; returns nothing, stable (max subtracted).
void ck_softmax(float *x, int n);
/// gate = silu(gate) * up
void ck_swiglu(float *gate, const float *up, int n);
/// y += a * x
void ck_axpy(float a, const float *x, float *y, int n);
/// sum of x[i] * y[i]
float ck_dot(const float *x, const float *y, int n);

// ---------------------------------------------------------------------------------------------
// Machine limits for benchmarks
// ---------------------------------------------------------------------------------------------

/// Read-only memory bandwidth in bytes/s: every pool thread sums its part of a buffer of
/// `bytes` (much larger than the caches), best of `repeats` passes.
double ck_probe_read_bandwidth(ck_pool *pool, size_t bytes, int repeats);
/// Peak f32 FMA throughput in FLOP/s across the pool (2 flops per lane per FMA) using
/// independent accumulator chains in registers, measured for about `seconds`.
double ck_probe_fma_peak(ck_pool *pool, double seconds);

#ifdef __cplusplus
}
#endif

#endif
