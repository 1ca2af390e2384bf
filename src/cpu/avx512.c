/* AVX-512 kernels (F, BW, VL, DQ): the generic bodies with 16-lane float32 row primitives, for
 * float32, float16 and bfloat16 inputs. Compiled with AVX-512 enabled; run only when the
 * context's architecture says the CPU has it. float64 stays on the reference kernels. CPUs
 * with AVX-512 BF16 take the bfloat16 kernels of avx512_bf16.c instead. */
#include "avx512.h"

#define NLL_DTYPE_F32
#include "dtype.h"
#define NLL_VLOAD(p) _mm512_loadu_ps(p)
#define NLL_VLOADN(p, n, fill) _mm512_mask_loadu_ps(_mm512_set1_ps(fill), tail_mask(n), p)
#define NLL_VSTORE(p, v) _mm512_storeu_ps(p, v)
#define NLL_VSTOREN(p, v, n) _mm512_mask_storeu_ps(p, tail_mask(n), v)
#define NLL_VSTREAM2(p, a, b) (_mm512_stream_ps((void *)(p), a), _mm512_stream_ps((void *)((p) + 64), b))
#include "simd_rows.h"
#include "ref_body.h"

#define NLL_DTYPE_BF16
#include "dtype.h"
#define NLL_VLOAD(p) bf16_widen(_mm256_loadu_si256((const void *)(p)))
#define NLL_VLOADN(p, n, fill) fill_tail(bf16_widen(_mm256_maskz_loadu_epi16(tail_mask(n), p)), n, fill)
#define NLL_VSTORE(p, v) _mm256_storeu_si256((void *)(p), bf16_narrow(v))
#define NLL_VSTOREN(p, v, n) _mm256_mask_storeu_epi16(p, tail_mask(n), bf16_narrow(v))
#define NLL_VLOAD2(p, even, odd) bf16_load_pair(p, &(even), &(odd))
#define NLL_VSTORE2(p, even, odd) _mm512_storeu_si512(p, bf16_join_pair(even, odd))
#define NLL_VSTREAM2(p, even, odd) _mm512_stream_si512((void *)(p), bf16_join_pair(even, odd))
#define NLL_VJOIN2(even, odd) bf16_join_pair(even, odd)
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
