/*
 * test_properties.c — laws that hold for every op, dtype and layout, checked over seeded random
 * problems rather than hand-picked values:
 *  - a rejected call leaves every byte of every tensor as it was, even when the bad value is
 *    the very last element (validation finishes before the first write);
 *  - results are bitwise the same for any thread count;
 *  - in-place gradients (and in-place log_softmax) equal the separate-buffer ones, bitwise;
 *  - reduction mean equals sum divided by the total weight (by the sample count for
 *    probability targets);
 *  - the gradient of reduction none with a unit upstream equals the gradient of sum;
 *  - short rows (the vector kernels take 16 rows at a time for C <= 32) agree with the scalar
 *    reference kernels, over partial groups, padded rows, narrow targets and every reduction.
 * Sizes span several parallel blocks, so that a kernel that validated lazily, or reduced in a
 * thread-dependent order, would show; NLL_TEST_SMALL=1 (set under valgrind) shrinks the class
 * counts tenfold, to one block.
 */
#include "check.h"

static nll_context *ctx;
static int64_t scale = 1; /* 10 when classes are cut tenfold (NLL_TEST_SMALL) */
#define CLASSES(c) ((c) / scale > 2 ? (c) / scale : 2)

#define N_DTYPES 4
static const DLDataType *dts;

/* One random problem: logits x of shape (N, C) or (N, C, D), class targets, probabilities,
 * weights, and log-probabilities. */
typedef struct problem {
    DLDataType dt;
    int ndim;
    int64_t shape[3], sample_shape[2];
    int sample_ndim;
    int64_t classes, samples;
    tt *x, *logp, *target, *prob, *weight;
} problem;

static problem make_problem(DLDataType dt, int ndim, int64_t n, int64_t c, int64_t d)
{
    problem p;
    memset(&p, 0, sizeof p);
    p.dt = dt;
    p.ndim = ndim;
    p.shape[0] = n, p.shape[1] = c, p.shape[2] = d;
    p.classes = c;
    p.sample_shape[0] = n, p.sample_shape[1] = d;
    p.sample_ndim = ndim - 1;
    p.samples = n * (ndim == 3 ? d : 1);
    p.x = trandom(tnew(dt, ndim, p.shape), -5, 5);
    p.logp = tnew(dt, ndim, p.shape);
    CHECK_STATUS(nll_log_softmax_forward(ctx, TT(p.x), 1, TT(p.logp)), NLL_OK);
    p.target = tnew(I64, p.sample_ndim, p.sample_shape);
    for (int64_t i = 0; i < p.samples; i++)
        tset(p.target, i, rng_int(5) == 0 ? -100 : (double)rng_int(c));
    p.prob = trandom(tnew(dt, ndim, p.shape), 0, 2.0 / (double)c);
    p.weight = trandom(tnew(dt, 1, SH(c)), 0.2, 3);
    return p;
}

static nll_options opts(nll_reduction r, double eps, const tt *w)
{
    nll_options o = nll_options_default();
    o.reduction = r;
    o.label_smoothing = eps;
    o.weight = w ? &w->t : NULL;
    return o;
}

static tt *loss_like(const problem *p, nll_reduction r)
{
    return r == NLL_REDUCTION_NONE ? tnew(p->dt, p->sample_ndim, p->sample_shape)
                                   : tnew(p->dt, 0, NULL);
}

static tt *grad_like(const problem *p)
{
    return tnew(p->dt, p->ndim, p->shape);
}

static double tol_of(DLDataType dt)
{
    return dt.code == kDLBfloat ? 2e-2 : dt.bits == 16 ? 3e-3 : dt.bits == 32 ? 2e-6 : 1e-13;
}

/* ---------------------------------------------------------------------------------------- */
/* Every op as one call, for the laws that apply to all of them */

enum { OP_SM_FWD, OP_SM_BWD, OP_NLL_FWD, OP_NLL_BWD, OP_CE_FWD, OP_CE_BWD, OP_FUSED, N_OPS };
static const char *const op_fn[N_OPS] = {
    "nll_log_softmax_forward", "nll_log_softmax_backward", "nll_loss_forward",
    "nll_loss_backward", "nll_cross_entropy_forward", "nll_cross_entropy_backward",
    "nll_cross_entropy_fused"};

typedef struct op_call {
    int op;
    const problem *p;
    nll_options o;
    const tt *target; /* class indices or probabilities */
    tt *grad_loss;    /* NULL: none */
    tt *out[2];
} op_call;

static op_call make_call(int op, const problem *p, nll_reduction r, double eps, int weighted,
                         int probability)
{
    op_call c;
    memset(&c, 0, sizeof c);
    c.op = op;
    c.p = p;
    c.o = opts(r, op == OP_NLL_FWD || op == OP_NLL_BWD ? 0 : eps, weighted ? p->weight : NULL);
    c.target = probability && op >= OP_CE_FWD ? p->prob : p->target;
    switch (op) {
    case OP_SM_FWD:
    case OP_SM_BWD:
    case OP_NLL_BWD:
    case OP_CE_BWD: c.out[0] = grad_like(p); break;
    case OP_NLL_FWD:
        c.out[0] = loss_like(p, r);
        c.out[1] = tnew(p->dt, 0, NULL);
        break;
    case OP_CE_FWD: c.out[0] = loss_like(p, r); break;
    default:
        c.out[0] = loss_like(p, r);
        c.out[1] = grad_like(p);
        break;
    }
    return c;
}

static nll_status run(const op_call *c)
{
    const problem *p = c->p;
    const DLTensor *gl = c->grad_loss ? TT(c->grad_loss) : NULL;
    switch (c->op) {
    case OP_SM_FWD: return nll_log_softmax_forward(ctx, TT(p->x), 1, TT(c->out[0]));
    case OP_SM_BWD: return nll_log_softmax_backward(ctx, TT(p->x), TT(p->logp), 1, TT(c->out[0]));
    case OP_NLL_FWD:
        return nll_loss_forward(ctx, TT(p->logp), TT(c->target), &c->o, TT(c->out[0]),
                                TT(c->out[1]));
    case OP_NLL_BWD:
        return nll_loss_backward(ctx, gl, TT(p->logp), TT(c->target), &c->o, TT(c->out[0]));
    case OP_CE_FWD:
        return nll_cross_entropy_forward(ctx, TT(p->x), TT(c->target), &c->o, TT(c->out[0]));
    case OP_CE_BWD:
        return nll_cross_entropy_backward(ctx, gl, TT(p->x), TT(c->target), &c->o,
                                          TT(c->out[0]));
    default:
        return nll_cross_entropy_fused(ctx, TT(p->x), TT(c->target), &c->o, TT(c->out[0]),
                                       TT(c->out[1]));
    }
}

/* ---------------------------------------------------------------------------------------- */
/* A rejected call leaves every byte as it was */

enum { BAD_REDUCTION, BAD_FLAGS, BAD_SMOOTHING, BAD_LAST_TARGET, BAD_LAST_NAN, BAD_OUT_DTYPE,
       BAD_OUT_SHAPE, BAD_WEIGHT, BAD_DEVICE, BAD_LANES, N_BAD };

static void check_rejected_untouched(void)
{
    SECTION("a rejected call leaves every output byte-identical");
    for (int d = 0; d < N_DTYPES; d++) {
        problem p = make_problem(dts[d], 3, 30, CLASSES(400), 3); /* 36000 elements: 2 blocks */
        for (int op = 0; op < N_OPS; op++)
            for (int bad = 0; bad < N_BAD; bad++) {
                op_call c = make_call(op, &p, (nll_reduction)(bad % 3), 0.1, 1, 0);
                int loss_op = op >= OP_NLL_FWD;
                tt *x = op == OP_NLL_FWD || op == OP_NLL_BWD ? p.logp : p.x;
                int64_t last = p.samples - 1;
                double saved_target = tget(p.target, last);
                uint8_t lanes = x->t.dtype.lanes;
                DLDeviceType dev = c.out[0]->t.device.device_type;
                switch (bad) {
                case BAD_REDUCTION: c.o.reduction = (nll_reduction)3; break;
                case BAD_FLAGS: c.o.flags = 0x80; break;
                case BAD_SMOOTHING: c.o.label_smoothing = NAN; break;
                case BAD_LAST_TARGET: tset(p.target, last, (double)p.classes); break;
                case BAD_LAST_NAN:
                    c.o.flags = NLL_CHECK_FINITE;
                    tset(x, tt_numel(x) - 1, NAN);
                    break;
                case BAD_OUT_DTYPE: c.out[0]->t.dtype = dts[(d + 1) % N_DTYPES]; break;
                case BAD_OUT_SHAPE: c.out[0]->shape[0] = c.out[0]->t.ndim ? 2 : 0, c.out[0]->t.ndim = 1; break;
                case BAD_WEIGHT: c.o.weight = TT(p.x); break;
                case BAD_DEVICE: c.out[0]->t.device.device_type = kDLCUDA; break;
                default: x->t.dtype.lanes = 2; break;
                }
                int applies = loss_op || bad == BAD_OUT_DTYPE || bad == BAD_OUT_SHAPE ||
                              bad == BAD_DEVICE || bad == BAD_LANES;
                if (op == OP_SM_FWD && bad == BAD_LANES)
                    applies = 1;
                if (applies) {
                    const tt *all[] = {p.x, p.logp, p.target, p.prob, p.weight, c.out[0],
                                       c.out[1]};
                    for (size_t k = 0; k < sizeof all / sizeof all[0]; k++)
                        if (all[k])
                            tsnap((tt *)all[k]);
                    nll_status s = run(&c);
                    CHECK(s != NLL_OK);
                    for (size_t k = 0; k < sizeof all / sizeof all[0]; k++)
                        if (all[k])
                            CHECK_INT(tchanged_bytes(all[k]), 0);
                    const char *msg = nll_last_error(ctx);
                    CHECK(strncmp(msg, op_fn[op], strlen(op_fn[op])) == 0 &&
                          msg[strlen(op_fn[op])] == ':');
                }
                /* undo */
                tset(p.target, last, saved_target);
                x->t.dtype.lanes = lanes;
                c.out[0]->t.device.device_type = dev;
                if (bad == BAD_LAST_NAN)
                    tset(x, tt_numel(x) - 1, 0.5);
            }
    }
}

/* ---------------------------------------------------------------------------------------- */
/* Thread count */

static int same_outputs(const op_call *a, const op_call *b)
{
    for (int k = 0; k < 2; k++)
        if (a->out[k] && !tsame_bytes(a->out[k], b->out[k]))
            return 0;
    return 1;
}

static void check_thread_count(void)
{
    SECTION("results do not depend on the thread count");
    static const int counts[] = {2, 3, 0};
    for (int d = 0; d < N_DTYPES; d++) {
        problem p = make_problem(dts[d], 3, 25, CLASSES(600), 3); /* 45000 elements: 2 blocks */
        problem q = make_problem(dts[d], 2, 40000 / scale, 2, 1); /* many samples: 2 nll blocks */
        for (int op = 0; op < N_OPS; op++)
            for (int v = 0; v < 4; v++) {
                const problem *pp = v == 3 ? &q : &p;
                nll_reduction r = (nll_reduction)(v % 3);
                op_call one = make_call(op, pp, r, v == 1 ? 0.15 : 0, v != 2, v == 2);
                CHECK_STATUS(nll_context_set_threads(ctx, 1), NLL_OK);
                CHECK_STATUS(run(&one), NLL_OK);
                for (size_t k = 0; k < sizeof counts / sizeof counts[0]; k++) {
                    op_call many = make_call(op, pp, r, v == 1 ? 0.15 : 0, v != 2, v == 2);
                    CHECK_STATUS(nll_context_set_threads(ctx, counts[k]), NLL_OK);
                    CHECK_STATUS(run(&many), NLL_OK);
                    CHECK(same_outputs(&one, &many));
                }
            }
    }
    CHECK_STATUS(nll_context_set_threads(ctx, 1), NLL_OK);
}

/* ---------------------------------------------------------------------------------------- */
/* In place */

/* A copy of src in a fresh buffer with the given strides (NULL = compact). */
static tt *copy_as(const tt *src, const int64_t *strides)
{
    tt *x = tnew_strided(src->t.dtype, src->t.ndim, src->shape, strides, 0);
    for (int64_t i = 0; i < tt_numel(src); i++)
        memcpy(tt_ptr(x, i), tt_ptr(src, i), dtype_size(src->t.dtype));
    return x;
}

static void check_in_place(void)
{
    SECTION("in-place and separate-buffer results agree");
    for (int d = 0; d < N_DTYPES; d++) {
        problem p = make_problem(dts[d], 2, 60, CLASSES(700), 1);
        /* compact, and transposed memory (class axis outermost) */
        const int64_t *layouts[2] = {NULL, SH(1, 60)};
        for (int l = 0; l < 2; l++)
            for (int v = 0; v < 6; v++) {
                nll_reduction r = (nll_reduction)(v % 3);
                nll_options o = opts(r, v >= 3 ? 0.2 : 0, v % 2 ? p.weight : NULL);
                const tt *target = v == 5 ? p.prob : p.target;
                if (v == 5)
                    o.label_smoothing = 0.05;

                /* cross_entropy_backward */
                tt *x = copy_as(p.x, layouts[l]), *g = grad_like(&p);
                CHECK_STATUS(nll_cross_entropy_backward(ctx, NULL, TT(x), TT(target), &o, TT(g)),
                             NLL_OK);
                CHECK_STATUS(nll_cross_entropy_backward(ctx, NULL, TT(x), TT(target), &o, TT(x)),
                             NLL_OK);
                CHECK(tsame_bytes(x, g));

                /* fused: the loss too */
                tt *y = copy_as(p.x, layouts[l]), *gs = grad_like(&p);
                tt *ls = loss_like(&p, r), *li = loss_like(&p, r);
                CHECK_STATUS(nll_cross_entropy_fused(ctx, TT(y), TT(target), &o, TT(ls), TT(gs)),
                             NLL_OK);
                CHECK_STATUS(nll_cross_entropy_fused(ctx, TT(y), TT(target), &o, TT(li), TT(y)),
                             NLL_OK);
                CHECK(tsame_bytes(y, gs));
                CHECK(tsame_bytes(li, ls));
            }

        for (int l = 0; l < 2; l++) {
            /* log_softmax forward over either axis */
            for (int dim = 0; dim < 2; dim++) {
                tt *x = copy_as(p.x, layouts[l]), *y = grad_like(&p);
                CHECK_STATUS(nll_log_softmax_forward(ctx, TT(x), dim, TT(y)), NLL_OK);
                CHECK_STATUS(nll_log_softmax_forward(ctx, TT(x), dim, TT(x)), NLL_OK);
                CHECK(tsame_bytes(x, y));
            }
            /* log_softmax backward into grad_output, and into output */
            tt *go = copy_as(p.x, layouts[l]), *out = copy_as(p.logp, layouts[l]);
            tt *g = grad_like(&p);
            CHECK_STATUS(nll_log_softmax_backward(ctx, TT(go), TT(out), 1, TT(g)), NLL_OK);
            tt *go2 = copy_as(go, layouts[l]);
            CHECK_STATUS(nll_log_softmax_backward(ctx, TT(go2), TT(out), 1, TT(go2)), NLL_OK);
            CHECK(tsame_bytes(go2, g));
            tt *out2 = copy_as(out, layouts[l]);
            CHECK_STATUS(nll_log_softmax_backward(ctx, TT(go), TT(out2), 1, TT(out2)), NLL_OK);
            CHECK(tsame_bytes(out2, g));
        }
    }
}

/* ---------------------------------------------------------------------------------------- */
/* mean = sum / total weight */

/* The summed weight of non-ignored targets, in double. */
static double class_weight_total(const problem *p, int weighted)
{
    double w = 0;
    for (int64_t i = 0; i < p->samples; i++) {
        double t = tget(p->target, i);
        if (t != -100)
            w += weighted ? tget(p->weight, (int64_t)t) : 1;
    }
    return w;
}

static void check_mean_is_sum_over_weight(void)
{
    SECTION("mean equals sum divided by the total weight");
    for (int d = 0; d < N_DTYPES; d++)
        for (int seed = 0; seed < 3; seed++) {
            rng_seed(100 + (uint64_t)seed);
            problem p = make_problem(dts[d], seed == 2 ? 3 : 2, 30 + seed, 50 + 100 * seed, 2);
            double tol = tol_of(dts[d]);
            for (int weighted = 0; weighted < 2; weighted++) {
                const tt *w = weighted ? p.weight : NULL;
                double total = class_weight_total(&p, weighted);
                /* nll_loss: total_weight is W itself */
                nll_options om = opts(NLL_REDUCTION_MEAN, 0, w), os = opts(NLL_REDUCTION_SUM, 0, w);
                tt *lm = tnew(p.dt, 0, NULL), *ls = tnew(p.dt, 0, NULL);
                tt *tw = tnew(p.dt, 0, NULL);
                CHECK_STATUS(nll_loss_forward(ctx, TT(p.logp), TT(p.target), &om, TT(lm), NULL), NLL_OK);
                CHECK_STATUS(nll_loss_forward(ctx, TT(p.logp), TT(p.target), &os, TT(ls), TT(tw)), NLL_OK);
                CHECK_NEAR(tget(tw, 0), total, tol);
                CHECK_NEAR(tget(lm, 0), tget(ls, 0) / total, tol);
                /* cross_entropy, with and without smoothing */
                for (int s = 0; s < 2; s++) {
                    om.label_smoothing = os.label_smoothing = s ? 0.3 : 0;
                    CHECK_STATUS(nll_cross_entropy_forward(ctx, TT(p.x), TT(p.target), &om, TT(lm)), NLL_OK);
                    CHECK_STATUS(nll_cross_entropy_forward(ctx, TT(p.x), TT(p.target), &os, TT(ls)), NLL_OK);
                    CHECK_NEAR(tget(lm, 0), tget(ls, 0) / total, tol);
                    /* probability targets divide by the sample count */
                    CHECK_STATUS(nll_cross_entropy_forward(ctx, TT(p.x), TT(p.prob), &om, TT(lm)), NLL_OK);
                    CHECK_STATUS(nll_cross_entropy_forward(ctx, TT(p.x), TT(p.prob), &os, TT(ls)), NLL_OK);
                    CHECK_NEAR(tget(lm, 0), tget(ls, 0) / (double)p.samples, tol);
                }
            }
            /* every target ignored: mean is 0/0 = NaN, sum is 0 */
            tt *t = tnew(I64, p.sample_ndim, p.sample_shape);
            for (int64_t i = 0; i < p.samples; i++)
                tset(t, i, -100);
            nll_options om = opts(NLL_REDUCTION_MEAN, 0, NULL), os = opts(NLL_REDUCTION_SUM, 0, NULL);
            tt *lm = tnew(p.dt, 0, NULL), *ls = tnew(p.dt, 0, NULL);
            CHECK_STATUS(nll_loss_forward(ctx, TT(p.logp), TT(t), &om, TT(lm), NULL), NLL_OK);
            CHECK_STATUS(nll_loss_forward(ctx, TT(p.logp), TT(t), &os, TT(ls), NULL), NLL_OK);
            CHECK(isnan(tget(lm, 0)) && tget(ls, 0) == 0);
        }
}

/* ---------------------------------------------------------------------------------------- */
/* d(none)/dx with unit upstream = d(sum)/dx */

static void check_none_unit_is_sum(void)
{
    SECTION("the gradient of none with unit upstream equals the gradient of sum");
    for (int d = 0; d < N_DTYPES; d++) {
        problem p = make_problem(dts[d], 3, 20, CLASSES(300), 4);
        tt *ones = tnew(p.dt, p.sample_ndim, p.sample_shape), *one = tscalar(p.dt, 1);
        for (int64_t i = 0; i < p.samples; i++)
            tset(ones, i, 1);
        for (int v = 0; v < 4; v++) {
            const tt *w = v % 2 ? p.weight : NULL;
            const tt *target = v == 3 ? p.prob : p.target;
            double eps = v >= 2 ? 0.1 : 0;
            nll_options on = opts(NLL_REDUCTION_NONE, eps, w), os = opts(NLL_REDUCTION_SUM, eps, w);
            tt *gn = grad_like(&p), *gs = grad_like(&p), *g1 = grad_like(&p);
            /* cross_entropy_backward: ones, NULL (= 1) and a 0-d 1 */
            CHECK_STATUS(nll_cross_entropy_backward(ctx, TT(ones), TT(p.x), TT(target), &on, TT(gn)), NLL_OK);
            CHECK_STATUS(nll_cross_entropy_backward(ctx, NULL, TT(p.x), TT(target), &os, TT(gs)), NLL_OK);
            CHECK_STATUS(nll_cross_entropy_backward(ctx, TT(one), TT(p.x), TT(target), &os, TT(g1)), NLL_OK);
            CHECK(tsame_bytes(gn, gs));
            CHECK(tsame_bytes(g1, gs));
            /* fused: none gives the gradient of the summed loss */
            tt *ln = loss_like(&p, NLL_REDUCTION_NONE), *ls = loss_like(&p, NLL_REDUCTION_SUM);
            tt *fn = grad_like(&p), *fs = grad_like(&p);
            CHECK_STATUS(nll_cross_entropy_fused(ctx, TT(p.x), TT(target), &on, TT(ln), TT(fn)), NLL_OK);
            CHECK_STATUS(nll_cross_entropy_fused(ctx, TT(p.x), TT(target), &os, TT(ls), TT(fs)), NLL_OK);
            CHECK(tsame_bytes(fn, fs));
            CHECK(tsame_bytes(fs, gs));
            /* nll_loss_backward (class targets, no smoothing) */
            if (v < 2) {
                tt *nn = grad_like(&p), *ns = grad_like(&p);
                CHECK_STATUS(nll_loss_backward(ctx, TT(ones), TT(p.logp), TT(p.target), &on, TT(nn)), NLL_OK);
                CHECK_STATUS(nll_loss_backward(ctx, NULL, TT(p.logp), TT(p.target), &os, TT(ns)), NLL_OK);
                CHECK(tsame_bytes(nn, ns));
            }
        }
    }
}

/* ---------------------------------------------------------------------------------------- */
/* Short rows against the reference kernels */

static void check_short_rows(void)
{
    SECTION("short rows agree with the scalar reference kernels");
    static const int64_t class_counts[] = {1, 2, 7, 8, 9, 15, 16, 17, 31, 32, 33};
    static const int64_t sample_counts[] = {1, 17, 37};
    const char *best = nll_context_arch(ctx);
    for (int d = 0; d < N_DTYPES; d++)
        for (size_t ci = 0; ci < sizeof class_counts / sizeof class_counts[0]; ci++)
            for (size_t ni = 0; ni < sizeof sample_counts / sizeof sample_counts[0]; ni++) {
                const int64_t c = class_counts[ci], n = sample_counts[ni];
                problem p = make_problem(dts[d], 2, n, c, 1);
                /* int32 targets, and rows padded to C + 3 (a row stride other than C) */
                tt *t32 = tnew(I32, 1, SH(n)), *padded = copy_as(p.x, SH(c + 3, 1));
                for (int64_t i = 0; i < n; i++)
                    tset(t32, i, tget(p.target, i));
                tt *upstream = trandom(tnew(p.dt, 1, SH(n)), -2, 2);
                for (int v = 0; v < 6; v++) {
                    nll_reduction r = (nll_reduction)(v % 3);
                    nll_options o = opts(r, 0, v % 2 ? p.weight : NULL);
                    const tt *x = v >= 3 ? padded : p.x, *target = v >= 3 ? t32 : p.target;
                    tt *loss[2], *grad[2], *back[2];
                    for (int a = 0; a < 2; a++) {
                        loss[a] = loss_like(&p, r);
                        grad[a] = grad_like(&p);
                        back[a] = grad_like(&p);
                        CHECK_STATUS(nll_context_set_arch(ctx, a ? "ref" : best), NLL_OK);
                        CHECK_STATUS(nll_cross_entropy_fused(ctx, TT(x), TT(target), &o,
                                                             TT(loss[a]), TT(grad[a])),
                                     NLL_OK);
                        CHECK_STATUS(nll_cross_entropy_backward(
                                         ctx, r == NLL_REDUCTION_NONE ? TT(upstream) : NULL,
                                         TT(x), TT(target), &o, TT(back[a])),
                                     NLL_OK);
                    }
                    double tol = 2 * tol_of(p.dt);
                    CHECK_CLOSE(loss[0], loss[1], tol);
                    CHECK_CLOSE(grad[0], grad[1], tol);
                    CHECK_CLOSE(back[0], back[1], tol);
                }
            }
    CHECK_STATUS(nll_context_set_arch(ctx, best), NLL_OK);
}

/* ---------------------------------------------------------------------------------------- */
/* Blocks whose logits rise far above their first elements */

/* The vector kernels sum a block in one sweep against a shift guessed from its first elements,
 * and start the block again from its max when the sum exceeds its bound (or meets NaN or
 * +inf); in place, the block must be restored first. Rows with such elements late in a block
 * agree with the scalar reference kernels, and in place, separate and forward-only agree bit
 * for bit. */
static void check_far_above_guess(void)
{
    SECTION("logits far above a block's first elements agree with the reference kernels");
    enum { ROWS = 6, C = 2 * 2048 + 37 }; /* three vector blocks per row */
    /* row, class, value: above the guess by more than exp's range (95, and 90 after -inf at the
     * block's start), by more than the sum's bound (60), NaN, +inf, and within the bound (14) */
    static const struct { int row, cls; double value; } planted[] = {
        {0, 1000, 100},          {1, 2048 + 700, 60},     {2, 3000, NAN},
        {3, 2048 + 40, INFINITY}, {4, 2 * 2048 + 30, 90}, {5, 1500, 14}};
    const char *best = nll_context_arch(ctx);
    for (int d = 0; d < N_DTYPES; d++) {
        problem p = make_problem(dts[d], 2, ROWS, C, 1);
        for (size_t k = 0; k < sizeof planted / sizeof planted[0]; k++)
            tset(p.x, (int64_t)planted[k].row * C + planted[k].cls, planted[k].value);
        for (int c = 0; c < 64; c++) /* row 4's last block starts at -inf */
            tset(p.x, 4 * C + 2 * 2048 + c, -INFINITY);
        tset(p.target, 0, 1000);
        tset(p.target, 1, 5);
        tset(p.target, 4, 2 * 2048 + 30);
        for (int v = 0; v < 2; v++) {
            nll_options o = opts(NLL_REDUCTION_NONE, v ? 0.1 : 0, v ? p.weight : NULL);
            tt *loss[2], *grad[2], *forward[2], *logp[2];
            for (int a = 0; a < 2; a++) {
                CHECK_STATUS(nll_context_set_arch(ctx, a ? "ref" : best), NLL_OK);
                loss[a] = loss_like(&p, o.reduction);
                grad[a] = grad_like(&p);
                forward[a] = loss_like(&p, o.reduction);
                logp[a] = grad_like(&p);
                CHECK_STATUS(nll_cross_entropy_fused(ctx, TT(p.x), TT(p.target), &o,
                                                     TT(loss[a]), TT(grad[a])),
                             NLL_OK);
                CHECK_STATUS(
                    nll_cross_entropy_forward(ctx, TT(p.x), TT(p.target), &o, TT(forward[a])),
                    NLL_OK);
                CHECK_STATUS(nll_log_softmax_forward(ctx, TT(p.x), 1, TT(logp[a])), NLL_OK);
                tt *y = copy_as(p.x, NULL), *in_place_loss = loss_like(&p, o.reduction);
                CHECK_STATUS(nll_cross_entropy_fused(ctx, TT(y), TT(p.target), &o,
                                                     TT(in_place_loss), TT(y)),
                             NLL_OK);
                CHECK(tsame_bytes(y, grad[a]));
                CHECK(tsame_bytes(in_place_loss, loss[a]));
                CHECK(tsame_bytes(forward[a], loss[a]));
            }
            double tol = 2 * tol_of(p.dt);
            CHECK_CLOSE(loss[0], loss[1], tol);
            CHECK_CLOSE(grad[0], grad[1], tol);
            CHECK_CLOSE(logp[0], logp[1], tol);
        }
    }
    CHECK_STATUS(nll_context_set_arch(ctx, best), NLL_OK);

    /* Every block starts 55 below its max: the guessed shift is refused, so the row's shift is
     * its max and float32 log_softmax keeps its precision (with the guess kept, log_sum would be
     * ~63 and lose ~3 bits). Against the same values in float64. */
    tt *x = trandom(tnew(F32, 2, SH(4, C)), -5, 5), *x64 = tnew(F64, 2, SH(4, C));
    for (int64_t i = 0; i < 4 * C; i++) {
        if (i % C % 2048 < 32)
            tset(x, i, -50);
        tset(x64, i, tget(x, i));
    }
    tt *y = tnew(F32, 2, SH(4, C)), *y64 = tnew(F64, 2, SH(4, C));
    CHECK_STATUS(nll_log_softmax_forward(ctx, TT(x), 1, TT(y)), NLL_OK);
    CHECK_STATUS(nll_log_softmax_forward(ctx, TT(x64), 1, TT(y64)), NLL_OK);
    CHECK_CLOSE(y, y64, 2e-7);
}

int main(void)
{
    static const DLDataType types[N_DTYPES] = {{kDLFloat, 64, 1}, {kDLFloat, 32, 1},
                                               {kDLFloat, 16, 1}, {kDLBfloat, 16, 1}};
    dts = types;
    if (getenv("NLL_TEST_SMALL"))
        scale = 10;
    ctx = check_context();
    rng_seed(11);
    check_rejected_untouched();
    check_thread_count();
    check_in_place();
    check_mean_is_sum_over_weight();
    check_none_unit_is_sum();
    check_short_rows();
    check_far_above_guess();
    nll_context_destroy(ctx);
    return check_finish("test_properties");
}
