// Thread pool for the kernels: persistent workers, the caller works as one of them.
//
// Decode calls ck_pool_run a few hundred times per token, each run lasting tens of microseconds,
// so waking a sleeping thread (a futex round trip, ~5-50 us) on every run would cost more than the
// work. Workers therefore spin for a while after each run (SHOAL_POOL_SPIN_US, default 300 us)
// watching for the next one, and only then sleep on a condition variable.
//
// Claiming work: one 64-bit word holds {generation:24, ntasks:20, next:20}. A worker claims task
// `next` with a compare-and-swap that also checks the generation, so a worker that wakes late can
// never take a task of a newer run with stale arguments. The caller waits for the count of
// finished tasks, not for the workers: a worker that is still asleep when the caller has done all
// the tasks itself costs nothing.
#include "ck_internal.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <time.h>

#if CK_X86
#include <immintrin.h>
#define CK_PAUSE() _mm_pause()
#elif defined(__aarch64__)
#define CK_PAUSE() __asm__ volatile("yield")
#else
#define CK_PAUSE() ((void)0)
#endif

#define CK_TASK_BITS 20
#define CK_TASK_MAX ((1 << CK_TASK_BITS) - 1)
#define CK_GEN_MASK 0xFFFFFFu

static inline uint64_t ck_job_pack(uint32_t gen, uint32_t ntasks, uint32_t next) {
    return ((uint64_t)(gen & CK_GEN_MASK) << 40) | ((uint64_t)ntasks << 20) | next;
}
static inline uint32_t ck_job_gen(uint64_t j) { return (uint32_t)(j >> 40); }
static inline uint32_t ck_job_ntasks(uint64_t j) { return (uint32_t)(j >> 20) & CK_TASK_MAX; }
static inline uint32_t ck_job_next(uint64_t j) { return (uint32_t)j & CK_TASK_MAX; }

struct ck_pool {
    int nthreads;
    pthread_mutex_t run_mu; // serializes runs from different caller threads
    pthread_t *threads;
    double spin_seconds;

    _Alignas(64) _Atomic uint64_t job;
    ck_task_fn fn; // valid while a task of the current generation is unfinished
    void *ctx;
    const ck_kernels *kernels; // the caller's thread override (ck_set_thread_isa), or NULL

    _Alignas(64) _Atomic int done;

    _Alignas(64) _Atomic int sleepers;
    _Atomic int stop;
    pthread_mutex_t mu;
    pthread_cond_t cv;
};

double ck_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/// Claims and runs tasks of generation `gen` until none are left.
static void ck_pool_work(ck_pool *p, uint32_t gen) {
    uint64_t j = atomic_load_explicit(&p->job, memory_order_acquire);
    for (;;) {
        if (ck_job_gen(j) != gen) return;
        uint32_t n = ck_job_ntasks(j), next = ck_job_next(j);
        if (next >= n) return;
        uint64_t claimed = ck_job_pack(gen, n, next + 1);
        if (!atomic_compare_exchange_weak_explicit(&p->job, &j, claimed, memory_order_acq_rel,
                                                   memory_order_acquire))
            continue;
        const ck_kernels *own = ck_thread_kernels;
        ck_thread_kernels = p->kernels;
        p->fn(p->ctx, (int)next, (int)n);
        ck_thread_kernels = own;
        atomic_fetch_add_explicit(&p->done, 1, memory_order_release);
        j = claimed;
    }
}

/// The pool whose task the current thread is running, so a nested run can go inline.
static _Thread_local ck_pool *ck_current_pool = NULL;

static void *ck_pool_worker(void *arg) {
    ck_pool *p = arg;
    ck_current_pool = p;
    uint32_t seen = ck_job_gen(atomic_load(&p->job));
    for (;;) {
        uint32_t gen = ck_job_gen(atomic_load_explicit(&p->job, memory_order_acquire));
        if (gen == seen) {
            double deadline = ck_now() + p->spin_seconds;
            for (int i = 1;; i++) {
                CK_PAUSE();
                gen = ck_job_gen(atomic_load_explicit(&p->job, memory_order_acquire));
                if (gen != seen || atomic_load_explicit(&p->stop, memory_order_relaxed)) break;
                if ((i & 255) == 0 && ck_now() > deadline) break;
            }
        }
        if (gen == seen && !atomic_load(&p->stop)) {
            pthread_mutex_lock(&p->mu);
            atomic_fetch_add(&p->sleepers, 1); // seq_cst: pairs with the caller's job store
            while ((gen = ck_job_gen(atomic_load(&p->job))) == seen && !atomic_load(&p->stop))
                pthread_cond_wait(&p->cv, &p->mu);
            atomic_fetch_sub(&p->sleepers, 1);
            pthread_mutex_unlock(&p->mu);
        }
        if (atomic_load(&p->stop)) return NULL;
        seen = gen;
        ck_pool_work(p, gen);
    }
}

ck_pool *ck_pool_create(int nthreads) {
    if (nthreads < 1) nthreads = 1;
    ck_pool *p = aligned_alloc(64, (sizeof(ck_pool) + 63) / 64 * 64);
    if (!p) return NULL;
    memset(p, 0, sizeof *p);
    p->nthreads = nthreads;
    const char *spin = getenv("SHOAL_POOL_SPIN_US");
    p->spin_seconds = (spin && *spin ? atof(spin) : 300.0) * 1e-6;
    atomic_init(&p->job, ck_job_pack(0, 0, 0));
    pthread_mutex_init(&p->mu, NULL);
    pthread_mutex_init(&p->run_mu, NULL);
    pthread_cond_init(&p->cv, NULL);
    p->threads = calloc((size_t)nthreads, sizeof(pthread_t));
    if (!p->threads) {
        free(p);
        return NULL;
    }
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, 1 << 20);
    for (int i = 1; i < nthreads; i++) {
        if (pthread_create(&p->threads[i], &attr, ck_pool_worker, p) != 0) {
            p->nthreads = i; // run with the workers we got
            break;
        }
    }
    pthread_attr_destroy(&attr);
    return p;
}

void ck_pool_destroy(ck_pool *p) {
    if (!p) return;
    pthread_mutex_lock(&p->mu);
    atomic_store(&p->stop, 1);
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
    for (int i = 1; i < p->nthreads; i++) pthread_join(p->threads[i], NULL);
    pthread_mutex_destroy(&p->mu);
    pthread_mutex_destroy(&p->run_mu);
    pthread_cond_destroy(&p->cv);
    free(p->threads);
    free(p);
}

int ck_pool_threads(const ck_pool *p) { return p ? p->nthreads : 1; }

/// Splits runs with more tasks than one job word can count into rounds.
typedef struct {
    ck_task_fn fn;
    void *ctx;
    int base, total;
} ck_round;

static void ck_round_task(void *ctx, int task, int ntasks) {
    (void)ntasks;
    ck_round *r = ctx;
    r->fn(r->ctx, r->base + task, r->total);
}

static void ck_pool_run_one(ck_pool *p, ck_task_fn fn, void *ctx, int ntasks) {
    uint32_t gen = (ck_job_gen(atomic_load_explicit(&p->job, memory_order_relaxed)) + 1) & CK_GEN_MASK;
    p->fn = fn;
    p->ctx = ctx;
    p->kernels = ck_thread_kernels;
    atomic_store_explicit(&p->done, 0, memory_order_relaxed);
    atomic_store(&p->job, ck_job_pack(gen, (uint32_t)ntasks, 0)); // seq_cst: publishes fn/ctx
    if (atomic_load(&p->sleepers) > 0) {
        pthread_mutex_lock(&p->mu);
        pthread_cond_broadcast(&p->cv);
        pthread_mutex_unlock(&p->mu);
    }
    ck_pool_work(p, gen);
    for (int i = 1; atomic_load_explicit(&p->done, memory_order_acquire) < ntasks; i++) {
        CK_PAUSE();
        if ((i & 4095) == 0) sched_yield(); // more threads than cores: let the owner of a task run
    }
}

void ck_pool_run(ck_pool *p, ck_task_fn fn, void *ctx, int ntasks) {
    if (ntasks <= 0) return;
    // Single thread, single task, or a run started from inside a task of this pool (the other
    // threads are busy with the outer run): execute here.
    if (!p || p->nthreads == 1 || ntasks == 1 || ck_current_pool == p) {
        for (int i = 0; i < ntasks; i++) fn(ctx, i, ntasks);
        return;
    }
    pthread_mutex_lock(&p->run_mu);
    ck_pool *outer = ck_current_pool; // a worker of another pool keeps its identity
    ck_current_pool = p;
    for (int base = 0; base < ntasks; base += CK_TASK_MAX) {
        int n = ntasks - base < CK_TASK_MAX ? ntasks - base : CK_TASK_MAX;
        if (n == ntasks) {
            ck_pool_run_one(p, fn, ctx, n);
        } else {
            ck_round r = {fn, ctx, base, ntasks};
            ck_pool_run_one(p, ck_round_task, &r, n);
        }
    }
    ck_current_pool = outer;
    pthread_mutex_unlock(&p->run_mu);
}

// ---------------------------------------------------------------------------------------------
// Per-thread scratch
// ---------------------------------------------------------------------------------------------

typedef struct {
    void *ptr[CK_SCRATCH_SLOTS];
    size_t size[CK_SCRATCH_SLOTS];
} ck_scratch_set;

static pthread_key_t ck_scratch_key;
static pthread_once_t ck_scratch_once = PTHREAD_ONCE_INIT;

static void ck_scratch_free(void *v) {
    ck_scratch_set *s = v;
    for (int i = 0; i < CK_SCRATCH_SLOTS; i++) free(s->ptr[i]);
    free(s);
}

static void ck_scratch_init(void) { pthread_key_create(&ck_scratch_key, ck_scratch_free); }

void *ck_scratch(int slot, size_t bytes) {
    pthread_once(&ck_scratch_once, ck_scratch_init);
    ck_scratch_set *s = pthread_getspecific(ck_scratch_key);
    if (!s) {
        s = calloc(1, sizeof *s);
        if (!s) abort();
        pthread_setspecific(ck_scratch_key, s);
    }
    if (s->size[slot] < bytes) {
        free(s->ptr[slot]);
        size_t size = (bytes + bytes / 2 + 63) / 64 * 64;
        s->ptr[slot] = aligned_alloc(64, size);
        if (!s->ptr[slot]) abort(); // out of memory for a few KB..MB of scratch: nothing sane to do
        s->size[slot] = size;
    }
    return s->ptr[slot];
}
