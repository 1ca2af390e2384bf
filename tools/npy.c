/* .npy reading (from bytes in memory) and writing; see formats.h for what is supported. */
#include "formats_internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* NumPy itself refuses headers over 10,000 bytes by default; allow more, but not gigabytes. */
#define NPY_MAX_HEADER_LEN (1u << 20)

static const unsigned char npy_magic[6] = {0x93, 'N', 'U', 'M', 'P', 'Y'};

static int host_is_little_endian(void)
{
    const uint16_t one = 1;
    unsigned char first;
    memcpy(&first, &one, 1);
    return first == 1;
}

/* ---- dtypes ---- */

typedef struct npy_type {
    const char *kind; /* descr without the byte-order character */
    uint8_t code;
    uint8_t bits;
} npy_type;

static const npy_type npy_types[] = {
    {"f2", kDLFloat, 16}, {"f4", kDLFloat, 32}, {"f8", kDLFloat, 64},
    {"i1", kDLInt, 8},    {"i2", kDLInt, 16},   {"i4", kDLInt, 32},   {"i8", kDLInt, 64},
    {"u1", kDLUInt, 8},   {"u2", kDLUInt, 16},  {"u4", kDLUInt, 32},  {"u8", kDLUInt, 64},
    {"b1", FMT_DL_BOOL, 8},
};

#define NPY_NTYPES (sizeof npy_types / sizeof npy_types[0])

/* The NumPy descr for a DLPack dtype ("<f4", "|u1", "|b1"), or NULL if NumPy has none. */
static const char *npy_descr(DLDataType dtype)
{
    static const char *const descrs[NPY_NTYPES] = {"<f2", "<f4", "<f8", "|i1", "<i2", "<i4",
                                                   "<i8", "|u1", "<u2", "<u4", "<u8", "|b1"};
    size_t i;
    if (dtype.lanes != 1)
        return NULL;
    for (i = 0; i < NPY_NTYPES; i++)
        if (npy_types[i].code == dtype.code && npy_types[i].bits == dtype.bits)
            return descrs[i];
    return NULL;
}

/* Maps a descr string to a dtype and whether its bytes need swapping; on failure writes why
 * (without the file name) to why. */
static int parse_descr(const char *descr, DLDataType *out, int *big_endian, char *why,
                       size_t why_size)
{
    char order = descr[0];
    const char *kind = descr + 1;
    size_t i;

    if (order != '<' && order != '>' && order != '|' && order != '=') {
        order = '=';
        kind = descr;
    }
    for (i = 0; i < NPY_NTYPES; i++) {
        if (strcmp(kind, npy_types[i].kind) != 0)
            continue;
        out->code = npy_types[i].code;
        out->bits = npy_types[i].bits;
        out->lanes = 1;
        *big_endian = order == '>' && npy_types[i].bits > 8;
        return 0;
    }
    if (kind[0] == 'O')
        fmt_error(why, why_size, "object arrays ('%s') are not supported", descr);
    else if (kind[0] == 'V')
        fmt_error(why, why_size, "structured or void dtype ('%s') is not supported", descr);
    else
        fmt_error(why, why_size,
                  "unsupported dtype '%s'; supported: f2 f4 f8 (float16/32/64), i1 i2 i4 i8, "
                  "u1 u2 u4 u8, b1 (bool), either byte order",
                  descr);
    return -1;
}

/* ---- header parsing ---- */

typedef struct hdr_parser {
    const char *s;
    size_t n;
    size_t pos;
    size_t base; /* file offset of s[0], for messages */
    const char *path;
    char *err;
    size_t err_size;
} hdr_parser;

static int hdr_fail(hdr_parser *p, const char *what)
{
    fmt_error(p->err, p->err_size, "%s: malformed .npy header at byte %zu: %s", p->path,
              p->base + p->pos, what);
    return -1;
}

static void hdr_skip_ws(hdr_parser *p)
{
    while (p->pos < p->n &&
           (p->s[p->pos] == ' ' || p->s[p->pos] == '\t' || p->s[p->pos] == '\n' ||
            p->s[p->pos] == '\r'))
        p->pos++;
}

/* Skips blanks, then consumes c if it is next. */
static int hdr_accept(hdr_parser *p, char c)
{
    hdr_skip_ws(p);
    if (p->pos < p->n && p->s[p->pos] == c) {
        p->pos++;
        return 1;
    }
    return 0;
}

static int hdr_expect(hdr_parser *p, char c)
{
    char what[32];
    if (hdr_accept(p, c))
        return 0;
    snprintf(what, sizeof what, "expected '%c'", c);
    return hdr_fail(p, what);
}

/* A Python string literal in ' or " quotes; escapes are kept as the escaped character. */
static int hdr_string(hdr_parser *p, char *buf, size_t cap)
{
    char quote;
    size_t len = 0;
    hdr_skip_ws(p);
    if (p->pos >= p->n || (p->s[p->pos] != '\'' && p->s[p->pos] != '"'))
        return hdr_fail(p, "expected a quoted string");
    quote = p->s[p->pos++];
    for (;;) {
        char c;
        if (p->pos >= p->n)
            return hdr_fail(p, "unterminated string");
        c = p->s[p->pos++];
        if (c == quote)
            break;
        if (c == '\\') {
            if (p->pos >= p->n)
                return hdr_fail(p, "unterminated string");
            c = p->s[p->pos++];
        }
        if (len + 1 >= cap)
            return hdr_fail(p, "string too long");
        buf[len++] = c;
    }
    buf[len] = '\0';
    return 0;
}

static int hdr_bool(hdr_parser *p, int *out)
{
    hdr_skip_ws(p);
    if (p->n - p->pos >= 4 && memcmp(p->s + p->pos, "True", 4) == 0) {
        p->pos += 4;
        *out = 1;
        return 0;
    }
    if (p->n - p->pos >= 5 && memcmp(p->s + p->pos, "False", 5) == 0) {
        p->pos += 5;
        *out = 0;
        return 0;
    }
    return hdr_fail(p, "expected True or False for 'fortran_order'");
}

/* A tuple of non-negative integers: (), (5,), (2, 3), trailing comma optional. */
static int hdr_shape(hdr_parser *p, int64_t *shape, int *ndim)
{
    int n = 0;
    if (hdr_expect(p, '('))
        return -1;
    for (;;) {
        int64_t v = 0;
        size_t digits = 0;
        if (hdr_accept(p, ')'))
            break;
        hdr_skip_ws(p);
        if (p->pos < p->n && p->s[p->pos] == '-')
            return hdr_fail(p, "negative dimension in 'shape'");
        while (p->pos < p->n && p->s[p->pos] >= '0' && p->s[p->pos] <= '9') {
            int d = p->s[p->pos] - '0';
            if (v > (INT64_MAX - d) / 10)
                return hdr_fail(p, "dimension in 'shape' does not fit in int64");
            v = v * 10 + d;
            p->pos++;
            digits++;
        }
        if (digits == 0)
            return hdr_fail(p, "expected an integer or ')' in 'shape'");
        if (p->pos < p->n && p->s[p->pos] == 'L') /* Python 2 long literal */
            p->pos++;
        if (n == FMT_MAX_NDIM)
            return hdr_fail(p, "'shape' has more than 64 dimensions");
        shape[n++] = v;
        if (hdr_accept(p, ','))
            continue;
        if (!hdr_accept(p, ')'))
            return hdr_fail(p, "expected ',' or ')' in 'shape'");
        break;
    }
    *ndim = n;
    return 0;
}

typedef struct npy_header {
    char descr[64];
    int fortran;
    int ndim;
    int64_t shape[FMT_MAX_NDIM];
    size_t shape_at; /* file offset of the shape tuple, for messages */
} npy_header;

/* Parses the dict literal; keys in any order, each exactly once, nothing else. */
static int parse_header(hdr_parser *p, npy_header *h)
{
    int have_descr = 0, have_fortran = 0, have_shape = 0;
    char key[32];

    if (hdr_expect(p, '{'))
        return -1;
    for (;;) {
        size_t key_pos;
        if (hdr_accept(p, '}'))
            break;
        hdr_skip_ws(p);
        key_pos = p->pos;
        if (hdr_string(p, key, sizeof key))
            return -1;
        if (hdr_expect(p, ':'))
            return -1;
        if (strcmp(key, "descr") == 0 && !have_descr) {
            hdr_skip_ws(p);
            if (p->pos < p->n && p->s[p->pos] == '[')
                return hdr_fail(p, "structured dtypes (a list 'descr') are not supported");
            if (hdr_string(p, h->descr, sizeof h->descr))
                return -1;
            have_descr = 1;
        } else if (strcmp(key, "fortran_order") == 0 && !have_fortran) {
            if (hdr_bool(p, &h->fortran))
                return -1;
            have_fortran = 1;
        } else if (strcmp(key, "shape") == 0 && !have_shape) {
            hdr_skip_ws(p);
            h->shape_at = p->base + p->pos;
            if (hdr_shape(p, h->shape, &h->ndim))
                return -1;
            have_shape = 1;
        } else {
            char what[96];
            p->pos = key_pos;
            snprintf(what, sizeof what, "unexpected or repeated key '%s'", key);
            return hdr_fail(p, what);
        }
        if (hdr_accept(p, ','))
            continue;
        if (!hdr_accept(p, '}'))
            return hdr_fail(p, "expected ',' or '}' after a value");
        break;
    }
    if (!have_descr || !have_fortran || !have_shape) {
        p->pos = 0;
        return hdr_fail(p, !have_descr     ? "missing key 'descr'"
                           : !have_fortran ? "missing key 'fortran_order'"
                                           : "missing key 'shape'");
    }
    hdr_skip_ws(p);
    if (p->pos != p->n)
        return hdr_fail(p, "unexpected text after the header dict");
    return 0;
}

/* ---- parsing a whole file ---- */

int npy_parse(const void *bytes, size_t size, const char *label, fmt_array *out, char *err,
              size_t err_size)
{
    const unsigned char *b = bytes;
    size_t len_bytes, header_len, data_start, nbytes;
    npy_header h;
    hdr_parser p;
    char why[FMT_ERROR_SIZE];
    char *header;
    const char *nul;
    DLDataType dtype;
    int64_t count;
    int major, big_endian = 0;

    memset(out, 0, sizeof *out);
    if (size < 8) {
        if (size < 6 || memcmp(b, npy_magic, 6) != 0)
            fmt_error(err, err_size, "%s: not a .npy file (it is %zu bytes, too short for the "
                      "\\x93NUMPY magic and version)", label, size);
        else
            fmt_error(err, err_size, "%s: truncated .npy header: the file ends at byte %zu",
                      label, size);
        return -1;
    }
    if (memcmp(b, npy_magic, 6) != 0) {
        fmt_error(err, err_size, "%s: not a .npy file (no \\x93NUMPY magic at byte 0)", label);
        return -1;
    }
    major = b[6];
    if ((major != 1 && major != 2 && major != 3) || b[7] != 0) {
        fmt_error(err, err_size,
                  "%s: unsupported .npy format version %d.%d at byte 6 (supported: 1.0, 2.0, "
                  "3.0)",
                  label, b[6], b[7]);
        return -1;
    }
    len_bytes = major == 1 ? 2 : 4;
    if (size < 8 + len_bytes) {
        fmt_error(err, err_size, "%s: truncated .npy header: the file ends at byte %zu", label,
                  size);
        return -1;
    }
    header_len = (size_t)b[8] | (size_t)b[9] << 8;
    if (len_bytes == 4)
        header_len |= (size_t)b[10] << 16 | (size_t)b[11] << 24;
    if (header_len > NPY_MAX_HEADER_LEN) {
        fmt_error(err, err_size,
                  "%s: malformed .npy header at byte 8: header length %zu is absurd (the "
                  "limit is %u bytes)",
                  label, header_len, NPY_MAX_HEADER_LEN);
        return -1;
    }
    data_start = 8 + len_bytes + header_len;
    if (size < data_start) {
        fmt_error(err, err_size,
                  "%s: truncated .npy header: it should be %zu bytes, but the file ends at "
                  "byte %zu",
                  label, header_len, size);
        return -1;
    }
    /* A NUL-terminated copy: the parser may then look one past the end safely. */
    header = malloc(header_len + 1);
    if (header == NULL) {
        fmt_error(err, err_size, "%s: out of memory reading the header", label);
        return -1;
    }
    memcpy(header, b + 8 + len_bytes, header_len);
    header[header_len] = '\0';
    memset(&h, 0, sizeof h);
    p.s = header;
    p.n = header_len;
    p.pos = 0;
    p.base = 8 + len_bytes;
    p.path = label;
    p.err = err;
    p.err_size = err_size;
    nul = memchr(header, '\0', header_len);
    if (nul != NULL) {
        p.pos = (size_t)(nul - header);
        hdr_fail(&p, "NUL byte in the header");
        free(header);
        return -1;
    }
    if (parse_header(&p, &h)) {
        free(header);
        return -1;
    }
    free(header);

    if (parse_descr(h.descr, &dtype, &big_endian, why, sizeof why)) {
        fmt_error(err, err_size, "%s: %s", label, why);
        return -1;
    }
    if (!host_is_little_endian()) {
        fmt_error(err, err_size, "%s: this build reads .npy files on little-endian hosts only",
                  label);
        return -1;
    }
    if (fmt_sizes(h.shape, h.ndim, fmt_itemsize(dtype), &count, &nbytes)) {
        char shape[256];
        fmt_error(err, err_size,
                  "%s: shape %s at byte %zu: its element count or byte size (%zu-byte "
                  "elements) overflows int64",
                  label, fmt_shape_string(h.shape, h.ndim, shape, sizeof shape), h.shape_at,
                  fmt_itemsize(dtype));
        return -1;
    }
    if (size - data_start < nbytes) {
        fmt_error(err, err_size,
                  "%s: truncated .npy data: shape and dtype need %zu bytes from byte %zu, but "
                  "the file has %zu",
                  label, nbytes, data_start, size - data_start);
        return -1;
    }
    return fmt_place(out, b + data_start, nbytes, dtype, h.shape, h.ndim, big_endian,
                     h.fortran, label, err, err_size);
}

/* ---- saving ---- */

int npy_save(const char *path, const DLTensor *t, char *err, size_t err_size)
{
    const char *descr = npy_descr(t->dtype);
    char header[4096];
    size_t len, total, pad;
    int64_t count = 1;
    size_t nbytes;
    int i, n;
    FILE *f;

    if (descr == NULL) {
        fmt_error(err, err_size,
                  "%s: cannot write dtype code %d, %d bits, %d lanes: NumPy has no such dtype%s",
                  path, t->dtype.code, t->dtype.bits, t->dtype.lanes,
                  t->dtype.code == kDLBfloat ? " (bfloat16; write a .safetensors file instead)"
                                             : "");
        return -1;
    }
    if (t->device.device_type != kDLCPU || t->ndim < 0 || t->ndim > FMT_MAX_NDIM ||
        (t->ndim > 0 && t->shape == NULL)) {
        fmt_error(err, err_size, "%s: cannot write this tensor (not a CPU tensor of 0..64 dims)",
                  path);
        return -1;
    }
    for (i = 0; i < t->ndim; i++) {
        int64_t d = t->shape[i];
        if (d < 0 || (d > 0 && count > INT64_MAX / d)) {
            fmt_error(err, err_size, "%s: cannot write a tensor with a bad shape", path);
            return -1;
        }
        count *= d;
    }
    if (t->strides != NULL) {
        /* Only a compact row-major layout can be written as is. */
        int64_t expect = 1;
        for (i = t->ndim - 1; i >= 0; i--) {
            if (t->shape[i] != 1 && t->strides[i] != expect) {
                fmt_error(err, err_size, "%s: cannot write a strided tensor", path);
                return -1;
            }
            expect *= t->shape[i];
        }
    }
    nbytes = (size_t)count * fmt_itemsize(t->dtype);

    n = snprintf(header, sizeof header, "{'descr': '%s', 'fortran_order': False, 'shape': (",
                 descr);
    for (i = 0; i < t->ndim; i++)
        n += snprintf(header + n, sizeof header - (size_t)n, i ? ", %lld" : "%lld",
                      (long long)t->shape[i]);
    n += snprintf(header + n, sizeof header - (size_t)n, t->ndim == 1 ? ",), }" : "), }");
    len = (size_t)n;
    /* 10 bytes of magic, version and length, then the padded header ending in '\n'. */
    total = (10 + len + 1 + 63) / 64 * 64;
    pad = total - 10 - len - 1;
    if (total - 10 > 65535 || len + pad + 1 >= sizeof header) {
        fmt_error(err, err_size, "%s: header too long for .npy version 1.0", path);
        return -1;
    }
    memset(header + len, ' ', pad);
    header[len + pad] = '\n';
    len = len + pad + 1;

    errno = 0;
    f = fopen(path, "wb");
    if (f == NULL) {
        fmt_error(err, err_size, "%s: cannot create: %s", path,
                  errno ? strerror(errno) : "unknown error");
        return -1;
    }
    {
        unsigned char pre[10];
        memcpy(pre, npy_magic, 6);
        pre[6] = 1;
        pre[7] = 0;
        pre[8] = (unsigned char)(len & 0xff);
        pre[9] = (unsigned char)(len >> 8);
        if (fwrite(pre, 1, 10, f) != 10 || fwrite(header, 1, len, f) != len ||
            (nbytes && fwrite((const char *)t->data + t->byte_offset, 1, nbytes, f) != nbytes)) {
            fmt_error(err, err_size, "%s: write failed: %s", path, strerror(errno));
            fclose(f);
            return -1;
        }
    }
    if (fclose(f) != 0) {
        fmt_error(err, err_size, "%s: write failed: %s", path, strerror(errno));
        return -1;
    }
    return 0;
}
