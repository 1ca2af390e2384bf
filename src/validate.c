/* The one validation layer: every check of every entry point, for every backend. Nothing is
 * written to an output until all of this has passed. */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

static nll_status check_options(const nll_call *call, nll_loss_op op, const nll_options *options) {
    if (!options)
        return nll_fail(call, NLL_ERROR_NULL_ARGUMENT, "options",
                        "options is NULL; start from nll_options_default()");
    unsigned known = NLL_CHECK_FINITE | NLL_ALLOW_FLOAT_TARGETS;
    if (options->flags & ~known)
        return nll_fail(call, NLL_ERROR_INVALID_FLAGS, "",
                        "flags 0x%x holds unknown bits 0x%x", options->flags,
                        options->flags & ~known);
    int reduction = (int)options->reduction;
    if (reduction != NLL_REDUCTION_NONE && reduction != NLL_REDUCTION_MEAN &&
        reduction != NLL_REDUCTION_SUM)
        return nll_fail(call, NLL_ERROR_INVALID_REDUCTION, "",
                        "reduction = %d is not NLL_REDUCTION_NONE (0), MEAN (1) or SUM (2)",
                        reduction);
    double eps = options->label_smoothing;
    if (op == NLL_OP_NLL && eps != 0.0)
        return nll_fail(call, NLL_ERROR_LABEL_SMOOTHING, "",
                        "label_smoothing = %g is given, but nll_loss has no label smoothing; "
                        "use cross_entropy on logits, or set it to 0",
                        eps);
    if (!(eps >= 0.0 && eps <= 1.0))
        return nll_fail(call, NLL_ERROR_LABEL_SMOOTHING, "",
                        "label_smoothing = %g is outside [0, 1]%s", eps,
                        eps < 0.0 ? " (PyTorch silently treats a negative value as 0)"
                        : eps != eps ? " (PyTorch silently treats NaN as 0)"
                                     : "");
    return NLL_OK;
}

static nll_status check_same_device(const nll_call *call, const nll_view *tensor,
                                    const nll_view *input) {
    if (!tensor->present)
        return NLL_OK;
    if (tensor->device.device_type != input->device.device_type ||
        tensor->device.device_id != input->device.device_id)
    {
        char here[64], there[64];
        return nll_fail(call, NLL_ERROR_DEVICE_MISMATCH, tensor->name,
                        "%s is on %s but input is on %s; move them to one device", tensor->name,
                        nll_device_name(tensor->device, here, sizeof here),
                        nll_device_name(input->device, there, sizeof there));
    }
    return NLL_OK;
}

static int shapes_equal(const int64_t *a, int a_ndim, const int64_t *b, int b_ndim) {
    if (a_ndim != b_ndim)
        return 0;
    for (int d = 0; d < a_ndim; d++)
        if (a[d] != b[d])
            return 0;
    return 1;
}

static int is_scalar_shape(const nll_view *view) { return view->numel == 1; }

/* An output must have the input's dtype. */
static nll_status check_output_dtype(const nll_call *call, const nll_view *output,
                                     const nll_view *input) {
    if (output->dtype.code != input->dtype.code || output->dtype.bits != input->dtype.bits)
        return nll_fail(call, NLL_ERROR_OUTPUT_DTYPE, output->name,
                        "%s has dtype %s but must have the input's dtype %s", output->name,
                        nll_dtype_name(output->dtype), nll_dtype_name(input->dtype));
    return NLL_OK;
}

static nll_status check_output_shape(const nll_call *call, const nll_view *output,
                                     const int64_t *shape, int ndim, int scalar_allowed,
                                     const char *why) {
    if (shapes_equal(output->shape, output->ndim, shape, ndim) ||
        (scalar_allowed && is_scalar_shape(output)))
        return NLL_OK;
    char got[256], want[256];
    return nll_fail(call, NLL_ERROR_OUTPUT_SHAPE, output->name, "%s has shape %s but %s %s",
                    output->name, nll_format_shape(got, sizeof got, output->shape, output->ndim),
                    why, nll_format_shape(want, sizeof want, shape, ndim));
}

/* Whether distinct indices of a tensor always reach distinct elements, by a sufficient test:
 * taken by increasing |stride|, each dimension's stride must step past everything the smaller
 * ones span. Holds for every row-major or column-major layout, permuted, sliced, padded or
 * reversed. Returns the first dimension that fails, or -1. */
static int self_overlap_dim(const nll_view *view) {
    int order[NLL_MAX_DIMS], count = 0;
    for (int d = 0; d < view->ndim; d++)
        if (view->shape[d] > 1)
            order[count++] = d;
    for (int i = 1; i < count; i++) /* insertion sort by |stride| */
        for (int j = i; j > 0 && llabs((long long)view->strides[order[j]]) <
                                     llabs((long long)view->strides[order[j - 1]]);
             j--) {
            int swap = order[j];
            order[j] = order[j - 1];
            order[j - 1] = swap;
        }
    int64_t span = 0; /* elements covered by the dimensions so far, as offsets 0..span */
    for (int i = 0; i < count; i++) {
        int d = order[i];
        int64_t stride = llabs((long long)view->strides[d]);
        if (stride <= span)
            return d;
        span += stride * (view->shape[d] - 1); /* bounded by the extent checked on entry */
    }
    return -1;
}

/* Outputs may not overlap inputs, each other, or themselves, except where
 * `in_place` names an input that an output may exactly coincide with. */
static nll_status check_overlaps(const nll_call *call, nll_view *const *outputs, int n_outputs,
                                 nll_view *const *inputs, int n_inputs,
                                 const nll_view *in_place_output,
                                 const nll_view *const *in_place_inputs, int n_in_place) {
    for (int o = 0; o < n_outputs; o++) {
        const nll_view *out = outputs[o];
        if (!out->present || out->numel == 0)
            continue;
        int self_dim = self_overlap_dim(out);
        if (self_dim >= 0) {
            char shape_text[256], strides_text[256];
            return nll_fail(call, NLL_ERROR_OVERLAP, out->name,
                            "%s of shape %s with strides %s may reach one element from two "
                            "positions (dim %d); outputs need distinct elements",
                            out->name,
                            nll_format_shape(shape_text, sizeof shape_text, out->shape, out->ndim),
                            nll_format_shape(strides_text, sizeof strides_text, out->strides,
                                             out->ndim),
                            self_dim);
        }
        for (int i = 0; i < n_inputs; i++) {
            const nll_view *in = inputs[i];
            if (!nll_views_overlap(out, in))
                continue;
            int allowed = 0;
            if (out == in_place_output)
                for (int k = 0; k < n_in_place; k++)
                    if (in_place_inputs[k] == in && nll_views_identical(out, in))
                        allowed = 1;
            if (!allowed)
                return nll_fail(call, NLL_ERROR_OVERLAP, out->name,
                                "%s overlaps %s in memory%s", out->name, in->name,
                                out == in_place_output && n_in_place
                                    ? "; in place, it must be exactly the same tensor "
                                      "(data, byte_offset, shape, strides, dtype)"
                                    : "");
        }
        for (int k = o + 1; k < n_outputs; k++)
            if (nll_views_overlap(out, outputs[k]))
                return nll_fail(call, NLL_ERROR_OVERLAP, out->name, "%s overlaps %s in memory",
                                out->name, outputs[k]->name);
    }
    return NLL_OK;
}

static nll_status check_float_input(const nll_call *call, const nll_view *input) {
    if (nll_float_kind_of(input->dtype) == NLL_KIND_NONE)
        return nll_fail(call, NLL_ERROR_INPUT_DTYPE, input->name,
                        "%s has dtype %s; expected float64, float32, float16 or bfloat16",
                        input->name, nll_dtype_name(input->dtype));
    return NLL_OK;
}

/* NLL_CHECK_FINITE: the first NaN or +inf in row-major order, and how many there are. */
static nll_finite_scan scan_finite(const nll_view *view) {
    nll_finite_scan scan = {-1, 0, 0};
    nll_iter it;
    nll_iter_init(&it, view->shape, view->ndim);
    nll_iter_slot(&it, 0, view, -1);
    for (int64_t flat = 0; flat < view->numel; flat++, nll_iter_next(&it)) {
        double v = nll_load_as_double(view->data + it.offset[0] * view->item_size, view->dtype);
        if (v != v || v == INFINITY) {
            if (scan.first < 0)
                scan.first = flat, scan.value = v;
            scan.count++;
        }
    }
    return scan;
}

const char *nll_nonfinite_reason(nll_loss_op op) {
    return op == NLL_OP_NLL ? "-inf is allowed: log-probability of zero"
                            : "-inf is allowed: a masked logit";
}

nll_status nll_report_nonfinite(const nll_call *call, const nll_view *view,
                                const nll_finite_scan *scan, const char *why) {
    if (scan->first < 0)
        return NLL_OK;
    int64_t first = scan->first, count = scan->count;
    double first_value = scan->value;
    char where[256];
    nll_fail(call, NLL_ERROR_NONFINITE, view->name,
             "%s = %s is not finite; %" PRId64 " of %" PRId64
             " %s values are NaN or +inf (%s); in 16-bit training this often means an overflow "
             "upstream",
             nll_format_position(where, sizeof where, view, first, NULL),
             first_value != first_value ? "nan" : "inf", count, view->numel, view->name, why);
    nll_fail_position(call, view, first, first_value, count);
    return NLL_ERROR_NONFINITE;
}

/* A floating target where class indices belong: is every value whole? */
static nll_whole_scan scan_whole(const nll_view *target) {
    nll_whole_scan scan = {-1, 0, 0, INFINITY, -INFINITY};
    nll_iter it;
    nll_iter_init(&it, target->shape, target->ndim);
    nll_iter_slot(&it, 0, target, -1);
    for (int64_t flat = 0; flat < target->numel; flat++, nll_iter_next(&it)) {
        double v = nll_load_as_double(target->data + it.offset[0] * target->item_size,
                                      target->dtype);
        if (!isfinite(v) || v != floor(v)) {
            if (scan.first_bad < 0)
                scan.first_bad = flat, scan.first_value = v;
            scan.bad_count++;
        } else {
            scan.min = v < scan.min ? v : scan.min;
            scan.max = v > scan.max ? v : scan.max;
        }
    }
    return scan;
}

/* The fixes of a floating class-index target, in the CPU's messages and the GPU's alike */
#define NLL_FLOAT_TARGET_FIX                                                                   \
    "convert the target to int64 (.long() in PyTorch, .astype(np.int64) in NumPy), or pass "   \
    "NLL_ALLOW_FLOAT_TARGETS to accept whole-number floats"

static const char *probability_target_fix(nll_loss_op op) {
    return op == NLL_OP_NLL ? "use cross_entropy with a target of the input's exact shape"
                            : "the target must have the input's exact shape";
}

nll_status nll_report_float_target(const nll_call *call, nll_loss_op op, const nll_view *target,
                                   const nll_view *input, unsigned flags,
                                   const nll_whole_scan *found) {
    const nll_whole_scan scan = *found;
    char where[256], shape[256];
    if (flags & NLL_ALLOW_FLOAT_TARGETS) {
        if (scan.first_bad < 0)
            return NLL_OK;
        nll_fail(call, NLL_ERROR_TARGET_NOT_WHOLE, "target",
                 "%s = %g is not %s; NLL_ALLOW_FLOAT_TARGETS accepts a %s target only when every "
                 "value is a finite whole number (%" PRId64 " of %" PRId64 " values are not)",
                 nll_format_position(where, sizeof where, target, scan.first_bad, NULL),
                 scan.first_value, isfinite(scan.first_value) ? "a whole number" : "finite",
                 nll_dtype_name(target->dtype), scan.bad_count, target->numel);
        nll_fail_position(call, target, scan.first_bad, scan.first_value, scan.bad_count);
        return NLL_ERROR_TARGET_NOT_WHOLE;
    }
    if (scan.first_bad < 0) {
        char range[128] = "";
        if (target->numel > 0)
            snprintf(range, sizeof range, " (min %.0f, max %.0f)", scan.min, scan.max);
        return nll_fail(call, NLL_ERROR_FLOAT_TARGET, "target",
                        "target has dtype %s, but class indices must be integers; all %" PRId64
                        " values are whole numbers%s: " NLL_FLOAT_TARGET_FIX,
                        nll_dtype_name(target->dtype), target->numel, range);
    }
    nll_format_shape(shape, sizeof shape, input->shape, input->ndim);
    nll_fail(call, NLL_ERROR_FLOAT_TARGET, "target",
             "target has dtype %s, but class indices must be integers; %s = %g is not %s "
             "(%" PRId64 " of %" PRId64 " values are not whole numbers), so these are not class "
             "indices; if they are class probabilities, %s %s",
             nll_dtype_name(target->dtype),
             nll_format_position(where, sizeof where, target, scan.first_bad, NULL),
             scan.first_value, isfinite(scan.first_value) ? "a whole number" : "finite",
             scan.bad_count, target->numel, probability_target_fix(op), shape);
    nll_fail_position(call, target, scan.first_bad, scan.first_value, scan.bad_count);
    return NLL_ERROR_FLOAT_TARGET;
}

/* A floating target on a GPU without NLL_ALLOW_FLOAT_TARGETS: the CPU's message up to its facts
 * about the values ("class indices must be integers"), which would take a kernel and a wait
 * (in asynchronous mode the call must not wait), then both of the CPU's fixes. */
static nll_status report_device_float_target(const nll_call *call, nll_loss_op op,
                                             const nll_view *target, const nll_view *input) {
    char shape[256];
    nll_format_shape(shape, sizeof shape, input->shape, input->ndim);
    return nll_fail(call, NLL_ERROR_FLOAT_TARGET, "target",
                    "target has dtype %s, but class indices must be integers (the values, on "
                    "the GPU, are not read for this check): " NLL_FLOAT_TARGET_FIX
                    "; if they are class probabilities, %s %s",
                    nll_dtype_name(target->dtype), probability_target_fix(op), shape);
}

/* A class index as stored. uint64 values above INT64_MAX and floating values outside int64
 * cannot equal any ignore_index and are never a class: they are reported exactly. */
typedef struct target_value {
    int64_t index;
    int beyond_int64;
} target_value;

static target_value read_target(const nll_loss_problem *p, const char *element) {
    target_value v = {0, 0};
    DLDataType dtype = p->target.dtype;
    if (dtype.code == kDLUInt && dtype.bits == 64) {
        uint64_t raw;
        memcpy(&raw, element, sizeof raw);
        v.beyond_int64 = raw > (uint64_t)INT64_MAX;
    } else if (nll_float_kind_of(dtype) != NLL_KIND_NONE) {
        double raw = nll_load_as_double(element, dtype);
        v.beyond_int64 = !(raw >= -9223372036854775808.0 && raw < 9223372036854775808.0);
    }
    if (!v.beyond_int64)
        v.index = p->load_index(element);
    return v;
}

/* The stored value exactly, for messages. */
static void format_target(char *buf, size_t size, const nll_view *target, const char *element,
                          target_value v) {
    if (!v.beyond_int64) {
        snprintf(buf, size, "%" PRId64, v.index);
    } else if (target->dtype.code == kDLUInt) {
        uint64_t raw;
        memcpy(&raw, element, sizeof raw);
        snprintf(buf, size, "%" PRIu64, raw);
    } else {
        snprintf(buf, size, "%.17g", nll_load_as_double(element, target->dtype));
    }
}

/* Every class index in [0, C) or equal to ignore_index; else the first bad one in row-major
 * order, the count, and hints for the usual causes. */
static nll_target_scan scan_targets(const nll_loss_problem *p) {
    const nll_view *target = &p->target;
    nll_iter it;
    nll_iter_init(&it, target->shape, target->ndim);
    nll_iter_slot(&it, 0, target, -1);
    nll_target_scan scan = {-1, 0, 0, 0, INT64_MAX, INT64_MIN, 0, 0, 1};
    for (int64_t flat = 0; flat < target->numel; flat++, nll_iter_next(&it)) {
        const char *element = target->data + it.offset[0] * target->item_size;
        target_value v = read_target(p, element);
        int64_t t = v.index;
        if (!v.beyond_int64) {
            if (t == p->ignore_index)
                continue;
            scan.min = t < scan.min ? t : scan.min;
            scan.max = t > scan.max ? t : scan.max;
        }
        scan.counted++;
        if (!v.beyond_int64 && t >= 0 && t < p->classes)
            continue;
        if (scan.first < 0)
            scan.first = flat;
        scan.bad++;
        scan.beyond += v.beyond_int64;
        scan.seen_minus_one |= !v.beyond_int64 && t == -1;
        scan.seen_255 |= !v.beyond_int64 && t == 255;
        scan.only_c_bad &= !v.beyond_int64 && t == p->classes;
    }
    return scan;
}

/* The usual case at memory speed: compact int64 or int32 targets, each in [0, C) or
 * ignore_index. 1 when that holds; 0 sends the call through scan_targets, which says more. */
static int targets_fit_quickly(const nll_loss_problem *p) {
    const nll_view *target = &p->target;
    if (target->dtype.code != kDLInt || (target->dtype.bits != 64 && target->dtype.bits != 32) ||
        (uintptr_t)target->data % (uintptr_t)target->item_size)
        return 0;
    if (target->numel == 0)
        return 1; /* nothing to check; and a 0 elsewhere leaves the other sizes unbounded */
    int64_t compact = 1; /* a product of sizes >= 1 whose total is numel: cannot overflow */
    for (int d = target->ndim - 1; d >= 0; d--) {
        if (target->shape[d] != 1 && target->strides[d] != compact)
            return 0;
        compact *= target->shape[d];
    }
    const uint64_t classes = (uint64_t)p->classes;
    const int64_t ignore = p->ignore_index, n = target->numel;
    int bad = 0; /* branch-free, so the loop vectorises */
    if (target->dtype.bits == 64) {
        const int64_t *t = (const int64_t *)(const void *)target->data;
        for (int64_t i = 0; i < n; i++)
            bad |= ((uint64_t)t[i] >= classes) & (t[i] != ignore);
    } else {
        const int32_t *t = (const int32_t *)(const void *)target->data;
        for (int64_t i = 0; i < n; i++)
            bad |= ((uint64_t)(int64_t)t[i] >= classes) & ((int64_t)t[i] != ignore);
    }
    return !bad;
}

nll_status nll_report_target_range(const nll_call *call, const nll_loss_problem *p,
                                   const nll_target_scan *scan, const void *first_bytes) {
    if (scan->first < 0)
        return NLL_OK;
    const nll_view *target = &p->target;
    const char *first_element = first_bytes;
    const int64_t first = scan->first, bad = scan->bad, counted = scan->counted;
    const int64_t beyond = scan->beyond, min = scan->min, max = scan->max;
    const int seen_minus_one = scan->seen_minus_one, seen_255 = scan->seen_255;
    const int only_c_bad = scan->only_c_bad;

    char where[256], hints[768] = "";
    size_t used = 0;
#define NLL_HINT(...)                                                                          \
    do {                                                                                       \
        if (used < sizeof hints)                                                               \
            used += (size_t)snprintf(hints + used, sizeof hints - used, __VA_ARGS__);          \
    } while (0)
    if (p->classes == 0)
        NLL_HINT("; the input has no classes (its class axis, dim %d, has size 0)", p->class_axis);
    else if (only_c_bad && min == 1 && max == p->classes)
        NLL_HINT("; the labels look 1-based (min 1, max %" PRId64 "): subtract 1", p->classes);
    else if (max >= p->classes && !seen_255 && max != INT64_MIN)
        NLL_HINT("; the largest target is %" PRId64 ": does the input really have only %" PRId64
                 " classes (dim %d)?",
                 max, p->classes, p->class_axis);
    if (seen_minus_one && p->ignore_index != -1)
        NLL_HINT("; -1 found while ignore_index is %" PRId64
                 ": if -1 marks padding, pass ignore_index=-1",
                 p->ignore_index);
    if (seen_255 && p->ignore_index != 255)
        NLL_HINT("; 255 found: 255 often marks void pixels in segmentation masks; pass "
                 "ignore_index=255 to skip them");
#undef NLL_HINT
    char seen[160], value_text[40];
    format_target(value_text, sizeof value_text, target, first_element,
                  read_target(p, first_element));
    if (min <= max)
        snprintf(seen, sizeof seen, "targets seen: min %" PRId64 ", max %" PRId64 "%s", min, max,
                 beyond ? ", and values beyond int64" : "");
    else
        snprintf(seen, sizeof seen, "every bad value is beyond int64");
    nll_fail(call, NLL_ERROR_TARGET_RANGE, "target",
             "%s = %s is outside the class range [0, %" PRId64 ") and is not ignore_index (%" PRId64
             "); %" PRId64 " of %" PRId64 " targets are out of range (%s)%s",
             nll_format_position(where, sizeof where, target, first, NULL), value_text,
             p->classes, p->ignore_index, bad, counted, seen, hints);
    nll_fail_position(call, target, first, nll_load_as_double(first_element, target->dtype), bad);
    return NLL_ERROR_TARGET_RANGE;
}

static nll_status check_class_target_shape(const nll_call *call, nll_loss_op op,
                                           const nll_view *target, const nll_view *input,
                                           const int64_t *sample_shape, int sample_ndim,
                                           int64_t classes, int class_axis) {
    if (shapes_equal(target->shape, target->ndim, sample_shape, sample_ndim))
        return NLL_OK;
    char got[256], in[256], want[256];
    nll_format_shape(got, sizeof got, target->shape, target->ndim);
    nll_format_shape(in, sizeof in, input->shape, input->ndim);
    nll_format_shape(want, sizeof want, sample_shape, sample_ndim);
    int floating = nll_float_kind_of(target->dtype) != NLL_KIND_NONE;
    if (floating && target->ndim == input->ndim && op == NLL_OP_CROSS_ENTROPY)
        return nll_fail(call, NLL_ERROR_PROBABILITY_SHAPE, "target",
                        "probability targets need the input's exact shape: target %s, input %s "
                        "(class axis dim %d, C = %" PRId64 "); for class indices the target "
                        "would be %s",
                        got, in, class_axis, classes, want);
    if (input->ndim == 1)
        return nll_fail(call, NLL_ERROR_TARGET_SHAPE, "target",
                        "target shape %s does not match input shape %s: for a 1-D input (one "
                        "sample of C = %" PRId64 " classes) the target must be 0-d, a single "
                        "class index%s",
                        got, in, classes,
                        op == NLL_OP_CROSS_ENTROPY
                            ? " (or, for class probabilities, a floating target of the input's "
                              "shape)"
                            : "");
    return nll_fail(call, NLL_ERROR_TARGET_SHAPE, "target",
                    "target shape %s does not match input shape %s: expected target shape %s "
                    "(the input without its class axis, dim %d, C = %" PRId64 ")%s",
                    got, in, want, class_axis, classes,
                    floating && op == NLL_OP_NLL && target->ndim == input->ndim
                        ? "; nll_loss takes class indices: for class probabilities use "
                          "cross_entropy"
                        : "");
}

/* A dimension of size 1 (or 0) never moves a walk, so its stride, which no extent check
 * bounds, may be anything: kernels that scale the walk's strides (stride * item size) get 0. */
static void zero_unmoving_strides(nll_iter *it) {
    for (int d = 0; d < it->ndim; d++)
        if (it->shape[d] <= 1)
            for (int s = 0; s < NLL_ITER_SLOTS; s++)
                it->strides[s][d] = 0;
}

nll_status nll_validate_loss(const nll_call *call, nll_loss_op op, const DLTensor *input,
                             const DLTensor *target, const nll_options *options,
                             const DLTensor *loss, const DLTensor *total_weight,
                             const DLTensor *grad_loss, const DLTensor *grad,
                             nll_loss_problem *p) {
    nll_status status;
    memset(p, 0, sizeof *p);
    p->op = op;
    if ((status = check_options(call, op, options)))
        return status;
    p->reduction = options->reduction;
    p->flags = options->flags;
    p->ignore_index = options->ignore_index;
    p->label_smoothing = options->label_smoothing;

    if ((status = nll_view_make(call, "input", input, 0, &p->input)) ||
        (status = check_float_input(call, &p->input)))
        return status;
    if (p->input.ndim == 0)
        return nll_fail(call, NLL_ERROR_INPUT_RANK, "input",
                        "input is 0-d; expected (C), (N, C) or (N, C, d1, ..., dk)");
    p->kind = nll_float_kind_of(p->input.dtype);
    p->on_device = nll_device_is_cuda(p->input.device);
    if ((status = nll_view_make(call, "target", target, 0, &p->target)) ||
        (status = check_same_device(call, &p->target, &p->input)))
        return status;

    /* Samples: every input position but the class axis. */
    const nll_view *in = &p->input;
    p->class_axis = in->ndim == 1 ? 0 : 1;
    p->classes = in->shape[p->class_axis];
    int64_t sample_shape[NLL_MAX_DIMS];
    int sample_ndim = 0, empty = 0, overflow = 0;
    p->samples = 1;
    for (int d = 0; d < in->ndim; d++) {
        if (d == p->class_axis)
            continue;
        int64_t n = in->shape[d];
        sample_shape[sample_ndim++] = n;
        if (n == 0)
            empty = 1;
        else if (p->samples > INT64_MAX / n)
            overflow = 1;
        else
            p->samples *= n;
    }
    if (empty)
        p->samples = 0;
    else if (overflow)
        return nll_fail(call, NLL_ERROR_SIZE_OVERFLOW, "input",
                        "input has more samples than int64 can count");

    const nll_view *tg = &p->target;
    p->probability = op == NLL_OP_CROSS_ENTROPY &&
                     shapes_equal(tg->shape, tg->ndim, in->shape, in->ndim);
    char shape_text[256];
    if (p->probability) {
        if (nll_float_kind_of(tg->dtype) == NLL_KIND_NONE)
            return nll_fail(call, NLL_ERROR_TARGET_DTYPE, "target",
                            "target has the input's exact shape %s, so it is read as class "
                            "probabilities, which must be floating point; got %s. Class indices "
                            "have the input's shape without the class axis (dim %d)%s",
                            nll_format_shape(shape_text, sizeof shape_text, in->shape, in->ndim),
                            nll_dtype_name(tg->dtype), p->class_axis,
                            in->ndim == 1 ? ": for a 1-D input, a 0-d target" : "");
        if (tg->dtype.code != in->dtype.code || tg->dtype.bits != in->dtype.bits)
            return nll_fail(call, NLL_ERROR_TARGET_DTYPE, "target",
                            "probability target has dtype %s but the input has dtype %s; "
                            "convert one so they match",
                            nll_dtype_name(tg->dtype), nll_dtype_name(in->dtype));
        if (p->ignore_index >= 0)
            return nll_fail(call, NLL_ERROR_IGNORE_INDEX, "",
                            "ignore_index = %" PRId64 " cannot be used with probability targets "
                            "(a target of the input's shape); leave it negative (default -100)",
                            p->ignore_index);
    } else {
        if ((status = check_class_target_shape(call, op, tg, in, sample_shape, sample_ndim,
                                               p->classes, p->class_axis)))
            return status;
        if (nll_float_kind_of(tg->dtype) != NLL_KIND_NONE) {
            if (!p->on_device) {
                nll_whole_scan scan = scan_whole(tg);
                if ((status = nll_report_float_target(call, op, tg, in, options->flags, &scan)))
                    return status;
            } else if (!(options->flags & NLL_ALLOW_FLOAT_TARGETS)) {
                /* A dtype error, known before any value is read or the device is needed. With
                 * NLL_ALLOW_FLOAT_TARGETS, src/cuda/check.cu checks the values are whole. */
                return report_device_float_target(call, op, tg, in);
            }
        } else if (!nll_dtype_is_integer(tg->dtype)) {
            return nll_fail(call, NLL_ERROR_TARGET_DTYPE, "target",
                            "target has dtype %s; class indices must be integers: convert the "
                            "target to int64 (.long() in PyTorch, .astype(np.int64) in NumPy)",
                            nll_dtype_name(tg->dtype));
        }
        p->load_index = nll_index_loader_for(tg->dtype);
    }

    if ((status = nll_view_make(call, "weight", options->weight, 1, &p->weight)))
        return status;
    if (p->weight.present) {
        const nll_view *w = &p->weight;
        if ((status = check_same_device(call, w, in)))
            return status;
        if (w->dtype.code != in->dtype.code || w->dtype.bits != in->dtype.bits)
            return nll_fail(call, NLL_ERROR_WEIGHT_DTYPE, "weight",
                            "weight has dtype %s but input has dtype %s; convert the weight",
                            nll_dtype_name(w->dtype), nll_dtype_name(in->dtype));
        if (w->ndim != 1 || w->shape[0] != p->classes)
            return nll_fail(call, NLL_ERROR_WEIGHT_SHAPE, "weight",
                            "weight has shape %s but must be (%" PRId64 "): one weight per class "
                            "(C = %" PRId64 ", input dim %d)",
                            nll_format_shape(shape_text, sizeof shape_text, w->shape, w->ndim),
                            p->classes, p->classes, p->class_axis);
    }

    /* Outputs and the upstream gradient. */
    int scalar_loss = p->reduction != NLL_REDUCTION_NONE;
    struct {
        nll_view *view;
        const char *name;
        const DLTensor *tensor;
    } outs[] = {{&p->loss, "loss", loss},
                {&p->total_weight, "total_weight", total_weight},
                {&p->grad_loss, "grad_loss", grad_loss},
                {&p->grad, "grad_input", grad}};
    for (size_t k = 0; k < sizeof outs / sizeof outs[0]; k++) {
        nll_view *v = outs[k].view;
        if ((status = nll_view_make(call, outs[k].name, outs[k].tensor, 1, v)))
            return status;
        if (!v->present)
            continue;
        if ((status = check_same_device(call, v, in)) ||
            (status = check_output_dtype(call, v, in)))
            return status;
        if (v == &p->loss)
            status = check_output_shape(call, v, sample_shape, scalar_loss ? 0 : sample_ndim,
                                        scalar_loss,
                                        p->reduction == NLL_REDUCTION_NONE
                                            ? "reduction none gives a loss of shape"
                                        : p->reduction == NLL_REDUCTION_MEAN
                                            ? "reduction mean gives a loss of shape"
                                            : "reduction sum gives a loss of shape");
        else if (v == &p->total_weight)
            status = check_output_shape(call, v, sample_shape, 0, 1, "must be a scalar of shape");
        else if (v == &p->grad_loss)
            status = check_output_shape(call, v, sample_shape, scalar_loss ? 0 : sample_ndim, 1,
                                        scalar_loss ? "with a reduced loss must have shape"
                                                    : "must be a scalar or have the loss's shape");
        else
            status = check_output_shape(call, v, in->shape, in->ndim, 0,
                                        "must have the input's shape");
        if (status)
            return status;
    }
    nll_view *outputs[] = {&p->loss, &p->total_weight, &p->grad};
    nll_view *inputs[] = {&p->input, &p->target, &p->weight, &p->grad_loss};
    const nll_view *in_place[] = {&p->input};
    if ((status = check_overlaps(call, outputs, 3, inputs, 4, &p->grad, in_place, 1)))
        return status;

    /* Value checks: each a full pass, done before anything is written. On a GPU they run
     * there (src/cuda/check.cu) and are reported through the same functions. */
    if (options->flags & NLL_CHECK_FINITE && !p->on_device) {
        nll_finite_scan scan = scan_finite(in);
        if ((status = nll_report_nonfinite(call, in, &scan, nll_nonfinite_reason(op))))
            return status;
        if (p->probability) {
            scan = scan_finite(tg);
            if ((status = nll_report_nonfinite(call, tg, &scan, "probabilities must be finite")))
                return status;
        }
    }
    if (!p->probability && !p->on_device && !targets_fit_quickly(p)) {
        nll_target_scan scan = scan_targets(p);
        if (scan.first >= 0) {
            const char *first = nll_view_element(tg, scan.first);
            return nll_report_target_range(call, p, &scan, first);
        }
    }

    /* The sample walk shared by every kernel. An empty tensor's strides were never checked
     * (it has no element to reach), yet with C = 0 the samples are still walked, the input,
     * a probability target and the gradient included: walk those with zero strides, so that
     * no offset is computed from sizes and strides that overflow. */
    nll_view *walked[] = {&p->input, &p->target, &p->loss, &p->grad_loss, &p->grad};
    for (size_t k = 0; k < sizeof walked / sizeof walked[0]; k++)
        if (walked[k]->numel == 0)
            memset(walked[k]->strides, 0, sizeof walked[k]->strides);
    nll_iter *it = &p->samples_iter;
    nll_iter_init(it, sample_shape, sample_ndim);
    nll_iter_slot(it, NLL_SLOT_INPUT, in, p->class_axis);
    nll_iter_slot(it, NLL_SLOT_TARGET, tg, p->probability ? p->class_axis : -1);
    if (!scalar_loss) {
        nll_iter_slot(it, NLL_SLOT_LOSS, &p->loss, -1);
        if (p->grad_loss.present &&
            shapes_equal(p->grad_loss.shape, p->grad_loss.ndim, sample_shape, sample_ndim))
            nll_iter_slot(it, NLL_SLOT_GRAD_LOSS, &p->grad_loss, -1);
    }
    nll_iter_slot(it, NLL_SLOT_GRAD, &p->grad, p->class_axis);
    zero_unmoving_strides(it);
    p->class_stride[NLL_SLOT_INPUT] = in->strides[p->class_axis];
    if (p->probability)
        p->class_stride[NLL_SLOT_TARGET] = tg->strides[p->class_axis];
    if (p->grad.present)
        p->class_stride[NLL_SLOT_GRAD] = p->grad.strides[p->class_axis];
    return NLL_OK;
}

nll_status nll_validate_softmax(const nll_call *call, const DLTensor *input,
                                const DLTensor *output, const DLTensor *grad_output,
                                const DLTensor *grad, int64_t dim, nll_softmax_problem *p) {
    nll_status status;
    memset(p, 0, sizeof *p);
    int backward = grad != NULL || grad_output != NULL;
    /* Forward reads input and writes output; backward reads grad_output and output. */
    const nll_view *first;
    if (backward) {
        if ((status = nll_view_make(call, "grad_output", grad_output, 0, &p->grad_output)) ||
            (status = nll_view_make(call, "output", output, 0, &p->output)) ||
            (status = nll_view_make(call, "grad_input", grad, 0, &p->grad)))
            return status;
        first = &p->grad_output;
    } else {
        if ((status = nll_view_make(call, "input", input, 0, &p->input)) ||
            (status = nll_view_make(call, "output", output, 0, &p->output)))
            return status;
        first = &p->input;
    }
    if ((status = check_float_input(call, first)))
        return status;
    if (first->ndim == 0)
        return nll_fail(call, NLL_ERROR_INPUT_RANK, first->name,
                        "%s is 0-d; log_softmax needs at least one dimension", first->name);
    p->kind = nll_float_kind_of(first->dtype);
    p->on_device = nll_device_is_cuda(first->device);
    if (dim < -first->ndim || dim >= first->ndim) {
        char shape_text[256];
        return nll_fail(call, NLL_ERROR_INVALID_DIM, "",
                        "dim = %" PRId64 " is outside [%d, %d) for %s of shape %s", dim,
                        -first->ndim, first->ndim, first->name,
                        nll_format_shape(shape_text, sizeof shape_text, first->shape,
                                         first->ndim));
    }
    p->axis = (int)(dim < 0 ? dim + first->ndim : dim);
    p->classes = first->shape[p->axis];
    p->rows = p->classes ? first->numel / p->classes : 0;

    nll_view *others[] = {&p->output, &p->grad_output, &p->grad};
    for (int k = 0; k < 3; k++) {
        nll_view *v = others[k];
        if (!v->present || v == first)
            continue;
        if ((status = check_same_device(call, v, first)) ||
            (status = check_output_dtype(call, v, first)) ||
            (status = check_output_shape(call, v, first->shape, first->ndim, 0,
                                         "must have the shape of")))
            return status;
    }
    if (backward) {
        nll_view *outputs[] = {&p->grad};
        nll_view *inputs[] = {&p->grad_output, &p->output};
        const nll_view *in_place[] = {&p->grad_output, &p->output};
        status = check_overlaps(call, outputs, 1, inputs, 2, &p->grad, in_place, 2);
    } else {
        nll_view *outputs[] = {&p->output};
        nll_view *inputs[] = {&p->input};
        const nll_view *in_place[] = {&p->input};
        status = check_overlaps(call, outputs, 1, inputs, 1, &p->output, in_place, 1);
    }
    if (status)
        return status;

    int64_t row_shape[NLL_MAX_DIMS];
    int row_ndim = 0;
    for (int d = 0; d < first->ndim; d++)
        if (d != p->axis)
            row_shape[row_ndim++] = first->shape[d];
    nll_iter_init(&p->rows_iter, row_shape, row_ndim);
    nll_view *slots[] = {&p->input, &p->output, &p->grad_output, &p->grad};
    for (int s = 0; s < 4; s++) {
        nll_iter_slot(&p->rows_iter, s, slots[s], p->axis);
        if (slots[s]->present)
            p->class_stride[s] = slots[s]->strides[p->axis];
    }
    zero_unmoving_strides(&p->rows_iter);
    return NLL_OK;
}
