/*
 * A small reader and writer for NumPy .npy files, for the nll tool.
 *
 * Reading: format versions 1.0, 2.0 and 3.0; C order (Fortran order only where it is the same
 * layout, ndim <= 1); little-endian; dtypes f2 f4 f8, i1 i2 i4 i8, u1 u2 u4 u8 and b1.
 * Everything else is refused with a message naming the file and the problem; the reader never
 * reads past what the file holds and never trusts a size it has not checked.
 *
 * Writing: version 1.0, the header padded with spaces so the data starts at a multiple of 64
 * bytes, ending with '\n'. Only dtypes NumPy knows can be written: bfloat16 has no .npy
 * dtype, so npy_save refuses it (no .npy input can be bfloat16, so the tool never needs it).
 *
 * Only little-endian hosts are supported (the data is used in place, without swapping).
 */
#ifndef NLL_TOOL_NPY_H
#define NLL_TOOL_NPY_H

#include <stddef.h>
#include <stdint.h>

#include <dlpack/dlpack.h>

/* NumPy 2 allows 64 dimensions; the library checks its own, smaller limit. */
#define NPY_MAX_NDIM 64

/* DLPack 0.8 added kDLBool = 6; this header may be older. */
#define NPY_DL_BOOL 6

/* Longest error message the functions write (they truncate to the caller's size). */
#define NPY_ERROR_SIZE 512

typedef struct npy_array {
    void *data;                    /* malloc'd; never NULL after a successful load */
    size_t nbytes;                 /* bytes of element data */
    int64_t count;                 /* number of elements */
    DLDataType dtype;
    int ndim;
    int64_t shape[NPY_MAX_NDIM];
    DLTensor tensor;               /* a view over data; refreshed by npy_tensor() */
} npy_array;

/* Loads path into *out (previous contents are overwritten, not freed). Returns 0, or -1 with a
 * one-line message in err ("X.npy: ...") and *out left empty. */
int npy_load(const char *path, npy_array *out, char *err, size_t err_size);

/* Frees the buffer; the struct may be reused. NULL and empty arrays are fine. */
void npy_free(npy_array *a);

/* The DLTensor view (device kDLCPU, strides NULL). Its shape points into *a, so call this again
 * after copying the struct. */
DLTensor *npy_tensor(npy_array *a);

/* Writes a compact row-major CPU tensor (strides NULL, byte_offset honoured) to path, creating
 * or truncating it. Returns 0, or -1 with a message in err. */
int npy_save(const char *path, const DLTensor *t, char *err, size_t err_size);

/* The NumPy descr for a DLPack dtype ("<f4", "|u1", "|b1"), or NULL if NumPy has none. */
const char *npy_descr(DLDataType dtype);

/* The element size in bytes of a dtype (bits rounded up to bytes, times lanes). */
size_t npy_itemsize(DLDataType dtype);

#endif /* NLL_TOOL_NPY_H */
