/* The public entry points: validate (src/validate.c), then dispatch by device -- the GPU
 * (src/cuda/) or, by instruction set and dtype, a CPU kernel (src/cpu/arch.c). */
#include "internal.h"

/* Every entry point runs its body the same way: a usable context, taken for the call (not
 * when another thread's call holds it: NLL_ERROR_CONTEXT_BUSY, its error record untouched),
 * a clean error record, and the context given back on every path. */
#define NLL_ENTRY(body)                                                                        \
    if (!ctx)                                                                                  \
        return NLL_ERROR_NULL_ARGUMENT;                                                        \
    if (nll_context_enter(ctx) != NLL_OK)                                                      \
        return NLL_ERROR_CONTEXT_BUSY;                                                         \
    nll_clear_error(ctx);                                                                      \
    const nll_status result = (body);                                                          \
    nll_context_leave(ctx);                                                                    \
    return result

/* A body's start: where its errors go. */
#define NLL_BEGIN(name)                                                                        \
    const nll_call call = {ctx, name};                                                         \
    nll_status status

static nll_status require(const nll_call *call, const void *pointer, const char *name) {
    return pointer ? NLL_OK : nll_fail(call, NLL_ERROR_NULL_ARGUMENT, name, "%s is NULL", name);
}

/* The one dispatch of a validated loss problem: the GPU for CUDA tensors, else the CPU kernels
 * of the context's instruction set. want_loss / want_grad: forward, backward or both. */
static nll_status run_loss(const nll_call *call, nll_loss_problem *p, int want_loss,
                           int want_grad) {
    if (p->on_device)
        return nll_cuda_loss(call, p, want_loss, want_grad);
    p->threads = call->ctx->threads;
    p->pool = call->ctx->pool;
    const nll_loss_kernels *kernels = nll_kernels_for(call->ctx->arch, p->kind);
    if (p->op == NLL_OP_CROSS_ENTROPY)
        kernels->cross_entropy(p, want_loss, want_grad);
    else if (want_loss)
        kernels->nll_forward(p);
    else
        kernels->nll_backward(p);
    return NLL_OK;
}

static nll_status run_softmax(const nll_call *call, nll_softmax_problem *p, int backward) {
    if (p->on_device)
        return nll_cuda_softmax(call, p, backward);
    p->threads = call->ctx->threads;
    p->pool = call->ctx->pool;
    const nll_loss_kernels *kernels = nll_kernels_for(call->ctx->arch, p->kind);
    (backward ? kernels->log_softmax_backward : kernels->log_softmax_forward)(p);
    return NLL_OK;
}

static nll_status log_softmax_forward_body(nll_context *ctx, const DLTensor *input, int64_t dim,
                                           DLTensor *output) {
    NLL_BEGIN("nll_log_softmax_forward");
    nll_softmax_problem p;
    if ((status = require(&call, input, "input")) || (status = require(&call, output, "output")) ||
        (status = nll_validate_softmax(&call, input, output, NULL, NULL, dim, &p)))
        return status;
    return run_softmax(&call, &p, 0);
}

static nll_status log_softmax_backward_body(nll_context *ctx, const DLTensor *grad_output,
                                            const DLTensor *output, int64_t dim,
                                            DLTensor *grad_input) {
    NLL_BEGIN("nll_log_softmax_backward");
    nll_softmax_problem p;
    if ((status = require(&call, grad_output, "grad_output")) ||
        (status = require(&call, output, "output")) ||
        (status = require(&call, grad_input, "grad_input")) ||
        (status = nll_validate_softmax(&call, NULL, output, grad_output, grad_input, dim, &p)))
        return status;
    return run_softmax(&call, &p, 1);
}

static nll_status loss_forward_body(nll_context *ctx, const DLTensor *input, const DLTensor *target,
                                    const nll_options *options, DLTensor *loss,
                                    DLTensor *total_weight) {
    NLL_BEGIN("nll_loss_forward");
    nll_loss_problem p;
    if ((status = require(&call, loss, "loss")) ||
        (status = nll_validate_loss(&call, NLL_OP_NLL, input, target, options, loss,
                                    total_weight, NULL, NULL, &p)))
        return status;
    return run_loss(&call, &p, 1, 0);
}

static nll_status loss_backward_body(nll_context *ctx, const DLTensor *grad_loss,
                                     const DLTensor *input, const DLTensor *target,
                                     const nll_options *options, DLTensor *grad_input) {
    NLL_BEGIN("nll_loss_backward");
    nll_loss_problem p;
    if ((status = require(&call, grad_input, "grad_input")) ||
        (status = nll_validate_loss(&call, NLL_OP_NLL, input, target, options, NULL, NULL,
                                    grad_loss, grad_input, &p)))
        return status;
    return run_loss(&call, &p, 0, 1);
}

static nll_status cross_entropy_forward_body(nll_context *ctx, const DLTensor *input,
                                             const DLTensor *target, const nll_options *options,
                                             DLTensor *loss) {
    NLL_BEGIN("nll_cross_entropy_forward");
    nll_loss_problem p;
    if ((status = require(&call, loss, "loss")) ||
        (status = nll_validate_loss(&call, NLL_OP_CROSS_ENTROPY, input, target, options, loss,
                                    NULL, NULL, NULL, &p)))
        return status;
    return run_loss(&call, &p, 1, 0);
}

static nll_status cross_entropy_backward_body(nll_context *ctx, const DLTensor *grad_loss,
                                              const DLTensor *input, const DLTensor *target,
                                              const nll_options *options, DLTensor *grad_input) {
    NLL_BEGIN("nll_cross_entropy_backward");
    nll_loss_problem p;
    if ((status = require(&call, grad_input, "grad_input")) ||
        (status = nll_validate_loss(&call, NLL_OP_CROSS_ENTROPY, input, target, options, NULL,
                                    NULL, grad_loss, grad_input, &p)))
        return status;
    return run_loss(&call, &p, 0, 1);
}

static nll_status cross_entropy_fused_body(nll_context *ctx, const DLTensor *input,
                                           const DLTensor *target, const nll_options *options,
                                           DLTensor *loss, DLTensor *grad_input) {
    NLL_BEGIN("nll_cross_entropy_fused");
    nll_loss_problem p;
    if ((status = require(&call, loss, "loss")) ||
        (status = require(&call, grad_input, "grad_input")) ||
        (status = nll_validate_loss(&call, NLL_OP_CROSS_ENTROPY, input, target, options, loss,
                                    NULL, NULL, grad_input, &p)))
        return status;
    return run_loss(&call, &p, 1, 1);
}

/* ---- the public entry points ---------------------------------------------------------- */

nll_status nll_log_softmax_forward(nll_context *ctx, const DLTensor *input, int64_t dim,
                                   DLTensor *output) {
    NLL_ENTRY(log_softmax_forward_body(ctx, input, dim, output));
}

nll_status nll_log_softmax_backward(nll_context *ctx, const DLTensor *grad_output,
                                    const DLTensor *output, int64_t dim, DLTensor *grad_input) {
    NLL_ENTRY(log_softmax_backward_body(ctx, grad_output, output, dim, grad_input));
}

nll_status nll_loss_forward(nll_context *ctx, const DLTensor *input, const DLTensor *target,
                            const nll_options *options, DLTensor *loss, DLTensor *total_weight) {
    NLL_ENTRY(loss_forward_body(ctx, input, target, options, loss, total_weight));
}

nll_status nll_loss_backward(nll_context *ctx, const DLTensor *grad_loss, const DLTensor *input,
                             const DLTensor *target, const nll_options *options,
                             DLTensor *grad_input) {
    NLL_ENTRY(loss_backward_body(ctx, grad_loss, input, target, options, grad_input));
}

nll_status nll_cross_entropy_forward(nll_context *ctx, const DLTensor *input,
                                     const DLTensor *target, const nll_options *options,
                                     DLTensor *loss) {
    NLL_ENTRY(cross_entropy_forward_body(ctx, input, target, options, loss));
}

nll_status nll_cross_entropy_backward(nll_context *ctx, const DLTensor *grad_loss,
                                      const DLTensor *input, const DLTensor *target,
                                      const nll_options *options, DLTensor *grad_input) {
    NLL_ENTRY(cross_entropy_backward_body(ctx, grad_loss, input, target, options, grad_input));
}

nll_status nll_cross_entropy_fused(nll_context *ctx, const DLTensor *input,
                                   const DLTensor *target, const nll_options *options,
                                   DLTensor *loss, DLTensor *grad_input) {
    NLL_ENTRY(cross_entropy_fused_body(ctx, input, target, options, loss, grad_input));
}
