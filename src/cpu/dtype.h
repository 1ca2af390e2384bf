/* Per-dtype parameters of the generic kernel bodies. Define one of NLL_DTYPE_F64, _F32, _F16,
 * _BF16, then include this file: it defines
 *   NLL_T             the storage type            NLL_A          the compute type
 *   NLL_LOAD(v)       NLL_T -> NLL_A              NLL_STORE(a)   NLL_A -> NLL_T
 *   NLL_STORE_DOUBLE  double -> NLL_T, rounded once (reduced results are summed in double)
 *   NLL_EXP, NLL_LOG  exp and log in NLL_A        NLL_SUFFIX     the name suffix
 * and FN(name), the name with the suffix, plus the element helpers every body shares.
 * ref_body.h, included last, #undefs them all. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../convert.h"
#include "../internal.h"

#if defined(NLL_DTYPE_F64)
#define NLL_T double
#define NLL_A double
#define NLL_LOAD(v) (v)
#define NLL_STORE(a) (a)
#define NLL_STORE_DOUBLE(d) (d)
#define NLL_EXP exp
#define NLL_LOG log
#define NLL_SUFFIX f64
#undef NLL_DTYPE_F64
#elif defined(NLL_DTYPE_F32)
#define NLL_T float
#define NLL_A float
#define NLL_LOAD(v) (v)
#define NLL_STORE(a) (a)
#define NLL_STORE_DOUBLE(d) ((float)(d))
#define NLL_EXP expf
#define NLL_LOG logf
#define NLL_SUFFIX f32
#undef NLL_DTYPE_F32
#elif defined(NLL_DTYPE_F16)
#define NLL_T uint16_t
#define NLL_A float
#define NLL_LOAD(v) nll_half_to_float(v)
#define NLL_STORE(a) nll_float_to_half(a)
#define NLL_STORE_DOUBLE(d) nll_float_to_half(nll_round_to_odd_float(d))
#define NLL_EXP expf
#define NLL_LOG logf
#define NLL_SUFFIX f16
#undef NLL_DTYPE_F16
#elif defined(NLL_DTYPE_BF16)
#define NLL_T uint16_t
#define NLL_A float
#define NLL_LOAD(v) nll_bfloat_to_float(v)
#define NLL_STORE(a) nll_float_to_bfloat(a)
#define NLL_STORE_DOUBLE(d) nll_float_to_bfloat(nll_round_to_odd_float(d))
#define NLL_EXP expf
#define NLL_LOG logf
#define NLL_SUFFIX bf16
#undef NLL_DTYPE_BF16
#else
#error "define NLL_DTYPE_F64, NLL_DTYPE_F32, NLL_DTYPE_F16 or NLL_DTYPE_BF16 first"
#endif

/* For the small steps of a row that are shared by the whole-row and the split walks: inlined
 * into each, so that nothing the row keeps goes through memory. */
#ifndef NLL_ROW_STEP
#if defined(__GNUC__)
#define NLL_ROW_STEP static inline __attribute__((always_inline))
#else
#define NLL_ROW_STEP static inline
#endif
#endif

#define NLL_JOIN_(a, b) a##_##b
#define NLL_JOIN(a, b) NLL_JOIN_(a, b)
#define FN(name) NLL_JOIN(name, NLL_SUFFIX)

static inline NLL_A FN(load)(const char *base, int64_t offset) {
    NLL_T v;
    memcpy(&v, base + offset * (int64_t)sizeof(NLL_T), sizeof v);
    return NLL_LOAD(v);
}

static inline void FN(store)(char *base, int64_t offset, NLL_A value) {
    NLL_T v = NLL_STORE(value);
    memcpy(base + offset * (int64_t)sizeof(NLL_T), &v, sizeof v);
}

static inline void FN(store_double)(char *base, double value) {
    NLL_T v = NLL_STORE_DOUBLE(value);
    memcpy(base, &v, sizeof v);
}

/* What one class-index gradient row needs. With G the gradient with respect to log_softmax —
 * target_g at the target, minus smooth_g * w[c] everywhere when smoothing — the row is
 * G_c - softmax_c * sum_g, composed as PyTorch composes it so NaN and inf land alike. */
typedef struct FN(gradient_terms) {
    NLL_A max, log_sum;
    NLL_A sum_g, smooth_g, target_g;
    int64_t target; /* -1 for an ignored sample */
    int smoothing;
} FN(gradient_terms);

/* Folds one block's shift (its max, or a value near it: FN(block_stats)) and sum of
 * exp(x - shift) into a row's running pair; the row's `max` is then the largest shift, a
 * value its exponentials are taken against, the max itself or a little below it. A row's
 * statistics are this fold over fixed blocks in order, wherever the blocks were computed. An
 * all -inf block adds nothing, but a NaN in it (a NaN never wins the max) poisons the sum.
 * A poisoned sum is the one quiet NaN: which input NaN's payload a sum of NaNs carries
 * depends on how the compiler ordered the operands of each copy of the block code, and the
 * split and whole-row walks must give the same bits. */
static inline void FN(fold_stats)(NLL_A *max, double *sum, NLL_A block_shift,
                                  double block_sum) {
    if (*sum != *sum || block_sum != block_sum) {
        *sum = NAN;
    } else if (block_shift == -INFINITY) {
        return;
    } else if (*max == -INFINITY) { /* the first block with a finite max: nothing to rescale */
        *sum = block_sum;
        *max = block_shift;
    } else if (block_shift > *max) {
        *sum = *sum * exp((double)*max - block_shift) + block_sum;
        *max = block_shift;
    } else {
        *sum += block_sum * exp((double)block_shift - *max);
    }
}
