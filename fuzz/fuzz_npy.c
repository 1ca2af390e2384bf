/* fuzz_npy — the .npy reader (tools/npy.c) on arbitrary bytes: a parsed array or a message,
 * never a crash, and an accepted array's elements all lie inside the input (or in a copy the
 * array owns: byte-swapped or realigned data). */
#include <string.h>

#include "formats.h"
#include "fuzz.h"

/* Reads every element, through the same accessor the tool uses, so ASan sees each byte. */
static void touch_elements(const fmt_array *a, const uint8_t *data, size_t size)
{
    size_t itemsize = fmt_itemsize(a->dtype);
    const uint8_t *p = a->data;
    int64_t i;
    double sum = 0.0;
    FUZZ_ASSERT(a->count >= 0 && (a->count == 0 || a->data != NULL));
    FUZZ_ASSERT(a->ndim >= 0 && a->ndim <= FMT_MAX_NDIM);
    if (a->count > 0 && p >= data && p < data + size)
        FUZZ_ASSERT((size_t)a->count * itemsize <= (size_t)(data + size - p));
    for (i = 0; i < a->count; i++)
        sum += fmt_get_double(a, i);
    (void)sum;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fmt_array a;
    char err[FMT_ERROR_SIZE];
    err[0] = '\0';
    if (npy_parse(data, size, "fuzz.npy", &a, err, sizeof err) == 0) {
        touch_elements(&a, data, size);
        FUZZ_ASSERT(fmt_make_row_major(&a, err, sizeof err) == 0 || err[0] != '\0');
        if (a.row_major)
            touch_elements(&a, data, size);
        fmt_free(&a);
    } else {
        /* Every refusal explains itself, naming the source. */
        FUZZ_ASSERT(strncmp(err, "fuzz.npy: ", 10) == 0);
    }
    return 0;
}
