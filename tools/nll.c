/* nll: the command-line face of libnll. Uses only the public header, the format module
 * (formats.h) and the subcommands' modules: check.c, demo.c. */
#define _POSIX_C_SOURCE 200809L

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "formats.h"
#include "nll.h"

static void print_usage(FILE *f)
{
    fputs("usage:\n"
          "  nll --version\n"
          "  nll --help\n"
          "  nll loss --input X --target T [options]\n"
          "  nll check --target T [--input X] [--classes C] [--op nll|cross-entropy]\n"
          "            [--ignore-index N] [--weight W] [--json]\n"
          "  nll convert IN OUT\n"
          "  nll demo [--device cpu|cuda] [--epochs N] [--data FILE] [--plot FILE.png | --no-plot]\n"
          "\n"
          "Files: .npy (versions 1-3, C or Fortran order, either byte order), .npz (stored or\n"
          "deflated; FILE.npz:NAME picks an array) and .safetensors (FILE.safetensors:NAME picks\n"
          "a tensor); a container holding one tensor needs no NAME.\n"
          "\n"
          "nll loss computes a loss (and optionally its gradient) with libnll.\n"
          "  --input X                log-probabilities (--op nll) or logits (--op cross-entropy):\n"
          "                           (C), (N, C) or (N, C, d1, ..., dk), float16/32/64, bfloat16\n"
          "  --target T               class indices (any integer dtype), or for cross-entropy\n"
          "                           class probabilities of the input's exact shape\n"
          "  --op nll|cross-entropy   nll_loss (default) or cross_entropy\n"
          "  --weight W               per-class weight, 1-D (C), the input's dtype\n"
          "  --reduction mean|sum|none   default mean\n"
          "  --ignore-index N         targets equal to N add nothing (default -100)\n"
          "  --label-smoothing X      cross-entropy only, in [0, 1] (default 0)\n"
          "  --out LOSS.npy           write the loss (0-d for mean/sum) in the input's dtype;\n"
          "                           a name ending in .safetensors writes that format\n"
          "  --grad GRAD.npy          write d(sum of the loss)/d(input), the input's shape\n"
          "  --no-check-finite        do not reject NaN or +inf in the input\n"
          "  --allow-float-targets    accept whole-number float class indices\n"
          "\n"
          "  Mean and sum losses are printed as 'loss: <value>'; a 'none' loss is printed as a\n"
          "  flat list only when --out is not given.\n"
          "\n"
          "nll check reads a target (and optionally the input and weight) and reports what would\n"
          "break or silently spoil training, with the fix for each finding: dtype, shape, class\n"
          "range (1-based labels, -1 padding, 255 void labels, gaps), ignored targets, a class\n"
          "histogram, NaN/inf, and whether the input rows are log-probabilities, probabilities\n"
          "or logits. --classes C (or the input's class axis) gives the class count; --json\n"
          "prints the findings as one JSON document. Exit status 0: no problem found; 1: a\n"
          "problem found; 2: usage or file error.\n"
          "\n"
          "nll convert writes the tensor IN (any format above) to OUT (.npy, or .safetensors),\n"
          "C order, little-endian.\n"
          "\n"
          "nll demo shows the classic mistakes with libnll's messages and fixes, then trains a\n"
          "softmax-regression classifier on the UCI handwritten digits with libnll's fused\n"
          "cross-entropy (a loss-curve PNG when gnuplot is installed).\n"
          "\n"
          "exit status: 0 success, 1 input rejected by libnll (or problems found), 2 usage or\n"
          "file error\n",
          f);
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

/* Returns 0, or EXIT_USAGE after printing the problem. */
static int parse_loss_args(int argc, char **argv, loss_args *a)
{
    static const cli_option options[] = {
        {"--input", 1},  {"--target", 1},         {"--op", 1},
        {"--weight", 1}, {"--reduction", 1},      {"--ignore-index", 1},
        {"--label-smoothing", 1}, {"--out", 1},   {"--grad", 1},
        {"--no-check-finite", 0}, {"--allow-float-targets", 0}, {"--help", 0}, {"-h", 0}};
    enum { N_OPTIONS = sizeof options / sizeof options[0] };
    const char *cmd = "nll loss";
    int i, seen[N_OPTIONS] = {0};

    for (i = 0; i < argc; i++) {
        const char *val;
        int opt = cli_next_option(cmd, argc, argv, &i, options, N_OPTIONS, seen, &val);
        switch (opt) {
        case -1: return EXIT_USAGE;
        case 0: a->input = val; break;
        case 1: a->target = val; break;
        case 2:
            if (parse_op(cmd, val, &a->cross_entropy) != EXIT_OK)
                return EXIT_USAGE;
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
        case 8: a->grad = val; break;
        case 9: a->check_finite = 0; break;
        case 10: a->allow_float_targets = 1; break;
        default: a->help = 1; break;
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
    size_t itemsize = fmt_itemsize(dtype);
    int i;
    for (i = 0; i < ndim; i++)
        count *= shape[i]; /* the readers have already ruled out overflow */
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

static double loss_element(const DLTensor *t, int64_t i)
{
    fmt_array view;
    memset(&view, 0, sizeof view);
    view.data = t->data;
    view.dtype = t->dtype;
    view.row_major = 1;
    return fmt_get_double(&view, i);
}

static int run_loss(const loss_args *a)
{
    const char *cmd = "nll loss";
    fmt_array input, target, weight;
    char err[FMT_ERROR_SIZE];
    nll_context *ctx = NULL;
    nll_options opts = nll_options_default();
    DLTensor loss, grad;
    int64_t loss_shape[FMT_MAX_NDIM];
    int loss_ndim = 0, rc = EXIT_USAGE, i, class_dim;
    nll_status st;

    memset(&input, 0, sizeof input);
    memset(&target, 0, sizeof target);
    memset(&weight, 0, sizeof weight);
    memset(&loss, 0, sizeof loss);
    memset(&grad, 0, sizeof grad);

    if (fmt_load(a->input, &input, err, sizeof err) ||
        fmt_load(a->target, &target, err, sizeof err) ||
        (a->weight && fmt_load(a->weight, &weight, err, sizeof err))) {
        cli_printf(stderr, "%s: %s\n", cmd, err);
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
        cli_printf(stderr, "%s: out of memory\n", cmd);
        goto done;
    }

    st = nll_context_create(&ctx);
    if (st != NLL_OK) {
        cli_printf(stderr, "%s: cannot create a libnll context\nstatus: %s\n", cmd,
                nll_status_name(st));
        rc = EXIT_REJECTED;
        goto done;
    }
    opts.reduction = a->reduction;
    opts.ignore_index = a->ignore_index;
    opts.label_smoothing = a->label_smoothing;
    opts.weight = a->weight ? fmt_tensor(&weight) : NULL;
    opts.flags = (a->check_finite ? NLL_CHECK_FINITE : 0u) |
                 (a->allow_float_targets ? NLL_ALLOW_FLOAT_TARGETS : 0u);

    if (a->cross_entropy && a->grad)
        st = nll_cross_entropy_fused(ctx, fmt_tensor(&input), fmt_tensor(&target), &opts, &loss,
                                     &grad);
    else if (a->cross_entropy)
        st = nll_cross_entropy_forward(ctx, fmt_tensor(&input), fmt_tensor(&target), &opts,
                                       &loss);
    else {
        st = nll_loss_forward(ctx, fmt_tensor(&input), fmt_tensor(&target), &opts, &loss, NULL);
        if (st == NLL_OK && a->grad)
            st = nll_loss_backward(ctx, NULL, fmt_tensor(&input), fmt_tensor(&target), &opts,
                                   &grad);
    }
    if (st != NLL_OK) {
        cli_printf(stderr, "%s: %s\nstatus: %s\n", cmd, nll_last_error(ctx),
                   nll_status_name(st));
        rc = EXIT_REJECTED;
        goto done;
    }

    {
        output outs[2];
        memset(outs, 0, sizeof outs);
        outs[0].path = a->out;
        outs[0].tensor = &loss;
        outs[0].name = "loss";
        outs[1].path = a->grad;
        outs[1].tensor = &grad;
        outs[1].name = "grad";
        if (write_outputs(outs, 2, cmd))
            goto done;
    }
    if (a->reduction != NLL_REDUCTION_NONE) {
        fputs("loss: ", stdout);
        print_value(stdout, loss_element(&loss, 0), loss.dtype.bits);
        putchar('\n');
    } else if (a->out == NULL) {
        int64_t n = 1, k;
        for (i = 0; i < loss.ndim; i++)
            n *= loss.shape[i];
        fputs("loss: [", stdout);
        for (k = 0; k < n; k++) {
            if (k)
                fputs(", ", stdout);
            print_value(stdout, loss_element(&loss, k), loss.dtype.bits);
        }
        fputs("]\n", stdout);
    }
    rc = EXIT_OK;

done:
    nll_context_destroy(ctx);
    free(loss.data);
    free(grad.data);
    fmt_free(&input);
    fmt_free(&target);
    fmt_free(&weight);
    if (rc == EXIT_OK && fflush(stdout) != 0)
        rc = EXIT_USAGE;
    return rc;
}

/* ---- nll convert ---- */

static int run_convert(int argc, char **argv)
{
    const char *cmd = "nll convert";
    char err[FMT_ERROR_SIZE];
    fmt_array a;
    output out;
    const char *name;

    if (argc == 1 && (strcmp(argv[0], "--help") == 0 || strcmp(argv[0], "-h") == 0)) {
        print_usage(stdout);
        return EXIT_OK;
    }
    if (argc != 2)
        return usage_error(cmd, "expects IN and OUT");
    if (fmt_load(argv[0], &a, err, sizeof err) || fmt_make_row_major(&a, err, sizeof err)) {
        cli_printf(stderr, "%s: %s\n", cmd, err);
        fmt_free(&a);
        return EXIT_USAGE;
    }
    /* A tensor picked by name keeps its name in a .safetensors output. */
    name = strrchr(argv[0], ':');
    name = name != NULL && a.kind != FMT_NPY ? name + 1 : "tensor";
    memset(&out, 0, sizeof out);
    out.path = argv[1];
    out.tensor = fmt_tensor(&a);
    out.name = name;
    if (write_outputs(&out, 1, cmd)) {
        fmt_free(&a);
        return EXIT_USAGE;
    }
    fmt_free(&a);
    return EXIT_OK;
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
    /* Input files are mapped: one that shrinks meanwhile must end in a message, not a crash. */
    if (strcmp(argv[1], "loss") == 0)
        cli_handle_bus_errors("nll loss");
    else if (strcmp(argv[1], "check") == 0)
        cli_handle_bus_errors("nll check");
    else if (strcmp(argv[1], "convert") == 0)
        cli_handle_bus_errors("nll convert");
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
    if (strcmp(argv[1], "check") == 0)
        return run_check_command(argc - 2, argv + 2);
    if (strcmp(argv[1], "convert") == 0)
        return run_convert(argc - 2, argv + 2);
    if (strcmp(argv[1], "demo") == 0)
        return run_demo_command(argc - 2, argv + 2);
    if (argv[1][0] == '-')
        return usage_error("nll", "unknown option '%s'", argv[1]);
    return usage_error("nll", "unknown command '%s'", argv[1]);
}
