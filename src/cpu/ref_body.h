/* The scalar reference kernels: one generic body, included once per input dtype by ref.c with
 *   NLL_T             the storage type            NLL_A          the compute type
 *   NLL_LOAD(v)       NLL_T -> NLL_A              NLL_STORE(a)   NLL_A -> NLL_T
 *   NLL_STORE_DOUBLE  double -> NLL_T, rounded once (reduced results are summed in double)
 *   NLL_EXP, NLL_LOG  exp and log in NLL_A        NLL_SUFFIX     the name suffix
 * The body #undefs these parameters at its end. Every kernel assumes validated input (src/validate.c) and walks strided tensors with
 * nll_iter; offsets are in elements. */

#define NLL_JOIN_(a, b) a##_##b
#define NLL_JOIN(a, b) NLL_JOIN_(a, b)
#define FN(name) NLL_JOIN(name, NLL_SUFFIX)

static inline NLL_A FN(load)(const char *base, int64_t offset) {
    NLL_T v;
    memcpy(&v, base + offset * (int64_t)sizeof(NLL_T), sizeof v);
    return NLL_LOAD(v);
}

static inline void FN(store)(char *base, int64_t offset, NLL_A value) {
    NLL_T v = NLL_STORE(value);
    memcpy(base + offset * (int64_t)sizeof(NLL_T), &v, sizeof v);
}

static inline void FN(store_double)(char *base, double value) {
    NLL_T v = NLL_STORE_DOUBLE(value);
    memcpy(base, &v, sizeof v);
}

/* max and log(sum(exp(x - max))) of one row. A NaN never wins the max but poisons the sum, and
 * an all -inf row gives -inf - -inf = NaN: the whole row is NaN, as in PyTorch. */
static void FN(row_stats)(const char *x, int64_t offset, int64_t stride, int64_t classes,
                          NLL_A *max_out, NLL_A *log_sum_out) {
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
 * and writes its loss or its gradient row when asked. The gradient is formed the way PyTorch composes it — G, the gradient with
 * respect to log_softmax, then grad_j = G_j - softmax_j * sum(G) — so NaN and inf land where
 * they land in PyTorch. */
static void FN(cross_entropy_class)(const FN(loss_job) *job, const nll_iter *it,
                                    double *nll_sum, double *smooth_sum) {
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
    if (!valid && !job->want_grad) {
        if (job->want_loss && none)
            FN(store)(p->loss.data, it->offset[NLL_SLOT_LOSS], 0);
        return;
    }
    NLL_A max, log_sum, loss = 0, w_t = 0;
    FN(row_stats)(x, row, x_class, classes, &max, &log_sum);
    if (valid) {
        w_t = weight ? FN(load)(weight, t * w_stride) : 1;
        NLL_A log_p_t = (FN(load)(x, row + t * x_class) - max) - log_sum;
        NLL_A nll = weight ? -(log_p_t * w_t) : -log_p_t;
        *nll_sum += (double)nll;
        loss = nll;
        if (smoothing) {
            double smooth = 0; /* sum over classes of w[c] log p[c] */
            for (int64_t c = 0; c < classes; c++) {
                NLL_A log_p = (FN(load)(x, row + c * x_class) - max) - log_sum;
                smooth += weight ? FN(load)(weight, c * w_stride) * log_p : log_p;
            }
            *smooth_sum -= smooth;
            loss = keep * nll - spread * (NLL_A)smooth;
        }
    }
    if (job->want_loss && none)
        FN(store)(p->loss.data, it->offset[NLL_SLOT_LOSS], loss);
    if (job->want_grad) {
        const int64_t g_class = p->class_stride[NLL_SLOT_GRAD];
        /* ignored samples get G = 0, so their row is 0 * softmax: NaN only for a NaN row */
        NLL_A scale = valid ? (NLL_A)(FN(upstream)(p, it) / job->denominator) : 0;
        NLL_A g_target = -(w_t * scale);
        NLL_A sum_g = smoothing ? keep * g_target - spread * scale * job->weight_sum : g_target;
        for (int64_t c = 0; c < classes; c++) {
            NLL_A log_p = (FN(load)(x, row + c * x_class) - max) - log_sum;
            NLL_A g = c == t ? (smoothing ? keep * g_target : g_target) : 0;
            if (smoothing)
                g -= spread * (weight ? FN(load)(weight, c * w_stride) : 1) * scale;
            FN(store)(p->grad.data, it->offset[NLL_SLOT_GRAD] + c * g_class,
                      g - NLL_EXP(log_p) * sum_g);
        }
    }
}

static void FN(cross_entropy_blocks)(void *arg, int64_t first, int64_t end) {
    FN(loss_job) *job = arg;
    const nll_loss_problem *p = job->p;
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
                FN(cross_entropy_class)(job, &it, &total, &smooth);
        }
        job->loss_partial[b] = total;
        job->weight_partial[b] = smooth;
    }
}

static void FN(cross_entropy)(const nll_loss_problem *p, int want_loss, int want_grad) {
    FN(loss_job) job;
    job.p = p;
    job.want_loss = want_loss;
    job.want_grad = want_grad;
    job.denominator = 1.0;
    if (p->reduction == NLL_REDUCTION_MEAN)
        job.denominator = p->probability ? (double)p->samples : FN(class_weight_total)(p);
    job.weight_sum = (NLL_A)p->classes;
    if (p->weight.present && p->label_smoothing > 0 && !p->probability) {
        job.weight_sum = 0;
        for (int64_t c = 0; c < p->classes; c++)
            job.weight_sum += FN(load)(p->weight.data, c * p->weight.strides[0]);
    }
    job.plan = nll_plan_blocks(p->samples, p->classes);
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
} FN(softmax_job);

static void FN(log_softmax_forward_blocks)(void *arg, int64_t first, int64_t end) {
    const FN(softmax_job) *job = arg;
    const nll_softmax_problem *p = job->p;
    const int64_t in_class = p->class_stride[NLL_SM_INPUT];
    const int64_t out_class = p->class_stride[NLL_SM_OUTPUT];
    for (int64_t b = first; b < end; b++) {
        int64_t begin, stop;
        nll_block_range(&job->plan, b, &begin, &stop);
        nll_iter it = p->rows_iter;
        nll_iter_seek(&it, begin);
        for (int64_t r = begin; r < stop; r++, nll_iter_next(&it)) {
            NLL_A max, log_sum;
            const int64_t in = it.offset[NLL_SM_INPUT], out = it.offset[NLL_SM_OUTPUT];
            FN(row_stats)(p->input.data, in, in_class, p->classes, &max, &log_sum);
            for (int64_t c = 0; c < p->classes; c++)
                FN(store)(p->output.data, out + c * out_class,
                          (FN(load)(p->input.data, in + c * in_class) - max) - log_sum);
        }
    }
}

static void FN(log_softmax_backward_blocks)(void *arg, int64_t first, int64_t end) {
    const FN(softmax_job) *job = arg;
    const nll_softmax_problem *p = job->p;
    const int64_t y_class = p->class_stride[NLL_SM_OUTPUT];
    const int64_t g_class = p->class_stride[NLL_SM_GRAD_OUTPUT];
    const int64_t d_class = p->class_stride[NLL_SM_GRAD];
    for (int64_t b = first; b < end; b++) {
        int64_t begin, stop;
        nll_block_range(&job->plan, b, &begin, &stop);
        nll_iter it = p->rows_iter;
        nll_iter_seek(&it, begin);
        for (int64_t r = begin; r < stop; r++, nll_iter_next(&it)) {
            const int64_t y = it.offset[NLL_SM_OUTPUT], g = it.offset[NLL_SM_GRAD_OUTPUT];
            const int64_t d = it.offset[NLL_SM_GRAD];
            double sum_wide = 0;
            for (int64_t c = 0; c < p->classes; c++)
                sum_wide += FN(load)(p->grad_output.data, g + c * g_class);
            const NLL_A sum = (NLL_A)sum_wide;
            for (int64_t c = 0; c < p->classes; c++) {
                NLL_A grad_c = FN(load)(p->grad_output.data, g + c * g_class) -
                               NLL_EXP(FN(load)(p->output.data, y + c * y_class)) * sum;
                FN(store)(p->grad.data, d + c * d_class, grad_c);
            }
        }
    }
}

/* The rows of a log_softmax: every position but the softmax axis. An empty axis has nothing
 * to write (and the row count may then exceed int64). */
static void FN(run_softmax)(const nll_softmax_problem *p, nll_block_fn fn) {
    if (p->classes == 0)
        return;
    FN(softmax_job) job;
    job.p = p;
    int64_t rows = 1;
    for (int d = 0; d < p->rows_iter.ndim; d++)
        rows *= p->rows_iter.shape[d];
    job.plan = nll_plan_blocks(rows, p->classes);
    nll_parallel_blocks(p->threads, &job.plan, fn, &job);
}

static void FN(log_softmax_forward)(const nll_softmax_problem *p) {
    FN(run_softmax)(p, FN(log_softmax_forward_blocks));
}

static void FN(log_softmax_backward)(const nll_softmax_problem *p) {
    FN(run_softmax)(p, FN(log_softmax_backward_blocks));
}

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
