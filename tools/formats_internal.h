/* Helpers shared by the format readers (npy.c, npz.c, safetensors.c, formats.c). */
#ifndef NLL_TOOL_FORMATS_INTERNAL_H
#define NLL_TOOL_FORMATS_INTERNAL_H

#include "formats.h"

#if defined(__GNUC__) || defined(__clang__)
#define FMT_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define FMT_PRINTF(a, b)
#endif

/* vsnprintf into err, when err is not NULL. */
void fmt_error(char *err, size_t err_size, const char *fmt, ...) FMT_PRINTF(3, 4);

/* The element count of a shape and its size in bytes; -1 when either overflows int64 (or
 * size_t). Every dimension must be non-negative. */
int fmt_sizes(const int64_t *shape, int ndim, size_t itemsize, int64_t *count, size_t *nbytes);

/* Fills out's dtype, shape and strides and points it at nbytes of element data at bytes
 * (already checked to lie inside the source). Copies the data when byte_swap is set (big-endian
 * data) or when it is misaligned for its element type. fortran: column-major layout. */
int fmt_place(fmt_array *out, const unsigned char *bytes, size_t nbytes, DLDataType dtype,
              const int64_t *shape, int ndim, int byte_swap, int fortran, const char *label,
              char *err, size_t err_size);

/* Allocates nbytes for what (a message's words: "to byte-swap") when the memory is there
 * (see formats.h); NULL with a message naming label otherwise. */
void *fmt_alloc(size_t nbytes, const char *label, const char *what, char *err, size_t err_size);

/* Records a buffer for fmt_free to release; -1 (and frees it) if both slots are taken. */
int fmt_own(fmt_array *a, void *buffer);

#endif /* NLL_TOOL_FORMATS_INTERNAL_H */
