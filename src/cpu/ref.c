/* The scalar reference kernels, always built: the oracle for every faster path. The generic
 * body in ref_body.h is instantiated once per input dtype; 16-bit types compute in float32. */
#include <math.h>
#include <string.h>

#include "../convert.h"
#include "../internal.h"

/* double -> float rounding to odd: a second rounding (to float16 or bfloat16) of the result
 * then equals a single correct rounding of the double. */
static inline float round_to_odd_float(double value) {
    float f = (float)value;
    if ((double)f == value || value != value || isinf(f))
        return f;
    uint32_t bits = nll_float_to_bits(f);
    if (fabs((double)f) > fabs(value))
        bits -= 1; /* step toward zero */
    return nll_bits_to_float(bits | 1u);
}

#define NLL_T double
#define NLL_A double
#define NLL_LOAD(v) (v)
#define NLL_STORE(a) (a)
#define NLL_STORE_DOUBLE(d) (d)
#define NLL_EXP exp
#define NLL_LOG log
#define NLL_SUFFIX f64
#include "ref_body.h"

#define NLL_T float
#define NLL_A float
#define NLL_LOAD(v) (v)
#define NLL_STORE(a) (a)
#define NLL_STORE_DOUBLE(d) ((float)(d))
#define NLL_EXP expf
#define NLL_LOG logf
#define NLL_SUFFIX f32
#include "ref_body.h"

#define NLL_T uint16_t
#define NLL_A float
#define NLL_LOAD(v) nll_half_to_float(v)
#define NLL_STORE(a) nll_float_to_half(a)
#define NLL_STORE_DOUBLE(d) nll_float_to_half(round_to_odd_float(d))
#define NLL_EXP expf
#define NLL_LOG logf
#define NLL_SUFFIX f16
#include "ref_body.h"

#define NLL_T uint16_t
#define NLL_A float
#define NLL_LOAD(v) nll_bfloat_to_float(v)
#define NLL_STORE(a) nll_float_to_bfloat(a)
#define NLL_STORE_DOUBLE(d) nll_float_to_bfloat(round_to_odd_float(d))
#define NLL_EXP expf
#define NLL_LOG logf
#define NLL_SUFFIX bf16
#include "ref_body.h"

#define NLL_KERNELS(suffix)                                                                    \
    {nll_forward_##suffix, nll_backward_##suffix, cross_entropy_##suffix,                     \
     log_softmax_forward_##suffix, log_softmax_backward_##suffix}

const nll_loss_kernels nll_ref_kernels[NLL_KIND_COUNT] = {
    [NLL_KIND_F64] = NLL_KERNELS(f64),
    [NLL_KIND_F32] = NLL_KERNELS(f32),
    [NLL_KIND_F16] = NLL_KERNELS(f16),
    [NLL_KIND_BF16] = NLL_KERNELS(bf16),
};
