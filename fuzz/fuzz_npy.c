/* fuzz_npy — the .npy reader (tools/npy.c) on arbitrary bytes: a parsed array or a message,
 * never a crash, and an accepted array's elements all lie inside the input (or in a copy the
 * array owns: byte-swapped or realigned data). */
#include <string.h>

#include "fuzz_formats.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fmt_array a;
    char err[FMT_ERROR_SIZE];
    err[0] = '\0';
    if (npy_parse(data, size, "fuzz.npy", &a, err, sizeof err) == 0) {
        fuzz_touch_array(&a, data, size);
        FUZZ_ASSERT(fmt_make_row_major(&a, err, sizeof err) == 0 || err[0] != '\0');
        if (a.row_major)
            fuzz_touch_array(&a, data, size);
        fmt_free(&a);
    } else {
        /* Every refusal explains itself, naming the source. */
        FUZZ_ASSERT(strncmp(err, "fuzz.npy: ", 10) == 0);
    }
    return 0;
}
