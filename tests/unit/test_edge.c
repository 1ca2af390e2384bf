/*
 * test_edge.c — hand-derived edge cases and the semantics spec's §15 fixtures (PyTorch 1.13.1
 * values) through the C API: empty batches, ignored targets, -inf logits, huge logits, every
 * target dtype, strided views, in-place gradients, 16-bit inputs, and the small API functions.
 */
#include "check.h"

static nll_context *ctx;

#define TOL32 1e-6
#define TOL64 1e-12

/* ---------------------------------------------------------------------------------------- */
/* Calling helpers: each checks NLL_OK at the caller's line and returns fresh outputs, which
 * are pre-filled with 0xA5 bytes so that an element the library forgets to write shows. */

static nll_options opts(nll_reduction r, int64_t ii, double eps, tt *w)
{
    nll_options o = nll_options_default();
    o.reduction = r;
    o.ignore_index = ii;
    o.label_smoothing = eps;
    o.weight = w ? TT(w) : NULL;
    return o;
}

/* The loss tensor for input x: 0-d, or for NONE x's shape without its class axis. */
static tt *new_loss(const tt *x, nll_reduction r)
{
    tt *l;
    if (r != NLL_REDUCTION_NONE || x->t.ndim <= 1) {
        l = tnew(x->t.dtype, 0, NULL);
    } else {
        int64_t sh[CHECK_MAX_DIMS];
        int nd = 0;
        for (int d = 0; d < x->t.ndim; d++)
            if (d != 1)
                sh[nd++] = x->shape[d];
        l = tnew(x->t.dtype, nd, sh);
    }
    tfill_bytes(l, 0xA5);
    return l;
}

static tt *new_like(const tt *x)
{
    tt *g = tnew(x->t.dtype, x->t.ndim, x->shape);
    tfill_bytes(g, 0xA5);
    return g;
}

static tt *nll_fwd_(tt *x, tt *t, nll_options o, tt **tw_out, int line)
{
    tt *l = new_loss(x, o.reduction);
    tt *tw = tnew(x->t.dtype, 0, NULL);
    tfill_bytes(tw, 0xA5);
    CHECK_STATUS_AT(line, nll_loss_forward(ctx, TT(x), TT(t), &o, TT(l), TT(tw)), NLL_OK);
    CHECK_STREQ_AT(line, nll_last_error(ctx), "");
    if (tw_out)
        *tw_out = tw;
    return l;
}
#define NLL_FWD(x, t, o, tw) nll_fwd_((x), (t), (o), (tw), __LINE__)

static tt *nll_bwd_(tt *gl, tt *x, tt *t, nll_options o, int line)
{
    tt *g = new_like(x);
    CHECK_STATUS_AT(line, nll_loss_backward(ctx, gl ? TT(gl) : NULL, TT(x), TT(t), &o, TT(g)),
                    NLL_OK);
    return g;
}
#define NLL_BWD(gl, x, t, o) nll_bwd_((gl), (x), (t), (o), __LINE__)

static tt *ce_fwd_(tt *x, tt *t, nll_options o, int line)
{
    tt *l = new_loss(x, o.reduction);
    CHECK_STATUS_AT(line, nll_cross_entropy_forward(ctx, TT(x), TT(t), &o, TT(l)), NLL_OK);
    CHECK_STREQ_AT(line, nll_last_error(ctx), "");
    return l;
}
#define CE_FWD(x, t, o) ce_fwd_((x), (t), (o), __LINE__)

static tt *ce_bwd_(tt *gl, tt *x, tt *t, nll_options o, int line)
{
    tt *g = new_like(x);
    CHECK_STATUS_AT(line,
                    nll_cross_entropy_backward(ctx, gl ? TT(gl) : NULL, TT(x), TT(t), &o, TT(g)),
                    NLL_OK);
    return g;
}
#define CE_BWD(gl, x, t, o) ce_bwd_((gl), (x), (t), (o), __LINE__)

/* Fused; also checks that its loss equals the forward's and its gradient the backward's. */
static tt *ce_fused_(tt *x, tt *t, nll_options o, tt **loss_out, int line)
{
    tt *l = new_loss(x, o.reduction);
    tt *g = new_like(x);
    CHECK_STATUS_AT(line, nll_cross_entropy_fused(ctx, TT(x), TT(t), &o, TT(l), TT(g)), NLL_OK);
    tt *l2 = ce_fwd_(x, t, o, line);
    tt *g2 = ce_bwd_(NULL, x, t, o, line);
    double tol = x->t.dtype.bits == 64 ? TOL64 : TOL32;
    check_close_(l, l2, tol, "fused loss vs forward", __FILE__, line);
    check_close_(g, g2, tol, "fused grad vs backward", __FILE__, line);
    if (loss_out)
        *loss_out = l;
    return g;
}
#define CE_FUSED(x, t, o, l) ce_fused_((x), (t), (o), (l), __LINE__)

static tt *ls_fwd_(tt *x, int64_t dim, int line)
{
    tt *y = new_like(x);
    CHECK_STATUS_AT(line, nll_log_softmax_forward(ctx, TT(x), dim, TT(y)), NLL_OK);
    return y;
}
#define LS_FWD(x, dim) ls_fwd_((x), (dim), __LINE__)

static tt *ls_bwd_(tt *go, tt *y, int64_t dim, int line)
{
    tt *g = new_like(y);
    CHECK_STATUS_AT(line, nll_log_softmax_backward(ctx, TT(go), TT(y), dim, TT(g)), NLL_OK);
    return g;
}
#define LS_BWD(go, y, dim) ls_bwd_((go), (y), (dim), __LINE__)

static double v0(const tt *x) { return tget(x, 0); }

/* ---------------------------------------------------------------------------------------- */
/* Fixtures of the semantics spec §15 */

static const double Xv[9] = {-1, -2, -3, -0.5, -1.5, -2.5, -0.1, -0.2, -0.3};
static const double Zv[9] = {1, 2, 3, 1, 1, 1, 0, -1, 2};
static const double Pv[9] = {0.1, 0.2, 0.7, 1, 0, 0, 0.3, 0.3, 0.4};

static tt *X32(void) { return tvals(F32, 2, SH(3, 3), Xv); }
static tt *Z32(void) { return tvals(F32, 2, SH(3, 3), Zv); }
static tt *W32(void) { return tvals(F32, 1, SH(3), VD(1, 2, 3)); }
static tt *T64(double a, double b, double c) { return tvals(I64, 1, SH(3), VD(a, b, c)); }

#define MEAN NLL_REDUCTION_MEAN
#define SUM NLL_REDUCTION_SUM
#define NONE NLL_REDUCTION_NONE

/* ---------------------------------------------------------------------------------------- */

static void table_nll(void)
{
    tt *X = X32(), *W = W32(), *tw;
    tt *t012 = T64(0, 1, 2), *t0i2 = T64(0, -100, 2), *tall = T64(-100, -100, -100);

    SECTION("§15 #1-3 nll mean/sum/none");
    CHECK_NEAR(v0(NLL_FWD(X, t012, opts(MEAN, -100, 0, NULL), &tw)), 0.93333334, TOL32);
    CHECK_NEAR(v0(tw), 3, 0);
    CHECK_NEAR(v0(NLL_FWD(X, t012, opts(SUM, -100, 0, NULL), &tw)), 2.79999995, TOL32);
    CHECK_NEAR(v0(tw), 3, 0);
    CHECK_VALUES(NLL_FWD(X, t012, opts(NONE, -100, 0, NULL), &tw), VD(1.0, 1.5, 0.30000001),
                 TOL32);
    CHECK_NEAR(v0(tw), 0, 0); /* not computed for NONE with a 2-D input, as PyTorch */

    SECTION("§15 #4-5 nll weighted");
    CHECK_NEAR(v0(NLL_FWD(X, t012, opts(MEAN, -100, 0, W), &tw)), 0.81666666, TOL32);
    CHECK_NEAR(v0(tw), 6, 0);
    CHECK_NEAR(v0(NLL_FWD(X, t012, opts(SUM, -100, 0, W), &tw)), 4.9000001, TOL32);
    CHECK_NEAR(v0(tw), 6, 0);
    CHECK_VALUES(NLL_FWD(X, t012, opts(NONE, -100, 0, W), NULL), VD(1, 3, 0.90000004), TOL32);

    SECTION("§15 #6-7 nll ignored");
    CHECK_NEAR(v0(NLL_FWD(X, t0i2, opts(MEAN, -100, 0, NULL), &tw)), 0.64999998, TOL32);
    CHECK_NEAR(v0(tw), 2, 0);
    CHECK_NEAR(v0(NLL_FWD(X, t0i2, opts(MEAN, -100, 0, W), &tw)), 0.47500002, TOL32);
    CHECK_NEAR(v0(tw), 4, 0);

    SECTION("§15 #8-9 nll all ignored");
    CHECK(isnan(v0(NLL_FWD(X, tall, opts(MEAN, -100, 0, NULL), &tw))));
    CHECK_NEAR(v0(tw), 0, 0);
    CHECK(isnan(v0(NLL_FWD(X, tall, opts(MEAN, -100, 0, W), &tw))));
    CHECK_NEAR(v0(tw), 0, 0);
    CHECK_NEAR(v0(NLL_FWD(X, tall, opts(SUM, -100, 0, NULL), &tw)), 0, 0);
    CHECK_VALUES(NLL_FWD(X, tall, opts(NONE, -100, 0, NULL), NULL), VD(0, 0, 0), 0);

    SECTION("§15 #10-12 nll odd weights");
    CHECK(isnan(v0(NLL_FWD(X, t012, opts(MEAN, -100, 0, tvals(F32, 1, SH(3), VD(0, 0, 0))),
                           NULL))));
    CHECK_NEAR(v0(NLL_FWD(X, t012, opts(MEAN, -100, 0, tvals(F32, 1, SH(3), VD(1, -2, 1))), &tw)),
               -INFINITY, 0);
    CHECK_NEAR(v0(tw), 0, 0);
    CHECK(isnan(v0(NLL_FWD(X, t012,
                           opts(MEAN, -100, 0, tvals(F32, 1, SH(3), VD(1, INFINITY, 1))), NULL))));

    SECTION("§15 #13-15 nll 1-D input");
    {
        tt *x0 = tvals(F32, 1, SH(3), VD(-1, -2, -3));
        tt *t1 = tscalar(I64, 1);
        CHECK_NEAR(v0(NLL_FWD(x0, t1, opts(MEAN, -100, 0, NULL), &tw)), 2.0, TOL32);
        CHECK_NEAR(v0(tw), 1, 0);
        tt *l = NLL_FWD(x0, t1, opts(NONE, -100, 0, NULL), &tw);
        CHECK_INT(l->t.ndim, 0);
        CHECK_NEAR(v0(l), 2.0, TOL32);
        CHECK_NEAR(v0(tw), 1, 0); /* w[t] for a 1-D input */
        CHECK_NEAR(v0(NLL_FWD(x0, t1, opts(SUM, -100, 0, W), &tw)), 4.0, TOL32);
        CHECK_NEAR(v0(tw), 2, 0);
        CHECK_NEAR(v0(NLL_FWD(x0, t1, opts(MEAN, -100, 0, W), &tw)), 2.0, TOL32);
        CHECK_NEAR(v0(tw), 2, 0);
        CHECK_NEAR(v0(NLL_FWD(x0, t1, opts(NONE, -100, 0, W), &tw)), 4.0, TOL32);
        CHECK_NEAR(v0(tw), 2, 0);
        tt *ti = tscalar(I64, -100);
        CHECK(isnan(v0(NLL_FWD(x0, ti, opts(MEAN, -100, 0, NULL), &tw))));
        CHECK_NEAR(v0(tw), 0, 0);
        CHECK_NEAR(v0(NLL_FWD(x0, ti, opts(NONE, -100, 0, NULL), &tw)), 0, 0);
        CHECK_NEAR(v0(tw), 0, 0);
    }

    SECTION("§15 #18-20 empty batches");
    {
        tt *x = tnew(F32, 2, SH(0, 3)), *t = tnew(I64, 1, SH(0));
        CHECK(isnan(v0(NLL_FWD(x, t, opts(MEAN, -100, 0, NULL), &tw))));
        CHECK_NEAR(v0(tw), 0, 0);
        CHECK_NEAR(v0(NLL_FWD(x, t, opts(SUM, -100, 0, NULL), &tw)), 0, 0);
        CHECK_NEAR(v0(tw), 0, 0);
        tt *l = NLL_FWD(x, t, opts(NONE, -100, 0, NULL), NULL);
        CHECK_INT(l->t.ndim, 1);
        CHECK_INT(l->shape[0], 0);
        x = tnew(F32, 4, SH(0, 3, 2, 2));
        t = tnew(I64, 3, SH(0, 2, 2));
        CHECK_INT(NLL_FWD(x, t, opts(NONE, -100, 0, NULL), NULL)->t.ndim, 3);
        CHECK(isnan(v0(NLL_FWD(x, t, opts(MEAN, -100, 0, NULL), NULL))));
        x = tnew(F32, 3, SH(2, 3, 0));
        t = tnew(I64, 2, SH(2, 0));
        CHECK(isnan(v0(NLL_FWD(x, t, opts(MEAN, -100, 0, NULL), NULL))));
        CHECK_NEAR(v0(NLL_FWD(x, t, opts(SUM, -100, 0, W), NULL)), 0, 0);
        /* gradients of empty batches: nothing to write, nothing to fail */
        NLL_BWD(NULL, x, t, opts(MEAN, -100, 0, NULL));
        CE_BWD(NULL, x, t, opts(MEAN, -100, 0.1, NULL));
    }

    SECTION("§15 #21-24, 28, 31 out-of-range targets");
    {
        nll_options o = opts(MEAN, -100, 0, NULL);
        tt *l = tnew(F32, 0, NULL), *ln = tnew(F32, 1, SH(3));
        tt *x20 = tnew(F32, 2, SH(2, 0));
        CHECK_STATUS(nll_loss_forward(ctx, TT(x20), TT(tvals(I64, 1, SH(2), VD(0, 0))), &o, TT(l),
                                      NULL),
                     NLL_ERROR_TARGET_RANGE);
        CHECK_STATUS(nll_loss_forward(ctx, TT(X), TT(T64(0, 3, 1)), &o, TT(l), NULL),
                     NLL_ERROR_TARGET_RANGE);
        nll_options on = opts(NONE, -100, 0, NULL);
        CHECK_STATUS(nll_loss_forward(ctx, TT(X), TT(T64(0, 3, 1)), &on, TT(ln), NULL),
                     NLL_ERROR_TARGET_RANGE);
        CHECK_STATUS(nll_loss_forward(ctx, TT(X), TT(T64(0, -1, 1)), &o, TT(l), NULL),
                     NLL_ERROR_TARGET_RANGE);
        tt *z43 = tnew(F32, 2, SH(4, 3));
        CHECK_STATUS(nll_cross_entropy_forward(ctx, TT(z43),
                                               TT(tvals(I64, 1, SH(4), VD(0, 7, -3, 9))), &o, TT(l)),
                     NLL_ERROR_TARGET_RANGE);
        CHECK_HAS(nll_last_error(ctx), "target[1] = 7");
        nll_options om1 = opts(MEAN, -1, 0, NULL);
        CHECK_STATUS(nll_loss_forward(ctx, TT(X), TT(t0i2), &om1, TT(l), NULL),
                     NLL_ERROR_TARGET_RANGE);
        CHECK_STATUS(nll_loss_forward(ctx, TT(X), TT(tvals(U8, 1, SH(3), VD(0, 255, 2))), &o,
                                      TT(l), NULL),
                     NLL_ERROR_TARGET_RANGE);
    }

    SECTION("§15 #25-27, 29-30 ignore_index");
    CHECK_NEAR(v0(NLL_FWD(X, T64(0, -1, 2), opts(MEAN, -1, 0, NULL), NULL)), 0.64999998, TOL32);
    CHECK_NEAR(v0(NLL_FWD(X, t012, opts(MEAN, 1, 0, NULL), &tw)), 0.64999998, TOL32);
    CHECK_NEAR(v0(tw), 2, 0);
    CHECK_NEAR(v0(NLL_FWD(X, T64(0, 5, 2), opts(MEAN, 5, 0, NULL), NULL)), 0.64999998, TOL32);
    CHECK_NEAR(v0(NLL_FWD(X, tvals(U8, 1, SH(3), VD(0, 1, 2)), opts(MEAN, -100, 0, NULL), NULL)),
               0.93333334, TOL32);
    CHECK_NEAR(v0(NLL_FWD(X, tvals(U8, 1, SH(3), VD(0, 255, 2)), opts(MEAN, 255, 0, NULL), NULL)),
               0.64999998, TOL32);
    /* an ignored target may hold any value, even one far outside [0, C) */
    CHECK_NEAR(v0(NLL_FWD(X, T64(0, 1000000, 2), opts(MEAN, 1000000, 0, NULL), NULL)),
               0.64999998, TOL32);

    SECTION("§15 #46-48 special inputs");
    {
        tt *xn = tvals(F32, 2, SH(2, 3), VD(NAN, 0, 0, 0, 0, 0));
        CHECK_NEAR(v0(NLL_FWD(xn, tvals(I64, 1, SH(2), VD(1, 0)), opts(MEAN, -100, 0, NULL),
                              NULL)),
                   0, 0);
        CHECK(isnan(v0(NLL_FWD(xn, tvals(I64, 1, SH(2), VD(0, 0)), opts(MEAN, -100, 0, NULL),
                               NULL))));
        tt *xi = tvals(F32, 2, SH(2, 3), VD(-INFINITY, 0, 0, 0, 0, 0));
        CHECK_NEAR(v0(NLL_FWD(xi, tvals(I64, 1, SH(2), VD(0, 0)), opts(MEAN, -100, 0, NULL),
                              NULL)),
                   INFINITY, 0);
        CHECK_NEAR(v0(NLL_FWD(tvals(F32, 2, SH(1, 2), VD(2.0, 0.5)), tvals(I64, 1, SH(1), VD(0)),
                              opts(MEAN, -100, 0, NULL), NULL)),
                   -2.0, TOL32);
    }

    SECTION("§15 #49-53 nll backward");
    CHECK_VALUES(NLL_BWD(NULL, X, t0i2, opts(MEAN, -100, 0, W)),
                 VD(-0.25, 0, 0, 0, 0, 0, 0, 0, -0.75), TOL32);
    CHECK_VALUES(NLL_BWD(tvals(F32, 1, SH(3), VD(1, 1, 1)), X, t0i2, opts(NONE, -100, 0, W)),
                 VD(-1, 0, 0, 0, 0, 0, 0, 0, -3), TOL32);
    CHECK_VALUES(NLL_BWD(NULL, X, t0i2, opts(NONE, -100, 0, W)),
                 VD(-1, 0, 0, 0, 0, 0, 0, 0, -3), TOL32);
    CHECK_VALUES(NLL_BWD(tscalar(F32, 2), X, t0i2, opts(NONE, -100, 0, W)),
                 VD(-2, 0, 0, 0, 0, 0, 0, 0, -6), TOL32);
    CHECK_VALUES(NLL_BWD(tvals(F32, 1, SH(3), VD(0.5, 7, -2)), X, t0i2, opts(NONE, -100, 0, W)),
                 VD(-0.5, 0, 0, 0, 0, 0, 0, 0, 6), TOL32);
    CHECK_VALUES(NLL_BWD(NULL, X, tall, opts(MEAN, -100, 0, NULL)), VD(0, 0, 0, 0, 0, 0, 0, 0, 0),
                 0);
    CHECK_VALUES(NLL_BWD(NULL, X, tall, opts(SUM, -100, 0, W)), VD(0, 0, 0, 0, 0, 0, 0, 0, 0), 0);
    CHECK_VALUES(NLL_BWD(NULL, X, t012, opts(MEAN, -100, 0, tvals(F32, 1, SH(3), VD(0, 0, 0)))),
                 VD(NAN, 0, 0, 0, NAN, 0, 0, 0, NAN), 0);
    CHECK_VALUES(NLL_BWD(tscalar(F32, 2), X, t0i2, opts(MEAN, -100, 0, W)),
                 VD(-0.5, 0, 0, 0, 0, 0, 0, 0, -1.5), TOL32);
    CHECK_VALUES(NLL_BWD(NULL, X, t012, opts(SUM, -100, 0, W)), VD(-1, 0, 0, 0, -2, 0, 0, 0, -3),
                 TOL32);
    CHECK_VALUES(NLL_BWD(NULL, X, t012, opts(MEAN, -100, 0, NULL)),
                 VD(-1. / 3, 0, 0, 0, -1. / 3, 0, 0, 0, -1. / 3), TOL32);

    SECTION("§5 nll backward, 4-D input");
    {
        tt *x = tvals(F32, 4, SH(1, 2, 1, 2), VD(-1, -2, -3, -4));
        tt *t = tvals(I64, 3, SH(1, 1, 2), VD(0, 1));
        tt *w = tvals(F32, 1, SH(2), VD(1, 3));
        CHECK_VALUES(NLL_BWD(NULL, x, t, opts(MEAN, -100, 0, w)), VD(-0.25, 0, 0, -0.75), TOL32);
        CHECK_NEAR(v0(NLL_FWD(x, t, opts(MEAN, -100, 0, w), &tw)), (1 + 12) / 4.0, TOL32);
        CHECK_NEAR(v0(tw), 4, 0);
    }
}

static void table_log_softmax(void)
{
    SECTION("§15 #55 log_softmax special values");
    const double I = INFINITY;
    tt *x = tvals(F32, 2, SH(5, 3),
                  VD(0, -I, 1, -I, -I, -I, I, 0, 1, NAN, 0, 1, 1000, 0, -1000));
    tt *y = LS_FWD(x, 1);
    CHECK_VALUES(y,
                 VD(-1.31326163, -I, -0.31326166, NAN, NAN, NAN, NAN, NAN, NAN, NAN, NAN, NAN, 0,
                    -1000, -2000),
                 TOL32);
    tt *ones = tvals(F32, 2, SH(5, 3), VD(1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1));
    CHECK_VALUES(LS_BWD(ones, y, 1),
                 VD(0.19317570, 1.0, -1.19317579, NAN, NAN, NAN, NAN, NAN, NAN, NAN, NAN, NAN, -2,
                    1, 1),
                 TOL32);
    CHECK_VALUES(LS_FWD(x, -1), VD(-1.31326163, -I, -0.31326166, NAN, NAN, NAN, NAN, NAN, NAN,
                                   NAN, NAN, NAN, 0, -1000, -2000),
                 TOL32);

    SECTION("§6.2 more rows");
    tt *x2 = tvals(F32, 2, SH(3, 3), VD(I, I, 0, -1e30, 0, 1e30, 88, 89, 90));
    CHECK_VALUES(LS_FWD(x2, 1),
                 VD(NAN, NAN, NAN, -2e30, -1e30, 0, -2.4076059, -1.4076059, -0.40760595), TOL32);

    SECTION("log_softmax along dim 0 and in place");
    {
        tt *z = Z32();
        tt *y0 = LS_FWD(z, 0);
        for (int c = 0; c < 3; c++) {
            double m = -INFINITY, s = 0;
            for (int r = 0; r < 3; r++)
                m = fmax(m, Zv[r * 3 + c]);
            for (int r = 0; r < 3; r++)
                s += exp(Zv[r * 3 + c] - m);
            for (int r = 0; r < 3; r++)
                CHECK_NEAR(tget(y0, r * 3 + c), Zv[r * 3 + c] - m - log(s), TOL32);
        }
        tt *y1 = LS_FWD(z, 1);
        CHECK_STATUS(nll_log_softmax_forward(ctx, TT(z), 1, TT(z)), NLL_OK);
        CHECK_CLOSE(z, y1, TOL32);
        CHECK_VALUES(y1, VD(-2.40760589, -1.40760589, -0.40760595, -1.09861231, -1.09861231,
                            -1.09861231, -2.16984606, -3.16984606, -0.16984604),
                     TOL32);
        /* backward in place: grad_input is grad_output */
        tt *go = tvals(F32, 2, SH(3, 3), VD(1, -2, 0.5, 0, 0, 0, 3, 1, -1));
        tt *gx = LS_BWD(go, y1, 1);
        CHECK_STATUS(nll_log_softmax_backward(ctx, TT(go), TT(y1), 1, TT(go)), NLL_OK);
        CHECK_CLOSE(go, gx, TOL32);
        /* hand check of row 0: g - softmax * sum(g), sum(g) = -0.5 */
        double p[3] = {exp(-2.40760596), exp(-1.40760596), exp(-0.40760596)};
        CHECK_NEAR(tget(gx, 0), 1 + 0.5 * p[0], TOL32);
        CHECK_NEAR(tget(gx, 1), -2 + 0.5 * p[1], TOL32);
        CHECK_NEAR(tget(gx, 2), 0.5 + 0.5 * p[2], TOL32);
        for (int c = 3; c < 6; c++)
            CHECK_NEAR(tget(gx, c), 0, 0);
        CHECK_NEAR(tget(gx, 6), 3 - 3 * exp(-2.16984602), TOL32);
        CHECK_NEAR(tget(gx, 7), 1 - 3 * exp(-3.16984602), TOL32);
        CHECK_NEAR(tget(gx, 8), -1 - 3 * exp(-0.16984602), TOL32);
    }

    SECTION("log_softmax of an empty tensor and of 1-D input");
    {
        tt *e = tnew(F32, 2, SH(0, 4));
        LS_FWD(e, 1);
        LS_FWD(e, 0);
        tt *v = tvals(F64, 1, SH(3), VD(1, 2, 3));
        double ls = log(exp(1) + exp(2) + exp(3));
        CHECK_VALUES(LS_FWD(v, 0), VD(1 - ls, 2 - ls, 3 - ls), TOL64);
        CHECK_VALUES(LS_FWD(v, -1), VD(1 - ls, 2 - ls, 3 - ls), TOL64);
    }
}

static void table_ce(void)
{
    tt *Z = Z32(), *W = W32(), *l;
    tt *t201 = T64(2, 0, 1), *t2i1 = T64(2, -100, 1), *tall = T64(-100, -100, -100);

    SECTION("§15 #56-57 cross_entropy");
    CHECK_NEAR(v0(CE_FWD(Z, t201, opts(MEAN, -100, 0, NULL))), 1.55868816, TOL32);
    CHECK_NEAR(v0(CE_FWD(Z, t201, opts(SUM, -100, 0, NULL))), 4.67606449, TOL32);
    CHECK_VALUES(CE_FWD(Z, t201, opts(NONE, -100, 0, NULL)), VD(0.40760595, 1.09861231, 3.16984606),
                 TOL32);
    CHECK_NEAR(v0(CE_FWD(Z, t201, opts(MEAN, -100, 0, W))), 1.44352043, TOL32);
    CHECK_NEAR(v0(CE_FWD(Z, t2i1, opts(MEAN, -100, 0, W))), 1.51250196, TOL32);

    SECTION("§7.1 cross_entropy float64");
    {
        tt *Z64 = tvals(F64, 2, SH(3, 3), Zv);
        double l0 = log(exp(1) + exp(2) + exp(3)) - 3, l1 = log(3.0),
               l2 = log(1 + exp(-1) + exp(2)) + 1;
        CHECK_VALUES(CE_FWD(Z64, t201, opts(NONE, -100, 0, NULL)), VD(l0, l1, l2), TOL64);
        CHECK_NEAR(v0(CE_FWD(Z64, t201, opts(MEAN, -100, 0, NULL))), (l0 + l1 + l2) / 3, TOL64);
        tt *W64 = tvals(F64, 1, SH(3), VD(1, 2, 3));
        CHECK_NEAR(v0(CE_FWD(Z64, t201, opts(MEAN, -100, 0, W64))), (3 * l0 + l1 + 2 * l2) / 6,
                   TOL64);
        CHECK_NEAR(v0(CE_FWD(Z64, t2i1, opts(SUM, -100, 0, W64))), 3 * l0 + 2 * l2, TOL64);
    }

    SECTION("§15 #58 cross_entropy gradient, mean");
    {
        const double *g58 = VD(0.03001019, 0.08157617, -0.11158633, -0.22222224, 0.1111111,
                               0.1111111, 0.03806507, -0.31932998, 0.2812649);
        CHECK_VALUES(CE_BWD(NULL, Z, t201, opts(MEAN, -100, 0, NULL)), g58, TOL32);
        CHECK_VALUES(CE_FUSED(Z, t201, opts(MEAN, -100, 0, NULL), &l), g58, TOL32);
        CHECK_NEAR(v0(l), 1.55868816, TOL32);
        /* grad_loss scales it */
        tt *g = CE_BWD(tscalar(F32, -3), Z, t201, opts(MEAN, -100, 0, NULL));
        for (int i = 0; i < 9; i++)
            CHECK_NEAR(tget(g, i), -3 * g58[i], 1e-6);
        /* sum: 3x the mean's gradient; none with ones: the same */
        g = CE_BWD(NULL, Z, t201, opts(SUM, -100, 0, NULL));
        for (int i = 0; i < 9; i++)
            CHECK_NEAR(tget(g, i), 3 * g58[i], 2e-6);
        tt *gn = CE_BWD(tvals(F32, 1, SH(3), VD(1, 1, 1)), Z, t201, opts(NONE, -100, 0, NULL));
        CHECK_CLOSE(gn, g, TOL32);
        gn = CE_BWD(NULL, Z, t201, opts(NONE, -100, 0, NULL));
        CHECK_CLOSE(gn, g, TOL32);
        /* none with a 0-d grad_loss: broadcast */
        gn = CE_BWD(tscalar(F32, 2), Z, t201, opts(NONE, -100, 0, NULL));
        for (int i = 0; i < 9; i++)
            CHECK_NEAR(tget(gn, i), 6 * g58[i], 4e-6);
    }

    SECTION("§15 #59-61 label smoothing");
    CHECK_VALUES(CE_FWD(Z, t201, opts(NONE, -100, 0.1, NULL)),
                 VD(0.50760591, 1.09861231, 3.03651261), TOL32);
    CHECK_NEAR(v0(CE_FWD(Z, t201, opts(MEAN, -100, 0.1, NULL))), 1.54757702, TOL32);
    CHECK_NEAR(v0(CE_FWD(Z, t201, opts(SUM, -100, 0.1, NULL))), 4.64273119, TOL32);
    CHECK_VALUES(CE_FWD(Z, t201, opts(NONE, -100, 0.1, W)), VD(1.31539059, 1.20847356, 6.00635862),
                 TOL32);
    CHECK_NEAR(v0(CE_FWD(Z, t201, opts(MEAN, -100, 0.1, W))), 1.42170382, TOL32);
    CHECK_NEAR(v0(CE_FWD(Z, t201, opts(SUM, -100, 0.1, W))), 8.53022289, TOL32);
    CHECK_VALUES(CE_FWD(Z, t2i1, opts(NONE, -100, 0.1, W)), VD(1.31539059, 0, 6.00635862), TOL32);
    CHECK_NEAR(v0(CE_FWD(Z, t2i1, opts(MEAN, -100, 0.1, W))), 1.46434975, TOL32);
    CHECK_NEAR(v0(CE_FWD(Z, t2i1, opts(SUM, -100, 0.1, W))), 7.32174921, TOL32);

    SECTION("§15 #62 label smoothing gradient");
    {
        const double *g62 = VD(0.04555106, 0.12860917, -0.17416021, 0, 0, 0, 0.03901141,
                               -0.35652927, 0.31751785);
        CHECK_VALUES(CE_BWD(NULL, Z, t2i1, opts(MEAN, -100, 0.1, W)), g62, TOL32);
        CHECK_VALUES(CE_FUSED(Z, t2i1, opts(MEAN, -100, 0.1, W), &l), g62, TOL32);
        CHECK_NEAR(v0(l), 1.46434975, TOL32);
    }

    SECTION("§15 #63 all ignored with label smoothing");
    CHECK(isnan(v0(CE_FWD(Z, tall, opts(MEAN, -100, 0.1, NULL)))));
    CHECK_NEAR(v0(CE_FWD(Z, tall, opts(SUM, -100, 0.1, NULL))), 0, 0);
    CHECK_VALUES(CE_FWD(Z, tall, opts(NONE, -100, 0.1, W)), VD(0, 0, 0), 0);
    CHECK_VALUES(CE_BWD(NULL, Z, tall, opts(MEAN, -100, 0.1, NULL)), VD(0, 0, 0, 0, 0, 0, 0, 0, 0),
                 0);
    CHECK_VALUES(CE_FUSED(Z, tall, opts(SUM, -100, 0.1, W), &l), VD(0, 0, 0, 0, 0, 0, 0, 0, 0),
                 0);
    CHECK_NEAR(v0(l), 0, 0);
    CHECK_VALUES(CE_FUSED(Z, tall, opts(MEAN, -100, 0, NULL), &l), VD(0, 0, 0, 0, 0, 0, 0, 0, 0),
                 0);
    CHECK(isnan(v0(l)));

    SECTION("§15 #64 label smoothing 1.0");
    CHECK_NEAR(v0(CE_FWD(Z, t201, opts(MEAN, -100, 1.0, NULL))), 1.44757700, TOL32);

    SECTION("§15 #65-66 rejected label smoothing (libnll rejects negative and NaN too)");
    {
        double bad[4] = {1.5, INFINITY, -0.5, NAN};
        for (int i = 0; i < 4; i++) {
            nll_options o = opts(MEAN, -100, bad[i], NULL);
            tt *lo = tnew(F32, 0, NULL);
            CHECK_STATUS(nll_cross_entropy_forward(ctx, TT(Z), TT(t201), &o, TT(lo)),
                         NLL_ERROR_LABEL_SMOOTHING);
        }
    }

    SECTION("§15 #67 index vs one-hot probabilities");
    {
        tt *z2 = tvals(F32, 2, SH(2, 3), VD(1, 2, 3, 1, 1, 1));
        tt *t20 = tvals(I64, 1, SH(2), VD(2, 0));
        tt *oh = tvals(F32, 2, SH(2, 3), VD(0, 0, 1, 1, 0, 0));
        CHECK_NEAR(v0(CE_FWD(z2, t20, opts(MEAN, -100, 0.3, W))), 0.73218298, TOL32);
        CHECK_NEAR(v0(CE_FWD(z2, oh, opts(MEAN, -100, 0.3, W))), 1.46436608, TOL32);
        CHECK_NEAR(v0(CE_FWD(z2, t20, opts(MEAN, -100, 0, W))), 0.58035755, TOL32);
        CHECK_NEAR(v0(CE_FWD(z2, oh, opts(MEAN, -100, 0, W))), 1.16071510, TOL32);
        CHECK_NEAR(v0(CE_FWD(z2, t20, opts(MEAN, -100, 0.3, NULL))), 0.90310913, TOL32);
        CHECK_NEAR(v0(CE_FWD(z2, oh, opts(MEAN, -100, 0.3, NULL))), 0.90310907, TOL32);
    }

    SECTION("§15 #68-70 probability targets");
    {
        tt *P = tvals(F32, 2, SH(3, 3), Pv);
        CHECK_NEAR(v0(CE_FWD(Z, P, opts(MEAN, -100, 0, NULL))), 1.19202137, TOL32);
        CHECK_NEAR(v0(CE_FWD(Z, P, opts(SUM, -100, 0, NULL))), 3.57606411, TOL32);
        CHECK_VALUES(CE_FWD(Z, P, opts(NONE, -100, 0, NULL)), VD(0.80760592, 1.09861231, 1.66984618),
                     TOL32);
        CHECK_NEAR(v0(CE_FWD(Z, P, opts(MEAN, -100, 0, W))), 1.83835471, TOL32);
        CHECK_VALUES(CE_FWD(Z, P, opts(NONE, -100, 0, W)), VD(1.6597755, 1.09861231, 2.75667667),
                     TOL32);
        CHECK_NEAR(v0(CE_FWD(Z, P, opts(MEAN, -100, 0.2, NULL))), 1.24313247, TOL32);
        CHECK_VALUES(CE_FWD(Z, P, opts(NONE, -100, 0.2, NULL)),
                     VD(0.92760599, 1.09861243, 1.70317936), TOL32);
        /* any negative ignore_index is fine with probabilities */
        CHECK_NEAR(v0(CE_FWD(Z, P, opts(MEAN, -1, 0, NULL))), 1.19202137, TOL32);
        /* gradient: softmax * sum(q) - q, / N for mean */
        tt *g = CE_FUSED(Z, P, opts(MEAN, -100, 0, NULL), &l);
        CHECK_NEAR(v0(l), 1.19202137, TOL32);
        for (int i = 0; i < 3; i++) {
            double m = fmax(fmax(Zv[3 * i], Zv[3 * i + 1]), Zv[3 * i + 2]), s = 0;
            for (int c = 0; c < 3; c++)
                s += exp(Zv[3 * i + c] - m);
            for (int c = 0; c < 3; c++)
                CHECK_NEAR(tget(g, 3 * i + c), (exp(Zv[3 * i + c] - m) / s - Pv[3 * i + c]) / 3,
                           TOL32);
        }
    }

    SECTION("§15 #75 empty probability targets");
    {
        tt *x = tnew(F32, 2, SH(0, 3)), *p = tnew(F32, 2, SH(0, 3));
        CHECK(isnan(v0(CE_FWD(x, p, opts(MEAN, -100, 0, NULL)))));
        tt *s = CE_FWD(x, p, opts(SUM, -100, 0, NULL));
        CHECK(v0(s) == 0 && signbit(v0(s)));
        tt *n = CE_FWD(x, p, opts(NONE, -100, 0, NULL));
        CHECK_INT(n->t.ndim, 1);
        CHECK_INT(n->shape[0], 0);
        tt *x64 = tnew(F64, 2, SH(0, 3)), *p64 = tnew(F64, 2, SH(0, 3));
        s = CE_FWD(x64, p64, opts(SUM, -100, 0, NULL));
        CHECK(v0(s) == 0 && signbit(v0(s)));
        CE_FUSED(x, p, opts(MEAN, -100, 0, NULL), NULL);
    }

    SECTION("§15 #77-78 4-D cross_entropy");
    {
        double xv[24];
        for (int i = 0; i < 24; i++)
            xv[i] = i / 7.0;
        tt *x4 = tvals(F32, 4, SH(2, 3, 2, 2), xv);
        tt *t4 = tvals(I64, 3, SH(2, 2, 2), VD(0, 1, 2, -100, 1, 1, 0, 2));
        CHECK_NEAR(v0(CE_FWD(x4, t4, opts(MEAN, -100, 0, NULL))), 1.20462668, TOL32);
        CHECK_NEAR(v0(CE_FWD(x4, t4, opts(SUM, -100, 0, NULL))), 8.43238640, TOL32);
        CHECK_NEAR(v0(CE_FWD(x4, t4, opts(MEAN, -100, 0, W))), 1.04136121, TOL32);
        CHECK_NEAR(v0(CE_FWD(x4, t4, opts(MEAN, -100, 0.2, W))), 1.03591907, TOL32);
        tt *n = CE_FWD(x4, t4, opts(NONE, -100, 0, NULL));
        CHECK_INT(n->t.ndim, 3);
        CHECK_INT(n->shape[0] * 100 + n->shape[1] * 10 + n->shape[2], 222);
        CHECK_VALUES(n,
                     VD(1.7760551, 1.20462656, 0.63319796, 0, 1.20462656, 1.20462656, 1.7760551,
                        0.6331979),
                     TOL32);
        /* equal to the flattened (N*H*W, C) problem */
        tt *xf = tnew(F32, 2, SH(8, 3)), *tf = tnew(I64, 1, SH(8));
        for (int n_ = 0; n_ < 2; n_++)
            for (int s = 0; s < 4; s++) {
                for (int c = 0; c < 3; c++)
                    tset(xf, (n_ * 4 + s) * 3 + c, xv[n_ * 12 + c * 4 + s]);
                tset(tf, n_ * 4 + s, tget(t4, n_ * 4 + s));
            }
        CHECK_CLOSE(CE_FWD(xf, tf, opts(NONE, -100, 0.2, W)), CE_FWD(x4, t4, opts(NONE, -100, 0.2, W)),
                    TOL32);
        tt *g4 = CE_FUSED(x4, t4, opts(MEAN, -100, 0.2, W), NULL);
        tt *gf = CE_FUSED(xf, tf, opts(MEAN, -100, 0.2, W), NULL);
        for (int n_ = 0; n_ < 2; n_++)
            for (int s = 0; s < 4; s++)
                for (int c = 0; c < 3; c++)
                    CHECK_NEAR(tget(g4, n_ * 12 + c * 4 + s), tget(gf, (n_ * 4 + s) * 3 + c), TOL32);
    }

    SECTION("§15 #79-81 -inf logits");
    {
        const double I = INFINITY;
        tt *x = tvals(F32, 2, SH(1, 3), VD(0, -I, 1));
        tt *t2 = tvals(I64, 1, SH(1), VD(2)), *t1 = tvals(I64, 1, SH(1), VD(1));
        CHECK_NEAR(v0(CE_FWD(x, t2, opts(MEAN, -100, 0, NULL))), 0.31326166, TOL32);
        CHECK_NEAR(v0(CE_FWD(x, t1, opts(MEAN, -100, 0, NULL))), INFINITY, 0);
        CHECK_NEAR(v0(CE_FWD(x, t2, opts(MEAN, -100, 0.1, NULL))), INFINITY, 0);
        CHECK_VALUES(CE_FUSED(x, t2, opts(SUM, -100, 0, NULL), NULL),
                     VD(0.26894142, 0, -0.26894142), TOL32);

        tt *xa = tvals(F32, 2, SH(1, 3), VD(-I, -I, -I));
        tt *t0 = tvals(I64, 1, SH(1), VD(0));
        CHECK(isnan(v0(CE_FWD(xa, t0, opts(MEAN, -100, 0, NULL)))));
        CHECK_VALUES(CE_FUSED(xa, t0, opts(MEAN, -100, 0, NULL), NULL), VD(NAN, NAN, NAN), 0);

        tt *xb = tvals(F32, 2, SH(2, 3), VD(-I, -I, -I, 0, 1, 2));
        tt *tb = tvals(I64, 1, SH(2), VD(-100, 1));
        CHECK_NEAR(v0(CE_FWD(xb, tb, opts(MEAN, -100, 0, NULL))), 1.40760589, TOL32);
        const double *gb = VD(NAN, NAN, NAN, 0.09003057, -0.75527153, 0.66524096);
        CHECK_VALUES(CE_BWD(NULL, xb, tb, opts(MEAN, -100, 0, NULL)), gb, TOL32);
        CHECK_VALUES(CE_FUSED(xb, tb, opts(MEAN, -100, 0, NULL), &l), gb, TOL32);
        CHECK_NEAR(v0(l), 1.40760589, TOL32);
        CHECK_VALUES(CE_FWD(xb, tb, opts(NONE, -100, 0, NULL)), VD(0, 1.40760589), TOL32);
    }
}

static void edge_small(void)
{
    tt *l;
    SECTION("C = 1");
    {
        tt *x = tvals(F32, 2, SH(3, 1), VD(-0.5, 2, 7));
        tt *t = tvals(I64, 1, SH(3), VD(0, 0, 0));
        CHECK_VALUES(CE_FWD(x, t, opts(NONE, -100, 0, NULL)), VD(0, 0, 0), 0);
        CHECK_VALUES(CE_FUSED(x, t, opts(MEAN, -100, 0.3, NULL), &l), VD(0, 0, 0), 1e-7);
        CHECK_NEAR(v0(l), 0, 1e-7);
        CHECK_VALUES(NLL_FWD(x, t, opts(NONE, -100, 0, NULL), NULL), VD(0.5, -2, -7), 0);
        CHECK_NEAR(v0(NLL_FWD(x, t, opts(MEAN, -100, 0, NULL), NULL)), -8.5 / 3, TOL32);
        CHECK_VALUES(LS_FWD(x, 1), VD(0, 0, 0), 0);
    }

    SECTION("N = 0 cross_entropy");
    {
        tt *x = tnew(F32, 2, SH(0, 3)), *t = tnew(I64, 1, SH(0));
        CHECK(isnan(v0(CE_FWD(x, t, opts(MEAN, -100, 0, NULL)))));
        CHECK(isnan(v0(CE_FWD(x, t, opts(MEAN, -100, 0.1, NULL)))));
        tt *s = CE_FWD(x, t, opts(SUM, -100, 0, NULL));
        CHECK(v0(s) == 0);
        CHECK_INT(tt_numel(CE_FWD(x, t, opts(NONE, -100, 0, NULL))), 0);
        CE_FUSED(x, t, opts(MEAN, -100, 0, NULL), &l);
        CHECK(isnan(v0(l)));
    }

    SECTION("all targets ignored");
    {
        tt *z = Z32(), *tall = T64(-100, -100, -100), *tw;
        CHECK(isnan(v0(CE_FWD(z, tall, opts(MEAN, -100, 0, NULL)))));
        CHECK_NEAR(v0(CE_FWD(z, tall, opts(SUM, -100, 0, NULL))), 0, 0);
        CHECK_VALUES(CE_BWD(NULL, z, tall, opts(SUM, -100, 0, NULL)), VD(0, 0, 0, 0, 0, 0, 0, 0, 0),
                     0);
        CHECK_VALUES(CE_BWD(tvals(F32, 1, SH(3), VD(1, 2, 3)), z, tall, opts(NONE, -100, 0, NULL)),
                     VD(0, 0, 0, 0, 0, 0, 0, 0, 0), 0);
        CHECK(isnan(v0(NLL_FWD(z, tall, opts(MEAN, -100, 0, NULL), &tw))));
        CHECK_NEAR(v0(tw), 0, 0);
    }

    SECTION("ignore_index inside [0, C) and beyond C for cross_entropy");
    {
        tt *z = Z32();
        double l0 = 0.40760595, l2 = 3.16984606;
        CHECK_NEAR(v0(CE_FWD(z, T64(2, 0, 1), opts(MEAN, 0, 0, NULL))), (l0 + l2) / 2, TOL32);
        CHECK_NEAR(v0(CE_FWD(z, T64(2, 7, 1), opts(MEAN, 7, 0, NULL))), (l0 + l2) / 2, TOL32);
        tt *g = CE_BWD(NULL, z, T64(2, 0, 1), opts(MEAN, 0, 0, NULL));
        CHECK_NEAR(tget(g, 3), 0, 0);
        CHECK_NEAR(tget(g, 4), 0, 0);
        CHECK_NEAR(tget(g, 5), 0, 0);
        /* C counts the ignored class in label smoothing: eps/C with C = 3 */
        double ls = log(exp(1) + exp(2) + exp(3));
        double sm0 = (ls - 1) + (ls - 2) + (ls - 3);
        CHECK_NEAR(v0(CE_FWD(tvals(F32, 2, SH(1, 3), VD(1, 2, 3)), tvals(I64, 1, SH(1), VD(2)),
                             opts(SUM, 1, 0.3, NULL))),
                   0.7 * (ls - 3) + 0.1 * sm0, TOL32);
    }

    SECTION("logits of +-1e4");
    {
        for (int k = 0; k < 2; k++) {
            DLDataType dt = k ? F64 : F32;
            tt *x = tvals(dt, 2, SH(3, 3), VD(1e4, -1e4, 0, 1e4, -1e4, 0, 1e4, -1e4, 0));
            tt *t = T64(0, 1, 2);
            CHECK_VALUES(CE_FWD(x, t, opts(NONE, -100, 0, NULL)), VD(0, 2e4, 1e4), TOL64);
            CHECK_VALUES(CE_FUSED(x, t, opts(SUM, -100, 0, NULL), NULL),
                         VD(0, 0, 0, 1, -1, 0, 1, 0, -1), TOL64);
            CHECK_VALUES(LS_FWD(x, 1), VD(0, -2e4, -1e4, 0, -2e4, -1e4, 0, -2e4, -1e4), TOL64);
            CHECK_NEAR(v0(CE_FWD(x, t, opts(MEAN, -100, 0.1, NULL))),
                       (0.9 * 3e4 + 0.1 / 3 * 3 * 3e4) / 3, 1e-6);
        }
    }

    SECTION("the loss may be a 1-element tensor");
    {
        tt *x = X32(), *t = T64(0, 1, 2);
        nll_options o = opts(MEAN, -100, 0, NULL);
        tt *l1 = tnew(F32, 1, SH(1)), *l2 = tnew(F32, 2, SH(1, 1));
        CHECK_STATUS(nll_loss_forward(ctx, TT(x), TT(t), &o, TT(l1), NULL), NLL_OK);
        CHECK_NEAR(v0(l1), 0.93333334, TOL32);
        CHECK_STATUS(nll_cross_entropy_forward(ctx, TT(x), TT(t), &o, TT(l2)), NLL_OK);
        CHECK_NEAR(v0(l2), v0(CE_FWD(x, t, o)), 0);
    }
}

/* Every integer dtype of the target gives the int64 result, bit for bit. */
static void edge_target_dtypes(void)
{
    SECTION("every integer target dtype");
    DLDataType dts[8] = {I8, I16, I32, I64, U8, U16, U32, U64};
    rng_seed(7);
    tt *x = trandom(tnew(F32, 2, SH(6, 4)), -3, 2);
    tt *w = tvals(F32, 1, SH(4), VD(0.5, 1, 2, 1.5));
    const double *tv = VD(3, 0, 2, 1, 3, 3);
    tt *ref64 = tvals(I64, 1, SH(6), tv);
    for (int r = 0; r < 3; r++) {
        nll_options o = opts((nll_reduction)r, -100, 0, w), os = opts((nll_reduction)r, 2, 0.1, w);
        tt *a_nll = NLL_FWD(x, ref64, o, NULL), *a_nllg = NLL_BWD(NULL, x, ref64, o);
        tt *a_ce = CE_FWD(x, ref64, os), *a_ceg = CE_BWD(NULL, x, ref64, os);
        for (int k = 0; k < 8; k++) {
            tt *t = tvals(dts[k], 1, SH(6), tv);
            CHECK(tsame_bytes(NLL_FWD(x, t, o, NULL), a_nll));
            CHECK(tsame_bytes(NLL_BWD(NULL, x, t, o), a_nllg));
            CHECK(tsame_bytes(CE_FWD(x, t, os), a_ce));
            CHECK(tsame_bytes(CE_BWD(NULL, x, t, os), a_ceg));
            tt *l;
            CHECK(tsame_bytes(CE_FUSED(x, t, os, &l), a_ceg));
            CHECK(tsame_bytes(l, a_ce));
        }
        /* signed targets with a negative ignore_index */
        const double *tn = VD(3, -1, 2, 1, -1, 3);
        nll_options oi = opts((nll_reduction)r, -1, 0.1, w);
        tt *b = CE_FWD(x, tvals(I64, 1, SH(6), tn), oi);
        DLDataType sdts[3] = {I8, I16, I32};
        for (int k = 0; k < 3; k++)
            CHECK(tsame_bytes(CE_FWD(x, tvals(sdts[k], 1, SH(6), tn), oi), b));
        /* unsigned targets with ignore_index 255 or 65535 */
        const double *tu = VD(3, 255, 2, 1, 255, 3);
        nll_options ou = opts((nll_reduction)r, 255, 0.1, w);
        b = CE_FWD(x, tvals(I64, 1, SH(6), tu), ou);
        CHECK(tsame_bytes(CE_FWD(x, tvals(U8, 1, SH(6), tu), ou), b));
        CHECK(tsame_bytes(CE_FWD(x, tvals(U16, 1, SH(6), tu), ou), b));
        CHECK(tsame_bytes(CE_FWD(x, tvals(U64, 1, SH(6), tu), ou), b));
    }
}

/* Strided views give the contiguous result. */
static void edge_strides(void)
{
    rng_seed(11);
    const int64_t N = 4, C = 5;
    tt *xc = trandom(tnew(F32, 2, SH(N, C)), -3, 3);
    tt *tc = tvals(I64, 1, SH(4), VD(4, 0, 2, 2));
    tt *w = tvals(F32, 1, SH(5), VD(1, 0.5, 2, 1, 3));

    /* a transposed view: memory holds (C, N), the view is (N, C) with strides (1, N) */
    tt *xt = tnew_strided(F32, 2, SH(N, C), SH(1, N), 0);
    /* a slice of a (7, 9) buffer, rows 2.., cols 3.., through byte_offset */
    tt *xs = tnew_strided(F32, 2, SH(N, C), SH(9, 1), (uint64_t)(2 * 9 + 3) * 4);
    trandom(xs, 100, 200); /* garbage around the slice is never read */
    tfill_bytes(xs, 0x7F);
    for (int64_t i = 0; i < N * C; i++) {
        tset(xt, i, tget(xc, i));
        tset(xs, i, tget(xc, i));
    }
    /* a strided target: every other element of a length-8 buffer */
    tt *ts = tnew_strided(I64, 1, SH(4), SH(2), 8);
    for (int64_t i = 0; i < 4; i++)
        tset(ts, i, tget(tc, i));
    /* a strided weight */
    tt *ws = tnew_strided(F32, 1, SH(5), SH(3), 4);
    for (int64_t i = 0; i < 5; i++)
        tset(ws, i, tget(w, i));

    tt *views[2] = {xt, xs};
    for (int v = 0; v < 2; v++) {
        SECTION(v ? "sliced view with byte_offset" : "transposed view");
        tt *x = views[v];
        for (int r = 0; r < 3; r++) {
            for (int e = 0; e < 2; e++) {
                nll_options o = opts((nll_reduction)r, 2, e ? 0.2 : 0, w);
                nll_options os = opts((nll_reduction)r, 2, e ? 0.2 : 0, ws);
                CHECK_CLOSE(CE_FWD(x, ts, os), CE_FWD(xc, tc, o), TOL32);
                CHECK_CLOSE(CE_BWD(NULL, x, ts, os), CE_BWD(NULL, xc, tc, o), TOL32);
                CHECK_CLOSE(CE_FUSED(x, ts, os, NULL), CE_FUSED(xc, tc, o, NULL), TOL32);
                if (!e) {
                    CHECK_CLOSE(NLL_FWD(x, ts, os, NULL), NLL_FWD(xc, tc, o, NULL), TOL32);
                    CHECK_CLOSE(NLL_BWD(NULL, x, ts, os), NLL_BWD(NULL, xc, tc, o), TOL32);
                }
            }
        }
        CHECK_CLOSE(LS_FWD(x, 1), LS_FWD(xc, 1), TOL32);
        CHECK_CLOSE(LS_FWD(x, 0), LS_FWD(xc, 0), TOL32);
        tt *y = LS_FWD(xc, 1);
        CHECK_CLOSE(LS_BWD(x, y, 1), LS_BWD(xc, y, 1), TOL32);
        /* probability targets through the same view */
        CHECK_CLOSE(CE_FWD(xc, x, opts(NONE, -100, 0.1, w)), CE_FWD(xc, xc, opts(NONE, -100, 0.1, w)),
                    TOL32);
    }

    SECTION("stride-0 broadcast target");
    {
        tt *tb = tnew_strided(I64, 1, SH(4), SH(0), 0);
        tset(tb, 0, 3);
        tt *t3 = tvals(I64, 1, SH(4), VD(3, 3, 3, 3));
        for (int r = 0; r < 3; r++) {
            nll_options o = opts((nll_reduction)r, -100, 0.1, w);
            CHECK_CLOSE(CE_FWD(xc, tb, o), CE_FWD(xc, t3, o), TOL32);
            CHECK_CLOSE(CE_FUSED(xc, tb, o, NULL), CE_FUSED(xc, t3, o, NULL), TOL32);
            o.label_smoothing = 0;
            CHECK_CLOSE(NLL_BWD(NULL, xc, tb, o), NLL_BWD(NULL, xc, t3, o), TOL32);
        }
        /* a broadcast input row and a broadcast upstream gradient */
        tt *xr = tnew_strided(F32, 2, SH(N, C), SH(0, 1), 0);
        tt *xr_c = tnew(F32, 2, SH(N, C));
        for (int64_t c = 0; c < C; c++)
            tset(xr, c, c * 0.5 - 1);
        for (int64_t i = 0; i < N * C; i++)
            tset(xr_c, i, tget(xr, i));
        CHECK_CLOSE(CE_FUSED(xr, tc, opts(MEAN, -100, 0, w), NULL),
                    CE_FUSED(xr_c, tc, opts(MEAN, -100, 0, w), NULL), TOL32);
        tt *glb = tnew_strided(F32, 1, SH(4), SH(0), 0);
        tset(glb, 0, 1.5);
        tt *glc = tvals(F32, 1, SH(4), VD(1.5, 1.5, 1.5, 1.5));
        CHECK_CLOSE(CE_BWD(glb, xc, tc, opts(NONE, -100, 0, w)),
                    CE_BWD(glc, xc, tc, opts(NONE, -100, 0, w)), TOL32);
    }

    SECTION("strided outputs");
    {
        nll_options o = opts(NONE, -100, 0.1, w);
        tt *lref = CE_FWD(xc, tc, o), *gref = CE_BWD(NULL, xc, tc, o);
        tt *ls = tnew_strided(F32, 1, SH(4), SH(-1 + 3), 4); /* stride 2 */
        tt *gs = tnew_strided(F32, 2, SH(N, C), SH(1, N), 0); /* transposed */
        CHECK_STATUS(nll_cross_entropy_fused(ctx, TT(xc), TT(tc), &o, TT(ls), TT(gs)), NLL_OK);
        CHECK_CLOSE(ls, lref, TOL32);
        CHECK_CLOSE(gs, gref, TOL32);
        tt *ys = tnew_strided(F32, 2, SH(N, C), SH(1, N), 0);
        CHECK_STATUS(nll_log_softmax_forward(ctx, TT(xc), 1, TT(ys)), NLL_OK);
        CHECK_CLOSE(ys, LS_FWD(xc, 1), TOL32);
    }

    SECTION("strided ND input (class axis not next to the spatial ones)");
    {
        /* logical (2, 3, 4) stored as (2, 4, 3): strides (12, 1, 3) */
        tt *xn = tnew_strided(F32, 3, SH(2, 3, 4), SH(12, 1, 3), 0);
        tt *xnc = trandom(tnew(F32, 3, SH(2, 3, 4)), -2, 2);
        for (int64_t i = 0; i < 24; i++)
            tset(xn, i, tget(xnc, i));
        tt *tn = tvals(I64, 2, SH(2, 4), VD(0, 1, 2, -100, 2, 2, 1, 0));
        tt *w3 = tvals(F32, 1, SH(3), VD(1, 2, 0.5));
        for (int r = 0; r < 3; r++) {
            nll_options o = opts((nll_reduction)r, -100, 0.1, w3);
            CHECK_CLOSE(CE_FWD(xn, tn, o), CE_FWD(xnc, tn, o), TOL32);
            CHECK_CLOSE(CE_FUSED(xn, tn, o, NULL), CE_FUSED(xnc, tn, o, NULL), TOL32);
        }
    }
}

/* In-place fused (grad_input is the input) equals the separate-buffer result. */
static void edge_in_place(void)
{
    rng_seed(21);
    tt *w = tvals(F32, 1, SH(5), VD(1, 0.5, 2, 1, 3));
    for (int r = 0; r < 3; r++) {
        for (int kind = 0; kind < 3; kind++) {
            SECTION(kind == 0 ? "in-place fused, class indices"
                    : kind == 1 ? "in-place fused, probabilities" : "in-place backward");
            tt *x = trandom(tnew(F32, 2, SH(6, 5)), -4, 4);
            tt *t = kind == 1 ? trandom(tnew(F32, 2, SH(6, 5)), 0, 1)
                              : tvals(I64, 1, SH(6), VD(0, 4, -100, 2, 2, 1));
            nll_options o = opts((nll_reduction)r, -100, 0.1, w);
            tt *lsep, *gsep = CE_FUSED(x, t, o, &lsep);
            tt *lin = new_loss(x, o.reduction);
            if (kind < 2) {
                CHECK_STATUS(nll_cross_entropy_fused(ctx, TT(x), TT(t), &o, TT(lin), TT(x)),
                             NLL_OK);
                CHECK_CLOSE(lin, lsep, TOL32);
            } else {
                CHECK_STATUS(nll_cross_entropy_backward(ctx, NULL, TT(x), TT(t), &o, TT(x)),
                             NLL_OK);
            }
            CHECK_CLOSE(x, gsep, TOL32);
        }
    }
    SECTION("in-place fused, ND float64 strided");
    {
        tt *x = tnew_strided(F64, 3, SH(2, 3, 4), SH(12, 1, 3), 8);
        trandom(x, -3, 3);
        tt *t = tvals(I64, 2, SH(2, 4), VD(0, 1, 2, -100, 2, 2, 1, 0));
        nll_options o = opts(MEAN, -100, 0.2, NULL);
        tt *lsep, *gsep = CE_FUSED(x, t, o, &lsep);
        tt *lin = new_loss(x, MEAN);
        CHECK_STATUS(nll_cross_entropy_fused(ctx, TT(x), TT(t), &o, TT(lin), TT(x)), NLL_OK);
        CHECK_CLOSE(lin, lsep, TOL64);
        CHECK_CLOSE(x, gsep, TOL64);
    }
}

/* ---------------------------------------------------------------------------------------- */
/* 16-bit inputs against a float64 computation on the same 16-bit values */

/* Cross-entropy over (N, C) rows in float64; loss_none[i], the reduced loss, and the gradient
 * of the reduced loss (of the summed loss for NONE). */
static double ref_ce(const double *x, int64_t N, int64_t C, const int64_t *t, const double *w,
                     int red, double eps, int64_t ii, double *loss_none, double *grad)
{
    double total = 0, W = 0;
    double *lp = (double *)malloc((size_t)C * sizeof(double));
    for (int64_t i = 0; i < N; i++) {
        const double *r = x + i * C;
        double m = -INFINITY, s = 0;
        for (int64_t c = 0; c < C; c++)
            m = fmax(m, r[c]);
        for (int64_t c = 0; c < C; c++)
            s += exp(r[c] - m);
        for (int64_t c = 0; c < C; c++)
            lp[c] = r[c] - m - log(s);
        loss_none[i] = 0;
        if (t[i] == ii)
            continue;
        double wt = w ? w[t[i]] : 1, sm = 0;
        for (int64_t c = 0; c < C; c++)
            sm -= (w ? w[c] : 1) * lp[c];
        loss_none[i] = (1 - eps) * wt * -lp[t[i]] + eps / (double)C * sm;
        total += loss_none[i];
        W += wt;
    }
    for (int64_t i = 0; i < N; i++) {
        const double *r = x + i * C;
        double m = -INFINITY, s = 0;
        for (int64_t c = 0; c < C; c++)
            m = fmax(m, r[c]);
        for (int64_t c = 0; c < C; c++)
            s += exp(r[c] - m);
        double sw = 0;
        for (int64_t c = 0; c < C; c++)
            sw += w ? w[c] : 1;
        for (int64_t c = 0; c < C; c++) {
            double g = 0;
            if (t[i] != ii) {
                double p = exp(r[c] - m) / s, wt = w ? w[t[i]] : 1;
                g = (1 - eps) * wt * (p - (c == t[i])) + eps / (double)C * (p * sw - (w ? w[c] : 1));
                if (red == NLL_REDUCTION_MEAN)
                    g /= W;
            }
            grad[i * C + c] = g;
        }
    }
    free(lp);
    return red == NLL_REDUCTION_MEAN ? total / W : total;
}

static void check_ulp_(double got, double ref, int mant, int emin, const char *what, int line)
{
    chk_count_++;
    double u = ulp16(ref, mant, emin);
    if (fabs(got - ref) <= u)
        return;
    chk_fail_(__FILE__, line);
    fprintf(stderr, "%s: expected %.9g (+- %g, one ulp), got %.9g\n", what, ref, u, got);
}
#define CHECK_ULP(got, ref, mant, emin) check_ulp_((got), (ref), (mant), (emin), #got, __LINE__)

static void edge_16bit(void)
{
    const int64_t N = 7, C = 5;
    for (int k = 0; k < 2; k++) {
        DLDataType dt = k ? BF16 : F16;
        int mant = k ? 7 : 10, emin = k ? -126 : -14;
        SECTION(k ? "bfloat16 inputs" : "float16 inputs");
        rng_seed(31 + (uint64_t)k);
        tt *x = trandom(tnew(dt, 2, SH(N, C)), -4, 4);
        tt *w = tvals(dt, 1, SH(5), VD(1, 0.5, 2, 1.25, 3));
        int64_t tv[7] = {0, 4, -100, 2, 2, 1, 3};
        tt *t = tnew(I64, 1, SH(7));
        for (int i = 0; i < 7; i++)
            tset(t, i, (double)tv[i]);
        double xd[35], wd[5], ln[7], g[35];
        for (int i = 0; i < 35; i++)
            xd[i] = tget(x, i);
        for (int i = 0; i < 5; i++)
            wd[i] = tget(w, i);
        for (int r = 0; r < 3; r++) {
            for (int e = 0; e < 2; e++) {
                double eps = e ? 0.1 : 0;
                nll_options o = opts((nll_reduction)r, -100, eps, w);
                double red = ref_ce(xd, N, C, tv, wd, r, eps, -100, ln, g);
                tt *l, *gr = CE_FUSED(x, t, o, &l);
                CHECK_INT(l->t.dtype.bits, 16);
                if (r == NLL_REDUCTION_NONE) {
                    for (int i = 0; i < N; i++)
                        CHECK_ULP(tget(l, i), ln[i], mant, emin);
                } else {
                    CHECK_ULP(v0(l), red, mant, emin);
                }
                for (int i = 0; i < N * C; i++)
                    CHECK_ULP(tget(gr, i), g[i], mant, emin);
            }
        }
        /* nll_loss on the same values (as log-probabilities), total_weight in 16 bits */
        {
            double s = 0, W = 0;
            for (int i = 0; i < N; i++)
                if (tv[i] != -100) {
                    s -= wd[tv[i]] * xd[i * C + tv[i]];
                    W += wd[tv[i]];
                }
            tt *tw;
            CHECK_ULP(v0(NLL_FWD(x, t, opts(MEAN, -100, 0, w), &tw)), s / W, mant, emin);
            CHECK_ULP(v0(tw), W, mant, emin);
            CHECK_ULP(v0(NLL_FWD(x, t, opts(SUM, -100, 0, w), NULL)), s, mant, emin);
            tt *gn = NLL_BWD(NULL, x, t, opts(MEAN, -100, 0, w));
            for (int i = 0; i < N; i++)
                for (int c = 0; c < C; c++)
                    CHECK_ULP(tget(gn, i * C + c),
                              tv[i] == c ? -wd[c] / W : 0, mant, emin);
        }
        /* log_softmax forward and backward */
        {
            tt *y = LS_FWD(x, 1);
            tt *go = trandom(tnew(dt, 2, SH(N, C)), -1, 1);
            tt *gx = LS_BWD(go, y, 1);
            for (int i = 0; i < N; i++) {
                double m = -INFINITY, s = 0, sg = 0;
                for (int c = 0; c < C; c++)
                    m = fmax(m, xd[i * C + c]);
                for (int c = 0; c < C; c++)
                    s += exp(xd[i * C + c] - m);
                for (int c = 0; c < C; c++) {
                    CHECK_ULP(tget(y, i * C + c), xd[i * C + c] - m - log(s), mant, emin);
                    sg += tget(go, i * C + c);
                }
                for (int c = 0; c < C; c++)
                    CHECK_ULP(tget(gx, i * C + c),
                              tget(go, i * C + c) - exp(tget(y, i * C + c)) * sg, mant, emin);
            }
        }
        /* §15 #82: Z in bfloat16, mean 1.5625 in PyTorch; ours is the float computation rounded
         * once, so it matches the float64 value within one bf16 ulp */
        if (k == 1) {
            tt *zb = tvals(BF16, 2, SH(3, 3), Zv);
            double l0 = log(exp(1) + exp(2) + exp(3)) - 3, l1 = log(3.0),
                   l2 = log(1 + exp(-1) + exp(2)) + 1;
            CHECK_ULP(v0(CE_FWD(zb, T64(2, 0, 1), opts(MEAN, -100, 0, NULL))), (l0 + l1 + l2) / 3,
                      7, -126);
            tt *n = CE_FWD(zb, T64(2, 0, 1), opts(NONE, -100, 0, NULL));
            CHECK_ULP(tget(n, 0), l0, 7, -126);
            CHECK_ULP(tget(n, 1), l1, 7, -126);
            CHECK_ULP(tget(n, 2), l2, 7, -126);
        }
    }

    SECTION("16-bit conversion helpers");
    CHECK_INT(f32_to_f16(1.0f), 0x3C00);
    CHECK_INT(f32_to_f16(65504.0f), 0x7BFF);
    CHECK_INT(f32_to_f16(65520.0f), 0x7C00); /* rounds to inf */
    CHECK_INT(f32_to_f16(1.0f + 1.0f / 2048), 0x3C00); /* tie to even */
    CHECK_INT(f32_to_f16(1.0f + 3.0f / 2048), 0x3C02);
    CHECK_INT(f32_to_f16(ldexpf(1, -24)), 0x0001);
    CHECK_INT(f32_to_f16(ldexpf(1, -25)), 0x0000);
    CHECK_INT(f32_to_bf16(1.0f), 0x3F80);
    CHECK_INT(f32_to_bf16(1.0f + 1.0f / 256), 0x3F80);
    CHECK_INT(f32_to_bf16(1.0f + 3.0f / 256), 0x3F82);
    CHECK(f16_to_f32(0x3555) == 0.333251953125f);
    CHECK(bf16_to_f32(0xC2F7) == -123.5f);
}

/* ---------------------------------------------------------------------------------------- */

static void edge_api(void)
{
    SECTION("nll_options_default");
    {
        nll_options o = nll_options_default();
        CHECK_INT(o.reduction, NLL_REDUCTION_MEAN);
        CHECK_INT(o.ignore_index, -100);
        CHECK(o.label_smoothing == 0.0);
        CHECK(o.weight == NULL);
        CHECK_INT(o.flags, 0);
    }

    SECTION("status names and strings");
    {
#define S_(x) {x, #x}
        static const struct {
            nll_status s;
            const char *name;
        } all[] = {S_(NLL_OK),
                   S_(NLL_ERROR_NULL_ARGUMENT),
                   S_(NLL_ERROR_INVALID_REDUCTION),
                   S_(NLL_ERROR_LABEL_SMOOTHING),
                   S_(NLL_ERROR_IGNORE_INDEX),
                   S_(NLL_ERROR_INVALID_FLAGS),
                   S_(NLL_ERROR_INVALID_DIM),
                   S_(NLL_ERROR_INPUT_RANK),
                   S_(NLL_ERROR_TARGET_SHAPE),
                   S_(NLL_ERROR_PROBABILITY_SHAPE),
                   S_(NLL_ERROR_WEIGHT_SHAPE),
                   S_(NLL_ERROR_OUTPUT_SHAPE),
                   S_(NLL_ERROR_NEGATIVE_SIZE),
                   S_(NLL_ERROR_SIZE_OVERFLOW),
                   S_(NLL_ERROR_NULL_DATA),
                   S_(NLL_ERROR_OVERLAP),
                   S_(NLL_ERROR_INPUT_DTYPE),
                   S_(NLL_ERROR_FLOAT_TARGET),
                   S_(NLL_ERROR_TARGET_DTYPE),
                   S_(NLL_ERROR_WEIGHT_DTYPE),
                   S_(NLL_ERROR_OUTPUT_DTYPE),
                   S_(NLL_ERROR_UNSUPPORTED_DTYPE),
                   S_(NLL_ERROR_TARGET_RANGE),
                   S_(NLL_ERROR_TARGET_NOT_WHOLE),
                   S_(NLL_ERROR_NONFINITE),
                   S_(NLL_ERROR_UNSUPPORTED_DEVICE),
                   S_(NLL_ERROR_DEVICE_MISMATCH),
                   S_(NLL_ERROR_OUT_OF_MEMORY),
                   S_(NLL_ERROR_INVALID_THREADS)};
#undef S_
        const int n = (int)(sizeof all / sizeof all[0]);
        for (int i = 0; i < n; i++) {
            const char *nm = nll_status_name(all[i].s), *st = nll_status_string(all[i].s);
            CHECK_STREQ(nm, all[i].name);
            CHECK(st != NULL && st[0] != '\0');
            for (int j = 0; j < i; j++) {
                CHECK(strcmp(nm, nll_status_name(all[j].s)) != 0);
                CHECK(strcmp(st, nll_status_string(all[j].s)) != 0);
            }
        }
        CHECK(nll_status_name((nll_status)12345) != NULL);
        CHECK(nll_status_string((nll_status)12345) != NULL);
        CHECK(nll_status_name((nll_status)-1) != NULL);
        CHECK(nll_status_string((nll_status)-1) != NULL);
    }

    SECTION("version");
    CHECK_INT(nll_version_number(), NLL_VERSION_NUMBER);
    CHECK_STREQ(nll_version_string(), NLL_VERSION_STRING);
    CHECK_INT(NLL_VERSION_NUMBER, 100);

    SECTION("threads");
    {
        nll_context *c2 = check_context();
        CHECK_INT(nll_context_threads(c2), 1);
        CHECK_STATUS(nll_context_set_threads(c2, -1), NLL_ERROR_INVALID_THREADS);
        CHECK(strlen(nll_last_error(c2)) > 0);
        CHECK_INT(nll_context_threads(c2), 1);
        CHECK_STATUS(nll_context_set_threads(c2, 4), NLL_OK);
        CHECK_INT(nll_context_threads(c2), 4);
        CHECK_STATUS(nll_context_set_threads(c2, 0), NLL_OK);
        CHECK(nll_context_threads(c2) >= 0);
        nll_context_destroy(c2);

        /* 0 (one per CPU), 1 and 4 threads give identical bytes */
        rng_seed(41);
        const int64_t N = 3001, C = 37;
        tt *x = trandom(tnew(F32, 2, SH(N, C)), -5, 5);
        tt *xnd = trandom(tnew(F32, 3, SH(3, C, 401)), -5, 5);
        tt *t = tnew(I64, 1, SH(N)), *tnd = tnew(I64, 2, SH(3, 401));
        for (int64_t i = 0; i < N; i++)
            tset(t, i, i % 11 == 0 ? -100 : (double)rng_int(C));
        for (int64_t i = 0; i < 3 * 401; i++)
            tset(tnd, i, (double)rng_int(C));
        tt *w = trandom(tnew(F32, 1, SH(C)), 0.5, 2);
        tt *P = trandom(tnew(F32, 2, SH(N, C)), 0, 1);
        int threads[3] = {1, 0, 4};
        tt *res[3][16];
        for (int k = 0; k < 3; k++) {
            CHECK_STATUS(nll_context_set_threads(ctx, threads[k]), NLL_OK);
            int j = 0;
            for (int r = 0; r < 3; r++) {
                nll_options o = opts((nll_reduction)r, -100, 0.1, w);
                tt *l;
                res[k][j++] = CE_FUSED(x, t, o, &l);
                res[k][j++] = l;
                res[k][j++] = CE_FWD(xnd, tnd, o);
                res[k][j++] = CE_FWD(x, P, o);
                o.label_smoothing = 0;
                res[k][j++] = NLL_FWD(x, t, o, NULL);
            }
            res[k][j++] = LS_FWD(x, 1);
        }
        CHECK_STATUS(nll_context_set_threads(ctx, 1), NLL_OK);
        for (int k = 1; k < 3; k++)
            for (int j = 0; j < 16; j++)
                CHECK(tsame_bytes(res[k][j], res[0][j]));
    }
}

int main(void)
{
    ctx = check_context();
    table_nll();
    table_log_softmax();
    table_ce();
    edge_small();
    edge_target_dtypes();
    edge_strides();
    edge_in_place();
    edge_16bit();
    edge_api();
    nll_context_destroy(ctx);
    return check_finish("test_edge");
}
