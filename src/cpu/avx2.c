/* AVX2 + FMA + F16C kernels: the generic bodies with 8-lane float32 row primitives, for
 * float32, float16 and bfloat16 inputs. Compiled with those extensions enabled; run only when
 * the context's architecture says the CPU has them. float64 stays on the reference kernels. */
#include <immintrin.h>
#include <math.h>
#include <string.h>

#include "vmath.h"

#include "../internal.h"

static inline float hsum_avx2(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    return _mm_cvtss_f32(_mm_add_ss(s, _mm_shuffle_ps(s, s, 1)));
}

static inline float hmax_avx2(__m256 v) {
    __m128 m = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    m = _mm_max_ps(m, _mm_movehl_ps(m, m));
    return _mm_cvtss_f32(_mm_max_ss(m, _mm_shuffle_ps(m, m, 1)));
}

static inline __m256 keep_avx2(__m256 v, int64_t n) {
    __m256 lanes = _mm256_setr_ps(0, 1, 2, 3, 4, 5, 6, 7);
    return _mm256_and_ps(v, _mm256_cmp_ps(lanes, _mm256_set1_ps((float)n), _CMP_LT_OQ));
}

#define NLL_V __m256
#define NLL_VLEN 8
#define NLL_VSET1(f) _mm256_set1_ps(f)
#define NLL_VADD(a, b) _mm256_add_ps(a, b)
#define NLL_VSUB(a, b) _mm256_sub_ps(a, b)
#define NLL_VMUL(a, b) _mm256_mul_ps(a, b)
#define NLL_VMAX(a, b) _mm256_max_ps(a, b)
#define NLL_VFMA(a, b, c) _mm256_fmadd_ps(a, b, c)
#define NLL_VEXP(v) nll_exp_avx2(v)
#define NLL_VEXP_SHIFTED(v) nll_exp_nonpos_avx2(v)
#define NLL_VLOADF(p) _mm256_loadu_ps(p)
#define NLL_VSTOREF(p, v) _mm256_storeu_ps(p, v)
#define NLL_VLOADFN(p, n) load_float_tail(p, n)
#define NLL_VSTOREFN(p, v, n) store_float_tail(p, v, n)
#define NLL_VLOG(v) nll_log_avx2(v)
#define NLL_VHSUM(v) hsum_avx2(v)
#define NLL_VHMAX(v) hmax_avx2(v)
#define NLL_VKEEP(v, n) keep_avx2(v, n)
#define NLL_VDIV(a, b) _mm256_div_ps(a, b)
#define NLL_VI __m256i
#define NLL_VILOAD(p) _mm256_loadu_si256((const __m256i *)(const void *)(p))
#define NLL_VSELECT_EQ(idx, c, a, b)                                                           \
    _mm256_blendv_ps(b, a, _mm256_castsi256_ps(_mm256_cmpeq_epi32(idx, _mm256_set1_epi32(c))))
#define NLL_VTARGETS(p, ignore) targets8(p, ignore)
#define NLL_VTRANSPOSE(rows) transpose8(rows)
#define NLL_VD nll_vd
#define NLL_VD_ZERO vd_zero()
#define NLL_VD_ADD(acc, v) vd_add(&(acc), v)
#define NLL_VD_SUM(acc) vd_sum(acc)

/* rows[i] lane j <-> rows[j] lane i */
static inline void transpose8(__m256 *rows) {
    __m256 t[8], u[8];
    for (int i = 0; i < 8; i += 2) {
        t[i] = _mm256_unpacklo_ps(rows[i], rows[i + 1]);
        t[i + 1] = _mm256_unpackhi_ps(rows[i], rows[i + 1]);
    }
    for (int i = 0; i < 8; i += 4) {
        u[i] = _mm256_shuffle_ps(t[i], t[i + 2], _MM_SHUFFLE(1, 0, 1, 0));
        u[i + 1] = _mm256_shuffle_ps(t[i], t[i + 2], _MM_SHUFFLE(3, 2, 3, 2));
        u[i + 2] = _mm256_shuffle_ps(t[i + 1], t[i + 3], _MM_SHUFFLE(1, 0, 1, 0));
        u[i + 3] = _mm256_shuffle_ps(t[i + 1], t[i + 3], _MM_SHUFFLE(3, 2, 3, 2));
    }
    for (int m = 0; m < 4; m++) {
        rows[m] = _mm256_permute2f128_ps(u[m], u[4 + m], 0x20);
        rows[4 + m] = _mm256_permute2f128_ps(u[m], u[4 + m], 0x31);
    }
}

/* 8 int64 class indices (char *p) as int32 lanes, -1 where ignored */
static inline __m256i targets8(const char *p, int64_t ignore) {
    const __m256i skip = _mm256_set1_epi64x(ignore);
    const __m256i low = _mm256_setr_epi32(0, 2, 4, 6, 0, 2, 4, 6);
    __m256i lo = _mm256_loadu_si256((const __m256i *)(const void *)p);
    __m256i hi = _mm256_loadu_si256((const __m256i *)(const void *)(p + 32));
    /* an ignored index becomes -1 in both halves, so its low half is -1 */
    lo = _mm256_or_si256(lo, _mm256_cmpeq_epi64(lo, skip));
    hi = _mm256_or_si256(hi, _mm256_cmpeq_epi64(hi, skip));
    return _mm256_blend_epi32(_mm256_permutevar8x32_epi32(lo, low),
                              _mm256_permutevar8x32_epi32(hi, low), 0xF0);
}

/* float32 lanes summed in float64 lanes */
typedef struct nll_vd {
    __m256d lo, hi;
} nll_vd;

static inline nll_vd vd_zero(void) { return (nll_vd){_mm256_setzero_pd(), _mm256_setzero_pd()}; }

static inline void vd_add(nll_vd *acc, __m256 v) {
    acc->lo = _mm256_add_pd(acc->lo, _mm256_cvtps_pd(_mm256_castps256_ps128(v)));
    acc->hi = _mm256_add_pd(acc->hi, _mm256_cvtps_pd(_mm256_extractf128_ps(v, 1)));
}

static inline double vd_sum(nll_vd acc) {
    __m256d s = _mm256_add_pd(acc.lo, acc.hi);
    __m128d h = _mm_add_pd(_mm256_castpd256_pd128(s), _mm256_extractf128_pd(s, 1));
    return _mm_cvtsd_f64(_mm_add_sd(h, _mm_unpackhi_pd(h, h)));
}

/* The first n < 8 float32 lanes, through a lane buffer (memcpy: p may be misaligned). */
static inline __m256 load_float_tail(const float *p, int64_t n) {
    float lanes[8] = {0};
    memcpy(lanes, p, (size_t)n * sizeof(float));
    return _mm256_loadu_ps(lanes);
}

/* The first n < 8 float32 elements at p (char *), fill after them: a masked load, which reads
 * no byte past them and needs no alignment. */
static inline __m256 load_f32_tail(const char *p, int64_t n, float fill) {
    const __m256i mask =
        _mm256_cmpgt_epi32(_mm256_set1_epi32((int)n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
    return _mm256_blendv_ps(_mm256_set1_ps(fill),
                            _mm256_maskload_ps((const float *)(const void *)p, mask),
                            _mm256_castsi256_ps(mask));
}

static inline void store_float_tail(float *p, __m256 v, int64_t n) {
    float lanes[8];
    _mm256_storeu_ps(lanes, v);
    memcpy(p, lanes, (size_t)n * sizeof(float));
}

static inline __m256 bf16_widen(__m128i raw) {
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(raw), 16));
}

/* round to nearest even in the integer domain, NaN kept quiet, then 8 x 32 -> 8 x 16 bits */
static inline __m128i bf16_narrow(__m256 v) {
    __m256i bits = _mm256_castps_si256(v);
    __m256i odd = _mm256_and_si256(_mm256_srli_epi32(bits, 16), _mm256_set1_epi32(1));
    __m256i rounded = _mm256_add_epi32(bits, _mm256_add_epi32(_mm256_set1_epi32(0x7fff), odd));
    __m256i quiet_nan = _mm256_or_si256(bits, _mm256_set1_epi32(0x00400000));
    rounded = _mm256_castps_si256(_mm256_blendv_ps(_mm256_castsi256_ps(rounded),
                                                   _mm256_castsi256_ps(quiet_nan),
                                                   _mm256_cmp_ps(v, v, _CMP_UNORD_Q)));
    __m256i packed = _mm256_packus_epi32(_mm256_srli_epi32(rounded, 16), _mm256_setzero_si256());
    return _mm256_castsi256_si128(_mm256_permute4x64_epi64(packed, 0x08));
}

/* Row tails: through a lane buffer and the scalar element helpers (float32 loads them masked,
 * load_f32_tail). */
#define NLL_AVX2_LOAD_TAIL                                                                     \
    static inline __m256 FN(load_tail)(const char *p, int64_t n, float fill) {                 \
        float lanes[8];                                                                        \
        for (int64_t i = 0; i < 8; i++)                                                        \
            lanes[i] = i < n ? (float)FN(load)(p, i) : fill;                                   \
        return _mm256_loadu_ps(lanes);                                                         \
    }
#define NLL_AVX2_STORE_TAIL                                                                    \
    static inline void FN(store_tail)(char *p, __m256 v, int64_t n) {                          \
        float lanes[8];                                                                        \
        _mm256_storeu_ps(lanes, v);                                                            \
        for (int64_t i = 0; i < n; i++)                                                        \
            FN(store)(p, i, lanes[i]);                                                         \
    }

#define NLL_DTYPE_F32
#include "dtype.h"
NLL_AVX2_STORE_TAIL
#define NLL_VLOAD(p) _mm256_loadu_ps((const float *)(const void *)(p))
#define NLL_VLOADN(p, n, fill) load_f32_tail(p, n, fill)
#define NLL_VSTORE(p, v) _mm256_storeu_ps((float *)(void *)(p), v)
#define NLL_VSTOREN(p, v, n) FN(store_tail)(p, v, n)
#include "simd_rows.h"
#include "ref_body.h"

#define NLL_DTYPE_BF16
#include "dtype.h"
NLL_AVX2_LOAD_TAIL
NLL_AVX2_STORE_TAIL
#define NLL_VLOAD(p) bf16_widen(_mm_loadu_si128((const void *)(p)))
#define NLL_VLOADN(p, n, fill) FN(load_tail)(p, n, fill)
#define NLL_VSTORE(p, v) _mm_storeu_si128((void *)(p), bf16_narrow(v))
#define NLL_VSTOREN(p, v, n) FN(store_tail)(p, v, n)
#include "simd_rows.h"
#include "ref_body.h"

#define NLL_DTYPE_F16
#include "dtype.h"
NLL_AVX2_LOAD_TAIL
NLL_AVX2_STORE_TAIL
#define NLL_VLOAD(p) _mm256_cvtph_ps(_mm_loadu_si128((const void *)(p)))
#define NLL_VLOADN(p, n, fill) FN(load_tail)(p, n, fill)
#define NLL_VSTORE(p, v)                                                                       \
    _mm_storeu_si128((void *)(p), _mm256_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC))
#define NLL_VSTOREN(p, v, n) FN(store_tail)(p, v, n)
#include "simd_rows.h"
#include "ref_body.h"

/* float64 has no entry: the dispatcher sends it to the reference kernels */
const nll_loss_kernels nll_avx2_kernels[NLL_KIND_COUNT] = {
    [NLL_KIND_F32] = NLL_KERNEL_ENTRY(f32),
    [NLL_KIND_F16] = NLL_KERNEL_ENTRY(f16),
    [NLL_KIND_BF16] = NLL_KERNEL_ENTRY(bf16),
};
