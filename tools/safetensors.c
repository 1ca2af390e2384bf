/* .safetensors reading and writing.
 *
 * Layout: bytes 0..7 hold N, the header's length (unsigned 64-bit, little-endian); bytes
 * 8..8+N-1 a UTF-8 JSON object, possibly padded with trailing spaces; the rest is the byte
 * buffer. Each key of the object names a tensor, {"dtype": "F32", "shape": [2, 3],
 * "data_offsets": [begin, end]}, with offsets relative to the start of the byte buffer, data
 * little-endian and row-major; the optional key "__metadata__" maps strings to strings. The
 * tensors must tile the byte buffer exactly: no gaps, no overlaps, nothing after.
 * The whole header is validated on every read, whichever tensor is wanted. */
#include "formats_internal.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

/* The reference implementation's limit, which also bounds what cJSON allocates. */
#define ST_MAX_HEADER 100000000u
/* JSON numbers are doubles: larger offsets or dimensions cannot be exact. */
#define ST_MAX_EXACT 9007199254740992.0 /* 2^53 */

typedef struct st_dtype {
    const char *name;
    uint8_t code;
    uint8_t bits;
} st_dtype;

static const st_dtype st_dtypes[] = {
    {"F64", kDLFloat, 64}, {"F32", kDLFloat, 32}, {"F16", kDLFloat, 16},
    {"BF16", kDLBfloat, 16}, {"I64", kDLInt, 64}, {"I32", kDLInt, 32},
    {"I16", kDLInt, 16},   {"I8", kDLInt, 8},     {"U64", kDLUInt, 64},
    {"U32", kDLUInt, 32},  {"U16", kDLUInt, 16},  {"U8", kDLUInt, 8},
    {"BOOL", FMT_DL_BOOL, 8},
};
#define ST_NDTYPES (sizeof st_dtypes / sizeof st_dtypes[0])

/* One tensor's entry, validated. */
typedef struct st_entry {
    const char *name;
    DLDataType dtype;
    int ndim;
    int64_t shape[FMT_MAX_NDIM];
    uint64_t begin, end;
} st_entry;

typedef struct st_file {
    cJSON *root;
    st_entry *entries;
    int64_t count;
    size_t buffer_start; /* 8 + N */
} st_file;

static void st_close(st_file *f)
{
    cJSON_Delete(f->root);
    free(f->entries);
    memset(f, 0, sizeof *f);
}

/* A JSON number that is a whole number in [0, 2^53]. */
static int exact_count(const cJSON *item, uint64_t *out)
{
    double v;
    if (!cJSON_IsNumber(item))
        return -1;
    v = item->valuedouble;
    if (!(v >= 0.0) || v > ST_MAX_EXACT || floor(v) != v)
        return -1;
    *out = (uint64_t)v;
    return 0;
}

static int parse_entry(const cJSON *item, st_entry *e, const st_file *f, size_t buffer_size,
                       const char *label, char *err, size_t err_size)
{
    const cJSON *dtype = cJSON_GetObjectItemCaseSensitive(item, "dtype");
    const cJSON *shape = cJSON_GetObjectItemCaseSensitive(item, "shape");
    const cJSON *offsets = cJSON_GetObjectItemCaseSensitive(item, "data_offsets");
    const cJSON *dim;
    size_t i, nbytes;
    int64_t count;
    char shape_text[256];

    e->name = item->string;
    if (!cJSON_IsObject(item) || !cJSON_IsString(dtype) || !cJSON_IsArray(shape) ||
        !cJSON_IsArray(offsets)) {
        fmt_error(err, err_size,
                  "%s: malformed header (bytes 8..%zu): tensor '%s' needs \"dtype\" (a string), "
                  "\"shape\" (a list) and \"data_offsets\" (a list)",
                  label, f->buffer_start, e->name);
        return -1;
    }
    for (i = 0; i < ST_NDTYPES; i++)
        if (strcmp(dtype->valuestring, st_dtypes[i].name) == 0)
            break;
    if (i == ST_NDTYPES) {
        fmt_error(err, err_size,
                  "%s: tensor '%s' has dtype '%.32s', which is not supported (F64 F32 F16 BF16, "
                  "I64 I32 I16 I8, U64 U32 U16 U8, BOOL)",
                  label, e->name, dtype->valuestring);
        return -1;
    }
    e->dtype.code = st_dtypes[i].code;
    e->dtype.bits = st_dtypes[i].bits;
    e->dtype.lanes = 1;
    e->ndim = 0;
    cJSON_ArrayForEach(dim, shape)
    {
        uint64_t d;
        if (e->ndim == FMT_MAX_NDIM) {
            fmt_error(err, err_size, "%s: tensor '%s' has more than %d dimensions", label,
                      e->name, FMT_MAX_NDIM);
            return -1;
        }
        if (exact_count(dim, &d)) {
            fmt_error(err, err_size,
                      "%s: tensor '%s': shape entry %d is not a whole number in [0, 2^53]",
                      label, e->name, e->ndim);
            return -1;
        }
        e->shape[e->ndim++] = (int64_t)d;
    }
    if (cJSON_GetArraySize(offsets) != 2 || exact_count(offsets->child, &e->begin) ||
        exact_count(offsets->child->next, &e->end)) {
        fmt_error(err, err_size,
                  "%s: tensor '%s': data_offsets must be [begin, end], two whole numbers", label,
                  e->name);
        return -1;
    }
    fmt_shape_string(e->shape, e->ndim, shape_text, sizeof shape_text);
    if (fmt_sizes(e->shape, e->ndim, fmt_itemsize(e->dtype), &count, &nbytes)) {
        fmt_error(err, err_size, "%s: tensor '%s': shape %s overflows int64 in %s elements",
                  label, e->name, shape_text, st_dtypes[i].name);
        return -1;
    }
    if (e->begin > e->end || e->end > buffer_size) {
        fmt_error(err, err_size,
                  "%s: tensor '%s': data_offsets [%llu, %llu] (file bytes %llu..%llu) %s the "
                  "byte buffer, which ends at byte %zu",
                  label, e->name, (unsigned long long)e->begin, (unsigned long long)e->end,
                  (unsigned long long)(f->buffer_start + e->begin),
                  (unsigned long long)(f->buffer_start + e->end),
                  e->begin > e->end ? "are reversed in" : "run past the end of",
                  f->buffer_start + buffer_size);
        return -1;
    }
    if (e->end - e->begin != nbytes) {
        fmt_error(err, err_size,
                  "%s: tensor '%s': shape %s of %s needs %zu bytes, but data_offsets [%llu, "
                  "%llu] (from file byte %llu) span %llu",
                  label, e->name, shape_text, st_dtypes[i].name, nbytes,
                  (unsigned long long)e->begin, (unsigned long long)e->end,
                  (unsigned long long)(f->buffer_start + e->begin),
                  (unsigned long long)(e->end - e->begin));
        return -1;
    }
    return 0;
}

static int compare_begin(const void *a, const void *b)
{
    const st_entry *x = *(const st_entry *const *)a, *y = *(const st_entry *const *)b;
    return x->begin < y->begin ? -1 : x->begin > y->begin ? 1 : (x->end > y->end) - (x->end < y->end);
}

/* Every tensor in its place, one after another from byte 0 to the end of the buffer. */
static int check_tiling(st_file *f, size_t buffer_size, const char *label, char *err,
                        size_t err_size)
{
    const st_entry **order;
    uint64_t at = 0;
    int64_t i;
    if (f->count == 0) {
        if (buffer_size != 0) {
            fmt_error(err, err_size,
                      "%s: %zu bytes after the header (from byte %zu) belong to no tensor",
                      label, buffer_size, f->buffer_start);
            return -1;
        }
        return 0;
    }
    order = malloc((size_t)f->count * sizeof *order);
    if (order == NULL) {
        fmt_error(err, err_size, "%s: out of memory", label);
        return -1;
    }
    for (i = 0; i < f->count; i++)
        order[i] = &f->entries[i];
    qsort(order, (size_t)f->count, sizeof *order, compare_begin);
    for (i = 0; i < f->count; i++) {
        if (order[i]->begin != at) {
            fmt_error(err, err_size,
                      "%s: tensor '%s' starts at buffer offset %llu (file byte %llu), but the "
                      "previous tensor ends at %llu: %s",
                      label, order[i]->name, (unsigned long long)order[i]->begin,
                      (unsigned long long)(f->buffer_start + order[i]->begin),
                      (unsigned long long)at,
                      order[i]->begin > at ? "a gap (the buffer must hold nothing else)"
                                           : "tensors overlap");
            free(order);
            return -1;
        }
        at = order[i]->end;
    }
    free(order);
    if (at != buffer_size) {
        fmt_error(err, err_size,
                  "%s: the tensors end at file byte %llu, but the file goes on to byte %zu: "
                  "trailing bytes belong to no tensor",
                  label, (unsigned long long)(f->buffer_start + at), f->buffer_start + buffer_size);
        return -1;
    }
    return 0;
}

static int st_open(const void *bytes, size_t size, const char *label, st_file *f, char *err,
                   size_t err_size)
{
    const unsigned char *b = bytes;
    const char *header, *end = NULL;
    uint64_t n = 0;
    size_t buffer_size, k;
    const cJSON *item;
    int i;

    memset(f, 0, sizeof *f);
    if (size < 8) {
        fmt_error(err, err_size,
                  "%s: not a .safetensors file: it is %zu bytes, too short for the 8-byte "
                  "header length at byte 0",
                  label, size);
        return -1;
    }
    for (i = 7; i >= 0; i--)
        n = n << 8 | b[i];
    if (n > size - 8) {
        fmt_error(err, err_size,
                  "%s: header length %llu at byte 0 runs past the end of the file (%zu bytes)",
                  label, (unsigned long long)n, size);
        return -1;
    }
    if (n > ST_MAX_HEADER) {
        fmt_error(err, err_size, "%s: header length %llu at byte 0 exceeds the limit of %u bytes",
                  label, (unsigned long long)n, ST_MAX_HEADER);
        return -1;
    }
    if (n < 2 || b[8] != '{') {
        fmt_error(err, err_size,
                  "%s: malformed header at byte 8: expected a JSON object ('{') of %llu bytes",
                  label, (unsigned long long)n);
        return -1;
    }
    header = (const char *)b + 8;
    f->buffer_start = 8 + (size_t)n;
    buffer_size = size - f->buffer_start;
    f->root = cJSON_ParseWithLengthOpts(header, (size_t)n, &end, 0);
    if (f->root == NULL || !cJSON_IsObject(f->root)) {
        size_t at = end != NULL && end >= header && end <= header + n ? (size_t)(end - header) : 0;
        fmt_error(err, err_size, "%s: malformed JSON header at byte %zu (the header is bytes 8..%zu)",
                  label, 8 + at, f->buffer_start);
        st_close(f);
        return -1;
    }
    /* Only padding may follow the object. */
    for (k = (size_t)(end - header); k < n; k++)
        if (header[k] != ' ') {
            fmt_error(err, err_size,
                      "%s: malformed header at byte %zu: text after the JSON object (only "
                      "space padding may follow it)",
                      label, 8 + k);
            st_close(f);
            return -1;
        }

    cJSON_ArrayForEach(item, f->root) f->count++;
    f->entries = calloc((size_t)(f->count ? f->count : 1), sizeof *f->entries);
    if (f->entries == NULL) {
        fmt_error(err, err_size, "%s: out of memory", label);
        st_close(f);
        return -1;
    }
    f->count = 0;
    cJSON_ArrayForEach(item, f->root)
    {
        const cJSON *other;
        for (other = f->root->child; other != item; other = other->next)
            if (strcmp(other->string, item->string) == 0) {
                fmt_error(err, err_size, "%s: the header names '%s' twice", label, item->string);
                st_close(f);
                return -1;
            }
        if (strcmp(item->string, "__metadata__") == 0) {
            const cJSON *meta;
            int strings_only = cJSON_IsObject(item);
            cJSON_ArrayForEach(meta, item) strings_only &= cJSON_IsString(meta);
            if (!strings_only) {
                fmt_error(err, err_size,
                          "%s: malformed header: \"__metadata__\" must map strings to strings",
                          label);
                st_close(f);
                return -1;
            }
            continue;
        }
        if (parse_entry(item, &f->entries[f->count], f, buffer_size, label, err, err_size)) {
            st_close(f);
            return -1;
        }
        f->count++;
    }
    if (check_tiling(f, buffer_size, label, err, err_size)) {
        st_close(f);
        return -1;
    }
    return 0;
}

int safetensors_count(const void *bytes, size_t size, const char *label, int64_t *count,
                      char *err, size_t err_size)
{
    st_file f;
    if (st_open(bytes, size, label, &f, err, err_size))
        return -1;
    *count = f.count;
    st_close(&f);
    return 0;
}

int safetensors_parse(const void *bytes, size_t size, const char *label, const char *name,
                      int64_t index, fmt_array *out, char *err, size_t err_size)
{
    st_file f;
    const st_entry *e = NULL;
    char tensor_label[FMT_ERROR_SIZE / 2];
    int64_t i;
    int rc;

    memset(out, 0, sizeof *out);
    if (st_open(bytes, size, label, &f, err, err_size))
        return -1;
    if (name != NULL) {
        for (i = 0; i < f.count; i++)
            if (strcmp(f.entries[i].name, name) == 0)
                e = &f.entries[i];
    } else if (index >= 0) {
        if (index < f.count)
            e = &f.entries[index];
    } else if (f.count == 1) {
        e = &f.entries[0];
    }
    if (e == NULL) {
        char names[256];
        size_t used = 0;
        names[0] = '\0';
        for (i = 0; i < f.count && i < 8 && used < sizeof names; i++)
            used += (size_t)snprintf(names + used, sizeof names - used, "%s%.60s", i ? ", " : "",
                                     f.entries[i].name);
        if (f.count > 8 && used < sizeof names)
            snprintf(names + used, sizeof names - used, ", ...");
        if (name != NULL)
            fmt_error(err, err_size, "%s: no tensor '%s'; it holds %lld: %s", label, name,
                      (long long)f.count, f.count ? names : "(none)");
        else if (index >= 0)
            fmt_error(err, err_size, "%s: no tensor number %lld", label, (long long)index);
        else if (f.count == 0)
            fmt_error(err, err_size, "%s: the file holds no tensors", label);
        else
            fmt_error(err, err_size, "%s: the file holds %lld tensors (%s): pick one with %s:NAME",
                      label, (long long)f.count, names, label);
        st_close(&f);
        return -1;
    }
    snprintf(tensor_label, sizeof tensor_label, "%s:%s", label, e->name);
    rc = fmt_place(out, (const unsigned char *)bytes + f.buffer_start + e->begin,
                   (size_t)(e->end - e->begin), e->dtype, e->shape, e->ndim, 0, 0, tensor_label,
                   err, err_size);
    st_close(&f);
    if (rc)
        fmt_free(out);
    return rc;
}

int safetensors_save(const char *path, const DLTensor *t, const char *name, char *err,
                     size_t err_size)
{
    const char *dtype = NULL;
    cJSON *root = NULL, *entry, *shape, *offsets;
    char *json = NULL;
    size_t i, len, padded, nbytes;
    int64_t count;
    unsigned char prefix[8];
    FILE *f = NULL;
    int rc = -1;

    for (i = 0; i < ST_NDTYPES; i++)
        if (t->dtype.lanes == 1 && t->dtype.code == st_dtypes[i].code &&
            t->dtype.bits == st_dtypes[i].bits)
            dtype = st_dtypes[i].name;
    if (dtype == NULL || t->device.device_type != kDLCPU || t->ndim < 0 ||
        t->ndim > FMT_MAX_NDIM || (t->ndim > 0 && t->shape == NULL) ||
        fmt_sizes(t->shape, t->ndim, fmt_itemsize(t->dtype), &count, &nbytes)) {
        fmt_error(err, err_size, "%s: cannot write this tensor as .safetensors", path);
        return -1;
    }
    root = cJSON_CreateObject();
    entry = cJSON_AddObjectToObject(root, name != NULL ? name : "tensor");
    if (entry == NULL || cJSON_AddStringToObject(entry, "dtype", dtype) == NULL)
        goto out_of_memory;
    shape = cJSON_AddArrayToObject(entry, "shape");
    offsets = cJSON_AddArrayToObject(entry, "data_offsets");
    if (shape == NULL || offsets == NULL)
        goto out_of_memory;
    for (i = 0; i < (size_t)t->ndim; i++)
        if (!cJSON_AddItemToArray(shape, cJSON_CreateNumber((double)t->shape[i])))
            goto out_of_memory;
    if (!cJSON_AddItemToArray(offsets, cJSON_CreateNumber(0)) ||
        !cJSON_AddItemToArray(offsets, cJSON_CreateNumber((double)nbytes)))
        goto out_of_memory;
    json = cJSON_PrintUnformatted(root);
    if (json == NULL)
        goto out_of_memory;
    /* Pad with spaces so the byte buffer starts at a multiple of 8, as the reference writer
     * does: every element is then aligned in a mapped file. */
    len = strlen(json);
    padded = (len + 7) / 8 * 8;
    for (i = 0; i < 8; i++)
        prefix[i] = (unsigned char)((uint64_t)padded >> (8 * i));
    errno = 0;
    f = fopen(path, "wb");
    if (f == NULL) {
        fmt_error(err, err_size, "%s: cannot create: %s", path,
                  errno ? strerror(errno) : "unknown error");
        goto done;
    }
    if (fwrite(prefix, 1, 8, f) != 8 || fwrite(json, 1, len, f) != len)
        goto write_failed;
    for (i = len; i < padded; i++)
        if (fputc(' ', f) == EOF)
            goto write_failed;
    if (nbytes && fwrite((const char *)t->data + t->byte_offset, 1, nbytes, f) != nbytes)
        goto write_failed;
    rc = fclose(f);
    f = NULL;
    if (rc != 0)
        goto write_failed;
    rc = 0;
    goto done;

write_failed:
    fmt_error(err, err_size, "%s: write failed: %s", path, strerror(errno));
    rc = -1;
    goto done;
out_of_memory:
    fmt_error(err, err_size, "%s: out of memory", path);
    rc = -1;
done:
    if (f != NULL)
        fclose(f);
    cJSON_free(json);
    cJSON_Delete(root);
    return rc;
}
