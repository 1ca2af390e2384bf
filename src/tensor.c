/* DLTensor checking, dtype facts, element access for messages, and the strided iterator. */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "convert.h"
#include "internal.h"

nll_float_kind nll_float_kind_of(DLDataType dtype) {
    if (dtype.lanes != 1)
        return NLL_KIND_NONE;
    if (dtype.code == kDLFloat) {
        switch (dtype.bits) {
        case 64: return NLL_KIND_F64;
        case 32: return NLL_KIND_F32;
        case 16: return NLL_KIND_F16;
        default: return NLL_KIND_NONE;
        }
    }
    if (dtype.code == kDLBfloat && dtype.bits == 16)
        return NLL_KIND_BF16;
    return NLL_KIND_NONE;
}

int nll_dtype_is_integer(DLDataType dtype) {
    if (dtype.lanes != 1 || (dtype.code != kDLInt && dtype.code != kDLUInt))
        return 0;
    return dtype.bits == 8 || dtype.bits == 16 || dtype.bits == 32 || dtype.bits == 64;
}

static int dtype_is_bool(DLDataType dtype) {
    return dtype.lanes == 1 && dtype.code == NLL_DLPACK_BOOL && dtype.bits == 8;
}

const char *nll_dtype_name(DLDataType dtype) {
    if (dtype.lanes != 1)
        return "a vector type";
    switch (dtype.code) {
    case kDLFloat:
        switch (dtype.bits) {
        case 64: return "float64";
        case 32: return "float32";
        case 16: return "float16";
        default: return "float of an unsupported width";
        }
    case kDLBfloat: return dtype.bits == 16 ? "bfloat16" : "bfloat of an unsupported width";
    case kDLInt:
        switch (dtype.bits) {
        case 8: return "int8";
        case 16: return "int16";
        case 32: return "int32";
        case 64: return "int64";
        default: return "int of an unsupported width";
        }
    case kDLUInt:
        switch (dtype.bits) {
        case 8: return "uint8";
        case 16: return "uint16";
        case 32: return "uint32";
        case 64: return "uint64";
        default: return "uint of an unsupported width";
        }
    case kDLComplex: return dtype.bits == 64 ? "complex64" : "complex128";
    case NLL_DLPACK_BOOL: return "bool";
    default: return "unknown";
    }
}

static int dtype_is_known(DLDataType dtype) {
    return nll_float_kind_of(dtype) != NLL_KIND_NONE || nll_dtype_is_integer(dtype) ||
           dtype_is_bool(dtype) ||
           (dtype.lanes == 1 && dtype.code == kDLComplex && (dtype.bits == 64 || dtype.bits == 128));
}

static int device_is_host(DLDevice device) {
    return device.device_type == kDLCPU || device.device_type == kDLCUDAHost;
}

/* Memory the CUDA backend serves: device memory, and managed memory (which kernels reach
 * faster than the host does). */
int nll_device_is_cuda(DLDevice device) {
    return device.device_type == kDLCUDA || device.device_type == kDLCUDAManaged;
}

#ifdef NLL_HAVE_CUDA
static int device_is_served(DLDevice device) {
    return device_is_host(device) || nll_device_is_cuda(device);
}
#define NLL_SERVED_MEMORY "CPU and CUDA memory"
#else
static int device_is_served(DLDevice device) { return device_is_host(device); }
#define NLL_SERVED_MEMORY "CPU memory only (it was built without the CUDA backend)"
#endif

const char *nll_device_name(DLDevice device, char *buf, size_t size) {
    const char *kind;
    switch (device.device_type) {
    case kDLCPU: kind = "cpu"; break;
    case kDLCUDA: kind = "cuda"; break;
    case kDLCUDAHost: kind = "cuda_host"; break;
    case kDLCUDAManaged: kind = "cuda_managed"; break;
    case kDLROCM: kind = "rocm"; break;
    case kDLMetal: kind = "metal"; break;
    case kDLVulkan: kind = "vulkan"; break;
    case kDLOpenCL: kind = "opencl"; break;
    default: kind = "device"; break;
    }
    if (device.device_type == kDLCPU)
        snprintf(buf, size, "%s", kind);
    else
        snprintf(buf, size, "%s:%d (DLPack device type %d)", kind, device.device_id,
                 (int)device.device_type);
    return buf;
}

const char *nll_format_shape(char *buf, size_t size, const int64_t *shape, int ndim) {
    size_t used = 0;
    used += (size_t)snprintf(buf, size, "(");
    for (int d = 0; d < ndim && used < size; d++)
        used += (size_t)snprintf(buf + used, size - used, "%s%" PRId64, d ? ", " : "", shape[d]);
    if (used < size)
        snprintf(buf + used, size - used, ")");
    return buf;
}

nll_status nll_view_make(const nll_call *call, const char *name, const DLTensor *tensor,
                         int optional, nll_view *view) {
    memset(view, 0, sizeof *view);
    view->name = name;
    if (!tensor) {
        if (optional)
            return NLL_OK;
        return nll_fail(call, NLL_ERROR_NULL_ARGUMENT, name, "%s is NULL", name);
    }
    view->present = 1;
    if (tensor->ndim < 0 || tensor->ndim > NLL_MAX_DIMS)
        return nll_fail(call, NLL_ERROR_INPUT_RANK, name,
                        "%s has %d dimensions; libnll accepts 0 to %d", name, tensor->ndim,
                        NLL_MAX_DIMS);
    if (tensor->ndim > 0 && !tensor->shape)
        return nll_fail(call, NLL_ERROR_NULL_ARGUMENT, name,
                        "%s.shape is NULL but %s has %d dimensions", name, name, tensor->ndim);
    if (!dtype_is_known(tensor->dtype))
        return nll_fail(call, NLL_ERROR_UNSUPPORTED_DTYPE, name,
                        "%s has dtype code %d, %d bits, %d lanes, which libnll does not support",
                        name, tensor->dtype.code, tensor->dtype.bits, tensor->dtype.lanes);
    view->dtype = tensor->dtype;
    view->device = tensor->device;
    view->ndim = tensor->ndim;
    view->item_size = tensor->dtype.bits / 8;

    int64_t numel = 1;
    int overflow = 0;
    for (int d = 0; d < tensor->ndim; d++) {
        int64_t n = tensor->shape[d];
        if (n < 0)
            return nll_fail(call, NLL_ERROR_NEGATIVE_SIZE, name,
                            "%s.shape[%d] = %" PRId64 " is negative", name, d, n);
        view->shape[d] = n;
        if (n != 0 && numel > INT64_MAX / n)
            overflow = 1;
        else
            numel *= n;
    }
    for (int d = 0; d < tensor->ndim; d++)
        if (view->shape[d] == 0)
            overflow = 0, numel = 0;
    char shape_text[256];
    if (overflow)
        return nll_fail(call, NLL_ERROR_SIZE_OVERFLOW, name,
                        "%s of shape %s has more elements than int64 can count", name,
                        nll_format_shape(shape_text, sizeof shape_text, view->shape, view->ndim));
    view->numel = numel;

    /* Strides: given, or compact row-major. */
    int64_t compact = 1; /* bounded by numel; an empty tensor's strides are never used */
    for (int d = tensor->ndim - 1; d >= 0; d--) {
        view->strides[d] = tensor->strides ? tensor->strides[d] : numel ? compact : 0;
        if (numel)
            compact *= view->shape[d];
    }

    char device_text[64];
    if (!device_is_served(tensor->device))
        return nll_fail(call, NLL_ERROR_UNSUPPORTED_DEVICE, name,
                        "%s is on %s, but this build of libnll serves " NLL_SERVED_MEMORY, name,
                        nll_device_name(tensor->device, device_text, sizeof device_text));

    if (numel == 0) {
        view->data = tensor->data; /* never read: byte_offset may point anywhere */
        view->lo = view->hi = 0;
        return NLL_OK;
    }
    if (!tensor->data)
        return nll_fail(call, NLL_ERROR_NULL_DATA, name,
                        "%s.data is NULL but %s has %" PRId64 " elements", name, name, numel);

    /* Byte extent: the lowest and highest element offsets, checked against overflow. */
    int64_t low = 0, high = 0;
    for (int d = 0; d < tensor->ndim; d++) {
        int64_t stride = view->strides[d], last = view->shape[d] - 1;
        if (stride == INT64_MIN || (last > 0 && llabs((long long)stride) > INT64_MAX / last))
            goto extent_overflow;
        int64_t reach = stride * last;
        if (reach > 0) {
            if (high > INT64_MAX - reach)
                goto extent_overflow;
            high += reach;
        } else {
            if (low < INT64_MIN - reach)
                goto extent_overflow;
            low += reach;
        }
    }
    if (high > INT64_MAX / view->item_size - 1 || low < -(INT64_MAX / view->item_size))
        goto extent_overflow;
    uintptr_t base = (uintptr_t)tensor->data;
    if (tensor->byte_offset > (uint64_t)(UINTPTR_MAX - base))
        goto extent_overflow;
    base += (uintptr_t)tensor->byte_offset;
    uintptr_t below = (uintptr_t)(-(low * view->item_size));
    uintptr_t above = (uintptr_t)((high + 1) * view->item_size);
    if (below > base || above > UINTPTR_MAX - base)
        goto extent_overflow;
    /* from the checked address: data + byte_offset as pointer arithmetic may exceed
     * PTRDIFF_MAX even where the address is valid */
    view->data = (char *)base;
    view->lo = base - below;
    view->hi = base + above;
    return NLL_OK;

extent_overflow:
    return nll_fail(call, NLL_ERROR_SIZE_OVERFLOW, name,
                    "%s of shape %s with its strides and byte_offset spans more bytes than the "
                    "address space holds",
                    name, nll_format_shape(shape_text, sizeof shape_text, view->shape, view->ndim));
}

char *nll_view_element(const nll_view *view, int64_t flat) {
    int64_t offset = 0;
    for (int d = view->ndim - 1; d >= 0; d--) {
        int64_t n = view->shape[d];
        offset += (flat % n) * view->strides[d];
        flat /= n;
    }
    return view->data + offset * view->item_size;
}

const char *nll_format_position(char *buf, size_t size, const nll_view *view, int64_t flat,
                                nll_error_detail *detail) {
    int64_t index[NLL_MAX_DIMS];
    int64_t rest = flat;
    for (int d = view->ndim - 1; d >= 0; d--) {
        index[d] = rest % view->shape[d];
        rest /= view->shape[d];
    }
    if (detail) {
        detail->ndim = view->ndim;
        memcpy(detail->index, index, sizeof(int64_t) * (size_t)view->ndim);
    }
    if (view->ndim == 0) {
        snprintf(buf, size, "%s", view->name);
    } else if (view->ndim == 1) {
        snprintf(buf, size, "%s[%" PRId64 "]", view->name, flat);
    } else {
        size_t used = (size_t)snprintf(buf, size, "%s[%" PRId64 "] (index [", view->name, flat);
        for (int d = 0; d < view->ndim && used < size; d++)
            used += (size_t)snprintf(buf + used, size - used, "%s%" PRId64, d ? ", " : "",
                                     index[d]);
        if (used < size)
            snprintf(buf + used, size - used, "])");
    }
    return buf;
}

int nll_views_overlap(const nll_view *a, const nll_view *b) {
    if (!a->present || !b->present || a->lo == a->hi || b->lo == b->hi)
        return 0;
    return a->lo < b->hi && b->lo < a->hi;
}

int nll_views_identical(const nll_view *a, const nll_view *b) {
    if (a->data != b->data || a->ndim != b->ndim || a->dtype.code != b->dtype.code ||
        a->dtype.bits != b->dtype.bits)
        return 0;
    for (int d = 0; d < a->ndim; d++)
        if (a->shape[d] != b->shape[d] || (a->shape[d] > 1 && a->strides[d] != b->strides[d]))
            return 0;
    return 1;
}

double nll_load_as_double(const char *p, DLDataType dtype) {
    switch (dtype.code) {
    case kDLFloat:
        if (dtype.bits == 64) { double v; memcpy(&v, p, 8); return v; }
        if (dtype.bits == 32) { float v; memcpy(&v, p, 4); return v; }
        { uint16_t v; memcpy(&v, p, 2); return nll_half_to_float(v); }
    case kDLBfloat: { uint16_t v; memcpy(&v, p, 2); return nll_bfloat_to_float(v); }
    case kDLInt:
        switch (dtype.bits) {
        case 8: { int8_t v; memcpy(&v, p, 1); return v; }
        case 16: { int16_t v; memcpy(&v, p, 2); return v; }
        case 32: { int32_t v; memcpy(&v, p, 4); return v; }
        default: { int64_t v; memcpy(&v, p, 8); return (double)v; }
        }
    case kDLUInt:
        switch (dtype.bits) {
        case 8: { uint8_t v; memcpy(&v, p, 1); return v; }
        case 16: { uint16_t v; memcpy(&v, p, 2); return v; }
        case 32: { uint32_t v; memcpy(&v, p, 4); return v; }
        default: { uint64_t v; memcpy(&v, p, 8); return (double)v; }
        }
    default: { uint8_t v; memcpy(&v, p, 1); return v; }
    }
}

/* Index loaders: memcpy keeps unaligned and strided data well-defined. */
#define NLL_INTEGER_LOADER(name, type)                                                         \
    static int64_t name(const char *p) {                                                       \
        type v;                                                                                \
        memcpy(&v, p, sizeof v);                                                               \
        return (int64_t)v;                                                                     \
    }
NLL_INTEGER_LOADER(load_i8, int8_t)
NLL_INTEGER_LOADER(load_i16, int16_t)
NLL_INTEGER_LOADER(load_i32, int32_t)
NLL_INTEGER_LOADER(load_i64, int64_t)
NLL_INTEGER_LOADER(load_u8, uint8_t)
NLL_INTEGER_LOADER(load_u16, uint16_t)
NLL_INTEGER_LOADER(load_u32, uint32_t)

static int64_t load_u64(const char *p) {
    uint64_t v;
    memcpy(&v, p, sizeof v);
    return v > (uint64_t)INT64_MAX ? INT64_MAX : (int64_t)v;
}

static int64_t saturate_to_index(double v) {
    if (!(v == v))
        return INT64_MIN;
    if (v >= 9223372036854775807.0)
        return INT64_MAX;
    if (v <= -9223372036854775808.0)
        return INT64_MIN;
    return (int64_t)v;
}

#define NLL_FLOAT_LOADER(name, code, bits)                                                     \
    static int64_t name(const char *p) {                                                       \
        DLDataType dtype = {code, bits, 1};                                                    \
        return saturate_to_index(nll_load_as_double(p, dtype));                                \
    }
NLL_FLOAT_LOADER(load_f64, kDLFloat, 64)
NLL_FLOAT_LOADER(load_f32, kDLFloat, 32)
NLL_FLOAT_LOADER(load_f16, kDLFloat, 16)
NLL_FLOAT_LOADER(load_bf16, kDLBfloat, 16)

nll_index_loader nll_index_loader_for(DLDataType dtype) {
    if (dtype.code == kDLInt) {
        switch (dtype.bits) {
        case 8: return load_i8;
        case 16: return load_i16;
        case 32: return load_i32;
        case 64: return load_i64;
        }
    } else if (dtype.code == kDLUInt) {
        switch (dtype.bits) {
        case 8: return load_u8;
        case 16: return load_u16;
        case 32: return load_u32;
        case 64: return load_u64;
        }
    }
    switch (nll_float_kind_of(dtype)) {
    case NLL_KIND_F64: return load_f64;
    case NLL_KIND_F32: return load_f32;
    case NLL_KIND_F16: return load_f16;
    case NLL_KIND_BF16: return load_bf16;
    default: return NULL;
    }
}

void nll_iter_init(nll_iter *it, const int64_t *shape, int ndim) {
    memset(it, 0, sizeof *it);
    it->ndim = ndim;
    for (int d = 0; d < ndim; d++)
        it->shape[d] = shape[d];
}

void nll_iter_slot(nll_iter *it, int slot, const nll_view *view, int skip) {
    if (!view || !view->present || view->ndim == 0)
        return;
    int out = 0;
    for (int d = 0; d < view->ndim; d++)
        if (d != skip)
            it->strides[slot][out++] = view->strides[d];
}

void nll_iter_seek(nll_iter *it, int64_t flat) {
    for (int s = 0; s < NLL_ITER_SLOTS; s++)
        it->offset[s] = 0;
    for (int d = it->ndim - 1; d >= 0; d--) {
        it->index[d] = flat % it->shape[d];
        flat /= it->shape[d];
        for (int s = 0; s < NLL_ITER_SLOTS; s++)
            it->offset[s] += it->index[d] * it->strides[s][d];
    }
}
