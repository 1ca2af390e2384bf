/* .npz reading: a zip archive (np.savez: stored; np.savez_compressed: deflated) whose members
 * are .npy files. libzip reads the archive from the bytes in memory; the chosen member is
 * decompressed into a buffer that the resulting array owns, then parsed as a .npy file. */
#include "formats_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <zip.h>

/* Deflate cannot expand data by more than about 1032:1; a member that claims more is lying,
 * and believing it would cost memory before the lie shows. */
#define DEFLATE_MAX_RATIO 1032u

static zip_t *open_archive(const void *bytes, size_t size, const char *label, char *err,
                           size_t err_size)
{
    static const char empty[1] = {0};
    zip_error_t error;
    zip_source_t *source;
    zip_t *archive;

    zip_error_init(&error);
    source = zip_source_buffer_create(size ? bytes : empty, size, 0, &error);
    if (source == NULL) {
        fmt_error(err, err_size, "%s: cannot read as a zip archive: %s", label,
                  zip_error_strerror(&error));
        zip_error_fini(&error);
        return NULL;
    }
    archive = zip_open_from_source(source, ZIP_RDONLY | ZIP_CHECKCONS, &error);
    if (archive == NULL) {
        fmt_error(err, err_size,
                  "%s: not a valid .npz (zip) archive: %s (the zip directory is read from the "
                  "end of the file, %zu bytes)",
                  label, zip_error_strerror(&error), size);
        zip_source_free(source);
        zip_error_fini(&error);
        return NULL;
    }
    zip_error_fini(&error);
    return archive;
}

int npz_member_count(const void *bytes, size_t size, const char *label, int64_t *count,
                     char *err, size_t err_size)
{
    zip_t *archive = open_archive(bytes, size, label, err, err_size);
    if (archive == NULL)
        return -1;
    *count = zip_get_num_entries(archive, 0);
    zip_discard(archive);
    return *count < 0 ? -1 : 0;
}

/* The member's name without a trailing ".npy". */
static void short_name(const char *name, char *buf, size_t size)
{
    size_t n = strlen(name);
    if (n >= 4 && strcmp(name + n - 4, ".npy") == 0)
        n -= 4;
    snprintf(buf, size, "%.*s", (int)(n < 200 ? n : 200), name);
}

/* "a, b, c" (the first few names) for a message. */
static void list_members(zip_t *archive, int64_t count, char *buf, size_t size)
{
    size_t used = 0;
    int64_t i;
    buf[0] = '\0';
    for (i = 0; i < count && i < 8 && used < size; i++) {
        const char *name = zip_get_name(archive, (zip_uint64_t)i, 0);
        char shortened[256];
        short_name(name ? name : "?", shortened, sizeof shortened);
        used += (size_t)snprintf(buf + used, size - used, "%s%s", i ? ", " : "", shortened);
    }
    if (count > 8 && used < size)
        snprintf(buf + used, size - used, ", ...");
}

static int64_t find_member(zip_t *archive, int64_t count, const char *name)
{
    int64_t i;
    for (i = 0; i < count; i++) {
        const char *member = zip_get_name(archive, (zip_uint64_t)i, 0);
        size_t n;
        if (member == NULL)
            continue;
        n = strlen(name);
        if (strcmp(member, name) == 0 ||
            (strncmp(member, name, n) == 0 && strcmp(member + n, ".npy") == 0))
            return i;
    }
    return -1;
}

/* Decompresses member index into a new buffer after checking its sizes. */
static int read_member(zip_t *archive, int64_t index, size_t archive_size, const char *label,
                       unsigned char **out, size_t *out_size, char *err, size_t err_size)
{
    zip_stat_t st;
    zip_file_t *file;
    unsigned char *buf;
    zip_int64_t got;

    zip_stat_init(&st);
    if (zip_stat_index(archive, (zip_uint64_t)index, 0, &st) != 0 ||
        (st.valid & (ZIP_STAT_SIZE | ZIP_STAT_COMP_SIZE | ZIP_STAT_COMP_METHOD)) !=
            (ZIP_STAT_SIZE | ZIP_STAT_COMP_SIZE | ZIP_STAT_COMP_METHOD)) {
        fmt_error(err, err_size, "%s: cannot read the member's zip entry: %s", label,
                  zip_strerror(archive));
        return -1;
    }
    if (st.comp_method != ZIP_CM_STORE && st.comp_method != ZIP_CM_DEFLATE) {
        fmt_error(err, err_size,
                  "%s: compression method %d is not supported (np.savez stores, "
                  "np.savez_compressed deflates)",
                  label, (int)st.comp_method);
        return -1;
    }
    if (st.comp_size > archive_size ||
        (st.comp_method == ZIP_CM_STORE && st.size != st.comp_size) ||
        st.size / DEFLATE_MAX_RATIO > st.comp_size + 1 || st.size > (zip_uint64_t)SIZE_MAX / 2) {
        fmt_error(err, err_size,
                  "%s: the zip entry claims %llu bytes from %llu compressed bytes in a %zu-byte "
                  "archive: the archive is corrupt",
                  label, (unsigned long long)st.size, (unsigned long long)st.comp_size,
                  archive_size);
        return -1;
    }
    /* Checked against the memory there before allocating: a member may honestly inflate
     * 1032-fold, more than the machine has. */
    buf = fmt_alloc((size_t)st.size, label, "to decompress the member", err, err_size);
    if (buf == NULL)
        return -1;
    file = zip_fopen_index(archive, (zip_uint64_t)index, 0);
    if (file == NULL) {
        fmt_error(err, err_size, "%s: cannot open the member: %s", label,
                  zip_strerror(archive));
        free(buf);
        return -1;
    }
    got = st.size ? zip_fread(file, buf, st.size) : 0;
    if (got < 0 || (zip_uint64_t)got != st.size) {
        /* zip_fread checks the CRC once the whole member is read. */
        fmt_error(err, err_size, "%s: cannot decompress the member: %s (%lld of %llu bytes read)",
                  label, got < 0 ? zip_file_strerror(file) : "it ends early", (long long)got,
                  (unsigned long long)st.size);
        zip_fclose(file);
        free(buf);
        return -1;
    }
    {
        /* One more read finds a member longer than its entry says, and runs the CRC check. */
        unsigned char extra;
        got = zip_fread(file, &extra, 1);
        if (got != 0) {
            fmt_error(err, err_size, "%s: the member does not match its zip entry: %s", label,
                      got < 0 ? zip_file_strerror(file) : "more data than its size");
            zip_fclose(file);
            free(buf);
            return -1;
        }
    }
    zip_fclose(file);
    *out = buf;
    *out_size = (size_t)st.size;
    return 0;
}

int npz_parse(const void *bytes, size_t size, const char *label, const char *name,
              int64_t index, fmt_array *out, char *err, size_t err_size)
{
    zip_t *archive;
    int64_t count;
    unsigned char *member = NULL;
    size_t member_size = 0;
    char member_label[FMT_ERROR_SIZE / 2];
    const char *member_name;
    int rc;

    memset(out, 0, sizeof *out);
    archive = open_archive(bytes, size, label, err, err_size);
    if (archive == NULL)
        return -1;
    count = zip_get_num_entries(archive, 0);
    if (name != NULL) {
        index = find_member(archive, count, name);
        if (index < 0) {
            char names[256];
            list_members(archive, count, names, sizeof names);
            fmt_error(err, err_size, "%s: no array '%s' in this .npz; it holds %lld: %s", label,
                      name, (long long)count, count ? names : "(none)");
            zip_discard(archive);
            return -1;
        }
    } else if (index < 0) {
        if (count != 1) {
            char names[256];
            list_members(archive, count, names, sizeof names);
            if (count == 0)
                fmt_error(err, err_size, "%s: the .npz archive holds no arrays", label);
            else
                fmt_error(err, err_size,
                          "%s: the .npz holds %lld arrays (%s): pick one with %s:NAME", label,
                          (long long)count, names, label);
            zip_discard(archive);
            return -1;
        }
        index = 0;
    } else if (index >= count) {
        fmt_error(err, err_size, "%s: the .npz has no member number %lld", label,
                  (long long)index);
        zip_discard(archive);
        return -1;
    }
    member_name = zip_get_name(archive, (zip_uint64_t)index, 0);
    snprintf(member_label, sizeof member_label, "%s:%s", label, member_name ? member_name : "?");
    rc = read_member(archive, index, size, member_label, &member, &member_size, err, err_size);
    zip_discard(archive);
    if (rc)
        return -1;
    if (npy_parse(member, member_size, member_label, out, err, err_size)) {
        free(member);
        fmt_free(out);
        return -1;
    }
    if (fmt_own(out, member)) {
        fmt_error(err, err_size, "%s: internal error: no room to own the member", label);
        fmt_free(out);
        return -1;
    }
    return 0;
}
