// AVX-512 (F/BW/VL/DQ + FMA/F16C) path: 16-lane float kernels from ck_simd_body.inc; q8_0/q4_0
// matrix-vector over raw 64-byte chunks of each row with int8 dots (VNNI vpdpbusd when present).
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
#define CK_MV_NT 8 // 32 registers: two accumulators per token leave half for weights and x

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
/// The 256-bit form is forced to EVEX: its VEX form is AVX-VNNI, which AVX-512 VNNI CPUs such as
/// Ice Lake lack.
CK_TGT CK_INLINE __m256i ck_dpbusd256(__m256i acc, __m256i u, __m256i s) {
    __asm__("%{evex%} vpdpbusd %2, %1, %0" : "+v"(acc) : "v"(u), "v"(s));
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

// q8_0 / q4_0 rows as raw byte streams. Blocks are 34 or 18 bytes, so any load of a whole block
// group straddles cache lines, and split loads measured 15-25% below the streaming rate. Instead
// each row is read in 64-byte chunks at its own offsets (one aligned load per line when the row
// is), and x is laid out to match the raw bytes: the activation facing each weight byte, 0 facing
// the fp16 scale bytes. Every 4-byte lane then holds weights of one block only (blocks start at
// even offsets and a lane that reaches into the next block only covers its scale bytes), so the
// integer lane sums can be scaled per lane: the block's scale comes out of the raw bytes with
// one word permute over the previous and the current chunk.
//
// The int8 dot instructions multiply unsigned by signed bytes. q4_0 (weights nibble - 8) and
// q8_0 with VNNI store x + 128 as the unsigned side and subtract 128 * (sum of the lane's
// weights), a term of the weights alone computed once per chunk for all tokens; the bytes facing
// scales and the row's end then hold 128, and the same term cancels them. Plain q8_0 multiplies
// |w| by x with w's sign (x + 128 times w could overflow maddubs' int16 pairs), no term needed.
//
// Tables are laid out per chunk, a header and then each token's activation data, so a pass over
// several tokens reads one sequential stream and every token's data sits at a constant offset
// from the chunk's record.

/// Bytes of one token's data in a chunk record, 64 each: xa (activation facing each byte; q4_0:
/// facing the low nibble), xb (q4_0: facing the high nibble), dx (activation scale of the lane's
/// block, 0 past the row).
#define CK_RAW_TOK(t) ((t) == CK_Q4_0 ? 192 : 128)
#define CK_RAW_XB 64
#define CK_RAW_DX(t) (CK_RAW_TOK(t) - 64)
/// Whether xa/xb hold x + 128 (see above) or x.
#define CK_RAW_OFFSET(t, vnni) ((t) == CK_Q4_0 || (vnni))
/// Chunk record header: for each 4-byte lane, the int16 word index of its block's scale within
/// (previous chunk, chunk), then its int16 block number (-1 past the row).
#define CK_RAW_HEAD 64
#define CK_RAW_LANE_BLOCK 32

/// x-side tables for one row length and ntok tokens, built once per call (ck_raw_prepare).
typedef struct {
    const uint8_t *tab; // [chunks][CK_RAW_HEAD + ntok * CK_RAW_TOK]
    size_t rec;         // bytes of one chunk's record
} ck_raw;

static size_t ck_raw_chunks(ck_dtype t, int cols) { return (ck_dtype_row_bytes(t, (size_t)cols) + 63) / 64; }

/// The tables, plus room to lay out one token's activations as a raw row (xa and xb) on the way.
static size_t ck_raw_bytes(ck_dtype t, int cols, int ntok) {
    const size_t chunks = ck_raw_chunks(t, cols);
    return sizeof(ck_raw) + 64 + chunks * (CK_RAW_HEAD + (size_t)ntok * CK_RAW_TOK(t)) + 2 * 64 * chunks;
}

CK_TGT static void ck_raw_prepare(ck_dtype t, int cols, const ck_xq *xq, void *mem, int vnni) {
    const int bs = t == CK_Q8_0 ? CK_Q8_BLOCK_BYTES : CK_Q4_BLOCK_BYTES, nb = cols / CK_QK, ntok = xq->ntok;
    const size_t len = (size_t)nb * bs, chunks = ck_raw_chunks(t, cols), tb = CK_RAW_TOK(t);
    const size_t rec = CK_RAW_HEAD + (size_t)ntok * tb, pad = 64 * chunks;
    uint8_t *tab = (uint8_t *)(((uintptr_t)mem + sizeof(ck_raw) + 63) & ~(uintptr_t)63);
    int8_t *stage = (int8_t *)(tab + chunks * rec); // [2][pad]: one token's xa, xb as raw rows
    // A lane belongs to the block holding its first byte (one reaching into the next block only
    // covers that block's scale bytes). Lanes past the row read the last block's scale, a finite
    // number unlike arbitrary bytes, times dx = 0.
    // Offsets and blocks stay below 2^31 (int32 lanes): rows are far shorter.
    const __m512i lane = _mm512_setr_epi32(0, 4, 8, 12, 16, 20, 24, 28, 32, 36, 40, 44, 48, 52, 56, 60);
    const __m512i vbs = _mm512_set1_epi32(bs), one = _mm512_set1_epi32(1), zero = _mm512_setzero_si512();
    for (size_t c = 0; c < chunks; c++) {
        const int c64 = (int)(64 * c), b0 = c64 / bs; // a chunk's lanes lie in blocks b0 .. b0 + 4
        __m512i o = _mm512_add_epi32(_mm512_set1_epi32(c64), lane), b = _mm512_set1_epi32(b0);
        for (int k = 1; k <= 4; k++)
            b = _mm512_mask_add_epi32(b, _mm512_cmpge_epi32_mask(o, _mm512_set1_epi32((b0 + k) * bs)), b, one);
        __mmask16 in = _mm512_cmplt_epi32_mask(o, _mm512_set1_epi32((int)len));
        b = _mm512_min_epi32(b, _mm512_set1_epi32(nb - 1));
        __m512i word = _mm512_srli_epi32(_mm512_sub_epi32(_mm512_mullo_epi32(b, vbs), _mm512_set1_epi32(c64 - 64)), 1);
        word = _mm512_and_si512(word, _mm512_set1_epi32(63));
        uint8_t *head = tab + c * rec;
        _mm256_store_si256((__m256i *)head, _mm512_cvtepi32_epi16(word));
        _mm256_store_si256((__m256i *)(head + CK_RAW_LANE_BLOCK),
                           _mm512_cvtepi32_epi16(_mm512_mask_blend_epi32(in, _mm512_set1_epi32(-1), b)));
    }
    for (int i = 0; i < ntok; i++) {
        const int8_t *q = xq->q + (size_t)i * cols;
        const float *d = xq->d + (size_t)i * nb;
        const size_t tok = CK_RAW_HEAD + (size_t)i * tb;
        memset(stage, 0, 2 * pad); // 0 facing the scale bytes and past the row
        for (int k = 0; k < nb; k++) {
            int8_t *at = stage + (size_t)k * bs + 2;
            if (t == CK_Q8_0) {
                _mm256_storeu_si256((__m256i *)at, _mm256_loadu_si256((const __m256i *)(q + k * CK_QK)));
            } else {
                _mm_storeu_si128((__m128i *)at, _mm_loadu_si128((const __m128i *)(q + k * CK_QK)));
                _mm_storeu_si128((__m128i *)(at + pad), _mm_loadu_si128((const __m128i *)(q + k * CK_QK + CK_QK / 2)));
            }
        }
        const __m512i offset = CK_RAW_OFFSET(t, vnni) ? _mm512_set1_epi8((char)0x80) : zero;
        for (size_t c = 0; c < chunks; c++) {
            uint8_t *r = tab + c * rec + tok;
            _mm512_store_si512(r, _mm512_xor_si512(_mm512_load_si512(stage + 64 * c), offset));
            if (t == CK_Q4_0) _mm512_store_si512(r + CK_RAW_XB, _mm512_xor_si512(_mm512_load_si512(stage + pad + 64 * c), offset));
            __m512i lb = _mm512_cvtepi16_epi32(_mm256_load_si256((const __m256i *)(tab + c * rec + CK_RAW_LANE_BLOCK)));
            __mmask16 in = _mm512_cmpge_epi32_mask(lb, zero);
            _mm512_store_ps((float *)(r + CK_RAW_DX(t)), _mm512_mask_i32gather_ps(_mm512_setzero_ps(), in, lb, d, 4));
        }
    }
    ck_raw *raw = mem;
    raw->tab = tab, raw->rec = rec;
}

/// acc[i] += chunk `cur` (after `prev`) of a row against token i's data (at tok + i * its size),
/// i < nt; rec is the chunk's record.
CK_TGT CK_INLINE void ck_raw_chunk(int vnni, ck_dtype t, int nt, __m512 *acc, __m512i prev, __m512i cur,
                                   const uint8_t *rec, const uint8_t *tok) {
    const size_t tb = CK_RAW_TOK(t);
    const __m512i zero = _mm512_setzero_si512(), ones = _mm512_set1_epi8(1);
    __m512i words = _mm512_permutex2var_epi16(prev, _mm512_castsi256_si512(_mm256_load_si256((const __m256i *)rec)), cur);
    __m512 wscale = _mm512_cvtph_ps(_mm512_castsi512_si256(words));
    // Weights as the dot's signed side (q8_0 plain: magnitudes, unsigned side), and the start of
    // every token's dot: -128 * each lane's weight sum where x carries the +128 offset.
    __m512i lo = cur, hi = cur, start = zero;
    __mmask64 neg = 0;
    if (t == CK_Q4_0) {
        __m512i m = _mm512_set1_epi8(0x0F), eight = _mm512_set1_epi8(8);
        lo = _mm512_sub_epi8(_mm512_and_si512(cur, m), eight);
        hi = _mm512_sub_epi8(_mm512_and_si512(_mm512_srli_epi16(cur, 4), m), eight);
        start = _mm512_sub_epi32(zero, _mm512_slli_epi32(ck_dot512(vnni, zero, ones, _mm512_add_epi8(lo, hi)), 7));
    } else if (vnni) {
        start = _mm512_sub_epi32(zero, _mm512_slli_epi32(ck_dot512(1, zero, ones, cur), 7));
    } else {
        lo = _mm512_abs_epi8(cur), neg = _mm512_movepi8_mask(cur);
    }
    for (int i = 0; i < nt; i++) {
        const uint8_t *r = tok + (size_t)i * tb;
        __m512i x = _mm512_load_si512(r), dot;
        if (t == CK_Q4_0)
            dot = ck_dot512(vnni, ck_dot512(vnni, start, x, lo), _mm512_load_si512(r + CK_RAW_XB), hi);
        else if (vnni)
            dot = ck_dpbusd512(start, x, cur);
        else
            dot = ck_dot512(0, zero, lo, _mm512_mask_sub_epi8(x, neg, zero, x));
        __m512 scale = _mm512_mul_ps(wscale, _mm512_load_ps((const float *)(r + CK_RAW_DX(t))));
        acc[i] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dot), scale, acc[i]);
    }
}

typedef struct {
    const ck_raw *raw;
    size_t len; // bytes of a row
} ck_raw_ctx;

/// Chunks [s0, s1) of one raw row against tokens i0 .. i0 + nt - 1 (segment kernel of
/// ck_mv_driver.inc; steps are 64-byte chunks).
CK_TGT CK_INLINE void ck_raw_seg(int t, int vnni, int nt, int prefetch, const uint8_t *row, const uint8_t *pf, int s0,
                                 int s1, int last, const void *ctx, int i0, __m512 *state, float *out) {
    const ck_raw_ctx *cx = ctx;
    const size_t len = cx->len, rec = cx->raw->rec, oend = last ? len : (size_t)s1 * 64;
    const uint8_t *tab = cx->raw->tab + (size_t)s0 * rec;
    const size_t tok = CK_RAW_HEAD + (size_t)i0 * CK_RAW_TOK(t); // this pass's first token in a record
    __m512 acc0[CK_MV_NT], acc1[CK_MV_NT];
    for (int i = 0; i < nt; i++) {
        acc0[i] = s0 == 0 ? _mm512_setzero_ps() : state[i];
        acc1[i] = s0 == 0 ? _mm512_setzero_ps() : state[nt + i];
    }
    size_t o = (size_t)s0 * 64;
    __m512i prev = o == 0 ? _mm512_setzero_si512() : _mm512_loadu_si512(row + o - 64);
    for (; o + 128 <= oend; o += 128, tab += 2 * rec) {
        ck_prefetch_mode(prefetch, pf, o - (size_t)s0 * 64, 128);
        __m512i c0 = _mm512_loadu_si512(row + o), c1 = _mm512_loadu_si512(row + o + 64);
        ck_raw_chunk(vnni, t, nt, acc0, prev, c0, tab, tab + tok);
        ck_raw_chunk(vnni, t, nt, acc1, c0, c1, tab + rec, tab + rec + tok);
        prev = c1;
    }
    if (!last) {
        for (int i = 0; i < nt; i++) state[i] = acc0[i], state[nt + i] = acc1[i];
        return;
    }
    for (; o < len; o += 64, tab += rec) {
        __m512i c = len - o >= 64 ? _mm512_loadu_si512(row + o) : _mm512_maskz_loadu_epi8(~0ull >> (64 - (len - o)), row + o);
        ck_raw_chunk(vnni, t, nt, acc0, prev, c, tab, tab + tok);
        prev = c;
    }
    for (int i = 0; i < nt; i++) out[i] = ck_v_reduce_add(_mm512_add_ps(acc0[i], acc1[i]));
}

#define CK_MVD_NAME ck_raw_rows
#define CK_MVD_ACC __m512
#define CK_MVD_SEG ck_raw_seg
#include "ck_mv_driver.inc"

CK_TGT CK_INLINE void ck_raw_matvec(int vnni, ck_dtype t, const uint8_t *w, size_t row_bytes, int nrows, int cols,
                                    const ck_xq *xq, float *y, int ldy, int accumulate) {
    const size_t len = ck_dtype_row_bytes(t, (size_t)cols);
    const ck_raw_ctx cx = {xq->aux, len};
    const int nsteps = (int)((len + 63) / 64);
    if (t == CK_Q8_0)
        ck_raw_rows(CK_Q8_0, vnni, w, row_bytes, len, nrows, nsteps, 64, cx.raw->rec, xq->ntok, &cx, y, ldy, accumulate);
    else
        ck_raw_rows(CK_Q4_0, vnni, w, row_bytes, len, nrows, nsteps, 64, cx.raw->rec, xq->ntok, &cx, y, ldy, accumulate);
}

CK_TGT static void ck_matvec_quant(ck_dtype t, const uint8_t *w, size_t row_bytes, int nrows, int cols, const ck_xq *xq,
                                   float *y, int ldy, int accumulate) {
    ck_raw_matvec(0, t, w, row_bytes, nrows, cols, xq, y, ldy, accumulate);
}

CK_TGT static void ck_matvec_quant_vnni(ck_dtype t, const uint8_t *w, size_t row_bytes, int nrows, int cols,
                                        const ck_xq *xq, float *y, int ldy, int accumulate) {
    ck_raw_matvec(1, t, w, row_bytes, nrows, cols, xq, y, ldy, accumulate);
}

CK_TGT static void ck_raw_prepare_plain(ck_dtype t, int cols, const ck_xq *xq, void *mem) { ck_raw_prepare(t, cols, xq, mem, 0); }
CK_TGT static void ck_raw_prepare_vnni(ck_dtype t, int cols, const ck_xq *xq, void *mem) { ck_raw_prepare(t, cols, xq, mem, 1); }

#include "ck_simd_body.inc"

#define CK_AVX512_TABLE(name, ext, quant, prepare)                                                                          \
    const ck_kernels name = {                                                                                      \
        .isa = CK_ISA_AVX512,                                                                                      \
        .extensions = ext,                                                                                         \
        .matvec_float = ck_matvec_float,                                                                           \
        .x_lanes = CK_VW,                                                                                          \
        .pack_x = ck_pack_x_simd,                                                                                  \
        .matvec_quant = quant,                                                                                     \
        .xq_aux_bytes = ck_raw_bytes,                                                                              \
        .xq_aux_prepare = prepare,                                                                                 \
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

CK_AVX512_TABLE(ck_kernels_avx512, 0, ck_matvec_quant, ck_raw_prepare_plain)
CK_AVX512_TABLE(ck_kernels_avx512_vnni, CK_EXT_VNNI, ck_matvec_quant_vnni, ck_raw_prepare_vnni)

#endif
