/*
 * test_big.c — tensors beyond 2^31 elements: a float16 input of shape (2, 2^30 + 3), whose
 * second row starts past 2^30 and ends past 2^31, through cross_entropy (forward and fused, in
 * place), log_softmax (in place), nll_loss, and the same memory seen as (2^30 + 3, 2) rows.
 * The logits are 0 except a 10 at chosen far positions, so every expected value is closed-form;
 * a 32-bit index anywhere would read or write the wrong element and change them.
 *
 * 4 GiB of memory and about a minute on two cores: run by tests/long/run.sh, not in CI.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nll.h"

#define C ((INT64_C(1) << 30) + 3)
#define F16_TEN 0x4900 /* 10.0 */

static int failures;

static float half_to_float(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16, exp = (h >> 10) & 0x1Fu, man = h & 0x3FFu;
    float f;
    if (exp == 0) {
        f = ldexpf((float)man, -24);
        return sign ? -f : f;
    }
    uint32_t x = exp == 31 ? sign | 0x7F800000u | (man << 13) : sign | ((exp + 112) << 23) | (man << 13);
    memcpy(&f, &x, 4);
    return f;
}

static void expect(const char *what, double got, double want, double tol)
{
    int ok = fabs(got - want) <= tol;
    printf("%-44s %.7g (expected %.7g) %s\n", what, got, want, ok ? "ok" : "FAILED");
    failures += !ok;
}

static void status_ok(const char *what, nll_status s, nll_context *ctx)
{
    if (s != NLL_OK) {
        printf("%s: %s: %s\n", what, nll_status_name(s), nll_last_error(ctx));
        failures++;
    }
}

static DLTensor tensor(void *data, int ndim, int64_t *shape, int64_t *strides, DLDataType dt)
{
    DLTensor t = {data, {kDLCPU, 0}, ndim, dt, shape, strides, 0};
    return t;
}

int main(void)
{
    const DLDataType f16 = {kDLFloat, 16, 1}, i64 = {kDLInt, 64, 1};
    size_t n = (size_t)(2 * C);
    uint16_t *x = malloc(n * sizeof *x);
    if (!x) {
        printf("test_big: cannot allocate %zu bytes; skipped\n", n * sizeof *x);
        return 77;
    }
    nll_context *ctx;
    nll_context_create(&ctx);
    nll_context_set_threads(ctx, 0);
    int64_t shape[2] = {2, C}, loss_shape[1] = {2}, tshape[1] = {2};
    int64_t target[2] = {0, C - 1};
    uint16_t loss[2], scalar;
    DLTensor in = tensor(x, 2, shape, NULL, f16), tg = tensor(target, 1, tshape, NULL, i64);
    DLTensor l2 = tensor(loss, 1, loss_shape, NULL, f16), l0 = tensor(&scalar, 0, NULL, NULL, f16);
    nll_options none = nll_options_default(), mean = none, sum = none;
    none.reduction = NLL_REDUCTION_NONE;
    sum.reduction = NLL_REDUCTION_SUM;
    const double big = log(exp(10.0) + (double)(C - 1)); /* log-sum-exp of a row */

    /* x[0, 0] = 10, x[1, C-1] = 10 (flat 2^31 + 5), else 0 */
    memset(x, 0, n * sizeof *x);
    x[0] = F16_TEN;
    x[n - 1] = F16_TEN;
    status_ok("cross_entropy_forward", nll_cross_entropy_forward(ctx, &in, &tg, &none, &l2), ctx);
    expect("cross_entropy none, row 0", half_to_float(loss[0]), big - 10, 0.01);
    expect("cross_entropy none, row 1 (target C-1)", half_to_float(loss[1]), big - 10, 0.01);

    status_ok("cross_entropy_fused", nll_cross_entropy_fused(ctx, &in, &tg, &mean, &l0, &in), ctx);
    double p_ten = exp(10.0 - big), p_zero = exp(-big);
    expect("fused mean loss", half_to_float(scalar), big - 10, 0.01);
    expect("fused grad [0, 0]", half_to_float(x[0]), (p_ten - 1) / 2, 1e-3);
    expect("fused grad [1, C-1] (flat 2^31 + 5)", half_to_float(x[n - 1]), (p_ten - 1) / 2, 1e-3);
    expect("fused grad [1, C-2]", half_to_float(x[n - 2]), p_zero / 2, 1e-7);

    memset(x, 0, n * sizeof *x);
    x[0] = F16_TEN;
    x[n - 1] = F16_TEN;
    status_ok("log_softmax_forward", nll_log_softmax_forward(ctx, &in, 1, &in), ctx);
    expect("log_softmax [1, C-1]", half_to_float(x[n - 1]), 10 - big, 0.01);
    expect("log_softmax [1, 0] (flat 2^30 + 3)", half_to_float(x[C]), -big, 0.02);
    expect("log_softmax [0, C-1]", half_to_float(x[C - 1]), -big, 0.02);
    status_ok("nll_loss_forward", nll_loss_forward(ctx, &in, &tg, &sum, &l0, NULL), ctx);
    expect("nll_loss sum", half_to_float(scalar), 2 * (big - 10), 0.02);

    /* The same memory as 2^30 + 3 rows of 2 classes: the last row starts past 2^31. */
    int64_t rows_shape[2] = {C, 2};
    DLTensor rows = tensor(x, 2, rows_shape, NULL, f16);
    memset(x, 0, n * sizeof *x);
    x[n - 2] = F16_TEN;
    status_ok("log_softmax_forward rows", nll_log_softmax_forward(ctx, &rows, 1, &rows), ctx);
    expect("rows: last row, class 0", half_to_float(x[n - 2]), -log1p(exp(-10.0)), 1e-6);
    expect("rows: last row, class 1", half_to_float(x[n - 1]), -10 - log1p(exp(-10.0)), 0.01);
    expect("rows: first row", half_to_float(x[0]), -log(2.0), 1e-3);

    nll_context_destroy(ctx);
    free(x);
    printf("test_big: %s\n", failures ? "FAILED" : "passed");
    return failures ? 1 : 0;
}
