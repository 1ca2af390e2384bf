/* Error of the vector exp and log (src/cpu/vmath.h) against exp and log in double: exp over
 * every float32 x whose exp is a normal float32, log over every positive normal float32, for
 * each instruction set this CPU has. Prints the largest error in units in the last place (ulp)
 * of the float32 result. Not a test. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "../src/cpu/vmath.h"

static double ulp_error(float got, double exact) {
    float rounded = (float)exact;
    double ulp = nextafterf(fabsf(rounded), INFINITY) - fabsf(rounded);
    return fabs((double)got - exact) / ulp;
}

typedef void (*exp16_fn)(const float *in, float *out);
typedef double (*reference_fn)(double);

static void exp16_avx512(const float *in, float *out) {
    _mm512_storeu_ps(out, nll_exp_avx512(_mm512_loadu_ps(in)));
}

static void exp16_avx2(const float *in, float *out) {
    _mm256_storeu_ps(out, nll_exp_avx2(_mm256_loadu_ps(in)));
    _mm256_storeu_ps(out + 8, nll_exp_avx2(_mm256_loadu_ps(in + 8)));
}

static void log16_avx512(const float *in, float *out) {
    _mm512_storeu_ps(out, nll_log_avx512(_mm512_loadu_ps(in)));
}

static void log16_avx2(const float *in, float *out) {
    _mm256_storeu_ps(out, nll_log_avx2(_mm256_loadu_ps(in)));
    _mm256_storeu_ps(out + 8, nll_log_avx2(_mm256_loadu_ps(in + 8)));
}

/* every float in [low, high], in order of their bits (both signs when low < 0) */
static void measure(const char *name, exp16_fn fn, reference_fn reference, float low,
                    float high) {
    double worst = 0;
    float worst_x = 0;
    uint64_t count = 0;
    float in[16], out[16];
    int filled = 0;
    for (int side = 0; side < 2; side++) {
        if (side == 1 && low >= 0)
            break;
        uint32_t bits = side ? 0x80000000u : 0u;
        if (side == 0 && low > 0)
            memcpy(&bits, &low, 4);
        for (;; bits++) {
            float x;
            memcpy(&x, &bits, 4);
            if (side ? x < low : x > high)
                break;
            in[filled++] = x;
            if (filled < 16)
                continue;
            fn(in, out);
            for (int i = 0; i < 16; i++) {
                double e = ulp_error(out[i], reference((double)in[i]));
                if (e > worst)
                    worst = e, worst_x = in[i];
            }
            count += 16;
            filled = 0;
        }
    }
    printf("%-12s %llu inputs in [%g, %g], worst error %.3f ulp (at x = %.9g)\n", name,
           (unsigned long long)count, low, high, worst, worst_x);
}

int main(void) {
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f")) {
        measure("avx512 exp", exp16_avx512, exp, -87.33f, 88.72f);
        measure("avx512 log", log16_avx512, log, 1.17549435e-38f, 3.40282347e38f);
    }
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) {
        measure("avx2 exp", exp16_avx2, exp, -87.33f, 88.72f);
        measure("avx2 log", log16_avx2, log, 1.17549435e-38f, 3.40282347e38f);
    }
    return 0;
}
