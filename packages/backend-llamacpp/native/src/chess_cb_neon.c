/* Column-block decode kernels, AArch64 Advanced SIMD. The arithmetic of chess_cb.c's
 * reference, bit for bit: the quads of chess_cb_avx512.c (four kept channels' bytes of one
 * row in one 32-bit lane), but NEON's zips work on whole registers, so the interleaved rows
 * come out in their natural order (no transpose). A 16-byte load is one 32-row unit of a
 * nibble plane (Q8_0: 16 rows). With CHESS_NEON_DOTPROD one SDOT per 4 rows x 4 channels
 * (nibbles 0..15 are valid signed bytes); without, SMULL + SADALP into pair sums, added
 * pairwise once per group and block. Q4_0's -8 enters as the start value -8 * sum q. */
#include <arm_neon.h>

#include "chess_cb_internal.h"

/* the quads of listed group i (as in chess_cb_avx512.c) */
static int64_t cs_cb_quads_neon(const cs_cb_job *J, int64_t i, const uint8_t *grp, const uint8_t **cols, int32_t *qq,
                                int32_t *qsum) {
    const cs_cb_desc *D = J->D;
    const int64_t nk = J->kofs[i + 1] - J->kofs[i];
    const uint16_t *kc = J->kch + J->kofs[i];
    const int8_t *q = J->q + J->groups[i] * D->B;
    int32_t sum = 0;
    const int64_t nq = (nk + 3) / 4;
    for (int64_t k = 0; k < 4 * nq; k++) {
        const int c = k < nk ? kc[k] : kc[4 * (k / 4)];
        const int8_t qv = k < nk ? q[c] : 0;
        cols[k] = cs_cb_col(D, grp, J->R, c);
        sum += qv;
        if (k % 4 == 0) qq[k / 4] = 0;
        qq[k / 4] |= (int32_t)((uint32_t)(uint8_t)qv << (8 * (k % 4)));
    }
    *qsum = sum;
    return nq;
}

/* Four 16-byte loads -> Q[j]: lane l holds the four channels' bytes of byte position 4j + l. */
static inline void cs_zip4(uint8x16_t L0, uint8x16_t L1, uint8x16_t L2, uint8x16_t L3, uint8x16_t *Q) {
    const uint16x8_t p01l = vreinterpretq_u16_u8(vzip1q_u8(L0, L1)), p01h = vreinterpretq_u16_u8(vzip2q_u8(L0, L1));
    const uint16x8_t p23l = vreinterpretq_u16_u8(vzip1q_u8(L2, L3)), p23h = vreinterpretq_u16_u8(vzip2q_u8(L2, L3));
    Q[0] = vreinterpretq_u8_u16(vzip1q_u16(p01l, p23l));
    Q[1] = vreinterpretq_u8_u16(vzip2q_u16(p01l, p23l));
    Q[2] = vreinterpretq_u8_u16(vzip1q_u16(p01h, p23h));
    Q[3] = vreinterpretq_u8_u16(vzip2q_u16(p01h, p23h));
}

/* acc (4 rows) += sum over the lane's 4 bytes of w * q. Without SDOT the accumulator holds
 * pair sums (lanes 2r, 2r+1 of two registers: lo rows 0-1, hi rows 2-3), see cs_acc_rows. */
#ifdef CHESS_NEON_DOTPROD
typedef struct { int32x4_t a; } cs_acc;
static inline cs_acc cs_acc_init(int32_t v) { return (cs_acc){ vdupq_n_s32(v) }; }
static inline void cs_acc_step(cs_acc *A, uint8x16_t w, int8x16_t q) { A->a = vdotq_s32(A->a, vreinterpretq_s8_u8(w), q); }
static inline int32x4_t cs_acc_rows(cs_acc A) { return A.a; }
#else
typedef struct { int32x4_t lo, hi; int32_t init; } cs_acc;
static inline cs_acc cs_acc_init(int32_t v) { return (cs_acc){ vdupq_n_s32(0), vdupq_n_s32(0), v }; }
static inline void cs_acc_step(cs_acc *A, uint8x16_t w, int8x16_t q) {
    const int8x16_t ws = vreinterpretq_s8_u8(w);
    A->lo = vpadalq_s16(A->lo, vmull_s8(vget_low_s8(ws), vget_low_s8(q)));
    A->hi = vpadalq_s16(A->hi, vmull_high_s8(ws, q));
}
static inline int32x4_t cs_acc_rows(cs_acc A) { return vaddq_s32(vpaddq_s32(A.lo, A.hi), vdupq_n_s32(A.init)); }
#endif

/* y[r..r+4) += the reference's term of this group for 4 rows with integer sums acc. */
static inline void cs_step4(float *y, int64_t r, const uint8_t *grp, int64_t R, int kind, float32x4_t dx, float32x4_t sx,
                            int32x4_t acc) {
    const float32x4_t dw = vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16((const uint16_t *)(grp + 2 * r))));
    float32x4_t t = vmulq_f32(vmulq_f32(dw, dx), vcvtq_f32_s32(acc));
    if (kind == CB_Q4_1) {
        const float32x4_t mw = vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16((const uint16_t *)(grp + 2 * R + 2 * r))));
        t = vaddq_f32(t, vmulq_f32(mw, sx));
    }
    vst1q_f32(y + r, vaddq_f32(vld1q_f32(y + r), t));
}

static inline __attribute__((always_inline)) void cs_cb_q4_body_neon(const cs_cb_job *J, int64_t i0, int64_t i1, int64_t r0,
                                                                    int64_t r1, float *y, int kind) {
    const cs_cb_desc *D = J->D;
    const int64_t R = J->R;
    for (int64_t r = r0; r < r1; r += 4) vst1q_f32(y + r, vdupq_n_f32(0.0f));
    cs_cb_pf P;
    cs_cb_pf_init(&P, J, i0, i1, r0, r1, 0);
    const uint8_t *cols[32];
    int32_t qq[8];
    const uint8x16_t m4 = vdupq_n_u8(15);
    for (int64_t i = i0; i < i1; i++) {
        const int64_t g = J->groups[i];
        const uint8_t *grp = J->w + (size_t)g * cs_cb_group_bytes(D, R);
        int32_t qsum;
        const int64_t nq = cs_cb_quads_neon(J, i, grp, cols, qq, &qsum);
        const int32_t init = kind == CB_Q4_0 ? -8 * qsum : 0;
        const float32x4_t dx = vdupq_n_f32(J->d[g]), sx = vdupq_n_f32(kind == CB_Q4_1 ? J->s[g] : 0.0f);
        for (int64_t rb = r0; rb < r1; rb += 32) {
            if ((rb - r0) % CS_CB_PF_ROWS == 0) cs_cb_pf_run(&P, cs_cb_block_bytes(J, i, r1 - rb < CS_CB_PF_ROWS ? r1 - rb : CS_CB_PF_ROWS));
            cs_acc a[4], h[4];
            for (int j = 0; j < 4; j++) { a[j] = cs_acc_init(init); h[j] = cs_acc_init(init); }
            for (int64_t qd = 0; qd < nq; qd++) {
                const int8x16_t qv = vreinterpretq_s8_s32(vdupq_n_s32(qq[qd]));
                const uint8_t *const *c = cols + 4 * qd;
                uint8x16_t Q[4];
                cs_zip4(vld1q_u8(c[0] + rb / 2), vld1q_u8(c[1] + rb / 2), vld1q_u8(c[2] + rb / 2), vld1q_u8(c[3] + rb / 2), Q);
                for (int j = 0; j < 4; j++) {
                    cs_acc_step(&a[j], vandq_u8(Q[j], m4), qv); /* rows rb + 4j .. +3 */
                    cs_acc_step(&h[j], vshrq_n_u8(Q[j], 4), qv); /* rows rb + 16 + 4j .. +3 */
                }
            }
            for (int j = 0; j < 4; j++) {
                cs_step4(y, rb + 4 * j, grp, R, kind, dx, sx, cs_acc_rows(a[j]));
                cs_step4(y, rb + 16 + 4 * j, grp, R, kind, dx, sx, cs_acc_rows(h[j]));
            }
        }
    }
}

static void cs_cb_q4_0_neon(const cs_cb_job *J, int64_t i0, int64_t i1, int64_t r0, int64_t r1, float *y) {
    cs_cb_q4_body_neon(J, i0, i1, r0, r1, y, CB_Q4_0);
}
static void cs_cb_q4_1_neon(const cs_cb_job *J, int64_t i0, int64_t i1, int64_t r0, int64_t r1, float *y) {
    cs_cb_q4_body_neon(J, i0, i1, r0, r1, y, CB_Q4_1);
}

/* Q8_0: signed weights times signed activations directly, 16 rows per load. */
static void cs_cb_q8_0_neon(const cs_cb_job *J, int64_t i0, int64_t i1, int64_t r0, int64_t r1, float *y) {
    const cs_cb_desc *D = J->D;
    const int64_t R = J->R;
    for (int64_t r = r0; r < r1; r += 4) vst1q_f32(y + r, vdupq_n_f32(0.0f));
    cs_cb_pf P;
    cs_cb_pf_init(&P, J, i0, i1, r0, r1, 0);
    const uint8_t *cols[32];
    int32_t qq[8];
    const float32x4_t zero = vdupq_n_f32(0.0f);
    for (int64_t i = i0; i < i1; i++) {
        const int64_t g = J->groups[i];
        const uint8_t *grp = J->w + (size_t)g * cs_cb_group_bytes(D, R);
        int32_t qsum;
        const int64_t nq = cs_cb_quads_neon(J, i, grp, cols, qq, &qsum);
        const float32x4_t dx = vdupq_n_f32(J->d[g]);
        for (int64_t rb = r0; rb < r1; rb += 16) {
            if ((rb - r0) % CS_CB_PF_ROWS == 0) cs_cb_pf_run(&P, cs_cb_block_bytes(J, i, r1 - rb < CS_CB_PF_ROWS ? r1 - rb : CS_CB_PF_ROWS));
            cs_acc a[4];
            for (int j = 0; j < 4; j++) a[j] = cs_acc_init(0);
            for (int64_t qd = 0; qd < nq; qd++) {
                const int8x16_t qv = vreinterpretq_s8_s32(vdupq_n_s32(qq[qd]));
                const uint8_t *const *c = cols + 4 * qd;
                uint8x16_t Q[4];
                cs_zip4(vld1q_u8(c[0] + rb), vld1q_u8(c[1] + rb), vld1q_u8(c[2] + rb), vld1q_u8(c[3] + rb), Q);
                for (int j = 0; j < 4; j++) cs_acc_step(&a[j], Q[j], qv);
            }
            for (int j = 0; j < 4; j++) cs_step4(y, rb + 4 * j, grp, R, CB_Q8_0, dx, zero, cs_acc_rows(a[j]));
        }
    }
}

/* the plain-C kernel (chess_cb_generic.h) for the other types */
static inline void cs_cbg_neon_f16(float *dst, const uint8_t *src, int64_t n) {
    int64_t k = 0;
    for (; k + 4 <= n; k += 4) vst1q_f32(dst + k, vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16((const uint16_t *)(src + 2 * k)))));
    for (; k < n; k++) dst[k] = cs_fp16_to_f32(cs_load_u16(src + 2 * k));
}
#define CS_CBG(name) cs_cbg_neon_##name
#define CS_CBG_F16 cs_cbg_neon_f16
#include "chess_cb_generic.h"

const cs_cb_table cs_cb_table_neon = { "neon", {
    [CB_Q4_0] = cs_cb_q4_0_neon,
    [CB_Q4_1] = cs_cb_q4_1_neon,
    [CB_Q8_0] = cs_cb_q8_0_neon,
    [CB_Q5_0] = cs_cbg_neon_groups, [CB_Q5_1] = cs_cbg_neon_groups, [CB_Q4_K] = cs_cbg_neon_groups,
    [CB_Q5_K] = cs_cbg_neon_groups, [CB_Q6_K] = cs_cbg_neon_groups, [CB_F32] = cs_cbg_neon_groups,
    [CB_F16] = cs_cbg_neon_groups, [CB_BF16] = cs_cbg_neon_groups,
}, NULL };
