/* The CUDA backend's entry points in a build without it. nll_view_make refuses CUDA tensors
 * there, so no op reaches the first two; the context's sync and release have nothing to do. */
#include "internal.h"

static nll_status no_backend(const nll_call *call) {
    return nll_fail(call, NLL_ERROR_UNSUPPORTED_DEVICE, "",
                    "this build of libnll has no CUDA backend");
}

nll_status nll_cuda_loss(const nll_call *call, const nll_loss_problem *p, int want_loss,
                         int want_grad) {
    (void)p, (void)want_loss, (void)want_grad;
    return no_backend(call);
}

nll_status nll_cuda_softmax(const nll_call *call, const nll_softmax_problem *p, int backward) {
    (void)p, (void)backward;
    return no_backend(call);
}

nll_status nll_cuda_sync(const nll_call *call) {
    (void)call;
    return NLL_OK;
}

void nll_cuda_release(nll_context *ctx) { (void)ctx; }

int nll_cuda_available(void) { return 0; }
