// Device-side pieces every CUDA kernel shares: element types, strided walks, row sweeps with
// 128-bit loads, and group reductions in a fixed order (so results are deterministic).
#ifndef NLL_CUDA_DEVICE_CUH
#define NLL_CUDA_DEVICE_CUH

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>
#include <stdint.h>

extern "C" {
#include "internal.h"
}

namespace nll_cuda {

// ---- element types ------------------------------------------------------------------------
// acc is the arithmetic type (float for 16-bit inputs, as on the CPU); from_double rounds once.
template <typename T> struct elem;

// exp for float arithmetic: one multiply and the hardware's exp2 (<= 2 ulp, plus the rounding of
// x * log2(e): relative 6e-8 * |x|, below float32's tolerance where e^x matters). The memory-
// bound kernels have about ten instructions per element to spend; expf would take most of them.
__device__ __forceinline__ float fast_exp(float v) { return exp2f(v * 1.44269504088896341f); }

template <> struct elem<double> {
    typedef double acc;
    static __device__ __forceinline__ double to_acc(double v) { return v; }
    static __device__ __forceinline__ double from_acc(double v) { return v; }
    static __device__ __forceinline__ double from_double(double v) { return v; }
    static __device__ __forceinline__ double exp_(double v) { return exp(v); }
    static __device__ __forceinline__ double log_(double v) { return log(v); }
};

template <> struct elem<float> {
    typedef float acc;
    static __device__ __forceinline__ float to_acc(float v) { return v; }
    static __device__ __forceinline__ float from_acc(float v) { return v; }
    static __device__ __forceinline__ float from_double(double v) { return (float)v; }
    static __device__ __forceinline__ float exp_(float v) { return fast_exp(v); }
    static __device__ __forceinline__ float log_(float v) { return logf(v); }
};

template <> struct elem<__half> {
    typedef float acc;
    static __device__ __forceinline__ float to_acc(__half v) { return __half2float(v); }
    static __device__ __forceinline__ __half from_acc(float v) { return __float2half_rn(v); }
    static __device__ __forceinline__ __half from_double(double v) { return __double2half(v); }
    static __device__ __forceinline__ float exp_(float v) { return fast_exp(v); }
    static __device__ __forceinline__ float log_(float v) { return logf(v); }
};

template <> struct elem<__nv_bfloat16> {
    typedef float acc;
    static __device__ __forceinline__ float to_acc(__nv_bfloat16 v) { return __bfloat162float(v); }
    static __device__ __forceinline__ __nv_bfloat16 from_acc(float v) {
        return __float2bfloat16_rn(v);
    }
    static __device__ __forceinline__ __nv_bfloat16 from_double(double v) {
        return __double2bfloat16(v);
    }
    static __device__ __forceinline__ float exp_(float v) { return fast_exp(v); }
    static __device__ __forceinline__ float log_(float v) { return logf(v); }
};

template <typename T> __device__ __forceinline__ typename elem<T>::acc load(const T *p) {
    return elem<T>::to_acc(*p);
}

template <typename T> __device__ __forceinline__ void store(T *p, typename elem<T>::acc v) {
    *p = elem<T>::from_acc(v);
}

// ---- strided walks ------------------------------------------------------------------------
// A shape and per-slot element strides (the host's nll_iter), walked by position.
struct walk {
    int ndim;
    int64_t shape[NLL_MAX_DIMS];
    int64_t strides[NLL_ITER_SLOTS][NLL_MAX_DIMS];
};

// Element offsets of row-major position flat, for slots [0, slots).
__device__ __forceinline__ void walk_offsets(const walk &w, int64_t flat, int slots,
                                             int64_t *offset) {
    for (int s = 0; s < slots; s++)
        offset[s] = 0;
    if (w.ndim == 1) { // the usual (N, C): no division
        for (int s = 0; s < slots; s++)
            offset[s] = flat * w.strides[s][0];
        return;
    }
    for (int d = w.ndim - 1; d >= 0; d--) {
        int64_t n = w.shape[d], i = flat % n;
        flat /= n;
        for (int s = 0; s < slots; s++)
            offset[s] += i * w.strides[s][d];
    }
}

// ---- groups of threads that share one row -------------------------------------------------
// WARP: 32 threads per row, blockDim.x / 32 rows per block; else the whole block on one row.
template <bool WARP> struct group {
    static __device__ __forceinline__ int size() { return WARP ? 32 : (int)blockDim.x; }
    static __device__ __forceinline__ int lane() {
        return WARP ? (int)(threadIdx.x & 31) : (int)threadIdx.x;
    }
    static __device__ __forceinline__ int rows_per_block() {
        return WARP ? (int)(blockDim.x >> 5) : 1;
    }
    static __device__ __forceinline__ int row_in_block() { return WARP ? (int)(threadIdx.x >> 5) : 0; }
};

// Combining two partial results; each op is exact about NaN and infinities as the CPU is.
struct add_op {
    template <typename V> __device__ __forceinline__ V operator()(V a, V b) const { return a + b; }
};

// (max, sum of exp(x - max)) pairs. A NaN never wins the max but poisons the sum.
template <typename A> struct online {
    A max, sum;
};

template <typename A> __device__ __forceinline__ A scaled(A sum, A from, A to) {
    // sum * exp(from - to), where a zero sum (nothing seen, or only -inf) stays zero
    return sum == A(0) ? A(0) : sum * elem<A>::exp_(from - to);
}

struct online_op {
    template <typename A>
    __device__ __forceinline__ online<A> operator()(online<A> a, online<A> b) const {
        A m = a.max > b.max ? a.max : b.max; // NaN is never stored as a max
        online<A> r;
        r.max = m;
        r.sum = m == A(-INFINITY) ? a.sum + b.sum : scaled(a.sum, a.max, m) + scaled(b.sum, b.max, m);
        return r;
    }
};

template <typename A> __device__ __forceinline__ void online_add(online<A> &o, A v) {
    if (v > o.max) {
        o.sum = scaled(o.sum, o.max, v);
        o.max = v;
    }
    // exp(-inf - -inf) would be NaN: a -inf logit adds nothing, a NaN poisons the sum
    o.sum += v == A(-INFINITY) ? A(0) : elem<A>::exp_(v - o.max);
}

// A whole vector of values at once: one max and one rescale per vector, then a subtract, a
// multiply and an exp2 per element. A NaN is skipped by fmax but poisons the sum through its
// exp; when everything so far is -inf (or NaN) the slow rule keeps -inf - -inf out.
template <typename A, int N> __device__ __forceinline__ void online_add_vector(online<A> &o, const A *v) {
    A vmax = v[0];
#pragma unroll
    for (int j = 1; j < N; j++)
        vmax = fmax(vmax, v[j]);
    if (vmax > o.max) {
        o.sum = scaled(o.sum, o.max, vmax);
        o.max = vmax;
    }
    if (o.max == A(-INFINITY)) {
#pragma unroll
        for (int j = 0; j < N; j++)
            online_add(o, v[j]);
        return;
    }
    A part = 0;
#pragma unroll
    for (int j = 0; j < N; j++)
        part += elem<A>::exp_(v[j] - o.max);
    o.sum += part;
}

template <typename V> __device__ __forceinline__ V shfl_xor(V v, int mask) {
    return __shfl_xor_sync(0xffffffffu, v, mask);
}

template <typename A> __device__ __forceinline__ online<A> shfl_xor(online<A> v, int mask) {
    online<A> r;
    r.max = __shfl_xor_sync(0xffffffffu, v.max, mask);
    r.sum = __shfl_xor_sync(0xffffffffu, v.sum, mask);
    return r;
}

// Every lane of the warp gets the combination of all 32, combined in the same tree each time.
template <typename V, typename Op> __device__ __forceinline__ V warp_reduce(V v, Op op) {
    for (int mask = 16; mask > 0; mask >>= 1) {
        V other = shfl_xor(v, mask);
        // lower lane's value first, so every lane forms the identical expression
        v = (threadIdx.x & mask) ? op(other, v) : op(v, other);
    }
    return v;
}

// The whole group's combination, returned to every thread of the group. scratch holds at
// least 32 values (used by block groups only); it is free again when this returns.
template <bool WARP, typename V, typename Op>
__device__ __forceinline__ V group_reduce(V v, Op op, V *scratch) {
    v = warp_reduce(v, op);
    if (WARP)
        return v;
    const int warp = threadIdx.x >> 5, warps = (blockDim.x + 31) >> 5;
    if ((threadIdx.x & 31) == 0)
        scratch[warp] = v;
    __syncthreads();
    V total = scratch[0];
    for (int k = 1; k < warps; k++)
        total = op(total, scratch[k]);
    __syncthreads(); // scratch may be reused right away
    return total;
}

// Lane 0's v, given to every thread of the group (the group must be converged, as in
// for_each_row): a value read from memory the caller may change during the call, which every
// thread must see alike before it steers their barriers.
template <bool WARP> __device__ __forceinline__ int64_t group_first(int64_t v) {
    if (WARP)
        return (int64_t)__shfl_sync(0xffffffffu, (long long)v, 0);
    __shared__ long long s_first;
    if (threadIdx.x == 0)
        s_first = (long long)v;
    __syncthreads();
    v = (int64_t)s_first;
    __syncthreads(); // read by all before the next row's value replaces it
    return v;
}

// Calls f(off) for each row this thread's group owns, off holding the first `slots` element
// offsets of the row's start: rows are dealt to the grid's groups in turn.
template <bool WARP, typename F>
__device__ __forceinline__ void for_each_row(int64_t rows, const walk &w, int slots, F f) {
    const int per_block = group<WARP>::rows_per_block();
    for (int64_t i = (int64_t)blockIdx.x * per_block + group<WARP>::row_in_block(); i < rows;
         i += (int64_t)gridDim.x * per_block) {
        int64_t off[NLL_ITER_SLOTS];
        walk_offsets(w, i, slots, off);
        f(off);
    }
}

// ---- row sweeps -----------------------------------------------------------------------------
static const int kUnroll = 4;

// 16 bytes of elements, loaded and stored at once.
template <typename T> struct vec16 {
    enum { N = 16 / sizeof(T) };
    union {
        uint4 raw;
        T v[16 / sizeof(T)];
    };
};

// The skeleton of a contiguous row's elementwise sweep (x aligned to its elements; which
// thread takes which element depends on x's address, see index_sweep): scalar elements up to
// the first 16-byte boundary, then whole 16-byte vectors with kUnroll loads in flight per
// thread (enough bytes in flight for HBM), then a scalar tail. scalar(c) takes element c;
// vector(first, in) the vector whose first element is first.
template <bool WARP, typename T, typename S, typename Vf>
__device__ __forceinline__ void contiguous_sweep(const T *x, int64_t n, S scalar, Vf vector) {
    const int lane = group<WARP>::lane(), size = group<WARP>::size();
    const int V = vec16<T>::N;
    const uintptr_t xa = (uintptr_t)x;
    int64_t head = (int64_t)(((16 - xa % 16) % 16) / sizeof(T));
    if (head > n)
        head = n;
    const int64_t body = (n - head) / V;
    for (int64_t c = lane; c < head; c += size)
        scalar(c);
    const uint4 *xv = (const uint4 *)(x + head);
    int64_t k = lane;
    for (; k + (int64_t)(kUnroll - 1) * size < body; k += (int64_t)kUnroll * size) {
        vec16<T> in[kUnroll];
#pragma unroll
        for (int u = 0; u < kUnroll; u++)
            in[u].raw = xv[k + u * size];
#pragma unroll
        for (int u = 0; u < kUnroll; u++)
            vector(head + (k + u * size) * V, in[u]);
    }
    for (; k < body; k += size) {
        vec16<T> in;
        in.raw = xv[k];
        vector(head + k * V, in);
    }
    for (int64_t c = head + body * V + lane; c < n; c += size)
        scalar(c);
}

// The 16 bytes that start m bytes into lo and run on into hi (0 < m < 16, little-endian).
__device__ __forceinline__ uint4 bytes_at(uint4 lo, uint4 hi, int m) {
    const int r = (m & 3) * 8;
    unsigned a, b, c, d, e;
    switch (m >> 2) {
    case 0: a = lo.x, b = lo.y, c = lo.z, d = lo.w, e = hi.x; break;
    case 1: a = lo.y, b = lo.z, c = lo.w, d = hi.x, e = hi.y; break;
    case 2: a = lo.z, b = lo.w, c = hi.x, d = hi.y, e = hi.z; break;
    default: a = lo.w, b = hi.x, c = hi.y, d = hi.z, e = hi.w; break;
    }
    uint4 v;
    v.x = __funnelshift_r(a, b, r);
    v.y = __funnelshift_r(b, c, r);
    v.z = __funnelshift_r(c, d, r);
    v.w = __funnelshift_r(d, e, r);
    return v;
}

// The sweep for reductions along a contiguous row (x aligned to its elements): which thread
// takes which element, and in what order, depends on the row's length only, never on where it
// starts, so a sum has the same bits at any address. The row is cut into 16-byte vectors from
// its first element (vector k: elements [kV, kV + V)), dealt to the group's threads in turn
// with kUnroll loads in flight, then a scalar tail. A row on a 16-byte boundary loads each
// vector at once; another cuts vector k from the two aligned loads that hold it (both inside
// the row for 0 < k < body - 1; the first and last are read element by element).
template <bool WARP, typename T, typename S, typename Vf>
__device__ __forceinline__ void index_sweep(const T *x, int64_t n, S scalar, Vf vector) {
    const int lane = group<WARP>::lane(), size = group<WARP>::size();
    const int V = vec16<T>::N;
    const int64_t body = n / V;
    const int m = (int)((uintptr_t)x % 16);
    const uint4 *chunk = (const uint4 *)(const void *)((const char *)x - m); // 16-byte aligned
    auto load_vector = [&](int64_t k) {
        vec16<T> in;
        if (m == 0) {
            in.raw = chunk[k];
        } else if (k == 0 || k == body - 1) {
#pragma unroll
            for (int j = 0; j < V; j++)
                in.v[j] = x[k * V + j];
        } else {
            in.raw = bytes_at(chunk[k], chunk[k + 1], m);
        }
        return in;
    };
    int64_t k = lane;
    for (; k + (int64_t)(kUnroll - 1) * size < body; k += (int64_t)kUnroll * size) {
        vec16<T> in[kUnroll];
#pragma unroll
        for (int u = 0; u < kUnroll; u++)
            in[u] = load_vector(k + u * size);
#pragma unroll
        for (int u = 0; u < kUnroll; u++)
            vector((k + u * size) * V, in[u]);
    }
    for (; k < body; k += size)
        vector(k * V, load_vector(k));
    for (int64_t c = body * V + lane; c < n; c += size)
        scalar(c);
}

// Visits the n elements of a row, each thread of the group taking its share: f(c, x_c) may
// return a value stored at out[c] (when out is not NULL; it may be x itself). Contiguous rows
// whose output has the input's alignment go 16 bytes at a time. Without out, f may accumulate
// (a reduction): the elements are then dealt by index_sweep, whatever the row's address; with
// out, f must be elementwise (its values do not depend on which thread takes which element).
template <bool WARP, typename T, typename F>
__device__ __forceinline__ void sweep_row(const T *x, int64_t x_stride, T *out,
                                          int64_t out_stride, int64_t n, F f) {
    typedef typename elem<T>::acc A;
    const uintptr_t xa = (uintptr_t)x, oa = (uintptr_t)out;
    const bool contiguous = x_stride == 1 && (!out || out_stride == 1);
    if (contiguous && !out && xa % sizeof(T) == 0) {
        index_sweep<WARP>(
            x, n, [&](int64_t c) { f(c, load(x + c)); },
            [&](int64_t first, const vec16<T> &in) {
#pragma unroll
                for (int j = 0; j < vec16<T>::N; j++)
                    f(first + j, elem<T>::to_acc(in.v[j]));
            });
        return;
    }
    if (!contiguous || xa % sizeof(T) || (out && (oa % 16 != xa % 16))) {
        for (int64_t c = group<WARP>::lane(); c < n; c += group<WARP>::size()) {
            A r = f(c, load(x + c * x_stride));
            if (out)
                store(out + c * out_stride, r);
        }
        return;
    }
    contiguous_sweep<WARP>(
        x, n,
        [&](int64_t c) {
            A r = f(c, load(x + c));
            if (out)
                store(out + c, r);
        },
        [&](int64_t first, const vec16<T> &in) {
            vec16<T> res;
#pragma unroll
            for (int j = 0; j < vec16<T>::N; j++)
                res.v[j] = elem<T>::from_acc(f(first + j, elem<T>::to_acc(in.v[j])));
            if (out)
                *(uint4 *)(out + first) = res.raw;
        });
}

// This thread's (max, sum of exp) over its share of a row (group_reduce combines the shares):
// the hot first pass, so contiguous rows go a vector at a time (online_add_vector), dealt by
// index_sweep so that the statistics do not depend on the row's address.
template <bool WARP, typename T>
__device__ __forceinline__ online<typename elem<T>::acc> row_online(const T *x, int64_t stride,
                                                                   int64_t n) {
    typedef typename elem<T>::acc A;
    online<A> o = {A(-INFINITY), A(0)};
    if (stride != 1 || (uintptr_t)x % sizeof(T)) {
        for (int64_t c = group<WARP>::lane(); c < n; c += group<WARP>::size())
            online_add(o, load(x + c * stride));
        return o;
    }
    index_sweep<WARP>(
        x, n, [&](int64_t c) { online_add(o, load(x + c)); },
        [&](int64_t, const vec16<T> &in) {
            A v[vec16<T>::N];
#pragma unroll
            for (int j = 0; j < vec16<T>::N; j++)
                v[j] = elem<T>::to_acc(in.v[j]);
            online_add_vector<A, vec16<T>::N>(o, v);
        });
    return o;
}

// Fixed grid sizes: the number of blocks depends on the problem only, so each block's partial
// sums, and the order they are added in, are the same on every run and every GPU.
static const int kMaxBlocks = 1 << 16;
// The most threads on one row: their kernels are compiled to fit (__launch_bounds__).
static const int kMaxRowThreads = 512;
// At most this many rows take the several-blocks-per-row path (cross_entropy_long.cu).
static const int kLongRowsMax = 128;

} // namespace nll_cuda

#endif
