/* Targets that change during a call. Validation reads every class index, then the kernels read
 * them again; if the caller's memory changes in between (a racing thread, a file mapped by
 * another process), an index that passed the checks may be anything by the time it becomes an
 * address. A thread here flips the first and last targets between a valid class and 2^40,
 * -2^40, C, -2 and ignore_index while the main thread calls every op that takes class indices,
 * on every kernel path (short transposed rows, whole rows, a long row split across threads,
 * float64/float32/bfloat16, int64 and int32 targets, weight, label smoothing, in place). Every
 * tensor the library writes or reads sits inside a larger allocation between canary bytes,
 * checked after every call. Each call must return NLL_OK or NLL_ERROR_TARGET_RANGE, never
 * crash, never touch a canary; once the flipping stops, every op gives its bits from before.
 *
 * The flipping is an intentional data race on the target memory: under ThreadSanitizer the
 * test skips itself. Under valgrind (NLL_TEST_SMALL=1) it makes fewer calls. */
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>

#include "check.h"

#if defined(__SANITIZE_THREAD__)
#define NLL_TEST_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define NLL_TEST_TSAN 1
#endif
#endif

#ifndef NLL_TEST_TSAN
#define GUARD 4096 /* canary bytes on each side of every tensor */
#define CANARY 0xA5

typedef struct guarded {
    unsigned char *base; /* GUARD canary bytes, the tensor's bytes, GUARD canary bytes */
    size_t bytes;
} guarded;

static guarded guarded_new(size_t bytes) {
    guarded g = {malloc(bytes + 2 * GUARD), bytes};
    if (g.base)
        memset(g.base, CANARY, bytes + 2 * GUARD);
    return g;
}

static void *guarded_data(const guarded *g) { return g->base + GUARD; }

static int canaries_intact(const guarded *g) {
    for (size_t i = 0; i < GUARD; i++)
        if (g->base[i] != CANARY || g->base[GUARD + g->bytes + i] != CANARY)
            return 0;
    return 1;
}

/* The flipper: stores values[k] in turn into both slots until told to stop. Relaxed atomic
 * stores, so that the compiler keeps every one of them (the library's reads are plain: the
 * race is the point). It yields now and then, so that on a busy machine where it shares a
 * core with the caller the values still change between calls. */
typedef struct flipper {
    void *slots[2];
    int bits; /* 64 or 32 */
    int64_t values[10];
    int count;
    atomic_int stop;
    atomic_uint flips; /* rounds of stores so far */
} flipper;

static void *flip(void *arg) {
    flipper *f = arg;
    for (unsigned k = 0; !atomic_load_explicit(&f->stop, memory_order_acquire); k++) {
        if (k % 251 == 250) /* a period prime to the values': each is left in place in turn */
            sched_yield();
        const int64_t v = f->values[k % (unsigned)f->count];
        for (int s = 0; s < 2; s++) {
            if (f->bits == 64)
                __atomic_store_n((int64_t *)f->slots[s], v, __ATOMIC_RELAXED);
            else
                __atomic_store_n((int32_t *)f->slots[s], (int32_t)v, __ATOMIC_RELAXED);
        }
        atomic_fetch_add_explicit(&f->flips, 1, memory_order_relaxed);
    }
    return NULL;
}

enum { OP_NLL_FWD, OP_NLL_BWD, OP_CE_FWD, OP_CE_BWD, OP_FUSED, OP_FUSED_IN_PLACE, N_OPS };
static const char *const op_names[N_OPS] = {"nll_loss_forward",       "nll_loss_backward",
                                            "cross_entropy_forward",  "cross_entropy_backward",
                                            "cross_entropy_fused",    "cross_entropy_fused in place"};

typedef struct config {
    const char *name;
    DLDataType dtype;
    int64_t rows, classes;
    int target_bits;
    int threads;
    int weighted;
    nll_reduction reduction;
    double smoothing;
} config;

/* One case's tensors, each guarded. */
typedef struct tensors {
    const config *c;
    size_t item, matrix_bytes, loss_bytes;
    unsigned char *logits; /* the values every call starts from (the in-place call overwrites) */
    guarded x, grad, loss, weight, target;
    int64_t shape[2], t_shape[1], w_shape[1];
} tensors;

static void put(DLDataType dtype, unsigned char *at, double v) {
    if (dtype.bits == 64) {
        memcpy(at, &v, 8);
    } else if (dtype.bits == 32) {
        float f = (float)v;
        memcpy(at, &f, 4);
    } else {
        uint16_t h = dtype.code == kDLBfloat ? f32_to_bf16((float)v) : f32_to_f16((float)v);
        memcpy(at, &h, 2);
    }
}

static int tensors_new(tensors *t, const config *c) {
    memset(t, 0, sizeof *t);
    t->c = c;
    t->item = c->dtype.bits / 8;
    t->matrix_bytes = (size_t)(c->rows * c->classes) * t->item;
    t->loss_bytes = c->reduction == NLL_REDUCTION_NONE ? (size_t)c->rows * t->item : t->item;
    t->logits = malloc(t->matrix_bytes);
    t->x = guarded_new(t->matrix_bytes);
    t->grad = guarded_new(t->matrix_bytes);
    t->loss = guarded_new(t->loss_bytes);
    t->weight = guarded_new((size_t)c->classes * t->item);
    t->target = guarded_new((size_t)c->rows * (size_t)(c->target_bits / 8));
    if (!t->logits || !t->x.base || !t->grad.base || !t->loss.base || !t->weight.base ||
        !t->target.base)
        return 0;
    uint64_t state = 0x9E3779B97F4A7C15ull;
    for (int64_t i = 0; i < c->rows * c->classes; i++) {
        state = state * 6364136223846793005ull + 1442695040888963407ull;
        /* log-probability-like values (nll_loss reads them as such; cross_entropy as logits) */
        put(c->dtype, t->logits + (size_t)i * t->item, -(double)(state >> 40) / (1 << 24) * 8.0);
    }
    for (int64_t k = 0; k < c->classes; k++)
        put(c->dtype, (unsigned char *)guarded_data(&t->weight) + (size_t)k * t->item,
            0.5 + (double)(k % 7) / 8.0);
    for (int64_t r = 0; r < c->rows; r++) {
        const int64_t v = r % 5 == 2 ? -100 : (r * 7919 + 3) % c->classes;
        unsigned char *at = (unsigned char *)guarded_data(&t->target) + r * (c->target_bits / 8);
        if (c->target_bits == 64)
            memcpy(at, &v, 8);
        else {
            int32_t v32 = (int32_t)v;
            memcpy(at, &v32, 4);
        }
    }
    t->shape[0] = c->rows;
    t->shape[1] = c->classes;
    t->t_shape[0] = c->rows;
    t->w_shape[0] = c->classes;
    return 1;
}

static void tensors_free(tensors *t) {
    free(t->logits);
    free(t->x.base);
    free(t->grad.base);
    free(t->loss.base);
    free(t->weight.base);
    free(t->target.base);
}

static int all_intact(const tensors *t) {
    return canaries_intact(&t->x) && canaries_intact(&t->grad) && canaries_intact(&t->loss) &&
           canaries_intact(&t->weight) && canaries_intact(&t->target);
}

/* One call of op on fresh inputs; its outputs' bytes (gradient, then loss) go to result when
 * it is not NULL. */
static nll_status call_op(nll_context *ctx, tensors *t, int op, unsigned char *result) {
    const config *c = t->c;
    memcpy(guarded_data(&t->x), t->logits, t->matrix_bytes);
    DLTensor x = {guarded_data(&t->x), {kDLCPU, 0}, 2, c->dtype, t->shape, NULL, 0};
    DLTensor g = {guarded_data(&t->grad), {kDLCPU, 0}, 2, c->dtype, t->shape, NULL, 0};
    DLTensor w = {guarded_data(&t->weight), {kDLCPU, 0}, 1, c->dtype, t->w_shape, NULL, 0};
    DLTensor target = {guarded_data(&t->target), {kDLCPU, 0}, 1,
                       {kDLInt, (uint8_t)c->target_bits, 1}, t->t_shape, NULL, 0};
    const int none = c->reduction == NLL_REDUCTION_NONE;
    DLTensor loss = {guarded_data(&t->loss), {kDLCPU, 0}, none ? 1 : 0, c->dtype,
                     none ? t->t_shape : NULL, NULL, 0};
    nll_options options = nll_options_default();
    options.reduction = c->reduction;
    options.weight = c->weighted ? &w : NULL;
    nll_options smoothed = options;
    smoothed.label_smoothing = c->smoothing;
    nll_status s = NLL_OK;
    switch (op) {
    case OP_NLL_FWD: s = nll_loss_forward(ctx, &x, &target, &options, &loss, NULL); break;
    case OP_NLL_BWD: s = nll_loss_backward(ctx, NULL, &x, &target, &options, &g); break;
    case OP_CE_FWD: s = nll_cross_entropy_forward(ctx, &x, &target, &smoothed, &loss); break;
    case OP_CE_BWD: s = nll_cross_entropy_backward(ctx, NULL, &x, &target, &smoothed, &g); break;
    case OP_FUSED: s = nll_cross_entropy_fused(ctx, &x, &target, &smoothed, &loss, &g); break;
    case OP_FUSED_IN_PLACE:
        s = nll_cross_entropy_fused(ctx, &x, &target, &smoothed, &loss, &x);
        break;
    }
    if (result) {
        const int in_place = op == OP_FUSED_IN_PLACE;
        const int grads = op == OP_NLL_BWD || op == OP_CE_BWD || op == OP_FUSED || in_place;
        memset(result, 0, t->matrix_bytes + t->loss_bytes);
        if (grads)
            memcpy(result, guarded_data(in_place ? &t->x : &t->grad), t->matrix_bytes);
        if (op != OP_NLL_BWD && op != OP_CE_BWD)
            memcpy(result + t->matrix_bytes, guarded_data(&t->loss), t->loss_bytes);
    }
    return s;
}

/* Rounds of calls (one per op) until `overlapped` accepted calls ran while the flipper was
 * storing (on a busy machine it may share a core with the caller and rarely run at the same
 * time), at least min_rounds and at most max_rounds. */
static void race(nll_context *ctx, const config *c, int min_rounds, int max_rounds,
                 int overlapped) {
    SECTION(c->name);
    tensors t;
    if (!tensors_new(&t, c)) {
        CHECK(!"out of memory");
        tensors_free(&t);
        return;
    }
    CHECK_STATUS(nll_context_set_threads(ctx, c->threads), NLL_OK);
    const size_t result_bytes = t.matrix_bytes + t.loss_bytes;
    unsigned char *before = malloc(N_OPS * result_bytes), *after = malloc(result_bytes);
    CHECK(before && after);
    if (!before || !after)
        goto done;
    const int ops = c->smoothing > 0 ? OP_CE_FWD : OP_NLL_FWD; /* nll_loss takes no smoothing */
    for (int op = ops; op < N_OPS; op++)
        CHECK_STATUS(call_op(ctx, &t, op, before + (size_t)op * result_bytes), NLL_OK);

    const size_t t_item = (size_t)(c->target_bits / 8);
    unsigned char *targets = guarded_data(&t.target);
    int64_t first, last;
    if (c->target_bits == 64) {
        memcpy(&first, targets, 8);
        memcpy(&last, targets + (size_t)(c->rows - 1) * t_item, 8);
    } else {
        int32_t a, b;
        memcpy(&a, targets, 4);
        memcpy(&b, targets + (size_t)(c->rows - 1) * t_item, 4);
        first = a, last = b;
    }
    const int64_t valid = (c->classes - 1) / 2, huge = c->target_bits == 64 ? (int64_t)1 << 40
                                                                            : (int64_t)1 << 30;
    flipper f = {{targets, targets + (size_t)(c->rows - 1) * t_item},
                 c->target_bits,
                 {valid, huge, valid, -huge, valid, c->classes, valid, -2, valid, -100},
                 10,
                 0,
                 0};
    pthread_t thread;
    const int started = pthread_create(&thread, NULL, flip, &f) == 0;
    CHECK(started);
    int rejected = 0, other = 0, broken = 0, overlaps = 0, rounds = 0;
    for (; started && rounds < max_rounds && (rounds < min_rounds || overlaps < overlapped);
         rounds++)
        for (int op = ops; op < N_OPS; op++) {
            const unsigned flips = atomic_load_explicit(&f.flips, memory_order_relaxed);
            nll_status s = call_op(ctx, &t, op, NULL);
            rejected += s == NLL_ERROR_TARGET_RANGE;
            overlaps += s == NLL_OK &&
                        atomic_load_explicit(&f.flips, memory_order_relaxed) - flips >= 2;
            if (s != NLL_OK && s != NLL_ERROR_TARGET_RANGE && other++ == 0)
                fprintf(stderr, "%s, %s: status %s\n", c->name, op_names[op],
                        nll_status_name(s));
            if (!all_intact(&t) && broken++ == 0)
                fprintf(stderr, "%s, %s: a canary byte next to a tensor was overwritten\n",
                        c->name, op_names[op]);
        }
    if (started) {
        atomic_store_explicit(&f.stop, 1, memory_order_release);
        pthread_join(thread, NULL);
    }
    CHECK_INT(other, 0);
    CHECK_INT(broken, 0);
    printf("%s: %d rounds, %d calls rejected, %d accepted while the targets changed\n",
           c->name, rounds, rejected, overlaps);

    /* the targets as they were: every op gives its bits from before the race */
    if (c->target_bits == 64) {
        memcpy(targets, &first, 8);
        memcpy(targets + (size_t)(c->rows - 1) * t_item, &last, 8);
    } else {
        int32_t a = (int32_t)first, b = (int32_t)last;
        memcpy(targets, &a, 4);
        memcpy(targets + (size_t)(c->rows - 1) * t_item, &b, 4);
    }
    for (int op = ops; op < N_OPS; op++) {
        CHECK_STATUS(call_op(ctx, &t, op, after), NLL_OK);
        CHECK(memcmp(after, before + (size_t)op * result_bytes, result_bytes) == 0);
    }
done:
    free(before);
    free(after);
    tensors_free(&t);
}

#endif /* !NLL_TEST_TSAN */

int main(void) {
#ifdef NLL_TEST_TSAN
    return check_finish("test_toctou (skipped under ThreadSanitizer: the race is intended)");
#else
    nll_context *ctx = check_context();
    const int small = getenv("NLL_TEST_SMALL") != NULL;
    const DLDataType f64 = F64, f32 = F32, bf16 = BF16, f16 = F16;
    const config configs[] = {
        {"float32 (64, 10): short rows", f32, 64, 10, 64, 1, 0, NLL_REDUCTION_MEAN, 0},
        {"float32 (64, 10): short rows, weight, none", f32, 64, 10, 64, 1, 1,
         NLL_REDUCTION_NONE, 0},
        {"float32 (48, 24): short rows, int32 targets, weight", f32, 48, 24, 32, 1, 1,
         NLL_REDUCTION_MEAN, 0},
        {"float32 (8, 300): whole rows, weight", f32, 8, 300, 64, 1, 1, NLL_REDUCTION_MEAN, 0},
        {"float32 (8, 300): label smoothing, weight, none", f32, 8, 300, 64, 1, 1,
         NLL_REDUCTION_NONE, 0.1},
        {"float32 (40, 2000): two threads, weight", f32, 40, 2000, 64, 2, 1, NLL_REDUCTION_SUM,
         0},
        {"float32 (1, 70000): a row split across two threads, weight", f32, 1, 70000, 64, 2, 1,
         NLL_REDUCTION_MEAN, 0},
        {"float32 (1, 70000): split, label smoothing", f32, 1, 70000, 64, 2, 0,
         NLL_REDUCTION_MEAN, 0.2},
        {"bfloat16 (8, 300): exponentials kept in scratch, weight", bf16, 8, 300, 64, 1, 1,
         NLL_REDUCTION_MEAN, 0},
        {"float16 (64, 10): short rows, int32 targets", f16, 64, 10, 32, 1, 0,
         NLL_REDUCTION_SUM, 0},
        {"float64 (8, 300): reference kernels, weight, none", f64, 8, 300, 64, 1, 1,
         NLL_REDUCTION_NONE, 0},
    };
    for (size_t i = 0; i < sizeof configs / sizeof configs[0]; i++)
        if (small)
            race(ctx, &configs[i], 2, 20, 3);
        else if (configs[i].classes > 10000)
            race(ctx, &configs[i], 5, 200, 30);
        else
            race(ctx, &configs[i], 30, 1000, 150);
    nll_context_destroy(ctx);
    return check_finish("test_toctou");
#endif
}
