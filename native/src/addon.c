// N-API entry points of the circuitscope native backend. Scalars (sizes, strides, op codes) travel
// through a Float64Array parameter block that JS hands over once at init and fills before each call,
// so a call costs one N-API transition plus napi_get_typedarray_info per array. The layout of the
// block for each function is documented beside it and mirrored in src/backend/native.ts.
#include <node_api.h>
#include <pthread.h>
#include <stdarg.h>
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

static const int is_init_ = 0;
__attribute__((unused)) static const char *const kn = "addon"; // each entry point shadows this with its kernel's name, for messages

#define CHECK(call) do { if ((call) != napi_ok) { napi_throw_error(env, NULL, "circuitscope native: N-API call failed: " #call); return NULL; } } while (0)
#define FAIL(msg) do { throwf(env, 0, "%s: %s", kn, msg); return NULL; } while (0)

// Throws a RangeError (or a TypeError when type_error) "<kernel>: ...", worded as src/backend/check.ts words it.
__attribute__((format(printf, 3, 4))) static void throwf(napi_env env, int type_error, const char *fmt, ...) {
  char msg[320];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  if (type_error) napi_throw_type_error(env, NULL, msg);
  else napi_throw_range_error(env, NULL, msg);
}

#define CS_MAX_SIZE 2147483647.0 // sizes: int32, the limit src/backend/check.ts enforces too
#define CS_MAX_INDEX 9007199254740991.0 // offsets and strides: 2^53 - 1, exact in the double block

// P[i] as an integer in [lo, hi]; throws a RangeError naming the kernel and the argument otherwise.
// The range test comes first, so NaN and +-Infinity never reach the (then undefined) cast to long.
static int int_arg(napi_env env, const char *kernel, const char *name, double v, double lo, double hi, long *out) {
  if (v >= lo && v <= hi && (double)(long)v == v) { *out = (long)v; return 1; }
  throwf(env, 0, "%s: %s = %.17g is not an integer in [%.0f, %.0f]", kernel, name, v, lo, hi);
  return 0;
}
#define INT_IN(var, i, lo, hi) long var; if (!int_arg(env, kn, #var, P[i], (lo), (hi), &var)) return NULL
#define SIZE(var, i) INT_IN(var, i, 0, CS_MAX_SIZE)
#define OFFSET(var, i) INT_IN(var, i, 0, CS_MAX_INDEX)
#define STRIDE(var, i) INT_IN(var, i, -CS_MAX_INDEX, CS_MAX_INDEX)

// Products of sizes, saturated at SIZE_MAX (which no buffer length reaches), so an overflow reads as too big.
static size_t mul2(size_t a, size_t b) { size_t r; return __builtin_mul_overflow(a, b, &r) ? SIZE_MAX : r; }
static size_t mul3(size_t a, size_t b, size_t c) { return mul2(mul2(a, b), c); }

// Throws unless the array `name` (len elements) holds the n elements that `what` asks for.
static int need(napi_env env, const char *kernel, const char *what, size_t n, const char *name, size_t len) {
  if (n <= len) return 1;
  if (n == SIZE_MAX) throwf(env, 0, "%s: %s overflows (the length of %s is %zu)", kernel, what, name, len);
  else throwf(env, 0, "%s: %s = %zu exceeds the length %zu of %s", kernel, what, n, len, name);
  return 0;
}
#define NEED(name, what, n) if (!need(env, kn, what, (n), #name, name##_len)) return NULL

#define MAXARGS 10
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
  if (!name##_ok || (!(nullable) && !name)) { throwf(env, 1, "%s: %s must be a Float32Array%s", kn, #name, (nullable) ? " or null" : ""); return NULL; }
#define I32(i, name) \
  size_t name##_len; int name##_ok; \
  int32_t *name = arr(env, argv[i], napi_int32_array, &name##_len, &name##_ok); \
  if (!name##_ok || !name) { throwf(env, 1, "%s: %s must be an Int32Array", kn, #name); return NULL; }

// True when every element of a strided view (offset, shape, strides) lies inside [0, len); an empty
// view touches nothing. Spans are computed with overflow checks (an overflow is out of bounds).
static int in_bounds(size_t len, long off, int nd, const long *shape, const long *strides) {
  for (int d = 0; d < nd; d++) if (shape[d] == 0) return 1;
  long lo = off, hi = off;
  for (int d = 0; d < nd; d++) {
    long span;
    if (__builtin_mul_overflow(shape[d] - 1, strides[d], &span)) return 0;
    if (span > 0 ? __builtin_add_overflow(hi, span, &hi) : __builtin_add_overflow(lo, span, &lo)) return 0;
  }
  return lo >= 0 && (size_t)hi < len;
}
#define BOUNDS(name, off, nd, shape, strides) \
  if (!in_bounds(name##_len, (off), (nd), (shape), (strides))) { \
    throwf(env, 0, "%s: %s (offset %ld with its sizes and strides) reaches outside its length %zu", kn, #name, (long)(off), name##_len); \
    return NULL; }

// init(params: Float64Array) -> { avx2: boolean, threads: number }
static napi_value js_init(napi_env env, napi_callback_info info) {
  static const char *const kn = "init";
  const int is_init_ = 1;
  ARGS(1);
  (void)P; (void)locked_;
  napi_typedarray_type t;
  size_t n;
  void *data;
  napi_value buf;
  if (napi_get_typedarray_info(env, argv[0], &t, &n, &data, &buf, NULL) != napi_ok || t != napi_float64_array || n < 64)
    FAIL("params must be a Float64Array of at least 64 entries");
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
  static const char *const kn = "useAvx2";
  ARGS(1);
  (void)P; (void)locked_;
  bool want;
  if (napi_get_value_bool(env, argv[0], &want) != napi_ok) { throwf(env, 1, "%s: flag must be a boolean", kn); return NULL; }
  cs_init_cpu();
  if (!want) cs_has_avx2 = 0;
  napi_value r;
  CHECK(napi_get_boolean(env, cs_has_avx2, &r));
  return r;
}

// A number argument that must be an integer; NaN, +-Infinity and fractions throw (the cast would be undefined).
static int int_value(napi_env env, const char *kernel, const char *name, napi_value v, double *out) {
  if (napi_get_value_double(env, v, out) != napi_ok) { throwf(env, 1, "%s: %s must be a number", kernel, name); return 0; }
  if (!(*out >= -CS_MAX_INDEX && *out <= CS_MAX_INDEX) || (double)(long)*out != *out) {
    throwf(env, 0, "%s: %s = %.17g is not an integer", kernel, name, *out);
    return 0;
  }
  return 1;
}

// setThreads(n) -> threads in effect (n is clamped to [1, CS_MAX_THREADS])
static napi_value js_set_threads(napi_env env, napi_callback_info info) {
  static const char *const kn = "setThreads";
  ARGS(1);
  (void)P; (void)locked_;
  double n;
  if (!int_value(env, kn, "n", argv[0], &n)) return NULL;
  napi_value r;
  CHECK(napi_create_int32(env, cs_pool_set_threads(n < 1 ? 1 : n > CS_MAX_THREADS ? CS_MAX_THREADS : (int)n), &r));
  return r;
}

// peakGflops(threads): the measured FMA peak (peak.c), for the benchmark's "% of peak"; 0 outside [1, 256].
static napi_value js_peak(napi_env env, napi_callback_info info) {
  static const char *const kn = "peakGflops";
  ARGS(1);
  (void)P; (void)locked_;
  double n;
  if (!int_value(env, kn, "threads", argv[0], &n)) return NULL;
  napi_value r;
  CHECK(napi_create_double(env, n < 1 || n > 256 ? 0 : cs_peak_gflops((int)n), &r));
  return r;
}

// matmul(a, b, out, bias|null); P: batch M N K aOff aBatch aRow aCol bOff bBatch bRow bCol
static napi_value js_matmul(napi_env env, napi_callback_info info) {
  static const char *const kn = "matmul";
  ARGS(4);
  F32(0, a, 0); F32(1, b, 0); F32(2, out, 0); F32(3, bias, 1);
  SIZE(batch, 0); SIZE(M, 1); SIZE(N, 2); SIZE(K, 3);
  OFFSET(aOff, 4); STRIDE(aBatch, 5); STRIDE(aRow, 6); STRIDE(aCol, 7);
  OFFSET(bOff, 8); STRIDE(bBatch, 9); STRIDE(bRow, 10); STRIDE(bCol, 11);
  long ash[3] = { batch, M, K }, ast[3] = { aBatch, aRow, aCol };
  long bsh[3] = { batch, K, N }, bst[3] = { bBatch, bRow, bCol };
  BOUNDS(a, aOff, 3, ash, ast);
  BOUNDS(b, bOff, 3, bsh, bst);
  NEED(out, "batch*M*N", mul3(batch, M, N));
  if (bias) { NEED(bias, "N", N); }
  if (cs_matmul(batch, M, N, K, a + aOff, aBatch, aRow, aCol, b + bOff, bBatch, bRow, bCol, out, bias) != 0)
    FAIL("out of memory for the packing buffers");
  return NULL;
}

static void packed_finalize(napi_env env, void *data, void *hint) {
  (void)hint;
  cs_packed *p = data;
  int64_t adj;
  napi_adjust_external_memory(env, -(int64_t)cs_packed_bytes(p), &adj);
  cs_packed_free(p);
}

// pack(b) -> external; P: K N bOff bRow bCol
static napi_value js_pack(napi_env env, napi_callback_info info) {
  static const char *const kn = "packMatrix";
  ARGS(1);
  F32(0, b, 0);
  SIZE(K, 0); SIZE(N, 1); OFFSET(bOff, 2); STRIDE(bRow, 3); STRIDE(bCol, 4);
  long sh[2] = { K, N }, st[2] = { bRow, bCol };
  BOUNDS(b, bOff, 2, sh, st);
  cs_packed *p = cs_pack(K, N, b + bOff, bRow, bCol);
  if (!p) { throwf(env, 0, "%s: out of memory packing a %ldx%ld matrix", kn, K, N); return NULL; }
  napi_value ext;
  if (napi_create_external(env, p, packed_finalize, NULL, &ext) != napi_ok) { cs_packed_free(p); FAIL("cannot create external"); }
  int64_t adj;
  napi_adjust_external_memory(env, (int64_t)cs_packed_bytes(p), &adj);
  return ext;
}

// matmulPacked(a, packed, out, bias|null); P: M aOff aRow aCol
static napi_value js_matmul_packed(napi_env env, napi_callback_info info) {
  static const char *const kn = "matmulPacked";
  ARGS(4);
  F32(0, a, 0); F32(2, out, 0); F32(3, bias, 1);
  cs_packed *p;
  napi_valuetype vt;
  if (napi_typeof(env, argv[1], &vt) != napi_ok || vt != napi_external || napi_get_value_external(env, argv[1], (void **)&p) != napi_ok || !p) {
    throwf(env, 1, "%s: packed is not a native packed matrix", kn);
    return NULL;
  }
  SIZE(M, 0); OFFSET(aOff, 1); STRIDE(aRow, 2); STRIDE(aCol, 3);
  long sh[2] = { M, p->K }, st[2] = { aRow, aCol };
  BOUNDS(a, aOff, 2, sh, st);
  NEED(out, "M*N", mul2(M, p->N));
  if (bias) { NEED(bias, "N", p->N); }
  if (cs_matmul_packed(M, a + aOff, aRow, aCol, p, out, bias) != 0) FAIL("out of memory for the packing buffers");
  return NULL;
}

// unary(x, out); P: op xOff n
static napi_value js_unary(napi_env env, napi_callback_info info) {
  static const char *const kn = "unary";
  ARGS(2);
  F32(0, x, 0); F32(1, out, 0);
  INT_IN(op, 0, 0, U_COUNT - 1); OFFSET(xOffset, 1); SIZE(n, 2);
  NEED(x, "xOffset+n", (size_t)xOffset + (size_t)n); NEED(out, "n", n);
  cs_unary((int)op, x + xOffset, out, n);
  return NULL;
}

// unaryGrad(x, gy, gx); P: op n
static napi_value js_unary_grad(napi_env env, napi_callback_info info) {
  static const char *const kn = "unaryGrad";
  ARGS(3);
  F32(0, x, 0); F32(1, gy, 0); F32(2, gx, 0);
  INT_IN(op, 0, 0, U_COUNT - 1); SIZE(n, 1);
  if (op != U_GELU_TANH && op != U_GELU_ERF && op != U_SILU && op != U_TANH && op != U_SIGMOID && op != U_RELU) FAIL("op has no backward kernel");
  NEED(x, "n", n); NEED(gy, "n", n); NEED(gx, "n", n);
  cs_unary_grad((int)op, x, gy, gx, n);
  return NULL;
}

// Reads the shape (P[4..]) and one or two stride sets (P[12..], P[20..]) of a strided call; returns
// the element count saturated at SIZE_MAX, or 0 with an exception pending.
static int read_strided(napi_env env, const char *kernel, const double *P, int nd, long *shape, long *sa, long *sb, size_t *n) {
  *n = 1;
  for (int d = 0; d < nd; d++) {
    if (!int_arg(env, kernel, "a shape entry", P[4 + d], 0, CS_MAX_SIZE, &shape[d])) return 0;
    if (!int_arg(env, kernel, "a stride", P[12 + d], -CS_MAX_INDEX, CS_MAX_INDEX, &sa[d])) return 0;
    if (sb && !int_arg(env, kernel, "a stride", P[20 + d], -CS_MAX_INDEX, CS_MAX_INDEX, &sb[d])) return 0;
    *n = mul2(*n, (size_t)shape[d]);
  }
  return 1;
}

// binary(a, b, out); P: op nd aOff bOff shape[8] aStrides[8] bStrides[8]
static napi_value js_binary(napi_env env, napi_callback_info info) {
  static const char *const kn = "binary";
  ARGS(3);
  F32(0, a, 0); F32(1, b, 0); F32(2, out, 0);
  INT_IN(op, 0, 0, B_COUNT - 1); INT_IN(nd, 1, 0, CS_MAX_DIMS); OFFSET(aOff, 2); OFFSET(bOff, 3);
  long shape[CS_MAX_DIMS], sa[CS_MAX_DIMS], sb[CS_MAX_DIMS];
  size_t n;
  if (!read_strided(env, kn, P, (int)nd, shape, sa, sb, &n)) return NULL;
  BOUNDS(a, aOff, (int)nd, shape, sa);
  BOUNDS(b, bOff, (int)nd, shape, sb);
  NEED(out, "prod(shape)", n);
  if (n == 0) return NULL; // empty output: nothing to do (as in check.ts)
  cs_binary((int)op, (int)nd, shape, a + aOff, sa, b + bOff, sb, out);
  return NULL;
}

// copy(x, out); P: nd xOff shape[8] strides[8]   (same slots as binary: 1, 2, 4.., 12..)
static napi_value js_copy(napi_env env, napi_callback_info info) {
  static const char *const kn = "copy";
  ARGS(2);
  F32(0, x, 0); F32(1, out, 0);
  INT_IN(nd, 1, 0, CS_MAX_DIMS); OFFSET(xOff, 2);
  long shape[CS_MAX_DIMS], sx[CS_MAX_DIMS];
  size_t n;
  if (!read_strided(env, kn, P, (int)nd, shape, sx, NULL, &n)) return NULL;
  BOUNDS(x, xOff, (int)nd, shape, sx);
  NEED(out, "prod(shape)", n);
  if (n == 0) return NULL;
  cs_copy((int)nd, shape, x + xOff, sx, out);
  return NULL;
}

// reduce(x, out); P: op outer red inner
static napi_value js_reduce(napi_env env, napi_callback_info info) {
  static const char *const kn = "reduce";
  ARGS(2);
  F32(0, x, 0); F32(1, out, 0);
  INT_IN(op, 0, 0, R_MIN); SIZE(outer, 1); SIZE(red, 2); SIZE(inner, 3);
  NEED(x, "outer*red*inner", mul3(outer, red, inner)); NEED(out, "outer*inner", mul2(outer, inner));
  if (outer == 0 || inner == 0) return NULL;
  cs_reduce((int)op, x, outer, red, inner, out);
  return NULL;
}

// argmax(x, out: Int32Array); P: outer red inner
static napi_value js_argmax(napi_env env, napi_callback_info info) {
  static const char *const kn = "argmax";
  ARGS(2);
  F32(0, x, 0); I32(1, out);
  SIZE(outer, 0); SIZE(red, 1); SIZE(inner, 2);
  NEED(x, "outer*red*inner", mul3(outer, red, inner)); NEED(out, "outer*inner", mul2(outer, inner));
  if (outer == 0 || inner == 0) return NULL;
  if (red == 0) FAIL("red = 0: an empty axis has no maximum");
  cs_argmax(x, outer, red, inner, out);
  return NULL;
}

// Reads rows (P[0]) and cols (P[1]) of a row kernel; *n = rows*cols (it cannot overflow: both < 2^31).
#define ROWS_COLS SIZE(rows, 0); SIZE(cols, 1); size_t n = (size_t)rows * (size_t)cols

// softmax(x, out); P: rows cols scale causalRows causalOffset
static napi_value js_softmax(napi_env env, napi_callback_info info) {
  static const char *const kn = "softmax";
  ARGS(2);
  F32(0, x, 0); F32(1, out, 0);
  ROWS_COLS;
  SIZE(causalRows, 3); INT_IN(causalOffset, 4, -CS_MAX_SIZE, CS_MAX_SIZE);
  NEED(x, "rows*cols", n); NEED(out, "rows*cols", n);
  if (n == 0) return NULL;
  cs_softmax(x, rows, cols, (float)P[2], causalRows, causalOffset, out);
  return NULL;
}

// softmaxBackward(y, gy, gx); P: rows cols scale
static napi_value js_softmax_bwd(napi_env env, napi_callback_info info) {
  static const char *const kn = "softmaxBackward";
  ARGS(3);
  F32(0, y, 0); F32(1, gy, 0); F32(2, gx, 0);
  ROWS_COLS;
  NEED(y, "rows*cols", n); NEED(gy, "rows*cols", n); NEED(gx, "rows*cols", n);
  if (n == 0) return NULL;
  cs_softmax_bwd(y, gy, rows, cols, (float)P[2], gx);
  return NULL;
}

// Reads an attention call's geometry (P[0..6]: batch heads kvHeads Tq Tk dh scale) and its q, k, v operands
// (P[7..21]: offset and 4 strides each, [batch, pos, head, d] order), checking each against its buffer.
#define ATTENTION_ARGS \
  SIZE(batch, 0); SIZE(heads, 1); SIZE(kvHeads, 2); SIZE(Tq, 3); SIZE(Tk, 4); SIZE(dh, 5); \
  if (kvHeads == 0 ? heads != 0 : heads % kvHeads != 0) { throwf(env, 0, "%s: heads = %ld is not a multiple of kvHeads = %ld", kn, heads, kvHeads); return NULL; } \
  OFFSET(qOff, 7); STRIDE(qs0, 8); STRIDE(qs1, 9); STRIDE(qs2, 10); STRIDE(qs3, 11); \
  OFFSET(kOff, 12); STRIDE(ks0, 13); STRIDE(ks1, 14); STRIDE(ks2, 15); STRIDE(ks3, 16); \
  OFFSET(vOff, 17); STRIDE(vs0, 18); STRIDE(vs1, 19); STRIDE(vs2, 20); STRIDE(vs3, 21); \
  long dims[6] = { batch, heads, kvHeads, Tq, Tk, dh }; \
  long qsh[4] = { batch, Tq, heads, dh }, kvsh[4] = { batch, Tk, kvHeads, dh }; \
  long qst[4] = { qs0, qs1, qs2, qs3 }, kst[4] = { ks0, ks1, ks2, ks3 }, vst[4] = { vs0, vs1, vs2, vs3 }; \
  BOUNDS(q, qOff, 4, qsh, qst); BOUNDS(k, kOff, 4, kvsh, kst); BOUNDS(v, vOff, 4, kvsh, vst); \
  if (mask) { NEED(mask, "batch*Tk", mul2(batch, Tk)); } \
  size_t nq = mul3(mul2(batch, Tq), heads, dh), nkv = mul3(mul2(batch, Tk), kvHeads, dh), nl = mul3(batch, heads, Tq)

// attention(q, k, v, mask|null, out, lse); P: see ATTENTION_ARGS
static napi_value js_attention(napi_env env, napi_callback_info info) {
  static const char *const kn = "attention";
  ARGS(6);
  F32(0, q, 0); F32(1, k, 0); F32(2, v, 0); F32(3, mask, 1); F32(4, out, 0); F32(5, lse, 0);
  ATTENTION_ARGS;
  (void)nkv;
  NEED(out, "batch*Tq*heads*dh", nq); NEED(lse, "batch*heads*Tq", nl);
  if (nl == 0) return NULL;
  if (cs_attention(dims, (float)P[6], q + qOff, qst, k + kOff, kst, v + vOff, vst, mask, out, lse) != 0) FAIL("out of memory for the scratch buffers");
  return NULL;
}

// attentionBackward(q, k, v, mask|null, out, lse, gOut, gq, gk, gv); P: see ATTENTION_ARGS
static napi_value js_attention_bwd(napi_env env, napi_callback_info info) {
  static const char *const kn = "attentionBackward";
  ARGS(10);
  F32(0, q, 0); F32(1, k, 0); F32(2, v, 0); F32(3, mask, 1); F32(4, out, 0); F32(5, lse, 0);
  F32(6, gOut, 0); F32(7, gq, 0); F32(8, gk, 0); F32(9, gv, 0);
  ATTENTION_ARGS;
  NEED(out, "batch*Tq*heads*dh", nq); NEED(lse, "batch*heads*Tq", nl);
  NEED(gOut, "batch*Tq*heads*dh", nq); NEED(gq, "batch*Tq*heads*dh", nq);
  NEED(gk, "batch*Tk*kvHeads*dh", nkv); NEED(gv, "batch*Tk*kvHeads*dh", nkv);
  if (nq + nkv == 0) return NULL;
  if (cs_attention_bwd(dims, (float)P[6], q + qOff, qst, k + kOff, kst, v + vOff, vst, mask, out, lse, gOut, gq, gk, gv) != 0)
    FAIL("out of memory for the scratch buffers");
  return NULL;
}

// logSoftmax(x, out); P: rows cols
static napi_value js_log_softmax(napi_env env, napi_callback_info info) {
  static const char *const kn = "logSoftmax";
  ARGS(2);
  F32(0, x, 0); F32(1, out, 0);
  ROWS_COLS;
  NEED(x, "rows*cols", n); NEED(out, "rows*cols", n);
  if (n == 0) return NULL;
  cs_log_softmax(x, rows, cols, out);
  return NULL;
}

// logSoftmaxBackward(y, gy, gx); P: rows cols
static napi_value js_log_softmax_bwd(napi_env env, napi_callback_info info) {
  static const char *const kn = "logSoftmaxBackward";
  ARGS(3);
  F32(0, y, 0); F32(1, gy, 0); F32(2, gx, 0);
  ROWS_COLS;
  NEED(y, "rows*cols", n); NEED(gy, "rows*cols", n); NEED(gx, "rows*cols", n);
  if (n == 0) return NULL;
  cs_log_softmax_bwd(y, gy, rows, cols, gx);
  return NULL;
}

// layerNorm(x, w|null, b|null, out, mean, rstd); P: rows cols eps
static napi_value js_layernorm(napi_env env, napi_callback_info info) {
  static const char *const kn = "layerNorm";
  ARGS(6);
  F32(0, x, 0); F32(1, w, 1); F32(2, b, 1); F32(3, out, 0); F32(4, mean, 0); F32(5, rstd, 0);
  ROWS_COLS;
  NEED(x, "rows*cols", n); NEED(out, "rows*cols", n); NEED(mean, "rows", rows); NEED(rstd, "rows", rows);
  if (w) { NEED(w, "cols", cols); }
  if (b) { NEED(b, "cols", cols); }
  cs_layernorm(x, w, b, rows, cols, (float)P[2], out, mean, rstd);
  return NULL;
}

// layerNormBackward(x, w|null, mean, rstd, gy, gx, gw|null, gb|null); P: rows cols
static napi_value js_layernorm_bwd(napi_env env, napi_callback_info info) {
  static const char *const kn = "layerNormBackward";
  ARGS(8);
  F32(0, x, 0); F32(1, w, 1); F32(2, mean, 0); F32(3, rstd, 0); F32(4, gy, 0); F32(5, gx, 0); F32(6, gw, 1); F32(7, gb, 1);
  ROWS_COLS;
  NEED(x, "rows*cols", n); NEED(gy, "rows*cols", n); NEED(gx, "rows*cols", n); NEED(mean, "rows", rows); NEED(rstd, "rows", rows);
  if (w) { NEED(w, "cols", cols); }
  if (gw) { NEED(gw, "cols", cols); }
  if (gb) { NEED(gb, "cols", cols); }
  if (n == 0) return NULL;
  cs_layernorm_bwd(x, w, mean, rstd, gy, rows, cols, gx, gw, gb);
  return NULL;
}

// rmsNorm(x, w|null, out, rstd); P: rows cols eps
static napi_value js_rmsnorm(napi_env env, napi_callback_info info) {
  static const char *const kn = "rmsNorm";
  ARGS(4);
  F32(0, x, 0); F32(1, w, 1); F32(2, out, 0); F32(3, rstd, 0);
  ROWS_COLS;
  NEED(x, "rows*cols", n); NEED(out, "rows*cols", n); NEED(rstd, "rows", rows);
  if (w) { NEED(w, "cols", cols); }
  cs_rmsnorm(x, w, rows, cols, (float)P[2], out, rstd);
  return NULL;
}

// rmsNormBackward(x, w|null, rstd, gy, gx, gw|null); P: rows cols
static napi_value js_rmsnorm_bwd(napi_env env, napi_callback_info info) {
  static const char *const kn = "rmsNormBackward";
  ARGS(6);
  F32(0, x, 0); F32(1, w, 1); F32(2, rstd, 0); F32(3, gy, 0); F32(4, gx, 0); F32(5, gw, 1);
  ROWS_COLS;
  NEED(x, "rows*cols", n); NEED(gy, "rows*cols", n); NEED(gx, "rows*cols", n); NEED(rstd, "rows", rows);
  if (w) { NEED(w, "cols", cols); }
  if (gw) { NEED(gw, "cols", cols); }
  if (n == 0) return NULL;
  cs_rmsnorm_bwd(x, w, rstd, gy, rows, cols, gx, gw);
  return NULL;
}

// adamw(p, g, m, v); P: n lr beta1 beta2 eps weightDecay biasCorrection1 biasCorrection2
static napi_value js_adamw(napi_env env, napi_callback_info info) {
  static const char *const kn = "adamw";
  ARGS(4);
  F32(0, p, 0); F32(1, g, 0); F32(2, m, 0); F32(3, v, 0);
  SIZE(n, 0);
  NEED(p, "n", n); NEED(g, "n", n); NEED(m, "n", n); NEED(v, "n", n);
  cs_adamw(p, g, m, v, n, P[1], P[2], P[3], P[4], P[5], P[6], P[7]);
  return NULL;
}

// gatherRows(x, idx, out); P: R C
static napi_value js_gather_rows(napi_env env, napi_callback_info info) {
  static const char *const kn = "gatherRows";
  ARGS(3);
  F32(0, x, 0); I32(1, idx); F32(2, out, 0);
  SIZE(R, 0); SIZE(C, 1);
  NEED(x, "R*C", mul2(R, C)); NEED(out, "idx.length*C", mul2(idx_len, C));
  for (size_t i = 0; i < idx_len; i++)
    if (idx[i] < 0 || idx[i] >= R) { throwf(env, 0, "%s: index %d out of range [0, %ld)", kn, idx[i], R); return NULL; }
  cs_gather_rows(x, C, idx, (long)idx_len, out);
  return NULL;
}

// scatterAddRows(gy, idx, gx); P: C
static napi_value js_scatter_add_rows(napi_env env, napi_callback_info info) {
  static const char *const kn = "scatterAddRows";
  ARGS(3);
  F32(0, gy, 0); I32(1, idx); F32(2, gx, 0);
  SIZE(C, 0);
  NEED(gy, "idx.length*C", mul2(idx_len, C));
  if (C > 0) {
    size_t R = gx_len / (size_t)C;
    for (size_t i = 0; i < idx_len; i++)
      if (idx[i] < 0 || (size_t)idx[i] >= R) { throwf(env, 0, "%s: index %d out of range [0, %zu) (gx holds %zu rows of %ld)", kn, idx[i], R, R, C); return NULL; }
  }
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
    { "attention", js_attention }, { "attentionBackward", js_attention_bwd },
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
