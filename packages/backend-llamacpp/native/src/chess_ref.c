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
        acc += cs_fp16_to_f32(cs_load_u16(&b[ib].m)) * (x->d[ib] * (float)x->sum[ib]);
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

/* ---------------- activation quantizer (the spec for every ISA) ---------------- */

void cs_quant_x8_ref(const float *x, const cs_q8x *q, int64_t n) {
    for (int64_t ib = 0; ib < n / CS_QK; ib++) {
        const float *v = x + ib * CS_QK;
        float amax = 0.0f;
        for (int i = 0; i < CS_QK; i++) {
            const float a = fabsf(v[i]);
            amax = a > amax ? a : amax;
        }
        const float d = amax / 127.0f;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        int32_t sum = 0;
        for (int i = 0; i < CS_QK; i++) {
            const int32_t qi = (int32_t)nearbyintf(v[i] * id);
            q->qs[ib * CS_QK + i] = (int8_t)qi;
            sum += qi;
        }
        q->d[ib] = d;
        q->sum[ib] = sum;
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
    },
    .quant_x8 = cs_quant_x8_ref,
    .gemm = NULL,
};
