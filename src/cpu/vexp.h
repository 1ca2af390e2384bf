/* Vector exp for float32, for the instruction set the including file is compiled for.
 * Measured bound: bench/exp_accuracy.c. */
#ifndef NLL_VEXP_H
#define NLL_VEXP_H

#include <immintrin.h>
#include <math.h>

#if defined(__AVX512F__)
/* exp(x) = 2^k * e^r with k = round(x / ln 2), |r| <= ln 2 / 2, e^r by its Taylor polynomial
 * to degree 7 (truncation below 1e-8 relative); vscalefps applies 2^k with correct overflow to
 * inf and underflow to 0. Clamping first keeps k finite; max/min take the NaN operand last, so
 * NaN passes through. */
static inline __m512 nll_exp_avx512(__m512 x) {
    x = _mm512_min_ps(_mm512_set1_ps(89.0f), _mm512_max_ps(_mm512_set1_ps(-104.0f), x));
    __m512 k = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
                                    _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fnmadd_ps(k, _mm512_set1_ps(0.693359375f), x);
    r = _mm512_fnmadd_ps(k, _mm512_set1_ps(-2.12194440e-4f), r);
    __m512 p = _mm512_set1_ps(1.0f / 5040);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 720));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 120));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 24));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 6));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(0.5f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
    return _mm512_scalef_ps(p, k);
}
#endif

#if defined(__AVX2__) && defined(__FMA__)
/* exp(x) = 2^k * e^r as nll_exp_avx512 does, with 2^k built in exponent fields as two
 * factors 2^(k/2) * 2^(k - k/2), so k = 128 (x near ln FLT_MAX) stays finite. Inputs are
 * clamped to [ln FLT_MIN, ln FLT_MAX]; below that the result is 0, above it inf.
 * max/min take the NaN operand last, so NaN passes through. */
static inline __m256 nll_exp_avx2(__m256 x) {
    const __m256 low = _mm256_set1_ps(-87.3365478515625f);
    const __m256 high = _mm256_set1_ps(88.72283935546875f);
    __m256 clamped = _mm256_min_ps(high, _mm256_max_ps(low, x));
    __m256 k = _mm256_round_ps(_mm256_mul_ps(clamped, _mm256_set1_ps(1.44269504088896341f)),
                               _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fnmadd_ps(k, _mm256_set1_ps(0.693359375f), clamped);
    r = _mm256_fnmadd_ps(k, _mm256_set1_ps(-2.12194440e-4f), r);
    __m256 p = _mm256_set1_ps(1.0f / 5040);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 720));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 120));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 24));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 6));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(0.5f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
    __m256i k_int = _mm256_cvtps_epi32(k);
    __m256i half = _mm256_srai_epi32(k_int, 1);
    const __m256i bias = _mm256_set1_epi32(127);
    __m256 first = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(half, bias), 23));
    __m256 second = _mm256_castsi256_ps(
        _mm256_slli_epi32(_mm256_add_epi32(_mm256_sub_epi32(k_int, half), bias), 23));
    __m256 result = _mm256_mul_ps(_mm256_mul_ps(p, first), second);
    result = _mm256_blendv_ps(result, _mm256_setzero_ps(), _mm256_cmp_ps(x, low, _CMP_LT_OQ));
    return _mm256_blendv_ps(result, _mm256_set1_ps(INFINITY),
                            _mm256_cmp_ps(x, high, _CMP_GT_OQ));
}
#endif

#endif /* NLL_VEXP_H */
