/* The vector exp's throughput over an L1-resident buffer, for the exp the kernels take of
 * shifted logits (x <= 0; bench.c fills the buffer with [-8, 0]). Built twice
 * (bench/CMakeLists.txt): with the AVX-512 flags it defines the AVX-512 kernel, with the AVX2
 * flags the AVX2 one, so neither instruction set leaks into code that runs before the CPU check
 * in bench.c. */
#include "../src/cpu/vmath.h"
#include "exp_rate.h"

#if defined(__AVX512F__)
float nll_bench_exp_sum_avx512(const float *in, int64_t n, int64_t reps) {
    /* four accumulators so the add latency does not bound the exp throughput */
    __m512 s0 = _mm512_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
    for (int64_t r = 0; r < reps; r++)
        for (int64_t i = 0; i < n; i += 64) {
            s0 = _mm512_add_ps(s0, nll_exp_nonpos_avx512(_mm512_loadu_ps(in + i)));
            s1 = _mm512_add_ps(s1, nll_exp_nonpos_avx512(_mm512_loadu_ps(in + i + 16)));
            s2 = _mm512_add_ps(s2, nll_exp_nonpos_avx512(_mm512_loadu_ps(in + i + 32)));
            s3 = _mm512_add_ps(s3, nll_exp_nonpos_avx512(_mm512_loadu_ps(in + i + 48)));
        }
    return _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(s0, s1), _mm512_add_ps(s2, s3)));
}
#elif defined(__AVX2__) && defined(__FMA__)
float nll_bench_exp_sum_avx2(const float *in, int64_t n, int64_t reps) {
    __m256 s0 = _mm256_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
    for (int64_t r = 0; r < reps; r++)
        for (int64_t i = 0; i < n; i += 32) {
            s0 = _mm256_add_ps(s0, nll_exp_nonpos_avx2(_mm256_loadu_ps(in + i)));
            s1 = _mm256_add_ps(s1, nll_exp_nonpos_avx2(_mm256_loadu_ps(in + i + 8)));
            s2 = _mm256_add_ps(s2, nll_exp_nonpos_avx2(_mm256_loadu_ps(in + i + 16)));
            s3 = _mm256_add_ps(s3, nll_exp_nonpos_avx2(_mm256_loadu_ps(in + i + 24)));
        }
    float lanes[8];
    _mm256_storeu_ps(lanes, _mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3)));
    return lanes[0] + lanes[1] + lanes[2] + lanes[3] + lanes[4] + lanes[5] + lanes[6] + lanes[7];
}
#endif
