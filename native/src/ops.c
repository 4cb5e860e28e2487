// Float32 elementwise, reduction, softmax, normalisation and optimizer kernels with the semantics of
// tsKernels (src/backend/ts.ts). Transcendentals use AVX2 vector code (vmath.h) when the CPU has it;
// simple loops are plain C compiled twice (AVX2 clone and default). Sums run in double, as in the
// reference. Work above PAR_MIN elements is shared with the pool's threads.
#include "cs.h"
#include <math.h>
#include <string.h>
#include <stdatomic.h>
#include "vmath.h"

#define PAR_MIN 65536 // below this a second thread costs more than it saves
static const float SQRT_2_OVER_PI = 0.7978845608028654f;
static const float INV_SQRT2 = 0.7071067811865476f;
static const float INV_SQRT_2PI = 0.3989422804014327f;

// ---- parallel for over [0, n): threads claim chunks dynamically. Every kernel below computes each
// output from its own inputs only, so which thread runs a chunk never changes the result. ----
typedef void (*range_fn)(void *ctx, long lo, long hi);
typedef struct { range_fn fn; void *ctx; long n, chunk; atomic_long next; } pfor_job;
static void pfor_task(void *c, int tid, int nt) {
  (void)tid; (void)nt;
  pfor_job *p = c;
  for (;;) {
    long lo = atomic_fetch_add_explicit(&p->next, 1, memory_order_relaxed) * p->chunk;
    if (lo >= p->n) return;
    p->fn(p->ctx, lo, lo + p->chunk < p->n ? lo + p->chunk : p->n);
  }
}
static void pfor(long n, long align, long work, range_fn fn, void *ctx) {
  int nt = cs_pool_threads();
  if (work < PAR_MIN || nt <= 1 || n < 2) { if (n > 0) fn(ctx, 0, n); return; }
  long parts = 4L * nt; // a few chunks per thread, so a descheduled thread's share is picked up
  long chunk = (n + parts - 1) / parts;
  chunk = (chunk + align - 1) / align * align;
  pfor_job p = { fn, ctx, n, chunk, 0 };
  cs_pool_run(pfor_task, &p, nt);
}

// ---- double-accumulated reductions (8 independent lanes so the compiler can vectorise) ----
CS_CLONES static double dsum(const float *x, long n) {
  double acc[8] = { 0 };
  long i = 0;
  for (; i + 8 <= n; i += 8)
    for (int j = 0; j < 8; j++) acc[j] += (double)x[i + j];
  double s = 0;
  for (; i < n; i++) s += x[i];
  for (int j = 0; j < 8; j++) s += acc[j];
  return s;
}
CS_CLONES static double ddot(const float *x, const float *y, long n) {
  double acc[8] = { 0 };
  long i = 0;
  for (; i + 8 <= n; i += 8)
    for (int j = 0; j < 8; j++) acc[j] += (double)x[i + j] * (double)y[i + j];
  double s = 0;
  for (; i < n; i++) s += (double)x[i] * y[i];
  for (int j = 0; j < 8; j++) s += acc[j];
  return s;
}
CS_CLONES static double dsqdev(const float *x, long n, double mu) {
  double acc[8] = { 0 };
  long i = 0;
  for (; i + 8 <= n; i += 8)
    for (int j = 0; j < 8; j++) { double d = x[i + j] - mu; acc[j] += d * d; }
  double s = 0;
  for (; i < n; i++) { double d = x[i] - mu; s += d * d; }
  for (int j = 0; j < 8; j++) s += acc[j];
  return s;
}
CS_CLONES static float fmax_scaled(const float *x, long n, float scale) {
  float acc[8];
  for (int j = 0; j < 8; j++) acc[j] = -INFINITY;
  long i = 0;
  for (; i + 8 <= n; i += 8)
    for (int j = 0; j < 8; j++) { float v = x[i + j] * scale; acc[j] = v > acc[j] ? v : acc[j]; }
  float m = -INFINITY;
  for (; i < n; i++) { float v = x[i] * scale; m = v > m ? v : m; }
  for (int j = 0; j < 8; j++) m = acc[j] > m ? acc[j] : m;
  return m;
}

// out[i] = exp(x[i] * scale - sub) (out may be NULL); returns the sum in double.
static double exp_sum(const float *x, float *out, long n, float scale, float sub);
#if CS_X86
CS_TARGET_AVX2 static double exp_sum_avx2(const float *x, float *out, long n, float scale, float sub) {
  __m256 vs = _mm256_set1_ps(scale), vsub = _mm256_set1_ps(sub);
  __m256d a0 = _mm256_setzero_pd(), a1 = _mm256_setzero_pd();
  long i = 0;
  for (; i + 8 <= n; i += 8) {
    __m256 e = v_exp(_mm256_fmsub_ps(_mm256_loadu_ps(x + i), vs, vsub));
    if (out) _mm256_storeu_ps(out + i, e);
    a0 = _mm256_add_pd(a0, _mm256_cvtps_pd(_mm256_castps256_ps128(e)));
    a1 = _mm256_add_pd(a1, _mm256_cvtps_pd(_mm256_extractf128_ps(e, 1)));
  }
  double lanes[4];
  _mm256_storeu_pd(lanes, _mm256_add_pd(a0, a1));
  double s = lanes[0] + lanes[1] + lanes[2] + lanes[3];
  if (i < n) {
    float tmp[8] = { 0 };
    memcpy(tmp, x + i, (size_t)(n - i) * sizeof(float));
    float e[8];
    _mm256_storeu_ps(e, v_exp(_mm256_fmsub_ps(_mm256_loadu_ps(tmp), vs, vsub)));
    for (long j = 0; j < n - i; j++) { s += e[j]; if (out) out[i + j] = e[j]; }
  }
  return s;
}
#endif
static double exp_sum(const float *x, float *out, long n, float scale, float sub) {
#if CS_X86
  if (cs_has_avx2) return exp_sum_avx2(x, out, n, scale, sub);
#endif
  double s = 0;
  for (long i = 0; i < n; i++) { float e = expf(x[i] * scale - sub); if (out) out[i] = e; s += e; }
  return s;
}

double cs_exp_sum(const float *x, float *out, long n, float scale, float sub) { return exp_sum(x, out, n, scale, sub); }

// ---- unary ----
static inline float gelu_erf1(float x) {
  // 1 + erf(x/sqrt2) = erfc(-x/sqrt2) avoids cancellation for negative x.
  return 0.5f * x * erfcf(-x * INV_SQRT2);
}
static inline float gelu_tanh1(float x) {
  // 0.5 (1 + tanh u) = sigmoid(2u): no cancellation for negative x.
  float u = SQRT_2_OVER_PI * (x + 0.044715f * x * x * x);
  return x / (1.0f + expf(-2.0f * u));
}

CS_CLONES static void unary_simple(int op, const float *x, float *out, long n) {
  switch (op) {
    case U_NEG: for (long i = 0; i < n; i++) out[i] = -x[i]; break;
    case U_SQRT: for (long i = 0; i < n; i++) out[i] = sqrtf(x[i]); break;
    case U_RSQRT: for (long i = 0; i < n; i++) out[i] = 1.0f / sqrtf(x[i]); break;
    case U_RECIP: for (long i = 0; i < n; i++) out[i] = 1.0f / x[i]; break;
    case U_RELU: for (long i = 0; i < n; i++) out[i] = x[i] > 0 ? x[i] : 0.0f; break;
    case U_ABS: for (long i = 0; i < n; i++) out[i] = fabsf(x[i]); break;
    case U_SQUARE: for (long i = 0; i < n; i++) out[i] = x[i] * x[i]; break;
    case U_SIGN: for (long i = 0; i < n; i++) out[i] = x[i] > 0 ? 1.0f : x[i] < 0 ? -1.0f : 0.0f; break;
    case U_EXP: for (long i = 0; i < n; i++) out[i] = expf(x[i]); break;
    case U_LOG: for (long i = 0; i < n; i++) out[i] = logf(x[i]); break;
    case U_TANH: for (long i = 0; i < n; i++) out[i] = tanhf(x[i]); break;
    case U_SIGMOID: for (long i = 0; i < n; i++) out[i] = 1.0f / (1.0f + expf(-x[i])); break;
    case U_GELU_TANH: for (long i = 0; i < n; i++) out[i] = gelu_tanh1(x[i]); break;
    case U_GELU_ERF: for (long i = 0; i < n; i++) out[i] = gelu_erf1(x[i]); break;
    case U_SILU: for (long i = 0; i < n; i++) out[i] = x[i] / (1.0f + expf(-x[i])); break;
    case U_SIN: for (long i = 0; i < n; i++) out[i] = sinf(x[i]); break;
    case U_COS: for (long i = 0; i < n; i++) out[i] = cosf(x[i]); break;
    default: break;
  }
}

#if CS_X86
CS_TARGET_AVX2 static inline __m256 v_unary(int op, __m256 x) {
  switch (op) {
    case U_EXP: return v_exp(x);
    case U_TANH: return v_tanh(x);
    case U_SIGMOID: return v_sigmoid(x);
    case U_SILU: return _mm256_mul_ps(x, v_sigmoid(x));
    default: { // U_GELU_TANH
      __m256 x3 = _mm256_mul_ps(_mm256_mul_ps(x, x), x);
      __m256 u2 = _mm256_mul_ps(_mm256_set1_ps(2.0f * SQRT_2_OVER_PI), _mm256_fmadd_ps(_mm256_set1_ps(0.044715f), x3, x));
      return _mm256_mul_ps(x, v_sigmoid(u2));
    }
  }
}
CS_TARGET_AVX2 static void unary_avx2(int op, const float *x, float *out, long n) {
  long i = 0;
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(out + i, v_unary(op, _mm256_loadu_ps(x + i)));
  if (i < n) {
    float t[8] = { 0 };
    memcpy(t, x + i, (size_t)(n - i) * sizeof(float));
    _mm256_storeu_ps(t, v_unary(op, _mm256_loadu_ps(t)));
    memcpy(out + i, t, (size_t)(n - i) * sizeof(float));
  }
}
// gx = gy * f'(x) for the ops with vector derivatives.
CS_TARGET_AVX2 static inline __m256 v_deriv(int op, __m256 x) {
  const __m256 one = _mm256_set1_ps(1.0f);
  switch (op) {
    case U_TANH: { __m256 t = v_tanh(x); return _mm256_fnmadd_ps(t, t, one); }
    case U_SIGMOID: { __m256 s = v_sigmoid(x); return _mm256_mul_ps(s, _mm256_sub_ps(one, s)); }
    case U_SILU: { __m256 s = v_sigmoid(x); return _mm256_mul_ps(s, _mm256_fmadd_ps(x, _mm256_sub_ps(one, s), one)); }
    default: { // U_GELU_TANH: s + 2 x s (1 - s) du with s = sigmoid(2u)
      __m256 x2 = _mm256_mul_ps(x, x);
      __m256 u2 = _mm256_mul_ps(_mm256_set1_ps(2.0f * SQRT_2_OVER_PI), _mm256_fmadd_ps(_mm256_mul_ps(_mm256_set1_ps(0.044715f), x2), x, x));
      __m256 s = v_sigmoid(u2);
      __m256 du = _mm256_mul_ps(_mm256_set1_ps(SQRT_2_OVER_PI), _mm256_fmadd_ps(_mm256_set1_ps(3.0f * 0.044715f), x2, one));
      __m256 t = _mm256_mul_ps(_mm256_mul_ps(_mm256_add_ps(x, x), _mm256_mul_ps(s, _mm256_sub_ps(one, s))), du);
      return _mm256_add_ps(s, t);
    }
  }
}
CS_TARGET_AVX2 static void unary_grad_avx2(int op, const float *x, const float *gy, float *gx, long n) {
  long i = 0;
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(gx + i, _mm256_mul_ps(_mm256_loadu_ps(gy + i), v_deriv(op, _mm256_loadu_ps(x + i))));
  if (i < n) {
    float t[8] = { 0 }, g[8] = { 0 };
    memcpy(t, x + i, (size_t)(n - i) * sizeof(float));
    memcpy(g, gy + i, (size_t)(n - i) * sizeof(float));
    _mm256_storeu_ps(t, _mm256_mul_ps(_mm256_loadu_ps(g), v_deriv(op, _mm256_loadu_ps(t))));
    memcpy(gx + i, t, (size_t)(n - i) * sizeof(float));
  }
}
#endif

static inline int vec_unary(int op) { return op == U_EXP || op == U_TANH || op == U_SIGMOID || op == U_SILU || op == U_GELU_TANH; }

static void unary_any(int op, const float *x, float *out, long n) {
#if CS_X86
  if (cs_has_avx2 && vec_unary(op)) { unary_avx2(op, x, out, n); return; }
#endif
  unary_simple(op, x, out, n);
}

static float deriv1(int op, float x) {
  switch (op) {
    case U_GELU_TANH: {
      float u = SQRT_2_OVER_PI * (x + 0.044715f * x * x * x);
      float s = 1.0f / (1.0f + expf(-2.0f * u));
      float du = SQRT_2_OVER_PI * (1.0f + 3.0f * 0.044715f * x * x);
      return s + 2.0f * x * s * (1.0f - s) * du;
    }
    case U_GELU_ERF: return 0.5f * erfcf(-x * INV_SQRT2) + x * expf(-0.5f * x * x) * INV_SQRT_2PI;
    case U_SILU: { float s = 1.0f / (1.0f + expf(-x)); return s * (1.0f + x * (1.0f - s)); }
    case U_TANH: { float t = tanhf(x); return 1.0f - t * t; }
    case U_SIGMOID: { float s = 1.0f / (1.0f + expf(-x)); return s * (1.0f - s); }
    case U_RELU: return x > 0 ? 1.0f : 0.0f;
    default: return NAN;
  }
}

static void unary_grad_any(int op, const float *x, const float *gy, float *gx, long n) {
#if CS_X86
  if (cs_has_avx2 && op != U_GELU_ERF && op != U_RELU) { unary_grad_avx2(op, x, gy, gx, n); return; }
#endif
  if (op == U_RELU) { for (long i = 0; i < n; i++) gx[i] = x[i] > 0 ? gy[i] : 0.0f * gy[i]; return; }
  for (long i = 0; i < n; i++) gx[i] = gy[i] * deriv1(op, x[i]);
}

typedef struct { int op; const float *x, *gy; float *out; } unary_job;
static void unary_range(void *c, long lo, long hi) { unary_job *j = c; unary_any(j->op, j->x + lo, j->out + lo, hi - lo); }
static void unary_grad_range(void *c, long lo, long hi) { unary_job *j = c; unary_grad_any(j->op, j->x + lo, j->gy + lo, j->out + lo, hi - lo); }

void cs_unary(int op, const float *x, float *out, long n) {
  unary_job j = { op, x, NULL, out };
  // Transcendentals cost ~10x a load/store, so they go parallel at a smaller size.
  pfor(n, 16, op == U_NEG || op == U_ABS || op == U_SQUARE || op == U_RELU ? n : n * 8, unary_range, &j);
}
void cs_unary_grad(int op, const float *x, const float *gy, float *gx, long n) {
  unary_job j = { op, x, gy, gx };
  pfor(n, 16, op == U_RELU ? n : n * 8, unary_grad_range, &j);
}

// ---- binary and copy over strided operands ----
#define BIN_LOOPS(EXPR) \
  if (la == 1 && lb == 1) { for (long i = 0; i < n; i++) { float x = a[i], y = b[i]; out[i] = (EXPR); } } \
  else if (la == 1 && lb == 0) { float y = b[0]; for (long i = 0; i < n; i++) { float x = a[i]; out[i] = (EXPR); } } \
  else if (la == 0 && lb == 1) { float x = a[0]; for (long i = 0; i < n; i++) { float y = b[i]; out[i] = (EXPR); } } \
  else { for (long i = 0; i < n; i++) { float x = a[i * la], y = b[i * lb]; out[i] = (EXPR); } }

CS_CLONES static void bin_row(int op, long n, const float *a, long la, const float *b, long lb, float *out) {
  switch (op) {
    case B_ADD: BIN_LOOPS(x + y) break;
    case B_SUB: BIN_LOOPS(x - y) break;
    case B_MUL: BIN_LOOPS(x * y) break;
    case B_DIV: BIN_LOOPS(x / y) break;
    // NaN-propagating like torch.maximum.
    case B_MAX: BIN_LOOPS(x != x || y != y ? NAN : x > y ? x : y) break;
    case B_MIN: BIN_LOOPS(x != x || y != y ? NAN : x < y ? x : y) break;
    case B_POW: BIN_LOOPS(powf(x, y)) break;
    case B_EQ: BIN_LOOPS(x == y ? 1.0f : 0.0f) break;
    case B_NE: BIN_LOOPS(x != y ? 1.0f : 0.0f) break;
    case B_LT: BIN_LOOPS(x < y ? 1.0f : 0.0f) break;
    case B_LE: BIN_LOOPS(x <= y ? 1.0f : 0.0f) break;
    case B_GT: BIN_LOOPS(x > y ? 1.0f : 0.0f) break;
    case B_GE: BIN_LOOPS(x >= y ? 1.0f : 0.0f) break;
    default: break;
  }
}
static void copy_row(long n, const float *a, long la, float *out) {
  if (la == 1) memcpy(out, a, (size_t)n * sizeof(float));
  else if (la == 0) { float v = a[0]; for (long i = 0; i < n; i++) out[i] = v; }
  else for (long i = 0; i < n; i++) out[i] = a[i * la];
}

typedef struct { int op, nd; const long *shape; const float *a, *b; const long *sa, *sb; float *out; } strided_job;

// Output elements [i0, i1) in row-major order; op < 0 copies a.
static void strided_range(void *c, long i0, long i1) {
  const strided_job *j = c;
  int nd = j->nd;
  const long *shape = j->shape, *sa = j->sa, *sb = j->sb;
  long idx[CS_MAX_DIMS], rem = i0, oa = 0, ob = 0;
  for (int d = nd - 1; d >= 0; d--) {
    idx[d] = rem % shape[d]; rem /= shape[d];
    oa += idx[d] * sa[d]; ob += idx[d] * sb[d];
  }
  long L = shape[nd - 1], la = sa[nd - 1], lb = sb[nd - 1];
  for (long i = i0; i < i1;) {
    long cnt = L - idx[nd - 1] < i1 - i ? L - idx[nd - 1] : i1 - i;
    if (j->op < 0) copy_row(cnt, j->a + oa, la, j->out + i);
    else bin_row(j->op, cnt, j->a + oa, la, j->b + ob, lb, j->out + i);
    i += cnt;
    oa += cnt * la; ob += cnt * lb; idx[nd - 1] += cnt;
    if (idx[nd - 1] < L) continue;
    oa -= L * la; ob -= L * lb; idx[nd - 1] = 0;
    // Carry into the outer dimensions.
    for (int d = nd - 2; d >= 0; d--) {
      idx[d]++; oa += sa[d]; ob += sb[d];
      if (idx[d] < shape[d]) break;
      oa -= sa[d] * shape[d]; ob -= sb[d] * shape[d]; idx[d] = 0;
    }
  }
}

static void run_strided(int op, int nd, const long *shape, const float *a, const long *sa, const float *b, const long *sb, float *out) {
  static const long one = 1, zero = 0;
  long n = 1;
  for (int d = 0; d < nd; d++) n *= shape[d];
  if (n == 0) return;
  if (nd == 0) { nd = 1; shape = &one; sa = &zero; sb = &zero; }
  strided_job j = { op, nd, shape, a, b, sa, sb, out };
  pfor(n, 16, op == B_POW ? n * 8 : n, strided_range, &j);
}
void cs_binary(int op, int nd, const long *shape, const float *a, const long *sa, const float *b, const long *sb, float *out) {
  run_strided(op, nd, shape, a, sa, b, sb, out);
}
// A 2-D copy whose rows read across the source (a transpose): 32x32 blocks, so each source cache line
// is read once per block instead of once per element (e.g. W_U = W_E^T at load).
#define TB 32
typedef struct { const float *x; long R, C, sr, sc; float *out; } tr_job;
static void transpose_range(void *c, long lo, long hi) {
  const tr_job *j = c;
  for (long rb = lo; rb < hi; rb++) {
    long r0 = rb * TB, r1 = r0 + TB < j->R ? r0 + TB : j->R;
    for (long c0 = 0; c0 < j->C; c0 += TB) {
      long c1 = c0 + TB < j->C ? c0 + TB : j->C;
      for (long r = r0; r < r1; r++) {
        const float *src = j->x + r * j->sr;
        float *dst = j->out + r * j->C;
        for (long cc = c0; cc < c1; cc++) dst[cc] = src[cc * j->sc];
      }
    }
  }
}
void cs_copy(int nd, const long *shape, const float *x, const long *sx, float *out) {
  if (nd == 2 && shape[0] >= TB && shape[1] >= TB && (sx[1] > 16 || sx[1] < -16)) {
    tr_job j = { x, shape[0], shape[1], sx[0], sx[1], out };
    pfor((shape[0] + TB - 1) / TB, 1, shape[0] * shape[1], transpose_range, &j);
    return;
  }
  run_strided(-1, nd, shape, x, sx, x, sx, out);
}

// ---- reduce / argmax over [outer, red, inner] ----
typedef struct { int op; const float *x; long red, inner; float *out; int32_t *iout; } red_job;

CS_CLONES static void reduce_minmax_cols(int op, const float *x, long red, long inner, long c0, long c1, float *out) {
  for (long i = c0; i < c1; i++) out[i] = op == R_MAX ? -INFINITY : INFINITY;
  for (long r = 0; r < red; r++) {
    const float *row = x + r * inner;
    if (op == R_MAX) for (long i = c0; i < c1; i++) { float v = row[i], a = out[i]; out[i] = v != v || a != a ? NAN : v > a ? v : a; }
    else for (long i = c0; i < c1; i++) { float v = row[i], a = out[i]; out[i] = v != v || a != a ? NAN : v < a ? v : a; }
  }
}
CS_CLONES static void reduce_sum_cols(const float *x, long red, long inner, long c0, long c1, double *acc) {
  for (long i = c0; i < c1; i++) acc[i - c0] = 0;
  for (long r = 0; r < red; r++) {
    const float *row = x + r * inner;
    for (long i = c0; i < c1; i++) acc[i - c0] += row[i];
  }
}
static void reduce_range(void *c, long lo, long hi) {
  const red_job *j = c;
  long red = j->red, inner = j->inner;
  for (long o = lo; o < hi; o++) {
    const float *x = j->x + o * red * inner;
    float *out = j->out + o * inner;
    if (inner == 1) {
      if (j->op == R_SUM) out[0] = (float)dsum(x, red);
      else reduce_minmax_cols(j->op, x, red, 1, 0, 1, out);
    } else if (j->op == R_SUM) {
      double acc[512];
      for (long c0 = 0; c0 < inner; c0 += 512) {
        long c1 = c0 + 512 < inner ? c0 + 512 : inner;
        reduce_sum_cols(x, red, inner, c0, c1, acc);
        for (long i = c0; i < c1; i++) out[i] = (float)acc[i - c0];
      }
    } else reduce_minmax_cols(j->op, x, red, inner, 0, inner, out);
  }
}
void cs_reduce(int op, const float *x, long outer, long red, long inner, float *out) {
  red_job j = { op, x, red, inner, out, NULL };
  if (red == 0) {
    for (long i = 0; i < outer * inner; i++) out[i] = op == R_SUM ? 0.0f : op == R_MAX ? -INFINITY : INFINITY;
    return;
  }
  pfor(outer, 1, outer * red * inner, reduce_range, &j);
}

static void argmax_range(void *c, long lo, long hi) {
  const red_job *j = c;
  long red = j->red, inner = j->inner;
  for (long o = lo; o < hi; o++)
    for (long i = 0; i < inner; i++) {
      const float *x = j->x + o * red * inner + i;
      long best = 0;
      float bv = x[0];
      for (long r = 1; r < red; r++) {
        float v = x[r * inner];
        if (v > bv || (v != v && bv == bv)) { bv = v; best = r; }
      }
      j->iout[o * inner + i] = (int32_t)best;
    }
}
void cs_argmax(const float *x, long outer, long red, long inner, int32_t *out) {
  red_job j = { 0, x, red, inner, NULL, out };
  if (red <= 0) return;
  pfor(outer, 1, outer * red * inner, argmax_range, &j);
}

// ---- softmax family (rows of x [rows, cols]) ----
typedef struct { const float *x, *gy; float *out; long cols; float scale; long causalRows, causalOffset; } row_job;

CS_CLONES static void scale_zero_tail(float *out, long limit, long cols, float inv) {
  for (long c = 0; c < limit; c++) out[c] *= inv;
  for (long c = limit; c < cols; c++) out[c] = 0.0f;
}
static void softmax_range(void *c, long lo, long hi) {
  const row_job *j = c;
  long cols = j->cols;
  for (long r = lo; r < hi; r++) {
    const float *x = j->x + r * cols;
    float *out = j->out + r * cols;
    long limit = cols;
    if (j->causalRows > 0) {
      limit = r % j->causalRows + j->causalOffset + 1;
      if (limit > cols) limit = cols;
      if (limit < 0) limit = 0;
    }
    float mx = fmax_scaled(x, limit, j->scale);
    double sum = exp_sum(x, out, limit, j->scale, mx);
    scale_zero_tail(out, limit, cols, limit > 0 ? (float)(1.0 / sum) : 0.0f);
  }
}
void cs_softmax(const float *x, long rows, long cols, float scale, long causalRows, long causalOffset, float *out) {
  row_job j = { x, NULL, out, cols, scale, causalRows, causalOffset };
  pfor(rows, 1, rows * cols * 4, softmax_range, &j);
}

CS_CLONES static void softmax_bwd_row(const float *y, const float *gy, long n, float scale, float dot, float *gx) {
  for (long c = 0; c < n; c++) gx[c] = scale * y[c] * (gy[c] - dot);
}
static void softmax_bwd_range(void *c, long lo, long hi) {
  const row_job *j = c;
  long cols = j->cols;
  for (long r = lo; r < hi; r++) {
    const float *y = j->x + r * cols, *gy = j->gy + r * cols;
    softmax_bwd_row(y, gy, cols, j->scale, (float)ddot(gy, y, cols), j->out + r * cols);
  }
}
void cs_softmax_bwd(const float *y, const float *gy, long rows, long cols, float scale, float *gx) {
  row_job j = { y, gy, gx, cols, scale, 0, 0 };
  pfor(rows, 1, rows * cols, softmax_bwd_range, &j);
}

CS_CLONES static void sub_const(const float *x, long n, float v, float *out) {
  for (long c = 0; c < n; c++) out[c] = x[c] - v;
}
static void log_softmax_range(void *c, long lo, long hi) {
  const row_job *j = c;
  long cols = j->cols;
  for (long r = lo; r < hi; r++) {
    const float *x = j->x + r * cols;
    float mx = fmax_scaled(x, cols, 1.0f);
    double s = exp_sum(x, NULL, cols, 1.0f, mx);
    sub_const(x, cols, (float)(mx + log(s)), j->out + r * cols);
  }
}
void cs_log_softmax(const float *x, long rows, long cols, float *out) {
  row_job j = { x, NULL, out, cols, 1.0f, 0, 0 };
  pfor(rows, 1, rows * cols * 4, log_softmax_range, &j);
}

#if CS_X86
CS_TARGET_AVX2 static void sub_exp_mul_avx2(const float *y, const float *gy, long n, float s, float *gx) {
  __m256 vs = _mm256_set1_ps(s);
  long i = 0;
  for (; i + 8 <= n; i += 8)
    _mm256_storeu_ps(gx + i, _mm256_fnmadd_ps(v_exp(_mm256_loadu_ps(y + i)), vs, _mm256_loadu_ps(gy + i)));
  for (; i < n; i++) gx[i] = gy[i] - expf(y[i]) * s;
}
#endif
static void log_softmax_bwd_range(void *c, long lo, long hi) {
  const row_job *j = c;
  long cols = j->cols;
  for (long r = lo; r < hi; r++) {
    const float *y = j->x + r * cols, *gy = j->gy + r * cols;
    float *gx = j->out + r * cols;
    float s = (float)dsum(gy, cols);
#if CS_X86
    if (cs_has_avx2) { sub_exp_mul_avx2(y, gy, cols, s, gx); continue; }
#endif
    for (long i = 0; i < cols; i++) gx[i] = gy[i] - expf(y[i]) * s;
  }
}
void cs_log_softmax_bwd(const float *y, const float *gy, long rows, long cols, float *gx) {
  row_job j = { y, gy, gx, cols, 1.0f, 0, 0 };
  pfor(rows, 1, rows * cols * 4, log_softmax_bwd_range, &j);
}

// ---- layer norm / RMS norm ----
typedef struct { const float *x, *w, *b, *mean, *rstd, *gy; float *out, *omean, *orstd, *gw, *gb; long rows, cols; float eps; } norm_job;

CS_CLONES static void norm_out_row(const float *x, const float *w, const float *b, long n, float mu, float rs, float *out) {
  if (w && b) for (long c = 0; c < n; c++) out[c] = (x[c] - mu) * rs * w[c] + b[c];
  else if (w) for (long c = 0; c < n; c++) out[c] = (x[c] - mu) * rs * w[c];
  else if (b) for (long c = 0; c < n; c++) out[c] = (x[c] - mu) * rs + b[c];
  else for (long c = 0; c < n; c++) out[c] = (x[c] - mu) * rs;
}
static void layernorm_range(void *c, long lo, long hi) {
  const norm_job *j = c;
  long cols = j->cols;
  for (long r = lo; r < hi; r++) {
    const float *x = j->x + r * cols;
    double mu = dsum(x, cols) / (double)cols;
    double rs = 1.0 / sqrt(dsqdev(x, cols, mu) / (double)cols + j->eps);
    j->omean[r] = (float)mu; j->orstd[r] = (float)rs;
    norm_out_row(x, j->w, j->b, cols, (float)mu, (float)rs, j->out + r * cols);
  }
}
void cs_layernorm(const float *x, const float *w, const float *b, long rows, long cols, float eps, float *out, float *mean, float *rstd) {
  norm_job j = { x, w, b, NULL, NULL, NULL, out, mean, rstd, NULL, NULL, rows, cols, eps };
  pfor(rows, 1, rows * cols * 2, layernorm_range, &j);
}

// Per row with xhat = (x - mu) rstd and g = gy w: sums of g and g xhat (lanes for vectorisation).
CS_CLONES static void ln_bwd_sums(const float *x, const float *w, const float *gy, long n, float mu, float rs, double *sg, double *sgx) {
  double a[8] = { 0 }, b[8] = { 0 };
  long i = 0;
  for (; i + 8 <= n; i += 8)
    for (int k = 0; k < 8; k++) {
      float g = gy[i + k] * (w ? w[i + k] : 1.0f), xh = (x[i + k] - mu) * rs;
      a[k] += g; b[k] += (double)g * xh;
    }
  double s1 = 0, s2 = 0;
  for (; i < n; i++) { float g = gy[i] * (w ? w[i] : 1.0f), xh = (x[i] - mu) * rs; s1 += g; s2 += (double)g * xh; }
  for (int k = 0; k < 8; k++) { s1 += a[k]; s2 += b[k]; }
  *sg = s1; *sgx = s2;
}
CS_CLONES static void ln_bwd_row(const float *x, const float *w, const float *gy, long n, float mu, float rs, float sg, float sgx, float *gx) {
  for (long c = 0; c < n; c++) {
    float xh = (x[c] - mu) * rs, g = gy[c] * (w ? w[c] : 1.0f);
    gx[c] = rs * (g - sg - xh * sgx);
  }
}
static void layernorm_bwd_rows(void *c, long lo, long hi) {
  const norm_job *j = c;
  long cols = j->cols;
  for (long r = lo; r < hi; r++) {
    const float *x = j->x + r * cols, *gy = j->gy + r * cols;
    float mu = j->mean ? j->mean[r] : 0.0f, rs = j->rstd[r];
    double sg, sgx;
    ln_bwd_sums(x, j->w, gy, cols, mu, rs, &sg, &sgx);
    if (!j->mean) sg = 0; // RMSNorm has no mean term
    ln_bwd_row(x, j->w, gy, cols, mu, rs, (float)(sg / cols), (float)(sgx / cols), j->out + r * cols);
  }
}
// gw[c] += sum_r gy xhat, gb[c] += sum_r gy: split by columns so each thread owns its outputs.
CS_CLONES static void norm_param_grads(void *c, long lo, long hi) {
  const norm_job *j = c;
  long cols = j->cols;
  for (long r = 0; r < j->rows; r++) {
    const float *x = j->x + r * cols, *gy = j->gy + r * cols;
    float mu = j->mean ? j->mean[r] : 0.0f, rs = j->rstd[r];
    if (j->gw) for (long i = lo; i < hi; i++) j->gw[i] += gy[i] * ((x[i] - mu) * rs);
    if (j->gb) for (long i = lo; i < hi; i++) j->gb[i] += gy[i];
  }
}
void cs_layernorm_bwd(const float *x, const float *w, const float *mean, const float *rstd, const float *gy,
    long rows, long cols, float *gx, float *gw, float *gb) {
  norm_job j = { x, w, NULL, mean, rstd, gy, gx, NULL, NULL, gw, gb, rows, cols, 0 };
  pfor(rows, 1, rows * cols * 2, layernorm_bwd_rows, &j);
  if (gw || gb) pfor(cols, 16, rows * cols, norm_param_grads, &j);
}

CS_CLONES static void rms_out_row(const float *x, const float *w, long n, float rs, float *out) {
  if (w) for (long c = 0; c < n; c++) out[c] = x[c] * rs * w[c];
  else for (long c = 0; c < n; c++) out[c] = x[c] * rs;
}
static void rmsnorm_range(void *c, long lo, long hi) {
  const norm_job *j = c;
  long cols = j->cols;
  for (long r = lo; r < hi; r++) {
    const float *x = j->x + r * cols;
    double rs = 1.0 / sqrt(ddot(x, x, cols) / (double)cols + j->eps);
    j->orstd[r] = (float)rs;
    rms_out_row(x, j->w, cols, (float)rs, j->out + r * cols);
  }
}
void cs_rmsnorm(const float *x, const float *w, long rows, long cols, float eps, float *out, float *rstd) {
  norm_job j = { x, w, NULL, NULL, NULL, NULL, out, NULL, rstd, NULL, NULL, rows, cols, eps };
  pfor(rows, 1, rows * cols * 2, rmsnorm_range, &j);
}
void cs_rmsnorm_bwd(const float *x, const float *w, const float *rstd, const float *gy, long rows, long cols, float *gx, float *gw) {
  norm_job j = { x, w, NULL, NULL, rstd, gy, gx, NULL, NULL, gw, NULL, rows, cols, 0 };
  pfor(rows, 1, rows * cols * 2, layernorm_bwd_rows, &j);
  if (gw) pfor(cols, 16, rows * cols, norm_param_grads, &j);
}

// ---- AdamW ----
// 1 - beta is formed in double: (1.0f - (float)0.999) is 1.3e-5 off in relative terms.
typedef struct { float *p, *m, *v; const float *g; float lr, b1, b2, c1, c2, eps, wd, ibc1, ibc2; } adam_job;
CS_CLONES static void adamw_range(void *c, long lo, long hi) {
  const adam_job *j = c;
  float *p = j->p, *m = j->m, *v = j->v;
  const float *g = j->g;
  float b1 = j->b1, b2 = j->b2, c1 = j->c1, c2 = j->c2, lr = j->lr, eps = j->eps, wd = j->wd, ibc1 = j->ibc1, ibc2 = j->ibc2;
  for (long i = lo; i < hi; i++) {
    float gi = g[i];
    float mi = m[i] = b1 * m[i] + c1 * gi;
    float vi = v[i] = b2 * v[i] + c2 * gi * gi;
    p[i] = p[i] - lr * ((mi * ibc1) / (sqrtf(vi * ibc2) + eps) + wd * p[i]);
  }
}
void cs_adamw(float *p, const float *g, float *m, float *v, long n, double lr, double b1, double b2, double eps, double wd, double bc1, double bc2) {
  adam_job j = { p, m, v, g, (float)lr, (float)b1, (float)b2, (float)(1.0 - b1), (float)(1.0 - b2), (float)eps, (float)wd, (float)(1.0 / bc1), (float)(1.0 / bc2) };
  pfor(n, 16, n * 4, adamw_range, &j);
}

// ---- embedding rows ----
void cs_gather_rows(const float *x, long C, const int32_t *idx, long nidx, float *out) {
  for (long i = 0; i < nidx; i++) memcpy(out + i * C, x + (long)idx[i] * C, (size_t)C * sizeof(float));
}
CS_CLONES static void add_row(float *dst, const float *src, long n) {
  for (long c = 0; c < n; c++) dst[c] += src[c];
}
void cs_scatter_add_rows(const float *gy, const int32_t *idx, long nidx, long C, float *gx) {
  for (long i = 0; i < nidx; i++) add_row(gx + (long)idx[i] * C, gy + i * C, C);
}
