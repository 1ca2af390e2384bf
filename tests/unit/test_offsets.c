/* Results must not depend on where a tensor starts: the same logits (and every other operand)
 * copied at byte offsets 0, 4, ..., 60 of a 64-byte aligned buffer (2-byte steps for float16
 * and bfloat16) give bitwise the same losses and gradients, for every op, on 1 and 2 threads.
 * Long rows (C >= 65536, one row: cut across the threads), mid-sized and short rows (the
 * transposed kernel). The outputs sit at their own offsets, so the streaming-store and
 * kept-exponential choices, which may depend on alignment, are exercised too; their values may
 * not. NLL_TEST_SMALL=1 (valgrind) tries fewer offsets and no long rows. */
#include "check.h"

enum { OP_SM_FWD, OP_SM_BWD, OP_NLL_FWD, OP_NLL_BWD, OP_CE_FWD, OP_CE_BWD, OP_FUSED,
       OP_FUSED_IN_PLACE, OP_PROB_FUSED, N_OPS };

static const char *const op_names[N_OPS] = {
    "log_softmax_forward", "log_softmax_backward", "nll_loss_forward",
    "nll_loss_backward",   "cross_entropy_forward", "cross_entropy_backward",
    "cross_entropy_fused", "cross_entropy_fused in place", "cross_entropy_fused probabilities"};

/* Operands of one case, generated once, in the input dtype's bytes. */
typedef struct problem {
    DLDataType dtype;
    int64_t rows, classes;
    size_t item, bytes;         /* one (rows, classes) tensor */
    unsigned char *x, *g, *q;   /* logits (also log-probabilities), an upstream, probabilities */
    unsigned char *weight;      /* (classes) */
    int64_t *target;            /* (rows) */
    nll_reduction reduction;
    double smoothing;
    int weighted;
} problem;

static uint64_t rng = 0x243F6A8885A308D3ull;

static double uniform(void) {
    rng = rng * 6364136223846793005ull + 1442695040888963407ull;
    return (double)(rng >> 11) / 9007199254740992.0;
}

static void put(const problem *p, unsigned char *at, double v) {
    if (p->dtype.bits == 32) {
        float f = (float)v;
        memcpy(at, &f, 4);
    } else {
        uint16_t h = p->dtype.code == kDLBfloat ? f32_to_bf16((float)v) : f32_to_f16((float)v);
        memcpy(at, &h, 2);
    }
}

static void make_problem(problem *p, DLDataType dtype, int64_t rows, int64_t classes) {
    memset(p, 0, sizeof *p);
    p->dtype = dtype;
    p->rows = rows;
    p->classes = classes;
    p->item = dtype.bits / 8;
    p->bytes = (size_t)(rows * classes) * p->item;
    p->x = malloc(p->bytes);
    p->g = malloc(p->bytes);
    p->q = malloc(p->bytes);
    p->weight = malloc((size_t)classes * p->item);
    p->target = malloc((size_t)rows * sizeof(int64_t));
    CHECK(p->x && p->g && p->q && p->weight && p->target);
    for (int64_t r = 0; r < rows; r++) {
        double total = 0;
        for (int64_t c = 0; c < classes; c++) {
            const size_t at = (size_t)(r * classes + c) * p->item;
            /* spread enough that blocks take different shifts, and every 997th logit high */
            put(p, p->x + at, uniform() * 12.0 - 6.0 + (c % 997 == 5 ? 9.0 : 0.0));
            put(p, p->g + at, uniform() - 0.5);
            total += 1.0;
        }
        for (int64_t c = 0; c < classes; c++)
            put(p, p->q + (size_t)(r * classes + c) * p->item, (0.5 + uniform()) / total);
        p->target[r] = r % 5 == 3 ? -100 : (r * 7919 + 11) % classes;
    }
    for (int64_t c = 0; c < classes; c++)
        put(p, p->weight + (size_t)c * p->item, 0.25 + uniform());
}

static void free_problem(problem *p) {
    free(p->x);
    free(p->g);
    free(p->q);
    free(p->weight);
    free(p->target);
}

/* A (rows, classes) tensor of the problem's dtype at data */
static DLTensor matrix(const problem *p, void *data, int64_t *shape) {
    shape[0] = p->rows;
    shape[1] = p->classes;
    DLTensor t = {data, {kDLCPU, 0}, 2, p->dtype, shape, NULL, 0};
    return t;
}

/* 64-byte aligned memory (aligned_alloc wants a multiple of the alignment) */
static unsigned char *aligned_bytes(size_t bytes) {
    return aligned_alloc(64, (bytes + 63) / 64 * 64);
}

/* Runs op with every operand at byte offset `in` of its own 64-byte aligned buffer and every
 * output at `out`; the outputs' bytes (gradient or log_softmax, then the loss) go to result. */
static int run_op(nll_context *ctx, const problem *p, int op, size_t in, size_t out,
                  unsigned char *result, size_t *result_bytes) {
    const size_t pad = 64, loss_bytes = (size_t)p->rows * p->item;
    unsigned char *bx = aligned_bytes(p->bytes + 2 * pad), *bg = aligned_bytes(p->bytes + 2 * pad);
    unsigned char *bo = aligned_bytes(p->bytes + 2 * pad), *bl = aligned_bytes(loss_bytes + 2 * pad);
    unsigned char *bw = aligned_bytes((size_t)p->classes * p->item + 2 * pad);
    unsigned char *bt = aligned_bytes((size_t)p->rows * 8 + 2 * pad);
    int ok = bx && bg && bo && bl && bw && bt;
    CHECK(ok);
    if (!ok)
        goto done;
    memset(bo, 0, p->bytes + 2 * pad);
    memset(bl, 0, loss_bytes + 2 * pad);
    memcpy(bx + in, p->x, p->bytes);
    memcpy(bg + in, op == OP_PROB_FUSED ? p->q : p->g, p->bytes);
    memcpy(bw + in, p->weight, (size_t)p->classes * p->item);
    /* int64 targets stay aligned to 8 bytes: only the floating tensors move */
    memcpy(bt + (in & ~(size_t)7), p->target, (size_t)p->rows * 8);
    int64_t shape[2], o_shape[2], q_shape[2], w_shape[1] = {p->classes}, t_shape[1] = {p->rows};
    DLTensor x = matrix(p, bx + in, shape);
    DLTensor g = matrix(p, bg + in, q_shape);
    DLTensor o = matrix(p, bo + out, o_shape);
    DLTensor w = {bw + in, {kDLCPU, 0}, 1, p->dtype, w_shape, NULL, 0};
    DLTensor t = {bt + (in & ~(size_t)7), {kDLCPU, 0}, 1, {kDLInt, 64, 1}, t_shape, NULL, 0};
    const int none = p->reduction == NLL_REDUCTION_NONE;
    DLTensor loss = {bl + out, {kDLCPU, 0}, none ? 1 : 0, p->dtype, none ? t_shape : NULL, NULL, 0};
    nll_options options = nll_options_default();
    options.reduction = p->reduction;
    options.weight = p->weighted ? &w : NULL;
    nll_options ce = options; /* nll_loss takes no smoothing */
    ce.label_smoothing = p->smoothing;
    nll_status s = NLL_OK;
    switch (op) {
    case OP_SM_FWD: s = nll_log_softmax_forward(ctx, &x, 1, &o); break;
    case OP_SM_BWD: s = nll_log_softmax_backward(ctx, &g, &x, 1, &o); break;
    case OP_NLL_FWD: s = nll_loss_forward(ctx, &x, &t, &options, &loss, NULL); break;
    case OP_NLL_BWD: s = nll_loss_backward(ctx, NULL, &x, &t, &options, &o); break;
    case OP_CE_FWD: s = nll_cross_entropy_forward(ctx, &x, &t, &ce, &loss); break;
    case OP_CE_BWD: s = nll_cross_entropy_backward(ctx, NULL, &x, &t, &ce, &o); break;
    case OP_FUSED: s = nll_cross_entropy_fused(ctx, &x, &t, &ce, &loss, &o); break;
    case OP_FUSED_IN_PLACE:
        s = nll_cross_entropy_fused(ctx, &x, &t, &ce, &loss, &x); /* the gradient is at `in` */
        memcpy(bo + out, bx + in, p->bytes);
        break;
    case OP_PROB_FUSED: s = nll_cross_entropy_fused(ctx, &x, &g, &ce, &loss, &o); break;
    }
    CHECK_STATUS(s, NLL_OK);
    ok = s == NLL_OK;
    memcpy(result, bo + out, p->bytes);
    memcpy(result + p->bytes, bl + out, loss_bytes);
    *result_bytes = p->bytes + loss_bytes;
done:
    free(bx);
    free(bg);
    free(bo);
    free(bl);
    free(bw);
    free(bt);
    return ok;
}

/* Index of the first differing element, for the message */
static long first_difference(const unsigned char *a, const unsigned char *b, size_t n,
                             size_t item) {
    for (size_t i = 0; i < n; i++)
        if (a[i] != b[i])
            return (long)(i / item);
    return -1;
}

static void offsets_agree(nll_context *ctx, problem *p, const char *what) {
    const int small = getenv("NLL_TEST_SMALL") != NULL;
    const size_t step = p->item, result_size = p->bytes + (size_t)p->rows * p->item;
    unsigned char *expected = malloc(result_size), *got = malloc(result_size);
    CHECK(expected && got);
    if (!expected || !got)
        goto done;
    for (int op = 0; op < N_OPS; op++) {
        size_t n = 0, n0 = 0;
        CHECK_STATUS(nll_context_set_threads(ctx, 1), NLL_OK);
        if (!run_op(ctx, p, op, 0, 0, expected, &n0))
            continue;
        int failures = 0;
        /* a second thread takes part only from two threads' worth of work */
        const int max_threads = p->rows * p->classes >= 65536 ? 2 : 1;
        for (int threads = 1; threads <= max_threads && !failures; threads++) {
            CHECK_STATUS(nll_context_set_threads(ctx, threads), NLL_OK);
            for (size_t in = 0; in < 64 && !failures; in += small ? 5 * step : step) {
                const size_t out = (in * 5 + (small ? step : 0)) % 64 / step * step;
                if (!run_op(ctx, p, op, in, out, got, &n))
                    break;
                const long at = first_difference(expected, got, n, p->item);
                if (at >= 0) {
                    failures++;
                    fprintf(stderr,
                            "%s, %s, threads %d: input at byte offset %zu, output at %zu: "
                            "element %ld differs from offset 0\n",
                            what, op_names[op], threads, in, out, at);
                }
                CHECK(at < 0);
            }
        }
    }
done:
    free(expected);
    free(got);
}

int main(void) {
    nll_context *ctx = check_context();
    const DLDataType dtypes[3] = {F32, BF16, F16};
    const char *const dtype_names[3] = {"float32", "bfloat16", "float16"};
    const int64_t shapes[3][2] = {{1, 70001}, {3, 5003}, {37, 13}};
    char what[160];
    /* NLL_TEST_SMALL (valgrind): no long rows (test_threads walks them there) */
    const int first_shape = getenv("NLL_TEST_SMALL") ? 1 : 0;
    for (int d = 0; d < 3; d++)
        for (int s = first_shape; s < 3; s++)
            for (int variant = 0; variant < 2; variant++) {
                problem p;
                make_problem(&p, dtypes[d], shapes[s][0], shapes[s][1]);
                p.reduction = variant == 1 ? NLL_REDUCTION_NONE : NLL_REDUCTION_MEAN;
                p.weighted = variant == 1;
                p.smoothing = variant == 1 ? 0.1 : 0.0;
                snprintf(what, sizeof what, "%s (%lld, %lld) %s", dtype_names[d],
                         (long long)p.rows, (long long)p.classes,
                         variant == 0 ? "mean" : "none, weight, label smoothing 0.1");
                SECTION(what);
                offsets_agree(ctx, &p, what);
                free_problem(&p);
            }
    nll_context_destroy(ctx);
    return check_finish("test_offsets");
}
