// Fused causal attention, forward and backward, with the semantics of attention/attentionBackward
// in src/backend/ts.ts. Work items are heads (forward: (batch, head); backward: (batch, kv head), so
// the query heads sharing a key/value head accumulate into one dK/dV without races). Within a head,
// query rows are processed in tiles of RT: the tile's scores [RT, visible keys] live in a scratch
// buffer that stays in cache, and keys past the tile's last visible one are never touched, so the
// [query, key] matrix never goes to memory and the causal half is skipped. The backward recomputes
// the probabilities from the saved logsumexp. Products go through one 4x16 register tile.
#include "cs.h"
#include <math.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#if CS_X86
#include <immintrin.h>
#endif

#define RT 32 // query rows per tile
#define ATT_PAR_MIN 32768 // multiply-adds below which a second thread costs more than it saves

static long up16(long n) { return (n + 15) / 16 * 16; }

// C[r][0..16) (+)= sum_k A[r*ars + k*acs] * B[k*ldb + 0..16) for r < nr (nr in 1..4); B holds 16 readable columns.
#if CS_X86
CS_TARGET_AVX2 static void mk_avx2(const float *A, long ars, long acs, int nr, const float *B, long ldb, long K, float *C, long ldc, int acc) {
  const float *a0 = A, *a1 = A + (nr > 1 ? ars : 0), *a2 = A + (nr > 2 ? 2 * ars : 0), *a3 = A + (nr > 3 ? 3 * ars : 0);
  __m256 c00 = _mm256_setzero_ps(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00, c30 = c00, c31 = c00;
  for (long k = 0; k < K; k++) {
    __m256 b0 = _mm256_loadu_ps(B + k * ldb), b1 = _mm256_loadu_ps(B + k * ldb + 8);
    __m256 x = _mm256_broadcast_ss(a0 + k * acs);
    c00 = _mm256_fmadd_ps(x, b0, c00); c01 = _mm256_fmadd_ps(x, b1, c01);
    x = _mm256_broadcast_ss(a1 + k * acs);
    c10 = _mm256_fmadd_ps(x, b0, c10); c11 = _mm256_fmadd_ps(x, b1, c11);
    x = _mm256_broadcast_ss(a2 + k * acs);
    c20 = _mm256_fmadd_ps(x, b0, c20); c21 = _mm256_fmadd_ps(x, b1, c21);
    x = _mm256_broadcast_ss(a3 + k * acs);
    c30 = _mm256_fmadd_ps(x, b0, c30); c31 = _mm256_fmadd_ps(x, b1, c31);
  }
  __m256 r[4][2] = { { c00, c01 }, { c10, c11 }, { c20, c21 }, { c30, c31 } };
  for (int i = 0; i < nr; i++) {
    float *c = C + i * ldc;
    if (acc) { r[i][0] = _mm256_add_ps(r[i][0], _mm256_loadu_ps(c)); r[i][1] = _mm256_add_ps(r[i][1], _mm256_loadu_ps(c + 8)); }
    _mm256_storeu_ps(c, r[i][0]); _mm256_storeu_ps(c + 8, r[i][1]);
  }
}
#endif
static void mk_portable(const float *A, long ars, long acs, int nr, const float *B, long ldb, long K, float *C, long ldc, int acc) {
  float c[4][16];
  memset(c, 0, sizeof c);
  for (long k = 0; k < K; k++) {
    const float *b = B + k * ldb;
    for (int i = 0; i < nr; i++) {
      float a = A[i * ars + k * acs];
      for (int j = 0; j < 16; j++) c[i][j] += a * b[j];
    }
  }
  for (int i = 0; i < nr; i++)
    for (int j = 0; j < 16; j++) C[i * ldc + j] = acc ? C[i * ldc + j] + c[i][j] : c[i][j];
}
static void mk(const float *A, long ars, long acs, int nr, const float *B, long ldb, long K, float *C, long ldc, int acc) {
#if CS_X86
  if (cs_has_avx2) { mk_avx2(A, ars, acs, nr, B, ldb, K, C, ldc, acc); return; }
#endif
  mk_portable(A, ars, acs, nr, B, ldb, K, C, ldc, acc);
}

#define KB 256 // depth of one pass over a B panel, so the panel (KB x 16 floats) stays in L1 across row groups

// C[rows][cols16] (+)= A[rows][K] (strided) · B[K][cols16]. B is stored in panels of 16 columns: panel p
// starts at B + p*bpanel with rows ldb apart (ldb = 16 when a panel is contiguous).
static void gemm_tiles(long rows, long cols16, long K, const float *A, long ars, long acs,
  const float *B, long ldb, long bpanel, float *C, long ldc, int acc) {
  long k0 = 0;
  do { // one pass when K = 0, so an overwritten C is still written (zeros)
    long kc = K - k0 < KB ? K - k0 : KB;
    for (long c = 0; c < cols16; c += 16)
      for (long r = 0; r < rows; r += 4) {
        int nr = rows - r < 4 ? (int)(rows - r) : 4;
        mk(A + r * ars + k0 * acs, ars, acs, nr, B + (c / 16) * bpanel + k0 * ldb, ldb, kc, C + r * ldc + c, ldc, acc || k0 > 0);
      }
    k0 += KB;
  } while (k0 < K);
}

typedef struct {
  long B, H, Hkv, Tq, Tk, dh, g, Tkp, dhp;
  float scale;
  const float *q, *k, *v, *mask;
  long qs[4], ks[4], vs[4];
  float *out, *lse;
  const float *o, *gout; // backward: the forward output and its gradient, contiguous [B, Tq, H, dh]
  float *gq, *gk, *gv;
  float **scratch; // one block per thread
  long items;
  atomic_long next;
} att_job;

static long visible(const att_job *j, long i) {
  long l = i + j->Tk - j->Tq + 1;
  return l < 0 ? 0 : l > j->Tk ? j->Tk : l;
}

// x[b, t, h, c] as B with columns t: panels of 16 keys, each [dh][16] contiguous (zero past Tk).
static void pack_t(const att_job *j, const float *x, const long *s, long b, long h, float *Kt) {
  const float *src = x + b * s[0] + h * s[2];
  for (long t0 = 0; t0 < j->Tkp; t0 += 16) {
    float *panel = Kt + t0 * j->dh;
    for (long c = 0; c < j->dh; c++)
      for (long u = 0; u < 16; u++) panel[c * 16 + u] = t0 + u < j->Tk ? src[(t0 + u) * s[1] + c * s[3]] : 0.0f;
  }
}
// n rows x[t][c] as B with columns c: panels of 16 columns, each [n][16] contiguous (zero past dh); panel stride n*16.
static void pack_rows(long n, long dh, long dhp, const float *x, long rs, long cs, float *Xp) {
  for (long c0 = 0; c0 < dhp; c0 += 16) {
    float *panel = Xp + c0 * n;
    for (long t = 0; t < n; t++)
      for (long u = 0; u < 16; u++) panel[t * 16 + u] = c0 + u < dh ? x[t * rs + (c0 + u) * cs] : 0.0f;
  }
}

// S[r][0..Lp) for the tile's rows at query i0: q·k (+ mask) into S, ld Tkp.
static void tile_scores(const att_job *j, long b, long h, long i0, long m, long Lp, const float *Kt, float *S) {
  const float *qa = j->q + b * j->qs[0] + i0 * j->qs[1] + h * j->qs[2];
  gemm_tiles(m, Lp, j->dh, qa, j->qs[1], j->qs[3], Kt, 16, 16 * j->dh, S, j->Tkp, 0);
  if (j->mask) {
    const float *mk_ = j->mask + b * j->Tk;
    for (long r = 0; r < m; r++) {
      float *s = S + r * j->Tkp;
      long L = visible(j, i0 + r);
      for (long t = 0; t < L; t++) s[t] += mk_[t];
    }
  }
}

static float row_max_scaled(const float *s, long n, float scale) {
  float m = -INFINITY;
  for (long t = 0; t < n; t++) { float v = s[t] * scale; m = v > m ? v : m; }
  return m;
}

static void attention_task(void *c, int tid, int nt) {
  (void)nt;
  att_job *j = c;
  float *Kt = j->scratch[tid], *Vp = Kt + j->dh * j->Tkp, *S = Vp + j->Tk * j->dhp, *O = S + RT * j->Tkp;
  for (;;) {
    long it = atomic_fetch_add_explicit(&j->next, 1, memory_order_relaxed);
    if (it >= j->items) return;
    long b = it / j->H, h = it % j->H, kh = h / j->g;
    pack_t(j, j->k, j->ks, b, kh, Kt);
    pack_rows(j->Tk, j->dh, j->dhp, j->v + b * j->vs[0] + kh * j->vs[2], j->vs[1], j->vs[3], Vp);
    for (long i0 = 0; i0 < j->Tq; i0 += RT) {
      long m = j->Tq - i0 < RT ? j->Tq - i0 : RT, Lmax = visible(j, i0 + m - 1);
      if (Lmax > 0) tile_scores(j, b, h, i0, m, up16(Lmax), Kt, S);
      for (long r = 0; r < m; r++) {
        float *s = S + r * j->Tkp;
        long L = visible(j, i0 + r);
        float *lse = j->lse + (b * j->H + h) * j->Tq + i0 + r;
        if (L == 0) { *lse = -INFINITY; continue; }
        float mx = row_max_scaled(s, L, j->scale);
        double sum = cs_exp_sum(s, s, L, j->scale, mx);
        float inv = (float)(1.0 / sum);
        for (long t = 0; t < L; t++) s[t] *= inv;
        for (long t = L; t < Lmax; t++) s[t] = 0.0f;
        *lse = mx + (float)log(sum);
      }
      if (Lmax > 0) gemm_tiles(m, j->dhp, Lmax, S, j->Tkp, 1, Vp, 16, 16 * j->Tk, O, j->dhp, 0);
      for (long r = 0; r < m; r++) {
        float *dst = j->out + ((b * j->Tq + i0 + r) * j->H + h) * j->dh;
        if (Lmax > 0 && visible(j, i0 + r) > 0) memcpy(dst, O + r * j->dhp, (size_t)j->dh * sizeof(float));
        else memset(dst, 0, (size_t)j->dh * sizeof(float));
      }
    }
  }
}

static void attention_bwd_task(void *c, int tid, int nt) {
  (void)nt;
  att_job *j = c;
  long Tkp = j->Tkp, dhp = j->dhp, dh = j->dh;
  float *Kt = j->scratch[tid], *Vt = Kt + dh * Tkp, *Kp = Vt + dh * Tkp, *dK = Kp + j->Tk * dhp, *dV = dK + j->Tk * dhp;
  float *S = dV + j->Tk * dhp, *dP = S + RT * Tkp, *Qp = dP + RT * Tkp, *Gp = Qp + RT * dhp, *dQ = Gp + RT * dhp;
  long rowH = j->H * dh; // row stride of out, gOut and gq [B, Tq, H, dh]
  for (;;) {
    long it = atomic_fetch_add_explicit(&j->next, 1, memory_order_relaxed);
    if (it >= j->items) return;
    long b = it / j->Hkv, kh = it % j->Hkv;
    pack_t(j, j->k, j->ks, b, kh, Kt);
    pack_t(j, j->v, j->vs, b, kh, Vt);
    pack_rows(j->Tk, dh, dhp, j->k + b * j->ks[0] + kh * j->ks[2], j->ks[1], j->ks[3], Kp);
    memset(dK, 0, (size_t)(j->Tk * dhp) * sizeof(float));
    memset(dV, 0, (size_t)(j->Tk * dhp) * sizeof(float));
    for (long h = kh * j->g; h < (kh + 1) * j->g; h++) {
      for (long i0 = 0; i0 < j->Tq; i0 += RT) {
        long m = j->Tq - i0 < RT ? j->Tq - i0 : RT, Lmax = visible(j, i0 + m - 1);
        float *gqd = j->gq + (b * j->Tq + i0) * rowH + h * dh;
        if (Lmax == 0) { for (long r = 0; r < m; r++) memset(gqd + r * rowH, 0, (size_t)dh * sizeof(float)); continue; }
        long Lp = up16(Lmax);
        const float *g0 = j->gout + (b * j->Tq + i0) * rowH + h * dh, *o0 = j->o + (b * j->Tq + i0) * rowH + h * dh;
        tile_scores(j, b, h, i0, m, Lp, Kt, S);
        gemm_tiles(m, Lp, dh, g0, rowH, 1, Vt, 16, 16 * dh, dP, Tkp, 0); // dP = gOut · vᵀ
        pack_rows(m, dh, dhp, j->q + b * j->qs[0] + i0 * j->qs[1] + h * j->qs[2], j->qs[1], j->qs[3], Qp);
        pack_rows(m, dh, dhp, g0, rowH, 1, Gp);
        for (long r = 0; r < m; r++) {
          float *s = S + r * Tkp, *dp = dP + r * Tkp;
          long L = visible(j, i0 + r);
          float l = j->lse[(b * j->H + h) * j->Tq + i0 + r];
          double D = 0;
          for (long cc = 0; cc < dh; cc++) D += (double)g0[r * rowH + cc] * o0[r * rowH + cc];
          if (L > 0) cs_exp_sum(s, s, L, j->scale, l); // P = exp(scale (q·k + mask) - lse)
          float Df = (float)D;
          for (long t = 0; t < L; t++) dp[t] = j->scale * s[t] * (dp[t] - Df); // dS, scale folded in
          for (long t = L; t < Lmax; t++) { s[t] = 0.0f; dp[t] = 0.0f; }
        }
        gemm_tiles(Lmax, dhp, m, S, 1, Tkp, Gp, 16, 16 * m, dV, dhp, 1); // dV += Pᵀ gOut
        gemm_tiles(Lmax, dhp, m, dP, 1, Tkp, Qp, 16, 16 * m, dK, dhp, 1); // dK += dSᵀ q
        gemm_tiles(m, dhp, Lmax, dP, Tkp, 1, Kp, 16, 16 * j->Tk, dQ, dhp, 0); // dQ = dS k
        for (long r = 0; r < m; r++) memcpy(gqd + r * rowH, dQ + r * dhp, (size_t)dh * sizeof(float));
      }
    }
    for (long t = 0; t < j->Tk; t++) {
      memcpy(j->gk + ((b * j->Tk + t) * j->Hkv + kh) * dh, dK + t * dhp, (size_t)dh * sizeof(float));
      memcpy(j->gv + ((b * j->Tk + t) * j->Hkv + kh) * dh, dV + t * dhp, (size_t)dh * sizeof(float));
    }
  }
}

static int run(att_job *j, cs_task_fn fn, long items, size_t per_thread) {
  long work = j->B * j->H * j->Tq * (j->Tk > 0 ? j->Tk : 1) * (j->dh > 0 ? j->dh : 1);
  int nt = work < ATT_PAR_MIN ? 1 : cs_pool_threads();
  if (nt > items) nt = (int)(items > 0 ? items : 1);
  float *blocks[CS_MAX_THREADS];
  for (int t = 0; t < nt; t++) {
    blocks[t] = malloc(per_thread * sizeof(float) + 64);
    if (!blocks[t]) { for (int u = 0; u < t; u++) free(blocks[u]); return -1; }
  }
  j->scratch = blocks;
  j->items = items;
  atomic_store(&j->next, 0);
  cs_pool_run(fn, j, nt);
  for (int t = 0; t < nt; t++) free(blocks[t]);
  return 0;
}

static void setup(att_job *j, const long *dims, float scale, const float *q, const long *qs, const float *k, const long *ks,
  const float *v, const long *vs, const float *mask) {
  memset(j, 0, sizeof *j);
  j->B = dims[0]; j->H = dims[1]; j->Hkv = dims[2]; j->Tq = dims[3]; j->Tk = dims[4]; j->dh = dims[5];
  j->g = j->Hkv > 0 ? j->H / j->Hkv : 1;
  j->Tkp = up16(j->Tk); j->dhp = up16(j->dh);
  j->scale = scale; j->q = q; j->k = k; j->v = v; j->mask = mask;
  memcpy(j->qs, qs, sizeof j->qs); memcpy(j->ks, ks, sizeof j->ks); memcpy(j->vs, vs, sizeof j->vs);
}

int cs_attention(const long *dims, float scale, const float *q, const long *qs, const float *k, const long *ks,
  const float *v, const long *vs, const float *mask, float *out, float *lse) {
  att_job j;
  setup(&j, dims, scale, q, qs, k, ks, v, vs, mask);
  j.out = out; j.lse = lse;
  size_t per = (size_t)(j.dh * j.Tkp + j.Tk * j.dhp + RT * j.Tkp + RT * j.dhp);
  return run(&j, attention_task, j.B * j.H, per);
}

int cs_attention_bwd(const long *dims, float scale, const float *q, const long *qs, const float *k, const long *ks,
  const float *v, const long *vs, const float *mask, const float *out, const float *lse, const float *gout,
  float *gq, float *gk, float *gv) {
  att_job j;
  setup(&j, dims, scale, q, qs, k, ks, v, vs, mask);
  j.o = out; j.lse = (float *)lse; j.gout = gout; j.gq = gq; j.gk = gk; j.gv = gv;
  size_t per = (size_t)(2 * j.dh * j.Tkp + 3 * j.Tk * j.dhp + 2 * RT * j.Tkp + 3 * RT * j.dhp);
  if (j.Tq == 0 || j.H == 0) { // no query reads any key: every key and value gradient is 0
    memset(gk, 0, (size_t)(j.B * j.Tk * j.Hkv * j.dh) * sizeof(float));
    memset(gv, 0, (size_t)(j.B * j.Tk * j.Hkv * j.dh) * sizeof(float));
    return 0;
  }
  return run(&j, attention_bwd_task, j.B * j.Hkv, per);
}
