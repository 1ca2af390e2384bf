/* nll: the command-line face of libnll. Uses only the public header, the npy module and libc
 * (plus getpid, to name temporary files). */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "nll.h"
#include "npy.h"

/* Exit statuses: the contract scripts rely on. */
enum { EXIT_OK = 0, EXIT_REJECTED = 1, EXIT_USAGE = 2 };

static void print_usage(FILE *f)
{
    fputs("usage:\n"
          "  nll --version\n"
          "  nll --help\n"
          "  nll loss --input X.npy --target T.npy [options]\n"
          "  nll demo\n"
          "\n"
          "nll loss computes a loss (and optionally its gradient) with libnll.\n"
          "  --input X.npy            log-probabilities (--op nll) or logits (--op cross-entropy):\n"
          "                           (C), (N, C) or (N, C, d1, ..., dk), float16/32/64\n"
          "  --target T.npy           class indices (any integer dtype), or for cross-entropy\n"
          "                           class probabilities of the input's exact shape\n"
          "  --op nll|cross-entropy   nll_loss (default) or cross_entropy\n"
          "  --weight W.npy           per-class weight, 1-D (C), the input's dtype\n"
          "  --reduction mean|sum|none   default mean\n"
          "  --ignore-index N         targets equal to N add nothing (default -100)\n"
          "  --label-smoothing X      cross-entropy only, in [0, 1] (default 0)\n"
          "  --out LOSS.npy           write the loss (0-d for mean/sum) in the input's dtype\n"
          "  --grad GRAD.npy          write d(sum of the loss)/d(input), the input's shape\n"
          "  --no-check-finite        do not reject NaN or +inf in the input\n"
          "  --allow-float-targets    accept whole-number float class indices\n"
          "\n"
          "  Mean and sum losses are printed as 'loss: <value>'; a 'none' loss is printed as a\n"
          "  flat list only when --out is not given.\n"
          "\n"
          "nll demo shows a common mistake (float32 labels) and its fix.\n"
          "\n"
          "exit status: 0 success, 1 input rejected by libnll, 2 usage or file error\n",
          f);
}

static int usage_error(const char *cmd, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "%s: ", cmd);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, " (see nll --help)\n");
    return EXIT_USAGE;
}

/* ---- numbers ---- */

static double half_to_double(uint16_t h)
{
    int exp = (h >> 10) & 0x1f;
    int mant = h & 0x3ff;
    double v;
    if (exp == 0)
        v = ldexp((double)mant, -24);
    else if (exp == 31)
        v = mant ? NAN : INFINITY;
    else
        v = ldexp((double)(mant | 0x400), exp - 25);
    return (h & 0x8000) ? -v : v;
}

/* Element i of a compact float tensor as a double. */
static double element(const DLTensor *t, int64_t i)
{
    const char *p = (const char *)t->data + t->byte_offset;
    if (t->dtype.code == kDLFloat && t->dtype.bits == 64) {
        double v;
        memcpy(&v, p + i * 8, 8);
        return v;
    }
    if (t->dtype.code == kDLFloat && t->dtype.bits == 32) {
        float v;
        memcpy(&v, p + i * 4, 4);
        return v;
    }
    if (t->dtype.bits == 16) {
        uint16_t h;
        memcpy(&h, p + i * 2, 2);
        if (t->dtype.code == kDLBfloat) {
            uint32_t u = (uint32_t)h << 16;
            float v;
            memcpy(&v, &u, 4);
            return v;
        }
        return half_to_double(h);
    }
    return NAN;
}

/* "%.9g" (float64: "%.17g"); NaN prints as "nan" whatever its sign bit. */
static void print_number(const DLTensor *t, int64_t i)
{
    double v = element(t, i);
    if (isnan(v))
        fputs("nan", stdout);
    else
        printf(t->dtype.bits == 64 ? "%.17g" : "%.9g", v);
}

static int parse_int64(const char *s, int64_t *out)
{
    char *end;
    long long v;
    errno = 0;
    v = strtoll(s, &end, 10);
    if (*s == '\0' || *end != '\0' || errno == ERANGE)
        return -1;
    *out = (int64_t)v;
    return 0;
}

static int parse_double(const char *s, double *out)
{
    char *end;
    double v;
    errno = 0;
    v = strtod(s, &end);
    if (*s == '\0' || *end != '\0' || errno == ERANGE)
        return -1;
    *out = v;
    return 0;
}

/* ---- outputs ---- */

typedef struct output {
    const char *path; /* NULL: not requested */
    const DLTensor *tensor;
    char tmp[4096];
    int written;
} output;

/* Writes every output to a temporary file beside it, then renames them all into place, so a
 * failure leaves no output created or changed (barring a failed rename, which is rare). */
static int write_outputs(output *outs, int n, const char *cmd)
{
    char err[NPY_ERROR_SIZE];
    int i, failed = 0;

    for (i = 0; i < n && !failed; i++) {
        if (outs[i].path == NULL)
            continue;
        if ((size_t)snprintf(outs[i].tmp, sizeof outs[i].tmp, "%s.nll-tmp-%ld-%d", outs[i].path,
                             (long)getpid(), i) >= sizeof outs[i].tmp) {
            fprintf(stderr, "%s: %s: path too long\n", cmd, outs[i].path);
            failed = 1;
            break;
        }
        if (npy_save(outs[i].tmp, outs[i].tensor, err, sizeof err)) {
            fprintf(stderr, "%s: %s\n", cmd, err);
            remove(outs[i].tmp);
            failed = 1;
            break;
        }
        outs[i].written = 1;
    }
    for (i = 0; i < n && !failed; i++) {
        if (outs[i].written && rename(outs[i].tmp, outs[i].path) != 0) {
            fprintf(stderr, "%s: %s: cannot rename into place: %s\n", cmd, outs[i].path,
                    strerror(errno));
            failed = 1;
        } else {
            outs[i].written = 0;
        }
    }
    for (i = 0; i < n; i++)
        if (outs[i].written)
            remove(outs[i].tmp);
    return failed ? -1 : 0;
}

/* ---- nll loss ---- */

typedef struct loss_args {
    const char *input, *target, *weight, *out, *grad;
    int cross_entropy;
    nll_reduction reduction;
    int64_t ignore_index;
    double label_smoothing;
    int check_finite, allow_float_targets, help;
} loss_args;

/* Returns 0, EXIT_USAGE after printing the problem. */
static int parse_loss_args(int argc, char **argv, loss_args *a)
{
    const char *cmd = "nll loss";
    int i, seen[16] = {0};
    static const char *const valued[] = {"--input",        "--target",       "--op",
                                         "--weight",       "--reduction",    "--ignore-index",
                                         "--label-smoothing", "--out",       "--grad"};
    static const char *const flags[] = {"--no-check-finite", "--allow-float-targets", "--help",
                                        "-h"};

    for (i = 0; i < argc; i++) {
        const char *arg = argv[i], *val = NULL, *eq = NULL;
        size_t name_len = strlen(arg);
        int k, opt = -1, flag = -1;

        if (strncmp(arg, "--", 2) == 0 && (eq = strchr(arg, '=')) != NULL)
            name_len = (size_t)(eq - arg);
        for (k = 0; k < (int)(sizeof valued / sizeof valued[0]); k++)
            if (strlen(valued[k]) == name_len && strncmp(arg, valued[k], name_len) == 0)
                opt = k;
        for (k = 0; k < (int)(sizeof flags / sizeof flags[0]); k++)
            if (strlen(flags[k]) == name_len && strncmp(arg, flags[k], name_len) == 0)
                flag = k;
        if (opt < 0 && flag < 0) {
            if (arg[0] == '-')
                return usage_error(cmd, "unknown option '%.*s'", (int)name_len, arg);
            return usage_error(cmd, "unexpected argument '%s'", arg);
        }
        if (flag >= 0) {
            if (eq)
                return usage_error(cmd, "option %s takes no value", flags[flag]);
            if (flag == 0)
                a->check_finite = 0;
            else if (flag == 1)
                a->allow_float_targets = 1;
            else
                a->help = 1;
            continue;
        }
        if (eq)
            val = eq + 1;
        else if (i + 1 < argc)
            val = argv[++i];
        else
            return usage_error(cmd, "option %s needs a value", valued[opt]);
        if (seen[opt]++)
            return usage_error(cmd, "option %s given twice", valued[opt]);
        switch (opt) {
        case 0: a->input = val; break;
        case 1: a->target = val; break;
        case 2:
            if (strcmp(val, "nll") == 0)
                a->cross_entropy = 0;
            else if (strcmp(val, "cross-entropy") == 0)
                a->cross_entropy = 1;
            else
                return usage_error(cmd, "unknown --op '%s' (expected nll or cross-entropy)", val);
            break;
        case 3: a->weight = val; break;
        case 4:
            if (strcmp(val, "mean") == 0)
                a->reduction = NLL_REDUCTION_MEAN;
            else if (strcmp(val, "sum") == 0)
                a->reduction = NLL_REDUCTION_SUM;
            else if (strcmp(val, "none") == 0)
                a->reduction = NLL_REDUCTION_NONE;
            else
                return usage_error(cmd, "unknown --reduction '%s' (expected mean, sum or none)",
                                   val);
            break;
        case 5:
            if (parse_int64(val, &a->ignore_index))
                return usage_error(cmd, "--ignore-index '%s' is not an int64 integer", val);
            break;
        case 6:
            if (parse_double(val, &a->label_smoothing))
                return usage_error(cmd, "--label-smoothing '%s' is not a number", val);
            break;
        case 7: a->out = val; break;
        default: a->grad = val; break;
        }
    }
    if (a->help)
        return 0;
    if (a->input == NULL)
        return usage_error(cmd, "missing --input");
    if (a->target == NULL)
        return usage_error(cmd, "missing --target");
    if (!a->cross_entropy && a->label_smoothing != 0.0)
        return usage_error(cmd,
                           "--label-smoothing applies to --op cross-entropy only (nll_loss takes "
                           "log-probabilities as they are)");
    if (a->out && a->grad && strcmp(a->out, a->grad) == 0)
        return usage_error(cmd, "--out and --grad name the same file '%s'", a->out);
    return 0;
}

/* Allocates a zeroed compact tensor; its shape lives in the caller's array. */
static int alloc_tensor(DLTensor *t, DLDataType dtype, int ndim, int64_t *shape)
{
    int64_t count = 1;
    size_t itemsize = npy_itemsize(dtype);
    int i;
    for (i = 0; i < ndim; i++)
        count *= shape[i]; /* the npy reader has already ruled out overflow */
    memset(t, 0, sizeof *t);
    t->data = calloc((size_t)count ? (size_t)count : 1, itemsize ? itemsize : 1);
    if (t->data == NULL)
        return -1;
    t->device.device_type = kDLCPU;
    t->ndim = ndim;
    t->dtype = dtype;
    t->shape = shape;
    return 0;
}

static int64_t tensor_count(const DLTensor *t)
{
    int64_t count = 1;
    int i;
    for (i = 0; i < t->ndim; i++)
        count *= t->shape[i];
    return count;
}

static int run_loss(const loss_args *a)
{
    const char *cmd = "nll loss";
    npy_array input, target, weight;
    char err[NPY_ERROR_SIZE];
    nll_context *ctx = NULL;
    nll_options opts = nll_options_default();
    DLTensor loss, grad;
    int64_t loss_shape[NPY_MAX_NDIM];
    int loss_ndim = 0, rc = EXIT_USAGE, i, class_dim;
    nll_status st;

    memset(&input, 0, sizeof input);
    memset(&target, 0, sizeof target);
    memset(&weight, 0, sizeof weight);
    memset(&loss, 0, sizeof loss);
    memset(&grad, 0, sizeof grad);

    if (npy_load(a->input, &input, err, sizeof err) ||
        npy_load(a->target, &target, err, sizeof err) ||
        (a->weight && npy_load(a->weight, &weight, err, sizeof err))) {
        fprintf(stderr, "%s: %s\n", cmd, err);
        goto done;
    }

    /* Without a reduction the loss has the input's shape less the class axis (dim 0 for a 1-D
     * input, else dim 1); for any valid target that is also the target's (or the probability
     * target's) sample shape, and a bad target is the library's to report. */
    if (a->reduction == NLL_REDUCTION_NONE && input.ndim > 0) {
        class_dim = input.ndim == 1 ? 0 : 1;
        for (i = 0; i < input.ndim; i++)
            if (i != class_dim)
                loss_shape[loss_ndim++] = input.shape[i];
    }
    if (alloc_tensor(&loss, input.dtype, loss_ndim, loss_shape) ||
        (a->grad && alloc_tensor(&grad, input.dtype, input.ndim, input.shape))) {
        fprintf(stderr, "%s: out of memory\n", cmd);
        goto done;
    }

    st = nll_context_create(&ctx);
    if (st != NLL_OK) {
        fprintf(stderr, "%s: cannot create a libnll context\nstatus: %s\n", cmd,
                nll_status_name(st));
        rc = EXIT_REJECTED;
        goto done;
    }
    opts.reduction = a->reduction;
    opts.ignore_index = a->ignore_index;
    opts.label_smoothing = a->label_smoothing;
    opts.weight = a->weight ? npy_tensor(&weight) : NULL;
    opts.flags = (a->check_finite ? NLL_CHECK_FINITE : 0u) |
                 (a->allow_float_targets ? NLL_ALLOW_FLOAT_TARGETS : 0u);

    if (a->cross_entropy && a->grad)
        st = nll_cross_entropy_fused(ctx, npy_tensor(&input), npy_tensor(&target), &opts, &loss,
                                     &grad);
    else if (a->cross_entropy)
        st = nll_cross_entropy_forward(ctx, npy_tensor(&input), npy_tensor(&target), &opts,
                                       &loss);
    else {
        st = nll_loss_forward(ctx, npy_tensor(&input), npy_tensor(&target), &opts, &loss, NULL);
        if (st == NLL_OK && a->grad)
            st = nll_loss_backward(ctx, NULL, npy_tensor(&input), npy_tensor(&target), &opts,
                                   &grad);
    }
    if (st != NLL_OK) {
        fprintf(stderr, "%s: %s\nstatus: %s\n", cmd, nll_last_error(ctx), nll_status_name(st));
        rc = EXIT_REJECTED;
        goto done;
    }

    {
        output outs[2];
        memset(outs, 0, sizeof outs);
        outs[0].path = a->out;
        outs[0].tensor = &loss;
        outs[1].path = a->grad;
        outs[1].tensor = &grad;
        if (write_outputs(outs, 2, cmd))
            goto done;
    }
    if (a->reduction != NLL_REDUCTION_NONE) {
        fputs("loss: ", stdout);
        print_number(&loss, 0);
        putchar('\n');
    } else if (a->out == NULL) {
        int64_t n = tensor_count(&loss), k;
        fputs("loss: [", stdout);
        for (k = 0; k < n; k++) {
            if (k)
                fputs(", ", stdout);
            print_number(&loss, k);
        }
        fputs("]\n", stdout);
    }
    rc = EXIT_OK;

done:
    nll_context_destroy(ctx);
    free(loss.data);
    free(grad.data);
    npy_free(&input);
    npy_free(&target);
    npy_free(&weight);
    if (rc == EXIT_OK && fflush(stdout) != 0)
        rc = EXIT_USAGE;
    return rc;
}

/* ---- nll demo ---- */

/* Cross-entropy mean of the demo batch with the given target; prints the outcome. */
static nll_status demo_call(nll_context *ctx, DLTensor *logits, DLTensor *labels, unsigned flags)
{
    nll_options opts = nll_options_default();
    float value = 0.0f;
    DLTensor loss;
    nll_status st;

    memset(&loss, 0, sizeof loss);
    loss.data = &value;
    loss.device.device_type = kDLCPU;
    loss.dtype.code = kDLFloat;
    loss.dtype.bits = 32;
    loss.dtype.lanes = 1;
    opts.flags = flags;
    st = nll_cross_entropy_forward(ctx, logits, labels, &opts, &loss);
    if (st == NLL_OK)
        printf("   accepted: loss = %.6f (the mean over the 4 samples)\n", (double)value);
    else
        printf("   rejected with %s:\n   %s\n", nll_status_name(st), nll_last_error(ctx));
    return st;
}

static int run_demo(void)
{
    /* 4 samples, 3 classes: the model's raw scores (logits). */
    static const float logits_data[4][3] = {
        {2.0f, 0.5f, -1.0f}, {0.1f, 1.5f, 0.3f}, {-0.5f, 0.2f, 2.2f}, {1.0f, 1.1f, 0.9f}};
    float labels_f32[4] = {0.0f, 1.0f, 2.0f, 1.0f};
    int64_t labels_i64[4] = {0, 1, 2, 1};
    int64_t logits_shape[2] = {4, 3}, labels_shape[1] = {4};
    DLTensor logits, labels;
    nll_context *ctx = NULL;
    nll_status wrong, fixed, allowed;

    if (nll_context_create(&ctx) != NLL_OK) {
        fputs("nll demo: cannot create a libnll context\n", stderr);
        return EXIT_REJECTED;
    }
    memset(&logits, 0, sizeof logits);
    logits.data = (void *)logits_data;
    logits.device.device_type = kDLCPU;
    logits.ndim = 2;
    logits.dtype.code = kDLFloat;
    logits.dtype.bits = 32;
    logits.dtype.lanes = 1;
    logits.shape = logits_shape;
    labels = logits;
    labels.ndim = 1;
    labels.shape = labels_shape;
    labels.data = labels_f32;

    puts("nll demo: class labels that arrive as float32\n"
         "\n"
         "A batch of 4 samples and 3 classes: logits of shape (4, 3) and the labels\n"
         "[0, 1, 2, 1]. The data loader produced the labels as float32, a common slip:\n"
         "class indices must be integers.\n"
         "\n"
         "1. cross_entropy(logits, labels) with float32 labels");
    wrong = demo_call(ctx, &logits, &labels, 0);

    puts("\n2. The fix: convert the labels to int64 (labels.long() in PyTorch,\n"
         "   labels.astype(np.int64) in NumPy)");
    labels.dtype.code = kDLInt;
    labels.dtype.bits = 64;
    labels.data = labels_i64;
    fixed = demo_call(ctx, &logits, &labels, 0);

    puts("\n3. Or keep the float32 labels and pass NLL_ALLOW_FLOAT_TARGETS\n"
         "   (nll loss --allow-float-targets): every label is checked to be a whole number");
    labels.dtype.code = kDLFloat;
    labels.dtype.bits = 32;
    labels.data = labels_f32;
    allowed = demo_call(ctx, &logits, &labels, NLL_ALLOW_FLOAT_TARGETS);

    nll_context_destroy(ctx);
    if (wrong != NLL_OK && fixed == NLL_OK) {
        printf("\nThe float32 labels were refused with an explanation; as int64 they work%s.\n",
               allowed == NLL_OK ? ", and so does the opt-in flag" : "");
        return EXIT_OK;
    }
    puts("\nUnexpected: libnll did not behave as this demo expects.");
    return EXIT_REJECTED;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        print_usage(stderr);
        return EXIT_USAGE;
    }
    if (strcmp(argv[1], "--version") == 0 && argc == 2) {
        printf("nll %s\n", nll_version_string());
        return EXIT_OK;
    }
    if ((strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
         strcmp(argv[1], "help") == 0) &&
        argc == 2) {
        print_usage(stdout);
        return EXIT_OK;
    }
    if (strcmp(argv[1], "loss") == 0) {
        loss_args a;
        int rc;
        memset(&a, 0, sizeof a);
        a.reduction = NLL_REDUCTION_MEAN;
        a.ignore_index = -100;
        a.check_finite = 1;
        rc = parse_loss_args(argc - 2, argv + 2, &a);
        if (rc)
            return rc;
        if (a.help) {
            print_usage(stdout);
            return EXIT_OK;
        }
        return run_loss(&a);
    }
    if (strcmp(argv[1], "demo") == 0) {
        if (argc > 2)
            return usage_error("nll demo", "takes no arguments");
        return run_demo();
    }
    if (argv[1][0] == '-')
        return usage_error("nll", "unknown option '%s'", argv[1]);
    return usage_error("nll", "unknown command '%s'", argv[1]);
}
