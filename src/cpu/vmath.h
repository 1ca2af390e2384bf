/* Vector exp and log for float32, for the instruction set the including file is compiled
 * for. Measured bounds: bench/exp_accuracy.c. */
#ifndef NLL_VMATH_H
#define NLL_VMATH_H

#include <immintrin.h>
#include <math.h>

/* ln 2 in two parts for Cody-Waite reduction: k * NLL_EXP_LN2_HI (9 significant bits) is exact
 * while k has at most 15 */
#define NLL_EXP_LOG2E 1.44269504088896341f
#define NLL_EXP_LN2_HI 0.693359375f
#define NLL_EXP_LN2_LO (-2.12194440e-4f)

#if defined(__AVX512F__)
/* exp(x) = 2^(K/16) * e^r with K = round(16 x / ln 2), |r| <= ln 2 / 32: 2^(K mod 16 / 16) comes
 * from a 16-entry table held in one register (vpermps by the low 4 bits of K), e^r from
 * 1 + r + r^2/2 + r^3/6 (truncation below 1e-8), and vscalefps applies 2^floor(K/16), with
 * correct underflow through the subnormals to 0. One multiply-add fewer than a degree-5
 * polynomial over |r| <= ln 2 / 2 (a permute instead), and more accurate. For x <= 0, -inf or
 * NaN (right up to x = 88, not +inf): softmax's shifted logits, which need no upper clamp. The
 * lower clamp keeps K and r finite; max takes the NaN operand last, so NaN passes. */
static inline __m512 nll_exp_nonpos_avx512(__m512 x) {
    const __m512 table = _mm512_setr_ps(
        0x1p+0f, 0x1.0b5586p+0f, 0x1.172b84p+0f, 0x1.2387a6p+0f, 0x1.306fe0p+0f, 0x1.3dea64p+0f,
        0x1.4bfdaep+0f, 0x1.5ab07ep+0f, 0x1.6a09e6p+0f, 0x1.7a1148p+0f, 0x1.8ace54p+0f,
        0x1.9c4918p+0f, 0x1.ae89fap+0f, 0x1.c199bep+0f, 0x1.d5818ep+0f, 0x1.ea4afap+0f);
    /* adding 1.5 * 2^19 rounds to a multiple of 1/16 and leaves K in the low mantissa bits */
    const __m512 shifter = _mm512_set1_ps(0x1.8p19f);
    x = _mm512_max_ps(_mm512_set1_ps(-104.0f), x);
    __m512 shifted = _mm512_fmadd_ps(x, _mm512_set1_ps(NLL_EXP_LOG2E), shifter);
    __m512 k16 = _mm512_sub_ps(shifted, shifter); /* K / 16, exact */
    __m512 r = _mm512_fnmadd_ps(k16, _mm512_set1_ps(NLL_EXP_LN2_HI), x);
    r = _mm512_fnmadd_ps(k16, _mm512_set1_ps(NLL_EXP_LN2_LO), r);
    __m512 t = _mm512_permutexvar_ps(_mm512_castps_si512(shifted), table);
    __m512 q = _mm512_fmadd_ps(r, _mm512_set1_ps(1.0f / 6), _mm512_set1_ps(0.5f));
    q = _mm512_fmadd_ps(q, r, _mm512_set1_ps(1.0f));
    __m512 p = _mm512_fmadd_ps(_mm512_mul_ps(t, r), q, t); /* t (1 + r q) */
    return _mm512_scalef_ps(p, k16);
}

/* exp of any x: above 89 the result is inf (vscalefps overflows correctly) */
static inline __m512 nll_exp_avx512(__m512 x) {
    return nll_exp_nonpos_avx512(_mm512_min_ps(_mm512_set1_ps(89.0f), x));
}

/* log(x) = k ln 2 + log(m), x = m 2^k with m in [sqrt(1/2), sqrt(2)); log(m) = 2 atanh(s),
 * s = (m - 1) / (m + 1), |s| <= 0.172, by its series to s^11 (truncation below 1e-10).
 * 0 gives -inf, +inf gives inf, negatives and NaN give NaN. */
static inline __m512 nll_log_avx512(__m512 x) {
    __m512 m = _mm512_getmant_ps(x, _MM_MANT_NORM_1_2, _MM_MANT_SIGN_src);
    __m512 k = _mm512_getexp_ps(x);
    __mmask16 high = _mm512_cmp_ps_mask(m, _mm512_set1_ps(1.41421356f), _CMP_GT_OQ);
    m = _mm512_mask_mul_ps(m, high, m, _mm512_set1_ps(0.5f));
    k = _mm512_mask_add_ps(k, high, k, _mm512_set1_ps(1.0f));
    __m512 s = _mm512_div_ps(_mm512_sub_ps(m, _mm512_set1_ps(1.0f)),
                             _mm512_add_ps(m, _mm512_set1_ps(1.0f)));
    __m512 z = _mm512_mul_ps(s, s);
    __m512 p = _mm512_set1_ps(1.0f / 11);
    p = _mm512_fmadd_ps(p, z, _mm512_set1_ps(1.0f / 9));
    p = _mm512_fmadd_ps(p, z, _mm512_set1_ps(1.0f / 7));
    p = _mm512_fmadd_ps(p, z, _mm512_set1_ps(1.0f / 5));
    p = _mm512_fmadd_ps(p, z, _mm512_set1_ps(1.0f / 3));
    p = _mm512_mul_ps(_mm512_mul_ps(p, z), _mm512_add_ps(s, s));
    __m512 result = _mm512_fmadd_ps(k, _mm512_set1_ps(-2.12194440e-4f), _mm512_add_ps(p, _mm512_add_ps(s, s)));
    result = _mm512_fmadd_ps(k, _mm512_set1_ps(0.693359375f), result);
    result = _mm512_mask_mov_ps(result, _mm512_cmp_ps_mask(x, _mm512_setzero_ps(), _CMP_EQ_OQ),
                                _mm512_set1_ps(-INFINITY));
    result = _mm512_mask_mov_ps(result,
                                _mm512_cmp_ps_mask(x, _mm512_set1_ps(INFINITY), _CMP_EQ_OQ), x);
    return _mm512_mask_mov_ps(result, _mm512_cmp_ps_mask(x, _mm512_setzero_ps(), _CMP_NGE_UQ),
                              _mm512_set1_ps(NAN));
}
#endif

#if defined(__AVX2__) && defined(__FMA__)
/* exp(x) = 2^k * e^r with k = round(x / ln 2), |r| <= ln 2 / 2 (AVX2 has no 16-entry
 * permute for the AVX-512 kernel's table). e^r = 1 + r + r^2 (c2 + c3 r + c4 r^2 + c5 r^3):
 * coefficients fitted for the least largest relative error (1.05e-7) with the first two held
 * at 1, so exp(0) = 1 and small x stay accurate. k is rounded by adding and subtracting
 * 1.5 * 2^23 (cheaper than a round instruction), and 2^k is built in exponent fields as two
 * factors 2^(k/2) * 2^(k - k/2), so k = 128 (x near ln FLT_MAX) stays finite. Below
 * ln FLT_MIN the result is 0. For x <= ln FLT_MAX, -inf or NaN (softmax's shifted logits are
 * <= 0); max takes the NaN operand last, so NaN passes through. */
static inline __m256 nll_exp_nonpos_avx2(__m256 x) {
    const __m256 low = _mm256_set1_ps(-87.3365478515625f);
    const __m256 shifter = _mm256_set1_ps(0x1.8p23f);
    __m256 clamped = _mm256_max_ps(low, x);
    __m256 k = _mm256_sub_ps(_mm256_fmadd_ps(clamped, _mm256_set1_ps(NLL_EXP_LOG2E), shifter),
                             shifter);
    __m256 r = _mm256_fnmadd_ps(k, _mm256_set1_ps(NLL_EXP_LN2_HI), clamped);
    r = _mm256_fnmadd_ps(k, _mm256_set1_ps(NLL_EXP_LN2_LO), r);
    __m256 p = _mm256_set1_ps(0.008312526158988476f);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(0.041890114545822144f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(0.16667114198207855f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(0.499992311000824f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
    __m256i k_int = _mm256_cvtps_epi32(k);
    __m256i half = _mm256_srai_epi32(k_int, 1);
    const __m256i bias = _mm256_set1_epi32(127);
    __m256 first = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(half, bias), 23));
    __m256 second = _mm256_castsi256_ps(
        _mm256_slli_epi32(_mm256_add_epi32(_mm256_sub_epi32(k_int, half), bias), 23));
    __m256 result = _mm256_mul_ps(_mm256_mul_ps(p, first), second);
    return _mm256_blendv_ps(result, _mm256_setzero_ps(), _mm256_cmp_ps(x, low, _CMP_LT_OQ));
}

/* exp of any x: above ln FLT_MAX the result is inf */
static inline __m256 nll_exp_avx2(__m256 x) {
    const __m256 high = _mm256_set1_ps(88.72283935546875f);
    return _mm256_blendv_ps(nll_exp_nonpos_avx2(_mm256_min_ps(high, x)),
                            _mm256_set1_ps(INFINITY), _mm256_cmp_ps(x, high, _CMP_GT_OQ));
}

/* log as nll_log_avx512 computes it, with k and m taken from the bit fields: for zero, normal
 * and infinite inputs (a subnormal x is taken as 0). */
static inline __m256 nll_log_avx2(__m256 x) {
    __m256i bits = _mm256_castps_si256(x);
    __m256 k = _mm256_cvtepi32_ps(
        _mm256_sub_epi32(_mm256_srli_epi32(bits, 23), _mm256_set1_epi32(127)));
    __m256 m = _mm256_castsi256_ps(_mm256_or_si256(
        _mm256_and_si256(bits, _mm256_set1_epi32(0x007fffff)), _mm256_set1_epi32(0x3f800000)));
    __m256 high = _mm256_cmp_ps(m, _mm256_set1_ps(1.41421356f), _CMP_GT_OQ);
    m = _mm256_blendv_ps(m, _mm256_mul_ps(m, _mm256_set1_ps(0.5f)), high);
    k = _mm256_add_ps(k, _mm256_and_ps(high, _mm256_set1_ps(1.0f)));
    __m256 s = _mm256_div_ps(_mm256_sub_ps(m, _mm256_set1_ps(1.0f)),
                             _mm256_add_ps(m, _mm256_set1_ps(1.0f)));
    __m256 z = _mm256_mul_ps(s, s);
    __m256 p = _mm256_set1_ps(1.0f / 11);
    p = _mm256_fmadd_ps(p, z, _mm256_set1_ps(1.0f / 9));
    p = _mm256_fmadd_ps(p, z, _mm256_set1_ps(1.0f / 7));
    p = _mm256_fmadd_ps(p, z, _mm256_set1_ps(1.0f / 5));
    p = _mm256_fmadd_ps(p, z, _mm256_set1_ps(1.0f / 3));
    p = _mm256_mul_ps(_mm256_mul_ps(p, z), _mm256_add_ps(s, s));
    __m256 result = _mm256_fmadd_ps(k, _mm256_set1_ps(-2.12194440e-4f), _mm256_add_ps(p, _mm256_add_ps(s, s)));
    result = _mm256_fmadd_ps(k, _mm256_set1_ps(0.693359375f), result);
    result = _mm256_blendv_ps(result, _mm256_set1_ps(-INFINITY),
                              _mm256_cmp_ps(x, _mm256_set1_ps(1.17549435e-38f), _CMP_LT_OQ));
    result = _mm256_blendv_ps(result, x, _mm256_cmp_ps(x, _mm256_set1_ps(INFINITY), _CMP_EQ_OQ));
    return _mm256_blendv_ps(result, _mm256_set1_ps(NAN),
                            _mm256_cmp_ps(x, _mm256_setzero_ps(), _CMP_NGE_UQ));
}
#endif

#endif /* NLL_VMATH_H */
