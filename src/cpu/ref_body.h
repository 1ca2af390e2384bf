/* The scalar reference kernels: one generic body, included once per input dtype by ref.c with
 *   NLL_T             the storage type            NLL_A          the compute type
 *   NLL_LOAD(v)       NLL_T -> NLL_A              NLL_STORE(a)   NLL_A -> NLL_T
 *   NLL_STORE_DOUBLE  double -> NLL_T, rounded once (reduced results are summed in double)
 *   NLL_EXP, NLL_LOG  exp and log in NLL_A        NLL_SUFFIX     the name suffix
 * Every kernel assumes validated input (src/validate.c) and walks strided tensors with
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
    NLL_A sum = 0;
    for (int64_t c = 0; c < classes; c++)
        sum += NLL_EXP(FN(load)(x, offset + c * stride) - max);
    *max_out = max;
    *log_sum_out = NLL_LOG(sum);
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

static void FN(nll_forward)(const nll_loss_problem *p) {
    nll_iter it = p->samples_iter;
    const char *x = p->input.data;
    const int64_t x_class = p->class_stride[NLL_SLOT_INPUT];
    double total = 0, weight_total = 0;
    NLL_A last_weight = 0;
    for (int64_t i = 0; i < p->samples; i++, nll_iter_next(&it)) {
        int64_t t = p->load_index(p->target.data +
                                  it.offset[NLL_SLOT_TARGET] * p->target.item_size);
        NLL_A loss = 0, w = 0;
        if (t != p->ignore_index) {
            w = p->weight.present ? FN(load)(p->weight.data, t * p->weight.strides[0]) : 1;
            /* -(x * w), as PyTorch forms it: a 0 log-probability gives -0 */
            loss = p->weight.present ? -(FN(load)(x, it.offset[NLL_SLOT_INPUT] + t * x_class) * w)
                                     : -FN(load)(x, it.offset[NLL_SLOT_INPUT] + t * x_class);
            weight_total += (double)w;
        }
        last_weight = w;
        if (p->reduction == NLL_REDUCTION_NONE)
            FN(store)(p->loss.data, it.offset[NLL_SLOT_LOSS], loss);
        else
            total += (double)loss;
    }
    if (p->reduction != NLL_REDUCTION_NONE)
        FN(store_double)(p->loss.data,
                         p->reduction == NLL_REDUCTION_MEAN ? total / weight_total : total);
    if (p->total_weight.present) {
        /* PyTorch leaves it 0 for NONE, except the 1-D input's scalar path gives w[t] */
        double reported = p->reduction != NLL_REDUCTION_NONE ? weight_total
                          : p->input.ndim == 1           ? (double)last_weight
                                                         : 0.0;
        FN(store_double)(p->total_weight.data, reported);
    }
}

static void FN(nll_backward)(const nll_loss_problem *p) {
    const int64_t g_class = p->class_stride[NLL_SLOT_GRAD];
    nll_iter it = p->samples_iter;
    for (int64_t i = 0; i < p->samples; i++, nll_iter_next(&it))
        for (int64_t c = 0; c < p->classes; c++)
            FN(store)(p->grad.data, it.offset[NLL_SLOT_GRAD] + c * g_class, 0);

    double denominator = p->reduction == NLL_REDUCTION_MEAN ? FN(class_weight_total)(p) : 1.0;
    it = p->samples_iter;
    for (int64_t i = 0; i < p->samples; i++, nll_iter_next(&it)) {
        int64_t t = p->load_index(p->target.data +
                                  it.offset[NLL_SLOT_TARGET] * p->target.item_size);
        if (t == p->ignore_index)
            continue;
        NLL_A scale = (NLL_A)(FN(upstream)(p, &it) / denominator);
        NLL_A w = p->weight.present ? FN(load)(p->weight.data, t * p->weight.strides[0]) : 1;
        FN(store)(p->grad.data, it.offset[NLL_SLOT_GRAD] + t * g_class, w * -scale);
    }
}

/* Cross-entropy over logits, forward and/or backward in one walk. The gradient is formed the
 * way PyTorch composes it — the gradient G with respect to log_softmax, then
 * grad_j = G_j - softmax_j * sum(G) — so NaN and inf land where they land in PyTorch. */
static void FN(cross_entropy)(const nll_loss_problem *p, int want_loss, int want_grad) {
    const int64_t classes = p->classes;
    const char *x = p->input.data;
    const int64_t x_class = p->class_stride[NLL_SLOT_INPUT];
    const int64_t g_class = p->class_stride[NLL_SLOT_GRAD];
    const int64_t q_class = p->class_stride[NLL_SLOT_TARGET];
    const char *weight = p->weight.present ? p->weight.data : NULL;
    const int64_t w_stride = p->weight.present ? p->weight.strides[0] : 0;
    const int smoothing = p->label_smoothing > 0;
    const NLL_A keep = (NLL_A)(1.0 - p->label_smoothing);
    const NLL_A spread = (NLL_A)(p->label_smoothing / (double)classes);
    const int none = p->reduction == NLL_REDUCTION_NONE;

    double denominator = 1.0;
    if (p->reduction == NLL_REDUCTION_MEAN)
        denominator = p->probability ? (double)p->samples : FN(class_weight_total)(p);
    NLL_A weight_sum = (NLL_A)classes; /* sum over all classes of w[c] */
    if (weight && smoothing && !p->probability) {
        weight_sum = 0;
        for (int64_t c = 0; c < classes; c++)
            weight_sum += FN(load)(weight, c * w_stride);
    }

    nll_iter it = p->samples_iter;
    double total = 0;
    for (int64_t i = 0; i < p->samples; i++, nll_iter_next(&it)) {
        const int64_t row = it.offset[NLL_SLOT_INPUT];
        NLL_A max, log_sum, loss = 0;
        if (p->probability) {
            const int64_t q_row = it.offset[NLL_SLOT_TARGET];
            FN(row_stats)(x, row, x_class, classes, &max, &log_sum);
            NLL_A weighted = 0, weighted_q = 0; /* sum w q log p, sum w q */
            for (int64_t c = 0; c < classes; c++) {
                NLL_A q = FN(load)(p->target.data, q_row + c * q_class);
                if (smoothing)
                    q = q * keep + spread;
                NLL_A w = weight ? FN(load)(weight, c * w_stride) : 1;
                NLL_A log_p = (FN(load)(x, row + c * x_class) - max) - log_sum;
                weighted += weight ? log_p * q * w : log_p * q;
                weighted_q += weight ? w * q : q;
            }
            loss = -weighted;
            if (want_loss) {
                if (none)
                    FN(store)(p->loss.data, it.offset[NLL_SLOT_LOSS], loss);
                else
                    total += (double)weighted;
            }
            if (!want_grad)
                continue;
            NLL_A scale = (NLL_A)(FN(upstream)(p, &it) / denominator);
            NLL_A sum_g = -(weighted_q * scale);
            for (int64_t c = 0; c < classes; c++) {
                NLL_A q = FN(load)(p->target.data, q_row + c * q_class);
                if (smoothing)
                    q = q * keep + spread;
                NLL_A w = weight ? FN(load)(weight, c * w_stride) : 1;
                NLL_A log_p = (FN(load)(x, row + c * x_class) - max) - log_sum;
                NLL_A g = -((weight ? w * q : q) * scale);
                FN(store)(p->grad.data, it.offset[NLL_SLOT_GRAD] + c * g_class,
                          g - NLL_EXP(log_p) * sum_g);
            }
            continue;
        }

        int64_t t = p->load_index(p->target.data +
                                  it.offset[NLL_SLOT_TARGET] * p->target.item_size);
        const int valid = t != p->ignore_index;
        if (!valid && !want_grad) {
            if (want_loss && none)
                FN(store)(p->loss.data, it.offset[NLL_SLOT_LOSS], 0);
            continue;
        }
        FN(row_stats)(x, row, x_class, classes, &max, &log_sum);
        NLL_A w_t = 0;
        if (valid) {
            w_t = weight ? FN(load)(weight, t * w_stride) : 1;
            NLL_A log_p_t = (FN(load)(x, row + t * x_class) - max) - log_sum;
            loss = weight ? -(log_p_t * w_t) : -log_p_t;
            if (smoothing) {
                NLL_A smooth = 0; /* sum over classes of w[c] log p[c] */
                for (int64_t c = 0; c < classes; c++) {
                    NLL_A log_p = (FN(load)(x, row + c * x_class) - max) - log_sum;
                    smooth += weight ? FN(load)(weight, c * w_stride) * log_p : log_p;
                }
                loss = keep * loss - spread * smooth;
            }
        }
        if (want_loss) {
            if (none)
                FN(store)(p->loss.data, it.offset[NLL_SLOT_LOSS], loss);
            else
                total += (double)loss;
        }
        if (!want_grad)
            continue;
        /* ignored samples get G = 0, so their row is 0 * softmax: NaN only for a NaN row */
        NLL_A scale = valid ? (NLL_A)(FN(upstream)(p, &it) / denominator) : 0;
        NLL_A g_target = -(w_t * scale);
        NLL_A sum_g = smoothing ? keep * g_target - spread * scale * weight_sum : g_target;
        for (int64_t c = 0; c < classes; c++) {
            NLL_A log_p = (FN(load)(x, row + c * x_class) - max) - log_sum;
            NLL_A g = c == t ? (smoothing ? keep * g_target : g_target) : 0;
            if (smoothing)
                g -= spread * (weight ? FN(load)(weight, c * w_stride) : 1) * scale;
            FN(store)(p->grad.data, it.offset[NLL_SLOT_GRAD] + c * g_class,
                      g - NLL_EXP(log_p) * sum_g);
        }
    }
    if (want_loss && !none) {
        if (p->probability) /* -(sum): an empty batch gives -0, as PyTorch */
            total = -total;
        FN(store_double)(p->loss.data,
                         p->reduction == NLL_REDUCTION_MEAN ? total / denominator : total);
    }
}

static int64_t FN(row_count)(const nll_iter *it) {
    int64_t rows = 1;
    for (int d = 0; d < it->ndim; d++)
        rows *= it->shape[d];
    return rows;
}

static void FN(log_softmax_forward)(const nll_softmax_problem *p) {
    if (p->classes == 0)
        return;
    nll_iter it = p->rows_iter;
    const int64_t in_class = p->class_stride[NLL_SM_INPUT];
    const int64_t out_class = p->class_stride[NLL_SM_OUTPUT];
    const int64_t rows = FN(row_count)(&it);
    for (int64_t r = 0; r < rows; r++, nll_iter_next(&it)) {
        NLL_A max, log_sum;
        const int64_t in = it.offset[NLL_SM_INPUT], out = it.offset[NLL_SM_OUTPUT];
        FN(row_stats)(p->input.data, in, in_class, p->classes, &max, &log_sum);
        for (int64_t c = 0; c < p->classes; c++)
            FN(store)(p->output.data, out + c * out_class,
                      (FN(load)(p->input.data, in + c * in_class) - max) - log_sum);
    }
}

static void FN(log_softmax_backward)(const nll_softmax_problem *p) {
    if (p->classes == 0)
        return;
    nll_iter it = p->rows_iter;
    const int64_t y_class = p->class_stride[NLL_SM_OUTPUT];
    const int64_t g_class = p->class_stride[NLL_SM_GRAD_OUTPUT];
    const int64_t d_class = p->class_stride[NLL_SM_GRAD];
    const int64_t rows = FN(row_count)(&it);
    for (int64_t r = 0; r < rows; r++, nll_iter_next(&it)) {
        const int64_t y = it.offset[NLL_SM_OUTPUT], g = it.offset[NLL_SM_GRAD_OUTPUT];
        const int64_t d = it.offset[NLL_SM_GRAD];
        NLL_A sum = 0;
        for (int64_t c = 0; c < p->classes; c++)
            sum += FN(load)(p->grad_output.data, g + c * g_class);
        for (int64_t c = 0; c < p->classes; c++) {
            NLL_A grad_c = FN(load)(p->grad_output.data, g + c * g_class) -
                           NLL_EXP(FN(load)(p->output.data, y + c * y_class)) * sum;
            FN(store)(p->grad.data, d + c * d_class, grad_c);
        }
    }
}

#undef FN
#undef NLL_JOIN
#undef NLL_JOIN_
