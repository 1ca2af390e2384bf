// cross_entropy for few long rows (C >= 64K, at most kLongRowsMax = 128 rows, class-index targets
// without label smoothing: the large-vocabulary case). A block per row would leave most of the
// GPU idle, so each row is cut into chunks, a block each: chunk statistics; per row their merge
// in chunk order (deterministic) and the loss; then the gradient, chunk by chunk. The chunks are
// fixed by the problem's size alone.
#include "launch.cuh"

namespace nll_cuda {

namespace {

const int kChunkThreads = 512;
const int64_t kMinChunk = 16384;

struct chunking {
    int64_t length; // elements per chunk (a multiple of 8: chunks keep the row's alignment)
    int count;
};

chunking chunks_of(int64_t classes) {
    const int64_t max_chunks = kMaxBlocks / kLongRowsMax;
    int64_t length = (classes + max_chunks - 1) / max_chunks;
    length = length < kMinChunk ? kMinChunk : (length + 7) / 8 * 8;
    chunking c = {length, (int)((classes + length - 1) / length)};
    return c;
}

__device__ __forceinline__ int64_t chunk_elements(int64_t classes, int64_t length, int chunk) {
    int64_t rest = classes - chunk * length;
    return rest < length ? rest : length;
}

// grid (chunks, rows): each chunk's (max, sum of exp)
template <typename T>
__global__ void __launch_bounds__(kChunkThreads) long_stats_kernel(loss_args a, chunking ch) {
    typedef typename elem<T>::acc A;
    __shared__ online<A> s_online[32];
    workspace *ws = a.ws;
    if (ws->sticky.status)
        return;
    const int64_t row = blockIdx.y;
    const int chunk = blockIdx.x;
    int64_t off[NLL_ITER_SLOTS];
    walk_offsets(a.samples_walk, row, NLL_SLOT_INPUT + 1, off);
    const T *x = (const T *)a.x + off[NLL_SLOT_INPUT] + chunk * ch.length * a.x_class;
    const online<A> o = group_reduce<false>(
        row_online<false>(x, a.x_class, chunk_elements(a.classes, ch.length, chunk)), online_op(),
        s_online);
    if (threadIdx.x == 0) {
        ws->chunk_max[row * ch.count + chunk] = (double)o.max;
        ws->chunk_sum[row * ch.count + chunk] = (double)o.sum;
    }
}

// a thread per row: merge its chunks in order, then its loss
template <typename T> __global__ void long_rows_kernel(loss_args a, chunking ch) {
    typedef typename elem<T>::acc A;
    workspace *ws = a.ws;
    if (ws->sticky.status)
        return;
    const int64_t row = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (row >= a.samples)
        return;
    online<A> o = {(A)ws->chunk_max[row * ch.count], (A)ws->chunk_sum[row * ch.count]};
    for (int k = 1; k < ch.count; k++) {
        online<A> next = {(A)ws->chunk_max[row * ch.count + k], (A)ws->chunk_sum[row * ch.count + k]};
        o = online_op()(o, next);
    }
    const A max = o.max, log_sum = elem<A>::log_(o.sum);
    ws->row_max[row] = (double)max;
    ws->row_log_sum[row] = (double)log_sum;
    if (!a.want_loss)
        return;
    int64_t off[NLL_ITER_SLOTS];
    walk_offsets(a.samples_walk, row, NLL_ITER_SLOTS, off);
    const int64_t t = class_index(a, off[NLL_SLOT_TARGET]);
    A loss = 0;
    if (class_in_range(a, t)) {
        const T *w = (const T *)a.weight;
        const A log_p_t = (load((const T *)a.x + off[NLL_SLOT_INPUT] + t * a.x_class) - max) - log_sum;
        loss = w ? -(log_p_t * load(w + t * a.w_stride)) : -log_p_t;
    }
    if (a.reduction == NLL_REDUCTION_NONE) {
        store((T *)a.loss + off[NLL_SLOT_LOSS], loss);
    } else {
        ws->loss_partial[row] = (double)loss;
        ws->smooth_partial[row] = 0;
    }
}

// grid (chunks, rows): the gradient of each chunk (the loss already read the target logit)
template <typename T>
__global__ void __launch_bounds__(kChunkThreads) long_gradient_kernel(loss_args a, chunking ch) {
    typedef typename elem<T>::acc A;
    workspace *ws = a.ws;
    if (ws->sticky.status)
        return;
    const int64_t row = blockIdx.y;
    const int chunk = blockIdx.x;
    int64_t off[NLL_ITER_SLOTS];
    walk_offsets(a.samples_walk, row, NLL_ITER_SLOTS, off);
    const int64_t t = class_index(a, off[NLL_SLOT_TARGET]);
    const bool valid = class_in_range(a, t);
    const double denominator = a.reduction == NLL_REDUCTION_MEAN ? ws->denominator : 1.0;
    const T *w = (const T *)a.weight;
    const A scale = valid ? (A)(upstream<T>(a, off) / denominator) : A(0);
    const A w_t = valid ? (w ? load(w + t * a.w_stride) : A(1)) : A(0);
    const A g_target = -(w_t * scale);
    const A max = (A)ws->row_max[row], log_sum = (A)ws->row_log_sum[row];
    const int64_t first = chunk * ch.length;
    const int64_t target = valid ? t - first : -1; // within this chunk, if there
    sweep_row<false>((const T *)a.x + off[NLL_SLOT_INPUT] + first * a.x_class, a.x_class,
                     (T *)a.grad + off[NLL_SLOT_GRAD] + first * a.g_class, a.g_class,
                     chunk_elements(a.classes, ch.length, chunk), [&](int64_t c, A v) {
                         A log_p = (v - max) - log_sum;
                         A g = c == target ? g_target : A(0);
                         return g - elem<A>::exp_(log_p) * g_target;
                     });
}

template <typename T> void run(const loss_args &a, cudaStream_t stream) {
    const chunking ch = chunks_of(a.classes);
    const dim3 grid((unsigned)ch.count, (unsigned)a.samples);
    long_stats_kernel<T><<<grid, kChunkThreads, 0, stream>>>(a, ch);
    long_rows_kernel<T><<<(unsigned)((a.samples + 127) / 128), 128, 0, stream>>>(a, ch);
    if (a.want_grad)
        long_gradient_kernel<T><<<grid, kChunkThreads, 0, stream>>>(a, ch);
}

} // namespace

bool long_rows_apply(const loss_args &a) {
    return !a.probability && !(a.smoothing > 0) && a.classes >= (1 << 16) && a.samples > 0 &&
           a.samples <= kLongRowsMax;
}

void launch_cross_entropy_long(const loss_args &a, nll_float_kind kind, cudaStream_t stream) {
#define NLL_RUN(T) run<T>(a, stream)
    NLL_CUDA_DISPATCH(kind, NLL_RUN)
#undef NLL_RUN
}

} // namespace nll_cuda
