// What the CUDA launchers share: the per-device workspace (status word and partial sums), the
// arguments every loss kernel takes, and the launchers of each .cu file.
#ifndef NLL_CUDA_LAUNCH_CUH
#define NLL_CUDA_LAUNCH_CUH

#include "device.cuh"

namespace nll_cuda {

// What the value checks of one call found; every field is combined with atomics.
struct scan_state {
    unsigned long long target_first;  // lowest flat index of a bad class index (~0 if none)
    unsigned long long target_bad, target_counted, target_beyond;
    long long target_min, target_max; // over counted values within int64
    int seen_minus_one, seen_255, not_only_c_bad;
    int pad;
    unsigned long long whole_first;   // floating targets: not a finite whole number
    unsigned long long whole_bad;
    double whole_min, whole_max;
    unsigned long long finite_first[2]; // NLL_CHECK_FINITE: [0] input, [1] probability target
    unsigned long long finite_count[2];
};

// The first rejected call since the last report: its status, serial and what its checks found.
struct status_record {
    int status; // an nll_status; 0 while nothing was rejected
    int finite_which;
    unsigned long long serial;
    scan_state scan;
    unsigned char first_bytes[8]; // the first offending element as the check read it
};

// One per device and context. Every kernel of a call reads sticky.status first and does nothing
// when it is set, so a rejected call writes no output and later calls wait for the report.
struct workspace {
    status_record sticky;
    scan_state scan;              // the current call's checks, reset by finalize_checks
    double denominator;           // MEAN over class indices: sum of w[t] (nll_loss: W)
    double weight_sum;            // sum over classes of w[c], for label smoothing
    double check_partial[kMaxBlocks];
    double loss_partial[kMaxBlocks];
    double smooth_partial[kMaxBlocks];
    // few long rows (cross_entropy_long.cu): per-chunk statistics, then per-row ones
    double chunk_max[kMaxBlocks], chunk_sum[kMaxBlocks];
    double row_max[kLongRowsMax], row_log_sum[kLongRowsMax];
};

struct loss_args {
    const char *x, *target, *weight, *grad_loss;
    char *loss, *total_weight, *grad;
    int64_t samples, classes;
    int64_t x_class, q_class, g_class, w_stride; // element strides along the class axis
    walk samples_walk;                           // slots NLL_SLOT_*
    int64_t ignore_index;
    double smoothing;
    double fixed_denominator;                    // MEAN with probabilities: samples (NaN if C = 0)
    int reduction, probability, want_loss, want_grad, nll; // nll: nll_loss, else cross_entropy
    int input_ndim;
    int target_code, target_bits;
    int check_targets, allow_float_targets;
    int blocks, check_blocks;                    // grid sizes: partial sums per block
    unsigned long long serial;
    workspace *ws;
};

// A view walked over all its elements (NLL_CHECK_FINITE).
struct view_args {
    const char *data;
    int64_t numel;
    int contiguous;
    int item_size;
    walk elements; // slot 0
};

struct softmax_args {
    const char *x, *y, *grad_output; // forward: x -> out; backward: (grad_output, y) -> out
    char *out;
    int64_t rows, classes;
    int64_t x_class, y_class, go_class, out_class;
    walk rows_walk; // slots NLL_SM_*
    int blocks;
    workspace *ws;
};

// Rows handled by a warp each (short rows) or a block each, and the threads per block.
struct row_shape {
    bool warp;
    int threads, blocks;
};
row_shape plan_rows(int64_t rows, int64_t classes);

// check.cu
void launch_checks(const loss_args &a, nll_float_kind kind, const view_args *finite_input,
                   const view_args *finite_target, cudaStream_t stream);
void launch_reduce(const loss_args &a, nll_float_kind kind, cudaStream_t stream);
void launch_reset(workspace *ws, cudaStream_t stream);
// cross_entropy.cu: the blocks whose partial sums reduce_kernel adds (set in a.blocks first)
int cross_entropy_blocks(const loss_args &a);
void launch_cross_entropy(const loss_args &a, nll_float_kind kind, cudaStream_t stream);
// cross_entropy_long.cu
bool long_rows_apply(const loss_args &a);
void launch_cross_entropy_long(const loss_args &a, nll_float_kind kind, cudaStream_t stream);
// nll_loss.cu
void launch_nll_loss(const loss_args &a, nll_float_kind kind, cudaStream_t stream);
// log_softmax.cu
void launch_log_softmax(const softmax_args &a, nll_float_kind kind, bool backward,
                        cudaStream_t stream);

// Reads a class index of any integer or floating dtype; sets *beyond for values outside int64
// (uint64 above INT64_MAX, floating values out of range) and *whole for floating values.
__device__ __forceinline__ int64_t read_class_index(const char *p, int code, int bits,
                                                    bool *beyond, bool *whole, double *as_double) {
    *beyond = false;
    *whole = true;
    if (code == kDLFloat || code == kDLBfloat) {
        double v = code == kDLBfloat    ? (double)__bfloat162float(*(const __nv_bfloat16 *)p)
                   : bits == 16         ? (double)__half2float(*(const __half *)p)
                   : bits == 32         ? (double)*(const float *)p
                                        : *(const double *)p;
        *as_double = v;
        *whole = isfinite(v) && v == floor(v);
        *beyond = !(v >= -9223372036854775808.0 && v < 9223372036854775808.0);
        return *whole && !*beyond ? (int64_t)v : 0;
    }
    if (code == kDLUInt) {
        uint64_t u = bits == 8 ? *(const uint8_t *)p
                     : bits == 16 ? *(const uint16_t *)p
                     : bits == 32 ? *(const uint32_t *)p
                                  : *(const uint64_t *)p;
        *beyond = u > (uint64_t)INT64_MAX;
        return *beyond ? 0 : (int64_t)u;
    }
    return bits == 8 ? *(const int8_t *)p
           : bits == 16 ? *(const int16_t *)p
           : bits == 32 ? *(const int32_t *)p
                        : *(const int64_t *)p;
}

template <typename T>
__device__ __forceinline__ double upstream(const loss_args &a, const int64_t *off) {
    return a.grad_loss ? (double)load((const T *)a.grad_loss + off[NLL_SLOT_GRAD_LOSS]) : 1.0;
}

// Class-index targets passed the checks: read as int64 (floating values are whole).
__device__ __forceinline__ int64_t class_index(const loss_args &a, int64_t offset) {
    bool beyond, whole;
    double as_double;
    return read_class_index(a.target + offset * (a.target_bits / 8), a.target_code,
                            a.target_bits, &beyond, &whole, &as_double);
}

// Whether class index t, as read now, is one to use: not ignore_index and in [0, C). The checks
// saw every target in range, but the memory may have changed since (a racing writer): an index
// out of range at use is taken as ignored, so it never becomes an address. Results for such a
// call are unspecified; no kernel reads or writes outside its tensors.
__device__ __forceinline__ bool class_in_range(const loss_args &a, int64_t t) {
    return t != a.ignore_index && (uint64_t)t < (uint64_t)a.classes;
}

#define NLL_CUDA_DISPATCH(kind, CALL)                                                          \
    switch (kind) {                                                                            \
    case NLL_KIND_F64: CALL(double); break;                                                    \
    case NLL_KIND_F32: CALL(float); break;                                                     \
    case NLL_KIND_F16: CALL(__half); break;                                                    \
    default: CALL(__nv_bfloat16); break;                                                       \
    }

} // namespace nll_cuda

#endif
