// nll_loss on the GPU. Forward: a thread per sample, per-block partial sums reduced in block
// order by reduce_kernel (check.cu). Backward: a warp or block per gradient row.
#include "launch.cuh"

namespace nll_cuda {

template <typename T> __global__ void nll_forward_kernel(loss_args a) {
    typedef typename elem<T>::acc A;
    __shared__ double s_double[32];
    workspace *ws = a.ws;
    if (ws->sticky.status)
        return;
    const T *x = (const T *)a.x, *w = (const T *)a.weight;
    double total = 0;
    const int64_t stride = (int64_t)gridDim.x * blockDim.x;
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < a.samples; i += stride) {
        int64_t off[NLL_ITER_SLOTS];
        walk_offsets(a.samples_walk, i, NLL_SLOT_LOSS + 1, off);
        const int64_t t = class_index(a, off[NLL_SLOT_TARGET]);
        A loss = 0;
        if (class_in_range(a, t)) {
            const A x_t = load(x + off[NLL_SLOT_INPUT] + t * a.x_class);
            /* -(x * w), as PyTorch forms it: a 0 log-probability gives -0 */
            loss = w ? -(x_t * load(w + t * a.w_stride)) : -x_t;
        }
        if (a.reduction == NLL_REDUCTION_NONE)
            store((T *)a.loss + off[NLL_SLOT_LOSS], loss);
        else
            total += (double)loss;
    }
    total = group_reduce<false>(total, add_op(), s_double);
    if (threadIdx.x == 0)
        ws->loss_partial[blockIdx.x] = total;
}

template <typename T, bool WARP>
__global__ void __launch_bounds__(kMaxRowThreads) nll_backward_kernel(loss_args a) {
    typedef typename elem<T>::acc A;
    workspace *ws = a.ws;
    if (ws->sticky.status)
        return;
    const double denominator = a.reduction == NLL_REDUCTION_MEAN ? ws->denominator : 1.0;
    const T *w = (const T *)a.weight;
    const int lane = group<WARP>::lane(), size = group<WARP>::size();
    for_each_row<WARP>(a.samples, a.samples_walk, NLL_ITER_SLOTS, [&](const int64_t *off) {
        const int64_t t = class_index(a, off[NLL_SLOT_TARGET]);
        A value = 0;
        if (class_in_range(a, t)) {
            const A scale = (A)(upstream<T>(a, off) / denominator);
            value = (w ? load(w + t * a.w_stride) : A(1)) * -scale;
        }
        T *g = (T *)a.grad + off[NLL_SLOT_GRAD];
        for (int64_t c = lane; c < a.classes; c += size)
            store(g + c * a.g_class, c == t ? value : A(0));
    });
}

template <typename T> static void run(const loss_args &a, cudaStream_t stream) {
    if (a.want_loss) {
        nll_forward_kernel<T><<<a.blocks, 256, 0, stream>>>(a);
        return;
    }
    row_shape shape = plan_rows(a.samples, a.classes);
    if (shape.warp)
        nll_backward_kernel<T, true><<<shape.blocks, shape.threads, 0, stream>>>(a);
    else
        nll_backward_kernel<T, false><<<shape.blocks, shape.threads, 0, stream>>>(a);
}

void launch_nll_loss(const loss_args &a, nll_float_kind kind, cudaStream_t stream) {
#define NLL_RUN(T) run<T>(a, stream)
    NLL_CUDA_DISPATCH(kind, NLL_RUN)
#undef NLL_RUN
}

} // namespace nll_cuda
