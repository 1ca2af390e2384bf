/*
 * test_validation.c — every validation error of docs/errors.md, through every entry point it
 * applies to: the status, the facts in the message, the detail fields, that no output byte
 * (and no input byte) was written by a rejected call, and that the context keeps working.
 */
#include "check.h"

enum fn { NLL_FWD, NLL_BWD, CE_FWD, CE_BWD, CE_FUSED, LS_FWD, LS_BWD, FN_COUNT };

static const char *const fn_names[FN_COUNT] = {
    "nll_loss_forward",          "nll_loss_backward", "nll_cross_entropy_forward",
    "nll_cross_entropy_backward", "nll_cross_entropy_fused", "nll_log_softmax_forward",
    "nll_log_softmax_backward"};

/* The five loss entry points, for loops. */
static const enum fn loss_fns[] = {NLL_FWD, NLL_BWD, CE_FWD, CE_BWD, CE_FUSED};
#define N_LOSS_FNS 5
static const enum fn ce_fns[] = {CE_FWD, CE_BWD, CE_FUSED};
#define N_CE_FNS 3

static int has_loss(enum fn f) { return f == NLL_FWD || f == CE_FWD || f == CE_FUSED; }
static int has_grad(enum fn f) { return f == NLL_BWD || f == CE_BWD || f == CE_FUSED; }
static int has_grad_loss(enum fn f) { return f == NLL_BWD || f == CE_BWD; }

/*
 * One call of any entry point. For log_softmax: input/out for the forward; gl (grad_output),
 * out (output, an input of the backward) and gi for the backward.
 */
typedef struct call {
    enum fn fn;
    tt *input, *target, *w, *loss, *tw, *gl, *gi, *out;
    nll_options opt;
    int null_options;
    int64_t dim;
} call;

static nll_status run(nll_context *ctx, call *c)
{
    nll_options opt = c->opt;
    opt.weight = c->w ? TT(c->w) : NULL;
    const nll_options *o = c->null_options ? NULL : &opt;
#define P(x) ((x) ? TT(x) : NULL)
    switch (c->fn) {
    case NLL_FWD: return nll_loss_forward(ctx, P(c->input), P(c->target), o, P(c->loss), P(c->tw));
    case NLL_BWD:
        return nll_loss_backward(ctx, P(c->gl), P(c->input), P(c->target), o, P(c->gi));
    case CE_FWD: return nll_cross_entropy_forward(ctx, P(c->input), P(c->target), o, P(c->loss));
    case CE_BWD:
        return nll_cross_entropy_backward(ctx, P(c->gl), P(c->input), P(c->target), o, P(c->gi));
    case CE_FUSED:
        return nll_cross_entropy_fused(ctx, P(c->input), P(c->target), o, P(c->loss), P(c->gi));
    case LS_FWD: return nll_log_softmax_forward(ctx, P(c->input), c->dim, P(c->out));
    case LS_BWD: return nll_log_softmax_backward(ctx, P(c->gl), P(c->out), c->dim, P(c->gi));
    default: return NLL_OK;
    }
#undef P
}

/* A valid call: input (in_shape) of random log-probabilities, a class-index target of
 * t_shape with values in [0, C), mean reduction, outputs of the right shapes. */
static call mk_shape(enum fn f, int in_ndim, const int64_t *in_shape, int t_ndim,
                     const int64_t *t_shape)
{
    call c;
    memset(&c, 0, sizeof c);
    c.fn = f;
    c.opt = nll_options_default();
    c.dim = 1;
    if (f == LS_FWD) {
        c.input = trandom(tnew(F32, in_ndim, in_shape), -3, 1);
        c.out = tnew(F32, in_ndim, in_shape);
        return c;
    }
    if (f == LS_BWD) {
        c.gl = trandom(tnew(F32, in_ndim, in_shape), -1, 1);
        c.out = trandom(tnew(F32, in_ndim, in_shape), -4, -0.5);
        c.gi = tnew(F32, in_ndim, in_shape);
        return c;
    }
    c.input = trandom(tnew(F32, in_ndim, in_shape), -3, 0);
    c.target = tnew(I64, t_ndim, t_shape);
    int64_t C = in_ndim == 0 ? 1 : in_ndim == 1 ? in_shape[0] : in_shape[1];
    for (int64_t i = 0; i < tt_numel(c.target); i++)
        tset(c.target, i, C > 0 ? (double)((i * 3 + 1) % C) : 0.0);
    if (has_loss(f))
        c.loss = tnew(F32, 0, NULL);
    if (f == NLL_FWD)
        c.tw = tnew(F32, 0, NULL);
    if (has_grad(f))
        c.gi = tnew(F32, in_ndim, in_shape);
    return c;
}

/* The standard call: input (3, 5), target [1, 0, 4] (int64), mean. */
static call mk(enum fn f)
{
    call c = mk_shape(f, 2, SH(3, 5), 1, SH(3));
    if (c.target) {
        tset(c.target, 0, 1);
        tset(c.target, 1, 0);
        tset(c.target, 2, 4);
    }
    return c;
}

/* Switches a call to reduction none, with a loss of the target's shape. */
static void set_none(call *c)
{
    c->opt.reduction = NLL_REDUCTION_NONE;
    if (c->loss)
        c->loss = tnew(c->loss->t.dtype, c->target->t.ndim, c->target->shape);
}

/* ---------------------------------------------------------------------------------------- */

/* A fixed good call, made after each error to show the context still works. */
static tt *good_x, *good_t, *good_loss;

static void good_call(nll_context *ctx, int line)
{
    nll_options o = nll_options_default();
    tset(good_loss, 0, -7);
    CHECK_STATUS_AT(line, nll_loss_forward(ctx, TT(good_x), TT(good_t), &o, TT(good_loss), NULL),
                    NLL_OK);
    CHECK_NEAR_AT(line, tget(good_loss, 0), 0.93333334, 1e-6);
    CHECK_STREQ_AT(line, nll_last_error(ctx), "");
}

/* The message and detail of the last expect_err, for further checks. */
static char last_msg[4096];
static nll_error_detail last_detail;

/*
 * Makes the call, expecting `status`: fills each output with 0xA5 (unless it shares memory
 * with an input), snapshots everything, then checks the status, that the message starts with
 * "function: " and holds every substring, the detail's status, function and (if given)
 * tensor, and that no byte of any tensor changed. Then a good call on the same context.
 */
static void expect_err_(nll_context *ctx, call *c, nll_status status, const char *tensor,
                        const char *const *subs, int line)
{
    tt *ins[5] = {c->input, c->target, c->w, c->gl, c->fn == LS_BWD ? c->out : NULL};
    tt *outs[4] = {c->loss, c->tw, c->gi, c->fn == LS_FWD ? c->out : NULL};
    for (int i = 0; i < 4; i++) {
        if (!outs[i] || !outs[i]->mem)
            continue;
        int shared = 0;
        for (int j = 0; j < 5; j++)
            shared |= ins[j] && ins[j]->owner == outs[i]->owner;
        if (!shared)
            tfill_bytes(outs[i], 0xA5);
    }
    for (int i = 0; i < 5; i++)
        if (ins[i] && ins[i]->mem)
            tsnap(ins[i]);
    for (int i = 0; i < 4; i++)
        if (outs[i] && outs[i]->mem)
            tsnap(outs[i]);

    nll_status s = run(ctx, c);
    CHECK_STATUS_AT(line, s, status);

    const char *fn = fn_names[c->fn];
    const char *msg = nll_last_error(ctx);
    snprintf(last_msg, sizeof last_msg, "%s", msg ? msg : "(null)");
    size_t fl = strlen(fn);
    CHECK_AT(line, strncmp(last_msg, fn, fl) == 0 && last_msg[fl] == ':');
    for (int i = 0; subs[i]; i++)
        CHECK_HAS_AT(line, last_msg, subs[i]);

    nll_error_detail d;
    memset(&d, 0, sizeof d);
    CHECK_STATUS_AT(line, nll_last_error_detail(ctx, &d), NLL_OK);
    CHECK_INT_AT(line, d.status, status);
    CHECK_STREQ_AT(line, d.function, fn);
    if (tensor)
        CHECK_STREQ_AT(line, d.tensor, tensor);
    last_detail = d;
    last_detail.function = NULL;
    last_detail.tensor = NULL;

    for (int i = 0; i < 5; i++)
        if (ins[i] && ins[i]->mem)
            CHECK_INT_AT(line, tchanged_bytes(ins[i]), 0);
    for (int i = 0; i < 4; i++)
        if (outs[i] && outs[i]->mem)
            CHECK_INT_AT(line, tchanged_bytes(outs[i]), 0);

    if (s != NLL_OK) /* a wrongly accepted call says nothing useful about the next */
        good_call(ctx, line);
}

#define EXPECT_ERR(ctx, c, status, tensor, ...) \
    expect_err_((ctx), (c), (status), (tensor), (const char *const[]){__VA_ARGS__, NULL}, __LINE__)

static void expect_ok_(nll_context *ctx, call *c, int line)
{
    CHECK_STATUS_AT(line, run(ctx, c), NLL_OK);
    CHECK_STREQ_AT(line, nll_last_error(ctx), "");
}
#define EXPECT_OK(ctx, c) expect_ok_((ctx), (c), __LINE__)

/* Detail checks for an error about the whole tensor (no element). */
static void expect_no_element_(int line)
{
    CHECK_INT_AT(line, last_detail.flat_index, -1);
    CHECK_INT_AT(line, last_detail.ndim, 0);
    CHECK_AT(line, isnan(last_detail.value));
    CHECK_INT_AT(line, last_detail.count, -1);
}
#define EXPECT_NO_ELEMENT() expect_no_element_(__LINE__)

/* ---------------------------------------------------------------------------------------- */

static void test_base_calls_ok(nll_context *ctx)
{
    SECTION("every standard call is valid");
    for (int f = 0; f < FN_COUNT; f++) {
        call c = mk((enum fn)f);
        EXPECT_OK(ctx, &c);
        if (f < LS_FWD) {
            call n = mk((enum fn)f);
            set_none(&n);
            EXPECT_OK(ctx, &n);
        }
    }
}

static void test_null_arguments(nll_context *ctx)
{
    SECTION("NULL context");
    for (int f = 0; f < FN_COUNT; f++) {
        call c = mk((enum fn)f);
        CHECK_STATUS(run(NULL, &c), NLL_ERROR_NULL_ARGUMENT);
    }
    CHECK(nll_last_error(NULL) != NULL);
    CHECK(strlen(nll_last_error(NULL)) > 0);
    {
        nll_error_detail d;
        CHECK_STATUS(nll_last_error_detail(NULL, &d), NLL_ERROR_NULL_ARGUMENT);
        CHECK_STATUS(nll_last_error_detail(ctx, NULL), NLL_ERROR_NULL_ARGUMENT);
        CHECK_STATUS(nll_context_create(NULL), NLL_ERROR_NULL_ARGUMENT);
        CHECK_STATUS(nll_context_set_threads(NULL, 1), NLL_ERROR_NULL_ARGUMENT);
        nll_context_destroy(NULL); /* a no-op */
    }

    SECTION("NULL tensors and options");
    for (int i = 0; i < N_LOSS_FNS; i++) {
        enum fn f = loss_fns[i];
        call c = mk(f);
        c.input = NULL;
        EXPECT_ERR(ctx, &c, NLL_ERROR_NULL_ARGUMENT, "input", "input is NULL");
        c = mk(f);
        c.target = NULL;
        EXPECT_ERR(ctx, &c, NLL_ERROR_NULL_ARGUMENT, "target", "target is NULL");
        c = mk(f);
        c.null_options = 1;
        EXPECT_ERR(ctx, &c, NLL_ERROR_NULL_ARGUMENT, NULL, "options is NULL");
        if (has_loss(f)) {
            c = mk(f);
            c.loss = NULL;
            EXPECT_ERR(ctx, &c, NLL_ERROR_NULL_ARGUMENT, "loss", "loss is NULL");
        }
        if (has_grad(f)) {
            c = mk(f);
            c.gi = NULL;
            EXPECT_ERR(ctx, &c, NLL_ERROR_NULL_ARGUMENT, "grad_input", "grad_input is NULL");
        }
    }
    {
        call c = mk(NLL_FWD);
        c.tw = NULL; /* optional */
        EXPECT_OK(ctx, &c);
        c = mk(NLL_BWD);
        c.gl = NULL; /* optional: 1 */
        EXPECT_OK(ctx, &c);
        c = mk(LS_FWD);
        c.input = NULL;
        EXPECT_ERR(ctx, &c, NLL_ERROR_NULL_ARGUMENT, "input", "input is NULL");
        c = mk(LS_FWD);
        c.out = NULL;
        EXPECT_ERR(ctx, &c, NLL_ERROR_NULL_ARGUMENT, "output", "output is NULL");
        c = mk(LS_BWD);
        c.gl = NULL;
        EXPECT_ERR(ctx, &c, NLL_ERROR_NULL_ARGUMENT, "grad_output", "grad_output is NULL");
        c = mk(LS_BWD);
        c.out = NULL;
        EXPECT_ERR(ctx, &c, NLL_ERROR_NULL_ARGUMENT, "output", "output is NULL");
        c = mk(LS_BWD);
        c.gi = NULL;
        EXPECT_ERR(ctx, &c, NLL_ERROR_NULL_ARGUMENT, "grad_input", "grad_input is NULL");
    }
}

static void test_options(nll_context *ctx)
{
    for (int i = 0; i < N_LOSS_FNS; i++) {
        enum fn f = loss_fns[i];
        SECTION("invalid reduction");
        call c = mk(f);
        c.opt.reduction = (nll_reduction)7;
        EXPECT_ERR(ctx, &c, NLL_ERROR_INVALID_REDUCTION, NULL, "reduction = 7");
        c = mk(f);
        c.opt.reduction = (nll_reduction)-1;
        EXPECT_ERR(ctx, &c, NLL_ERROR_INVALID_REDUCTION, NULL, "reduction = -1");

        SECTION("unknown flags");
        c = mk(f);
        c.opt.flags = 0x10u;
        EXPECT_ERR(ctx, &c, NLL_ERROR_INVALID_FLAGS, NULL, "0x10", "unknown");
        c = mk(f);
        c.opt.flags = NLL_CHECK_FINITE | 0x80000000u;
        EXPECT_ERR(ctx, &c, NLL_ERROR_INVALID_FLAGS, NULL, "0x8000000");

        SECTION("label_smoothing");
        if (f == NLL_FWD || f == NLL_BWD) {
            c = mk(f);
            c.opt.label_smoothing = 0.1;
            EXPECT_ERR(ctx, &c, NLL_ERROR_LABEL_SMOOTHING, NULL, "label_smoothing");
            c = mk(f);
            c.opt.label_smoothing = 1.0;
            EXPECT_ERR(ctx, &c, NLL_ERROR_LABEL_SMOOTHING, NULL, "label_smoothing");
        } else {
            c = mk(f);
            c.opt.label_smoothing = 1.5;
            EXPECT_ERR(ctx, &c, NLL_ERROR_LABEL_SMOOTHING, NULL, "label_smoothing = 1.5",
                       "[0, 1]");
            c = mk(f);
            c.opt.label_smoothing = -0.1;
            EXPECT_ERR(ctx, &c, NLL_ERROR_LABEL_SMOOTHING, NULL, "label_smoothing = -0.1");
            c = mk(f);
            c.opt.label_smoothing = NAN;
            EXPECT_ERR(ctx, &c, NLL_ERROR_LABEL_SMOOTHING, NULL, "label_smoothing", "nan");
            c = mk(f);
            c.opt.label_smoothing = INFINITY;
            EXPECT_ERR(ctx, &c, NLL_ERROR_LABEL_SMOOTHING, NULL, "label_smoothing", "inf");
            c = mk(f);
            c.opt.label_smoothing = 1.0; /* the closed interval */
            EXPECT_OK(ctx, &c);
        }
    }

    SECTION("ignore_index >= 0 with probability targets");
    for (int i = 0; i < N_CE_FNS; i++) {
        call c = mk(ce_fns[i]);
        c.target = trandom(tnew(F32, 2, SH(3, 5)), 0, 1);
        EXPECT_OK(ctx, &c);
        c.opt.ignore_index = 0;
        EXPECT_ERR(ctx, &c, NLL_ERROR_IGNORE_INDEX, NULL, "ignore_index = 0", "probability");
        c.opt.ignore_index = 7; /* >= C is still an error */
        EXPECT_ERR(ctx, &c, NLL_ERROR_IGNORE_INDEX, NULL, "ignore_index = 7");
        c.opt.ignore_index = -1;
        EXPECT_OK(ctx, &c);
    }

    SECTION("log_softmax dim");
    {
        call c = mk_shape(LS_FWD, 2, SH(4, 5), 0, NULL);
        c.dim = 2;
        EXPECT_ERR(ctx, &c, NLL_ERROR_INVALID_DIM, NULL, "dim = 2", "[-2, 2)", "(4, 5)");
        c.dim = -3;
        EXPECT_ERR(ctx, &c, NLL_ERROR_INVALID_DIM, NULL, "dim = -3", "[-2, 2)");
        c.dim = -2;
        EXPECT_OK(ctx, &c);
        call b = mk_shape(LS_BWD, 2, SH(4, 5), 0, NULL);
        b.dim = 3;
        EXPECT_ERR(ctx, &b, NLL_ERROR_INVALID_DIM, NULL, "dim = 3", "[-2, 2)", "(4, 5)");
        b.dim = INT64_MIN;
        EXPECT_ERR(ctx, &b, NLL_ERROR_INVALID_DIM, NULL, "dim");
    }
}

static void test_shapes(nll_context *ctx)
{
    for (int i = 0; i < N_LOSS_FNS; i++) {
        enum fn f = loss_fns[i];
        call c;

        SECTION("0-d input");
        c = mk_shape(f, 0, NULL, 0, NULL);
        EXPECT_ERR(ctx, &c, NLL_ERROR_INPUT_RANK, "input", "0-d");
        EXPECT_NO_ELEMENT();

        SECTION("input of 17 dims");
        {
            int64_t sh[17], tsh[16];
            for (int d = 0; d < 17; d++)
                sh[d] = 1;
            sh[1] = 2;
            for (int d = 0; d < 16; d++)
                tsh[d] = 1;
            c = mk_shape(f, 17, sh, 16, tsh);
            EXPECT_ERR(ctx, &c, NLL_ERROR_INPUT_RANK, "input", "17");
        }

        SECTION("target batch mismatch");
        c = mk(f);
        c.target = tvals(I64, 1, SH(2), VD(0, 1));
        EXPECT_ERR(ctx, &c, NLL_ERROR_TARGET_SHAPE, "target", "(2)", "(3, 5)", "(3)", "dim 1");
        EXPECT_NO_ELEMENT();

        SECTION("target (N, 1) for input (N, C)");
        c = mk(f);
        c.target = tvals(I64, 2, SH(3, 1), VD(0, 1, 2));
        EXPECT_ERR(ctx, &c, NLL_ERROR_TARGET_SHAPE, "target", "(3, 1)", "(3, 5)");

        SECTION("target spatial mismatch");
        c = mk_shape(f, 3, SH(2, 3, 4), 2, SH(2, 5));
        EXPECT_ERR(ctx, &c, NLL_ERROR_TARGET_SHAPE, "target", "(2, 5)", "(2, 3, 4)", "(2, 4)");
        c = mk_shape(f, 4, SH(2, 3, 4, 4), 4, SH(2, 1, 4, 4));
        EXPECT_ERR(ctx, &c, NLL_ERROR_TARGET_SHAPE, "target", "(2, 1, 4, 4)", "(2, 3, 4, 4)");

        SECTION("1-D input with a 1-D target");
        c = mk_shape(f, 1, SH(5), 1, SH(1));
        EXPECT_ERR(ctx, &c, NLL_ERROR_TARGET_SHAPE, "target", "(1)", "(5)");
        if (f == NLL_FWD || f == NLL_BWD) {
            /* PyTorch 1.13 silently used target[0]; libnll rejects it */
            c = mk_shape(f, 1, SH(5), 1, SH(5));
            EXPECT_ERR(ctx, &c, NLL_ERROR_TARGET_SHAPE, "target", "(5)", "0-d");
        }
        c = mk_shape(f, 1, SH(5), 0, NULL);
        EXPECT_OK(ctx, &c);

        SECTION("weight shape and dtype");
        c = mk(f);
        c.w = tvals(F32, 1, SH(4), VD(1, 1, 1, 1));
        EXPECT_ERR(ctx, &c, NLL_ERROR_WEIGHT_SHAPE, "weight", "weight has shape (4)", "(5)");
        EXPECT_NO_ELEMENT();
        c = mk(f);
        c.w = tvals(F32, 2, SH(1, 5), VD(1, 1, 1, 1, 1));
        EXPECT_ERR(ctx, &c, NLL_ERROR_WEIGHT_SHAPE, "weight", "(1, 5)", "(5)");
        c = mk(f);
        c.w = tscalar(F32, 1);
        EXPECT_ERR(ctx, &c, NLL_ERROR_WEIGHT_SHAPE, "weight", "()", "(5)");
        c = mk(f);
        c.w = tvals(F64, 1, SH(5), VD(1, 1, 1, 1, 1));
        EXPECT_ERR(ctx, &c, NLL_ERROR_WEIGHT_DTYPE, "weight", "float64", "float32");
        c = mk(f);
        c.w = tvals(F32, 1, SH(5), VD(1, 2, 3, 4, 5));
        EXPECT_OK(ctx, &c);

        SECTION("output shapes");
        if (has_loss(f)) {
            c = mk(f);
            c.loss = tnew(F32, 1, SH(3));
            EXPECT_ERR(ctx, &c, NLL_ERROR_OUTPUT_SHAPE, "loss", "loss has shape (3)", "mean");
            c = mk(f);
            c.opt.reduction = NLL_REDUCTION_SUM;
            c.loss = tnew(F32, 2, SH(1, 2));
            EXPECT_ERR(ctx, &c, NLL_ERROR_OUTPUT_SHAPE, "loss", "(1, 2)");
            c = mk(f);
            c.loss = tnew(F32, 1, SH(1)); /* a 1-element loss is accepted */
            EXPECT_OK(ctx, &c);
            c = mk(f);
            set_none(&c);
            c.loss = tnew(F32, 1, SH(2));
            EXPECT_ERR(ctx, &c, NLL_ERROR_OUTPUT_SHAPE, "loss", "(2)", "(3)");
            c = mk(f);
            set_none(&c);
            c.loss = tnew(F32, 0, NULL);
            EXPECT_ERR(ctx, &c, NLL_ERROR_OUTPUT_SHAPE, "loss", "()");
        }
        if (f == NLL_FWD) {
            c = mk(f);
            c.tw = tnew(F32, 1, SH(3));
            EXPECT_ERR(ctx, &c, NLL_ERROR_OUTPUT_SHAPE, "total_weight", "total_weight", "(3)");
            c = mk(f);
            c.tw = tnew(F64, 0, NULL);
            EXPECT_ERR(ctx, &c, NLL_ERROR_OUTPUT_DTYPE, "total_weight", "float64", "float32");
        }
        if (has_grad(f)) {
            c = mk(f);
            c.gi = tnew(F32, 2, SH(3, 4));
            EXPECT_ERR(ctx, &c, NLL_ERROR_OUTPUT_SHAPE, "grad_input", "grad_input", "(3, 4)",
                       "(3, 5)");
            c = mk(f);
            c.gi = tnew(F32, 1, SH(15));
            EXPECT_ERR(ctx, &c, NLL_ERROR_OUTPUT_SHAPE, "grad_input", "(15)");
        }
        if (has_grad_loss(f)) {
            c = mk(f);
            c.gl = tnew(F32, 1, SH(3)); /* mean: 0-d */
            EXPECT_ERR(ctx, &c, NLL_ERROR_OUTPUT_SHAPE, "grad_loss", "grad_loss", "(3)");
            c = mk(f);
            set_none(&c);
            c.gl = tnew(F32, 1, SH(2));
            EXPECT_ERR(ctx, &c, NLL_ERROR_OUTPUT_SHAPE, "grad_loss", "grad_loss", "(2)");
            c = mk(f);
            set_none(&c);
            c.gl = tnew(F32, 1, SH(3));
            EXPECT_OK(ctx, &c);
            c = mk(f);
            c.gl = tnew(F64, 0, NULL);
            EXPECT_ERR(ctx, &c, NLL_ERROR_OUTPUT_DTYPE, "grad_loss", "float64", "float32");
        }

        SECTION("output dtypes");
        if (has_loss(f)) {
            c = mk(f);
            c.loss = tnew(F64, 0, NULL);
            EXPECT_ERR(ctx, &c, NLL_ERROR_OUTPUT_DTYPE, "loss", "loss has dtype float64",
                       "float32");
            c = mk(f);
            c.loss = tnew(BF16, 0, NULL);
            EXPECT_ERR(ctx, &c, NLL_ERROR_OUTPUT_DTYPE, "loss", "bfloat16", "float32");
        }
        if (has_grad(f)) {
            c = mk(f);
            c.gi = tnew(F16, 2, SH(3, 5));
            EXPECT_ERR(ctx, &c, NLL_ERROR_OUTPUT_DTYPE, "grad_input", "float16", "float32");
        }

        SECTION("negative dimensions");
        c = mk(f);
        c.input = tnew_raw(F32, 2, SH(3, -5), NULL);
        EXPECT_ERR(ctx, &c, NLL_ERROR_NEGATIVE_SIZE, "input", "input.shape[1] = -5");
        c = mk(f);
        c.target = tnew_raw(I64, 1, SH(-3), NULL);
        EXPECT_ERR(ctx, &c, NLL_ERROR_NEGATIVE_SIZE, "target", "target.shape[0] = -3");
        if (has_grad(f)) {
            c = mk(f);
            c.gi = tnew_raw(F32, 2, SH(-3, 5), NULL);
            EXPECT_ERR(ctx, &c, NLL_ERROR_NEGATIVE_SIZE, "grad_input",
                       "grad_input.shape[0] = -3");
        }
        c = mk(f);
        c.w = tnew_raw(F32, 1, SH(-5), NULL);
        EXPECT_ERR(ctx, &c, NLL_ERROR_NEGATIVE_SIZE, "weight", "weight.shape[0] = -5");

        SECTION("NULL data");
        c = mk(f);
        c.input->t.data = NULL;
        EXPECT_ERR(ctx, &c, NLL_ERROR_NULL_DATA, "input", "input.data is NULL",
                   "15 elements");
        c = mk(f);
        c.target->t.data = NULL;
        EXPECT_ERR(ctx, &c, NLL_ERROR_NULL_DATA, "target", "target.data is NULL",
                   "3 elements");
        c = mk(f);
        c.w = tvals(F32, 1, SH(5), VD(1, 1, 1, 1, 1));
        c.w->t.data = NULL;
        EXPECT_ERR(ctx, &c, NLL_ERROR_NULL_DATA, "weight", "weight.data is NULL");
        if (has_loss(f)) {
            c = mk(f);
            c.loss->t.data = NULL;
            EXPECT_ERR(ctx, &c, NLL_ERROR_NULL_DATA, "loss", "loss.data is NULL");
        }
        if (has_grad(f)) {
            c = mk(f);
            c.gi->t.data = NULL;
            EXPECT_ERR(ctx, &c, NLL_ERROR_NULL_DATA, "grad_input", "grad_input.data is NULL");
        }

        SECTION("NULL data with zero elements is fine");
        c = mk_shape(f, 2, SH(0, 5), 1, SH(0));
        set_none(&c);
        c.input->t.data = NULL;
        c.target->t.data = NULL;
        if (c.loss)
            c.loss->t.data = NULL;
        if (c.gi)
            c.gi->t.data = NULL;
        EXPECT_OK(ctx, &c);
        c = mk_shape(f, 2, SH(0, 5), 1, SH(0));
        c.input->t.data = NULL;
        c.target->t.data = NULL;
        if (c.gi)
            c.gi->t.data = NULL;
        EXPECT_OK(ctx, &c);

        SECTION("sizes overflowing int64");
        {
            const int64_t big = (int64_t)1 << 62;
            c = mk(f);
            c.input = tnew_raw(F32, 2, SH(big, 4), NULL); /* 2^64 elements */
            c.target = tnew_raw(I64, 1, SH(big), NULL);
            if (c.gi)
                c.gi = tnew_raw(F32, 2, SH(big, 4), NULL);
            EXPECT_ERR(ctx, &c, NLL_ERROR_SIZE_OVERFLOW, NULL, "int64");
            c = mk(f); /* 2^62 elements fit, 2^64 bytes do not */
            c.input = tnew_raw(F32, 2, SH((int64_t)1 << 61, 2), NULL);
            c.target = tnew_raw(I64, 1, SH((int64_t)1 << 61), NULL);
            if (c.gi)
                c.gi = tnew_raw(F32, 2, SH((int64_t)1 << 61, 2), NULL);
            EXPECT_ERR(ctx, &c, NLL_ERROR_SIZE_OVERFLOW, NULL, "input");
            c = mk(f); /* a byte extent beyond int64 through a stride */
            c.input = tnew_raw(F32, 2, SH(3, 5), SH(big, 1));
            EXPECT_ERR(ctx, &c, NLL_ERROR_SIZE_OVERFLOW, "input", "input");
        }
    }

    SECTION("probability target of the wrong shape");
    for (int i = 0; i < N_CE_FNS; i++) {
        call c = mk_shape(ce_fns[i], 2, SH(2, 3), 1, SH(2));
        c.target = tnew(F32, 2, SH(2, 4));
        EXPECT_ERR(ctx, &c, NLL_ERROR_PROBABILITY_SHAPE, "target", "exact shape", "(2, 4)",
                   "(2, 3)", "dim 1");
        c.target = tnew(F32, 2, SH(2, 3));
        tset(c.target, 0, 1);
        tset(c.target, 4, 1);
        EXPECT_OK(ctx, &c);
    }

    SECTION("log_softmax shapes");
    {
        call c = mk(LS_FWD);
        c.out = tnew(F32, 2, SH(5, 3));
        EXPECT_ERR(ctx, &c, NLL_ERROR_OUTPUT_SHAPE, "output", "output", "(5, 3)", "(3, 5)");
        c = mk(LS_FWD);
        c.out = tnew(F64, 2, SH(3, 5));
        EXPECT_ERR(ctx, &c, NLL_ERROR_OUTPUT_DTYPE, "output", "float64", "float32");
        c = mk(LS_FWD);
        c.input = tnew(I64, 2, SH(3, 5));
        EXPECT_ERR(ctx, &c, NLL_ERROR_INPUT_DTYPE, "input", "int64");
        c = mk(LS_FWD);
        c.input = tnew_raw(F32, 2, SH(3, -5), NULL);
        c.out = tnew_raw(F32, 2, SH(3, -5), NULL);
        EXPECT_ERR(ctx, &c, NLL_ERROR_NEGATIVE_SIZE, "input", "input.shape[1] = -5");
        c = mk(LS_FWD);
        c.input = tnew_raw(F32, 2, SH((int64_t)1 << 32, (int64_t)1 << 32), NULL);
        c.out = tnew_raw(F32, 2, SH((int64_t)1 << 32, (int64_t)1 << 32), NULL);
        EXPECT_ERR(ctx, &c, NLL_ERROR_SIZE_OVERFLOW, "input", "input", "int64");
        c = mk(LS_FWD);
        c.input->t.data = NULL;
        EXPECT_ERR(ctx, &c, NLL_ERROR_NULL_DATA, "input", "input.data is NULL", "15 elements");
        c = mk(LS_FWD);
        c.out->t.data = NULL;
        EXPECT_ERR(ctx, &c, NLL_ERROR_NULL_DATA, "output", "output.data is NULL");
        c = mk_shape(LS_FWD, 2, SH(0, 5), 0, NULL);
        c.input->t.data = NULL;
        c.out->t.data = NULL;
        EXPECT_OK(ctx, &c);

        call b = mk(LS_BWD);
        b.gl = tnew(F32, 2, SH(3, 4));
        EXPECT_ERR(ctx, &b, NLL_ERROR_OUTPUT_SHAPE, NULL, "(3, 4)", "(3, 5)");
        b = mk(LS_BWD);
        b.gi = tnew(F32, 2, SH(3, 4));
        EXPECT_ERR(ctx, &b, NLL_ERROR_OUTPUT_SHAPE, "grad_input", "grad_input", "(3, 4)");
        b = mk(LS_BWD);
        b.gi = tnew(F64, 2, SH(3, 5));
        EXPECT_ERR(ctx, &b, NLL_ERROR_OUTPUT_DTYPE, "grad_input", "float64");
        b = mk(LS_BWD);
        b.out->t.data = NULL;
        EXPECT_ERR(ctx, &b, NLL_ERROR_NULL_DATA, "output", "output.data is NULL");
    }
}

static void test_overlap(nll_context *ctx)
{
    for (int i = 0; i < N_LOSS_FNS; i++) {
        enum fn f = loss_fns[i];
        call c;
        if (has_loss(f)) {
            SECTION("loss aliasing the input");
            c = mk(f);
            c.loss = tview(c.input, F32, 0, NULL, NULL, 8);
            EXPECT_ERR(ctx, &c, NLL_ERROR_OVERLAP, "loss", "loss overlaps input");
            c = mk(f);
            set_none(&c);
            c.loss = tview(c.input, F32, 1, SH(3), NULL, 0);
            EXPECT_ERR(ctx, &c, NLL_ERROR_OVERLAP, "loss", "loss overlaps input");

            SECTION("loss overlapping itself (stride 0)");
            c = mk(f);
            set_none(&c);
            c.loss = tnew_strided(F32, 1, SH(3), SH(0), 0);
            EXPECT_ERR(ctx, &c, NLL_ERROR_OVERLAP, "loss", "loss");

            SECTION("loss aliasing the target or weight");
            c = mk(f);
            c.loss = tview(c.target, F32, 0, NULL, NULL, 8);
            EXPECT_ERR(ctx, &c, NLL_ERROR_OVERLAP, "loss", "loss overlaps target");
            c = mk(f);
            c.w = tvals(F32, 1, SH(5), VD(1, 2, 3, 4, 5));
            c.loss = tview(c.w, F32, 0, NULL, NULL, 4);
            EXPECT_ERR(ctx, &c, NLL_ERROR_OVERLAP, "loss", "loss overlaps weight");
        }
        if (f == NLL_FWD) {
            SECTION("total_weight aliasing loss or input");
            c = mk(f);
            c.tw = tview(c.loss, F32, 0, NULL, NULL, 0);
            EXPECT_ERR(ctx, &c, NLL_ERROR_OVERLAP, NULL, "overlaps");
            c = mk(f);
            c.tw = tview(c.input, F32, 0, NULL, NULL, 56);
            EXPECT_ERR(ctx, &c, NLL_ERROR_OVERLAP, "total_weight", "total_weight overlaps input");
        }
        if (has_grad(f)) {
            SECTION("grad_input partially overlapping the input");
            {
                tt *base = trandom(tnew(F32, 2, SH(4, 5)), -3, 0);
                c = mk(f);
                c.input = tview(base, F32, 2, SH(3, 5), NULL, 0);
                c.gi = tview(base, F32, 2, SH(3, 5), NULL, 4); /* shifted by one element */
            }
            EXPECT_ERR(ctx, &c, NLL_ERROR_OVERLAP, "grad_input", "grad_input overlaps input");

            SECTION("grad_input with the input's data but other strides");
            {
                tt *base = trandom(tnew(F32, 2, SH(5, 5)), -3, 0);
                c = mk(f);
                c.input = tview(base, F32, 2, SH(3, 5), NULL, 0);
                c.gi = tview(base, F32, 2, SH(3, 5), SH(1, 5), 0); /* a transposed view */
                EXPECT_ERR(ctx, &c, NLL_ERROR_OVERLAP, "grad_input", "overlaps input");
            }

            SECTION("grad_input overlapping itself (stride 0)");
            c = mk(f);
            c.gi = tnew_strided(F32, 2, SH(3, 5), SH(0, 1), 0);
            EXPECT_ERR(ctx, &c, NLL_ERROR_OVERLAP, "grad_input", "grad_input");

            SECTION("grad_input aliasing the target or weight");
            {
                tt *base = tnew(I64, 1, SH(16));
                c = mk(f);
                c.target = tview(base, I64, 1, SH(3), NULL, 0);
                tset(c.target, 0, 1);
                tset(c.target, 1, 0);
                tset(c.target, 2, 4);
                c.gi = tview(base, F32, 2, SH(3, 5), NULL, 16);
                EXPECT_ERR(ctx, &c, NLL_ERROR_OVERLAP, "grad_input", "overlaps target");
            }
            c = mk(f);
            c.w = tvals(F32, 1, SH(16), VD(1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1));
            c.w = tview(c.w, F32, 1, SH(5), NULL, 0);
            c.gi = tview(c.w, F32, 2, SH(3, 5), NULL, 8);
            EXPECT_ERR(ctx, &c, NLL_ERROR_OVERLAP, "grad_input", "overlaps weight");
        }
        if (has_grad_loss(f)) {
            SECTION("grad_input overlapping grad_loss");
            c = mk(f);
            c.gl = tview(c.gi, F32, 0, NULL, NULL, 12);
            EXPECT_ERR(ctx, &c, NLL_ERROR_OVERLAP, "grad_input", "overlaps grad_loss");
        }
        if (f == CE_FUSED) {
            SECTION("loss overlapping grad_input");
            c = mk(f);
            c.loss = tview(c.gi, F32, 0, NULL, NULL, 20);
            EXPECT_ERR(ctx, &c, NLL_ERROR_OVERLAP, NULL, "overlaps");
        }
        if (f == CE_BWD || f == CE_FUSED) {
            SECTION("in place: grad_input is the input");
            c = mk(f);
            c.gi = tview(c.input, F32, 2, SH(3, 5), NULL, 0);
            EXPECT_OK(ctx, &c);

            SECTION("a rejected in-place call leaves the input as it was");
            c = mk(f);
            c.gi = tview(c.input, F32, 2, SH(3, 5), NULL, 0);
            tset(c.target, 1, 9);
            EXPECT_ERR(ctx, &c, NLL_ERROR_TARGET_RANGE, "target", "target[1] = 9");
            c = mk(f);
            c.gi = tview(c.input, F32, 2, SH(3, 5), NULL, 0);
            c.opt.flags = NLL_CHECK_FINITE;
            tset(c.input, 14, NAN);
            EXPECT_ERR(ctx, &c, NLL_ERROR_NONFINITE, "input", "input[14]");
            c = mk(f);
            c.gi = tview(c.input, F32, 2, SH(3, 5), NULL, 0);
            c.w = tvals(F32, 1, SH(3), VD(1, 1, 1));
            EXPECT_ERR(ctx, &c, NLL_ERROR_WEIGHT_SHAPE, "weight", "weight");
        }
    }

    SECTION("log_softmax overlap");
    {
        call c = mk(LS_FWD);
        c.out = tview(c.input, F32, 2, SH(3, 5), NULL, 0); /* in place: fine */
        EXPECT_OK(ctx, &c);
        tt *base = trandom(tnew(F32, 2, SH(4, 5)), -2, 2);
        c = mk(LS_FWD);
        c.input = tview(base, F32, 2, SH(3, 5), NULL, 0);
        c.out = tview(base, F32, 2, SH(3, 5), NULL, 20);
        EXPECT_ERR(ctx, &c, NLL_ERROR_OVERLAP, "output", "output overlaps input");
        c = mk(LS_FWD);
        c.out = tnew_strided(F32, 2, SH(3, 5), SH(5, 0), 0);
        EXPECT_ERR(ctx, &c, NLL_ERROR_OVERLAP, "output", "output");

        call b = mk(LS_BWD);
        b.gi = tview(b.gl, F32, 2, SH(3, 5), NULL, 0); /* in place: fine */
        EXPECT_OK(ctx, &b);
        base = trandom(tnew(F32, 2, SH(4, 5)), -1, 1);
        b = mk(LS_BWD);
        b.gl = tview(base, F32, 2, SH(3, 5), NULL, 0);
        b.gi = tview(base, F32, 2, SH(3, 5), NULL, 4);
        EXPECT_ERR(ctx, &b, NLL_ERROR_OVERLAP, "grad_input", "grad_input overlaps grad_output");
        b = mk(LS_BWD);
        b.gi = tnew_strided(F32, 2, SH(3, 5), SH(0, 1), 0);
        EXPECT_ERR(ctx, &b, NLL_ERROR_OVERLAP, "grad_input", "grad_input");
    }
}

static void test_dtypes(nll_context *ctx)
{
    for (int i = 0; i < N_LOSS_FNS; i++) {
        enum fn f = loss_fns[i];
        call c;

        SECTION("int64 input");
        c = mk(f);
        c.input = tnew(I64, 2, SH(3, 5));
        EXPECT_ERR(ctx, &c, NLL_ERROR_INPUT_DTYPE, "input", "input has dtype int64",
                   "float64, float32, float16 or bfloat16");
        EXPECT_NO_ELEMENT();

        SECTION("unsupported dtypes");
        c = mk(f);
        c.input = tnew(dtype_of(kDLFloat, 8), 2, SH(3, 5));
        EXPECT_ERR(ctx, &c, NLL_ERROR_UNSUPPORTED_DTYPE, "input", "code 2, 8 bits, 1 lanes");
        c = mk(f);
        c.input->t.dtype.lanes = 2;
        EXPECT_ERR(ctx, &c, NLL_ERROR_UNSUPPORTED_DTYPE, "input", "2 lanes");
        c = mk(f);
        c.target->t.dtype.lanes = 4;
        EXPECT_ERR(ctx, &c, NLL_ERROR_UNSUPPORTED_DTYPE, "target", "4 lanes");
        c = mk(f);
        c.input->t.dtype.code = 42;
        EXPECT_ERR(ctx, &c, NLL_ERROR_UNSUPPORTED_DTYPE, "input", "code 42");

        SECTION("bool and complex targets");
        c = mk(f);
        c.target = tvals(BOOL8, 1, SH(3), VD(1, 0, 1));
        EXPECT_ERR(ctx, &c, NLL_ERROR_TARGET_DTYPE, "target", "target has dtype bool");
        c = mk(f);
        c.target = tnew(dtype_of(kDLComplex, 64), 1, SH(3));
        EXPECT_ERR(ctx, &c, NLL_ERROR_TARGET_DTYPE, "target", "target");

        SECTION("float class-index target, all whole");
        c = mk_shape(f, 2, SH(4, 3), 1, SH(1));
        c.target = tvals(F32, 1, SH(4), VD(0, 1, 2, 0));
        EXPECT_ERR(ctx, &c, NLL_ERROR_FLOAT_TARGET, "target", "target has dtype float32",
                   "all 4 values are whole", "min 0, max 2", "int64", ".long()",
                   "astype(np.int64)", "NLL_ALLOW_FLOAT_TARGETS");
        c.target = tvals(F64, 1, SH(4), VD(0, 1, 2, 0));
        EXPECT_ERR(ctx, &c, NLL_ERROR_FLOAT_TARGET, "target", "float64", "whole");
        c.target = tvals(BF16, 1, SH(4), VD(0, 1, 2, 0));
        EXPECT_ERR(ctx, &c, NLL_ERROR_FLOAT_TARGET, "target", "bfloat16", "whole");

        SECTION("float class-index target, one not whole");
        c.target = tvals(F32, 1, SH(4), VD(0, 1, 0.5, 2));
        EXPECT_ERR(ctx, &c, NLL_ERROR_FLOAT_TARGET, "target", "target[2] = 0.5",
                   "not a whole number", "exact shape (4, 3)");
        CHECK_INT(last_detail.flat_index, 2);
        CHECK_NEAR(last_detail.value, 0.5, 0);

        SECTION("float target of a 1-D input");
        c = mk_shape(f, 1, SH(5), 0, NULL);
        c.target = tscalar(F32, 2);
        EXPECT_ERR(ctx, &c, NLL_ERROR_FLOAT_TARGET, "target", "float32", "whole");
    }

    SECTION("probability target dtype");
    for (int i = 0; i < N_CE_FNS; i++) {
        call c = mk(ce_fns[i]);
        c.target = trandom(tnew(F64, 2, SH(3, 5)), 0, 1);
        EXPECT_ERR(ctx, &c, NLL_ERROR_TARGET_DTYPE, "target", "float64", "float32");
        c.target = trandom(tnew(BF16, 2, SH(3, 5)), 0, 1);
        EXPECT_ERR(ctx, &c, NLL_ERROR_TARGET_DTYPE, "target", "bfloat16", "float32");
    }

    SECTION("an integer target of the input's exact shape");
    for (int i = 0; i < N_CE_FNS; i++) {
        call c = mk(ce_fns[i]);
        c.target = tnew(I64, 2, SH(3, 5));
        nll_status s = run(ctx, &c);
        CHECK(s == NLL_ERROR_TARGET_SHAPE || s == NLL_ERROR_TARGET_DTYPE);
        CHECK_HAS(nll_last_error(ctx), "(3, 5)");
        good_call(ctx, __LINE__);
    }
}

/* The float-target flag: accepted whole values give the int64 result. */
static void test_allow_float_targets(nll_context *ctx)
{
    SECTION("NLL_ALLOW_FLOAT_TARGETS gives the int64 result");
    for (int i = 0; i < N_LOSS_FNS; i++) {
        enum fn f = loss_fns[i];
        DLDataType fdts[3] = {F32, F64, F16};
        for (int k = 0; k < 3; k++) {
            call a = mk(f), b = mk(f);
            b.input = a.input;
            b.target = tvals(fdts[k], 1, SH(3), VD(1, 0, 4));
            b.opt.flags = NLL_ALLOW_FLOAT_TARGETS;
            CHECK_STATUS(run(ctx, &a), NLL_OK);
            CHECK_STATUS(run(ctx, &b), NLL_OK);
            if (a.loss)
                CHECK(tsame_bytes(a.loss, b.loss));
            if (a.gi)
                CHECK(tsame_bytes(a.gi, b.gi));
            if (a.tw)
                CHECK(tsame_bytes(a.tw, b.tw));
            set_none(&a);
            set_none(&b);
            CHECK_STATUS(run(ctx, &a), NLL_OK);
            CHECK_STATUS(run(ctx, &b), NLL_OK);
            if (a.loss)
                CHECK(tsame_bytes(a.loss, b.loss));
            if (a.gi)
                CHECK(tsame_bytes(a.gi, b.gi));
        }

        SECTION("NLL_ALLOW_FLOAT_TARGETS: a value not finite and whole");
        call c = mk_shape(f, 2, SH(4, 3), 1, SH(4));
        c.opt.flags = NLL_ALLOW_FLOAT_TARGETS;
        c.target = tvals(F32, 1, SH(4), VD(0, 0.5, 1, 2));
        EXPECT_ERR(ctx, &c, NLL_ERROR_TARGET_NOT_WHOLE, "target", "target[1] = 0.5",
                   "not a whole number");
        CHECK_INT(last_detail.flat_index, 1);
        CHECK_NEAR(last_detail.value, 0.5, 0);
        c.target = tvals(F32, 1, SH(4), VD(0, 1, 2, NAN));
        EXPECT_ERR(ctx, &c, NLL_ERROR_TARGET_NOT_WHOLE, "target", "target[3] = nan");
        CHECK_INT(last_detail.flat_index, 3);
        CHECK(isnan(last_detail.value));
        c.target = tvals(F64, 1, SH(4), VD(0, 1, INFINITY, 1));
        EXPECT_ERR(ctx, &c, NLL_ERROR_TARGET_NOT_WHOLE, "target", "target[2] = inf");
        CHECK_INT(last_detail.flat_index, 2);
        CHECK(isinf(last_detail.value) && last_detail.value > 0);
        c.target = tvals(F32, 1, SH(4), VD(0, 1, -INFINITY, 1));
        EXPECT_ERR(ctx, &c, NLL_ERROR_TARGET_NOT_WHOLE, "target", "target[2] = -inf");

        SECTION("NLL_ALLOW_FLOAT_TARGETS: whole but out of range");
        c.target = tvals(F32, 1, SH(4), VD(0, 1, 7, 1));
        EXPECT_ERR(ctx, &c, NLL_ERROR_TARGET_RANGE, "target", "target[2] = 7", "[0, 3)");

        SECTION("NLL_ALLOW_FLOAT_TARGETS: ignore_index in a float target");
        c.target = tvals(F32, 1, SH(4), VD(0, -100, 1, 2));
        EXPECT_OK(ctx, &c);
    }
}

static void test_target_range(nll_context *ctx)
{
    for (int i = 0; i < N_LOSS_FNS; i++) {
        enum fn f = loss_fns[i];
        for (int none = 0; none < 2; none++) {
            call c;
            SECTION("1-based labels");
            c = mk_shape(f, 2, SH(4, 5), 1, SH(4));
            tfill(c.target, VD(1, 2, 4, 5));
            if (none)
                set_none(&c);
            EXPECT_ERR(ctx, &c, NLL_ERROR_TARGET_RANGE, "target", "target[3] = 5",
                       "[0, 5)", "ignore_index (-100)", "1 of 4 targets", "min 1, max 5",
                       "look 1-based", "subtract 1");
            CHECK_INT(last_detail.flat_index, 3);
            CHECK_INT(last_detail.ndim, 1);
            CHECK_INT(last_detail.index[0], 3);
            CHECK_NEAR(last_detail.value, 5, 0);
            CHECK_INT(last_detail.count, 1);

            SECTION("-1 with the default ignore_index");
            c = mk_shape(f, 2, SH(4, 5), 1, SH(4));
            tfill(c.target, VD(0, -1, 2, 1));
            if (none)
                set_none(&c);
            EXPECT_ERR(ctx, &c, NLL_ERROR_TARGET_RANGE, "target", "target[1] = -1",
                       "1 of 4 targets", "ignore_index=-1");
            CHECK(!strstr(last_msg, "1-based"));
            CHECK(!strstr(last_msg, "ignore_index=255"));
            CHECK_NEAR(last_detail.value, -1, 0);
            CHECK_INT(last_detail.count, 1);

            SECTION("255 void label");
            c = mk_shape(f, 2, SH(4, 5), 1, SH(4));
            c.target = tvals(U8, 1, SH(4), VD(0, 255, 2, 1));
            if (none)
                set_none(&c);
            EXPECT_ERR(ctx, &c, NLL_ERROR_TARGET_RANGE, "target", "target[1] = 255",
                       "ignore_index=255");
            CHECK_NEAR(last_detail.value, 255, 0);
            c.opt.ignore_index = 255;
            EXPECT_OK(ctx, &c);
            c.target = tvals(I64, 1, SH(4), VD(0, 1, 2, 255));
            c.opt.ignore_index = -100;
            EXPECT_ERR(ctx, &c, NLL_ERROR_TARGET_RANGE, "target", "target[3] = 255",
                       "ignore_index=255");

            SECTION("several bad targets");
            c = mk_shape(f, 2, SH(4, 5), 1, SH(4));
            tfill(c.target, VD(0, 5, 1, 6));
            if (none)
                set_none(&c);
            EXPECT_ERR(ctx, &c, NLL_ERROR_TARGET_RANGE, "target", "target[1] = 5",
                       "2 of 4 targets");
            CHECK_INT(last_detail.count, 2);
            CHECK(!strstr(last_msg, "1-based"));

            SECTION("first bad in row-major order: [0, 7, -3, 9] reports 7");
            c = mk_shape(f, 2, SH(4, 3), 1, SH(4));
            for (int64_t k = 0; k < 12; k++)
                tset(c.input, k, 0);
            tfill(c.target, VD(0, 7, -3, 9));
            if (none)
                set_none(&c);
            EXPECT_ERR(ctx, &c, NLL_ERROR_TARGET_RANGE, "target", "target[1] = 7",
                       "[0, 3)", "3 of 4 targets");
            CHECK_INT(last_detail.flat_index, 1);
            CHECK_INT(last_detail.count, 3);
            CHECK_NEAR(last_detail.value, 7, 0);

            SECTION("ND target: multi-index");
            c = mk_shape(f, 4, SH(2, 3, 2, 2), 3, SH(2, 2, 2));
            tfill(c.target, VD(0, 1, 2, 0, 1, 3, 2, -5));
            if (none)
                set_none(&c);
            EXPECT_ERR(ctx, &c, NLL_ERROR_TARGET_RANGE, "target", "target[5] (index [1, 0, 1]) = 3",
                       "[0, 3)", "2 of 8 targets");
            CHECK_INT(last_detail.flat_index, 5);
            CHECK_INT(last_detail.ndim, 3);
            CHECK_INT(last_detail.index[0], 1);
            CHECK_INT(last_detail.index[1], 0);
            CHECK_INT(last_detail.index[2], 1);
            CHECK_NEAR(last_detail.value, 3, 0);
            CHECK_INT(last_detail.count, 2);

            SECTION("a strided ND target reports the logical position");
            c = mk_shape(f, 3, SH(2, 3, 3), 2, SH(2, 3));
            c.target = tnew_strided(I64, 2, SH(2, 3), SH(1, 2), 0); /* column-major */
            tfill(c.target, VD(0, 1, 2, 2, 4, 0));
            if (none)
                set_none(&c);
            EXPECT_ERR(ctx, &c, NLL_ERROR_TARGET_RANGE, "target", "target[4] (index [1, 1]) = 4");
            CHECK_INT(last_detail.flat_index, 4);

            SECTION("ignore_index -1 rejects -100");
            c = mk_shape(f, 2, SH(3, 3), 1, SH(3));
            tfill(c.target, VD(0, -100, 2));
            c.opt.ignore_index = -1;
            if (none)
                set_none(&c);
            EXPECT_ERR(ctx, &c, NLL_ERROR_TARGET_RANGE, "target", "target[1] = -100",
                       "ignore_index (-1)");

            SECTION("C = 0");
            c = mk_shape(f, 2, SH(2, 0), 1, SH(2));
            tfill(c.target, VD(0, 0));
            if (none)
                set_none(&c);
            EXPECT_ERR(ctx, &c, NLL_ERROR_TARGET_RANGE, "target", "target[0] = 0", "[0, 0)");
            CHECK_INT(last_detail.count, 2);

            SECTION("1-D input, 0-d target");
            c = mk_shape(f, 1, SH(5), 0, NULL);
            tset(c.target, 0, 5);
            if (none)
                set_none(&c);
            EXPECT_ERR(ctx, &c, NLL_ERROR_TARGET_RANGE, "target", "= 5", "[0, 5)");

            SECTION("every integer dtype is range-checked");
            {
                DLDataType dts[8] = {I8, I16, I32, I64, U8, U16, U32, U64};
                for (int k = 0; k < 8; k++) {
                    c = mk_shape(f, 2, SH(3, 5), 1, SH(3));
                    c.target = tvals(dts[k], 1, SH(3), VD(0, 1, 100));
                    if (none)
                        set_none(&c);
                    EXPECT_ERR(ctx, &c, NLL_ERROR_TARGET_RANGE, "target", "target[2] = 100");
                }
                c = mk_shape(f, 2, SH(3, 5), 1, SH(3));
                c.target = tnew(U64, 1, SH(3));
                {
                    uint64_t huge = UINT64_MAX;
                    memcpy(tt_ptr(c.target, 1), &huge, 8);
                }
                if (none)
                    set_none(&c);
                EXPECT_ERR(ctx, &c, NLL_ERROR_TARGET_RANGE, "target", "target[1] = 18446744073709551615");
                /* a uint64 value above INT64_MAX is not ignore_index = INT64_MAX */
                c.opt.ignore_index = INT64_MAX;
                EXPECT_ERR(ctx, &c, NLL_ERROR_TARGET_RANGE, "target", "target[1]");
                c.opt.ignore_index = -1; /* nor -1 (the same 64 bits) */
                EXPECT_ERR(ctx, &c, NLL_ERROR_TARGET_RANGE, "target", "target[1]");
                c = mk_shape(f, 2, SH(3, 5), 1, SH(3));
                tseti(c.target, 2, INT64_MIN);
                if (none)
                    set_none(&c);
                EXPECT_ERR(ctx, &c, NLL_ERROR_TARGET_RANGE, "target", "target[2] = -9223372036854775808");
            }
        }
    }
}

static void test_nonfinite(nll_context *ctx)
{
    for (int i = 0; i < N_LOSS_FNS; i++) {
        enum fn f = loss_fns[i];
        call c;
        SECTION("NLL_CHECK_FINITE: NaN and +inf rejected, first in row-major order");
        c = mk_shape(f, 2, SH(2, 3), 1, SH(2));
        c.opt.flags = NLL_CHECK_FINITE;
        tset(c.input, 4, NAN);
        tset(c.input, 5, INFINITY);
        EXPECT_ERR(ctx, &c, NLL_ERROR_NONFINITE, "input", "input[4] (index [1, 1]) = nan",
                   "2 of 6 input values", "-inf is allowed");
        CHECK_INT(last_detail.flat_index, 4);
        CHECK_INT(last_detail.ndim, 2);
        CHECK_INT(last_detail.index[0], 1);
        CHECK_INT(last_detail.index[1], 1);
        CHECK(isnan(last_detail.value));
        CHECK_INT(last_detail.count, 2);

        c = mk_shape(f, 2, SH(2, 3), 1, SH(2));
        c.opt.flags = NLL_CHECK_FINITE;
        tset(c.input, 1, INFINITY);
        tset(c.input, 2, -INFINITY);
        EXPECT_ERR(ctx, &c, NLL_ERROR_NONFINITE, "input", "input[1] (index [0, 1]) = inf",
                   "1 of 6 input values");
        CHECK(isinf(last_detail.value) && last_detail.value > 0);
        CHECK_INT(last_detail.count, 1);

        SECTION("NLL_CHECK_FINITE: ND multi-index, strided input");
        c = mk_shape(f, 3, SH(2, 3, 2), 2, SH(2, 2));
        c.input = trandom(tnew_strided(F32, 3, SH(2, 3, 2), SH(1, 4, 2), 0), -2, 0);
        c.opt.flags = NLL_CHECK_FINITE;
        tset(c.input, 9, NAN); /* (1, 1, 1) */
        EXPECT_ERR(ctx, &c, NLL_ERROR_NONFINITE, "input", "input[9] (index [1, 1, 1]) = nan");
        CHECK_INT(last_detail.flat_index, 9);
        CHECK_INT(last_detail.ndim, 3);
        CHECK_INT(last_detail.index[2], 1);

        SECTION("NLL_CHECK_FINITE: a NaN at a non-target position is still found");
        c = mk_shape(f, 2, SH(2, 3), 1, SH(2));
        tfill(c.target, VD(0, 0));
        c.opt.flags = NLL_CHECK_FINITE;
        tset(c.input, 5, NAN);
        EXPECT_ERR(ctx, &c, NLL_ERROR_NONFINITE, "input", "input[5]");
        c.opt.flags = 0; /* unchecked: accepted */
        EXPECT_OK(ctx, &c);

        SECTION("NLL_CHECK_FINITE: -inf accepted");
        c = mk_shape(f, 2, SH(2, 3), 1, SH(2));
        tfill(c.target, VD(0, 0));
        c.opt.flags = NLL_CHECK_FINITE;
        tset(c.input, 2, -INFINITY);
        EXPECT_OK(ctx, &c);
    }
    SECTION("NLL_CHECK_FINITE: probability targets are scanned too");
    for (int i = 0; i < N_CE_FNS; i++) {
        call c = mk(ce_fns[i]);
        c.target = trandom(tnew(F32, 2, SH(3, 5)), 0, 1);
        c.opt.flags = NLL_CHECK_FINITE;
        EXPECT_OK(ctx, &c);
        tset(c.target, 7, NAN);
        EXPECT_ERR(ctx, &c, NLL_ERROR_NONFINITE, "target", "target[7] (index [1, 2]) = nan");
    }
}

static void test_devices(nll_context *ctx)
{
    for (int i = 0; i < N_LOSS_FNS; i++) {
        enum fn f = loss_fns[i];
        call c;
        SECTION("unsupported device");
        c = mk(f);
        c.input->t.device.device_type = kDLROCM;
        c.target->t.device.device_type = kDLROCM;
        if (c.loss)
            c.loss->t.device.device_type = kDLROCM;
        if (c.tw)
            c.tw->t.device.device_type = kDLROCM;
        if (c.gi)
            c.gi->t.device.device_type = kDLROCM;
        /* the tensors are really host memory, so a wrongly accepted call does not crash (CUDA
         * devices, served by builds with the CUDA backend: tests/unit/test_cuda.c) */
        EXPECT_ERR(ctx, &c, NLL_ERROR_UNSUPPORTED_DEVICE, "input", "input is on rocm:0", "CPU");

        SECTION("mismatched devices");
        c = mk(f);
        c.w = tvals(F32, 1, SH(5), VD(1, 1, 1, 1, 1));
        c.w->t.device.device_type = kDLCUDA;
        c.w->t.device.device_id = 1;
        {
            nll_status s = run(ctx, &c);
            CHECK(s == NLL_ERROR_DEVICE_MISMATCH || s == NLL_ERROR_UNSUPPORTED_DEVICE);
            CHECK_HAS(nll_last_error(ctx), "weight");
            CHECK_HAS(nll_last_error(ctx), "cuda:1");
            good_call(ctx, __LINE__);
        }
        c = mk(f);
        c.target->t.device.device_type = kDLCUDA;
        {
            nll_status s = run(ctx, &c);
            CHECK(s == NLL_ERROR_DEVICE_MISMATCH || s == NLL_ERROR_UNSUPPORTED_DEVICE);
            CHECK_HAS(nll_last_error(ctx), "target");
            CHECK_HAS(nll_last_error(ctx), "cuda:0");
            good_call(ctx, __LINE__);
        }

        SECTION("mismatched served devices: pinned input, plain CPU target");
        c = mk(f);
        c.input->t.device.device_type = kDLCUDAHost;
        if (c.loss)
            c.loss->t.device.device_type = kDLCUDAHost;
        if (c.tw)
            c.tw->t.device.device_type = kDLCUDAHost;
        if (c.gi)
            c.gi->t.device.device_type = kDLCUDAHost;
        /* the device names as docs/errors.md spells them ("weight is on cpu but input is on
         * cuda:0") */
        EXPECT_ERR(ctx, &c, NLL_ERROR_DEVICE_MISMATCH, "target", "target is on", "input",
                   "cpu");

        SECTION("pinned host memory (kDLCUDAHost) is served");
        c = mk(f);
        c.input->t.device.device_type = kDLCUDAHost;
        c.target->t.device.device_type = kDLCUDAHost;
        if (c.loss)
            c.loss->t.device.device_type = kDLCUDAHost;
        if (c.tw)
            c.tw->t.device.device_type = kDLCUDAHost;
        if (c.gi)
            c.gi->t.device.device_type = kDLCUDAHost;
        EXPECT_OK(ctx, &c);
    }
    SECTION("log_softmax on an unsupported device");
    {
        call c = mk(LS_FWD);
        c.input->t.device.device_type = kDLVulkan;
        c.out->t.device.device_type = kDLVulkan;
        EXPECT_ERR(ctx, &c, NLL_ERROR_UNSUPPORTED_DEVICE, "input", "vulkan:0");
        call b = mk(LS_BWD);
        b.gl->t.device.device_type = kDLROCM;
        b.out->t.device.device_type = kDLROCM;
        b.gi->t.device.device_type = kDLROCM;
        nll_status s = run(ctx, &b);
        CHECK_STATUS(s, NLL_ERROR_UNSUPPORTED_DEVICE);
        good_call(ctx, __LINE__);
    }
}

int main(void)
{
    nll_context *ctx = check_context();
    good_x = tvals(F32, 2, SH(3, 3), VD(-1, -2, -3, -0.5, -1.5, -2.5, -0.1, -0.2, -0.3));
    good_t = tvals(I64, 1, SH(3), VD(0, 1, 2));
    good_loss = tnew(F32, 0, NULL);
    rng_seed(12345);

    test_base_calls_ok(ctx);
    test_null_arguments(ctx);
    test_options(ctx);
    test_shapes(ctx);
    test_overlap(ctx);
    test_dtypes(ctx);
    test_allow_float_targets(ctx);
    test_target_range(ctx);
    test_nonfinite(ctx);
    test_devices(ctx);

    nll_context_destroy(ctx);
    return check_finish("test_validation");
}
