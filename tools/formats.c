/* What the three formats share: loading a path (mapping it, recognising the format, picking
 * a member), element access over any strides and dtype, and choosing a writer. */
#define _POSIX_C_SOURCE 200809L

#include "formats_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
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

/* ---- memory for large buffers ---- */

typedef struct memory_room {
    unsigned long long bytes; /* the smallest room found */
    const char *limit;        /* what sets it, for the message */
} memory_room;

static void consider(memory_room *room, unsigned long long bytes, const char *limit)
{
    if (bytes < room->bytes) {
        room->bytes = bytes;
        room->limit = limit;
    }
}

/* A number read from a one-line file such as memory.max; -1 for "max", a missing file or text
 * that is not a number. */
static long long read_number_file(const char *path)
{
    FILE *f = fopen(path, "r");
    long long v = -1;
    if (f == NULL)
        return -1;
    if (fscanf(f, "%lld", &v) != 1)
        v = -1;
    fclose(f);
    return v;
}

/* One cgroup hierarchy's limits for this process's group and every group above it, up to
 * the mount point base (a container sees its own group there). */
static void consider_cgroup_tree(memory_room *room, const char *base, const char *group,
                                 const char *limit_file, const char *usage_file)
{
    char dir[1024];
    size_t n, base_len = strlen(base);
    snprintf(dir, sizeof dir, "%s%s", base, group);
    n = strlen(dir);
    while (n > 0 && (dir[n - 1] == '\n' || dir[n - 1] == '/'))
        dir[--n] = '\0';
    for (;;) {
        char path[1100];
        long long limit, usage;
        snprintf(path, sizeof path, "%s/%s", dir, limit_file);
        limit = read_number_file(path);
        snprintf(path, sizeof path, "%s/%s", dir, usage_file);
        usage = read_number_file(path);
        if (limit >= 0 && usage >= 0)
            consider(room, limit > usage ? (unsigned long long)(limit - usage) : 0,
                     "the room left under the cgroup's memory limit");
        if (n <= base_len)
            break;
        while (n > base_len && dir[n - 1] != '/')
            n--;
        if (n > base_len)
            n--;
        dir[n] = '\0';
    }
}

/* The cgroup memory limits: v2 (memory.max) and v1 (memory.limit_in_bytes). */
static void consider_cgroup(memory_room *room)
{
    char line[512];
    FILE *f = fopen("/proc/self/cgroup", "r");
    if (f == NULL)
        return;
    while (fgets(line, sizeof line, f) != NULL) {
        const char *v1 = strstr(line, ":memory:");
        if (strncmp(line, "0::", 3) == 0)
            consider_cgroup_tree(room, "/sys/fs/cgroup", line + 3, "memory.max",
                                 "memory.current");
        else if (v1 != NULL)
            consider_cgroup_tree(room, "/sys/fs/cgroup/memory", v1 + 8,
                                 "memory.limit_in_bytes", "memory.usage_in_bytes");
    }
    fclose(f);
}

/* How much a new allocation can have, and what limits it. */
static memory_room memory_available(void)
{
    memory_room room = {ULLONG_MAX, NULL};
    long page = sysconf(_SC_PAGESIZE);
    unsigned long long vm_size = 0, vm_data = 0, v;
    struct rlimit limit;
    char line[256];
    FILE *f;
    int have_available = 0;

    if (page <= 0)
        page = 4096;
    f = fopen("/proc/meminfo", "r");
    if (f != NULL) {
        while (fgets(line, sizeof line, f) != NULL)
            if (sscanf(line, "MemAvailable: %llu kB", &v) == 1) {
                consider(&room, v * 1024u, "the memory available (MemAvailable in /proc/meminfo)");
                have_available = 1;
                break;
            }
        fclose(f);
    }
    if (!have_available) {
        long pages = sysconf(_SC_AVPHYS_PAGES);
        if (pages > 0)
            consider(&room, (unsigned long long)pages * (unsigned long long)page,
                     "the free memory (sysconf(_SC_AVPHYS_PAGES))");
    }
    /* /proc/self/statm: total and data+stack sizes in pages, what the two limits count. */
    f = fopen("/proc/self/statm", "r");
    if (f != NULL) {
        unsigned long long size, resident, shared, text, lib, data;
        if (fscanf(f, "%llu %llu %llu %llu %llu %llu", &size, &resident, &shared, &text, &lib,
                   &data) == 6) {
            vm_size = size * (unsigned long long)page;
            vm_data = data * (unsigned long long)page;
        }
        fclose(f);
    }
    if (getrlimit(RLIMIT_AS, &limit) == 0 && limit.rlim_cur != RLIM_INFINITY)
        consider(&room, limit.rlim_cur > vm_size ? limit.rlim_cur - vm_size : 0,
                 "the room left under the address-space limit (ulimit -v)");
    if (getrlimit(RLIMIT_DATA, &limit) == 0 && limit.rlim_cur != RLIM_INFINITY)
        consider(&room, limit.rlim_cur > vm_data ? limit.rlim_cur - vm_data : 0,
                 "the room left under the data-size limit (ulimit -d)");
    consider_cgroup(&room);
    return room;
}

void *fmt_alloc(size_t nbytes, const char *label, const char *what, char *err, size_t err_size)
{
    void *p;
    if (nbytes >= FMT_MEMORY_CHECK_FROM) {
        /* With overcommit, malloc would succeed and the pages fail later, when touched: the
         * out-of-memory killer, not a message. */
        memory_room room = memory_available();
        if (room.limit != NULL && nbytes > room.bytes) {
            fmt_error(err, err_size,
                      "%s: needs %zu bytes (%.2f GiB) %s, more than %s: %llu bytes (%.2f GiB)",
                      label, nbytes, (double)nbytes / 1073741824.0, what, room.limit, room.bytes,
                      (double)room.bytes / 1073741824.0);
            return NULL;
        }
    }
    p = malloc(nbytes ? nbytes : 1);
    if (p == NULL)
        fmt_error(err, err_size, "%s: out of memory (%zu bytes %s)", label, nbytes, what);
    return p;
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
        unsigned char *copy = fmt_alloc(nbytes, label, "to byte-swap", err, err_size);
        size_t k, b;
        if (copy == NULL)
            return -1;
        for (k = 0; k < nbytes; k += itemsize)
            for (b = 0; b < itemsize; b++)
                copy[k + b] = bytes[k + itemsize - 1 - b];
        out->data = copy;
        return fmt_own(out, copy);
    }
    if ((uintptr_t)bytes % itemsize != 0) {
        /* The library and the tool read through typed pointers: keep elements aligned. */
        void *copy = fmt_alloc(nbytes, label, "to align", err, err_size);
        if (copy == NULL)
            return -1;
        memcpy(copy, bytes, nbytes);
        out->data = copy;
        return fmt_own(out, copy);
    }
    out->data = (void *)bytes;
    return 0;
}

/* ---- the live mappings, for fmt_mapped_file ---- */

#define MAX_MAPPINGS 16

/* Written only by fmt_load and fmt_free (the tool loads on one thread, before any other thread
 * reads the data); read by a signal handler, so start is published last and cleared first. */
static struct {
    const unsigned char *volatile start;
    volatile size_t size;
    char path[4096];
} mappings[MAX_MAPPINGS];

static void remember_mapping(const void *map, size_t size, const char *path)
{
    int i;
    for (i = 0; i < MAX_MAPPINGS; i++)
        if (mappings[i].start == NULL) {
            snprintf(mappings[i].path, sizeof mappings[i].path, "%s", path);
            mappings[i].size = size;
            mappings[i].start = map;
            return;
        }
    /* More live mappings than slots: a fault there is reported without the file's name. */
}

static void forget_mapping(const void *map)
{
    int i;
    for (i = 0; i < MAX_MAPPINGS; i++)
        if (mappings[i].start == map)
            mappings[i].start = NULL;
}

const char *fmt_mapped_file(const void *address, size_t *offset)
{
    const unsigned char *p = address;
    int i;
    for (i = 0; i < MAX_MAPPINGS; i++) {
        const unsigned char *start = mappings[i].start;
        if (start != NULL && p >= start && p < start + mappings[i].size) {
            *offset = (size_t)(p - start);
            return mappings[i].path;
        }
    }
    return NULL;
}

const char *fmt_shrunk_file(const void *address, size_t *mapped_size, size_t *size_now)
{
    const unsigned char *p = address;
    struct stat st;
    int i;
    for (i = 0; i < MAX_MAPPINGS; i++) {
        const unsigned char *start = mappings[i].start;
        if (start != NULL && p >= start && p < start + mappings[i].size &&
            stat(mappings[i].path, &st) == 0 && (uint64_t)st.st_size < mappings[i].size) {
            *mapped_size = mappings[i].size;
            *size_now = (size_t)st.st_size;
            return mappings[i].path;
        }
    }
    return NULL;
}

static void unmap(void *map, size_t size)
{
    forget_mapping(map);
    munmap(map, size);
}

void fmt_free(fmt_array *a)
{
    int i;
    if (a == NULL)
        return;
    for (i = 0; i < 2; i++)
        free(a->owned[i]);
    if (a->map != NULL)
        unmap(a->map, a->map_size);
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
    copy = fmt_alloc((size_t)a->count * itemsize, "the tensor", "to reorder", err, err_size);
    if (copy == NULL)
        return -1;
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

static int exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

const char *fmt_file_type(unsigned int mode)
{
    return S_ISDIR(mode)    ? "a directory"
           : S_ISFIFO(mode) ? "a FIFO or pipe"
           : S_ISCHR(mode)  ? "a character device"
           : S_ISBLK(mode)  ? "a block device"
           : S_ISSOCK(mode) ? "a socket"
                            : "not a file";
}

/* Maps path read-only. An empty file gives map NULL and size 0. Only regular files: opening a
 * FIFO waits for a writer, and a device or a pipe cannot be mapped, so they are refused by
 * stat before the open, and the open itself does not wait (O_NONBLOCK) in case the name was
 * replaced in between. /dev/stdin works when it is a regular file (nll ... <file). */
static int map_file(const char *path, void **map, size_t *size, char *err, size_t err_size)
{
    struct stat st;
    int fd;
    void *p;

    *map = NULL;
    *size = 0;
    errno = 0;
    if (stat(path, &st) != 0) {
        fmt_error(err, err_size, "%s: cannot open: %s", path, strerror(errno));
        return -1;
    }
    if (!S_ISREG(st.st_mode)) {
        fmt_error(err, err_size, "%s: not a regular file (%s): tensors are read from files",
                  path, fmt_file_type(st.st_mode));
        return -1;
    }
    fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) {
        fmt_error(err, err_size, "%s: cannot open: %s", path, strerror(errno));
        return -1;
    }
    if (fstat(fd, &st) != 0) {
        fmt_error(err, err_size, "%s: cannot stat: %s", path, strerror(errno));
        close(fd);
        return -1;
    }
    if (!S_ISREG(st.st_mode)) {
        fmt_error(err, err_size, "%s: not a regular file (%s): tensors are read from files",
                  path, fmt_file_type(st.st_mode));
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
    remember_mapping(p, (size_t)st.st_size, path);
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
     * name may itself contain ':'. A PATH that is there but not a regular file is taken too, so
     * that the message says what it is. */
    path_len = strlen(spec);
    colon = strrchr(spec, ':');
    if (colon != NULL && !exists(spec) && colon > spec) {
        size_t n = (size_t)(colon - spec);
        if (n < sizeof path) {
            memcpy(path, spec, n);
            path[n] = '\0';
            if (exists(path)) {
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
            unmap(map, size);
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
            unmap(map, size);
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
