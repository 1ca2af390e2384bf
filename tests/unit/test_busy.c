/*
 * test_busy.c — one context used by two threads at once, which the API forbids: every call
 * must either run as if alone (NLL_OK, the right bytes) or return NLL_ERROR_CONTEXT_BUSY having
 * written nothing; never a wrong value, never a crash.
 *
 * Thread "long" makes long calls (a fused cross_entropy of millions of elements on the
 * context's 2 threads) into its own outputs; thread "poll" meanwhile makes short calls
 * (cross_entropy_forward of 8 rows, nll_context_set_threads) on the same context as fast as it
 * can, mostly while the long thread says it is calling. Both poison their outputs before each
 * call and compare them after with bytes computed beforehand on a context of their own: NLL_OK
 * must give exactly those bytes, BUSY must leave the poison. The long thread makes a number of
 * calls, and goes on until the poll thread has been turned away at least once (so that seeing
 * BUSY does not depend on the scheduler); the poll thread stops when the long thread is done.
 * Then the same with failing calls, and the error record afterwards must be a whole message of
 * a call that ran, never one cleared or written by a turned-away call.
 * Under ThreadSanitizer (scripts/test.d/40-tsan.sh) a turned-away call that touched the
 * context's state, or a flag without acquire/release, is a reported race.
 */
#define _DEFAULT_SOURCE
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <unistd.h>

#include "check.h"

#define POISON 0xA5
#define LONG_CALLS 4 /* each one long enough for the poll thread to be turned away many times */

typedef struct side {
    tt *input, *target, *loss, *grad; /* grad NULL: a forward call */
    tt *want_loss, *want_grad;        /* the bytes of a call alone */
    nll_options options;
} side;

typedef struct shared {
    nll_context *ctx;
    side big, small;
    int failing; /* both threads make calls that fail validation */
    int long_calls;
    atomic_int long_done;
    atomic_int long_calling;     /* the long thread is about to call or in a call */
    atomic_int poll_turned_away; /* the poll thread has seen NLL_ERROR_CONTEXT_BUSY */
    /* tallies, each written by one thread and read after the join */
    int long_ok, long_busy, long_wrong, long_other;
    int poll_ok, poll_busy, poll_wrong, poll_other;
} shared;

static int all_bytes_are(const tt *x, unsigned char byte) {
    const tt *o = x->owner;
    for (size_t i = 0; i < o->nbytes; i++)
        if (o->mem[i] != byte)
            return 0;
    return 1;
}

static nll_status call_side(nll_context *ctx, side *s) {
    tfill_bytes(s->loss, POISON);
    if (s->grad) {
        tfill_bytes(s->grad, POISON);
        return nll_cross_entropy_fused(ctx, TT(s->input), TT(s->target), &s->options,
                                       TT(s->loss), TT(s->grad));
    }
    return nll_cross_entropy_forward(ctx, TT(s->input), TT(s->target), &s->options,
                                     TT(s->loss));
}

/* What one call gave: 0 right, 1 busy and untouched, -1 wrong, -2 another status. */
static int judge(nll_status status, nll_status expected, const side *s) {
    const int untouched =
        all_bytes_are(s->loss, POISON) && (!s->grad || all_bytes_are(s->grad, POISON));
    if (status == NLL_ERROR_CONTEXT_BUSY)
        return untouched ? 1 : -1;
    if (status != expected)
        return -2;
    if (expected != NLL_OK)
        return untouched ? 0 : -1;
    return tsame_bytes(s->loss, s->want_loss) && (!s->grad || tsame_bytes(s->grad, s->want_grad))
               ? 0
               : -1;
}

/* Counts a verdict; the first few bad ones are told at once (stderr is thread-safe), so that
 * they show even if a broken guard then lets the two calls deadlock in the pool. */
static void tally(int verdict, int *ok, int *busy, int *wrong, int *other) {
    int *count = verdict == 0 ? ok : verdict == 1 ? busy : verdict == -1 ? wrong : other;
    if (verdict < 0 && *count < 3)
        fprintf(stderr, "test_busy: %s\n",
                verdict == -1 ? "wrong bytes (or written while turned away)" : "wrong status");
    *count += 1;
}

static void *long_thread(void *arg) {
    shared *sh = arg;
    const nll_status expected = sh->failing ? NLL_ERROR_NONFINITE : NLL_OK;
    /* its calls, and more until the poll thread has been turned away (a cap for safety) */
    for (int n = 0; n < sh->long_calls || (!atomic_load(&sh->poll_turned_away) && n < 100000);
         n++) {
        atomic_store(&sh->long_calling, 1);
        nll_status s = call_side(sh->ctx, &sh->big);
        atomic_store(&sh->long_calling, 0);
        tally(judge(s, expected, &sh->big), &sh->long_ok, &sh->long_busy, &sh->long_wrong,
              &sh->long_other);
        sched_yield(); /* the poll thread's calls between long ones are checked too */
    }
    atomic_store(&sh->long_done, 1);
    return NULL;
}

static void *poll_thread(void *arg) {
    shared *sh = arg;
    const nll_status expected = sh->failing ? NLL_ERROR_TARGET_RANGE : NLL_OK;
    for (unsigned n = 0; !atomic_load(&sh->long_done); n++) {
        if (sh->poll_busy > 0)
            atomic_store(&sh->poll_turned_away, 1);
        /* mostly while the long thread calls, so that it is not the one turned away */
        if (n % 8 != 7)
            while (!atomic_load(&sh->long_calling) && !atomic_load(&sh->long_done))
                sched_yield();
        if (!sh->failing && n % 4 == 3) { /* a setter: turned away too, or sets what was set */
            nll_status s = nll_context_set_threads(sh->ctx, 2);
            tally(s == NLL_OK ? 0 : s == NLL_ERROR_CONTEXT_BUSY ? 1 : -2, &sh->poll_ok,
                  &sh->poll_busy, &sh->poll_wrong, &sh->poll_other);
            continue;
        }
        tally(judge(call_side(sh->ctx, &sh->small), expected, &sh->small), &sh->poll_ok,
              &sh->poll_busy, &sh->poll_wrong, &sh->poll_other);
    }
    return NULL;
}

static side make_side(int64_t rows, int64_t classes, int fused) {
    side s;
    s.input = trandom(tnew(F32, 2, SH(rows, classes)), -6, 6);
    s.target = tnew(I64, 1, SH(rows));
    for (int64_t i = 0; i < rows; i++)
        tseti(s.target, i, i % 9 == 4 ? -100 : rng_int(classes));
    s.loss = tnew(F32, 0, NULL);
    s.grad = fused ? tnew(F32, 2, SH(rows, classes)) : NULL;
    s.want_loss = tnew(F32, 0, NULL);
    s.want_grad = fused ? tnew(F32, 2, SH(rows, classes)) : NULL;
    s.options = nll_options_default();
    s.options.reduction = NLL_REDUCTION_SUM;
    s.options.flags = NLL_CHECK_FINITE; /* the long calls scan their input first */
    return s;
}

/* The bytes of a call alone, on a context of its own, into want_*. */
static void compute_wanted(side *s) {
    nll_context *alone = check_context();
    tt *loss = s->loss, *grad = s->grad;
    s->loss = s->want_loss;
    s->grad = s->want_grad;
    CHECK_STATUS(call_side(alone, s), NLL_OK);
    s->loss = loss;
    s->grad = grad;
    nll_context_destroy(alone);
}

static void run_threads(shared *sh) {
    atomic_init(&sh->long_done, 0);
    atomic_init(&sh->long_calling, 0);
    atomic_init(&sh->poll_turned_away, 0);
    sh->long_ok = sh->long_busy = sh->long_wrong = sh->long_other = 0;
    sh->poll_ok = sh->poll_busy = sh->poll_wrong = sh->poll_other = 0;
    pthread_t a, b;
    CHECK_INT(pthread_create(&a, NULL, long_thread, sh), 0);
    CHECK_INT(pthread_create(&b, NULL, poll_thread, sh), 0);
    pthread_join(a, NULL);
    pthread_join(b, NULL);
    printf("%s calls: long %d right, %d busy; poll %d right, %d busy\n",
           sh->failing ? "failing" : "good", sh->long_ok, sh->long_busy, sh->poll_ok,
           sh->poll_busy);
    CHECK_INT(sh->long_wrong, 0);
    CHECK_INT(sh->long_other, 0);
    CHECK_INT(sh->poll_wrong, 0);
    CHECK_INT(sh->poll_other, 0);
    CHECK(sh->long_ok > 0);
    CHECK(sh->poll_busy > 0); /* it called while the long thread was in a call */
}

int main(void) {
    const int small = getenv("NLL_TEST_SMALL") != NULL;
    alarm(600); /* without a working guard the two calls may deadlock in the pool: fail, not hang */
    SECTION("the status");
    CHECK_INT(NLL_ERROR_CONTEXT_BUSY, 103);
    CHECK_STREQ(nll_status_name(NLL_ERROR_CONTEXT_BUSY), "NLL_ERROR_CONTEXT_BUSY");
    CHECK_HAS(nll_status_string(NLL_ERROR_CONTEXT_BUSY), "use one context per thread");

    shared sh;
    memset(&sh, 0, sizeof sh);
    sh.big = make_side(small ? 256 : 512, 1024, 1);
    sh.small = make_side(8, 10, 0);
    compute_wanted(&sh.big);
    compute_wanted(&sh.small);
    sh.long_calls = small ? LONG_CALLS / 4 : LONG_CALLS;
    sh.ctx = check_context();
    CHECK_STATUS(nll_context_set_threads(sh.ctx, 2), NLL_OK);

    SECTION("two threads, good calls: right bytes or busy and untouched");
    run_threads(&sh);
    /* alone again, the context works as before */
    CHECK_STATUS(call_side(sh.ctx, &sh.big), NLL_OK);
    CHECK(judge(NLL_OK, NLL_OK, &sh.big) == 0);
    CHECK_STREQ(nll_last_error(sh.ctx), "");

    SECTION("two threads, failing calls: the error record is a call's own");
    sh.failing = 1;
    sh.long_calls *= 8; /* a failing call only scans its input: shorter */
    tset(sh.big.input, tt_numel(sh.big.input) - 1, NAN); /* found at the end of the scan */
    tseti(sh.small.target, 0, 10);                      /* out of range [0, 10) */
    run_threads(&sh);
    nll_error_detail d;
    CHECK_STATUS(nll_last_error_detail(sh.ctx, &d), NLL_OK);
    if (d.status == NLL_ERROR_NONFINITE)
        CHECK_HAS(nll_last_error(sh.ctx), "nll_cross_entropy_fused: input[");
    else if (CHECK_STATUS(d.status, NLL_ERROR_TARGET_RANGE))
        CHECK_HAS(nll_last_error(sh.ctx), "nll_cross_entropy_forward: target[0] = 10");

    nll_context_destroy(sh.ctx);
    return check_finish("test_busy");
}
