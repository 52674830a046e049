/* Column-block decode kernels, AVX-512 (F/BW/VL + VNNI; the `avx512vbmi` table shares
 * them). The arithmetic of chess_cb.c's reference, bit for bit: exact integer sums per
 * (row, group), then the reference's float steps, rows in vector lanes.
 *
 * Integer step: the group's kept channels four at a time ("quads"). For 128 rows a
 * channel's nibble plane is one 64-byte load (unit k of 32 rows in 128-bit lane k: byte b
 * holds rows 32k+b and 32k+16+b). Two byte and two word unpacks of the quad's four loads
 * put the four channels' bytes of one row into one dword, so that vpdpbusd (unsigned
 * weight x signed activation) adds w(r,c0) q0 + .. + w(r,c3) q3 to that row's int32.
 * The unpacks work inside 128-bit lanes: dword j of lane k of the j'th result is row
 * 32k + 4j' + (0..3), so the accumulators hold the rows in a lane-permuted order, undone
 * once per group and 128 rows by a 4x4 transpose of 128-bit lanes (8 vshufi32x4 per 16
 * vectors), not once per quad. Q4_0's -8 (Q8_0: weights +128 as unsigned, -128) enters as
 * the accumulators' start value -8 (-128) * sum q over the kept channels. */
#include <immintrin.h>

#include "chess_cb_internal.h"

/* The kept channels of listed group i in quads: column pointers and the four q bytes as
 * one dword (a short last quad repeats a column with q = 0); *qsum = sum of the kept q. */
static inline int64_t cs_cb_quads(const cs_cb_job *J, int64_t i, const uint8_t *grp, const uint8_t **cols,
                                  int32_t *qq, int32_t *qsum) {
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

/* out_k = lane k of a, b, c, d (4x4 transpose of 128-bit lanes) */
#define CS_T4X4(a, b, c, d)                                                        \
    do {                                                                           \
        const __m512i t0 = _mm512_shuffle_i32x4(a, b, 0x44), t1 = _mm512_shuffle_i32x4(a, b, 0xee); \
        const __m512i t2 = _mm512_shuffle_i32x4(c, d, 0x44), t3 = _mm512_shuffle_i32x4(c, d, 0xee); \
        a = _mm512_shuffle_i32x4(t0, t2, 0x88); b = _mm512_shuffle_i32x4(t0, t2, 0xdd);              \
        c = _mm512_shuffle_i32x4(t1, t3, 0x88); d = _mm512_shuffle_i32x4(t1, t3, 0xdd);              \
    } while (0)

/* Four loads -> the four dword-interleaved vectors Q0..Q3 (see the header). */
#define CS_INTERLEAVE4(L0, L1, L2, L3, Q0, Q1, Q2, Q3)                             \
    do {                                                                           \
        const __m512i p01l = _mm512_unpacklo_epi8(L0, L1), p01h = _mm512_unpackhi_epi8(L0, L1); \
        const __m512i p23l = _mm512_unpacklo_epi8(L2, L3), p23h = _mm512_unpackhi_epi8(L2, L3); \
        Q0 = _mm512_unpacklo_epi16(p01l, p23l); Q1 = _mm512_unpackhi_epi16(p01l, p23l);          \
        Q2 = _mm512_unpacklo_epi16(p01h, p23h); Q3 = _mm512_unpackhi_epi16(p01h, p23h);          \
    } while (0)

/* y[r..r+16) += the reference's term of this group for 16 rows with integer sums acc. */
static inline void cs_cb_step16(float *y, int64_t r, const uint8_t *grp, int64_t R, int kind, __m512 dx, __m512 sx,
                                __m512i acc) {
    const __m512 dw = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(grp + 2 * r)));
    __m512 t = _mm512_mul_ps(_mm512_mul_ps(dw, dx), _mm512_cvtepi32_ps(acc));
    if (kind == CB_Q4_1) {
        const __m512 mw = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(grp + 2 * R + 2 * r)));
        t = _mm512_add_ps(t, _mm512_mul_ps(mw, sx));
    }
    _mm512_storeu_ps(y + r, _mm512_add_ps(_mm512_loadu_ps(y + r), t));
}

static inline __attribute__((always_inline)) void cs_cb_q4_body(const cs_cb_job *J, int64_t i0, int64_t i1, int64_t r0,
                                                               int64_t r1, float *y, int kind) {
    const cs_cb_desc *D = J->D;
    const int64_t R = J->R;
    for (int64_t r = r0; r < r1; r += 16) _mm512_storeu_ps(y + r, _mm512_setzero_ps());
    cs_cb_pf P;
    cs_cb_pf_init(&P, J, i0, i1, r0, r1);
    const uint8_t *cols[32];
    int32_t qq[8];
    const __m512i m4 = _mm512_set1_epi8(15);
    for (int64_t i = i0; i < i1; i++) {
        const int64_t g = J->groups[i];
        const uint8_t *grp = J->w + (size_t)g * cs_cb_group_bytes(D, R);
        int32_t qsum;
        const int64_t nq = cs_cb_quads(J, i, grp, cols, qq, &qsum);
        const __m512i init = _mm512_set1_epi32(kind == CB_Q4_0 ? -8 * qsum : 0);
        const __m512 dx = _mm512_set1_ps(J->d[g]), sx = _mm512_set1_ps(kind == CB_Q4_1 ? J->s[g] : 0.0f);
        for (int64_t rb = r0; rb < r1; rb += 128) {
            cs_cb_pf_run(&P, cs_cb_block_bytes(J, i, r1 - rb < 128 ? r1 - rb : 128));
            const int64_t units = (r1 - rb) / 32 < 4 ? (r1 - rb) / 32 : 4;
            const __mmask64 m = units == 4 ? ~(__mmask64)0 : ((__mmask64)1 << (16 * units)) - 1;
            __m512i a0 = init, a1 = init, a2 = init, a3 = init, h0 = init, h1 = init, h2 = init, h3 = init;
            for (int64_t qd = 0; qd < nq; qd++) {
                const __m512i qv = _mm512_set1_epi32(qq[qd]);
                const uint8_t *const *c = cols + 4 * qd;
                const __m512i L0 = _mm512_maskz_loadu_epi8(m, c[0] + rb / 2), L1 = _mm512_maskz_loadu_epi8(m, c[1] + rb / 2);
                const __m512i L2 = _mm512_maskz_loadu_epi8(m, c[2] + rb / 2), L3 = _mm512_maskz_loadu_epi8(m, c[3] + rb / 2);
                __m512i Q0, Q1, Q2, Q3;
                CS_INTERLEAVE4(L0, L1, L2, L3, Q0, Q1, Q2, Q3);
                a0 = _mm512_dpbusd_epi32(a0, _mm512_and_si512(Q0, m4), qv);
                h0 = _mm512_dpbusd_epi32(h0, _mm512_and_si512(_mm512_srli_epi16(Q0, 4), m4), qv);
                a1 = _mm512_dpbusd_epi32(a1, _mm512_and_si512(Q1, m4), qv);
                h1 = _mm512_dpbusd_epi32(h1, _mm512_and_si512(_mm512_srli_epi16(Q1, 4), m4), qv);
                a2 = _mm512_dpbusd_epi32(a2, _mm512_and_si512(Q2, m4), qv);
                h2 = _mm512_dpbusd_epi32(h2, _mm512_and_si512(_mm512_srli_epi16(Q2, 4), m4), qv);
                a3 = _mm512_dpbusd_epi32(a3, _mm512_and_si512(Q3, m4), qv);
                h3 = _mm512_dpbusd_epi32(h3, _mm512_and_si512(_mm512_srli_epi16(Q3, 4), m4), qv);
            }
            CS_T4X4(a0, a1, a2, a3);
            CS_T4X4(h0, h1, h2, h3);
            const __m512i lo[4] = { a0, a1, a2, a3 }, hi[4] = { h0, h1, h2, h3 };
            for (int64_t k = 0; k < units; k++) {
                cs_cb_step16(y, rb + 32 * k, grp, R, kind, dx, sx, lo[k]);
                cs_cb_step16(y, rb + 32 * k + 16, grp, R, kind, dx, sx, hi[k]);
            }
        }
    }
}

static void cs_cb_q4_0_avx512(const cs_cb_job *J, int64_t i0, int64_t i1, int64_t r0, int64_t r1, float *y) {
    cs_cb_q4_body(J, i0, i1, r0, r1, y, CB_Q4_0);
}
static void cs_cb_q4_1_avx512(const cs_cb_job *J, int64_t i0, int64_t i1, int64_t r0, int64_t r1, float *y) {
    cs_cb_q4_body(J, i0, i1, r0, r1, y, CB_Q4_1);
}

/* Q5_0 / Q5_1: each channel's 5-bit values are built before the interleave: the low and
 * high nibbles of its 128-row load plus 16 where its bit plane has the row's bit (the
 * plane's 4 u32 broadcast to every lane, one byte shuffle picks the byte holding bit b of
 * unit k, a test against 1 << (b % 8) gives the byte mask). Then the lows and the highs of
 * the quad are interleaved separately (16 unpacks per quad instead of 8). */
static inline __m512i cs_cb_q5_bits(const uint8_t *bp, __mmask16 m, __m512i idx, __m512i bitm, __mmask64 *mhi, __m512i idx_hi) {
    const __m512i b = _mm512_broadcast_i32x4(_mm_maskz_loadu_epi8(m, bp));
    *mhi = _mm512_test_epi8_mask(_mm512_shuffle_epi8(b, idx_hi), bitm);
    return b;
}

static inline __attribute__((always_inline)) void cs_cb_q5_body(const cs_cb_job *J, int64_t i0, int64_t i1, int64_t r0,
                                                               int64_t r1, float *y, int kind) {
    const cs_cb_desc *D = J->D;
    const int64_t R = J->R;
    for (int64_t r = r0; r < r1; r += 16) _mm512_storeu_ps(y + r, _mm512_setzero_ps());
    cs_cb_pf P;
    cs_cb_pf_init(&P, J, i0, i1, r0, r1);
    const uint8_t *cols[32];
    int32_t qq[8];
    const __m512i m4 = _mm512_set1_epi8(15), c16 = _mm512_set1_epi8(16);
    /* vpshufb indexes (every lane holds the 16-byte plane of the 4 units): lane k, byte b takes
     * byte 4k + b/8 (row 32k + b) or 4k + 2 + b/8 (row 32k + 16 + b), bit b % 8 */
    uint8_t ilo[64], ihi[64], ibm[64];
    for (int k = 0; k < 4; k++)
        for (int b = 0; b < 16; b++) {
            ilo[16 * k + b] = (uint8_t)(4 * k + b / 8);
            ihi[16 * k + b] = (uint8_t)(4 * k + 2 + b / 8);
            ibm[16 * k + b] = (uint8_t)(1u << (b % 8));
        }
    const __m512i idx_lo = _mm512_loadu_si512(ilo), idx_hi = _mm512_loadu_si512(ihi), bitm = _mm512_loadu_si512(ibm);
    for (int64_t i = i0; i < i1; i++) {
        const int64_t g = J->groups[i];
        const uint8_t *grp = J->w + (size_t)g * cs_cb_group_bytes(D, R);
        int32_t qsum;
        const int64_t nq = cs_cb_quads(J, i, grp, cols, qq, &qsum);
        const __m512i init = _mm512_set1_epi32(kind == CB_Q5_0 ? -16 * qsum : 0);
        const __m512 dx = _mm512_set1_ps(J->d[g]), sx = _mm512_set1_ps(kind == CB_Q5_1 ? J->s[g] : 0.0f);
        for (int64_t rb = r0; rb < r1; rb += 128) {
            cs_cb_pf_run(&P, cs_cb_block_bytes(J, i, r1 - rb < 128 ? r1 - rb : 128));
            const int64_t units = (r1 - rb) / 32 < 4 ? (r1 - rb) / 32 : 4;
            const __mmask64 m = units == 4 ? ~(__mmask64)0 : ((__mmask64)1 << (16 * units)) - 1;
            const __mmask16 mb = (__mmask16)((1u << (4 * units)) - 1);
            __m512i a0 = init, a1 = init, a2 = init, a3 = init, h0 = init, h1 = init, h2 = init, h3 = init;
            for (int64_t qd = 0; qd < nq; qd++) {
                const __m512i qv = _mm512_set1_epi32(qq[qd]);
                __m512i lo[4], hi[4];
                for (int j = 0; j < 4; j++) {
                    const uint8_t *c = cols[4 * qd + j];
                    const __m512i L = _mm512_maskz_loadu_epi8(m, c + rb / 2);
                    __mmask64 mhi;
                    const __m512i b = cs_cb_q5_bits(c + R / 2 + rb / 8, mb, idx_lo, bitm, &mhi, idx_hi);
                    const __mmask64 mlo = _mm512_test_epi8_mask(_mm512_shuffle_epi8(b, idx_lo), bitm);
                    const __m512i l4 = _mm512_and_si512(L, m4), h4 = _mm512_and_si512(_mm512_srli_epi16(L, 4), m4);
                    lo[j] = _mm512_mask_add_epi8(l4, mlo, l4, c16);
                    hi[j] = _mm512_mask_add_epi8(h4, mhi, h4, c16);
                }
                __m512i Q0, Q1, Q2, Q3;
                CS_INTERLEAVE4(lo[0], lo[1], lo[2], lo[3], Q0, Q1, Q2, Q3);
                a0 = _mm512_dpbusd_epi32(a0, Q0, qv); a1 = _mm512_dpbusd_epi32(a1, Q1, qv);
                a2 = _mm512_dpbusd_epi32(a2, Q2, qv); a3 = _mm512_dpbusd_epi32(a3, Q3, qv);
                CS_INTERLEAVE4(hi[0], hi[1], hi[2], hi[3], Q0, Q1, Q2, Q3);
                h0 = _mm512_dpbusd_epi32(h0, Q0, qv); h1 = _mm512_dpbusd_epi32(h1, Q1, qv);
                h2 = _mm512_dpbusd_epi32(h2, Q2, qv); h3 = _mm512_dpbusd_epi32(h3, Q3, qv);
            }
            CS_T4X4(a0, a1, a2, a3);
            CS_T4X4(h0, h1, h2, h3);
            const __m512i lo[4] = { a0, a1, a2, a3 }, hi[4] = { h0, h1, h2, h3 };
            const int k41 = kind == CB_Q5_1 ? CB_Q4_1 : CB_Q4_0; /* the float step of Q5_1 is Q4_1's */
            for (int64_t k = 0; k < units; k++) {
                cs_cb_step16(y, rb + 32 * k, grp, R, k41, dx, sx, lo[k]);
                cs_cb_step16(y, rb + 32 * k + 16, grp, R, k41, dx, sx, hi[k]);
            }
        }
    }
}

static void cs_cb_q5_0_avx512(const cs_cb_job *J, int64_t i0, int64_t i1, int64_t r0, int64_t r1, float *y) {
    cs_cb_q5_body(J, i0, i1, r0, r1, y, CB_Q5_0);
}
static void cs_cb_q5_1_avx512(const cs_cb_job *J, int64_t i0, int64_t i1, int64_t r0, int64_t r1, float *y) {
    cs_cb_q5_body(J, i0, i1, r0, r1, y, CB_Q5_1);
}

/* Q8_0: one byte per row, 64 rows per load; weights + 128 (xor 0x80) as unsigned. */
static void cs_cb_q8_0_avx512(const cs_cb_job *J, int64_t i0, int64_t i1, int64_t r0, int64_t r1, float *y) {
    const cs_cb_desc *D = J->D;
    const int64_t R = J->R;
    for (int64_t r = r0; r < r1; r += 16) _mm512_storeu_ps(y + r, _mm512_setzero_ps());
    cs_cb_pf P;
    cs_cb_pf_init(&P, J, i0, i1, r0, r1);
    const uint8_t *cols[32];
    int32_t qq[8];
    const __m512i flip = _mm512_set1_epi8((char)0x80);
    const __m512 zero = _mm512_setzero_ps();
    for (int64_t i = i0; i < i1; i++) {
        const int64_t g = J->groups[i];
        const uint8_t *grp = J->w + (size_t)g * cs_cb_group_bytes(D, R);
        int32_t qsum;
        const int64_t nq = cs_cb_quads(J, i, grp, cols, qq, &qsum);
        const __m512i init = _mm512_set1_epi32(-128 * qsum);
        const __m512 dx = _mm512_set1_ps(J->d[g]);
        for (int64_t rb = r0; rb < r1; rb += 64) {
            cs_cb_pf_run(&P, cs_cb_block_bytes(J, i, r1 - rb < 64 ? r1 - rb : 64));
            const __mmask64 m = r1 - rb >= 64 ? ~(__mmask64)0 : ((__mmask64)1 << 32) - 1;
            __m512i a0 = init, a1 = init, a2 = init, a3 = init;
            for (int64_t qd = 0; qd < nq; qd++) {
                const __m512i qv = _mm512_set1_epi32(qq[qd]);
                const uint8_t *const *c = cols + 4 * qd;
                const __m512i L0 = _mm512_xor_si512(_mm512_maskz_loadu_epi8(m, c[0] + rb), flip);
                const __m512i L1 = _mm512_xor_si512(_mm512_maskz_loadu_epi8(m, c[1] + rb), flip);
                const __m512i L2 = _mm512_xor_si512(_mm512_maskz_loadu_epi8(m, c[2] + rb), flip);
                const __m512i L3 = _mm512_xor_si512(_mm512_maskz_loadu_epi8(m, c[3] + rb), flip);
                __m512i Q0, Q1, Q2, Q3;
                CS_INTERLEAVE4(L0, L1, L2, L3, Q0, Q1, Q2, Q3);
                a0 = _mm512_dpbusd_epi32(a0, Q0, qv);
                a1 = _mm512_dpbusd_epi32(a1, Q1, qv);
                a2 = _mm512_dpbusd_epi32(a2, Q2, qv);
                a3 = _mm512_dpbusd_epi32(a3, Q3, qv);
            }
            CS_T4X4(a0, a1, a2, a3);
            const __m512i v[4] = { a0, a1, a2, a3 };
            for (int64_t k = 0; k < 4 && rb + 16 * k < r1; k++) cs_cb_step16(y, rb + 16 * k, grp, R, CB_Q8_0, dx, zero, v[k]);
        }
    }
}

#define CS_CB_AVX512_KERNELS                 \
    [CB_Q4_0] = cs_cb_q4_0_avx512,           \
    [CB_Q4_1] = cs_cb_q4_1_avx512,           \
    [CB_Q8_0] = cs_cb_q8_0_avx512,           \
    [CB_Q5_0] = cs_cb_q5_0_avx512,           \
    [CB_Q5_1] = cs_cb_q5_1_avx512,

const cs_cb_table cs_cb_table_avx512 = { "avx512", { CS_CB_AVX512_KERNELS } };
const cs_cb_table cs_cb_table_avx512_vbmi = { "avx512vbmi", { CS_CB_AVX512_KERNELS } };
