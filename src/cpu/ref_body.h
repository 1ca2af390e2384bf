/* The kernels of every op: one generic body, included once per input dtype after dtype.h
 * (which defines NLL_T, NLL_A, FN and the element helpers). The body #undefs those parameters
 * at its end. Every kernel assumes validated input (src/validate.c) and walks strided tensors
 * with nll_iter; offsets are in elements. */

/* Row primitives. A translation unit with vector kernels defines NLL_FAST_ROWS and the
 * FN(fast_*) functions (src/cpu/simd_rows.h) before including this body: rows whose elements
 * are contiguous take them; every other layout takes the scalar loops here. */

/* max and log(sum(exp(x - max))) of one row. A NaN never wins the max but poisons the sum, and
 * an all -inf row gives -inf - -inf = NaN: the whole row is NaN, as in PyTorch. */
static void FN(row_stats)(const char *x, int64_t offset, int64_t stride, int64_t classes,
                          NLL_A *max_out, NLL_A *log_sum_out) {
#ifdef NLL_FAST_ROWS
    if (stride == 1) {
        FN(fast_row_stats)(x + offset * (int64_t)sizeof(NLL_T), classes, max_out, log_sum_out);
        return;
    }
#endif
    NLL_A max = -INFINITY;
    for (int64_t c = 0; c < classes; c++) {
        NLL_A v = FN(load)(x, offset + c * stride);
        if (v > max)
            max = v;
    }
    double sum = 0; /* wide, so long rows (large vocabularies) keep float32 accuracy */
    for (int64_t c = 0; c < classes; c++)
        sum += NLL_EXP(FN(load)(x, offset + c * stride) - max);
    *max_out = max;
    *log_sum_out = NLL_LOG((NLL_A)sum);
}

/* sum over classes of w[c] * log p[c] (w = 1 without weight): label smoothing's term */
static double FN(row_weighted_log_p)(const char *x, int64_t offset, int64_t stride,
                                     int64_t classes, const char *weight, int64_t w_stride,
                                     NLL_A max, NLL_A log_sum) {
#ifdef NLL_FAST_ROWS
    if (stride == 1 && (!weight || w_stride == 1))
        return FN(fast_row_weighted_log_p)(x + offset * (int64_t)sizeof(NLL_T), weight, classes,
                                           max, log_sum);
#endif
    double sum = 0;
    for (int64_t c = 0; c < classes; c++) {
        NLL_A log_p = (FN(load)(x, offset + c * stride) - max) - log_sum;
        sum += weight ? FN(load)(weight, c * w_stride) * log_p : log_p;
    }
    return sum;
}

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

static void FN(row_log_softmax)(const char *x, int64_t offset, int64_t stride, char *out,
                                int64_t o_offset, int64_t o_stride, int64_t classes) {
    NLL_A max, log_sum;
    FN(row_stats)(x, offset, stride, classes, &max, &log_sum);
#ifdef NLL_FAST_ROWS
    if (stride == 1 && o_stride == 1) {
        FN(fast_row_shift)(x + offset * (int64_t)sizeof(NLL_T),
                           out + o_offset * (int64_t)sizeof(NLL_T), classes, max, log_sum);
        return;
    }
#endif
    for (int64_t c = 0; c < classes; c++)
        FN(store)(out, o_offset + c * o_stride,
                  (FN(load)(x, offset + c * stride) - max) - log_sum);
}

/* grad_input = grad_output - exp(output) * sum(grad_output) along one row */
static void FN(row_log_softmax_backward)(const char *y, int64_t y_offset, int64_t y_stride,
                                         const char *g, int64_t g_offset, int64_t g_stride,
                                         char *d, int64_t d_offset, int64_t d_stride,
                                         int64_t classes) {
#ifdef NLL_FAST_ROWS
    if (y_stride == 1 && g_stride == 1 && d_stride == 1) {
        FN(fast_row_log_softmax_backward)(y + y_offset * (int64_t)sizeof(NLL_T),
                                          g + g_offset * (int64_t)sizeof(NLL_T),
                                          d + d_offset * (int64_t)sizeof(NLL_T), classes);
        return;
    }
#endif
    double sum_wide = 0;
    for (int64_t c = 0; c < classes; c++)
        sum_wide += FN(load)(g, g_offset + c * g_stride);
    const NLL_A sum = (NLL_A)sum_wide;
    for (int64_t c = 0; c < classes; c++)
        FN(store)(d, d_offset + c * d_stride,
                  FN(load)(g, g_offset + c * g_stride) -
                      NLL_EXP(FN(load)(y, y_offset + c * y_stride)) * sum);
}

/* Sum of w[t] over non-ignored samples (their count without weight): the MEAN denominator. */
static double FN(class_weight_total)(const nll_loss_problem *p) {
    nll_iter it = p->samples_iter;
    double total = 0;
    for (int64_t i = 0; i < p->samples; i++, nll_iter_next(&it)) {
        int64_t t = p->load_index(p->target.data +
                                  it.offset[NLL_SLOT_TARGET] * p->target.item_size);
        if (t == p->ignore_index)
            continue;
        total += p->weight.present ? (double)FN(load)(p->weight.data, t * p->weight.strides[0])
                                   : 1.0;
    }
    return total;
}

static double FN(upstream)(const nll_loss_problem *p, const nll_iter *it) {
    if (!p->grad_loss.present)
        return 1.0;
    return (double)FN(load)(p->grad_loss.data, it->offset[NLL_SLOT_GRAD_LOSS]);
}

/* One call's shared state; each block writes only its own partial sums. */
typedef struct FN(loss_job) {
    const nll_loss_problem *p;
    nll_blocks plan;
    int want_loss, want_grad;
    double denominator; /* MEAN: sum of w[t] (class indices) or the sample count */
    NLL_A weight_sum;   /* sum over all classes of w[c] */
    double loss_partial[NLL_MAX_BLOCKS];   /* nll terms (or sum w q log p) */
    double weight_partial[NLL_MAX_BLOCKS]; /* nll_loss: W; cross_entropy: smoothing terms */
} FN(loss_job);

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
            if (t != p->ignore_index) {
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
    nll_parallel_blocks(p->threads, &job.plan, FN(nll_forward_blocks), &job);
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
            if (t == p->ignore_index)
                continue;
            NLL_A scale = (NLL_A)(FN(upstream)(p, &it) / job->denominator);
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
    nll_parallel_blocks(p->threads, &job.plan, FN(nll_backward_blocks), &job);
}

/* Cross-entropy of one sample with a probability target: returns sum_c w q log p, and writes
 * the gradient row when asked. */
static double FN(cross_entropy_probability)(const FN(loss_job) *job, const nll_iter *it) {
    const nll_loss_problem *p = job->p;
    const int64_t classes = p->classes, row = it->offset[NLL_SLOT_INPUT];
    const int64_t q_row = it->offset[NLL_SLOT_TARGET];
    const int64_t x_class = p->class_stride[NLL_SLOT_INPUT];
    const int64_t q_class = p->class_stride[NLL_SLOT_TARGET];
    const char *x = p->input.data, *weight = p->weight.present ? p->weight.data : NULL;
    const int64_t w_stride = weight ? p->weight.strides[0] : 0;
    const int smoothing = p->label_smoothing > 0;
    const NLL_A keep = (NLL_A)(1.0 - p->label_smoothing);
    const NLL_A spread = (NLL_A)(p->label_smoothing / (double)classes);
    if (classes == 0) { /* -(an empty sum); the row and its gradient hold no element */
        if (job->want_loss && p->reduction == NLL_REDUCTION_NONE)
            FN(store)(p->loss.data, it->offset[NLL_SLOT_LOSS], (NLL_A)-0.0);
        return 0;
    }
    NLL_A max, log_sum;
    FN(row_stats)(x, row, x_class, classes, &max, &log_sum);
    double weighted = 0, weighted_q = 0; /* sum w q log p, sum w q */
    for (int64_t c = 0; c < classes; c++) {
        NLL_A q = FN(load)(p->target.data, q_row + c * q_class);
        if (smoothing)
            q = q * keep + spread;
        NLL_A w = weight ? FN(load)(weight, c * w_stride) : 1;
        NLL_A log_p = (FN(load)(x, row + c * x_class) - max) - log_sum;
        weighted += weight ? log_p * q * w : log_p * q;
        weighted_q += weight ? w * q : q;
    }
    if (job->want_loss && p->reduction == NLL_REDUCTION_NONE)
        FN(store)(p->loss.data, it->offset[NLL_SLOT_LOSS], (NLL_A)-weighted);
    if (job->want_grad) {
        const int64_t g_class = p->class_stride[NLL_SLOT_GRAD];
        NLL_A scale = (NLL_A)(FN(upstream)(p, it) / job->denominator);
        NLL_A sum_g = -((NLL_A)weighted_q * scale);
        for (int64_t c = 0; c < classes; c++) {
            NLL_A q = FN(load)(p->target.data, q_row + c * q_class);
            if (smoothing)
                q = q * keep + spread;
            NLL_A w = weight ? FN(load)(weight, c * w_stride) : 1;
            NLL_A log_p = (FN(load)(x, row + c * x_class) - max) - log_sum;
            NLL_A g = -((weight ? w * q : q) * scale);
            FN(store)(p->grad.data, it->offset[NLL_SLOT_GRAD] + c * g_class,
                      g - NLL_EXP(log_p) * sum_g);
        }
    }
    return (double)weighted;
}

/* Cross-entropy of one sample with a class index: adds its -w[t] log p[t] and its smoothing
 * term -sum_c w[c] log p[c] to the sums (reduced apart, as PyTorch does, so 0/0 stays NaN),
 * and writes its loss or its gradient row when asked. */
#ifdef NLL_FAST_FUSED
/* Whether the fused gradient keeps each row's exponentials (one exp per element), and whether
 * that takes scratch: 16-bit rows cannot hold float32 values, nor can a misaligned row. */
static int FN(keeps_exp)(const FN(loss_job) *job) {
    const nll_loss_problem *p = job->p;
    return job->want_grad && p->label_smoothing == 0 && !p->probability &&
           p->class_stride[NLL_SLOT_INPUT] == 1 && p->class_stride[NLL_SLOT_GRAD] == 1 &&
           p->classes > 0 && p->classes <= NLL_KEPT_CLASSES;
}

static int FN(keeps_exp_in_scratch)(const FN(loss_job) *job) {
    return FN(keeps_exp)(job) &&
           (sizeof(NLL_T) != sizeof(float) || (uintptr_t)job->p->grad.data % sizeof(float));
}
#endif

static void FN(cross_entropy_class)(const FN(loss_job) *job, const nll_iter *it,
                                    int keep_exp, float *scratch, double *nll_sum,
                                    double *smooth_sum) {
    const nll_loss_problem *p = job->p;
    const int64_t classes = p->classes, row = it->offset[NLL_SLOT_INPUT];
    const int64_t x_class = p->class_stride[NLL_SLOT_INPUT];
    const char *x = p->input.data, *weight = p->weight.present ? p->weight.data : NULL;
    const int64_t w_stride = weight ? p->weight.strides[0] : 0;
    const int smoothing = p->label_smoothing > 0;
    const NLL_A keep = (NLL_A)(1.0 - p->label_smoothing);
    const NLL_A spread = (NLL_A)(p->label_smoothing / (double)classes);
    const int none = p->reduction == NLL_REDUCTION_NONE;

    int64_t t = p->load_index(p->target.data + it->offset[NLL_SLOT_TARGET] * p->target.item_size);
    const int valid = t != p->ignore_index;
    if (classes == 0 || (!valid && !job->want_grad)) { /* C = 0: every target was ignored */
        if (job->want_loss && none)
            FN(store)(p->loss.data, it->offset[NLL_SLOT_LOSS], 0);
        return;
    }
    /* read before anything is written: the gradient may replace the logits */
    const NLL_A x_t = valid ? FN(load)(x, row + t * x_class) : 0;
    NLL_A max, log_sum, loss = 0, w_t = 0;
    float *kept = NULL; /* where exp(x - its block's max) was kept, if it was */
#ifdef NLL_FAST_FUSED
    float block_max[NLL_KEPT_BLOCKS];
    char *grad_row = p->grad.present
                         ? p->grad.data + it->offset[NLL_SLOT_GRAD] * (int64_t)sizeof(NLL_T)
                         : NULL;
    if (keep_exp) {
        kept = scratch ? scratch : (float *)(void *)grad_row;
        FN(fast_row_stats_keeping)(x + row * (int64_t)sizeof(NLL_T), kept, classes, &max,
                                   &log_sum, block_max);
    }
#else
    (void)keep_exp;
    (void)scratch;
#endif
    if (!kept)
        FN(row_stats)(x, row, x_class, classes, &max, &log_sum);
    if (valid) {
        w_t = weight ? FN(load)(weight, t * w_stride) : 1;
        NLL_A log_p_t = (x_t - max) - log_sum;
        NLL_A nll = weight ? -(log_p_t * w_t) : -log_p_t;
        *nll_sum += (double)nll;
        loss = nll;
        if (smoothing) {
            double smooth = FN(row_weighted_log_p)(x, row, x_class, classes, weight, w_stride,
                                                   max, log_sum);
            *smooth_sum -= smooth;
            loss = keep * nll - spread * (NLL_A)smooth;
        }
    }
    if (job->want_loss && none)
        FN(store)(p->loss.data, it->offset[NLL_SLOT_LOSS], loss);
    if (job->want_grad) {
        /* ignored samples get G = 0, so their row is 0 * softmax: NaN only for a NaN row */
        NLL_A scale = valid ? (NLL_A)(FN(upstream)(p, it) / job->denominator) : 0;
        NLL_A g_target = -(w_t * scale);
        FN(gradient_terms) terms;
        terms.max = max;
        terms.log_sum = log_sum;
        terms.sum_g = smoothing ? keep * g_target - spread * scale * job->weight_sum : g_target;
        terms.smooth_g = spread * scale;
        terms.target_g = smoothing ? keep * g_target : g_target;
        terms.target = valid ? t : -1;
        terms.smoothing = smoothing;
#ifdef NLL_FAST_FUSED
        if (kept) {
            FN(fast_row_gradient_kept)(kept, grad_row, classes, block_max, &terms, x_t);
            return;
        }
#endif
        FN(row_class_gradient)(x, row, x_class, p->grad.data, it->offset[NLL_SLOT_GRAD],
                               p->class_stride[NLL_SLOT_GRAD], classes, weight, w_stride,
                               &terms);
    }
}

#ifdef NLL_FAST_ROWS
/* Rows of at most one vector (C <= NLL_VLEN), classes contiguous, one sample axis, no label
 * smoothing: one masked load per row and no per-element loop, for the many short rows of
 * small classifiers. */
static int FN(small_rows_apply)(const nll_loss_problem *p) {
    return !p->probability && p->label_smoothing == 0 && p->classes > 0 &&
           p->classes <= NLL_VLEN && p->samples_iter.ndim == 1 &&
           p->class_stride[NLL_SLOT_INPUT] == 1 &&
           (!p->grad.present || p->class_stride[NLL_SLOT_GRAD] == 1);
}

static void FN(small_rows)(const FN(loss_job) *job, int64_t begin, int64_t stop,
                           double *nll_sum) {
    const nll_loss_problem *p = job->p;
    const int64_t classes = p->classes, item = (int64_t)sizeof(NLL_T);
    const nll_iter *walk = &p->samples_iter;
    const int64_t x_step = walk->strides[NLL_SLOT_INPUT][0] * item;
    const int64_t t_step = walk->strides[NLL_SLOT_TARGET][0] * p->target.item_size;
    const int none = p->reduction == NLL_REDUCTION_NONE;
    /* NLL_VLEN rows at a time, so their logs take one vector log */
    NLL_V exps[NLL_VLEN];
    float maxes[NLL_VLEN], sums[NLL_VLEN], log_sums[NLL_VLEN];
    for (int64_t group = begin; group < stop; group += NLL_VLEN) {
        const int64_t rows = stop - group < NLL_VLEN ? stop - group : NLL_VLEN;
        for (int64_t r = 0; r < NLL_VLEN; r++) {
            if (r >= rows) {
                sums[r] = 1.0f;
                continue;
            }
            const NLL_V v = NLL_VLOADN(p->input.data + (group + r) * x_step, classes, -INFINITY);
            maxes[r] = NLL_VHMAX(v);
            exps[r] = NLL_VEXP(NLL_VSUB(v, NLL_VSET1(maxes[r]))); /* 0 in unused lanes */
            sums[r] = NLL_VHSUM(exps[r]);
        }
        NLL_VSTOREF(log_sums, NLL_VLOG(NLL_VLOADF(sums)));
        for (int64_t r = 0; r < rows; r++) {
            const int64_t i = group + r;
            const char *x = p->input.data + i * x_step;
            const int64_t t = p->load_index(p->target.data + i * t_step);
            const int valid = t != p->ignore_index;
            NLL_A w_t = 0, loss = 0;
            if (valid) {
                w_t = p->weight.present ? FN(load)(p->weight.data, t * p->weight.strides[0]) : 1;
                NLL_A log_p_t = (FN(load)(x, t) - maxes[r]) - log_sums[r];
                loss = p->weight.present ? -(log_p_t * w_t) : -log_p_t;
                *nll_sum += (double)loss;
            }
            if (job->want_loss && none)
                FN(store)(p->loss.data, i * walk->strides[NLL_SLOT_LOSS][0], loss);
            if (!job->want_grad)
                continue;
            NLL_A scale = 0;
            if (valid)
                scale = (NLL_A)((p->grad_loss.present
                                     ? (double)FN(load)(p->grad_loss.data,
                                                        i * walk->strides[NLL_SLOT_GRAD_LOSS][0])
                                     : 1.0) /
                                job->denominator);
            const NLL_A g_target = -(w_t * scale);
            /* softmax * -sum(G), then G's one non-zero entry added at the target */
            float lanes[NLL_VLEN];
            NLL_VSTOREF(lanes, NLL_VMUL(exps[r], NLL_VSET1(-g_target / sums[r])));
            if (valid)
                lanes[t] += g_target;
            char *grad = p->grad.data + i * walk->strides[NLL_SLOT_GRAD][0] * item;
            NLL_VSTOREN(grad, NLL_VLOADF(lanes), classes);
        }
    }
}
#endif

static void FN(cross_entropy_blocks)(void *arg, int64_t first, int64_t end) {
    FN(loss_job) *job = arg;
    const nll_loss_problem *p = job->p;
    int keep_exp = 0;      /* keep each row's exponentials for its gradient */
    float *scratch = NULL; /* a float32 row for them, where the gradient row cannot hold them */
#ifdef NLL_FAST_FUSED
    keep_exp = FN(keeps_exp)(job);
    if (keep_exp && FN(keeps_exp_in_scratch)(job)) {
        scratch = malloc((size_t)p->classes * sizeof(float));
        keep_exp = scratch != NULL; /* without it, only the second exp per element is paid */
    }
#endif
    for (int64_t b = first; b < end; b++) {
        int64_t begin, stop;
        nll_block_range(&job->plan, b, &begin, &stop);
        nll_iter it = p->samples_iter;
        nll_iter_seek(&it, begin);
        double total = 0, smooth = 0;
#ifdef NLL_FAST_ROWS
        if (FN(small_rows_apply)(p)) {
            FN(small_rows)(job, begin, stop, &total);
            job->loss_partial[b] = total;
            job->weight_partial[b] = 0;
            continue;
        }
#endif
        for (int64_t i = begin; i < stop; i++, nll_iter_next(&it)) {
            if (p->probability)
                total += FN(cross_entropy_probability)(job, &it);
            else
                FN(cross_entropy_class)(job, &it, keep_exp, scratch, &total, &smooth);
        }
        job->loss_partial[b] = total;
        job->weight_partial[b] = smooth;
    }
    free(scratch);
}

static void FN(cross_entropy)(const nll_loss_problem *p, int want_loss, int want_grad) {
    FN(loss_job) job;
    job.p = p;
    job.want_loss = want_loss;
    job.want_grad = want_grad;
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
    nll_parallel_blocks(p->threads, &job.plan, FN(cross_entropy_blocks), &job);
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

typedef struct FN(softmax_job) {
    const nll_softmax_problem *p;
    nll_blocks plan;
    int backward;
} FN(softmax_job);

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
    nll_parallel_blocks(p->threads, &job.plan, FN(log_softmax_blocks), &job);
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
#undef NLL_VLOAD
#undef NLL_VLOADN
#undef NLL_VSTORE
#undef NLL_VSTOREN
