/* AVX-512 kernels (F, BW, VL, DQ): the generic bodies with 16-lane float32 row primitives, for
 * float32, float16 and bfloat16 inputs. Compiled with AVX-512 enabled; run only when the
 * context's architecture says the CPU has it. float64 stays on the reference kernels. */
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
#define NLL_VLOADF(p) _mm512_loadu_ps(p)
#define NLL_VSTOREF(p, v) _mm512_storeu_ps(p, v)
#define NLL_VLOADFN(p, n) _mm512_maskz_loadu_ps(tail_mask(n), p)
#define NLL_VSTOREFN(p, v, n) _mm512_mask_storeu_ps(p, tail_mask(n), v)
#define NLL_VLOG(v) nll_log_avx512(v)
#define NLL_VHSUM(v) _mm512_reduce_add_ps(v)
#define NLL_VHMAX(v) _mm512_reduce_max_ps(v)
#define NLL_VKEEP(v, n) _mm512_maskz_mov_ps(tail_mask(n), v)

/* 16-bit lanes widened to float32 and back (round to nearest even; NaN stays NaN). */
static inline __m512 bf16_widen(__m256i raw) {
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(raw), 16));
}

static inline __m256i bf16_narrow(__m512 v) {
    __m512i bits = _mm512_castps_si512(v);
    __m512i odd = _mm512_and_si512(_mm512_srli_epi32(bits, 16), _mm512_set1_epi32(1));
    __m512i rounded = _mm512_add_epi32(bits, _mm512_add_epi32(_mm512_set1_epi32(0x7fff), odd));
    __mmask16 nan = _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q);
    rounded = _mm512_mask_mov_epi32(rounded, nan,
                                    _mm512_or_si512(bits, _mm512_set1_epi32(0x00400000)));
    return _mm512_cvtepi32_epi16(_mm512_srli_epi32(rounded, 16));
}

static inline __m256i half_narrow(__m512 v) {
    return _mm512_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
}

static inline __m512 fill_tail(__m512 v, int64_t n, float fill) {
    return _mm512_mask_blend_ps(tail_mask(n), _mm512_set1_ps(fill), v);
}

#define NLL_DTYPE_F32
#include "dtype.h"
#define NLL_VLOAD(p) _mm512_loadu_ps(p)
#define NLL_VLOADN(p, n, fill) _mm512_mask_loadu_ps(_mm512_set1_ps(fill), tail_mask(n), p)
#define NLL_VSTORE(p, v) _mm512_storeu_ps(p, v)
#define NLL_VSTOREN(p, v, n) _mm512_mask_storeu_ps(p, tail_mask(n), v)
#include "simd_rows.h"
#include "ref_body.h"

#define NLL_DTYPE_BF16
#include "dtype.h"
#define NLL_VLOAD(p) bf16_widen(_mm256_loadu_si256((const void *)(p)))
#define NLL_VLOADN(p, n, fill) fill_tail(bf16_widen(_mm256_maskz_loadu_epi16(tail_mask(n), p)), n, fill)
#define NLL_VSTORE(p, v) _mm256_storeu_si256((void *)(p), bf16_narrow(v))
#define NLL_VSTOREN(p, v, n) _mm256_mask_storeu_epi16(p, tail_mask(n), bf16_narrow(v))
#include "simd_rows.h"
#include "ref_body.h"

#define NLL_DTYPE_F16
#include "dtype.h"
#define NLL_VLOAD(p) _mm512_cvtph_ps(_mm256_loadu_si256((const void *)(p)))
#define NLL_VLOADN(p, n, fill) fill_tail(_mm512_cvtph_ps(_mm256_maskz_loadu_epi16(tail_mask(n), p)), n, fill)
#define NLL_VSTORE(p, v) _mm256_storeu_si256((void *)(p), half_narrow(v))
#define NLL_VSTOREN(p, v, n) _mm256_mask_storeu_epi16(p, tail_mask(n), half_narrow(v))
#include "simd_rows.h"
#include "ref_body.h"

/* float64 has no entry: the dispatcher sends it to the reference kernels */
const nll_loss_kernels nll_avx512_kernels[NLL_KIND_COUNT] = {
    [NLL_KIND_F32] = NLL_KERNEL_ENTRY(f32),
    [NLL_KIND_F16] = NLL_KERNEL_ENTRY(f16),
    [NLL_KIND_BF16] = NLL_KERNEL_ENTRY(bf16),
};
