/* Context, status tables, the error record, options and version. */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"

unsigned nll_version_number(void) { return NLL_VERSION_NUMBER; }
const char *nll_version_string(void) { return NLL_VERSION_STRING; }

typedef struct status_entry {
    nll_status status;
    const char *name;
    const char *text;
} status_entry;

/* One table for every status: its constant name and a short description. */
static const status_entry status_table[] = {
    {NLL_OK, "NLL_OK", "success"},
    {NLL_ERROR_NULL_ARGUMENT, "NLL_ERROR_NULL_ARGUMENT", "a required argument is NULL"},
    {NLL_ERROR_INVALID_REDUCTION, "NLL_ERROR_INVALID_REDUCTION", "unknown reduction"},
    {NLL_ERROR_LABEL_SMOOTHING, "NLL_ERROR_LABEL_SMOOTHING", "label_smoothing outside [0, 1]"},
    {NLL_ERROR_IGNORE_INDEX, "NLL_ERROR_IGNORE_INDEX",
     "ignore_index cannot be used with probability targets"},
    {NLL_ERROR_INVALID_FLAGS, "NLL_ERROR_INVALID_FLAGS", "unknown option flags"},
    {NLL_ERROR_INVALID_DIM, "NLL_ERROR_INVALID_DIM", "dimension out of range"},
    {NLL_ERROR_INPUT_RANK, "NLL_ERROR_INPUT_RANK", "input has an unsupported number of dimensions"},
    {NLL_ERROR_TARGET_SHAPE, "NLL_ERROR_TARGET_SHAPE", "target shape does not match the input"},
    {NLL_ERROR_PROBABILITY_SHAPE, "NLL_ERROR_PROBABILITY_SHAPE",
     "probability target shape differs from the input's"},
    {NLL_ERROR_WEIGHT_SHAPE, "NLL_ERROR_WEIGHT_SHAPE", "weight is not one value per class"},
    {NLL_ERROR_OUTPUT_SHAPE, "NLL_ERROR_OUTPUT_SHAPE", "an output has the wrong shape"},
    {NLL_ERROR_NEGATIVE_SIZE, "NLL_ERROR_NEGATIVE_SIZE", "a dimension is negative"},
    {NLL_ERROR_SIZE_OVERFLOW, "NLL_ERROR_SIZE_OVERFLOW", "tensor size overflows int64"},
    {NLL_ERROR_NULL_DATA, "NLL_ERROR_NULL_DATA", "NULL data for a non-empty tensor"},
    {NLL_ERROR_OVERLAP, "NLL_ERROR_OVERLAP", "an output overlaps another tensor"},
    {NLL_ERROR_INPUT_DTYPE, "NLL_ERROR_INPUT_DTYPE", "input dtype not supported"},
    {NLL_ERROR_FLOAT_TARGET, "NLL_ERROR_FLOAT_TARGET",
     "floating-point target where class indices are expected"},
    {NLL_ERROR_TARGET_DTYPE, "NLL_ERROR_TARGET_DTYPE", "target dtype not supported"},
    {NLL_ERROR_WEIGHT_DTYPE, "NLL_ERROR_WEIGHT_DTYPE", "weight dtype differs from the input's"},
    {NLL_ERROR_OUTPUT_DTYPE, "NLL_ERROR_OUTPUT_DTYPE", "output dtype differs from the input's"},
    {NLL_ERROR_UNSUPPORTED_DTYPE, "NLL_ERROR_UNSUPPORTED_DTYPE", "unknown or vector dtype"},
    {NLL_ERROR_TARGET_RANGE, "NLL_ERROR_TARGET_RANGE", "target outside the class range"},
    {NLL_ERROR_TARGET_NOT_WHOLE, "NLL_ERROR_TARGET_NOT_WHOLE",
     "floating-point target value is not a whole number"},
    {NLL_ERROR_NONFINITE, "NLL_ERROR_NONFINITE", "NaN or +inf in the input"},
    {NLL_ERROR_UNSUPPORTED_DEVICE, "NLL_ERROR_UNSUPPORTED_DEVICE",
     "device not served by this build"},
    {NLL_ERROR_DEVICE_MISMATCH, "NLL_ERROR_DEVICE_MISMATCH", "tensors on different devices"},
    {NLL_ERROR_CUDA, "NLL_ERROR_CUDA", "no usable GPU, or the CUDA runtime failed"},
    {NLL_ERROR_OUT_OF_MEMORY, "NLL_ERROR_OUT_OF_MEMORY", "out of memory"},
    {NLL_ERROR_INVALID_THREADS, "NLL_ERROR_INVALID_THREADS", "invalid thread count"},
    {NLL_ERROR_INVALID_ARCH, "NLL_ERROR_INVALID_ARCH", "unknown instruction-set name"},
    {NLL_ERROR_CONTEXT_BUSY, "NLL_ERROR_CONTEXT_BUSY",
     "the context is in a call on another thread: use one context per thread"},
};

/* The CUDA sources see the busy flag as a plain int (src/internal.h): same layout. */
_Static_assert(sizeof(nll_busy_flag) == sizeof(int) && _Alignof(nll_busy_flag) == _Alignof(int),
               "atomic_int must be laid out as an int");

static const status_entry *find_status(nll_status status) {
    for (size_t i = 0; i < sizeof status_table / sizeof status_table[0]; i++)
        if (status_table[i].status == status)
            return &status_table[i];
    return NULL;
}

const char *nll_status_name(nll_status status) {
    const status_entry *entry = find_status(status);
    return entry ? entry->name : "NLL_ERROR_UNKNOWN";
}

const char *nll_status_string(nll_status status) {
    const status_entry *entry = find_status(status);
    return entry ? entry->text : "unknown status";
}

static void reset_detail(nll_error_detail *detail) {
    memset(detail, 0, sizeof *detail);
    detail->status = NLL_OK;
    detail->function = "";
    detail->tensor = "";
    detail->flat_index = -1;
    detail->value = NAN;
    detail->count = -1;
}

void nll_clear_error(nll_context *ctx) {
    ctx->message[0] = '\0';
    reset_detail(&ctx->detail);
}

nll_status nll_context_create(nll_context **out) {
    if (!out)
        return NLL_ERROR_NULL_ARGUMENT;
    *out = NULL;
    nll_context *ctx = calloc(1, sizeof *ctx);
    if (ctx)
        ctx->pool = nll_pool_create(); /* no threads yet */
    if (!ctx || !ctx->pool) {
        free(ctx);
        return NLL_ERROR_OUT_OF_MEMORY;
    }
    atomic_init(&ctx->busy, 0);
    ctx->threads = 1;
    ctx->arch = nll_arch_from_name(getenv("NLL_ARCH"), nll_arch_best());
    nll_clear_error(ctx);
    *out = ctx;
    return NLL_OK;
}

void nll_context_destroy(nll_context *ctx) {
    if (!ctx)
        return;
    nll_cuda_release(ctx);
    nll_pool_destroy(ctx->pool);
    free(ctx);
}

/* The setters and sync take the context as the ops do (src/ops.c): a busy context changes
 * nothing, its error record included. */
#define NLL_TAKE_CONTEXT(ctx)                                                                  \
    if (!(ctx))                                                                                \
        return NLL_ERROR_NULL_ARGUMENT;                                                        \
    if (nll_context_enter(ctx) != NLL_OK)                                                      \
        return NLL_ERROR_CONTEXT_BUSY

nll_status nll_context_set_cuda_stream(nll_context *ctx, void *stream) {
    NLL_TAKE_CONTEXT(ctx);
    ctx->cuda_stream = stream;
    nll_context_leave(ctx);
    return NLL_OK;
}

void *nll_context_cuda_stream(const nll_context *ctx) { return ctx ? ctx->cuda_stream : NULL; }

nll_status nll_context_set_async(nll_context *ctx, int async) {
    NLL_TAKE_CONTEXT(ctx);
    ctx->cuda_async = async != 0;
    nll_context_leave(ctx);
    return NLL_OK;
}

nll_status nll_context_sync(nll_context *ctx) {
    NLL_TAKE_CONTEXT(ctx);
    nll_clear_error(ctx);
    const nll_call call = {ctx, "nll_context_sync"};
    const nll_status status = nll_cuda_sync(&call);
    nll_context_leave(ctx);
    return status;
}

static nll_status set_threads(nll_context *ctx, int threads) {
    nll_call call = {ctx, "nll_context_set_threads"};
    nll_clear_error(ctx);
    if (threads < 0)
        return nll_fail(&call, NLL_ERROR_INVALID_THREADS, "",
                        "threads = %d is negative; pass 0 for one thread per CPU", threads);
    if (threads == 0) {
        long online = sysconf(_SC_NPROCESSORS_ONLN);
        threads = online > 0 ? (int)online : 1;
    }
    ctx->threads = threads;
    return NLL_OK;
}

nll_status nll_context_set_threads(nll_context *ctx, int threads) {
    NLL_TAKE_CONTEXT(ctx);
    const nll_status status = set_threads(ctx, threads);
    nll_context_leave(ctx);
    return status;
}

int nll_context_threads(const nll_context *ctx) { return ctx ? ctx->threads : 0; }

static nll_status set_arch(nll_context *ctx, const char *arch) {
    nll_call call = {ctx, "nll_context_set_arch"};
    nll_clear_error(ctx);
    if (!arch)
        return nll_fail(&call, NLL_ERROR_NULL_ARGUMENT, "", "arch is NULL");
    if (nll_arch_from_name(arch, (nll_arch)-1) == (nll_arch)-1)
        return nll_fail(&call, NLL_ERROR_INVALID_ARCH, "",
                        "arch = \"%s\" is not one of \"ref\", \"avx2\", \"avx512\", "
                        "\"avx512bf16\"",
                        arch);
    ctx->arch = nll_arch_from_name(arch, NLL_ARCH_REF);
    return NLL_OK;
}

nll_status nll_context_set_arch(nll_context *ctx, const char *arch) {
    NLL_TAKE_CONTEXT(ctx);
    const nll_status status = set_arch(ctx, arch);
    nll_context_leave(ctx);
    return status;
}

const char *nll_context_arch(const nll_context *ctx) {
    return ctx ? nll_arch_name(ctx->arch) : "";
}

const char *nll_last_error(const nll_context *ctx) {
    return ctx ? ctx->message : "nll_last_error: the context is NULL";
}

nll_status nll_last_error_detail(const nll_context *ctx, nll_error_detail *out) {
    if (!ctx || !out)
        return NLL_ERROR_NULL_ARGUMENT;
    *out = ctx->detail;
    return NLL_OK;
}

nll_options nll_options_default(void) {
    nll_options options;
    memset(&options, 0, sizeof options);
    options.reduction = NLL_REDUCTION_MEAN;
    options.ignore_index = -100;
    options.label_smoothing = 0.0;
    options.weight = NULL;
    options.flags = 0;
    return options;
}

nll_status nll_fail(const nll_call *call, nll_status status, const char *tensor,
                    const char *format, ...) {
    nll_context *ctx = call->ctx;
    reset_detail(&ctx->detail);
    ctx->detail.status = status;
    ctx->detail.function = call->function;
    ctx->detail.tensor = tensor ? tensor : "";
    int used = snprintf(ctx->message, sizeof ctx->message, "%s: ", call->function);
    if (used < 0 || (size_t)used >= sizeof ctx->message)
        return status;
    va_list args;
    va_start(args, format);
    vsnprintf(ctx->message + used, sizeof ctx->message - (size_t)used, format, args);
    va_end(args);
    return status;
}

void nll_fail_position(const nll_call *call, const nll_view *view, int64_t flat, double value,
                       int64_t count) {
    nll_error_detail *detail = &call->ctx->detail;
    char unused[8];
    nll_format_position(unused, sizeof unused, view, flat, detail);
    detail->flat_index = flat;
    detail->value = value;
    detail->count = count;
}
