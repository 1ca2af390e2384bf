/*
 * test_threads.c — every op from many threads at once: each thread has its own context (and
 * its own internal thread count and instruction set), all share the same read-only inputs
 * (logits, log-probabilities, targets, weights, upstream gradients, even the DLTensor structs),
 * and every result must be bitwise equal to the single-threaded one. Meant to run under
 * ThreadSanitizer (scripts/test.d/40-tsan.sh) as well as in the ordinary builds.
 *
 * Then few long rows (N in {1, 2, 3, 8}, C up to 262144 + 17), which the library cuts into chunks
 * for its threads: every thread count must give the bits of one thread (which walks whole
 * rows), and those bits must be right, against a float64 evaluation of the formulas.
 *
 * NLL_TEST_SMALL=1 (set under valgrind, which runs threads one at a time) cuts the classes
 * tenfold.
 *
 * Worker threads only call the library and compare bytes; every CHECK runs on the main thread
 * after the joins (check.h's counters are not thread-safe).
 */
#include <pthread.h>

#include "check.h"

#if defined(__has_feature)
#if __has_feature(thread_sanitizer) /* clang's way of saying __SANITIZE_THREAD__ */
#define NLL_TEST_TSAN_CLANG 1
#endif
#endif

#define N 40     /* samples */
#define WORKERS 6
#define ROUNDS 2
#define N_DTYPES 4

/* Classes, per dtype: for float32 N * C is work enough for two or more of the library's threads
 * (at least 2 NLL_THREAD_WORK), so they run inside the test's; the others span two parallel blocks.
 * NLL_TEST_SMALL=1 (valgrind) cuts them tenfold: one block, one thread. */
static int64_t classes[N_DTYPES] = {6600, 900, 900, 900};

enum { OP_SM_FWD, OP_SM_BWD, OP_NLL_FWD, OP_NLL_BWD, OP_CE_FWD, OP_CE_BWD, OP_FUSED,
       OP_FUSED_IN_PLACE, OP_CE_PROB, N_OPS };

static const char *const op_names[N_OPS] = {"log_softmax_forward", "log_softmax_backward",
                                            "nll_loss_forward", "nll_loss_backward",
                                            "cross_entropy_forward", "cross_entropy_backward",
                                            "cross_entropy_fused", "cross_entropy_fused in place",
                                            "cross_entropy_fused probabilities"};

/* Shared, read-only once the threads start. */
typedef struct inputs {
    tt *x;        /* logits (N, C) */
    tt *logp;     /* log_softmax(x): input of nll_loss and log_softmax_backward */
    tt *grad_out; /* upstream of log_softmax_backward (N, C) */
    tt *target;   /* class indices (N), some ignored */
    tt *prob;     /* probabilities (N, C) */
    tt *weight;   /* (C) */
    tt *grad_none;/* upstream for reduction none (N) */
} inputs;

/* One set of outputs: two per op, and a copy of the logits for the in-place call. */
typedef struct outputs {
    tt *out[N_OPS][2];
    tt *scratch;
} outputs;

static inputs in[N_DTYPES];
static const DLDataType *dtypes_;

static outputs new_outputs(int d, DLDataType dt)
{
    const int64_t C = classes[d];
    outputs o;
    for (int op = 0; op < N_OPS; op++) {
        o.out[op][0] = o.out[op][1] = NULL;
        switch (op) {
        case OP_SM_FWD:
        case OP_SM_BWD:
        case OP_NLL_BWD:
        case OP_CE_BWD: o.out[op][0] = tnew(dt, 2, SH(N, C)); break;
        case OP_NLL_FWD:
            o.out[op][0] = tnew(dt, 0, NULL);
            o.out[op][1] = tnew(dt, 0, NULL);
            break;
        case OP_CE_FWD: o.out[op][0] = tnew(dt, 1, SH(N)); break;
        case OP_FUSED:
        case OP_CE_PROB:
            o.out[op][0] = tnew(dt, 0, NULL);
            o.out[op][1] = tnew(dt, 2, SH(N, C));
            break;
        case OP_FUSED_IN_PLACE: o.out[op][0] = tnew(dt, 0, NULL); break;
        }
    }
    o.scratch = tnew(dt, 2, SH(N, C));
    return o;
}

static nll_options opts(nll_reduction r, double eps, const tt *w)
{
    nll_options o = nll_options_default();
    o.reduction = r;
    o.label_smoothing = eps;
    o.weight = w ? &w->t : NULL;
    return o;
}

/* Runs one op into o; for the in-place op the gradient lands in o->scratch. */
static nll_status run_op(nll_context *ctx, int op, const inputs *x, outputs *o)
{
    tt **out = o->out[op];
    nll_options opt;
    switch (op) {
    case OP_SM_FWD: return nll_log_softmax_forward(ctx, TT(x->x), 1, TT(out[0]));
    case OP_SM_BWD:
        return nll_log_softmax_backward(ctx, TT(x->grad_out), TT(x->logp), -1, TT(out[0]));
    case OP_NLL_FWD:
        opt = opts(NLL_REDUCTION_MEAN, 0, x->weight);
        return nll_loss_forward(ctx, TT(x->logp), TT(x->target), &opt, TT(out[0]), TT(out[1]));
    case OP_NLL_BWD:
        opt = opts(NLL_REDUCTION_NONE, 0, x->weight);
        return nll_loss_backward(ctx, TT(x->grad_none), TT(x->logp), TT(x->target), &opt,
                                 TT(out[0]));
    case OP_CE_FWD:
        opt = opts(NLL_REDUCTION_NONE, 0.1, x->weight);
        return nll_cross_entropy_forward(ctx, TT(x->x), TT(x->target), &opt, TT(out[0]));
    case OP_CE_BWD:
        opt = opts(NLL_REDUCTION_MEAN, 0.2, x->weight);
        return nll_cross_entropy_backward(ctx, NULL, TT(x->x), TT(x->target), &opt, TT(out[0]));
    case OP_FUSED:
        opt = opts(NLL_REDUCTION_SUM, 0, x->weight);
        return nll_cross_entropy_fused(ctx, TT(x->x), TT(x->target), &opt, TT(out[0]),
                                       TT(out[1]));
    case OP_FUSED_IN_PLACE:
        memcpy(o->scratch->mem, x->x->mem, x->x->nbytes);
        opt = opts(NLL_REDUCTION_MEAN, 0, NULL);
        return nll_cross_entropy_fused(ctx, TT(o->scratch), TT(x->target), &opt, TT(out[0]),
                                       TT(o->scratch));
    default:
        opt = opts(NLL_REDUCTION_MEAN, 0.1, x->weight);
        return nll_cross_entropy_fused(ctx, TT(x->x), TT(x->prob), &opt, TT(out[0]),
                                       TT(out[1]));
    }
}

/* Do two sets of outputs of one op hold the same bytes? */
static int same_result(int op, const outputs *a, const outputs *b)
{
    for (int k = 0; k < 2; k++)
        if (a->out[op][k] && !tsame_bytes(a->out[op][k], b->out[op][k]))
            return 0;
    return op != OP_FUSED_IN_PLACE || tsame_bytes(a->scratch, b->scratch);
}

/* References: [arch][dtype], computed on the main thread with one thread. */
#define N_ARCHES 2
static const char *arches[N_ARCHES];
static outputs ref[N_ARCHES][N_DTYPES];

typedef struct worker {
    int id, threads, arch;
    outputs out[N_DTYPES];
    int bad_status[N_OPS], mismatches[N_OPS], setup_failed;
    pthread_t thread;
} worker;

static void *work(void *arg)
{
    worker *w = arg;
    nll_context *ctx = NULL;
    if (nll_context_create(&ctx) != NLL_OK || nll_context_set_threads(ctx, w->threads) != NLL_OK ||
        nll_context_set_arch(ctx, arches[w->arch]) != NLL_OK) {
        w->setup_failed = 1;
        nll_context_destroy(ctx);
        return NULL;
    }
    for (int round = 0; round < ROUNDS; round++)
        for (int d = 0; d < N_DTYPES; d++)
            for (int i = 0; i < N_OPS; i++) {
                int op = (i + w->id + round) % N_OPS; /* threads meet different ops at once */
                if (run_op(ctx, op, &in[d], &w->out[d]) != NLL_OK)
                    w->bad_status[op]++;
                else if (!same_result(op, &w->out[d], &ref[w->arch][d]))
                    w->mismatches[op]++;
            }
    nll_context_destroy(ctx);
    return NULL;
}

static void make_inputs(nll_context *ctx, int d, DLDataType dt)
{
    static const DLDataType target_types[N_DTYPES] = {{kDLInt, 64, 1}, {kDLInt, 32, 1},
                                                      {kDLInt, 16, 1}, {kDLInt, 32, 1}};
    const int64_t C = classes[d];
    inputs *x = &in[d];
    x->x = trandom(tnew(dt, 2, SH(N, C)), -6, 6);
    x->logp = tnew(dt, 2, SH(N, C));
    CHECK_STATUS(nll_log_softmax_forward(ctx, TT(x->x), 1, TT(x->logp)), NLL_OK);
    x->grad_out = trandom(tnew(dt, 2, SH(N, C)), -1, 1);
    x->target = tnew(target_types[d], 1, SH(N));
    for (int i = 0; i < N; i++)
        tset(x->target, i, i % 7 == 3 ? -100 : (double)rng_int(C));
    x->prob = trandom(tnew(dt, 2, SH(N, C)), 0, 2.0 / (double)C);
    x->weight = trandom(tnew(dt, 1, SH(C)), 0.25, 2);
    x->grad_none = trandom(tnew(dt, 1, SH(N)), -2, 2);
}

/* ---------------------------------------------------------------------------------------- */
/* Few long rows. The library splits a row into chunks when rows are long (C >= 65536) and
 * fewer than its threads; each row's blocks are folded in order, so results must not depend
 * on the thread count, and the single-thread result is checked against float64 formulas. */

enum { LK_CLASS, LK_PROB, LK_SM_FWD, LK_SM_BWD };

typedef struct long_variant {
    const char *name;
    int kind, want_loss, want_grad, in_place, weighted, upstream;
    nll_reduction reduction;
    double eps;
} long_variant;

static const long_variant long_variants[] = {
    {"fused, mean", LK_CLASS, 1, 1, 0, 0, 0, NLL_REDUCTION_MEAN, 0},
    {"fused in place, mean, weight", LK_CLASS, 1, 1, 1, 1, 0, NLL_REDUCTION_MEAN, 0},
    {"fused, sum, weight, smoothing", LK_CLASS, 1, 1, 0, 1, 0, NLL_REDUCTION_SUM, 0.1},
    {"forward, none, weight, smoothing", LK_CLASS, 1, 0, 0, 1, 0, NLL_REDUCTION_NONE, 0.1},
    {"forward, mean, smoothing", LK_CLASS, 1, 0, 0, 0, 0, NLL_REDUCTION_MEAN, 0.2},
    {"forward, sum", LK_CLASS, 1, 0, 0, 0, 0, NLL_REDUCTION_SUM, 0},
    {"backward, none, upstream, weight, smoothing", LK_CLASS, 0, 1, 0, 1, 1, NLL_REDUCTION_NONE,
     0.05},
    {"probabilities fused, mean, weight, smoothing", LK_PROB, 1, 1, 0, 1, 0, NLL_REDUCTION_MEAN,
     0.1},
    {"probabilities fused in place, sum", LK_PROB, 1, 1, 1, 0, 0, NLL_REDUCTION_SUM, 0},
    {"probabilities forward, none", LK_PROB, 1, 0, 0, 0, 0, NLL_REDUCTION_NONE, 0},
    {"log_softmax forward", LK_SM_FWD, 0, 0, 0, 0, 0, NLL_REDUCTION_NONE, 0},
    {"log_softmax backward", LK_SM_BWD, 0, 0, 0, 0, 0, NLL_REDUCTION_NONE, 0},
};
#define N_LONG_VARIANTS ((int)(sizeof long_variants / sizeof long_variants[0]))

static const int long_threads[] = {1, 2, 3, 7, 16}; /* the first is the reference */
#define N_LONG_THREADS 5

/* One problem's inputs, and two sets of outputs: the reference's and the one compared. The
 * inputs as read back (float64) are what the expectations are computed from. */
typedef struct long_problem {
    DLDataType dt;
    int64_t n, c;
    tt *x, *target, *prob, *weight, *upstream, *logp, *grad_out;
    tt *loss[2], *loss_none[2], *grad[2];
    double *lp, *sm, *prob_d, *logp_d, *grad_out_d, *got; /* (n, c) each */
    double *weight_d;                                /* (c) */
} long_problem;

/* Views of one big buffer per role, so cases of every size share the memory. */
typedef struct long_buffers {
    tt *x, *prob, *logp, *grad_out, *grad[2];
} long_buffers;

static tt *long_view(tt *base, DLDataType dt, int ndim, const int64_t *shape)
{
    return tview(base, dt, ndim, shape, NULL, 0);
}

static double *long_alloc(int64_t count)
{
    double *d = malloc((size_t)count * sizeof(double));
    if (!d)
        exit(2);
    return d;
}

/* A compact tensor's values as float64, the dtype switch outside the loop */
static void long_read(const tt *x, double *out)
{
    const int64_t n = tt_numel(x);
    const unsigned char *m = tt_ptr(x, 0);
    for (int64_t i = 0; i < n; i++) {
        uint16_t h;
        float f;
        switch (x->t.dtype.bits) {
        case 64: memcpy(&out[i], m + 8 * i, 8); break;
        case 32: memcpy(&f, m + 4 * i, 4), out[i] = f; break;
        default:
            memcpy(&h, m + 2 * i, 2);
            out[i] = x->t.dtype.code == kDLBfloat ? bf16_to_f32(h) : f16_to_f32(h);
        }
    }
}

/* Uniform values in [lo, hi) into a compact floating tensor, as tset rounds them, without its
 * per-element indexing (these tensors are large) */
static tt *long_random(tt *x, double lo, double hi)
{
    const int64_t n = tt_numel(x);
    unsigned char *m = tt_ptr(x, 0);
    for (int64_t i = 0; i < n; i++) {
        double v = rng_uniform(lo, hi);
        float f = (float)v;
        uint16_t h;
        switch (x->t.dtype.bits) {
        case 64: memcpy(m + 8 * i, &v, 8); break;
        case 32: memcpy(m + 4 * i, &f, 4); break;
        default:
            h = x->t.dtype.code == kDLBfloat ? f32_to_bf16(f) : f32_to_f16(f);
            memcpy(m + 2 * i, &h, 2);
        }
    }
    return x;
}

static long_problem long_make(nll_context *ctx, const long_buffers *buf, DLDataType dt,
                              int64_t n, int64_t c)
{
    long_problem p;
    memset(&p, 0, sizeof p);
    p.dt = dt, p.n = n, p.c = c;
    p.x = long_random(long_view(buf->x, dt, 2, SH(n, c)), -6, 6);
    p.prob = long_random(long_view(buf->prob, dt, 2, SH(n, c)), 0, 2.0 / (double)c);
    p.grad_out = long_random(long_view(buf->grad_out, dt, 2, SH(n, c)), -1, 1);
    p.logp = long_view(buf->logp, dt, 2, SH(n, c));
    CHECK_STATUS(nll_log_softmax_forward(ctx, TT(p.x), 1, TT(p.logp)), NLL_OK);
    p.target = tnew(I64, 1, SH(n));
    /* targets at the first and last class, a chunk's first, and ignored rows */
    for (int64_t i = 0; i < n; i++) {
        int64_t t = i == 0 ? c - 1 : i == 2 ? 32768 % c : i == 3 ? 0 : rng_int(c);
        tset(p.target, i, i % 4 == 1 ? -100 : (double)t);
    }
    p.weight = trandom(tnew(dt, 1, SH(c)), 0.25, 2);
    p.upstream = trandom(tnew(dt, 1, SH(n)), -2, 2);
    for (int k = 0; k < 2; k++) {
        p.loss[k] = tnew(dt, 0, NULL);
        p.loss_none[k] = tnew(dt, 1, SH(n));
        p.grad[k] = long_view(buf->grad[k], dt, 2, SH(n, c));
    }
    p.lp = long_alloc(n * c);
    p.sm = long_alloc(n * c);
    p.prob_d = long_alloc(n * c);
    p.logp_d = long_alloc(n * c);
    p.grad_out_d = long_alloc(n * c);
    p.got = long_alloc(n * c);
    p.weight_d = long_alloc(c);
    long_read(p.x, p.lp);
    long_read(p.prob, p.prob_d);
    long_read(p.logp, p.logp_d);
    long_read(p.grad_out, p.grad_out_d);
    long_read(p.weight, p.weight_d);
    for (int64_t i = 0; i < n; i++) { /* log_softmax in float64 */
        double *x = p.lp + i * c, max = -INFINITY, sum = 0;
        for (int64_t k = 0; k < c; k++)
            max = x[k] > max ? x[k] : max;
        for (int64_t k = 0; k < c; k++)
            sum += exp(x[k] - max);
        for (int64_t k = 0; k < c; k++) {
            x[k] = x[k] - max - log(sum);
            p.sm[i * c + k] = exp(x[k]);
        }
    }
    return p;
}

static void long_free(long_problem *p)
{
    free(p->lp);
    free(p->sm);
    free(p->prob_d);
    free(p->logp_d);
    free(p->grad_out_d);
    free(p->got);
    free(p->weight_d);
}

static tt *long_loss(const long_problem *p, const long_variant *v, int k)
{
    return v->reduction == NLL_REDUCTION_NONE ? p->loss_none[k] : p->loss[k];
}

/* Runs one variant into output set k. */
static nll_status long_run(nll_context *ctx, const long_variant *v, long_problem *p, int k)
{
    nll_options o = nll_options_default();
    o.reduction = v->reduction;
    o.label_smoothing = v->eps;
    o.weight = v->weighted ? TT(p->weight) : NULL;
    tt *grad = p->grad[k], *loss = long_loss(p, v, k);
    const tt *target = v->kind == LK_PROB ? p->prob : p->target;
    switch (v->kind) {
    case LK_SM_FWD: return nll_log_softmax_forward(ctx, TT(p->x), 1, TT(grad));
    case LK_SM_BWD: return nll_log_softmax_backward(ctx, TT(p->grad_out), TT(p->logp), 1, TT(grad));
    default: break;
    }
    if (!v->want_loss)
        return nll_cross_entropy_backward(ctx, v->upstream ? TT(p->upstream) : NULL, TT(p->x),
                                          TT(target), &o, TT(grad));
    if (!v->want_grad)
        return nll_cross_entropy_forward(ctx, TT(p->x), TT(target), &o, TT(loss));
    if (v->in_place) {
        memcpy(tt_ptr(grad, 0), tt_ptr(p->x, 0), (size_t)(p->n * p->c) * dtype_size(p->dt));
        return nll_cross_entropy_fused(ctx, TT(grad), TT(target), &o, TT(loss), TT(grad));
    }
    return nll_cross_entropy_fused(ctx, TT(p->x), TT(target), &o, TT(loss), TT(grad));
}

/* Same bytes in the outputs (compact tensors, compared whole) */
static int long_same(const long_problem *p, const long_variant *v)
{
    int same = 1;
    if (v->want_loss) {
        const tt *a = long_loss(p, v, 0), *b = long_loss(p, v, 1);
        same &= memcmp(tt_ptr(a, 0), tt_ptr(b, 0), (size_t)tt_numel(a) * dtype_size(p->dt)) == 0;
    }
    if (v->want_grad || v->kind == LK_SM_FWD || v->kind == LK_SM_BWD)
        same &= memcmp(tt_ptr(p->grad[0], 0), tt_ptr(p->grad[1], 0),
                       (size_t)(p->n * p->c) * dtype_size(p->dt)) == 0;
    return same;
}

/* |got - exp| <= rel * size + floor, where size is the sum of the magnitudes of the terms exp
 * was formed from (so cancellation is allowed for) and floor covers float16's subnormals. */
typedef struct long_tol {
    double rel, floor;
    int64_t bad;
    double worst_got, worst_exp;
    int64_t worst_at;
} long_tol;

static void long_expect(long_tol *tol, int64_t at, double got, double exp, double size)
{
    if (fabs(got - exp) <= tol->rel * size + tol->floor || (isnan(exp) && isnan(got)))
        return;
    if (!tol->bad++)
        tol->worst_got = got, tol->worst_exp = exp, tol->worst_at = at;
}

/* The reference's outputs (set 0) against float64 formulas. */
static void long_check_values(long_problem *p, const long_variant *v, int line)
{
    const int64_t n = p->n, c = p->c;
    long_tol tol = {p->dt.bits == 64 ? 1e-10 : p->dt.bits == 32 ? 2e-5
                    : p->dt.code == kDLBfloat ? 8e-3 : 1.5e-3,
                    p->dt.bits == 16 && p->dt.code != kDLBfloat ? 1e-7 : 1e-30, 0, 0, 0, -1};
    const double eps = v->eps;
    double *wq = long_alloc(c), *got = p->got;
    if (v->want_grad || v->kind == LK_SM_FWD || v->kind == LK_SM_BWD)
        long_read(p->grad[0], got);
    double total = 0, total_size = 0, denominator = 0;
    for (int64_t i = 0; i < n; i++) {
        int64_t t = (int64_t)tget(p->target, i);
        if (v->kind == LK_CLASS && t != -100)
            denominator += v->weighted ? p->weight_d[t] : 1;
    }
    if (v->kind == LK_PROB)
        denominator = (double)n;
    for (int64_t i = 0; i < n; i++) {
        const double *lp = p->lp + i * c;
        if (v->kind == LK_SM_BWD) {
            const double *g = p->grad_out_d + i * c, *y = p->logp_d + i * c;
            double sum = 0, size = 0;
            for (int64_t k = 0; k < c; k++)
                sum += g[k], size += fabs(g[k]);
            for (int64_t k = 0; k < c; k++) {
                double e = exp(y[k]);
                long_expect(&tol, i * c + k, got[i * c + k], g[k] - e * sum,
                            fabs(g[k]) + e * size);
            }
            continue;
        }
        if (v->kind == LK_SM_FWD) {
            for (int64_t k = 0; k < c; k++) /* size: about the row's max and log-sum-exp */
                long_expect(&tol, i * c + k, got[i * c + k], lp[k], fabs(lp[k]) + 20);
            continue;
        }
        /* the loss is -sum_k wq[k] lp[k], with G = -scale * wq the gradient w.r.t. lp */
        int64_t t = (int64_t)tget(p->target, i);
        int valid = v->kind == LK_PROB || t != -100;
        double wq_sum = 0;
        for (int64_t k = 0; k < c; k++) {
            double w = v->weighted ? p->weight_d[k] : 1;
            if (v->kind == LK_PROB)
                wq[k] = w * (p->prob_d[i * c + k] * (1 - eps) + eps / (double)c);
            else
                wq[k] = valid ? w * ((k == t) * (1 - eps) + eps / (double)c) : 0;
            wq_sum += wq[k];
        }
        double loss = 0, size = 0;
        for (int64_t k = 0; k < c; k++)
            loss -= wq[k] * lp[k], size += fabs(wq[k] * lp[k]);
        total += loss;
        total_size += size;
        if (v->want_loss && v->reduction == NLL_REDUCTION_NONE)
            long_expect(&tol, -1 - i, tget(p->loss_none[0], i), loss, size);
        if (!v->want_grad)
            continue;
        double scale = (v->upstream ? tget(p->upstream, i) : 1) /
                       (v->reduction == NLL_REDUCTION_MEAN ? denominator : 1);
        for (int64_t k = 0; k < c; k++) {
            double soft = p->sm[i * c + k] * wq_sum * scale;
            long_expect(&tol, i * c + k, got[i * c + k], soft - wq[k] * scale,
                        fabs(soft) + fabs(wq[k] * scale));
        }
    }
    if (v->want_loss && v->reduction != NLL_REDUCTION_NONE) {
        double d = v->reduction == NLL_REDUCTION_MEAN ? denominator : 1;
        long_expect(&tol, -1 - n, tget(p->loss[0], 0), total / d, total_size / d);
    }
    free(wq);
    if (!CHECK_INT_AT(line, tol.bad, 0))
        fprintf(stderr, "  first at %lld (negative: loss): expected %.17g, got %.17g\n",
                (long long)tol.worst_at, tol.worst_exp, tol.worst_got);
}

static void long_rows(void)
{
    static const DLDataType dts[N_DTYPES] = {{kDLFloat, 32, 1}, {kDLFloat, 64, 1},
                                             {kDLFloat, 16, 1}, {kDLBfloat, 16, 1}};
    /* Rows split for some thread counts (a thread takes 2^17 elements of work or more: N = 1
     * needs C = 2^18), with a short last chunk or not, and rows too short to split. N = 8 only
     * for two dtypes, and sanitizer builds only the first two cases, to keep the time down. */
    static const int64_t cases[][2] = {{1, 262144 + 17}, {2, 196608}, {3, 65536 + 17},
                                       {3, 196608 + 17}, {8, 196608}};
#if !defined(__OPTIMIZE__) || defined(__SANITIZE_THREAD__) || defined(NLL_TEST_TSAN_CLANG)
    const int n_cases = 2; /* unoptimized (ASan's debug build) or ThreadSanitizer */
#else
    const int n_cases = (int)(sizeof cases / sizeof cases[0]);
#endif
    const int64_t shrink = getenv("NLL_TEST_SMALL") ? 10 : 1;
    int64_t most = 0; /* float64 elements in the largest (N, C) of any dtype */
    for (int k = 0; k < n_cases; k++) {
        int64_t bytes = cases[k][0] * (cases[k][1] / shrink) * (cases[k][0] == 8 ? 4 : 8);
        most = bytes / 8 + 1 > most ? bytes / 8 + 1 : most;
    }
    long_buffers buf;
    buf.x = tnew(F64, 1, SH(most));
    buf.prob = tnew(F64, 1, SH(most));
    buf.logp = tnew(F64, 1, SH(most));
    buf.grad_out = tnew(F64, 1, SH(most));
    buf.grad[0] = tnew(F64, 1, SH(most));
    buf.grad[1] = tnew(F64, 1, SH(most));
    nll_context *ctx[N_LONG_THREADS];
    for (int k = 0; k < N_LONG_THREADS; k++) {
        ctx[k] = check_context();
        CHECK_STATUS(nll_context_set_threads(ctx[k], long_threads[k]), NLL_OK);
    }
    char section[200];
    for (int d = 0; d < N_DTYPES; d++)
        for (int k = 0; k < n_cases; k++) {
            if (cases[k][0] == 8 && dts[d].code == kDLFloat && dts[d].bits != 32)
                continue;
            long_problem p = long_make(ctx[0], &buf, dts[d], cases[k][0], cases[k][1] / shrink);
            for (int v = 0; v < N_LONG_VARIANTS; v++) {
                const long_variant *lv = &long_variants[v];
                snprintf(section, sizeof section, "long rows: %s, (%lld, %lld) %s bits %d",
                         lv->name, (long long)p.n, (long long)p.c,
                         dts[d].code == kDLBfloat ? "bfloat" : "float", dts[d].bits);
                SECTION(section);
                if (!CHECK_STATUS(long_run(ctx[0], lv, &p, 0), NLL_OK))
                    continue;
                long_check_values(&p, lv, __LINE__);
                for (int t = 1; t < N_LONG_THREADS; t++) {
                    CHECK_STATUS(long_run(ctx[t], lv, &p, 1), NLL_OK);
                    if (!CHECK(long_same(&p, lv)))
                        fprintf(stderr, "  with %d threads\n", long_threads[t]);
                }
            }
            long_free(&p);
        }
    for (int k = 0; k < N_LONG_THREADS; k++)
        nll_context_destroy(ctx[k]);
}

int main(void)
{
    static const DLDataType dts[N_DTYPES] = {{kDLFloat, 32, 1}, {kDLFloat, 64, 1},
                                             {kDLFloat, 16, 1}, {kDLBfloat, 16, 1}};
    dtypes_ = dts;
    if (getenv("NLL_TEST_SMALL"))
        for (int d = 0; d < N_DTYPES; d++)
            classes[d] /= 10;
    nll_context *ctx = check_context();
    rng_seed(7);
    arches[0] = "ref";
    arches[1] = nll_context_arch(ctx); /* the best this CPU has (or NLL_ARCH's) */
    for (int d = 0; d < N_DTYPES; d++)
        make_inputs(ctx, d, dts[d]);

    SECTION("single-threaded references");
    for (int a = 0; a < N_ARCHES; a++) {
        CHECK_STATUS(nll_context_set_arch(ctx, arches[a]), NLL_OK);
        for (int d = 0; d < N_DTYPES; d++) {
            ref[a][d] = new_outputs(d, dts[d]);
            for (int op = 0; op < N_OPS; op++)
                CHECK_STATUS(run_op(ctx, op, &in[d], &ref[a][d]), NLL_OK);
        }
    }

    SECTION("many threads, separate contexts, shared inputs");
    static worker workers[WORKERS];
    for (int i = 0; i < WORKERS; i++) {
        worker *w = &workers[i];
        w->id = i;
        w->threads = 1 + i % 3; /* the library's own threads run inside ours */
        w->arch = i % N_ARCHES;
        for (int d = 0; d < N_DTYPES; d++)
            w->out[d] = new_outputs(d, dts[d]); /* allocated here: check.h is not thread-safe */
    }
    int started = 0;
    for (int i = 0; i < WORKERS; i++)
        started += CHECK(pthread_create(&workers[i].thread, NULL, work, &workers[i]) == 0);
    for (int i = 0; i < started; i++)
        pthread_join(workers[i].thread, NULL);
    for (int i = 0; i < WORKERS; i++) {
        CHECK_INT(workers[i].setup_failed, 0);
        for (int op = 0; op < N_OPS; op++) {
            SECTION(op_names[op]);
            CHECK_INT(workers[i].bad_status[op], 0);
            CHECK_INT(workers[i].mismatches[op], 0);
        }
    }

    nll_context_destroy(ctx);
    long_rows();
    return check_finish("test_threads");
}
