// log_softmax along any dimension on the GPU, forward and backward: a warp per row for short
// rows, a block per row otherwise, as the CPU computes each row (src/cpu/ref_body.h).
#include "launch.cuh"

namespace nll_cuda {

template <typename T, bool WARP>
__global__ void __launch_bounds__(kMaxRowThreads) log_softmax_forward_kernel(softmax_args a) {
    typedef typename elem<T>::acc A;
    __shared__ online<A> s_online[32];
    if (a.ws->sticky.status)
        return;
    for_each_row<WARP>(a.rows, a.rows_walk, NLL_SM_GRAD + 1, [&](const int64_t *off) {
        const T *x = (const T *)a.x + off[NLL_SM_INPUT];
        const online<A> o =
            group_reduce<WARP>(row_online<WARP>(x, a.x_class, a.classes), online_op(), s_online);
        const A max = o.max, log_sum = elem<A>::log_(o.sum);
        sweep_row<WARP>(x, a.x_class, (T *)a.out + off[NLL_SM_OUTPUT], a.out_class, a.classes,
                        [&](int64_t, A v) { return (v - max) - log_sum; });
    });
}

// grad_input = grad_output - exp(output) * sum(grad_output) along each row
template <typename T, bool WARP>
__global__ void __launch_bounds__(kMaxRowThreads) log_softmax_backward_kernel(softmax_args a) {
    typedef typename elem<T>::acc A;
    __shared__ double s_double[32];
    if (a.ws->sticky.status)
        return;
    for_each_row<WARP>(a.rows, a.rows_walk, NLL_SM_GRAD + 1, [&](const int64_t *off) {
        const T *y = (const T *)a.y + off[NLL_SM_OUTPUT];
        const T *g = (const T *)a.grad_output + off[NLL_SM_GRAD_OUTPUT];
        double part = 0;
        sweep_row<WARP>(g, a.go_class, (T *)nullptr, 0, a.classes, [&](int64_t, A v) {
            part += (double)v;
            return v;
        });
        const A sum = (A)group_reduce<WARP>(part, add_op(), s_double);
        sweep_row<WARP>(y, a.y_class, (T *)a.out + off[NLL_SM_GRAD], a.out_class, a.classes,
                        [&](int64_t c, A v) {
                            return load(g + c * a.go_class) - elem<A>::exp_(v) * sum;
                        });
    });
}

template <typename T> static void run(const softmax_args &a, bool backward, cudaStream_t stream) {
    row_shape shape = plan_rows(a.rows, a.classes);
    if (backward) {
        if (shape.warp)
            log_softmax_backward_kernel<T, true><<<shape.blocks, shape.threads, 0, stream>>>(a);
        else
            log_softmax_backward_kernel<T, false><<<shape.blocks, shape.threads, 0, stream>>>(a);
    } else {
        if (shape.warp)
            log_softmax_forward_kernel<T, true><<<shape.blocks, shape.threads, 0, stream>>>(a);
        else
            log_softmax_forward_kernel<T, false><<<shape.blocks, shape.threads, 0, stream>>>(a);
    }
}

void launch_log_softmax(const softmax_args &a, nll_float_kind kind, bool backward,
                        cudaStream_t stream) {
#define NLL_RUN(T) run<T>(a, backward, stream)
    NLL_CUDA_DISPATCH(kind, NLL_RUN)
#undef NLL_RUN
}

} // namespace nll_cuda
