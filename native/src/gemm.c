// Float32 GEMM in the BLIS style: A and B are packed into micro-panels (MR rows / NR columns, any
// input strides, so transposed operands cost nothing extra), blocked by KC/MC/NC for Zen 4 caches
// (L1d 32 KiB holds a KCxNR B panel, L2 1 MiB an MCxKC A block, L3 the KCxNC B block), and
// multiplied by a 6x16 register-tile microkernel (AVX2/FMA, or portable C). Threads claim tiles of
// (batch, M chunk, N chunk); every output element is computed by one thread in a fixed order.
#include "cs.h"
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <stdatomic.h>
#if CS_X86
#include <immintrin.h>
#endif

#define MR 6
#define NR 16
#define KC 256
#define MC 144
#define NC 3072
#define PAR_MIN_MNK (1L << 17) // below ~256 KFLOP a second thread costs more than it saves

static float *abufs[CS_MAX_THREADS], *bbufs[CS_MAX_THREADS];

// A thread's packing buffer, allocated on first use; NULL when out of memory (never abort: the
// caller turns it into a JS error). run_job allocates every thread's buffers before the pool starts.
static float *thread_buf(float **slot, size_t n) {
  if (!*slot) {
    void *p = NULL;
    if (posix_memalign(&p, 64, n * sizeof(float)) != 0) return NULL;
    *slot = p;
  }
  return *slot;
}

typedef void (*ukr_fn)(int m, long kc, const float *a, const float *b, float *c, long ldc, int n, const float *bias, int first);

// ---- microkernels: c[m x n] (+)= a-panel[kc x MR]^T b-panel[kc x NR]; first adds bias instead of c ----
static void ukr_c(int m, long kc, const float *a, const float *b, float *c, long ldc, int n, const float *bias, int first) {
  float acc[MR][NR];
  memset(acc, 0, sizeof acc);
  for (long k = 0; k < kc; k++, a += MR, b += NR)
    for (int r = 0; r < MR; r++) {
      float av = a[r];
      for (int j = 0; j < NR; j++) acc[r][j] += av * b[j];
    }
  for (int r = 0; r < m; r++) {
    float *cr = c + r * ldc;
    for (int j = 0; j < n; j++) cr[j] = acc[r][j] + (first ? (bias ? bias[j] : 0.0f) : cr[j]);
  }
}

#if CS_X86
static const int32_t lane_mask_src[24] = { -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0, 0, 0, 0, 0, 0 };

// Stores one 16-wide row of the tile: first -> acc + bias, else c += acc; n < 16 uses lane masks.
CS_TARGET_AVX2 static inline __attribute__((always_inline)) void store_row(float *cr, __m256 x0, __m256 x1, int n,
    __m256 bias0, __m256 bias1, __m256i m0, __m256i m1, int first) {
  if (n == NR) {
    if (first) { x0 = _mm256_add_ps(x0, bias0); x1 = _mm256_add_ps(x1, bias1); }
    else { x0 = _mm256_add_ps(x0, _mm256_loadu_ps(cr)); x1 = _mm256_add_ps(x1, _mm256_loadu_ps(cr + 8)); }
    _mm256_storeu_ps(cr, x0); _mm256_storeu_ps(cr + 8, x1);
  } else {
    if (first) { x0 = _mm256_add_ps(x0, bias0); x1 = _mm256_add_ps(x1, bias1); }
    else { x0 = _mm256_add_ps(x0, _mm256_maskload_ps(cr, m0)); x1 = _mm256_add_ps(x1, _mm256_maskload_ps(cr + 8, m1)); }
    _mm256_maskstore_ps(cr, m0, x0); _mm256_maskstore_ps(cr + 8, m1, x1);
  }
}

// Accumulators are named variables (not an array) so GCC keeps all 12 in registers; m is a
// compile-time constant after inlining, so the guarded rows vanish for edge tiles.
#define ROW_DECL(r) __m256 c##r##0 = _mm256_setzero_ps(), c##r##1 = _mm256_setzero_ps();
#define ROW_FMA(r) if (m > r) { __m256 av = _mm256_broadcast_ss(a + r); \
    c##r##0 = _mm256_fmadd_ps(av, b0, c##r##0); c##r##1 = _mm256_fmadd_ps(av, b1, c##r##1); }
#define ROW_STORE(r) if (m > r) store_row(c + r * ldc, c##r##0, c##r##1, n, bias0, bias1, m0, m1, first);

CS_TARGET_AVX2 static inline __attribute__((always_inline)) void ukr_avx2_body(const int m, long kc, const float *a,
    const float *b, float *c, long ldc, int n, const float *bias, int first) {
  ROW_DECL(0) ROW_DECL(1) ROW_DECL(2) ROW_DECL(3) ROW_DECL(4) ROW_DECL(5)
#pragma GCC unroll 4
  for (long k = 0; k < kc; k++) {
    __m256 b0 = _mm256_load_ps(b), b1 = _mm256_load_ps(b + 8);
    ROW_FMA(0) ROW_FMA(1) ROW_FMA(2) ROW_FMA(3) ROW_FMA(4) ROW_FMA(5)
    a += MR; b += NR;
  }
  __m256i m0 = _mm256_loadu_si256((const __m256i *)(lane_mask_src + 16 - (n < 8 ? n : 8)));
  __m256i m1 = _mm256_loadu_si256((const __m256i *)(lane_mask_src + 16 - (n > 8 ? n - 8 : 0)));
  __m256 bias0 = _mm256_setzero_ps(), bias1 = _mm256_setzero_ps();
  if (first && bias) { bias0 = _mm256_maskload_ps(bias, m0); bias1 = _mm256_maskload_ps(bias + 8, m1); }
  ROW_STORE(0) ROW_STORE(1) ROW_STORE(2) ROW_STORE(3) ROW_STORE(4) ROW_STORE(5)
}

// One specialisation per row count, so edge tiles (e.g. the last 4 rows of T=16) skip the empty rows.
CS_TARGET_AVX2 static void ukr_avx2(int m, long kc, const float *a, const float *b, float *c, long ldc, int n, const float *bias, int first) {
  switch (m) {
    case 6: ukr_avx2_body(6, kc, a, b, c, ldc, n, bias, first); break;
    case 5: ukr_avx2_body(5, kc, a, b, c, ldc, n, bias, first); break;
    case 4: ukr_avx2_body(4, kc, a, b, c, ldc, n, bias, first); break;
    case 3: ukr_avx2_body(3, kc, a, b, c, ldc, n, bias, first); break;
    case 2: ukr_avx2_body(2, kc, a, b, c, ldc, n, bias, first); break;
    default: ukr_avx2_body(1, kc, a, b, c, ldc, n, bias, first); break;
  }
}
#endif

static ukr_fn ukr(void) {
#if CS_X86
  if (cs_has_avx2) return ukr_avx2;
#endif
  return ukr_c;
}

// ---- packing ----
// A block [mc x kc] (strides rs, cs) -> panels of MR rows, each [kc][MR], rows past mc zero.
static void pack_a(long mc, long kc, const float *A, long rs, long cs, float *dst) {
  for (long ir = 0; ir < mc; ir += MR, dst += kc * MR) {
    long m = mc - ir < MR ? mc - ir : MR;
    const float *a = A + ir * rs;
    if (m == MR && cs == 1) {
      for (long k = 0; k < kc; k++)
        for (int r = 0; r < MR; r++) dst[k * MR + r] = a[r * rs + k];
    } else if (m == MR && rs == 1) {
      for (long k = 0; k < kc; k++) memcpy(dst + k * MR, a + k * cs, MR * sizeof(float));
    } else {
      for (long k = 0; k < kc; k++)
        for (int r = 0; r < MR; r++) dst[k * MR + r] = r < m ? a[r * rs + k * cs] : 0.0f;
    }
  }
}

// B block [kc x nc] (strides rs, cs) -> panels of NR columns, each [kc][NR], columns past nc zero.
static void pack_b(long kc, long nc, const float *B, long rs, long cs, float *dst) {
  if (cs == 1 && nc >= NR) {
    // Row-major B: walk each source row once (sequential reads the prefetcher follows) and
    // scatter its 16-wide pieces to the panels; the ragged last panel is done below.
    long full = nc / NR * NR;
    for (long k = 0; k < kc; k++) {
      const float *src = B + k * rs;
      float *d = dst + k * NR;
      for (long jr = 0; jr < full; jr += NR, d += kc * NR) memcpy(d, src + jr, NR * sizeof(float));
    }
    if (full == nc) return;
    B += full; dst += full * kc; nc -= full;
  }
  for (long jr = 0; jr < nc; jr += NR, dst += kc * NR) {
    long n = nc - jr < NR ? nc - jr : NR;
    const float *b = B + jr * cs;
    if (n == NR && cs == 1) {
      for (long k = 0; k < kc; k++) memcpy(dst + k * NR, b + k * rs, NR * sizeof(float));
    } else if (n == NR && rs == 1) {
      for (int j = 0; j < NR; j++)
        for (long k = 0; k < kc; k++) dst[k * NR + j] = b[j * cs + k];
    } else {
      for (long k = 0; k < kc; k++)
        for (int j = 0; j < NR; j++) dst[k * NR + j] = j < n ? b[j * cs + k * rs] : 0.0f;
    }
  }
}

// ---- blocked driver over one output range ----
typedef struct {
  long M, N, K;
  const float *A; long abs_, ars, acs;
  const float *B; long bbs, brs, bcs;
  const float *Bp; long Npad; // packed B (matmulPacked) or NULL
  float *C; const float *bias;
  long batch;
  const float *Ap; long Mpad; // A packed up front (batch 1, several work items) or NULL
  long mch, nch, mchunks, nchunks, items; // work items: batch x M chunks x N chunks
  atomic_long next; // next unclaimed work item
  atomic_int failed; // a thread found no packing buffer (cannot happen after run_job's allocation)
} gemm_job;

static void gemm_range(const gemm_job *g, const float *A, const float *B, float *C, long m0, long m1, long n0, long n1, int tid) {
  ukr_fn kern = ukr();
  long K = g->K, ldc = g->N;
  if (m0 >= m1 || n0 >= n1) return;
  if (K == 0) {
    for (long i = m0; i < m1; i++)
      for (long j = n0; j < n1; j++) C[i * ldc + j] = g->bias ? g->bias[j] : 0.0f;
    return;
  }
  float *abuf = g->Ap ? NULL : thread_buf(&abufs[tid], (size_t)MC * KC);
  float *bbuf = g->Bp ? NULL : thread_buf(&bbufs[tid], (size_t)KC * NC);
  if ((!g->Ap && !abuf) || (!g->Bp && !bbuf)) { atomic_store(&((gemm_job *)g)->failed, 1); return; }
  for (long jc = n0; jc < n1; jc += NC) {
    long nc = n1 - jc < NC ? n1 - jc : NC;
    for (long pc = 0; pc < K; pc += KC) {
      long kc = K - pc < KC ? K - pc : KC;
      const float *pb;
      if (g->Bp) pb = g->Bp + pc * g->Npad + jc * kc; // jc is a multiple of NR: panel jc/NR
      else { pack_b(kc, nc, B + pc * g->brs + jc * g->bcs, g->brs, g->bcs, bbuf); pb = bbuf; }
      for (long ic = m0; ic < m1; ic += MC) {
        long mc = m1 - ic < MC ? m1 - ic : MC;
        const float *pa;
        if (g->Ap) pa = g->Ap + pc * g->Mpad + ic * kc; // ic is a multiple of MR
        else { pack_a(mc, kc, A + ic * g->ars + pc * g->acs, g->ars, g->acs, abuf); pa = abuf; }
        for (long jr = 0; jr < nc; jr += NR) {
          int n = (int)(nc - jr < NR ? nc - jr : NR);
          const float *bias = g->bias && pc == 0 ? g->bias + jc + jr : NULL;
          for (long ir = 0; ir < mc; ir += MR) {
            int m = (int)(mc - ir < MR ? mc - ir : MR);
            kern(m, kc, pa + ir * kc, pb + jr * kc, C + (ic + ir) * ldc + jc + jr, ldc, n, bias, pc == 0);
          }
        }
      }
    }
  }
}

// Threads claim work items dynamically (a descheduled thread cannot hold the others up), yet the
// result is bit-identical: each output tile is computed by one thread in a fixed order of k.
static void gemm_task(void *ctx, int tid, int nt) {
  (void)nt;
  gemm_job *g = ctx;
  for (;;) {
    long it = atomic_fetch_add_explicit(&g->next, 1, memory_order_relaxed);
    if (it >= g->items) return;
    long bt = it / (g->mchunks * g->nchunks), rest = it % (g->mchunks * g->nchunks);
    long m0 = rest / g->nchunks * g->mch, n0 = rest % g->nchunks * g->nch;
    long m1 = m0 + g->mch < g->M ? m0 + g->mch : g->M, n1 = n0 + g->nch < g->N ? n0 + g->nch : g->N;
    gemm_range(g, g->A + bt * g->abs_, g->B ? g->B + bt * g->bbs : NULL, g->C + bt * g->M * g->N, m0, m1, n0, n1, tid);
  }
}

// Packs all of A ([M, K]) as [K blocks][M panels][kc][MR], the layout gemm_range reads via g->Ap.
static void pack_a_all_task(void *ctx, int tid, int nt) {
  (void)tid; (void)nt;
  gemm_job *g = ctx;
  long mblocks = (g->M + MC - 1) / MC, kblocks = (g->K + KC - 1) / KC;
  for (;;) {
    long it = atomic_fetch_add_explicit(&g->next, 1, memory_order_relaxed);
    if (it >= mblocks * kblocks) return;
    long pc = it / mblocks * KC, ic = it % mblocks * MC;
    long kc = g->K - pc < KC ? g->K - pc : KC, mc = g->M - ic < MC ? g->M - ic : MC;
    pack_a(mc, kc, g->A + ic * g->ars + pc * g->acs, g->ars, g->acs, (float *)g->Ap + pc * g->Mpad + ic * kc);
  }
}

static float *abig; // the shared packed-A buffer (calls come from one JS thread at a time)
static size_t abig_cap;

static long round_up(long x, long m) { return (x + m - 1) / m * m; }

static int run_job(gemm_job *g) {
  int nt = cs_pool_threads();
  long mnk; // batch*M*N fits (it is the output's length), times K may not: saturate
  if (__builtin_mul_overflow(g->batch * g->M * g->N, g->K > 0 ? g->K : 1, &mnk)) mnk = LONG_MAX;
  if (mnk < PAR_MIN_MNK) nt = 1;
  g->mch = g->M; g->nch = g->N; g->mchunks = 1; g->nchunks = 1;
  g->Ap = NULL; g->Mpad = 0;
  if (nt > 1 && g->batch < 2L * nt) {
    // About 3 N chunks per thread, each at most 512 columns (a KCx512 B block stays in L2) ...
    g->nch = round_up((g->N + 3L * nt - 1) / (3L * nt), NR);
    if (g->nch > 512) g->nch = 512;
    g->nchunks = (g->N + g->nch - 1) / g->nch;
    // ... and M chunks when N alone does not give every thread a few items.
    long want = 3L * nt / g->batch;
    if (g->nchunks < want && g->M > 2 * MR) {
      long mparts = (want + g->nchunks - 1) / g->nchunks;
      g->mch = round_up((g->M + mparts - 1) / mparts, MR);
      g->mchunks = (g->M + g->mch - 1) / g->mch;
    }
  }
  g->items = g->batch * g->mchunks * g->nchunks;
  if (g->batch == 1 && g->items > 1 && g->K > 0) {
    // A is read by every N chunk: pack it once rather than once per chunk.
    g->Mpad = round_up(g->M, MR);
    size_t need = (size_t)g->Mpad * (size_t)g->K;
    if (need > abig_cap) {
      free(abig);
      abig = NULL; abig_cap = 0;
      void *p = NULL;
      if (need > SIZE_MAX / sizeof(float) || posix_memalign(&p, 64, need * sizeof(float)) != 0) return -1;
      abig = p; abig_cap = need;
    }
    g->Ap = abig;
    atomic_store(&g->next, 0);
    if (need <= 65536) pack_a_all_task(g, 0, 1); // small: not worth waking the pool twice
    else cs_pool_run(pack_a_all_task, g, nt);
  }
  int used = nt > g->items ? (int)g->items : nt;
  for (int t = 0; t < used && g->K > 0; t++) // every thread that may claim an item gets its buffers here
    if ((!g->Ap && !thread_buf(&abufs[t], (size_t)MC * KC)) || (!g->Bp && !thread_buf(&bbufs[t], (size_t)KC * NC))) return -1;
  atomic_store(&g->next, 0);
  atomic_store(&g->failed, 0);
  cs_pool_run(gemm_task, g, used);
  return atomic_load(&g->failed) ? -1 : 0;
}

int cs_matmul(long batch, long M, long N, long K, const float *A, long abs_, long ars, long acs,
    const float *B, long bbs, long brs, long bcs, float *C, const float *bias) {
  if (batch <= 0 || M <= 0 || N <= 0) return 0;
  gemm_job g = { .M = M, .N = N, .K = K, .A = A, .abs_ = abs_, .ars = ars, .acs = acs,
    .B = B, .bbs = bbs, .brs = brs, .bcs = bcs, .C = C, .bias = bias, .batch = batch };
  return run_job(&g);
}

cs_packed *cs_pack(long K, long N, const float *B, long brs, long bcs) {
  cs_packed *p = malloc(sizeof *p);
  if (!p) return NULL;
  p->K = K; p->N = N; p->Npad = (N + NR - 1) / NR * NR;
  size_t n = (size_t)K * (size_t)p->Npad; // K, N < 2^31 (checked by the addon): no overflow
  if (n == 0) n = 1; // K == 0 or N == 0: gemm_range never reads the panels
  void *d = NULL;
  if (n > SIZE_MAX / sizeof(float) || posix_memalign(&d, 64, n * sizeof(float)) != 0) { free(p); return NULL; }
  p->data = d;
  // Block pc holds rows [pc, pc+kc) as Npad/NR panels of [kc][NR], exactly what gemm_range reads.
  for (long pc = 0; pc < K; pc += KC) {
    long kc = K - pc < KC ? K - pc : KC;
    pack_b(kc, N, B + pc * brs, brs, bcs, p->data + pc * p->Npad);
  }
  return p;
}

size_t cs_packed_bytes(const cs_packed *p) { return (size_t)p->K * (size_t)p->Npad * sizeof(float); }

void cs_packed_free(cs_packed *p) {
  if (!p) return;
  free(p->data);
  free(p);
}

int cs_matmul_packed(long M, const float *A, long ars, long acs, const cs_packed *p, float *C, const float *bias) {
  if (M <= 0 || p->N <= 0) return 0;
  gemm_job g = { .M = M, .N = p->N, .K = p->K, .A = A, .ars = ars, .acs = acs, .Bp = p->data, .Npad = p->Npad,
    .C = C, .bias = bias, .batch = 1 };
  return run_job(&g);
}
