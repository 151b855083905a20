#include "ck_attention.h"
#include "ckernels.h"

#include <math.h>
#include <string.h>

void ck_rope(float *x, int heads, int head_dim, const float *cos, const float *sin) {
    const int h = head_dim / 2;
    for (int head = 0; head < heads; head++) {
        float *a = x + (size_t)head * head_dim;
        float *b = a + h;
        for (int i = 0; i < h; i++) {
            const float x1 = a[i], x2 = b[i];
            a[i] = x1 * cos[i] - x2 * sin[i];
            b[i] = x2 * cos[i] + x1 * sin[i];
        }
    }
}

void ck_attend(const float *q, int ldq, const float *k, const float *v, int head_dim, int n, int start_pos,
               int window, float scale, float *out, int ldo, float *scores) {
    for (int i = 0; i < n; i++) {
        const float *qi = q + (size_t)i * ldq;
        float *oi = out + (size_t)i * ldo;
        const int len = start_pos + i + 1;          // keys 0 ..< len are visible
        const int lo = (window > 0 && len > window) ? len - window : 0;
        float max = -INFINITY;
        for (int j = lo; j < len; j++) {
            const float s = ck_dot(qi, k + (size_t)j * head_dim, head_dim) * scale;
            scores[j] = s;
            if (s > max) max = s;
        }
        float sum = 0.0f;
        for (int j = lo; j < len; j++) {
            const float e = expf(scores[j] - max);
            scores[j] = e;
            sum += e;
        }
        const float inv = 1.0f / sum;
        memset(oi, 0, sizeof(float) * (size_t)head_dim);
        for (int j = lo; j < len; j++) ck_axpy(scores[j] * inv, v + (size_t)j * head_dim, oi, head_dim);
    }
}
