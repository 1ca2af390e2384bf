// cross_entropy on the GPU: forward, backward, and both fused (the gradient in place of the
// logits or into its own buffer). A warp per row for short rows, a block per row otherwise.
// Per row: one sweep for the online (max, sum of exp); a sweep for the label-smoothing or
// probability sums when there are any; one sweep that writes the gradient (the row is re-read
// while it is still in L2). The math is the CPU's (src/cpu/ref_body.h), term for term.
#include "launch.cuh"

namespace nll_cuda {

template <bool WARP> __device__ __forceinline__ void group_sync() {
    if (WARP)
        __syncwarp();
    else
        __syncthreads();
}

template <bool WARP, typename T>
__device__ __forceinline__ online<typename elem<T>::acc> row_stats(const loss_args &a, const T *x,
                                                                  online<typename elem<T>::acc> *scratch) {
    return group_reduce<WARP>(row_online<WARP>(x, a.x_class, a.classes), online_op(), scratch);
}

// One sample with a class index; returns its -w[t] log p[t] and adds its smoothing sum to
// *smooth (the two are reduced apart, as the CPU does, so 0/0 stays NaN).
template <bool WARP, typename T>
__device__ double class_row(const loss_args &a, const int64_t *off, double denominator,
                            double weight_sum, double *smooth_total,
                            online<typename elem<T>::acc> *s_online, double *s_double) {
    typedef typename elem<T>::acc A;
    const int lane = group<WARP>::lane();
    const T *x = (const T *)a.x + off[NLL_SLOT_INPUT];
    const T *w = (const T *)a.weight;
    const bool none = a.reduction == NLL_REDUCTION_NONE, smoothing = a.smoothing > 0;
    // one read for the whole group: its value steers the group's barriers
    const int64_t t = group_first<WARP>(class_index(a, off[NLL_SLOT_TARGET]));
    const bool valid = class_in_range(a, t);
    if (a.classes == 0 || (!valid && !a.want_grad)) {
        if (a.want_loss && none && lane == 0)
            store((T *)a.loss + off[NLL_SLOT_LOSS], A(0));
        return 0;
    }
    // read before anything is written: the gradient may replace the logits
    const A x_t = valid ? load(x + t * a.x_class) : A(0);
    const online<A> o = row_stats<WARP>(a, x, s_online);
    const A max = o.max, log_sum = elem<A>::log_(o.sum);
    const A keep = (A)(1.0 - a.smoothing), spread = (A)(a.smoothing / (double)a.classes);
    A w_t = 0, loss = 0, nll = 0;
    if (valid) {
        w_t = w ? load(w + t * a.w_stride) : A(1);
        const A log_p_t = (x_t - max) - log_sum;
        nll = w ? -(log_p_t * w_t) : -log_p_t;
        loss = nll;
        if (smoothing) {
            double part = 0;
            sweep_row<WARP>(x, a.x_class, (T *)nullptr, 0, a.classes, [&](int64_t c, A v) {
                A log_p = (v - max) - log_sum;
                part += w ? (double)(load(w + c * a.w_stride) * log_p) : (double)log_p;
                return v;
            });
            const double smooth = group_reduce<WARP>(part, add_op(), s_double);
            *smooth_total -= smooth;
            loss = keep * nll - spread * (A)smooth;
        }
    }
    if (a.want_loss && none && lane == 0)
        store((T *)a.loss + off[NLL_SLOT_LOSS], loss);
    if (a.want_grad) {
        // ignored samples get G = 0, so their row is 0 * softmax: NaN only for a NaN row
        const A scale = valid ? (A)(upstream<T>(a, off) / denominator) : A(0);
        const A g_target = -(w_t * scale);
        const A sum_g = smoothing ? keep * g_target - spread * scale * (A)weight_sum : g_target;
        const A smooth_g = spread * scale, target_g = smoothing ? keep * g_target : g_target;
        const int64_t target = valid ? t : -1;
        group_sync<WARP>(); // every thread has read x_t before the row is overwritten
        sweep_row<WARP>(x, a.x_class, (T *)a.grad + off[NLL_SLOT_GRAD], a.g_class, a.classes,
                        [&](int64_t c, A v) {
                            A log_p = (v - max) - log_sum;
                            A g = c == target ? target_g : A(0);
                            if (smoothing)
                                g -= smooth_g * (w ? load(w + c * a.w_stride) : A(1));
                            return g - elem<A>::exp_(log_p) * sum_g;
                        });
    }
    return (double)nll;
}

// One sample with a probability target; returns sum_c w q log p.
template <bool WARP, typename T>
__device__ double probability_row(const loss_args &a, const int64_t *off, double denominator,
                                  online<typename elem<T>::acc> *s_online, double *s_double) {
    typedef typename elem<T>::acc A;
    const int lane = group<WARP>::lane();
    const T *x = (const T *)a.x + off[NLL_SLOT_INPUT];
    const T *q_row = (const T *)a.target + off[NLL_SLOT_TARGET];
    const T *w = (const T *)a.weight;
    const bool smoothing = a.smoothing > 0;
    const A keep = (A)(1.0 - a.smoothing), spread = (A)(a.smoothing / (double)a.classes);
    if (a.classes == 0) { // -(an empty sum)
        if (a.want_loss && a.reduction == NLL_REDUCTION_NONE && lane == 0)
            store((T *)a.loss + off[NLL_SLOT_LOSS], A(-0.0));
        return 0;
    }
    const online<A> o = row_stats<WARP>(a, x, s_online);
    const A max = o.max, log_sum = elem<A>::log_(o.sum);
    double weighted = 0, weighted_q = 0; // sum w q log p, sum w q
    sweep_row<WARP>(x, a.x_class, (T *)nullptr, 0, a.classes, [&](int64_t c, A v) {
        A q = load(q_row + c * a.q_class);
        if (smoothing)
            q = q * keep + spread;
        A log_p = (v - max) - log_sum;
        if (w) {
            A wc = load(w + c * a.w_stride);
            weighted += (double)(log_p * q * wc);
            weighted_q += (double)(wc * q);
        } else {
            weighted += (double)(log_p * q);
            weighted_q += (double)q;
        }
        return v;
    });
    weighted = group_reduce<WARP>(weighted, add_op(), s_double);
    weighted_q = group_reduce<WARP>(weighted_q, add_op(), s_double);
    if (a.want_loss && a.reduction == NLL_REDUCTION_NONE && lane == 0)
        store((T *)a.loss + off[NLL_SLOT_LOSS], (A)-weighted);
    if (a.want_grad) {
        const A scale = (A)(upstream<T>(a, off) / denominator);
        const A sum_g = -((A)weighted_q * scale);
        sweep_row<WARP>(x, a.x_class, (T *)a.grad + off[NLL_SLOT_GRAD], a.g_class, a.classes,
                        [&](int64_t c, A v) {
                            A q = load(q_row + c * a.q_class);
                            if (smoothing)
                                q = q * keep + spread;
                            A log_p = (v - max) - log_sum;
                            A g = -((w ? load(w + c * a.w_stride) * q : q) * scale);
                            return g - elem<A>::exp_(log_p) * sum_g;
                        });
    }
    return weighted;
}

template <typename T, bool WARP>
__global__ void __launch_bounds__(kMaxRowThreads) cross_entropy_kernel(loss_args a) {
    typedef typename elem<T>::acc A;
    __shared__ online<A> s_online[32];
    __shared__ double s_double[32];
    __shared__ double s_rows[2][32];
    workspace *ws = a.ws;
    if (ws->sticky.status)
        return;
    const double denominator = a.reduction != NLL_REDUCTION_MEAN ? 1.0
                               : a.probability                  ? a.fixed_denominator
                                                                : ws->denominator;
    const double weight_sum = ws->weight_sum;
    const int rows = group<WARP>::rows_per_block(), r = group<WARP>::row_in_block();
    double total = 0, smooth = 0;
    for_each_row<WARP>(a.samples, a.samples_walk, NLL_ITER_SLOTS, [&](const int64_t *off) {
        if (a.probability)
            total += probability_row<WARP, T>(a, off, denominator, s_online, s_double);
        else
            total += class_row<WARP, T>(a, off, denominator, weight_sum, &smooth, s_online,
                                        s_double);
    });
    if (!a.want_loss || a.reduction == NLL_REDUCTION_NONE)
        return;
    // this block's partial sums: its rows' groups in order
    if (group<WARP>::lane() == 0) {
        s_rows[0][r] = total;
        s_rows[1][r] = smooth;
    }
    __syncthreads();
    if (threadIdx.x == 0) {
        double block_total = 0, block_smooth = 0;
        for (int k = 0; k < rows; k++) {
            block_total += s_rows[0][k];
            block_smooth += s_rows[1][k];
        }
        ws->loss_partial[blockIdx.x] = block_total;
        ws->smooth_partial[blockIdx.x] = block_smooth;
    }
}

template <typename T> static void run(const loss_args &a, cudaStream_t stream) {
    row_shape shape = plan_rows(a.samples, a.classes);
    if (shape.warp)
        cross_entropy_kernel<T, true><<<shape.blocks, shape.threads, 0, stream>>>(a);
    else
        cross_entropy_kernel<T, false><<<shape.blocks, shape.threads, 0, stream>>>(a);
}

int cross_entropy_blocks(const loss_args &a) {
    return long_rows_apply(a) ? (int)a.samples : plan_rows(a.samples, a.classes).blocks;
}

void launch_cross_entropy(const loss_args &a, nll_float_kind kind, cudaStream_t stream) {
    if (long_rows_apply(a)) {
        launch_cross_entropy_long(a, kind, stream);
        return;
    }
#define NLL_RUN(T) run<T>(a, stream)
    NLL_CUDA_DISPATCH(kind, NLL_RUN)
#undef NLL_RUN
}

} // namespace nll_cuda
