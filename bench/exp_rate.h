/* Throughput kernels of the vector exp (src/cpu/vmath.h), one per instruction set. exp_rate.c is
 * compiled once per instruction set with that set's flags; the caller checks the CPU first. */
#ifndef NLL_BENCH_EXP_RATE_H
#define NLL_BENCH_EXP_RATE_H

#include <stdint.h>

/* Sums exp(in[i]) over in[0..n) reps times and returns the sum (so the work cannot be dropped).
 * n must be a multiple of 64. */
float nll_bench_exp_sum_avx512(const float *in, int64_t n, int64_t reps);
float nll_bench_exp_sum_avx2(const float *in, int64_t n, int64_t reps);

#endif
