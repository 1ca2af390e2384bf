/* fuzz_safetensors — the .safetensors reader (tools/safetensors.c: the header through cJSON,
 * then every tensor's offsets) on arbitrary bytes: a tensor or a message, never a crash, and
 * an accepted tensor's bytes lie inside the input. */
#include <string.h>

#include "fuzz_formats.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fmt_array a;
    char err[FMT_ERROR_SIZE];
    int64_t count = 0, i;

    err[0] = '\0';
    if (safetensors_count(data, size, "fuzz.safetensors", &count, err, sizeof err) != 0) {
        FUZZ_ASSERT(strncmp(err, "fuzz.safetensors: ", 18) == 0);
        return 0;
    }
    FUZZ_ASSERT(count >= 0);
    for (i = 0; i < count && i < 8; i++) {
        FUZZ_ASSERT(safetensors_parse(data, size, "fuzz.safetensors", NULL, i, &a, err,
                                      sizeof err) == 0);
        fuzz_touch_array(&a, data, size);
        fmt_free(&a);
    }
    /* The default rule: the only tensor, or a message naming them. */
    if (safetensors_parse(data, size, "fuzz.safetensors", NULL, -1, &a, err, sizeof err) == 0) {
        FUZZ_ASSERT(count == 1);
        fmt_free(&a);
    } else {
        FUZZ_ASSERT(count != 1);
    }
    return 0;
}
