/* fuzz_npz — the .npz reader (tools/npz.c: libzip, then the .npy reader on the member) on
 * arbitrary bytes: parsed arrays or messages, never a crash, and no member may make the reader
 * allocate more than deflate's expansion limit allows. */
#include <string.h>

#include "fuzz_formats.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fmt_array a;
    char err[FMT_ERROR_SIZE];
    int64_t count = 0, i;

    err[0] = '\0';
    if (npz_member_count(data, size, "fuzz.npz", &count, err, sizeof err) != 0) {
        FUZZ_ASSERT(strncmp(err, "fuzz.npz", 8) == 0);
        return 0;
    }
    FUZZ_ASSERT(count >= 0);
    /* The only member, by the default rule; then each of the first few by number. */
    if (npz_parse(data, size, "fuzz.npz", NULL, -1, &a, err, sizeof err) == 0) {
        FUZZ_ASSERT(count == 1);
        fuzz_touch_array(&a, data, size);
        fmt_free(&a);
    }
    for (i = 0; i < count && i < 4; i++) {
        err[0] = '\0';
        if (npz_parse(data, size, "fuzz.npz", NULL, i, &a, err, sizeof err) == 0) {
            fuzz_touch_array(&a, data, size);
            fmt_free(&a);
        } else {
            FUZZ_ASSERT(strncmp(err, "fuzz.npz", 8) == 0);
        }
    }
    /* A member asked for by a name it may or may not have. */
    if (npz_parse(data, size, "fuzz.npz", "x", -1, &a, err, sizeof err) == 0)
        fmt_free(&a);
    return 0;
}
