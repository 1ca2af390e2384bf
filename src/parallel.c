/* Fork-join over fixed blocks of work. Blocks are cut by the size of the problem alone, never by
 * the thread count, and each reduction is summed per block then over blocks in order: results
 * are bitwise identical whatever the number of threads. */
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>

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

/* The threads of one call. Between phases every thread waits at a barrier; the last to arrive
 * runs `between` alone, then releases the others. Waiters poll a while first, yielding the CPU
 * at each poll (there may be more threads than cores): the phases are balanced, and waking a
 * sleeping thread costs about as much as starting one. */
typedef struct team {
    nll_phase_fn fn;
    nll_between_fn between;
    void *arg;
    int phases;
    int count;   /* threads that take part: 1 + those started */
    int arrived; /* at the current barrier, under lock */
    atomic_uint generation;
    pthread_mutex_t lock;
    pthread_cond_t released;
} team;

typedef struct worker {
    team *team;
    int64_t first, end;
    int64_t (*extra)[2]; /* the caller only: ranges of workers that could not start */
    int extras;
} worker;

#define NLL_POLLS 100 /* before sleeping: some tens of microseconds */

static void barrier(team *t, int phase) {
    pthread_mutex_lock(&t->lock);
    if (++t->arrived == t->count) {
        t->arrived = 0;
        if (t->between)
            t->between(t->arg, phase);
        atomic_fetch_add_explicit(&t->generation, 1, memory_order_release);
        pthread_cond_broadcast(&t->released);
        pthread_mutex_unlock(&t->lock);
        return;
    }
    unsigned seen = atomic_load_explicit(&t->generation, memory_order_relaxed);
    pthread_mutex_unlock(&t->lock);
    for (int poll = 0; poll < NLL_POLLS; poll++) {
        if (atomic_load_explicit(&t->generation, memory_order_acquire) != seen)
            return;
        sched_yield();
    }
    pthread_mutex_lock(&t->lock);
    while (atomic_load_explicit(&t->generation, memory_order_acquire) == seen)
        pthread_cond_wait(&t->released, &t->lock);
    pthread_mutex_unlock(&t->lock);
}

static void *run_worker(void *arg) {
    worker *w = arg;
    team *t = w->team;
    for (int phase = 0; phase < t->phases; phase++) {
        if (w->first < w->end)
            t->fn(t->arg, phase, w->first, w->end);
        for (int k = 0; k < w->extras; k++)
            if (w->extra[k][0] < w->extra[k][1])
                t->fn(t->arg, phase, w->extra[k][0], w->extra[k][1]);
        if (phase + 1 < t->phases)
            barrier(t, phase);
    }
    return NULL;
}

void nll_parallel_phases(int threads, const nll_blocks *plan, int phases, nll_phase_fn fn,
                         nll_between_fn between, void *arg) {
    int64_t blocks = plan->count;
    int n = threads < 1 ? 1 : threads;
    if (n > NLL_MAX_THREADS)
        n = NLL_MAX_THREADS;
    if (n > blocks)
        n = blocks > 0 ? (int)blocks : 1;
    if (n == 1) { /* no team: the phases in order on this thread */
        for (int phase = 0; phase < phases; phase++) {
            if (blocks > 0)
                fn(arg, phase, 0, blocks);
            if (phase + 1 < phases && between)
                between(arg, phase);
        }
        return;
    }
    team t = {.fn = fn, .between = between, .arg = arg, .phases = phases, .count = n};
    atomic_init(&t.generation, 0);
    pthread_mutex_init(&t.lock, NULL);
    pthread_cond_init(&t.released, NULL);
    worker workers[NLL_MAX_THREADS];
    pthread_t ids[NLL_MAX_THREADS];
    int started[NLL_MAX_THREADS] = {0};
    int64_t extra[NLL_MAX_THREADS][2];
    for (int k = 0; k < n; k++)
        workers[k] = (worker){&t, blocks * k / n, blocks * (k + 1) / n, NULL, 0};
    workers[0].extra = extra;
    /* Worker 0 runs on the calling thread, with the ranges of any worker that cannot start.
     * Until the caller arrives no barrier can complete, so the count may still drop. */
    for (int k = 1; k < n; k++) {
        started[k] = pthread_create(&ids[k], NULL, run_worker, &workers[k]) == 0;
        if (!started[k]) {
            extra[workers[0].extras][0] = workers[k].first;
            extra[workers[0].extras++][1] = workers[k].end;
            pthread_mutex_lock(&t.lock);
            t.count--;
            pthread_mutex_unlock(&t.lock);
        }
    }
    run_worker(&workers[0]);
    for (int k = 1; k < n; k++)
        if (started[k])
            pthread_join(ids[k], NULL);
    pthread_cond_destroy(&t.released);
    pthread_mutex_destroy(&t.lock);
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

void nll_parallel_blocks(int threads, const nll_blocks *plan, nll_block_fn fn, void *arg) {
    one_phase call = {fn, arg};
    nll_parallel_phases(threads, plan, 1, run_one_phase, NULL, &call);
}
