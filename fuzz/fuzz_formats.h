/* fuzz_formats.h — what the reader harnesses share: reading every element of a parsed array
 * through the accessor the tool uses, so ASan sees each byte, and checking that elements
 * lying in the input stay inside it (copies the array owns — decompressed, byte-swapped or
 * realigned data — are checked by ASan alone). */
#ifndef NLL_FUZZ_FORMATS_H
#define NLL_FUZZ_FORMATS_H

#include "formats.h"
#include "fuzz.h"

static inline void fuzz_touch_array(const fmt_array *a, const uint8_t *data, size_t size)
{
    const uint8_t *p = a->data;
    double sum = 0.0;
    FUZZ_ASSERT(a->count >= 0 && (a->count == 0 || a->data != NULL));
    FUZZ_ASSERT(a->ndim >= 0 && a->ndim <= FMT_MAX_NDIM);
    if (a->count > 0 && p >= data && p < data + size)
        FUZZ_ASSERT((size_t)a->count * fmt_itemsize(a->dtype) <= (size_t)(data + size - p));
    for (int64_t i = 0; i < a->count; i++)
        sum += fmt_get_double(a, i);
    (void)sum;
}

#endif /* NLL_FUZZ_FORMATS_H */
