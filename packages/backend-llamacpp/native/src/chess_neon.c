/* AArch64 Advanced SIMD (NEON) kernels. ASIMD (with the fp16 <-> fp32 vector
 * conversions) is architectural on AArch64, so this file needs no target flags
 * and runs on any ARMv8.0-A CPU. With CHESS_NEON_DOTPROD (CMake option: this file
 * alone is compiled with -march=armv8.2-a+dotprod) the 8-bit dots use SDOT, and
 * the variant is then selected only on CPUs that report it (chess_dispatch.c).
 * The integer dot of a block is exact either way, so both builds give the same
 * results bit for bit. */
#if !defined(__aarch64__)
#error "chess_neon.c is for AArch64 only"
#endif
#include <arm_neon.h>
#include <math.h>

#include "chess_internal.h"

#if defined(CHESS_NEON_DOTPROD) && !defined(__ARM_FEATURE_DOTPROD)
#error "CHESS_NEON_DOTPROD needs chess_neon.c compiled with +dotprod (-march=armv8.2-a+dotprod)"
#endif

#define CS_PREFETCH(p) __builtin_prefetch((const void *)(p), 0, 3)

/* fp16 scalar through the hardware conversion (exact, like cs_fp16_to_f32). */
static inline float cs_h2f(const void *p) {
    return vgetq_lane_f32(vcvt_f32_f16(vreinterpret_f16_u16(vdup_n_u16(cs_load_u16(p)))), 0);
}

/* 4 weights of a float type -> float32x4 (unaligned loads through bytes). */
static inline float32x4_t cs_ld4_f32(const uint8_t *p) { return vreinterpretq_f32_u8(vld1q_u8(p)); }
static inline float32x4_t cs_ld4_f16(const uint8_t *p) { return vcvt_f32_f16(vreinterpret_f16_u8(vld1_u8(p))); }
static inline float32x4_t cs_ld4_bf16(const uint8_t *p) {
    return vreinterpretq_f32_u32(vshll_n_u16(vreinterpret_u16_u8(vld1_u8(p)), 16));
}
static inline float cs_sc_f32(const uint8_t *p) { float f; memcpy(&f, p, 4); return f; }
static inline float cs_sc_f16(const uint8_t *p) { return cs_h2f(p); }
static inline float cs_sc_bf16(const uint8_t *p) { return cs_bf16_to_f32(cs_load_u16(p)); }

/* The 32 weights of a block as signed bytes in element order (val[0]: 0..15,
 * val[1]: 16..31). Q4_0 gets q - 8 (in [-8, 7]), Q4_1 its nibbles (in [0, 15]). */
static inline int8x16x2_t cs_wb_q8_0(const cs_block_q8_0 *b) {
    int8x16x2_t r;
    r.val[0] = vld1q_s8(b->qs);
    r.val[1] = vld1q_s8(b->qs + 16);
    return r;
}
static inline int8x16x2_t cs_wb_q4_1(const cs_block_q4_1 *b) {
    const uint8x16_t v = vld1q_u8(b->qs);
    int8x16x2_t r;
    r.val[0] = vreinterpretq_s8_u8(vandq_u8(v, vdupq_n_u8(0x0f)));
    r.val[1] = vreinterpretq_s8_u8(vshrq_n_u8(v, 4));
    return r;
}
static inline int8x16x2_t cs_wb_q4_0(const cs_block_q4_0 *b) {
    const uint8x16_t v = vld1q_u8(b->qs);
    const int8x16_t eight = vdupq_n_s8(8);
    int8x16x2_t r;
    r.val[0] = vsubq_s8(vreinterpretq_s8_u8(vandq_u8(v, vdupq_n_u8(0x0f))), eight);
    r.val[1] = vsubq_s8(vreinterpretq_s8_u8(vshrq_n_u8(v, 4)), eight);
    return r;
}

/* 32 signed bytes -> 8 float vectors (element order). */
static inline void cs_block_to_ps(int8x16x2_t q, float32x4_t out[8]) {
    for (int h = 0; h < 2; h++) {
        const int16x8_t lo = vmovl_s8(vget_low_s8(q.val[h])), hi = vmovl_high_s8(q.val[h]);
        out[4 * h + 0] = vcvtq_f32_s32(vmovl_s16(vget_low_s16(lo)));
        out[4 * h + 1] = vcvtq_f32_s32(vmovl_high_s16(lo));
        out[4 * h + 2] = vcvtq_f32_s32(vmovl_s16(vget_low_s16(hi)));
        out[4 * h + 3] = vcvtq_f32_s32(vmovl_high_s16(hi));
    }
}

/* Exact 8-bit dot of one block (32 weights) with 32 quantized activations, as 4 int32 lanes. */
static inline int32x4_t cs_dot_block(int8x16x2_t w, const int8_t *xq) {
    const int8x16_t x0 = vld1q_s8(xq), x1 = vld1q_s8(xq + 16);
#if defined(CHESS_NEON_DOTPROD)
    return vdotq_s32(vdotq_s32(vdupq_n_s32(0), w.val[0], x0), w.val[1], x1);
#else
    /* |w| <= 128, |x| <= 127: each product fits int16; pairs are summed into int32 */
    int32x4_t s = vpaddlq_s16(vmull_s8(vget_low_s8(w.val[0]), vget_low_s8(x0)));
    s = vpadalq_s16(s, vmull_high_s8(w.val[0], x0));
    s = vpadalq_s16(s, vmull_s8(vget_low_s8(w.val[1]), vget_low_s8(x1)));
    s = vpadalq_s16(s, vmull_high_s8(w.val[1], x1));
    return s;
#endif
}

/* ---------------- to_float ---------------- */

static void to_float_f32(const uint8_t *src, float *dst, int64_t n) { memcpy(dst, src, (size_t)n * 4); }
static void to_float_f16(const uint8_t *src, float *dst, int64_t n) {
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        const float16x8_t h = vreinterpretq_f16_u8(vld1q_u8(src + 2 * i));
        vst1q_f32(dst + i, vcvt_f32_f16(vget_low_f16(h)));
        vst1q_f32(dst + i + 4, vcvt_high_f32_f16(h));
    }
    for (; i < n; i++) dst[i] = cs_h2f(src + 2 * i);
}
static void to_float_bf16(const uint8_t *src, float *dst, int64_t n) {
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        const uint16x8_t v = vreinterpretq_u16_u8(vld1q_u8(src + 2 * i));
        vst1q_f32(dst + i, vreinterpretq_f32_u32(vshll_n_u16(vget_low_u16(v), 16)));
        vst1q_f32(dst + i + 4, vreinterpretq_f32_u32(vshll_high_n_u16(v, 16)));
    }
    for (; i < n; i++) dst[i] = cs_bf16_to_f32(cs_load_u16(src + 2 * i));
}
static void to_float_q8_0(const uint8_t *src, float *dst, int64_t n) {
    const cs_block_q8_0 *b = (const cs_block_q8_0 *)src;
    for (int64_t ib = 0; ib < n / CS_QK; ib++) {
        const float d = cs_h2f(&b[ib].d);
        float32x4_t v[8];
        cs_block_to_ps(cs_wb_q8_0(&b[ib]), v);
        for (int i = 0; i < 8; i++) vst1q_f32(dst + ib * CS_QK + 4 * i, vmulq_n_f32(v[i], d));
    }
}
static void to_float_q4_0(const uint8_t *src, float *dst, int64_t n) {
    const cs_block_q4_0 *b = (const cs_block_q4_0 *)src;
    for (int64_t ib = 0; ib < n / CS_QK; ib++) {
        const float d = cs_h2f(&b[ib].d);
        float32x4_t v[8];
        cs_block_to_ps(cs_wb_q4_0(&b[ib]), v);
        for (int i = 0; i < 8; i++) vst1q_f32(dst + ib * CS_QK + 4 * i, vmulq_n_f32(v[i], d));
    }
}
static void to_float_q4_1(const uint8_t *src, float *dst, int64_t n) {
    const cs_block_q4_1 *b = (const cs_block_q4_1 *)src;
    for (int64_t ib = 0; ib < n / CS_QK; ib++) {
        const float d = cs_h2f(&b[ib].d);
        const float32x4_t m = vdupq_n_f32(cs_h2f(&b[ib].m));
        float32x4_t v[8];
        cs_block_to_ps(cs_wb_q4_1(&b[ib]), v);
        for (int i = 0; i < 8; i++) vst1q_f32(dst + ib * CS_QK + 4 * i, vfmaq_n_f32(m, v[i], d));
    }
}

/* ---------------- input-sparse accumulation ----------------
 * Two active rows per pass over y. Per block: weights as integers -> float, FMA
 * with the block scale x_j*d_jb (Q4_0's -8 is applied on the integers); Q4_1's
 * constant term x_j*m_jb is summed per block and added once at the end. */

#define CS_MAXB (CS_IN_CHUNK / CS_QK)

#define CS_IN_ACCUM_BLOCKS(NAME, BLOCK_T, WBYTES, HAS_BIAS, BIAS)                                    \
    static void NAME(float *y, int64_t n, const uint8_t *w, size_t nb1, const int32_t *idx,          \
                     const float *xv, int64_t nact) {                                                \
        const int64_t nb = n / CS_QK;                                                                \
        const size_t S = sizeof(BLOCK_T);                                                            \
        float bias[CS_MAXB];                                                                         \
        memset(y, 0, (size_t)n * sizeof(float));                                                     \
        if (HAS_BIAS) memset(bias, 0, sizeof(float) * (size_t)nb);                                   \
        int64_t k = 0;                                                                               \
        for (; k + 2 <= nact; k += 2) {                                                              \
            const uint8_t *r0 = w + (size_t)idx[k] * nb1, *r1 = w + (size_t)idx[k + 1] * nb1;        \
            const uint8_t *p0 = k + 4 <= nact ? w + (size_t)idx[k + 2] * nb1 : r0;                   \
            const uint8_t *p1 = k + 4 <= nact ? w + (size_t)idx[k + 3] * nb1 : r1;                   \
            const float x0 = xv[k], x1 = xv[k + 1];                                                  \
            for (int64_t b = 0; b < nb; b++) {                                                       \
                const BLOCK_T *b0 = (const BLOCK_T *)(r0 + b * S), *b1 = (const BLOCK_T *)(r1 + b * S); \
                CS_PREFETCH(p0 + b * S + 256);                                                       \
                CS_PREFETCH(p1 + b * S + 256);                                                       \
                const float s0 = x0 * cs_h2f(&b0->d), s1 = x1 * cs_h2f(&b1->d);                      \
                if (HAS_BIAS) bias[b] += BIAS(b0, x0) + BIAS(b1, x1);                                \
                float32x4_t v0[8], v1[8];                                                            \
                cs_block_to_ps(WBYTES(b0), v0);                                                      \
                cs_block_to_ps(WBYTES(b1), v1);                                                      \
                for (int i = 0; i < 8; i++) {                                                        \
                    float32x4_t a = vld1q_f32(y + b * CS_QK + 4 * i);                                \
                    a = vfmaq_n_f32(a, v0[i], s0);                                                   \
                    a = vfmaq_n_f32(a, v1[i], s1);                                                   \
                    vst1q_f32(y + b * CS_QK + 4 * i, a);                                             \
                }                                                                                    \
            }                                                                                        \
        }                                                                                            \
        for (; k < nact; k++) {                                                                      \
            const uint8_t *r0 = w + (size_t)idx[k] * nb1;                                            \
            const float x0 = xv[k];                                                                  \
            for (int64_t b = 0; b < nb; b++) {                                                       \
                const BLOCK_T *b0 = (const BLOCK_T *)(r0 + b * S);                                   \
                const float s0 = x0 * cs_h2f(&b0->d);                                                \
                if (HAS_BIAS) bias[b] += BIAS(b0, x0);                                               \
                float32x4_t v0[8];                                                                   \
                cs_block_to_ps(WBYTES(b0), v0);                                                      \
                for (int i = 0; i < 8; i++)                                                          \
                    vst1q_f32(y + b * CS_QK + 4 * i, vfmaq_n_f32(vld1q_f32(y + b * CS_QK + 4 * i), v0[i], s0)); \
            }                                                                                        \
        }                                                                                            \
        for (int64_t b = 0; HAS_BIAS && b < nb && nact > 0; b++) {                                   \
            const float32x4_t c = vdupq_n_f32(bias[b]);                                              \
            for (int i = 0; i < 8; i++)                                                              \
                vst1q_f32(y + b * CS_QK + 4 * i, vaddq_f32(vld1q_f32(y + b * CS_QK + 4 * i), c));    \
        }                                                                                            \
    }

#define CS_BIAS_Q4_1(blk, x) ((x) * cs_h2f(&(blk)->m))
#define CS_BIAS_NONE(blk, x) 0.0f

CS_IN_ACCUM_BLOCKS(in_accum_q4_0, cs_block_q4_0, cs_wb_q4_0, 0, CS_BIAS_NONE)
CS_IN_ACCUM_BLOCKS(in_accum_q4_1, cs_block_q4_1, cs_wb_q4_1, 1, CS_BIAS_Q4_1)
CS_IN_ACCUM_BLOCKS(in_accum_q8_0, cs_block_q8_0, cs_wb_q8_0, 0, CS_BIAS_NONE)

/* Float types: 8 elements (two vectors) per step, then 4, then scalar fmaf in the
 * same per-element order (row k, then row k+1). */
#define CS_IN_ACCUM_FLOAT(NAME, ESZ, LD, SCALAR)                                                    \
    static void NAME(float *y, int64_t n, const uint8_t *w, size_t nb1, const int32_t *idx,         \
                     const float *xv, int64_t nact) {                                               \
        memset(y, 0, (size_t)n * sizeof(float));                                                    \
        int64_t k = 0;                                                                              \
        for (; k + 2 <= nact; k += 2) {                                                             \
            const uint8_t *r0 = w + (size_t)idx[k] * nb1, *r1 = w + (size_t)idx[k + 1] * nb1;       \
            const uint8_t *p0 = k + 4 <= nact ? w + (size_t)idx[k + 2] * nb1 : r0;                  \
            const uint8_t *p1 = k + 4 <= nact ? w + (size_t)idx[k + 3] * nb1 : r1;                  \
            const float x0 = xv[k], x1 = xv[k + 1];                                                 \
            int64_t i = 0;                                                                          \
            for (; i + 8 <= n; i += 8) {                                                            \
                CS_PREFETCH(p0 + i * (ESZ) + 512);                                                  \
                CS_PREFETCH(p1 + i * (ESZ) + 512);                                                  \
                float32x4_t a0 = vld1q_f32(y + i), a1 = vld1q_f32(y + i + 4);                       \
                a0 = vfmaq_n_f32(a0, LD(r0 + i * (ESZ)), x0);                                       \
                a1 = vfmaq_n_f32(a1, LD(r0 + (i + 4) * (ESZ)), x0);                                 \
                a0 = vfmaq_n_f32(a0, LD(r1 + i * (ESZ)), x1);                                       \
                a1 = vfmaq_n_f32(a1, LD(r1 + (i + 4) * (ESZ)), x1);                                 \
                vst1q_f32(y + i, a0);                                                               \
                vst1q_f32(y + i + 4, a1);                                                           \
            }                                                                                       \
            for (; i + 4 <= n; i += 4) {                                                            \
                float32x4_t a = vfmaq_n_f32(vld1q_f32(y + i), LD(r0 + i * (ESZ)), x0);              \
                vst1q_f32(y + i, vfmaq_n_f32(a, LD(r1 + i * (ESZ)), x1));                           \
            }                                                                                       \
            for (; i < n; i++) y[i] = fmaf(SCALAR(r1 + i * (ESZ)), x1, fmaf(SCALAR(r0 + i * (ESZ)), x0, y[i])); \
        }                                                                                           \
        for (; k < nact; k++) {                                                                     \
            const uint8_t *r0 = w + (size_t)idx[k] * nb1;                                           \
            const float x0 = xv[k];                                                                 \
            int64_t i = 0;                                                                          \
            for (; i + 4 <= n; i += 4) vst1q_f32(y + i, vfmaq_n_f32(vld1q_f32(y + i), LD(r0 + i * (ESZ)), x0)); \
            for (; i < n; i++) y[i] = fmaf(SCALAR(r0 + i * (ESZ)), x0, y[i]);                       \
        }                                                                                           \
    }

CS_IN_ACCUM_FLOAT(in_accum_f32, 4, cs_ld4_f32, cs_sc_f32)
CS_IN_ACCUM_FLOAT(in_accum_f16, 2, cs_ld4_f16, cs_sc_f16)
CS_IN_ACCUM_FLOAT(in_accum_bf16, 2, cs_ld4_bf16, cs_sc_bf16)

/* ---------------- dot products ----------------
 * Block types: exact int32 dot per block (SMULL + SADALP, or SDOT), converted
 * and FMA'd with the block scale d_w*d_x into two alternating float accumulators.
 * Q4_0: the -8 offset is applied on the weight bytes; Q4_1 adds m_w*(d_x*sum q_x)
 * per block into a scalar correction, like the AVX2 variant. */

static float dot_q4_0(const uint8_t *row, const cs_q8x *x, int64_t n) {
    const cs_block_q4_0 *b = (const cs_block_q4_0 *)row;
    float32x4_t acc0 = vdupq_n_f32(0.0f), acc1 = vdupq_n_f32(0.0f);
    int64_t ib = 0;
    const int64_t nb = n / CS_QK;
    for (; ib + 2 <= nb; ib += 2) {
        const float s0 = cs_h2f(&b[ib].d) * x->d[ib], s1 = cs_h2f(&b[ib + 1].d) * x->d[ib + 1];
        const int32x4_t d0 = cs_dot_block(cs_wb_q4_0(&b[ib]), x->qs + ib * CS_QK);
        const int32x4_t d1 = cs_dot_block(cs_wb_q4_0(&b[ib + 1]), x->qs + (ib + 1) * CS_QK);
        acc0 = vfmaq_n_f32(acc0, vcvtq_f32_s32(d0), s0);
        acc1 = vfmaq_n_f32(acc1, vcvtq_f32_s32(d1), s1);
    }
    for (; ib < nb; ib++) {
        const float s0 = cs_h2f(&b[ib].d) * x->d[ib];
        acc0 = vfmaq_n_f32(acc0, vcvtq_f32_s32(cs_dot_block(cs_wb_q4_0(&b[ib]), x->qs + ib * CS_QK)), s0);
    }
    return vaddvq_f32(vaddq_f32(acc0, acc1));
}

static float dot_q4_1(const uint8_t *row, const cs_q8x *x, int64_t n) {
    const cs_block_q4_1 *b = (const cs_block_q4_1 *)row;
    float32x4_t acc0 = vdupq_n_f32(0.0f), acc1 = vdupq_n_f32(0.0f);
    float corr = 0.0f;
    int64_t ib = 0;
    const int64_t nb = n / CS_QK;
    for (; ib + 2 <= nb; ib += 2) {
        const float s0 = cs_h2f(&b[ib].d) * x->d[ib], s1 = cs_h2f(&b[ib + 1].d) * x->d[ib + 1];
        corr += cs_h2f(&b[ib].m) * (x->d[ib] * (float)x->sum[ib]) + cs_h2f(&b[ib + 1].m) * (x->d[ib + 1] * (float)x->sum[ib + 1]);
        const int32x4_t d0 = cs_dot_block(cs_wb_q4_1(&b[ib]), x->qs + ib * CS_QK);
        const int32x4_t d1 = cs_dot_block(cs_wb_q4_1(&b[ib + 1]), x->qs + (ib + 1) * CS_QK);
        acc0 = vfmaq_n_f32(acc0, vcvtq_f32_s32(d0), s0);
        acc1 = vfmaq_n_f32(acc1, vcvtq_f32_s32(d1), s1);
    }
    for (; ib < nb; ib++) {
        const float s0 = cs_h2f(&b[ib].d) * x->d[ib];
        corr += cs_h2f(&b[ib].m) * (x->d[ib] * (float)x->sum[ib]);
        acc0 = vfmaq_n_f32(acc0, vcvtq_f32_s32(cs_dot_block(cs_wb_q4_1(&b[ib]), x->qs + ib * CS_QK)), s0);
    }
    return vaddvq_f32(vaddq_f32(acc0, acc1)) + corr;
}

static float dot_q8_0(const uint8_t *row, const cs_q8x *x, int64_t n) {
    const cs_block_q8_0 *b = (const cs_block_q8_0 *)row;
    float32x4_t acc0 = vdupq_n_f32(0.0f), acc1 = vdupq_n_f32(0.0f);
    const int64_t nb = n / CS_QK;
    for (int64_t ib = 0; ib < nb; ib++) {
        const float32x4_t d = vcvtq_f32_s32(cs_dot_block(cs_wb_q8_0(&b[ib]), x->qs + ib * CS_QK));
        const float s = cs_h2f(&b[ib].d) * x->d[ib];
        if (ib & 1) acc1 = vfmaq_n_f32(acc1, d, s);
        else acc0 = vfmaq_n_f32(acc0, d, s);
    }
    return vaddvq_f32(vaddq_f32(acc0, acc1));
}

#define CS_DOT_FLOAT(NAME, ESZ, LD, SCALAR)                                                         \
    static float NAME(const uint8_t *row, const float *x, int64_t n) {                              \
        float32x4_t a0 = vdupq_n_f32(0.0f), a1 = vdupq_n_f32(0.0f), a2 = vdupq_n_f32(0.0f),          \
                    a3 = vdupq_n_f32(0.0f);                                                         \
        int64_t i = 0;                                                                              \
        for (; i + 16 <= n; i += 16) {                                                              \
            a0 = vfmaq_f32(a0, LD(row + (i + 0) * (ESZ)), vld1q_f32(x + i + 0));                    \
            a1 = vfmaq_f32(a1, LD(row + (i + 4) * (ESZ)), vld1q_f32(x + i + 4));                    \
            a2 = vfmaq_f32(a2, LD(row + (i + 8) * (ESZ)), vld1q_f32(x + i + 8));                    \
            a3 = vfmaq_f32(a3, LD(row + (i + 12) * (ESZ)), vld1q_f32(x + i + 12));                  \
        }                                                                                           \
        for (; i + 4 <= n; i += 4) a0 = vfmaq_f32(a0, LD(row + i * (ESZ)), vld1q_f32(x + i));       \
        float r = vaddvq_f32(vaddq_f32(vaddq_f32(a0, a1), vaddq_f32(a2, a3)));                       \
        for (; i < n; i++) r += SCALAR(row + i * (ESZ)) * x[i];                                     \
        return r;                                                                                   \
    }
CS_DOT_FLOAT(dot_f32, 4, cs_ld4_f32, cs_sc_f32)
CS_DOT_FLOAT(dot_f16, 2, cs_ld4_f16, cs_sc_f16)
CS_DOT_FLOAT(dot_bf16, 2, cs_ld4_bf16, cs_sc_bf16)

#define CS_DOT_ROWS(NAME, DOT, XT)                                                                  \
    static void NAME(float *y, const uint8_t *w, size_t nb1, const int32_t *rows, int64_t nrows,   \
                     const void *xa, int64_t n) {                                                   \
        for (int64_t k = 0; k < nrows; k++) {                                                       \
            if (k + 1 < nrows) {                                                                    \
                const char *nx = (const char *)w + (size_t)rows[k + 1] * nb1;                       \
                CS_PREFETCH(nx);                                                                    \
                CS_PREFETCH(nx + 64);                                                               \
                CS_PREFETCH(nx + 128);                                                              \
                CS_PREFETCH(nx + 192);                                                              \
            }                                                                                       \
            y[rows[k]] = DOT(w + (size_t)rows[k] * nb1, (const XT *)xa, n);                         \
        }                                                                                           \
    }
CS_DOT_ROWS(dot_rows_f32, dot_f32, float)
CS_DOT_ROWS(dot_rows_f16, dot_f16, float)
CS_DOT_ROWS(dot_rows_bf16, dot_bf16, float)
CS_DOT_ROWS(dot_rows_q8_0, dot_q8_0, cs_q8x)
CS_DOT_ROWS(dot_rows_q4_0, dot_q4_0, cs_q8x)
CS_DOT_ROWS(dot_rows_q4_1, dot_q4_1, cs_q8x)

/* ---------------- activation quantizer (same arithmetic as cs_quant_x8_ref) ----------------
 * amax: FMAXNM ignores a NaN operand like the reference's `a > amax ? a : amax`;
 * d and 1/d are the same scalar float operations; x*id is one float multiply and
 * FCVTNS rounds to nearest, ties to even (= nearbyintf in the default mode). */

static void quant_x8(const float *x, const cs_q8x *q, int64_t n) {
    for (int64_t ib = 0; ib < n / CS_QK; ib++) {
        float32x4_t v[8];
        float32x4_t am = vdupq_n_f32(0.0f);
        for (int i = 0; i < 8; i++) {
            v[i] = vld1q_f32(x + ib * CS_QK + 4 * i);
            am = vmaxnmq_f32(am, vabsq_f32(v[i]));
        }
        const float amax = vmaxnmvq_f32(am);
        const float d = amax / 127.0f;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        int32x4_t iv[8];
        for (int i = 0; i < 8; i++) iv[i] = vcvtnq_s32_f32(vmulq_n_f32(v[i], id));
        int32x4_t s = vaddq_s32(vaddq_s32(vaddq_s32(iv[0], iv[1]), vaddq_s32(iv[2], iv[3])),
                                vaddq_s32(vaddq_s32(iv[4], iv[5]), vaddq_s32(iv[6], iv[7])));
        for (int h = 0; h < 2; h++) {
            const int16x8_t lo = vcombine_s16(vmovn_s32(iv[4 * h + 0]), vmovn_s32(iv[4 * h + 1]));
            const int16x8_t hi = vcombine_s16(vmovn_s32(iv[4 * h + 2]), vmovn_s32(iv[4 * h + 3]));
            vst1q_s8(q->qs + ib * CS_QK + 16 * h, vcombine_s8(vmovn_s16(lo), vmovn_s16(hi)));
        }
        q->d[ib] = d;
        q->sum[ib] = vaddvq_s32(s);
    }
}

/* ---------------- prefill micro-kernel: 4 tokens x 16 columns in 16 registers ---------------- */

static void gemm(float *Y, size_t ldy, const float *A, size_t lda, const float *P, size_t ldp, int64_t nt,
                 int64_t kc, int64_t n) {
    for (int64_t t = 0; t < nt; t += 4) {
        const int tn = nt - t < 4 ? (int)(nt - t) : 4;
        int64_t c = 0;
        for (; c + 16 <= n; c += 16) {
            float32x4_t acc[4][4];
            for (int i = 0; i < 4; i++)
                for (int j = 0; j < 4; j++)
                    acc[i][j] = i < tn ? vld1q_f32(Y + (size_t)(t + i) * ldy + c + 4 * j) : vdupq_n_f32(0.0f);
            const float *pk = P + c;
            for (int64_t k = 0; k < kc; k++, pk += ldp) {
                const float32x4_t p0 = vld1q_f32(pk), p1 = vld1q_f32(pk + 4), p2 = vld1q_f32(pk + 8),
                                  p3 = vld1q_f32(pk + 12);
                for (int i = 0; i < 4; i++) {
                    const float a = i < tn ? A[(size_t)(t + i) * lda + k] : 0.0f;
                    acc[i][0] = vfmaq_n_f32(acc[i][0], p0, a);
                    acc[i][1] = vfmaq_n_f32(acc[i][1], p1, a);
                    acc[i][2] = vfmaq_n_f32(acc[i][2], p2, a);
                    acc[i][3] = vfmaq_n_f32(acc[i][3], p3, a);
                }
            }
            for (int i = 0; i < tn; i++)
                for (int j = 0; j < 4; j++) vst1q_f32(Y + (size_t)(t + i) * ldy + c + 4 * j, acc[i][j]);
        }
        for (; c < n; c++)
            for (int i = 0; i < tn; i++) {
                float s = Y[(size_t)(t + i) * ldy + c];
                for (int64_t k = 0; k < kc; k++) s = fmaf(A[(size_t)(t + i) * lda + k], P[(size_t)k * ldp + c], s);
                Y[(size_t)(t + i) * ldy + c] = s;
            }
    }
}

const cs_isa_table cs_table_neon = {
    .name = "neon",
    .k = {
        [CS_F32]  = { in_accum_f32, dot_rows_f32, to_float_f32 },
        [CS_F16]  = { in_accum_f16, dot_rows_f16, to_float_f16 },
        [CS_BF16] = { in_accum_bf16, dot_rows_bf16, to_float_bf16 },
        [CS_Q8_0] = { in_accum_q8_0, dot_rows_q8_0, to_float_q8_0 },
        [CS_Q4_0] = { in_accum_q4_0, dot_rows_q4_0, to_float_q4_0 },
        [CS_Q4_1] = { in_accum_q4_1, dot_rows_q4_1, to_float_q4_1 },
    },
    .quant_x8 = quant_x8,
    .gemm = gemm,
};
