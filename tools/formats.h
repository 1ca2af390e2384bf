/*
 * Tensor files for the nll tool and the reader fuzzers: .npy, .npz and .safetensors.
 *
 * Reading
 *   .npy          versions 1.0, 2.0, 3.0; C or Fortran order (Fortran order becomes column-major
 *                 strides over the same bytes); little- or big-endian (big-endian is byte-swapped
 *                 into a copy); f2 f4 f8, i1 i2 i4 i8, u1 u2 u4 u8, b1.
 *   .npz          a zip of .npy members, stored or deflated, read with libzip.
 *   .safetensors  an 8-byte little-endian header length, a JSON header (read with cJSON) and one
 *                 byte buffer; F64 F32 F16 BF16, I64 I32 I16 I8, U64 U32 U16 U8, BOOL.
 * Files are memory-mapped: a tensor's data is used where it lies in the mapping, and copied
 * only when it must change (byte order) or is misaligned for its element type. A member of a
 * zip is decompressed into a buffer of its own.
 *
 * Every size and offset is checked against the bytes actually there before it is used; a bad
 * file gives -1 and a one-line message naming the file, the byte offset and the problem.
 * fmt_load opens regular files only (a FIFO, device, socket or directory is refused at once,
 * never waited on). A buffer of FMT_MEMORY_CHECK_FROM bytes or more (a zip member, a copy) is
 * allocated only when the memory is there: at most MemAvailable (/proc/meminfo), and within
 * the address-space and data limits (ulimit -v, -d) and the cgroup's memory limit.
 *
 * Writing: .npy version 1.0 (data at a multiple of 64 bytes) or, for a path ending in
 * .safetensors, a one-tensor .safetensors file (header padded to a multiple of 8 bytes).
 *
 * Only little-endian hosts are supported.
 */
#ifndef NLL_TOOL_FORMATS_H
#define NLL_TOOL_FORMATS_H

#include <stddef.h>
#include <stdint.h>

#include <dlpack/dlpack.h>

/* NumPy 2 allows 64 dimensions; the library checks its own, smaller limit. */
#define FMT_MAX_NDIM 64

/* DLPack 0.8 added kDLBool = 6; this header may be older. */
#define FMT_DL_BOOL 6

/* Buffers this large and larger are checked against the memory available before they are
 * allocated; smaller ones fit anywhere the tool runs. */
#define FMT_MEMORY_CHECK_FROM ((size_t)64 << 20)

/* Longest error message the functions write (they truncate to the caller's size). */
#define FMT_ERROR_SIZE 768

typedef enum fmt_kind { FMT_NPY = 1, FMT_NPZ, FMT_SAFETENSORS } fmt_kind;

typedef struct fmt_array {
    void *data;                      /* the first element; NULL only when count is 0 */
    int64_t count;                   /* number of elements */
    DLDataType dtype;
    int ndim;
    int64_t shape[FMT_MAX_NDIM];
    int64_t strides[FMT_MAX_NDIM];   /* in elements, always filled (row-major unless Fortran) */
    int row_major;                   /* strides are the compact row-major ones */
    fmt_kind kind;                   /* the format it came from */
    DLTensor tensor;                 /* a view, refreshed by fmt_tensor() */
    /* What fmt_free releases: a mapping, and up to two buffers (a zip member, a copy). */
    void *map;
    size_t map_size;
    void *owned[2];
} fmt_array;

/* Loads a tensor. spec is a path, or PATH:NAME for a member of an .npz (with or without its
 * .npy suffix) or a tensor of a .safetensors file; a container with a single tensor needs no
 * name. The format is recognised from the file's first bytes, else from the extension.
 * Returns 0, or -1 with a message in err and *out left empty. */
int fmt_load(const char *spec, fmt_array *out, char *err, size_t err_size);

/* The file whose live mapping (made by fmt_load, not yet released by fmt_free) holds address,
 * and the address's byte offset in it; NULL when none does. Async-signal-safe: the tool's
 * SIGBUS handler names a file that shrank while mapped with it. fmt_load and fmt_free keep
 * this table (the module's only state; the parsers below never touch it). */
const char *fmt_mapped_file(const void *address, size_t *offset);

/* The file of the live mapping that holds address when that file is now shorter than the
 * mapping (truncated since fmt_load), with its sizes then and now; NULL otherwise. A write
 * from such a mapping fails with EFAULT rather than a SIGBUS: this names the cause. */
const char *fmt_shrunk_file(const void *address, size_t *mapped_size, size_t *size_now);

/* What a file that is not a regular file is, for messages ("a FIFO or pipe", "a directory",
 * "a character device", ...), from its st_mode. */
const char *fmt_file_type(unsigned int mode);

/* Frees what the array holds; the struct may be reused. NULL and empty arrays are fine. */
void fmt_free(fmt_array *a);

/* The DLTensor view (kDLCPU; strides NULL for row-major data). Its shape points into *a. */
DLTensor *fmt_tensor(fmt_array *a);

/* Element i (row-major order, whatever the strides) as a double; bool is 0 or 1, and 64-bit
 * integers beyond 2^53 are rounded. */
double fmt_get_double(const fmt_array *a, int64_t i);

/* Element i of an integer or bool array. *exact is 0 for a uint64 above INT64_MAX (*out then
 * INT64_MAX). */
int64_t fmt_get_int(const fmt_array *a, int64_t i, int *exact);

/* Writes element i exactly as text: integers in full (uint64 too), floats "%.9g" ("%.17g" for
 * float64), bool as 0 or 1. Returns buf. */
char *fmt_value_string(const fmt_array *a, int64_t i, char *buf, size_t size);

/* Rewrites a strided array as a compact row-major copy (a no-op for row-major data). */
int fmt_make_row_major(fmt_array *a, char *err, size_t err_size);

/* Writes a compact row-major CPU tensor to path: as .safetensors (one tensor, called name) when
 * named_like ends in .safetensors, else as .npy (named_like lets a temporary file take its
 * final name's format). Creates or truncates path. Returns 0, or -1 with a message. */
int fmt_save_as(const char *path, const char *named_like, const DLTensor *t, const char *name,
                char *err, size_t err_size);

/* The dtype's name as the library prints it ("float32", "bfloat16", "uint8", "bool"). */
const char *fmt_dtype_name(DLDataType dtype);

/* The element size in bytes (bits rounded up to bytes). */
size_t fmt_itemsize(DLDataType dtype);

/* Writes "(3, 5)" (or "()") into buf; returns buf. */
char *fmt_shape_string(const int64_t *shape, int ndim, char *buf, size_t size);

/* ---- parsers over bytes in memory, for the loaders and the fuzzers ----
 * label names the source in messages. On success *out views bytes (which must outlive it) or
 * owns a copy; fmt_free releases only what it owns. */

/* A whole .npy file. */
int npy_parse(const void *bytes, size_t size, const char *label, fmt_array *out, char *err,
              size_t err_size);

/* The number of members of a zip archive. */
int npz_member_count(const void *bytes, size_t size, const char *label, int64_t *count,
                     char *err, size_t err_size);
/* A member of an .npz: by name (with or without ".npy"), or when name is NULL, member number
 * index, or for index -1 the only member. The result owns the decompressed member. */
int npz_parse(const void *bytes, size_t size, const char *label, const char *name,
              int64_t index, fmt_array *out, char *err, size_t err_size);

/* The number of tensors in a .safetensors file (after validating the whole header). */
int safetensors_count(const void *bytes, size_t size, const char *label, int64_t *count,
                      char *err, size_t err_size);
/* A tensor of a .safetensors file: by name, or when name is NULL, the index-th in the header's
 * order, or for index -1 the only tensor. */
int safetensors_parse(const void *bytes, size_t size, const char *label, const char *name,
                      int64_t index, fmt_array *out, char *err, size_t err_size);

/* ---- writers ---- */
int npy_save(const char *path, const DLTensor *t, char *err, size_t err_size);
int safetensors_save(const char *path, const DLTensor *t, const char *name, char *err,
                     size_t err_size);

#endif /* NLL_TOOL_FORMATS_H */
