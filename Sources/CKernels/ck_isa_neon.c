// AArch64 Advanced SIMD path (baseline ARMv8.0: no dotprod/bf16 extensions assumed): 4-lane float
// kernels from ck_simd_body.inc and int8 block dots with widening multiplies.
#include "ck_internal.h"

#if defined(__aarch64__)
#include <arm_neon.h>

#define CK_TGT
#define CK_INLINE static inline __attribute__((always_inline))

typedef float32x4_t CK_V;
#define CK_VW 4
#define CK_GEMM_MR 4
#define CK_GEMM_NR 4
#define CK_MV_NT 8 // 32 registers: two accumulators per token leave half for weights and x

CK_INLINE CK_V ck_v_zero(void) { return vdupq_n_f32(0.0f); }
CK_INLINE CK_V ck_v_set1(float f) { return vdupq_n_f32(f); }
CK_INLINE CK_V ck_v_load(const float *p) { return vld1q_f32(p); }
CK_INLINE void ck_v_store(float *p, CK_V v) { vst1q_f32(p, v); }
CK_INLINE CK_V ck_v_load_part(const float *p, int n) {
    float tmp[4] = {0, 0, 0, 0};
    memcpy(tmp, p, 4 * (size_t)n);
    return vld1q_f32(tmp);
}
CK_INLINE void ck_v_store_part(float *p, CK_V v, int n) {
    float tmp[4];
    vst1q_f32(tmp, v);
    memcpy(p, tmp, 4 * (size_t)n);
}
CK_INLINE CK_V ck_v_add(CK_V a, CK_V b) { return vaddq_f32(a, b); }
CK_INLINE CK_V ck_v_sub(CK_V a, CK_V b) { return vsubq_f32(a, b); }
CK_INLINE CK_V ck_v_mul(CK_V a, CK_V b) { return vmulq_f32(a, b); }
CK_INLINE CK_V ck_v_div(CK_V a, CK_V b) { return vdivq_f32(a, b); }
CK_INLINE CK_V ck_v_fma(CK_V a, CK_V b, CK_V c) { return vfmaq_f32(c, a, b); }
CK_INLINE CK_V ck_v_max(CK_V a, CK_V b) { return vmaxq_f32(a, b); }
CK_INLINE CK_V ck_v_abs(CK_V a) { return vabsq_f32(a); }
CK_INLINE float ck_v_reduce_add(CK_V v) { return vaddvq_f32(v); }
CK_INLINE float ck_v_reduce_max(CK_V v) { return vmaxvq_f32(v); }
CK_INLINE void ck_v_reduce_n(const CK_V *v, int n, float *out) {
    for (int i = 0; i < n; i++) out[i] = vaddvq_f32(v[i]);
}

/// expf: Cephes' range reduction and degree-5 polynomial; 2^n built in the exponent field.
CK_INLINE CK_V ck_v_exp(CK_V x) {
    const CK_V lo = vdupq_n_f32(-87.33654475f);
    CK_V xc = vminq_f32(vdupq_n_f32(88.3762626647949f), vmaxq_f32(lo, x)); // NaN propagates
    CK_V n = vrndnq_f32(vmulq_f32(xc, vdupq_n_f32(1.44269504088896341f)));
    CK_V r = vfmsq_f32(xc, n, vdupq_n_f32(0.693359375f));
    r = vfmsq_f32(r, n, vdupq_n_f32(-2.12194440e-4f));
    CK_V p = vdupq_n_f32(1.9875691500e-4f);
    p = vfmaq_f32(vdupq_n_f32(1.3981999507e-3f), p, r);
    p = vfmaq_f32(vdupq_n_f32(8.3334519073e-3f), p, r);
    p = vfmaq_f32(vdupq_n_f32(4.1665795894e-2f), p, r);
    p = vfmaq_f32(vdupq_n_f32(1.6666665459e-1f), p, r);
    p = vfmaq_f32(vdupq_n_f32(5.0000001201e-1f), p, r);
    CK_V y = vfmaq_f32(vaddq_f32(r, vdupq_n_f32(1.0f)), p, vmulq_f32(r, r));
    int32x4_t e = vshlq_n_s32(vaddq_s32(vcvtq_s32_f32(n), vdupq_n_s32(127)), 23);
    y = vmulq_f32(y, vreinterpretq_f32_s32(e));
    uint32x4_t under = vcltq_f32(x, lo);
    return vreinterpretq_f32_u32(vbicq_u32(vreinterpretq_u32_f32(y), under));
}

CK_INLINE CK_V ck_v_load_w(ck_dtype t, const uint8_t *row, int c) {
    switch (t) {
    case CK_F16: return vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16((const uint16_t *)(row + 2 * (size_t)c))));
    case CK_BF16: return vreinterpretq_f32_u32(vshll_n_u16(vld1_u16((const uint16_t *)(row + 2 * (size_t)c)), 16));
    default: return vld1q_f32((const float *)(row + 4 * (size_t)c));
    }
}

CK_INLINE CK_V ck_v_load_w_part(ck_dtype t, const uint8_t *row, int c, int n) {
    uint8_t tmp[16] = {0};
    size_t es = t == CK_F32 ? 4 : 2;
    memcpy(tmp, row + es * (size_t)c, es * (size_t)n);
    return ck_v_load_w(t, tmp, 0);
}

CK_INLINE CK_V ck_v_load_i8(const int8_t *p) {
    float v[4] = {(float)p[0], (float)p[1], (float)p[2], (float)p[3]};
    return vld1q_f32(v);
}

/// roundf via truncation, as ck_round_half_away. Comparison masks are all-ones (-1) where true.
CK_INLINE void ck_v_store_q8(int8_t *dst, CK_V v) {
    int32x4_t t = vcvtq_s32_f32(v);
    CK_V frac = vsubq_f32(v, vcvtq_f32_s32(t));
    t = vsubq_s32(t, vreinterpretq_s32_u32(vcgeq_f32(frac, vdupq_n_f32(0.5f))));
    t = vaddq_s32(t, vreinterpretq_s32_u32(vcleq_f32(frac, vdupq_n_f32(-0.5f))));
    int32_t q[4];
    vst1q_s32(q, t);
    for (int i = 0; i < 4; i++) dst[i] = (int8_t)q[i];
}

CK_INLINE CK_V ck_v_sum_bytes(CK_V acc, const uint8_t *p) {
    const float *f = (const float *)p;
    CK_V s = vaddq_f32(vaddq_f32(vld1q_f32(f), vld1q_f32(f + 4)), vaddq_f32(vld1q_f32(f + 8), vld1q_f32(f + 12)));
    return vaddq_f32(acc, s);
}

// int8 blocks: two 16-byte halves. Products of |w| <= 128 and |x| <= 127 fit int16 in pairs.
// One block per step, so groups and the one-block tail are the same thing.
#define CK_QG(t) 1
#define CK_QHAS_VNNI 0

typedef struct {
    int8x16x2_t x;
    float dx;
} CK_QGX;
typedef float32x4_t CK_QGACC;
typedef float32x4_t CK_QF;

/// Signed weights of one block: q8_0 as stored, q4_0 unpacked (weight i in the low nibble of
/// byte i, weight i + 16 in the high nibble) minus 8.
CK_INLINE int8x16x2_t ck_q_load_w(ck_dtype t, const uint8_t *blk) {
    int8x16x2_t w;
    if (t == CK_Q8_0) {
        w.val[0] = vld1q_s8((const int8_t *)(blk + 2));
        w.val[1] = vld1q_s8((const int8_t *)(blk + 18));
        return w;
    }
    uint8x16_t q = vld1q_u8(blk + 2);
    int8x16_t eight = vdupq_n_s8(8);
    w.val[0] = vsubq_s8(vreinterpretq_s8_u8(vandq_u8(q, vdupq_n_u8(0x0F))), eight);
    w.val[1] = vsubq_s8(vreinterpretq_s8_u8(vshrq_n_u8(q, 4)), eight);
    return w;
}
CK_INLINE void ck_q_store_w(int8_t *dst, int8x16x2_t w) {
    vst1q_s8(dst, w.val[0]);
    vst1q_s8(dst + 16, w.val[1]);
}

CK_INLINE CK_QGX ck_qg_x(int vnni, ck_dtype t, const int8_t *q, const float *d, int b) {
    (void)vnni, (void)t;
    CK_QGX g;
    g.x.val[0] = vld1q_s8(q + b * CK_QK);
    g.x.val[1] = vld1q_s8(q + b * CK_QK + 16);
    g.dx = d[b];
    return g;
}

/// One block of signed weights and its scale.
typedef struct {
    int8x16x2_t w;
    float dw;
} CK_QGW;

CK_INLINE CK_QGW ck_qg_w(ck_dtype t, const uint8_t *blk) {
    CK_QGW w;
    w.w = ck_q_load_w(t, blk);
    w.dw = ck_fp16_to_f32(ck_load_u16(blk));
    return w;
}

CK_INLINE CK_QGACC ck_qg_dot(int vnni, ck_dtype t, CK_QGACC acc, const CK_QGW *gw, const CK_QGX *g) {
    (void)vnni, (void)t;
    const int8x16x2_t w = gw->w;
    int16x8_t p0 = vmull_s8(vget_low_s8(w.val[0]), vget_low_s8(g->x.val[0]));
    p0 = vmlal_s8(p0, vget_high_s8(w.val[0]), vget_high_s8(g->x.val[0]));
    int16x8_t p1 = vmull_s8(vget_low_s8(w.val[1]), vget_low_s8(g->x.val[1]));
    p1 = vmlal_s8(p1, vget_high_s8(w.val[1]), vget_high_s8(g->x.val[1]));
    int32x4_t dot = vpadalq_s16(vpaddlq_s16(p0), p1);
    return vfmaq_f32(acc, vcvtq_f32_s32(dot), vdupq_n_f32(gw->dw * g->dx));
}

CK_INLINE CK_QGACC ck_qg_zero(void) { return vdupq_n_f32(0.0f); }
CK_INLINE CK_QGACC ck_qg_add(CK_QGACC a, CK_QGACC b) { return vaddq_f32(a, b); }
CK_INLINE float ck_qg_reduce(CK_QGACC v) { return vaddvq_f32(v); }
CK_INLINE CK_QF ck_qb_zero(void) { return vdupq_n_f32(0.0f); }
CK_INLINE float ck_qb_reduce(CK_QF v) { return vaddvq_f32(v); }
CK_INLINE CK_QF ck_qb_row(int vnni, ck_dtype t, CK_QF acc, const uint8_t *blk, const int8_t *q, const float *d, int b) {
    CK_QGX g = ck_qg_x(vnni, t, q, d, b);
    CK_QGW w = ck_qg_w(t, blk);
    return ck_qg_dot(vnni, t, acc, &w, &g);
}

#include "ck_quant_body.inc"
#include "ck_simd_body.inc"

const ck_kernels ck_kernels_neon = {
    .isa = CK_ISA_NEON,
    .extensions = 0,
    .matvec_float = ck_matvec_float,
    .x_lanes = CK_VW,
    .pack_x = ck_pack_x_simd,
    .matvec_quant = ck_matvec_quant,
    .quantize_x = ck_quantize_x,
    .xq_aux_bytes = ck_qg_aux_bytes,
    .xq_aux_prepare = ck_qg_aux_prepare,
    .gemm_mr = CK_GEMM_MR,
    .gemm_nr = CK_GEMM_NR,
    .gemm_tile = ck_gemm_tile,
    .to_f32 = ck_to_f32_simd,
    .dot = ck_dot_simd,
    .axpy = ck_axpy_simd,
    .sum_squares = ck_sum_squares_simd,
    .scale_mul = ck_scale_mul_simd,
    .softmax = ck_softmax_simd,
    .swiglu = ck_swiglu_simd,
    .read_sum = ck_read_sum_simd,
    .fma_burn = ck_fma_burn_simd,
};

#endif
