/* The CUDA side of the API that every build has, checked without a GPU: the stream and async
 * settings, nll_context_sync, and what a call on CUDA tensors says when no GPU serves it (the
 * tensors here are host memory, so a call wrongly accepted would fault). On a machine with a
 * GPU, tests/gpu/run.sh runs every op there. */
#include "check.h"

static void settings(void) {
    SECTION("context settings");
    nll_context *ctx = NULL;
    CHECK_INT(nll_context_create(&ctx), NLL_OK);
    CHECK(nll_context_cuda_stream(ctx) == NULL);
    int stream_stand_in;
    CHECK_INT(nll_context_set_cuda_stream(ctx, &stream_stand_in), NLL_OK);
    CHECK(nll_context_cuda_stream(ctx) == &stream_stand_in);
    CHECK_INT(nll_context_set_cuda_stream(ctx, NULL), NLL_OK);
    CHECK_INT(nll_context_set_async(ctx, 1), NLL_OK);
    CHECK_INT(nll_context_sync(ctx), NLL_OK); /* nothing was queued */
    CHECK_INT(nll_context_set_async(ctx, 0), NLL_OK);
    CHECK_INT(nll_context_set_cuda_stream(NULL, NULL), NLL_ERROR_NULL_ARGUMENT);
    CHECK_INT(nll_context_set_async(NULL, 1), NLL_ERROR_NULL_ARGUMENT);
    CHECK_INT(nll_context_sync(NULL), NLL_ERROR_NULL_ARGUMENT);
    CHECK(nll_context_cuda_stream(NULL) == NULL);
    CHECK_HAS(nll_status_name(NLL_ERROR_CUDA), "NLL_ERROR_CUDA");
    nll_context_destroy(ctx);
}

static void on_cuda(tt *x) {
    x->t.device.device_type = kDLCUDA;
    x->t.device.device_id = 0;
}

/* Whether this build has the CUDA backend: it compares the devices of a call's tensors, where
 * a build without it refuses the first CUDA tensor. */
static int has_backend(nll_context *ctx) {
    nll_options o = nll_options_default();
    tt *x = tvals(F32, 2, SH(2, 3), VD(1, 2, 3, 4, 5, 6));
    tt *t = tvals(I64, 1, SH(2), VD(0, 2));
    tt *loss = tscalar(F32, 0);
    on_cuda(x), on_cuda(loss);
    return nll_cross_entropy_forward(ctx, TT(x), TT(t), &o, TT(loss)) ==
           NLL_ERROR_DEVICE_MISMATCH;
}

static void without_gpu(void) {
    nll_context *ctx = NULL;
    CHECK_INT(nll_context_create(&ctx), NLL_OK);
    nll_options o = nll_options_default();

    SECTION("a call on CUDA tensors without a GPU");
    tt *x = tvals(F32, 2, SH(2, 3), VD(1, 2, 3, 4, 5, 6));
    tt *t = tvals(I64, 1, SH(2), VD(0, 2));
    tt *loss = tscalar(F32, -7);
    tt *grad = tvals(F32, 2, SH(2, 3), VD(-1, -1, -1, -1, -1, -1));
    on_cuda(x), on_cuda(t), on_cuda(loss), on_cuda(grad);
    nll_status s = nll_cross_entropy_fused(ctx, TT(x), TT(t), &o, TT(loss), TT(grad));
    CHECK(s == NLL_ERROR_CUDA || s == NLL_ERROR_UNSUPPORTED_DEVICE);
    CHECK_HAS(nll_last_error(ctx), "nll_cross_entropy_fused: input is on cuda:0");
    nll_error_detail d;
    nll_last_error_detail(ctx, &d);
    CHECK_HAS(d.tensor, "input");
    CHECK(*(float *)loss->t.data == -7.0f);
    for (int k = 0; k < 6; k++)
        CHECK(((float *)grad->t.data)[k] == -1.0f);
    s = nll_log_softmax_forward(ctx, TT(x), 1, TT(grad));
    CHECK(s == NLL_ERROR_CUDA || s == NLL_ERROR_UNSUPPORTED_DEVICE);
    CHECK_HAS(nll_last_error(ctx), "input is on cuda:0");

    SECTION("a floating target on CUDA: a dtype error before the device is needed");
    /* With the backend, validation rejects it as on the CPU, GPU or none (the call never
     * reaches the backend, which here would say there is no GPU); without the backend the
     * tensor's device is refused first. */
    const int backend = has_backend(ctx);
    tt *t_float = tvals(F32, 1, SH(2), VD(0, 2));
    on_cuda(t_float);
    nll_options allow = nll_options_default();
    allow.flags = NLL_ALLOW_FLOAT_TARGETS;
    s = nll_cross_entropy_forward(ctx, TT(x), TT(t_float), &allow, TT(loss));
    CHECK(s == NLL_ERROR_CUDA || s == NLL_ERROR_UNSUPPORTED_DEVICE); /* values: on the GPU */
    s = nll_cross_entropy_forward(ctx, TT(x), TT(t_float), &o, TT(loss));
    if (backend) {
        CHECK_INT(s, NLL_ERROR_FLOAT_TARGET);
        /* the CPU's message up to its facts about the values, which stay unread here */
        const char *prefix = "nll_cross_entropy_forward: target has dtype float32, but class "
                             "indices must be integers";
        CHECK_HAS(nll_last_error(ctx), prefix);
        CHECK_HAS(nll_last_error(ctx), "NLL_ALLOW_FLOAT_TARGETS");
        CHECK_HAS(nll_last_error(ctx), "the target must have the input's exact shape (2, 3)");
        nll_last_error_detail(ctx, &d);
        CHECK_HAS(d.tensor, "target");
        tt *x_cpu = tvals(F32, 2, SH(2, 3), VD(1, 2, 3, 4, 5, 6));
        tt *t_cpu = tvals(F32, 1, SH(2), VD(0, 2));
        tt *loss_cpu = tscalar(F32, 0);
        CHECK_INT(nll_cross_entropy_forward(ctx, TT(x_cpu), TT(t_cpu), &o, TT(loss_cpu)),
                  NLL_ERROR_FLOAT_TARGET);
        CHECK(strncmp(nll_last_error(ctx), prefix, strlen(prefix)) == 0);
        s = nll_loss_forward(ctx, TT(x), TT(t_float), &o, TT(loss), NULL);
        CHECK_INT(s, NLL_ERROR_FLOAT_TARGET);
        CHECK_HAS(nll_last_error(ctx), "nll_loss_forward: target has dtype float32, but class "
                                       "indices must be integers");
        CHECK_HAS(nll_last_error(ctx), "use cross_entropy with a target of the input's exact");
        tt *t_half = tvals(F16, 1, SH(2), VD(0, 2));
        on_cuda(t_half);
        CHECK_INT(nll_cross_entropy_fused(ctx, TT(x), TT(t_half), &o, TT(loss), TT(grad)),
                  NLL_ERROR_FLOAT_TARGET);
        CHECK_HAS(nll_last_error(ctx), "target has dtype float16, but class indices must be");
        CHECK_INT(nll_cross_entropy_backward(ctx, NULL, TT(x), TT(t_float), &o, TT(grad)),
                  NLL_ERROR_FLOAT_TARGET);
        /* asynchronous mode: the call itself says so, nothing is left for the sync */
        CHECK_INT(nll_context_set_async(ctx, 1), NLL_OK);
        CHECK_INT(nll_cross_entropy_forward(ctx, TT(x), TT(t_float), &o, TT(loss)),
                  NLL_ERROR_FLOAT_TARGET);
        CHECK_INT(nll_context_sync(ctx), NLL_OK);
        CHECK_INT(nll_context_set_async(ctx, 0), NLL_OK);
    } else {
        CHECK_INT(s, NLL_ERROR_UNSUPPORTED_DEVICE);
    }
    CHECK(*(float *)loss->t.data == -7.0f);
    for (int k = 0; k < 6; k++)
        CHECK(((float *)grad->t.data)[k] == -1.0f);

    SECTION("CUDA and CPU tensors in one call");
    tt *t_host = tvals(I64, 1, SH(2), VD(0, 2));
    s = nll_cross_entropy_forward(ctx, TT(x), TT(t_host), &o, TT(loss));
    if (s == NLL_ERROR_DEVICE_MISMATCH) /* a build with the backend: both devices named */
        CHECK_HAS(nll_last_error(ctx), "target is on cpu but input is on cuda:0");
    else
        CHECK_INT(s, NLL_ERROR_UNSUPPORTED_DEVICE);

    SECTION("the next CPU call works");
    tt *x_host = tvals(F32, 2, SH(2, 3), VD(1, 2, 3, 4, 5, 6));
    tt *loss_host = tscalar(F32, 0);
    CHECK_INT(nll_cross_entropy_forward(ctx, TT(x_host), TT(t_host), &o, TT(loss_host)), NLL_OK);
    /* mean of -log_softmax at the targets: rows (1,2,3) t=0 and (4,5,6) t=2 */
    double lse = log(exp(1.0) + exp(2.0) + exp(3.0));
    double want = ((lse - 1.0) + (lse - 3.0)) / 2.0;
    CHECK(fabs(*(float *)loss_host->t.data - want) < 1e-6);
    CHECK_INT(nll_context_sync(ctx), NLL_OK);
    nll_context_destroy(ctx);
}

int main(void) {
    settings();
    if (!nll_cuda_available())
        without_gpu();
    return check_finish("test_cuda");
}
