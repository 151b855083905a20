// ISA detection and selection. The kernel table is chosen once (detected ISA, or SHOAL_ISA) and can
// be switched by tests; switching is a single atomic pointer store so concurrent readers see either
// the old or the new table, never a mix.
#include "ck_internal.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#if CK_X86
#include <cpuid.h>
#endif

typedef struct {
    ck_isa isa;
    unsigned avx2_extensions;   // CK_EXT_* usable by the AVX2 path (AVX-VNNI)
    unsigned avx512_extensions; // CK_EXT_* usable by the AVX-512 path (AVX-512 VNNI)
} ck_cpu;

#if CK_X86
static uint64_t ck_xgetbv0(void) {
    uint32_t lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return ((uint64_t)hi << 32) | lo;
}
#endif

static ck_cpu ck_probe_cpu(void) {
    ck_cpu cpu = {CK_ISA_PORTABLE, 0, 0};
#if CK_X86
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d)) return cpu;
    int osxsave = (c >> 27) & 1, avx = (c >> 28) & 1, fma = (c >> 12) & 1, f16c = (c >> 29) & 1;
    if (!osxsave || !avx) return cpu;
    uint64_t xcr0 = ck_xgetbv0();
    int ymm_ok = (xcr0 & 0x6) == 0x6;    // SSE + AVX state
    int zmm_ok = (xcr0 & 0xE6) == 0xE6;  // + opmask, ZMM_Hi256, Hi16_ZMM
    unsigned a7 = 0, b7 = 0, c7 = 0, d7 = 0, a71 = 0, b71 = 0, c71 = 0, d71 = 0;
    if (__get_cpuid_max(0, NULL) >= 7) {
        __cpuid_count(7, 0, a7, b7, c7, d7);
        __cpuid_count(7, 1, a71, b71, c71, d71);
    }
    int avx2 = (b7 >> 5) & 1;
    int avx512f = (b7 >> 16) & 1, avx512dq = (b7 >> 17) & 1, avx512bw = (b7 >> 30) & 1,
        avx512vl = (b7 >> 31) & 1;
    int avx512vnni = (c7 >> 11) & 1;
    int avxvnni = (a71 >> 4) & 1;
    if (ymm_ok && avx2 && fma && f16c) {
        cpu.isa = CK_ISA_AVX2;
        cpu.avx2_extensions = avxvnni ? CK_EXT_VNNI : 0;
    }
    if (cpu.isa == CK_ISA_AVX2 && zmm_ok && avx512f && avx512dq && avx512bw && avx512vl) {
        cpu.isa = CK_ISA_AVX512;
        cpu.avx512_extensions = avx512vnni ? CK_EXT_VNNI : 0;
    }
#elif defined(__aarch64__)
    cpu.isa = CK_ISA_NEON; // Advanced SIMD is part of the AArch64 base ISA
#endif
    return cpu;
}

static ck_cpu ck_cpu_info;
static pthread_once_t ck_cpu_once = PTHREAD_ONCE_INIT;
static void ck_cpu_init(void) { ck_cpu_info = ck_probe_cpu(); }

static ck_cpu ck_cpu_cached(void) {
    pthread_once(&ck_cpu_once, ck_cpu_init);
    return ck_cpu_info;
}

ck_isa ck_detected_isa(void) { return ck_cpu_cached().isa; }

/// Can this CPU run `isa`? Each x86 level implies the lower ones.
static int ck_isa_supported(ck_isa isa) {
    ck_isa best = ck_detected_isa();
    switch (isa) {
    case CK_ISA_PORTABLE: return 1;
    case CK_ISA_AVX2: return best == CK_ISA_AVX2 || best == CK_ISA_AVX512;
    case CK_ISA_AVX512: return best == CK_ISA_AVX512;
    case CK_ISA_NEON: return best == CK_ISA_NEON;
    }
    return 0;
}

/// Extensions usable on top of `isa` on this CPU.
static unsigned ck_isa_extensions(ck_isa isa) {
    ck_cpu cpu = ck_cpu_cached();
    if (isa == CK_ISA_AVX512) return cpu.avx512_extensions;
    if (isa == CK_ISA_AVX2) return cpu.avx2_extensions;
    return 0;
}

static const ck_kernels *ck_table_for(ck_isa isa, unsigned ext) {
    (void)ext;
    switch (isa) {
#if CK_X86
    case CK_ISA_AVX2: return (ext & CK_EXT_VNNI) ? &ck_kernels_avx2_vnni : &ck_kernels_avx2;
    case CK_ISA_AVX512: return (ext & CK_EXT_VNNI) ? &ck_kernels_avx512_vnni : &ck_kernels_avx512;
#endif
#if defined(__aarch64__)
    case CK_ISA_NEON: return &ck_kernels_neon;
#endif
    default: return &ck_kernels_portable;
    }
}

static _Atomic(const ck_kernels *) ck_active_table = NULL;
static _Atomic unsigned ck_ext_mask = ~0u;

static ck_isa ck_isa_from_env(void) {
    ck_isa isa = ck_detected_isa();
    const char *env = getenv("SHOAL_ISA");
    if (!env || !*env) return isa;
    static const struct { const char *name; ck_isa isa; } names[] = {
        {"portable", CK_ISA_PORTABLE}, {"avx2", CK_ISA_AVX2}, {"avx512", CK_ISA_AVX512}, {"neon", CK_ISA_NEON}};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        if (strcasecmp(env, names[i].name) != 0) continue;
        if (ck_isa_supported(names[i].isa)) return names[i].isa;
        fprintf(stderr, "shoal: SHOAL_ISA=%s is not supported by this CPU; using %s\n", env, ck_isa_name(isa));
        return isa;
    }
    fprintf(stderr, "shoal: SHOAL_ISA=%s is unknown (portable|avx2|avx512|neon); using %s\n", env, ck_isa_name(isa));
    return isa;
}

_Thread_local const ck_kernels *ck_thread_kernels = NULL;

int ck_set_thread_isa(ck_isa isa, unsigned ext_mask) {
    if (!ck_isa_supported(isa)) return -1;
    ck_thread_kernels = ck_table_for(isa, ck_isa_extensions(isa) & ext_mask);
    return (int)ck_thread_kernels->extensions;
}

void ck_clear_thread_isa(void) { ck_thread_kernels = NULL; }

const ck_kernels *ck_kernels_active(void) {
    if (ck_thread_kernels) return ck_thread_kernels;
    const ck_kernels *k = atomic_load_explicit(&ck_active_table, memory_order_acquire);
    if (k) return k;
    ck_isa isa = ck_isa_from_env();
    const ck_kernels *fresh = ck_table_for(isa, ck_isa_extensions(isa) & atomic_load(&ck_ext_mask));
    const ck_kernels *expected = NULL;
    // First caller wins; a concurrent ck_set_isa keeps its choice.
    if (!atomic_compare_exchange_strong(&ck_active_table, &expected, fresh)) return expected;
    return fresh;
}

ck_isa ck_active_isa(void) { return ck_kernels_active()->isa; }

int ck_set_isa(ck_isa isa) {
    if (!ck_isa_supported(isa)) return -1;
    atomic_store(&ck_active_table, ck_table_for(isa, ck_isa_extensions(isa) & atomic_load(&ck_ext_mask)));
    return 0;
}

unsigned ck_active_extensions(void) { return ck_kernels_active()->extensions; }

unsigned ck_set_extensions(unsigned mask) {
    atomic_store(&ck_ext_mask, mask);
    ck_isa isa = ck_active_isa();
    const ck_kernels *k = ck_table_for(isa, ck_isa_extensions(isa) & mask);
    atomic_store(&ck_active_table, k);
    return k->extensions;
}

const char *ck_isa_name(ck_isa isa) {
    switch (isa) {
    case CK_ISA_PORTABLE: return "portable";
    case CK_ISA_AVX2: return "avx2";
    case CK_ISA_AVX512: return "avx512";
    case CK_ISA_NEON: return "neon";
    }
    return "unknown";
}

size_t ck_dtype_row_bytes(ck_dtype dtype, size_t n) {
    switch (dtype) {
    case CK_F32: return n * 4;
    case CK_F16:
    case CK_BF16: return n * 2;
    case CK_Q8_0: return n / CK_QK * CK_Q8_BLOCK_BYTES;
    case CK_Q4_0: return n / CK_QK * CK_Q4_BLOCK_BYTES;
    }
    return 0;
}
