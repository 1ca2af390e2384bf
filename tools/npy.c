/* .npy reading and writing for the nll tool; see npy.h for what is supported. */
#include "npy.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* NumPy itself refuses headers over 10,000 bytes by default; allow more, but not gigabytes. */
#define NPY_MAX_HEADER_LEN (1u << 20)

static const unsigned char npy_magic[6] = {0x93, 'N', 'U', 'M', 'P', 'Y'};

static void set_error(char *err, size_t err_size, const char *fmt, ...)
{
    va_list ap;
    if (err == NULL || err_size == 0)
        return;
    va_start(ap, fmt);
    vsnprintf(err, err_size, fmt, ap);
    va_end(ap);
}

static int host_is_little_endian(void)
{
    const uint16_t one = 1;
    unsigned char first;
    memcpy(&first, &one, 1);
    return first == 1;
}

size_t npy_itemsize(DLDataType dtype)
{
    return ((size_t)dtype.bits + 7u) / 8u * (dtype.lanes ? dtype.lanes : 1u);
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
    {"b1", NPY_DL_BOOL, 8},
};

#define NPY_NTYPES (sizeof npy_types / sizeof npy_types[0])

const char *npy_descr(DLDataType dtype)
{
    /* One static string per supported type, byte order included. */
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

/* Maps a descr string to a dtype; on failure writes why (without the file name) to why. */
static int parse_descr(const char *descr, DLDataType *out, char *why, size_t why_size)
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
        if (npy_types[i].bits > 8 && order == '>') {
            set_error(why, why_size,
                      "big-endian data ('%s') is not supported; convert it first with "
                      "a.astype('<%s')",
                      descr, kind);
            return -1;
        }
        out->code = npy_types[i].code;
        out->bits = npy_types[i].bits;
        out->lanes = 1;
        return 0;
    }
    if (kind[0] == 'O')
        set_error(why, why_size, "object arrays ('%s') are not supported", descr);
    else if (kind[0] == 'V')
        set_error(why, why_size, "structured or void dtype ('%s') is not supported", descr);
    else
        set_error(why, why_size,
                  "unsupported dtype '%s'; supported: f2 f4 f8 (float16/32/64), i1 i2 i4 i8, "
                  "u1 u2 u4 u8, b1 (bool)",
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
    set_error(p->err, p->err_size, "%s: malformed .npy header at byte %zu: %s", p->path,
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
        if (n == NPY_MAX_NDIM)
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
    int64_t shape[NPY_MAX_NDIM];
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

/* ---- loading ---- */

void npy_free(npy_array *a)
{
    if (a == NULL)
        return;
    free(a->data);
    memset(a, 0, sizeof *a);
}

DLTensor *npy_tensor(npy_array *a)
{
    a->tensor.data = a->data;
    a->tensor.device.device_type = kDLCPU;
    a->tensor.device.device_id = 0;
    a->tensor.ndim = a->ndim;
    a->tensor.dtype = a->dtype;
    a->tensor.shape = a->shape;
    a->tensor.strides = NULL;
    a->tensor.byte_offset = 0;
    return &a->tensor;
}

static int read_exact(FILE *f, void *buf, size_t n, size_t *got)
{
    *got = fread(buf, 1, n, f);
    return *got == n ? 0 : -1;
}

static int load_from(FILE *f, const char *path, npy_array *out, char *err, size_t err_size)
{
    unsigned char pre[12];
    size_t got, len_bytes, header_len, data_start;
    char *header;
    npy_header h;
    hdr_parser p;
    char why[NPY_ERROR_SIZE];
    int64_t count = 1, nonzero = 1;
    size_t itemsize, nbytes;
    long file_size = -1;
    int i, major;

    if (read_exact(f, pre, 8, &got)) {
        if (ferror(f))
            set_error(err, err_size, "%s: cannot read: %s", path, strerror(errno));
        else if (got < 6 || memcmp(pre, npy_magic, 6) != 0)
            set_error(err, err_size, "%s: not a .npy file (it is %zu bytes, too short for the "
                      "\\x93NUMPY magic and version)", path, got);
        else
            set_error(err, err_size, "%s: truncated .npy header: the file ends at byte %zu",
                      path, got);
        return -1;
    }
    if (memcmp(pre, npy_magic, 6) != 0) {
        set_error(err, err_size, "%s: not a .npy file (no \\x93NUMPY magic at byte 0)", path);
        return -1;
    }
    major = pre[6];
    if ((major != 1 && major != 2 && major != 3) || pre[7] != 0) {
        set_error(err, err_size,
                  "%s: unsupported .npy format version %d.%d at byte 6 (supported: 1.0, 2.0, "
                  "3.0)",
                  path, pre[6], pre[7]);
        return -1;
    }
    len_bytes = major == 1 ? 2 : 4;
    if (read_exact(f, pre + 8, len_bytes, &got)) {
        set_error(err, err_size, "%s: truncated .npy header: the file ends at byte %zu", path,
                  8 + got);
        return -1;
    }
    header_len = (size_t)pre[8] | (size_t)pre[9] << 8;
    if (len_bytes == 4)
        header_len |= (size_t)pre[10] << 16 | (size_t)pre[11] << 24;
    data_start = 8 + len_bytes + header_len;
    if (header_len > NPY_MAX_HEADER_LEN) {
        set_error(err, err_size,
                  "%s: malformed .npy header at byte 8: header length %zu is absurd (the "
                  "limit is %u bytes)",
                  path, header_len, NPY_MAX_HEADER_LEN);
        return -1;
    }
    header = malloc(header_len + 1);
    if (header == NULL) {
        set_error(err, err_size, "%s: out of memory reading the header", path);
        return -1;
    }
    if (read_exact(f, header, header_len, &got)) {
        set_error(err, err_size,
                  "%s: truncated .npy header: it should be %zu bytes, but the file ends at "
                  "byte %zu",
                  path, header_len, 8 + len_bytes + got);
        free(header);
        return -1;
    }
    header[header_len] = '\0';
    memset(&h, 0, sizeof h);
    p.s = header;
    p.n = header_len;
    p.pos = 0;
    p.base = 8 + len_bytes;
    p.path = path;
    p.err = err;
    p.err_size = err_size;
    if (memchr(header, '\0', header_len) != NULL) {
        p.pos = (size_t)((char *)memchr(header, '\0', header_len) - header);
        hdr_fail(&p, "NUL byte in the header");
        free(header);
        return -1;
    }
    if (parse_header(&p, &h)) {
        free(header);
        return -1;
    }
    free(header);

    if (parse_descr(h.descr, &out->dtype, why, sizeof why)) {
        set_error(err, err_size, "%s: %s", path, why);
        return -1;
    }
    if (!host_is_little_endian()) {
        set_error(err, err_size, "%s: this build reads .npy files on little-endian hosts only",
                  path);
        return -1;
    }
    if (h.fortran && h.ndim > 1) {
        set_error(err, err_size,
                  "%s: Fortran-order (column-major) arrays are not supported yet; save it with "
                  "np.save(path, np.ascontiguousarray(a))",
                  path);
        return -1;
    }
    for (i = 0; i < h.ndim; i++) {
        int64_t d = h.shape[i] ? h.shape[i] : 1;
        if (nonzero > INT64_MAX / d) {
            set_error(err, err_size, "%s: shape has more elements than int64 can count", path);
            return -1;
        }
        nonzero *= d;
        if (h.shape[i] == 0)
            count = 0;
    }
    if (count)
        count = nonzero;
    itemsize = npy_itemsize(out->dtype);
    if (count > INT64_MAX / (int64_t)itemsize || (uint64_t)count * itemsize > SIZE_MAX) {
        set_error(err, err_size, "%s: data size (%lld elements of %zu bytes) overflows int64",
                  path, (long long)count, itemsize);
        return -1;
    }
    nbytes = (size_t)count * itemsize;

    /* Check the file is long enough before allocating, so a bad shape cannot cost memory. */
    if (fseek(f, 0, SEEK_END) == 0) {
        file_size = ftell(f);
        if (fseek(f, (long)data_start, SEEK_SET) != 0)
            file_size = -1;
    }
    if (file_size >= 0 && (size_t)file_size - data_start < nbytes) {
        set_error(err, err_size,
                  "%s: truncated .npy data: shape and dtype need %zu bytes from byte %zu, but "
                  "the file has %zu",
                  path, nbytes, data_start, (size_t)file_size - data_start);
        return -1;
    }
    out->data = malloc(nbytes ? nbytes : 1);
    if (out->data == NULL) {
        set_error(err, err_size, "%s: out of memory (%zu bytes of data)", path, nbytes);
        return -1;
    }
    if (read_exact(f, out->data, nbytes, &got)) {
        if (ferror(f))
            set_error(err, err_size, "%s: cannot read: %s", path, strerror(errno));
        else
            set_error(err, err_size,
                      "%s: truncated .npy data: shape and dtype need %zu bytes from byte %zu, "
                      "but the file has %zu",
                      path, nbytes, data_start, got);
        free(out->data);
        out->data = NULL;
        return -1;
    }
    out->nbytes = nbytes;
    out->count = count;
    out->ndim = h.ndim;
    for (i = 0; i < h.ndim; i++)
        out->shape[i] = h.shape[i];
    npy_tensor(out);
    return 0;
}

int npy_load(const char *path, npy_array *out, char *err, size_t err_size)
{
    FILE *f;
    int rc;

    memset(out, 0, sizeof *out);
    errno = 0;
    f = fopen(path, "rb");
    if (f == NULL) {
        set_error(err, err_size, "%s: cannot open: %s", path,
                  errno ? strerror(errno) : "unknown error");
        return -1;
    }
    rc = load_from(f, path, out, err, err_size);
    fclose(f);
    if (rc)
        npy_free(out);
    return rc;
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
        set_error(err, err_size,
                  "%s: cannot write dtype code %d, %d bits, %d lanes: NumPy has no such dtype%s",
                  path, t->dtype.code, t->dtype.bits, t->dtype.lanes,
                  t->dtype.code == kDLBfloat ? " (bfloat16)" : "");
        return -1;
    }
    if (t->device.device_type != kDLCPU || t->ndim < 0 || t->ndim > NPY_MAX_NDIM ||
        (t->ndim > 0 && t->shape == NULL)) {
        set_error(err, err_size, "%s: cannot write this tensor (not a CPU tensor of 0..64 dims)",
                  path);
        return -1;
    }
    for (i = 0; i < t->ndim; i++) {
        int64_t d = t->shape[i];
        if (d < 0 || (d > 0 && count > INT64_MAX / d)) {
            set_error(err, err_size, "%s: cannot write a tensor with a bad shape", path);
            return -1;
        }
        count *= d;
    }
    if (t->strides != NULL) {
        /* Only a compact row-major layout can be written as is. */
        int64_t expect = 1;
        for (i = t->ndim - 1; i >= 0; i--) {
            if (t->shape[i] != 1 && t->strides[i] != expect) {
                set_error(err, err_size, "%s: cannot write a strided tensor", path);
                return -1;
            }
            expect *= t->shape[i];
        }
    }
    nbytes = (size_t)count * npy_itemsize(t->dtype);

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
        set_error(err, err_size, "%s: header too long for .npy version 1.0", path);
        return -1;
    }
    memset(header + len, ' ', pad);
    header[len + pad] = '\n';
    len = len + pad + 1;

    errno = 0;
    f = fopen(path, "wb");
    if (f == NULL) {
        set_error(err, err_size, "%s: cannot create: %s", path,
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
            set_error(err, err_size, "%s: write failed: %s", path, strerror(errno));
            fclose(f);
            return -1;
        }
    }
    if (fclose(f) != 0) {
        set_error(err, err_size, "%s: write failed: %s", path, strerror(errno));
        return -1;
    }
    return 0;
}
