/* Internal declarations shared by the validation layer, the op drivers and the CPU kernels. */
#ifndef NLL_INTERNAL_H
#define NLL_INTERNAL_H

#include <stdarg.h>
#include <stdint.h>

#include "nll.h"

#define NLL_MESSAGE_MAX 1536

/* Instruction sets, in order: a context runs the best one its CPU has (or NLL_ARCH names). */
typedef enum nll_arch {
    NLL_ARCH_REF = 0,
    NLL_ARCH_AVX2 = 1,
    NLL_ARCH_AVX512 = 2,
    NLL_ARCH_AVX512_BF16 = 3 /* AVX-512 with the BF16 extension: bfloat16 rounding in hardware */
} nll_arch;

typedef struct nll_cuda_state nll_cuda_state; /* src/cuda/state.cu; opaque to the core */
typedef struct nll_pool nll_pool;             /* src/parallel.c */

/* The context's "in a call" flag. The CUDA sources (C++, which has no _Atomic) see a plain int
 * of the same size and alignment (checked in context.c) and never touch it. */
#ifdef __cplusplus
typedef int nll_busy_flag;
#else
#include <stdatomic.h>
typedef atomic_int nll_busy_flag;
#endif

struct nll_context {
    nll_busy_flag busy; /* 1 while a call holds the context: nll_context_enter / _leave */
    int threads;
    nll_pool *pool; /* its worker threads, started by the first call that needs them */
    nll_arch arch;
    char message[NLL_MESSAGE_MAX];
    nll_error_detail detail;
    void *cuda_stream;   /* a cudaStream_t; NULL is the default stream */
    int cuda_async;      /* value checks on the GPU are reported by nll_context_sync */
    nll_cuda_state *cuda; /* workspace and status word, made on the first CUDA call */
};

#ifndef __cplusplus
/* Takes the context for one call; NLL_ERROR_CONTEXT_BUSY (nothing touched, not even the error
 * record, which belongs to the call in progress) when another thread's call holds it. One
 * atomic exchange; its acquire pairs with nll_context_leave's release, so a call sees all that
 * the previous one (on whatever thread) wrote to the context and its pool. */
static inline nll_status nll_context_enter(nll_context *ctx) {
    return atomic_exchange_explicit(&ctx->busy, 1, memory_order_acquire) ? NLL_ERROR_CONTEXT_BUSY
                                                                          : NLL_OK;
}
static inline void nll_context_leave(nll_context *ctx) {
    atomic_store_explicit(&ctx->busy, 0, memory_order_release);
}
#endif

/* One public call in progress: where errors go and which function they name. */
typedef struct nll_call {
    nll_context *ctx;
    const char *function;
} nll_call;

/* ---- dtypes ----------------------------------------------------------------------------- */

/* The floating types an input may have; also the kernel instantiation index. */
typedef enum nll_float_kind {
    NLL_KIND_F64 = 0,
    NLL_KIND_F32 = 1,
    NLL_KIND_F16 = 2,
    NLL_KIND_BF16 = 3,
    NLL_KIND_COUNT = 4,
    NLL_KIND_NONE = -1
} nll_float_kind;

#ifndef NLL_DLPACK_BOOL
#define NLL_DLPACK_BOOL 6 /* kDLBool in DLPack >= 0.8; absent from older headers */
#endif

nll_float_kind nll_float_kind_of(DLDataType dtype);
int nll_dtype_is_integer(DLDataType dtype);
/* "float32", "int64", "bool", ...; a static string, or "unknown" */
const char *nll_dtype_name(DLDataType dtype);

/* ---- tensor views ------------------------------------------------------------------------- */

/* A checked DLTensor: strides filled in (in elements), data already advanced by byte_offset. */
typedef struct nll_view {
    const char *name;
    int present;
    char *data;
    DLDataType dtype;
    DLDevice device;
    int ndim;
    int64_t shape[NLL_MAX_DIMS];
    int64_t strides[NLL_MAX_DIMS];
    int64_t numel;
    int64_t item_size;
    /* Byte range [lo, hi) that the elements span, for overlap checks (lo == hi when empty). */
    uintptr_t lo, hi;
} nll_view;

/* Checks a DLTensor's structure (NULL, rank, sizes, dtype lanes, device, NULL data, overflow)
 * and fills *view. tensor may be NULL when optional (view->present = 0). */
nll_status nll_view_make(const nll_call *call, const char *name, const DLTensor *tensor,
                         int optional, nll_view *view);
/* Element pointer for a multi-index-free flat row-major position (slow; for messages). */
char *nll_view_element(const nll_view *view, int64_t flat);
/* "cpu", "cuda:0 (DLPack device type 2)" into buf */
const char *nll_device_name(DLDevice device, char *buf, size_t size);
/* "(3, 5)" into buf */
const char *nll_format_shape(char *buf, size_t size, const int64_t *shape, int ndim);
/* "target[5] (index [1, 2])" into buf; also fills the error detail's index when detail != 0 */
const char *nll_format_position(char *buf, size_t size, const nll_view *view, int64_t flat,
                                nll_error_detail *detail);
int nll_views_overlap(const nll_view *a, const nll_view *b);
int nll_views_identical(const nll_view *a, const nll_view *b);

/* Reads an element as double (floating and integer dtypes, bool). */
double nll_load_as_double(const char *p, DLDataType dtype);
/* Reads a class index; floating values are converted (they were checked whole beforehand)
 * and out-of-int64 values saturate. */
typedef int64_t (*nll_index_loader)(const char *p);
nll_index_loader nll_index_loader_for(DLDataType dtype);

/* ---- errors ------------------------------------------------------------------------------- */

/* Records an error (status, tensor name, message "function: ...") and returns status. */
nll_status nll_fail(const nll_call *call, nll_status status, const char *tensor,
                    const char *format, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 4, 5)))
#endif
    ;
/* Adds an element position, value and count to the error just recorded. */
void nll_fail_position(const nll_call *call, const nll_view *view, int64_t flat, double value,
                       int64_t count);
void nll_clear_error(nll_context *ctx);

/* ---- iteration over every index but one axis ------------------------------------------------ */

#define NLL_ITER_SLOTS 5

/* Walks the positions of a shape in row-major order, keeping each slot's element offset. */
typedef struct nll_iter {
    int ndim;
    int64_t shape[NLL_MAX_DIMS];
    int64_t index[NLL_MAX_DIMS];
    int64_t strides[NLL_ITER_SLOTS][NLL_MAX_DIMS];
    int64_t offset[NLL_ITER_SLOTS];
} nll_iter;

void nll_iter_init(nll_iter *it, const int64_t *shape, int ndim);
/* Sets a slot's strides from a view's, skipping axis skip (-1 for none); an absent view or a
 * 0-d view (broadcast scalar) gives zero strides. */
void nll_iter_slot(nll_iter *it, int slot, const nll_view *view, int skip);
/* Inline: it runs once per row (and per target in validation). */
static inline void nll_iter_next(nll_iter *it) {
    for (int d = it->ndim - 1; d >= 0; d--) {
        if (it->index[d] + 1 < it->shape[d]) {
            it->index[d]++;
            for (int s = 0; s < NLL_ITER_SLOTS; s++)
                it->offset[s] += it->strides[s][d];
            return;
        }
        for (int s = 0; s < NLL_ITER_SLOTS; s++)
            it->offset[s] -= it->strides[s][d] * it->index[d];
        it->index[d] = 0;
    }
}
/* Moves to the row-major position flat (0 <= flat < the shape's element count). */
void nll_iter_seek(nll_iter *it, int64_t flat);

/* ---- threads (parallel.c) ----------------------------------------------------------------- */

#define NLL_BLOCK_WORK (1 << 15) /* elements of work in one block */
#define NLL_MAX_BLOCKS 1024      /* per-block partial sums live in fixed arrays */
#define NLL_MAX_THREADS 256

/* items cut into count blocks of size items (the last may be shorter) */
typedef struct nll_blocks {
    int64_t size, count, items;
} nll_blocks;

/* The items [*begin, *end) of block b. */
static inline void nll_block_range(const nll_blocks *plan, int64_t b, int64_t *begin,
                                   int64_t *end) {
    *begin = b * plan->size;
    *end = plan->items - *begin > plan->size ? *begin + plan->size : plan->items;
}

typedef void (*nll_block_fn)(void *arg, int64_t first_block, int64_t end_block);

nll_blocks nll_plan_blocks(int64_t items, int64_t item_cost);

/* A context's worker threads: none until a call needs them, then kept (idle ones sleep) until
 * nll_pool_destroy, which stops and joins them. Used by one thread at a time. */
nll_pool *nll_pool_create(void); /* NULL when out of memory */
void nll_pool_destroy(nll_pool *pool);

/* Runs fn over contiguous ranges of blocks on up to `threads` threads, the caller's and the
 * pool's (a NULL pool: the caller's alone). */
void nll_parallel_blocks(nll_pool *pool, int threads, const nll_blocks *plan, nll_block_fn fn,
                         void *arg);

/* Each thread past the first is worth it for one block of work (18-27 us of cross_entropy on
 * one core); fewer elements would only cut two blocks unevenly. On a 2-core VM, handing a call
 * to a pool worker that is still polling costs about 3 us (a call on one thread, 0.03 us); to
 * one asleep (calls over 50 us apart), 20-28 us, as much as starting a thread (24-44 us). */
#define NLL_THREAD_WORK NLL_BLOCK_WORK
/* The threads to run `work` elements on, at most `threads`. Blocks do not depend on it, so
 * neither do results. */
int nll_threads_for(int threads, int64_t work);

/* Phases over the same blocks, each thread keeping its range: fn(arg, phase, ...) for phase 0,
 * then between(arg, 0) on one thread once every block of phase 0 is done, then phase 1, ... */
typedef void (*nll_phase_fn)(void *arg, int phase, int64_t first_block, int64_t end_block);
typedef void (*nll_between_fn)(void *arg, int phase);
void nll_parallel_phases(nll_pool *pool, int threads, const nll_blocks *plan, int phases,
                         nll_phase_fn fn, nll_between_fn between, void *arg);

/* ---- resolved problems, handed from validation to kernels --------------------------------- */

typedef enum nll_loss_op { NLL_OP_NLL, NLL_OP_CROSS_ENTROPY } nll_loss_op;

enum { NLL_SLOT_INPUT, NLL_SLOT_TARGET, NLL_SLOT_LOSS, NLL_SLOT_GRAD_LOSS, NLL_SLOT_GRAD };

typedef struct nll_loss_problem {
    int threads;
    nll_pool *pool;        /* the context's, for nll_parallel_* */
    int on_device;         /* CUDA tensors: value checks run on the GPU (src/cuda/) */
    unsigned flags;        /* nll_options.flags */
    nll_loss_op op;
    nll_float_kind kind;
    nll_view input, target, weight, loss, total_weight, grad_loss, grad;
    int class_axis;        /* 0 for 1-D input, else 1 */
    int64_t classes;       /* C */
    int64_t samples;       /* product of the input's dims other than the class axis */
    int probability;       /* cross_entropy with a probability target */
    nll_reduction reduction;
    int64_t ignore_index;
    double label_smoothing;
    nll_index_loader load_index;
    nll_iter samples_iter; /* over the sample positions, slots NLL_SLOT_* */
    int64_t class_stride[NLL_ITER_SLOTS];
} nll_loss_problem;

typedef struct nll_softmax_problem {
    int threads;
    nll_pool *pool;
    int on_device;
    nll_float_kind kind;
    nll_view input, output, grad_output, grad; /* forward: input -> output; backward: grad */
    int axis;
    int64_t classes;
    int64_t rows;          /* positions other than the axis: numel / classes (0 when empty) */
    nll_iter rows_iter;    /* slots: 0 input/output-of-forward, 1 output, 2 grad_output, 3 grad */
    int64_t class_stride[NLL_ITER_SLOTS];
} nll_softmax_problem;

enum { NLL_SM_INPUT, NLL_SM_OUTPUT, NLL_SM_GRAD_OUTPUT, NLL_SM_GRAD };

/* validate.c: every check, for every backend. On NLL_OK the problem is ready for a kernel. */
nll_status nll_validate_loss(const nll_call *call, nll_loss_op op, const DLTensor *input,
                             const DLTensor *target, const nll_options *options,
                             const DLTensor *loss, const DLTensor *total_weight,
                             const DLTensor *grad_loss, const DLTensor *grad,
                             nll_loss_problem *problem);
nll_status nll_validate_softmax(const nll_call *call, const DLTensor *input,
                                const DLTensor *output, const DLTensor *grad_output,
                                const DLTensor *grad, int64_t dim, nll_softmax_problem *problem);

/* ---- value checks: found on the host (CPU tensors) or by a kernel (CUDA tensors), reported
 * by the same code so both backends give the same message --------------------------------- */

/* Class-index targets: which lie outside [0, C) and are not ignore_index. */
typedef struct nll_target_scan {
    int64_t first;            /* flat index of the first bad target, -1 if none */
    int64_t bad, counted;     /* bad targets; targets that are not ignore_index */
    int64_t beyond;           /* bad values beyond int64 (uint64, floating) */
    int64_t min, max;         /* over counted values within int64 (min > max if none) */
    int seen_minus_one, seen_255, only_c_bad;
} nll_target_scan;

/* Floating targets used as class indices: which are not finite whole numbers. */
typedef struct nll_whole_scan {
    int64_t first_bad;        /* -1 if none */
    double first_value;
    int64_t bad_count;
    double min, max;          /* over whole values (min > max if none) */
} nll_whole_scan;

/* NLL_CHECK_FINITE: NaN and +inf. */
typedef struct nll_finite_scan {
    int64_t first;            /* -1 if none */
    double value;
    int64_t count;
} nll_finite_scan;

/* Each records the error on the call and returns its status; first_element holds the first bad
 * target's bytes (item_size of them), read from wherever the target lives. */
nll_status nll_report_target_range(const nll_call *call, const nll_loss_problem *p,
                                   const nll_target_scan *scan, const void *first_element);
nll_status nll_report_float_target(const nll_call *call, nll_loss_op op, const nll_view *target,
                                   const nll_view *input, unsigned flags,
                                   const nll_whole_scan *scan);
nll_status nll_report_nonfinite(const nll_call *call, const nll_view *view,
                                const nll_finite_scan *scan, const char *why);
/* Why -inf is allowed in the input of an op, for the NLL_ERROR_NONFINITE message. */
const char *nll_nonfinite_reason(nll_loss_op op);

/* ---- the CUDA backend (src/cuda/): launchers with C signatures, so the core needs no CUDA
 * header. Without NLL_HAVE_CUDA these are never called (nll_view_make refuses CUDA tensors). */
int nll_device_is_cuda(DLDevice device);
nll_status nll_cuda_loss(const nll_call *call, const nll_loss_problem *p, int want_loss,
                         int want_grad);
nll_status nll_cuda_softmax(const nll_call *call, const nll_softmax_problem *p, int backward);
nll_status nll_cuda_sync(const nll_call *call);
void nll_cuda_release(nll_context *ctx);

/* cpu/ref.c: the scalar reference kernels, one generic body per dtype. */
typedef struct nll_loss_kernels {
    void (*nll_forward)(const nll_loss_problem *p);
    void (*nll_backward)(const nll_loss_problem *p);
    /* want_loss / want_grad select forward, backward or both in one pass */
    void (*cross_entropy)(const nll_loss_problem *p, int want_loss, int want_grad);
    void (*log_softmax_forward)(const nll_softmax_problem *p);
    void (*log_softmax_backward)(const nll_softmax_problem *p);
} nll_loss_kernels;

/* One table entry, from the names a kernel body gives its functions. */
#define NLL_KERNEL_ENTRY(suffix)                                                               \
    {nll_forward_##suffix, nll_backward_##suffix, cross_entropy_##suffix,                     \
     log_softmax_forward_##suffix, log_softmax_backward_##suffix}

nll_arch nll_arch_best(void);
nll_arch nll_arch_from_name(const char *name, nll_arch fallback);
const char *nll_arch_name(nll_arch arch);
/* The kernels for a dtype on an instruction set: its own where it has them, else the
 * reference kernels. */
const nll_loss_kernels *nll_kernels_for(nll_arch arch, nll_float_kind kind);

extern const nll_loss_kernels nll_ref_kernels[NLL_KIND_COUNT];
extern const nll_loss_kernels nll_avx2_kernels[NLL_KIND_COUNT];   /* with NLL_HAVE_AVX2 */
extern const nll_loss_kernels nll_avx512_kernels[NLL_KIND_COUNT]; /* with NLL_HAVE_AVX512 */
extern const nll_loss_kernels nll_avx512_bf16_kernels[NLL_KIND_COUNT]; /* NLL_HAVE_AVX512_BF16 */

#endif /* NLL_INTERNAL_H */
