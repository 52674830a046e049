/* Portable reference kernels: plain loops, float32 accumulation.
 *
 * Summation orders (the documented reference semantics):
 * - in_accum: for each output element, contributions of the active rows are
 *   added in the order of the active list (ascending input index):
 *   y[i] = ((0 + x[j0]*w[j0,i]) + x[j1]*w[j1,i]) + ..., with w the dequantized
 *   weight (F16/BF16 exact in float; Q4_0: d*(q-8); Q4_1: d*q + m; Q8_0: d*q).
 * - dot (float types): acc = ((0 + w0*x0) + w1*x1) + ... in element order.
 * - dot (block types): per block an exact integer sum s_b = sum q_w*q_x, then
 *   acc = acc + (d_w*d_x)*s_b in block order (Q4_0 uses q_w-8; Q4_1 adds
 *   m_w*(d_x*sum q_x) after the scaled sum of its block).
 * - dot (Q5_0, Q5_1, K-quants; activations as ggml quantizes them, cs_q8g): per block
 *   (K-quants: per 256-element super-block) exact integer sums, then in block order
 *   Q5_0: acc += (d_w*d_x)*s (q_w-16); Q5_1: acc += (d_w*d_x)*s + m_w*s_x;
 *   Q4_K/Q5_K: s1 = sum_j sc_j * (sub-block j's sum of q_w*q_x), s2 = sum_j m_j * (the
 *   activation sum of sub-block j), acc += (d_w*d_x)*s1, then acc -= (dmin_w*d_x)*s2;
 *   Q6_K: s = sum_j sc_j * (sum of (q_w-32)*q_x over sub-block j of 16), acc += (d_w*d_x)*s.
 *   The integers are ggml's (vec_dot_*_q8_*); only the float order may differ from it.
 * This file is compiled without ISA flags and without FP contraction. */
#include <math.h>

#include "chess_internal.h"

/* ---------------- dequantization of one row ---------------- */

static void to_float_f32(const uint8_t *src, float *dst, int64_t n) { memcpy(dst, src, (size_t)n * 4); }
static void to_float_f16(const uint8_t *src, float *dst, int64_t n) {
    for (int64_t i = 0; i < n; i++) dst[i] = cs_fp16_to_f32(cs_load_u16(src + 2 * i));
}
static void to_float_bf16(const uint8_t *src, float *dst, int64_t n) {
    for (int64_t i = 0; i < n; i++) dst[i] = cs_bf16_to_f32(cs_load_u16(src + 2 * i));
}
static void to_float_q8_0(const uint8_t *src, float *dst, int64_t n) {
    const cs_block_q8_0 *b = (const cs_block_q8_0 *)src;
    for (int64_t ib = 0; ib < n / CS_QK; ib++) {
        const float d = cs_fp16_to_f32(cs_load_u16(&b[ib].d));
        for (int i = 0; i < CS_QK; i++) dst[ib * CS_QK + i] = d * (float)b[ib].qs[i];
    }
}
static void to_float_q4_0(const uint8_t *src, float *dst, int64_t n) {
    const cs_block_q4_0 *b = (const cs_block_q4_0 *)src;
    for (int64_t ib = 0; ib < n / CS_QK; ib++) {
        const float d = cs_fp16_to_f32(cs_load_u16(&b[ib].d));
        for (int i = 0; i < CS_QK / 2; i++) {
            dst[ib * CS_QK + i] = d * (float)((int)(b[ib].qs[i] & 0x0f) - 8);
            dst[ib * CS_QK + i + CS_QK / 2] = d * (float)((int)(b[ib].qs[i] >> 4) - 8);
        }
    }
}
static void to_float_q4_1(const uint8_t *src, float *dst, int64_t n) {
    const cs_block_q4_1 *b = (const cs_block_q4_1 *)src;
    for (int64_t ib = 0; ib < n / CS_QK; ib++) {
        const float d = cs_fp16_to_f32(cs_load_u16(&b[ib].d));
        const float m = cs_fp16_to_f32(cs_load_u16(&b[ib].m));
        for (int i = 0; i < CS_QK / 2; i++) {
            dst[ib * CS_QK + i] = d * (float)(b[ib].qs[i] & 0x0f) + m;
            dst[ib * CS_QK + i + CS_QK / 2] = d * (float)(b[ib].qs[i] >> 4) + m;
        }
    }
}

/* ---------------- input-sparse accumulation ---------------- */

/* One generic loop: dequantize one block (32 elements) of an active row into
 * a small buffer, then add x*w into y. Element values are exactly those of
 * to_float_*, so every type shares the documented order. */
#define CS_REF_IN_ACCUM(NAME, TOF, BLK, BBYTES)                                              \
    static void NAME(float *y, int64_t n, const uint8_t *w, size_t nb1, const int32_t *idx, \
                     const float *xv, int64_t nact) {                                       \
        float buf[CS_QK];                                                                   \
        for (int64_t i = 0; i < n; i++) y[i] = 0.0f;                                        \
        for (int64_t k = 0; k < nact; k++) {                                                \
            const uint8_t *row = w + (size_t)idx[k] * nb1;                                  \
            const float a = xv[k];                                                          \
            for (int64_t b = 0; b < n / (BLK); b++) {                                       \
                TOF(row + (size_t)b * (BBYTES), buf, (BLK));                                \
                for (int i = 0; i < (BLK); i++) y[b * (BLK) + i] += a * buf[i];             \
            }                                                                               \
        }                                                                                   \
    }

CS_REF_IN_ACCUM(in_accum_f32, to_float_f32, 1, 4)
CS_REF_IN_ACCUM(in_accum_f16, to_float_f16, 1, 2)
CS_REF_IN_ACCUM(in_accum_bf16, to_float_bf16, 1, 2)
CS_REF_IN_ACCUM(in_accum_q8_0, to_float_q8_0, CS_QK, 34)
CS_REF_IN_ACCUM(in_accum_q4_0, to_float_q4_0, CS_QK, 18)
CS_REF_IN_ACCUM(in_accum_q4_1, to_float_q4_1, CS_QK, 20)

/* ---------------- dot products ---------------- */

static float dot_f32(const uint8_t *row, const float *x, int64_t n) {
    float acc = 0.0f;
    for (int64_t i = 0; i < n; i++) {
        float w; memcpy(&w, row + 4 * i, 4);
        acc += w * x[i];
    }
    return acc;
}
static float dot_f16(const uint8_t *row, const float *x, int64_t n) {
    float acc = 0.0f;
    for (int64_t i = 0; i < n; i++) acc += cs_fp16_to_f32(cs_load_u16(row + 2 * i)) * x[i];
    return acc;
}
static float dot_bf16(const uint8_t *row, const float *x, int64_t n) {
    float acc = 0.0f;
    for (int64_t i = 0; i < n; i++) acc += cs_bf16_to_f32(cs_load_u16(row + 2 * i)) * x[i];
    return acc;
}
static float dot_q8_0(const uint8_t *row, const cs_q8x *x, int64_t n) {
    const cs_block_q8_0 *b = (const cs_block_q8_0 *)row;
    float acc = 0.0f;
    for (int64_t ib = 0; ib < n / CS_QK; ib++) {
        int32_t s = 0;
        for (int i = 0; i < CS_QK; i++) s += (int32_t)b[ib].qs[i] * x->qs[ib * CS_QK + i];
        acc += (cs_fp16_to_f32(cs_load_u16(&b[ib].d)) * x->d[ib]) * (float)s;
    }
    return acc;
}
static float dot_q4_0(const uint8_t *row, const cs_q8x *x, int64_t n) {
    const cs_block_q4_0 *b = (const cs_block_q4_0 *)row;
    float acc = 0.0f;
    for (int64_t ib = 0; ib < n / CS_QK; ib++) {
        int32_t s = 0;
        for (int i = 0; i < CS_QK / 2; i++) {
            s += ((int32_t)(b[ib].qs[i] & 0x0f) - 8) * x->qs[ib * CS_QK + i];
            s += ((int32_t)(b[ib].qs[i] >> 4) - 8) * x->qs[ib * CS_QK + i + CS_QK / 2];
        }
        acc += (cs_fp16_to_f32(cs_load_u16(&b[ib].d)) * x->d[ib]) * (float)s;
    }
    return acc;
}
static float dot_q4_1(const uint8_t *row, const cs_q8x *x, int64_t n) {
    const cs_block_q4_1 *b = (const cs_block_q4_1 *)row;
    float acc = 0.0f;
    for (int64_t ib = 0; ib < n / CS_QK; ib++) {
        int32_t s = 0;
        for (int i = 0; i < CS_QK / 2; i++) {
            s += (int32_t)(b[ib].qs[i] & 0x0f) * x->qs[ib * CS_QK + i];
            s += (int32_t)(b[ib].qs[i] >> 4) * x->qs[ib * CS_QK + i + CS_QK / 2];
        }
        acc += (cs_fp16_to_f32(cs_load_u16(&b[ib].d)) * x->d[ib]) * (float)s;
        acc += cs_fp16_to_f32(cs_load_u16(&b[ib].m)) * x->s[ib];
    }
    return acc;
}

/* The 5-bit types: value i of a block (0..31, before the Q5_0 offset). */
static inline int q5_value(const uint8_t *qs, const uint8_t *qh4, int i) {
    uint32_t qh;
    memcpy(&qh, qh4, 4);
    const int lo = i < 16 ? qs[i] & 0x0f : qs[i - 16] >> 4;
    return lo | (int)((qh >> i) & 1u) << 4;
}
/* Q5_K element i (0..255) of a super-block: low nibbles of qs[32c..32c+31] are sub-block
 * 2c, high nibbles 2c+1; bit 4 of sub-block j in bit j of qh[i % 32]. */
static inline int q5_K_value(const cs_block_q5_K *b, int i) {
    const int j = i / 32, l = i % 32;
    const int lo = (b->qs[32 * (j / 2) + l] >> (4 * (j % 2))) & 0x0f;
    return lo | ((b->qh[l] >> j) & 1) << 4;
}
static inline int q4_K_value(const cs_block_q4_K *b, int i) {
    const int j = i / 32, l = i % 32;
    return (b->qs[32 * (j / 2) + l] >> (4 * (j % 2))) & 0x0f;
}
/* Q6_K element i (0..255), 0..63 before the -32 offset: per half h of 128, quarter c of 32,
 * position l: low nibble from ql[64h + 32(c%2) + l] (c < 2: low, else high nibble), the two
 * high bits from qh[32h + l] at bit 2c. */
static inline int q6_K_value(const cs_block_q6_K *b, int i) {
    const int h = i / 128, c = (i % 128) / 32, l = i % 32;
    const int lo = (b->ql[64 * h + 32 * (c % 2) + l] >> (4 * (c / 2))) & 0x0f;
    return lo | ((b->qh[32 * h + l] >> (2 * c)) & 3) << 4;
}
static inline int k_scale(uint64_t packed, int j) { return (int)((packed >> (8 * j)) & 0xff); }

static void to_float_q5_0(const uint8_t *src, float *dst, int64_t n) {
    const cs_block_q5_0 *b = (const cs_block_q5_0 *)src;
    for (int64_t ib = 0; ib < n / CS_QK; ib++) {
        const float d = cs_fp16_to_f32(cs_load_u16(&b[ib].d));
        for (int i = 0; i < CS_QK; i++) dst[ib * CS_QK + i] = d * (float)(q5_value(b[ib].qs, b[ib].qh, i) - 16);
    }
}
static void to_float_q5_1(const uint8_t *src, float *dst, int64_t n) {
    const cs_block_q5_1 *b = (const cs_block_q5_1 *)src;
    for (int64_t ib = 0; ib < n / CS_QK; ib++) {
        const float d = cs_fp16_to_f32(cs_load_u16(&b[ib].d)), m = cs_fp16_to_f32(cs_load_u16(&b[ib].m));
        for (int i = 0; i < CS_QK; i++) dst[ib * CS_QK + i] = d * (float)q5_value(b[ib].qs, b[ib].qh, i) + m;
    }
}
/* Q4_K / Q5_K: d*sc_j * q - dmin*m_j, as ggml's dequantize_row_q4_K / q5_K. */
#define CS_REF_TO_FLOAT_K45(NAME, BLOCK_T, VALUE)                                                   \
    static void NAME(const uint8_t *src, float *dst, int64_t n) {                                   \
        const BLOCK_T *b = (const BLOCK_T *)src;                                                     \
        for (int64_t ib = 0; ib < n / CS_QK_K; ib++) {                                               \
            uint64_t sc, mn;                                                                         \
            cs_kq_scales(b[ib].scales, &sc, &mn);                                                    \
            const float d = cs_fp16_to_f32(cs_load_u16(&b[ib].d)), dmin = cs_fp16_to_f32(cs_load_u16(&b[ib].dmin)); \
            for (int i = 0; i < CS_QK_K; i++) {                                                      \
                const float dl = d * (float)k_scale(sc, i / 32), ml = dmin * (float)k_scale(mn, i / 32); \
                dst[ib * CS_QK_K + i] = dl * (float)VALUE(&b[ib], i) - ml;                           \
            }                                                                                        \
        }                                                                                            \
    }
CS_REF_TO_FLOAT_K45(to_float_q4_K, cs_block_q4_K, q4_K_value)
CS_REF_TO_FLOAT_K45(to_float_q5_K, cs_block_q5_K, q5_K_value)
static void to_float_q6_K(const uint8_t *src, float *dst, int64_t n) {
    const cs_block_q6_K *b = (const cs_block_q6_K *)src;
    for (int64_t ib = 0; ib < n / CS_QK_K; ib++) {
        const float d = cs_fp16_to_f32(cs_load_u16(&b[ib].d));
        for (int i = 0; i < CS_QK_K; i++)
            dst[ib * CS_QK_K + i] = (d * (float)b[ib].scales[i / 16]) * (float)(q6_K_value(&b[ib], i) - 32);
    }
}

static float dot_q5_0(const uint8_t *row, const cs_q8g *x, int64_t n) {
    const cs_block_q5_0 *b = (const cs_block_q5_0 *)row;
    float acc = 0.0f;
    for (int64_t ib = 0; ib < n / CS_QK; ib++) {
        int32_t s = 0;
        for (int i = 0; i < CS_QK; i++) s += (q5_value(b[ib].qs, b[ib].qh, i) - 16) * x->qs[ib * CS_QK + i];
        acc += (cs_fp16_to_f32(cs_load_u16(&b[ib].d)) * x->d[ib]) * (float)s;
    }
    return acc;
}
static float dot_q5_1(const uint8_t *row, const cs_q8g *x, int64_t n) {
    const cs_block_q5_1 *b = (const cs_block_q5_1 *)row;
    float acc = 0.0f;
    for (int64_t ib = 0; ib < n / CS_QK; ib++) {
        int32_t s = 0;
        for (int i = 0; i < CS_QK; i++) s += q5_value(b[ib].qs, b[ib].qh, i) * x->qs[ib * CS_QK + i];
        acc += (cs_fp16_to_f32(cs_load_u16(&b[ib].d)) * x->d[ib]) * (float)s + cs_fp16_to_f32(cs_load_u16(&b[ib].m)) * x->s[ib];
    }
    return acc;
}
#define CS_REF_DOT_K45(NAME, BLOCK_T, VALUE)                                                         \
    static float NAME(const uint8_t *row, const cs_q8g *x, int64_t n) {                              \
        const BLOCK_T *b = (const BLOCK_T *)row;                                                      \
        float acc = 0.0f;                                                                             \
        for (int64_t ib = 0; ib < n / CS_QK_K; ib++) {                                                \
            uint64_t sc, mn;                                                                          \
            cs_kq_scales(b[ib].scales, &sc, &mn);                                                     \
            const int8_t *q = x->qs + ib * CS_QK_K;                                                   \
            const int16_t *bs = x->bsums + ib * (CS_QK_K / 16);                                       \
            int32_t s1 = 0, s2 = 0;                                                                   \
            for (int j = 0; j < 8; j++) {                                                             \
                int32_t t = 0;                                                                        \
                for (int l = 0; l < 32; l++) t += VALUE(&b[ib], 32 * j + l) * q[32 * j + l];          \
                s1 += k_scale(sc, j) * t;                                                             \
                s2 += k_scale(mn, j) * (bs[2 * j] + bs[2 * j + 1]);                                   \
            }                                                                                         \
            acc += (cs_fp16_to_f32(cs_load_u16(&b[ib].d)) * x->d[ib]) * (float)s1;                    \
            acc -= (cs_fp16_to_f32(cs_load_u16(&b[ib].dmin)) * x->d[ib]) * (float)s2;                 \
        }                                                                                             \
        return acc;                                                                                   \
    }
CS_REF_DOT_K45(dot_q4_K, cs_block_q4_K, q4_K_value)
CS_REF_DOT_K45(dot_q5_K, cs_block_q5_K, q5_K_value)
static float dot_q6_K(const uint8_t *row, const cs_q8g *x, int64_t n) {
    const cs_block_q6_K *b = (const cs_block_q6_K *)row;
    float acc = 0.0f;
    for (int64_t ib = 0; ib < n / CS_QK_K; ib++) {
        const int8_t *q = x->qs + ib * CS_QK_K;
        int32_t s = 0;
        for (int j = 0; j < 16; j++) {
            int32_t t = 0;
            for (int l = 0; l < 16; l++) t += (q6_K_value(&b[ib], 16 * j + l) - 32) * q[16 * j + l];
            s += b[ib].scales[j] * t;
        }
        acc += (cs_fp16_to_f32(cs_load_u16(&b[ib].d)) * x->d[ib]) * (float)s;
    }
    return acc;
}

#define CS_REF_DOT_ROWS(NAME, DOT, XT)                                                          \
    static void NAME(float *y, const uint8_t *w, size_t nb1, const int32_t *rows, int64_t nrows, \
                     const void *xa, int64_t n) {                                                \
        for (int64_t k = 0; k < nrows; k++)                                                      \
            y[rows[k]] = DOT(w + (size_t)rows[k] * nb1, (const XT *)xa, n);                      \
    }
CS_REF_DOT_ROWS(dot_rows_f32, dot_f32, float)
CS_REF_DOT_ROWS(dot_rows_f16, dot_f16, float)
CS_REF_DOT_ROWS(dot_rows_bf16, dot_bf16, float)
CS_REF_DOT_ROWS(dot_rows_q8_0, dot_q8_0, cs_q8x)
CS_REF_DOT_ROWS(dot_rows_q4_0, dot_q4_0, cs_q8x)
CS_REF_DOT_ROWS(dot_rows_q4_1, dot_q4_1, cs_q8x)
CS_REF_DOT_ROWS(dot_rows_q5_0, dot_q5_0, cs_q8g)
CS_REF_DOT_ROWS(dot_rows_q5_1, dot_q5_1, cs_q8g)
CS_REF_DOT_ROWS(dot_rows_q4_K, dot_q4_K, cs_q8g)
CS_REF_DOT_ROWS(dot_rows_q5_K, dot_q5_K, cs_q8g)
CS_REF_DOT_ROWS(dot_rows_q6_K, dot_q6_K, cs_q8g)

/* ---------------- activation quantizer (the spec for every ISA) ---------------- */

void cs_quant_x8_ref(const float *x, const cs_q8x *q, int64_t n) {
    for (int64_t ib = 0; ib < n / CS_QK; ib++) {
        const float *v = x + ib * CS_QK;
        float amax = 0.0f;
        for (int i = 0; i < CS_QK; i++) {
            const float a = fabsf(v[i]);
            amax = a > amax ? a : amax;
        }
        const float d = amax / 127.0f, id = cs_q8_inv_scale(amax);
        int32_t sum = 0;
        for (int i = 0; i < CS_QK; i++) {
            const int32_t qi = (int32_t)nearbyintf(v[i] * id);
            q->qs[ib * CS_QK + i] = (int8_t)qi;
            sum += qi;
        }
        q->d[ib] = cs_round_fp16(d);
        q->sum[ib] = sum;
        q->s[ib] = cs_round_fp16(d * (float)sum);
    }
}


/* Activations for Q5_0 / Q5_1 / K-quants, as ggml-cpu's from_float for Q8_0, Q8_1 (d =
 * amax/127 stored as fp16, q = x * id rounded to nearest even, id = 127/amax as its x86
 * code takes it, 1/d as its AArch64 code does: the two differ by an ulp, which moves a
 * value within an ulp of a .5 tie; Q8_1's s is fp16(d * sum q) with the unrounded d) and
 * Q8_K (quantize_row_q8_K_ref on every platform: the element of
 * largest magnitude, the first one on ties, maps to -127, iscale = -127/max, q = min(127,
 * round(iscale * x)) to nearest even, d = 1/iscale, bsums per 16). */

/* round to nearest even, clamped to int8 (|v| <= 2^22 here: v is at most 127 in magnitude
 * for finite activations): adding 1.5 * 2^23 leaves the rounded integer in the low mantissa
 * bits. Defined for any input (non-finite activations give garbage, not undefined behaviour),
 * and it vectorizes, unlike a libm nearbyintf call per element (this file has no ISA flags:
 * 14 -> 4 us for 4096 activations). */
static inline int32_t cs_round_i8(float v) {
    const int32_t r = (int32_t)(cs_f32_to_bits(v + 12582912.0f) & 0x007fffffu) - 0x00400000;
    return r > 127 ? 127 : r < -128 ? -128 : r;
}

void cs_quant_q8g_ref(int kind, const float *x, const cs_q8g *q, int64_t n) {
    if (kind == CS_ACT_Q8_K) {
        for (int64_t ib = 0; ib < n / CS_QK_K; ib++) {
            const float *v = x + ib * CS_QK_K;
            int8_t *qs = q->qs + ib * CS_QK_K;
            float amax = 0.0f, max = 0.0f;
            for (int i = 0; i < CS_QK_K; i++) {
                const float a = fabsf(v[i]);
                if (a > amax) { amax = a; max = v[i]; }
            }
            if (amax == 0.0f) {
                memset(qs, 0, CS_QK_K);
                q->d[ib] = 0.0f;
                for (int j = 0; j < CS_QK_K / 16; j++) q->bsums[ib * (CS_QK_K / 16) + j] = 0;
                continue;
            }
            const float iscale = -127.0f / max;
            for (int i = 0; i < CS_QK_K; i++) qs[i] = (int8_t)cs_round_i8(iscale * v[i]);
            for (int j = 0; j < CS_QK_K / 16; j++) {
                int32_t s = 0;
                for (int i = 0; i < 16; i++) s += qs[16 * j + i];
                q->bsums[ib * (CS_QK_K / 16) + j] = (int16_t)s;
            }
            q->d[ib] = 1.0f / iscale;
        }
        return;
    }
    for (int64_t ib = 0; ib < n / CS_QK; ib++) {
        const float *v = x + ib * CS_QK;
        float m8[8] = { 0.0f }; /* 8 running maxima (they vectorize; the maximum is exact in any order) */
        for (int i = 0; i < CS_QK; i += 8)
            for (int l = 0; l < 8; l++) m8[l] = fabsf(v[i + l]) > m8[l] ? fabsf(v[i + l]) : m8[l];
        float amax = 0.0f;
        for (int l = 0; l < 8; l++) amax = m8[l] > amax ? m8[l] : amax;
        const float d = amax / 127.0f, id = cs_q8_inv_scale(amax);
        int32_t sum = 0;
        for (int i = 0; i < CS_QK; i++) {
            const int8_t qi = (int8_t)cs_round_i8(v[i] * id);
            q->qs[ib * CS_QK + i] = qi;
            sum += qi;
        }
        q->d[ib] = cs_round_fp16(d);
        q->s[ib] = cs_round_fp16(d * (float)sum);
        q->bsums[ib] = (int16_t)sum;
    }
}

const cs_isa_table cs_table_ref = {
    .name = "ref",
    .k = {
        [CS_F32]  = { in_accum_f32, dot_rows_f32, to_float_f32 },
        [CS_F16]  = { in_accum_f16, dot_rows_f16, to_float_f16 },
        [CS_BF16] = { in_accum_bf16, dot_rows_bf16, to_float_bf16 },
        [CS_Q8_0] = { in_accum_q8_0, dot_rows_q8_0, to_float_q8_0 },
        [CS_Q4_0] = { in_accum_q4_0, dot_rows_q4_0, to_float_q4_0 },
        [CS_Q4_1] = { in_accum_q4_1, dot_rows_q4_1, to_float_q4_1 },
        [CS_Q5_0] = { NULL, dot_rows_q5_0, to_float_q5_0 },
        [CS_Q5_1] = { NULL, dot_rows_q5_1, to_float_q5_1 },
        [CS_Q4_K] = { NULL, dot_rows_q4_K, to_float_q4_K },
        [CS_Q5_K] = { NULL, dot_rows_q5_K, to_float_q5_K },
        [CS_Q6_K] = { NULL, dot_rows_q6_K, to_float_q6_K },
    },
    .quant_x8 = cs_quant_x8_ref,
    .gemm = NULL,
};
