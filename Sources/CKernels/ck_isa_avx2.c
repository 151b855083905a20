// AVX2 + FMA + F16C path: 8-lane float kernels from ck_simd_body.inc, 256-bit int8 block dots
// (AVX-VNNI vpdpbusd when present) from ck_x86_q256.inc.
#include "ck_internal.h"

#if CK_X86
#include <immintrin.h>

#define CK_TGT __attribute__((target("avx2,fma,f16c")))
#define CK_INLINE static inline __attribute__((always_inline))

typedef __m256 CK_V;
#define CK_VW 8
#define CK_GEMM_MR 3
#define CK_GEMM_NR 4
#define CK_MV_NT 4 // two accumulators per token in 16 registers

/// Lanes [0, n) set: masks for vmaskmov, which never touches memory of masked-off lanes.
CK_TGT CK_INLINE __m256i ck_mask(int n) {
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}
CK_TGT CK_INLINE CK_V ck_v_zero(void) { return _mm256_setzero_ps(); }
CK_TGT CK_INLINE CK_V ck_v_set1(float f) { return _mm256_set1_ps(f); }
CK_TGT CK_INLINE CK_V ck_v_load(const float *p) { return _mm256_loadu_ps(p); }
CK_TGT CK_INLINE void ck_v_store(float *p, CK_V v) { _mm256_storeu_ps(p, v); }
CK_TGT CK_INLINE CK_V ck_v_load_part(const float *p, int n) { return _mm256_maskload_ps(p, ck_mask(n)); }
CK_TGT CK_INLINE void ck_v_store_part(float *p, CK_V v, int n) { _mm256_maskstore_ps(p, ck_mask(n), v); }
CK_TGT CK_INLINE CK_V ck_v_add(CK_V a, CK_V b) { return _mm256_add_ps(a, b); }
CK_TGT CK_INLINE CK_V ck_v_sub(CK_V a, CK_V b) { return _mm256_sub_ps(a, b); }
CK_TGT CK_INLINE CK_V ck_v_mul(CK_V a, CK_V b) { return _mm256_mul_ps(a, b); }
CK_TGT CK_INLINE CK_V ck_v_div(CK_V a, CK_V b) { return _mm256_div_ps(a, b); }
CK_TGT CK_INLINE CK_V ck_v_fma(CK_V a, CK_V b, CK_V c) { return _mm256_fmadd_ps(a, b, c); }
CK_TGT CK_INLINE CK_V ck_v_max(CK_V a, CK_V b) { return _mm256_max_ps(a, b); }
CK_TGT CK_INLINE CK_V ck_v_abs(CK_V a) { return _mm256_andnot_ps(_mm256_set1_ps(-0.0f), a); }
CK_TGT CK_INLINE float ck_v_reduce_add(CK_V v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}
CK_TGT CK_INLINE float ck_v_reduce_max(CK_V v) {
    __m128 s = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_max_ps(s, _mm_movehl_ps(s, s));
    s = _mm_max_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

/// Sums of 8 vectors at once (lane i = sum of v[i]) with a tree of horizontal adds.
CK_TGT CK_INLINE CK_V ck_v_reduce8(const CK_V *v) {
    CK_V h0 = _mm256_hadd_ps(v[0], v[1]), h1 = _mm256_hadd_ps(v[2], v[3]);
    CK_V h2 = _mm256_hadd_ps(v[4], v[5]), h3 = _mm256_hadd_ps(v[6], v[7]);
    CK_V g0 = _mm256_hadd_ps(h0, h1), g1 = _mm256_hadd_ps(h2, h3);
    return _mm256_add_ps(_mm256_permute2f128_ps(g0, g1, 0x20), _mm256_permute2f128_ps(g0, g1, 0x31));
}

CK_TGT CK_INLINE void ck_v_reduce_n(const CK_V *v, int n, float *out) {
    int i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(out + i, ck_v_reduce8(v + i));
    for (; i < n; i++) out[i] = ck_v_reduce_add(v[i]);
}

/// expf: Cephes' range reduction and degree-5 polynomial; 2^n built in the exponent field.
CK_TGT CK_INLINE CK_V ck_v_exp(CK_V x) {
    const CK_V lo = _mm256_set1_ps(-87.33654475f);
    CK_V xc = _mm256_min_ps(_mm256_set1_ps(88.3762626647949f), _mm256_max_ps(lo, x)); // NaN passes
    CK_V n = _mm256_round_ps(_mm256_mul_ps(xc, _mm256_set1_ps(1.44269504088896341f)),
                             _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    CK_V r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), xc);
    r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
    CK_V p = _mm256_set1_ps(1.9875691500e-4f);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.3981999507e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.3334519073e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1665795894e-2f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.6666665459e-1f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.0000001201e-1f));
    CK_V y = _mm256_fmadd_ps(p, _mm256_mul_ps(r, r), _mm256_add_ps(r, _mm256_set1_ps(1.0f)));
    __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
    y = _mm256_mul_ps(y, _mm256_castsi256_ps(e)); // n in [-126, 127]: 2^n is a normal float
    return _mm256_andnot_ps(_mm256_cmp_ps(x, lo, _CMP_LT_OQ), y);
}

CK_TGT CK_INLINE CK_V ck_bf16_widen(__m128i h) {
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
}

CK_TGT CK_INLINE CK_V ck_v_load_w(ck_dtype t, const uint8_t *row, int c) {
    switch (t) {
    case CK_F16: return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(row + 2 * (size_t)c)));
    case CK_BF16: return ck_bf16_widen(_mm_loadu_si128((const __m128i *)(row + 2 * (size_t)c)));
    default: return _mm256_loadu_ps((const float *)(row + 4 * (size_t)c));
    }
}

CK_TGT CK_INLINE CK_V ck_v_load_w_part(ck_dtype t, const uint8_t *row, int c, int n) {
    if (t == CK_F32) return _mm256_maskload_ps((const float *)(row + 4 * (size_t)c), ck_mask(n));
    uint16_t tmp[8] = {0};
    memcpy(tmp, row + 2 * (size_t)c, 2 * (size_t)n);
    __m128i h = _mm_loadu_si128((const __m128i *)tmp);
    return t == CK_F16 ? _mm256_cvtph_ps(h) : ck_bf16_widen(h);
}

CK_TGT CK_INLINE CK_V ck_v_load_i8(const int8_t *p) {
    return _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)p)));
}

/// roundf via truncation, as ck_round_half_away. Comparison masks are -1 where true.
CK_TGT CK_INLINE void ck_v_store_q8(int8_t *dst, CK_V v) {
    __m256i t = _mm256_cvttps_epi32(v);
    CK_V frac = _mm256_sub_ps(v, _mm256_cvtepi32_ps(t));
    t = _mm256_sub_epi32(t, _mm256_castps_si256(_mm256_cmp_ps(frac, _mm256_set1_ps(0.5f), _CMP_GE_OQ)));
    t = _mm256_add_epi32(t, _mm256_castps_si256(_mm256_cmp_ps(frac, _mm256_set1_ps(-0.5f), _CMP_LE_OQ)));
    __m128i w = _mm_packs_epi32(_mm256_castsi256_si128(t), _mm256_extracti128_si256(t, 1));
    _mm_storel_epi64((__m128i *)dst, _mm_packs_epi16(w, w));
}

CK_TGT CK_INLINE CK_V ck_v_sum_bytes(CK_V acc, const uint8_t *p) {
    return _mm256_add_ps(acc, _mm256_add_ps(_mm256_loadu_ps((const float *)p), _mm256_loadu_ps((const float *)(p + 32))));
}

/// AVX-VNNI vpdpbusd (VEX encoded) through inline assembly: a VNNI instruction inside functions
/// compiled without that target, reached only when the CPU has it.
CK_TGT CK_INLINE __m256i ck_dpbusd256(__m256i acc, __m256i u, __m256i s) {
    __asm__("%{vex%} vpdpbusd %2, %1, %0" : "+x"(acc) : "x"(u), "x"(s));
    return acc;
}

#include "ck_x86_q256.inc"

// Groups of two blocks. q4_0: one block per 128-bit half of nibble bytes; nibbles enter the dot
// unsigned and the offset 8 * sum(x) per 4-byte lane starts the integer accumulator negated.
// q8_0: one block per ymm with |w| * (x with w's sign); a horizontal add folds the two blocks'
// lane sums into one vector (lanes 0,1,4,5 from the first block, 2,3,6,7 from the second) so one
// conversion and one FMA serve both.
#define CK_QG(t) 2
#define CK_QHAS_VNNI 1

typedef struct {
    __m256i xa, xb; // q4_0: activations facing the low / high nibbles; q8_0: x of the two blocks
    __m256i bias;   // q4_0: -8 * sum of the activations of each 4-byte lane
    __m256 dx;      // activation scale of the block each lane belongs to
} CK_QGX;
typedef __m256 CK_QGACC;

CK_TGT CK_INLINE CK_QGX ck_qg_x(int vnni, ck_dtype t, const int8_t *q, const float *d, int b) {
    CK_QGX g;
    const int8_t *x = q + b * CK_QK;
    __m256i x0 = _mm256_loadu_si256((const __m256i *)x), zero = _mm256_setzero_si256();
    __m128 d2 = _mm_castpd_ps(_mm_load_sd((const double *)(d + b)));
    if (t == CK_Q4_0) {
        __m256i x1 = _mm256_loadu_si256((const __m256i *)(x + 32));
        g.xa = _mm256_permute2x128_si256(x0, x1, 0x20);
        g.xb = _mm256_permute2x128_si256(x0, x1, 0x31);
        __m256i eight = _mm256_set1_epi8(8);
        g.bias = _mm256_sub_epi32(zero, ck_dot256(vnni, ck_dot256(vnni, zero, eight, g.xa), eight, g.xb));
        g.dx = _mm256_permutevar8x32_ps(_mm256_castps128_ps256(d2), _mm256_setr_epi32(0, 0, 0, 0, 1, 1, 1, 1));
    } else {
        g.xa = x0;
        g.xb = _mm256_loadu_si256((const __m256i *)(x + 32));
        g.bias = zero;
        g.dx = _mm256_permutevar8x32_ps(_mm256_castps128_ps256(d2), _mm256_setr_epi32(0, 0, 1, 1, 0, 0, 1, 1));
    }
    return g;
}

/// q4_0: the nibbles of both blocks (a: low, b: high); q8_0: the two blocks' weights (a, b) and
/// their magnitudes (abs_a, abs_b). dw: weight scale of the block each lane of the dot belongs to.
typedef struct {
    __m256i a, b, abs_a, abs_b;
    __m256 dw;
} CK_QGW;

CK_TGT CK_INLINE CK_QGW ck_qg_w(ck_dtype t, const uint8_t *blk) {
    CK_QGW w;
    if (t == CK_Q4_0) {
        __m256i v = _mm256_castsi128_si256(_mm_loadu_si128((const __m128i *)(blk + 2)));
        v = _mm256_inserti128_si256(v, _mm_loadu_si128((const __m128i *)(blk + 20)), 1);
        __m256i m = _mm256_set1_epi8(0x0F);
        w.a = _mm256_and_si256(v, m), w.b = _mm256_and_si256(_mm256_srli_epi16(v, 4), m);
        w.abs_a = w.abs_b = _mm256_setzero_si256();
        __m128i dh = _mm_insert_epi16(_mm_cvtsi32_si128(ck_load_u16(blk)), ck_load_u16(blk + 18), 1);
        w.dw = _mm256_permutevar8x32_ps(_mm256_castps128_ps256(_mm_cvtph_ps(dh)), _mm256_setr_epi32(0, 0, 0, 0, 1, 1, 1, 1));
    } else {
        w.a = _mm256_loadu_si256((const __m256i *)(blk + 2)), w.b = _mm256_loadu_si256((const __m256i *)(blk + 36));
        w.abs_a = _mm256_abs_epi8(w.a), w.abs_b = _mm256_abs_epi8(w.b);
        __m128i dh = _mm_insert_epi16(_mm_cvtsi32_si128(ck_load_u16(blk)), ck_load_u16(blk + 34), 1);
        w.dw = _mm256_permutevar8x32_ps(_mm256_castps128_ps256(_mm_cvtph_ps(dh)), _mm256_setr_epi32(0, 0, 1, 1, 0, 0, 1, 1));
    }
    return w;
}

CK_TGT CK_INLINE CK_QGACC ck_qg_dot(int vnni, ck_dtype t, CK_QGACC acc, const CK_QGW *w, const CK_QGX *g) {
    __m256i dot;
    if (t == CK_Q4_0) {
        dot = ck_dot256(vnni, ck_dot256(vnni, g->bias, w->a, g->xa), w->b, g->xb);
    } else {
        __m256i zero = _mm256_setzero_si256();
        dot = _mm256_hadd_epi32(ck_dot256(vnni, zero, w->abs_a, _mm256_sign_epi8(g->xa, w->a)),
                                ck_dot256(vnni, zero, w->abs_b, _mm256_sign_epi8(g->xb, w->b)));
    }
    return _mm256_fmadd_ps(_mm256_cvtepi32_ps(dot), _mm256_mul_ps(w->dw, g->dx), acc);
}

CK_TGT CK_INLINE CK_QGACC ck_qg_zero(void) { return _mm256_setzero_ps(); }
CK_TGT CK_INLINE CK_QGACC ck_qg_add(CK_QGACC a, CK_QGACC b) { return _mm256_add_ps(a, b); }
CK_TGT CK_INLINE float ck_qg_reduce(CK_QGACC v) { return ck_v_reduce_add(v); }

#include "ck_quant_body.inc"
#include "ck_simd_body.inc"

#define CK_AVX2_TABLE(name, ext, quant)                                                                            \
    const ck_kernels name = {                                                                                      \
        .isa = CK_ISA_AVX2,                                                                                        \
        .extensions = ext,                                                                                         \
        .matvec_float = ck_matvec_float,                                                                           \
        .x_lanes = CK_VW,                                                                                          \
        .pack_x = ck_pack_x_simd,                                                                                  \
        .matvec_quant = quant,                                                                                     \
        .quantize_x = ck_quantize_x,                                                                               \
        .xq_aux_bytes = ck_qg_aux_bytes,                                                                           \
        .xq_aux_prepare = ck_qg_aux_prepare,                                                                       \
        .gemm_mr = CK_GEMM_MR,                                                                                     \
        .gemm_nr = CK_GEMM_NR,                                                                                     \
        .gemm_tile = ck_gemm_tile,                                                                                 \
        .to_f32 = ck_to_f32_simd,                                                                                  \
        .dot = ck_dot_simd,                                                                                        \
        .axpy = ck_axpy_simd,                                                                                      \
        .sum_squares = ck_sum_squares_simd,                                                                        \
        .scale_mul = ck_scale_mul_simd,                                                                            \
        .softmax = ck_softmax_simd,                                                                                \
        .swiglu = ck_swiglu_simd,                                                                                  \
        .read_sum = ck_read_sum_simd,                                                                              \
        .fma_burn = ck_fma_burn_simd,                                                                              \
    };

CK_AVX2_TABLE(ck_kernels_avx2, 0, ck_matvec_quant)
CK_AVX2_TABLE(ck_kernels_avx2_vnni, CK_EXT_VNNI, ck_matvec_quant_vnni)

#endif
