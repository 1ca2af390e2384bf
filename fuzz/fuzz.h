/* fuzz.h — what every harness in fuzz/ shares: the libFuzzer entry point's prototype (the
 * harness defines it; libFuzzer or fuzz/replay.c calls it) and an assertion that stays on in
 * every build, so that a broken invariant is a crash both under libFuzzer and in a replay. */
#ifndef NLL_FUZZ_H
#define NLL_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_ASSERT(cond)                                                                      \
    do {                                                                                       \
        if (!(cond)) {                                                                         \
            fprintf(stderr, "%s:%d: fuzz invariant failed: %s\n", __FILE__, __LINE__, #cond);  \
            abort();                                                                           \
        }                                                                                      \
    } while (0)

#endif /* NLL_FUZZ_H */
