// AVX-512 (F/BW/VL/DQ + FMA/F16C) path: 16-lane float kernels from ck_simd_body.inc, 256-bit int8
// block dots (VNNI vpdpbusd when present) from ck_x86_q256.inc.
#include "ck_internal.h"

#if CK_X86
#include <immintrin.h>

#define CK_TGT __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx2,fma,f16c")))
#define CK_INLINE static inline __attribute__((always_inline))

typedef __m512 CK_V;
#define CK_VW 16
#ifndef CK_GEMM_MR
#define CK_GEMM_MR 4
#endif
#ifndef CK_GEMM_NR
#define CK_GEMM_NR 6
#endif

CK_TGT CK_INLINE __mmask16 ck_mask(int n) { return (__mmask16)((1u << n) - 1u); }
CK_TGT CK_INLINE CK_V ck_v_zero(void) { return _mm512_setzero_ps(); }
CK_TGT CK_INLINE CK_V ck_v_set1(float f) { return _mm512_set1_ps(f); }
CK_TGT CK_INLINE CK_V ck_v_load(const float *p) { return _mm512_loadu_ps(p); }
CK_TGT CK_INLINE void ck_v_store(float *p, CK_V v) { _mm512_storeu_ps(p, v); }
CK_TGT CK_INLINE CK_V ck_v_load_part(const float *p, int n) { return _mm512_maskz_loadu_ps(ck_mask(n), p); }
CK_TGT CK_INLINE void ck_v_store_part(float *p, CK_V v, int n) { _mm512_mask_storeu_ps(p, ck_mask(n), v); }
CK_TGT CK_INLINE CK_V ck_v_add(CK_V a, CK_V b) { return _mm512_add_ps(a, b); }
CK_TGT CK_INLINE CK_V ck_v_sub(CK_V a, CK_V b) { return _mm512_sub_ps(a, b); }
CK_TGT CK_INLINE CK_V ck_v_mul(CK_V a, CK_V b) { return _mm512_mul_ps(a, b); }
CK_TGT CK_INLINE CK_V ck_v_div(CK_V a, CK_V b) { return _mm512_div_ps(a, b); }
CK_TGT CK_INLINE CK_V ck_v_fma(CK_V a, CK_V b, CK_V c) { return _mm512_fmadd_ps(a, b, c); }
CK_TGT CK_INLINE CK_V ck_v_max(CK_V a, CK_V b) { return _mm512_max_ps(a, b); }
CK_TGT CK_INLINE CK_V ck_v_abs(CK_V a) { return _mm512_abs_ps(a); }
CK_TGT CK_INLINE float ck_v_reduce_add(CK_V v) {
    __m256 h = _mm256_add_ps(_mm512_castps512_ps256(v), _mm512_extractf32x8_ps(v, 1));
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}
CK_TGT CK_INLINE float ck_v_reduce_max(CK_V v) { return _mm512_reduce_max_ps(v); }

/// Sums of 16 vectors at once: lane i of the result is the sum of v[i]'s lanes. Folds pairs of
/// vectors into each other (512 -> 256 -> 128 bits) and finishes with a 4x4 transpose-add, about
/// three instructions per vector instead of eight for one-at-a-time reductions.
CK_TGT CK_INLINE CK_V ck_v_reduce16(const CK_V *v) {
    CK_V u[8], s[4];
    for (int j = 0; j < 8; j++)
        u[j] = _mm512_add_ps(_mm512_shuffle_f32x4(v[2 * j], v[2 * j + 1], _MM_SHUFFLE(1, 0, 1, 0)),
                             _mm512_shuffle_f32x4(v[2 * j], v[2 * j + 1], _MM_SHUFFLE(3, 2, 3, 2)));
    // u[j] chunks (4 floats each): [v2j.0+v2j.2, v2j.1+v2j.3, v2j+1.0+v2j+1.2, v2j+1.1+v2j+1.3]
    for (int j = 0; j < 4; j++)
        s[j] = _mm512_add_ps(_mm512_shuffle_f32x4(u[2 * j], u[2 * j + 1], _MM_SHUFFLE(2, 0, 2, 0)),
                             _mm512_shuffle_f32x4(u[2 * j], u[2 * j + 1], _MM_SHUFFLE(3, 1, 3, 1)));
    // s[j] chunk k: four partial sums of v[4j + k]
    CK_V e0 = _mm512_add_ps(_mm512_unpacklo_ps(s[0], s[1]), _mm512_unpackhi_ps(s[0], s[1]));
    CK_V e1 = _mm512_add_ps(_mm512_unpacklo_ps(s[2], s[3]), _mm512_unpackhi_ps(s[2], s[3]));
    CK_V g = _mm512_add_ps(_mm512_shuffle_ps(e0, e1, _MM_SHUFFLE(1, 0, 1, 0)),
                           _mm512_shuffle_ps(e0, e1, _MM_SHUFFLE(3, 2, 3, 2)));
    // g lane 4k + m = sum of v[4m + k]; put it at lane 4m + k
    const __m512i idx = _mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15);
    return _mm512_permutexvar_ps(idx, g);
}

CK_TGT CK_INLINE void ck_v_reduce_n(const CK_V *v, int n, float *out) {
    int i = 0;
    for (; i + 16 <= n; i += 16) _mm512_storeu_ps(out + i, ck_v_reduce16(v + i));
    if (i < n) {
        CK_V pad[16];
        for (int j = 0; j < 16; j++) pad[j] = i + j < n ? v[i + j] : _mm512_setzero_ps();
        _mm512_mask_storeu_ps(out + i, ck_mask(n - i), ck_v_reduce16(pad));
    }
}

/// expf: Cephes' range reduction and degree-5 polynomial; 2^n applied with vscalefps.
CK_TGT CK_INLINE CK_V ck_v_exp(CK_V x) {
    const CK_V lo = _mm512_set1_ps(-87.33654475f);
    CK_V xc = _mm512_min_ps(_mm512_set1_ps(88.3762626647949f), _mm512_max_ps(lo, x)); // NaN passes
    CK_V n = _mm512_roundscale_ps(_mm512_mul_ps(xc, _mm512_set1_ps(1.44269504088896341f)),
                                  _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    CK_V r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), xc);
    r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), r);
    CK_V p = _mm512_set1_ps(1.9875691500e-4f);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.3981999507e-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(8.3334519073e-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(4.1665795894e-2f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.6666665459e-1f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(5.0000001201e-1f));
    CK_V y = _mm512_fmadd_ps(p, _mm512_mul_ps(r, r), _mm512_add_ps(r, _mm512_set1_ps(1.0f)));
    y = _mm512_scalef_ps(y, n);
    return _mm512_mask_blend_ps(_mm512_cmp_ps_mask(x, lo, _CMP_LT_OQ), y, _mm512_setzero_ps());
}

CK_TGT CK_INLINE CK_V ck_bf16_widen(__m256i h) {
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
}

CK_TGT CK_INLINE CK_V ck_v_load_w(ck_dtype t, const uint8_t *row, int c) {
    switch (t) {
    case CK_F16: return _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(row + 2 * (size_t)c)));
    case CK_BF16: return ck_bf16_widen(_mm256_loadu_si256((const __m256i *)(row + 2 * (size_t)c)));
    default: return _mm512_loadu_ps((const float *)(row + 4 * (size_t)c));
    }
}

CK_TGT CK_INLINE CK_V ck_v_load_w_part(ck_dtype t, const uint8_t *row, int c, int n) {
    switch (t) {
    case CK_F16: return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(ck_mask(n), row + 2 * (size_t)c));
    case CK_BF16: return ck_bf16_widen(_mm256_maskz_loadu_epi16(ck_mask(n), row + 2 * (size_t)c));
    default: return _mm512_maskz_loadu_ps(ck_mask(n), row + 4 * (size_t)c);
    }
}

CK_TGT CK_INLINE CK_V ck_v_load_i8(const int8_t *p) {
    return _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)p)));
}

/// roundf via truncation, as ck_round_half_away: t = trunc(v), then step away if |v - t| >= 0.5.
CK_TGT CK_INLINE void ck_v_store_q8(int8_t *dst, CK_V v) {
    __m512i t = _mm512_cvttps_epi32(v);
    CK_V frac = _mm512_sub_ps(v, _mm512_cvtepi32_ps(t));
    __m512i one = _mm512_set1_epi32(1);
    t = _mm512_mask_add_epi32(t, _mm512_cmp_ps_mask(frac, _mm512_set1_ps(0.5f), _CMP_GE_OQ), t, one);
    t = _mm512_mask_sub_epi32(t, _mm512_cmp_ps_mask(frac, _mm512_set1_ps(-0.5f), _CMP_LE_OQ), t, one);
    _mm_storeu_si128((__m128i *)dst, _mm512_cvtepi32_epi8(t));
}

CK_TGT CK_INLINE CK_V ck_v_sum_bytes(CK_V acc, const uint8_t *p) {
    return _mm512_add_ps(acc, _mm512_loadu_ps((const float *)p));
}

/// vpdpbusd through inline assembly: a VNNI instruction inside functions compiled without the
/// VNNI target, reached only when the CPU has it (the caller picks the VNNI flavour at run time).
CK_TGT CK_INLINE __m256i ck_dpbusd256(__m256i acc, __m256i u, __m256i s) {
    __asm__("vpdpbusd %2, %1, %0" : "+v"(acc) : "v"(u), "v"(s));
    return acc;
}
CK_TGT CK_INLINE __m512i ck_dpbusd512(__m512i acc, __m512i u, __m512i s) {
    __asm__("vpdpbusd %2, %1, %0" : "+v"(acc) : "v"(u), "v"(s));
    return acc;
}

#include "ck_x86_q256.inc"

/// acc + sum over each 4-byte lane of u (unsigned) * s (signed); see ck_x86_q256.inc on ranges.
CK_TGT CK_INLINE __m512i ck_dot512(int vnni, __m512i acc, __m512i u, __m512i s) {
    if (vnni) return ck_dpbusd512(acc, u, s);
    return _mm512_add_epi32(acc, _mm512_madd_epi16(_mm512_maddubs_epi16(u, s), _mm512_set1_epi16(1)));
}

// Groups: four q4_0 blocks (one per 128-bit chunk of nibble bytes) or two q8_0 blocks (one per
// 256-bit half) per zmm register. Weights enter the dot as unsigned bytes: q4_0 nibbles as they
// are (0..15), q8_0 values plus 128; the offsets (8 and 128 times the sum of the activations of
// each 4-byte lane) start the integer accumulator negated, so the sums come out exact.
#define CK_QG(t) ((t) == CK_Q4_0 ? 4 : 2)
#define CK_QHAS_VNNI 1

typedef struct {
    __m512i xa, xb; // q4_0: activations facing the low / high nibbles; q8_0: xa = both blocks' x
    __m512i bias;   // -offset * sum of the activations of each 4-byte lane
    __m512 dx;      // activation scale of the block each lane belongs to
} CK_QGX;
typedef __m512 CK_QGACC;

CK_TGT CK_INLINE CK_QGX ck_qg_x(int vnni, ck_dtype t, const ck_xq *xq, int b) {
    CK_QGX g;
    const int8_t *x = xq->q + b * CK_QK;
    __m512i x0 = _mm512_loadu_si512(x), zero = _mm512_setzero_si512();
    if (t == CK_Q4_0) {
        // x0 = blocks b, b+1; x1 = b+2, b+3. Block j's low nibbles face x_j[0:16], high x_j[16:32].
        __m512i x1 = _mm512_loadu_si512(x + 64);
        g.xa = _mm512_permutex2var_epi64(x0, _mm512_setr_epi64(0, 1, 4, 5, 8, 9, 12, 13), x1);
        g.xb = _mm512_permutex2var_epi64(x0, _mm512_setr_epi64(2, 3, 6, 7, 10, 11, 14, 15), x1);
        __m512i eight = _mm512_set1_epi8(8);
        g.bias = _mm512_sub_epi32(zero, ck_dot512(vnni, ck_dot512(vnni, zero, eight, g.xa), eight, g.xb));
        g.dx = _mm512_permutexvar_ps(_mm512_setr_epi32(0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3),
                                     _mm512_castps128_ps512(_mm_loadu_ps(xq->d + b)));
    } else {
        g.xa = x0;
        g.xb = zero;
        // The plain flavour multiplies |w| by x with w's sign instead, needing no offset.
        g.bias = vnni ? _mm512_sub_epi32(zero, _mm512_slli_epi32(ck_dot512(1, zero, _mm512_set1_epi8(1), x0), 7)) : zero;
        g.dx = _mm512_permutexvar_ps(_mm512_setr_epi32(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1),
                                     _mm512_maskz_loadu_ps(0x3, xq->d + b));
    }
    return g;
}

/// Plain unaligned loads the compiler must not split or merge: left to itself, clang turned the
/// overlapping loads of a group (scales and weights share bytes) into 8- and 16-byte pieces.
CK_TGT CK_INLINE __m512i ck_load512_exact(const uint8_t *p) {
    __m512i v;
    __asm__("vmovdqu64 %1, %0" : "=v"(v) : "m"(*(const uint8_t(*)[64])p));
    return v;
}
CK_TGT CK_INLINE __m256i ck_load256_exact(const uint8_t *p) {
    __m256i v;
    __asm__("vmovdqu %1, %0" : "=v"(v) : "m"(*(const uint8_t(*)[32])p));
    return v;
}

CK_TGT CK_INLINE CK_QGACC ck_qg_row(int vnni, ck_dtype t, CK_QGACC acc, const uint8_t *blk, const CK_QGX *g) {
    __m512i dot;
    __m256i dh;
    if (t == CK_Q4_0) {
        __m512i v = _mm512_castsi128_si512(_mm_loadu_si128((const __m128i *)(blk + 2)));
        v = _mm512_inserti32x4(v, _mm_loadu_si128((const __m128i *)(blk + 20)), 1);
        v = _mm512_inserti32x4(v, _mm_loadu_si128((const __m128i *)(blk + 38)), 2);
        v = _mm512_inserti32x4(v, _mm_loadu_si128((const __m128i *)(blk + 56)), 3);
        __m512i m = _mm512_set1_epi8(0x0F);
        __m512i lo = _mm512_and_si512(v, m), hi = _mm512_and_si512(_mm512_srli_epi16(v, 4), m);
        dot = ck_dot512(vnni, ck_dot512(vnni, g->bias, lo, g->xa), hi, g->xb);
        dh = _mm512_castsi512_si256(_mm512_permutexvar_epi16(
            _mm512_setr_epi32(0, 0, 0x00090009, 0x00090009, 0x00120012, 0x00120012, 0x001B001B, 0x001B001B, 0, 0, 0, 0,
                              0, 0, 0, 0),
            _mm512_loadu_si512(blk))); // words 0, 9, 18, 27 (bytes 0, 18, 36, 54), four times each
    } else {
        __m512i head = ck_load512_exact(blk); // holds both fp16 scales (bytes 0 and 34)
        __m512i v = _mm512_inserti64x4(_mm512_castsi256_si512(ck_load256_exact(blk + 2)), ck_load256_exact(blk + 36), 1);
        if (vnni) {
            dot = ck_dpbusd512(g->bias, _mm512_xor_si512(v, _mm512_set1_epi8((char)0x80)), g->xa);
        } else {
            __m512i sx = _mm512_mask_sub_epi8(g->xa, _mm512_movepi8_mask(v), _mm512_setzero_si512(), g->xa);
            dot = ck_dot512(0, _mm512_setzero_si512(), _mm512_abs_epi8(v), sx);
        }
        dh = _mm512_castsi512_si256(_mm512_permutexvar_epi16(
            _mm512_setr_epi32(0, 0, 0, 0, 0x00110011, 0x00110011, 0x00110011, 0x00110011, 0, 0, 0, 0, 0, 0, 0, 0),
            head)); // words 0 and 17 (bytes 0, 34), eight times each
    }
    __m512 scale = _mm512_mul_ps(_mm512_cvtph_ps(dh), g->dx);
    return _mm512_fmadd_ps(_mm512_cvtepi32_ps(dot), scale, acc);
}

CK_TGT CK_INLINE CK_QGACC ck_qg_zero(void) { return _mm512_setzero_ps(); }
CK_TGT CK_INLINE CK_QGACC ck_qg_add(CK_QGACC a, CK_QGACC b) { return _mm512_add_ps(a, b); }
CK_TGT CK_INLINE float ck_qg_reduce(CK_QGACC v) { return ck_v_reduce_add(v); }

#include "ck_quant_body.inc"
#include "ck_simd_body.inc"

#define CK_AVX512_TABLE(name, ext, quant)                                                                          \
    const ck_kernels name = {                                                                                      \
        .isa = CK_ISA_AVX512,                                                                                      \
        .extensions = ext,                                                                                         \
        .matvec_float = ck_matvec_float,                                                                           \
        .matvec_quant = quant,                                                                                     \
        .quantize_x = ck_quantize_x,                                                                               \
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

CK_AVX512_TABLE(ck_kernels_avx512, 0, ck_matvec_quant)
CK_AVX512_TABLE(ck_kernels_avx512_vnni, CK_EXT_VNNI, ck_matvec_quant_vnni)

#endif
