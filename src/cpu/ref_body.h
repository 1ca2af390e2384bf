/* The kernels of every op: one generic body, included once per input dtype after dtype.h
 * (which defines NLL_T, NLL_A, FN and the element helpers). The body #undefs those parameters
 * at its end. Every kernel assumes validated input (src/validate.c) and walks strided tensors
 * with nll_iter; offsets are in elements.
 *
 * Class indices are read again here, after validation, and the caller's memory may change in
 * between (a racing thread, a file mapped by another process). So every index that becomes an
 * address is re-checked where it is used, on the one copy read: an index outside [0, C) is
 * taken as ignore_index (FN(class_in_range)). Results for a target that changed during the
 * call are unspecified, but no kernel reads or writes outside its tensors. */

/* Row primitives. A translation unit with vector kernels defines NLL_FAST_ROWS and the
 * FN(fast_*) functions (src/cpu/simd_rows.h) before including this body: rows whose elements
 * are contiguous take them; every other layout takes the scalar loops here. */

/* Row statistics, max and log(sum(exp(x - max))), are a fold over fixed blocks of the row: each
 * block's shift and sum of exp(x - shift), merged in order (FN(fold_stats), dtype.h). The shift
 * is the block's max, or for vector rows a guess at most 16.6 below it (so `max` may be a
 * little below the row's true max; log_sum makes up the difference). A long
 * row can then be cut at block boundaries, its blocks computed on any threads, and folded to
 * the same bits. Blocks are L1-sized for vector rows (read once from memory), NLL_BLOCK_WORK
 * elements for scalar ones (a row of one block is a plain two-pass max, then sum). A NaN never
 * wins the max but poisons the sum, and an all -inf row gives -inf - -inf = NaN: the whole row
 * is NaN, as in PyTorch. Every other reduction along a row is summed per block too. */
static int64_t FN(row_block)(int64_t stride) {
#ifdef NLL_FAST_ROWS
    if (stride == 1)
        return NLL_ROW_BLOCK;
#endif
    (void)stride;
    return NLL_BLOCK_WORK;
}

/* One block of n elements: its shift and sum of exp(x - shift); kept: see FN(fast_block_stats)
 * (contiguous rows only). The scalar loops shift by the block's max. */
NLL_ROW_STEP void FN(block_stats)(const char *x, int64_t offset, int64_t stride, int64_t n,
                                  float *kept, NLL_A *shift_out, double *sum_out) {
#ifdef NLL_FAST_ROWS
    if (stride == 1) {
        FN(fast_block_stats)(x + offset * (int64_t)sizeof(NLL_T), n, kept, shift_out, sum_out);
        return;
    }
#endif
    (void)kept;
    NLL_A max = -INFINITY;
    for (int64_t c = 0; c < n; c++) {
        NLL_A v = FN(load)(x, offset + c * stride);
        if (v > max)
            max = v;
    }
    double sum = 0; /* wide, so long rows (large vocabularies) keep float32 accuracy */
    for (int64_t c = 0; c < n; c++) {
        NLL_A v = FN(load)(x, offset + c * stride);
        if (max != -INFINITY)
            sum += NLL_EXP(v - max);
        else if (v != v)
            sum = NAN;
    }
    *shift_out = max;
    *sum_out = sum;
}

/* With kept (contiguous rows), each block's exponentials are kept there and its shift in
 * block_shift_out: FN(fast_row_gradient_kept) then needs no second exp. */
static void FN(row_stats_keeping)(const char *x, int64_t offset, int64_t stride,
                                  int64_t classes, float *kept, NLL_A *max_out,
                                  NLL_A *log_sum_out, NLL_A *block_shift_out) {
    const int64_t block = FN(row_block)(stride);
    NLL_A max = -INFINITY;
    double sum = 0;
    for (int64_t start = 0, b = 0; start < classes; start += block, b++) {
        const int64_t n = classes - start < block ? classes - start : block;
        NLL_A block_shift;
        double block_sum;
        FN(block_stats)(x, offset + start * stride, stride, n, kept ? kept + start : NULL,
                        &block_shift, &block_sum);
        if (block_shift_out)
            block_shift_out[b] = block_shift;
        FN(fold_stats)(&max, &sum, block_shift, block_sum);
    }
    *max_out = max;
    *log_sum_out = NLL_LOG((NLL_A)sum);
}

static void FN(row_stats)(const char *x, int64_t offset, int64_t stride, int64_t classes,
                          NLL_A *max_out, NLL_A *log_sum_out) {
    FN(row_stats_keeping)(x, offset, stride, classes, NULL, max_out, log_sum_out, NULL);
}

/* sum over n classes of w[c] * log p[c] (w = 1 without weight; weight points at the block's
 * first class): label smoothing's term, per block */
static double FN(block_weighted_log_p)(const char *x, int64_t offset, int64_t stride,
                                       int64_t n, const char *weight, int64_t w_stride,
                                       NLL_A max, NLL_A log_sum) {
#ifdef NLL_FAST_ROWS
    if (stride == 1 && (!weight || w_stride == 1))
        return FN(fast_block_weighted_log_p)(x + offset * (int64_t)sizeof(NLL_T), weight, n, max,
                                             log_sum);
#endif
    double sum = 0;
    for (int64_t c = 0; c < n; c++) {
        NLL_A log_p = (FN(load)(x, offset + c * stride) - max) - log_sum;
        sum += weight ? FN(load)(weight, c * w_stride) * log_p : log_p;
    }
    return sum;
}

static double FN(row_weighted_log_p)(const char *x, int64_t offset, int64_t stride,
                                     int64_t classes, const char *weight, int64_t w_stride,
                                     NLL_A max, NLL_A log_sum) {
    const int64_t block = FN(row_block)(stride);
    double sum = 0;
    for (int64_t start = 0; start < classes; start += block)
        sum += FN(block_weighted_log_p)(
            x, offset + start * stride, stride, classes - start < block ? classes - start : block,
            weight ? weight + start * w_stride * (int64_t)sizeof(NLL_T) : NULL, w_stride, max,
            log_sum);
    return sum;
}

/* The gradient of classes [0, n) of a row; a long row may be written in pieces, each with its
 * own pointers and terms->target relative to its start (-1 when outside). */
static void FN(row_class_gradient)(const char *x, int64_t offset, int64_t stride, char *grad,
                                   int64_t g_offset, int64_t g_stride, int64_t classes,
                                   const char *weight, int64_t w_stride,
                                   const FN(gradient_terms) *terms) {
#ifdef NLL_FAST_ROWS
    if (stride == 1 && g_stride == 1 && (!weight || w_stride == 1)) {
        FN(fast_row_class_gradient)(x + offset * (int64_t)sizeof(NLL_T),
                                    grad + g_offset * (int64_t)sizeof(NLL_T), classes, weight,
                                    terms);
        return;
    }
#endif
    for (int64_t c = 0; c < classes; c++) {
        NLL_A log_p = (FN(load)(x, offset + c * stride) - terms->max) - terms->log_sum;
        NLL_A g = c == terms->target ? terms->target_g : 0;
        if (terms->smoothing)
            g -= terms->smooth_g * (weight ? FN(load)(weight, c * w_stride) : 1);
        FN(store)(grad, g_offset + c * g_stride, g - NLL_EXP(log_p) * terms->sum_g);
    }
}

/* out = (x - max) - log_sum over n classes: log_softmax once the row's statistics are known */
static void FN(row_shift)(const char *x, int64_t offset, int64_t stride, char *out,
                          int64_t o_offset, int64_t o_stride, int64_t n, NLL_A max,
                          NLL_A log_sum) {
#ifdef NLL_FAST_ROWS
    if (stride == 1 && o_stride == 1) {
        FN(fast_row_shift)(x + offset * (int64_t)sizeof(NLL_T),
                           out + o_offset * (int64_t)sizeof(NLL_T), n, max, log_sum);
        return;
    }
#endif
    for (int64_t c = 0; c < n; c++)
        FN(store)(out, o_offset + c * o_stride,
                  (FN(load)(x, offset + c * stride) - max) - log_sum);
}

static void FN(row_log_softmax)(const char *x, int64_t offset, int64_t stride, char *out,
                                int64_t o_offset, int64_t o_stride, int64_t classes) {
    NLL_A max, log_sum;
    FN(row_stats)(x, offset, stride, classes, &max, &log_sum);
    FN(row_shift)(x, offset, stride, out, o_offset, o_stride, classes, max, log_sum);
}

/* sum of n elements of g, per block */
static double FN(block_sum)(const char *g, int64_t offset, int64_t stride, int64_t n) {
#ifdef NLL_FAST_ROWS
    if (stride == 1)
        return FN(fast_block_sum)(g + offset * (int64_t)sizeof(NLL_T), n);
#endif
    double sum = 0;
    for (int64_t c = 0; c < n; c++)
        sum += FN(load)(g, offset + c * stride);
    return sum;
}

/* d = g - exp(y) * sum over n classes */
static void FN(row_softmax_backward_apply)(const char *y, int64_t y_offset, int64_t y_stride,
                                           const char *g, int64_t g_offset, int64_t g_stride,
                                           char *d, int64_t d_offset, int64_t d_stride,
                                           int64_t n, NLL_A sum) {
#ifdef NLL_FAST_ROWS
    if (y_stride == 1 && g_stride == 1 && d_stride == 1) {
        FN(fast_row_softmax_backward_apply)(y + y_offset * (int64_t)sizeof(NLL_T),
                                            g + g_offset * (int64_t)sizeof(NLL_T),
                                            d + d_offset * (int64_t)sizeof(NLL_T), n, sum);
        return;
    }
#endif
    for (int64_t c = 0; c < n; c++)
        FN(store)(d, d_offset + c * d_stride,
                  FN(load)(g, g_offset + c * g_stride) -
                      NLL_EXP(FN(load)(y, y_offset + c * y_stride)) * sum);
}

#ifndef NLL_ONE_NAN_DEFINED
#define NLL_ONE_NAN_DEFINED
/* A NaN sum as one NaN: which operand's payload (and sign) an addition of two NaNs keeps is up
 * to the compiler's operand order, which differs between the whole-row and split-row folds. */
static inline double nll_one_nan(double sum) { return sum != sum ? NAN : sum; }
#endif

/* grad_input = grad_output - exp(output) * sum(grad_output) along one row */
static void FN(row_log_softmax_backward)(const char *y, int64_t y_offset, int64_t y_stride,
                                         const char *g, int64_t g_offset, int64_t g_stride,
                                         char *d, int64_t d_offset, int64_t d_stride,
                                         int64_t classes) {
    const int64_t block = FN(row_block)(g_stride);
    double sum = 0;
    for (int64_t start = 0; start < classes; start += block)
        sum += FN(block_sum)(g, g_offset + start * g_stride, g_stride,
                             classes - start < block ? classes - start : block);
    FN(row_softmax_backward_apply)(y, y_offset, y_stride, g, g_offset, g_stride, d, d_offset,
                                   d_stride, classes, (NLL_A)nll_one_nan(sum));
}

/* Whether class index t, as read now, is one to use: not ignore_index and in [0, classes).
 * Validation saw every target in range, so for unchanging inputs this is t != ignore_index;
 * one unsigned comparison more keeps a target changed since then from becoming an address.
 * `&`, not `&&`: no branch. */
static inline int FN(class_in_range)(const nll_loss_problem *p, int64_t t) {
    return (t != p->ignore_index) & ((uint64_t)t < (uint64_t)p->classes);
}

/* Sum of w[t] over non-ignored samples (their count without weight): the MEAN denominator. */
static double FN(class_weight_total)(const nll_loss_problem *p) {
    if (!p->weight.present && p->samples_iter.ndim == 1 && p->target.dtype.code == kDLInt &&
        p->target.dtype.bits == 64) { /* the common case, without a call per target */
        const int64_t step = p->samples_iter.strides[NLL_SLOT_TARGET][0] * 8;
        int64_t count = 0;
        for (int64_t i = 0; i < p->samples; i++) {
            int64_t t;
            memcpy(&t, p->target.data + i * step, sizeof t);
            count += t != p->ignore_index; /* no address: a changed target costs no check */
        }
        return (double)count;
    }
    nll_iter it = p->samples_iter;
    double total = 0;
    for (int64_t i = 0; i < p->samples; i++, nll_iter_next(&it)) {
        int64_t t = p->load_index(p->target.data +
                                  it.offset[NLL_SLOT_TARGET] * p->target.item_size);
        if (!FN(class_in_range)(p, t))
            continue;
        total += p->weight.present ? (double)FN(load)(p->weight.data, t * p->weight.strides[0])
                                   : 1.0;
    }
    return total;
}

/* The upstream gradient of the sample at offsets (an nll_iter's offset array) */
static double FN(upstream)(const nll_loss_problem *p, const int64_t *offset) {
    if (!p->grad_loss.present)
        return 1.0;
    return (double)FN(load)(p->grad_loss.data, offset[NLL_SLOT_GRAD_LOSS]);
}

/* One call's shared state; each block writes only its own partial sums. */
typedef struct FN(loss_job) {
    const nll_loss_problem *p;
    nll_blocks plan;
    int want_loss, want_grad;
    int stream_gradient; /* see FN(streams_gradient) */
    double denominator;  /* MEAN: sum of w[t] (class indices) or the sample count */
    NLL_A weight_sum;    /* sum over all classes of w[c] */
    double loss_partial[NLL_MAX_BLOCKS];   /* nll terms (or sum w q log p) */
    double weight_partial[NLL_MAX_BLOCKS]; /* nll_loss: W; cross_entropy: smoothing terms */
} FN(loss_job);

typedef struct FN(softmax_job) {
    const nll_softmax_problem *p;
    nll_blocks plan;
    int backward;
} FN(softmax_job);

static double FN(sum_partials)(const double *partials, int64_t count) {
    double total = 0;
    for (int64_t b = 0; b < count; b++)
        total += partials[b];
    return total;
}

static void FN(nll_forward_blocks)(void *arg, int64_t first, int64_t end) {
    FN(loss_job) *job = arg;
    const nll_loss_problem *p = job->p;
    const char *x = p->input.data;
    const int64_t x_class = p->class_stride[NLL_SLOT_INPUT];
    for (int64_t b = first; b < end; b++) {
        int64_t begin, stop;
        nll_block_range(&job->plan, b, &begin, &stop);
        nll_iter it = p->samples_iter;
        nll_iter_seek(&it, begin);
        double total = 0, weight_total = 0;
        for (int64_t i = begin; i < stop; i++, nll_iter_next(&it)) {
            int64_t t = p->load_index(p->target.data +
                                      it.offset[NLL_SLOT_TARGET] * p->target.item_size);
            NLL_A loss = 0;
            if (FN(class_in_range)(p, t)) {
                NLL_A x_t = FN(load)(x, it.offset[NLL_SLOT_INPUT] + t * x_class);
                NLL_A w = p->weight.present ? FN(load)(p->weight.data, t * p->weight.strides[0])
                                            : 1;
                /* -(x * w), as PyTorch forms it: a 0 log-probability gives -0 */
                loss = p->weight.present ? -(x_t * w) : -x_t;
                weight_total += (double)w;
            }
            if (p->reduction == NLL_REDUCTION_NONE)
                FN(store)(p->loss.data, it.offset[NLL_SLOT_LOSS], loss);
            else
                total += (double)loss;
        }
        job->loss_partial[b] = total;
        job->weight_partial[b] = weight_total;
    }
}

static void FN(nll_forward)(const nll_loss_problem *p) {
    FN(loss_job) job;
    job.p = p;
    job.plan = nll_plan_blocks(p->samples, 1);
    nll_parallel_blocks(p->pool, nll_threads_for(p->threads, p->samples), &job.plan,
                        FN(nll_forward_blocks), &job);
    double total = FN(sum_partials)(job.loss_partial, job.plan.count);
    double weight_total = FN(sum_partials)(job.weight_partial, job.plan.count);
    if (p->reduction != NLL_REDUCTION_NONE)
        FN(store_double)(p->loss.data,
                         p->reduction == NLL_REDUCTION_MEAN ? total / weight_total : total);
    /* PyTorch leaves total_weight 0 for NONE, except that a 1-D input's gives w[t] */
    if (p->total_weight.present)
        FN(store_double)(p->total_weight.data,
                         p->reduction != NLL_REDUCTION_NONE || p->input.ndim == 1 ? weight_total
                                                                                  : 0.0);
}

static void FN(nll_backward_blocks)(void *arg, int64_t first, int64_t end) {
    FN(loss_job) *job = arg;
    const nll_loss_problem *p = job->p;
    const int64_t g_class = p->class_stride[NLL_SLOT_GRAD];
    for (int64_t b = first; b < end; b++) {
        int64_t begin, stop;
        nll_block_range(&job->plan, b, &begin, &stop);
        nll_iter it = p->samples_iter;
        nll_iter_seek(&it, begin);
        for (int64_t i = begin; i < stop; i++, nll_iter_next(&it)) {
            const int64_t row = it.offset[NLL_SLOT_GRAD];
            for (int64_t c = 0; c < p->classes; c++)
                FN(store)(p->grad.data, row + c * g_class, 0);
            int64_t t = p->load_index(p->target.data +
                                      it.offset[NLL_SLOT_TARGET] * p->target.item_size);
            if (!FN(class_in_range)(p, t))
                continue;
            NLL_A scale = (NLL_A)(FN(upstream)(p, it.offset) / job->denominator);
            NLL_A w = p->weight.present ? FN(load)(p->weight.data, t * p->weight.strides[0]) : 1;
            FN(store)(p->grad.data, row + t * g_class, w * -scale);
        }
    }
}

static void FN(nll_backward)(const nll_loss_problem *p) {
    FN(loss_job) job;
    job.p = p;
    job.denominator = p->reduction == NLL_REDUCTION_MEAN ? FN(class_weight_total)(p) : 1.0;
    job.plan = nll_plan_blocks(p->samples, p->classes);
    nll_parallel_blocks(p->pool,
                        nll_threads_for(p->threads, p->samples * (p->classes ? p->classes : 1)),
                        &job.plan, FN(nll_backward_blocks), &job);
}

/* sum_c w q log p and sum_c w q over classes [first, first + n) of one sample (at: its
 * offsets); per block of NLL_BLOCK_WORK classes, then over blocks in order. */
static void FN(probability_sums)(const FN(loss_job) *job, const int64_t *at, int64_t first,
                                 int64_t n, NLL_A max, NLL_A log_sum, double *weighted_out,
                                 double *weighted_q_out) {
    const nll_loss_problem *p = job->p;
    const int64_t row = at[NLL_SLOT_INPUT], q_row = at[NLL_SLOT_TARGET];
    const int64_t x_class = p->class_stride[NLL_SLOT_INPUT];
    const int64_t q_class = p->class_stride[NLL_SLOT_TARGET];
    const char *x = p->input.data, *weight = p->weight.present ? p->weight.data : NULL;
    const int64_t w_stride = weight ? p->weight.strides[0] : 0;
    const int smoothing = p->label_smoothing > 0;
    const NLL_A keep = (NLL_A)(1.0 - p->label_smoothing);
    const NLL_A spread = (NLL_A)(p->label_smoothing / (double)p->classes);
    double weighted = 0, weighted_q = 0; /* sum w q log p, sum w q */
    for (int64_t c = first; c < first + n; c++) {
        NLL_A q = FN(load)(p->target.data, q_row + c * q_class);
        if (smoothing)
            q = q * keep + spread;
        NLL_A w = weight ? FN(load)(weight, c * w_stride) : 1;
        NLL_A log_p = (FN(load)(x, row + c * x_class) - max) - log_sum;
        weighted += weight ? log_p * q * w : log_p * q;
        weighted_q += weight ? w * q : q;
    }
    *weighted_out = weighted;
    *weighted_q_out = weighted_q;
}

/* The gradient of classes [first, first + n) of a sample with a probability target, given
 * scale (upstream / denominator) and sum_g = -(sum w q) * scale */
static void FN(probability_gradient)(const FN(loss_job) *job, const int64_t *at, int64_t first,
                                     int64_t n, NLL_A max, NLL_A log_sum, NLL_A scale,
                                     NLL_A sum_g) {
    const nll_loss_problem *p = job->p;
    const int64_t row = at[NLL_SLOT_INPUT], q_row = at[NLL_SLOT_TARGET];
    const int64_t x_class = p->class_stride[NLL_SLOT_INPUT];
    const int64_t q_class = p->class_stride[NLL_SLOT_TARGET];
    const int64_t g_class = p->class_stride[NLL_SLOT_GRAD];
    const char *x = p->input.data, *weight = p->weight.present ? p->weight.data : NULL;
    const int64_t w_stride = weight ? p->weight.strides[0] : 0;
    const int smoothing = p->label_smoothing > 0;
    const NLL_A keep = (NLL_A)(1.0 - p->label_smoothing);
    const NLL_A spread = (NLL_A)(p->label_smoothing / (double)p->classes);
    for (int64_t c = first; c < first + n; c++) {
        NLL_A q = FN(load)(p->target.data, q_row + c * q_class);
        if (smoothing)
            q = q * keep + spread;
        NLL_A w = weight ? FN(load)(weight, c * w_stride) : 1;
        NLL_A log_p = (FN(load)(x, row + c * x_class) - max) - log_sum;
        NLL_A g = -((weight ? w * q : q) * scale);
        FN(store)(p->grad.data, at[NLL_SLOT_GRAD] + c * g_class, g - NLL_EXP(log_p) * sum_g);
    }
}

/* What the loss and the gradient of a probability-target sample need once its sums are in:
 * writes its loss when asked and returns sum_c w q log p. */
static double FN(probability_finish)(const FN(loss_job) *job, const int64_t *at,
                                     double weighted, double weighted_q, NLL_A *scale,
                                     NLL_A *sum_g) {
    const nll_loss_problem *p = job->p;
    if (job->want_loss && p->reduction == NLL_REDUCTION_NONE)
        FN(store)(p->loss.data, at[NLL_SLOT_LOSS], (NLL_A)-weighted);
    *scale = (NLL_A)(FN(upstream)(p, at) / job->denominator);
    *sum_g = -((NLL_A)weighted_q * *scale);
    return weighted;
}

/* Cross-entropy of one sample with a probability target: returns sum_c w q log p, and writes
 * the gradient row when asked. */
static double FN(cross_entropy_probability)(const FN(loss_job) *job, const nll_iter *it) {
    const nll_loss_problem *p = job->p;
    const int64_t classes = p->classes;
    if (classes == 0) { /* -(an empty sum); the row and its gradient hold no element */
        if (job->want_loss && p->reduction == NLL_REDUCTION_NONE)
            FN(store)(p->loss.data, it->offset[NLL_SLOT_LOSS], (NLL_A)-0.0);
        return 0;
    }
    NLL_A max, log_sum, scale, sum_g;
    FN(row_stats)(p->input.data, it->offset[NLL_SLOT_INPUT], p->class_stride[NLL_SLOT_INPUT],
                  classes, &max, &log_sum);
    double weighted = 0, weighted_q = 0;
    for (int64_t start = 0; start < classes; start += NLL_BLOCK_WORK) {
        double a, b;
        FN(probability_sums)(job, it->offset, start,
                             classes - start < NLL_BLOCK_WORK ? classes - start : NLL_BLOCK_WORK,
                             max, log_sum, &a, &b);
        weighted += a;
        weighted_q += b;
    }
    FN(probability_finish)(job, it->offset, weighted, weighted_q, &scale, &sum_g);
    if (job->want_grad)
        FN(probability_gradient)(job, it->offset, 0, classes, max, log_sum, scale, sum_g);
    return weighted;
}

#ifdef NLL_FAST_FUSED
/* Whether the fused gradient keeps each row's exponentials (one exp per element), and whether
 * that takes scratch: 16-bit rows cannot hold float32 values, nor can a misaligned row. */
static int FN(keeps_exp)(const FN(loss_job) *job) {
    const nll_loss_problem *p = job->p;
    return job->want_grad && p->label_smoothing == 0 && !p->probability &&
           p->class_stride[NLL_SLOT_INPUT] == 1 && p->class_stride[NLL_SLOT_GRAD] == 1 &&
           p->classes > 0 && p->classes <= NLL_KEPT_CLASSES;
}

/* Whether kept exponentials are written to memory by streaming stores: a gradient apart from
 * the logits and far larger than the caches would otherwise be read in before being written
 * over, one more pass over memory. Its exponentials are then kept in scratch. */
#define NLL_STREAM_BYTES ((int64_t)64 << 20)

static int FN(streams_gradient)(const FN(loss_job) *job) {
    const nll_loss_problem *p = job->p;
    return FN(keeps_exp)(job) && p->grad.data != p->input.data &&
           p->samples * p->classes * (int64_t)sizeof(NLL_T) >= NLL_STREAM_BYTES;
}

static int FN(keeps_exp_in_scratch)(const FN(loss_job) *job) {
    return FN(keeps_exp)(job) &&
           (sizeof(NLL_T) != sizeof(float) || (uintptr_t)job->p->grad.data % sizeof(float) ||
            job->stream_gradient);
}
#endif

/* A sample with a class index, in three steps around its row statistics (which a long row may
 * have computed in pieces): begin reads what must be read before any output is written (the
 * gradient may replace the logits); terms forms its nll and gradient terms; finish adds its
 * -w[t] log p[t] and its smoothing term -sum_c w[c] log p[c] to the sums (reduced apart, as
 * PyTorch does, so 0/0 stays NaN) and writes its loss when asked. */
typedef struct FN(class_row) {
    int64_t t;
    int valid;  /* t is not ignore_index */
    int active; /* has a row to walk: classes, and a valid target or a gradient */
    NLL_A x_t, max, log_sum, nll;
    FN(gradient_terms) terms;
} FN(class_row);

NLL_ROW_STEP int FN(class_begin)(const FN(loss_job) *job, const int64_t *at,
                                 FN(class_row) *r) {
    const nll_loss_problem *p = job->p;
    r->t = p->load_index(p->target.data + at[NLL_SLOT_TARGET] * p->target.item_size);
    r->valid = FN(class_in_range)(p, r->t); /* everything below uses this one read */
    r->active = p->classes > 0 && (r->valid || job->want_grad); /* C = 0: all were ignored */
    r->x_t = r->active && r->valid
                 ? FN(load)(p->input.data, at[NLL_SLOT_INPUT] +
                                               r->t * p->class_stride[NLL_SLOT_INPUT])
                 : 0;
    return r->active;
}

NLL_ROW_STEP void FN(class_terms)(const FN(loss_job) *job, const int64_t *at,
                                  FN(class_row) *r) {
    const nll_loss_problem *p = job->p;
    const int smoothing = p->label_smoothing > 0;
    const NLL_A keep = (NLL_A)(1.0 - p->label_smoothing);
    const NLL_A spread = (NLL_A)(p->label_smoothing / (double)p->classes);
    NLL_A w_t = 0;
    r->nll = 0;
    if (r->valid) {
        w_t = p->weight.present ? FN(load)(p->weight.data, r->t * p->weight.strides[0]) : 1;
        NLL_A log_p_t = (r->x_t - r->max) - r->log_sum;
        r->nll = p->weight.present ? -(log_p_t * w_t) : -log_p_t;
    }
    if (!job->want_grad)
        return;
    /* ignored samples get G = 0, so their row is 0 * softmax: NaN only for a NaN row */
    NLL_A scale = r->valid ? (NLL_A)(FN(upstream)(p, at) / job->denominator) : 0;
    NLL_A g_target = -(w_t * scale);
    FN(gradient_terms) *terms = &r->terms;
    terms->max = r->max;
    terms->log_sum = r->log_sum;
    terms->sum_g = smoothing ? keep * g_target - spread * scale * job->weight_sum : g_target;
    terms->smooth_g = spread * scale;
    terms->target_g = smoothing ? keep * g_target : g_target;
    terms->target = r->valid ? r->t : -1;
    terms->smoothing = smoothing;
}

/* smooth: sum_c w[c] log p[c], computed only for a valid target with smoothing and a loss */
NLL_ROW_STEP int FN(class_wants_smooth)(const FN(loss_job) *job, const FN(class_row) *r) {
    return r->active && r->valid && job->p->label_smoothing > 0 && job->want_loss;
}

NLL_ROW_STEP void FN(class_finish)(const FN(loss_job) *job, const int64_t *at,
                                   const FN(class_row) *r, double smooth, double *nll_sum,
                                   double *smooth_sum) {
    const nll_loss_problem *p = job->p;
    NLL_A loss = 0;
    if (r->active && r->valid) {
        *nll_sum += (double)r->nll;
        loss = r->nll;
        if (FN(class_wants_smooth)(job, r)) {
            const NLL_A keep = (NLL_A)(1.0 - p->label_smoothing);
            const NLL_A spread = (NLL_A)(p->label_smoothing / (double)p->classes);
            *smooth_sum -= smooth;
            loss = keep * r->nll - spread * (NLL_A)smooth;
        }
    }
    if (job->want_loss && p->reduction == NLL_REDUCTION_NONE)
        FN(store)(p->loss.data, at[NLL_SLOT_LOSS], loss);
}

/* The gradient of classes [first, first + n) of a class-index sample, from its exponentials
 * kept (with their blocks' shifts) or from the logits. */
NLL_ROW_STEP void FN(class_gradient)(const FN(loss_job) *job, const int64_t *at,
                                     const FN(class_row) *r, int64_t first, int64_t n,
                                     const float *kept, const NLL_A *block_shift) {
    const nll_loss_problem *p = job->p;
    const int64_t item = (int64_t)sizeof(NLL_T);
    const int64_t x_class = p->class_stride[NLL_SLOT_INPUT];
    const int64_t g_class = p->class_stride[NLL_SLOT_GRAD];
    const char *weight = p->weight.present ? p->weight.data : NULL;
    const int64_t w_stride = weight ? p->weight.strides[0] : 0;
    FN(gradient_terms) terms = r->terms;
    terms.target = terms.target >= first && terms.target < first + n ? terms.target - first : -1;
#ifdef NLL_FAST_FUSED
    if (kept) {
        char *grad = p->grad.data + (at[NLL_SLOT_GRAD] + first) * item;
        const int stream = job->stream_gradient && (uintptr_t)grad % sizeof(NLL_T) == 0;
        FN(fast_row_gradient_kept)(kept + first, grad, n, block_shift + first / NLL_ROW_BLOCK,
                                   &terms, r->x_t, stream);
        return;
    }
#else
    (void)kept;
    (void)block_shift;
#endif
    FN(row_class_gradient)(p->input.data, at[NLL_SLOT_INPUT] + first * x_class, x_class,
                           p->grad.data, at[NLL_SLOT_GRAD] + first * g_class, g_class, n,
                           weight ? weight + first * w_stride * item : NULL, w_stride, &terms);
}

#ifdef NLL_FAST_FUSED
/* The gradient of a class-index sample whose exponentials belong in scratch, when its
 * allocation failed: each block's are computed again into an L1 block of stack by the
 * statistics sweep's own function (the same shift, the same values) and rescaled as
 * FN(class_gradient) rescales them, so the bits do not depend on whether the malloc succeeded.
 * A gradient that replaces the logits is the same tensor (validation), and each block is read
 * before it is written. */
static void FN(class_gradient_recomputed)(const FN(loss_job) *job, const int64_t *at,
                                          const FN(class_row) *r) {
    const nll_loss_problem *p = job->p;
    const int64_t item = (int64_t)sizeof(NLL_T);
    float kept[NLL_ROW_BLOCK];
    char *row = p->grad.data + at[NLL_SLOT_GRAD] * item;
    const int stream = job->stream_gradient && (uintptr_t)row % sizeof(NLL_T) == 0;
    for (int64_t start = 0; start < p->classes; start += NLL_ROW_BLOCK) {
        const int64_t n = p->classes - start < NLL_ROW_BLOCK ? p->classes - start : NLL_ROW_BLOCK;
        NLL_A shift;
        double sum;
        FN(block_stats)(p->input.data, at[NLL_SLOT_INPUT] + start, 1, n, kept, &shift, &sum);
        FN(gradient_terms) terms = r->terms;
        terms.target = terms.target >= start && terms.target < start + n ? terms.target - start
                                                                         : -1;
        FN(fast_row_gradient_kept)(kept, row + start * item, n, &shift, &terms, r->x_t, stream);
    }
}
#endif

/* Where a class-index sample keeps its exponentials, if it does: scratch, or its gradient row */
NLL_ROW_STEP float *FN(kept_row)(const FN(loss_job) *job, const int64_t *at, int keep_exp,
                                 float *scratch) {
    if (!keep_exp)
        return NULL;
    return scratch ? scratch
                   : (float *)(void *)(job->p->grad.data +
                                       at[NLL_SLOT_GRAD] * (int64_t)sizeof(NLL_T));
}

/* recompute_kept: keep_exp is 0 because the scratch for it could not be allocated */
static void FN(cross_entropy_class)(const FN(loss_job) *job, const nll_iter *it,
                                    int keep_exp, float *scratch, int recompute_kept,
                                    double *nll_sum, double *smooth_sum) {
    const nll_loss_problem *p = job->p;
    const int64_t *at = it->offset;
    FN(class_row) r;
    if (!FN(class_begin)(job, at, &r)) {
        FN(class_finish)(job, at, &r, 0, nll_sum, smooth_sum);
        return;
    }
    const int64_t x_class = p->class_stride[NLL_SLOT_INPUT];
    float *kept = FN(kept_row)(job, at, keep_exp, scratch);
#ifdef NLL_FAST_FUSED
    NLL_A block_shift[NLL_KEPT_BLOCKS];
#else
    NLL_A *block_shift = NULL;
#endif
    FN(row_stats_keeping)(p->input.data, at[NLL_SLOT_INPUT], x_class, p->classes, kept, &r.max,
                          &r.log_sum, kept ? block_shift : NULL);
    FN(class_terms)(job, at, &r);
    double smooth = 0;
    if (FN(class_wants_smooth)(job, &r))
        smooth = FN(row_weighted_log_p)(p->input.data, at[NLL_SLOT_INPUT], x_class, p->classes,
                                        p->weight.present ? p->weight.data : NULL,
                                        p->weight.present ? p->weight.strides[0] : 0, r.max,
                                        r.log_sum);
    FN(class_finish)(job, at, &r, smooth, nll_sum, smooth_sum);
#ifdef NLL_FAST_FUSED
    if (recompute_kept) {
        FN(class_gradient_recomputed)(job, at, &r);
        return;
    }
#else
    (void)recompute_kept;
#endif
    if (job->want_grad)
        FN(class_gradient)(job, at, &r, 0, p->classes, kept, block_shift);
}

#ifdef NLL_FAST_ROWS
/* Short rows (C <= 2 NLL_VLEN), classes contiguous, one sample axis, no label smoothing: the
 * many rows of small classifiers. NLL_VLEN rows at a time are loaded, a row in one or two
 * vectors, and transposed block by block, so that lane r holds row r: the max, the
 * exponentials, the log and the loss are then plain vector operations over classes, with no
 * horizontal step and no branch per row; the gradient is transposed back. Targets become 32-bit
 * lanes (-1 when ignored: C is small). They are only compared with the classes, never made
 * into addresses, so a target changed since validation (truncated to 32 bits, or out of range)
 * selects some class or none: unspecified results, but nothing outside the tensors is touched,
 * and no comparison more is paid here. */
#define NLL_SMALL_VECTORS 2

static int FN(small_rows_apply)(const nll_loss_problem *p) {
    return !p->probability && p->label_smoothing == 0 && p->classes > 0 &&
           p->classes <= NLL_SMALL_VECTORS * NLL_VLEN && p->samples_iter.ndim == 1 &&
           p->class_stride[NLL_SLOT_INPUT] == 1 &&
           (!p->grad.present || p->class_stride[NLL_SLOT_GRAD] == 1);
}

/* The classes [first, first + NLL_VLEN) of a row of C, 0 past its end */
static inline NLL_V FN(small_load)(const char *row, int64_t first, int64_t classes) {
    const char *at = row + first * (int64_t)sizeof(NLL_T);
    return classes - first >= NLL_VLEN ? NLL_VLOAD(at)
           : classes > first           ? NLL_VLOADN(at, classes - first, 0.0f)
                                       : NLL_VSET1(0.0f);
}

#if defined(__GNUC__)
__attribute__((always_inline))
#endif
static inline void FN(small_rows_of)(const FN(loss_job) *job, int64_t begin, int64_t stop,
                                     double *nll_sum, const int vectors /* per row */) {
    const nll_loss_problem *p = job->p;
    const int64_t classes = p->classes, item = (int64_t)sizeof(NLL_T);
    const int64_t *steps[NLL_ITER_SLOTS];
    for (int s = 0; s < NLL_ITER_SLOTS; s++)
        steps[s] = p->samples_iter.strides[s];
    const int64_t x_step = steps[NLL_SLOT_INPUT][0] * item;
    const int64_t t_step = steps[NLL_SLOT_TARGET][0] * p->target.item_size;
    const int vector_targets = p->target.dtype.code == kDLInt && p->target.dtype.bits == 64 &&
                               t_step == 8; /* contiguous int64, PyTorch's own */
    const int none = job->want_loss && p->reduction == NLL_REDUCTION_NONE;
    const NLL_V zero = NLL_VSET1(0.0f), one = NLL_VSET1(1.0f), minus_one = NLL_VSET1(-1.0f);
    float weight[NLL_SMALL_VECTORS * NLL_VLEN], lanes[NLL_VLEN];
    for (int64_t c = 0; c < classes; c++)
        weight[c] = p->weight.present ? (float)FN(load)(p->weight.data, c * p->weight.strides[0])
                                      : 1.0f;
    const NLL_V unit_scale = NLL_VSET1((NLL_A)(1.0 / job->denominator));
    NLL_VD total = NLL_VD_ZERO;
    for (int64_t group = begin; group < stop; group += NLL_VLEN) {
        const int64_t rows = stop - group < NLL_VLEN ? stop - group : NLL_VLEN;
        NLL_V v[NLL_SMALL_VECTORS * NLL_VLEN]; /* [k * NLL_VLEN + r]: vector k of row r */
        NLL_VI t;
        if (rows == NLL_VLEN && vector_targets) { /* no branch per row */
            for (int64_t r = 0; r < NLL_VLEN; r++)
                for (int k = 0; k < vectors; k++)
                    v[k * NLL_VLEN + r] = FN(small_load)(p->input.data + (group + r) * x_step,
                                                         k * NLL_VLEN, classes);
            t = NLL_VTARGETS(p->target.data + group * t_step, p->ignore_index);
        } else {
            int32_t target[NLL_VLEN];
            for (int64_t r = 0; r < NLL_VLEN; r++) {
                const int64_t i = r < rows ? p->load_index(p->target.data + (group + r) * t_step)
                                           : p->ignore_index;
                target[r] = i == p->ignore_index ? -1 : (int32_t)i;
                for (int k = 0; k < vectors; k++)
                    v[k * NLL_VLEN + r] =
                        r < rows ? FN(small_load)(p->input.data + (group + r) * x_step,
                                                  k * NLL_VLEN, classes)
                                 : zero;
            }
            t = NLL_VILOAD(target);
        }
        for (int k = 0; k < vectors; k++)
            NLL_VTRANSPOSE(v + k * NLL_VLEN); /* v[c]: class c of every row */
        NLL_V max = v[0], x_t = zero, w_t = NLL_VSELECT_EQ(t, -1, zero, one), sum = zero;
        for (int64_t c = 0; c < classes; c++) {
            max = NLL_VMAX(max, v[c]);
            x_t = NLL_VSELECT_EQ(t, (int)c, v[c], x_t);
        }
        if (p->weight.present)
            for (int64_t c = 0; c < classes; c++)
                w_t = NLL_VSELECT_EQ(t, (int)c, NLL_VSET1(weight[c]), w_t);
        for (int64_t c = 0; c < classes; c++) {
            v[c] = NLL_VEXP_SHIFTED(NLL_VSUB(v[c], max));
            sum = NLL_VADD(sum, v[c]);
        }
        /* -(log p[t] * w[t]), as PyTorch forms it; 0 for ignored rows and lanes past the last
         * row (t = -1, w_t = 0) */
        const NLL_V log_p_t = NLL_VSUB(NLL_VSUB(x_t, max), NLL_VLOG(sum));
        const NLL_V loss = NLL_VSELECT_EQ(
            t, -1, zero,
            NLL_VMUL(p->weight.present ? NLL_VMUL(log_p_t, w_t) : log_p_t, minus_one));
        NLL_VD_ADD(total, loss);
        if (none) {
            NLL_VSTOREF(lanes, loss);
            for (int64_t r = 0; r < rows; r++)
                FN(store)(p->loss.data, (group + r) * steps[NLL_SLOT_LOSS][0], lanes[r]);
        }
        if (!job->want_grad)
            continue;
        NLL_V scale = unit_scale;
        if (p->grad_loss.present) {
            int64_t at[NLL_ITER_SLOTS] = {0};
            for (int64_t r = 0; r < NLL_VLEN; r++) {
                at[NLL_SLOT_GRAD_LOSS] = (group + r) * steps[NLL_SLOT_GRAD_LOSS][0];
                lanes[r] = r < rows ? (NLL_A)(FN(upstream)(p, at) / job->denominator) : 0.0f;
            }
            scale = NLL_VLOADF(lanes);
        }
        scale = NLL_VSELECT_EQ(t, -1, zero, scale); /* ignored: 0, even where 1 / 0 is inf */
        /* softmax * -sum(G), then G's one non-zero entry added at the target */
        const NLL_V g_target = NLL_VMUL(NLL_VMUL(w_t, scale), minus_one);
        const NLL_V factor = NLL_VDIV(NLL_VMUL(g_target, minus_one), sum);
        for (int64_t c = 0; c < vectors * NLL_VLEN; c++) {
            if (c >= classes) {
                v[c] = zero;
                continue;
            }
            const NLL_V g = NLL_VMUL(v[c], factor);
            v[c] = NLL_VSELECT_EQ(t, (int)c, NLL_VADD(g, g_target), g);
        }
        for (int k = 0; k < vectors; k++) {
            NLL_VTRANSPOSE(v + k * NLL_VLEN); /* back to rows */
            const int64_t n = classes - k * NLL_VLEN < NLL_VLEN ? classes - k * NLL_VLEN
                                                                : NLL_VLEN;
            for (int64_t r = 0; r < rows; r++) {
                char *grad = p->grad.data +
                             ((group + r) * steps[NLL_SLOT_GRAD][0] + k * NLL_VLEN) * item;
                if (n == NLL_VLEN)
                    NLL_VSTORE(grad, v[k * NLL_VLEN + r]);
                else
                    NLL_VSTOREN(grad, v[k * NLL_VLEN + r], n);
            }
        }
    }
    *nll_sum += NLL_VD_SUM(total);
}

/* one instance per vectors per row, its loops unrolled */
static void FN(small_rows)(const FN(loss_job) *job, int64_t begin, int64_t stop,
                           double *nll_sum) {
    if (job->p->classes > NLL_VLEN)
        FN(small_rows_of)(job, begin, stop, nll_sum, 2);
    else
        FN(small_rows_of)(job, begin, stop, nll_sum, 1);
}
#endif

static void FN(cross_entropy_blocks)(void *arg, int64_t first, int64_t end) {
    FN(loss_job) *job = arg;
    const nll_loss_problem *p = job->p;
#ifdef NLL_FAST_ROWS
    if (FN(small_rows_apply)(p)) {
        for (int64_t b = first; b < end; b++) {
            int64_t begin, stop;
            double total = 0;
            nll_block_range(&job->plan, b, &begin, &stop);
            FN(small_rows)(job, begin, stop, &total);
            job->loss_partial[b] = total;
            job->weight_partial[b] = 0;
        }
        return;
    }
#endif
    int keep_exp = 0;       /* keep each row's exponentials for its gradient */
    float *scratch = NULL;  /* a float32 row for them, where the gradient row cannot hold them */
    int recompute_kept = 0; /* no scratch for them: each block's are computed again */
#ifdef NLL_FAST_FUSED
    keep_exp = FN(keeps_exp)(job);
    if (keep_exp && FN(keeps_exp_in_scratch)(job)) {
        scratch = malloc((size_t)p->classes * sizeof(float));
        recompute_kept = scratch == NULL; /* a second exp per element, the same bits */
        keep_exp = !recompute_kept;
    }
#endif
    for (int64_t b = first; b < end; b++) {
        int64_t begin, stop;
        nll_block_range(&job->plan, b, &begin, &stop);
        nll_iter it = p->samples_iter;
        nll_iter_seek(&it, begin);
        double total = 0, smooth = 0;
        for (int64_t i = begin; i < stop; i++, nll_iter_next(&it)) {
            if (p->probability)
                total += FN(cross_entropy_probability)(job, &it);
            else
                FN(cross_entropy_class)(job, &it, keep_exp, scratch, recompute_kept, &total,
                                       &smooth);
        }
        job->loss_partial[b] = total;
        job->weight_partial[b] = smooth;
    }
    free(scratch);
}

/* ---- long rows split across threads ---------------------------------------------------------
 * When rows are long (C >= NLL_SPLIT_CLASSES) and fewer than the threads, whole rows would
 * leave threads idle: each row is cut into chunks of NLL_BLOCK_WORK classes instead. Phase 0
 * computes the chunks' block statistics on every thread; a merge folds each row's blocks in
 * order; the next phases write the outputs chunk by chunk (a probability target's sums take
 * one more merge). Every reduction is the same per-block fold as the whole-row functions
 * above, so results are the same bits as theirs: the choice may depend on the thread count. */
#define NLL_SPLIT_CLASSES (2 * NLL_BLOCK_WORK)
#define NLL_SPLIT_SCRATCH ((int64_t)64 << 20) /* bytes of kept exponentials, at most */

typedef struct FN(split_row) {
    int64_t at[NLL_ITER_SLOTS]; /* the row's offsets */
    FN(class_row) c;            /* class index: everything; else max and log_sum */
    NLL_A scale, sum_g, sum;    /* probability target: its gradient's; log_softmax backward */
} FN(split_row);

typedef struct FN(split_job) {
    FN(loss_job) *loss;             /* cross_entropy, or */
    const FN(softmax_job) *softmax; /* log_softmax */
    int64_t classes, chunks, block, blocks; /* chunks and blocks of a row; block's size */
    int phases;
    int keep;                               /* class gradients from kept exponentials */
    float *scratch;                         /* where they are kept, when not in the gradient */
    FN(split_row) *row;
    double *block_sum, *block_a, *block_b; /* [row * blocks + block] */
    NLL_A *block_shift;
} FN(split_job);

/* Block statistics of classes [start, start + n) of row r. */
static void FN(split_stats)(FN(split_job) *s, int64_t r, const char *x, int64_t offset,
                            int64_t stride, int64_t start, int64_t n, float *kept) {
    for (int64_t c = start; c < start + n; c += s->block) {
        const int64_t b = r * s->blocks + c / s->block;
        FN(block_stats)(x, offset + c * stride, stride,
                        start + n - c < s->block ? start + n - c : s->block,
                        kept ? kept + c : NULL, &s->block_shift[b], &s->block_sum[b]);
    }
}

static void FN(split_fold)(const FN(split_job) *s, int64_t r, FN(class_row) *out) {
    NLL_A max = -INFINITY;
    double sum = 0;
    for (int64_t b = r * s->blocks; b < (r + 1) * s->blocks; b++)
        FN(fold_stats)(&max, &sum, s->block_shift[b], s->block_sum[b]);
    out->max = max;
    out->log_sum = NLL_LOG((NLL_A)sum);
}

/* sum over row r's blocks of a per-block partial, in order from 0 */
static double FN(split_sum)(const FN(split_job) *s, const double *partial, int64_t r,
                            int64_t count) {
    double sum = 0;
    for (int64_t b = r * s->blocks; b < r * s->blocks + count; b++)
        sum += partial[b];
    return sum;
}

static void FN(split_loss_chunk)(FN(split_job) *s, int phase, int64_t r, int64_t start,
                                 int64_t n) {
    const FN(loss_job) *job = s->loss;
    const nll_loss_problem *p = job->p;
    FN(split_row) *row = &s->row[r];
    const int64_t *at = row->at;
    const int64_t x_class = p->class_stride[NLL_SLOT_INPUT];
    const char *x = p->input.data;
    if (p->probability) {
        if (phase == 0)
            FN(split_stats)(s, r, x, at[NLL_SLOT_INPUT], x_class, start, n, NULL);
        else if (phase == 1) /* the chunk is one block of the sums */
            FN(probability_sums)(job, at, start, n, row->c.max, row->c.log_sum,
                                 &s->block_a[r * s->blocks + start / NLL_BLOCK_WORK],
                                 &s->block_b[r * s->blocks + start / NLL_BLOCK_WORK]);
        else
            FN(probability_gradient)(job, at, start, n, row->c.max, row->c.log_sum, row->scale,
                                     row->sum_g);
        return;
    }
    if (!row->c.active)
        return;
    float *kept = FN(kept_row)(job, at, s->keep, s->scratch ? s->scratch + r * s->classes : NULL);
    if (phase == 0) {
        FN(split_stats)(s, r, x, at[NLL_SLOT_INPUT], x_class, start, n, kept);
        return;
    }
    if (FN(class_wants_smooth)(job, &row->c)) { /* read before the gradient may replace it */
        const char *weight = p->weight.present ? p->weight.data : NULL;
        const int64_t w_stride = weight ? p->weight.strides[0] : 0;
        for (int64_t c = start; c < start + n; c += s->block)
            s->block_a[r * s->blocks + c / s->block] = FN(block_weighted_log_p)(
                x, at[NLL_SLOT_INPUT] + c * x_class, x_class,
                start + n - c < s->block ? start + n - c : s->block,
                weight ? weight + c * w_stride * (int64_t)sizeof(NLL_T) : NULL, w_stride,
                row->c.max, row->c.log_sum);
    }
    if (job->want_grad)
        FN(class_gradient)(job, at, &row->c, start, n, kept, s->block_shift + r * s->blocks);
}

static void FN(split_softmax_chunk)(FN(split_job) *s, int phase, int64_t r, int64_t start,
                                    int64_t n) {
    const nll_softmax_problem *p = s->softmax->p;
    const int64_t *at = s->row[r].at, *stride = p->class_stride;
    FN(split_row) *row = &s->row[r];
    if (!s->softmax->backward) {
        if (phase == 0)
            FN(split_stats)(s, r, p->input.data, at[NLL_SM_INPUT], stride[NLL_SM_INPUT], start,
                            n, NULL);
        else
            FN(row_shift)(p->input.data, at[NLL_SM_INPUT] + start * stride[NLL_SM_INPUT],
                          stride[NLL_SM_INPUT], p->output.data,
                          at[NLL_SM_OUTPUT] + start * stride[NLL_SM_OUTPUT],
                          stride[NLL_SM_OUTPUT], n, row->c.max, row->c.log_sum);
        return;
    }
    if (phase == 0) {
        for (int64_t c = start; c < start + n; c += s->block)
            s->block_sum[r * s->blocks + c / s->block] = FN(block_sum)(
                p->grad_output.data, at[NLL_SM_GRAD_OUTPUT] + c * stride[NLL_SM_GRAD_OUTPUT],
                stride[NLL_SM_GRAD_OUTPUT], start + n - c < s->block ? start + n - c : s->block);
        return;
    }
    FN(row_softmax_backward_apply)(
        p->output.data, at[NLL_SM_OUTPUT] + start * stride[NLL_SM_OUTPUT], stride[NLL_SM_OUTPUT],
        p->grad_output.data, at[NLL_SM_GRAD_OUTPUT] + start * stride[NLL_SM_GRAD_OUTPUT],
        stride[NLL_SM_GRAD_OUTPUT], p->grad.data, at[NLL_SM_GRAD] + start * stride[NLL_SM_GRAD],
        stride[NLL_SM_GRAD], n, row->sum);
}

static void FN(split_phase)(void *arg, int phase, int64_t first, int64_t end) {
    FN(split_job) *s = arg;
    for (int64_t i = first; i < end; i++) {
        const int64_t r = i / s->chunks, start = i % s->chunks * NLL_BLOCK_WORK;
        const int64_t n = s->classes - start < NLL_BLOCK_WORK ? s->classes - start
                                                              : NLL_BLOCK_WORK;
        if (s->softmax)
            FN(split_softmax_chunk)(s, phase, r, start, n);
        else
            FN(split_loss_chunk)(s, phase, r, start, n);
    }
}

/* The merge after a phase, row by row; after the last one, the per-row partial sums. */
static void FN(split_merge)(void *arg, int phase) {
    FN(split_job) *s = arg;
    const int64_t rows = s->softmax ? s->softmax->p->rows : s->loss->plan.count;
    for (int64_t r = 0; r < rows; r++) {
        FN(split_row) *row = &s->row[r];
        if (s->softmax) {
            if (phase > 0)
                break;
            if (!s->softmax->backward)
                FN(split_fold)(s, r, &row->c);
            else
                row->sum = (NLL_A)nll_one_nan(FN(split_sum)(s, s->block_sum, r, s->blocks));
            continue;
        }
        FN(loss_job) *job = s->loss;
        double total = 0, smooth_sum = 0;
        if (job->p->probability) {
            if (phase == 0) {
                FN(split_fold)(s, r, &row->c);
            } else if (phase == 1) {
                total += FN(probability_finish)(job, row->at,
                                                FN(split_sum)(s, s->block_a, r, s->chunks),
                                                FN(split_sum)(s, s->block_b, r, s->chunks),
                                                &row->scale, &row->sum_g);
                job->loss_partial[r] = total;
                job->weight_partial[r] = 0;
            }
            continue;
        }
        if (phase == 0 && row->c.active) {
            FN(split_fold)(s, r, &row->c);
            FN(class_terms)(job, row->at, &row->c);
        }
        if (phase < s->phases - 1)
            continue;
        FN(class_finish)(job, row->at, &row->c,
                         FN(class_wants_smooth)(job, &row->c)
                             ? FN(split_sum)(s, s->block_a, r, s->blocks)
                             : 0,
                         &total, &smooth_sum);
        job->loss_partial[r] = total;
        job->weight_partial[r] = smooth_sum;
    }
}

/* Runs rows (offsets from walk) split, when that helps: long rows, fewer than the threads.
 * Returns 0, having done nothing, when it does not apply or memory is short. loss->plan must
 * already hold one block per row. */
static int FN(split_rows)(FN(loss_job) *loss, const FN(softmax_job) *softmax, int threads,
                          const nll_iter *walk, int64_t rows, int64_t classes, int64_t stride) {
    if (classes < NLL_SPLIT_CLASSES || rows == 0 || rows >= threads)
        return 0;
    FN(split_job) s;
    memset(&s, 0, sizeof s);
    s.loss = loss;
    s.softmax = softmax;
    s.classes = classes;
    s.chunks = (classes - 1) / NLL_BLOCK_WORK + 1;
    s.block = FN(row_block)(stride);
    s.blocks = (classes - 1) / s.block + 1;
#ifdef NLL_FAST_FUSED
    if (loss && FN(keeps_exp)(loss)) {
        s.keep = 1;
        if (FN(keeps_exp_in_scratch)(loss)) {
            if (rows * classes * (int64_t)sizeof(float) > NLL_SPLIT_SCRATCH)
                return 0;
            s.scratch = malloc((size_t)(rows * classes) * sizeof(float));
            if (!s.scratch)
                return 0;
        }
    }
#endif
    /* statistics, then the outputs; a probability target's sums in between; a class index's
     * loss alone is done with the statistics */
    s.phases = 2;
    if (loss && loss->p->probability && loss->want_grad)
        s.phases = 3;
    else if (loss && !loss->p->probability && !loss->want_grad &&
             !(loss->want_loss && loss->p->label_smoothing > 0))
        s.phases = 1;
    const size_t cells = (size_t)(rows * s.blocks);
    char *memory = malloc((size_t)rows * sizeof(FN(split_row)) +
                          cells * (3 * sizeof(double) + sizeof(NLL_A)));
    if (!memory) {
        free(s.scratch);
        return 0;
    }
    s.row = (FN(split_row) *)(void *)memory;
    s.block_sum = (double *)(void *)(memory + (size_t)rows * sizeof(FN(split_row)));
    s.block_a = s.block_sum + cells;
    s.block_b = s.block_a + cells;
    s.block_shift = (NLL_A *)(void *)(s.block_b + cells);
    nll_iter it = *walk;
    for (int64_t r = 0; r < rows; r++, nll_iter_next(&it)) {
        memcpy(s.row[r].at, it.offset, sizeof it.offset);
        if (loss && !loss->p->probability)
            FN(class_begin)(loss, s.row[r].at, &s.row[r].c); /* before any write */
    }
    const nll_blocks chunks = {1, rows * s.chunks, rows * s.chunks};
    nll_parallel_phases(loss ? loss->p->pool : softmax->p->pool, threads, &chunks, s.phases,
                        FN(split_phase), FN(split_merge), &s);
    FN(split_merge)(&s, s.phases - 1);
    free(memory);
    free(s.scratch);
    return 1;
}

static void FN(cross_entropy)(const nll_loss_problem *p, int want_loss, int want_grad) {
    FN(loss_job) job;
    job.p = p;
    job.want_loss = want_loss;
    job.want_grad = want_grad;
    job.stream_gradient = 0;
#ifdef NLL_FAST_FUSED
    job.stream_gradient = FN(streams_gradient)(&job);
#endif
    job.denominator = 1.0;
    if (p->reduction == NLL_REDUCTION_MEAN) /* probabilities: numel / C, as PyTorch (0/0 = NaN) */
        job.denominator = !p->probability ? FN(class_weight_total)(p)
                          : p->classes    ? (double)p->samples
                                          : NAN;
    job.weight_sum = (NLL_A)p->classes;
    if (p->weight.present && p->label_smoothing > 0 && !p->probability) {
        job.weight_sum = 0;
        for (int64_t c = 0; c < p->classes; c++)
            job.weight_sum += FN(load)(p->weight.data, c * p->weight.strides[0]);
    }
    /* With no classes, probability targets and gradients are empty and may count more
     * samples than could ever be walked: walk only to write a per-sample loss. */
    int64_t walked = p->classes == 0 && p->probability &&
                             !(want_loss && p->reduction == NLL_REDUCTION_NONE)
                         ? 0
                         : p->samples;
    job.plan = nll_plan_blocks(walked, p->classes);
    const int threads = nll_threads_for(p->threads, walked * (p->classes ? p->classes : 1));
    if (!FN(split_rows)(&job, NULL, threads, &p->samples_iter, walked, p->classes,
                        p->class_stride[NLL_SLOT_INPUT]))
        nll_parallel_blocks(p->pool, threads, &job.plan, FN(cross_entropy_blocks), &job);
    if (want_loss && p->reduction != NLL_REDUCTION_NONE) {
        double total = FN(sum_partials)(job.loss_partial, job.plan.count);
        double divisor = p->reduction == NLL_REDUCTION_MEAN ? job.denominator : 1.0;
        double loss;
        if (p->probability) /* the loss is -(sum of w q log p): an empty batch gives -0 */
            loss = -total / divisor;
        else if (p->label_smoothing > 0)
            loss = (1.0 - p->label_smoothing) * (total / divisor) +
                   p->label_smoothing / (double)p->classes *
                       (FN(sum_partials)(job.weight_partial, job.plan.count) / divisor);
        else
            loss = total / divisor;
        FN(store_double)(p->loss.data, loss);
    }
}

static void FN(log_softmax_blocks)(void *arg, int64_t first, int64_t end) {
    const FN(softmax_job) *job = arg;
    const nll_softmax_problem *p = job->p;
    const int64_t *stride = p->class_stride;
    for (int64_t b = first; b < end; b++) {
        int64_t begin, stop;
        nll_block_range(&job->plan, b, &begin, &stop);
        nll_iter it = p->rows_iter;
        nll_iter_seek(&it, begin);
        for (int64_t r = begin; r < stop; r++, nll_iter_next(&it)) {
            const int64_t *at = it.offset;
            if (job->backward)
                FN(row_log_softmax_backward)(p->output.data, at[NLL_SM_OUTPUT],
                                             stride[NLL_SM_OUTPUT], p->grad_output.data,
                                             at[NLL_SM_GRAD_OUTPUT], stride[NLL_SM_GRAD_OUTPUT],
                                             p->grad.data, at[NLL_SM_GRAD], stride[NLL_SM_GRAD],
                                             p->classes);
            else
                FN(row_log_softmax)(p->input.data, at[NLL_SM_INPUT], stride[NLL_SM_INPUT],
                                    p->output.data, at[NLL_SM_OUTPUT], stride[NLL_SM_OUTPUT],
                                    p->classes);
        }
    }
}

/* The rows of a log_softmax: every position but the softmax axis. An empty axis has nothing
 * to write. */
static void FN(run_softmax)(const nll_softmax_problem *p, int backward) {
    if (p->classes == 0)
        return;
    FN(softmax_job) job;
    job.p = p;
    job.backward = backward;
    job.plan = nll_plan_blocks(p->rows, p->classes);
    const int threads = nll_threads_for(p->threads, p->rows * p->classes);
    const int64_t stride =
        p->class_stride[backward ? NLL_SM_GRAD_OUTPUT : NLL_SM_INPUT]; /* the one reduced */
    if (!FN(split_rows)(NULL, &job, threads, &p->rows_iter, p->rows, p->classes, stride))
        nll_parallel_blocks(p->pool, threads, &job.plan, FN(log_softmax_blocks), &job);
}

static void FN(log_softmax_forward)(const nll_softmax_problem *p) { FN(run_softmax)(p, 0); }

static void FN(log_softmax_backward)(const nll_softmax_problem *p) { FN(run_softmax)(p, 1); }

#undef FN
#undef NLL_JOIN
#undef NLL_JOIN_
#undef NLL_T
#undef NLL_A
#undef NLL_LOAD
#undef NLL_STORE
#undef NLL_STORE_DOUBLE
#undef NLL_EXP
#undef NLL_LOG
#undef NLL_SUFFIX
#undef NLL_FAST_ROWS
#undef NLL_FAST_FUSED
#undef NLL_SPLIT_CLASSES
#undef NLL_SPLIT_SCRATCH
#undef NLL_SMALL_VECTORS
#undef NLL_VLOAD
#undef NLL_VLOADN
#undef NLL_VSTORE
#undef NLL_VSTOREN
#undef NLL_VLOAD2
#undef NLL_VSTORE2
#undef NLL_PAIRS_IN_ORDER
#undef NLL_VJOIN2
