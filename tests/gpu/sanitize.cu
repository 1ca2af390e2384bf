// A small program for compute-sanitizer (memcheck, racecheck): every op once on the GPU, short
// and long rows, in place and not, a rejected call and the call after it. Exits non-zero when
// a result is wrong; the sanitizer reports memory errors and races.
// build (tests/gpu/run.sh): nvcc -arch=sm_90 -Iinclude -I<dlpack> tests/gpu/sanitize.cu -lnll
#include <cuda_runtime.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <vector>

#include "nll.h"

static int failures = 0;
#define EXPECT(c)                                                                              \
    do {                                                                                       \
        if (!(c)) {                                                                            \
            fprintf(stderr, "%s:%d: failed: %s\n", __FILE__, __LINE__, #c);                    \
            failures++;                                                                        \
        }                                                                                      \
    } while (0)

struct gpu_tensor {
    DLTensor t;
    int64_t shape[2];
};

static void make(gpu_tensor &g, void *data, DLDataType dtype, int ndim, int64_t n0, int64_t n1) {
    g = gpu_tensor();
    g.shape[0] = n0;
    g.shape[1] = n1;
    g.t.data = data;
    g.t.device = {kDLCUDA, 0};
    g.t.ndim = ndim;
    g.t.dtype = dtype;
    g.t.shape = g.shape; // points into g itself: g is never copied
}

static void run(nll_context *ctx, int64_t n, int64_t c) {
    const DLDataType f32 = {kDLFloat, 32, 1}, i64 = {kDLInt, 64, 1};
    std::vector<float> x(n * c);
    std::vector<int64_t> t(n);
    for (int64_t i = 0; i < n * c; i++)
        x[i] = (float)((i * 7919) % 1000) / 100.0f - 5.0f;
    for (int64_t i = 0; i < n; i++)
        t[i] = (i * 31) % c;
    float *dx, *dgrad, *dloss, *dy, *dtw;
    int64_t *dt;
    cudaMalloc(&dx, n * c * sizeof(float));
    cudaMalloc(&dgrad, n * c * sizeof(float));
    cudaMalloc(&dy, n * c * sizeof(float));
    cudaMalloc(&dloss, n * sizeof(float));
    cudaMalloc(&dtw, sizeof(float));
    cudaMalloc(&dt, n * sizeof(int64_t));
    cudaMemcpy(dx, x.data(), n * c * sizeof(float), cudaMemcpyHostToDevice);
    cudaMemcpy(dt, t.data(), n * sizeof(int64_t), cudaMemcpyHostToDevice);
    gpu_tensor X, G, Y, T, L, LN, TW;
    make(X, dx, f32, 2, n, c), make(G, dgrad, f32, 2, n, c), make(Y, dy, f32, 2, n, c);
    make(T, dt, i64, 1, n, 0), make(L, dloss, f32, 0, 0, 0), make(LN, dloss, f32, 1, n, 0);
    make(TW, dtw, f32, 0, 0, 0);
    nll_options o = nll_options_default();

    // the CPU's answer for the mean loss
    double want = 0;
    for (int64_t i = 0; i < n; i++) {
        double m = -INFINITY, s = 0;
        for (int64_t k = 0; k < c; k++)
            m = fmax(m, x[i * c + k]);
        for (int64_t k = 0; k < c; k++)
            s += exp(x[i * c + k] - m);
        want += (m + log(s) - x[i * c + t[i]]) / n;
    }
    float loss = 0;
    EXPECT(nll_cross_entropy_fused(ctx, &X.t, &T.t, &o, &L.t, &G.t) == NLL_OK);
    cudaMemcpy(&loss, dloss, sizeof loss, cudaMemcpyDeviceToHost);
    EXPECT(fabs(loss - want) < 1e-4 * fmax(1.0, fabs(want)));
    EXPECT(nll_cross_entropy_forward(ctx, &X.t, &T.t, &o, &L.t) == NLL_OK);
    o.reduction = NLL_REDUCTION_NONE;
    EXPECT(nll_cross_entropy_forward(ctx, &X.t, &T.t, &o, &LN.t) == NLL_OK);
    EXPECT(nll_cross_entropy_backward(ctx, NULL, &X.t, &T.t, &o, &G.t) == NLL_OK);
    o.label_smoothing = 0.1;
    EXPECT(nll_cross_entropy_fused(ctx, &X.t, &T.t, &o, &LN.t, &G.t) == NLL_OK);
    o = nll_options_default();
    EXPECT(nll_log_softmax_forward(ctx, &X.t, 1, &Y.t) == NLL_OK);
    EXPECT(nll_log_softmax_backward(ctx, &X.t, &Y.t, 1, &G.t) == NLL_OK);
    EXPECT(nll_loss_forward(ctx, &Y.t, &T.t, &o, &L.t, &TW.t) == NLL_OK);
    float total_weight = 0; // no weights, nothing ignored: the sample count
    cudaMemcpy(&total_weight, dtw, sizeof total_weight, cudaMemcpyDeviceToHost);
    EXPECT(total_weight == (float)n);
    EXPECT(nll_loss_backward(ctx, NULL, &Y.t, &T.t, &o, &G.t) == NLL_OK);

    // rejected: nothing written, and the next call works
    int64_t bad = c;
    cudaMemcpy(dt + n / 2, &bad, sizeof bad, cudaMemcpyHostToDevice);
    cudaMemcpy(dx, x.data(), n * c * sizeof(float), cudaMemcpyHostToDevice);
    EXPECT(nll_cross_entropy_fused(ctx, &X.t, &T.t, &o, &L.t, &X.t) == NLL_ERROR_TARGET_RANGE);
    std::vector<float> after(n * c);
    cudaMemcpy(after.data(), dx, n * c * sizeof(float), cudaMemcpyDeviceToHost);
    EXPECT(after == x);
    cudaMemcpy(dt + n / 2, &t[n / 2], sizeof bad, cudaMemcpyHostToDevice);
    EXPECT(nll_cross_entropy_fused(ctx, &X.t, &T.t, &o, &L.t, &X.t) == NLL_OK); // in place
    cudaMemcpy(&loss, dloss, sizeof loss, cudaMemcpyDeviceToHost);
    EXPECT(fabs(loss - want) < 1e-4 * fmax(1.0, fabs(want)));
    printf("(%lld, %lld): %s\n", (long long)n, (long long)c, failures ? "FAILED" : "ok");
    cudaFree(dx), cudaFree(dgrad), cudaFree(dy), cudaFree(dloss), cudaFree(dt), cudaFree(dtw);
}

int main(void) {
    nll_context *ctx;
    if (nll_context_create(&ctx) != NLL_OK || !nll_cuda_available()) {
        fprintf(stderr, "no GPU\n");
        return 2;
    }
    run(ctx, 37, 10);    // a warp per row
    run(ctx, 5, 3001);   // a block per row, rows not 16-byte aligned
    run(ctx, 3, 20000);  // 512 threads per row
    run(ctx, 2, 70001);  // few long rows: several blocks per row
    nll_context_destroy(ctx);
    return failures ? 1 : 0;
}
