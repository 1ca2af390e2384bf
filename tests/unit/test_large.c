/* Fused gradients too large for the caches (from 64 MiB, NLL_STREAM_BYTES in src/cpu/ref_body.h)
 * go to memory by streaming stores, each row from its first 64-byte boundary (bfloat16 cuts
 * those 64 bytes from two joined pairs). Such a call must
 * give the same bits as the in-place call, which never streams, for float32 and bfloat16, on
 * 1 and 2 threads. C is odd, so the rows' starts take every alignment. Skipped with
 * NLL_TEST_SMALL (valgrind): the tensors are 68 MB each. */
#include "check.h"

static void fused_separate_equals_in_place(nll_context *ctx, DLDataType dtype, int64_t rows,
                                           int64_t classes) {
    const size_t item = dtype.bits / 8, bytes = (size_t)(rows * classes) * item;
    unsigned char *logits = malloc(bytes), *grad = malloc(bytes), *in_place = malloc(bytes);
    int64_t *target = malloc(sizeof(int64_t) * (size_t)rows);
    CHECK(logits && grad && in_place && target);
    if (!logits || !grad || !in_place || !target)
        goto done;
    uint64_t state = 0x9E3779B97F4A7C15ull;
    for (size_t i = 0; i < bytes / item; i++) {
        state = state * 6364136223846793005ull + 1442695040888963407ull;
        float v = (float)((double)(state >> 40) / (double)(1 << 24) * 16.0 - 8.0);
        if (item == 4) {
            memcpy(logits + 4 * i, &v, 4);
        } else { /* bfloat16: the high half, truncated */
            uint32_t u;
            memcpy(&u, &v, 4);
            uint16_t h = (uint16_t)(u >> 16);
            memcpy(logits + 2 * i, &h, 2);
        }
    }
    for (int64_t r = 0; r < rows; r++)
        target[r] = r % 7 == 3 ? -100 : (r * 7919) % classes;
    memcpy(in_place, logits, bytes);
    int64_t shape[2] = {rows, classes}, t_shape[1] = {rows};
    double loss_a = 0, loss_b = 0;
    DLTensor x = {logits, {kDLCPU, 0}, 2, dtype, shape, NULL, 0};
    DLTensor y = {in_place, {kDLCPU, 0}, 2, dtype, shape, NULL, 0};
    DLTensor g = {grad, {kDLCPU, 0}, 2, dtype, shape, NULL, 0};
    DLTensor t = {target, {kDLCPU, 0}, 1, {kDLInt, 64, 1}, t_shape, NULL, 0};
    DLTensor la = {&loss_a, {kDLCPU, 0}, 0, {kDLFloat, 64, 1}, NULL, NULL, 0};
    DLTensor lb = {&loss_b, {kDLCPU, 0}, 0, {kDLFloat, 64, 1}, NULL, NULL, 0};
    nll_options options = nll_options_default();
    la.dtype = lb.dtype = dtype;
    CHECK_STATUS(nll_cross_entropy_fused(ctx, &x, &t, &options, &la, &g), NLL_OK);
    CHECK_STATUS(nll_cross_entropy_fused(ctx, &y, &t, &options, &lb, &y), NLL_OK);
    CHECK(memcmp(grad, in_place, bytes) == 0);
    CHECK(memcmp(&loss_a, &loss_b, sizeof loss_a) == 0);
done:
    free(logits);
    free(grad);
    free(in_place);
    free(target);
}

int main(void) {
    nll_context *ctx = check_context();
    if (getenv("NLL_TEST_SMALL")) {
        nll_context_destroy(ctx);
        return check_finish("test_large (skipped: NLL_TEST_SMALL)");
    }
    for (int threads = 1; threads <= 2; threads++) {
        CHECK_STATUS(nll_context_set_threads(ctx, threads), NLL_OK);
        SECTION("float32 (520, 32771): streamed and in place agree");
        fused_separate_equals_in_place(ctx, (DLDataType){kDLFloat, 32, 1}, 520, 32771);
        SECTION("bfloat16 (1040, 32771): streamed and in place agree");
        fused_separate_equals_in_place(ctx, (DLDataType){kDLBfloat, 16, 1}, 1040, 32771);
    }
    nll_context_destroy(ctx);
    return check_finish("test_large");
}
