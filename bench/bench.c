/* Benchmark of libnll's cross_entropy on the CPU. First the machine's own limits, measured on
 * 1..T threads: copy bandwidth (read + write), read bandwidth and the vector exp's throughput.
 * Then one row per case: the best time, the bytes of minimal traffic, GB/s, and the fraction of
 * the roofline, max(bytes / copy bandwidth, elements / exp rate) for that thread count.
 * Output is tab-separated for bench/report.py: "info", "machine" and "row" lines.
 * Not a test: it asserts nothing about speed.
 *
 * usage: nll_bench [--quick] [--threads 1,2] [--min-time SECONDS] [--shapes NxC,...]
 *                  [--no-machine]
 * --shapes replaces the list of cases; --no-machine skips the machine's limits (the roofline
 * columns are then 0), for quick before/after comparisons of a few cases. */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <nll.h>

#include "exp_rate.h"

#define MAX_THREADS 64 /* thread counts and per-thread slots */
#define IGNORE_INDEX (-100)

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void die(const char *what) {
    fprintf(stderr, "nll_bench: %s\n", what);
    exit(1);
}

static void *alloc_or_die(size_t bytes) {
    /* 2 MiB alignment lets huge pages (GLIBC_TUNABLES=glibc.malloc.hugetlb=1) cover it whole */
    size_t align = bytes >= ((size_t)1 << 21) ? (size_t)1 << 21 : 64;
    void *p = aligned_alloc(align, (bytes + align - 1) / align * align);
    if (!p)
        die("out of memory");
    return p;
}

/* ---------------------------------------------------------------------------------------- */
/* Running one function on T threads at once. The time is from the moment all threads pass a
 * barrier to the last one's finish, so thread start-up is not counted. */

typedef void (*part_fn)(void *arg, int part, int parts);

typedef struct team {
    part_fn fn;
    void *arg;
    int parts;
    pthread_barrier_t barrier;
    double start[MAX_THREADS], end[MAX_THREADS];
} team;

typedef struct member {
    team *team;
    int index;
} member;

static void *member_run(void *p) {
    member *m = p;
    team *t = m->team;
    pthread_barrier_wait(&t->barrier);
    t->start[m->index] = now();
    t->fn(t->arg, m->index, t->parts);
    t->end[m->index] = now();
    return NULL;
}

static double run_parts(int threads, part_fn fn, void *arg) {
    team t = {.fn = fn, .arg = arg, .parts = threads};
    member members[MAX_THREADS];
    pthread_t ids[MAX_THREADS];
    if (pthread_barrier_init(&t.barrier, NULL, (unsigned)threads) != 0)
        die("pthread_barrier_init failed");
    for (int k = 0; k < threads; k++)
        members[k] = (member){&t, k};
    for (int k = 1; k < threads; k++)
        if (pthread_create(&ids[k], NULL, member_run, &members[k]) != 0)
            die("pthread_create failed");
    member_run(&members[0]);
    for (int k = 1; k < threads; k++)
        pthread_join(ids[k], NULL);
    pthread_barrier_destroy(&t.barrier);
    double first = t.start[0], last = t.end[0];
    for (int k = 1; k < threads; k++) {
        first = t.start[k] < first ? t.start[k] : first;
        last = t.end[k] > last ? t.end[k] : last;
    }
    return last - first;
}

/* ---------------------------------------------------------------------------------------- */
/* Machine limits */

typedef struct stream_job {
    char *src, *dst;
    size_t bytes;
    uint64_t sums[MAX_THREADS * 8]; /* one cache line apart: no false sharing */
} stream_job;

static void slice(size_t total, int part, int parts, size_t *first, size_t *end) {
    /* 4 KiB-aligned slices, so no two threads write into one page or cache line */
    size_t pages = total / 4096;
    *first = pages * (size_t)part / (size_t)parts * 4096;
    *end = part + 1 == parts ? total : pages * (size_t)(part + 1) / (size_t)parts * 4096;
}

/* each thread touches its own slices first, so their pages sit near it */
static void fill_part(void *arg, int part, int parts) {
    stream_job *j = arg;
    size_t a, b;
    slice(j->bytes, part, parts, &a, &b);
    memset(j->src + a, 1, b - a);
    memset(j->dst + a, 2, b - a);
}

static void copy_part(void *arg, int part, int parts) {
    stream_job *j = arg;
    size_t a, b;
    slice(j->bytes, part, parts, &a, &b);
    memcpy(j->dst + a, j->src + a, b - a);
}

static void read_part(void *arg, int part, int parts) {
    stream_job *j = arg;
    size_t a, b;
    slice(j->bytes, part, parts, &a, &b);
    const uint64_t *w = (const uint64_t *)(j->src + a);
    size_t words = (b - a) / 8;
    /* integer adds are associative, so the compiler vectorises this sum */
    uint64_t s = 0;
    for (size_t i = 0; i < words; i++)
        s += w[i];
    j->sums[part * 8] = s;
}

typedef struct exp_job {
    float (*kernel)(const float *, int64_t, int64_t);
    float *in[MAX_THREADS];
    int64_t n, reps;
    float sums[MAX_THREADS * 16];
} exp_job;

static void exp_part(void *arg, int part, int parts) {
    exp_job *j = arg;
    (void)parts;
    j->sums[part * 16] = j->kernel(j->in[part], j->n, j->reps);
}

typedef struct machine {
    int threads;
    double copy, read, exp; /* bytes/s (read + written), bytes/s, elements/s */
} machine;

/* The exp kernel of the instruction set the library runs (the best the CPU has for "ref"). */
static float (*pick_exp(const char *arch, const char **name))(const float *, int64_t, int64_t) {
    __builtin_cpu_init();
    int want512 = strcmp(arch, "avx2") != 0;
#ifdef NLL_BENCH_HAVE_AVX512
    if (want512 && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq")) {
        *name = "avx512";
        return nll_bench_exp_sum_avx512;
    }
#endif
#ifdef NLL_BENCH_HAVE_AVX2
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) {
        *name = "avx2";
        return nll_bench_exp_sum_avx2;
    }
#endif
    (void)want512;
    *name = "none";
    return NULL;
}

static void measure_machine(machine *m, int count, const char *arch, int quick) {
    /* copy and read: 512 MiB each way, 1 GiB in all, far beyond any cache */
    stream_job *s = alloc_or_die(sizeof *s);
    s->bytes = (size_t)512 << 20;
    s->src = alloc_or_die(s->bytes);
    s->dst = alloc_or_die(s->bytes);
    run_parts(m[count - 1].threads, fill_part, s);
    int trials = quick ? 3 : 6;
    for (int k = 0; k < count; k++) {
        double copy = 1e30, read = 1e30;
        for (int r = 0; r < trials; r++) {
            double t = run_parts(m[k].threads, copy_part, s);
            copy = t < copy ? t : copy;
            t = run_parts(m[k].threads, read_part, s);
            read = t < read ? t : read;
        }
        m[k].copy = 2.0 * (double)s->bytes / copy;
        m[k].read = (double)s->bytes / read;
    }
    free(s->src);
    free(s->dst);
    free(s);

    /* exp: 2048 floats (8 KiB) per thread stay in L1; values as x - max in a softmax */
    const char *name;
    exp_job *e = alloc_or_die(sizeof *e);
    e->kernel = pick_exp(arch, &name);
    e->n = 2048;
    printf("info\texp kernel\t%s\n", name);
    for (int k = 0; k < MAX_THREADS; k++) {
        e->in[k] = alloc_or_die(sizeof(float) * (size_t)e->n);
        for (int64_t i = 0; i < e->n; i++)
            e->in[k][i] = -8.0f * (float)((i * 7919) % e->n) / (float)e->n;
    }
    if (e->kernel) {
        /* reps for about 50 ms a trial, from a short single-thread run */
        e->reps = 200;
        double t = run_parts(1, exp_part, e);
        e->reps = (int64_t)(0.05 / (t > 1e-6 ? t : 1e-6) * 200.0) + 1;
        if (quick)
            e->reps = e->reps / 4 + 1;
    }
    for (int k = 0; k < count; k++) {
        double best = 1e30;
        for (int r = 0; e->kernel && r < 3; r++) {
            double t = run_parts(m[k].threads, exp_part, e);
            best = t < best ? t : best;
        }
        m[k].exp = e->kernel ? (double)e->n * (double)e->reps * m[k].threads / best : 0;
    }
    for (int k = 0; k < MAX_THREADS; k++)
        free(e->in[k]);
    free(e);
}

/* ---------------------------------------------------------------------------------------- */
/* Cases */

static uint64_t rng_state = 88172645463325252ull;
static uint64_t next_random(void) {
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

/* float to bfloat16, rounding to nearest even (the data holds no NaN) */
static uint16_t to_bfloat16(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    u += 0x7FFFu + ((u >> 16) & 1u);
    return (uint16_t)(u >> 16);
}

enum op { OP_FORWARD, OP_FUSED, OP_FUSED_INPLACE };
static const char *const op_names[] = {"forward", "fused", "fused-inplace"};

typedef struct call {
    nll_context *ctx;
    enum op op;
    DLTensor input, target, loss, grad;
    const void *saved; /* pristine logits, copied over the input before each in-place run */
    size_t bytes;
} call;

static void invoke(call *c) {
    nll_options options = nll_options_default();
    options.ignore_index = IGNORE_INDEX;
    nll_status s;
    if (c->op == OP_FORWARD)
        s = nll_cross_entropy_forward(c->ctx, &c->input, &c->target, &options, &c->loss);
    else if (c->op == OP_FUSED)
        s = nll_cross_entropy_fused(c->ctx, &c->input, &c->target, &options, &c->loss, &c->grad);
    else
        s = nll_cross_entropy_fused(c->ctx, &c->input, &c->target, &options, &c->loss,
                                    &c->input);
    if (s != NLL_OK)
        die(nll_last_error(c->ctx));
}

/* Best time of at least 3 runs after a warm-up, running on until min_time has been timed. */
static double time_call(call *c, double min_time, int *runs) {
    double best = 1e30, total = 0;
    int r = 0;
    for (int warm = 1; r < 3 || total < min_time; warm = 0) {
        if (c->op == OP_FUSED_INPLACE) /* outside the timed region */
            memcpy(c->input.data, c->saved, c->bytes);
        double t = now();
        invoke(c);
        t = now() - t;
        if (warm)
            continue;
        best = t < best ? t : best;
        total += t;
        r++;
    }
    *runs = r;
    return best;
}

typedef struct shape {
    int64_t n, c;
} shape;

#define MAX_SHAPES 16

static int parse_shapes(const char *list, shape *out) {
    int count = 0;
    for (const char *p = list; *p && count < MAX_SHAPES;) {
        char *end;
        long long n = strtoll(p, &end, 10), c = 0;
        if (end != p && *end == 'x') {
            const char *q = end + 1;
            c = strtoll(q, &end, 10);
            if (end == q)
                c = 0;
        }
        if (n < 1 || c < 1)
            die("--shapes takes a comma-separated list of NxC, both at least 1");
        out[count++] = (shape){n, c};
        p = *end == ',' ? end + 1 : end;
    }
    return count;
}

static int parse_threads(const char *list, int *out) {
    int count = 0;
    for (const char *p = list; *p && count < 8;) {
        char *end;
        long v = strtol(p, &end, 10);
        if (end == p || v < 1 || v > MAX_THREADS)
            die("--threads takes a comma-separated list of counts in [1, 64]");
        out[count++] = (int)v;
        p = *end == ',' ? end + 1 : end;
    }
    return count;
}

int main(int argc, char **argv) {
    int quick = 0, threads[8] = {1, 2}, thread_count = 2, no_machine = 0, own_count = 0;
    shape own[MAX_SHAPES];
    double min_time = -1;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--quick"))
            quick = 1;
        else if (!strcmp(argv[i], "--threads") && i + 1 < argc)
            thread_count = parse_threads(argv[++i], threads);
        else if (!strcmp(argv[i], "--min-time") && i + 1 < argc)
            min_time = atof(argv[++i]);
        else if (!strcmp(argv[i], "--shapes") && i + 1 < argc)
            own_count = parse_shapes(argv[++i], own);
        else if (!strcmp(argv[i], "--no-machine"))
            no_machine = 1;
        else {
            fprintf(stderr, "usage: nll_bench [--quick] [--threads 1,2] [--min-time SECONDS] "
                            "[--shapes NxC,...] [--no-machine]\n");
            return 2;
        }
    }
    if (min_time < 0)
        min_time = quick ? 0.02 : 0.1;

    /* one context per thread count */
    nll_context *ctx[8];
    for (int k = 0; k < thread_count; k++)
        if (nll_context_create(&ctx[k]) != NLL_OK || nll_context_set_threads(ctx[k], threads[k]))
            die("cannot create a context");
    const char *arch = nll_context_arch(ctx[0]);
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    const char *tunables = getenv("GLIBC_TUNABLES");
    printf("info\tlibnll\t%s\n", nll_version_string());
    printf("info\tarch\t%s\n", arch);
    printf("info\tonline CPUs\t%ld\n", cpus);
    printf("info\tGLIBC_TUNABLES\t%s\n", tunables ? tunables : "(unset)");

    /* machine limits for every thread count used, and for all CPUs */
    machine m[9];
    int mc = 0;
    for (int k = 0; k <= thread_count; k++) {
        int t = k < thread_count ? threads[k] : (int)(cpus < 1 ? 1 : cpus > MAX_THREADS ? MAX_THREADS : cpus);
        int seen = 0;
        for (int j = 0; j < mc; j++)
            seen |= m[j].threads == t;
        if (!seen)
            m[mc++].threads = t;
    }
    for (int a = 0; a < mc; a++) /* ascending; the largest count first-touches the buffers */
        for (int b = a + 1; b < mc; b++)
            if (m[b].threads < m[a].threads) {
                machine tmp = m[a];
                m[a] = m[b];
                m[b] = tmp;
            }
    if (no_machine) {
        for (int k = 0; k < mc; k++)
            m[k].copy = m[k].read = m[k].exp = 0;
    } else {
        fprintf(stderr, "nll_bench: measuring bandwidth and exp throughput\n");
        measure_machine(m, mc, arch, quick);
    }
    for (int k = 0; k < mc; k++)
        printf("machine\t%d\t%.3f\t%.3f\t%.4f\n", m[k].threads, m[k].copy / 1e9, m[k].read / 1e9,
               m[k].exp / 1e9);
    printf("columns\tN\tC\tdtype\top\tthreads\tignored_pct\tms\tbytes\tGBps\troofline_ms\t"
           "fraction\truns\n");
    fflush(stdout);

    static const shape full[] = {{8192, 10},    {4096, 1000},   {4096, 32000},
                                 {2048, 50257}, {1024, 128256}, {8, 262144}};
    static const shape small[] = {{8192, 10}, {4096, 1000}, {8, 262144}};
    const shape *shapes = own_count ? own : quick ? small : full;
    int shape_count = own_count ? own_count : quick ? 3 : 6;
    for (int s = 0; s < shape_count; s++) {
        int64_t n = shapes[s].n, c = shapes[s].c;
        size_t elems = (size_t)n * (size_t)c;
        fprintf(stderr, "nll_bench: (%lld, %lld)\n", (long long)n, (long long)c);
        float *values = alloc_or_die(sizeof(float) * elems);
        for (size_t i = 0; i < elems; i++) /* uniform in [-4, 4] */
            values[i] = (float)((double)(next_random() >> 11) / 9007199254740992.0 * 8.0 - 4.0);
        int64_t *labels = alloc_or_die(sizeof(int64_t) * (size_t)n);
        uint64_t label_seed = next_random();
        uint16_t *half = alloc_or_die(sizeof(uint16_t) * elems);
        void *work = alloc_or_die(sizeof(float) * elems);
        void *grad = alloc_or_die(sizeof(float) * elems);
        for (size_t i = 0; i < elems; i++)
            half[i] = to_bfloat16(values[i]);
        memset(work, 0, sizeof(float) * elems); /* fault the pages in before any timing */
        memset(grad, 0, sizeof(float) * elems);
        int64_t in_shape[2] = {n, c}, t_shape[1] = {n};
        unsigned char loss[8];

        for (int d = 0; d < 2; d++) {
            DLDataType dtype = d == 0 ? (DLDataType){kDLFloat, 32, 1} : (DLDataType){kDLBfloat, 16, 1};
            size_t item = d == 0 ? 4 : 2;
            const void *saved = d == 0 ? (const void *)values : (const void *)half;
            for (int ignored = 0; ignored <= 10; ignored += 10) {
                rng_state = label_seed; /* the same labels for both dtypes */
                for (int64_t i = 0; i < n; i++) {
                    int64_t label = (int64_t)(next_random() % (uint64_t)c);
                    labels[i] = ignored && i % 10 == 9 ? IGNORE_INDEX : label;
                }
                for (int o = OP_FORWARD; o <= OP_FUSED_INPLACE; o++)
                    for (int k = 0; k < thread_count; k++) {
                        call cl = {.ctx = ctx[k], .op = (enum op)o, .saved = saved, .bytes = elems * item};
                        void *in = o == OP_FUSED_INPLACE ? work : (void *)saved;
                        cl.input = (DLTensor){in, {kDLCPU, 0}, 2, dtype, in_shape, NULL, 0};
                        cl.target = (DLTensor){labels, {kDLCPU, 0}, 1, {kDLInt, 64, 1}, t_shape, NULL, 0};
                        cl.loss = (DLTensor){loss, {kDLCPU, 0}, 0, dtype, NULL, NULL, 0};
                        cl.grad = (DLTensor){grad, {kDLCPU, 0}, 2, dtype, in_shape, NULL, 0};
                        int runs;
                        double best = time_call(&cl, min_time, &runs);
                        double bytes = (double)(elems * item) * (o == OP_FORWARD ? 1 : 2) +
                                       (double)n * sizeof(int64_t);
                        const machine *mk = &m[0];
                        for (int j = 0; j < mc; j++)
                            if (m[j].threads == threads[k])
                                mk = &m[j];
                        double roof = mk->copy > 0 ? bytes / mk->copy : 0;
                        if (mk->exp > 0 && (double)elems / mk->exp > roof)
                            roof = (double)elems / mk->exp;
                        printf("row\t%lld\t%lld\t%s\t%s\t%d\t%d\t%.6f\t%.0f\t%.3f\t%.6f\t%.4f\t%d\n",
                               (long long)n, (long long)c, d == 0 ? "float32" : "bfloat16",
                               op_names[o], threads[k], ignored, best * 1e3, bytes,
                               bytes / best / 1e9, roof * 1e3, roof / best, runs);
                        fflush(stdout);
                    }
            }
        }
        free(values);
        free(labels);
        free(half);
        free(work);
        free(grad);
    }
    for (int k = 0; k < thread_count; k++)
        nll_context_destroy(ctx[k]);
    return 0;
}
