/* nll check: reads a target (and optionally the input and weight) and reports what would make
 * training fail or silently go wrong, with the fix for each finding.
 *
 * The report is built once as facts and findings: text lines for people, a cJSON document for
 * scripts (--json). A finding is an error (exit 1: the library would reject the call, or the
 * loss would be meaningless), a warning (legal but suspicious) or a note. */
#define _POSIX_C_SOURCE 200809L

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "check.h"
#include "cli.h"
#include "formats.h"
#include "nll.h"

/* Positions listed per finding; counts are always complete. */
#define MAX_LISTED 5
/* A histogram is kept for at most this many classes. */
#define MAX_HISTOGRAM_CLASSES 10000000
/* Counts are printed one by one up to this many classes. */
#define MAX_PRINTED_CLASSES 20

typedef enum severity { SEV_ERROR, SEV_WARNING, SEV_NOTE } severity;

/* Fact sections, printed in this order whatever order they were found in. */
enum { SEC_TARGET, SEC_CLASSES, SEC_HISTOGRAM, SEC_INPUT, SEC_WEIGHT, N_SECTIONS };

typedef struct report {
    strbuf facts[N_SECTIONS]; /* text: "key       fact" lines per section */
    strbuf findings[3];       /* text: the findings, by severity */
    cJSON *doc;
    cJSON *found;    /* doc["findings"] */
    int errors, warnings, notes;
} report;

typedef struct check_args {
    const char *target, *input, *weight;
    int64_t classes;
    int have_classes, cross_entropy, json, help;
    int64_t ignore_index;
} check_args;

typedef struct check_state {
    const check_args *args;
    fmt_array target, input, weight;
    int have_input, have_weight;
    int64_t classes;          /* C, or -1 when unknown */
    const char *classes_from;
    report r;
} check_state;

static void add_finding(report *r, severity sev, const char *code, const char *message,
                        const char *fix)
{
    static const char *const names[] = {"error", "warning", "note"};
    cJSON *item = cJSON_CreateObject();
    cJSON_AddStringToObject(item, "severity", names[sev]);
    cJSON_AddStringToObject(item, "code", code);
    cJSON_AddStringToObject(item, "message", message);
    if (fix != NULL)
        cJSON_AddStringToObject(item, "fix", fix);
    cJSON_AddItemToArray(r->found, item);
    sb_printf(&r->findings[sev], "%s [%s]: %s\n", names[sev], code, message);
    if (fix != NULL)
        sb_printf(&r->findings[sev], "  fix: %s\n", fix);
    if (sev == SEV_ERROR)
        r->errors++;
    else if (sev == SEV_WARNING)
        r->warnings++;
    else
        r->notes++;
}

static int is_float(DLDataType d)
{
    return d.code == kDLFloat || d.code == kDLBfloat;
}

static cJSON *shape_json(const fmt_array *a)
{
    cJSON *shape = cJSON_CreateArray();
    int i;
    for (i = 0; i < a->ndim; i++)
        cJSON_AddItemToArray(shape, cJSON_CreateNumber((double)a->shape[i]));
    return shape;
}

/* "t.npy: int64, shape (6), 6 values" as a fact line and a JSON object under key. */
static cJSON *describe(check_state *s, int section, const char *key, const char *spec,
                       const fmt_array *a)
{
    static const char *const kinds[] = {"", "npy", "npz", "safetensors"};
    char shape[512];
    cJSON *o = cJSON_AddObjectToObject(s->r.doc, key);
    fmt_shape_string(a->shape, a->ndim, shape, sizeof shape);
    cJSON_AddStringToObject(o, "file", spec);
    cJSON_AddStringToObject(o, "format", kinds[a->kind]);
    cJSON_AddStringToObject(o, "dtype", fmt_dtype_name(a->dtype));
    cJSON_AddItemToObject(o, "shape", shape_json(a));
    cJSON_AddNumberToObject(o, "count", (double)a->count);
    sb_printf(&s->r.facts[section], "%-11s%s: %s, shape %s, %lld values%s\n", key, spec,
              fmt_dtype_name(a->dtype), shape, (long long)a->count,
              a->row_major ? "" : " (Fortran order)");
    return o;
}

/* ---- rows along the class axis ---- */

/* Element (o, c, i) of an input of class axis dim 1 is at flat (o * classes + c) * inner + i;
 * a 1-D input is one row. A row is one sample. */
typedef struct class_rows {
    int64_t outer, classes, inner;
} class_rows;

static class_rows rows_of(const fmt_array *a)
{
    class_rows r;
    int d;
    r.outer = 1;
    r.inner = 1;
    r.classes = a->ndim >= 1 ? a->shape[a->ndim == 1 ? 0 : 1] : 1;
    if (a->ndim >= 2) {
        r.outer = a->shape[0];
        for (d = 2; d < a->ndim; d++)
            r.inner *= a->shape[d];
    }
    return r;
}

static int64_t row_count(class_rows r)
{
    return r.outer * r.inner;
}

static int64_t row_element(class_rows r, int64_t row, int64_t c)
{
    return ((row / r.inner) * r.classes + c) * r.inner + row % r.inner;
}

/* "row 5 (input[5, :])" or "sample 7" for a message. */
static void sb_row(strbuf *b, const char *name, const fmt_array *a, class_rows r, int64_t row)
{
    if (a->ndim == 1)
        sb_printf(b, "the row %s[:]", name);
    else if (a->ndim == 2)
        sb_printf(b, "row %lld (%s[%lld, :])", (long long)row, name, (long long)row);
    else
        sb_printf(b, "sample %lld (%s[%lld, :, ...])", (long long)row, name,
                  (long long)(row / r.inner));
}

typedef struct row_stat {
    double sum, lse;
    int nonfinite; /* NaN or +inf somewhere */
    int in_unit;   /* every value in [0, 1] */
    int negative;  /* some value below 0 */
} row_stat;

static row_stat row_stats(const fmt_array *a, class_rows r, int64_t row)
{
    row_stat st;
    double max = -INFINITY, acc = 0.0;
    int64_t c;
    memset(&st, 0, sizeof st);
    st.in_unit = 1;
    for (c = 0; c < r.classes; c++) {
        double v = fmt_get_double(a, row_element(r, row, c));
        if (isnan(v) || v == INFINITY)
            st.nonfinite = 1;
        else if (v > max)
            max = v;
        st.sum += v;
        if (!(v >= 0.0 && v <= 1.0))
            st.in_unit = 0;
        if (v < 0.0)
            st.negative = 1;
    }
    if (max == -INFINITY) {
        st.lse = -INFINITY;
        return st;
    }
    for (c = 0; c < r.classes; c++) {
        double v = fmt_get_double(a, row_element(r, row, c));
        if (!isnan(v))
            acc += exp(v - max);
    }
    st.lse = max + log(acc);
    return st;
}

/* How far a 16-bit or wider row may be from exact and still count. */
static double row_tolerance(DLDataType d)
{
    return d.bits == 16 ? 3e-2 : 2e-3;
}

/* Whether every row along dim 1 of a float array is a probability distribution. */
static int rows_are_distributions(const fmt_array *a)
{
    class_rows r = rows_of(a);
    int64_t row, n = row_count(r);
    double tol = row_tolerance(a->dtype);
    if (a->ndim < 2 || a->count == 0)
        return 0;
    for (row = 0; row < n; row++) {
        row_stat st = row_stats(a, r, row);
        if (st.nonfinite || !st.in_unit || fabs(st.sum - 1.0) > tol)
            return 0;
    }
    return 1;
}

classify_result classify_input_rows(const fmt_array *a)
{
    classify_result out;
    class_rows r = rows_of(a);
    int64_t row, n = row_count(r);
    double tol = row_tolerance(a->dtype);

    memset(&out, 0, sizeof out);
    out.lse_min = INFINITY;
    out.lse_max = -INFINITY;
    out.first_not_log = -1;
    if (a->ndim < 1 || r.classes < 1)
        return out;
    for (row = 0; row < n; row++) {
        row_stat st = row_stats(a, r, row);
        if (st.nonfinite || st.lse == -INFINITY)
            continue; /* reported as non-finite, or fully masked */
        out.rows++;
        if (st.lse < out.lse_min)
            out.lse_min = st.lse;
        if (st.lse > out.lse_max)
            out.lse_max = st.lse;
        if (fabs(st.lse) <= tol) {
            out.log_probability_rows++;
        } else {
            if (out.first_not_log < 0) {
                out.first_not_log = row;
                out.first_not_log_lse = st.lse;
            }
            if (st.in_unit && fabs(st.sum - 1.0) <= tol)
                out.probability_rows++;
        }
    }
    return out;
}

/* ---- classes ---- */

static void decide_classes(check_state *s)
{
    const check_args *a = s->args;
    int64_t from_input = -1, from_weight = -1;
    cJSON *o = cJSON_AddObjectToObject(s->r.doc, "classes");

    if (s->have_input && s->input.ndim >= 1)
        from_input = s->input.shape[s->input.ndim == 1 ? 0 : 1];
    if (s->have_weight && s->weight.ndim == 1)
        from_weight = s->weight.shape[0];
    s->classes = -1;
    if (a->have_classes) {
        s->classes = a->classes;
        s->classes_from = "--classes";
    } else if (from_input >= 0) {
        s->classes = from_input;
        s->classes_from = s->input.ndim == 1 ? "the input's class axis, dim 0"
                                             : "the input's class axis, dim 1";
    } else if (from_weight >= 0) {
        s->classes = from_weight;
        s->classes_from = "the weight's length";
    }
    if (a->have_classes && from_input >= 0 && from_input != a->classes) {
        char msg[256];
        snprintf(msg, sizeof msg,
                 "--classes %lld, but the input has %lld classes along its class axis (dim %d)",
                 (long long)a->classes, (long long)from_input, s->input.ndim == 1 ? 0 : 1);
        add_finding(&s->r, SEV_ERROR, "classes-mismatch", msg,
                    "the model's output size is the class count: fix --classes or the model");
    }
    if (s->classes >= 0) {
        cJSON_AddNumberToObject(o, "count", (double)s->classes);
        cJSON_AddStringToObject(o, "from", s->classes_from);
        sb_printf(&s->r.facts[SEC_CLASSES], "%-11sC = %lld (from %s)\n", "classes",
                  (long long)s->classes,
                  s->classes_from);
    } else {
        cJSON_AddNullToObject(o, "count");
        sb_printf(&s->r.facts[SEC_CLASSES], "%-11sunknown: give --classes C or --input to "
                  "check the upper bound\n", "classes");
    }
}

/* ---- class-index targets ---- */

enum { CAT_MINUS_ONE, CAT_VOID, CAT_EQUALS_C, CAT_OTHER, N_CATS };

typedef struct category {
    int64_t count;
    int64_t at[MAX_LISTED];
    int64_t value[MAX_LISTED];
    int exact[MAX_LISTED];
} category;

static void note_value(category *c, int64_t i, int64_t v, int exact)
{
    if (c->count < MAX_LISTED) {
        c->at[c->count] = i;
        c->value[c->count] = v;
        c->exact[c->count] = exact;
    }
    c->count++;
}

static void sb_listed(strbuf *b, const category *c, const fmt_array *t, int with_values)
{
    int64_t k, n = c->count < MAX_LISTED ? c->count : MAX_LISTED;
    sb_printf(b, "first: ");
    for (k = 0; k < n; k++) {
        if (k)
            sb_printf(b, ", ");
        sb_position(b, "target", c->at[k], t->shape, t->ndim);
        if (with_values) {
            char value[64];
            sb_printf(b, " = %s", fmt_value_string(t, c->at[k], value, sizeof value));
        }
    }
    if (c->count > n)
        sb_printf(b, ", ...");
}

/* Value i of a class-index target as an integer; 0 when it is not a whole number (those are
 * reported apart). */
static int target_value(const fmt_array *t, int64_t i, int64_t *v, int *exact)
{
    if (is_float(t->dtype)) {
        double d = fmt_get_double(t, i);
        if (!isfinite(d) || floor(d) != d)
            return 0;
        *exact = d >= -9.2e18 && d <= 9.2e18;
        *v = *exact ? (int64_t)d : d < 0 ? INT64_MIN : INT64_MAX;
        return 1;
    }
    *v = fmt_get_int(t, i, exact);
    return 1;
}

static void check_indices(check_state *s)
{
    const fmt_array *t = &s->target;
    const int64_t ignore = s->args->ignore_index, C = s->classes;
    category cats[N_CATS];
    int64_t i, ignored = 0, valid = 0, min_all = INT64_MAX, max_all = INT64_MIN, max_at = -1;
    int64_t min_regular = INT64_MAX, max_regular = INT64_MIN, hist_size = 0, seen = 0;
    int64_t *hist = NULL;
    int one_based;
    cJSON *o = cJSON_AddObjectToObject(s->r.doc, "targets");
    strbuf msg = {0}, fix = {0};

    memset(cats, 0, sizeof cats);
    /* Pass 1: the range of the values that count, and of those that are not -1 or a void
     * 255 (labels that are 1-based apart from padding are still 1-based). */
    for (i = 0; i < t->count; i++) {
        int64_t v;
        int exact;
        if (!target_value(t, i, &v, &exact) || (exact && v == ignore))
            continue;
        valid++;
        if (v < min_all)
            min_all = v;
        if (v > max_all || max_at < 0) {
            max_all = v;
            max_at = i;
        }
        if (exact && v != -1 && !(v == 255 && C >= 0 && C <= 255)) {
            if (v < min_regular)
                min_regular = v;
            if (v > max_regular)
                max_regular = v;
        }
    }
    for (i = 0; i < t->count; i++) {
        int64_t v;
        int exact;
        if (target_value(t, i, &v, &exact) && exact && v == ignore)
            ignored++;
    }
    /* 1-based: the values are exactly 1..C (apart from padding and void labels). */
    one_based = C > 0 && min_regular == 1 && max_regular == C;
    if (C >= 0)
        hist_size = C;
    else if (valid > 0 && max_all >= 0 && max_all < MAX_HISTOGRAM_CLASSES)
        hist_size = max_all + 1;
    if (hist_size > MAX_HISTOGRAM_CLASSES)
        hist_size = 0;
    if (hist_size > 0)
        hist = calloc((size_t)hist_size, sizeof *hist);

    /* Pass 2: sort each value into the histogram or a category of out-of-range values. */
    for (i = 0; i < t->count; i++) {
        int64_t v;
        int exact;
        if (!target_value(t, i, &v, &exact) || (exact && v == ignore))
            continue;
        if (exact && v == -1)
            note_value(&cats[CAT_MINUS_ONE], i, v, exact);
        else if (exact && v == 255 && C >= 0 && C <= 255)
            note_value(&cats[CAT_VOID], i, v, exact);
        else if (!exact || v < 0 || (C >= 0 && v >= C))
            note_value(one_based && v == C ? &cats[CAT_EQUALS_C] : &cats[CAT_OTHER], i, v,
                       exact);
        if (hist != NULL && exact && v >= 0 && v < hist_size)
            hist[v]++;
    }

    /* Facts. */
    cJSON_AddNumberToObject(o, "ignore_index", (double)ignore);
    cJSON_AddNumberToObject(o, "ignored", (double)ignored);
    cJSON_AddNumberToObject(o, "counted", (double)valid);
    if (valid > 0) {
        cJSON_AddNumberToObject(o, "min", (double)min_all);
        cJSON_AddNumberToObject(o, "max", fmt_get_double(t, max_at));
    }
    cJSON_AddNumberToObject(o, "out_of_range", (double)(cats[CAT_MINUS_ONE].count +
                                                        cats[CAT_VOID].count +
                                                        cats[CAT_EQUALS_C].count +
                                                        cats[CAT_OTHER].count));
    sb_printf(&s->r.facts[SEC_TARGET], "%-11s%lld of %lld targets equal ignore_index (%lld)",
              "", (long long)ignored, (long long)t->count, (long long)ignore);
    if (valid > 0) {
        /* The largest value as written: a uint64 may exceed int64. */
        char max_text[64];
        sb_printf(&s->r.facts[SEC_TARGET], "; the other %lld range over [%lld, %s]",
                  (long long)valid, (long long)min_all,
                  fmt_value_string(t, max_at, max_text, sizeof max_text));
    }
    sb_printf(&s->r.facts[SEC_TARGET], "\n");

    /* Findings: the named patterns first, then whatever is left out of range. */
    if (cats[CAT_MINUS_ONE].count > 0) {
        sb_printf(&msg, "%lld target%s -1 while ignore_index is %lld: -1 is never a class "
                  "index (", (long long)cats[CAT_MINUS_ONE].count,
                  cats[CAT_MINUS_ONE].count == 1 ? " is" : "s are", (long long)ignore);
        sb_listed(&msg, &cats[CAT_MINUS_ONE], t, 0);
        sb_printf(&msg, ")");
        add_finding(&s->r, SEV_ERROR, "padding-minus-one", sb_str(&msg),
                    "if -1 marks padding, pass --ignore-index -1 (ignore_index=-1 in PyTorch); "
                    "otherwise map -1 to a real class");
        sb_free(&msg);
    }
    if (cats[CAT_VOID].count > 0) {
        sb_printf(&msg, "%lld target%s 255, outside the class range [0, %lld) (",
                  (long long)cats[CAT_VOID].count, cats[CAT_VOID].count == 1 ? " is" : "s are",
                  (long long)C);
        sb_listed(&msg, &cats[CAT_VOID], t, 0);
        sb_printf(&msg, ")");
        add_finding(&s->r, SEV_ERROR, "void-255", sb_str(&msg),
                    "255 often marks void pixels in segmentation masks: pass --ignore-index 255 "
                    "(ignore_index=255) to skip them");
        sb_free(&msg);
    }
    if (one_based) {
        sb_printf(&msg, "%lld target%s %lld = C, outside the class range [0, %lld), and no "
                  "target is 0: the labels look 1-based (min 1, max %lld) (",
                  (long long)cats[CAT_EQUALS_C].count,
                  cats[CAT_EQUALS_C].count == 1 ? " is" : "s are", (long long)C, (long long)C,
                  (long long)C);
        sb_listed(&msg, &cats[CAT_EQUALS_C], t, 0);
        sb_printf(&msg, ")");
        add_finding(&s->r, SEV_ERROR, "labels-1-based", sb_str(&msg),
                    "subtract 1 from every label (t - 1), keeping ignore_index values as they "
                    "are");
        sb_free(&msg);
    }
    if (cats[CAT_OTHER].count > 0) {
        int negative = min_regular < 0;
        if (C >= 0)
            sb_printf(&msg, "%lld target%s outside the class range [0, %lld) and %s not "
                      "ignore_index (%lld) (", (long long)cats[CAT_OTHER].count,
                      cats[CAT_OTHER].count == 1 ? " is" : "s are", (long long)C,
                      cats[CAT_OTHER].count == 1 ? "is" : "are", (long long)ignore);
        else
            sb_printf(&msg, "%lld target%s negative and not ignore_index (%lld) (",
                      (long long)cats[CAT_OTHER].count,
                      cats[CAT_OTHER].count == 1 ? " is" : "s are", (long long)ignore);
        sb_listed(&msg, &cats[CAT_OTHER], t, 1);
        sb_printf(&msg, ")");
        if (negative)
            sb_printf(&fix, "negative values are never class indices: if one marks samples to "
                      "skip, pass it as --ignore-index; ");
        if (C >= 0 && max_regular >= C)
            sb_printf(&fix, "labels up to %lld need at least %lld classes: check that C = %lld "
                      "(the model's output size) is right, or remap the labels to 0..%lld",
                      (long long)max_regular, (long long)max_regular + 1, (long long)C,
                      (long long)C - 1);
        else
            sb_printf(&fix, "remap the labels to 0..C-1");
        add_finding(&s->r, SEV_ERROR, "target-range", sb_str(&msg), sb_str(&fix));
        sb_free(&msg);
        sb_free(&fix);
    }
    if (t->count > 0 && valid == 0) {
        sb_printf(&msg, "all %lld targets equal ignore_index (%lld): the mean loss is NaN (0/0) "
                  "and nothing is learned", (long long)t->count, (long long)ignore);
        add_finding(&s->r, SEV_ERROR, "all-ignored", sb_str(&msg),
                    "check --ignore-index and that the labels were read from the right place");
        sb_free(&msg);
    }
    if (C < 0 && valid > 0 && min_regular == 1 && max_regular > 1) {
        sb_printf(&msg, "no target is 0 (min 1, max %lld): the labels may be 1-based",
                  (long long)max_regular);
        add_finding(&s->r, SEV_WARNING, "labels-start-at-1", sb_str(&msg),
                    "if the classes are numbered 1..K, subtract 1; give --classes C or --input "
                    "to check the range");
        sb_free(&msg);
    }
    if (C < 0 && hist != NULL && max_all == 255 && hist[255] > 0) {
        sb_printf(&msg, "%lld target%s 255, which often marks void pixels in segmentation masks",
                  (long long)hist[255], hist[255] == 1 ? " is" : "s are");
        add_finding(&s->r, SEV_WARNING, "void-255", sb_str(&msg),
                    "if 255 is not a class, pass --ignore-index 255 (ignore_index=255)");
        sb_free(&msg);
    }

    /* Histogram. */
    if (hist != NULL) {
        cJSON *h = cJSON_AddObjectToObject(s->r.doc, "histogram");
        cJSON *counts = cJSON_CreateArray(), *never = cJSON_CreateArray();
        int64_t largest = -1, smallest = -1, unseen = 0;
        for (i = 0; i < hist_size; i++) {
            if (hist_size <= 100000)
                cJSON_AddItemToArray(counts, cJSON_CreateNumber((double)hist[i]));
            if (hist[i] == 0) {
                unseen++;
                if (unseen <= 1000)
                    cJSON_AddItemToArray(never, cJSON_CreateNumber((double)i));
                continue;
            }
            seen++;
            if (largest < 0 || hist[i] > hist[largest])
                largest = i;
            if (smallest < 0 || hist[i] < hist[smallest])
                smallest = i;
        }
        cJSON_AddNumberToObject(h, "classes", (double)hist_size);
        cJSON_AddItemToObject(h, "counts", counts);
        cJSON_AddNumberToObject(h, "seen", (double)seen);
        cJSON_AddItemToObject(h, "never_seen", never);
        sb_printf(&s->r.facts[SEC_HISTOGRAM], "%-11s%lld of %lld classes seen", "histogram",
                  (long long)seen, (long long)hist_size);
        if (largest >= 0) {
            double ratio = (double)hist[largest] / (double)hist[smallest];
            cJSON_AddNumberToObject(h, "largest_to_smallest", ratio);
            if (hist[largest] == hist[smallest])
                sb_printf(&s->r.facts[SEC_HISTOGRAM], "; each seen class has %lld",
                          (long long)hist[largest]);
            else
                sb_printf(&s->r.facts[SEC_HISTOGRAM],
                          "; largest/smallest %.3g (class %lld: %lld, class %lld: %lld)", ratio,
                          (long long)largest, (long long)hist[largest], (long long)smallest,
                          (long long)hist[smallest]);
            if (ratio >= 10.0) {
                sb_printf(&msg, "class %lld has %.3g times as many targets as class %lld (%lld "
                          "vs %lld)", (long long)largest, ratio, (long long)smallest,
                          (long long)hist[largest], (long long)hist[smallest]);
                add_finding(&s->r, SEV_WARNING, "class-imbalance", sb_str(&msg),
                            "consider class weights, w[c] = N / (C * count[c]), through "
                            "--weight (weight= in PyTorch)");
                sb_free(&msg);
            }
        }
        sb_printf(&s->r.facts[SEC_HISTOGRAM], "\n");
        if (hist_size <= MAX_PRINTED_CLASSES) {
            sb_printf(&s->r.facts[SEC_HISTOGRAM], "%-11s", "");
            for (i = 0; i < hist_size; i++)
                sb_printf(&s->r.facts[SEC_HISTOGRAM], "%s%lld: %lld", i ? "  " : "",
                          (long long)i, (long long)hist[i]);
            sb_printf(&s->r.facts[SEC_HISTOGRAM], "\n");
        }
        if (unseen > 0 && seen > 0) {
            int64_t listed = 0;
            if (C >= 0)
                sb_printf(&msg, "%lld of %lld classes never appear: ", (long long)unseen,
                          (long long)C);
            else
                sb_printf(&msg, "the labels use %lld distinct values in [0, %lld] and skip %lld: ",
                          (long long)seen, (long long)(hist_size - 1), (long long)unseen);
            for (i = 0; i < hist_size && listed < 12; i++)
                if (hist[i] == 0)
                    sb_printf(&msg, "%s%lld", listed++ ? ", " : "", (long long)i);
            if (unseen > listed)
                sb_printf(&msg, ", ...");
            if (C >= 0)
                add_finding(&s->r, SEV_WARNING, "classes-never-seen", sb_str(&msg),
                            "fine for one batch; for a whole label file, check that C is the "
                            "model's output size and that no class was lost");
            else
                add_finding(&s->r, SEV_WARNING, "class-gaps", sb_str(&msg),
                            "if the labels are codes from a sparse set, remap them to 0..K-1 "
                            "(np.unique(t, return_inverse=True)[1]); if some classes are just "
                            "absent, give --classes C");
            sb_free(&msg);
        }
        if (seen == 1 && valid > 1) {
            sb_printf(&msg, "every counted target is class %lld (%lld targets)",
                      (long long)largest, (long long)valid);
            add_finding(&s->r, SEV_WARNING, "one-class", sb_str(&msg),
                        "a classifier learns nothing from a single class: check that the "
                        "labels come from the right column or file");
            sb_free(&msg);
        }
    }
    free(hist);
}

/* ---- float targets ---- */

/* Reports a float target meant as class indices; returns 1 when its rows look like class
 * probabilities instead, so that counting it as class indices would only mislead. */
static int check_float_indices(check_state *s)
{
    const fmt_array *t = &s->target;
    int64_t i, nan = 0, inf = 0, fractional = 0, first_bad = -1;
    double min = INFINITY, max = -INFINITY;
    strbuf msg = {0}, fix = {0};
    int distributions = rows_are_distributions(t);
    cJSON *o = cJSON_GetObjectItemCaseSensitive(s->r.doc, "target");

    for (i = 0; i < t->count; i++) {
        double v = fmt_get_double(t, i);
        if (isnan(v))
            nan++;
        else if (isinf(v))
            inf++;
        else if (floor(v) != v)
            fractional++;
        else {
            if (v < min)
                min = v;
            if (v > max)
                max = v;
            continue;
        }
        if (first_bad < 0)
            first_bad = i;
    }
    cJSON_AddBoolToObject(o, "all_whole", nan + inf + fractional == 0);
    cJSON_AddNumberToObject(o, "nan", (double)nan);
    cJSON_AddNumberToObject(o, "inf", (double)inf);
    cJSON_AddNumberToObject(o, "not_whole", (double)fractional);
    cJSON_AddBoolToObject(o, "rows_sum_to_one", distributions);
    sb_printf(&s->r.facts[SEC_TARGET], "%-11s%s; %lld NaN, %lld inf, %lld not whole%s\n", "",
              nan + inf + fractional == 0 ? "every value is a whole number"
                                          : "not every value is a whole number",
              (long long)nan, (long long)inf, (long long)fractional,
              distributions ? "; every row along dim 1 sums to 1" : "");

    sb_printf(&msg, "target has dtype %s, but class indices must be integers; ",
              fmt_dtype_name(t->dtype));
    if (nan + inf + fractional == 0) {
        if (t->count > 0)
            sb_printf(&msg, "all %lld values are whole numbers (min %.17g, max %.17g)",
                      (long long)t->count, min, max);
        else
            sb_printf(&msg, "it is empty");
    } else {
        sb_printf(&msg, "%lld value%s not whole (%lld NaN, %lld inf; ",
                  (long long)(nan + inf + fractional), nan + inf + fractional == 1 ? " is" : "s are",
                  (long long)nan, (long long)inf);
        sb_position(&msg, "first: target", first_bad, t->shape, t->ndim);
        sb_printf(&msg, " = %.9g)", fmt_get_double(t, first_bad));
    }
    if (distributions) {
        sb_printf(&fix, "these look like class probabilities (every row along dim 1 sums to "
                  "1): pass them to cross-entropy with logits of the same shape");
        if (s->have_input) {
            char shape[256];
            sb_printf(&fix, " (the input is %s)",
                      fmt_shape_string(s->input.shape, s->input.ndim, shape, sizeof shape));
        }
        sb_printf(&fix, ", or take t.argmax(1) for class indices");
    } else if (nan + inf + fractional == 0) {
        sb_printf(&fix, "convert the target to int64 (t.long() in PyTorch, t.astype(np.int64) "
                  "in NumPy), or pass --allow-float-targets to nll loss "
                  "(NLL_ALLOW_FLOAT_TARGETS)");
    } else {
        sb_printf(&fix, "these are not class indices; if they are class probabilities, the "
                  "target must have the input's exact shape");
        if (s->have_input) {
            char shape[256];
            sb_printf(&fix, " %s", fmt_shape_string(s->input.shape, s->input.ndim, shape,
                                                    sizeof shape));
        }
    }
    add_finding(&s->r, SEV_ERROR, nan + inf + fractional == 0 ? "float-target"
                                                              : "float-target-not-whole",
                sb_str(&msg), sb_str(&fix));
    sb_free(&msg);
    sb_free(&fix);
    return distributions;
}

static void check_probabilities(check_state *s)
{
    const fmt_array *t = &s->target;
    class_rows r = rows_of(t);
    int64_t row, n = row_count(r), bad_sum = 0, negative = 0, nonfinite = 0, first_sum = -1;
    int64_t first_negative = -1, first_nonfinite = -1;
    double first_sum_value = 0.0, tol = row_tolerance(t->dtype);
    strbuf msg = {0};
    cJSON *o = cJSON_GetObjectItemCaseSensitive(s->r.doc, "target");

    for (row = 0; row < n; row++) {
        row_stat st = row_stats(t, r, row);
        if (st.nonfinite) {
            if (nonfinite++ == 0)
                first_nonfinite = row;
            continue;
        }
        if (st.negative && negative++ == 0)
            first_negative = row;
        if (fabs(st.sum - 1.0) > tol && bad_sum++ == 0) {
            first_sum = row;
            first_sum_value = st.sum;
        }
    }
    cJSON_AddStringToObject(o, "kind", "probabilities");
    cJSON_AddNumberToObject(o, "rows", (double)n);
    cJSON_AddNumberToObject(o, "rows_not_summing_to_one", (double)bad_sum);
    cJSON_AddNumberToObject(o, "rows_with_negatives", (double)negative);
    cJSON_AddNumberToObject(o, "rows_with_nan_or_inf", (double)nonfinite);
    sb_printf(&s->r.facts[SEC_TARGET], "%-11sprobabilities (a float target of the input's "
              "shape): %lld rows, %lld not summing to 1, %lld with negatives\n", "",
              (long long)n, (long long)bad_sum, (long long)negative);

    if (!s->args->cross_entropy)
        add_finding(&s->r, SEV_ERROR, "nll-probability-target",
                    "a float target of the input's shape holds class probabilities, which only "
                    "cross-entropy accepts; nll_loss takes class indices",
                    "use --op cross-entropy (F.cross_entropy) on logits, or take t.argmax(1) for "
                    "class indices");
    if (s->args->ignore_index >= 0) {
        sb_printf(&msg, "ignore_index = %lld cannot be used with probability targets",
                  (long long)s->args->ignore_index);
        add_finding(&s->r, SEV_ERROR, "ignore-index-with-probabilities", sb_str(&msg),
                    "leave ignore_index at its default (-100): probability targets ignore "
                    "nothing; give a row of zeros to drop a sample");
        sb_free(&msg);
    }
    if (nonfinite > 0) {
        sb_printf(&msg, "%lld target row%s NaN or inf (first: ", (long long)nonfinite,
                  nonfinite == 1 ? " holds" : "s hold");
        sb_row(&msg, "target", t, r, first_nonfinite);
        sb_printf(&msg, ")");
        add_finding(&s->r, SEV_ERROR, "target-nonfinite", sb_str(&msg),
                    "find where the target was computed; probabilities are finite");
        sb_free(&msg);
    }
    if (negative > 0) {
        sb_printf(&msg, "%lld target row%s negative values (first: ", (long long)negative,
                  negative == 1 ? " holds" : "s hold");
        sb_row(&msg, "target", t, r, first_negative);
        sb_printf(&msg, ")");
        add_finding(&s->r, SEV_ERROR, "target-negative", sb_str(&msg),
                    "probabilities are never negative: if these are logits or log-probabilities, "
                    "apply softmax (or exp) to get the target distribution");
        sb_free(&msg);
    }
    if (bad_sum > 0) {
        sb_printf(&msg, "%lld of %lld target rows do not sum to 1 (first: ", (long long)bad_sum,
                  (long long)n);
        sb_row(&msg, "target", t, r, first_sum);
        sb_printf(&msg, " sums to %.9g)", first_sum_value);
        add_finding(&s->r, SEV_ERROR, "target-rows-not-normalised", sb_str(&msg),
                    "normalise each row: t / t.sum(1, keepdims=True) (label smoothing is "
                    "applied by the loss, not to the target)");
        sb_free(&msg);
    }
}

/* ---- the input ---- */

static void check_shapes(check_state *s)
{
    const fmt_array *t = &s->target, *x = &s->input;
    int64_t expected[FMT_MAX_NDIM];
    int ndim = 0, d, class_dim = x->ndim == 1 ? 0 : 1, same = 1;
    char want[512], got[512], in[512];
    strbuf msg = {0}, fix = {0};

    for (d = 0; d < x->ndim; d++)
        if (d != class_dim)
            expected[ndim++] = x->shape[d];
    if (t->ndim != ndim)
        same = 0;
    for (d = 0; same && d < ndim; d++)
        same = t->shape[d] == expected[d];
    if (same)
        return;
    fmt_shape_string(expected, ndim, want, sizeof want);
    fmt_shape_string(t->shape, t->ndim, got, sizeof got);
    fmt_shape_string(x->shape, x->ndim, in, sizeof in);
    sb_printf(&msg, "target shape %s does not match input shape %s: expected %s (the input "
              "without its class axis, dim %d)", got, in, want, class_dim);
    if (t->ndim == ndim + 1 && t->shape[ndim] == 1) {
        for (d = 0, same = 1; d < ndim; d++)
            same &= t->shape[d] == expected[d];
        if (same)
            sb_printf(&fix, "drop the trailing axis of size 1: t.squeeze(-1) (or "
                      "t.reshape%s)", want);
    }
    if (fix.len == 0 && t->ndim == x->ndim && t->count == x->count && x->ndim >= 2)
        sb_printf(&fix, "a target of the input's shape looks one-hot: take t.argmax(1) for "
                  "class indices (or, for cross-entropy, give float probabilities)");
    if (fix.len == 0 && x->ndim == 1)
        sb_printf(&fix, "a 1-D input is one sample of C classes: give a 0-d target, or make the "
                  "input (1, C)");
    if (fix.len == 0) {
        int64_t n = 1;
        for (d = 0; d < ndim; d++)
            n *= expected[d];
        if (n == t->count)
            sb_printf(&fix, "the element counts agree: reshape the target to %s", want);
        else
            sb_printf(&fix, "check that the target and the input come from the same batch");
    }
    add_finding(&s->r, SEV_ERROR, "shape-mismatch", sb_str(&msg), sb_str(&fix));
    sb_free(&msg);
    sb_free(&fix);
}

static void check_input_values(check_state *s)
{
    const fmt_array *x = &s->input;
    int64_t i, nan = 0, pinf = 0, ninf = 0, first = -1;
    strbuf msg = {0};
    cJSON *o = cJSON_GetObjectItemCaseSensitive(s->r.doc, "input");
    classify_result c;
    const char *rows_kind;

    for (i = 0; i < x->count; i++) {
        double v = fmt_get_double(x, i);
        if (isnan(v))
            nan++;
        else if (v == INFINITY)
            pinf++;
        else if (v == -INFINITY)
            ninf++;
        else
            continue;
        if (first < 0 && v != -INFINITY)
            first = i;
    }
    cJSON_AddNumberToObject(o, "nan", (double)nan);
    cJSON_AddNumberToObject(o, "pos_inf", (double)pinf);
    cJSON_AddNumberToObject(o, "neg_inf", (double)ninf);
    if (nan + pinf > 0) {
        sb_printf(&msg, "%lld NaN and %lld +inf in the input (", (long long)nan, (long long)pinf);
        sb_position(&msg, "first: input", first, x->shape, x->ndim);
        sb_printf(&msg, " = %s)", isnan(fmt_get_double(x, first)) ? "nan" : "inf");
        add_finding(&s->r, SEV_ERROR, "input-nonfinite", sb_str(&msg),
                    "find where the first non-finite value appears upstream; in 16-bit "
                    "training it is often an overflow (use a loss scaler or float32)");
        sb_free(&msg);
    }

    c = classify_input_rows(x);
    if (c.rows == 0) {
        rows_kind = "none to classify";
    } else if (c.log_probability_rows == c.rows) {
        rows_kind = "log-probabilities";
    } else if (c.probability_rows == c.rows) {
        rows_kind = "probabilities";
    } else {
        rows_kind = "logits";
    }
    cJSON_AddStringToObject(o, "rows", rows_kind);
    cJSON_AddNumberToObject(o, "rows_examined", (double)c.rows);
    cJSON_AddNumberToObject(o, "log_probability_rows", (double)c.log_probability_rows);
    if (c.rows > 0) {
        cJSON_AddNumberToObject(o, "logsumexp_min", c.lse_min);
        cJSON_AddNumberToObject(o, "logsumexp_max", c.lse_max);
    }
    sb_printf(&s->r.facts[SEC_INPUT], "%-11s%lld NaN, %lld +inf, %lld -inf; rows: %s", "",
              (long long)nan, (long long)pinf, (long long)ninf, rows_kind);
    if (c.rows > 0)
        sb_printf(&s->r.facts[SEC_INPUT], " (log-sum-exp in [%.4g, %.4g])", c.lse_min,
                  c.lse_max);
    sb_printf(&s->r.facts[SEC_INPUT], "\n");
    if (c.rows == 0)
        return;

    if (!s->args->cross_entropy) {
        if (c.log_probability_rows == c.rows)
            return;
        if (c.probability_rows == c.rows) {
            add_finding(&s->r, SEV_ERROR, "nll-probabilities",
                        "the input rows are probabilities (values in [0, 1] summing to 1), but "
                        "nll_loss takes log-probabilities",
                        "take the log first (np.log(p), torch.log(p)); better, pass the logits "
                        "to cross-entropy (--op cross-entropy), which is more accurate");
            return;
        }
        sb_printf(&msg, "%lld of %lld input rows are not log-probabilities: log-sum-exp over "
                  "the classes should be 0, and it ranges over [%.4g, %.4g] (first: ",
                  (long long)(c.rows - c.log_probability_rows), (long long)c.rows, c.lse_min,
                  c.lse_max);
        sb_row(&msg, "input", x, rows_of(x), c.first_not_log);
        sb_printf(&msg, ", %.4g)", c.first_not_log_lse);
        add_finding(&s->r, SEV_ERROR, "nll-not-log-probabilities", sb_str(&msg),
                    "these look like raw logits: use cross-entropy (--op cross-entropy, "
                    "F.cross_entropy), which applies log_softmax itself, or apply log_softmax "
                    "first");
        sb_free(&msg);
        return;
    }
    if (c.probability_rows == c.rows && rows_of(x).classes > 1)
        add_finding(&s->r, SEV_WARNING, "softmax-applied",
                    "every input row is a probability distribution (values in [0, 1] summing to "
                    "1), but cross-entropy expects logits and applies log_softmax itself",
                    "pass the values from before the softmax: applied twice, softmax flattens "
                    "the gradients and training slows or stalls");
    else if (c.log_probability_rows == c.rows)
        add_finding(&s->r, SEV_NOTE, "log-probabilities-to-cross-entropy",
                    "the input rows are already log-probabilities; cross-entropy gives the same "
                    "loss as nll_loss on them (log_softmax leaves them unchanged)",
                    NULL);
}

static void check_input(check_state *s)
{
    const fmt_array *x = &s->input;
    strbuf msg = {0};
    describe(s, SEC_INPUT, "input", s->args->input, x);
    if (!is_float(x->dtype)) {
        sb_printf(&msg, "input has dtype %s; it must be float64, float32, float16 or bfloat16",
                  fmt_dtype_name(x->dtype));
        add_finding(&s->r, SEV_ERROR, "input-dtype", sb_str(&msg),
                    "convert the input to float32 (x.float(), x.astype(np.float32))");
        sb_free(&msg);
        return;
    }
    if (x->ndim == 0) {
        add_finding(&s->r, SEV_ERROR, "input-rank",
                    "the input is 0-d; it must be (C), (N, C) or (N, C, d1, ..., dk)",
                    "give the scores of every class, not one number");
        return;
    }
    check_input_values(s);
}

static void check_weight(check_state *s)
{
    const fmt_array *w = &s->weight;
    int64_t i, nonfinite = 0, negative = 0;
    double total = 0.0;
    strbuf msg = {0};
    describe(s, SEC_WEIGHT, "weight", s->args->weight, w);
    if (!is_float(w->dtype)) {
        sb_printf(&msg, "weight has dtype %s; it must be a float type, the input's",
                  fmt_dtype_name(w->dtype));
        add_finding(&s->r, SEV_ERROR, "weight-dtype", sb_str(&msg),
                    "convert the weight to the input's dtype");
        sb_free(&msg);
        return;
    }
    if (s->have_input && is_float(s->input.dtype) &&
        (w->dtype.code != s->input.dtype.code || w->dtype.bits != s->input.dtype.bits)) {
        sb_printf(&msg, "weight has dtype %s but the input has dtype %s",
                  fmt_dtype_name(w->dtype), fmt_dtype_name(s->input.dtype));
        add_finding(&s->r, SEV_ERROR, "weight-dtype", sb_str(&msg),
                    "convert the weight to the input's dtype");
        sb_free(&msg);
    }
    if (w->ndim != 1 || (s->classes >= 0 && w->shape[0] != s->classes)) {
        char shape[256];
        sb_printf(&msg, "weight has shape %s but must be (%lld): one weight per class",
                  fmt_shape_string(w->shape, w->ndim, shape, sizeof shape),
                  (long long)(s->classes >= 0 ? s->classes : 0));
        add_finding(&s->r, SEV_ERROR, "weight-shape", sb_str(&msg),
                    "give exactly one weight per class, in class order");
        sb_free(&msg);
    }
    for (i = 0; i < w->count; i++) {
        double v = fmt_get_double(w, i);
        if (!isfinite(v))
            nonfinite++;
        else if (v < 0)
            negative++;
        else
            total += v;
    }
    if (nonfinite > 0) {
        sb_printf(&msg, "%lld weight%s NaN or inf", (long long)nonfinite,
                  nonfinite == 1 ? " is" : "s are");
        add_finding(&s->r, SEV_ERROR, "weight-nonfinite", sb_str(&msg),
                    "class weights must be finite");
        sb_free(&msg);
    }
    if (negative > 0) {
        sb_printf(&msg, "%lld weight%s negative: those classes are pushed away from",
                  (long long)negative, negative == 1 ? " is" : "s are");
        add_finding(&s->r, SEV_WARNING, "weight-negative", sb_str(&msg),
                    "class weights are usually positive");
        sb_free(&msg);
    }
    if (w->count > 0 && nonfinite == 0 && negative == 0 && total == 0.0)
        add_finding(&s->r, SEV_ERROR, "weight-zero",
                    "every weight is 0: the mean loss is NaN (0/0)",
                    "give the classes positive weights");
}

/* ---- the command ---- */

static int parse_check_args(int argc, char **argv, check_args *a)
{
    static const cli_option options[] = {
        {"--target", 1}, {"--input", 1},  {"--classes", 1}, {"--op", 1},
        {"--ignore-index", 1}, {"--weight", 1}, {"--json", 0}, {"--help", 0}, {"-h", 0}};
    enum { N_OPTIONS = sizeof options / sizeof options[0] };
    const char *cmd = "nll check";
    int i, seen[N_OPTIONS] = {0};

    for (i = 0; i < argc; i++) {
        const char *val;
        switch (cli_next_option(cmd, argc, argv, &i, options, N_OPTIONS, seen, &val)) {
        case -1: return EXIT_USAGE;
        case 0: a->target = val; break;
        case 1: a->input = val; break;
        case 2:
            if (parse_int64(val, &a->classes) || a->classes < 1)
                return usage_error(cmd, "--classes '%s' is not a positive integer", val);
            a->have_classes = 1;
            break;
        case 3:
            if (parse_op(cmd, val, &a->cross_entropy) != EXIT_OK)
                return EXIT_USAGE;
            break;
        case 4:
            if (parse_int64(val, &a->ignore_index))
                return usage_error(cmd, "--ignore-index '%s' is not an int64 integer", val);
            break;
        case 5: a->weight = val; break;
        case 6: a->json = 1; break;
        default: a->help = 1; break;
        }
    }
    if (!a->help && a->target == NULL)
        return usage_error(cmd, "missing --target");
    return 0;
}

static void print_report(check_state *s)
{
    report *r = &s->r;
    int i;
    cJSON *summary = cJSON_AddObjectToObject(r->doc, "summary");
    cJSON_AddNumberToObject(summary, "errors", r->errors);
    cJSON_AddNumberToObject(summary, "warnings", r->warnings);
    cJSON_AddNumberToObject(summary, "notes", r->notes);
    cJSON_AddBoolToObject(summary, "ok", r->errors == 0);
    if (s->args->json) {
        char *text = cJSON_Print(r->doc), *escaped = text ? cli_json_escaped(text) : NULL;
        if (escaped != NULL)
            printf("%s\n", escaped);
        free(escaped);
        cJSON_free(text);
        return;
    }
    /* The report quotes file and tensor names: escaped like every message. */
    for (i = 0; i < N_SECTIONS; i++)
        cli_fputs(stdout, sb_str(&r->facts[i]));
    if (r->errors + r->warnings + r->notes > 0)
        putchar('\n');
    for (i = 0; i < 3; i++)
        cli_fputs(stdout, sb_str(&r->findings[i]));
    putchar('\n');
    if (r->errors == 0 && r->warnings == 0)
        puts("ok: nothing wrong found");
    else
        printf("%s: %d error%s, %d warning%s\n", r->errors ? "problems" : "ok", r->errors,
               r->errors == 1 ? "" : "s", r->warnings, r->warnings == 1 ? "" : "s");
}

int run_check_command(int argc, char **argv)
{
    const char *cmd = "nll check";
    check_args a;
    check_state s;
    char err[FMT_ERROR_SIZE];
    int rc, i;

    memset(&a, 0, sizeof a);
    a.ignore_index = -100;
    rc = parse_check_args(argc, argv, &a);
    if (rc)
        return rc;
    if (a.help) {
        fputs("usage: nll check --target T [--input X] [--classes C] [--op nll|cross-entropy]\n"
              "                 [--ignore-index N] [--weight W] [--json]\n"
              "Reports what is wrong with a target (and input, weight) before training does;\n"
              "see nll --help. Exit status 0: nothing wrong, 1: problems found, 2: usage or\n"
              "file error.\n",
              stdout);
        return EXIT_OK;
    }
    memset(&s, 0, sizeof s);
    s.args = &a;
    if (fmt_load(a.target, &s.target, err, sizeof err) ||
        (a.input && fmt_load(a.input, &s.input, err, sizeof err)) ||
        (a.weight && fmt_load(a.weight, &s.weight, err, sizeof err))) {
        cli_printf(stderr, "%s: %s\n", cmd, err);
        fmt_free(&s.target);
        fmt_free(&s.input);
        fmt_free(&s.weight);
        return EXIT_USAGE;
    }
    s.have_input = a.input != NULL;
    s.have_weight = a.weight != NULL;
    s.r.doc = cJSON_CreateObject();
    cJSON_AddStringToObject(s.r.doc, "op", a.cross_entropy ? "cross-entropy" : "nll");
    s.r.found = cJSON_CreateArray();

    describe(&s, SEC_TARGET, "target", a.target, &s.target);
    decide_classes(&s);
    if (s.have_input)
        check_input(&s);
    if (s.have_weight)
        check_weight(&s);

    if (is_float(s.target.dtype) && s.have_input && s.target.ndim == s.input.ndim &&
        s.target.ndim >= 1 && memcmp(s.target.shape, s.input.shape,
                                     sizeof(int64_t) * (size_t)s.target.ndim) == 0) {
        check_probabilities(&s);
    } else {
        cJSON_AddStringToObject(cJSON_GetObjectItemCaseSensitive(s.r.doc, "target"), "kind",
                                "class indices");
        if (s.target.dtype.code == FMT_DL_BOOL)
            add_finding(&s.r, SEV_ERROR, "target-dtype",
                        "target has dtype bool; class indices must be integers",
                        "convert it to int64 (t.long(), t.astype(np.int64)) if it holds classes "
                        "0 and 1; a mask is not a target");
        int distributions = is_float(s.target.dtype) && check_float_indices(&s);
        if (s.have_input && s.input.ndim >= 1)
            check_shapes(&s);
        if (!distributions)
            check_indices(&s);
    }
    cJSON_AddItemToObject(s.r.doc, "findings", s.r.found);
    print_report(&s);
    rc = s.r.errors ? EXIT_REJECTED : EXIT_OK;

    cJSON_Delete(s.r.doc);
    for (i = 0; i < N_SECTIONS; i++)
        sb_free(&s.r.facts[i]);
    for (i = 0; i < 3; i++)
        sb_free(&s.r.findings[i]);
    fmt_free(&s.target);
    fmt_free(&s.input);
    fmt_free(&s.weight);
    if (fflush(stdout) != 0)
        rc = EXIT_USAGE;
    return rc;
}
