/* What the three formats share: loading a path (mapping it, recognising the format, picking
 * a member), element access over any strides and dtype, and choosing a writer. */
#define _POSIX_C_SOURCE 200809L

#include "formats_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

void fmt_error(char *err, size_t err_size, const char *fmt, ...)
{
    va_list ap;
    if (err == NULL || err_size == 0)
        return;
    va_start(ap, fmt);
    vsnprintf(err, err_size, fmt, ap);
    va_end(ap);
}

size_t fmt_itemsize(DLDataType dtype)
{
    return ((size_t)dtype.bits + 7u) / 8u;
}

const char *fmt_dtype_name(DLDataType d)
{
    if (d.lanes != 1)
        return "vector";
    switch (d.code) {
    case kDLFloat:
        return d.bits == 64 ? "float64" : d.bits == 32 ? "float32" : d.bits == 16 ? "float16" : "float?";
    case kDLBfloat:
        return "bfloat16";
    case kDLInt:
        return d.bits == 8 ? "int8" : d.bits == 16 ? "int16" : d.bits == 32 ? "int32" : "int64";
    case kDLUInt:
        return d.bits == 8 ? "uint8" : d.bits == 16 ? "uint16" : d.bits == 32 ? "uint32" : "uint64";
    case FMT_DL_BOOL:
        return "bool";
    default:
        return "unknown";
    }
}

char *fmt_shape_string(const int64_t *shape, int ndim, char *buf, size_t size)
{
    size_t n = 0;
    int i;
    if (size == 0)
        return buf;
    buf[0] = '\0';
    n += (size_t)snprintf(buf, size, "(");
    for (i = 0; i < ndim && n < size; i++)
        n += (size_t)snprintf(buf + n, size - n, i ? ", %lld" : "%lld", (long long)shape[i]);
    if (n < size)
        snprintf(buf + n, size - n, ")");
    return buf;
}

int fmt_sizes(const int64_t *shape, int ndim, size_t itemsize, int64_t *count, size_t *nbytes)
{
    /* The product of the non-zero dimensions must fit even when another dimension is 0, so a
     * shape like (0, 2^40, 2^40) is refused too: nothing downstream has to think about it. */
    int64_t nonzero = 1, total = 1;
    int i;
    for (i = 0; i < ndim; i++) {
        int64_t d = shape[i];
        if (d < 0)
            return -1;
        if (d == 0) {
            total = 0;
            continue;
        }
        if (nonzero > INT64_MAX / d)
            return -1;
        nonzero *= d;
    }
    if (total)
        total = nonzero;
    if (itemsize && (uint64_t)nonzero > (uint64_t)INT64_MAX / itemsize)
        return -1;
    if ((uint64_t)total * itemsize > (uint64_t)SIZE_MAX)
        return -1;
    *count = total;
    *nbytes = (size_t)total * itemsize;
    return 0;
}

int fmt_own(fmt_array *a, void *buffer)
{
    int i;
    for (i = 0; i < 2; i++)
        if (a->owned[i] == NULL) {
            a->owned[i] = buffer;
            return 0;
        }
    free(buffer);
    return -1;
}

int fmt_place(fmt_array *out, const unsigned char *bytes, size_t nbytes, DLDataType dtype,
              const int64_t *shape, int ndim, int byte_swap, int fortran, const char *label,
              char *err, size_t err_size)
{
    size_t itemsize = fmt_itemsize(dtype);
    int64_t count = 0, stride = 1;
    size_t check_bytes = 0;
    int i;

    if (ndim < 0 || ndim > FMT_MAX_NDIM ||
        fmt_sizes(shape, ndim, itemsize, &count, &check_bytes) || check_bytes != nbytes) {
        fmt_error(err, err_size, "%s: internal error: inconsistent tensor size", label);
        return -1;
    }
    out->dtype = dtype;
    out->ndim = ndim;
    out->count = count;
    for (i = 0; i < ndim; i++)
        out->shape[i] = shape[i];
    /* Fortran order: the first axis varies fastest. Either way a dimension's stride is the
     * product of the dimensions that vary faster. */
    if (fortran) {
        for (i = 0; i < ndim; i++) {
            out->strides[i] = stride;
            stride *= shape[i] ? shape[i] : 1;
        }
    } else {
        for (i = ndim - 1; i >= 0; i--) {
            out->strides[i] = stride;
            stride *= shape[i] ? shape[i] : 1;
        }
    }
    /* Fortran order of a shape with at most one dimension above 1 is also row-major. */
    out->row_major = 1;
    for (i = ndim - 1, stride = 1; i >= 0; i--) {
        if (shape[i] != 1 && out->strides[i] != stride)
            out->row_major = 0;
        stride *= shape[i] ? shape[i] : 1;
    }
    if (count == 0) {
        out->data = NULL;
        return 0;
    }
    if (byte_swap && itemsize > 1) {
        unsigned char *copy = malloc(nbytes);
        size_t k, b;
        if (copy == NULL) {
            fmt_error(err, err_size, "%s: out of memory (%zu bytes to byte-swap)", label, nbytes);
            return -1;
        }
        for (k = 0; k < nbytes; k += itemsize)
            for (b = 0; b < itemsize; b++)
                copy[k + b] = bytes[k + itemsize - 1 - b];
        out->data = copy;
        return fmt_own(out, copy);
    }
    if ((uintptr_t)bytes % itemsize != 0) {
        /* The library and the tool read through typed pointers: keep elements aligned. */
        void *copy = malloc(nbytes);
        if (copy == NULL) {
            fmt_error(err, err_size, "%s: out of memory (%zu bytes to align)", label, nbytes);
            return -1;
        }
        memcpy(copy, bytes, nbytes);
        out->data = copy;
        return fmt_own(out, copy);
    }
    out->data = (void *)bytes;
    return 0;
}

void fmt_free(fmt_array *a)
{
    int i;
    if (a == NULL)
        return;
    for (i = 0; i < 2; i++)
        free(a->owned[i]);
    if (a->map != NULL)
        munmap(a->map, a->map_size);
    memset(a, 0, sizeof *a);
}

DLTensor *fmt_tensor(fmt_array *a)
{
    memset(&a->tensor, 0, sizeof a->tensor);
    a->tensor.data = a->data;
    a->tensor.device.device_type = kDLCPU;
    a->tensor.ndim = a->ndim;
    a->tensor.dtype = a->dtype;
    a->tensor.shape = a->shape;
    a->tensor.strides = a->row_major ? NULL : a->strides;
    return &a->tensor;
}

/* The byte address of row-major element i. */
static const unsigned char *element_address(const fmt_array *a, int64_t i)
{
    int64_t offset = 0;
    int d;
    if (a->row_major)
        offset = i;
    else
        for (d = a->ndim - 1; d >= 0; d--) {
            int64_t n = a->shape[d];
            offset += (i % n) * a->strides[d];
            i /= n;
        }
    return (const unsigned char *)a->data + (size_t)offset * fmt_itemsize(a->dtype);
}

static double half_to_double(uint16_t h)
{
    int exp = (h >> 10) & 0x1f;
    int mant = h & 0x3ff;
    double v;
    if (exp == 0)
        v = ldexp((double)mant, -24);
    else if (exp == 31)
        v = mant ? NAN : INFINITY;
    else
        v = ldexp((double)(mant | 0x400), exp - 25);
    return (h & 0x8000) ? -v : v;
}

double fmt_get_double(const fmt_array *a, int64_t i)
{
    const unsigned char *p = element_address(a, i);
    int exact;
    switch (a->dtype.code) {
    case kDLFloat:
        if (a->dtype.bits == 64) {
            double v;
            memcpy(&v, p, 8);
            return v;
        }
        if (a->dtype.bits == 32) {
            float v;
            memcpy(&v, p, 4);
            return v;
        }
        {
            uint16_t h;
            memcpy(&h, p, 2);
            return half_to_double(h);
        }
    case kDLBfloat: {
        uint16_t h;
        uint32_t u;
        float v;
        memcpy(&h, p, 2);
        u = (uint32_t)h << 16;
        memcpy(&v, &u, 4);
        return v;
    }
    case kDLUInt:
        if (a->dtype.bits == 64) {
            uint64_t v;
            memcpy(&v, p, 8);
            return (double)v;
        }
        return (double)fmt_get_int(a, i, &exact);
    default:
        return (double)fmt_get_int(a, i, &exact);
    }
}

int64_t fmt_get_int(const fmt_array *a, int64_t i, int *exact)
{
    const unsigned char *p = element_address(a, i);
    *exact = 1;
    if (a->dtype.code == kDLInt) {
        switch (a->dtype.bits) {
        case 8: { int8_t v; memcpy(&v, p, 1); return v; }
        case 16: { int16_t v; memcpy(&v, p, 2); return v; }
        case 32: { int32_t v; memcpy(&v, p, 4); return v; }
        default: { int64_t v; memcpy(&v, p, 8); return v; }
        }
    }
    if (a->dtype.code == kDLUInt) {
        switch (a->dtype.bits) {
        case 8: { uint8_t v; memcpy(&v, p, 1); return v; }
        case 16: { uint16_t v; memcpy(&v, p, 2); return v; }
        case 32: { uint32_t v; memcpy(&v, p, 4); return v; }
        default: {
            uint64_t v;
            memcpy(&v, p, 8);
            if (v > (uint64_t)INT64_MAX) {
                *exact = 0;
                return INT64_MAX;
            }
            return (int64_t)v;
        }
        }
    }
    if (a->dtype.code == FMT_DL_BOOL)
        return *p != 0;
    {
        double v = fmt_get_double(a, i);
        *exact = 0;
        return isnan(v) ? 0 : v >= 9.2e18 ? INT64_MAX : v <= -9.2e18 ? INT64_MIN : (int64_t)v;
    }
}

char *fmt_value_string(const fmt_array *a, int64_t i, char *buf, size_t size)
{
    int exact;
    if (a->dtype.code == kDLUInt && a->dtype.bits == 64) {
        uint64_t v;
        memcpy(&v, element_address(a, i), 8);
        snprintf(buf, size, "%llu", (unsigned long long)v);
    } else if (a->dtype.code == kDLFloat || a->dtype.code == kDLBfloat) {
        snprintf(buf, size, a->dtype.bits == 64 ? "%.17g" : "%.9g", fmt_get_double(a, i));
    } else {
        snprintf(buf, size, "%lld", (long long)fmt_get_int(a, i, &exact));
    }
    return buf;
}

int fmt_make_row_major(fmt_array *a, char *err, size_t err_size)
{
    size_t itemsize = fmt_itemsize(a->dtype);
    unsigned char *copy;
    int64_t i, stride = 1;
    int d;
    if (a->row_major || a->count == 0)
        return 0;
    copy = malloc((size_t)a->count * itemsize);
    if (copy == NULL) {
        fmt_error(err, err_size, "out of memory (%lld elements to reorder)", (long long)a->count);
        return -1;
    }
    for (i = 0; i < a->count; i++)
        memcpy(copy + (size_t)i * itemsize, element_address(a, i), itemsize);
    /* A previous copy (byte-swapped or aligned) is no longer needed; a mapping or a zip
     * member buffer that data points into stays until fmt_free. */
    for (d = 0; d < 2; d++)
        if (a->owned[d] != NULL && a->owned[d] == a->data) {
            free(a->owned[d]);
            a->owned[d] = NULL;
        }
    a->data = copy;
    for (d = a->ndim - 1; d >= 0; d--) {
        a->strides[d] = stride;
        stride *= a->shape[d] ? a->shape[d] : 1;
    }
    a->row_major = 1;
    if (fmt_own(a, copy)) {
        fmt_error(err, err_size, "internal error: no room to own a reordered copy");
        a->data = NULL;
        return -1;
    }
    return 0;
}

/* ---- loading a path ---- */

static int ends_with(const char *s, size_t len, const char *suffix)
{
    size_t n = strlen(suffix);
    return len >= n && strncmp(s + len - n, suffix, n) == 0;
}

static int is_regular_file(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

/* Maps path read-only. An empty file gives map NULL and size 0. */
static int map_file(const char *path, void **map, size_t *size, char *err, size_t err_size)
{
    struct stat st;
    int fd;
    void *p;

    *map = NULL;
    *size = 0;
    errno = 0;
    fd = open(path, O_RDONLY);
    if (fd < 0) {
        fmt_error(err, err_size, "%s: cannot open: %s", path, strerror(errno));
        return -1;
    }
    if (fstat(fd, &st) != 0) {
        fmt_error(err, err_size, "%s: cannot stat: %s", path, strerror(errno));
        close(fd);
        return -1;
    }
    if (S_ISDIR(st.st_mode)) {
        fmt_error(err, err_size, "%s: is a directory, not a tensor file", path);
        close(fd);
        return -1;
    }
    if (!S_ISREG(st.st_mode)) {
        fmt_error(err, err_size, "%s: not a regular file", path);
        close(fd);
        return -1;
    }
    if (st.st_size == 0) {
        close(fd);
        return 0;
    }
    if ((uint64_t)st.st_size > (uint64_t)SIZE_MAX) {
        fmt_error(err, err_size, "%s: too large to map", path);
        close(fd);
        return -1;
    }
    p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (p == MAP_FAILED) {
        fmt_error(err, err_size, "%s: cannot map: %s", path, strerror(errno));
        return -1;
    }
    *map = p;
    *size = (size_t)st.st_size;
    return 0;
}

int fmt_load(const char *spec, fmt_array *out, char *err, size_t err_size)
{
    static const unsigned char npy_magic[6] = {0x93, 'N', 'U', 'M', 'P', 'Y'};
    char path[4096];
    const char *member = NULL, *colon;
    void *map = NULL;
    size_t size = 0, path_len;
    const unsigned char *b;
    fmt_kind kind;
    int rc;

    memset(out, 0, sizeof *out);
    /* PATH:NAME picks a member, but only when PATH (not the whole spec) is the file: a file
     * name may itself contain ':'. */
    path_len = strlen(spec);
    colon = strrchr(spec, ':');
    if (colon != NULL && !is_regular_file(spec) && colon > spec) {
        size_t n = (size_t)(colon - spec);
        if (n < sizeof path) {
            memcpy(path, spec, n);
            path[n] = '\0';
            if (is_regular_file(path)) {
                member = colon + 1;
                path_len = n;
            }
        }
    }
    if (member == NULL) {
        if (path_len >= sizeof path) {
            fmt_error(err, err_size, "%.64s...: path too long", spec);
            return -1;
        }
        memcpy(path, spec, path_len + 1);
    }
    if (map_file(path, &map, &size, err, err_size))
        return -1;
    b = map;

    if (size >= 6 && memcmp(b, npy_magic, 6) == 0)
        kind = FMT_NPY;
    else if (size >= 4 && b[0] == 'P' && b[1] == 'K' &&
             ((b[2] == 3 && b[3] == 4) || (b[2] == 5 && b[3] == 6)))
        kind = FMT_NPZ;
    else if (ends_with(path, path_len, ".npz"))
        kind = FMT_NPZ;
    else if (ends_with(path, path_len, ".safetensors") || (size >= 9 && b[8] == '{'))
        kind = FMT_SAFETENSORS;
    else if (ends_with(path, path_len, ".npy"))
        kind = FMT_NPY;
    else {
        fmt_error(err, err_size,
                  "%s: unknown format: neither .npy (\\x93NUMPY at byte 0), .npz (a zip, PK at "
                  "byte 0) nor .safetensors (a header length, then '{' at byte 8)",
                  path);
        if (map)
            munmap(map, size);
        return -1;
    }

    if (kind == FMT_NPY) {
        if (member != NULL) {
            fmt_error(err, err_size, "%s: a .npy file holds one array; it has no member '%s'",
                      path, member);
            rc = -1;
        } else {
            rc = npy_parse(b, size, path, out, err, err_size);
        }
    } else if (kind == FMT_NPZ) {
        rc = npz_parse(b, size, path, member, -1, out, err, err_size);
    } else {
        rc = safetensors_parse(b, size, path, member, -1, out, err, err_size);
    }
    if (rc) {
        fmt_free(out);
        if (map)
            munmap(map, size);
        return -1;
    }
    out->kind = kind;
    out->map = map;
    out->map_size = size;
    fmt_tensor(out);
    return 0;
}

int fmt_save_as(const char *path, const char *named_like, const DLTensor *t, const char *name,
                char *err, size_t err_size)
{
    if (ends_with(named_like, strlen(named_like), ".safetensors"))
        return safetensors_save(path, t, name, err, err_size);
    return npy_save(path, t, err, err_size);
}
