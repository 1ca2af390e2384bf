/* A minimal libnll program: cross-entropy loss and its gradient for a batch of 4 samples over
 * 3 classes, in place of the logits, and what a bad label looks like. */
#include <stdio.h>

#include <nll.h>

static DLTensor tensor(void *data, DLDataType dtype, int ndim, int64_t *shape) {
    DLTensor t = {data, {kDLCPU, 0}, ndim, dtype, shape, NULL, 0};
    return t;
}

int main(void) {
    float logits[4][3] = {{2.0f, 0.5f, -1.0f}, {0.1f, 0.2f, 0.3f}, {-1.0f, 3.0f, 0.0f},
                          {0.0f, 0.0f, 0.0f}};
    int64_t labels[4] = {0, 2, 1, 1};
    float loss = 0;
    int64_t input_shape[2] = {4, 3}, target_shape[1] = {4};
    DLDataType f32 = {kDLFloat, 32, 1}, i64 = {kDLInt, 64, 1};
    DLTensor input = tensor(logits, f32, 2, input_shape);
    DLTensor target = tensor(labels, i64, 1, target_shape);
    DLTensor out = tensor(&loss, f32, 0, NULL);

    nll_context *ctx;
    if (nll_context_create(&ctx) != NLL_OK)
        return 1;
    nll_options options = nll_options_default(); /* mean, ignore_index -100 */

    labels[3] = 3; /* a 1-based label slips in: rejected, nothing written */
    nll_status status = nll_cross_entropy_forward(ctx, &input, &target, &options, &out);
    printf("with a bad label: %s\n  %s\n", nll_status_name(status), nll_last_error(ctx));
    if (status != NLL_ERROR_TARGET_RANGE)
        return 1;

    labels[3] = 2;
    /* The gradient replaces the logits: input doubles as grad_input. */
    if (nll_cross_entropy_fused(ctx, &input, &target, &options, &out, &input) != NLL_OK) {
        fprintf(stderr, "%s\n", nll_last_error(ctx));
        return 1;
    }
    printf("loss %.6f, d loss / d logits[0] = [%.6f, %.6f, %.6f]\n", loss, logits[0][0],
           logits[0][1], logits[0][2]);
    nll_context_destroy(ctx);
    return 0;
}
