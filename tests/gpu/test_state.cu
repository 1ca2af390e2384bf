// The CUDA backend's state, on a GPU: the first call's workspace reset failing and being tried
// again, a floating target refused by the call itself in asynchronous mode, nll_context_sync
// on each device's own stream (two GPUs or more), and graph replays on one stream against
// uncaptured calls on another (the shared workspace must not be raced). Exits 0 when all
// pass, 1 on a failure, 2 without a GPU.
// build (tests/gpu/run.sh): nvcc -arch=sm_90 -Iinclude -I<dlpack> tests/gpu/test_state.cu -lnll
// The reset failure needs a library built with -DNLL_CUDA_TEST_HOOKS (tests/gpu/run.sh does),
// which makes NLL_TEST_FAIL_WORKSPACE_RESET fail the reset.
#include <cuda_runtime.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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
#define EXPECT_STATUS(call, want)                                                              \
    do {                                                                                       \
        nll_status got_ = (call);                                                              \
        if (got_ != (want)) {                                                                  \
            fprintf(stderr, "%s:%d: %s: got %s, want %s\n", __FILE__, __LINE__, #call,         \
                    nll_status_name(got_), nll_status_name(want));                             \
            failures++;                                                                        \
        }                                                                                      \
    } while (0)

static const DLDataType f32 = {kDLFloat, 32, 1}, i64 = {kDLInt, 64, 1};

struct tensor {
    DLTensor t;
    int64_t shape[2];
};

static tensor make(void *data, DLDataType dtype, int device, int ndim, int64_t n0, int64_t n1) {
    tensor g;
    memset(&g, 0, sizeof g);
    g.shape[0] = n0;
    g.shape[1] = n1;
    g.t.data = data;
    g.t.device = {device < 0 ? kDLCPU : kDLCUDA, device < 0 ? 0 : device};
    g.t.ndim = ndim;
    g.t.dtype = dtype;
    return g;
}
static DLTensor *T(tensor &g) { // g's shape lives in g, which make() returned by value
    g.t.shape = g.shape;
    return &g.t;
}

// One cross_entropy problem (mean over n rows of c classes), on the host and on a device.
struct problem {
    int64_t n, c;
    std::vector<float> x;
    std::vector<int64_t> t;
    float *dx = nullptr, *dloss = nullptr;
    int64_t *dt = nullptr;
    double want = 0; // the CPU's loss, by libnll itself
    problem(nll_context *ctx, int64_t n_, int64_t c_, int seed) : n(n_), c(c_), x(n_ * c_), t(n_) {
        for (int64_t i = 0; i < n * c; i++)
            x[i] = (float)(((i + seed) * 7919) % 1000) / 100.0f - 5.0f;
        for (int64_t i = 0; i < n; i++)
            t[i] = (i * 31 + seed) % c;
        tensor X = make(x.data(), f32, -1, 2, n, c), TG = make(t.data(), i64, -1, 1, n, 0);
        float loss = 0;
        tensor L = make(&loss, f32, -1, 0, 0, 0);
        nll_options o = nll_options_default();
        EXPECT_STATUS(nll_cross_entropy_forward(ctx, T(X), T(TG), &o, T(L)), NLL_OK);
        want = loss;
    }
    void upload(int device) {
        cudaSetDevice(device);
        cudaMalloc(&dx, n * c * sizeof(float));
        cudaMalloc(&dt, n * sizeof(int64_t));
        cudaMalloc(&dloss, sizeof(float));
        cudaMemcpy(dx, x.data(), n * c * sizeof(float), cudaMemcpyHostToDevice);
        cudaMemcpy(dt, t.data(), n * sizeof(int64_t), cudaMemcpyHostToDevice);
    }
    ~problem() { cudaFree(dx), cudaFree(dt), cudaFree(dloss); }
    // the mean loss into loss (a device float), on the context's stream
    nll_status run(nll_context *ctx, int device, float *loss) const {
        tensor X = make(dx, f32, device, 2, n, c), TG = make(dt, i64, device, 1, n, 0);
        tensor L = make(loss, f32, device, 0, 0, 0);
        nll_options o = nll_options_default();
        return nll_cross_entropy_forward(ctx, T(X), T(TG), &o, T(L));
    }
    bool near(float got) const { return fabs(got - want) <= 1e-4 * fmax(1.0, fabs(want)); }
};

static float read_float(const float *device_value) {
    float v = NAN;
    cudaMemcpy(&v, device_value, sizeof v, cudaMemcpyDeviceToHost);
    return v;
}

// Item: a failed first-call workspace reset is an error, and the next call tries again.
static void reset_failure(int async) {
    nll_context *ctx, *cpu;
    nll_context_create(&ctx), nll_context_create(&cpu);
    nll_context_set_async(ctx, async);
    problem p(cpu, 37, 10, 1);
    p.upload(0);
    const float untouched = -7.0f;
    cudaMemcpy(p.dloss, &untouched, sizeof untouched, cudaMemcpyHostToDevice);
    setenv("NLL_TEST_FAIL_WORKSPACE_RESET", "1", 1);
    nll_status s = p.run(ctx, 0, p.dloss);
    unsetenv("NLL_TEST_FAIL_WORKSPACE_RESET");
    if (s == NLL_OK)
        fprintf(stderr, "the reset did not fail: is libnll built with -DNLL_CUDA_TEST_HOOKS, "
                        "and does it check the reset?\n");
    EXPECT_STATUS(s, NLL_ERROR_CUDA);
    EXPECT(strstr(nll_last_error(ctx), "resetting the workspace") != nullptr);
    EXPECT(strstr(nll_last_error(ctx), "the next call tries again") != nullptr);
    EXPECT(read_float(p.dloss) == untouched);
    // the next call resets the workspace and computes: the status words are not 0xff garbage
    EXPECT_STATUS(p.run(ctx, 0, p.dloss), NLL_OK);
    EXPECT_STATUS(nll_context_sync(ctx), NLL_OK);
    EXPECT(p.near(read_float(p.dloss)));
    EXPECT_STATUS(p.run(ctx, 0, p.dloss), NLL_OK);
    EXPECT_STATUS(nll_context_sync(ctx), NLL_OK);
    nll_context_destroy(ctx), nll_context_destroy(cpu);
    printf("reset failure (%s): %s\n", async ? "async" : "sync", failures ? "FAILED" : "ok");
}

// Item: a floating class-index target is a dtype error of the call itself, in async mode too.
static void float_target_async(void) {
    nll_context *ctx, *cpu;
    nll_context_create(&ctx), nll_context_create(&cpu);
    problem p(cpu, 4, 5, 2);
    p.upload(0);
    EXPECT_STATUS(p.run(ctx, 0, p.dloss), NLL_OK); // the workspace exists
    nll_context_set_async(ctx, 1);
    float *dft;
    const float ft[4] = {0, 1, 2, 3};
    cudaMalloc(&dft, sizeof ft);
    cudaMemcpy(dft, ft, sizeof ft, cudaMemcpyHostToDevice);
    tensor X = make(p.dx, f32, 0, 2, 4, 5), TG = make(dft, f32, 0, 1, 4, 0);
    tensor L = make(p.dloss, f32, 0, 0, 0, 0);
    nll_options o = nll_options_default();
    EXPECT_STATUS(nll_cross_entropy_forward(ctx, T(X), T(TG), &o, T(L)), NLL_ERROR_FLOAT_TARGET);
    EXPECT(strstr(nll_last_error(ctx), "nll_cross_entropy_forward: target has dtype float32, "
                                       "but class indices must be integers") != nullptr);
    EXPECT_STATUS(nll_context_sync(ctx), NLL_OK); // nothing was left for the sync
    EXPECT_STATUS(p.run(ctx, 0, p.dloss), NLL_OK);
    EXPECT_STATUS(nll_context_sync(ctx), NLL_OK);
    EXPECT(p.near(read_float(p.dloss)));
    o.flags = NLL_ALLOW_FLOAT_TARGETS; // accepted: the values are whole
    EXPECT_STATUS(nll_cross_entropy_forward(ctx, T(X), T(TG), &o, T(L)), NLL_OK);
    EXPECT_STATUS(nll_context_sync(ctx), NLL_OK);
    EXPECT(p.near(read_float(p.dloss)));
    cudaFree(dft);
    nll_context_destroy(ctx), nll_context_destroy(cpu);
    printf("float target, async: %s\n", failures ? "FAILED" : "ok");
}

// Item: nll_context_sync collects each device on its own stream, not the context's stream
// (which belongs to one device).
static void sync_per_device(int devices) {
    if (devices < 2) {
        printf("sync on two devices: skipped (one GPU)\n");
        return;
    }
    nll_context *ctx, *cpu;
    nll_context_create(&ctx), nll_context_create(&cpu);
    problem p0(cpu, 64, 100, 3), p1(cpu, 64, 100, 4);
    p0.upload(0), p1.upload(1);
    cudaStream_t s0, s1;
    cudaSetDevice(0), cudaStreamCreateWithFlags(&s0, cudaStreamNonBlocking);
    cudaSetDevice(1), cudaStreamCreateWithFlags(&s1, cudaStreamNonBlocking);
    cudaSetDevice(0);
    nll_context_set_cuda_stream(ctx, s1);
    EXPECT_STATUS(p1.run(ctx, 1, p1.dloss), NLL_OK);
    nll_context_set_cuda_stream(ctx, s0);
    EXPECT_STATUS(p0.run(ctx, 0, p0.dloss), NLL_OK);
    nll_context_set_async(ctx, 1);
    int64_t bad = 100; // rejected on cuda:1, reported by the sync made with cuda:0's stream set
    cudaSetDevice(1);
    cudaMemcpy(p1.dt + 17, &bad, sizeof bad, cudaMemcpyHostToDevice);
    cudaSetDevice(0);
    nll_context_set_cuda_stream(ctx, s1);
    EXPECT_STATUS(p1.run(ctx, 1, p1.dloss), NLL_OK);
    nll_context_set_cuda_stream(ctx, s0);
    EXPECT_STATUS(p0.run(ctx, 0, p0.dloss), NLL_OK);
    EXPECT_STATUS(nll_context_sync(ctx), NLL_ERROR_TARGET_RANGE);
    EXPECT(strstr(nll_last_error(ctx), "target[17] = 100") != nullptr);
    EXPECT_STATUS(nll_context_sync(ctx), NLL_OK);
    EXPECT(p0.near(read_float(p0.dloss)));
    nll_context_set_cuda_stream(ctx, nullptr);
    nll_context_destroy(ctx), nll_context_destroy(cpu);
    cudaStreamDestroy(s0), cudaStreamDestroy(s1);
    printf("sync on two devices: %s\n", failures ? "FAILED" : "ok");
}

// Item: graph replays and uncaptured calls of one context share its workspace: a replay on one
// stream and calls on another are ordered (the graph waits for and records the context's
// event), and so are two captured streams of one capture. Without that ordering their partial
// sums mix and the losses come out wrong.
static void graph_against_calls(void) {
    nll_context *ctx, *cpu;
    nll_context_create(&ctx), nll_context_create(&cpu);
    problem g(cpu, 2048, 1000, 5), h(cpu, 512, 3001, 6), u(cpu, 4096, 500, 7);
    g.upload(0), h.upload(0), u.upload(0);
    cudaStream_t capture, side, replay, calls;
    cudaStreamCreateWithFlags(&capture, cudaStreamNonBlocking);
    cudaStreamCreateWithFlags(&side, cudaStreamNonBlocking);
    cudaStreamCreateWithFlags(&replay, cudaStreamNonBlocking);
    cudaStreamCreateWithFlags(&calls, cudaStreamNonBlocking);
    cudaEvent_t fork, join;
    cudaEventCreateWithFlags(&fork, cudaEventDisableTiming);
    cudaEventCreateWithFlags(&join, cudaEventDisableTiming);
    const int kReplays = 40;
    float *graph_losses, *call_losses;
    cudaMalloc(&graph_losses, 2 * kReplays * sizeof(float));
    cudaMalloc(&call_losses, kReplays * sizeof(float));

    nll_context_set_cuda_stream(ctx, calls);
    EXPECT_STATUS(u.run(ctx, 0, u.dloss), NLL_OK); // the workspace, before the capture
    // the graph: g on the capture stream and h on a forked one, both from this context
    nll_context_set_cuda_stream(ctx, capture);
    EXPECT(cudaStreamBeginCapture(capture, cudaStreamCaptureModeThreadLocal) == cudaSuccess);
    cudaEventRecord(fork, capture);
    cudaStreamWaitEvent(side, fork, 0);
    EXPECT_STATUS(g.run(ctx, 0, g.dloss), NLL_OK);
    nll_context_set_cuda_stream(ctx, side);
    EXPECT_STATUS(h.run(ctx, 0, h.dloss), NLL_OK);
    cudaEventRecord(join, side);
    cudaStreamWaitEvent(capture, join, 0);
    cudaGraph_t graph = nullptr;
    EXPECT(cudaStreamEndCapture(capture, &graph) == cudaSuccess);
    cudaGraphExec_t exec = nullptr;
    EXPECT(graph && cudaGraphInstantiate(&exec, graph, 0) == cudaSuccess);
    nll_context_set_cuda_stream(ctx, calls);
    for (int k = 0; exec && k < kReplays; k++) {
        EXPECT(cudaGraphLaunch(exec, replay) == cudaSuccess);
        cudaMemcpyAsync(graph_losses + 2 * k, g.dloss, sizeof(float), cudaMemcpyDeviceToDevice,
                        replay);
        cudaMemcpyAsync(graph_losses + 2 * k + 1, h.dloss, sizeof(float),
                        cudaMemcpyDeviceToDevice, replay);
        nll_context_set_async(ctx, k % 2); // both modes
        EXPECT_STATUS(u.run(ctx, 0, call_losses + k), NLL_OK);
    }
    nll_context_set_async(ctx, 0);
    EXPECT_STATUS(nll_context_sync(ctx), NLL_OK); // waits for the replays too
    cudaDeviceSynchronize();
    std::vector<float> got_graph(2 * kReplays), got_calls(kReplays);
    cudaMemcpy(got_graph.data(), graph_losses, got_graph.size() * sizeof(float),
               cudaMemcpyDeviceToHost);
    cudaMemcpy(got_calls.data(), call_losses, got_calls.size() * sizeof(float),
               cudaMemcpyDeviceToHost);
    int wrong = 0;
    for (int k = 0; exec && k < kReplays; k++) {
        wrong += !g.near(got_graph[2 * k]) + !h.near(got_graph[2 * k + 1]);
        wrong += !u.near(got_calls[k]);
    }
    if (wrong)
        fprintf(stderr, "%d of %d losses wrong (graph g %.6f want %.6f; h %.6f want %.6f; call "
                        "%.6f want %.6f)\n",
                wrong, 3 * kReplays, got_graph[0], g.want, got_graph[1], h.want, got_calls[0],
                u.want);
    EXPECT(wrong == 0);
    if (exec)
        cudaGraphExecDestroy(exec);
    if (graph)
        cudaGraphDestroy(graph);
    nll_context_set_cuda_stream(ctx, nullptr);
    nll_context_destroy(ctx), nll_context_destroy(cpu);
    cudaFree(graph_losses), cudaFree(call_losses);
    cudaEventDestroy(fork), cudaEventDestroy(join);
    cudaStreamDestroy(capture), cudaStreamDestroy(side), cudaStreamDestroy(replay),
        cudaStreamDestroy(calls);
    printf("graph replays against calls on another stream: %s\n", failures ? "FAILED" : "ok");
}

int main(void) {
    int devices = 0;
    if (!nll_cuda_available() || cudaGetDeviceCount(&devices) != cudaSuccess) {
        fprintf(stderr, "no GPU\n");
        return 2;
    }
    reset_failure(0);
    reset_failure(1);
    float_target_async();
    sync_per_device(devices);
    graph_against_calls();
    return failures ? 1 : 0;
}
