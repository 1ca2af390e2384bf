/*
 * test_fd.c — every gradient against central finite differences of its forward, in float64:
 * log_softmax, nll_loss, cross_entropy with class indices (weight, ignore_index, label
 * smoothing, every reduction, 1-D/2-D/4-D inputs) and with probabilities, and the fused entry
 * point with a separate gradient buffer and in place.
 *
 * For an upstream gradient g the scalar is L(x) = sum_i g_i * loss_i(x) (NONE) or g * loss(x);
 * the analytic gradient must match (L(x + h e_k) - L(x - h e_k)) / 2h for every element k.
 */
#include "check.h"

static nll_context *ctx;

#define H 1e-6
#define TOL 1e-6

enum kind { K_LOG_SOFTMAX, K_NLL, K_CE, K_FUSED, K_FUSED_IN_PLACE };

typedef struct fd_case {
    enum kind kind;
    tt *x;      /* float64 input */
    tt *target; /* class indices or probabilities */
    tt *weight;
    nll_options opt;
    tt *gl;      /* upstream gradient (NULL = 1); log_softmax: grad_output */
    int64_t dim; /* log_softmax */
} fd_case;

static nll_options case_opt(const fd_case *c)
{
    nll_options o = c->opt;
    o.weight = c->weight ? TT(c->weight) : NULL;
    return o;
}

/* A loss tensor: 0-d, or for NONE the input without its class axis. */
static tt *new_loss(const fd_case *c)
{
    const tt *x = c->x;
    if (c->opt.reduction != NLL_REDUCTION_NONE || x->t.ndim <= 1)
        return tnew(F64, 0, NULL);
    int64_t sh[CHECK_MAX_DIMS];
    int nd = 0;
    for (int d = 0; d < x->t.ndim; d++)
        if (d != 1)
            sh[nd++] = x->shape[d];
    return tnew(F64, nd, sh);
}

/* sum_i g_i * out_i, g = 1 when gl is NULL; a 0-d gl broadcasts. */
static double weigh(const tt *out, const tt *gl)
{
    double s = 0;
    for (int64_t i = 0; i < tt_numel(out); i++)
        s += tget(out, i) * (gl ? tget(gl, tt_numel(gl) == 1 ? 0 : i) : 1.0);
    return s;
}

/* L(x) through the forward entry point of the case. */
static double eval(const fd_case *c, int line)
{
    nll_options o = case_opt(c);
    nll_status s = NLL_OK;
    tt *out;
    switch (c->kind) {
    case K_LOG_SOFTMAX:
        out = tnew(F64, c->x->t.ndim, c->x->shape);
        s = nll_log_softmax_forward(ctx, TT(c->x), c->dim, TT(out));
        break;
    case K_NLL:
        out = new_loss(c);
        s = nll_loss_forward(ctx, TT(c->x), TT(c->target), &o, TT(out), NULL);
        break;
    default:
        out = new_loss(c);
        s = nll_cross_entropy_forward(ctx, TT(c->x), TT(c->target), &o, TT(out));
        break;
    }
    if (s != NLL_OK) {
        CHECK_STATUS_AT(line, s, NLL_OK);
        return NAN;
    }
    /* the fused entry points differentiate the plain (summed) loss */
    return weigh(out, c->kind == K_FUSED || c->kind == K_FUSED_IN_PLACE ? NULL : c->gl);
}

/* The analytic gradient through the backward (or fused) entry point of the case. */
static tt *analytic(const fd_case *c, int line)
{
    nll_options o = case_opt(c);
    tt *g = tnew(F64, c->x->t.ndim, c->x->shape);
    tfill_bytes(g, 0xA5);
    switch (c->kind) {
    case K_LOG_SOFTMAX: {
        tt *y = tnew(F64, c->x->t.ndim, c->x->shape);
        CHECK_STATUS_AT(line, nll_log_softmax_forward(ctx, TT(c->x), c->dim, TT(y)), NLL_OK);
        CHECK_STATUS_AT(line, nll_log_softmax_backward(ctx, TT(c->gl), TT(y), c->dim, TT(g)),
                        NLL_OK);
        break;
    }
    case K_NLL:
        CHECK_STATUS_AT(line,
                        nll_loss_backward(ctx, c->gl ? TT(c->gl) : NULL, TT(c->x), TT(c->target),
                                          &o, TT(g)),
                        NLL_OK);
        break;
    case K_CE:
        CHECK_STATUS_AT(line,
                        nll_cross_entropy_backward(ctx, c->gl ? TT(c->gl) : NULL, TT(c->x),
                                                   TT(c->target), &o, TT(g)),
                        NLL_OK);
        break;
    case K_FUSED: {
        tt *l = new_loss(c);
        CHECK_STATUS_AT(line, nll_cross_entropy_fused(ctx, TT(c->x), TT(c->target), &o, TT(l), TT(g)),
                        NLL_OK);
        /* the fused loss is the forward's */
        tt *l2 = new_loss(c);
        CHECK_STATUS_AT(line, nll_cross_entropy_forward(ctx, TT(c->x), TT(c->target), &o, TT(l2)),
                        NLL_OK);
        check_close_(l, l2, 1e-12, "fused loss vs forward", __FILE__, line);
        break;
    }
    case K_FUSED_IN_PLACE: {
        /* a copy of the logits, which the call turns into their gradient */
        for (int64_t i = 0; i < tt_numel(g); i++)
            tset(g, i, tget(c->x, i));
        tt *l = new_loss(c), *l2 = new_loss(c);
        CHECK_STATUS_AT(line, nll_cross_entropy_fused(ctx, TT(g), TT(c->target), &o, TT(l), TT(g)),
                        NLL_OK);
        CHECK_STATUS_AT(line, nll_cross_entropy_forward(ctx, TT(c->x), TT(c->target), &o, TT(l2)),
                        NLL_OK);
        check_close_(l, l2, 1e-12, "in-place fused loss vs forward", __FILE__, line);
        break;
    }
    }
    return g;
}

/* Compares the analytic gradient with central differences, element by element. */
static void fd_check_(fd_case *c, int line)
{
    tt *g = analytic(c, line);
    int64_t n = tt_numel(c->x);
    int bad = 0;
    chk_count_++;
    for (int64_t k = 0; k < n; k++) {
        double x0 = tget(c->x, k);
        tset(c->x, k, x0 + H);
        double lp = eval(c, line);
        tset(c->x, k, x0 - H);
        double lm = eval(c, line);
        tset(c->x, k, x0);
        double num = (lp - lm) / (2 * H), an = tget(g, k);
        if (!near_(an, num, TOL)) {
            if (bad < 4) {
                chk_fail_(__FILE__, line);
                chk_failures_--;
                fprintf(stderr, "grad[%lld]: finite difference %.12g, analytic %.12g\n",
                        (long long)k, num, an);
            }
            bad++;
        }
    }
    if (bad)
        chk_failures_++;
}
#define FD_CHECK(c) fd_check_((c), __LINE__)

/* A random upstream gradient for the case: NONE: the loss's shape; else 0-d, or NULL. */
static tt *upstream(const fd_case *c, int use_null)
{
    if (use_null)
        return NULL;
    if (c->opt.reduction == NLL_REDUCTION_NONE) {
        tt *l = new_loss(c);
        return trandom(l, -1.5, 1.5);
    }
    return tscalar(F64, rng_uniform(0.5, 2));
}

/* A class-index target of the input's shape without its class axis, with values in [0, C)
 * and, when `ignore`, some entries equal to -100. */
static tt *make_target(const tt *x, int ignore)
{
    int64_t C = x->t.ndim == 1 ? x->shape[0] : x->shape[1];
    tt *t;
    if (x->t.ndim == 1) {
        t = tnew(I64, 0, NULL);
    } else {
        int64_t sh[CHECK_MAX_DIMS];
        int nd = 0;
        for (int d = 0; d < x->t.ndim; d++)
            if (d != 1)
                sh[nd++] = x->shape[d];
        t = tnew(I64, nd, sh);
    }
    for (int64_t i = 0; i < tt_numel(t); i++)
        tset(t, i, ignore && i % 3 == 1 ? -100 : (double)rng_int(C));
    return t;
}

static void test_log_softmax(void)
{
    SECTION("log_softmax backward");
    const int64_t shapes[3][3] = {{4, 6, 0}, {2, 3, 5}, {7, 1, 0}};
    const int nds[3] = {2, 3, 2};
    for (int s = 0; s < 3; s++) {
        for (int dim = -nds[s]; dim < nds[s]; dim++) {
            fd_case c;
            memset(&c, 0, sizeof c);
            c.kind = K_LOG_SOFTMAX;
            c.x = trandom(tnew(F64, nds[s], shapes[s]), -3, 3);
            c.gl = trandom(tnew(F64, nds[s], shapes[s]), -1, 1);
            c.dim = dim;
            FD_CHECK(&c);
        }
    }
    fd_case c;
    memset(&c, 0, sizeof c);
    c.kind = K_LOG_SOFTMAX;
    c.x = trandom(tnew(F64, 1, SH(9)), -10, 10);
    c.gl = trandom(tnew(F64, 1, SH(9)), -1, 1);
    FD_CHECK(&c);
    /* a strided input */
    c.x = trandom(tnew_strided(F64, 2, SH(3, 4), SH(1, 3), 16), -2, 2);
    c.gl = trandom(tnew(F64, 2, SH(3, 4)), -1, 1);
    c.dim = 1;
    FD_CHECK(&c);
}

/* Runs every combination of weight, ignore_index, smoothing and reduction for one kind and
 * input shape. */
static void sweep(enum kind kind, int ndim, const int64_t *shape, int smoothing)
{
    int64_t C = ndim == 1 ? shape[0] : shape[1];
    for (int weighted = 0; weighted < 2; weighted++)
        for (int ignore = 0; ignore < 2; ignore++)
            for (int e = 0; e < (smoothing ? 2 : 1); e++)
                for (int r = 0; r < 3; r++)
                    for (int null_gl = 0; null_gl < 2; null_gl++) {
                        if (null_gl && (kind == K_FUSED || kind == K_FUSED_IN_PLACE))
                            continue;
                        fd_case c;
                        memset(&c, 0, sizeof c);
                        c.kind = kind;
                        c.x = trandom(tnew(F64, ndim, shape), -3, 3);
                        c.target = make_target(c.x, ignore && ndim > 1);
                        if (ignore && ndim == 1)
                            tset(c.target, 0, -100);
                        c.weight = weighted ? trandom(tnew(F64, 1, SH(C)), 0.2, 3) : NULL;
                        c.opt = nll_options_default();
                        c.opt.reduction = (nll_reduction)r;
                        c.opt.label_smoothing = e ? 0.1 : 0;
                        if (kind == K_CE || kind == K_NLL)
                            c.gl = upstream(&c, null_gl);
                        /* a mean over only ignored targets is NaN, with a zero gradient: skip
                         * the finite differences there (the edge tests cover it) */
                        if (ignore && ndim == 1 && r == NLL_REDUCTION_MEAN)
                            continue;
                        FD_CHECK(&c);
                    }
}

static void test_nll(void)
{
    SECTION("nll_loss backward, (5, 4)");
    sweep(K_NLL, 2, SH(5, 4), 0);
    SECTION("nll_loss backward, (2, 3, 2, 2)");
    sweep(K_NLL, 4, SH(2, 3, 2, 2), 0);
    SECTION("nll_loss backward, (4)");
    sweep(K_NLL, 1, SH(4), 0);
    SECTION("nll_loss backward, (2, 3, 5)");
    sweep(K_NLL, 3, SH(2, 3, 5), 0);
}

static void test_ce_index(void)
{
    SECTION("cross_entropy backward, class indices, (5, 4)");
    sweep(K_CE, 2, SH(5, 4), 1);
    SECTION("cross_entropy backward, class indices, (2, 3, 2, 2)");
    sweep(K_CE, 4, SH(2, 3, 2, 2), 1);
    SECTION("cross_entropy backward, class indices, (6)");
    sweep(K_CE, 1, SH(6), 1);
    SECTION("cross_entropy backward, class indices, ignore_index inside [0, C)");
    {
        fd_case c;
        memset(&c, 0, sizeof c);
        c.kind = K_CE;
        c.x = trandom(tnew(F64, 2, SH(6, 3)), -2, 2);
        c.target = tvals(I64, 1, SH(6), VD(0, 1, 2, 1, 0, 2));
        c.weight = tvals(F64, 1, SH(3), VD(0.5, 2, 1));
        c.opt = nll_options_default();
        c.opt.ignore_index = 1;
        c.opt.label_smoothing = 0.3;
        for (int r = 0; r < 3; r++) {
            c.opt.reduction = (nll_reduction)r;
            c.gl = upstream(&c, 0);
            FD_CHECK(&c);
        }
    }
}

static void test_ce_prob(void)
{
    const int64_t shapes[2][4] = {{5, 4, 0, 0}, {2, 3, 2, 2}};
    const int nds[2] = {2, 4};
    for (int s = 0; s < 2; s++) {
        SECTION(s ? "cross_entropy backward, probabilities, (2, 3, 2, 2)"
                  : "cross_entropy backward, probabilities, (5, 4)");
        int64_t C = shapes[s][1];
        for (int weighted = 0; weighted < 2; weighted++)
            for (int e = 0; e < 2; e++)
                for (int r = 0; r < 3; r++)
                    for (int k = 0; k < 3; k++) {
                        fd_case c;
                        memset(&c, 0, sizeof c);
                        c.kind = k == 0 ? K_CE : k == 1 ? K_FUSED : K_FUSED_IN_PLACE;
                        c.x = trandom(tnew(F64, nds[s], shapes[s]), -3, 3);
                        c.target = trandom(tnew(F64, nds[s], shapes[s]), 0, 1);
                        c.weight = weighted ? trandom(tnew(F64, 1, SH(C)), 0.2, 3) : NULL;
                        c.opt = nll_options_default();
                        c.opt.reduction = (nll_reduction)r;
                        c.opt.label_smoothing = e ? 0.1 : 0;
                        if (k == 0)
                            c.gl = upstream(&c, 0);
                        FD_CHECK(&c);
                    }
    }
    SECTION("cross_entropy backward, probabilities, 1-D input");
    {
        fd_case c;
        memset(&c, 0, sizeof c);
        c.kind = K_CE;
        c.x = trandom(tnew(F64, 1, SH(5)), -3, 3);
        c.target = trandom(tnew(F64, 1, SH(5)), 0, 1);
        c.opt = nll_options_default();
        c.opt.label_smoothing = 0.2;
        for (int r = 0; r < 3; r++) {
            c.opt.reduction = (nll_reduction)r;
            c.gl = upstream(&c, 0);
            FD_CHECK(&c);
        }
    }
}

static void test_fused(void)
{
    SECTION("fused, class indices, (5, 4)");
    sweep(K_FUSED, 2, SH(5, 4), 1);
    SECTION("fused in place, class indices, (5, 4)");
    sweep(K_FUSED_IN_PLACE, 2, SH(5, 4), 1);
    SECTION("fused, class indices, (2, 3, 2, 2)");
    sweep(K_FUSED, 4, SH(2, 3, 2, 2), 1);
    SECTION("fused in place, class indices, (2, 3, 2, 2)");
    sweep(K_FUSED_IN_PLACE, 4, SH(2, 3, 2, 2), 1);
    SECTION("fused in place, class indices, (4)");
    sweep(K_FUSED_IN_PLACE, 1, SH(4), 1);
}

int main(void)
{
    ctx = check_context();
    rng_seed(2024);
    test_log_softmax();
    test_nll();
    test_ce_index();
    test_ce_prob();
    test_fused();
    nll_context_destroy(ctx);
    return check_finish("test_fd");
}
