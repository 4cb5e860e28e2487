// The machine's measured floating-point peak: each thread runs a register-only loop of independent
// AVX2 FMAs (no memory traffic), so the rate is the FMA units' throughput. The benchmark reports
// every GFLOP/s figure as a fraction of this. Returns 0 where AVX2/FMA is not available.
#include "cs.h"
#include <pthread.h>
#include <time.h>
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define PEAK_X86 1
#endif

#define PEAK_ACC 12 // independent accumulators: > FMA latency x pipes (4 x 2 on Zen 4), so the units never wait

static double now_s(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

#ifdef PEAK_X86
typedef struct { long iters; float sink; } peak_job;

__attribute__((target("avx2,fma"))) static void *peak_thread(void *arg) {
  peak_job *j = arg;
  __m256 acc[PEAK_ACC];
  const __m256 a = _mm256_set1_ps(0.999999f), b = _mm256_set1_ps(1e-7f);
  for (int k = 0; k < PEAK_ACC; k++) acc[k] = _mm256_set1_ps((float)k);
  for (long i = 0; i < j->iters; i++) {
    for (int k = 0; k < PEAK_ACC; k++) acc[k] = _mm256_fmadd_ps(acc[k], a, b);
  }
  __m256 s = acc[0];
  for (int k = 1; k < PEAK_ACC; k++) s = _mm256_add_ps(s, acc[k]);
  float out[8];
  _mm256_storeu_ps(out, s);
  j->sink = out[0]; // keeps the loop from being optimised away
  return NULL;
}
#endif

double cs_peak_gflops(int threads) {
#ifdef PEAK_X86
  if (!cs_has_avx2 || threads < 1 || threads > 256) return 0;
  const long iters = 20000000; // 20M x 12 FMAs x 8 lanes x 2 flops = 3.84 GFLOP per thread
  pthread_t tid[256];
  peak_job jobs[256];
  double best = 0;
  for (int rep = 0; rep < 3; rep++) {
    double t0 = now_s();
    int started = 0;
    for (; started < threads; started++) {
      jobs[started].iters = iters;
      if (pthread_create(&tid[started], NULL, peak_thread, &jobs[started]) != 0) break;
    }
    for (int t = 0; t < started; t++) pthread_join(tid[t], NULL); // join only threads that exist
    if (started < threads) return 0; // the OS refused a thread: no honest figure for this count
    double dt = now_s() - t0;
    double gf = (double)threads * (double)iters * PEAK_ACC * 8 * 2 / dt / 1e9;
    if (gf > best) best = gf;
  }
  return best;
#else
  (void)threads;
  return 0;
#endif
}
