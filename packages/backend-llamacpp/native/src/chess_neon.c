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

/* Exact 8-bit dot of one block (32 weights) with 32 quantized activations (x0: 0..15,
 * x1: 16..31), as 4 int32 lanes. */
static inline int32x4_t cs_dot_block(int8x16x2_t w, int8x16_t x0, int8x16_t x1) {
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

/* ---------------- input-sparse accumulation: block types ----------------
 * The 16-bit integer arithmetic of the x86 kernels (chess_avx512.c), bit for bit:
 * active rows in groups of CS_IG = 16 (in the order of the active list); per
 * (group, block b) the coefficients c_j = x_j * d_jb are scaled to int16,
 * a_j = round_even(c_j * (32767 / max_j |c_j|)), the weights (Q4: nibbles 0..15,
 * Q8_0: int8) are multiplied by them in exact int32 sums (SMLAL by lane), and each
 * group's sums are scaled back once: y += float(sum) * (max_j |c_j| / 32767), fused.
 * The offsets (Q4_0: -8 c_j, Q4_1: x_j m_jb) accumulate in float per block, fused,
 * in row order, and are added after the last group. Against converting every weight
 * to float (the previous NEON kernel): per row and block about 20 instructions (load,
 * nibble split, 4 widenings, 8 SMLAL, the row pointer) + about 4 for the group's
 * coefficients, instead of about 75 (GCC 12 -O2; the float version spilled its
 * converted vectors to the stack); not timed (no ARM hardware here). */

#define CS_MAXB (CS_IN_CHUNK / CS_QK)

/* fp16 words at p + S*k for k < cnt (<= 4), as floats; the other lanes 0. */
static inline float32x4_t cs_h4(const uint8_t *p, size_t S, int64_t cnt) {
    uint16x4_t h = vdup_n_u16(0);
    h = vld1_lane_u16((const uint16_t *)(const void *)p, h, 0);
    if (cnt > 1) h = vld1_lane_u16((const uint16_t *)(const void *)(p + S), h, 1);
    if (cnt > 2) h = vld1_lane_u16((const uint16_t *)(const void *)(p + 2 * S), h, 2);
    if (cnt > 3) h = vld1_lane_u16((const uint16_t *)(const void *)(p + 3 * S), h, 3);
    return vcvt_f32_f16(vreinterpret_f16_u16(h));
}

/* Coefficients of a group, 4 blocks at a time: cf[b][j] (row j's int16 coefficient of
 * block b), sb[b] (the group's scale back), mb[b] (offset terms, accumulated). */
static inline void cs_prep_group(int kind, const uint8_t *const *r, const float *xv, int64_t g, int64_t nb, size_t S,
                                 int16_t (*cf)[CS_IG], float *sb, float *mb) {
    for (int64_t b = 0; b < nb; b += 4) {
        const int64_t cnt = nb - b < 4 ? nb - b : 4;
        float32x4_t sv[CS_IG];
        float32x4_t amax = vdupq_n_f32(0.0f), macc = vld1q_f32(mb + b);
        for (int64_t j = 0; j < CS_IG; j++) {
            if (j < g) {
                const uint8_t *q = r[j] + (size_t)b * S;
                sv[j] = vmulq_n_f32(cs_h4(q, S, cnt), xv[j]);
                if (kind == 1) macc = vfmaq_n_f32(macc, cs_h4(q + 2, S, cnt), xv[j]); /* + x_j m_jb */
                else if (kind == 0) macc = vfmaq_n_f32(macc, sv[j], -8.0f);
                amax = vmaxq_f32(amax, vabsq_f32(sv[j]));
            } else {
                sv[j] = vdupq_n_f32(0.0f);
            }
        }
        vst1q_f32(mb + b, macc);
        const uint32x4_t nz = vcgtq_f32(amax, vdupq_n_f32(0.0f));
        const float32x4_t inv = vreinterpretq_f32_u32(vandq_u32(nz, vreinterpretq_u32_f32(vdivq_f32(vdupq_n_f32(32767.0f), amax))));
        vst1q_f32(sb + b, vmulq_n_f32(amax, 1.0f / 32767.0f));
        for (int64_t j = 0; j < CS_IG; j++) {
            const int16x4_t a = vmovn_s32(vcvtnq_s32_f32(vmulq_f32(sv[j], inv)));
            cf[b][j] = vget_lane_s16(a, 0);
            cf[b + 1][j] = vget_lane_s16(a, 1);
            cf[b + 2][j] = vget_lane_s16(a, 2);
            cf[b + 3][j] = vget_lane_s16(a, 3);
        }
    }
}

/* Row R of the group into the 8 accumulators (columns 4i..4i+3 in acc[i]), coefficient
 * lane L of CV (SMLAL by element) or the scalar C (SMLAL by a duplicated scalar). */
#define CS_W16_Q4(R)                                                                                \
    const uint8x16_t v_ = vld1q_u8((R) + o + QS);                                                   \
    const uint8x16_t lo_ = vandq_u8(v_, vdupq_n_u8(0x0f)), hi_ = vshrq_n_u8(v_, 4);                 \
    const int16x8_t w0_ = vreinterpretq_s16_u16(vmovl_u8(vget_low_u8(lo_)));                        \
    const int16x8_t w1_ = vreinterpretq_s16_u16(vmovl_high_u8(lo_));                                \
    const int16x8_t w2_ = vreinterpretq_s16_u16(vmovl_u8(vget_low_u8(hi_)));                        \
    const int16x8_t w3_ = vreinterpretq_s16_u16(vmovl_high_u8(hi_));
#define CS_W16_Q8(R)                                                                                \
    const int8x16_t v0_ = vld1q_s8((const int8_t *)((R) + o + QS)), v1_ = vld1q_s8((const int8_t *)((R) + o + QS + 16)); \
    const int16x8_t w0_ = vmovl_s8(vget_low_s8(v0_)), w1_ = vmovl_high_s8(v0_);                    \
    const int16x8_t w2_ = vmovl_s8(vget_low_s8(v1_)), w3_ = vmovl_high_s8(v1_);
#define CS_ROW_LANE(W16, R, CV, L)                                                                  \
    {                                                                                               \
        W16(R)                                                                                      \
        acc[0] = vmlal_laneq_s16(acc[0], vget_low_s16(w0_), CV, L); acc[1] = vmlal_high_laneq_s16(acc[1], w0_, CV, L); \
        acc[2] = vmlal_laneq_s16(acc[2], vget_low_s16(w1_), CV, L); acc[3] = vmlal_high_laneq_s16(acc[3], w1_, CV, L); \
        acc[4] = vmlal_laneq_s16(acc[4], vget_low_s16(w2_), CV, L); acc[5] = vmlal_high_laneq_s16(acc[5], w2_, CV, L); \
        acc[6] = vmlal_laneq_s16(acc[6], vget_low_s16(w3_), CV, L); acc[7] = vmlal_high_laneq_s16(acc[7], w3_, CV, L); \
    }
#define CS_ROW_SCALAR(W16, R, C)                                                                    \
    {                                                                                               \
        W16(R)                                                                                      \
        const int16x8_t c_ = vdupq_n_s16(C);                                                        \
        acc[0] = vmlal_s16(acc[0], vget_low_s16(w0_), vget_low_s16(c_)); acc[1] = vmlal_high_s16(acc[1], w0_, c_); \
        acc[2] = vmlal_s16(acc[2], vget_low_s16(w1_), vget_low_s16(c_)); acc[3] = vmlal_high_s16(acc[3], w1_, c_); \
        acc[4] = vmlal_s16(acc[4], vget_low_s16(w2_), vget_low_s16(c_)); acc[5] = vmlal_high_s16(acc[5], w2_, c_); \
        acc[6] = vmlal_s16(acc[6], vget_low_s16(w3_), vget_low_s16(c_)); acc[7] = vmlal_high_s16(acc[7], w3_, c_); \
    }

/* KIND: 0 Q4_0, 1 Q4_1, 2 Q8_0 */
#define CS_IN_ACCUM_INT(NAME, KIND, BLOCK_T, QS_OFF, W16)                                           \
    static void NAME(float *y, int64_t n, const uint8_t *w, size_t nb1, const int32_t *idx,          \
                     const float *xv, int64_t nact) {                                                \
        enum { QS = QS_OFF };                                                                        \
        const int64_t nb = n / CS_QK;                                                                \
        const size_t S = sizeof(BLOCK_T);                                                            \
        int16_t cf[CS_MAXB + 3][CS_IG] __attribute__((aligned(16)));                                 \
        float sb[CS_MAXB + 3] __attribute__((aligned(16))), mb[CS_MAXB + 3] __attribute__((aligned(16))); \
        const uint8_t *r[CS_IG], *p[CS_IG];                                                          \
        memset(y, 0, (size_t)n * sizeof(float));                                                     \
        memset(mb, 0, sizeof(mb));                                                                   \
        cs_ig_prefetch_first(w, nb1, idx, nact, (size_t)nb * S);                                     \
        for (int64_t k = 0; k < nact; k += CS_IG) {                                                  \
            const int64_t g = cs_ig_rows(w, nb1, idx, nact, k, r, p);                                \
            cs_prep_group(KIND, r, xv + k, g, nb, S, cf, sb, mb);                                    \
            for (int64_t b = 0; b < nb; b++) {                                                       \
                const size_t o = (size_t)b * S;                                                      \
                /* the next group's rows into L2, one prefetch per 64-byte line (every third     \
                 * block of 18-20 bytes, every block of 34) */                                       \
                if (S >= 32 || b % 3 == 0)                                                           \
                    for (int64_t j = 0; j < CS_IG; j++) cs_prefetch(p[j] + o);                       \
                int32x4_t acc[8];                                                                    \
                for (int i = 0; i < 8; i++) acc[i] = vdupq_n_s32(0);                                 \
                if (g == CS_IG) {                                                                    \
                    const int16x8_t ca = vld1q_s16(cf[b]), cb = vld1q_s16(cf[b] + 8);                \
                    CS_ROW_LANE(W16, r[0], ca, 0) CS_ROW_LANE(W16, r[1], ca, 1)                      \
                    CS_ROW_LANE(W16, r[2], ca, 2) CS_ROW_LANE(W16, r[3], ca, 3)                      \
                    CS_ROW_LANE(W16, r[4], ca, 4) CS_ROW_LANE(W16, r[5], ca, 5)                      \
                    CS_ROW_LANE(W16, r[6], ca, 6) CS_ROW_LANE(W16, r[7], ca, 7)                      \
                    CS_ROW_LANE(W16, r[8], cb, 0) CS_ROW_LANE(W16, r[9], cb, 1)                      \
                    CS_ROW_LANE(W16, r[10], cb, 2) CS_ROW_LANE(W16, r[11], cb, 3)                    \
                    CS_ROW_LANE(W16, r[12], cb, 4) CS_ROW_LANE(W16, r[13], cb, 5)                    \
                    CS_ROW_LANE(W16, r[14], cb, 6) CS_ROW_LANE(W16, r[15], cb, 7)                    \
                } else {                                                                             \
                    for (int64_t j = 0; j < g; j++) CS_ROW_SCALAR(W16, r[j], cf[b][j])               \
                }                                                                                    \
                float *yb = y + b * CS_QK;                                                           \
                for (int i = 0; i < 8; i++)                                                          \
                    vst1q_f32(yb + 4 * i, vfmaq_n_f32(vld1q_f32(yb + 4 * i), vcvtq_f32_s32(acc[i]), sb[b])); \
            }                                                                                        \
        }                                                                                            \
        for (int64_t b = 0; (KIND) != 2 && b < nb && nact > 0; b++) {                                \
            const float32x4_t c = vdupq_n_f32(mb[b]);                                                \
            for (int i = 0; i < 8; i++)                                                              \
                vst1q_f32(y + b * CS_QK + 4 * i, vaddq_f32(vld1q_f32(y + b * CS_QK + 4 * i), c));    \
        }                                                                                            \
    }

CS_IN_ACCUM_INT(in_accum_q4_0, 0, cs_block_q4_0, 2, CS_W16_Q4)
CS_IN_ACCUM_INT(in_accum_q4_1, 1, cs_block_q4_1, 4, CS_W16_Q4)
CS_IN_ACCUM_INT(in_accum_q8_0, 2, cs_block_q8_0, 2, CS_W16_Q8)

/* Float types: two active rows per pass over y. */
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
 * Block types: 4 active rows at a time, block by block (CS_ROWS4_* in chess_internal.h,
 * as on x86: the rows are scattered, four streams keep the memory system busy where
 * one row at a time left it idle between rows; rows CS_PF_ROWS ahead are prefetched
 * into L2), each activation block loaded once for the four. Per row and block an exact
 * int32 dot (SMULL + SADALP, or SDOT), converted and FMA'd with d_w*d_x. Q4_0: the -8
 * offset is applied on the weight bytes; Q4_1 adds m_w*(d_x*sum q_x) per block into a
 * scalar correction. */
#define CS_DOT4_ROW_NEON(R, A, M, BLOCK_T, WB, HAS_MIN)                                             \
    {                                                                                               \
        const BLOCK_T *blk_ = (const BLOCK_T *)(const void *)((R) + o);                             \
        A = vfmaq_n_f32(A, vcvtq_f32_s32(cs_dot_block(WB(blk_), x0, x1)), cs_h2f(&blk_->d) * xd);   \
        if (HAS_MIN) M += cs_h2f((const uint8_t *)blk_ + 2) * xs;                                   \
    }
#define CS_DOT_ROWS4_NEON(NAME, BLOCK_T, WB, HAS_MIN)                                               \
    static void NAME(float *y, const uint8_t *w, size_t nb1, const int32_t *rows, int64_t nrows,   \
                     const void *xa, int64_t n) {                                                   \
        CS_DOT_ROWS4_Q_PROLOGUE(BLOCK_T)                                                            \
            float32x4_t a0 = vdupq_n_f32(0.0f), a1 = vdupq_n_f32(0.0f), a2 = vdupq_n_f32(0.0f),     \
                        a3 = vdupq_n_f32(0.0f);                                                     \
            float m0 = 0.0f, m1 = 0.0f, m2 = 0.0f, m3 = 0.0f;                                       \
            for (int64_t b = 0; b < nb; b++) {                                                      \
                const size_t o = (size_t)b * S;                                                     \
                CS_ROWS4_PREFETCH(o)                                                                \
                const int8x16_t x0 = vld1q_s8(x->qs + b * CS_QK), x1 = vld1q_s8(x->qs + b * CS_QK + 16); \
                const float xd = x->d[b];                                                           \
                const float xs = HAS_MIN ? x->s[b] : 0.0f;                                          \
                (void)xs;                                                                           \
                CS_DOT4_ROW_NEON(r0, a0, m0, BLOCK_T, WB, HAS_MIN)                                  \
                CS_DOT4_ROW_NEON(r1, a1, m1, BLOCK_T, WB, HAS_MIN)                                  \
                CS_DOT4_ROW_NEON(r2, a2, m2, BLOCK_T, WB, HAS_MIN)                                  \
                CS_DOT4_ROW_NEON(r3, a3, m3, BLOCK_T, WB, HAS_MIN)                                  \
            }                                                                                       \
        CS_ROWS4_END(vaddvq_f32(a0) + m0, vaddvq_f32(a1) + m1, vaddvq_f32(a2) + m2, vaddvq_f32(a3) + m3) \
    }
CS_DOT_ROWS4_NEON(dot_rows_q8_0, cs_block_q8_0, cs_wb_q8_0, 0)
CS_DOT_ROWS4_NEON(dot_rows_q4_0, cs_block_q4_0, cs_wb_q4_0, 0)
CS_DOT_ROWS4_NEON(dot_rows_q4_1, cs_block_q4_1, cs_wb_q4_1, 1)

/* Q5_0, Q5_1 and the K-quants (output-sparse only), against ggml's activations (cs_q8g):
 * four rows at a time as above, an exact int32 dot per (sub-)block (SMULL + SADALP, or
 * SDOT), K-quant sub-blocks times their scale by an integer multiply-accumulate (exact),
 * one float scale per block (K: per super-block). Weight values go in as signed bytes
 * (Q5_0 minus 16, Q6_K minus 32; Q5_1, Q4_K, Q5_K are <= 31). */
static inline int32x4_t cs_dot16(int8x16_t w, int8x16_t x) {
#if defined(CHESS_NEON_DOTPROD)
    return vdotq_s32(vdupq_n_s32(0), w, x);
#else
    return vpadalq_s16(vpaddlq_s16(vmull_s8(vget_low_s8(w), vget_low_s8(x))), vmull_high_s8(w, x));
#endif
}
/* the 32 bits at qh4 as bytes (element order), 0x10 where set */
static inline uint8x16x2_t cs_qh_bytes(const uint8_t *qh4) {
    static const uint8_t bits[16] = { 1, 2, 4, 8, 16, 32, 64, 128, 1, 2, 4, 8, 16, 32, 64, 128 };
    const uint8x16_t sel = vld1q_u8(bits), b = vdupq_n_u8(0x10);
    uint8x16x2_t r;
    r.val[0] = vandq_u8(vtstq_u8(vcombine_u8(vdup_n_u8(qh4[0]), vdup_n_u8(qh4[1])), sel), b);
    r.val[1] = vandq_u8(vtstq_u8(vcombine_u8(vdup_n_u8(qh4[2]), vdup_n_u8(qh4[3])), sel), b);
    return r;
}
#define CS_DOT_ROWS4_Q5_NEON(NAME, BLOCK_T, Q51)                                                        \
    static void NAME(float *y, const uint8_t *w, size_t nb1, const int32_t *rows, int64_t nrows,       \
                     const void *xa, int64_t n) {                                                       \
        const cs_q8g *x = (const cs_q8g *)xa;                                                           \
        const int64_t nb = n / CS_QK;                                                                   \
        const size_t S = sizeof(BLOCK_T);                                                               \
        CS_ROWS4_BEGIN((size_t)nb * S)                                                                  \
            const uint8_t *const rr[4] = { r0, r1, r2, r3 };                                            \
            float32x4_t acc[4] = { vdupq_n_f32(0.0f), vdupq_n_f32(0.0f), vdupq_n_f32(0.0f), vdupq_n_f32(0.0f) }; \
            float mt[4] = { 0.0f, 0.0f, 0.0f, 0.0f };                                                   \
            for (int64_t b = 0; b < nb; b++) {                                                          \
                const size_t o = (size_t)b * S;                                                         \
                CS_ROWS4_PREFETCH(o)                                                                    \
                const int8x16_t x0 = vld1q_s8(x->qs + b * CS_QK), x1 = vld1q_s8(x->qs + b * CS_QK + 16); \
                const float xd = x->d[b];                                                               \
                for (int k = 0; k < 4; k++) {                                                           \
                    const BLOCK_T *blk = (const BLOCK_T *)(const void *)(rr[k] + o);                    \
                    const uint8x16_t v = vld1q_u8(blk->qs);                                             \
                    const uint8x16x2_t h = cs_qh_bytes(blk->qh);                                        \
                    const int8x16_t off = vdupq_n_s8(Q51 ? 0 : 16);                                     \
                    const int8x16_t w0 = vsubq_s8(vreinterpretq_s8_u8(vorrq_u8(vandq_u8(v, vdupq_n_u8(0x0f)), h.val[0])), off); \
                    const int8x16_t w1 = vsubq_s8(vreinterpretq_s8_u8(vorrq_u8(vshrq_n_u8(v, 4), h.val[1])), off); \
                    const int32x4_t dt = vaddq_s32(cs_dot16(w0, x0), cs_dot16(w1, x1));                 \
                    acc[k] = vfmaq_n_f32(acc[k], vcvtq_f32_s32(dt), cs_h2f(&blk->d) * xd);              \
                    if (Q51) mt[k] = fmaf(cs_h2f((const uint8_t *)blk + 2), x->s[b], mt[k]);            \
                }                                                                                       \
            }                                                                                           \
        CS_ROWS4_END(vaddvq_f32(acc[0]) + mt[0], vaddvq_f32(acc[1]) + mt[1], vaddvq_f32(acc[2]) + mt[2], \
                     vaddvq_f32(acc[3]) + mt[3])                                                        \
    }
CS_DOT_ROWS4_Q5_NEON(dot_rows_q5_0, cs_block_q5_0, 0)
CS_DOT_ROWS4_Q5_NEON(dot_rows_q5_1, cs_block_q5_1, 1)

/* every line of the four rows' super-block at byte offset o (S <= 256 bytes, prefetched
 * addresses at most 64 bytes apart: Q6_K's 210-byte blocks span up to five lines) */
#define CS_PREFETCH_SB_NEON(o)                                                                          \
    CS_ROWS4_PREFETCH(o) CS_ROWS4_PREFETCH((o) + 64) CS_ROWS4_PREFETCH((o) + 128)                       \
    if (S > 192) { CS_ROWS4_PREFETCH((o) + 192) }                                                       \
    CS_ROWS4_PREFETCH((o) + S - 1)

/* Q4_K / Q5_K: sub-block j (32 values) times sc_j into int32 lanes; the minimums
 * sum_j m_j * (activation sum of sub-block j) from ggml's bsums, scalar, per row. */
#define CS_DOT_ROWS4_K45_NEON(NAME, BLOCK_T, Q5)                                                        \
    static void NAME(float *y, const uint8_t *w, size_t nb1, const int32_t *rows, int64_t nrows,       \
                     const void *xa, int64_t n) {                                                       \
        const cs_q8g *x = (const cs_q8g *)xa;                                                           \
        const int64_t nb = n / CS_QK_K;                                                                 \
        const size_t S = sizeof(BLOCK_T);                                                               \
        const uint8x16_t m4 = vdupq_n_u8(0x0f), b4 = vdupq_n_u8(0x10);                                  \
        CS_ROWS4_BEGIN((size_t)nb * S)                                                                  \
            const uint8_t *const rr[4] = { r0, r1, r2, r3 };                                            \
            float32x4_t acc[4] = { vdupq_n_f32(0.0f), vdupq_n_f32(0.0f), vdupq_n_f32(0.0f), vdupq_n_f32(0.0f) }; \
            float mt[4] = { 0.0f, 0.0f, 0.0f, 0.0f };                                                   \
            for (int64_t b = 0; b < nb; b++) {                                                          \
                const size_t o = (size_t)b * S;                                                         \
                CS_PREFETCH_SB_NEON(o)                                                                  \
                const int8_t *xq = x->qs + b * CS_QK_K;                                                 \
                const int16_t *bs = x->bsums + b * 16;                                                  \
                const float xd = x->d[b];                                                               \
                for (int k = 0; k < 4; k++) {                                                           \
                    const BLOCK_T *blk = (const BLOCK_T *)(const void *)(rr[k] + o);                    \
                    uint64_t sc, mn;                                                                    \
                    cs_kq_scales(blk->scales, &sc, &mn);                                                \
                    uint8x16_t qh0 = vdupq_n_u8(0), qh1 = vdupq_n_u8(0);                                \
                    if (Q5) { qh0 = vld1q_u8((const uint8_t *)blk + 16); qh1 = vld1q_u8((const uint8_t *)blk + 32); } \
                    int32x4_t ai = vdupq_n_s32(0);                                                      \
                    int32_t s2 = 0;                                                                     \
                    for (int c = 0; c < 4; c++) {                                                       \
                        const uint8x16_t q0 = vld1q_u8(blk->qs + 32 * c), q1 = vld1q_u8(blk->qs + 32 * c + 16); \
                        uint8x16_t l0 = vandq_u8(q0, m4), l1 = vandq_u8(q1, m4), h0 = vshrq_n_u8(q0, 4), h1 = vshrq_n_u8(q1, 4); \
                        if (Q5) { /* bit j of qh -> bit 4: shift left by 4 - j (negative: right) */    \
                            const int8x16_t sl = vdupq_n_s8((int8_t)(4 - 2 * c)), sh = vdupq_n_s8((int8_t)(3 - 2 * c)); \
                            l0 = vorrq_u8(l0, vandq_u8(vshlq_u8(qh0, sl), b4));                         \
                            l1 = vorrq_u8(l1, vandq_u8(vshlq_u8(qh1, sl), b4));                         \
                            h0 = vorrq_u8(h0, vandq_u8(vshlq_u8(qh0, sh), b4));                         \
                            h1 = vorrq_u8(h1, vandq_u8(vshlq_u8(qh1, sh), b4));                         \
                        }                                                                               \
                        const int8_t *xc = xq + 64 * c;                                                 \
                        const int32x4_t dl = vaddq_s32(cs_dot16(vreinterpretq_s8_u8(l0), vld1q_s8(xc)),  \
                                                       cs_dot16(vreinterpretq_s8_u8(l1), vld1q_s8(xc + 16))); \
                        const int32x4_t dh = vaddq_s32(cs_dot16(vreinterpretq_s8_u8(h0), vld1q_s8(xc + 32)), \
                                                       cs_dot16(vreinterpretq_s8_u8(h1), vld1q_s8(xc + 48))); \
                        ai = vmlaq_n_s32(ai, dl, (int32_t)((sc >> (16 * c)) & 0xff));                   \
                        ai = vmlaq_n_s32(ai, dh, (int32_t)((sc >> (16 * c + 8)) & 0xff));               \
                        s2 += (int32_t)((mn >> (16 * c)) & 0xff) * (bs[4 * c] + bs[4 * c + 1]);         \
                        s2 += (int32_t)((mn >> (16 * c + 8)) & 0xff) * (bs[4 * c + 2] + bs[4 * c + 3]); \
                    }                                                                                   \
                    acc[k] = vfmaq_n_f32(acc[k], vcvtq_f32_s32(ai), cs_h2f(&blk->d) * xd);              \
                    mt[k] = fmaf(-(cs_h2f(&blk->dmin) * xd), (float)s2, mt[k]);                         \
                }                                                                                       \
            }                                                                                           \
        CS_ROWS4_END(vaddvq_f32(acc[0]) + mt[0], vaddvq_f32(acc[1]) + mt[1], vaddvq_f32(acc[2]) + mt[2], \
                     vaddvq_f32(acc[3]) + mt[3])                                                        \
    }
CS_DOT_ROWS4_K45_NEON(dot_rows_q4_K, cs_block_q4_K, 0)
CS_DOT_ROWS4_K45_NEON(dot_rows_q5_K, cs_block_q5_K, 1)

/* Q6_K: per half of 128 values, four quarters of 32 (two sub-blocks of 16 each) */
static void dot_rows_q6_K(float *y, const uint8_t *w, size_t nb1, const int32_t *rows, int64_t nrows, const void *xa,
                          int64_t n) {
    const cs_q8g *x = (const cs_q8g *)xa;
    const int64_t nb = n / CS_QK_K;
    const size_t S = sizeof(cs_block_q6_K);
    const uint8x16_t m4 = vdupq_n_u8(0x0f), m30 = vdupq_n_u8(0x30);
    const int8x16_t off = vdupq_n_s8(32);
    CS_ROWS4_BEGIN((size_t)nb * S)
        const uint8_t *const rr[4] = { r0, r1, r2, r3 };
        float32x4_t acc[4] = { vdupq_n_f32(0.0f), vdupq_n_f32(0.0f), vdupq_n_f32(0.0f), vdupq_n_f32(0.0f) };
        for (int64_t b = 0; b < nb; b++) {
            const size_t o = (size_t)b * S;
            CS_PREFETCH_SB_NEON(o)
            const int8_t *xq = x->qs + b * CS_QK_K;
            const float xd = x->d[b];
            for (int k = 0; k < 4; k++) {
                const cs_block_q6_K *blk = (const cs_block_q6_K *)(const void *)(rr[k] + o);
                int32x4_t ai = vdupq_n_s32(0);
                for (int h = 0; h < 2; h++) {
                    for (int u = 0; u < 2; u++) { /* 16 values of each quarter: l = 16u .. 16u + 15 */
                        const uint8x16_t A = vld1q_u8(blk->ql + 64 * h + 16 * u), B = vld1q_u8(blk->ql + 64 * h + 32 + 16 * u);
                        const uint8x16_t H = vld1q_u8(blk->qh + 32 * h + 16 * u);
                        const uint8x16_t q[4] = {
                            vorrq_u8(vandq_u8(A, m4), vandq_u8(vshlq_n_u8(H, 4), m30)),
                            vorrq_u8(vandq_u8(B, m4), vandq_u8(vshlq_n_u8(H, 2), m30)),
                            vorrq_u8(vshrq_n_u8(A, 4), vandq_u8(H, m30)),
                            vorrq_u8(vshrq_n_u8(B, 4), vandq_u8(vshrq_n_u8(H, 2), m30)),
                        };
                        for (int c = 0; c < 4; c++) {
                            const int j = 8 * h + 2 * c + u; /* sub-block of 16 */
                            const int32x4_t d = cs_dot16(vsubq_s8(vreinterpretq_s8_u8(q[c]), off), vld1q_s8(xq + 16 * j));
                            ai = vmlaq_n_s32(ai, d, (int32_t)blk->scales[j]);
                        }
                    }
                }
                acc[k] = vfmaq_n_f32(acc[k], vcvtq_f32_s32(ai), cs_h2f(&blk->d) * xd);
            }
        }
    CS_ROWS4_END(vaddvq_f32(acc[0]), vaddvq_f32(acc[1]), vaddvq_f32(acc[2]), vaddvq_f32(acc[3]))
}

/* Float types: 4 active rows at a time too, 4 elements per step, scalar tail; the
 * rows ahead are prefetched once per 64-byte line. */
#define CS_DOT_ROWS4_FLOAT_NEON(NAME, ESZ, LD, SCALAR)                                              \
    static void NAME(float *y, const uint8_t *w, size_t nb1, const int32_t *rows, int64_t nrows,   \
                     const void *xa, int64_t n) {                                                   \
        const float *x = (const float *)xa;                                                         \
        CS_ROWS4_BEGIN((size_t)n * (ESZ))                                                           \
            float32x4_t a0 = vdupq_n_f32(0.0f), a1 = vdupq_n_f32(0.0f), a2 = vdupq_n_f32(0.0f),     \
                        a3 = vdupq_n_f32(0.0f);                                                     \
            int64_t i = 0;                                                                          \
            for (; i + 4 <= n; i += 4) {                                                            \
                const size_t o = (size_t)i * (ESZ);                                                 \
                if (o % 64 < 4 * (ESZ)) { CS_ROWS4_PREFETCH(o) }                                    \
                const float32x4_t xv = vld1q_f32(x + i);                                            \
                a0 = vfmaq_f32(a0, LD(r0 + o), xv);                                                 \
                a1 = vfmaq_f32(a1, LD(r1 + o), xv);                                                 \
                a2 = vfmaq_f32(a2, LD(r2 + o), xv);                                                 \
                a3 = vfmaq_f32(a3, LD(r3 + o), xv);                                                 \
            }                                                                                       \
            float v0 = vaddvq_f32(a0), v1 = vaddvq_f32(a1), v2 = vaddvq_f32(a2), v3 = vaddvq_f32(a3); \
            for (; i < n; i++) {                                                                    \
                const size_t o = (size_t)i * (ESZ);                                                 \
                v0 += SCALAR(r0 + o) * x[i]; v1 += SCALAR(r1 + o) * x[i];                           \
                v2 += SCALAR(r2 + o) * x[i]; v3 += SCALAR(r3 + o) * x[i];                           \
            }                                                                                       \
        CS_ROWS4_END(v0, v1, v2, v3)                                                                \
    }
CS_DOT_ROWS4_FLOAT_NEON(dot_rows_f32, 4, cs_ld4_f32, cs_sc_f32)
CS_DOT_ROWS4_FLOAT_NEON(dot_rows_f16, 2, cs_ld4_f16, cs_sc_f16)
CS_DOT_ROWS4_FLOAT_NEON(dot_rows_bf16, 2, cs_ld4_bf16, cs_sc_bf16)

/* ---------------- activation quantizer (same arithmetic as cs_quant_x8_ref) ----------------
 * amax: FMAXNM ignores a NaN operand like the reference's `a > amax ? a : amax`;
 * d and id (cs_q8_inv_scale) are the same scalar float operations; x*id is one float multiply and
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
        const float d = amax / 127.0f, id = cs_q8_inv_scale(amax);
        int32x4_t iv[8];
        for (int i = 0; i < 8; i++) iv[i] = vcvtnq_s32_f32(vmulq_n_f32(v[i], id));
        int32x4_t s = vaddq_s32(vaddq_s32(vaddq_s32(iv[0], iv[1]), vaddq_s32(iv[2], iv[3])),
                                vaddq_s32(vaddq_s32(iv[4], iv[5]), vaddq_s32(iv[6], iv[7])));
        for (int h = 0; h < 2; h++) {
            const int16x8_t lo = vcombine_s16(vmovn_s32(iv[4 * h + 0]), vmovn_s32(iv[4 * h + 1]));
            const int16x8_t hi = vcombine_s16(vmovn_s32(iv[4 * h + 2]), vmovn_s32(iv[4 * h + 3]));
            vst1q_s8(q->qs + ib * CS_QK + 16 * h, vcombine_s8(vmovn_s16(lo), vmovn_s16(hi)));
        }
        const int32_t sum = vaddvq_s32(s);
        q->d[ib] = cs_round_fp16(d);
        q->sum[ib] = sum;
        q->s[ib] = cs_round_fp16(d * (float)sum);
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
        [CS_Q5_0] = { NULL, dot_rows_q5_0, NULL },
        [CS_Q5_1] = { NULL, dot_rows_q5_1, NULL },
        [CS_Q4_K] = { NULL, dot_rows_q4_K, NULL },
        [CS_Q5_K] = { NULL, dot_rows_q5_K, NULL },
        [CS_Q6_K] = { NULL, dot_rows_q6_K, NULL },
    },
    .quant_x8 = quant_x8,
    .gemm = gemm,
};
