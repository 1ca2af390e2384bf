/* fuzz_api.c — every public entry point of libnll, with tensors, options and data decoded from
 * the fuzz input. The contract under test: a call returns a status or writes a valid output,
 * and never crashes, reads or writes out of bounds, or touches memory it was not given.
 *
 * The input is read as a stream of bytes: the op, the thread count, the options, then for each
 * tensor the call takes a descriptor (dtype, shape, strides, byte_offset, device; sometimes a
 * NULL tensor, NULL shape or NULL data), whether an output aliases another tensor (in place,
 * shifted, or elsewhere in its buffer), and last the element values; past the input's end a
 * generator seeded from the input continues, so any input decodes to a complete call.
 *
 * Why an ASan report means a library bug, never a harness bug: the harness computes each
 * tensor's byte extent exactly (128-bit) and gives real memory only to a tensor that fits it,
 * in a buffer sized to what its tensors claim, with poisoned (or, without ASan, checked) guard
 * bytes on both sides. A tensor that claims more is given either NULL data (the library must
 * answer NLL_ERROR_NULL_DATA or another error) or, when its extent cannot exist in the address
 * space at all, a real pointer that the library must reject. Dimensions whose product overflows
 * int64, negative sizes, bad ranks, unknown dtypes and devices must be rejected too. So:
 *  - NLL_OK may only come from a call whose every tensor fits its memory; then only output
 *    elements changed, no output overlaps anything but its allowed in-place input exactly, and
 *    a second run with another thread count and scrambled output memory writes the very same
 *    bytes (results do not depend on threads, and every output element is written);
 *  - any other status leaves every byte as it was, and nll_last_error() names the function.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "nll.h"

#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define FUZZ_ASAN 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__) && !defined(FUZZ_ASAN)
#define FUZZ_ASAN 1
#endif
#ifdef FUZZ_ASAN
#include <sanitizer/asan_interface.h>
#define FUZZ_POISON(p, n) ASAN_POISON_MEMORY_REGION((p), (n))
#define FUZZ_UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION((p), (n))
#else
#define FUZZ_POISON(p, n) ((void)(p), (void)(n))
#define FUZZ_UNPOISON(p, n) ((void)(p), (void)(n))
#endif

typedef __int128 i128;

/* The harness's bookkeeping over every byte or element of a call (filling buffers, marking
 * owners, comparing after the call): kept out of line so that fuzz/coverage-ignore.txt can keep
 * libFuzzer's comparison tracing out of them. Traced, these loops were most of each input's
 * time and no coverage signal: the library's own branches are what guide the fuzzer. */
#define BULK __attribute__((noinline))

#define GUARD 64                 /* bytes on each side of every buffer */
#define SANE_BYTES (1 << 20)     /* the largest extent backed by real memory */
#define SANE_NUMEL (1 << 17)     /* and the most elements (stride 0 makes many from few bytes) */
#define TINY 16                  /* the buffer behind a tensor that must be rejected */
#define SPAN_CAP ((i128)1 << 90) /* extents beyond this are all "cannot exist" alike */

/* ---------------------------------------------------------------------------------------- */
/* The byte stream */

typedef struct reader {
    const uint8_t *p;
    size_t n;
    uint64_t rng; /* continues the stream past its end */
} reader;

static uint8_t u8(reader *r)
{
    if (r->n) {
        r->n--;
        return *r->p++;
    }
    r->rng ^= r->rng << 13;
    r->rng ^= r->rng >> 7;
    r->rng ^= r->rng << 17;
    return (uint8_t)(r->rng >> 32);
}

/* n bytes of the stream at once: the same bytes as n calls of u8. */
static BULK void read_bytes(reader *r, unsigned char *out, int64_t n)
{
    int64_t given = (uint64_t)n < r->n ? n : (int64_t)r->n;
    memcpy(out, r->p, (size_t)given);
    r->p += given;
    r->n -= (size_t)given;
    uint64_t x = r->rng;
    for (int64_t j = given; j < n; j++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out[j] = (uint8_t)(x >> 32);
    }
    r->rng = x;
}

static uint64_t u64(reader *r)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = v << 8 | u8(r);
    return v;
}

static const int64_t special_i64[] = {
    0, 1, 2, 3, -1, -2, 255, 256, INT32_MAX, (int64_t)1 << 31, ((int64_t)1 << 32) + 1,
    (int64_t)1 << 40, 3037000500, (int64_t)1 << 60, -((int64_t)1 << 60), (int64_t)1 << 62,
    -((int64_t)1 << 62), INT64_MAX, INT64_MAX - 1, INT64_MIN, INT64_MIN + 1, INT64_MAX / 2,
    INT64_MAX / 3, -((int64_t)1 << 31), 1000, 40000};
#define N_SPECIAL (sizeof special_i64 / sizeof special_i64[0])

static int64_t special(reader *r)
{
    return special_i64[u8(r) % N_SPECIAL];
}

/* A dimension: mostly small, sometimes large enough for several parallel blocks, sometimes
 * absurd. */
static int64_t dim_value(reader *r)
{
    uint8_t b = u8(r);
    if (b < 180)
        return b % 6;
    if (b < 230)
        return b % 40;
    if (b < 240)
        return (int64_t[]){100, 1000, 4096, 20000, 40000, 70000, 1 << 17, 3}[b % 8];
    return special(r);
}

/* ---------------------------------------------------------------------------------------- */
/* Dtypes */

static DLDataType dt(int code, int bits)
{
    DLDataType d = {(uint8_t)code, (uint8_t)bits, 1};
    return d;
}

static const DLDataType float_types[] = {{kDLFloat, 64, 1}, {kDLFloat, 32, 1},
                                         {kDLFloat, 16, 1}, {kDLBfloat, 16, 1}};

static DLDataType any_dtype(reader *r)
{
    uint8_t b = u8(r);
    if (b < 64)
        return float_types[b % 4];
    if (b < 160)
        return dt(b % 2 ? kDLInt : kDLUInt, 8 << (b / 2 % 4));
    if (b < 176)
        return dt(6, 8); /* bool */
    if (b < 184)
        return dt(kDLComplex, b % 2 ? 64 : 128);
    DLDataType d = {u8(r), u8(r), (uint16_t)(u8(r) % 4)};
    return d;
}

static int is_float(DLDataType d)
{
    return d.lanes == 1 && ((d.code == kDLFloat && (d.bits == 16 || d.bits == 32 || d.bits == 64)) ||
                            (d.code == kDLBfloat && d.bits == 16));
}

static int is_integer(DLDataType d)
{
    return d.lanes == 1 && (d.code == kDLInt || d.code == kDLUInt) &&
           (d.bits == 8 || d.bits == 16 || d.bits == 32 || d.bits == 64);
}

/* The dtypes the library knows (it rejects the rest before looking further). */
static int is_known(DLDataType d)
{
    return is_float(d) || is_integer(d) || (d.lanes == 1 && d.code == 6 && d.bits == 8) ||
           (d.lanes == 1 && d.code == kDLComplex && (d.bits == 64 || d.bits == 128));
}

static uint16_t to_half(float f)
{
    uint32_t x;
    memcpy(&x, &f, 4);
    uint32_t sign = (x >> 16) & 0x8000u, mag = x & 0x7FFFFFFFu;
    if (mag > 0x7F800000u)
        return (uint16_t)(sign | 0x7E00u);
    if (mag >= 0x47800000u)
        return (uint16_t)(sign | 0x7C00u);
    if (mag < 0x38800000u) /* subnormal half: truncate */
        return (uint16_t)(sign | (uint32_t)(ldexpf(fabsf(f), 24)));
    return (uint16_t)(sign | ((mag - (112u << 23)) >> 13));
}

/* Stores v as one element of dtype d (integers: through int64, truncated). */
static void store(unsigned char *p, DLDataType d, double v, int64_t iv)
{
    if (d.code == kDLFloat && d.bits == 64) {
        memcpy(p, &v, 8);
    } else if (d.code == kDLFloat && d.bits == 32) {
        float f = (float)v;
        memcpy(p, &f, 4);
    } else if (d.code == kDLFloat && d.bits == 16) {
        uint16_t h = to_half((float)v);
        memcpy(p, &h, 2);
    } else if (d.code == kDLBfloat && d.bits == 16) {
        float f = (float)v;
        uint32_t x;
        memcpy(&x, &f, 4);
        uint16_t h = (uint16_t)(x >> 16);
        memcpy(p, &h, 2);
    } else if (is_integer(d) || d.code == 6) {
        uint64_t u = (uint64_t)iv;
        memcpy(p, &u, d.bits / 8); /* little-endian truncation */
    }
}

/* ---------------------------------------------------------------------------------------- */
/* Tensors and the buffers behind them */

enum {
    S_INPUT,
    S_TARGET,
    S_WEIGHT,
    S_GRAD_LOSS,
    S_OUTPUT,      /* log_softmax's output: written by forward, read by backward */
    S_GRAD_OUTPUT, /* log_softmax backward's upstream */
    S_LOSS,
    S_TOTAL_WEIGHT,
    S_GRAD,
    S_COUNT
};

static const char *const slot_names[S_COUNT] = {"input", "target", "weight", "grad_loss",
                                                "output", "grad_output", "loss",
                                                "total_weight", "grad_input"};

/* What the harness knows about a tensor, and so what the library may do with it. */
enum {
    C_SANE,   /* fits real memory: may be accepted */
    C_EMPTY,  /* no elements: may be accepted, no element may be touched */
    C_REJECT, /* invalid whatever its memory (rank, size, dtype, device, extent): must fail */
    C_BIG     /* has elements but no memory: given NULL data, so must fail */
};

typedef struct slot {
    int used;    /* the op takes this tensor */
    int output;  /* the op writes it */
    int present; /* a tensor is passed (else NULL) */
    DLTensor t;
    int64_t shape[64], strides[64];
    int null_shape, null_strides, null_data, raw_offset;
    uint64_t offset; /* byte_offset as decoded, for tensors not given real memory */
    int cls;
    int64_t numel;
    int64_t item;  /* bytes per element */
    i128 lo, hi;   /* bytes spanned, relative to data + byte_offset: [lo, hi) */
    int buf;       /* buffer index, -1 for none */
    int64_t pos;   /* where data + byte_offset lies in the buffer */
    int self_overlap;
    int fill;      /* how input values are drawn */
} slot;

typedef struct buffer {
    int64_t size;
    unsigned char *alloc; /* GUARD + size + GUARD */
    unsigned char *snap, *after;
    uint16_t *owner; /* per byte: the slots whose elements hold it */
} buffer;

typedef struct call {
    int op;
    nll_context *ctx;
    int threads;
    char arch[24]; /* "" keeps the context's default */
    nll_options options;
    int null_options, null_ctx;
    int64_t dim;
    slot s[S_COUNT];
    buffer b[S_COUNT];
    int nbuf;
    uint16_t shares[S_COUNT]; /* per slot: the other slots that hold one of its bytes too */
} call;

/* The stride of dim d in elements: given, or row-major (unsigned: a shape that overflows is
 * rejected by the library, and its wrapped stride is never used for memory). */
static int64_t effective_stride(const slot *x, int d)
{
    if (!x->null_strides)
        return x->strides[d];
    uint64_t s = 1;
    for (int k = x->t.ndim - 1; k > d; k--)
        s *= (uint64_t)x->shape[k];
    return (int64_t)s;
}

/* Fills x->numel, x->lo, x->hi and decides whether the tensor is invalid whatever its memory. */
static void measure(slot *x)
{
    DLTensor *t = &x->t;
    x->numel = 0;
    x->lo = x->hi = 0;
    x->item = t->dtype.lanes ? ((int64_t)t->dtype.bits * t->dtype.lanes + 7) / 8 : 1;
    if (x->item < 1)
        x->item = 1;
    if (t->ndim < 0 || t->ndim > NLL_MAX_DIMS || (t->ndim > 0 && x->null_shape) ||
        !is_known(t->dtype)) {
        x->cls = C_REJECT;
        return;
    }
    i128 numel = 1;
    int zero = 0, overflow = 0;
    for (int d = 0; d < t->ndim; d++) {
        if (x->shape[d] < 0) {
            x->cls = C_REJECT;
            return;
        }
        if (x->shape[d] == 0)
            zero = 1;
        else if (!overflow && (numel *= x->shape[d]) > INT64_MAX)
            overflow = 1;
    }
    if (zero) {
        x->cls = C_EMPTY; /* a device check still applies, but no element can be touched */
        return;
    }
    if (overflow || (t->device.device_type != kDLCPU && t->device.device_type != kDLCUDAHost)) {
        x->cls = C_REJECT;
        return;
    }
    x->numel = (int64_t)numel;
    /* With NULL strides an overflowing compact stride is impossible here: numel fits. */
    i128 lo = 0, hi = 0;
    for (int d = 0; d < t->ndim; d++) {
        i128 reach = (i128)effective_stride(x, d) * (x->shape[d] - 1);
        if (reach > SPAN_CAP)
            reach = SPAN_CAP;
        if (reach < -SPAN_CAP)
            reach = -SPAN_CAP;
        if (reach > 0)
            hi += reach;
        else
            lo += reach;
    }
    x->lo = lo * x->item;
    x->hi = (hi + 1) * x->item;
    x->cls = !x->raw_offset && x->numel <= SANE_NUMEL && x->hi - x->lo <= SANE_BYTES ? C_SANE
                                                                                     : C_BIG;
}

/* Strides for a compact-ish layout, chosen by one byte: row-major, padded, reversed,
 * permuted, broadcast, or arbitrary. */
static void decode_layout(reader *r, slot *x)
{
    int nd = x->t.ndim;
    uint8_t b = u8(r);
    x->null_strides = b < 96;
    if (x->null_strides || nd <= 0)
        return;
    int kind = b % 6;
    int perm[NLL_MAX_DIMS];
    for (int d = 0; d < nd; d++)
        perm[d] = d;
    if (kind == 2) /* permuted: memory order is a shuffle of the dims */
        for (int d = nd - 1; d > 0; d--) {
            int k = u8(r) % (d + 1), tmp = perm[d];
            perm[d] = perm[k];
            perm[k] = tmp;
        }
    int64_t s = 1;
    for (int k = nd - 1; k >= 0; k--) {
        int d = perm[k];
        x->strides[d] = s;
        int64_t n = x->shape[d] > 0 ? x->shape[d] : 1;
        int64_t pad = kind == 1 ? u8(r) % 3 : 0; /* padded rows */
        i128 next = (i128)s * ((i128)n + pad);
        if (next <= INT64_MAX)
            s = (int64_t)next;
    }
    uint8_t flips = kind == 3 ? u8(r) : 0; /* reversed dims: negative strides */
    for (int d = 0; d < nd; d++) {
        if (flips >> (d % 8) & 1)
            x->strides[d] = -x->strides[d];
        if (kind == 4 && u8(r) < 64) /* broadcast along d */
            x->strides[d] = 0;
        if (kind == 5) /* arbitrary small strides: may overlap themselves */
            x->strides[d] = (int64_t)(u8(r) % 9) - 4;
    }
}

/* One mutation of a canonical descriptor: what makes a tensor invalid in each way. */
static void mutate(reader *r, slot *x, int64_t *dim)
{
    switch (u8(r) % 12) {
    case 0: x->t.dtype = any_dtype(r); break;
    case 1: x->t.dtype = float_types[u8(r) % 4]; break;
    case 2: { /* rank: one more or one less, or far out of range */
        uint8_t b = u8(r);
        int nd = b < 96 ? x->t.ndim + 1 : b < 192 ? x->t.ndim - 1 : (int[]){17, 18, 63, -1, -7, 64}[b % 6];
        if (nd > 0 && nd <= 64)
            for (int d = x->t.ndim > 0 ? x->t.ndim : 0; d < nd; d++)
                x->shape[d] = 1, x->strides[d] = 1;
        x->t.ndim = nd;
        break;
    }
    case 3:
        if (x->t.ndim > 0 && x->t.ndim <= 64)
            x->shape[u8(r) % x->t.ndim] = u8(r) < 128 ? special(r) : dim_value(r);
        break;
    case 4: x->present = 0; break;
    case 5: x->null_shape = 1; break;
    case 6: {
        static const int devices[] = {kDLCUDA, kDLCUDAHost, kDLOpenCL, kDLROCM, kDLCUDAManaged, 0, 99};
        x->t.device.device_type = (DLDeviceType)devices[u8(r) % 7];
        x->t.device.device_id = (int32_t)(u8(r) % 3);
        break;
    }
    case 7: x->t.device.device_id = (int32_t)u64(r); break; /* another CPU id: fine */
    case 8:
        if (x->t.ndim > 0 && x->t.ndim <= 64) {
            if (x->null_strides) {
                for (int d = 0; d < x->t.ndim && d < NLL_MAX_DIMS; d++)
                    x->strides[d] = effective_stride(x, d);
                x->null_strides = 0;
            }
            x->strides[u8(r) % x->t.ndim] = special(r);
        }
        break;
    case 9: x->raw_offset = 1, x->offset = u8(r) < 128 ? (uint64_t)special(r) : u64(r); break;
    case 10: x->null_data = 1; break;
    default: *dim = u8(r) < 128 ? special(r) : (int64_t)(int8_t)u8(r); break;
    }
}

/* A descriptor of the given shape, in one of the layouts; then maybe a mutation or two. */
static void decode_tensor(reader *r, call *c, int k, DLDataType dtype, int ndim,
                          const int64_t *shape)
{
    slot *x = &c->s[k];
    x->used = x->present = 1;
    x->t.device.device_type = u8(r) < 250 ? kDLCPU : kDLCUDAHost;
    x->t.dtype = dtype;
    x->t.ndim = ndim;
    for (int d = 0; d < ndim; d++)
        x->shape[d] = shape[d];
    decode_layout(r, x);
    x->fill = u8(r);
    uint8_t m = u8(r);
    for (int i = 0; i < 3 && m >= 200; i++, m = u8(r))
        mutate(r, x, &c->dim);
}

/* ---------------------------------------------------------------------------------------- */
/* Element values */

static double float_value(reader *r, int mode)
{
    uint8_t b = u8(r);
    if (mode == 1) /* a probability or a weight */
        return b < 240 ? b / 240.0 : (double[]){0, 1, -1, 2, NAN, INFINITY, -0.0, 1e-30, 1e30, 0.5, -INFINITY, 7, 1e-45, 65504, 3e38, 0.25}[b % 16];
    if (b < 220)
        return ((int)b - 110) / 16.0;
    static const double specials[] = {0.0, -0.0, INFINITY, -INFINITY, NAN, 1e30, -1e30, 65504,
                                      -65504, 1e-40, 3.4e38, -3.4e38, 1e300, 1e-310, 88.7, -104};
    return specials[b % 16];
}

static int64_t class_value(reader *r, int64_t classes, int64_t ignore_index)
{
    uint8_t b = u8(r);
    if (b < 200)
        return classes > 0 ? (int64_t)(b % (uint64_t)classes) : 0;
    static const int64_t odd[] = {-1, -100, 255, 0, 1, INT64_MAX, INT64_MIN, 65535, 128};
    if (b < 230)
        return ignore_index;
    if (b < 240)
        return classes;
    return odd[b % 9];
}

/* Walks x's elements in row-major order: byte position of each in its buffer. */
typedef struct walk {
    int64_t idx[NLL_MAX_DIMS];
    int64_t at, n;
} walk;

static int64_t walk_next(const slot *x, walk *w)
{
    int64_t at = w->at;
    for (int d = x->t.ndim - 1; d >= 0; d--) {
        if (x->shape[d] <= 1)
            continue; /* never moves along d; its stride may be anything */
        int64_t st = effective_stride(x, d) * x->item; /* small: the extent is */
        if (++w->idx[d] < x->shape[d]) {
            w->at += st;
            break;
        }
        w->at -= st * (x->shape[d] - 1);
        w->idx[d] = 0;
    }
    return at;
}

static BULK void fill_values(reader *r, call *c, int k, int64_t classes)
{
    slot *x = &c->s[k];
    if (!x->used || !x->present || x->cls != C_SANE || x->output)
        return;
    unsigned char *base = c->b[x->buf].alloc + GUARD;
    walk w = {{0}, x->pos, 0};
    int mode = x->fill % 4; /* 0: keep the raw bytes already there */
    if (mode == 0)
        return;
    for (int64_t i = 0; i < x->numel; i++) {
        unsigned char *p = base + walk_next(x, &w);
        if (k == S_TARGET && (mode != 3 || !is_float(x->t.dtype))) {
            int64_t v = class_value(r, classes, c->options.ignore_index);
            if (is_float(x->t.dtype))
                store(p, x->t.dtype, u8(r) < 240 ? (double)v : (double[]){0.5, NAN, 1e30, -INFINITY}[u8(r) % 4], 0);
            else
                store(p, x->t.dtype, 0, v);
        } else {
            double v = float_value(r, k == S_TARGET || k == S_WEIGHT ? 1 : 0);
            store(p, x->t.dtype, v, (int64_t)(u8(r) % 3));
        }
    }
}

/* ---------------------------------------------------------------------------------------- */
/* Decoding a whole call */

static void decode_options(reader *r, call *c)
{
    nll_options *o = &c->options;
    *o = nll_options_default();
    uint8_t b = u8(r);
    o->reduction = (nll_reduction)(b < 240 ? b % 3 : (int[]){-1, 3, 7, 255, INT32_MIN, INT32_MAX, 100, -100}[b % 8]);
    b = u8(r);
    o->ignore_index = b < 64 ? -100 : b < 128 ? (int64_t)(b % 8) - 1 : b < 240 ? special(r) : (int64_t)u64(r);
    b = u8(r);
    if (b >= 128) {
        static const double eps[] = {0.1, 0.5, 1.0, 0.0, -0.0, 1e-300, -0.1, NAN, INFINITY,
                                     -INFINITY, 1.0000000000000002, 1.5, 0.9999, 5e-324, 0.25, 0.05};
        o->label_smoothing = eps[b % 16];
        if (b >= 250) {
            uint64_t bits = u64(r);
            memcpy(&o->label_smoothing, &bits, 8);
        }
    }
    b = u8(r);
    o->flags = b < 200 ? b % 4u : (unsigned)u64(r);
    c->null_options = u8(r) == 255;
}

static void decode_call(reader *r, call *c)
{
    c->op = u8(r) % 8;
    uint8_t b = u8(r);
    c->threads = (int[]){1, 1, 2, 3, 4, 0, 1, 2}[b % 8];
    c->null_ctx = b >= 252;
    b = u8(r);
    static const char *const arches[] = {"", "ref", "avx2", "avx512", "avx512bf16"};
    if (b < 250) {
        strcpy(c->arch, arches[b % 5]);
    } else { /* any short string: an unknown name must be refused */
        for (size_t i = 0; i + 1 < sizeof c->arch; i++)
            if (!(c->arch[i] = (char)u8(r)))
                break;
    }
    decode_options(r, c);

    /* The input's dtype and shape, from which every canonical shape follows. */
    DLDataType dtype = u8(r) < 240 ? float_types[u8(r) % 4] : any_dtype(r);
    b = u8(r);
    int ndim = b < 12 ? 0 : b < 232 ? 1 + b % 4 : 5 + b % 12;
    int64_t shape[NLL_MAX_DIMS];
    for (int d = 0; d < ndim; d++)
        shape[d] = dim_value(r);
    b = u8(r);
    c->dim = ndim > 0 ? (int64_t)(b % (2 * ndim)) - ndim : 0;

    int axis = ndim == 1 ? 0 : 1;
    int64_t sample[NLL_MAX_DIMS], classes = ndim > 0 ? shape[axis] : 1;
    int sample_ndim = 0;
    for (int d = 0; d < ndim; d++)
        if (d != axis)
            sample[sample_ndim++] = shape[d];
    int reduced = c->options.reduction != NLL_REDUCTION_NONE;
    static const int64_t one[2] = {1, 1};

    switch (c->op) {
    case 0: /* log_softmax forward */
        decode_tensor(r, c, S_INPUT, dtype, ndim, shape);
        decode_tensor(r, c, S_OUTPUT, dtype, ndim, shape);
        c->s[S_OUTPUT].output = 1;
        break;
    case 1: /* log_softmax backward */
        decode_tensor(r, c, S_GRAD_OUTPUT, dtype, ndim, shape);
        decode_tensor(r, c, S_OUTPUT, dtype, ndim, shape);
        decode_tensor(r, c, S_GRAD, dtype, ndim, shape);
        c->s[S_GRAD].output = 1;
        break;
    case 7: /* the small entry points only */
        break;
    default: { /* the losses */
        int probability = c->op >= 4 && u8(r) < 64;
        DLDataType tdt = probability ? dtype : u8(r) < 160 ? dt(kDLInt, 64) : any_dtype(r);
        decode_tensor(r, c, S_INPUT, dtype, ndim, shape);
        if (probability)
            decode_tensor(r, c, S_TARGET, tdt, ndim, shape);
        else
            decode_tensor(r, c, S_TARGET, tdt, sample_ndim, sample);
        if (u8(r) < 96)
            decode_tensor(r, c, S_WEIGHT, dtype, 1, &classes);
        if ((c->op == 3 || c->op == 5) && u8(r) < 128) {
            b = u8(r);
            if (reduced || b < 64)
                decode_tensor(r, c, S_GRAD_LOSS, dtype, b % 2, one);
            else
                decode_tensor(r, c, S_GRAD_LOSS, dtype, sample_ndim, sample);
        }
        if (c->op == 2 || c->op == 4 || c->op == 6) {
            b = u8(r);
            if (reduced)
                decode_tensor(r, c, S_LOSS, dtype, b < 200 ? 0 : b % 3, one);
            else
                decode_tensor(r, c, S_LOSS, dtype, sample_ndim, sample);
            c->s[S_LOSS].output = 1;
        }
        if (c->op == 2 && u8(r) < 128) {
            decode_tensor(r, c, S_TOTAL_WEIGHT, dtype, 0, one);
            c->s[S_TOTAL_WEIGHT].output = 1;
        }
        if (c->op == 3 || c->op == 5 || c->op == 6) {
            decode_tensor(r, c, S_GRAD, dtype, ndim, shape);
            c->s[S_GRAD].output = 1;
        }
        if (c->s[S_WEIGHT].used)
            c->options.weight = &c->s[S_WEIGHT].t; /* set again after placement, same address */
        break;
    }
    }
    for (int k = 0; k < S_COUNT; k++)
        if (c->s[k].used)
            measure(&c->s[k]);
}

/* The input an output may be exactly, in place. */
static int in_place_partner(int op, int out, int in)
{
    if (op == 0)
        return out == S_OUTPUT && in == S_INPUT;
    if (op == 1)
        return out == S_GRAD && (in == S_GRAD_OUTPUT || in == S_OUTPUT);
    return out == S_GRAD && in == S_INPUT;
}

static int new_buffer(call *c, int64_t need)
{
    int i = c->nbuf++;
    c->b[i].size = need;
    return i;
}

static void grow(call *c, int i, int64_t need)
{
    if (need > c->b[i].size)
        c->b[i].size = need;
}

/* Gives every tensor its place: its own buffer, or (outputs) another tensor's, exactly or
 * shifted or elsewhere, so that outputs alias inputs and each other. */
static void place(reader *r, call *c)
{
    for (int k = 0; k < S_COUNT; k++) {
        slot *x = &c->s[k];
        x->buf = -1;
        if (!x->used || !x->present)
            continue;
        if (x->cls != C_SANE) {
            x->buf = new_buffer(c, TINY);
            x->pos = 0;
            continue;
        }
        uint8_t a = x->output ? u8(r) : 0;
        int other = -1;
        if (a >= 150) { /* alias an earlier tensor that has real memory */
            int cand[S_COUNT], n = 0;
            for (int j = 0; j < k; j++)
                if (c->s[j].used && c->s[j].present && c->s[j].cls == C_SANE)
                    cand[n++] = j;
            if (n)
                other = cand[u8(r) % n];
            for (int j = 0; j < n && a % 4 == 0; j++) /* prefer the in-place partner */
                if (in_place_partner(c->op, k, cand[j]))
                    other = cand[j];
        }
        if (other < 0) {
            uint8_t slack = u8(r);
            int64_t pad = slack < 160 ? (slack % 4) * x->item : slack % 16;
            x->pos = (int64_t)-x->lo + pad;
            x->buf = new_buffer(c, x->pos + (int64_t)x->hi);
            continue;
        }
        slot *o = &c->s[other];
        x->buf = o->buf;
        if (a % 4 <= 1) { /* exactly the same tensor: the in-place form */
            x->t = o->t;
            memcpy(x->shape, o->shape, sizeof x->shape);
            memcpy(x->strides, o->strides, sizeof x->strides);
            x->null_shape = o->null_shape, x->null_strides = o->null_strides;
            x->numel = o->numel, x->item = o->item, x->lo = o->lo, x->hi = o->hi;
            x->pos = o->pos;
        } else if (a % 4 == 2) { /* shifted by a little: a partial overlap */
            int64_t delta = (int64_t)(u8(r) % 9) - 4;
            delta *= u8(r) < 128 ? x->item : 1;
            x->pos = o->pos + delta;
            if (x->pos + x->lo < 0)
                x->pos = (int64_t)-x->lo;
        } else { /* anywhere in the other's buffer */
            x->pos = (int64_t)-x->lo + u8(r) % (c->b[x->buf].size + 1);
        }
        grow(c, x->buf, x->pos + (int64_t)x->hi);
    }
}

/* Allocates the buffers, then points each tensor at its memory (or not). */
static int materialize(reader *r, call *c)
{
    for (int i = 0; i < c->nbuf; i++) {
        buffer *b = &c->b[i];
        b->alloc = malloc((size_t)b->size + 2 * GUARD);
        b->snap = malloc((size_t)b->size + 2 * GUARD);
        b->after = malloc((size_t)b->size + 2 * GUARD);
        b->owner = calloc((size_t)b->size + 1, sizeof *b->owner);
        if (!b->alloc || !b->snap || !b->after || !b->owner)
            return 0;
        read_bytes(r, b->alloc, b->size + 2 * GUARD);
    }
    for (int k = 0; k < S_COUNT; k++) {
        slot *x = &c->s[k];
        if (!x->used || !x->present)
            continue;
        unsigned char *base = c->b[x->buf].alloc + GUARD;
        x->t.shape = x->null_shape ? NULL : x->shape;
        x->t.strides = x->null_strides ? NULL : x->strides;
        if (x->cls == C_SANE) {
            /* data + byte_offset = base + pos, split either way */
            int64_t split = u8(r) < 192 ? 0 : x->pos;
            x->t.data = base + split;
            x->t.byte_offset = (uint64_t)(x->pos - split);
        } else if (x->cls == C_BIG) {
            /* Memory that cannot exist (the extent wraps the address space) is given as a
             * real pointer the library must refuse; anything else gets NULL data. */
            i128 start = (i128)(uintptr_t)base + (x->raw_offset ? (i128)x->offset : 0);
            int impossible = start + x->lo < 0 || start + x->hi > (i128)UINTPTR_MAX;
            x->t.data = impossible && !x->null_data ? base : NULL;
            x->t.byte_offset = x->raw_offset ? x->offset : 0;
            if (impossible && !x->null_data)
                x->cls = C_REJECT;
        } else {
            /* No element may be touched: any pointer and any offset will do. */
            x->t.data = x->null_data ? NULL : base;
            x->t.byte_offset = x->raw_offset ? x->offset : 0;
        }
        if (x->cls == C_SANE && x->null_data) {
            x->t.data = NULL;
            x->t.byte_offset = 0;
            x->cls = C_BIG; /* elements without memory */
        }
    }
    c->options.weight = c->options.weight && c->s[S_WEIGHT].present ? &c->s[S_WEIGHT].t : NULL;
    return 1;
}

/* Marks which slots' elements hold each byte; notes outputs whose elements coincide, and
 * which slots share bytes. */
static BULK void mark_owners(call *c)
{
    for (int k = 0; k < S_COUNT; k++) {
        slot *x = &c->s[k];
        if (!x->used || !x->present || x->cls != C_SANE || x->buf < 0)
            continue;
        uint16_t *owner = c->b[x->buf].owner;
        walk w = {{0}, x->pos, 0};
        for (int64_t i = 0; i < x->numel; i++) {
            int64_t at = walk_next(x, &w);
            for (int64_t j = 0; j < x->item; j++) {
                uint16_t before = owner[at + j];
                if (before & (1u << k))
                    x->self_overlap = 1;
                c->shares[k] |= before;
                owner[at + j] = (uint16_t)(before | 1u << k);
            }
        }
    }
    for (int k = 0; k < S_COUNT; k++) /* sharing goes both ways */
        for (int m = 0; m < S_COUNT; m++)
            if (c->shares[k] >> m & 1)
                c->shares[m] |= (uint16_t)(1u << k);
    for (int k = 0; k < S_COUNT; k++)
        c->shares[k] &= (uint16_t)~(1u << k);
}

/* ---------------------------------------------------------------------------------------- */
/* Calling and checking */

/* The call being checked, printed when an invariant fails: what a reproducer needs. */
static const call *current;

static void dump_call(const call *c)
{
    if (!c)
        return;
    fprintf(stderr, "op %d threads %d arch \"%s\" reduction %d ignore_index %lld eps %g flags 0x%x "
            "weight %d options %s ctx %s dim %lld\n", c->op, c->threads, c->arch,
            (int)c->options.reduction, (long long)c->options.ignore_index,
            c->options.label_smoothing, c->options.flags, c->options.weight != NULL,
            c->null_options ? "NULL" : "set", c->null_ctx ? "NULL" : "set", (long long)c->dim);
    static const char *const cls[] = {"sane", "empty", "reject", "big"};
    for (int k = 0; k < S_COUNT; k++) {
        const slot *x = &c->s[k];
        if (!x->used)
            continue;
        fprintf(stderr, "  %-12s %s", slot_names[k], x->present ? cls[x->cls] : "NULL tensor");
        if (x->present) {
            fprintf(stderr, " dtype %d/%d/%d ndim %d buf %d pos %lld byte_offset %llu data %s%s",
                    x->t.dtype.code, x->t.dtype.bits, x->t.dtype.lanes, x->t.ndim, x->buf,
                    (long long)x->pos, (unsigned long long)x->t.byte_offset,
                    x->t.data ? "set" : "NULL", x->self_overlap ? " self-overlapping" : "");
            if (!x->null_shape && x->t.ndim > 0 && x->t.ndim <= 64) {
                fprintf(stderr, " shape");
                for (int d = 0; d < x->t.ndim; d++)
                    fprintf(stderr, " %lld", (long long)x->shape[d]);
                if (!x->null_strides) {
                    fprintf(stderr, " strides");
                    for (int d = 0; d < x->t.ndim; d++)
                        fprintf(stderr, " %lld", (long long)x->strides[d]);
                }
            }
        }
        fprintf(stderr, "\n");
    }
}

#define CHECK(cond)                                                                            \
    do {                                                                                       \
        if (!(cond))                                                                           \
            dump_call(current);                                                                \
        FUZZ_ASSERT(cond);                                                                     \
    } while (0)

static const char *const op_names[7] = {
    "nll_log_softmax_forward", "nll_log_softmax_backward", "nll_loss_forward",
    "nll_loss_backward", "nll_cross_entropy_forward", "nll_cross_entropy_backward",
    "nll_cross_entropy_fused"};

static DLTensor *arg(call *c, int k)
{
    return c->s[k].used && c->s[k].present ? &c->s[k].t : NULL;
}

static nll_status invoke(call *c)
{
    nll_context *ctx = c->null_ctx ? NULL : c->ctx;
    const nll_options *o = c->null_options ? NULL : &c->options;
    switch (c->op) {
    case 0: return nll_log_softmax_forward(ctx, arg(c, S_INPUT), c->dim, arg(c, S_OUTPUT));
    case 1:
        return nll_log_softmax_backward(ctx, arg(c, S_GRAD_OUTPUT), arg(c, S_OUTPUT), c->dim,
                                        arg(c, S_GRAD));
    case 2:
        return nll_loss_forward(ctx, arg(c, S_INPUT), arg(c, S_TARGET), o, arg(c, S_LOSS),
                                arg(c, S_TOTAL_WEIGHT));
    case 3:
        return nll_loss_backward(ctx, arg(c, S_GRAD_LOSS), arg(c, S_INPUT), arg(c, S_TARGET), o,
                                 arg(c, S_GRAD));
    case 4:
        return nll_cross_entropy_forward(ctx, arg(c, S_INPUT), arg(c, S_TARGET), o,
                                         arg(c, S_LOSS));
    case 5:
        return nll_cross_entropy_backward(ctx, arg(c, S_GRAD_LOSS), arg(c, S_INPUT),
                                          arg(c, S_TARGET), o, arg(c, S_GRAD));
    default:
        return nll_cross_entropy_fused(ctx, arg(c, S_INPUT), arg(c, S_TARGET), o, arg(c, S_LOSS),
                                       arg(c, S_GRAD));
    }
}

/* Under ASan the guards are poisoned: any touch is reported where it happens. Without it,
 * they are compared after the call with the rest of the buffer. */
static void arm(call *c)
{
    for (int i = 0; i < c->nbuf; i++) {
        buffer *b = &c->b[i];
        memcpy(b->snap, b->alloc, (size_t)b->size + 2 * GUARD);
        FUZZ_POISON(b->alloc, GUARD);
        FUZZ_POISON(b->alloc + GUARD + b->size, GUARD);
    }
}

static void disarm(call *c)
{
    for (int i = 0; i < c->nbuf; i++) {
        buffer *b = &c->b[i];
        FUZZ_UNPOISON(b->alloc, (size_t)b->size + 2 * GUARD);
        memcpy(b->after, b->alloc, (size_t)b->size + 2 * GUARD);
    }
}

static uint16_t output_bits(const call *c)
{
    uint16_t bits = 0;
    for (int k = 0; k < S_COUNT; k++)
        if (c->s[k].used && c->s[k].output)
            bits |= (uint16_t)(1u << k);
    return bits;
}

static int identical(const slot *a, const slot *b)
{
    if ((unsigned char *)a->t.data + a->t.byte_offset != (unsigned char *)b->t.data + b->t.byte_offset ||
        a->t.ndim != b->t.ndim || a->t.dtype.code != b->t.dtype.code ||
        a->t.dtype.bits != b->t.dtype.bits)
        return 0;
    for (int d = 0; d < a->t.ndim; d++)
        if (a->shape[d] != b->shape[d] ||
            (a->shape[d] > 1 && effective_stride(a, d) != effective_stride(b, d)))
            return 0;
    return 1;
}

static void check_rejected(call *c, nll_status status)
{
    CHECK(strcmp(nll_status_name(status), "NLL_ERROR_UNKNOWN") != 0);
    for (int i = 0; i < c->nbuf; i++) /* every byte, guards included, as it was */
        CHECK(memcmp(c->b[i].after, c->b[i].snap, (size_t)c->b[i].size + 2 * GUARD) == 0);
    if (c->null_ctx) {
        CHECK(status == NLL_ERROR_NULL_ARGUMENT);
        return;
    }
    const char *fn = op_names[c->op], *msg = nll_last_error(c->ctx);
    size_t len = strlen(fn);
    CHECK(strncmp(msg, fn, len) == 0 && msg[len] == ':' && msg[len + 1] == ' ' &&
                msg[len + 2] != '\0');
    nll_error_detail d;
    CHECK(nll_last_error_detail(c->ctx, &d) == NLL_OK);
    CHECK(d.status == status && d.function && strcmp(d.function, fn) == 0 && d.tensor);
    CHECK(d.ndim >= 0 && d.ndim <= NLL_MAX_DIMS);
    int named = d.tensor[0] == '\0' || strcmp(d.tensor, "options") == 0;
    for (int k = 0; k < S_COUNT; k++)
        named |= strcmp(d.tensor, slot_names[k]) == 0;
    CHECK(named); /* the tensor the message is about is one of the call's */
}

/* One buffer after an accepted call: the first byte written outside every output element, or
 * -1. Unchanged stretches are skipped eight bytes at a time. */
static BULK int64_t scan_writes(const buffer *b, uint16_t outs)
{
    const unsigned char *after = b->after + GUARD, *snap = b->snap + GUARD;
    for (int64_t j = 0; j < b->size; j++) {
        if (j % 8 == 0 && j + 8 <= b->size) {
            uint64_t x, y;
            memcpy(&x, after + j, 8);
            memcpy(&y, snap + j, 8);
            if (x == y) {
                j += 7;
                continue;
            }
        }
        if (after[j] != snap[j] && !(b->owner[j] & outs))
            return j;
    }
    return -1;
}

static void check_accepted(call *c)
{
    CHECK(!c->null_ctx && (c->op <= 1 || !c->null_options));
    CHECK(nll_last_error(c->ctx)[0] == '\0');
    uint16_t outs = output_bits(c);
    for (int k = 0; k < S_COUNT; k++) {
        const slot *x = &c->s[k];
        /* Accepted only when every tensor has the memory it claims. */
        CHECK(!x->used || !x->present || x->cls == C_SANE || x->cls == C_EMPTY);
    }
    for (int i = 0; i < c->nbuf; i++) {
        const buffer *b = &c->b[i];
        CHECK(scan_writes(b, outs) < 0); /* written outside every output element */
#ifndef FUZZ_ASAN
        CHECK(memcmp(b->after, b->snap, GUARD) == 0);
        CHECK(memcmp(b->after + GUARD + b->size, b->snap + GUARD + b->size, GUARD) == 0);
#endif
    }
    /* Tensors that share bytes: an output may share only with its in-place input, and then
     * must be that very tensor. */
    for (int k = 0; k < S_COUNT; k++)
        for (int m = 0; m < S_COUNT; m++)
            if ((c->shares[k] >> m & 1) && c->s[k].output)
                CHECK(!c->s[m].output && in_place_partner(c->op, k, m) &&
                            identical(&c->s[k], &c->s[m]));
}

/* Flips every byte that only outputs hold: the rerun must write each of them again. */
static BULK void scramble_outputs(buffer *b, uint16_t outs, uint16_t ins)
{
    for (int64_t j = 0; j < b->size; j++)
        if ((b->owner[j] & outs) && !(b->owner[j] & ins))
            b->alloc[GUARD + j] ^= 0xFF;
}

/* The same call again with another thread count and every output-only byte scrambled: the
 * outputs must come out bitwise the same (no thread dependence, no element left unwritten). */
static void check_rerun(call *c)
{
    uint16_t outs = output_bits(c), ins = (uint16_t)~outs;
    for (int k = 0; k < S_COUNT; k++) /* outputs whose elements coincide must be refused */
        CHECK(!(c->s[k].used && c->s[k].present && c->s[k].output && c->s[k].self_overlap));
    for (int i = 0; i < c->nbuf; i++) {
        buffer *b = &c->b[i];
        memcpy(b->alloc, b->snap, (size_t)b->size + 2 * GUARD);
        scramble_outputs(b, outs, ins);
    }
    int first = c->threads;
    CHECK(nll_context_set_threads(c->ctx, first == 1 ? 3 : 1) == NLL_OK);
    for (int i = 0; i < c->nbuf; i++) {
        FUZZ_POISON(c->b[i].alloc, GUARD);
        FUZZ_POISON(c->b[i].alloc + GUARD + c->b[i].size, GUARD);
    }
    nll_status again = invoke(c);
    for (int i = 0; i < c->nbuf; i++)
        FUZZ_UNPOISON(c->b[i].alloc, (size_t)c->b[i].size + 2 * GUARD);
    CHECK(again == NLL_OK);
    for (int i = 0; i < c->nbuf; i++) {
        buffer *b = &c->b[i];
#ifndef FUZZ_ASAN
        CHECK(memcmp(b->alloc, b->snap, GUARD) == 0);
        CHECK(memcmp(b->alloc + GUARD + b->size, b->snap + GUARD + b->size, GUARD) == 0);
#endif
        /* Output bytes as the first run wrote them, the rest as they were: check_accepted
         * found every byte outside the outputs unchanged, so that is the first run's result. */
        CHECK(memcmp(b->alloc + GUARD, b->after + GUARD, (size_t)b->size) == 0);
    }
}

static int known_arch(const char *name)
{
    return strcmp(name, "ref") == 0 || strcmp(name, "avx2") == 0 ||
           strcmp(name, "avx512") == 0 || strcmp(name, "avx512bf16") == 0;
}

/* The instruction set: a known name is taken (or the best the CPU has below it); any other is
 * refused with a message, and the context keeps what it had. */
static void select_arch(call *c)
{
    const char *before = nll_context_arch(c->ctx);
    CHECK(known_arch(before));
    if (!c->arch[0])
        return;
    nll_status s = nll_context_set_arch(c->ctx, c->arch);
    if (known_arch(c->arch)) {
        CHECK(s == NLL_OK && nll_last_error(c->ctx)[0] == '\0');
    } else {
        CHECK(s == NLL_ERROR_INVALID_ARCH && strcmp(nll_context_arch(c->ctx), before) == 0);
        CHECK(strncmp(nll_last_error(c->ctx), "nll_context_set_arch: ", 22) == 0);
    }
    CHECK(known_arch(nll_context_arch(c->ctx)));
}

/* The entry points without tensors. */
static void small_api(reader *r, nll_context *ctx)
{
    nll_status s = (nll_status)(int)(u8(r) < 128 ? u8(r) : (uint32_t)u64(r));
    CHECK(nll_status_name(s) != NULL && nll_status_string(s) != NULL);
    CHECK(strncmp(nll_status_name(s), "NLL_", 4) == 0);
    CHECK(nll_version_number() == NLL_VERSION_NUMBER);
    CHECK(strcmp(nll_version_string(), NLL_VERSION_STRING) == 0);
    nll_options o = nll_options_default();
    CHECK(o.reduction == NLL_REDUCTION_MEAN && o.ignore_index == -100 &&
                o.label_smoothing == 0.0 && o.weight == NULL && o.flags == 0);
    uint8_t b = u8(r);
    int threads = b < 128 ? (int)(b % 9) - 2 : (int)(uint32_t)u64(r);
    int before = nll_context_threads(ctx);
    s = nll_context_set_threads(ctx, threads);
    if (threads < 0) {
        CHECK(s == NLL_ERROR_INVALID_THREADS && nll_context_threads(ctx) == before);
        CHECK(strncmp(nll_last_error(ctx), "nll_context_set_threads: ", 25) == 0);
    } else {
        CHECK(s == NLL_OK && nll_last_error(ctx)[0] == '\0');
        CHECK(threads ? nll_context_threads(ctx) == threads : nll_context_threads(ctx) >= 1);
    }
    nll_error_detail d;
    CHECK(nll_context_set_threads(NULL, 1) == NLL_ERROR_NULL_ARGUMENT);
    CHECK(nll_context_threads(NULL) == 0);
    CHECK(nll_last_error(NULL) != NULL && nll_last_error(NULL)[0] != '\0');
    CHECK(nll_last_error_detail(NULL, &d) == NLL_ERROR_NULL_ARGUMENT);
    CHECK(nll_last_error_detail(ctx, NULL) == NLL_ERROR_NULL_ARGUMENT);
    CHECK(nll_context_create(NULL) == NLL_ERROR_NULL_ARGUMENT);
    nll_context_destroy(NULL);
    CHECK(nll_context_set_arch(NULL, "ref") == NLL_ERROR_NULL_ARGUMENT);
    CHECK(nll_context_arch(NULL) != NULL);
    CHECK(nll_context_set_arch(ctx, NULL) == NLL_ERROR_NULL_ARGUMENT);
    CHECK(strncmp(nll_last_error(ctx), "nll_context_set_arch: ", 22) == 0);
    CHECK(known_arch(nll_context_arch(ctx)));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int verbose = -1;
    if (verbose < 0)
        verbose = getenv("FUZZ_API_VERBOSE") != NULL;
    reader r = {data, size, 0x9E3779B97F4A7C15ull ^ size};
    for (size_t i = 0; i < size && i < 64; i++)
        r.rng = r.rng * 31 + data[i];
    if (!r.rng)
        r.rng = 1;
    call *c = calloc(1, sizeof *c);
    if (!c)
        return 0;
    if (nll_context_create(&c->ctx) != NLL_OK) {
        free(c);
        return 0;
    }
    decode_call(&r, c);
    current = c;
    if (c->op == 7) {
        small_api(&r, c->ctx);
    } else {
        CHECK(nll_context_set_threads(c->ctx, c->threads) == NLL_OK);
        select_arch(c);
        place(&r, c);
        if (materialize(&r, c)) {
            int64_t classes = 1;
            const slot *in = &c->s[S_INPUT];
            if (in->used && in->t.ndim >= 1 && in->t.ndim <= NLL_MAX_DIMS && !in->null_shape)
                classes = in->shape[in->t.ndim == 1 ? 0 : 1];
            for (int k = 0; k < S_COUNT; k++)
                fill_values(&r, c, k, classes);
            mark_owners(c);
            if (verbose)
                dump_call(c);
            arm(c);
            nll_status status = invoke(c);
            disarm(c);
            if (verbose) /* FUZZ_API_VERBOSE=1: what each input became, for triage */
                fprintf(stderr, "%s -> %s\n", op_names[c->op], nll_status_name(status));
            if (status == NLL_OK) {
                check_accepted(c);
                check_rerun(c);
            } else {
                check_rejected(c, status);
            }
        }
    }
    for (int i = 0; i < c->nbuf; i++) {
        free(c->b[i].alloc);
        free(c->b[i].snap);
        free(c->b[i].after);
        free(c->b[i].owner);
    }
    nll_context_destroy(c->ctx);
    free(c);
    current = NULL;
    return 0;
}
