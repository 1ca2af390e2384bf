/*
 * test_threads.c — every op from many threads at once: each thread has its own context (and
 * its own internal thread count and instruction set), all share the same read-only inputs
 * (logits, log-probabilities, targets, weights, upstream gradients, even the DLTensor structs),
 * and every result must be bitwise equal to the single-threaded one. Meant to run under
 * ThreadSanitizer (scripts/test.d/40-tsan.sh) as well as in the ordinary builds.
 *
 * NLL_TEST_SMALL=1 (set under valgrind, which runs threads one at a time) cuts the classes
 * tenfold.
 *
 * Worker threads only call the library and compare bytes; every CHECK runs on the main thread
 * after the joins (check.h's counters are not thread-safe).
 */
#include <pthread.h>

#include "check.h"

#define N 40     /* samples */
#define C_FULL 900 /* classes: N * C spans two parallel blocks */
static int64_t C = C_FULL; /* NLL_TEST_SMALL=1 (valgrind): 90, one block */
#define WORKERS 6
#define ROUNDS 2
#define N_DTYPES 4

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

static outputs new_outputs(DLDataType dt)
{
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
    inputs *x = &in[d];
    x->x = trandom(tnew(dt, 2, SH(N, C)), -6, 6);
    x->logp = tnew(dt, 2, SH(N, C));
    CHECK_STATUS(nll_log_softmax_forward(ctx, TT(x->x), 1, TT(x->logp)), NLL_OK);
    x->grad_out = trandom(tnew(dt, 2, SH(N, C)), -1, 1);
    x->target = tnew(target_types[d], 1, SH(N));
    for (int i = 0; i < N; i++)
        tset(x->target, i, i % 7 == 3 ? -100 : (double)rng_int(C));
    x->prob = trandom(tnew(dt, 2, SH(N, C)), 0, 2.0 / C);
    x->weight = trandom(tnew(dt, 1, SH(C)), 0.25, 2);
    x->grad_none = trandom(tnew(dt, 1, SH(N)), -2, 2);
}

int main(void)
{
    static const DLDataType dts[N_DTYPES] = {{kDLFloat, 32, 1}, {kDLFloat, 64, 1},
                                             {kDLFloat, 16, 1}, {kDLBfloat, 16, 1}};
    dtypes_ = dts;
    if (getenv("NLL_TEST_SMALL"))
        C = C_FULL / 10;
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
            ref[a][d] = new_outputs(dts[d]);
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
            w->out[d] = new_outputs(dts[d]); /* allocated here: check.h is not thread-safe */
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
    return check_finish("test_threads");
}
