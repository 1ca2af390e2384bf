/* Fork-join over fixed blocks of work, on the threads of a pool each context keeps. Blocks are
 * cut by the size of the problem alone, never by the thread count, and each reduction is summed
 * per block then over blocks in order: results are bitwise identical whatever the number of
 * threads. */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"

nll_blocks nll_plan_blocks(int64_t items, int64_t item_cost) {
    nll_blocks plan;
    int64_t cost = item_cost > 0 ? item_cost : 1;
    int64_t size = NLL_BLOCK_WORK / cost;
    if (size < 1)
        size = 1;
    if (items / size >= NLL_MAX_BLOCKS) /* few enough blocks for per-block partial sums */
        size = items / NLL_MAX_BLOCKS + 1;
    plan.size = size;
    plan.count = items == 0 ? 0 : (items - 1) / size + 1;
    plan.items = items;
    return plan;
}

int nll_threads_for(int threads, int64_t work) {
    int64_t worth = work / NLL_THREAD_WORK;
    int n = threads < 1 ? 1 : threads > NLL_MAX_THREADS ? NLL_MAX_THREADS : threads;
    return worth < 1 ? 1 : worth < n ? (int)worth : n;
}

/* How long a waiter polls before it sleeps, so that an idle pool holds no CPU. On a 2-core VM
 * a sleeping thread takes 20-28 us to wake, a polling one about 3: the wait at the end of a
 * small call (one block, 20 us) and the gap between calls back to back must stay within the
 * polling. With 5 us, cross_entropy (8192, 10) took longer on 2 threads than on 1. */
#define NLL_POLL_NS 50000

static int64_t now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec;
}

/* Waits until *word differs from seen: polls, yielding the CPU at each poll (there may be more
 * threads than cores), then sleeps on cond. Whoever changes the word does so under lock and
 * then signals cond. */
static void await_change(atomic_uint *word, unsigned seen, pthread_mutex_t *lock,
                         pthread_cond_t *cond) {
    const int64_t give_up = now_ns() + NLL_POLL_NS;
    do {
        if (atomic_load_explicit(word, memory_order_acquire) != seen)
            return;
        sched_yield();
    } while (now_ns() < give_up);
    pthread_mutex_lock(lock);
    while (atomic_load_explicit(word, memory_order_acquire) == seen)
        pthread_cond_wait(cond, lock);
    pthread_mutex_unlock(lock);
}

/* The call in progress. Its blocks are cut into `ranges` contiguous ranges, range k for the
 * k-th thread; threads that take part: the caller (range 0, plus the ranges of workers that
 * could not be started) and workers 1 .. count - 1. */
typedef struct team {
    nll_phase_fn fn;
    nll_between_fn between;
    void *arg;
    int phases;
    int64_t blocks;
    int ranges;
    int count;
    int arrived; /* at the current barrier, under lock */
    atomic_uint generation; /* barriers passed, changed under lock */
    pthread_mutex_t lock;
    pthread_cond_t released;
} team;

typedef struct pool_worker {
    nll_pool *pool;
    int index; /* in the call, the thread of range `index` */
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t wake;
    atomic_uint calls; /* bumped, under lock, to hand the worker the team's call (or stop) */
    int stop;          /* set before the last bump */
} pool_worker;

struct nll_pool {
    team team;
    int started; /* workers, kept until nll_pool_destroy; only the context's user changes it */
    pid_t owner; /* the process that started them: a child of fork() has none of them */
    pool_worker *workers[NLL_MAX_THREADS - 1];
};

/* Every thread of the call arrives after each phase. The last to arrive runs `between` alone
 * (between phases, not after the last one), then releases the others; after the last phase
 * only the caller waits (wait = 0 for workers), for every worker to be done with the team. */
static void arrive(team *t, int phase, int wait) {
    pthread_mutex_lock(&t->lock);
    if (++t->arrived == t->count) {
        t->arrived = 0;
        if (t->between && phase + 1 < t->phases)
            t->between(t->arg, phase);
        atomic_fetch_add_explicit(&t->generation, 1, memory_order_release);
        pthread_cond_broadcast(&t->released);
        pthread_mutex_unlock(&t->lock);
        return;
    }
    unsigned seen = atomic_load_explicit(&t->generation, memory_order_relaxed);
    pthread_mutex_unlock(&t->lock);
    if (wait)
        await_change(&t->generation, seen, &t->lock, &t->released);
}

static void run_range(const team *t, int phase, int k) {
    int64_t first = t->blocks * k / t->ranges, end = t->blocks * (k + 1) / t->ranges;
    if (first < end)
        t->fn(t->arg, phase, first, end);
}

/* One thread's part of the call: range k; the caller's (k = 0) also has the ranges of workers
 * that could not be started, and it alone waits for the others at the end. */
static void take_part(team *t, int k) {
    const int phases = t->phases; /* once a worker has arrived the last time, t is the caller's */
    for (int phase = 0; phase < phases; phase++) {
        run_range(t, phase, k);
        for (int extra = t->count; k == 0 && extra < t->ranges; extra++)
            run_range(t, phase, extra);
        arrive(t, phase, k == 0 || phase + 1 < phases);
    }
}

static void *run_worker(void *arg) {
    pool_worker *w = arg;
    unsigned seen = 0;
    for (;;) {
        await_change(&w->calls, seen, &w->lock, &w->wake);
        seen = atomic_load_explicit(&w->calls, memory_order_acquire);
        if (w->stop)
            return NULL;
        take_part(&w->pool->team, w->index);
    }
}

/* Signals are for the application's threads, not the pool's: workers start with all blocked. */
static int start_worker(nll_pool *pool) {
    pool_worker *w = calloc(1, sizeof *w);
    if (!w)
        return 0;
    w->pool = pool;
    w->index = pool->started + 1;
    pool->owner = getpid();
    atomic_init(&w->calls, 0);
    pthread_mutex_init(&w->lock, NULL);
    pthread_cond_init(&w->wake, NULL);
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int started = pthread_create(&w->thread, NULL, run_worker, w) == 0;
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (!started) {
        pthread_cond_destroy(&w->wake);
        pthread_mutex_destroy(&w->lock);
        free(w);
        return 0;
    }
    pool->workers[pool->started++] = w;
    return 1;
}

static void hand_call(pool_worker *w, int stop) {
    pthread_mutex_lock(&w->lock);
    w->stop = stop;
    atomic_fetch_add_explicit(&w->calls, 1, memory_order_release);
    pthread_cond_signal(&w->wake);
    pthread_mutex_unlock(&w->lock);
}

/* Whether this process is a child of fork() that inherited the pool of a parent that had
 * started workers: fork copies only the calling thread, so the workers do not exist here. */
static int workers_lost_in_fork(const nll_pool *pool) {
    return pool->started > 0 && pool->owner != getpid();
}

/* A child after fork: forgets the parent's workers without joining them or touching their
 * locks and conds (a lock a worker held at the fork stays held forever; free does not look at
 * it), and sets up the team's lock and cond afresh, as POSIX advises for a child after fork
 * (reinitialise, do not destroy: a dead worker may have held the lock or waited on the cond).
 * The next call that needs workers starts new ones. */
static void forget_lost_workers(nll_pool *pool) {
    for (int k = 0; k < pool->started; k++) {
        free(pool->workers[k]);
        pool->workers[k] = NULL;
    }
    pool->started = 0;
    pool->team.arrived = 0;
    pthread_mutex_init(&pool->team.lock, NULL);
    pthread_cond_init(&pool->team.released, NULL);
}

nll_pool *nll_pool_create(void) {
    nll_pool *pool = calloc(1, sizeof *pool);
    if (!pool)
        return NULL;
    atomic_init(&pool->team.generation, 0);
    pthread_mutex_init(&pool->team.lock, NULL);
    pthread_cond_init(&pool->team.released, NULL);
    return pool;
}

void nll_pool_destroy(nll_pool *pool) {
    if (!pool)
        return;
    if (workers_lost_in_fork(pool))
        forget_lost_workers(pool);
    for (int k = 0; k < pool->started; k++)
        hand_call(pool->workers[k], 1);
    for (int k = 0; k < pool->started; k++) {
        pool_worker *w = pool->workers[k];
        pthread_join(w->thread, NULL);
        pthread_cond_destroy(&w->wake);
        pthread_mutex_destroy(&w->lock);
        free(w);
    }
    pthread_cond_destroy(&pool->team.released);
    pthread_mutex_destroy(&pool->team.lock);
    free(pool);
}

void nll_parallel_phases(nll_pool *pool, int threads, const nll_blocks *plan, int phases,
                         nll_phase_fn fn, nll_between_fn between, void *arg) {
    int64_t blocks = plan->count;
    int n = threads < 1 ? 1 : threads;
    if (n > NLL_MAX_THREADS)
        n = NLL_MAX_THREADS;
    if (n > blocks)
        n = blocks > 0 ? (int)blocks : 1;
    if (n == 1 || !pool) { /* no team: the phases in order on this thread */
        for (int phase = 0; phase < phases; phase++) {
            if (blocks > 0)
                fn(arg, phase, 0, blocks);
            if (phase + 1 < phases && between)
                between(arg, phase);
        }
        return;
    }
    /* Workers are started on the first call that needs them (in this process: one getpid
     * per parallel call, a few tens of ns); the caller runs the ranges of any that cannot be. */
    if (workers_lost_in_fork(pool))
        forget_lost_workers(pool);
    while (pool->started < n - 1 && start_worker(pool))
        ;
    team *t = &pool->team;
    t->fn = fn;
    t->between = between;
    t->arg = arg;
    t->phases = phases;
    t->blocks = blocks;
    t->ranges = n;
    t->count = pool->started < n - 1 ? pool->started + 1 : n;
    for (int k = 1; k < t->count; k++)
        hand_call(pool->workers[k - 1], 0);
    take_part(t, 0);
}

typedef struct one_phase {
    nll_block_fn fn;
    void *arg;
} one_phase;

static void run_one_phase(void *arg, int phase, int64_t first, int64_t end) {
    const one_phase *call = arg;
    (void)phase;
    call->fn(call->arg, first, end);
}

void nll_parallel_blocks(nll_pool *pool, int threads, const nll_blocks *plan, nll_block_fn fn,
                         void *arg) {
    one_phase call = {fn, arg};
    nll_parallel_phases(pool, threads, plan, 1, run_one_phase, NULL, &call);
}
