/* Fork-join over fixed blocks of work. Blocks are cut by the size of the problem alone, never by
 * the thread count, and each reduction is summed per block then over blocks in order: results
 * are bitwise identical whatever the number of threads. */
#include <pthread.h>

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

typedef struct worker {
    nll_block_fn fn;
    void *arg;
    int64_t first, end;
} worker;

static void *run_worker(void *arg) {
    worker *w = arg;
    w->fn(w->arg, w->first, w->end);
    return NULL;
}

void nll_parallel_blocks(int threads, const nll_blocks *plan, nll_block_fn fn, void *arg) {
    int64_t blocks = plan->count;
    int n = threads < 1 ? 1 : threads;
    if (n > NLL_MAX_THREADS)
        n = NLL_MAX_THREADS;
    if (n > blocks)
        n = (int)blocks;
    if (n <= 1) {
        if (blocks > 0)
            fn(arg, 0, blocks);
        return;
    }
    worker workers[NLL_MAX_THREADS];
    pthread_t ids[NLL_MAX_THREADS];
    int started[NLL_MAX_THREADS] = {0};
    for (int k = 0; k < n; k++) {
        workers[k].fn = fn;
        workers[k].arg = arg;
        workers[k].first = blocks * k / n;
        workers[k].end = blocks * (k + 1) / n;
    }
    /* Worker 0 runs on the calling thread; a worker that cannot start runs here too. */
    for (int k = 1; k < n; k++)
        started[k] = pthread_create(&ids[k], NULL, run_worker, &workers[k]) == 0;
    run_worker(&workers[0]);
    for (int k = 1; k < n; k++) {
        if (started[k])
            pthread_join(ids[k], NULL);
        else
            run_worker(&workers[k]);
    }
}
