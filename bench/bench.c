/* Benchmark of libnll's CPU kernels: time, bytes of minimal traffic, GB/s and the fraction of
 * the machine's measured copy bandwidth. Not a test: it asserts nothing about speed.
 * usage: bench [threads] */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <nll.h>

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* Best of several memcpy runs over a buffer far larger than the caches: bytes read + written. */
static double copy_bandwidth(void) {
    size_t bytes = (size_t)1 << 28;
    char *a = malloc(bytes), *b = malloc(bytes);
    if (!a || !b)
        return 0;
    memset(a, 1, bytes);
    memset(b, 2, bytes);
    double best = 1e30;
    for (int r = 0; r < 5; r++) {
        double t = now();
        memcpy(b, a, bytes);
        t = now() - t;
        best = t < best ? t : best;
    }
    free(a);
    free(b);
    return 2.0 * (double)bytes / best;
}

typedef struct bench_case {
    int64_t rows, classes;
} bench_case;

static uint64_t rng_state = 88172645463325252ull;
static uint64_t next_random(void) {
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

int main(int argc, char **argv) {
    int threads = argc > 1 ? atoi(argv[1]) : 1;
    nll_context *ctx;
    if (nll_context_create(&ctx) != NLL_OK || nll_context_set_threads(ctx, threads) != NLL_OK)
        return 1;
    double bandwidth = copy_bandwidth();
    printf("libnll %s, %d thread(s); memcpy bandwidth %.1f GB/s (read + write)\n",
           nll_version_string(), nll_context_threads(ctx), bandwidth / 1e9);
    printf("%-16s %-22s %10s %10s %8s %8s\n", "shape", "op", "ms", "MB", "GB/s", "of copy");
    bench_case cases[] = {{8192, 10}, {4096, 1000}, {4096, 32000}, {1024, 128256}};
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        int64_t n = cases[k].rows, c = cases[k].classes;
        float *logits = malloc(sizeof(float) * (size_t)(n * c));
        float *grad = malloc(sizeof(float) * (size_t)(n * c));
        int64_t *labels = malloc(sizeof(int64_t) * (size_t)n);
        if (!logits || !grad || !labels)
            return 1;
        for (int64_t i = 0; i < n * c; i++)
            logits[i] = (float)((double)(next_random() >> 11) / 9007199254740992.0 * 8.0 - 4.0);
        for (int64_t i = 0; i < n; i++)
            labels[i] = (int64_t)(next_random() % (uint64_t)c);
        int64_t in_shape[2] = {n, c}, t_shape[1] = {n};
        float loss;
        DLTensor input = {logits, {kDLCPU, 0}, 2, {kDLFloat, 32, 1}, in_shape, NULL, 0};
        DLTensor gradient = {grad, {kDLCPU, 0}, 2, {kDLFloat, 32, 1}, in_shape, NULL, 0};
        DLTensor target = {labels, {kDLCPU, 0}, 1, {kDLInt, 64, 1}, t_shape, NULL, 0};
        DLTensor out = {&loss, {kDLCPU, 0}, 0, {kDLFloat, 32, 1}, NULL, NULL, 0};
        nll_options options = nll_options_default();
        double logit_bytes = (double)(n * c) * sizeof(float);
        struct {
            const char *name;
            double bytes;
        } ops[] = {{"forward", logit_bytes}, {"fused, separate grad", 2 * logit_bytes}};
        for (int o = 0; o < 2; o++) {
            double best = 1e30;
            for (int r = 0; r < 3; r++) {
                double t = now();
                nll_status s = o == 0
                                   ? nll_cross_entropy_forward(ctx, &input, &target, &options, &out)
                                   : nll_cross_entropy_fused(ctx, &input, &target, &options, &out,
                                                             &gradient);
                t = now() - t;
                if (s != NLL_OK) {
                    fprintf(stderr, "%s\n", nll_last_error(ctx));
                    return 1;
                }
                best = t < best ? t : best;
            }
            char shape[32];
            snprintf(shape, sizeof shape, "(%lld, %lld)", (long long)n, (long long)c);
            double rate = ops[o].bytes / best;
            printf("%-16s %-22s %10.3f %10.1f %8.2f %8.3f\n", shape, ops[o].name, best * 1e3,
                   ops[o].bytes / 1e6, rate / 1e9, rate / bandwidth);
        }
        free(logits);
        free(grad);
        free(labels);
    }
    nll_context_destroy(ctx);
    return 0;
}
