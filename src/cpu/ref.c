/* The scalar reference kernels, always built: the oracle for every faster path. The generic
 * body in ref_body.h is instantiated once per input dtype; 16-bit types compute in float32. */
#include "../internal.h"

#define NLL_DTYPE_F64
#include "dtype.h"
#include "ref_body.h"

#define NLL_DTYPE_F32
#include "dtype.h"
#include "ref_body.h"

#define NLL_DTYPE_F16
#include "dtype.h"
#include "ref_body.h"

#define NLL_DTYPE_BF16
#include "dtype.h"
#include "ref_body.h"

const nll_loss_kernels nll_ref_kernels[NLL_KIND_COUNT] = {
    [NLL_KIND_F64] = NLL_KERNEL_ENTRY(f64),
    [NLL_KIND_F32] = NLL_KERNEL_ENTRY(f32),
    [NLL_KIND_F16] = NLL_KERNEL_ENTRY(f16),
    [NLL_KIND_BF16] = NLL_KERNEL_ENTRY(bf16),
};
