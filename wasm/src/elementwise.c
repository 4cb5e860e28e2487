// circuitscope WebAssembly SIMD128 elementwise kernels: the transcendental unary ops (exp, tanh,
// sigmoid, silu, gelu_tanh), their fused backward (gx = gy * f'(x)) and the row softmax, on float32
// in linear memory.
//
// What it is: the ops where JS pays for Math.exp/Math.tanh per element (~10-30 ns), so that copying
// the operand into linear memory and back (~0.5 ns per element) is a clear win. What it is not: the
// cheap ops (add, relu, layer norm, ...), which JS loops already run at memory speed.
//
// exp is Cephes expf (Moshier, Cephes Math Library 2.2: range reduction by ln 2 split in two parts,
// degree-6 polynomial), about 2 ulp; tanh is Cephes tanhf's polynomial below 0.625 and
// 1 - 2/(e^{2|x|} + 1) above. Overflow gives +inf, underflow 0, NaN stays NaN.
#include <wasm_simd128.h>

static inline v128_t splat(float v) { return wasm_f32x4_splat(v); }

#define EXP_HI 88.72283905206835f  // ln(FLT_MAX): above it exp overflows to +inf
#define EXP_LO -103.972077083991796f // ln of the smallest denormal / 2: below it exp is 0

static inline v128_t exp4(v128_t x) {
  // pmin/pmax (one x64 instruction each, unlike the NaN-exact min/max) still keep a NaN x as NaN.
  const v128_t xc = wasm_f32x4_pmax(wasm_f32x4_pmin(x, splat(EXP_HI)), splat(EXP_LO));
  // n = round(x log2 e) by adding 1.5 * 2^23, which leaves n in the low mantissa bits (cheaper
  // in V8 than f32x4.nearest + i32x4.trunc_sat, which lower to multi-instruction sequences on x64).
  const v128_t shifted = wasm_f32x4_add(wasm_f32x4_mul(xc, splat(1.44269504088896341f)), splat(12582912.0f));
  const v128_t n = wasm_f32x4_sub(shifted, splat(12582912.0f));
  // r = x - n ln2, with ln2 = 0.693359375 - 2.12194440e-4 so that n * 0.693359375 is exact.
  v128_t r = wasm_f32x4_sub(xc, wasm_f32x4_mul(n, splat(0.693359375f)));
  r = wasm_f32x4_add(r, wasm_f32x4_mul(n, splat(2.12194440e-4f)));
  v128_t p = splat(1.9875691500e-4f);
  p = wasm_f32x4_add(wasm_f32x4_mul(p, r), splat(1.3981999507e-3f));
  p = wasm_f32x4_add(wasm_f32x4_mul(p, r), splat(8.3334519073e-3f));
  p = wasm_f32x4_add(wasm_f32x4_mul(p, r), splat(4.1665795894e-2f));
  p = wasm_f32x4_add(wasm_f32x4_mul(p, r), splat(1.6666665459e-1f));
  p = wasm_f32x4_add(wasm_f32x4_mul(p, r), splat(5.0000001201e-1f));
  p = wasm_f32x4_add(wasm_f32x4_add(wasm_f32x4_mul(wasm_f32x4_mul(p, r), r), r), splat(1.0f));
  // p * 2^n as p * 2^(n/2) * 2^(n - n/2): n in [-150, 128] does not fit one exponent field, its
  // halves do, and the two products round like the exact result (including into denormals).
  const v128_t ni = wasm_i32x4_sub(shifted, wasm_i32x4_splat(0x4B400000));
  const v128_t na = wasm_i32x4_shr(ni, 1), nb = wasm_i32x4_sub(ni, na);
  const v128_t bias = wasm_i32x4_splat(127);
  v128_t y = wasm_f32x4_mul(p, wasm_i32x4_shl(wasm_i32x4_add(na, bias), 23));
  y = wasm_f32x4_mul(y, wasm_i32x4_shl(wasm_i32x4_add(nb, bias), 23));
  y = wasm_v128_bitselect(splat(__builtin_inff()), y, wasm_f32x4_gt(x, splat(EXP_HI)));
  y = wasm_v128_bitselect(splat(0.0f), y, wasm_f32x4_lt(x, splat(EXP_LO)));
  return y;
}

static inline v128_t tanh4(v128_t x) {
  const v128_t ax = wasm_f32x4_abs(x);
  // Large |x|: 1 - 2 / (e^{2|x|} + 1), with the sign of x put back.
  const v128_t big = wasm_f32x4_sub(splat(1.0f),
      wasm_f32x4_div(splat(2.0f), wasm_f32x4_add(exp4(wasm_f32x4_add(ax, ax)), splat(1.0f))));
  const v128_t signed_big = wasm_v128_or(big, wasm_v128_and(x, wasm_i32x4_splat((int)0x80000000)));
  // Small |x|: x + x^3 P(x^2) avoids the cancellation in 1 - 2/(...).
  const v128_t z = wasm_f32x4_mul(x, x);
  v128_t p = splat(-5.70498872745e-3f);
  p = wasm_f32x4_add(wasm_f32x4_mul(p, z), splat(2.06390887954e-2f));
  p = wasm_f32x4_add(wasm_f32x4_mul(p, z), splat(-5.37397155531e-2f));
  p = wasm_f32x4_add(wasm_f32x4_mul(p, z), splat(1.33314422036e-1f));
  p = wasm_f32x4_add(wasm_f32x4_mul(p, z), splat(-3.33332819422e-1f));
  const v128_t small = wasm_f32x4_add(wasm_f32x4_mul(wasm_f32x4_mul(p, z), x), x);
  return wasm_v128_bitselect(small, signed_big, wasm_f32x4_lt(ax, splat(0.625f)));
}

// x / (1 + e^{-t}); sigmoid is x = 1, silu t = x, gelu_tanh t = 2 sqrt(2/pi) (x + 0.044715 x^3)
// because 0.5 (1 + tanh u) = 1 / (1 + e^{-2u}).
static inline v128_t over_one_plus_exp_neg(v128_t num, v128_t t) {
  return wasm_f32x4_div(num, wasm_f32x4_add(splat(1.0f), exp4(wasm_f32x4_neg(t))));
}

enum { OP_EXP = 0, OP_TANH = 1, OP_SIGMOID = 2, OP_SILU = 3, OP_GELU_TANH = 4 };

static inline v128_t apply(int op, v128_t x) {
  switch (op) {
    case OP_EXP: return exp4(x);
    case OP_TANH: return tanh4(x);
    case OP_SIGMOID: return over_one_plus_exp_neg(splat(1.0f), x);
    case OP_SILU: return over_one_plus_exp_neg(x, x);
    default: {
      const v128_t x3 = wasm_f32x4_mul(wasm_f32x4_mul(x, x), x);
      const v128_t t = wasm_f32x4_mul(splat(1.5957691216057308f), wasm_f32x4_add(x, wasm_f32x4_mul(splat(0.044715f), x3)));
      return over_one_plus_exp_neg(x, t);
    }
  }
}

// Loads the first n < 4 floats (the rest zero) and stores the first n lanes: the tails of a row.
// Written lane by lane, with no local array, so the code never touches the shadow stack.
static inline v128_t load_part(const float *p, int n) {
  return wasm_f32x4_make(p[0], n > 1 ? p[1] : 0.0f, n > 2 ? p[2] : 0.0f, 0.0f);
}
static inline void store_part(float *p, v128_t v, int n) {
  p[0] = wasm_f32x4_extract_lane(v, 0);
  if (n > 1) p[1] = wasm_f32x4_extract_lane(v, 1);
  if (n > 2) p[2] = wasm_f32x4_extract_lane(v, 2);
}

// out[i] = op(x[i]) for i < n, rounded up to whole vectors: the caller pads x and out to a multiple
// of 4 floats (the extra lanes are computed and ignored). x and out may be the same buffer.
__attribute__((export_name("ew_unary")))
void ew_unary(int op, const float *x, float *out, int n) {
  switch (op) { // one loop per op so the switch is out of the loop
#define LOOP(OP) for (int i = 0; i < n; i += 4) wasm_v128_store(out + i, apply(OP, wasm_v128_load(x + i))); break;
    case OP_EXP: LOOP(OP_EXP)
    case OP_TANH: LOOP(OP_TANH)
    case OP_SIGMOID: LOOP(OP_SIGMOID)
    case OP_SILU: LOOP(OP_SILU)
    default: LOOP(OP_GELU_TANH)
#undef LOOP
  }
}

static inline v128_t sigmoid4(v128_t x) { return over_one_plus_exp_neg(splat(1.0f), x); }

// f'(x) for the backward kernels, written as the reference (ts.ts unaryDerivative) writes them so
// that infinities and NaN come out the same.
static inline v128_t derivative(int op, v128_t x) {
  const v128_t one = splat(1.0f);
  switch (op) {
    case OP_TANH: { const v128_t t = tanh4(x); return wasm_f32x4_sub(one, wasm_f32x4_mul(t, t)); }
    case OP_SIGMOID: { const v128_t s = sigmoid4(x); return wasm_f32x4_mul(s, wasm_f32x4_sub(one, s)); }
    case OP_SILU: { // s (1 + x (1 - s))
      const v128_t s = sigmoid4(x);
      return wasm_f32x4_mul(s, wasm_f32x4_add(one, wasm_f32x4_mul(x, wasm_f32x4_sub(one, s))));
    }
    default: { // gelu_tanh: 0.5 (1 + t) + 0.5 x (1 - t^2) du, t = tanh u, du = sqrt(2/pi) (1 + 3 * 0.044715 x^2)
      const v128_t x2 = wasm_f32x4_mul(x, x), half = splat(0.5f);
      const v128_t u = wasm_f32x4_mul(splat(0.7978845608028654f), wasm_f32x4_add(x, wasm_f32x4_mul(splat(0.044715f), wasm_f32x4_mul(x2, x))));
      const v128_t du = wasm_f32x4_mul(splat(0.7978845608028654f), wasm_f32x4_add(one, wasm_f32x4_mul(splat(3 * 0.044715f), x2)));
      const v128_t t = tanh4(u);
      return wasm_f32x4_add(wasm_f32x4_mul(half, wasm_f32x4_add(one, t)),
                            wasm_f32x4_mul(wasm_f32x4_mul(wasm_f32x4_mul(half, x), wasm_f32x4_sub(one, wasm_f32x4_mul(t, t))), du));
    }
  }
}

// gx[i] = gy[i] * op'(x[i]) for i < n rounded up to whole vectors (buffers padded as for ew_unary);
// op is OP_TANH, OP_SIGMOID, OP_SILU or OP_GELU_TANH; gx may be gy.
__attribute__((export_name("ew_unary_grad")))
void ew_unary_grad(int op, const float *x, const float *gy, float *gx, int n) {
  switch (op) {
#define LOOP(OP) for (int i = 0; i < n; i += 4) wasm_v128_store(gx + i, wasm_f32x4_mul(wasm_v128_load(gy + i), derivative(OP, wasm_v128_load(x + i)))); break;
    case OP_TANH: LOOP(OP_TANH)
    case OP_SIGMOID: LOOP(OP_SIGMOID)
    case OP_SILU: LOOP(OP_SILU)
    default: LOOP(OP_GELU_TANH)
#undef LOOP
  }
}

// Row softmax of x [rows, cols] scaled by `scale`, with the causal mask of Kernels.softmax: row r
// keeps columns c <= r % causal_rows + causal_offset when causal_rows > 0; fully masked rows are 0.
__attribute__((export_name("ew_softmax")))
void ew_softmax(const float *x, int rows, int cols, float scale, int causal_rows, int causal_offset, float *out) {
  const v128_t vs = splat(scale);
  for (int r = 0; r < rows; r++) {
    const float *xr = x + r * cols;
    float *o = out + r * cols;
    int limit = cols;
    if (causal_rows > 0) {
      const int l = r % causal_rows + causal_offset + 1;
      limit = l < 0 ? 0 : l < cols ? l : cols;
    }
    const int full = limit & ~3, tail = limit - full;
    v128_t vm = splat(-__builtin_inff());
    for (int c = 0; c < full; c += 4) vm = wasm_f32x4_pmax(vm, wasm_f32x4_mul(wasm_v128_load(xr + c), vs));
    vm = wasm_f32x4_pmax(vm, wasm_i32x4_shuffle(vm, vm, 2, 3, 0, 1));
    vm = wasm_f32x4_pmax(vm, wasm_i32x4_shuffle(vm, vm, 1, 0, 3, 2));
    float mx = wasm_f32x4_extract_lane(vm, 0);
    for (int c = full; c < limit; c++) { float v = xr[c] * scale; mx = v > mx ? v : mx; }
    const v128_t vmx = splat(mx);
    v128_t vsum = splat(0.0f);
    for (int c = 0; c < full; c += 4) {
      const v128_t e = exp4(wasm_f32x4_sub(wasm_f32x4_mul(wasm_v128_load(xr + c), vs), vmx));
      wasm_v128_store(o + c, e);
      vsum = wasm_f32x4_add(vsum, e);
    }
    float sum = wasm_f32x4_extract_lane(vsum, 0) + wasm_f32x4_extract_lane(vsum, 1) +
                wasm_f32x4_extract_lane(vsum, 2) + wasm_f32x4_extract_lane(vsum, 3);
    if (tail) {
      const v128_t e = exp4(wasm_f32x4_sub(wasm_f32x4_mul(load_part(xr + full, tail), vs), vmx));
      store_part(o + full, e, tail);
      for (int l = 0; l < tail; l++) sum += o[full + l];
    }
    const float inv = limit > 0 ? 1.0f / sum : 0.0f;
    const v128_t vinv = splat(inv);
    for (int c = 0; c < full; c += 4) wasm_v128_store(o + c, wasm_f32x4_mul(wasm_v128_load(o + c), vinv));
    for (int c = full; c < limit; c++) o[c] *= inv;
    for (int c = limit; c < cols; c++) o[c] = 0.0f;
  }
}
