/* The AVX-512 (F, BW, VL, DQ) vector macros for simd_rows.h and ref_body.h, shared by
 * avx512.c and avx512_bf16.c, and the 16-bit conversions they take. */
#ifndef NLL_CPU_AVX512_H
#define NLL_CPU_AVX512_H
#include <immintrin.h>
#include <math.h>

#include "vmath.h"

#include "../internal.h"

static inline __mmask16 tail_mask(int64_t n) { return (__mmask16)((1u << n) - 1u); }

#define NLL_V __m512
#define NLL_VLEN 16
#define NLL_VSET1(f) _mm512_set1_ps(f)
#define NLL_VADD(a, b) _mm512_add_ps(a, b)
#define NLL_VSUB(a, b) _mm512_sub_ps(a, b)
#define NLL_VMUL(a, b) _mm512_mul_ps(a, b)
#define NLL_VMAX(a, b) _mm512_max_ps(a, b)
#define NLL_VFMA(a, b, c) _mm512_fmadd_ps(a, b, c)
#define NLL_VEXP(v) nll_exp_avx512(v)
#define NLL_VEXP_SHIFTED(v) nll_exp_nonpos_avx512(v)
#define NLL_VLOADF(p) _mm512_loadu_ps(p)
#define NLL_VSTOREF(p, v) _mm512_storeu_ps(p, v)
#define NLL_VLOADFN(p, n) _mm512_maskz_loadu_ps(tail_mask(n), p)
#define NLL_VSTOREFN(p, v, n) _mm512_mask_storeu_ps(p, tail_mask(n), v)
#define NLL_VLOG(v) nll_log_avx512(v)
#define NLL_VHSUM(v) _mm512_reduce_add_ps(v)
#define NLL_VHMAX(v) _mm512_reduce_max_ps(v)
#define NLL_VKEEP(v, n) _mm512_maskz_mov_ps(tail_mask(n), v)
#define NLL_VDIV(a, b) _mm512_div_ps(a, b)
#define NLL_VI __m512i
#define NLL_VILOAD(p) _mm512_loadu_si512(p)
#define NLL_VSELECT_EQ(idx, c, a, b)                                                           \
    _mm512_mask_blend_ps(_mm512_cmpeq_epi32_mask(idx, _mm512_set1_epi32(c)), b, a)
#define NLL_VTARGETS(p, ignore) targets16(p, ignore)
#define NLL_VTRANSPOSE(rows) transpose16(rows)
#define NLL_VD nll_vd
#define NLL_VD_ZERO vd_zero()
#define NLL_VD_ADD(acc, v) vd_add(&(acc), v)
#define NLL_VD_SUM(acc) vd_sum(acc)

/* rows[i] lane j <-> rows[j] lane i: unpacks within 128-bit lanes, then a 4 x 4 transpose of
 * the 128-bit lanes */
static inline void transpose16(__m512 *rows) {
    __m512 t[16];
    for (int i = 0; i < 16; i += 2) {
        t[i] = _mm512_unpacklo_ps(rows[i], rows[i + 1]);
        t[i + 1] = _mm512_unpackhi_ps(rows[i], rows[i + 1]);
    }
    for (int i = 0; i < 16; i += 4) { /* lane k of rows[i + m]: class 4k + m of rows i..i+3 */
        __m512d a = _mm512_castps_pd(t[i]), b = _mm512_castps_pd(t[i + 1]);
        __m512d c = _mm512_castps_pd(t[i + 2]), d = _mm512_castps_pd(t[i + 3]);
        rows[i] = _mm512_castpd_ps(_mm512_unpacklo_pd(a, c));
        rows[i + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(a, c));
        rows[i + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(b, d));
        rows[i + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(b, d));
    }
    for (int m = 0; m < 4; m++) {
        __m512 u0 = _mm512_shuffle_f32x4(rows[m], rows[4 + m], 0x44);
        __m512 u1 = _mm512_shuffle_f32x4(rows[m], rows[4 + m], 0xEE);
        __m512 u2 = _mm512_shuffle_f32x4(rows[8 + m], rows[12 + m], 0x44);
        __m512 u3 = _mm512_shuffle_f32x4(rows[8 + m], rows[12 + m], 0xEE);
        t[m] = _mm512_shuffle_f32x4(u0, u2, 0x88);
        t[4 + m] = _mm512_shuffle_f32x4(u0, u2, 0xDD);
        t[8 + m] = _mm512_shuffle_f32x4(u1, u3, 0x88);
        t[12 + m] = _mm512_shuffle_f32x4(u1, u3, 0xDD);
    }
    for (int i = 0; i < 16; i++)
        rows[i] = t[i];
}

/* 16 int64 class indices (char *p) as int32 lanes, -1 where ignored */
static inline __m512i targets16(const char *p, int64_t ignore) {
    const __m512i lo = _mm512_loadu_si512(p), hi = _mm512_loadu_si512(p + 64);
    const __m512i skip = _mm512_set1_epi64(ignore);
    const __mmask16 ignored = (__mmask16)(_mm512_cmpeq_epi64_mask(lo, skip) |
                                          (unsigned)_mm512_cmpeq_epi64_mask(hi, skip) << 8);
    const __m512i both = _mm512_inserti64x4(_mm512_castsi256_si512(_mm512_cvtepi64_epi32(lo)),
                                            _mm512_cvtepi64_epi32(hi), 1);
    return _mm512_mask_mov_epi32(both, ignored, _mm512_set1_epi32(-1));
}

/* float32 lanes summed in float64 lanes */
typedef struct nll_vd {
    __m512d lo, hi;
} nll_vd;

static inline nll_vd vd_zero(void) { return (nll_vd){_mm512_setzero_pd(), _mm512_setzero_pd()}; }

static inline void vd_add(nll_vd *acc, __m512 v) {
    acc->lo = _mm512_add_pd(acc->lo, _mm512_cvtps_pd(_mm512_castps512_ps256(v)));
    acc->hi = _mm512_add_pd(acc->hi,
                            _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(
                                _mm512_castps_pd(v), 1))));
}

static inline double vd_sum(nll_vd acc) {
    return _mm512_reduce_add_pd(_mm512_add_pd(acc.lo, acc.hi));
}

/* 16-bit lanes widened to float32 and back (round to nearest even; NaN stays NaN). */
static inline __m512 bf16_widen(__m256i raw) {
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(raw), 16));
}

/* float32 lanes rounded to bfloat16, in the high half of each lane */
static inline __m512i bf16_round(__m512 v) {
    __m512i bits = _mm512_castps_si512(v);
    __m512i odd = _mm512_and_si512(_mm512_srli_epi32(bits, 16), _mm512_set1_epi32(1));
    __m512i rounded = _mm512_add_epi32(bits, _mm512_add_epi32(_mm512_set1_epi32(0x7fff), odd));
    __mmask16 nan = _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q);
    return _mm512_mask_mov_epi32(rounded, nan,
                                 _mm512_or_si512(bits, _mm512_set1_epi32(0x00400000)));
}

static inline __m256i bf16_narrow(__m512 v) {
    return _mm512_cvtepi32_epi16(_mm512_srli_epi32(bf16_round(v), 16));
}

/* 32 bfloat16 from their even and odd elements, as bf16_load_pair splits them */
static inline __m512i bf16_join_pair(__m512 even, __m512 odd) {
    return _mm512_mask_blend_epi16(0xAAAAAAAAu, _mm512_srli_epi32(bf16_round(even), 16),
                                   bf16_round(odd));
}

/* Joined 16-bit pairs (NLL_VJOIN2: 32 elements in element order) for streaming a row from its
 * first 64-byte boundary (simd_rows.h): the 32 elements that start `shift` into `first` and
 * run on into `next`; the first `count` elements of v; the elements of v from `from` on. */
#define NLL_VJOINED __m512i
#define NLL_VJOINED_SHIFT(first, next, shift)                                                  \
    _mm512_permutex2var_epi16(                                                                 \
        first, _mm512_add_epi16(epi16_iota(), _mm512_set1_epi16((short)(shift))), next)
#define NLL_VJOINED_STREAM(p, v) _mm512_stream_si512((void *)(p), v)
#define NLL_VJOINED_STORE_FIRST(p, v, count) \
    _mm512_mask_storeu_epi16(p, (__mmask32)((1u << (count)) - 1), v)
#define NLL_VJOINED_STORE_FROM(p, v, from) \
    _mm512_mask_storeu_epi16(p, (__mmask32)~((1u << (from)) - 1), v)

static inline __m512i epi16_iota(void) {
    return _mm512_set_epi16(31, 30, 29, 28, 27, 26, 25, 24, 23, 22, 21, 20, 19, 18, 17, 16, 15, 14,
                            13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0);
}

static inline __m256i half_narrow(__m512 v) {
    return _mm512_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
}

static inline __m512 fill_tail(__m512 v, int64_t n, float fill) {
    return _mm512_mask_blend_ps(tail_mask(n), _mm512_set1_ps(fill), v);
}

/* 32 bfloat16 as two float32 vectors, the even elements and the odd ones: a bfloat16 is the
 * high half of a float32, so each is one shift or mask of the 32-bit lanes. simd_rows.h walks
 * rows two vectors at a time in this order (NLL_VLOAD2, NLL_VSTORE2). */
static inline void bf16_load_pair(const void *p, __m512 *even, __m512 *odd) {
    __m512i raw = _mm512_loadu_si512(p);
    *even = _mm512_castsi512_ps(_mm512_slli_epi32(raw, 16));
    *odd = _mm512_castsi512_ps(_mm512_and_si512(raw, _mm512_set1_epi32((int)0xFFFF0000u)));
}

#endif /* NLL_CPU_AVX512_H */
