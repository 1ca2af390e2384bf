/* nll demo: the classic mistakes with libnll's messages and their fixes, then a softmax
 * regression trained on the UCI handwritten digits with the fused cross-entropy.
 *
 * Everything is deterministic: a fixed seed picks the train/test split and the batch order,
 * the weights start at zero, and libnll's reductions run in a fixed order. */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <zlib.h>

#include "check.h"
#include "cli.h"
#include "formats.h"
#include "nll.h"

#define DIGITS_FEATURES 64 /* 8x8 pixels, 0..16 */
#define DIGITS_CLASSES 10
#define DIGITS_ROWS 1797
#define DIGITS_TEST 360
#define DEMO_SEED 20240611u
#define BATCH 32
#define LEARNING_RATE 0.5f

typedef struct demo_args {
    const char *data, *plot;
    int epochs, no_plot, help, cuda;
} demo_args;

/* splitmix64: a small, well-mixed generator with its state in the caller's hands. */
static uint64_t next_random(uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15u);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
    return z ^ (z >> 31);
}

static void shuffle(int *order, int n, uint64_t *state)
{
    int i;
    for (i = n - 1; i > 0; i--) {
        int j = (int)(next_random(state) % (uint64_t)(i + 1)), tmp = order[i];
        order[i] = order[j];
        order[j] = tmp;
    }
}

static DLTensor tensor_2d(void *data, DLDataTypeCode code, int bits, int ndim, int64_t *shape)
{
    DLTensor t;
    memset(&t, 0, sizeof t);
    t.data = data;
    t.device.device_type = kDLCPU;
    t.ndim = ndim;
    t.dtype.code = (uint8_t)code;
    t.dtype.bits = (uint8_t)bits;
    t.dtype.lanes = 1;
    t.shape = shape;
    return t;
}

/* ---- part 1: the classic mistakes ---- */

/* Prints the outcome of a call: the loss, or the library's status and message. The loss is
 * passed by address: it must be read after the call has run. */
/* Prints text word-wrapped to 92 columns, each line indented by six spaces. */
static void print_wrapped(const char *text)
{
    const int width = 92 - 6;
    while (*text) {
        int n = (int)strlen(text), cut = n;
        if (n > width) {
            for (cut = width; cut > 0 && text[cut] != ' '; cut--)
                ;
            if (cut == 0)
                cut = width;
        }
        printf("      %.*s\n", cut, text);
        text += cut;
        while (*text == ' ')
            text++;
    }
}

static int report_call(nll_context *ctx, nll_status st, const float *loss)
{
    if (st == NLL_OK) {
        printf("   -> loss = %.4f\n", (double)*loss);
    } else {
        printf("   -> rejected with %s:\n", nll_status_name(st));
        print_wrapped(nll_last_error(ctx));
    }
    return st == NLL_OK;
}

static int show_mistakes(nll_context *ctx)
{
    /* A batch of 4 samples and 3 classes: the model's raw scores. */
    float logits[4][3] = {{2.0f, 0.5f, -1.0f}, {0.1f, 1.5f, 0.3f}, {-0.5f, 0.2f, 2.2f},
                          {1.0f, 1.1f, 0.9f}};
    float probabilities[4][3], log_probabilities[4][3], loss = 0.0f;
    float labels_f32[4] = {0, 1, 2, 1};
    int64_t labels[4] = {0, 1, 2, 1}, one_based[4] = {1, 2, 3, 2}, padded[4] = {0, 1, -1, -1};
    int64_t shape[2] = {4, 3}, target_shape[1] = {4};
    DLTensor x = tensor_2d(logits, kDLFloat, 32, 2, shape);
    DLTensor t = tensor_2d(labels_f32, kDLFloat, 32, 1, target_shape);
    DLTensor out = tensor_2d(&loss, kDLFloat, 32, 0, NULL);
    nll_options opts = nll_options_default();
    int good = 1, r, c;

    puts("Part 1: four classic mistakes, what libnll says, and the fix\n"
         "\n"
         "A batch of 4 samples and 3 classes: logits of shape (4, 3), labels [0, 1, 2, 1].\n");

    puts("1. Labels that arrive as float32 (a data loader's default)\n"
         "   nll_cross_entropy_forward(logits, labels as float32)");
    good &= !report_call(ctx, nll_cross_entropy_forward(ctx, &x, &t, &opts, &out), &loss);
    puts("   fix: labels.astype(np.int64) (labels.long() in PyTorch)");
    t = tensor_2d(labels, kDLInt, 64, 1, target_shape);
    good &= report_call(ctx, nll_cross_entropy_forward(ctx, &x, &t, &opts, &out), &loss);

    puts("\n2. Labels numbered from 1, as in a CSV: [1, 2, 3, 2]");
    t.data = one_based;
    good &= !report_call(ctx, nll_cross_entropy_forward(ctx, &x, &t, &opts, &out), &loss);
    puts("   fix: labels - 1");
    t.data = labels;
    good &= report_call(ctx, nll_cross_entropy_forward(ctx, &x, &t, &opts, &out), &loss);

    puts("\n3. A batch padded with -1: [0, 1, -1, -1], with the default ignore_index (-100)");
    t.data = padded;
    good &= !report_call(ctx, nll_cross_entropy_forward(ctx, &x, &t, &opts, &out), &loss);
    puts("   fix: ignore_index = -1 (the mean is over the 2 real samples)");
    opts.ignore_index = -1;
    good &= report_call(ctx, nll_cross_entropy_forward(ctx, &x, &t, &opts, &out), &loss);
    opts.ignore_index = -100;

    /* softmax by hand: the probabilities a model's last layer might already produce. */
    for (r = 0; r < 4; r++) {
        float max = logits[r][0], sum = 0.0f;
        for (c = 1; c < 3; c++)
            max = logits[r][c] > max ? logits[r][c] : max;
        for (c = 0; c < 3; c++)
            sum += probabilities[r][c] = expf(logits[r][c] - max);
        for (c = 0; c < 3; c++)
            probabilities[r][c] /= sum;
    }
    puts("\n4. Probabilities (softmax output) passed to nll_loss, which takes log-probabilities\n"
         "   nll_loss_forward(softmax(logits), labels)");
    x.data = probabilities;
    t.data = labels;
    if (nll_loss_forward(ctx, &x, &t, &opts, &out, NULL) == NLL_OK) {
        fmt_array view;
        classify_result rows;
        memset(&view, 0, sizeof view);
        view.data = probabilities;
        view.dtype = x.dtype;
        view.ndim = 2;
        view.shape[0] = 4;
        view.shape[1] = 3;
        view.count = 12;
        view.row_major = 1;
        rows = classify_input_rows(&view);
        printf("   -> accepted, loss = %.4f: a negative log-likelihood below 0 is impossible.\n"
               "      The library cannot tell probabilities from log-probabilities; nll check\n"
               "      can: %lld of %lld rows are probabilities (values in [0, 1] summing to 1):\n"
               "      take the log first\n",
               (double)loss, (long long)rows.probability_rows, (long long)rows.rows);
        good &= rows.probability_rows == rows.rows && loss < 0.0f;
    } else {
        good = 0;
    }
    puts("   fix: log_softmax, then nll_loss (or cross-entropy on the logits)");
    x.data = logits;
    {
        DLTensor lp = tensor_2d(log_probabilities, kDLFloat, 32, 2, shape);
        float ce = 0.0f;
        DLTensor ce_out = tensor_2d(&ce, kDLFloat, 32, 0, NULL);
        good &= nll_log_softmax_forward(ctx, &x, 1, &lp) == NLL_OK;
        good &= report_call(ctx, nll_loss_forward(ctx, &lp, &t, &opts, &out, NULL), &loss);
        good &= nll_cross_entropy_forward(ctx, &x, &t, &opts, &ce_out) == NLL_OK;
        printf("      cross-entropy on the logits gives %.4f, the same\n", (double)ce);
    }
    return good;
}

/* ---- part 2: training on the digits ---- */

typedef struct digits {
    float x[DIGITS_ROWS][DIGITS_FEATURES]; /* pixels / 16 */
    int64_t y[DIGITS_ROWS];
} digits;

static int file_exists(const char *path)
{
    return access(path, R_OK) == 0;
}

static const char *find_data(const char *given)
{
    static const char *const candidates[] = {NLL_SOURCE_DATA_DIR "/digits.csv.gz",
                                             NLL_INSTALL_DATA_DIR "/digits.csv.gz"};
    size_t i;
    if (given != NULL)
        return given;
    for (i = 0; i < sizeof candidates / sizeof candidates[0]; i++)
        if (file_exists(candidates[i]))
            return candidates[i];
    return NULL;
}

/* Reads the gzipped CSV: DIGITS_ROWS rows of 64 pixels (0..16) and a class (0..9). */
static int load_digits(const char *path, digits *d)
{
    char line[1024];
    gzFile f;
    int row = 0;

    {
        /* gzopen of a FIFO would wait for a writer forever. */
        struct stat st;
        if (stat(path, &st) == 0 && !S_ISREG(st.st_mode)) {
            cli_printf(stderr, "nll demo: %s: not a regular file (%s)\n", path,
                       fmt_file_type(st.st_mode));
            return -1;
        }
    }
    errno = 0;
    f = gzopen(path, "rb");
    if (f == NULL) {
        cli_printf(stderr, "nll demo: %s: cannot open: %s\n", path,
                errno ? strerror(errno) : "out of memory");
        return -1;
    }
    while (gzgets(f, line, sizeof line) != NULL) {
        char *p = line, *end;
        int col;
        if (line[0] == '\n' || line[0] == '\0')
            continue;
        if (row == DIGITS_ROWS) {
            cli_printf(stderr, "nll demo: %s: more than %d rows\n", path, DIGITS_ROWS);
            gzclose(f);
            return -1;
        }
        for (col = 0; col <= DIGITS_FEATURES; col++) {
            long v;
            errno = 0;
            v = strtol(p, &end, 10);
            if (end == p || errno != 0 || v < 0 || v > (col < DIGITS_FEATURES ? 16 : 9) ||
                (col < DIGITS_FEATURES ? *end != ',' : (*end != '\n' && *end != '\0' &&
                                                         *end != '\r'))) {
                cli_printf(stderr,
                        "nll demo: %s: line %d, column %d: expected 64 pixels (0..16) and a "
                        "class (0..9), comma-separated\n",
                        path, row + 1, col + 1);
                gzclose(f);
                return -1;
            }
            if (col < DIGITS_FEATURES)
                d->x[row][col] = (float)v / 16.0f;
            else
                d->y[row] = v;
            p = end + 1;
        }
        row++;
    }
    gzclose(f);
    if (row != DIGITS_ROWS) {
        cli_printf(stderr, "nll demo: %s: %d rows, expected %d\n", path, row, DIGITS_ROWS);
        return -1;
    }
    return 0;
}

typedef struct model {
    float w[DIGITS_FEATURES][DIGITS_CLASSES];
    float b[DIGITS_CLASSES];
} model;

/* logits[i] = x[rows[i]] . w + b for a batch of rows. */
static void forward(const model *m, const digits *d, const int *rows, int n,
                    float (*logits)[DIGITS_CLASSES])
{
    int i, j, k;
    for (i = 0; i < n; i++) {
        const float *x = d->x[rows[i]];
        for (k = 0; k < DIGITS_CLASSES; k++)
            logits[i][k] = m->b[k];
        for (j = 0; j < DIGITS_FEATURES; j++)
            if (x[j] != 0.0f)
                for (k = 0; k < DIGITS_CLASSES; k++)
                    logits[i][k] += x[j] * m->w[j][k];
    }
}

static int argmax(const float *v, int n)
{
    int k, best = 0;
    for (k = 1; k < n; k++)
        if (v[k] > v[best])
            best = k;
    return best;
}

static void progress_bar(int epoch, int epochs, int done, int total)
{
    char bar[31];
    int filled = done * 30 / total, i;
    for (i = 0; i < 30; i++)
        bar[i] = i < filled ? '#' : '.';
    bar[30] = '\0';
    printf("\repoch %2d/%d [%s] %3d%%", epoch, epochs, bar, done * 100 / total);
    fflush(stdout);
}

/* Accuracy and mean loss of the model on rows (the loss through nll_cross_entropy_forward). */
static int evaluate(nll_context *ctx, const model *m, const digits *d, const int *rows, int n,
                    double *accuracy, double *loss)
{
    float(*logits)[DIGITS_CLASSES] = malloc(sizeof *logits * (size_t)n);
    int64_t *labels = malloc(sizeof *labels * (size_t)n);
    int64_t shape[2] = {n, DIGITS_CLASSES}, label_shape[1] = {n};
    float value = 0.0f;
    DLTensor x, t, out;
    nll_options opts = nll_options_default();
    int i, correct = 0, rc = -1;

    if (logits == NULL || labels == NULL)
        goto done;
    forward(m, d, rows, n, logits);
    for (i = 0; i < n; i++) {
        labels[i] = d->y[rows[i]];
        correct += argmax(logits[i], DIGITS_CLASSES) == labels[i];
    }
    x = tensor_2d(logits, kDLFloat, 32, 2, shape);
    t = tensor_2d(labels, kDLInt, 64, 1, label_shape);
    out = tensor_2d(&value, kDLFloat, 32, 0, NULL);
    if (nll_cross_entropy_forward(ctx, &x, &t, &opts, &out) != NLL_OK) {
        cli_printf(stderr, "nll demo: %s\n", nll_last_error(ctx));
        goto done;
    }
    *accuracy = (double)correct / n;
    *loss = value;
    rc = 0;
done:
    free(logits);
    free(labels);
    return rc;
}

/* Draws the loss curve with gnuplot when it is on the PATH; quietly nothing otherwise. */
static void plot_losses(const char *png, const double *losses, const double *test_losses,
                        int epochs)
{
    const char *path = getenv("PATH");
    char candidate[4096];
    const char *c;
    int found = 0, e;
    FILE *gp;

    while (path != NULL && *path && !found) {
        const char *colon = strchr(path, ':');
        size_t n = colon ? (size_t)(colon - path) : strlen(path);
        if (n > 0 && n + 9 < sizeof candidate) {
            snprintf(candidate, sizeof candidate, "%.*s/gnuplot", (int)n, path);
            found = access(candidate, X_OK) == 0;
        }
        path = colon ? colon + 1 : NULL;
    }
    if (!found)
        return;
    for (c = png; *c != '\0'; c++)
        if ((unsigned char)*c < 0x20 || *c == 0x7f) {
            cli_printf(stderr, "nll demo: --plot %s: the name holds a control character; no plot\n",
                       png);
            return;
        }
    gp = popen("gnuplot 2>/dev/null", "w");
    if (gp == NULL)
        return;
    /* The name goes into a gnuplot command: inside '...' only a quote needs care ('' is one);
     * the control characters were refused above (a newline would end the command). */
    fputs("set terminal png size 640,400\nset output '", gp);
    for (c = png; *c != '\0'; c++) {
        if (*c == '\'')
            fputc('\'', gp);
        fputc(*c, gp);
    }
    fputs("'\n", gp);
    fputs("set title 'nll demo: softmax regression on the UCI digits'\n"
          "set xlabel 'epoch'\nset ylabel 'cross-entropy'\nset logscale y\nset grid\n"
          "plot '-' with linespoints title 'train (mean over the epoch)', "
          "'-' with linespoints title 'held-out (end of epoch)'\n",
          gp);
    for (e = 0; e < epochs; e++)
        fprintf(gp, "%d %.6f\n", e + 1, losses[e]);
    fputs("e\n", gp);
    for (e = 0; e < epochs; e++)
        fprintf(gp, "%d %.6f\n", e + 1, test_losses[e]);
    fputs("e\n", gp);
    if (pclose(gp) == 0 && file_exists(png))
        cli_printf(stdout, "loss curve: %s\n", png);
}

static int train(nll_context *ctx, const demo_args *a, const char *data_path)
{
    digits *d = malloc(sizeof *d);
    model *m = calloc(1, sizeof *m);
    double *losses = calloc((size_t)a->epochs, sizeof *losses);
    double *test_losses = calloc((size_t)a->epochs, sizeof *test_losses);
    int order[DIGITS_ROWS], *train_rows = order, *test_rows = order + DIGITS_ROWS - DIGITS_TEST;
    const int n_train = DIGITS_ROWS - DIGITS_TEST;
    uint64_t rng = DEMO_SEED;
    int interactive = isatty(fileno(stdout)), epoch, i, rc = EXIT_USAGE;
    double accuracy = 0.0, test_loss = 0.0, seconds;
    struct timespec t0, t1;
    char default_png[4096];
    const char *tmp = getenv("TMPDIR");

    if (d == NULL || m == NULL || losses == NULL || test_losses == NULL) {
        fputs("nll demo: out of memory\n", stderr);
        goto done;
    }
    if (load_digits(data_path, d))
        goto done;
    for (i = 0; i < DIGITS_ROWS; i++)
        order[i] = i;
    shuffle(order, DIGITS_ROWS, &rng);

    printf("\nPart 2: softmax regression on the UCI handwritten digits\n\n"
           "%s: %d images of 8x8 pixels, 10 classes;\n"
           "a fixed split: %d to train, %d held out. Model: logits = x W + b (64 x 10),\n"
           "trained with nll_cross_entropy_fused (loss and d loss/d logits in one pass,\n"
           "the gradient written over the logits), SGD, batch %d, learning rate %.2g.\n\n",
           data_path, DIGITS_ROWS, n_train, DIGITS_TEST, BATCH, (double)LEARNING_RATE);

    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (epoch = 1; epoch <= a->epochs; epoch++) {
        double loss_sum = 0.0;
        int correct = 0, start;
        shuffle(train_rows, n_train, &rng);
        for (start = 0; start < n_train; start += BATCH) {
            int n = n_train - start < BATCH ? n_train - start : BATCH, j, k;
            float logits[BATCH][DIGITS_CLASSES], loss = 0.0f;
            int64_t labels[BATCH], shape[2] = {n, DIGITS_CLASSES}, label_shape[1] = {n};
            DLTensor x = tensor_2d(logits, kDLFloat, 32, 2, shape);
            DLTensor t = tensor_2d(labels, kDLInt, 64, 1, label_shape);
            DLTensor out = tensor_2d(&loss, kDLFloat, 32, 0, NULL);
            nll_options opts = nll_options_default();
            nll_status st;

            forward(m, d, train_rows + start, n, logits);
            for (i = 0; i < n; i++) {
                labels[i] = d->y[train_rows[start + i]];
                correct += argmax(logits[i], DIGITS_CLASSES) == labels[i];
            }
            /* The gradient of the batch's mean loss replaces the logits. */
            st = nll_cross_entropy_fused(ctx, &x, &t, &opts, &out, &x);
            if (st != NLL_OK) {
                cli_printf(stderr, "nll demo: %s\n", nll_last_error(ctx));
                rc = EXIT_REJECTED;
                goto done;
            }
            loss_sum += (double)loss * n;
            for (i = 0; i < n; i++) {
                const float *xi = d->x[train_rows[start + i]];
                for (k = 0; k < DIGITS_CLASSES; k++)
                    m->b[k] -= LEARNING_RATE * logits[i][k];
                for (j = 0; j < DIGITS_FEATURES; j++)
                    if (xi[j] != 0.0f)
                        for (k = 0; k < DIGITS_CLASSES; k++)
                            m->w[j][k] -= LEARNING_RATE * xi[j] * logits[i][k];
            }
            if (interactive)
                progress_bar(epoch, a->epochs, start + n, n_train);
        }
        losses[epoch - 1] = loss_sum / n_train;
        if (evaluate(ctx, m, d, test_rows, DIGITS_TEST, &accuracy, &test_losses[epoch - 1])) {
            rc = EXIT_REJECTED;
            goto done;
        }
        printf("%sepoch %2d/%d  loss %.4f  train accuracy %.4f  held-out loss %.4f\n",
               interactive ? "\r\033[K" : "", epoch, a->epochs, losses[epoch - 1],
               (double)correct / n_train, test_losses[epoch - 1]);
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    seconds = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) * 1e-9;
    if (evaluate(ctx, m, d, test_rows, DIGITS_TEST, &accuracy, &test_loss)) {
        rc = EXIT_REJECTED;
        goto done;
    }
    printf("\nheld-out accuracy: %.4f (%d of %d), held-out loss %.4f; trained in %.2f s\n",
           accuracy, (int)lround(accuracy * DIGITS_TEST), DIGITS_TEST, test_loss, seconds);
    if (!a->no_plot) {
        const char *png = a->plot;
        if (png == NULL) {
            snprintf(default_png, sizeof default_png, "%s/nll-demo-loss.png",
                     tmp != NULL && *tmp ? tmp : "/tmp");
            png = default_png;
        }
        plot_losses(png, losses, test_losses, a->epochs);
    }
    rc = EXIT_OK;
done:
    free(d);
    free(m);
    free(losses);
    free(test_losses);
    return rc;
}

static int parse_demo_args(int argc, char **argv, demo_args *a)
{
    static const cli_option options[] = {{"--device", 1}, {"--epochs", 1}, {"--data", 1},
                                         {"--plot", 1},   {"--no-plot", 0}, {"--help", 0},
                                         {"-h", 0}};
    enum { N_OPTIONS = sizeof options / sizeof options[0] };
    const char *cmd = "nll demo";
    int i, seen[N_OPTIONS] = {0};
    int64_t epochs;

    for (i = 0; i < argc; i++) {
        const char *val;
        switch (cli_next_option(cmd, argc, argv, &i, options, N_OPTIONS, seen, &val)) {
        case -1: return EXIT_USAGE;
        case 0:
            if (strcmp(val, "cuda") == 0)
                a->cuda = 1;
            else if (strcmp(val, "cpu") != 0)
                return usage_error(cmd, "unknown --device '%s' (expected cpu or cuda)", val);
            break;
        case 1:
            if (parse_int64(val, &epochs) || epochs < 1 || epochs > 1000)
                return usage_error(cmd, "--epochs '%s' is not a whole number in [1, 1000]", val);
            a->epochs = (int)epochs;
            break;
        case 2: a->data = val; break;
        case 3:
            /* The name goes into a gnuplot script between single quotes. */
            if (strchr(val, '\'') != NULL || strchr(val, '\n') != NULL)
                return usage_error(cmd, "--plot '%s': the file name may not hold a quote", val);
            a->plot = val;
            break;
        case 4: a->no_plot = 1; break;
        default: a->help = 1; break;
        }
    }
    if (a->plot && a->no_plot)
        return usage_error(cmd, "--plot and --no-plot contradict each other");
    return 0;
}

int run_demo_command(int argc, char **argv)
{
    demo_args a;
    nll_context *ctx = NULL;
    const char *data_path;
    int rc;

    memset(&a, 0, sizeof a);
    a.epochs = 20;
    rc = parse_demo_args(argc, argv, &a);
    if (rc)
        return rc;
    if (a.help) {
        fputs("usage: nll demo [--device cpu|cuda] [--epochs N] [--data FILE]\n"
              "                [--plot FILE.png | --no-plot]\n"
              "Shows the classic mistakes with libnll's messages, then trains a softmax\n"
              "regression on the UCI handwritten digits (data/digits.csv.gz) with the fused\n"
              "cross-entropy. The loss curve goes to $TMPDIR/nll-demo-loss.png (or --plot)\n"
              "when gnuplot is installed.\n",
              stdout);
        return EXIT_OK;
    }
    if (a.cuda) {
        fputs("nll demo: this build of libnll has no CUDA backend; run with --device cpu\n",
              stderr);
        return EXIT_USAGE;
    }
    data_path = find_data(a.data);
    if (data_path == NULL) {
        fputs("nll demo: cannot find digits.csv.gz (looked in " NLL_SOURCE_DATA_DIR
              " and " NLL_INSTALL_DATA_DIR "): pass --data FILE\n",
              stderr);
        return EXIT_USAGE;
    }
    if (nll_context_create(&ctx) != NLL_OK) {
        fputs("nll demo: cannot create a libnll context\n", stderr);
        return EXIT_REJECTED;
    }
    if (!show_mistakes(ctx)) {
        puts("\nUnexpected: libnll did not behave as this demo expects.");
        nll_context_destroy(ctx);
        return EXIT_REJECTED;
    }
    rc = train(ctx, &a, data_path);
    nll_context_destroy(ctx);
    if (rc == EXIT_OK && fflush(stdout) != 0)
        rc = EXIT_USAGE;
    return rc;
}
