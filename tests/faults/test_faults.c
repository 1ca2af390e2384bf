/*
 * test_faults.c — fault injection, sqlite's way: each allocation and each thread start a call
 * makes is failed in turn, and the call must still come out clean.
 *
 * The test is linked against the static library with the allocator and pthread_create
 * wrapped (GNU ld --wrap, tests/CMakeLists.txt), so every one the library calls comes through
 * the shims below. For every op (log_softmax forward and backward, nll_loss forward and
 * backward, cross_entropy forward, backward and fused into a separate buffer or in place), on
 * float32, bfloat16 and float16 (a 16-bit fused gradient keeps its exponentials in float32
 * scratch, as does a float32 one off its alignment, also run), many rows (blocks
 * over threads) and one long row (cut across threads, with its own working memory), on 2 and
 * on 4 threads, on a fresh context (the call starts the workers) and on one that has made a
 * call already: the k-th allocation (or thread start) of the call fails, alone or with all
 * after it, for k = 1, 2, ... until the call no longer makes k of them. Each time
 *  - the call returns NLL_OK with the bytes of a call on one thread without faults, or
 *    NLL_ERROR_OUT_OF_MEMORY with every output byte as it was (nothing else);
 *  - the next call on the context, without faults, gives the right bytes;
 *  - after nll_context_destroy, every allocation made since the context was created has been
 *    freed and every thread started has been joined (the shims count them).
 * nll_context_create is failed the same way. NLL_TEST_SMALL=1 (valgrind) runs fewer
 * combinations: bfloat16 only, 4 threads, fresh contexts, one refusal at a time. In the ASan
 * build LeakSanitizer looks for leaks at exit as well.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>

#include "check.h"

/* ---- the shims ---------------------------------------------------------------------------- */

void *__real_malloc(size_t size);
void *__real_calloc(size_t count, size_t size);
void *__real_realloc(void *p, size_t size);
int __real_posix_memalign(void **out, size_t alignment, size_t size);
void *__real_aligned_alloc(size_t alignment, size_t size);
void __real_free(void *p);
int __real_pthread_create(pthread_t *thread, const pthread_attr_t *attr,
                          void *(*start)(void *), void *arg);
int __real_pthread_join(pthread_t thread, void **result);

void *__wrap_malloc(size_t size);
void *__wrap_calloc(size_t count, size_t size);
void *__wrap_realloc(void *p, size_t size);
int __wrap_posix_memalign(void **out, size_t alignment, size_t size);
void *__wrap_aligned_alloc(size_t alignment, size_t size);
void __wrap_free(void *p);
int __wrap_pthread_create(pthread_t *thread, const pthread_attr_t *attr,
                          void *(*start)(void *), void *arg);
int __wrap_pthread_join(pthread_t thread, void **result);

/* One kind of resource: how many the call under test asked for, which to refuse. The counts
 * are atomic: the pool's workers allocate too. */
typedef struct fault {
    atomic_long seen;     /* asked for during the call under test */
    atomic_long fail_at;  /* refuse the fail_at-th (1-based); 0: none */
    atomic_int fail_rest; /* and every one after it */
} fault;

static fault alloc_fault, thread_fault;
static atomic_int injecting; /* inside the call under test */
static atomic_int counting;  /* from nll_context_create to nll_context_destroy */
static atomic_long live_allocations, live_threads;

/* Whether to refuse this one. */
static int refuse(fault *f) {
    if (!atomic_load(&injecting))
        return 0;
    long n = atomic_fetch_add(&f->seen, 1) + 1, at = atomic_load(&f->fail_at);
    return at > 0 && (n == at || (n > at && atomic_load(&f->fail_rest)));
}

static void *allocated(void *p) {
    if (p && atomic_load(&counting))
        atomic_fetch_add(&live_allocations, 1);
    return p;
}

void *__wrap_malloc(size_t size) {
    return refuse(&alloc_fault) ? NULL : allocated(__real_malloc(size));
}

void *__wrap_calloc(size_t count, size_t size) {
    return refuse(&alloc_fault) ? NULL : allocated(__real_calloc(count, size));
}

void *__wrap_realloc(void *p, size_t size) {
    if (refuse(&alloc_fault))
        return NULL;
    void *q = __real_realloc(p, size);
    if (!p)
        allocated(q);
    return q;
}

int __wrap_posix_memalign(void **out, size_t alignment, size_t size) {
    if (refuse(&alloc_fault))
        return ENOMEM;
    int r = __real_posix_memalign(out, alignment, size);
    if (r == 0)
        allocated(*out);
    return r;
}

void *__wrap_aligned_alloc(size_t alignment, size_t size) {
    return refuse(&alloc_fault) ? NULL : allocated(__real_aligned_alloc(alignment, size));
}

void __wrap_free(void *p) {
    if (p && atomic_load(&counting))
        atomic_fetch_sub(&live_allocations, 1);
    __real_free(p);
}

int __wrap_pthread_create(pthread_t *thread, const pthread_attr_t *attr,
                          void *(*start)(void *), void *arg) {
    if (refuse(&thread_fault))
        return EAGAIN;
    int r = __real_pthread_create(thread, attr, start, arg);
    if (r == 0)
        atomic_fetch_add(&live_threads, 1);
    return r;
}

int __wrap_pthread_join(pthread_t thread, void **result) {
    int r = __real_pthread_join(thread, result);
    if (r == 0)
        atomic_fetch_sub(&live_threads, 1);
    return r;
}

static void inject(fault *f, long at, int rest) {
    atomic_store(&alloc_fault.seen, 0);
    atomic_store(&thread_fault.seen, 0);
    atomic_store(&alloc_fault.fail_at, 0);
    atomic_store(&thread_fault.fail_at, 0);
    if (f) {
        atomic_store(&f->fail_at, at);
        atomic_store(&f->fail_rest, rest);
    }
    atomic_store(&injecting, f != NULL);
}

/* ---- problems and ops --------------------------------------------------------------------- */

enum { SM_FWD, SM_BWD, NLL_FWD, NLL_BWD, CE_FWD, CE_BWD, FUSED, FUSED_IN_PLACE, N_OPS };
static const char *const op_names[N_OPS] = {
    "log_softmax_forward", "log_softmax_backward", "nll_loss_forward",
    "nll_loss_backward",   "cross_entropy_forward", "cross_entropy_backward",
    "cross_entropy_fused", "cross_entropy_fused in place"};

typedef struct problem {
    const char *name;
    tt *x, *grad_out, *target, *weight, *upstream; /* read-only */
    uint64_t grad_offset; /* bytes: 2 puts a float32 gradient (not in place) off its alignment */
} problem;

/* An op's outputs: out[0], out[1] when it has two; for FUSED_IN_PLACE out[1] holds a copy of
 * the logits before the call and their gradient after it. */
typedef struct outputs {
    tt *out[2];
} outputs;

static problem make_problem(const char *name, DLDataType dt, int64_t n, int64_t c,
                            uint64_t grad_offset) {
    problem p = {name, NULL, NULL, NULL, NULL, NULL, grad_offset};
    p.x = trandom(tnew(dt, 2, SH(n, c)), -6, 6);
    p.grad_out = trandom(tnew(dt, 2, SH(n, c)), -1, 1);
    p.target = tnew(I64, 1, SH(n));
    for (int64_t i = 0; i < n; i++)
        tseti(p.target, i, i % 5 == 2 ? -100 : rng_int(c));
    p.weight = trandom(tnew(dt, 1, SH(c)), 0.25, 2);
    p.upstream = trandom(tnew(dt, 1, SH(n)), -2, 2);
    return p;
}

static outputs make_outputs(const problem *p, int op) {
    const DLDataType dt = p->x->t.dtype;
    const int64_t n = p->x->shape[0], c = p->x->shape[1];
    outputs o = {{NULL, NULL}};
    switch (op) {
    case NLL_FWD: o.out[0] = tnew(dt, 0, NULL), o.out[1] = tnew(dt, 0, NULL); break;
    case CE_FWD: o.out[0] = tnew(dt, 1, SH(n)); break;
    case CE_BWD: o.out[0] = tnew_strided(dt, 2, SH(n, c), NULL, p->grad_offset); break;
    case FUSED:
        o.out[0] = tnew(dt, 0, NULL), o.out[1] = tnew_strided(dt, 2, SH(n, c), NULL,
                                                              p->grad_offset);
        break;
    case FUSED_IN_PLACE: o.out[0] = tnew(dt, 0, NULL), o.out[1] = tnew(dt, 2, SH(n, c)); break;
    default: o.out[0] = tnew(dt, 2, SH(n, c)); break;
    }
    return o;
}

/* Sets the outputs as they are before a call: poison, or for in place the logits. */
static void prepare(const problem *p, int op, outputs *o) {
    tfill_bytes(o->out[0], 0xA5);
    if (o->out[1])
        tfill_bytes(o->out[1], 0xA5);
    if (op == FUSED_IN_PLACE)
        memcpy(o->out[1]->mem, p->x->mem, p->x->nbytes);
}

static nll_options options(nll_reduction reduction, const tt *weight) {
    nll_options o = nll_options_default();
    o.reduction = reduction;
    o.weight = weight ? &weight->t : NULL;
    return o;
}

static nll_status run_op(nll_context *ctx, int op, const problem *p, outputs *o) {
    nll_options opt;
    DLTensor *a = TT(o->out[0]), *b = o->out[1] ? TT(o->out[1]) : NULL;
    switch (op) {
    case SM_FWD: return nll_log_softmax_forward(ctx, TT(p->x), 1, a);
    case SM_BWD: return nll_log_softmax_backward(ctx, TT(p->grad_out), TT(p->x), 1, a);
    case NLL_FWD:
        opt = options(NLL_REDUCTION_MEAN, p->weight);
        return nll_loss_forward(ctx, TT(p->x), TT(p->target), &opt, a, b);
    case NLL_BWD:
        opt = options(NLL_REDUCTION_NONE, p->weight);
        return nll_loss_backward(ctx, TT(p->upstream), TT(p->x), TT(p->target), &opt, a);
    case CE_FWD:
        opt = options(NLL_REDUCTION_NONE, NULL);
        return nll_cross_entropy_forward(ctx, TT(p->x), TT(p->target), &opt, a);
    case CE_BWD:
        opt = options(NLL_REDUCTION_MEAN, p->weight);
        return nll_cross_entropy_backward(ctx, NULL, TT(p->x), TT(p->target), &opt, a);
    case FUSED:
        opt = options(NLL_REDUCTION_MEAN, NULL);
        return nll_cross_entropy_fused(ctx, TT(p->x), TT(p->target), &opt, a, b);
    default:
        opt = options(NLL_REDUCTION_SUM, NULL);
        return nll_cross_entropy_fused(ctx, b, TT(p->target), &opt, a, b);
    }
}

static int same(const outputs *a, const outputs *b) {
    for (int k = 0; k < 2; k++)
        if (a->out[k] && !tsame_bytes(a->out[k], b->out[k]))
            return 0;
    return 1;
}

static int untouched(const problem *p, int op, const outputs *o, outputs *scratch) {
    prepare(p, op, scratch);
    for (int k = 0; k < 2; k++)
        if (o->out[k] && memcmp(o->out[k]->mem, scratch->out[k]->mem, o->out[k]->nbytes) != 0)
            return 0;
    return 1;
}

/* ---- the runs ----------------------------------------------------------------------------- */

typedef struct totals {
    long runs, refused_allocations, refused_threads, out_of_memory;
} totals;

/* One context's life with the k-th resource of kind f refused in one call (the second call,
 * when warm). Returns how many of that kind the call asked for. */
static long one_run(const problem *p, int op, int threads, int warm, fault *f, long k, int rest,
                    const outputs *want, outputs *got, outputs *spare, totals *t) {
    char where[160];
    snprintf(where, sizeof where, "%s %s, %d threads, %s, %s %ld%s", p->name, op_names[op],
             threads, warm ? "warm" : "cold", f == &alloc_fault ? "allocation" : "thread start",
             k, rest ? " and after" : "");
    SECTION(where);
    atomic_store(&counting, 1);
    nll_context *ctx = NULL;
    CHECK_STATUS(nll_context_create(&ctx), NLL_OK);
    if (!ctx)
        return 0;
    CHECK_STATUS(nll_context_set_threads(ctx, threads), NLL_OK);
    if (warm) {
        prepare(p, op, got);
        CHECK_STATUS(run_op(ctx, op, p, got), NLL_OK);
        CHECK(same(got, want));
    }
    prepare(p, op, got);
    inject(f, k, rest);
    nll_status s = run_op(ctx, op, p, got);
    atomic_store(&injecting, 0);
    const long asked = atomic_load(&f->seen);
    t->runs++;
    if (asked >= k)
        *(f == &alloc_fault ? &t->refused_allocations : &t->refused_threads) += 1;
    if (s == NLL_ERROR_OUT_OF_MEMORY) {
        t->out_of_memory++;
        CHECK(untouched(p, op, got, spare));
        CHECK(nll_last_error(ctx)[0] != '\0');
    } else if (CHECK_STATUS(s, NLL_OK)) {
        CHECK(same(got, want));
    }
    prepare(p, op, got); /* the next call, without faults, is right */
    CHECK_STATUS(run_op(ctx, op, p, got), NLL_OK);
    CHECK(same(got, want));
    nll_context_destroy(ctx);
    atomic_store(&counting, 0);
    CHECK_INT(atomic_load(&live_allocations), 0);
    CHECK_INT(atomic_load(&live_threads), 0); /* every thread started was joined */
    atomic_store(&live_allocations, 0);
    atomic_store(&live_threads, 0);
    return asked;
}

static void create_faults(void) {
    for (long k = 1;; k++) {
        char where[64];
        snprintf(where, sizeof where, "nll_context_create, allocation %ld", k);
        SECTION(where);
        atomic_store(&counting, 1);
        static char sentinel;
        nll_context *ctx = (nll_context *)(void *)&sentinel; /* set to NULL on failure */
        inject(&alloc_fault, k, 0);
        nll_status s = nll_context_create(&ctx);
        atomic_store(&injecting, 0);
        const long asked = atomic_load(&alloc_fault.seen);
        if (s == NLL_OK) {
            CHECK(ctx != NULL);
            CHECK(asked < k);
            nll_context_destroy(ctx);
        } else {
            CHECK_STATUS(s, NLL_ERROR_OUT_OF_MEMORY);
            CHECK(ctx == NULL);
        }
        atomic_store(&counting, 0);
        CHECK_INT(atomic_load(&live_allocations), 0);
        atomic_store(&live_allocations, 0);
        if (asked < k)
            break;
    }
}

int main(void) {
    const int small = getenv("NLL_TEST_SMALL") != NULL;
    create_faults();

    /* 4 threads need 4 blocks of 32,768 elements of work; a row is cut from 65,536 classes.
     * Every fused gradient that keeps its exponentials in scratch (16-bit, a misaligned
     * float32 row) must give the same bits when that scratch cannot be had. */
    const int64_t rows = small ? 128 : 512;
    problem problems[] = {
        make_problem("float32 (512, 512)", F32, rows, 512, 0),
        make_problem("bfloat16 (512, 512)", BF16, rows, 512, 0),
        make_problem("float16 (512, 512)", F16, rows, 512, 0),
        make_problem("float32 (512, 512), gradient misaligned", F32, rows, 512, 2),
        make_problem("float32 (1, 131072)", F32, 1, 131072, 0),
        make_problem("bfloat16 (1, 131072)", BF16, 1, 131072, 0),
        make_problem("float16 (1, 131072)", F16, 1, 131072, 0),
        make_problem("float32 (1, 131072), gradient misaligned", F32, 1, 131072, 2),
    };
    const int thread_counts[] = {2, 4};
    totals t = {0, 0, 0, 0};
    nll_context *alone = check_context(); /* the reference: one thread, no faults */
    for (size_t pi = 0; pi < sizeof problems / sizeof problems[0]; pi++) {
        const problem *p = &problems[pi];
        if (small && p->x->t.dtype.code != kDLBfloat) /* valgrind: bfloat16 has every path */
            continue;
        for (int op = 0; op < N_OPS; op++) {
            outputs want = make_outputs(p, op), got = make_outputs(p, op),
                    spare = make_outputs(p, op);
            prepare(p, op, &want);
            SECTION(op_names[op]);
            CHECK_STATUS(run_op(alone, op, p, &want), NLL_OK);
            for (int ti = small ? 1 : 0; ti < 2; ti++)
                for (int warm = 0; warm < (small ? 1 : 2); warm++)
                    for (int kind = 0; kind < 2; kind++)
                        for (int rest = 0; rest < (small ? 1 : 2); rest++) {
                            fault *f = kind ? &thread_fault : &alloc_fault;
                            for (long k = 1;; k++)
                                if (one_run(p, op, thread_counts[ti], warm, f, k, rest, &want,
                                            &got, &spare, &t) < k)
                                    break;
                        }
        }
    }
    nll_context_destroy(alone);
    printf("test_faults: %ld runs; %ld with an allocation refused, %ld with a thread start "
           "refused; %ld returned NLL_ERROR_OUT_OF_MEMORY\n",
           t.runs, t.refused_allocations, t.refused_threads, t.out_of_memory);
    SECTION("the faults were reached");
    CHECK(t.refused_allocations > 0);
    CHECK(t.refused_threads > 0);
    return check_finish("test_faults");
}
