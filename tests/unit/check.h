/*
 * check.h — the small assertion and tensor-building kit shared by the C unit tests.
 *
 * Checks never abort: each failed check prints file:line, the section being tested, the
 * expression and expected vs got, and check_finish() makes main() return non-zero if any
 * check failed. Tensors are heap objects (struct tt) whose first member is the DLTensor, so a
 * `tt *` converts to `DLTensor *` with TT(x); every tensor is freed by check_finish().
 *
 * Everything here is `static inline` so that each test uses what it needs without
 * "defined but not used" warnings.
 */
#ifndef NLL_TEST_CHECK_H
#define NLL_TEST_CHECK_H

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nll.h"

/* ---------------------------------------------------------------------------------------- */
/* Checks */

static int chk_count_ = 0;
static int chk_failures_ = 0;
static const char *chk_section_ = "";

/* Names the thing being tested in every failure message printed until the next SECTION. */
#define SECTION(name) (chk_section_ = (name))

static inline int chk_fail_(const char *file, int line)
{
    chk_failures_++;
    fprintf(stderr, "%s:%d: [%s] FAILED: ", file, line, chk_section_);
    return 0;
}

static inline int chk_true_(int ok, const char *expr, const char *file, int line)
{
    chk_count_++;
    if (ok)
        return 1;
    chk_fail_(file, line);
    fprintf(stderr, "%s\n", expr);
    return 0;
}

static inline int chk_int_(long long got, long long exp, const char *expr, const char *file,
                           int line)
{
    chk_count_++;
    if (got == exp)
        return 1;
    chk_fail_(file, line);
    fprintf(stderr, "%s: expected %lld, got %lld\n", expr, exp, got);
    return 0;
}

static inline int chk_status_(nll_status got, nll_status exp, const char *expr,
                              const char *file, int line)
{
    chk_count_++;
    if (got == exp)
        return 1;
    chk_fail_(file, line);
    fprintf(stderr, "%s: expected %s (%d), got %s (%d)\n", expr, nll_status_name(exp), (int)exp,
            nll_status_name(got), (int)got);
    return 0;
}

/* |got - exp| <= tol * max(1, |exp|); a NaN expectation wants NaN, an infinite one the same
 * infinity. */
static inline int near_(double got, double exp, double tol)
{
    if (isnan(exp))
        return isnan(got);
    if (isinf(exp))
        return got == exp;
    if (isnan(got) || isinf(got))
        return 0;
    double scale = fabs(exp) > 1.0 ? fabs(exp) : 1.0;
    return fabs(got - exp) <= tol * scale;
}

static inline int chk_near_(double got, double exp, double tol, const char *expr,
                            const char *file, int line)
{
    chk_count_++;
    if (near_(got, exp, tol))
        return 1;
    chk_fail_(file, line);
    fprintf(stderr, "%s: expected %.17g, got %.17g (tol %g)\n", expr, exp, got, tol);
    return 0;
}

static inline int chk_has_(const char *hay, const char *needle, const char *expr,
                           const char *file, int line)
{
    chk_count_++;
    if (hay && needle && strstr(hay, needle))
        return 1;
    chk_fail_(file, line);
    fprintf(stderr, "%s: \"%s\" not found in \"%s\"\n", expr, needle ? needle : "(null)",
            hay ? hay : "(null)");
    return 0;
}

static inline int chk_streq_(const char *got, const char *exp, const char *expr,
                             const char *file, int line)
{
    chk_count_++;
    if (got && exp && strcmp(got, exp) == 0)
        return 1;
    chk_fail_(file, line);
    fprintf(stderr, "%s: expected \"%s\", got \"%s\"\n", expr, exp ? exp : "(null)",
            got ? got : "(null)");
    return 0;
}

#define CHECK(c) chk_true_(!!(c), #c, __FILE__, __LINE__)
#define CHECK_INT(got, exp) chk_int_((long long)(got), (long long)(exp), #got, __FILE__, __LINE__)
#define CHECK_STATUS(got, exp) chk_status_((got), (exp), #got, __FILE__, __LINE__)
#define CHECK_NEAR(got, exp, tol) chk_near_((got), (exp), (tol), #got, __FILE__, __LINE__)
#define CHECK_HAS(hay, needle) chk_has_((hay), (needle), #hay, __FILE__, __LINE__)
#define CHECK_STREQ(got, exp) chk_streq_((got), (exp), #got, __FILE__, __LINE__)

/* The same checks with the caller's line, for helpers that check on a caller's behalf. */
#define CHECK_AT(line, c) chk_true_(!!(c), #c, __FILE__, (line))
#define CHECK_INT_AT(line, got, exp) \
    chk_int_((long long)(got), (long long)(exp), #got, __FILE__, (line))
#define CHECK_STATUS_AT(line, got, exp) chk_status_((got), (exp), #got, __FILE__, (line))
#define CHECK_NEAR_AT(line, got, exp, tol) chk_near_((got), (exp), (tol), #got, __FILE__, (line))
#define CHECK_HAS_AT(line, hay, needle) chk_has_((hay), (needle), #hay, __FILE__, (line))
#define CHECK_STREQ_AT(line, got, exp) chk_streq_((got), (exp), #got, __FILE__, (line))

/* ---------------------------------------------------------------------------------------- */
/* Dtypes */

static inline DLDataType dtype_of(int code, int bits)
{
    DLDataType d;
    d.code = (uint8_t)code;
    d.bits = (uint8_t)bits;
    d.lanes = 1;
    return d;
}

/* DLPack 0.8 added kDLBool = 6; the installed header may predate it. */
#define CHECK_KDLBOOL 6

#define F64 dtype_of(kDLFloat, 64)
#define F32 dtype_of(kDLFloat, 32)
#define F16 dtype_of(kDLFloat, 16)
#define BF16 dtype_of(kDLBfloat, 16)
#define I8 dtype_of(kDLInt, 8)
#define I16 dtype_of(kDLInt, 16)
#define I32 dtype_of(kDLInt, 32)
#define I64 dtype_of(kDLInt, 64)
#define U8 dtype_of(kDLUInt, 8)
#define U16 dtype_of(kDLUInt, 16)
#define U32 dtype_of(kDLUInt, 32)
#define U64 dtype_of(kDLUInt, 64)
#define BOOL8 dtype_of(CHECK_KDLBOOL, 8)

static inline size_t dtype_size(DLDataType d)
{
    return ((size_t)d.bits * d.lanes + 7) / 8;
}

/* float <-> float16 (IEEE binary16), round to nearest even. */
static inline uint16_t f32_to_f16(float f)
{
    uint32_t x;
    memcpy(&x, &f, 4);
    uint32_t sign = (x >> 16) & 0x8000u;
    uint32_t exp = (x >> 23) & 0xFFu;
    uint32_t man = x & 0x7FFFFFu;
    if (exp == 0xFFu)
        return (uint16_t)(sign | 0x7C00u | (man ? 0x200u : 0u));
    int32_t e = (int32_t)exp - 127 + 15;
    if (e >= 31)
        return (uint16_t)(sign | 0x7C00u);
    if (e <= 0) {
        if (e < -10)
            return (uint16_t)sign;
        man |= 0x800000u;
        uint32_t shift = (uint32_t)(14 - e);
        uint32_t h = man >> shift;
        uint32_t rem = man & ((1u << shift) - 1u);
        uint32_t halfway = 1u << (shift - 1u);
        if (rem > halfway || (rem == halfway && (h & 1u)))
            h++;
        return (uint16_t)(sign | h);
    }
    uint32_t h = sign | ((uint32_t)e << 10) | (man >> 13);
    uint32_t rem = man & 0x1FFFu;
    if (rem > 0x1000u || (rem == 0x1000u && (h & 1u)))
        h++; /* a carry into the exponent is right, up to and including inf */
    return (uint16_t)h;
}

static inline float f16_to_f32(uint16_t h)
{
    uint32_t sign = ((uint32_t)h & 0x8000u) << 16;
    uint32_t exp = ((uint32_t)h >> 10) & 0x1Fu;
    uint32_t man = (uint32_t)h & 0x3FFu;
    float f;
    if (exp == 0) {
        f = ldexpf((float)man, -24);
        return sign ? -f : f;
    }
    uint32_t x;
    if (exp == 31)
        x = sign | 0x7F800000u | (man << 13);
    else
        x = sign | ((exp + 112u) << 23) | (man << 13);
    memcpy(&f, &x, 4);
    return f;
}

/* float <-> bfloat16, round to nearest even. */
static inline uint16_t f32_to_bf16(float f)
{
    uint32_t x;
    memcpy(&x, &f, 4);
    if ((x & 0x7F800000u) == 0x7F800000u && (x & 0x7FFFFFu))
        return (uint16_t)((x >> 16) | 0x40u);
    x += 0x7FFFu + ((x >> 16) & 1u);
    return (uint16_t)(x >> 16);
}

static inline float bf16_to_f32(uint16_t b)
{
    uint32_t x = (uint32_t)b << 16;
    float f;
    memcpy(&f, &x, 4);
    return f;
}

/* One unit in the last place of v in a 16-bit format with `mant` stored mantissa bits and
 * smallest normal exponent `emin` (float16: 10, -14; bfloat16: 7, -126). */
static inline double ulp16(double v, int mant, int emin)
{
    int e;
    if (v == 0 || isnan(v) || isinf(v))
        return ldexp(1.0, emin - mant);
    frexp(v, &e); /* |v| in [2^(e-1), 2^e) */
    if (e - 1 < emin)
        e = emin + 1;
    return ldexp(1.0, e - 1 - mant);
}

/* ---------------------------------------------------------------------------------------- */
/* Tensors */

#define CHECK_MAX_DIMS (NLL_MAX_DIMS + 2)

typedef struct tt {
    DLTensor t; /* first, so TT(x) is the DLTensor */
    int64_t shape[CHECK_MAX_DIMS];
    int64_t strides[CHECK_MAX_DIMS];
    int64_t cstrides[CHECK_MAX_DIMS]; /* compact row-major strides, used when t.strides NULL */
    unsigned char *mem;               /* the allocation (owned when owner == this) */
    size_t nbytes;
    struct tt *owner; /* the tensor owning mem: itself, or the base of a view */
    unsigned char *snap;
    struct tt *next;
} tt;

#define TT(x) (&(x)->t)
/* A shape (or strides) literal: SH(3, 5). */
#define SH(...) ((const int64_t[]){__VA_ARGS__})
/* A values literal: VD(1, 2, 3). */
#define VD(...) ((const double[]){__VA_ARGS__})

static tt *tt_all_ = NULL;

static inline tt *tt_alloc_(DLDataType dt, int ndim, const int64_t *shape, const int64_t *strides)
{
    tt *x = (tt *)calloc(1, sizeof *x);
    if (!x) {
        fprintf(stderr, "check.h: out of memory\n");
        exit(2);
    }
    x->next = tt_all_;
    tt_all_ = x;
    x->owner = x;
    x->t.device.device_type = kDLCPU;
    x->t.device.device_id = 0;
    x->t.dtype = dt;
    x->t.ndim = ndim;
    x->t.shape = x->shape;
    for (int d = 0; d < ndim && d < CHECK_MAX_DIMS; d++)
        x->shape[d] = shape[d];
    /* unsigned: shapes built to overflow int64 must not overflow here */
    uint64_t s = 1;
    for (int d = ndim - 1; d >= 0; d--) {
        if (d < CHECK_MAX_DIMS)
            x->cstrides[d] = (int64_t)(s & (uint64_t)INT64_MAX);
        s *= shape[d] > 0 ? (uint64_t)shape[d] : 1u;
    }
    if (strides) {
        for (int d = 0; d < ndim && d < CHECK_MAX_DIMS; d++)
            x->strides[d] = strides[d];
        x->t.strides = x->strides;
    } else {
        x->t.strides = NULL;
    }
    return x;
}

static inline int64_t tt_numel(const tt *x)
{
    int64_t n = 1;
    for (int d = 0; d < x->t.ndim; d++)
        n *= x->shape[d];
    return n;
}

static inline int64_t tt_stride_(const tt *x, int d)
{
    return x->t.strides ? x->t.strides[d] : x->cstrides[d];
}

/* The element offset (in elements, before byte_offset) of row-major position `flat`. */
static inline int64_t tt_offset(const tt *x, int64_t flat)
{
    int64_t off = 0;
    for (int d = x->t.ndim - 1; d >= 0; d--) {
        int64_t n = x->shape[d];
        off += (flat % n) * tt_stride_(x, d);
        flat /= n;
    }
    return off;
}

/* A fresh zeroed tensor with the given strides (NULL = compact) and byte_offset. */
static inline tt *tnew_strided(DLDataType dt, int ndim, const int64_t *shape,
                               const int64_t *strides, uint64_t byte_offset)
{
    tt *x = tt_alloc_(dt, ndim, shape, strides);
    int64_t maxoff = 0, numel = 1;
    for (int d = 0; d < ndim; d++) {
        numel *= shape[d];
        int64_t st = strides ? strides[d] : x->cstrides[d];
        if (shape[d] > 0)
            maxoff += (shape[d] - 1) * st;
    }
    size_t need = (size_t)byte_offset + (numel > 0 ? (size_t)(maxoff + 1) * dtype_size(dt) : 0);
    x->nbytes = need < 16 ? 16 : need;
    x->mem = (unsigned char *)calloc(1, x->nbytes);
    if (!x->mem) {
        fprintf(stderr, "check.h: out of memory\n");
        exit(2);
    }
    x->t.data = x->mem;
    x->t.byte_offset = byte_offset;
    return x;
}

static inline tt *tnew(DLDataType dt, int ndim, const int64_t *shape)
{
    return tnew_strided(dt, ndim, shape, NULL, 0);
}

/* A tensor with a small 64-byte buffer whatever its shape: for shapes that are rejected
 * before any element is touched (negative, overflowing). */
static inline tt *tnew_raw(DLDataType dt, int ndim, const int64_t *shape, const int64_t *strides)
{
    tt *x = tt_alloc_(dt, ndim, shape, strides);
    x->nbytes = 64;
    x->mem = (unsigned char *)calloc(1, x->nbytes);
    if (!x->mem) {
        fprintf(stderr, "check.h: out of memory\n");
        exit(2);
    }
    x->t.data = x->mem;
    return x;
}

/* A view into base's memory with its own dtype, shape, strides and byte_offset. */
static inline tt *tview(tt *base, DLDataType dt, int ndim, const int64_t *shape,
                        const int64_t *strides, uint64_t byte_offset)
{
    tt *x = tt_alloc_(dt, ndim, shape, strides);
    x->owner = base->owner;
    x->mem = base->owner->mem;
    x->nbytes = base->owner->nbytes;
    x->t.data = x->mem;
    x->t.byte_offset = byte_offset;
    return x;
}

static inline void *tt_ptr(const tt *x, int64_t flat)
{
    return (unsigned char *)x->t.data + x->t.byte_offset +
           (size_t)tt_offset(x, flat) * dtype_size(x->t.dtype);
}

static inline void tset(tt *x, int64_t flat, double v)
{
    void *p = tt_ptr(x, flat);
    DLDataType d = x->t.dtype;
    switch (d.code) {
    case kDLFloat:
        if (d.bits == 64) {
            memcpy(p, &v, 8);
        } else if (d.bits == 32) {
            float f = (float)v;
            memcpy(p, &f, 4);
        } else {
            uint16_t h = f32_to_f16((float)v);
            memcpy(p, &h, 2);
        }
        break;
    case kDLBfloat: {
        uint16_t h = f32_to_bf16((float)v);
        memcpy(p, &h, 2);
        break;
    }
    case kDLInt:
    case kDLUInt:
    case CHECK_KDLBOOL: {
        /* Through int64 (or uint64 for large values), then truncate: no float-to-narrow-int
         * conversion, whose overflow is undefined. */
        uint64_t u = v >= 9223372036854775808.0 ? (uint64_t)v : (uint64_t)(int64_t)v;
        if (d.bits == 8) {
            uint8_t q = (uint8_t)u;
            memcpy(p, &q, 1);
        } else if (d.bits == 16) {
            uint16_t q = (uint16_t)u;
            memcpy(p, &q, 2);
        } else if (d.bits == 32) {
            uint32_t q = (uint32_t)u;
            memcpy(p, &q, 4);
        } else {
            memcpy(p, &u, 8);
        }
        break;
    }
    default:
        break;
    }
}

static inline double tget(const tt *x, int64_t flat)
{
    const void *p = tt_ptr(x, flat);
    DLDataType d = x->t.dtype;
    switch (d.code) {
    case kDLFloat:
        if (d.bits == 64) {
            double v;
            memcpy(&v, p, 8);
            return v;
        } else if (d.bits == 32) {
            float f;
            memcpy(&f, p, 4);
            return f;
        } else {
            uint16_t h;
            memcpy(&h, p, 2);
            return f16_to_f32(h);
        }
    case kDLBfloat: {
        uint16_t h;
        memcpy(&h, p, 2);
        return bf16_to_f32(h);
    }
    case kDLInt:
        if (d.bits == 8) {
            int8_t q;
            memcpy(&q, p, 1);
            return q;
        } else if (d.bits == 16) {
            int16_t q;
            memcpy(&q, p, 2);
            return q;
        } else if (d.bits == 32) {
            int32_t q;
            memcpy(&q, p, 4);
            return q;
        } else {
            int64_t q;
            memcpy(&q, p, 8);
            return (double)q;
        }
    case kDLUInt:
    case CHECK_KDLBOOL:
        if (d.bits == 8) {
            uint8_t q;
            memcpy(&q, p, 1);
            return q;
        } else if (d.bits == 16) {
            uint16_t q;
            memcpy(&q, p, 2);
            return q;
        } else if (d.bits == 32) {
            uint32_t q;
            memcpy(&q, p, 4);
            return q;
        } else {
            uint64_t q;
            memcpy(&q, p, 8);
            return (double)q;
        }
    default:
        return NAN;
    }
}

/* Exact 64-bit integer store, for values a double cannot hold. */
static inline void tseti(tt *x, int64_t flat, int64_t v)
{
    void *p = tt_ptr(x, flat);
    if (x->t.dtype.bits == 64)
        memcpy(p, &v, 8);
    else
        tset(x, flat, (double)v);
}

/* Sets every element from vals, in row-major order. */
static inline tt *tfill(tt *x, const double *vals)
{
    int64_t n = tt_numel(x);
    for (int64_t i = 0; i < n; i++)
        tset(x, i, vals[i]);
    return x;
}

/* A new compact tensor holding vals (row-major). */
static inline tt *tvals(DLDataType dt, int ndim, const int64_t *shape, const double *vals)
{
    return tfill(tnew(dt, ndim, shape), vals);
}

/* A 0-d tensor holding v. */
static inline tt *tscalar(DLDataType dt, double v)
{
    tt *x = tnew(dt, 0, NULL);
    tset(x, 0, v);
    return x;
}

/* Fills the whole allocation behind x with one byte. */
static inline void tfill_bytes(tt *x, unsigned char byte)
{
    memset(x->owner->mem, byte, x->owner->nbytes);
}

/* Saves a copy of the whole allocation behind x, for tunchanged(). */
static inline void tsnap(tt *x)
{
    tt *o = x->owner;
    free(o->snap);
    o->snap = (unsigned char *)malloc(o->nbytes);
    if (!o->snap) {
        fprintf(stderr, "check.h: out of memory\n");
        exit(2);
    }
    memcpy(o->snap, o->mem, o->nbytes);
}

/* How many bytes of the allocation behind x differ from the last tsnap(). */
static inline size_t tchanged_bytes(const tt *x)
{
    const tt *o = x->owner;
    size_t n = 0;
    if (!o->snap)
        return 0;
    for (size_t i = 0; i < o->nbytes; i++)
        n += o->mem[i] != o->snap[i];
    return n;
}

/* Do a and b hold the same bytes (same dtype and shape, compared element by element)? */
static inline int tsame_bytes(const tt *a, const tt *b)
{
    int64_t n = tt_numel(a);
    if (n != tt_numel(b) || dtype_size(a->t.dtype) != dtype_size(b->t.dtype))
        return 0;
    for (int64_t i = 0; i < n; i++)
        if (memcmp(tt_ptr(a, i), tt_ptr(b, i), dtype_size(a->t.dtype)) != 0)
            return 0;
    return 1;
}

/* Checks every element of got against exp (row-major), reporting the first few mismatches. */
static inline int check_values_(const tt *got, const double *exp, double tol, const char *what,
                                const char *file, int line)
{
    int64_t n = tt_numel(got);
    int bad = 0;
    chk_count_++;
    for (int64_t i = 0; i < n; i++) {
        double g = tget(got, i);
        if (!near_(g, exp[i], tol)) {
            if (bad < 5) {
                chk_fail_(file, line);
                chk_failures_--; /* counted once below */
                fprintf(stderr, "%s[%lld]: expected %.17g, got %.17g (tol %g)\n", what,
                        (long long)i, exp[i], g, tol);
            }
            bad++;
        }
    }
    if (bad) {
        chk_failures_++;
        if (bad > 5)
            fprintf(stderr, "  ... %d mismatches in %s\n", bad, what);
    }
    return bad == 0;
}
#define CHECK_VALUES(got, exp, tol) check_values_((got), (exp), (tol), #got, __FILE__, __LINE__)
#define CHECK_VALUES_AT(line, got, exp, tol) \
    check_values_((got), (exp), (tol), #got, __FILE__, (line))

/* Compares two tensors element by element with a tolerance. */
static inline int check_close_(const tt *got, const tt *exp, double tol, const char *what,
                               const char *file, int line)
{
    int64_t n = tt_numel(exp);
    double *e = (double *)malloc((size_t)(n > 0 ? n : 1) * sizeof(double));
    if (!e)
        exit(2);
    for (int64_t i = 0; i < n; i++)
        e[i] = tget(exp, i);
    int ok;
    if (tt_numel(got) != n) {
        chk_count_++;
        chk_fail_(file, line);
        fprintf(stderr, "%s: %lld elements, expected %lld\n", what, (long long)tt_numel(got),
                (long long)n);
        ok = 0;
    } else {
        ok = check_values_(got, e, tol, what, file, line);
    }
    free(e);
    return ok;
}
#define CHECK_CLOSE(got, exp, tol) check_close_((got), (exp), (tol), #got, __FILE__, __LINE__)

/* ---------------------------------------------------------------------------------------- */
/* Deterministic data: xorshift64* */

static uint64_t rng_state_ = 0x9E3779B97F4A7C15ull;

static inline void rng_seed(uint64_t s)
{
    rng_state_ = s ? s : 0x9E3779B97F4A7C15ull;
}

static inline uint64_t rng_next(void)
{
    uint64_t x = rng_state_;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    rng_state_ = x;
    return x * 0x2545F4914F6CDD1Dull;
}

/* Uniform in [lo, hi). */
static inline double rng_uniform(double lo, double hi)
{
    return lo + (hi - lo) * ((double)(rng_next() >> 11) * (1.0 / 9007199254740992.0));
}

/* Uniform integer in [0, n). */
static inline int64_t rng_int(int64_t n)
{
    return (int64_t)(rng_next() % (uint64_t)n);
}

/* Fills x with uniform values in [lo, hi). */
static inline tt *trandom(tt *x, double lo, double hi)
{
    int64_t n = tt_numel(x);
    for (int64_t i = 0; i < n; i++)
        tset(x, i, rng_uniform(lo, hi));
    return x;
}

/* ---------------------------------------------------------------------------------------- */
/* Context and finish */

static inline nll_context *check_context(void)
{
    nll_context *ctx = NULL;
    nll_status s = nll_context_create(&ctx);
    if (s != NLL_OK || !ctx) {
        fprintf(stderr, "nll_context_create failed: %d\n", (int)s);
        exit(2);
    }
    return ctx;
}

/* Frees every tensor, prints the tally; the value to return from main(). */
static inline int check_finish(const char *name)
{
    while (tt_all_) {
        tt *x = tt_all_;
        tt_all_ = x->next;
        if (x->owner == x)
            free(x->mem);
        free(x->snap);
        free(x);
    }
    printf("%s: %d checks, %d failed\n", name, chk_count_, chk_failures_);
    return chk_failures_ ? 1 : 0;
}

#endif /* NLL_TEST_CHECK_H */
