/* Vector row primitives for contiguous rows, one generic body over an instruction set's
 * vector macros and a dtype's loads and stores. Included after dtype.h, before ref_body.h,
 * by each instruction set's file (avx512.c, avx2.c), which defines
 *   NLL_V, NLL_VLEN                    the float32 vector type and its lane count
 *   NLL_VSET1 NLL_VADD NLL_VSUB NLL_VMUL NLL_VMAX NLL_VFMA(a, b, c) = a * b + c
 *   NLL_VEXP, NLL_VLOG                 exp and log (src/cpu/vmath.h): NaN in NaN out, a few ulp
 *   NLL_VEXP_SHIFTED                   exp for x <= 0 (shifted logits): no upper clamp
 *   NLL_VHSUM, NLL_VHMAX               horizontal sum and max, to float
 *   NLL_VKEEP(v, n)                    v with lanes n and above set to 0
 *   NLL_VLOAD(p), NLL_VSTORE(p, v)     a full vector of NLL_T at p (char *), as float32
 *   NLL_VLOADN(p, n, fill), NLL_VSTOREN(p, v, n)   the first n < NLL_VLEN elements
 *   NLL_VLOADF, NLL_VSTOREF(float *, v)   a vector from and to float32 lanes
 * and may define
 *   NLL_VLOAD2(p, a, b), NLL_VSTORE2(p, a, b)   2 NLL_VLEN elements as two vectors, in any
 *                                      fixed order of elements to lanes (bfloat16: the even
 *                                      and odd elements); by default two NLL_VLOADs in order
 *   NLL_VSTREAM2(p, a, b)              NLL_VSTORE2 by streaming stores, p 64-byte aligned
 *   NLL_VJOIN2(a, b)                   a pair out of element order joined into it, an
 *                                      NLL_VJOINED, with NLL_VJOINED_SHIFT, _STREAM,
 *                                      _STORE_FIRST, _STORE_FROM (avx512.h): rows so kept are
 *                                      then streamed from their first 64-byte boundary too
 * and, for the short-row kernel of ref_body.h (NLL_VLEN rows at a time, one per lane),
 *   NLL_VDIV, NLL_VTRANSPOSE(NLL_V rows[NLL_VLEN])   a division; an in-place lane transpose
 *   NLL_VI, NLL_VILOAD(int32_t *)      int32 lanes (class indices)
 *   NLL_VTARGETS(p, ignore)            NLL_VLEN contiguous int64 targets, -1 where ignored
 *   NLL_VSELECT_EQ(idx, c, a, b)       a in the lanes where idx == c, b elsewhere
 *   NLL_VD, NLL_VD_ZERO, NLL_VD_ADD(acc, v), NLL_VD_SUM(acc)   float lanes summed in float64
 * Rows are walked in blocks small enough for L1, so the second sweep of a block (and of a row
 * that fits in L2) reads cache, not memory. ref_body.h #undefs the load and store macros. */

#ifndef NLL_ROW_BLOCK
#define NLL_ROW_BLOCK 2048 /* elements: 8 KiB of float32, in L1 for a second sweep */
#endif
#define NLL_TSIZE ((int64_t)sizeof(NLL_T))
#ifndef NLL_VLOAD2
#define NLL_VLOAD2(p, a, b) ((a) = NLL_VLOAD(p), (b) = NLL_VLOAD((p) + NLL_VLEN * NLL_TSIZE))
#define NLL_VSTORE2(p, a, b) (NLL_VSTORE(p, a), NLL_VSTORE((p) + NLL_VLEN * NLL_TSIZE, b))
#define NLL_PAIRS_IN_ORDER 1 /* kept exponentials are in element order */
#else
#define NLL_PAIRS_IN_ORDER 0
#endif
#ifndef NLL_VSTREAM2
#define NLL_VSTREAM2(p, a, b) NLL_VSTORE2(p, a, b)
#endif
#define NLL_PAIR (2 * NLL_VLEN)
#ifndef NLL_PREFETCH_AHEAD
#define NLL_PREFETCH_AHEAD 32768
#endif

static int FN(fast_has_nan)(const char *x, int64_t n) {
    for (int64_t i = 0; i < n; i++) {
        NLL_A v = FN(load)(x, i);
        if (v != v)
            return 1;
    }
    return 0;
}

/* sum of exp(x - shift) over one block of n elements, taken NLL_PAIR elements at a time
 * (NLL_VLOAD2's order, which `out` keeps, and FN(fast_row_gradient_kept) reads back the same
 * way), then one vector, then a masked tail; with out, each exp is also written there, and with
 * copy (a float32 block only), each x before it is overwritten. While it
 * runs it asks for the lines NLL_PREFETCH_AHEAD bytes past this block into L2 (measured a
 * little faster than the next block into L1), at the pace the sweep moves. Prefetches past the
 * tensor's end are dropped, not faulted. */
static float FN(fast_block_exp_sum)(const char *block, int64_t n, float shift_value, float *out,
                                    float *copy) {
    const NLL_V shift = NLL_VSET1(shift_value);
    NLL_V vsum = NLL_VSET1(0.0f), vsum2 = vsum, a, b;
    const char *ahead = block + n * NLL_TSIZE + NLL_PREFETCH_AHEAD;
    int64_t i = 0;
    for (; i + NLL_PAIR <= n; i += NLL_PAIR) {
        for (int64_t line = 0; line < NLL_PAIR * NLL_TSIZE; line += 64)
            _mm_prefetch(ahead + i * NLL_TSIZE + line, _MM_HINT_T1);
        NLL_VLOAD2(block + i * NLL_TSIZE, a, b);
        if (copy) {
            NLL_VSTOREF(copy + i, a);
            NLL_VSTOREF(copy + i + NLL_VLEN, b);
        }
        a = NLL_VEXP_SHIFTED(NLL_VSUB(a, shift));
        b = NLL_VEXP_SHIFTED(NLL_VSUB(b, shift));
        vsum = NLL_VADD(vsum, a);
        vsum2 = NLL_VADD(vsum2, b);
        if (out) {
            NLL_VSTOREF(out + i, a);
            NLL_VSTOREF(out + i + NLL_VLEN, b);
        }
    }
    vsum = NLL_VADD(vsum, vsum2);
    for (; i + NLL_VLEN <= n; i += NLL_VLEN) {
        const NLL_V v = NLL_VLOAD(block + i * NLL_TSIZE);
        if (copy)
            NLL_VSTOREF(copy + i, v);
        NLL_V e = NLL_VEXP_SHIFTED(NLL_VSUB(v, shift));
        vsum = NLL_VADD(vsum, e);
        if (out)
            NLL_VSTOREF(out + i, e);
    }
    if (i < n) {
        const NLL_V v = NLL_VLOADN(block + i * NLL_TSIZE, n - i, -INFINITY);
        if (copy)
            NLL_VSTOREFN(copy + i, v, n - i);
        NLL_V e = NLL_VEXP_SHIFTED(NLL_VSUB(v, shift));
        vsum = NLL_VADD(vsum, e);
        if (out)
            NLL_VSTOREFN(out + i, e, n - i);
    }
    return NLL_VHSUM(vsum);
}

#ifndef NLL_GUESSED_SUM_LIMIT
#define NLL_GUESSED_SUM_LIMIT 0x1p24f /* the largest sum a guessed shift may give: see below */
#endif

/* A block's shift and sum of exp(x - shift), for one block of at most NLL_ROW_BLOCK elements;
 * ref_body.h folds the blocks of a row (FN(fold_stats)), so a row is read once from memory.
 * With out (float32 lanes; for a float32 row it may be x itself), exp(x - shift) is also
 * written there: the fused gradient then needs no second exp.
 * The shift is first guessed as the max of the block's first NLL_PAIR elements, and the block
 * summed in one sweep from memory (a max sweep first would cost as much again). The guess is
 * kept if the sum stays at most 2^24: then no element is more than ln 2^24 = 16.6 above it, so
 * a row's shift is never far below its max and log_sum loses little precision to the gap.
 * Otherwise (an element that high, +inf, NaN) the block takes two sweeps from L1: its max, then
 * exp(x - max) as the shift. Either way the shift depends on the block alone, so results are
 * the same for any thread count, and in place or not. */
static void FN(fast_block_stats)(const char *block, int64_t n, float *out, float *shift_out,
                                 double *sum_out) {
    NLL_V vmax = NLL_VSET1(-INFINITY), vmax2 = vmax, a, b;
    float stash[NLL_ROW_BLOCK];
    if (n >= NLL_PAIR) {
        NLL_VLOAD2(block, a, b);
        const float guess = NLL_VHMAX(NLL_VMAX(a, b));
        if (isfinite(guess)) {
            /* A float32 row kept over itself loses the block to the sweep: a copy in L1 lets
             * the two sweeps start again from it. */
            const int in_place = (const char *)out == block;
            const float sum = FN(fast_block_exp_sum)(block, n, guess, out, in_place ? stash : NULL);
            if (sum <= NLL_GUESSED_SUM_LIMIT) { /* false for inf and NaN */
                *shift_out = guess;
                *sum_out = sum;
                return;
            }
            if (in_place)
                block = (const char *)stash;
        }
    }
    int64_t i = 0;
    for (; i + NLL_PAIR <= n; i += NLL_PAIR) {
        NLL_VLOAD2(block + i * NLL_TSIZE, a, b);
        vmax = NLL_VMAX(vmax, a);
        vmax2 = NLL_VMAX(vmax2, b);
    }
    vmax = NLL_VMAX(vmax, vmax2);
    for (; i + NLL_VLEN <= n; i += NLL_VLEN)
        vmax = NLL_VMAX(vmax, NLL_VLOAD(block + i * NLL_TSIZE));
    if (i < n)
        vmax = NLL_VMAX(vmax, NLL_VLOADN(block + i * NLL_TSIZE, n - i, -INFINITY));
    const float block_max = NLL_VHMAX(vmax);
    *shift_out = block_max;
    if (block_max == -INFINITY) {
        /* all -inf adds nothing, but a NaN that lost the max must still poison the row */
        *sum_out = FN(fast_has_nan)(block, n) ? NAN : 0;
        if (out) /* exp(-inf) = 0. Element order does not matter here: a NaN makes the whole
                  * row NaN, and without one every value is 0. */
            for (i = 0; i < n; i++) {
                float v = (float)FN(load)(block, i);
                v = v == -INFINITY ? 0.0f : v;
                memcpy(out + i, &v, sizeof v); /* out may be a misaligned float32 row */
            }
        return;
    }
    *sum_out = FN(fast_block_exp_sum)(block, n, block_max, out, NULL);
}

/* sum of w * log p over one block of at most NLL_ROW_BLOCK elements (w = 1 without weight) */
static double FN(fast_block_weighted_log_p)(const char *block, const char *w, int64_t n,
                                            NLL_A max, NLL_A log_sum) {
    const NLL_V vmax = NLL_VSET1(max), vlog_sum = NLL_VSET1(log_sum);
    NLL_V acc = NLL_VSET1(0.0f);
    int64_t i = 0;
    for (; i + NLL_VLEN <= n; i += NLL_VLEN) {
        NLL_V log_p = NLL_VSUB(NLL_VSUB(NLL_VLOAD(block + i * NLL_TSIZE), vmax), vlog_sum);
        acc = w ? NLL_VFMA(NLL_VLOAD(w + i * NLL_TSIZE), log_p, acc) : NLL_VADD(acc, log_p);
    }
    if (i < n) {
        NLL_V log_p = NLL_VKEEP(
            NLL_VSUB(NLL_VSUB(NLL_VLOADN(block + i * NLL_TSIZE, n - i, 0.0f), vmax), vlog_sum),
            n - i);
        acc = w ? NLL_VFMA(NLL_VLOADN(w + i * NLL_TSIZE, n - i, 0.0f), log_p, acc)
                : NLL_VADD(acc, log_p);
    }
    return NLL_VHSUM(acc);
}

/* The gradient row in one sweep: softmax * -sum_g (minus the smoothing share) everywhere, then
 * the target's element redone exactly. The target logit is read first: the row may be written
 * over the logits. */
static void FN(fast_row_class_gradient)(const char *x, char *grad, int64_t classes,
                                        const char *weight, const FN(gradient_terms) *terms) {
    const NLL_A x_t = terms->target >= 0 ? FN(load)(x, terms->target) : 0;
    const NLL_V vmax = NLL_VSET1(terms->max), vlog_sum = NLL_VSET1(terms->log_sum);
    const NLL_V minus_sum_g = NLL_VSET1(-terms->sum_g);
    const NLL_V minus_smooth = NLL_VSET1(-terms->smooth_g);
    int64_t i = 0;
    for (; i + NLL_VLEN <= classes; i += NLL_VLEN) {
        NLL_V p =
            NLL_VEXP_SHIFTED(NLL_VSUB(NLL_VSUB(NLL_VLOAD(x + i * NLL_TSIZE), vmax), vlog_sum));
        NLL_V g = NLL_VMUL(p, minus_sum_g);
        if (terms->smoothing)
            g = weight ? NLL_VFMA(minus_smooth, NLL_VLOAD(weight + i * NLL_TSIZE), g)
                       : NLL_VADD(g, minus_smooth);
        NLL_VSTORE(grad + i * NLL_TSIZE, g);
    }
    if (i < classes) {
        const int64_t n = classes - i;
        NLL_V p = NLL_VEXP_SHIFTED(
            NLL_VSUB(NLL_VSUB(NLL_VLOADN(x + i * NLL_TSIZE, n, 0.0f), vmax), vlog_sum));
        NLL_V g = NLL_VMUL(p, minus_sum_g);
        if (terms->smoothing)
            g = weight ? NLL_VFMA(minus_smooth, NLL_VLOADN(weight + i * NLL_TSIZE, n, 0.0f), g)
                       : NLL_VADD(g, minus_smooth);
        NLL_VSTOREN(grad + i * NLL_TSIZE, g, n);
    }
    if (terms->target >= 0) {
        NLL_A log_p = (x_t - terms->max) - terms->log_sum;
        NLL_A g = terms->target_g;
        if (terms->smoothing)
            g -= terms->smooth_g * (weight ? FN(load)(weight, terms->target) : 1);
        FN(store)(grad, terms->target, g - NLL_EXP(log_p) * terms->sum_g);
    }
}

/* out = (x - max) - log_sum: log_softmax once the row's statistics are known */
static void FN(fast_row_shift)(const char *x, char *out, int64_t classes, NLL_A max,
                               NLL_A log_sum) {
    const NLL_V vmax = NLL_VSET1(max), vlog_sum = NLL_VSET1(log_sum);
    int64_t i = 0;
    for (; i + NLL_VLEN <= classes; i += NLL_VLEN)
        NLL_VSTORE(out + i * NLL_TSIZE,
                   NLL_VSUB(NLL_VSUB(NLL_VLOAD(x + i * NLL_TSIZE), vmax), vlog_sum));
    if (i < classes)
        NLL_VSTOREN(out + i * NLL_TSIZE,
                    NLL_VSUB(NLL_VSUB(NLL_VLOADN(x + i * NLL_TSIZE, classes - i, 0.0f), vmax),
                             vlog_sum),
                    classes - i);
}

/* sum of one block of at most NLL_ROW_BLOCK elements */
static double FN(fast_block_sum)(const char *block, int64_t n) {
    NLL_V acc = NLL_VSET1(0.0f);
    int64_t i = 0;
    for (; i + NLL_VLEN <= n; i += NLL_VLEN)
        acc = NLL_VADD(acc, NLL_VLOAD(block + i * NLL_TSIZE));
    if (i < n)
        acc = NLL_VADD(acc, NLL_VLOADN(block + i * NLL_TSIZE, n - i, 0.0f));
    return NLL_VHSUM(acc);
}

/* d = g - exp(y) * sum: log_softmax's backward once the row's sum of g is known */
static void FN(fast_row_softmax_backward_apply)(const char *y, const char *g, char *d,
                                                int64_t classes, NLL_A sum) {
    const NLL_V minus_sum = NLL_VSET1(-sum);
    int64_t i = 0;
    for (; i + NLL_VLEN <= classes; i += NLL_VLEN)
        NLL_VSTORE(d + i * NLL_TSIZE, NLL_VFMA(NLL_VEXP(NLL_VLOAD(y + i * NLL_TSIZE)), minus_sum,
                                               NLL_VLOAD(g + i * NLL_TSIZE)));
    if (i < classes) {
        const int64_t n = classes - i;
        NLL_VSTOREN(d + i * NLL_TSIZE,
                    NLL_VFMA(NLL_VEXP(NLL_VLOADN(y + i * NLL_TSIZE, n, 0.0f)), minus_sum,
                             NLL_VLOADN(g + i * NLL_TSIZE, n, 0.0f)),
                    n);
    }
}

/* The fused gradient with one exp per element. The row statistics (FN(row_stats_keeping) in
 * ref_body.h) write exp(x - block shift) as float32 — into the gradient row itself for float32
 * (which may be the logits), else into a row of scratch — and the gradient sweep, from cache,
 * rescales each block by exp(block shift - max - log_sum) * -sum_g and rounds once to the output
 * dtype. Blocks are independent, so a long row may be rescaled in pieces that start at block
 * boundaries. */
#ifndef NLL_KEPT_BLOCKS
#define NLL_KEPT_BLOCKS 256
#endif
#ifndef NLL_KEPT_CLASSES
#define NLL_KEPT_CLASSES ((int64_t)NLL_KEPT_BLOCKS * NLL_ROW_BLOCK)
#endif

/* gradient = kept * this: softmax = kept * exp(block shift - max - log_sum); 0 * NaN stays NaN
 * as in PyTorch */
static NLL_V FN(kept_factor)(float block_shift, const FN(gradient_terms) *terms) {
    return NLL_VSET1(
        (float)(exp((double)block_shift - terms->max - terms->log_sum) * -terms->sum_g));
}

#ifdef NLL_VJOIN2
/* A streamed row that does not start on a 64-byte boundary, for pairs kept out of element
 * order (bfloat16's even and odd halves): each pair is joined into element order as usual,
 * every aligned 64 bytes is cut from two neighbouring joined pairs and streamed, and the
 * elements before the first boundary and after the last are stored as usual. At least two
 * pairs; the last (part of a) block's elements past its pairs are kept in order. */
static void FN(fast_row_gradient_kept_shifted)(const float *kept, char *grad, int64_t classes,
                                               const float *block_shift,
                                               const FN(gradient_terms) *terms) {
    const int shift = (int)((64 - (uintptr_t)grad % 64) / NLL_TSIZE); /* in (0, NLL_PAIR) */
    const int64_t paired = classes / NLL_PAIR * NLL_PAIR;
    NLL_VJOINED previous = NLL_VJOIN2(NLL_VSET1(0.0f), NLL_VSET1(0.0f));
    for (int64_t start = 0, b = 0; start < paired; start += NLL_ROW_BLOCK, b++) {
        const NLL_V factor = FN(kept_factor)(block_shift[b], terms);
        const int64_t end = paired - start < NLL_ROW_BLOCK ? paired : start + NLL_ROW_BLOCK;
        for (int64_t i = start; i < end; i += NLL_PAIR) {
            const NLL_V first = NLL_VMUL(NLL_VLOADF(kept + i), factor);
            const NLL_VJOINED joined =
                NLL_VJOIN2(first, NLL_VMUL(NLL_VLOADF(kept + i + NLL_VLEN), factor));
            if (i == 0)
                NLL_VJOINED_STORE_FIRST(grad, joined, shift);
            else
                NLL_VJOINED_STREAM(grad + (i - NLL_PAIR + shift) * NLL_TSIZE,
                                   NLL_VJOINED_SHIFT(previous, joined, shift));
            previous = joined;
        }
    }
    NLL_VJOINED_STORE_FROM(grad + (paired - NLL_PAIR) * NLL_TSIZE, previous, shift);
    if (paired == classes)
        return;
    const NLL_V factor = FN(kept_factor)(block_shift[paired / NLL_ROW_BLOCK], terms);
    int64_t i = paired;
    for (; i + NLL_VLEN <= classes; i += NLL_VLEN)
        NLL_VSTORE(grad + i * NLL_TSIZE, NLL_VMUL(NLL_VLOADF(kept + i), factor));
    if (i < classes)
        NLL_VSTOREN(grad + i * NLL_TSIZE, NLL_VMUL(NLL_VLOADFN(kept + i, classes - i), factor),
                    classes - i);
}
#endif

/* stream: the caller asks for streaming stores (grad aligned to its element size). A row is
 * streamed from its first 64-byte boundary when its pairs are in element order, or when the
 * instruction set can cut aligned 64 bytes from two joined pairs (NLL_VJOIN2); otherwise only
 * a row that starts on a boundary is streamed. */
static void FN(fast_row_gradient_kept)(const float *kept, char *grad, int64_t classes,
                                       const float *block_shift, const FN(gradient_terms) *terms,
                                       NLL_A x_t, int stream) {
#ifdef NLL_VJOIN2
    const int shifted = stream && (uintptr_t)grad % 64 && classes >= 2 * NLL_PAIR;
    if (shifted)
        FN(fast_row_gradient_kept_shifted)(kept, grad, classes, block_shift, terms);
#else
    const int shifted = 0;
#endif
    if (!NLL_PAIRS_IN_ORDER && !shifted && (uintptr_t)grad % 64)
        stream = 0; /* pairs out of order and no way (or too few) to cut them */
    for (int64_t start = 0, b = 0; !shifted && start < classes; start += NLL_ROW_BLOCK, b++) {
        const int64_t n = classes - start < NLL_ROW_BLOCK ? classes - start : NLL_ROW_BLOCK;
        char *block = grad + start * NLL_TSIZE;
        const float *values = kept + start;
        const NLL_V factor = FN(kept_factor)(block_shift[b], terms);
        int64_t i = 0;
        if (stream && (uintptr_t)block % 64) {
            /* pairs in element order (see above): the elements before the first
             * 64-byte boundary are stored as usual, the pairs from there on are streamed */
            int64_t head = (int64_t)((64 - (uintptr_t)block % 64) / NLL_TSIZE);
            head = head < n ? head : n;
            for (; i + NLL_VLEN <= head; i += NLL_VLEN)
                NLL_VSTORE(block + i * NLL_TSIZE, NLL_VMUL(NLL_VLOADF(values + i), factor));
            if (i < head)
                NLL_VSTOREN(block + i * NLL_TSIZE,
                            NLL_VMUL(NLL_VLOADFN(values + i, head - i), factor), head - i);
            i = head;
        }
        if (stream) /* grad + i is 64-byte aligned, and so is every pair after it */
            for (; i + NLL_PAIR <= n; i += NLL_PAIR)
                NLL_VSTREAM2(block + i * NLL_TSIZE, NLL_VMUL(NLL_VLOADF(values + i), factor),
                             NLL_VMUL(NLL_VLOADF(values + i + NLL_VLEN), factor));
        for (; i + NLL_PAIR <= n; i += NLL_PAIR)
            NLL_VSTORE2(block + i * NLL_TSIZE, NLL_VMUL(NLL_VLOADF(values + i), factor),
                        NLL_VMUL(NLL_VLOADF(values + i + NLL_VLEN), factor));
        for (; i + NLL_VLEN <= n; i += NLL_VLEN)
            NLL_VSTORE(block + i * NLL_TSIZE, NLL_VMUL(NLL_VLOADF(values + i), factor));
        if (i < n)
            NLL_VSTOREN(block + i * NLL_TSIZE, NLL_VMUL(NLL_VLOADFN(values + i, n - i), factor),
                        n - i);
    }
    if (stream) /* the streamed row is complete and ordered before any later store */
        _mm_sfence();
    if (terms->target >= 0) {
        NLL_A log_p = (x_t - terms->max) - terms->log_sum;
        FN(store)(grad, terms->target, terms->target_g - NLL_EXP(log_p) * terms->sum_g);
    }
}

#define NLL_FAST_FUSED 1

#define NLL_FAST_ROWS 1

#undef NLL_TSIZE
#undef NLL_PAIR
#undef NLL_VSTREAM2
