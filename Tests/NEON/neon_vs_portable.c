// The NEON kernels against the portable ones, built for arm64 and run under qemu-aarch64 by
// Scripts/check-neon.sh (this machine and CI are x86-64, where the NEON path never runs).
//
// Each case runs once with the portable table and once with NEON on the same inputs:
//   - conversions (to_f32) bit-identical;
//   - linear layers (decode matvec up to 16 tokens, batched, strided and accumulating; GEMM
//     above) within 2x the f32 rounding bound sum |w x| * 2^-21 (q8_0/q4_0: both paths quantize
//     x alike and sum exact integer block dots, so the same bound holds);
//   - rmsnorm, softmax, swiglu within a few ulps.
// Exits non-zero, printing the first failures, if any case disagrees.
#include "ckernels.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static uint64_t rng_state = 0x5eed;
static float uniform(void) { // [-1, 1)
    rng_state += 0x9E3779B97F4A7C15ull;
    uint64_t z = rng_state;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    return (float)((double)(z >> 11) / (double)(1ull << 53) * 2 - 1);
}

static int failures = 0, checks = 0;
static void fail(const char *what) {
    if (failures++ < 20) fprintf(stderr, "FAIL %s\n", what);
}

static const char *dtype_name(ck_dtype t) {
    static const char *n[] = {"f32", "f16", "bf16", "q8_0", "q4_0"};
    return n[t];
}

static void run_linear(ck_pool *pool, ck_dtype t, const void *w, size_t row_bytes, int rows, int cols, const float *x,
                       int ldx, float *y, int ldy, int accumulate, int tokens) {
    ck_linear op = {t, w, row_bytes, rows, cols, x, ldx, y, ldy, accumulate};
    ck_linear_run(pool, &op, 1, tokens);
}

static void check_linear(ck_pool *pool, ck_dtype t, int rows, int cols, int extra_cols, int tokens, int accumulate) {
    const int full = cols + extra_cols, off = extra_cols; // view: columns [off, off + cols) of full rows
    float *wf = malloc(sizeof(float) * (size_t)rows * (size_t)full);
    for (size_t i = 0; i < (size_t)rows * (size_t)full; i++) wf[i] = uniform();
    const size_t row_bytes = ck_dtype_row_bytes(t, (size_t)full);
    uint8_t *w = malloc(row_bytes * (size_t)rows);
    for (int r = 0; r < rows; r++) ck_from_f32(t, wf + (size_t)r * full, w + (size_t)r * row_bytes, (size_t)full);
    const int ldx = cols + 3, ldy = rows + 5;
    float *x = malloc(sizeof(float) * (size_t)tokens * ldx);
    for (int i = 0; i < tokens * ldx; i++) x[i] = uniform() * 2;
    float *ya = malloc(sizeof(float) * (size_t)tokens * ldy), *yb = malloc(sizeof(float) * (size_t)tokens * ldy);
    for (int i = 0; i < tokens * ldy; i++) ya[i] = yb[i] = uniform();
    const uint8_t *view = w + ck_dtype_row_bytes(t, (size_t)off);

    ck_set_isa(CK_ISA_PORTABLE);
    run_linear(pool, t, view, row_bytes, rows, cols, x, ldx, ya, ldy, accumulate, tokens);
    ck_set_isa(CK_ISA_NEON);
    run_linear(pool, t, view, row_bytes, rows, cols, x, ldx, yb, ldy, accumulate, tokens);

    // Dequantized weights for the bound.
    float *row = malloc(sizeof(float) * (size_t)full);
    for (int r = 0; r < rows; r++) {
        ck_to_f32(t, w + (size_t)r * row_bytes, row, (size_t)full);
        for (int k = 0; k < tokens; k++) {
            double mag = 0, amax = 0;
            for (int c = 0; c < cols; c++) {
                mag += fabs((double)row[off + c] * x[k * ldx + c]);
                if (fabs(x[k * ldx + c]) > amax) amax = fabs(x[k * ldx + c]);
            }
            const double bound = 2 * mag * ldexp(1.0, -21) + (accumulate ? 4 * ldexp(1.0, -23) : 0) + 1e-6;
            const float a = ya[k * ldy + r], b = yb[k * ldy + r];
            checks++;
            if (!(fabs((double)a - b) <= bound)) {
                char msg[256];
                snprintf(msg, sizeof msg, "linear %s rows %d cols %d (+%d) tokens %d acc %d: row %d token %d: portable %.9g neon %.9g (bound %.3g)",
                         dtype_name(t), rows, cols, extra_cols, tokens, accumulate, r, k, a, b, bound);
                fail(msg);
            }
        }
    }
    // Outputs past `rows` in each y row stay untouched.
    for (int k = 0; k < tokens; k++)
        for (int r = rows; r < ldy; r++)
            if (ya[k * ldy + r] != yb[k * ldy + r]) fail("linear wrote past its rows");
    free(row), free(wf), free(w), free(x), free(ya), free(yb);
}

static void check_conversions(void) {
    for (int t = CK_F32; t <= CK_Q4_0; t++) {
        const size_t n = 32 * 37;
        float *src = malloc(sizeof(float) * n), *a = malloc(sizeof(float) * n), *b = malloc(sizeof(float) * n);
        for (size_t i = 0; i < n; i++) src[i] = uniform() * 3;
        uint8_t *enc = malloc(ck_dtype_row_bytes((ck_dtype)t, n));
        ck_set_isa(CK_ISA_PORTABLE);
        ck_from_f32((ck_dtype)t, src, enc, n);
        ck_to_f32((ck_dtype)t, enc, a, n);
        ck_set_isa(CK_ISA_NEON);
        ck_to_f32((ck_dtype)t, enc, b, n);
        checks++;
        if (memcmp(a, b, sizeof(float) * n) != 0) {
            char msg[64];
            snprintf(msg, sizeof msg, "to_f32 %s differs", dtype_name((ck_dtype)t));
            fail(msg);
        }
        free(src), free(a), free(b), free(enc);
    }
}

static void check_vector_ops(void) {
    for (int n = 1; n <= 300; n += 37) {
        float *x = malloc(sizeof(float) * n), *g = malloc(sizeof(float) * n), *u = malloc(sizeof(float) * n);
        float *a = malloc(sizeof(float) * n), *b = malloc(sizeof(float) * n);
        for (int i = 0; i < n; i++) x[i] = uniform() * 8, g[i] = uniform() * 6, u[i] = uniform();
        char msg[96];
        ck_set_isa(CK_ISA_PORTABLE);
        ck_rmsnorm(x, g, 1e-5f, a, n);
        ck_set_isa(CK_ISA_NEON);
        ck_rmsnorm(x, g, 1e-5f, b, n);
        for (int i = 0; i < n; i++, checks++)
            if (fabsf(a[i] - b[i]) > 4e-6f * (fabsf(a[i]) + 1)) { snprintf(msg, sizeof msg, "rmsnorm n %d [%d]: %g vs %g", n, i, a[i], b[i]); fail(msg); }
        memcpy(a, x, sizeof(float) * n), memcpy(b, x, sizeof(float) * n);
        ck_set_isa(CK_ISA_PORTABLE);
        ck_softmax(a, n);
        ck_set_isa(CK_ISA_NEON);
        ck_softmax(b, n);
        for (int i = 0; i < n; i++, checks++)
            if (fabsf(a[i] - b[i]) > 4e-6f * a[i] + 1e-9f) { snprintf(msg, sizeof msg, "softmax n %d [%d]: %g vs %g", n, i, a[i], b[i]); fail(msg); }
        memcpy(a, g, sizeof(float) * n), memcpy(b, g, sizeof(float) * n);
        ck_set_isa(CK_ISA_PORTABLE);
        ck_swiglu(a, u, n);
        ck_set_isa(CK_ISA_NEON);
        ck_swiglu(b, u, n);
        for (int i = 0; i < n; i++, checks++)
            if (fabsf(a[i] - b[i]) > 4e-6f * (fabsf(a[i]) + 1e-3f)) { snprintf(msg, sizeof msg, "swiglu n %d [%d]: %g vs %g", n, i, a[i], b[i]); fail(msg); }
        free(x), free(g), free(u), free(a), free(b);
    }
}

int main(void) {
    if (ck_set_isa(CK_ISA_NEON) != 0) {
        fprintf(stderr, "this CPU has no NEON path\n");
        return 2;
    }
    ck_pool *pool = ck_pool_create(2);
    check_conversions();
    check_vector_ops();
    static const struct { int rows, cols, extra, acc; } shapes[] = {
        {1, 32, 0, 0}, {3, 64, 32, 1}, {17, 96, 0, 0}, {67, 544, 64, 1}, {9, 8192, 32, 0}, {41, 2048, 96, 0}, {130, 256, 0, 1}};
    static const int tokens[] = {1, 2, 3, 5, 8, 9, 16, 17, 40};
    for (int t = CK_F32; t <= CK_Q4_0; t++)
        for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
            for (size_t k = 0; k < sizeof tokens / sizeof tokens[0]; k++)
                check_linear(pool, (ck_dtype)t, shapes[s].rows, shapes[s].cols, shapes[s].extra, tokens[k], shapes[s].acc);
    ck_pool_destroy(pool);
    printf("neon vs portable: %d checks, %d failures\n", checks, failures);
    return failures ? 1 : 0;
}
