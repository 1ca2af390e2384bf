/*
 * libnll — the negative log-likelihood family of losses (log_softmax, nll_loss, cross_entropy),
 * forward and backward, with PyTorch's semantics and errors that say exactly what is wrong.
 *
 * This header is the whole public API; what is not here is not API.
 *
 * Conventions
 * -----------
 * Tensors are DLPack DLTensors, inputs and caller-allocated outputs alike: data, device, dtype
 * {code, bits, lanes = 1}, ndim, shape, strides in elements (NULL = compact row-major) and
 * byte_offset. Any strides are accepted (contiguous is the fast path); 64-bit indexing
 * throughout. Devices: kDLCPU and kDLCUDAHost (pinned host memory) on the CPU; with the CUDA
 * backend also kDLCUDA and kDLCUDAManaged, computed on that GPU (see "CUDA" below). All
 * tensors of one call live on one device.
 *
 * Shapes, following torch.nn.functional:
 *   input   (C), (N, C) or (N, C, d1, ..., dk)      class axis: dim 0 for 1-D input, else dim 1
 *   target  class indices: () for (C) input, (N) or (N, d1, ..., dk) otherwise
 *           probabilities (cross_entropy only): the input's exact shape, floating point
 *   weight  (C), the input's dtype, optional
 *   loss    reduction NONE: the target's shape (for probability targets: the input's shape
 *           without the class axis); MEAN and SUM: 0-d (a 1-element tensor is also accepted)
 * Every input element at position (n, c, d...) is a logit (cross_entropy) or a
 * log-probability (nll_loss). Each (n, d...) is a "sample".
 *
 * Dtypes: input, weight and outputs are float64, float32, float16 or bfloat16, all the same
 * dtype. 16-bit inputs are computed in float32 and each result is rounded once. Reductions
 * over samples accumulate in float64 in a fixed order, so results are deterministic.
 * Class-index targets may be any integer dtype of 8 to 64 bits, signed or unsigned.
 *
 * Validation: every argument is checked before any output is written. A call that returns
 * anything but NLL_OK leaves every output byte as it was; nll_last_error() then holds a message
 * naming the tensor, the element (flat index and multi-index), the offending value and the
 * likely fix, and nll_last_error_detail() the same facts as fields.
 *
 * Threads: a context may be used by one thread at a time; separate contexts are independent.
 * Inputs may be shared read-only between threads. A call on a context that another thread's
 * call is using (every op, nll_context_set_*, nll_context_sync) returns NLL_ERROR_CONTEXT_BUSY
 * at once and changes nothing: no output, no setting, and not the error record, which belongs
 * to the call in progress (nll_last_error() still shows that call's message, so take the
 * busy call's message from nll_status_string(NLL_ERROR_CONTEXT_BUSY)). The check is a cheap
 * guard, not a lock: use one context per thread. The getters (nll_last_error, ...) and
 * nll_context_destroy are not guarded. The library never prints, aborts or exits and holds no
 * global mutable state.
 *
 * fork(): a context's worker threads belong to the process that started them. In a child,
 * calls on an inherited context start workers of their own, and nll_context_destroy frees it
 * without waiting for the parent's; the parent is unaffected. (A context that was inside a
 * call on another thread at the moment of fork() stays busy in the child: destroy it, or just
 * leave it, and create a new one.)
 */
#ifndef NLL_H
#define NLL_H

#include <stddef.h>
#include <stdint.h>

#include <dlpack/dlpack.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(_WIN32) && defined(NLL_BUILDING_SHARED)
#define NLL_API __declspec(dllexport)
#elif defined(__GNUC__) || defined(__clang__)
#define NLL_API __attribute__((visibility("default")))
#else
#define NLL_API
#endif

#define NLL_VERSION_MAJOR 0
#define NLL_VERSION_MINOR 1
#define NLL_VERSION_PATCH 0
#define NLL_VERSION_NUMBER (NLL_VERSION_MAJOR * 10000 + NLL_VERSION_MINOR * 100 + NLL_VERSION_PATCH)
#define NLL_VERSION_STRING "0.1.0"

/* The version of the library actually linked: compare with NLL_VERSION_NUMBER. */
NLL_API unsigned nll_version_number(void);
NLL_API const char *nll_version_string(void);

/* The largest ndim accepted for any tensor. */
#define NLL_MAX_DIMS 16

/* Status codes. Numbers are fixed and the list is append-only: a code never changes meaning. */
typedef enum nll_status {
    NLL_OK = 0,

    /* Arguments and options (1..19) */
    NLL_ERROR_NULL_ARGUMENT = 1,      /* a required pointer (context, tensor, options) is NULL */
    NLL_ERROR_INVALID_REDUCTION = 2,  /* reduction is not NONE, MEAN or SUM */
    NLL_ERROR_LABEL_SMOOTHING = 3,    /* label_smoothing outside [0, 1], NaN, or given to nll_loss */
    NLL_ERROR_IGNORE_INDEX = 4,       /* ignore_index >= 0 with probability targets */
    NLL_ERROR_INVALID_FLAGS = 5,      /* unknown bits in nll_options.flags */
    NLL_ERROR_INVALID_DIM = 6,        /* log_softmax dim outside [-ndim, ndim) */

    /* Shapes and layout (20..39) */
    NLL_ERROR_INPUT_RANK = 20,        /* input is 0-d, or has more than NLL_MAX_DIMS dims */
    NLL_ERROR_TARGET_SHAPE = 21,      /* target's shape does not fit the input's */
    NLL_ERROR_PROBABILITY_SHAPE = 22, /* a floating target meant as probabilities, wrong shape */
    NLL_ERROR_WEIGHT_SHAPE = 23,      /* weight is not 1-D of length C */
    NLL_ERROR_OUTPUT_SHAPE = 24,      /* an output (or grad_loss) has the wrong shape */
    NLL_ERROR_NEGATIVE_SIZE = 25,     /* a dimension is negative */
    NLL_ERROR_SIZE_OVERFLOW = 26,     /* element count or byte extent overflows int64 */
    NLL_ERROR_NULL_DATA = 27,         /* data is NULL while the tensor has elements */
    NLL_ERROR_OVERLAP = 28,           /* an output overlaps an input or another output, or itself */

    /* Dtypes (40..59) */
    NLL_ERROR_INPUT_DTYPE = 40,       /* input is not float64/32/16 or bfloat16 */
    NLL_ERROR_FLOAT_TARGET = 41,      /* floating target where class indices are expected */
    NLL_ERROR_TARGET_DTYPE = 42,      /* target dtype unusable (bool, complex, ...) */
    NLL_ERROR_WEIGHT_DTYPE = 43,      /* weight dtype differs from the input's */
    NLL_ERROR_OUTPUT_DTYPE = 44,      /* an output (or grad_loss) dtype differs from the input's */
    NLL_ERROR_UNSUPPORTED_DTYPE = 45, /* vector lanes != 1, or an unknown dtype code */

    /* Values (60..79) */
    NLL_ERROR_TARGET_RANGE = 60,      /* a class index outside [0, C) that is not ignore_index */
    NLL_ERROR_TARGET_NOT_WHOLE = 61,  /* NLL_ALLOW_FLOAT_TARGETS: a value not finite and whole */
    NLL_ERROR_NONFINITE = 62,         /* NLL_CHECK_FINITE: NaN or +inf in the input */

    /* Devices (80..99) */
    NLL_ERROR_UNSUPPORTED_DEVICE = 80, /* a tensor's device is not served by this build */
    NLL_ERROR_DEVICE_MISMATCH = 81,    /* tensors of one call on different devices */
    NLL_ERROR_CUDA = 82,               /* no usable GPU, or the CUDA runtime failed */

    /* Resources (100..) */
    NLL_ERROR_OUT_OF_MEMORY = 100,
    NLL_ERROR_INVALID_THREADS = 101,   /* a negative thread count */
    NLL_ERROR_INVALID_ARCH = 102,      /* nll_context_set_arch: an unknown name */
    NLL_ERROR_CONTEXT_BUSY = 103       /* the context is in a call on another thread (see
                                          "Threads" above): use one context per thread */
} nll_status;

/* The constant name of a status ("NLL_ERROR_TARGET_RANGE"); never NULL. */
NLL_API const char *nll_status_name(nll_status status);
/* A short description of a status ("target outside the class range"); never NULL. */
NLL_API const char *nll_status_string(nll_status status);

/* ---------------------------------------------------------------------------------------- */
/* Context */

typedef struct nll_context nll_context;

/* Creates a context with default settings (threads = 1). *out is NULL on failure. */
NLL_API nll_status nll_context_create(nll_context **out);
/* Frees a context; NULL is a no-op. */
NLL_API void nll_context_destroy(nll_context *ctx);
/* Sets the number of worker threads; 0 means one per online CPU. The thread count never
 * changes a result: reductions run in a fixed order. */
NLL_API nll_status nll_context_set_threads(nll_context *ctx, int threads);
NLL_API int nll_context_threads(const nll_context *ctx);

/* The instruction set the context's kernels use: "avx512bf16" (AVX-512 with its bfloat16
 * conversions), "avx512", "avx2" or "ref" (the portable scalar reference). A new context takes
 * the best one the CPU has, or a lower one named by the environment variable NLL_ARCH. Asking
 * for one the CPU lacks gives the best it has; an unknown name is NLL_ERROR_INVALID_ARCH.
 * Results agree across instruction sets within rounding; for one instruction set they are
 * bitwise reproducible. */
NLL_API nll_status nll_context_set_arch(nll_context *ctx, const char *arch);
NLL_API const char *nll_context_arch(const nll_context *ctx);

/* The full message of the last failed call on this context, or "" after a successful one.
 * Valid until the next call on the context. Never NULL (a NULL ctx gives a fixed text). */
NLL_API const char *nll_last_error(const nll_context *ctx);

/* The facts behind the last error, for programs that act on them. */
typedef struct nll_error_detail {
    nll_status status;
    const char *function;          /* "nll_loss_forward", ... */
    const char *tensor;            /* "input", "target", "weight", "loss", ...; "" if none */
    int64_t flat_index;            /* row-major flat position of the element, -1 if none */
    int ndim;                      /* entries used in index[] (0 when flat_index is -1) */
    int64_t index[NLL_MAX_DIMS];   /* the element's multi-index */
    double value;                  /* the offending value (NaN if none) */
    int64_t count;                 /* how many elements are bad, -1 if not counted */
} nll_error_detail;

NLL_API nll_status nll_last_error_detail(const nll_context *ctx, nll_error_detail *out);

/* ---------------------------------------------------------------------------------------- */
/* CUDA
 *
 * Tensors on kDLCUDA (or kDLCUDAManaged) devices run on that GPU, on the context's stream, with
 * the same validation and messages as on the CPU. Checks that need the values (target range,
 * whole floating targets under NLL_ALLOW_FLOAT_TARGETS, NLL_CHECK_FINITE) run in kernels; a
 * rejected call writes no output, and the next call works: no device-side assert, the CUDA
 * context stays usable. Everything known from the tensors' descriptors is refused by the call
 * itself, in every mode, before the device is used: a floating class-index target without
 * NLL_ALLOW_FLOAT_TARGETS is NLL_ERROR_FLOAT_TARGET at once, with the CPU's message up to its
 * facts about the values ("target has dtype float32, but class indices must be integers"),
 * which are not read on the GPU, then both of the CPU's fixes.
 *
 * By default a call returns once the GPU has finished it, so its status is final. In
 * asynchronous mode a call returns after queueing its kernels and a value error is reported by
 * the next nll_context_sync; the context then skips the kernels of every later call until that
 * sync, so nothing computes on the outputs a rejected call left unwritten. Calls can be
 * captured in a CUDA graph; while a stream is being captured they behave as in asynchronous
 * mode (make one uncaptured call on the device first: it allocates the context's workspace).
 *
 * Each context holds a small workspace per device, made on its first call there, with an event
 * and a stream of its own (for nll_context_sync); if making them fails, that call returns
 * NLL_ERROR_CUDA and the next call tries again. The work of one context on one device runs in
 * order, whatever the streams: a call on another stream than the previous one waits for it (an
 * event, not a host wait), and so do graphs: a captured call puts that wait into the graph,
 * and its record, as external event nodes, so each replay waits for the context's work on the
 * device launched before it (calls and other replays, on any stream) and the work launched
 * after it waits for the replay; within one capture, a call on another captured stream than
 * the previous captured call waits for it. So no replay races an uncaptured call on the shared
 * workspace. A graph captured from a context uses its workspace and event: do not replay it
 * after nll_context_destroy. */

/* 1 when this build has the CUDA backend and a GPU is visible, else 0. */
NLL_API int nll_cuda_available(void);
/* The cudaStream_t the context's GPU work goes to; NULL (the default) is the legacy default
 * stream. The context never creates or destroys this stream. */
NLL_API nll_status nll_context_set_cuda_stream(nll_context *ctx, void *stream);
NLL_API void *nll_context_cuda_stream(const nll_context *ctx);
/* async = 1: GPU calls do not wait for the GPU (see above); 0: they do (the default). Errors
 * known without the values (dtypes, shapes, devices) come from the call in either mode. */
NLL_API nll_status nll_context_set_async(nll_context *ctx, int async);
/* Waits for the context's GPU work on every device it has used, each on that device's own
 * stream (the context's stream may belong to another device), including the replays of its
 * graphs launched before the sync; then reports the first value error of an asynchronous or
 * captured call since the last sync (its message as the call itself would have given it) and
 * clears it. NLL_OK when there was none, or without the CUDA backend. */
NLL_API nll_status nll_context_sync(nll_context *ctx);

/* ---------------------------------------------------------------------------------------- */
/* Options */

/* Numbered as torch.nn._reduction's enum. */
typedef enum nll_reduction {
    NLL_REDUCTION_NONE = 0,
    NLL_REDUCTION_MEAN = 1,
    NLL_REDUCTION_SUM = 2
} nll_reduction;

/* Scan the input (and a probability target) for NaN and +inf before computing; the first in
 * row-major order is reported as NLL_ERROR_NONFINITE. -inf is accepted: a masked logit, the
 * log-probability of zero. */
#define NLL_CHECK_FINITE 0x1u
/* Accept a floating class-index target after checking that every value is finite and whole
 * (else NLL_ERROR_TARGET_NOT_WHOLE naming the first); the values are then used as indices. */
#define NLL_ALLOW_FLOAT_TARGETS 0x2u

typedef struct nll_options {
    nll_reduction reduction; /* default NLL_REDUCTION_MEAN */
    int64_t ignore_index;    /* default -100; targets equal to it add nothing, any int64 */
    double label_smoothing;  /* cross_entropy only, in [0, 1]; default 0 */
    const DLTensor *weight;  /* optional per-class weight, shape (C), the input's dtype */
    unsigned flags;          /* NLL_CHECK_FINITE | NLL_ALLOW_FLOAT_TARGETS */
} nll_options;

/* { MEAN, -100, 0.0, NULL, 0 }: torch.nn.functional's defaults. */
NLL_API nll_options nll_options_default(void);

/* ---------------------------------------------------------------------------------------- */
/* log_softmax along one dimension: y = (x - max) - log(sum(exp(x - max))).
 * dim may be negative (counted from the end). A row of all -inf, or holding NaN or +inf,
 * gives NaN throughout, as in PyTorch. output: the input's shape and dtype; it may be the
 * input itself (same data, byte_offset, strides) for an in-place call. */
NLL_API nll_status nll_log_softmax_forward(nll_context *ctx, const DLTensor *input, int64_t dim,
                                           DLTensor *output);

/* Gradient of log_softmax: grad_input = grad_output - exp(output) * sum(grad_output) along
 * dim, where output is log_softmax's result. grad_input may be grad_output itself. */
NLL_API nll_status nll_log_softmax_backward(nll_context *ctx, const DLTensor *grad_output,
                                            const DLTensor *output, int64_t dim,
                                            DLTensor *grad_input);

/* ---------------------------------------------------------------------------------------- */
/* nll_loss on log-probabilities: loss_i = -w[t_i] * input[i, t_i] for t_i != ignore_index,
 * 0 for ignored samples. MEAN divides the sum by W = sum of w[t_i] over non-ignored samples
 * (their count without weight): NaN when W is 0 (empty batch, every target ignored).
 * total_weight (optional, 0-d, the input's dtype) receives W; 0 for NONE as in PyTorch
 * (w[t] for a 1-D input). label_smoothing must be 0. */
NLL_API nll_status nll_loss_forward(nll_context *ctx, const DLTensor *input,
                                    const DLTensor *target, const nll_options *options,
                                    DLTensor *loss, DLTensor *total_weight);

/* Gradient of nll_loss with respect to the input: zero except -w[t_i] * g_i (/ W for MEAN) at
 * each non-ignored [i, t_i]. grad_loss: NULL (meaning 1), 0-d, or for NONE the target's
 * shape. grad_input: the input's shape and dtype. */
NLL_API nll_status nll_loss_backward(nll_context *ctx, const DLTensor *grad_loss,
                                     const DLTensor *input, const DLTensor *target,
                                     const nll_options *options, DLTensor *grad_input);

/* ---------------------------------------------------------------------------------------- */
/* cross_entropy on logits = nll_loss(log_softmax(input, class axis)), with PyTorch's rules:
 *  - class-index targets: label_smoothing e gives (1 - e) * nll + (e / C) * smooth where
 *    smooth_i = -sum_c w[c] * log_softmax(x)[i, c]; MEAN divides both by sum of w[t_i];
 *  - a floating target of the input's exact shape holds class probabilities q (smoothed to
 *    q * (1 - e) + e / C): loss_i = -sum_c w[c] * q[i, c] * log_softmax(x)[i, c]; MEAN divides
 *    by the number of samples (not by the weights); ignore_index must be negative; the target
 *    must have the input's dtype.
 * A floating target of another shape is NLL_ERROR_FLOAT_TARGET (or, with the input's rank,
 * NLL_ERROR_PROBABILITY_SHAPE) unless NLL_ALLOW_FLOAT_TARGETS is set. */
NLL_API nll_status nll_cross_entropy_forward(nll_context *ctx, const DLTensor *input,
                                             const DLTensor *target, const nll_options *options,
                                             DLTensor *loss);

/* Gradient of cross_entropy with respect to the logits, for upstream grad_loss (NULL means 1;
 * 0-d; or for NONE the loss's shape). grad_input may be the input itself (in place). As in
 * PyTorch, a row whose softmax is NaN (all -inf, NaN or +inf logits) gets a NaN gradient even
 * when its target is ignored. */
NLL_API nll_status nll_cross_entropy_backward(nll_context *ctx, const DLTensor *grad_loss,
                                              const DLTensor *input, const DLTensor *target,
                                              const nll_options *options,
                                              DLTensor *grad_input);

/* Loss and gradient in one pass over the logits: loss as nll_cross_entropy_forward, and
 * grad_input as nll_cross_entropy_backward with grad_loss = 1 (for NONE: the gradient of the
 * summed loss). grad_input may be the input itself, so the logits become their gradient. */
NLL_API nll_status nll_cross_entropy_fused(nll_context *ctx, const DLTensor *input,
                                           const DLTensor *target, const nll_options *options,
                                           DLTensor *loss, DLTensor *grad_input);

#ifdef __cplusplus
}
#endif

#endif /* NLL_H */
