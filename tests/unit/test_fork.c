/*
 * test_fork.c — a context used across fork() (src/parallel.c).
 *
 * fork() copies only the calling thread: a child inherits a context whose worker threads do not
 * exist, and whose locks a worker may have held at the moment of the fork. The parent makes
 * calls on 2 threads (so the context keeps a worker), then forks:
 *  - child A calls again on the inherited context (the same bytes as the parent's results),
 *    destroys it, and makes a new context on 2 threads that gives the same bytes too;
 *  - child B destroys the inherited context straight away;
 * and the parent checks that its own context still gives the same bytes. Two problems: many
 * rows (blocks over threads) and one long row (cut across threads, phases with merges).
 *
 * A hang must fail the test, not CI: the parent polls waitpid for each child and kills one that
 * is not done after a generous limit (a guard, not a timing check). A child reports by its exit
 * status: 0, or the number of the step that went wrong.
 */
#define _DEFAULT_SOURCE /* usleep, opendir */
#include <dirent.h>
#include <signal.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"

#if defined(__SANITIZE_THREAD__)
#define FORK_TEST_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define FORK_TEST_TSAN 1
#endif
#endif

/* ThreadSanitizer cannot follow a child of a multithreaded process that starts threads (it
 * stops with "dup thread with used id"): under it, child A is skipped; child B starts none. */

/* A child gets this long before it counts as hung (valgrind is slow). */
#ifndef CHILD_LIMIT_MS
#define CHILD_LIMIT_MS 300000
#endif

typedef struct problem {
    tt *logits, *target;           /* many rows: fused cross_entropy, loss and gradient */
    tt *long_row;                  /* one long row: log_softmax */
    tt *loss, *grad, *long_output; /* outputs */
} problem;

static problem make_problem(int64_t rows, int64_t classes, int64_t long_classes) {
    problem p;
    p.logits = trandom(tnew(F32, 2, SH(rows, classes)), -8, 8);
    p.target = tnew(I64, 1, SH(rows));
    for (int64_t i = 0; i < rows; i++)
        tseti(p.target, i, i % 7 == 3 ? -100 : rng_int(classes));
    p.long_row = trandom(tnew(F32, 2, SH(1, long_classes)), -8, 8);
    p.loss = tnew(F32, 0, NULL);
    p.grad = tnew(F32, 2, SH(rows, classes));
    p.long_output = tnew(F32, 2, SH(1, long_classes));
    return p;
}

/* Both ops into p's outputs (poisoned first); NLL_OK or the first failure. */
static nll_status run_ops(nll_context *ctx, problem *p) {
    tfill_bytes(p->loss, 0xA5);
    tfill_bytes(p->grad, 0xA5);
    tfill_bytes(p->long_output, 0xA5);
    nll_options o = nll_options_default();
    nll_status s = nll_cross_entropy_fused(ctx, TT(p->logits), TT(p->target), &o, TT(p->loss),
                                           TT(p->grad));
    if (s != NLL_OK)
        return s;
    return nll_log_softmax_forward(ctx, TT(p->long_row), 1, TT(p->long_output));
}

static int same_outputs(const problem *a, const problem *b) {
    return tsame_bytes(a->loss, b->loss) && tsame_bytes(a->grad, b->grad) &&
           tsame_bytes(a->long_output, b->long_output);
}

/* The threads of this process (/proc/self/task), or -1 where that cannot be read. */
static int count_threads(void) {
    DIR *dir = opendir("/proc/self/task");
    if (!dir)
        return -1;
    int n = 0;
    for (struct dirent *e; (e = readdir(dir));)
        n += e->d_name[0] != '.';
    closedir(dir);
    return n;
}

#ifndef FORK_TEST_TSAN
/* Child A: the inherited context, then a new one; expected holds the parent's results. */
static int child_calls(nll_context *inherited, problem *p, const problem *expected) {
    if (run_ops(inherited, p) != NLL_OK)
        return 1;
    if (!same_outputs(p, expected))
        return 2;
    if (run_ops(inherited, p) != NLL_OK || !same_outputs(p, expected))
        return 3; /* the workers the child started serve its next call too */
    nll_context_destroy(inherited);
    nll_context *fresh = NULL;
    if (nll_context_create(&fresh) != NLL_OK || nll_context_set_threads(fresh, 2) != NLL_OK)
        return 4;
    if (run_ops(fresh, p) != NLL_OK)
        return 5;
    if (!same_outputs(p, expected))
        return 6;
    nll_context_destroy(fresh);
    return 0;
}
#endif

/* Waits for the child; kills it if it is not done in time. Its exit status, or -1 if it hung
 * (or died by a signal: -2). */
static int wait_child(pid_t pid) {
    int status = 0;
    for (int waited_ms = 0; waited_ms < CHILD_LIMIT_MS; waited_ms += 5) {
        pid_t done = waitpid(pid, &status, WNOHANG);
        if (done == pid)
            return WIFEXITED(status) ? WEXITSTATUS(status) : -2;
        if (done < 0)
            return -3;
        usleep(5000);
    }
    kill(pid, SIGKILL);
    waitpid(pid, &status, 0);
    return -1;
}

static void report_child(const char *name, int code) {
    if (code == -1)
        fprintf(stderr, "%s hung: killed after %d s\n", name, CHILD_LIMIT_MS / 1000);
    else if (code == -2)
        fprintf(stderr, "%s died by a signal\n", name);
    else if (code != 0)
        fprintf(stderr, "%s failed at step %d\n", name, code);
}

int main(void) {
    const int small = getenv("NLL_TEST_SMALL") != NULL;
    /* 2 threads need 2 blocks of 32,768 elements of work; the long row is split from 65,536 */
    const int64_t rows = small ? 64 : 256, classes = 1024, long_classes = 1 << 17;
    nll_context *ctx = check_context();
    problem expected = make_problem(rows, classes, long_classes);
    problem got = expected; /* the same inputs, outputs of its own */
    got.loss = tnew(F32, 0, NULL);
    got.grad = tnew(F32, 2, SH(rows, classes));
    got.long_output = tnew(F32, 2, SH(1, long_classes));

    SECTION("parent before fork");
    {
        nll_context *one = check_context(); /* one thread: the reference bytes */
        CHECK_STATUS(run_ops(one, &expected), NLL_OK);
        nll_context_destroy(one);
        const int before = count_threads();
        CHECK_STATUS(nll_context_set_threads(ctx, 2), NLL_OK);
        CHECK_STATUS(run_ops(ctx, &got), NLL_OK);
        CHECK(same_outputs(&got, &expected));
        if (before > 0) /* the context now keeps a worker (sanitizers may add their own) */
            CHECK(count_threads() > before);
    }
    fflush(NULL); /* nothing buffered is written twice */

    SECTION("child: calls on the inherited context, destroys it, makes a new one");
#ifdef FORK_TEST_TSAN
    printf("test_fork: child A skipped under ThreadSanitizer\n");
#else
    {
        pid_t pid = fork();
        CHECK(pid >= 0);
        if (pid == 0)
            _exit(child_calls(ctx, &got, &expected));
        if (pid > 0) {
            const int code = wait_child(pid);
            report_child("child A", code);
            CHECK_INT(code, 0);
        }
    }
#endif

    SECTION("child: destroys the inherited context");
    {
        pid_t pid = fork();
        CHECK(pid >= 0);
        if (pid == 0) {
            nll_context_destroy(ctx);
            _exit(0);
        }
        if (pid > 0) {
            const int code = wait_child(pid);
            report_child("child B", code);
            CHECK_INT(code, 0);
        }
    }

    SECTION("parent after fork: unaffected");
    {
        const int before = count_threads();
        CHECK_STATUS(run_ops(ctx, &got), NLL_OK);
        CHECK(same_outputs(&got, &expected));
        if (before > 0) /* the same worker, no new one */
            CHECK_INT(count_threads(), before);
        nll_context_destroy(ctx);
    }
    return check_finish("test_fork");
}
