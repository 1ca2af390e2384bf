/* Regressions for the bugs the API fuzzer found (fuzz/fuzz_api.c); their fuzz inputs replay
 * from fuzz/corpus/api/bug*. Each ran into undefined behaviour, a hang or a data race; each
 * must now give a clean status, under ASan, UBSan and TSan alike. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include <nll.h>

static int failures;

#define EXPECT(cond, what)                                                                     \
    do {                                                                                       \
        if (!(cond)) {                                                                         \
            fprintf(stderr, "%s:%d: %s: %s\n", __FILE__, __LINE__, what, #cond);               \
            failures++;                                                                        \
        }                                                                                      \
    } while (0)

static double buffer[64];

/* 1: negative strides whose low extent is exactly INT64_MIN bytes negated INT64_MIN */
static void extent_at_int64_min(nll_context *ctx) {
    int64_t shape[1] = {2}, strides[1] = {-(INT64_C(1) << 60)};
    DLTensor in = {buffer, {kDLCPU, 0}, 1, {kDLFloat, 64, 1}, shape, strides, 0};
    DLTensor out = {buffer + 8, {kDLCPU, 0}, 1, {kDLFloat, 64, 1}, shape, NULL, 0};
    EXPECT(nll_log_softmax_forward(ctx, &in, 0, &out) == NLL_ERROR_SIZE_OVERFLOW, "bug 1");
}

/* 2: an empty tensor's byte_offset was applied to its pointer, past the address space */
static void empty_tensor_wild_offset(nll_context *ctx) {
    int64_t shape[1] = {0};
    DLTensor in = {buffer, {kDLCPU, 0}, 1, {kDLFloat, 64, 1}, shape, NULL, UINT64_MAX};
    DLTensor out = {buffer, {kDLCPU, 0}, 1, {kDLFloat, 64, 1}, shape, NULL, 0};
    EXPECT(nll_log_softmax_forward(ctx, &in, 0, &out) == NLL_OK, "bug 2");
}

/* 3: the rows of an empty tensor were counted past int64 before its 0 */
static void empty_rows_overflow(nll_context *ctx) {
    int64_t shape[4] = {INT64_C(1) << 62, 4, 0, 3};
    DLTensor in = {buffer, {kDLCPU, 0}, 4, {kDLFloat, 32, 1}, shape, NULL, 0};
    DLTensor out = {buffer + 8, {kDLCPU, 0}, 4, {kDLFloat, 32, 1}, shape, NULL, 0};
    EXPECT(nll_log_softmax_forward(ctx, &in, 3, &out) == NLL_OK, "bug 3");
}

/* 4: no classes and 2^40 samples of probabilities: 2^40 empty iterations. The mean divides
 * by numel / C = 0 / 0, NaN as in PyTorch. */
static void no_classes_many_samples(nll_context *ctx) {
    int64_t shape[2] = {INT64_C(1) << 40, 0};
    float loss = 0;
    DLTensor in = {buffer, {kDLCPU, 0}, 2, {kDLFloat, 32, 1}, shape, NULL, 0};
    DLTensor target = {buffer + 8, {kDLCPU, 0}, 2, {kDLFloat, 32, 1}, shape, NULL, 0};
    DLTensor out = {&loss, {kDLCPU, 0}, 0, {kDLFloat, 32, 1}, NULL, NULL, 0};
    nll_options options = nll_options_default();
    EXPECT(nll_cross_entropy_forward(ctx, &in, &target, &options, &out) == NLL_OK, "bug 4");
    EXPECT(isnan(loss), "bug 4: mean over no classes");
    options.reduction = NLL_REDUCTION_SUM;
    EXPECT(nll_cross_entropy_forward(ctx, &in, &target, &options, &out) == NLL_OK, "bug 4");
    EXPECT(loss == 0 && signbit(loss), "bug 4: the sum is -0, as PyTorch's -(empty sum)");
    /* 7: the gradient of those samples, empty too, was walked as well */
    DLTensor grad = {buffer + 24, {kDLCPU, 0}, 2, {kDLFloat, 32, 1}, shape, NULL, 0};
    EXPECT(nll_cross_entropy_backward(ctx, NULL, &in, &target, &options, &grad) == NLL_OK,
           "bug 7");
    EXPECT(nll_cross_entropy_fused(ctx, &in, &target, &options, &out, &grad) == NLL_OK, "bug 7");
}

/* 5: a row of no classes with NULL data reached pointer arithmetic on NULL */
static void empty_row_null_data(nll_context *ctx) {
    int64_t shape[1] = {0}, unit[1] = {1};
    uint16_t loss = 0x7fc0;
    DLTensor in = {NULL, {kDLCPU, 0}, 1, {kDLBfloat, 16, 1}, shape, unit, 0};
    DLTensor target = {buffer, {kDLCPU, 0}, 1, {kDLBfloat, 16, 1}, shape, NULL, 0};
    DLTensor grad = {buffer + 8, {kDLCPU, 0}, 1, {kDLBfloat, 16, 1}, shape, NULL, 0};
    DLTensor out = {&loss, {kDLCPU, 0}, 0, {kDLBfloat, 16, 1}, NULL, NULL, 0};
    nll_options options = nll_options_default();
    options.reduction = NLL_REDUCTION_NONE;
    static const char *const arches[] = {"ref", "avx2", "avx512", "avx512bf16"};
    for (int arch = 0; arch < 4; arch++) {
        EXPECT(nll_context_set_arch(ctx, arches[arch]) == NLL_OK, "bug 5");
        EXPECT(nll_cross_entropy_fused(ctx, &in, &target, &options, &out, &grad) == NLL_OK,
               "bug 5");
        EXPECT(loss == 0x8000, "bug 5: the loss of no classes is -0");
    }
}

/* 6: an output whose elements coincide through non-zero strides was accepted, and threads
 * wrote the same bytes at once */
static void output_overlapping_itself(nll_context *ctx) {
    static float x[2000 * 20], y[2000 + 20];
    int64_t shape[2] = {2000, 20}, strides[2] = {1, 1};
    DLTensor in = {x, {kDLCPU, 0}, 2, {kDLFloat, 32, 1}, shape, NULL, 0};
    DLTensor out = {y, {kDLCPU, 0}, 2, {kDLFloat, 32, 1}, shape, strides, 0};
    EXPECT(nll_context_set_threads(ctx, 2) == NLL_OK, "bug 6");
    EXPECT(nll_log_softmax_forward(ctx, &in, 1, &out) == NLL_ERROR_OVERLAP, "bug 6");
    EXPECT(strstr(nll_last_error(ctx), "output") != NULL, "bug 6: the message names output");
    /* layouts whose elements are distinct stay accepted: transposed and padded */
    int64_t transposed[2] = {1, 2000}, padded[2] = {21, 1};
    static float wide[2000 * 21];
    out.data = wide;
    out.strides = padded;
    EXPECT(nll_log_softmax_forward(ctx, &in, 1, &out) == NLL_OK, "bug 6: padded rows");
    out.strides = transposed;
    static float column[2000 * 20];
    out.data = column;
    EXPECT(nll_log_softmax_forward(ctx, &in, 1, &out) == NLL_OK, "bug 6: column-major");
}

int main(void) {
    nll_context *ctx;
    if (nll_context_create(&ctx) != NLL_OK)
        return 1;
    extent_at_int64_min(ctx);
    empty_tensor_wild_offset(ctx);
    empty_rows_overflow(ctx);
    no_classes_many_samples(ctx);
    empty_row_null_data(ctx);
    output_overlapping_itself(ctx);
    nll_context_destroy(ctx);
    printf("test_regressions: %d failed\n", failures);
    return failures != 0;
}
