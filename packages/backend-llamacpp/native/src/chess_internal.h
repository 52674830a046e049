/* Internal declarations shared by the dispatcher and the per-ISA kernel files. */
#ifndef CHESS_INTERNAL_H
#define CHESS_INTERNAL_H

#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "chess_contract.h"
#include "chess_sparse.h"

/* ---- block layouts (byte-identical to ggml-common.h; own definitions) ---- */
#define CS_QK 32
typedef struct { uint16_t d; uint8_t qs[CS_QK / 2]; } cs_block_q4_0;            /* 18 bytes */
typedef struct { uint16_t d; uint16_t m; uint8_t qs[CS_QK / 2]; } cs_block_q4_1; /* 20 bytes */
typedef struct { uint16_t d; int8_t qs[CS_QK]; } cs_block_q8_0;                  /* 34 bytes */
_Static_assert(sizeof(cs_block_q4_0) == 18, "q4_0 layout");
_Static_assert(sizeof(cs_block_q4_1) == 20, "q4_1 layout");
_Static_assert(sizeof(cs_block_q8_0) == 34, "q8_0 layout");
/* 5-bit types (bit 4 of element i in bit i of qh) and the K-quants' 256-element super-blocks. */
#define CS_QK_K 256
typedef struct { uint16_t d; uint8_t qh[4]; uint8_t qs[CS_QK / 2]; } cs_block_q5_0;             /* 22 bytes */
typedef struct { uint16_t d; uint16_t m; uint8_t qh[4]; uint8_t qs[CS_QK / 2]; } cs_block_q5_1; /* 24 bytes */
typedef struct { uint16_t d, dmin; uint8_t scales[12]; uint8_t qs[CS_QK_K / 2]; } cs_block_q4_K; /* 144 bytes */
typedef struct { uint16_t d, dmin; uint8_t scales[12]; uint8_t qh[CS_QK_K / 8]; uint8_t qs[CS_QK_K / 2]; } cs_block_q5_K; /* 176 */
typedef struct { uint8_t ql[CS_QK_K / 2]; uint8_t qh[CS_QK_K / 4]; int8_t scales[CS_QK_K / 16]; uint16_t d; } cs_block_q6_K; /* 210 */
_Static_assert(sizeof(cs_block_q5_0) == 22, "q5_0 layout");
_Static_assert(sizeof(cs_block_q5_1) == 24, "q5_1 layout");
_Static_assert(sizeof(cs_block_q4_K) == 144, "q4_K layout");
_Static_assert(sizeof(cs_block_q5_K) == 176, "q5_K layout");
_Static_assert(sizeof(cs_block_q6_K) == 210, "q6_K layout");

/* Q4_K / Q5_K: the eight 6-bit scales (sc[j]) and minimums (m[j]) of sub-blocks j = 0..7
 * (32 elements each) from the 12 packed bytes: bytes 0-3 hold sc[0..3] in their low 6 bits
 * and bits 4-5 of sc[4..7] in their top 2; bytes 4-7 the same for m; bytes 8-11 the low
 * nibbles of sc[4..7] (low half) and m[4..7] (high half). As two little-endian words of
 * 8 bytes (kernels load them as vectors). */
static inline void cs_kq_scales(const uint8_t *q, uint64_t *sc, uint64_t *m) {
    uint32_t a, b, c;
    memcpy(&a, q, 4); memcpy(&b, q + 4, 4); memcpy(&c, q + 8, 4);
    const uint32_t lo6 = 0x3f3f3f3fu, lo4 = 0x0f0f0f0fu, top2 = 0x03030303u;
    *sc = (uint64_t)(a & lo6) | (uint64_t)((c & lo4) | (((a >> 6) & top2) << 4)) << 32;
    *m = (uint64_t)(b & lo6) | (uint64_t)(((c >> 4) & lo4) | (((b >> 6) & top2) << 4)) << 32;
}

/* Activations quantized to 8 bits for the output-sparse dot of Q8_0, Q4_0 and Q4_1, as
 * ggml-cpu quantizes them for that dot (quantize_row_q8_0 / q8_1 on this platform, see
 * cs_q8_inv_scale), so that every block's integer sum is ggml's and its scales are
 * ggml's fp16 ones: at sparsity 0 the product is the dense model's up to the order of the
 * float sums. Four arrays (contiguous scales vectorize): for block b of 32 activations,
 * x[32b+i] ~= d[b] * qs[32b+i] with d[b] = fp16(amax/127) as a float, sum[b] = sum_i
 * qs[32b+i] (exact; Q4_0's offset 8), s[b] = fp16(amax/127 * sum[b]) as a float (Q8_1's s,
 * Q4_1's minimum term). */
typedef struct { int8_t *qs; float *d; int32_t *sum; float *s; } cs_q8x;
/* Activations of one token for Q5_0, Q5_1 and the K-quants, quantized exactly as ggml
 * quantizes them for the type's vec_dot (cs_quant_q8g_ref): qs[n]; d, the scale of each
 * block (Q8_0 / Q8_1: per 32, ggml's fp16 scale as a float; Q8_K: per 256, float); s
 * (Q8_1): per 32, ggml's fp16 s = d * sum(qs) as a float; bsums: sums of qs per 32 (Q8_0,
 * Q8_1) or per 16 (Q8_K: ggml's bsums). */
typedef struct { int8_t *qs; float *d; float *s; int16_t *bsums; } cs_q8g;
/* How a type's dot takes its activations: float, cs_q8x, or cs_q8g as ggml's Q8_0 / Q8_1 / Q8_K. */
enum { CS_ACT_F32, CS_ACT_Q8X, CS_ACT_Q8_0, CS_ACT_Q8_1, CS_ACT_Q8_K };
/* kind CS_ACT_Q8_0 or CS_ACT_Q8_1 (n a multiple of 32: both fill d, s, bsums), or CS_ACT_Q8_K
 * (n a multiple of 256). The same on every ISA (the dispatcher calls it for all). */
void cs_quant_q8g_ref(int kind, const float *x, const cs_q8g *q, int64_t n);
/* Max y elements per in_accum call. A one-token product streams each active row once,
 * whole: with 4096 (16 KB of y, the L1 size) a 7B W_gate/W_up transposed row (11008
 * outputs, 6.2 KB in Q4_0) was read in three separate scattered passes, and TEAL decoded
 * 10% slower than with the row in one pass and y (43 KB) in L2. 16384 covers Llama-3's
 * 14336; the AVX-512 integer kernels then keep about 20 KB of stack scratch. */
#define CS_IN_CHUNK 16384

/* Software prefetch. Decode reads each active row once from DRAM: at ~20 GB/s per core
 * and ~150 ns latency about 4 KB must be in flight per thread, more than the hardware
 * prefetchers start on short, scattered rows. The kernels prefetch whole rows (or row
 * slices) CS_PF_ROWS active rows ahead of the one they compute, into L2 (CS_PF_LOCALITY
 * 2 = T1): an L1 prefetch holds one of the core's few L1 miss buffers for the whole
 * DRAM latency, an L2 one does not, and the L1 stream prefetcher covers L2 -> L1.
 * Measured on Zen 4, one thread, Q4_0 dot_rows over 151 MB of rows: 8 rows ahead into
 * L1 12.3 GB/s, 16 rows ahead into L2 15.3 GB/s (the no-arithmetic read ceiling of the
 * same rows: 18.3 GB/s). */
#define CS_PF_ROWS 16
#define CS_PF_LOCALITY 2
static inline void cs_prefetch(const void *p) { __builtin_prefetch(p, 0, CS_PF_LOCALITY); }
static inline void cs_prefetch_span(const uint8_t *p, size_t bytes) {
    for (size_t o = 0; o < bytes; o += 64) cs_prefetch(p + o);
    if (bytes > 0) cs_prefetch(p + bytes - 1);
}

/* The integer input-sparse kernels (every SIMD file) take the active rows in groups of
 * CS_IG, in the order of the active list, so that the grouping does not depend on the
 * thread split. cs_ig_prefetch_first: the first group's rows, whole, into L2.
 * cs_ig_rows: the rows r[j] of the group starting at active row k (a short last group
 * repeats its last row, with coefficient 0) and the next group's p[j] (prefetched
 * during this one; this group's own rows past the end); returns the group's size. */
#define CS_IG 16
static inline void cs_ig_prefetch_first(const uint8_t *w, size_t nb1, const int32_t *idx, int64_t nact,
                                        size_t row_bytes) {
    for (int64_t j = 0; j < nact && j < CS_IG; j++) cs_prefetch_span(w + (size_t)idx[j] * nb1, row_bytes);
}
static inline int64_t cs_ig_rows(const uint8_t *w, size_t nb1, const int32_t *idx, int64_t nact, int64_t k,
                                 const uint8_t **r, const uint8_t **p) {
    const int64_t g = nact - k < CS_IG ? nact - k : CS_IG;
    for (int64_t j = 0; j < CS_IG; j++) {
        r[j] = w + (size_t)idx[k + (j < g ? j : g - 1)] * nb1;
        const int64_t f = k + CS_IG + j;
        p[j] = f < nact ? w + (size_t)idx[f] * nb1 : r[j];
    }
    return g;
}

/* dot_rows over groups of 4 active rows (x86 and NEON): the four stream together,
 * block by block, and rows CS_PF_ROWS ahead are prefetched one step at a time
 * (CS_ROWS4_PREFETCH(byte offset)). In scope: y, w, nb1, rows, nrows of the dot_rows
 * signature. A short last group repeats its last row, so that every row gets the same
 * arithmetic whatever the thread split; CS_ROWS4_END stores only the real rows. */
#define CS_ROWS4_BEGIN(ROW_BYTES)                                                                   \
    for (int64_t j = 0; j < nrows && j < CS_PF_ROWS; j++) cs_prefetch_span(w + (size_t)rows[j] * nb1, (ROW_BYTES)); \
    for (int64_t k = 0; k < nrows; k += 4) {                                                        \
        const int64_t l = nrows - 1;                                                                \
        const uint8_t *r0 = w + (size_t)rows[k] * nb1, *r1 = w + (size_t)rows[k + 1 < l ? k + 1 : l] * nb1; \
        const uint8_t *r2 = w + (size_t)rows[k + 2 < l ? k + 2 : l] * nb1, *r3 = w + (size_t)rows[k + 3 < l ? k + 3 : l] * nb1; \
        const uint8_t *p0 = r0, *p1 = r1, *p2 = r2, *p3 = r3;                                       \
        if (k + CS_PF_ROWS + 4 <= nrows) {                                                          \
            p0 = w + (size_t)rows[k + CS_PF_ROWS] * nb1; p1 = w + (size_t)rows[k + CS_PF_ROWS + 1] * nb1; \
            p2 = w + (size_t)rows[k + CS_PF_ROWS + 2] * nb1; p3 = w + (size_t)rows[k + CS_PF_ROWS + 3] * nb1; \
        }
#define CS_ROWS4_PREFETCH(o)                                                                        \
    cs_prefetch(p0 + (o)); cs_prefetch(p1 + (o)); cs_prefetch(p2 + (o)); cs_prefetch(p3 + (o));
#define CS_ROWS4_END(V0, V1, V2, V3)                                                                \
        y[rows[k]] = (V0);                                                                          \
        if (k + 1 < nrows) y[rows[k + 1]] = (V1);                                                   \
        if (k + 2 < nrows) y[rows[k + 2]] = (V2);                                                   \
        if (k + 3 < nrows) y[rows[k + 3]] = (V3);                                                   \
    }

/* Start of a quantized 4-row dot kernel (signature of cs_kernels.dot_rows): the
 * activation blocks x, nb blocks per row of S bytes, then CS_ROWS4_BEGIN. */
#define CS_DOT_ROWS4_Q_PROLOGUE(BLOCK_T)                                                             \
    const cs_q8x *x = (const cs_q8x *)xa;                                                           \
    const int64_t nb = n / CS_QK;                                                                   \
    const size_t S = sizeof(BLOCK_T);                                                               \
    CS_ROWS4_BEGIN((size_t)nb * S)

/* Internal type index (dense, for tables). */
enum { CS_F32 = 0, CS_F16, CS_BF16, CS_Q8_0, CS_Q4_0, CS_Q4_1,
       CS_Q5_0, CS_Q5_1, CS_Q4_K, CS_Q5_K, CS_Q6_K, /* output-sparse (row layout) only */
       CS_NTYPES };

/* The keep rule of every entry point (the contract's, chess_contract.h): one threshold for
 * all channels (n_tau 1), one per channel, or none (n_tau 0: exact zeros are dropped). */
static inline int cs_keep(float v, const float *tau, int64_t n_tau, int64_t j) {
    if (n_tau == 0) return v != 0.0f;
    return CHESS_CONTRACT_KEEPS(v, n_tau == 1 ? tau[0] : tau[j]);
}

/* ---- scalar conversions (portable; no hardware F16C needed) ---- */
static inline float cs_bits_to_f32(uint32_t u) { float f; memcpy(&f, &u, 4); return f; }
static inline uint32_t cs_f32_to_bits(float f) { uint32_t u; memcpy(&u, &f, 4); return u; }

/* IEEE binary16 -> binary32, exact for every input (subnormals, inf, NaN). */
static inline float cs_fp16_to_f32(uint16_t h) {
    const uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    const uint32_t exp = (h >> 10) & 0x1fu;
    uint32_t mant = h & 0x3ffu;
    if (exp == 0x1f) return cs_bits_to_f32(sign | 0x7f800000u | (mant << 13));
    if (exp == 0) {
        if (mant == 0) return cs_bits_to_f32(sign);
        /* subnormal: value = mant * 2^-24 */
        const float v = (float)mant * (1.0f / 16777216.0f);
        return sign ? -v : v;
    }
    return cs_bits_to_f32(sign | ((exp + 112u) << 23) | (mant << 13));
}
static inline float cs_bf16_to_f32(uint16_t h) { return cs_bits_to_f32((uint32_t)h << 16); }

/* IEEE binary32 -> binary16, round to nearest even (what F16C's vcvtps2ph does with
 * _MM_FROUND_TO_NEAREST_INT, and ggml's fp32 -> fp16 conversions), subnormals, overflow
 * to infinity and NaN (quieted) included. */
static inline uint16_t cs_f32_to_fp16(float f) {
    const uint32_t x = cs_f32_to_bits(f);
    const uint32_t sign = (x >> 16) & 0x8000u, ax = x & 0x7fffffffu;
    if (ax > 0x7f800000u) return (uint16_t)(sign | 0x7e00u | ((ax >> 13) & 0x3ffu)); /* NaN, quieted */
    if (ax >= 0x477ff000u) return (uint16_t)(sign | 0x7c00u);                          /* rounds to inf */
    if (ax < 0x38800000u) /* below 2^-14: a multiple of 2^-24 (exact scaling, then round) */
        return (uint16_t)(sign | (uint32_t)nearbyintf(cs_bits_to_f32(ax) * 16777216.0f));
    const uint32_t r = ax + 0xfffu + ((ax >> 13) & 1u) - (112u << 23);
    return (uint16_t)(sign | (r >> 13));
}
static inline float cs_round_fp16(float f) { return cs_fp16_to_f32(cs_f32_to_fp16(f)); }

/* The factor ggml-cpu's quantize_row_q8_0 / q8_1 multiply a block of 32 by before
 * rounding to nearest even: its x86 code takes 127/amax, its AArch64 code 1/d with d =
 * amax/127 (the two differ by an ulp, which moves a value within an ulp of a .5 tie). */
static inline float cs_q8_inv_scale(float amax) {
#if defined(__aarch64__)
    const float d = amax / 127.0f;
    return d != 0.0f ? 1.0f / d : 0.0f;
#else
    return amax != 0.0f ? 127.0f / amax : 0.0f;
#endif
}
static inline uint16_t cs_load_u16(const void *p) { uint16_t v; memcpy(&v, p, 2); return v; }

/* Output-sparse prefill panels (gemm_rows of the x86 tables). cs_gr_unpack: block b of
 * a row as bytes u[32] (Q4: the nibbles; Q8_0: the signed bytes, xor 0x80 when
 * q8_unsigned, so that weight w is u - 128), its scale d and minimum m (Q4_1; else 0). */
enum { CS_GR_Q4_0, CS_GR_Q4_1, CS_GR_Q8_0 };

static inline void cs_gr_unpack(int kind, int q8_unsigned, const uint8_t *row, int64_t b, uint8_t *u, float *d, float *m) {
    if (kind == CS_GR_Q8_0) {
        const cs_block_q8_0 *blk = (const cs_block_q8_0 *)row + b;
        const uint8_t flip = q8_unsigned ? 0x80 : 0x00;
        for (int i = 0; i < CS_QK; i++) u[i] = (uint8_t)((uint8_t)blk->qs[i] ^ flip);
        *d = cs_fp16_to_f32(cs_load_u16(&blk->d));
        *m = 0.0f;
        return;
    }
    const uint8_t *qs;
    if (kind == CS_GR_Q4_0) {
        const cs_block_q4_0 *blk = (const cs_block_q4_0 *)row + b;
        qs = blk->qs;
        *d = cs_fp16_to_f32(cs_load_u16(&blk->d));
        *m = 0.0f;
    } else {
        const cs_block_q4_1 *blk = (const cs_block_q4_1 *)row + b;
        qs = blk->qs;
        *d = cs_fp16_to_f32(cs_load_u16(&blk->d));
        *m = cs_fp16_to_f32(cs_load_u16(&blk->m));
    }
    for (int i = 0; i < 16; i++) { u[i] = qs[i] & 0x0f; u[i + 16] = qs[i] >> 4; }
}

/* One panel of PW (8 or 16) rows, unpacked once and transposed: for block b, register k
 * (k = 0..7) is the PW * 4 bytes at pw + (b * 8 + k) * PW * 4, whose dword lane r holds
 * weights 4k..4k+3 of row r; pd / pm[b * PW + r] its scale and minimum. Lanes r >= np
 * (past the last row) hold weight 0 with scale and minimum 0 and are never stored. */
static inline void cs_gr_pack_panel(int kind, int q8_unsigned, const uint8_t *w, size_t nb1, const int32_t *rows,
                                    int64_t np, int PW, int64_t nb, uint8_t *pw, float *pd, float *pm) {
    const uint8_t zero_byte = kind == CS_GR_Q4_0 ? 8 : kind == CS_GR_Q8_0 && q8_unsigned ? 0x80 : 0;
    for (int64_t r = 0; r < PW; r++) {
        const uint8_t *row = r < np ? w + (size_t)rows[r] * nb1 : NULL;
        for (int64_t b = 0; b < nb; b++) {
            uint8_t u[CS_QK];
            if (row) cs_gr_unpack(kind, q8_unsigned, row, b, u, &pd[b * PW + r], &pm[b * PW + r]);
            else { memset(u, zero_byte, sizeof u); pd[b * PW + r] = 0.0f; pm[b * PW + r] = 0.0f; }
            for (int k = 0; k < 8; k++) memcpy(pw + ((size_t)b * 8 + (size_t)k) * (size_t)PW * 4 + (size_t)r * 4, u + 4 * k, 4);
        }
    }
}

/* The 4 token rows of a 16-bit integer prefill step from t0 (gemm_i16): missing tokens
 * repeat the last one (computed, not stored). */
static inline void cs_i16_token_rows(const int16_t *qa, size_t ldq, const float *da, size_t ldd, int64_t t0, int64_t nt,
                                     const int16_t *ar[4], const float *dr[4]) {
    for (int i = 0; i < 4; i++) {
        const int64_t t = t0 + i < nt ? t0 + i : nt - 1;
        ar[i] = qa + (size_t)t * ldq;
        dr[i] = da + (size_t)t * ldd;
    }
}

/* ---- per-(ISA, type) kernel primitives ----
 * in_accum: y[0..n) = sum_k xv[k] * deq(row idx[k])[off..off+n), where `w` already
 *           points at the first block of the slice in row 0 (row r at w + r*nb1),
 *           n is a multiple of the block size; writes y (zero when nact == 0).
 * dot_rows: y[rows[k]] = dot(row rows[k] of n elements, activations xa) for k < nrows.
 *           xa is float* for F32/F16/BF16, const cs_q8x* for Q8_0/Q4_0/Q4_1 and const
 *           cs_q8g* for Q5_0, Q5_1 and the K-quants (which have no in_accum: NULL).
 * to_float: dst[0..n) = deq(src)[0..n), n a multiple of the block size. */
typedef void (*cs_in_accum_fn)(float *y, int64_t n, const uint8_t *w, size_t nb1,
                               const int32_t *idx, const float *xv, int64_t nact);
typedef void (*cs_dot_rows_fn)(float *y, const uint8_t *w, size_t nb1, const int32_t *rows,
                               int64_t nrows, const void *xa, int64_t n);
typedef void (*cs_to_float_fn)(const uint8_t *src, float *dst, int64_t n);

typedef struct {
    cs_in_accum_fn in_accum;
    cs_dot_rows_fn dot_rows;
    cs_to_float_fn to_float;
} cs_kernels;

/* Prefill micro-kernel: for t < nt: Y[t][0..n) += sum_{k<kc} A[t*lda + k] * P[k*ldp + 0..n),
 * n a multiple of 16. */
typedef void (*cs_gemm_fn)(float *Y, size_t ldy, const float *A, size_t lda, const float *P,
                           size_t ldp, int64_t nt, int64_t kc, int64_t n);
/* Activation quantizer (identical results on every ISA). n multiple of 32. */
typedef void (*cs_quant_x8_fn)(const float *x, const cs_q8x *q, int64_t n);

/* Prefill tiles: tokens per tile (scratch: CS_GEMM_TT x n_in floats per thread, 11 MB for
 * a 7B W_down). Each tile's union of kept inputs is what the prefill routes multiply. */
#define CS_GEMM_TT 256

/* 16-bit integer prefill (Q4_0, Q4_1, Q8_0; ISAs with integer dot products). Rows are
 * first normalized: row j of the weight (input j) has magnitude r_j, a bound of |value|
 * over the whole row (max over its blocks of Q4_0: 8|d|, Q4_1: |m| + 15|d|, Q8_0:
 * 128|d|; 0 for an all-zero row); the kept activations
 * are multiplied by r_j and the weights divided by it, so that no row is crushed by
 * a larger one in the re-quantization below.
 * quant_a_i16 (activations): per token and group g of 32 kept inputs, da = amax/8191,
 * qa = nearbyint(v * (8191/amax)) as int16 (14 bits; 0 when amax = 0).
 * pack_b_i16: the float panel P (kc rows of n columns, kc a multiple of 32, n a
 * multiple of 32) times rinv[k] (1/r, 0 for an all-zero row) is re-quantized along k:
 * per group g and column c, e[g*n + c] = amax/4095 and q = nearbyint(v * (4095/amax))
 * (13 bits: 16 steps of 2 * 4095 * 8191 stay below 2^31), stored as int16 pairs for
 * dot products over 2 consecutive k: B + ((g*(n/16) + c/16)*16 + s)*64 holds, for
 * columns c..c+15, rows 32g+2s (low half) and 32g+2s+1 (high half) of each dword.
 * gemm_i16: Y[t][0..n) += sum_g da[t][g] * e[g][.] * sum_k q[k][.] * qa[t][k], t < nt
 * (exact int32 sums per group). */
typedef void (*cs_pack_b_i16_fn)(const float *P, size_t ldp, const float *rinv, int64_t kc, int64_t n, int32_t *B, float *e);
/* quant_a_i16: n a multiple of 32; row_magnitudes: r[k] = r_j of row j = rows[k], k < n. */
typedef void (*cs_quant_a_i16_fn)(const float *x, int64_t n, int16_t *q, float *d);
/* type: CS_Q4_0, CS_Q4_1 or CS_Q8_0 */
typedef void (*cs_row_magnitudes_fn)(int type, const uint8_t *w, size_t nb1, const int32_t *rows, int64_t n, int64_t nb, float *r);
typedef void (*cs_gemm_i16_fn)(float *Y, size_t ldy, const int16_t *qa, size_t ldq, const float *da, size_t ldd,
                               const int32_t *B, const float *e, int64_t nt, int64_t ng, int64_t n);

/* Output-sparse prefill as a GEMM (gated W_up, ggml row layout, n_tokens > 1): for the nr
 * rows `rows` (n elements each, nb1 bytes apart) and nt tokens of 8-bit activations xq[t],
 * D[t*nr + k] = dot(row rows[k], x_t) for every (row, token): every row's arithmetic is
 * fixed (block by block, in order), whatever rows share its panel. `pack` is scratch of
 * CS_GEMM_ROWS_PACK(n) bytes, 64-aligned. */
typedef void (*cs_gemm_rows_fn)(float *D, const uint8_t *w, size_t nb1, const int32_t *rows, int64_t nr,
                                const cs_q8x *xq, int64_t nt, int64_t n, uint8_t *pack);
#define CS_GEMM_ROWS_PACK(n) ((size_t)((n) / CS_QK) * (16 * CS_QK + 32 * sizeof(float)))

typedef struct {
    const char *name;
    cs_kernels k[CS_NTYPES];
    cs_gemm_rows_fn gemm_rows[CS_NTYPES]; /* NULL: out-gated prefill runs dot_rows per token */
    cs_quant_x8_fn quant_x8;
    cs_gemm_fn gemm;  /* NULL: prefill falls back to per-token decode */
    cs_pack_b_i16_fn pack_b_i16; /* NULL (all four): 4-bit prefill uses the float gemm */
    cs_gemm_i16_fn gemm_i16;
    cs_quant_a_i16_fn quant_a_i16;
    cs_row_magnitudes_fn row_magnitudes;
} cs_isa_table;

extern const cs_isa_table cs_table_ref;
#ifdef CHESS_HAVE_AVX2
extern const cs_isa_table cs_table_avx2;
extern const cs_isa_table cs_table_avx2_vnni;
#endif
#ifdef CHESS_HAVE_AVX512
extern const cs_isa_table cs_table_avx512;
extern const cs_isa_table cs_table_avx512_vbmi;
#endif
#ifdef CHESS_HAVE_NEON
extern const cs_isa_table cs_table_neon;
#endif

/* The compiled-in table of an ISA (NULL if not built, whatever the CPU): white-box tests. */
const cs_isa_table *cs_isa_table_of(chess_isa isa);

/* Read-ceiling mode (chess_read_ceiling.c): *out = base with in_accum and dot_rows of
 * every type replaced by row streams that compute nothing (outputs 0). */
void cs_read_ceiling_table(const cs_isa_table *base, cs_isa_table *out);

/* Portable activation quantizer, shared by ref and used as the spec for SIMD ones:
 * per block amax = max|x|, d = amax/127, id = d ? 1/d : 0, q = nearbyint(x*id). */
void cs_quant_x8_ref(const float *x, const cs_q8x *q, int64_t n);

#endif
