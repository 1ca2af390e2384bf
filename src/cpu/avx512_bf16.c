/* AVX-512 with the BF16 extension: the bfloat16 kernels of avx512.c, rounding float32 to
 * bfloat16 with vcvtneps2bf16 / vcvtne2ps2bf16, one instruction for what takes six integer
 * steps there. Those instructions flush subnormals: a result below 2^-126 in magnitude becomes
 * a signed zero (PyTorch would round it to a bfloat16 subnormal). Compiled with AVX-512 BF16
 * enabled; run only when the context's architecture says the CPU has it. */
#include "avx512.h"

static inline __m256i bf16_narrow_insn(__m512 v) { return (__m256i)_mm512_cvtneps_pbh(v); }

/* bf16_join_pair's result: both vectors rounded at once, then the even and odd halves
 * interleaved back into element order */
static inline __m512i bf16_join_pair_insn(__m512 even, __m512 odd) {
    const __m512i interleave =
        _mm512_set_epi16(31, 15, 30, 14, 29, 13, 28, 12, 27, 11, 26, 10, 25, 9, 24, 8, 23, 7,
                         22, 6, 21, 5, 20, 4, 19, 3, 18, 2, 17, 1, 16, 0);
    __m512i halves = (__m512i)_mm512_cvtne2ps_pbh(odd, even); /* even in words 0-15 */
    return _mm512_permutexvar_epi16(interleave, halves);
}

#define NLL_DTYPE_BF16
#include "dtype.h"
#define NLL_VLOAD(p) bf16_widen(_mm256_loadu_si256((const void *)(p)))
#define NLL_VLOADN(p, n, fill) fill_tail(bf16_widen(_mm256_maskz_loadu_epi16(tail_mask(n), p)), n, fill)
#define NLL_VSTORE(p, v) _mm256_storeu_si256((void *)(p), bf16_narrow_insn(v))
#define NLL_VSTOREN(p, v, n) _mm256_mask_storeu_epi16(p, tail_mask(n), bf16_narrow_insn(v))
#define NLL_VLOAD2(p, even, odd) bf16_load_pair(p, &(even), &(odd))
#define NLL_VSTORE2(p, even, odd) _mm512_storeu_si512(p, bf16_join_pair_insn(even, odd))
#define NLL_VSTREAM2(p, even, odd) _mm512_stream_si512((void *)(p), bf16_join_pair_insn(even, odd))
#define NLL_VJOIN2(even, odd) bf16_join_pair_insn(even, odd)
#include "simd_rows.h"
#include "ref_body.h"

/* bfloat16 only: every other dtype takes avx512.c's kernels */
const nll_loss_kernels nll_avx512_bf16_kernels[NLL_KIND_COUNT] = {
    [NLL_KIND_BF16] = NLL_KERNEL_ENTRY(bf16),
};
