// The CUDA backend's entry points (C signatures, declared in src/internal.h): a context's
// per-device workspace, the launch sequence of each op, and the status word's round trip --
// waited for at once, or in asynchronous mode by nll_context_sync. Messages come from the same
// report functions as the CPU's (src/validate.c).
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "launch.cuh"

using namespace nll_cuda;

namespace {

const int kMaxDevices = 64;
const int kPending = 64; // asynchronous calls remembered for their messages

struct device_state {
    workspace *ws;         // set once the workspace is allocated and reset: the device is ready
    status_record *record; // pinned host copy of ws->sticky
    cudaEvent_t done;      // recorded after each call and, as a graph node, each captured call:
                           // the next call, or a replay, waits for it
    cudaEvent_t captured;  // recorded after each captured call, inside its capture
    cudaStream_t own;      // the device's own stream: the first reset and nll_context_sync
    cudaStream_t last;     // the stream of the last uncaptured call (valid once used)
    unsigned long long capture_id; // the capture of the last captured call (0: none)
    cudaStream_t capture_last;     // and its stream
    bool used;             // done was recorded by an uncaptured call
    bool graphs;           // a call was captured: replays record done on any stream
};

struct pending_call {
    unsigned long long serial;
    const char *function;
    nll_loss_problem problem;
};

} // namespace

struct nll_cuda_state {
    device_state devices[kMaxDevices];
    pending_call pending[kPending];
    unsigned long long serial;
};

namespace {

nll_status cuda_fail(const nll_call *call, cudaError_t err, const char *what) {
    return nll_fail(call, NLL_ERROR_CUDA, "", "%s failed: %s (%s)", what, cudaGetErrorName(err),
                    cudaGetErrorString(err));
}

// Makes device id current for one call and puts the caller's device back afterwards.
struct device_scope {
    int previous = -1;
    // tensor: the call's first tensor, named in messages
    nll_status enter(const nll_call *call, const char *tensor, int id) {
        int count = 0;
        cudaError_t err = cudaGetDeviceCount(&count);
        if (err != cudaSuccess || count == 0) {
            cudaGetLastError();
            return nll_fail(call, NLL_ERROR_CUDA, tensor,
                            "%s is on cuda:%d, but no CUDA device is usable here (%s)", tensor,
                            id, err != cudaSuccess ? cudaGetErrorString(err) : "none found");
        }
        if (id < 0 || id >= count || id >= kMaxDevices)
            return nll_fail(call, NLL_ERROR_CUDA, tensor,
                            "%s is on cuda:%d, but this machine has %d CUDA device%s", tensor, id,
                            count, count == 1 ? "" : "s");
        if ((err = cudaGetDevice(&previous)) != cudaSuccess)
            return cuda_fail(call, err, "cudaGetDevice");
        if (previous != id && (err = cudaSetDevice(id)) != cudaSuccess)
            return cuda_fail(call, err, "cudaSetDevice");
        return NLL_OK;
    }
    ~device_scope() {
        int now;
        if (previous >= 0 && cudaGetDevice(&now) == cudaSuccess && now != previous)
            cudaSetDevice(previous);
    }
};

cudaStream_t stream_of(const nll_context *ctx) { return (cudaStream_t)ctx->cuda_stream; }

// Frees what prepare_device made; each handle is null until made.
void free_device(device_state *d) {
    if (d->own)
        cudaStreamSynchronize(d->own);
    if (d->done)
        cudaEventSynchronize(d->done);
    if (d->captured)
        cudaEventDestroy(d->captured);
    if (d->done)
        cudaEventDestroy(d->done);
    if (d->own)
        cudaStreamDestroy(d->own);
    if (d->record)
        cudaFreeHost(d->record);
    if (d->ws)
        cudaFree(d->ws);
    memset(d, 0, sizeof *d);
}

// Allocates the current device's workspace, status record, events and stream, and resets the
// workspace (its status words start as whatever the memory held). Everything or nothing: on
// failure all is freed and *dev stays empty, so the next call tries again.
nll_status prepare_device(const nll_call *call, device_state *dev) {
    device_state d;
    memset(&d, 0, sizeof d);
    cudaGetLastError(); // a stale launch error is not this reset's
    const char *what = "";
    cudaError_t err;
    if ((err = cudaMalloc((void **)&d.ws, sizeof(workspace))) != cudaSuccess)
        what = "cudaMalloc of the workspace";
    else if ((err = cudaMallocHost((void **)&d.record, sizeof(status_record))) != cudaSuccess)
        what = "cudaMallocHost of the status record";
    else if ((err = cudaEventCreateWithFlags(&d.done, cudaEventDisableTiming)) != cudaSuccess ||
             (err = cudaEventCreateWithFlags(&d.captured, cudaEventDisableTiming)) != cudaSuccess)
        what = "cudaEventCreate";
    else if ((err = cudaStreamCreateWithFlags(&d.own, cudaStreamNonBlocking)) != cudaSuccess)
        what = "cudaStreamCreate";
    else {
        what = "resetting the workspace";
#ifdef NLL_CUDA_TEST_HOOKS
        // Test builds only (tests/gpu/run.sh): the reset fails as a failed launch would, and
        // the workspace holds 0xff bytes, as uninitialised memory may.
        if (getenv("NLL_TEST_FAIL_WORKSPACE_RESET")) {
            cudaMemsetAsync(d.ws, 0xff, sizeof(workspace), d.own);
            err = cudaErrorLaunchOutOfResources;
        } else
#endif
        {
            launch_reset(d.ws, d.own);
            err = cudaGetLastError();
        }
        if (err == cudaSuccess)
            err = cudaStreamSynchronize(d.own);
    }
    if (err != cudaSuccess) {
        cudaGetLastError();
        free_device(&d);
        return nll_fail(call, NLL_ERROR_CUDA, "",
                        "preparing the context's GPU workspace failed: %s: %s (%s); nothing was "
                        "computed, and the next call tries again",
                        what, cudaGetErrorName(err), cudaGetErrorString(err));
    }
    *dev = d;
    return NLL_OK;
}

// The context's workspace on device id (the current device), made on first use.
nll_status device_for(const nll_call *call, int id, device_state **out) {
    nll_context *ctx = call->ctx;
    if (!ctx->cuda) {
        ctx->cuda = (nll_cuda_state *)calloc(1, sizeof(nll_cuda_state));
        if (!ctx->cuda)
            return nll_fail(call, NLL_ERROR_OUT_OF_MEMORY, "", "no memory for the CUDA state");
    }
    device_state *dev = &ctx->cuda->devices[id];
    *out = dev;
    if (dev->ws)
        return NLL_OK;
    cudaStreamCaptureStatus capture = cudaStreamCaptureStatusNone;
    cudaStreamIsCapturing(stream_of(ctx), &capture);
    if (capture != cudaStreamCaptureStatusNone)
        return nll_fail(call, NLL_ERROR_CUDA, "",
                        "the context's first call on cuda:%d is being captured into a CUDA graph, "
                        "but its workspace must be allocated first: make one call before "
                        "capturing",
                        id);
    return prepare_device(call, dev);
}

// Kernels fault on misaligned or host pointers, which would end the CUDA context: refuse them.
nll_status check_pointer(const nll_call *call, const nll_view *v, int id) {
    if (!v->present || v->numel == 0)
        return NLL_OK;
    if ((uintptr_t)v->data % (uintptr_t)v->item_size)
        return nll_fail(call, NLL_ERROR_CUDA, v->name,
                        "%s.data + byte_offset = %p is not aligned to its %d-byte elements; GPU "
                        "kernels need aligned elements",
                        v->name, (void *)v->data, (int)v->item_size);
    cudaPointerAttributes attributes;
    cudaError_t err = cudaPointerGetAttributes(&attributes, v->data);
    if (err != cudaSuccess) {
        cudaGetLastError(); // not a CUDA error of the context: clear it
        return nll_fail(call, NLL_ERROR_CUDA, v->name,
                        "%s.data = %p is not memory the CUDA runtime knows (%s); the tensor says "
                        "cuda:%d",
                        v->name, (void *)v->data, cudaGetErrorString(err), id);
    }
    if (attributes.type == cudaMemoryTypeManaged)
        return NLL_OK;
    if (attributes.type != cudaMemoryTypeDevice)
        return nll_fail(call, NLL_ERROR_CUDA, v->name,
                        "%s.data = %p is host memory, but the tensor says cuda:%d", v->name,
                        (void *)v->data, id);
    if (attributes.device != id)
        return nll_fail(call, NLL_ERROR_DEVICE_MISMATCH, v->name,
                        "%s.data = %p is memory of cuda:%d, but the tensor says cuda:%d", v->name,
                        (void *)v->data, attributes.device, id);
    return NLL_OK;
}

void fill_walk(walk *w, const nll_iter *it, int slots) {
    memset(w, 0, sizeof *w);
    w->ndim = it->ndim;
    for (int d = 0; d < it->ndim; d++) {
        w->shape[d] = it->shape[d];
        for (int s = 0; s < slots; s++)
            w->strides[s][d] = it->strides[s][d];
    }
}

view_args view_walk(const nll_view *v) {
    view_args a;
    memset(&a, 0, sizeof a);
    a.data = v->data;
    a.item_size = (int)v->item_size;
    a.numel = v->numel;
    nll_iter it;
    nll_iter_init(&it, v->shape, v->ndim);
    nll_iter_slot(&it, 0, v, -1);
    fill_walk(&a.elements, &it, 1);
    int64_t compact = 1;
    a.contiguous = 1;
    for (int d = v->ndim - 1; d >= 0; d--) {
        if (v->shape[d] != 1 && v->strides[d] != compact)
            a.contiguous = 0;
        compact *= v->shape[d];
    }
    return a;
}

int grid_for(int64_t items, int threads) {
    int64_t blocks = (items + threads - 1) / threads;
    return (int)(blocks < 1 ? 1 : blocks > kMaxBlocks ? kMaxBlocks : blocks);
}

int64_t flat_or_none(unsigned long long first) { return first == ~0ull ? -1 : (int64_t)first; }

// The message of a rejected loss call, as the CPU would give it.
nll_status report(const nll_call *call, const nll_loss_problem *p, const status_record *r) {
    const scan_state &s = r->scan;
    const unsigned char *bytes = r->first_bytes; // the offending element, as the check saw it
    switch (r->status) {
    case NLL_ERROR_FLOAT_TARGET:
    case NLL_ERROR_TARGET_NOT_WHOLE: {
        nll_whole_scan scan = {flat_or_none(s.whole_first), 0, (int64_t)s.whole_bad,
                               s.whole_min, s.whole_max};
        scan.first_value = nll_load_as_double((const char *)bytes, p->target.dtype);
        return nll_report_float_target(call, p->op, &p->target, &p->input, p->flags, &scan);
    }
    case NLL_ERROR_NONFINITE: {
        const nll_view *v = r->finite_which ? &p->target : &p->input;
        nll_finite_scan scan = {flat_or_none(s.finite_first[r->finite_which]), 0,
                                (int64_t)s.finite_count[r->finite_which]};
        scan.value = nll_load_as_double((const char *)bytes, v->dtype);
        return nll_report_nonfinite(call, v, &scan,
                                    r->finite_which ? "probabilities must be finite"
                                                    : nll_nonfinite_reason(p->op));
    }
    default: {
        nll_target_scan scan = {flat_or_none(s.target_first), (int64_t)s.target_bad,
                                (int64_t)s.target_counted, (int64_t)s.target_beyond,
                                s.target_min, s.target_max, s.seen_minus_one, s.seen_255,
                                !s.not_only_c_bad};
        return nll_report_target_range(call, p, &scan, bytes);
    }
    }
}

// Reads the device's status record once its last call is done; reports and clears it.
nll_status collect(const nll_call *call, device_state *dev, cudaStream_t stream,
                   const nll_loss_problem *current, unsigned long long current_serial) {
    nll_context *ctx = call->ctx;
    cudaError_t err = cudaSuccess;
    if (dev->graphs || (dev->used && dev->last != stream))
        err = cudaStreamWaitEvent(stream, dev->done, 0);
    if (err == cudaSuccess)
        err = cudaMemcpyAsync(dev->record, &dev->ws->sticky, sizeof(status_record),
                              cudaMemcpyDeviceToHost, stream);
    if (err == cudaSuccess)
        err = cudaStreamSynchronize(stream);
    if (err != cudaSuccess)
        return cuda_fail(call, err, "waiting for the GPU");
    const status_record r = *dev->record;
    if (r.status == 0)
        return NLL_OK;
    nll_status status;
    if (current && r.serial == current_serial) {
        status = report(call, current, &r);
    } else {
        const pending_call &pc = ctx->cuda->pending[r.serial % kPending];
        if (pc.serial == r.serial) {
            const nll_call original = {ctx, pc.function};
            status = report(&original, &pc.problem, &r);
        } else {
            status = nll_fail(call, (nll_status)r.status, "",
                              "asynchronous call number %llu was rejected (%s); its details "
                              "were overwritten by later calls: call nll_context_sync more often",
                              r.serial, nll_status_string((nll_status)r.status));
        }
    }
    if ((err = cudaMemsetAsync(&dev->ws->sticky.status, 0, sizeof(int), stream)) != cudaSuccess ||
        (err = cudaStreamSynchronize(stream)) != cudaSuccess)
        return cuda_fail(call, err, "clearing the status word");
    return status;
}

// Before the launches: whether the stream is being captured, and ordering after the last work
// on this device's workspace when that may be on another stream: the last uncaptured call, or
// a replay of a graph captured from this context (its record of done). A captured call puts
// that wait into the graph as an external event node, so each replay waits for the context's
// work launched before it; within one capture, a call on another stream than the previous
// captured call waits for that one. Clears a stale error of the CUDA runtime so a launch
// failure is this call's.
nll_status begin(const nll_call *call, device_state *dev, cudaStream_t stream, bool *capturing,
                 unsigned long long *capture_id) {
    cudaGetLastError();
    cudaStreamCaptureStatus capture = cudaStreamCaptureStatusNone;
    *capture_id = 0;
    cudaError_t err = cudaStreamIsCapturing(stream, &capture);
    if (err != cudaSuccess)
        return cuda_fail(call, err, "cudaStreamIsCapturing");
    *capturing = capture != cudaStreamCaptureStatusNone;
    if (*capturing && (err = cudaStreamGetCaptureInfo(stream, &capture, capture_id)) != cudaSuccess)
        return cuda_fail(call, err, "cudaStreamGetCaptureInfo");
    if (!*capturing) {
        if ((dev->graphs || (dev->used && dev->last != stream)) &&
            (err = cudaStreamWaitEvent(stream, dev->done, 0)) != cudaSuccess)
            return cuda_fail(call, err, "ordering after the previous call's stream");
        return NLL_OK;
    }
    if ((dev->used || dev->graphs) &&
        (err = cudaStreamWaitEvent(stream, dev->done, cudaEventWaitExternal)) != cudaSuccess)
        return cuda_fail(call, err, "ordering the captured call after the context's earlier work");
    if (dev->capture_id == *capture_id && dev->capture_last != stream &&
        (err = cudaStreamWaitEvent(stream, dev->captured, 0)) != cudaSuccess)
        return cuda_fail(call, err, "ordering after the previous captured call's stream");
    return NLL_OK;
}

// After the launches: launch errors now; value errors at once, or -- asynchronous mode, or a
// stream being captured into a graph -- at nll_context_sync.
nll_status finish(const nll_call *call, device_state *dev, cudaStream_t stream, bool capturing,
                  unsigned long long capture_id, const nll_loss_problem *p,
                  unsigned long long serial) {
    cudaError_t err = cudaGetLastError();
    if (err != cudaSuccess)
        return cuda_fail(call, err, "launching the kernels");
    if (!capturing) {
        if ((err = cudaEventRecord(dev->done, stream)) != cudaSuccess)
            return cuda_fail(call, err, "cudaEventRecord");
        dev->last = stream;
        dev->used = true;
    } else {
        // Each replay records done (a graph node) for the work launched after it, and, within
        // this capture, captured for the next captured call on another stream.
        if ((err = cudaEventRecordWithFlags(dev->done, stream, cudaEventRecordExternal)) !=
                cudaSuccess ||
            (err = cudaEventRecord(dev->captured, stream)) != cudaSuccess)
            return cuda_fail(call, err, "cudaEventRecord in the capture");
        dev->graphs = true;
        dev->capture_id = capture_id;
        dev->capture_last = stream;
    }
    nll_context *ctx = call->ctx;
    if (ctx->cuda_async || capturing) {
        if (p) {
            pending_call &pc = ctx->cuda->pending[serial % kPending];
            pc.serial = serial;
            pc.function = call->function;
            pc.problem = *p;
        }
        return NLL_OK;
    }
    return collect(call, dev, stream, p, serial);
}

} // namespace

extern "C" int nll_cuda_available(void) {
    int count = 0;
    if (cudaGetDeviceCount(&count) != cudaSuccess) {
        cudaGetLastError();
        return 0;
    }
    return count > 0;
}

extern "C" nll_status nll_cuda_loss(const nll_call *call, const nll_loss_problem *p,
                                    int want_loss, int want_grad) {
    const int id = p->input.device.device_id;
    device_scope scope;
    nll_status status;
    device_state *dev;
    if ((status = scope.enter(call, "input", id)) || (status = device_for(call, id, &dev)))
        return status;
    const nll_view *views[] = {&p->input, &p->target, &p->weight, &p->loss,
                               &p->total_weight, &p->grad_loss, &p->grad};
    for (const nll_view *v : views)
        if ((status = check_pointer(call, v, id)))
            return status;

    loss_args a;
    memset(&a, 0, sizeof a);
    a.x = p->input.data;
    a.target = p->target.data;
    a.weight = p->weight.present ? p->weight.data : nullptr;
    a.grad_loss = p->grad_loss.present ? p->grad_loss.data : nullptr;
    a.loss = p->loss.present ? p->loss.data : nullptr;
    a.total_weight = p->total_weight.present ? p->total_weight.data : nullptr;
    a.grad = p->grad.present ? p->grad.data : nullptr;
    a.classes = p->classes;
    // With no classes, probability rows are empty: walk them only to write per-sample losses.
    a.samples = p->classes == 0 && p->probability &&
                        !(want_loss && p->reduction == NLL_REDUCTION_NONE)
                    ? 0
                    : p->samples;
    a.x_class = p->class_stride[NLL_SLOT_INPUT];
    a.q_class = p->class_stride[NLL_SLOT_TARGET];
    a.g_class = p->class_stride[NLL_SLOT_GRAD];
    a.w_stride = p->weight.present ? p->weight.strides[0] : 0;
    fill_walk(&a.samples_walk, &p->samples_iter, NLL_ITER_SLOTS);
    a.ignore_index = p->ignore_index;
    a.smoothing = p->label_smoothing;
    a.fixed_denominator = p->classes ? (double)p->samples : NAN;
    a.reduction = (int)p->reduction;
    a.probability = p->probability;
    a.want_loss = want_loss;
    a.want_grad = want_grad;
    a.nll = p->op == NLL_OP_NLL;
    a.input_ndim = p->input.ndim;
    a.target_code = p->target.dtype.code;
    a.target_bits = p->target.dtype.bits;
    a.check_targets = !p->probability;
    a.allow_float_targets = (p->flags & NLL_ALLOW_FLOAT_TARGETS) != 0;
    a.check_blocks = a.check_targets && a.samples > 0 ? grid_for(a.samples, 256) : 0;
    a.blocks = a.nll ? grid_for(a.samples, 256) : cross_entropy_blocks(a);
    a.serial = ++call->ctx->cuda->serial;
    a.ws = dev->ws;

    cudaStream_t stream = stream_of(call->ctx);
    bool capturing;
    unsigned long long capture_id;
    if ((status = begin(call, dev, stream, &capturing, &capture_id)))
        return status;
    view_args finite_input, finite_target;
    const bool finite = (p->flags & NLL_CHECK_FINITE) != 0;
    if (finite) {
        finite_input = view_walk(&p->input);
        if (p->probability)
            finite_target = view_walk(&p->target);
    }
    launch_checks(a, p->kind, finite ? &finite_input : nullptr,
                  finite && p->probability ? &finite_target : nullptr, stream);
    if (a.nll)
        launch_nll_loss(a, p->kind, stream);
    else
        launch_cross_entropy(a, p->kind, stream);
    if (want_loss)
        launch_reduce(a, p->kind, stream);
    return finish(call, dev, stream, capturing, capture_id, p, a.serial);
}

extern "C" nll_status nll_cuda_softmax(const nll_call *call, const nll_softmax_problem *p,
                                       int backward) {
    const nll_view *first = backward ? &p->grad_output : &p->input;
    const int id = first->device.device_id;
    device_scope scope;
    nll_status status;
    device_state *dev;
    if ((status = scope.enter(call, first->name, id)) || (status = device_for(call, id, &dev)))
        return status;
    const nll_view *views[] = {&p->input, &p->output, &p->grad_output, &p->grad};
    for (const nll_view *v : views)
        if ((status = check_pointer(call, v, id)))
            return status;
    if (p->classes == 0 || p->rows == 0)
        return NLL_OK;
    softmax_args a;
    memset(&a, 0, sizeof a);
    a.x = p->input.data;
    a.y = p->output.data;
    a.grad_output = p->grad_output.data;
    a.out = backward ? p->grad.data : p->output.data;
    a.rows = p->rows;
    a.classes = p->classes;
    a.x_class = p->class_stride[NLL_SM_INPUT];
    a.y_class = p->class_stride[NLL_SM_OUTPUT];
    a.go_class = p->class_stride[NLL_SM_GRAD_OUTPUT];
    a.out_class = p->class_stride[backward ? NLL_SM_GRAD : NLL_SM_OUTPUT];
    fill_walk(&a.rows_walk, &p->rows_iter, NLL_SM_GRAD + 1);
    a.ws = dev->ws;
    cudaStream_t stream = stream_of(call->ctx);
    bool capturing;
    unsigned long long capture_id;
    if ((status = begin(call, dev, stream, &capturing, &capture_id)))
        return status;
    launch_log_softmax(a, p->kind, backward != 0, stream);
    return finish(call, dev, stream, capturing, capture_id, nullptr, 0);
}

extern "C" nll_status nll_cuda_sync(const nll_call *call) {
    nll_context *ctx = call->ctx;
    if (!ctx->cuda)
        return NLL_OK;
    nll_status first = NLL_OK;
    for (int id = 0; id < kMaxDevices; id++) {
        device_state *dev = &ctx->cuda->devices[id];
        if (!dev->ws)
            continue;
        device_scope scope;
        nll_status status = scope.enter(call, "the context's workspace", id);
        if (!status) // on the device's own stream: the context's may belong to another device
            status = collect(call, dev, dev->own, nullptr, 0);
        if (status && !first)
            first = status;
        if (status) // keep the first error's message
            break;
    }
    return first;
}

extern "C" void nll_cuda_release(nll_context *ctx) {
    if (!ctx->cuda)
        return;
    for (int id = 0; id < kMaxDevices; id++) {
        device_state *dev = &ctx->cuda->devices[id];
        if (!dev->ws)
            continue;
        int previous = -1;
        cudaGetDevice(&previous);
        cudaSetDevice(id);
        free_device(dev);
        if (previous >= 0)
            cudaSetDevice(previous);
    }
    free(ctx->cuda);
    ctx->cuda = nullptr;
}
