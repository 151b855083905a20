// Machine limits the benchmarks compare against: streaming read bandwidth and f32 FMA peak, both
// measured with the active ISA's widest vectors and every pool thread.
#include "ck_internal.h"

#include <stdlib.h>
#include <sys/mman.h>

typedef struct {
    const ck_kernels *k;
    const uint8_t *buf;
    size_t part;     // bytes per task, multiple of 256
    float sink[256]; // one slot per task keeps the sums observable
} ck_read_job;

static void ck_read_task(void *ctx, int task, int ntasks) {
    ck_read_job *j = ctx;
    j->sink[task % 256] = j->k->read_sum(j->buf + (size_t)task * j->part, j->part);
    (void)ntasks;
}

typedef struct {
    uint8_t *buf;
    size_t part;
} ck_fill_job;

static void ck_fill_task(void *ctx, int task, int ntasks) {
    ck_fill_job *j = ctx;
    (void)ntasks;
    memset(j->buf + (size_t)task * j->part, 0, j->part); // first touch by the thread that reads it
}

double ck_probe_read_bandwidth(ck_pool *pool, size_t bytes, int repeats) {
    int n = ck_pool_threads(pool);
    if (n > 256) n = 256;
    size_t part = bytes / (size_t)n / 256 * 256;
    if (part == 0 || repeats < 1) return 0;
    // 2 MB pages where the kernel grants them (THP "madvise" mode): checkpoints are mapped with
    // MADV_HUGEPAGE too, and 4 KB pages would measure TLB misses, not memory.
    const size_t total = part * (size_t)n, huge = (size_t)2 << 20, mapped = (total + huge - 1) / huge * huge;
    uint8_t *buf = aligned_alloc(huge, mapped);
    if (!buf) return 0;
#ifdef MADV_HUGEPAGE
    madvise(buf, mapped, MADV_HUGEPAGE);
#endif
    ck_fill_job fill = {buf, part};
    ck_pool_run(pool, ck_fill_task, &fill, n);
    ck_read_job job = {ck_kernels_active(), buf, part, {0}};
    ck_pool_run(pool, ck_read_task, &job, n); // warm up threads and TLBs
    double best = 1e30;
    for (int r = 0; r < repeats; r++) {
        double t0 = ck_now();
        ck_pool_run(pool, ck_read_task, &job, n);
        double t = ck_now() - t0;
        if (t < best) best = t;
    }
    free(buf);
    return (double)total / best;
}

typedef struct {
    const ck_kernels *k;
    long iters;
    double flops[256];
    float sink[256];
} ck_fma_job;

static void ck_fma_task(void *ctx, int task, int ntasks) {
    ck_fma_job *j = ctx;
    (void)ntasks;
    j->flops[task] = j->k->fma_burn(j->iters, &j->sink[task]);
}

double ck_probe_fma_peak(ck_pool *pool, double seconds) {
    int n = ck_pool_threads(pool);
    if (n > 256) n = 256;
    ck_fma_job job = {ck_kernels_active(), 1000, {0}, {0}};
    // Calibrate iterations so one pass takes about a third of the budget; keep the best of three.
    for (;;) {
        double t0 = ck_now();
        ck_pool_run(pool, ck_fma_task, &job, n);
        double t = ck_now() - t0;
        if (t > 0.01 || job.iters > (1L << 40)) {
            double scale = (seconds / 3) / t;
            if (scale > 1) job.iters = (long)(job.iters * scale);
            break;
        }
        job.iters *= 4;
    }
    double best = 0;
    for (int r = 0; r < 3; r++) {
        double t0 = ck_now();
        ck_pool_run(pool, ck_fma_task, &job, n);
        double t = ck_now() - t0, flops = 0;
        for (int i = 0; i < n; i++) flops += job.flops[i];
        if (flops / t > best) best = flops / t;
    }
    return best;
}
