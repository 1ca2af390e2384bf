/* fuzz_safetensors — the .safetensors reader (tools/safetensors.c: the header through cJSON,
 * then every tensor's offsets) on arbitrary bytes: a tensor or a message, never a crash, and
 * an accepted tensor's bytes lie inside the input. */
#include <string.h>

#include "formats.h"
#include "fuzz.h"

static void touch_elements(const fmt_array *a, const uint8_t *data, size_t size)
{
    const uint8_t *p = a->data;
    int64_t i;
    double sum = 0.0;
    FUZZ_ASSERT(a->count >= 0 && (a->count == 0 || a->data != NULL));
    if (a->count > 0 && p >= data && p < data + size)
        FUZZ_ASSERT((size_t)a->count * fmt_itemsize(a->dtype) <= (size_t)(data + size - p));
    for (i = 0; i < a->count; i++)
        sum += fmt_get_double(a, i);
    (void)sum;
}

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
        touch_elements(&a, data, size);
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
