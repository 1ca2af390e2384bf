// The value checks of a loss call on the GPU (class-index range, floating targets,
// NLL_CHECK_FINITE), their verdict, and the final reduction of MEAN and SUM losses. What the
// checks find is reported by the host with the CPU's messages (src/validate.c).
#include <string.h>

#include "launch.cuh"

namespace nll_cuda {

__device__ void reset_scan(scan_state &s) {
    s.target_first = ~0ull;
    s.target_bad = s.target_counted = s.target_beyond = 0;
    s.target_min = LLONG_MAX;
    s.target_max = LLONG_MIN;
    s.seen_minus_one = s.seen_255 = s.not_only_c_bad = 0;
    s.whole_first = ~0ull;
    s.whole_bad = 0;
    s.whole_min = INFINITY;
    s.whole_max = -INFINITY;
    for (int k = 0; k < 2; k++) {
        s.finite_first[k] = ~0ull;
        s.finite_count[k] = 0;
    }
}

// Doubles ordered as signed integers of their bits (flipped for negatives): atomicMin/Max.
__device__ __forceinline__ long long ordered(double v) {
    long long bits = __double_as_longlong(v);
    return bits >= 0 ? bits : bits ^ 0x7fffffffffffffffll;
}

__device__ __forceinline__ double unordered(long long key) {
    return __longlong_as_double(key >= 0 ? key : key ^ 0x7fffffffffffffffll);
}

__device__ void atomic_min_double(double *at, double v) {
    unsigned long long *word = (unsigned long long *)at;
    unsigned long long seen = *word;
    while (ordered(v) < ordered(__longlong_as_double((long long)seen))) {
        unsigned long long was = atomicCAS(word, seen, (unsigned long long)__double_as_longlong(v));
        if (was == seen)
            break;
        seen = was;
    }
}

__device__ void atomic_max_double(double *at, double v) {
    unsigned long long *word = (unsigned long long *)at;
    unsigned long long seen = *word;
    while (ordered(v) > ordered(__longlong_as_double((long long)seen))) {
        unsigned long long was = atomicCAS(word, seen, (unsigned long long)__double_as_longlong(v));
        if (was == seen)
            break;
        seen = was;
    }
}

struct min_op {
    template <typename V> __device__ __forceinline__ V operator()(V a, V b) const { return b < a ? b : a; }
};
struct max_op {
    template <typename V> __device__ __forceinline__ V operator()(V a, V b) const { return b > a ? b : a; }
};

__global__ void reset_kernel(workspace *ws) {
    reset_scan(ws->scan);
    ws->sticky.status = 0;
    ws->sticky.serial = 0;
    reset_scan(ws->sticky.scan);
}

// One thread per class-index target: range, ignore_index, whole floating values, and the
// per-block sum of w[t] over counted targets (the MEAN denominator).
template <typename T> __global__ void check_targets_kernel(loss_args a) {
    typedef typename elem<T>::acc A;
    __shared__ double s_double[32];
    __shared__ long long s_long[32];
    __shared__ unsigned long long s_count[32];
    workspace *ws = a.ws;
    if (ws->sticky.status)
        return;
    const T *w = (const T *)a.weight;
    double weight_total = 0, whole_min = INFINITY, whole_max = -INFINITY;
    unsigned long long counted = 0, whole_bad = 0, bad = 0;
    long long t_min = LLONG_MAX, t_max = LLONG_MIN;
    const int64_t stride = (int64_t)gridDim.x * blockDim.x;
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < a.samples; i += stride) {
        int64_t off[NLL_ITER_SLOTS];
        walk_offsets(a.samples_walk, i, NLL_SLOT_TARGET + 1, off);
        bool beyond, whole;
        double as_double = 0;
        int64_t t = read_class_index(a.target + off[NLL_SLOT_TARGET] * (a.target_bits / 8),
                                     a.target_code, a.target_bits, &beyond, &whole, &as_double);
        if (!whole) {
            atomicMin(&ws->scan.whole_first, (unsigned long long)i);
            whole_bad++;
            continue;
        }
        if (a.target_code == kDLFloat || a.target_code == kDLBfloat) {
            whole_min = fmin(whole_min, as_double);
            whole_max = fmax(whole_max, as_double);
        }
        if (!beyond) {
            if (t == a.ignore_index)
                continue;
            t_min = t < t_min ? t : t_min;
            t_max = t > t_max ? t : t_max;
        }
        counted++;
        if (!beyond && t >= 0 && t < a.classes) {
            weight_total += w ? (double)(A)load(w + t * a.w_stride) : 1.0;
            continue;
        }
        bad++;
        atomicMin(&ws->scan.target_first, (unsigned long long)i);
        if (beyond)
            atomicAdd(&ws->scan.target_beyond, 1ull);
        if (!beyond && t == -1)
            ws->scan.seen_minus_one = 1;
        if (!beyond && t == 255)
            ws->scan.seen_255 = 1;
        if (beyond || t != a.classes)
            ws->scan.not_only_c_bad = 1;
    }
    // One atomic per block for the counts and extremes; the weight sum per block, in order.
    weight_total = group_reduce<false>(weight_total, add_op(), s_double);
    counted = group_reduce<false>(counted, add_op(), s_count);
    bad = group_reduce<false>(bad, add_op(), s_count);
    whole_bad = group_reduce<false>(whole_bad, add_op(), s_count);
    t_min = group_reduce<false>(t_min, min_op(), s_long);
    t_max = group_reduce<false>(t_max, max_op(), s_long);
    whole_min = group_reduce<false>(whole_min, min_op(), s_double);
    whole_max = group_reduce<false>(whole_max, max_op(), s_double);
    if (threadIdx.x == 0) {
        ws->check_partial[blockIdx.x] = weight_total;
        if (counted)
            atomicAdd(&ws->scan.target_counted, counted);
        if (bad)
            atomicAdd(&ws->scan.target_bad, bad);
        if (whole_bad)
            atomicAdd(&ws->scan.whole_bad, whole_bad);
        if (t_min <= t_max) {
            atomicMin(&ws->scan.target_min, t_min);
            atomicMax(&ws->scan.target_max, t_max);
        }
        if (whole_min <= whole_max) {
            atomic_min_double(&ws->scan.whole_min, whole_min);
            atomic_max_double(&ws->scan.whole_max, whole_max);
        }
    }
}

// NLL_CHECK_FINITE over one view: NaN and +inf (-inf is allowed).
template <typename T> __global__ void check_finite_kernel(view_args v, int which, workspace *ws) {
    __shared__ unsigned long long s_count[32];
    if (ws->sticky.status)
        return;
    const T *data = (const T *)v.data;
    unsigned long long count = 0;
    const int64_t stride = (int64_t)gridDim.x * blockDim.x;
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < v.numel; i += stride) {
        int64_t offset = i;
        if (!v.contiguous)
            walk_offsets(v.elements, i, 1, &offset);
        typename elem<T>::acc x = load(data + offset);
        if (x != x || x == INFINITY) {
            atomicMin(&ws->scan.finite_first[which], (unsigned long long)i);
            count++;
        }
    }
    count = group_reduce<false>(count, add_op(), s_count);
    if (threadIdx.x == 0 && count)
        atomicAdd(&ws->scan.finite_count[which], count);
}

__device__ void copy_bytes(unsigned char *to, const char *from, int n) {
    for (int k = 0; k < n && k < 8; k++)
        to[k] = (unsigned char)from[k];
}

// The element at flat position first of a view walked by check_finite_kernel.
__device__ const char *view_element(const view_args &v, unsigned long long first) {
    int64_t offset = (int64_t)first;
    if (!v.contiguous)
        walk_offsets(v.elements, (int64_t)first, 1, &offset);
    return v.data + offset * v.item_size;
}

// One block: the verdict (in the CPU's order of checks), the MEAN denominator and the class
// weights' sum; the first offending element's bytes, read now (an asynchronous report comes
// later, when the tensor may hold other values); then the scan is reset for the next call.
template <typename T>
__global__ void finalize_checks_kernel(loss_args a, view_args finite_input, view_args finite_target) {
    typedef typename elem<T>::acc A;
    __shared__ double s_double[32];
    workspace *ws = a.ws;
    if (ws->sticky.status)
        return;
    double total = 0;
    for (int b = threadIdx.x; b < a.check_blocks; b += blockDim.x)
        total += ws->check_partial[b];
    total = group_reduce<false>(total, add_op(), s_double);
    double weights = 0; // read only by label smoothing with class indices
    const bool want_weights = a.weight && a.smoothing > 0 && !a.probability && !a.nll;
    if (want_weights)
        for (int64_t c = threadIdx.x; c < a.classes; c += blockDim.x)
            weights += (double)(A)load((const T *)a.weight + c * a.w_stride);
    weights = group_reduce<false>(weights, add_op(), s_double);
    if (threadIdx.x != 0)
        return;
    ws->denominator = total;
    ws->weight_sum = want_weights ? weights : (double)a.classes;
    const scan_state &s = ws->scan;
    const bool floating = a.target_code == kDLFloat || a.target_code == kDLBfloat;
    int status = 0, which = 0;
    if (a.check_targets && floating && (!a.allow_float_targets || s.whole_bad))
        status = a.allow_float_targets ? NLL_ERROR_TARGET_NOT_WHOLE : NLL_ERROR_FLOAT_TARGET;
    else if (s.finite_count[0])
        status = NLL_ERROR_NONFINITE;
    else if (s.finite_count[1])
        status = NLL_ERROR_NONFINITE, which = 1;
    else if (a.check_targets && s.target_bad)
        status = NLL_ERROR_TARGET_RANGE;
    if (status) {
        unsigned long long first = ~0ull;
        const char *element = nullptr;
        int size = a.target_bits / 8;
        if (status == NLL_ERROR_NONFINITE) {
            first = s.finite_first[which];
            element = view_element(which ? finite_target : finite_input, first);
            size = (int)sizeof(T);
        } else {
            first = status == NLL_ERROR_TARGET_RANGE ? s.target_first : s.whole_first;
            if (first != ~0ull) {
                int64_t off[NLL_ITER_SLOTS];
                walk_offsets(a.samples_walk, (int64_t)first, NLL_SLOT_TARGET + 1, off);
                element = a.target + off[NLL_SLOT_TARGET] * size;
            }
        }
        for (int k = 0; k < 8; k++)
            ws->sticky.first_bytes[k] = 0;
        if (first != ~0ull && element)
            copy_bytes(ws->sticky.first_bytes, element, size);
        ws->sticky.scan = s;
        ws->sticky.finite_which = which;
        ws->sticky.serial = a.serial;
        ws->sticky.status = status;
    }
    reset_scan(ws->scan);
}

// One block: MEAN and SUM losses from the per-block partials, in block order, as the CPU forms
// them; nll_loss's total_weight.
template <typename T> __global__ void __launch_bounds__(1024) reduce_kernel(loss_args a) {
    __shared__ double s_double[32];
    workspace *ws = a.ws;
    if (ws->sticky.status)
        return;
    double total = 0, smooth = 0;
    for (int b = threadIdx.x; b < a.blocks; b += blockDim.x) {
        total += ws->loss_partial[b];
        smooth += ws->smooth_partial[b];
    }
    total = group_reduce<false>(total, add_op(), s_double);
    smooth = group_reduce<false>(smooth, add_op(), s_double);
    if (threadIdx.x != 0)
        return;
    const bool mean = a.reduction == NLL_REDUCTION_MEAN;
    if (a.nll) {
        const double weight_total = ws->denominator;
        if (a.want_loss && a.reduction != NLL_REDUCTION_NONE)
            *(T *)a.loss = elem<T>::from_double(mean ? total / weight_total : total);
        if (a.total_weight)
            *(T *)a.total_weight = elem<T>::from_double(
                a.reduction != NLL_REDUCTION_NONE || a.input_ndim == 1 ? weight_total : 0.0);
        return;
    }
    if (!a.want_loss || a.reduction == NLL_REDUCTION_NONE)
        return;
    const double divisor = !mean ? 1.0 : a.probability ? a.fixed_denominator : ws->denominator;
    double loss;
    if (a.probability) // -(sum of w q log p): an empty batch gives -0
        loss = -total / divisor;
    else if (a.smoothing > 0)
        loss = (1.0 - a.smoothing) * (total / divisor) +
               a.smoothing / (double)a.classes * (smooth / divisor);
    else
        loss = total / divisor;
    *(T *)a.loss = elem<T>::from_double(loss);
}

static int blocks_for(int64_t items, int threads) {
    int64_t blocks = (items + threads - 1) / threads;
    return (int)(blocks < 1 ? 1 : blocks > kMaxBlocks ? kMaxBlocks : blocks);
}

template <typename T>
static void checks(const loss_args &a, const view_args *finite_input,
                   const view_args *finite_target, cudaStream_t stream) {
    if (a.check_targets && a.samples > 0)
        check_targets_kernel<T><<<a.check_blocks, 256, 0, stream>>>(a);
    if (finite_input && finite_input->numel > 0)
        check_finite_kernel<T><<<blocks_for(finite_input->numel, 256), 256, 0, stream>>>(
            *finite_input, 0, a.ws);
    if (finite_target && finite_target->numel > 0)
        check_finite_kernel<T><<<blocks_for(finite_target->numel, 256), 256, 0, stream>>>(
            *finite_target, 1, a.ws);
    view_args none;
    memset(&none, 0, sizeof none);
    finalize_checks_kernel<T><<<1, 256, 0, stream>>>(a, finite_input ? *finite_input : none,
                                                       finite_target ? *finite_target : none);
}

void launch_checks(const loss_args &a, nll_float_kind kind, const view_args *finite_input,
                   const view_args *finite_target, cudaStream_t stream) {
#define NLL_CHECKS(T) checks<T>(a, finite_input, finite_target, stream)
    NLL_CUDA_DISPATCH(kind, NLL_CHECKS)
#undef NLL_CHECKS
}

void launch_reduce(const loss_args &a, nll_float_kind kind, cudaStream_t stream) {
#define NLL_REDUCE(T) reduce_kernel<T><<<1, 1024, 0, stream>>>(a)
    NLL_CUDA_DISPATCH(kind, NLL_REDUCE)
#undef NLL_REDUCE
}

void launch_reset(workspace *ws, cudaStream_t stream) { reset_kernel<<<1, 1, 0, stream>>>(ws); }

row_shape plan_rows(int64_t rows, int64_t classes) {
    row_shape shape;
    shape.warp = classes <= 2048;
    shape.threads = shape.warp || classes <= 16384 ? 256 : kMaxRowThreads;
    int64_t per_block = shape.warp ? shape.threads / 32 : 1;
    int64_t blocks = (rows + per_block - 1) / per_block;
    shape.blocks = (int)(blocks < 1 ? 1 : blocks > kMaxBlocks ? kMaxBlocks : blocks);
    return shape;
}

} // namespace nll_cuda
