// Portable C kernels: the reference every SIMD path is tested against, and the fallback on CPUs
// without a SIMD path. Float sums use CK_LANES independent partial sums (like one vector register)
// so compilers can vectorize them for the baseline ISA without reassociating.
#include "ck_internal.h"

#include <math.h>

#define CK_LANES 8

static inline float ck_sum_lanes(const float *l) {
    return ((l[0] + l[1]) + (l[2] + l[3])) + ((l[4] + l[5]) + (l[6] + l[7]));
}

static inline __attribute__((always_inline)) float ck_load_w(ck_dtype t, const uint8_t *row, int c) {
    switch (t) {
    case CK_F16: return ck_fp16_to_f32(ck_load_u16(row + 2 * (size_t)c));
    case CK_BF16: return ck_bf16_to_f32(ck_load_u16(row + 2 * (size_t)c));
    default: {
        float v;
        memcpy(&v, row + 4 * (size_t)c, 4);
        return v;
    }
    }
}

void ck_portable_to_f32(ck_dtype dtype, const void *src, float *dst, size_t n) {
    const uint8_t *s = src;
    switch (dtype) {
    case CK_F32: memmove(dst, src, n * 4); return;
    case CK_F16:
        for (size_t i = 0; i < n; i++) dst[i] = ck_fp16_to_f32(ck_load_u16(s + 2 * i));
        return;
    case CK_BF16:
        for (size_t i = 0; i < n; i++) dst[i] = ck_bf16_to_f32(ck_load_u16(s + 2 * i));
        return;
    case CK_Q8_0:
        for (size_t b = 0; b < n / CK_QK; b++, s += CK_Q8_BLOCK_BYTES) {
            float d = ck_fp16_to_f32(ck_load_u16(s));
            for (int i = 0; i < CK_QK; i++) dst[b * CK_QK + i] = (float)(int8_t)s[2 + i] * d;
        }
        return;
    case CK_Q4_0:
        for (size_t b = 0; b < n / CK_QK; b++, s += CK_Q4_BLOCK_BYTES) {
            float d = ck_fp16_to_f32(ck_load_u16(s));
            for (int i = 0; i < CK_QK / 2; i++) {
                dst[b * CK_QK + i] = (float)((s[2 + i] & 0x0F) - 8) * d;
                dst[b * CK_QK + i + CK_QK / 2] = (float)((s[2 + i] >> 4) - 8) * d;
            }
        }
        return;
    }
}

void ck_portable_quantize_x(const float *x, int cols, int8_t *q, float *d) {
    for (int b = 0; b < cols / CK_QK; b++) {
        const float *v = x + b * CK_QK;
        float amax = 0.0f;
        for (int i = 0; i < CK_QK; i++) amax = fmaxf(amax, fabsf(v[i]));
        float db = amax / 127.0f;
        float id = db != 0.0f ? 1.0f / db : 0.0f;
        d[b] = db;
        for (int i = 0; i < CK_QK; i++) q[b * CK_QK + i] = (int8_t)ck_round_half_away(v[i] * id);
    }
}

// Rows are read from memory once: all tokens' dots with a row run while it sits in L1, each one
// by the same function as a single token's, so the order of every sum is the same for any count.

static void ck_pack_x_portable(const float *x, int ldx, int cols, int ntok, float *xp) {
    for (int c = 0; c < cols; c += CK_LANES)
        for (int i = 0; i < ntok; i++, xp += CK_LANES)
            for (int j = 0; j < CK_LANES && c + j < cols; j++) xp[j] = x[(size_t)i * ldx + c + j];
}

/// dot(W[row, :], X[i, :]) with X packed by pack_x in blocks of CK_LANES (x at token i's first
/// block, blocks `stride` floats apart).
static inline __attribute__((always_inline)) float ck_row_float(ck_dtype t, const uint8_t *row, int cols,
                                                                  const float *x, size_t stride) {
    float lane[CK_LANES] = {0};
    int c = 0;
    for (; c + CK_LANES <= cols; c += CK_LANES, x += stride)
        for (int j = 0; j < CK_LANES; j++) lane[j] += ck_load_w(t, row, c + j) * x[j];
    for (int j = 0; c < cols; c++, j++) lane[j] += ck_load_w(t, row, c) * x[j];
    return ck_sum_lanes(lane);
}

static inline __attribute__((always_inline)) void ck_matvec_float_t(ck_dtype t, const uint8_t *w, size_t row_bytes,
                                                                      int nrows, int cols, const float *xp, int ntok,
                                                                      float *y, int ldy, int accumulate) {
    const size_t stride = (size_t)ntok * CK_LANES;
    for (int r = 0; r < nrows; r++) {
        const uint8_t *row = w + (size_t)r * row_bytes;
        for (int i = 0; i < ntok; i++) {
            float s = ck_row_float(t, row, cols, xp + (size_t)i * CK_LANES, stride);
            float *o = y + (size_t)i * ldy + r;
            *o = accumulate ? *o + s : s;
        }
    }
}

static void ck_matvec_float(ck_dtype t, const uint8_t *w, size_t row_bytes, int nrows, int cols, const float *xp,
                            int ntok, float *y, int ldy, int accumulate) {
    switch (t) {
    case CK_F16: ck_matvec_float_t(CK_F16, w, row_bytes, nrows, cols, xp, ntok, y, ldy, accumulate); break;
    case CK_BF16: ck_matvec_float_t(CK_BF16, w, row_bytes, nrows, cols, xp, ntok, y, ldy, accumulate); break;
    default: ck_matvec_float_t(CK_F32, w, row_bytes, nrows, cols, xp, ntok, y, ldy, accumulate); break;
    }
}

static float ck_row_quant(ck_dtype t, const uint8_t *blk, int cols, const int8_t *q, const float *d) {
    const size_t bs = t == CK_Q8_0 ? CK_Q8_BLOCK_BYTES : CK_Q4_BLOCK_BYTES;
    float acc = 0.0f;
    for (int b = 0; b < cols / CK_QK; b++, blk += bs) {
        const int8_t *xb = q + b * CK_QK;
        int s = 0;
        if (t == CK_Q8_0) {
            for (int i = 0; i < CK_QK; i++) s += (int8_t)blk[2 + i] * xb[i];
        } else {
            for (int i = 0; i < CK_QK / 2; i++)
                s += ((blk[2 + i] & 0x0F) - 8) * xb[i] + ((blk[2 + i] >> 4) - 8) * xb[i + CK_QK / 2];
        }
        acc += (ck_fp16_to_f32(ck_load_u16(blk)) * d[b]) * (float)s;
    }
    return acc;
}

static void ck_matvec_quant(ck_dtype t, const uint8_t *w, size_t row_bytes, int nrows, int cols, const ck_xq *xq,
                            float *y, int ldy, int accumulate) {
    for (int r = 0; r < nrows; r++) {
        const uint8_t *row = w + (size_t)r * row_bytes;
        for (int i = 0; i < xq->ntok; i++) {
            float s = ck_row_quant(t, row, cols, xq->q + (size_t)i * cols, xq->d + (size_t)i * (cols / CK_QK));
            float *o = y + (size_t)i * ldy + r;
            *o = accumulate ? *o + s : s;
        }
    }
}

#define CK_PORTABLE_MR 4
#define CK_PORTABLE_NR 4

static void ck_gemm_tile(int kc, const float *const *x, const float *const *w, float *tile) {
    float acc[CK_PORTABLE_MR][CK_PORTABLE_NR][4] = {{{0}}};
    int k = 0;
    for (; k + 4 <= kc; k += 4)
        for (int t = 0; t < CK_PORTABLE_MR; t++)
            for (int r = 0; r < CK_PORTABLE_NR; r++)
                for (int j = 0; j < 4; j++) acc[t][r][j] += x[t][k + j] * w[r][k + j];
    for (int j = 0; k < kc; k++, j++)
        for (int t = 0; t < CK_PORTABLE_MR; t++)
            for (int r = 0; r < CK_PORTABLE_NR; r++) acc[t][r][j] += x[t][k] * w[r][k];
    for (int t = 0; t < CK_PORTABLE_MR; t++)
        for (int r = 0; r < CK_PORTABLE_NR; r++)
            tile[t * CK_PORTABLE_NR + r] = (acc[t][r][0] + acc[t][r][1]) + (acc[t][r][2] + acc[t][r][3]);
}

static float ck_dot_portable(const float *x, const float *y, int n) {
    float lane[CK_LANES] = {0};
    int i = 0;
    for (; i + CK_LANES <= n; i += CK_LANES)
        for (int j = 0; j < CK_LANES; j++) lane[j] += x[i + j] * y[i + j];
    for (int j = 0; i < n; i++, j++) lane[j] += x[i] * y[i];
    return ck_sum_lanes(lane);
}

static void ck_axpy_portable(float a, const float *x, float *y, int n) {
    for (int i = 0; i < n; i++) y[i] += a * x[i];
}

static float ck_sum_squares_portable(const float *x, int n) { return ck_dot_portable(x, x, n); }

static void ck_scale_mul_portable(const float *x, float s, const float *w, float *out, int n) {
    if (w)
        for (int i = 0; i < n; i++) out[i] = (x[i] * s) * w[i];
    else
        for (int i = 0; i < n; i++) out[i] = x[i] * s;
}

static void ck_softmax_portable(float *x, int n) {
    if (n <= 0) return;
    float m = x[0];
    for (int i = 1; i < n; i++) m = x[i] > m ? x[i] : m;
    float lane[CK_LANES] = {0};
    int i = 0;
    for (; i + CK_LANES <= n; i += CK_LANES)
        for (int j = 0; j < CK_LANES; j++) lane[j] += (x[i + j] = expf(x[i + j] - m));
    for (int j = 0; i < n; i++, j++) lane[j] += (x[i] = expf(x[i] - m));
    float inv = 1.0f / ck_sum_lanes(lane);
    for (i = 0; i < n; i++) x[i] *= inv;
}

static void ck_swiglu_portable(float *gate, const float *up, int n) {
    for (int i = 0; i < n; i++) gate[i] = gate[i] / (1.0f + expf(-gate[i])) * up[i];
}

static float ck_read_sum_portable(const void *p, size_t bytes) {
    const uint64_t *w = p;
    uint64_t s[4] = {0};
    size_t n = bytes / 8, i = 0;
    for (; i + 4 <= n; i += 4)
        for (int j = 0; j < 4; j++) s[j] += w[i + j];
    return (float)(s[0] + s[1] + s[2] + s[3]);
}

static double ck_fma_burn_portable(long iters, float *sink) {
    float a[8] = {1, 1, 1, 1, 1, 1, 1, 1};
    const float m = 0.999999f, c = 1e-7f;
    for (long i = 0; i < iters; i++)
        for (int j = 0; j < 8; j++) a[j] = a[j] * m + c;
    *sink = ck_sum_lanes(a);
    return (double)iters * 8 * 2;
}

const ck_kernels ck_kernels_portable = {
    .isa = CK_ISA_PORTABLE,
    .extensions = 0,
    .matvec_float = ck_matvec_float,
    .x_lanes = CK_LANES,
    .pack_x = ck_pack_x_portable,
    .matvec_quant = ck_matvec_quant,
    .quantize_x = ck_portable_quantize_x,
    .gemm_mr = CK_PORTABLE_MR,
    .gemm_nr = CK_PORTABLE_NR,
    .gemm_tile = ck_gemm_tile,
    .to_f32 = ck_portable_to_f32,
    .dot = ck_dot_portable,
    .axpy = ck_axpy_portable,
    .sum_squares = ck_sum_squares_portable,
    .scale_mul = ck_scale_mul_portable,
    .softmax = ck_softmax_portable,
    .swiglu = ck_swiglu_portable,
    .read_sum = ck_read_sum_portable,
    .fma_burn = ck_fma_burn_portable,
};
