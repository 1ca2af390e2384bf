/* float16 and bfloat16 <-> float32, round to nearest even; NaN stays NaN (quiet). */
#ifndef NLL_CONVERT_H
#define NLL_CONVERT_H

#include <math.h>
#include <stdint.h>
#include <string.h>

static inline float nll_bits_to_float(uint32_t bits) {
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
}

static inline uint32_t nll_float_to_bits(float f) {
    uint32_t bits;
    memcpy(&bits, &f, sizeof bits);
    return bits;
}

static inline float nll_half_to_float(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t exponent = (h >> 10) & 0x1fu;
    uint32_t mantissa = h & 0x3ffu;
    if (exponent == 0) {
        /* zero or subnormal: mantissa * 2^-24, exact in float */
        float magnitude = (float)mantissa * 0x1p-24f;
        return sign ? -magnitude : magnitude;
    }
    if (exponent == 31)
        return nll_bits_to_float(sign | 0x7f800000u | (mantissa << 13));
    return nll_bits_to_float(sign | ((exponent + 112) << 23) | (mantissa << 13));
}

static inline uint16_t nll_float_to_half(float f) {
    uint32_t bits = nll_float_to_bits(f);
    uint16_t sign = (uint16_t)((bits >> 16) & 0x8000u);
    uint32_t magnitude = bits & 0x7fffffffu;
    if (magnitude > 0x7f800000u) /* NaN */
        return (uint16_t)(sign | 0x7e00u | ((magnitude >> 13) & 0x3ffu));
    if (magnitude >= 0x477ff000u) /* 65520 and above round to infinity */
        return (uint16_t)(sign | 0x7c00u);
    if (magnitude < 0x38800000u) {
        /* below 2^-14: a subnormal half, i.e. a multiple of 2^-24; scaling by 2^24 is exact */
        float scaled = nll_bits_to_float(magnitude) * 0x1p24f;
        return (uint16_t)(sign | (uint16_t)rintf(scaled));
    }
    uint32_t rebased = magnitude - (112u << 23);
    return (uint16_t)(sign | ((rebased + 0x0fffu + ((rebased >> 13) & 1u)) >> 13));
}

static inline float nll_bfloat_to_float(uint16_t b) {
    return nll_bits_to_float((uint32_t)b << 16);
}

static inline uint16_t nll_float_to_bfloat(float f) {
    uint32_t bits = nll_float_to_bits(f);
    if ((bits & 0x7fffffffu) > 0x7f800000u)
        return (uint16_t)((bits >> 16) | 0x40u);
    return (uint16_t)((bits + 0x7fffu + ((bits >> 16) & 1u)) >> 16);
}

/* double -> float rounding to odd: a second rounding (to float16 or bfloat16) of the result
 * then equals a single correct rounding of the double. */
static inline float nll_round_to_odd_float(double value) {
    float f = (float)value;
    if ((double)f == value || value != value || isinf(f))
        return f;
    uint32_t bits = nll_float_to_bits(f);
    if (fabs((double)f) > fabs(value))
        bits -= 1; /* step toward zero */
    return nll_bits_to_float(bits | 1u);
}

#endif /* NLL_CONVERT_H */
