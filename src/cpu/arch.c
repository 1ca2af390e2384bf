/* Which instruction set a context runs: the best the CPU has, found by cpuid when the context
 * is created, or a lower one that NLL_ARCH (ref, avx2, avx512, avx512bf16) or
 * nll_context_set_arch asks for, so tests can run every path the machine has. */
#include <string.h>

#include "../internal.h"

static const char *const arch_names[] = {"ref", "avx2", "avx512", "avx512bf16"};

const char *nll_arch_name(nll_arch arch) { return arch_names[arch]; }

nll_arch nll_arch_best(void) {
    nll_arch best = NLL_ARCH_REF;
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
    __builtin_cpu_init();
#if defined(NLL_HAVE_AVX2)
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
        best = NLL_ARCH_AVX2;
#endif
#if defined(NLL_HAVE_AVX512)
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
        __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq"))
        best = NLL_ARCH_AVX512;
#endif
#if defined(NLL_HAVE_AVX512_BF16)
    if (best == NLL_ARCH_AVX512 && __builtin_cpu_supports("avx512bf16"))
        best = NLL_ARCH_AVX512_BF16;
#endif
#endif
    return best;
}

/* An unknown name leaves fallback; a known one is capped at what the CPU has. */
nll_arch nll_arch_from_name(const char *name, nll_arch fallback) {
    if (!name)
        return fallback;
    for (int a = NLL_ARCH_REF; a <= NLL_ARCH_AVX512_BF16; a++)
        if (strcmp(name, arch_names[a]) == 0) {
            nll_arch best = nll_arch_best();
            return (nll_arch)a < best ? (nll_arch)a : best;
        }
    return fallback;
}

const nll_loss_kernels *nll_kernels_for(nll_arch arch, nll_float_kind kind) {
#if defined(NLL_HAVE_AVX512_BF16)
    if (arch >= NLL_ARCH_AVX512_BF16 && nll_avx512_bf16_kernels[kind].cross_entropy)
        return &nll_avx512_bf16_kernels[kind];
#endif
#if defined(NLL_HAVE_AVX512)
    if (arch >= NLL_ARCH_AVX512 && nll_avx512_kernels[kind].cross_entropy)
        return &nll_avx512_kernels[kind];
#endif
#if defined(NLL_HAVE_AVX2)
    if (arch >= NLL_ARCH_AVX2 && nll_avx2_kernels[kind].cross_entropy)
        return &nll_avx2_kernels[kind];
#endif
    (void)arch;
    return &nll_ref_kernels[kind];
}
