// circuitscope native addon: shared declarations for the thread pool, the GEMM and the float32 ops.
// Everything here is plain C11; AVX2/FMA code paths are compiled per function with target attributes
// and chosen at run time (cs_has_avx2), so the file set builds on any CPU, arm64 included.
#ifndef CS_H
#define CS_H
#include <stddef.h>
#include <stdint.h>

// CS_FORCE_PORTABLE compiles the non-x86 configuration on x86 (to check the arm64 path builds).
#if (defined(__x86_64__) || defined(__i386__)) && (defined(__GNUC__) || defined(__clang__)) && !defined(CS_FORCE_PORTABLE)
#define CS_X86 1
#define CS_TARGET_AVX2 __attribute__((target("avx2,fma")))
#if defined(__linux__)
// Simple loops get an AVX2 clone chosen by the loader (ifunc, ELF only); the default clone runs elsewhere.
#define CS_CLONES __attribute__((target_clones("avx2", "default")))
#else
#define CS_CLONES

// ---- fused causal attention (attention.c); dims = { batch, heads, kvHeads, Tq, Tk, dh }, strides in
// [batch, pos, head, d] order. Return 0, or -1 when scratch memory cannot be allocated. ----
int cs_attention(const long *dims, float scale, const float *q, const long *qs, const float *k, const long *ks,
  const float *v, const long *vs, const float *mask, float *out, float *lse);
int cs_attention_bwd(const long *dims, float scale, const float *q, const long *qs, const float *k, const long *ks,
  const float *v, const long *vs, const float *mask, const float *out, const float *lse, const float *gout,
  float *gq, float *gk, float *gv);
#endif
#else
#define CS_X86 0
#define CS_TARGET_AVX2
#define CS_CLONES

// ---- fused causal attention (attention.c); dims = { batch, heads, kvHeads, Tq, Tk, dh }, strides in
// [batch, pos, head, d] order. Return 0, or -1 when scratch memory cannot be allocated. ----
int cs_attention(const long *dims, float scale, const float *q, const long *qs, const float *k, const long *ks,
  const float *v, const long *vs, const float *mask, float *out, float *lse);
int cs_attention_bwd(const long *dims, float scale, const float *q, const long *qs, const float *k, const long *ks,
  const float *v, const long *vs, const float *mask, const float *out, const float *lse, const float *gout,
  float *gq, float *gk, float *gv);
#endif

extern int cs_has_avx2; // AVX2 and FMA both present (set by cs_init_cpu)
void cs_init_cpu(void);
double cs_peak_gflops(int threads); // measured FMA throughput (peak.c); 0 without AVX2/FMA

// ---- thread pool (pool.c): persistent workers, caller runs tid 0, tasks claim their own work ----
typedef void (*cs_task_fn)(void *ctx, int tid, int nt);
int cs_pool_threads(void);
int cs_pool_set_threads(int n); // returns the count in effect (clamped to [1, CS_MAX_THREADS])
void cs_pool_run(cs_task_fn fn, void *ctx, int nt);
#define CS_MAX_THREADS 64

// ---- GEMM (gemm.c) ----
typedef struct {
  long K, N, Npad;
  float *data; // [K blocks of KC rows][Npad/NR panels][kc][NR], 64-byte aligned
} cs_packed;
// The matmuls return 0, or -1 when a packing buffer cannot be allocated (nothing is written then).
// Buffers are allocated by the calling thread before any work is handed to the pool.
int cs_matmul(long batch, long M, long N, long K,
  const float *A, long abs_, long ars, long acs,
  const float *B, long bbs, long brs, long bcs,
  float *C, const float *bias);
cs_packed *cs_pack(long K, long N, const float *B, long brs, long bcs); // NULL when out of memory
size_t cs_packed_bytes(const cs_packed *p);
void cs_packed_free(cs_packed *p);
int cs_matmul_packed(long M, const float *A, long ars, long acs, const cs_packed *p, float *C, const float *bias);

// ---- elementwise and row ops (ops.c); op codes follow the order of the lists in kernels.ts ----
enum { U_NEG, U_EXP, U_LOG, U_SQRT, U_RSQRT, U_RECIP, U_TANH, U_SIGMOID, U_RELU, U_GELU_TANH, U_GELU_ERF,
  U_SILU, U_ABS, U_SIN, U_COS, U_SQUARE, U_SIGN, U_COUNT };
enum { B_ADD, B_SUB, B_MUL, B_DIV, B_MAX, B_MIN, B_POW, B_EQ, B_NE, B_LT, B_LE, B_GT, B_GE, B_COUNT };
enum { R_SUM, R_MAX, R_MIN };
#define CS_MAX_DIMS 8

void cs_unary(int op, const float *x, float *out, long n);
void cs_unary_grad(int op, const float *x, const float *gy, float *gx, long n);
void cs_binary(int op, int nd, const long *shape, const float *a, const long *sa, const float *b, const long *sb, float *out);
void cs_copy(int nd, const long *shape, const float *x, const long *sx, float *out);
void cs_reduce(int op, const float *x, long outer, long red, long inner, float *out);
void cs_argmax(const float *x, long outer, long red, long inner, int32_t *out);
void cs_softmax(const float *x, long rows, long cols, float scale, long causalRows, long causalOffset, float *out);
void cs_softmax_bwd(const float *y, const float *gy, long rows, long cols, float scale, float *gx);
void cs_log_softmax(const float *x, long rows, long cols, float *out);
void cs_log_softmax_bwd(const float *y, const float *gy, long rows, long cols, float *gx);
void cs_layernorm(const float *x, const float *w, const float *b, long rows, long cols, float eps, float *out, float *mean, float *rstd);
void cs_layernorm_bwd(const float *x, const float *w, const float *mean, const float *rstd, const float *gy,
  long rows, long cols, float *gx, float *gw, float *gb);
void cs_rmsnorm(const float *x, const float *w, long rows, long cols, float eps, float *out, float *rstd);
void cs_rmsnorm_bwd(const float *x, const float *w, const float *rstd, const float *gy, long rows, long cols, float *gx, float *gw);
void cs_adamw(float *p, const float *g, float *m, float *v, long n, double lr, double b1, double b2, double eps, double wd, double bc1, double bc2);
double cs_exp_sum(const float *x, float *out, long n, float scale, float sub); // out[i] = exp(x[i] scale - sub); returns the sum
void cs_gather_rows(const float *x, long C, const int32_t *idx, long nidx, float *out);
void cs_scatter_add_rows(const float *gy, const int32_t *idx, long nidx, long C, float *gx);

// ---- fused causal attention (attention.c); dims = { batch, heads, kvHeads, Tq, Tk, dh }, strides in
// [batch, pos, head, d] order. Return 0, or -1 when scratch memory cannot be allocated. ----
int cs_attention(const long *dims, float scale, const float *q, const long *qs, const float *k, const long *ks,
  const float *v, const long *vs, const float *mask, float *out, float *lse);
int cs_attention_bwd(const long *dims, float scale, const float *q, const long *qs, const float *k, const long *ks,
  const float *v, const long *vs, const float *mask, const float *out, const float *lse, const float *gout,
  float *gq, float *gk, float *gv);
#endif
