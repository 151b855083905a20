// ck_linear_run: splits the rows of all ops of one call across the pool and runs the per-ISA
// kernels on them.
//
// Decode, one token or a few (batched decode of several sequences), is bound by memory bandwidth:
// the matrix-vector path reads each weight row once and dots it with every token. The rows of all
// ops are laid end to end, weighted by their bytes, and cut into equal byte ranges, so each thread
// streams the same amount whatever the mix of shapes and dtypes. Activations are prepared once per
// call (per distinct x): packed token-interleaved for float weights, quantized to int8 blocks for
// q8_0/q4_0 so the inner loop is an integer dot product.
//
// More tokens (prefill) run a GEMM, Y[T, R] = X[T, C] * W[R, C]^T, bound by FMA throughput: tasks
// own ranges of weight rows; inside one, a weight sliver of NR rows x KC columns (converted to f32
// unless it is f32 already) stays in L1 while MR-token tiles of X stream past it from L2.
//
// Every output element is computed by exactly one task with a summation order fixed by the kernel
// and the block sizes, so results do not depend on the thread count or on scheduling.
#include "ck_internal.h"

#include <stdlib.h>

/// Matrix-vector task boundaries fall on multiples of this many rows (no task is a sliver).
#define CK_MV_ALIGN 4
/// Token counts up to these take the matrix-vector path (each weight row streamed once for all
/// tokens); larger ones the GEMM. Measured on Zen 5 (2 threads, TinyLlama shapes): the f32 GEMM
/// reads its weights directly and ties with the matrix-vector path at 8-12 tokens; GEMMs of the
/// other types convert every weight strip first and are still 1.3x (bf16) to 2x (q8_0) slower at
/// 16 tokens.
#ifndef CK_MV_MAX_TOKENS
#define CK_MV_MAX_TOKENS 16
#endif
#ifndef CK_MV_MAX_TOKENS_F32
#define CK_MV_MAX_TOKENS_F32 8
#endif
/// Tasks per pool thread: a few let the atomic task counter even out threads that start late.
#define CK_MV_TASKS_PER_THREAD 4

/// GEMM blocking (f32 elements): KC columns of a weight sliver (NR x KC x 4 bytes, 24 KB, in L1),
/// MC tokens of X reused across all slivers of a task (MC x KC x 4 bytes, 512 KB, in L2). Each
/// tile reduces its accumulators once per KC, so KC trades that cost against cache fit; 1024 beat
/// 512 and 2048 by 10-15% on Zen 5.
#ifndef CK_GEMM_KC
#define CK_GEMM_KC 1024
#endif
#ifndef CK_GEMM_MC
#define CK_GEMM_MC 128
#endif

typedef struct {
    const ck_kernels *k;
    const ck_linear *ops;
    int nops;
    int tokens;
    const ck_xq *xq;        // [nops], for block types
    const float *const *xp; // [nops], packed x for float types
    const uint64_t *prefix; // [nops + 1] byte offsets of each op in the concatenated rows
    int ntasks;
} ck_mv_job;

/// First row of `op` at or after byte offset `b` of the concatenated rows, rounded to the group.
static int ck_mv_row_at(const ck_mv_job *j, int op, uint64_t b) {
    const ck_linear *o = &j->ops[op];
    if (b <= j->prefix[op]) return 0;
    if (b >= j->prefix[op + 1]) return o->rows;
    uint64_t rb = ck_dtype_row_bytes(o->wtype, (size_t)o->cols);
    uint64_t r = (b - j->prefix[op] + rb - 1) / rb;
    r = (r + CK_MV_ALIGN - 1) / CK_MV_ALIGN * CK_MV_ALIGN;
    return r > (uint64_t)o->rows ? o->rows : (int)r;
}

static void ck_mv_task(void *ctx, int task, int ntasks) {
    const ck_mv_job *j = ctx;
    uint64_t total = j->prefix[j->nops];
    uint64_t b0 = total * (uint64_t)task / (uint64_t)ntasks, b1 = total * (uint64_t)(task + 1) / (uint64_t)ntasks;
    for (int op = 0; op < j->nops; op++) {
        if (j->prefix[op + 1] <= b0 || j->prefix[op] >= b1) continue;
        int r0 = ck_mv_row_at(j, op, b0), r1 = ck_mv_row_at(j, op, b1);
        if (r1 <= r0) continue;
        const ck_linear *o = &j->ops[op];
        const uint8_t *w = (const uint8_t *)o->w + (size_t)r0 * o->row_bytes;
        if (o->wtype == CK_Q8_0 || o->wtype == CK_Q4_0)
            j->k->matvec_quant(o->wtype, w, o->row_bytes, r1 - r0, o->cols, &j->xq[op], o->y + r0, o->ldy, o->accumulate);
        else
            j->k->matvec_float(o->wtype, w, o->row_bytes, r1 - r0, o->cols, j->xp[op], j->tokens, o->y + r0, o->ldy,
                               o->accumulate);
    }
}

static int ck_is_block(ck_dtype t) { return t == CK_Q8_0 || t == CK_Q4_0; }

static size_t ck_round64(size_t n) { return (n + 63) / 64 * 64; }

/// Do two ops read the same activation rows?
static int ck_same_rows(const ck_linear *a, const ck_linear *b, int tokens) {
    return a->x == b->x && a->cols == b->cols && (tokens == 1 || a->ldx == b->ldx);
}

static void ck_linear_matvec(ck_pool *pool, const ck_kernels *k, const ck_linear *ops, int nops, int tokens) {
    // Scratch layout: prefix[nops + 1], xq[nops], xp[nops], then quantized activations with their
    // per-ISA aux tables, and packed float activations.
    size_t head = ck_round64((sizeof(uint64_t) + sizeof(ck_xq) + sizeof(float *)) * (size_t)(nops + 1));
    size_t need = head;
    for (int i = 0; i < nops; i++) {
        if (!ck_is_block(ops[i].wtype)) {
            if (tokens > 1) need += ck_round64(sizeof(float) * ck_packed_x_floats(ops[i].cols, tokens, k->x_lanes));
            continue;
        }
        need += ck_round64((size_t)tokens * (size_t)ops[i].cols) + ck_round64((size_t)tokens * (size_t)ops[i].cols / CK_QK * 4);
        if (k->xq_aux_bytes) need += ck_round64(k->xq_aux_bytes(ops[i].wtype, ops[i].cols, tokens));
    }
    uint8_t *mem = ck_scratch(CK_SCRATCH_XQ, need);
    uint64_t *prefix = (uint64_t *)mem;
    ck_xq *xq = (ck_xq *)(prefix + nops + 1);
    const float **xp = (const float **)(xq + nops + 1);
    uint8_t *free_at = mem + head;

    uint64_t total = 0;
    int rows = 0;
    for (int i = 0; i < nops; i++) {
        prefix[i] = total;
        total += (uint64_t)ck_dtype_row_bytes(ops[i].wtype, (size_t)ops[i].cols) * (uint64_t)ops[i].rows;
        rows += ops[i].rows;
        xq[i] = (ck_xq){NULL, NULL, tokens, NULL};
        xp[i] = NULL;
        // q/k/v and gate/up share their input: pack or quantize it once, and build aux tables
        // once per weight dtype.
        int same_x = -1, same_all = -1;
        for (int e = 0; e < i; e++) {
            if (ck_is_block(ops[e].wtype) != ck_is_block(ops[i].wtype) || !ck_same_rows(&ops[e], &ops[i], tokens)) continue;
            same_x = e;
            if (ops[e].wtype == ops[i].wtype) same_all = e;
        }
        if (!ck_is_block(ops[i].wtype)) {
            if (tokens == 1) {
                xp[i] = ops[i].x;
            } else if (same_x >= 0) {
                xp[i] = xp[same_x];
            } else {
                float *p = (float *)free_at;
                free_at += ck_round64(sizeof(float) * ck_packed_x_floats(ops[i].cols, tokens, k->x_lanes));
                k->pack_x(ops[i].x, ops[i].ldx, ops[i].cols, tokens, p);
                xp[i] = p;
            }
            continue;
        }
        if (same_all >= 0) {
            xq[i] = xq[same_all];
            continue;
        }
        const int cols = ops[i].cols, nb = cols / CK_QK;
        if (same_x >= 0) {
            xq[i].q = xq[same_x].q;
            xq[i].d = xq[same_x].d;
        } else {
            xq[i].q = (int8_t *)free_at;
            free_at += ck_round64((size_t)tokens * (size_t)cols);
            xq[i].d = (float *)free_at;
            free_at += ck_round64((size_t)tokens * (size_t)nb * 4);
            for (int t = 0; t < tokens; t++)
                k->quantize_x(ops[i].x + (size_t)t * ops[i].ldx, cols, xq[i].q + (size_t)t * cols, xq[i].d + (size_t)t * nb);
        }
        if (k->xq_aux_prepare) {
            xq[i].aux = free_at;
            free_at += ck_round64(k->xq_aux_bytes(ops[i].wtype, cols, tokens));
            k->xq_aux_prepare(ops[i].wtype, cols, &xq[i], xq[i].aux);
        }
    }
    prefix[nops] = total;
    if (total == 0) return;

    int threads = ck_pool_threads(pool);
    int ntasks = threads == 1 ? 1 : threads * CK_MV_TASKS_PER_THREAD;
    int max_tasks = rows / CK_MV_ALIGN > 1 ? rows / CK_MV_ALIGN : 1;
    if (ntasks > max_tasks) ntasks = max_tasks;
    ck_mv_job job = {k, ops, nops, tokens, xq, xp, prefix, ntasks};
    ck_pool_run(pool, ck_mv_task, &job, ntasks);
}

// ---------------------------------------------------------------------------------------------
// GEMM
// ---------------------------------------------------------------------------------------------

typedef struct {
    int op, r0, r1;
} ck_gemm_range;

typedef struct {
    const ck_kernels *k;
    const ck_linear *ops;
    const ck_gemm_range *ranges;
    int tokens;
} ck_gemm_job;

enum { CK_GEMM_MAX_MR = 8, CK_GEMM_MAX_NR = 8 };

static void ck_gemm_range_run(const ck_kernels *k, const ck_linear *o, int r0, int r1, int tokens) {
    const int MR = k->gemm_mr, NR = k->gemm_nr;
    const int direct = o->wtype == CK_F32 && o->row_bytes % sizeof(float) == 0;
    float *pack = direct ? NULL : ck_scratch(CK_SCRATCH_GEMM, sizeof(float) * (size_t)NR * CK_GEMM_KC);
    float tile[CK_GEMM_MAX_MR * CK_GEMM_MAX_NR];
    const float *xp[CK_GEMM_MAX_MR], *wp[CK_GEMM_MAX_NR];
    const uint8_t *w = o->w;

    for (int ic = 0; ic < tokens; ic += CK_GEMM_MC) {
        int mc = tokens - ic < CK_GEMM_MC ? tokens - ic : CK_GEMM_MC;
        for (int pc = 0; pc < o->cols; pc += CK_GEMM_KC) {
            int kc = o->cols - pc < CK_GEMM_KC ? o->cols - pc : CK_GEMM_KC;
            size_t col_off = ck_dtype_row_bytes(o->wtype, (size_t)pc);
            int first = pc == 0 && !o->accumulate;
            for (int jr = r0; jr < r1; jr += NR) {
                int nr = r1 - jr < NR ? r1 - jr : NR;
                for (int r = 0; r < NR; r++) {
                    int rr = r < nr ? r : nr - 1; // edge: repeat the last row, results dropped
                    const uint8_t *row = w + (size_t)(jr + rr) * o->row_bytes + col_off;
                    if (direct) {
                        wp[r] = (const float *)row;
                    } else {
                        if (r < nr) k->to_f32(o->wtype, row, pack + (size_t)r * CK_GEMM_KC, (size_t)kc);
                        wp[r] = pack + (size_t)rr * CK_GEMM_KC;
                    }
                }
                for (int ir = 0; ir < mc; ir += MR) {
                    int m = mc - ir < MR ? mc - ir : MR;
                    for (int t = 0; t < MR; t++) xp[t] = o->x + (size_t)(ic + ir + (t < m ? t : m - 1)) * o->ldx + pc;
                    k->gemm_tile(kc, xp, wp, tile);
                    for (int t = 0; t < m; t++) {
                        float *y = o->y + (size_t)(ic + ir + t) * o->ldy + jr;
                        const float *v = tile + t * NR;
                        if (first)
                            for (int r = 0; r < nr; r++) y[r] = v[r];
                        else
                            for (int r = 0; r < nr; r++) y[r] += v[r];
                    }
                }
            }
        }
    }
}

static void ck_gemm_task(void *ctx, int task, int ntasks) {
    (void)ntasks;
    const ck_gemm_job *j = ctx;
    const ck_gemm_range *g = &j->ranges[task];
    ck_gemm_range_run(j->k, &j->ops[g->op], g->r0, g->r1, j->tokens);
}

static void ck_linear_gemm(ck_pool *pool, const ck_kernels *k, const ck_linear *ops, int nops, int tokens) {
    // Cut each op's rows into ranges of about total_work / (threads * 4) flops, in whole
    // micro-tiles of NR rows.
    int threads = ck_pool_threads(pool);
    double total = 0;
    for (int i = 0; i < nops; i++) total += (double)ops[i].rows * ops[i].cols;
    if (total <= 0) return;
    double per_task = total / (threads * 4);
    int count = 0;
    int cap = 0;
    for (int i = 0; i < nops; i++) {
        double op_work = (double)ops[i].rows * ops[i].cols;
        cap += (int)(op_work / per_task) + 2;
    }
    ck_gemm_range *ranges = malloc(sizeof(ck_gemm_range) * (size_t)cap);
    if (!ranges) abort();
    for (int i = 0; i < nops; i++) {
        if (ops[i].rows <= 0 || ops[i].cols <= 0) continue;
        int step = (int)(per_task / ops[i].cols);
        step = (step + k->gemm_nr - 1) / k->gemm_nr * k->gemm_nr;
        if (step < k->gemm_nr) step = k->gemm_nr;
        for (int r = 0; r < ops[i].rows; r += step) {
            if (count == cap) {
                cap *= 2;
                ranges = realloc(ranges, sizeof(ck_gemm_range) * (size_t)cap);
                if (!ranges) abort();
            }
            ranges[count++] = (ck_gemm_range){i, r, r + step < ops[i].rows ? r + step : ops[i].rows};
        }
    }
    ck_gemm_job job = {k, ops, ranges, tokens};
    ck_pool_run(pool, ck_gemm_task, &job, count);
    free(ranges);
}

void ck_linear_run(ck_pool *pool, const ck_linear *ops, int nops, int tokens) {
    if (nops <= 0 || tokens <= 0) return;
    for (int i = 0; i < nops; i++) // an empty sum: Y = 0 (or Y unchanged); no task would touch it
        if (ops[i].cols <= 0 && !ops[i].accumulate)
            for (int t = 0; t < tokens; t++) memset(ops[i].y + (size_t)t * ops[i].ldy, 0, sizeof(float) * (size_t)ops[i].rows);
    const ck_kernels *k = ck_kernels_active();
    int matvec = 0;
    for (int i = 0; i < nops; i++) matvec += tokens <= ck_linear_matvec_max_tokens(ops[i].wtype);
    if (matvec == nops) {
        ck_linear_matvec(pool, k, ops, nops, tokens);
    } else if (matvec == 0) {
        ck_linear_gemm(pool, k, ops, nops, tokens);
    } else { // dtypes on both sides of their limits: one region per path
        ck_linear *split = malloc(sizeof(ck_linear) * (size_t)nops);
        if (!split) abort();
        int m = 0, g = matvec;
        for (int i = 0; i < nops; i++) split[tokens <= ck_linear_matvec_max_tokens(ops[i].wtype) ? m++ : g++] = ops[i];
        ck_linear_matvec(pool, k, split, matvec, tokens);
        ck_linear_gemm(pool, k, split + matvec, nops - matvec, tokens);
        free(split);
    }
}

int ck_linear_matvec_max_tokens(ck_dtype dtype) { return dtype == CK_F32 ? CK_MV_MAX_TOKENS_F32 : CK_MV_MAX_TOKENS; }
