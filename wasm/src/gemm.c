// circuitscope WebAssembly SIMD128 GEMM: the float32 matmul kernels behind src/backend/wasm.ts.
//
// What it is: a packed, cache-blocked GEMM (BLIS loop order) with a 4x8 register tile built from
// f32x4 mul + add (SIMD128 has no FMA). `gemm_run` computes one thread's static share of a job
// described in linear memory; the JS side runs it on the main thread and on worker threads that
// share the same WebAssembly.Memory. `gemm_pack_b` packs a weight once for repeated products.
// Measured on Zen 4 in Node 20: ~41 GFLOP/s per thread, about 80% of the 2 mul + 2 add per cycle
// that SIMD128 allows; 5x8 and 6x8 tiles spill in V8 (16 xmm registers) and ran at 23-27.
// What it is not: a memory manager (the JS side allocates every buffer and passes pointers), a thread
// pool (JS spawns and synchronises the workers) or a general BLAS. It never touches the shadow stack,
// so every worker instance can share one memory without per-thread stacks.
//
// Legend: out[b, i, j] = bias[j] + sum_k A[b, i, k] * B[b, k, j]; M rows, N columns, K depth.
#include <wasm_simd128.h>

#define MR 4     // rows of the register tile (4 x 2 f32x4 accumulators fit x64's 16 xmm with room for B, A, temp)
#define NR 8     // columns of the register tile (two f32x4)
#define KC 256   // depth block: a B micro-panel of KC*NR floats (8 KiB) stays in L1
#define MC 128   // rows per A block: MC*KC floats (128 KiB) stay in L2
#define NC 2048  // columns per B block: KC*NC floats (2 MiB per thread) stay in L3

// A job, written by JS as consecutive int32 fields. Pointers are byte addresses in linear memory;
// strides are in elements and may be any sign (transposes are swapped strides, 0 broadcasts).
typedef struct {
  int batch, M, N, K;
  const float *a; int a_bs, a_rs, a_cs;
  const float *b; int b_bs, b_rs, b_cs;
  int packed;          // 1: b points to a matrix packed by gemm_pack_b (strides unused, batch 1)
  float *c;            // contiguous [batch, M, N]
  const float *bias;   // null or N floats followed by at least NR zeros of padding
  int nthreads;
  int split;           // how the work is shared: 0 by batch, 1 by column panels, 2 by row panels
  float *scratch[16];  // per-thread scratch: packed A, packed B block, one tile
} Job;

static inline int imin(int x, int y) { return x < y ? x : y; }
static inline int round_up(int x, int m) { return (x + m - 1) / m * m; }

// Packs rows [0, m) x depth [0, k) of A into MR-row panels: panel p holds k steps of MR floats,
// rows past m are zero so the microkernel never needs a row mask.
static void pack_a(int m, int k, const float *a, int rs, int cs, float *dst) {
  for (int i = 0; i < m; i += MR) {
    int mr = imin(MR, m - i);
    const float *r0 = a + i * rs;
    if (mr == MR) {
      const float *r1 = r0 + rs, *r2 = r1 + rs, *r3 = r2 + rs;
      for (int p = 0; p < k; p++) {
        int o = p * cs;
        dst[0] = r0[o]; dst[1] = r1[o]; dst[2] = r2[o]; dst[3] = r3[o];
        dst += MR;
      }
    } else {
      for (int p = 0; p < k; p++) {
        for (int r = 0; r < MR; r++) dst[r] = r < mr ? r0[r * rs + p * cs] : 0.0f;
        dst += MR;
      }
    }
  }
}

// Packs depth [0, k) x columns [0, n) of B into NR-column panels: panel q holds k steps of NR floats
// at dst + q*panel_stride; columns past n are zero.
static void pack_b(int k, int n, const float *b, int rs, int cs, float *dst, int panel_stride) {
  for (int j = 0; j < n; j += NR) {
    int nr = imin(NR, n - j);
    float *d = dst + (j / NR) * panel_stride;
    const float *col = b + j * cs;
    if (nr == NR && cs == 1) {
      for (int p = 0; p < k; p++) {
        const float *s = col + p * rs;
        wasm_v128_store(d, wasm_v128_load(s));
        wasm_v128_store(d + 4, wasm_v128_load(s + 4));
        d += NR;
      }
    } else if (nr == NR) {
      for (int p = 0; p < k; p++) {
        const float *s = col + p * rs;
        for (int c = 0; c < NR; c++) d[c] = s[c * cs];
        d += NR;
      }
    } else {
      for (int p = 0; p < k; p++) {
        const float *s = col + p * rs;
        for (int c = 0; c < NR; c++) d[c] = c < nr ? s[c * cs] : 0.0f;
        d += NR;
      }
    }
  }
}

// The register tile: c[0..MR, 0..NR) (row stride ldc) = init + a_panel @ b_panel over kc steps.
// init 0: zeros, 1: the bias row, 2: the current contents of c (later depth blocks).
static inline void ukernel(int kc, const float *restrict a, const float *restrict b, float *c, int ldc,
                           int init, const float *bias) {
  v128_t c00, c01, c10, c11, c20, c21, c30, c31;
  if (init == 2) {
    c00 = wasm_v128_load(c);           c01 = wasm_v128_load(c + 4);
    c10 = wasm_v128_load(c + ldc);     c11 = wasm_v128_load(c + ldc + 4);
    c20 = wasm_v128_load(c + 2 * ldc); c21 = wasm_v128_load(c + 2 * ldc + 4);
    c30 = wasm_v128_load(c + 3 * ldc); c31 = wasm_v128_load(c + 3 * ldc + 4);
  } else if (init == 1) {
    c00 = c10 = c20 = c30 = wasm_v128_load(bias);
    c01 = c11 = c21 = c31 = wasm_v128_load(bias + 4);
  } else {
    c00 = c01 = c10 = c11 = c20 = c21 = c30 = c31 = wasm_f32x4_splat(0.0f);
  }
  for (int p = 0; p < kc; p++) {
    v128_t b0 = wasm_v128_load(b), b1 = wasm_v128_load(b + 4);
    v128_t a0 = wasm_v128_load32_splat(a);
    c00 = wasm_f32x4_add(c00, wasm_f32x4_mul(a0, b0));
    c01 = wasm_f32x4_add(c01, wasm_f32x4_mul(a0, b1));
    v128_t a1 = wasm_v128_load32_splat(a + 1);
    c10 = wasm_f32x4_add(c10, wasm_f32x4_mul(a1, b0));
    c11 = wasm_f32x4_add(c11, wasm_f32x4_mul(a1, b1));
    v128_t a2 = wasm_v128_load32_splat(a + 2);
    c20 = wasm_f32x4_add(c20, wasm_f32x4_mul(a2, b0));
    c21 = wasm_f32x4_add(c21, wasm_f32x4_mul(a2, b1));
    v128_t a3 = wasm_v128_load32_splat(a + 3);
    c30 = wasm_f32x4_add(c30, wasm_f32x4_mul(a3, b0));
    c31 = wasm_f32x4_add(c31, wasm_f32x4_mul(a3, b1));
    a += MR;
    b += NR;
  }
  wasm_v128_store(c, c00);           wasm_v128_store(c + 4, c01);
  wasm_v128_store(c + ldc, c10);     wasm_v128_store(c + ldc + 4, c11);
  wasm_v128_store(c + 2 * ldc, c20); wasm_v128_store(c + 2 * ldc + 4, c21);
  wasm_v128_store(c + 3 * ldc, c30); wasm_v128_store(c + 3 * ldc + 4, c31);
}

// One row (a single valid row of an A panel, e.g. decoding one token) across 4 full B panels: 32
// columns, 8 independent accumulators. Each element is summed in the same order as in ukernel, so a
// row's result does not depend on how many rows share its product.
static void row_kernel(int kc, const float *restrict a, const float *restrict b, int bstride, float *c,
                       int init, const float *bias) {
  const float *b1p = b + bstride, *b2p = b1p + bstride, *b3p = b2p + bstride;
  v128_t c0, c1, c2, c3, c4, c5, c6, c7;
  if (init == 2) {
    c0 = wasm_v128_load(c);      c1 = wasm_v128_load(c + 4);  c2 = wasm_v128_load(c + 8);  c3 = wasm_v128_load(c + 12);
    c4 = wasm_v128_load(c + 16); c5 = wasm_v128_load(c + 20); c6 = wasm_v128_load(c + 24); c7 = wasm_v128_load(c + 28);
  } else if (init == 1) {
    c0 = wasm_v128_load(bias);      c1 = wasm_v128_load(bias + 4);  c2 = wasm_v128_load(bias + 8);  c3 = wasm_v128_load(bias + 12);
    c4 = wasm_v128_load(bias + 16); c5 = wasm_v128_load(bias + 20); c6 = wasm_v128_load(bias + 24); c7 = wasm_v128_load(bias + 28);
  } else {
    c0 = c1 = c2 = c3 = c4 = c5 = c6 = c7 = wasm_f32x4_splat(0.0f);
  }
  for (int p = 0; p < kc; p++) {
    const v128_t av = wasm_v128_load32_splat(a);
    c0 = wasm_f32x4_add(c0, wasm_f32x4_mul(av, wasm_v128_load(b)));
    c1 = wasm_f32x4_add(c1, wasm_f32x4_mul(av, wasm_v128_load(b + 4)));
    c2 = wasm_f32x4_add(c2, wasm_f32x4_mul(av, wasm_v128_load(b1p)));
    c3 = wasm_f32x4_add(c3, wasm_f32x4_mul(av, wasm_v128_load(b1p + 4)));
    c4 = wasm_f32x4_add(c4, wasm_f32x4_mul(av, wasm_v128_load(b2p)));
    c5 = wasm_f32x4_add(c5, wasm_f32x4_mul(av, wasm_v128_load(b2p + 4)));
    c6 = wasm_f32x4_add(c6, wasm_f32x4_mul(av, wasm_v128_load(b3p)));
    c7 = wasm_f32x4_add(c7, wasm_f32x4_mul(av, wasm_v128_load(b3p + 4)));
    a += MR;
    b += NR; b1p += NR; b2p += NR; b3p += NR;
  }
  wasm_v128_store(c, c0);      wasm_v128_store(c + 4, c1);  wasm_v128_store(c + 8, c2);  wasm_v128_store(c + 12, c3);
  wasm_v128_store(c + 16, c4); wasm_v128_store(c + 20, c5); wasm_v128_store(c + 24, c6); wasm_v128_store(c + 28, c7);
}

// A tile at the right or bottom edge: run the full tile on a private MR x NR buffer, copy the valid part.
static void edge_tile(int kc, const float *a, const float *b, float *c, int ldc, int mr, int nr,
                      int init, const float *bias, float *tile) {
  if (init == 2)
    for (int i = 0; i < mr; i++)
      for (int j = 0; j < nr; j++) tile[i * NR + j] = c[i * ldc + j];
  ukernel(kc, a, b, tile, NR, init, bias);
  for (int i = 0; i < mr; i++)
    for (int j = 0; j < nr; j++) c[i * ldc + j] = tile[i * NR + j];
}

// Rows [m0, m1) x columns [n0, n1) of batch item bt. n0 is a multiple of NR (packed B is addressed by panel).
static void gemm_block(const Job *job, int bt, int m0, int m1, int n0, int n1, float *scratch) {
  const int M = m1 - m0, N = job->N, K = job->K;
  if (M <= 0 || n1 <= n0) return;
  float *c = job->c + bt * job->M * N;
  if (K == 0) {  // an empty sum: the bias alone
    for (int i = m0; i < m1; i++)
      for (int j = n0; j < n1; j++) c[i * N + j] = job->bias ? job->bias[j] : 0.0f;
    return;
  }
  float *ap = scratch;
  float *bp = ap + round_up(M, MR) * K;
  float *tile = bp + KC * imin(NC, round_up(N, NR));
  const float *a = job->a + bt * job->a_bs + m0 * job->a_rs;
  pack_a(M, K, a, job->a_rs, job->a_cs, ap);
  const float *b = job->b + bt * job->b_bs;
  for (int jc = n0; jc < n1; jc += NC) {
    const int nc = imin(NC, n1 - jc);
    for (int pc = 0; pc < K; pc += KC) {
      const int kc = imin(KC, K - pc);
      const int init = pc > 0 ? 2 : job->bias ? 1 : 0;
      const float *bblock;
      int bstride;
      if (job->packed) {
        bblock = job->b + (jc / NR) * K * NR + pc * NR;
        bstride = K * NR;
      } else {
        pack_b(kc, nc, b + pc * job->b_rs + jc * job->b_cs, job->b_rs, job->b_cs, bp, kc * NR);
        bblock = bp;
        bstride = kc * NR;
      }
      for (int ic = 0; ic < M; ic += MC) {
        const int mc = imin(MC, M - ic);
        // A last tile with a single row goes through row_kernel, 4 full panels at a time; jrow is
        // where the panels it does not cover start.
        const int single = mc % MR == 1, jrow = single ? nc / (4 * NR) * (4 * NR) : 0;
        for (int jr = 0; jr < nc; jr += NR) {
          const int nr = imin(NR, nc - jr);
          const float *bpanel = bblock + (jr / NR) * bstride;
          const float *bias = job->bias ? job->bias + jc + jr : 0;
          float *crow = c + (m0 + ic) * N + jc + jr;
          for (int ir = 0; ir < mc; ir += MR) {
            const int mr = imin(MR, mc - ir);
            const float *apanel = ap + ((ic + ir) / MR) * K * MR + pc * MR;
            if (mr == MR && nr == NR) ukernel(kc, apanel, bpanel, crow + ir * N, N, init, bias);
            else if (mr == 1 && jr < jrow) {
              if (jr % (4 * NR) == 0) row_kernel(kc, apanel, bpanel, bstride, crow + ir * N, init, bias);
            } else edge_tile(kc, apanel, bpanel, crow + ir * N, N, mr, nr, init, bias, tile);
          }
        }
      }
    }
  }
}

// Floats of scratch one thread needs when its share has at most m rows, for depth k and n columns.
__attribute__((export_name("gemm_scratch_floats")))
int gemm_scratch_floats(int m, int n, int k) { return round_up(m, MR) * k + KC * imin(NC, round_up(n, NR)) + MR * NR; }

// Floats of a packed [k, n] matrix (n rounded up to whole panels).
__attribute__((export_name("gemm_packed_floats")))
int gemm_packed_floats(int k, int n) { return round_up(n, NR) * k; }

// Packs B [k, n] (element (p, j) at b[p*rs + j*cs]) for repeated use as job->b with packed = 1.
__attribute__((export_name("gemm_pack_b")))
void gemm_pack_b(int k, int n, const float *b, int rs, int cs, float *dst) {
  pack_b(k, n, b, rs, cs, dst, k * NR);
}

// The share `tid` of a job. The partition depends only on (job, tid), and each output element is
// summed in the same order whichever thread computes it, so results are bit-identical across runs
// and thread counts.
__attribute__((export_name("gemm_run")))
void gemm_run(const Job *job, int tid) {
  const int nt = job->nthreads, M = job->M, N = job->N;
  float *scratch = job->scratch[tid];
  if (job->split == 0) {
    const int b0 = (int)((long long)job->batch * tid / nt), b1 = (int)((long long)job->batch * (tid + 1) / nt);
    for (int bt = b0; bt < b1; bt++) gemm_block(job, bt, 0, M, 0, N, scratch);
  } else if (job->split == 1) {
    const int units = (N + NR - 1) / NR;
    const int n0 = units * tid / nt * NR, n1 = imin(N, units * (tid + 1) / nt * NR);
    for (int bt = 0; bt < job->batch; bt++) gemm_block(job, bt, 0, M, n0, n1, scratch);
  } else {
    const int units = (M + MR - 1) / MR;
    const int m0 = units * tid / nt * MR, m1 = imin(M, units * (tid + 1) / nt * MR);
    for (int bt = 0; bt < job->batch; bt++) gemm_block(job, bt, m0, m1, 0, N, scratch);
  }
}
