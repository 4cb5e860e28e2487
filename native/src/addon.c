// N-API entry points of the circuitscope native backend. Scalars (sizes, strides, op codes) travel
// through a Float64Array parameter block that JS hands over once at init and fills before each call,
// so a call costs one N-API transition plus napi_get_typedarray_info per array. The layout of the
// block for each function is documented beside it and mirrored in src/backend/native.ts.
#include <node_api.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "cs.h"

int cs_has_avx2 = 0;
void cs_init_cpu(void) {
#if CS_X86
  __builtin_cpu_init();
  cs_has_avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#endif
}

// Per-environment state (the main thread and each worker_thread that loads the addon have their own).
typedef struct { double *P; napi_ref P_ref; } env_state;
// Kernels share the pool and scratch buffers, so calls from different JS threads run one at a time.
static pthread_mutex_t call_mu = PTHREAD_MUTEX_INITIALIZER;

static void env_state_free(napi_env env, void *data, void *hint) {
  (void)hint;
  env_state *st = data;
  if (st->P_ref) napi_delete_reference(env, st->P_ref);
  free(st);
}

#define PI(i) ((long)P[i])
static const int is_init_ = 0;

#define CHECK(call) do { if ((call) != napi_ok) { napi_throw_error(env, NULL, "circuitscope native: N-API call failed: " #call); return NULL; } } while (0)
#define FAIL(msg) do { napi_throw_range_error(env, NULL, "circuitscope native: " msg); return NULL; } while (0)

#define MAXARGS 8
static void unlock_call(int *locked) { if (*locked) pthread_mutex_unlock(&call_mu); }
// Fetches the arguments and this environment's parameter block, and holds call_mu until return.
#define ARGS(n) \
  size_t argc = (n); napi_value argv[MAXARGS]; \
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL)); \
  if (argc < (n)) FAIL("too few arguments"); \
  env_state *st_ = NULL; \
  CHECK(napi_get_instance_data(env, (void **)&st_)); \
  if (!st_) FAIL("internal: no instance data"); \
  const double *P = st_->P; \
  if (!P && !is_init_) FAIL("init() must be called first"); \
  __attribute__((cleanup(unlock_call), unused)) int locked_ = (pthread_mutex_lock(&call_mu), 1)

// A typed array argument of the given type; *ok = 0 when it is something else. null gives NULL.
static void *arr(napi_env env, napi_value v, napi_typedarray_type want, size_t *len, int *ok) {
  napi_typedarray_type t;
  size_t n;
  void *data;
  *len = 0;
  if (napi_get_typedarray_info(env, v, &t, &n, &data, NULL, NULL) != napi_ok) {
    napi_valuetype vt;
    *ok = napi_typeof(env, v, &vt) == napi_ok && (vt == napi_null || vt == napi_undefined);
    return NULL;
  }
  static double empty[1]; // zero-length arrays may report a NULL data pointer; they are not null
  *ok = t == want;
  *len = n;
  return data ? data : (void *)empty;
}
#define F32(i, name, nullable) \
  size_t name##_len; int name##_ok; \
  float *name = arr(env, argv[i], napi_float32_array, &name##_len, &name##_ok); \
  if (!name##_ok || (!(nullable) && !name)) FAIL("argument " #name " must be a Float32Array")
#define I32(i, name) \
  size_t name##_len; int name##_ok; \
  int32_t *name = arr(env, argv[i], napi_int32_array, &name##_len, &name##_ok); \
  if (!name##_ok || !name) FAIL("argument " #name " must be an Int32Array")
#define NEED(name, n) do { if ((long)(n) > 0 && (size_t)(n) > name##_len) FAIL(#name " is too short for the given sizes"); } while (0)

// True when every element of a strided view (offset, shape, strides) lies inside [0, len).
static int in_bounds(size_t len, long off, int nd, const long *shape, const long *strides) {
  long lo = off, hi = off;
  for (int d = 0; d < nd; d++) {
    if (shape[d] <= 0) return 1;
    long span = (shape[d] - 1) * strides[d];
    if (span > 0) hi += span; else lo += span;
  }
  return lo >= 0 && (size_t)hi < len;
}

// init(params: Float64Array) -> { avx2: boolean, threads: number }
static napi_value js_init(napi_env env, napi_callback_info info) {
  const int is_init_ = 1;
  ARGS(1);
  (void)P; (void)locked_;
  napi_typedarray_type t;
  size_t n;
  void *data;
  napi_value buf;
  if (napi_get_typedarray_info(env, argv[0], &t, &n, &data, &buf, NULL) != napi_ok || t != napi_float64_array || n < 64)
    FAIL("init needs a Float64Array of at least 64 entries");
  if (st_->P_ref) napi_delete_reference(env, st_->P_ref);
  CHECK(napi_create_reference(env, argv[0], 1, &st_->P_ref));
  st_->P = data;
  napi_value res, v;
  CHECK(napi_create_object(env, &res));
  CHECK(napi_get_boolean(env, cs_has_avx2, &v));
  CHECK(napi_set_named_property(env, res, "avx2", v));
  CHECK(napi_create_int32(env, cs_pool_threads(), &v));
  CHECK(napi_set_named_property(env, res, "threads", v));
  return res;
}

// useAvx2(flag) -> whether the AVX2/FMA kernels are in use (only if the CPU has them); for tests.
static napi_value js_use_avx2(napi_env env, napi_callback_info info) {
  ARGS(1);
  (void)P; (void)locked_;
  bool want;
  CHECK(napi_get_value_bool(env, argv[0], &want));
  cs_init_cpu();
  if (!want) cs_has_avx2 = 0;
  napi_value r;
  CHECK(napi_get_boolean(env, cs_has_avx2, &r));
  return r;
}

// setThreads(n) -> threads in effect
static napi_value js_set_threads(napi_env env, napi_callback_info info) {
  ARGS(1);
  (void)P; (void)locked_;
  int32_t n;
  CHECK(napi_get_value_int32(env, argv[0], &n));
  napi_value r;
  CHECK(napi_create_int32(env, cs_pool_set_threads(n), &r));
  return r;
}

// peakGflops(threads): the measured FMA peak (peak.c), for the benchmark's "% of peak".
static napi_value js_peak(napi_env env, napi_callback_info info) {
  ARGS(1);
  (void)P; (void)locked_;
  int32_t n;
  CHECK(napi_get_value_int32(env, argv[0], &n));
  napi_value r;
  CHECK(napi_create_double(env, cs_peak_gflops(n), &r));
  return r;
}

// matmul(a, b, out, bias|null); P: batch M N K aOff aBatch aRow aCol bOff bBatch bRow bCol
static napi_value js_matmul(napi_env env, napi_callback_info info) {
  ARGS(4);
  F32(0, a, 0); F32(1, b, 0); F32(2, out, 0); F32(3, bias, 1);
  long batch = PI(0), M = PI(1), N = PI(2), K = PI(3);
  long ash[3] = { batch, M, K }, ast[3] = { PI(5), PI(6), PI(7) };
  long bsh[3] = { batch, K, N }, bst[3] = { PI(9), PI(10), PI(11) };
  if (batch < 0 || M < 0 || N < 0 || K < 0) FAIL("matmul: negative size");
  if (!in_bounds(a_len, PI(4), 3, ash, ast)) FAIL("matmul: a is out of bounds");
  if (!in_bounds(b_len, PI(8), 3, bsh, bst)) FAIL("matmul: b is out of bounds");
  NEED(out, batch * M * N);
  if (bias) NEED(bias, N);
  cs_matmul(batch, M, N, K, a + PI(4), ast[0], ast[1], ast[2], b + PI(8), bst[0], bst[1], bst[2], out, bias);
  return NULL;
}

static void packed_finalize(napi_env env, void *data, void *hint) {
  (void)hint;
  cs_packed *p = data;
  int64_t adj;
  napi_adjust_external_memory(env, -(int64_t)((size_t)p->K * p->Npad * sizeof(float)), &adj);
  cs_packed_free(p);
}

// pack(b) -> external; P: K N bOff bRow bCol
static napi_value js_pack(napi_env env, napi_callback_info info) {
  ARGS(1);
  F32(0, b, 0);
  long K = PI(0), N = PI(1);
  long sh[2] = { K, N }, st[2] = { PI(3), PI(4) };
  if (K < 0 || N < 0 || K > 0x7fffffff || N > 0x7fffffff) FAIL("packMatrix: bad size");
  if (!in_bounds(b_len, PI(2), 2, sh, st)) FAIL("packMatrix: b is out of bounds");
  cs_packed *p = cs_pack(K, N, b + PI(2), st[0], st[1]);
  if (!p) FAIL("packMatrix: out of memory");
  napi_value ext;
  if (napi_create_external(env, p, packed_finalize, NULL, &ext) != napi_ok) { cs_packed_free(p); FAIL("packMatrix: cannot create external"); }
  int64_t adj;
  napi_adjust_external_memory(env, (int64_t)((size_t)K * p->Npad * sizeof(float)), &adj);
  return ext;
}

// matmulPacked(a, packed, out, bias|null); P: M aOff aRow aCol
static napi_value js_matmul_packed(napi_env env, napi_callback_info info) {
  ARGS(4);
  F32(0, a, 0); F32(2, out, 0); F32(3, bias, 1);
  cs_packed *p;
  if (napi_get_value_external(env, argv[1], (void **)&p) != napi_ok || !p) FAIL("matmulPacked: not a native packed matrix");
  long M = PI(0);
  long sh[2] = { M, p->K }, st[2] = { PI(2), PI(3) };
  if (M < 0) FAIL("matmulPacked: negative size");
  if (!in_bounds(a_len, PI(1), 2, sh, st)) FAIL("matmulPacked: a is out of bounds");
  NEED(out, M * p->N);
  if (bias) NEED(bias, p->N);
  cs_matmul_packed(M, a + PI(1), st[0], st[1], p, out, bias);
  return NULL;
}

// unary(x, out); P: op xOff n
static napi_value js_unary(napi_env env, napi_callback_info info) {
  ARGS(2);
  F32(0, x, 0); F32(1, out, 0);
  long op = PI(0), off = PI(1), n = PI(2);
  if (op < 0 || op >= U_COUNT) FAIL("unary: bad op");
  if (n < 0 || off < 0) FAIL("unary: bad size");
  NEED(x, off + n); NEED(out, n);
  cs_unary((int)op, x + off, out, n);
  return NULL;
}

// unaryGrad(x, gy, gx); P: op n
static napi_value js_unary_grad(napi_env env, napi_callback_info info) {
  ARGS(3);
  F32(0, x, 0); F32(1, gy, 0); F32(2, gx, 0);
  long op = PI(0), n = PI(1);
  if (op != U_GELU_TANH && op != U_GELU_ERF && op != U_SILU && op != U_TANH && op != U_SIGMOID && op != U_RELU) FAIL("unaryGrad: bad op");
  NEED(x, n); NEED(gy, n); NEED(gx, n);
  cs_unary_grad((int)op, x, gy, gx, n);
  return NULL;
}

// Reads nd, shape and strides of a strided call; returns the element count or -1.
static long read_shape(const double *P, int nd, int base, long *shape) {
  long n = 1;
  for (int d = 0; d < nd; d++) { shape[d] = PI(base + d); if (shape[d] < 0) return -1; n *= shape[d]; }
  return n;
}

// binary(a, b, out); P: op nd aOff bOff shape[8] aStrides[8] bStrides[8]
static napi_value js_binary(napi_env env, napi_callback_info info) {
  ARGS(3);
  F32(0, a, 0); F32(1, b, 0); F32(2, out, 0);
  long op = PI(0), nd = PI(1), shape[CS_MAX_DIMS], sa[CS_MAX_DIMS], sb[CS_MAX_DIMS];
  if (op < 0 || op >= B_COUNT) FAIL("binary: bad op");
  if (nd < 0 || nd > CS_MAX_DIMS) FAIL("binary: too many dimensions");
  long n = read_shape(P, (int)nd, 4, shape);
  if (n < 0) FAIL("binary: negative size");
  for (int d = 0; d < nd; d++) { sa[d] = PI(12 + d); sb[d] = PI(20 + d); }
  if (!in_bounds(a_len, PI(2), (int)nd, shape, sa)) FAIL("binary: a is out of bounds");
  if (!in_bounds(b_len, PI(3), (int)nd, shape, sb)) FAIL("binary: b is out of bounds");
  NEED(out, n);
  cs_binary((int)op, (int)nd, shape, a + PI(2), sa, b + PI(3), sb, out);
  return NULL;
}

// copy(x, out); P: nd xOff shape[8] strides[8]   (same slots as binary: 1, 2, 4.., 12..)
static napi_value js_copy(napi_env env, napi_callback_info info) {
  ARGS(2);
  F32(0, x, 0); F32(1, out, 0);
  long nd = PI(1), shape[CS_MAX_DIMS], sx[CS_MAX_DIMS];
  if (nd < 0 || nd > CS_MAX_DIMS) FAIL("copy: too many dimensions");
  long n = read_shape(P, (int)nd, 4, shape);
  if (n < 0) FAIL("copy: negative size");
  for (int d = 0; d < nd; d++) sx[d] = PI(12 + d);
  if (!in_bounds(x_len, PI(2), (int)nd, shape, sx)) FAIL("copy: x is out of bounds");
  NEED(out, n);
  cs_copy((int)nd, shape, x + PI(2), sx, out);
  return NULL;
}

// reduce(x, out); P: op outer red inner
static napi_value js_reduce(napi_env env, napi_callback_info info) {
  ARGS(2);
  F32(0, x, 0); F32(1, out, 0);
  long op = PI(0), outer = PI(1), red = PI(2), inner = PI(3);
  if (op < 0 || op > R_MIN || outer < 0 || red < 0 || inner < 0) FAIL("reduce: bad arguments");
  NEED(x, outer * red * inner); NEED(out, outer * inner);
  cs_reduce((int)op, x, outer, red, inner, out);
  return NULL;
}

// argmax(x, out: Int32Array); P: outer red inner
static napi_value js_argmax(napi_env env, napi_callback_info info) {
  ARGS(2);
  F32(0, x, 0); I32(1, out);
  long outer = PI(0), red = PI(1), inner = PI(2);
  if (outer < 0 || red < 0 || inner < 0) FAIL("argmax: bad arguments");
  NEED(x, outer * red * inner); NEED(out, outer * inner);
  cs_argmax(x, outer, red, inner, out);
  return NULL;
}

// softmax(x, out); P: rows cols scale causalRows causalOffset
static napi_value js_softmax(napi_env env, napi_callback_info info) {
  ARGS(2);
  F32(0, x, 0); F32(1, out, 0);
  long rows = PI(0), cols = PI(1);
  if (rows < 0 || cols < 0) FAIL("softmax: bad size");
  NEED(x, rows * cols); NEED(out, rows * cols);
  cs_softmax(x, rows, cols, (float)P[2], PI(3), PI(4), out);
  return NULL;
}

// softmaxBackward(y, gy, gx); P: rows cols scale
static napi_value js_softmax_bwd(napi_env env, napi_callback_info info) {
  ARGS(3);
  F32(0, y, 0); F32(1, gy, 0); F32(2, gx, 0);
  long rows = PI(0), cols = PI(1);
  if (rows < 0 || cols < 0) FAIL("softmaxBackward: bad size");
  NEED(y, rows * cols); NEED(gy, rows * cols); NEED(gx, rows * cols);
  cs_softmax_bwd(y, gy, rows, cols, (float)P[2], gx);
  return NULL;
}

// logSoftmax(x, out); P: rows cols
static napi_value js_log_softmax(napi_env env, napi_callback_info info) {
  ARGS(2);
  F32(0, x, 0); F32(1, out, 0);
  long rows = PI(0), cols = PI(1);
  if (rows < 0 || cols < 0) FAIL("logSoftmax: bad size");
  NEED(x, rows * cols); NEED(out, rows * cols);
  cs_log_softmax(x, rows, cols, out);
  return NULL;
}

// logSoftmaxBackward(y, gy, gx); P: rows cols
static napi_value js_log_softmax_bwd(napi_env env, napi_callback_info info) {
  ARGS(3);
  F32(0, y, 0); F32(1, gy, 0); F32(2, gx, 0);
  long rows = PI(0), cols = PI(1);
  if (rows < 0 || cols < 0) FAIL("logSoftmaxBackward: bad size");
  NEED(y, rows * cols); NEED(gy, rows * cols); NEED(gx, rows * cols);
  cs_log_softmax_bwd(y, gy, rows, cols, gx);
  return NULL;
}

// layerNorm(x, w|null, b|null, out, mean, rstd); P: rows cols eps
static napi_value js_layernorm(napi_env env, napi_callback_info info) {
  ARGS(6);
  F32(0, x, 0); F32(1, w, 1); F32(2, b, 1); F32(3, out, 0); F32(4, mean, 0); F32(5, rstd, 0);
  long rows = PI(0), cols = PI(1);
  if (rows < 0 || cols < 0) FAIL("layerNorm: bad size");
  NEED(x, rows * cols); NEED(out, rows * cols); NEED(mean, rows); NEED(rstd, rows);
  if (w) NEED(w, cols);
  if (b) NEED(b, cols);
  cs_layernorm(x, w, b, rows, cols, (float)P[2], out, mean, rstd);
  return NULL;
}

// layerNormBackward(x, w|null, mean, rstd, gy, gx, gw|null, gb|null); P: rows cols
static napi_value js_layernorm_bwd(napi_env env, napi_callback_info info) {
  ARGS(8);
  F32(0, x, 0); F32(1, w, 1); F32(2, mean, 0); F32(3, rstd, 0); F32(4, gy, 0); F32(5, gx, 0); F32(6, gw, 1); F32(7, gb, 1);
  long rows = PI(0), cols = PI(1);
  if (rows < 0 || cols < 0) FAIL("layerNormBackward: bad size");
  NEED(x, rows * cols); NEED(gy, rows * cols); NEED(gx, rows * cols); NEED(mean, rows); NEED(rstd, rows);
  if (w) NEED(w, cols);
  if (gw) NEED(gw, cols);
  if (gb) NEED(gb, cols);
  cs_layernorm_bwd(x, w, mean, rstd, gy, rows, cols, gx, gw, gb);
  return NULL;
}

// rmsNorm(x, w|null, out, rstd); P: rows cols eps
static napi_value js_rmsnorm(napi_env env, napi_callback_info info) {
  ARGS(4);
  F32(0, x, 0); F32(1, w, 1); F32(2, out, 0); F32(3, rstd, 0);
  long rows = PI(0), cols = PI(1);
  if (rows < 0 || cols < 0) FAIL("rmsNorm: bad size");
  NEED(x, rows * cols); NEED(out, rows * cols); NEED(rstd, rows);
  if (w) NEED(w, cols);
  cs_rmsnorm(x, w, rows, cols, (float)P[2], out, rstd);
  return NULL;
}

// rmsNormBackward(x, w|null, rstd, gy, gx, gw|null); P: rows cols
static napi_value js_rmsnorm_bwd(napi_env env, napi_callback_info info) {
  ARGS(6);
  F32(0, x, 0); F32(1, w, 1); F32(2, rstd, 0); F32(3, gy, 0); F32(4, gx, 0); F32(5, gw, 1);
  long rows = PI(0), cols = PI(1);
  if (rows < 0 || cols < 0) FAIL("rmsNormBackward: bad size");
  NEED(x, rows * cols); NEED(gy, rows * cols); NEED(gx, rows * cols); NEED(rstd, rows);
  if (w) NEED(w, cols);
  if (gw) NEED(gw, cols);
  cs_rmsnorm_bwd(x, w, rstd, gy, rows, cols, gx, gw);
  return NULL;
}

// adamw(p, g, m, v); P: n lr beta1 beta2 eps weightDecay biasCorrection1 biasCorrection2
static napi_value js_adamw(napi_env env, napi_callback_info info) {
  ARGS(4);
  F32(0, p, 0); F32(1, g, 0); F32(2, m, 0); F32(3, v, 0);
  long n = PI(0);
  if (n < 0) FAIL("adamw: bad size");
  NEED(p, n); NEED(g, n); NEED(m, n); NEED(v, n);
  cs_adamw(p, g, m, v, n, P[1], P[2], P[3], P[4], P[5], P[6], P[7]);
  return NULL;
}

// gatherRows(x, idx, out); P: R C
static napi_value js_gather_rows(napi_env env, napi_callback_info info) {
  ARGS(3);
  F32(0, x, 0); I32(1, idx); F32(2, out, 0);
  long R = PI(0), C = PI(1);
  if (R < 0 || C < 0) FAIL("gatherRows: bad size");
  NEED(x, R * C); NEED(out, (long)idx_len * C);
  for (size_t i = 0; i < idx_len; i++)
    if (idx[i] < 0 || idx[i] >= R) {
      char msg[96];
      snprintf(msg, sizeof msg, "gatherRows: index %d out of range [0, %ld)", idx[i], R);
      napi_throw_range_error(env, NULL, msg);
      return NULL;
    }
  cs_gather_rows(x, C, idx, (long)idx_len, out);
  return NULL;
}

// scatterAddRows(gy, idx, gx); P: C
static napi_value js_scatter_add_rows(napi_env env, napi_callback_info info) {
  ARGS(3);
  F32(0, gy, 0); I32(1, idx); F32(2, gx, 0);
  long C = PI(0);
  if (C < 0) FAIL("scatterAddRows: bad size");
  NEED(gy, (long)idx_len * C);
  if (C > 0)
    for (size_t i = 0; i < idx_len; i++)
      if (idx[i] < 0 || (size_t)(idx[i] + 1) * (size_t)C > gx_len) FAIL("scatterAddRows: index out of range");
  cs_scatter_add_rows(gy, idx, (long)idx_len, C, gx);
  return NULL;
}

NAPI_MODULE_INIT() {
  pthread_mutex_lock(&call_mu);
  static int started = 0;
  if (!started) {
    started = 1;
    cs_init_cpu();
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    cs_pool_set_threads(ncpu > 0 ? (int)ncpu : 1);
  }
  pthread_mutex_unlock(&call_mu);
  env_state *st = calloc(1, sizeof *st);
  if (!st || napi_set_instance_data(env, st, env_state_free, NULL) != napi_ok) { free(st); return NULL; }
  static const struct { const char *name; napi_callback fn; } fns[] = {
    { "init", js_init }, { "setThreads", js_set_threads }, { "useAvx2", js_use_avx2 }, { "peakGflops", js_peak }, { "matmul", js_matmul }, { "pack", js_pack },
    { "matmulPacked", js_matmul_packed }, { "unary", js_unary }, { "unaryGrad", js_unary_grad },
    { "binary", js_binary }, { "copy", js_copy }, { "reduce", js_reduce }, { "argmax", js_argmax },
    { "softmax", js_softmax }, { "softmaxBackward", js_softmax_bwd }, { "logSoftmax", js_log_softmax },
    { "logSoftmaxBackward", js_log_softmax_bwd }, { "layerNorm", js_layernorm },
    { "layerNormBackward", js_layernorm_bwd }, { "rmsNorm", js_rmsnorm }, { "rmsNormBackward", js_rmsnorm_bwd },
    { "adamw", js_adamw }, { "gatherRows", js_gather_rows }, { "scatterAddRows", js_scatter_add_rows },
  };
  for (size_t i = 0; i < sizeof fns / sizeof fns[0]; i++) {
    napi_value f;
    if (napi_create_function(env, fns[i].name, NAPI_AUTO_LENGTH, fns[i].fn, NULL, &f) != napi_ok) return NULL;
    if (napi_set_named_property(env, exports, fns[i].name, f) != napi_ok) return NULL;
  }
  return exports;
}
