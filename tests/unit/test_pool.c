/*
 * test_pool.c — the worker threads a context keeps between calls (src/parallel.c).
 *
 * Every op runs many times in a row on one context, for every thread count from 2 to 8 and with
 * the count changed between calls, from two threads at once on two contexts, and on contexts
 * destroyed right after a call: each result must be bitwise equal to one thread's, every output
 * byte written (outputs are poisoned before each call). The process's threads are counted in
 * /proc/self/task: a context that never goes parallel starts none, one that does keeps at most
 * threads - 1 across calls, destroy joins them all, and a call whose workers cannot be created
 * (address space too small for their stacks) runs their share itself.
 *
 * Two problems: many rows (blocks over threads, one phase) and a few long rows (cut across
 * threads: phases with a merge between). NLL_TEST_SMALL=1 (valgrind) makes fewer calls, on
 * fewer thread counts.
 */
#define _DEFAULT_SOURCE /* opendir, getrlimit */
#include <dirent.h>
#include <pthread.h>
#include <sys/resource.h>
#include <time.h>

#include "check.h"

#if defined(__SANITIZE_THREAD__) || defined(__SANITIZE_ADDRESS__)
#define POOL_TEST_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer) || __has_feature(address_sanitizer)
#define POOL_TEST_SANITIZED 1
#endif
#endif

enum { OP_FUSED, OP_CE_NONE, OP_SM_FWD, OP_SM_BWD, OP_NLL_FWD, OP_NLL_BWD, N_OPS };
static const char *const op_names[N_OPS] = {"cross_entropy_fused", "cross_entropy_forward",
                                            "log_softmax_forward", "log_softmax_backward",
                                            "nll_loss_forward", "nll_loss_backward"};

typedef struct problem {
    const char *name;
    tt *x, *logp, *grad_out, *target, *weight, *upstream; /* read-only once made */
} problem;

/* Every output of every op: out[op][0], and out[op][1] when the op has two. */
typedef struct results {
    tt *out[N_OPS][2];
} results;

static problem make_problem(nll_context *ctx, const char *name, int64_t n, int64_t c) {
    problem p = {name, NULL, NULL, NULL, NULL, NULL, NULL};
    p.x = trandom(tnew(F32, 2, SH(n, c)), -6, 6);
    p.logp = tnew(F32, 2, SH(n, c));
    CHECK_STATUS(nll_log_softmax_forward(ctx, TT(p.x), 1, TT(p.logp)), NLL_OK);
    p.grad_out = trandom(tnew(F32, 2, SH(n, c)), -1, 1);
    p.target = tnew(I64, 1, SH(n));
    for (int64_t i = 0; i < n; i++)
        tseti(p.target, i, i % 5 == 2 ? -100 : rng_int(c));
    p.weight = trandom(tnew(F32, 1, SH(c)), 0.25, 2);
    p.upstream = trandom(tnew(F32, 1, SH(n)), -2, 2);
    return p;
}

static results make_results(const problem *p) {
    const int64_t n = p->x->shape[0], c = p->x->shape[1];
    results r;
    memset(&r, 0, sizeof r);
    r.out[OP_FUSED][0] = tnew(F32, 0, NULL);
    r.out[OP_FUSED][1] = tnew(F32, 2, SH(n, c));
    r.out[OP_CE_NONE][0] = tnew(F32, 1, SH(n));
    r.out[OP_SM_FWD][0] = tnew(F32, 2, SH(n, c));
    r.out[OP_SM_BWD][0] = tnew(F32, 2, SH(n, c));
    r.out[OP_NLL_FWD][0] = tnew(F32, 0, NULL);
    r.out[OP_NLL_FWD][1] = tnew(F32, 0, NULL);
    r.out[OP_NLL_BWD][0] = tnew(F32, 2, SH(n, c));
    return r;
}

static nll_options options(nll_reduction reduction, double smoothing, const tt *weight) {
    nll_options o = nll_options_default();
    o.reduction = reduction;
    o.label_smoothing = smoothing;
    o.weight = weight ? &weight->t : NULL;
    return o;
}

/* Poisons op's outputs, then runs it. Safe on any thread: no check.h state is touched. */
static nll_status run_op(nll_context *ctx, int op, const problem *p, results *r) {
    tt **out = r->out[op];
    for (int k = 0; k < 2; k++)
        if (out[k])
            tfill_bytes(out[k], 0xA5);
    nll_options o;
    switch (op) {
    case OP_FUSED:
        o = options(NLL_REDUCTION_MEAN, 0.1, p->weight);
        return nll_cross_entropy_fused(ctx, TT(p->x), TT(p->target), &o, TT(out[0]), TT(out[1]));
    case OP_CE_NONE:
        o = options(NLL_REDUCTION_NONE, 0.2, NULL);
        return nll_cross_entropy_forward(ctx, TT(p->x), TT(p->target), &o, TT(out[0]));
    case OP_SM_FWD: return nll_log_softmax_forward(ctx, TT(p->x), 1, TT(out[0]));
    case OP_SM_BWD:
        return nll_log_softmax_backward(ctx, TT(p->grad_out), TT(p->logp), 1, TT(out[0]));
    case OP_NLL_FWD:
        o = options(NLL_REDUCTION_SUM, 0, p->weight);
        return nll_loss_forward(ctx, TT(p->logp), TT(p->target), &o, TT(out[0]), TT(out[1]));
    default:
        o = options(NLL_REDUCTION_NONE, 0, p->weight);
        return nll_loss_backward(ctx, TT(p->upstream), TT(p->logp), TT(p->target), &o,
                                 TT(out[0]));
    }
}

static int same_results(int op, const results *a, const results *b) {
    for (int k = 0; k < 2; k++)
        if (a->out[op][k] && !tsame_bytes(a->out[op][k], b->out[op][k]))
            return 0;
    return 1;
}

/* Per op: calls that failed, and calls whose result differs from the reference. */
typedef struct tally {
    int bad_status[N_OPS], mismatches[N_OPS];
} tally;

static void run_counted(nll_context *ctx, int op, const problem *p, results *r,
                        const results *ref, tally *t) {
    if (run_op(ctx, op, p, r) != NLL_OK)
        t->bad_status[op]++;
    else if (!same_results(op, r, ref))
        t->mismatches[op]++;
}

static void run_all(nll_context *ctx, const problem *p, results *r, const results *ref,
                    tally *t) {
    for (int op = 0; op < N_OPS; op++)
        run_counted(ctx, op, p, r, ref, t);
}

static void check_tally(const tally *t, const char *what) {
    for (int op = 0; op < N_OPS; op++) {
        char section[160];
        snprintf(section, sizeof section, "%s: %s", what, op_names[op]);
        SECTION(section);
        CHECK_INT(t->bad_status[op], 0);
        CHECK_INT(t->mismatches[op], 0);
    }
}

/* The threads of this process, or -1 without /proc. */
static int task_count(void) {
    DIR *dir = opendir("/proc/self/task");
    if (!dir)
        return -1;
    int count = 0;
    for (struct dirent *e; (e = readdir(dir));)
        count += e->d_name[0] != '.';
    closedir(dir);
    return count;
}

/* The count once it has held still for 20 reads 1 ms apart (at most about 2 s): a thread that
 * pthread_join has returned for can stay listed in /proc for a moment while it exits. */
static int settled_task_count(void) {
    int count = task_count(), same = 0;
    for (int reads = 0; reads < 2000 && same < 20; reads++) {
        nanosleep(&(struct timespec){0, 1000000}, NULL);
        const int now = task_count();
        same = now == count ? same + 1 : 0;
        count = now;
    }
    return count;
}

#define N_PROBLEMS 2
static problem problems[N_PROBLEMS];
static results refs[N_PROBLEMS];
static int small;   /* NLL_TEST_SMALL: fewer calls and thread counts */
static int repeats; /* of every op, in calls_in_a_row and from each of two contexts */

/* ---- many calls in a row, thread counts fixed or changing ------------------------------- */

static void calls_in_a_row(void) {
    for (int i = 0; i < N_PROBLEMS; i++) {
        results r = make_results(&problems[i]);
        for (int threads = 2; threads <= 8; threads += small && threads > 2 ? 5 : 1) {
            nll_context *ctx = check_context();
            CHECK_STATUS(nll_context_set_threads(ctx, threads), NLL_OK);
            tally t = {{0}, {0}};
            for (int k = 0; k < repeats; k++)
                run_all(ctx, &problems[i], &r, &refs[i], &t);
            char what[96];
            snprintf(what, sizeof what, "%s, %d threads, calls in a row", problems[i].name,
                     threads);
            check_tally(&t, what);
            nll_context_destroy(ctx);
        }
    }
}

static void changing_thread_counts(void) {
    static const int counts[] = {2, 5, 1, 8, 3, 3, 2, 7, 1, 4, 6}; /* 11: each op meets all */
    const int n_counts = (int)(sizeof counts / sizeof counts[0]);
    nll_context *ctx = check_context();
    for (int i = 0; i < N_PROBLEMS; i++) {
        results r = make_results(&problems[i]);
        tally t = {{0}, {0}};
        for (int k = 0; k < n_counts * (small ? 1 : 5); k++) { /* a new count for every op */
            CHECK_STATUS(nll_context_set_threads(ctx, counts[k % n_counts]), NLL_OK);
            run_counted(ctx, k % N_OPS, &problems[i], &r, &refs[i], &t);
        }
        char what[96];
        snprintf(what, sizeof what, "%s, thread count changed between calls", problems[i].name);
        check_tally(&t, what);
    }
    nll_context_destroy(ctx);
}

/* ---- two contexts on two threads at once ---------------------------------------------------- */

typedef struct user {
    int threads;
    results r[N_PROBLEMS];
    tally t;
    int setup_failed;
    pthread_t thread;
} user;

static void *use_context(void *arg) {
    user *u = arg;
    nll_context *ctx = NULL;
    if (nll_context_create(&ctx) != NLL_OK || nll_context_set_threads(ctx, u->threads) != NLL_OK) {
        u->setup_failed = 1;
        nll_context_destroy(ctx);
        return NULL;
    }
    for (int k = 0; k < repeats; k++)
        for (int i = 0; i < N_PROBLEMS; i++)
            run_all(ctx, &problems[i], &u->r[i], &refs[i], &u->t);
    nll_context_destroy(ctx);
    return NULL;
}

static void two_contexts_at_once(void) {
    static user users[2] = {{.threads = 2}, {.threads = 5}};
    for (int u = 0; u < 2; u++)
        for (int i = 0; i < N_PROBLEMS; i++)
            users[u].r[i] = make_results(&problems[i]); /* here: check.h is not thread-safe */
    int started = 0;
    for (int u = 0; u < 2; u++)
        started += CHECK(pthread_create(&users[u].thread, NULL, use_context, &users[u]) == 0);
    for (int u = 0; u < started; u++)
        pthread_join(users[u].thread, NULL);
    for (int u = 0; u < 2; u++) {
        CHECK_INT(users[u].setup_failed, 0);
        check_tally(&users[u].t, users[u].threads == 2 ? "two contexts at once, 2 threads"
                                                       : "two contexts at once, 5 threads");
    }
}

/* ---- how many threads the pool holds ------------------------------------------------------ */

/* One op with a result check, for the tests below. */
static void run_checked(nll_context *ctx, int op, int i, results *r) {
    CHECK_STATUS(run_op(ctx, op, &problems[i], r), NLL_OK);
    CHECK(same_results(op, r, &refs[i]));
}

static void destroy_after_call(void) {
    SECTION("destroy right after a parallel call");
    const int before = settled_task_count();
    results r = make_results(&problems[0]);
    for (int k = 0; k < 5 * repeats; k++) {
        nll_context *ctx = check_context();
        CHECK_STATUS(nll_context_set_threads(ctx, 2 + k % 7), NLL_OK);
        run_checked(ctx, k % N_OPS, 0, &r);
        nll_context_destroy(ctx);
    }
    if (before >= 0)
        CHECK_INT(settled_task_count(), before); /* every worker joined */
}

static void threads_started(void) {
    const int before = settled_task_count();
    if (before < 0) {
        printf("test_pool: no /proc/self/task, thread counts not checked\n");
        return;
    }
    results r = make_results(&problems[0]);

    SECTION("a context that never goes parallel starts no thread");
    nll_context *single = check_context();
    for (int op = 0; op < N_OPS; op++)
        run_checked(single, op, 0, &r);
    CHECK_INT(settled_task_count(), before);

    SECTION("work too small for a second thread starts none");
    nll_context *ctx = check_context();
    CHECK_STATUS(nll_context_set_threads(ctx, 4), NLL_OK);
    tt *x = trandom(tnew(F32, 2, SH(4, 10)), -1, 1), *y = tnew(F32, 2, SH(4, 10));
    CHECK_STATUS(nll_log_softmax_forward(ctx, TT(x), 1, TT(y)), NLL_OK);
    CHECK_INT(settled_task_count(), before);

    SECTION("workers start on the first parallel call and are kept");
    run_checked(ctx, OP_FUSED, 0, &r);
    const int kept = settled_task_count() - before;
    CHECK(kept >= 1 && kept <= 3);
    for (int op = 0; op < N_OPS; op++)
        run_checked(ctx, op, 0, &r);
    CHECK_INT(settled_task_count() - before, kept);
    CHECK_STATUS(nll_context_set_threads(ctx, 2), NLL_OK);
    run_checked(ctx, OP_SM_FWD, 0, &r);
    CHECK(settled_task_count() - before <= 3);

    SECTION("destroy joins the workers");
    nll_context_destroy(ctx);
    nll_context_destroy(single);
    CHECK_INT(settled_task_count(), before);
}

/* With an address space too small for a thread's stack no worker can start: the caller runs
 * every range. Sanitizers reserve address space of their own, so they skip this. */
static void workers_cannot_start(void) {
#ifndef POOL_TEST_SANITIZED
    SECTION("workers that cannot start");
    const char *preload = getenv("LD_PRELOAD");
    struct rlimit saved, stack;
    FILE *status = fopen("/proc/self/status", "r");
    if ((preload && strstr(preload, "vgpreload")) || !status || getrlimit(RLIMIT_AS, &saved) ||
        getrlimit(RLIMIT_STACK, &stack)) {
        if (status)
            fclose(status);
        return; /* valgrind manages the address space itself */
    }
    long long vm_kb = -1;
    char line[256];
    while (fgets(line, sizeof line, status))
        if (sscanf(line, "VmSize: %lld kB", &vm_kb) == 1)
            break;
    fclose(status);
    /* glibc gives threads RLIMIT_STACK (2 MiB when unlimited); half that is room for the
     * call itself but not for a stack */
    long long stack_bytes =
        stack.rlim_cur == RLIM_INFINITY ? 2LL << 20 : (long long)stack.rlim_cur;
    if (vm_kb < 0 || stack_bytes < (1LL << 20))
        return;
    results r = make_results(&problems[0]);
    nll_context *ctx = check_context();
    CHECK_STATUS(nll_context_set_threads(ctx, 4), NLL_OK);
    const int before = task_count();
    struct rlimit tight = saved;
    tight.rlim_cur = (rlim_t)(vm_kb * 1024 + stack_bytes / 2);
    int limited = setrlimit(RLIMIT_AS, &tight) == 0;
    int right[N_OPS]; /* checked once the limit is lifted */
    for (int op = 0; op < N_OPS; op++)
        right[op] = run_op(ctx, op, &problems[0], &r) == NLL_OK &&
                    same_results(op, &r, &refs[0]);
    const int during = task_count();
    if (limited)
        setrlimit(RLIMIT_AS, &saved);
    CHECK(limited);
    for (int op = 0; op < N_OPS; op++)
        CHECK(right[op]);
    if (limited && before >= 0)
        CHECK_INT(during, before);
    SECTION("workers start once they can");
    run_checked(ctx, OP_FUSED, 0, &r);
    if (before >= 0)
        CHECK(task_count() > before);
    nll_context_destroy(ctx);
#endif
}

static void *nothing(void *arg) { return arg; }

int main(void) {
    small = getenv("NLL_TEST_SMALL") != NULL;
    repeats = small ? 1 : 10;
    rng_seed(11);
    nll_context *ctx = check_context();
    /* many rows: 9 blocks of rows, work for 8 threads; long rows: C >= 65536 and fewer rows
     * than threads, so they are cut across threads (phases), the last chunk short */
    problems[0] = make_problem(ctx, "many rows", 1700, 160);
    problems[1] = make_problem(ctx, "long rows", 2, 65553);
    SECTION("one-thread references");
    for (int i = 0; i < N_PROBLEMS; i++) {
        refs[i] = make_results(&problems[i]);
        for (int op = 0; op < N_OPS; op++)
            CHECK_STATUS(run_op(ctx, op, &problems[i], &refs[i]), NLL_OK);
    }
    nll_context_destroy(ctx);

    workers_cannot_start(); /* first: glibc would reuse the stacks of threads joined before */
    /* ThreadSanitizer starts a thread of its own with the first other: not to be counted */
    pthread_t first;
    if (CHECK(pthread_create(&first, NULL, nothing, NULL) == 0))
        pthread_join(first, NULL);
    threads_started();
    calls_in_a_row();
    changing_thread_counts();
    two_contexts_at_once();
    destroy_after_call();
    return check_finish("test_pool");
}
