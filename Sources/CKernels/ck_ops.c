// Conversions and the small vector ops of a transformer block, dispatched to the active ISA.
#include "ck_internal.h"

#include <math.h>

void ck_to_f32(ck_dtype dtype, const void *src, float *dst, size_t n) {
    ck_kernels_active()->to_f32(dtype, src, dst, n);
}

/// GGML's quantize_row_q8_0_ref: d = amax / 127, q = roundf(x / d) (computed as x * (1 / d)).
static void ck_quantize_q8_0(const float *x, uint8_t *dst, size_t n) {
    for (size_t b = 0; b < n / CK_QK; b++, x += CK_QK, dst += CK_Q8_BLOCK_BYTES) {
        float amax = 0.0f;
        for (int i = 0; i < CK_QK; i++) amax = fmaxf(amax, fabsf(x[i]));
        const float d = amax / 127.0f;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        uint16_t dh = ck_f32_to_fp16(d);
        memcpy(dst, &dh, 2);
        for (int i = 0; i < CK_QK; i++) dst[2 + i] = (uint8_t)(int8_t)ck_round_half_away(x[i] * id);
    }
}

/// GGML's quantize_row_q4_0_ref: d = max / -8 where max is the value of largest magnitude (sign
/// kept, first one on ties), q = min(15, (int8)(x / d + 8.5)); weight i in the low nibble of byte
/// i, weight i + 16 in the high nibble.
static void ck_quantize_q4_0(const float *x, uint8_t *dst, size_t n) {
    for (size_t b = 0; b < n / CK_QK; b++, x += CK_QK, dst += CK_Q4_BLOCK_BYTES) {
        float amax = 0.0f, max = 0.0f;
        for (int i = 0; i < CK_QK; i++) {
            if (amax < fabsf(x[i])) {
                amax = fabsf(x[i]);
                max = x[i];
            }
        }
        const float d = max / -8.0f;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        uint16_t dh = ck_f32_to_fp16(d);
        memcpy(dst, &dh, 2);
        for (int i = 0; i < CK_QK / 2; i++) {
#if defined(__clang__)
#pragma clang fp contract(off) // x * id + 8.5 rounds twice, as written in GGML, even where FMA is baseline
#endif
            int8_t q0 = (int8_t)(x[i] * id + 8.5f), q1 = (int8_t)(x[i + CK_QK / 2] * id + 8.5f);
            uint8_t lo = (uint8_t)(q0 < 15 ? q0 : 15), hi = (uint8_t)(q1 < 15 ? q1 : 15);
            dst[2 + i] = (uint8_t)(lo | (hi << 4));
        }
    }
}

void ck_from_f32(ck_dtype dtype, const float *src, void *dst, size_t n) {
    uint8_t *d = dst;
    switch (dtype) {
    case CK_F32: memmove(dst, src, n * 4); return;
    case CK_F16:
        for (size_t i = 0; i < n; i++) {
            uint16_t h = ck_f32_to_fp16(src[i]);
            memcpy(d + 2 * i, &h, 2);
        }
        return;
    case CK_BF16:
        for (size_t i = 0; i < n; i++) {
            uint16_t h = ck_f32_to_bf16(src[i]);
            memcpy(d + 2 * i, &h, 2);
        }
        return;
    case CK_Q8_0: ck_quantize_q8_0(src, d, n); return;
    case CK_Q4_0: ck_quantize_q4_0(src, d, n); return;
    }
}

/// Like PyTorch's LlamaRMSNorm in f32: variance = mean(x^2) (f32 sum), x * rsqrt(variance + eps),
/// then times weight.
void ck_rmsnorm(const float *x, const float *weight, float eps, float *out, int n) {
    if (n <= 0) return;
    const ck_kernels *k = ck_kernels_active();
    float mean = k->sum_squares(x, n) / (float)n;
    float scale = 1.0f / sqrtf(mean + eps);
    k->scale_mul(x, scale, weight, out, n);
}

void ck_softmax(float *x, int n) { ck_kernels_active()->softmax(x, n); }
void ck_swiglu(float *gate, const float *up, int n) { ck_kernels_active()->swiglu(gate, up, n); }
void ck_axpy(float a, const float *x, float *y, int n) { ck_kernels_active()->axpy(a, x, y, n); }
float ck_dot(const float *x, const float *y, int n) { return ck_kernels_active()->dot(x, y, n); }
