// A persistent pthread pool. The caller runs task 0 itself; workers spin briefly on a generation
// counter (a kernel call is often followed by another within microseconds), then sleep on a condvar.
// Task functions claim their work items themselves; each item's result must not depend on which
// thread computes it (that is what keeps results bit-identical run to run).
#include "cs.h"
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <unistd.h>
#if CS_X86
#include <immintrin.h>
#define CS_PAUSE() _mm_pause()
#elif defined(__aarch64__)
#define CS_PAUSE() __asm__ __volatile__("yield")
#else
#define CS_PAUSE() ((void)0)
#endif

#define SPIN_ITERS 8000 // ~200 us of spinning (PAUSE is ~25 ns on Zen 4) before a worker sleeps

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static atomic_ulong gen;
static atomic_int sleepers;
static atomic_int remaining;
static atomic_int started;
static cs_task_fn cur_fn;
static void *cur_ctx;
static int cur_nt;
static int n_workers; // started worker threads (tids 1..n_workers)
static int n_threads = 1; // threads in use, including the caller

static void *worker(void *arg) {
  int tid = (int)(intptr_t)arg;
  unsigned long seen = atomic_load(&gen);
  atomic_fetch_add(&started, 1); // the pool waits for this so no generation is missed
  for (;;) {
    unsigned long g;
    int spins = 0;
    while ((g = atomic_load_explicit(&gen, memory_order_acquire)) == seen && spins < SPIN_ITERS) { CS_PAUSE(); spins++; }
    if (g == seen) {
      pthread_mutex_lock(&mu);
      atomic_fetch_add(&sleepers, 1);
      while ((g = atomic_load(&gen)) == seen) pthread_cond_wait(&cv, &mu);
      atomic_fetch_sub(&sleepers, 1);
      pthread_mutex_unlock(&mu);
    }
    seen = g;
    // Every started worker acknowledges every generation, so none can skip one and later run a stale job.
    if (tid < cur_nt) cur_fn(cur_ctx, tid, cur_nt);
    atomic_fetch_sub_explicit(&remaining, 1, memory_order_release);
  }
  return NULL;
}

int cs_pool_threads(void) { return n_threads; }

int cs_pool_set_threads(int n) {
  if (n < 1) n = 1;
  if (n > CS_MAX_THREADS) n = CS_MAX_THREADS;
  while (n_workers < n - 1) {
    pthread_t th;
    pthread_attr_t at;
    pthread_attr_init(&at);
    pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
    int rc = pthread_create(&th, &at, worker, (void *)(intptr_t)(n_workers + 1));
    pthread_attr_destroy(&at);
    if (rc != 0) break;
    n_workers++;
  }
  while (atomic_load(&started) < n_workers) CS_PAUSE();
  n_threads = n_workers + 1 < n ? n_workers + 1 : n;
  return n_threads;
}

void cs_pool_run(cs_task_fn fn, void *ctx, int nt) {
  if (nt > n_threads) nt = n_threads;
  if (nt <= 1) { fn(ctx, 0, 1); return; }
  cur_fn = fn; cur_ctx = ctx; cur_nt = nt;
  atomic_store(&remaining, n_workers);
  atomic_fetch_add(&gen, 1); // seq_cst: pairs with the sleepers check below (no lost wake-up)
  if (atomic_load(&sleepers) > 0) {
    pthread_mutex_lock(&mu);
    pthread_cond_broadcast(&cv);
    pthread_mutex_unlock(&mu);
  }
  fn(ctx, 0, nt);
  // A worker still busy here was probably descheduled: after a short spin, yield the core to it.
  for (int spins = 0; atomic_load_explicit(&remaining, memory_order_acquire) > 0; spins++) {
    if (spins < 4000) CS_PAUSE();
    else sched_yield();
  }
}
