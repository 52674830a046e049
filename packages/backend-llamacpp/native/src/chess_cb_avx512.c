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

/* The kept channels [k0, k1) of listed group i (indexes into its kept list) in quads:
 * column pointers and the four q bytes as one dword (a short last quad repeats a column
 * with q = 0); *qsum = sum of their q. */
static inline int64_t cs_cb_quads_range(const cs_cb_job *J, int64_t i, int64_t k0, int64_t k1, const uint8_t *grp,
                                        const uint8_t **cols, int32_t *qq, int32_t *qsum) {
    const cs_cb_desc *D = J->D;
    const uint16_t *kc = J->kch + J->kofs[i];
    const int8_t *q = J->q + J->groups[i] * D->B;
    const int64_t nk = k1 - k0, nq = (nk + 3) / 4;
    int32_t sum = 0;
    for (int64_t k = 0; k < 4 * nq; k++) {
        const int c = k < nk ? kc[k0 + k] : kc[k0 + 4 * (k / 4)];
        const int8_t qv = k < nk ? q[c] : 0;
        cols[k] = cs_cb_col(D, grp, J->R, c);
        sum += qv;
        if (k % 4 == 0) qq[k / 4] = 0;
        qq[k / 4] |= (int32_t)((uint32_t)(uint8_t)qv << (8 * (k % 4)));
    }
    *qsum = sum;
    return nq;
}
static inline int64_t cs_cb_quads(const cs_cb_job *J, int64_t i, const uint8_t *grp, const uint8_t **cols,
                                  int32_t *qq, int32_t *qsum) {
    return cs_cb_quads_range(J, i, 0, J->kofs[i + 1] - J->kofs[i], grp, cols, qq, qsum);
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
    cs_cb_pf_init(&P, J, i0, i1, r0, r1, 0);
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
typedef struct { __m512i idx_lo, idx_hi, bitm, m4, c16; } cs_q5c;

static inline cs_q5c cs_q5_consts(void) {
    /* vpshufb indexes (every lane holds the 16-byte plane of the 4 units): lane k, byte b takes
     * byte 4k + b/8 (row 32k + b) or 4k + 2 + b/8 (row 32k + 16 + b), bit b % 8 */
    uint8_t ilo[64], ihi[64], ibm[64];
    for (int k = 0; k < 4; k++)
        for (int b = 0; b < 16; b++) {
            ilo[16 * k + b] = (uint8_t)(4 * k + b / 8);
            ihi[16 * k + b] = (uint8_t)(4 * k + 2 + b / 8);
            ibm[16 * k + b] = (uint8_t)(1u << (b % 8));
        }
    return (cs_q5c){ _mm512_loadu_si512(ilo), _mm512_loadu_si512(ihi), _mm512_loadu_si512(ibm), _mm512_set1_epi8(15),
                     _mm512_set1_epi8(16) };
}

/* One channel's 5-bit values for rows [rb, rb + 128) in the load layout: *lo rows 32k + b,
 * *hi rows 32k + 16 + b (lane k, byte b); m / mb: the valid units' bytes. */
static inline void cs_q5_vals(const uint8_t *col, int64_t R, int64_t rb, __mmask64 m, __mmask16 mb, const cs_q5c *C,
                              __m512i *lo, __m512i *hi) {
    const __m512i L = _mm512_maskz_loadu_epi8(m, col + rb / 2);
    const __m512i b = _mm512_broadcast_i32x4(_mm_maskz_loadu_epi8(mb, col + R / 2 + rb / 8));
    const __mmask64 mlo = _mm512_test_epi8_mask(_mm512_shuffle_epi8(b, C->idx_lo), C->bitm);
    const __mmask64 mhi = _mm512_test_epi8_mask(_mm512_shuffle_epi8(b, C->idx_hi), C->bitm);
    const __m512i l4 = _mm512_and_si512(L, C->m4), h4 = _mm512_and_si512(_mm512_srli_epi16(L, 4), C->m4);
    *lo = _mm512_mask_add_epi8(l4, mlo, l4, C->c16);
    *hi = _mm512_mask_add_epi8(h4, mhi, h4, C->c16);
}

static inline __attribute__((always_inline)) void cs_cb_q5_body(const cs_cb_job *J, int64_t i0, int64_t i1, int64_t r0,
                                                               int64_t r1, float *y, int kind) {
    const cs_cb_desc *D = J->D;
    const int64_t R = J->R;
    for (int64_t r = r0; r < r1; r += 16) _mm512_storeu_ps(y + r, _mm512_setzero_ps());
    cs_cb_pf P;
    cs_cb_pf_init(&P, J, i0, i1, r0, r1, 0);
    const uint8_t *cols[32];
    int32_t qq[8];
    const cs_q5c C = cs_q5_consts();
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
                for (int j = 0; j < 4; j++) cs_q5_vals(cols[4 * qd + j], R, rb, m, mb, &C, &lo[j], &hi[j]);
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

/* Q4_K / Q5_K: a group is 256 channels in 8 sub-blocks of 32, each with a 6-bit scale and
 * min per row. Per 128-row block: the kept channels of each sub-block j give exact sums
 * isub_j per row (quads as above), isum += sc_j * isub_j (vpmulld; |isum| < 2^25), and
 * msum = sum_j m_j * (bsum_2j + bsum_2j+1) over the sub-blocks whose bsums are not 0. The
 * rows' 12 scale bytes come as three dwords per row (D0: bytes 0-3, D1: 4-7, D2: 8-11),
 * picked from 192 contiguous bytes by dword permutes; sc_j and m_j are shifts and masks
 * of them (cs_k4_scale_min in chess_cb_internal.h, 16 rows at a time). */
static inline void cs_k4_dwords(const uint8_t *s, __m512i *D) {
    const __m512i z0 = _mm512_loadu_si512(s), z1 = _mm512_loadu_si512(s + 64), z2 = _mm512_loadu_si512(s + 128);
    /* dword 3i + w of the 48: lanes whose index is below 32 from z0:z1, the others from z2 */
    for (int w = 0; w < 3; w++) {
        int32_t a[16], b[16];
        __mmask16 hi = 0;
        for (int i = 0; i < 16; i++) {
            const int d = 3 * i + w;
            a[i] = d < 32 ? d : 0;
            b[i] = d >= 32 ? d - 32 : 0;
            if (d >= 32) hi |= (__mmask16)(1u << i);
        }
        const __m512i lo = _mm512_permutex2var_epi32(z0, _mm512_loadu_si512(a), z1);
        D[w] = _mm512_mask_permutexvar_epi32(lo, hi, _mm512_loadu_si512(b), z2);
    }
}
static inline __m512i cs_k4_sc(const __m512i *D, int j) {
    const __m512i m63 = _mm512_set1_epi32(63), m15 = _mm512_set1_epi32(15), m3 = _mm512_set1_epi32(3);
    if (j < 4) return _mm512_and_si512(_mm512_srlv_epi32(D[0], _mm512_set1_epi32(8 * j)), m63);
    const int k = j - 4;
    return _mm512_or_si512(_mm512_and_si512(_mm512_srlv_epi32(D[2], _mm512_set1_epi32(8 * k)), m15),
                           _mm512_slli_epi32(_mm512_and_si512(_mm512_srlv_epi32(D[0], _mm512_set1_epi32(8 * k + 6)), m3), 4));
}
static inline __m512i cs_k4_min(const __m512i *D, int j) {
    const __m512i m63 = _mm512_set1_epi32(63), m15 = _mm512_set1_epi32(15), m3 = _mm512_set1_epi32(3);
    if (j < 4) return _mm512_and_si512(_mm512_srlv_epi32(D[1], _mm512_set1_epi32(8 * j)), m63);
    const int k = j - 4;
    return _mm512_or_si512(_mm512_and_si512(_mm512_srlv_epi32(D[2], _mm512_set1_epi32(8 * k + 4)), m15),
                           _mm512_slli_epi32(_mm512_and_si512(_mm512_srlv_epi32(D[1], _mm512_set1_epi32(8 * k + 6)), m3), 4));
}

/* Q6_K: 16 sub-blocks of 16 channels with an int8 scale per row; values 0..63 (offset -32,
 * entering as the start value -32 * sum q of the sub-block). A channel's 6-bit values: the
 * nibbles of its 128-row load plus 16 * the 2 bits of its 2-bit plane (unit k's 8 bytes
 * copied into lane k; byte b < 8 of a lane takes bits 0-1 / 4-5 of plane byte b for rows
 * 32k + b / 32k + 16 + b, byte b >= 8 bits 2-3 / 6-7 of byte b - 8). */
static inline __attribute__((always_inline)) void cs_q6_vals(const uint8_t *col, int64_t R, int64_t rb, __mmask64 m,
                                                            __mmask8 mq, __m512i idx_q, __m512i m4, __m512i m3,
                                                            __mmask64 hi8, __m512i *lo, __m512i *hi) {
    const __m512i L = _mm512_maskz_loadu_epi8(m, col + rb / 2);
    const __m512i X = _mm512_permutexvar_epi64(idx_q, _mm512_maskz_loadu_epi64(mq, col + R / 2 + rb / 4));
    const __m512i lo2 = _mm512_and_si512(_mm512_mask_blend_epi8(hi8, X, _mm512_srli_epi16(X, 2)), m3);
    const __m512i hi2 = _mm512_and_si512(_mm512_mask_blend_epi8(hi8, _mm512_srli_epi16(X, 4), _mm512_srli_epi16(X, 6)), m3);
    *lo = _mm512_or_si512(_mm512_and_si512(L, m4), _mm512_slli_epi16(lo2, 4));
    *hi = _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi16(L, 4), m4), _mm512_slli_epi16(hi2, 4));
}

/* One sub-block's quads for rows [rb, rb + 128): the exact sums in natural row order
 * (vector v = rows rb + 16v). bits 4: raw bytes interleaved once, nibbles split after (as
 * Q4_0); 5: cs_q5_vals per channel; 6: cs_q6_vals per channel. */
static inline __attribute__((always_inline)) void cs_cb_sub_sums(const uint8_t *const *cols, const int32_t *qq, int64_t q0,
                                                                int64_t q1, int64_t R, int64_t rb, __mmask64 m, __mmask16 mb,
                                                                int64_t units, int bits, __m512i init, const cs_q5c *C, __m512i *acc) {
    const __m512i idx_q = _mm512_setr_epi64(0, 0, 1, 1, 2, 2, 3, 3), m3 = _mm512_set1_epi8(3);
    const __mmask64 hi8 = 0xff00ff00ff00ff00ull;
    __m512i a0 = init, a1 = init, a2 = init, a3 = init, h0 = init, h1 = init, h2 = init, h3 = init;
    for (int64_t qd = q0; qd < q1; qd++) {
        const __m512i qv = _mm512_set1_epi32(qq[qd]);
        const uint8_t *const *c = cols + 4 * qd;
        __m512i Q0, Q1, Q2, Q3;
        if (bits == 4) {
            const __m512i L0 = _mm512_maskz_loadu_epi8(m, c[0] + rb / 2), L1 = _mm512_maskz_loadu_epi8(m, c[1] + rb / 2);
            const __m512i L2 = _mm512_maskz_loadu_epi8(m, c[2] + rb / 2), L3 = _mm512_maskz_loadu_epi8(m, c[3] + rb / 2);
            CS_INTERLEAVE4(L0, L1, L2, L3, Q0, Q1, Q2, Q3);
            a0 = _mm512_dpbusd_epi32(a0, _mm512_and_si512(Q0, C->m4), qv);
            h0 = _mm512_dpbusd_epi32(h0, _mm512_and_si512(_mm512_srli_epi16(Q0, 4), C->m4), qv);
            a1 = _mm512_dpbusd_epi32(a1, _mm512_and_si512(Q1, C->m4), qv);
            h1 = _mm512_dpbusd_epi32(h1, _mm512_and_si512(_mm512_srli_epi16(Q1, 4), C->m4), qv);
            a2 = _mm512_dpbusd_epi32(a2, _mm512_and_si512(Q2, C->m4), qv);
            h2 = _mm512_dpbusd_epi32(h2, _mm512_and_si512(_mm512_srli_epi16(Q2, 4), C->m4), qv);
            a3 = _mm512_dpbusd_epi32(a3, _mm512_and_si512(Q3, C->m4), qv);
            h3 = _mm512_dpbusd_epi32(h3, _mm512_and_si512(_mm512_srli_epi16(Q3, 4), C->m4), qv);
            continue;
        }
        __m512i lo[4], hi[4];
        if (bits == 5)
            for (int k = 0; k < 4; k++) cs_q5_vals(c[k], R, rb, m, mb, C, &lo[k], &hi[k]);
        else
            for (int k = 0; k < 4; k++) cs_q6_vals(c[k], R, rb, m, (__mmask8)((1u << units) - 1), idx_q, C->m4, m3, hi8, &lo[k], &hi[k]);
        CS_INTERLEAVE4(lo[0], lo[1], lo[2], lo[3], Q0, Q1, Q2, Q3);
        a0 = _mm512_dpbusd_epi32(a0, Q0, qv); a1 = _mm512_dpbusd_epi32(a1, Q1, qv);
        a2 = _mm512_dpbusd_epi32(a2, Q2, qv); a3 = _mm512_dpbusd_epi32(a3, Q3, qv);
        CS_INTERLEAVE4(hi[0], hi[1], hi[2], hi[3], Q0, Q1, Q2, Q3);
        h0 = _mm512_dpbusd_epi32(h0, Q0, qv); h1 = _mm512_dpbusd_epi32(h1, Q1, qv);
        h2 = _mm512_dpbusd_epi32(h2, Q2, qv); h3 = _mm512_dpbusd_epi32(h3, Q3, qv);
    }
    CS_T4X4(a0, a1, a2, a3);
    CS_T4X4(h0, h1, h2, h3);
    acc[0] = a0; acc[1] = h0; acc[2] = a1; acc[3] = h1; acc[4] = a2; acc[5] = h2; acc[6] = a3; acc[7] = h3;
}

/* Q4_K / Q5_K / Q6_K, sub-block by sub-block: a pass over the scale section first (this
 * thread's rows: isum = 0, msum, the sub-block scales as bytes, in J->kacc), then for each
 * sub-block with kept channels a pass over the rows adding sc_j * (its exact sums) to isum,
 * then the float step. Each pass streams 32 (Q6_K: 16) columns, as a Q4_0 group does;
 * 128-row blocks of all 256 columns at once touched 256 lines in 128 pages per block and ran
 * at a third of the bandwidth. */
static inline __attribute__((always_inline)) void cs_cb_k_body(const cs_cb_job *J, int64_t i0, int64_t i1, int64_t r0,
                                                              int64_t r1, float *y, int type) {
    const cs_cb_desc *D = J->D;
    const int64_t R = J->R;
    const int q6 = type == CB_Q6_K, nsub = q6 ? 16 : 8, subw = q6 ? 16 : 32;
    const int bits = type == CB_Q4_K ? 4 : type == CB_Q5_K ? 5 : 6;
    int32_t *isum = J->kacc, *msum = J->kacc + R;
    uint8_t *sc8 = (uint8_t *)(J->kacc + 2 * R); /* sub-block j's scales of row r at sc8[j * R + r] */
    for (int64_t r = r0; r < r1; r += 16) _mm512_storeu_ps(y + r, _mm512_setzero_ps());
    cs_cb_pf P;
    cs_cb_pf_init(&P, J, i0, i1, r0, r1, subw);
    const uint8_t *cols[256 + 16 * 3];
    int32_t qq[64 + 16];
    const cs_q5c C = cs_q5_consts();
    int32_t *sc32 = J->kacc + 2 * R; /* Q6_K: sub-block 4m + k's scale of row r is byte m of sc32[k * R + r] */
    const __m512i t44 = _mm512_broadcast_i32x4(_mm_setr_epi8(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15));
    const __m512i tbase = _mm512_setr_epi32(0, 4, 8, 12, 16, 20, 24, 28, 0, 4, 8, 12, 16, 20, 24, 28);
    const __m512i sh6[4] = { _mm512_set1_epi32(24), _mm512_set1_epi32(16), _mm512_set1_epi32(8), _mm512_set1_epi32(0) };
    for (int64_t i = i0; i < i1; i++) {
        const int64_t g = J->groups[i];
        const uint8_t *grp = J->w + (size_t)g * cs_cb_group_bytes(D, R);
        /* the quads of every sub-block, once per group: sub-block j's are qbeg[j] .. qbeg[j+1] */
        int64_t qbeg[17], nkj[16];
        int32_t qsums[16];
        qbeg[0] = 0;
        for (int j = 0; j < nsub; j++) {
            int64_t kb, ke;
            cs_cb_sub_range(J, i, subw, j, &kb, &ke);
            nkj[j] = ke - kb;
            qbeg[j + 1] = qbeg[j] + cs_cb_quads_range(J, i, kb, ke, grp, cols + 4 * qbeg[j], qq + qbeg[j], &qsums[j]);
        }
        int32_t bsp[4] = { 0 }; /* Q4_K / Q5_K: bsums of sub-blocks 2p, 2p+1 as int16 pairs (|bs| <= 32 * 127) */
        if (!q6)
            for (int p2 = 0; p2 < 4; p2++) {
                const int16_t *b = J->bsums + g * 16 + 4 * p2;
                bsp[p2] = (int32_t)((uint32_t)(uint16_t)(b[0] + b[1]) | (uint32_t)(uint16_t)(b[2] + b[3]) << 16);
            }
        /* pass 1: the scale section */
        for (int64_t rb = r0; rb < r1; rb += 128) {
            const int64_t n = r1 - rb < 128 ? r1 - rb : 128;
            cs_cb_pf_run(&P, cs_cb_scale_bytes(D, n));
            for (int64_t r = rb; r < rb + n; r += 16) {
                _mm512_storeu_si512(isum + r, _mm512_setzero_si512());
                if (q6) {
                    /* the 16 rows' 16 scale bytes (one row per lane) -> sc32[k][r] = bytes k, k+4, k+8,
                     * k+12 of row r: a 4x4 byte transpose in each lane, then a dword transpose */
                    const uint8_t *sp = grp + 2 * R + 16 * r;
                    __m512i Z[4];
                    for (int t = 0; t < 4; t++) Z[t] = _mm512_shuffle_epi8(_mm512_loadu_si512(sp + 64 * t), t44);
                    for (int k = 0; k < 4; k++) {
                        const __m512i idx = _mm512_add_epi32(tbase, _mm512_set1_epi32(k));
                        const __m512i lo = _mm512_permutex2var_epi32(Z[0], idx, Z[1]), hi = _mm512_permutex2var_epi32(Z[2], idx, Z[3]);
                        _mm512_storeu_si512(sc32 + k * R + r, _mm512_mask_blend_epi32(0xff00, lo, hi));
                    }
                    continue;
                }
                __m512i Dv[3];
                cs_k4_dwords(grp + 4 * R + 12 * r, Dv);
                __m512i ms = _mm512_setzero_si512();
                for (int p2 = 0; p2 < 4; p2++)
                    if (bsp[p2]) ms = _mm512_dpwssd_epi32(ms, _mm512_or_si512(cs_k4_min(Dv, 2 * p2), _mm512_slli_epi32(cs_k4_min(Dv, 2 * p2 + 1), 16)),
                                                          _mm512_set1_epi32(bsp[p2]));
                _mm512_storeu_si512(msum + r, ms);
                for (int j = 0; j < nsub; j++)
                    if (nkj[j]) _mm_storeu_si128((__m128i *)(sc8 + j * R + r), _mm512_cvtepi32_epi8(cs_k4_sc(Dv, j)));
            }
        }
        /* pass 2: each sub-block with kept channels */
        for (int j = 0; j < nsub; j++) {
            if (!nkj[j]) continue;
            const __m512i init = _mm512_set1_epi32(q6 ? -32 * qsums[j] : 0);
            for (int64_t rb = r0; rb < r1; rb += 128) {
                const int64_t n = r1 - rb < 128 ? r1 - rb : 128, units = n / 32;
                cs_cb_pf_run(&P, cs_cb_cols_bytes(D, nkj[j], n));
                const __mmask64 m = units == 4 ? ~(__mmask64)0 : ((__mmask64)1 << (16 * units)) - 1;
                const __mmask16 mb = (__mmask16)((1u << (4 * units)) - 1);
                __m512i acc[8];
                cs_cb_sub_sums(cols, qq, qbeg[j], qbeg[j + 1], R, rb, m, mb, units, bits, init, &C, acc);
                for (int64_t v = 0; v < 2 * units; v++) {
                    const int64_t r = rb + 16 * v;
                    const __m512i sc = q6 ? _mm512_srai_epi32(_mm512_sllv_epi32(_mm512_loadu_si512(sc32 + (j % 4) * R + r), sh6[j / 4]), 24)
                                          : _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)(sc8 + j * R + r)));
                    _mm512_storeu_si512(isum + r, _mm512_add_epi32(_mm512_loadu_si512(isum + r), _mm512_mullo_epi32(sc, acc[v])));
                }
            }
        }
        /* the float step: t = (d_w dx) isum - (dmin_w dx) msum (Q6_K: no minimum) */
        const __m512 dx = _mm512_set1_ps(J->d[g]);
        for (int64_t r = r0; r < r1; r += 16) {
            const __m512 dw = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(grp + 2 * r)));
            __m512 t = _mm512_mul_ps(_mm512_mul_ps(dw, dx), _mm512_cvtepi32_ps(_mm512_loadu_si512(isum + r)));
            if (!q6) {
                const __m512 dm = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(grp + 2 * R + 2 * r)));
                t = _mm512_sub_ps(t, _mm512_mul_ps(_mm512_mul_ps(dm, dx), _mm512_cvtepi32_ps(_mm512_loadu_si512(msum + r))));
            }
            _mm512_storeu_ps(y + r, _mm512_add_ps(_mm512_loadu_ps(y + r), t));
        }
    }
}

static void cs_cb_q4_k_avx512(const cs_cb_job *J, int64_t i0, int64_t i1, int64_t r0, int64_t r1, float *y) {
    cs_cb_k_body(J, i0, i1, r0, r1, y, CB_Q4_K);
}
static void cs_cb_q5_k_avx512(const cs_cb_job *J, int64_t i0, int64_t i1, int64_t r0, int64_t r1, float *y) {
    cs_cb_k_body(J, i0, i1, r0, r1, y, CB_Q5_K);
}
static void cs_cb_q6_k_avx512(const cs_cb_job *J, int64_t i0, int64_t i1, int64_t r0, int64_t r1, float *y) {
    cs_cb_k_body(J, i0, i1, r0, r1, y, CB_Q6_K);
}

/* Q8_0: one byte per row, 64 rows per load; weights + 128 (xor 0x80) as unsigned. */
static void cs_cb_q8_0_avx512(const cs_cb_job *J, int64_t i0, int64_t i1, int64_t r0, int64_t r1, float *y) {
    const cs_cb_desc *D = J->D;
    const int64_t R = J->R;
    for (int64_t r = r0; r < r1; r += 16) _mm512_storeu_ps(y + r, _mm512_setzero_ps());
    cs_cb_pf P;
    cs_cb_pf_init(&P, J, i0, i1, r0, r1, 0);
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

/* the plain-C kernel (chess_cb_generic.h) for the float types */
static inline void cs_cbg512_f16(float *dst, const uint8_t *src, int64_t n) {
    int64_t k = 0;
    for (; k + 16 <= n; k += 16) _mm512_storeu_ps(dst + k, _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(src + 2 * k))));
    for (; k < n; k++) dst[k] = cs_fp16_to_f32(cs_load_u16(src + 2 * k));
}
#define CS_CBG(name) cs_cbg512_##name
#define CS_CBG_F16 cs_cbg512_f16
#include "chess_cb_generic.h"

#define CS_CB_AVX512_KERNELS                 \
    [CB_F32] = cs_cbg512_groups,             \
    [CB_F16] = cs_cbg512_groups,             \
    [CB_BF16] = cs_cbg512_groups,            \
    [CB_Q4_0] = cs_cb_q4_0_avx512,           \
    [CB_Q4_1] = cs_cb_q4_1_avx512,           \
    [CB_Q8_0] = cs_cb_q8_0_avx512,           \
    [CB_Q5_0] = cs_cb_q5_0_avx512,           \
    [CB_Q5_1] = cs_cb_q5_1_avx512,           \
    [CB_Q4_K] = cs_cb_q4_k_avx512,           \
    [CB_Q5_K] = cs_cb_q5_k_avx512,           \
    [CB_Q6_K] = cs_cb_q6_k_avx512,

/* chess_cb_panel_x8 (chess_cb.c's portable version says what goes where): the eight
 * channels' words of one half-unit come in by one gather each for the low and the high
 * nibbles' channels, combine in one ternary-logic op, and one byte permutation (VBMI)
 * transposes the 8 x 8 byte matrix into the block's 64 contiguous nibble bytes. */
__attribute__((target("avx512vbmi"))) static void cs_cb_panel_x8_vbmi(const cs_cb_desc *D, const uint8_t *cb, int64_t G,
                                                                       int64_t R, int64_t u0, int64_t u1, uint8_t *out) {
    const cs_x8_desc X = cs_x8_desc_of(D);
    const size_t gb = cs_cb_group_bytes(D, R), colb = cs_cb_col_bytes(D, R);
    uint8_t tr[64];
    for (int i = 0; i < 8; i++)
        for (int j = 0; j < 8; j++) tr[8 * i + j] = (uint8_t)(8 * j + i); /* byte 8i + j <- byte 8j + i */
    const __m512i perm = _mm512_loadu_si512(tr), m4 = _mm512_set1_epi8(0x0f), flip = _mm512_set1_epi8((char)X.flip);
    __m512i vlo[16], vhi[16]; /* byte offsets of each chunk's eight low- and high-nibble columns */
    for (int h = 0; h < X.nh; h++) {
        int64_t ol[8], oh[8];
        for (int j = 0; j < 8; j++) {
            ol[j] = (int64_t)((size_t)(cs_x8_lo_channel(D, h) + j) * colb);
            oh[j] = (int64_t)((size_t)(cs_x8_lo_channel(D, h) + X.hi_add + j) * colb);
        }
        vlo[h] = _mm512_loadu_si512(ol);
        vhi[h] = _mm512_loadu_si512(oh);
    }
    const size_t step = (size_t)G * X.bytes; /* next 8 rows, same group */
    for (int64_t uc = u0; uc < u1; uc += 4) {
        const int64_t ue = u1 - uc < 4 ? u1 : uc + 4;
        for (int64_t g = 0; g < G; g++) {
            const uint8_t *grp = cb + (size_t)g * gb, *cols = grp + (size_t)R * D->sc;
            /* no software prefetch of the next group's columns (one line in each of B pages): the
             * prefetches queued behind the gathers for the core's few L1 fill buffers. Without them a
             * 7B Q4_K_M TEAL prefill (pp256, 2 threads, Intel Xeon) ran 14.72 instead of 14.48 tok/s;
             * prefetching into L2 instead was no faster than into L1. */
            for (int64_t u = uc; u < ue; u++) {
                uint8_t *blk0 = out + ((size_t)(4 * (u - u0)) * (size_t)G + (size_t)g) * X.bytes;
                for (int m = 0; m < 4; m++) cs_x8_header(D, grp, R, 32 * u + 8 * m, blk0 + (size_t)m * step);
                for (int half = 0; half < 2; half++) {
                    const uint8_t *base = cols + (size_t)(16 * u + 8 * half);
                    for (int h = 0; h < X.nh; h++) {
                        const __m512i lo = _mm512_i64gather_epi64(vlo[h], (const void *)base, 1);
                        const __m512i hi = _mm512_i64gather_epi64(vhi[h], (const void *)base, 1);
                        /* low nibbles of lo | low nibbles of hi << 4; high nibbles of lo >> 4 | those of hi */
                        const __m512i v0 = _mm512_ternarylogic_epi64(m4, lo, _mm512_slli_epi16(hi, 4), 0xca); /* m4 ? lo : hi << 4 (bitwise select) */
                        const __m512i v1 = _mm512_ternarylogic_epi64(m4, _mm512_srli_epi16(lo, 4), hi, 0xca);
                        _mm512_storeu_si512(blk0 + (size_t)half * step + X.qs_off + 64 * h,
                                            _mm512_xor_si512(_mm512_permutexvar_epi8(perm, v0), flip));
                        _mm512_storeu_si512(blk0 + (size_t)(half + 2) * step + X.qs_off + 64 * h,
                                            _mm512_xor_si512(_mm512_permutexvar_epi8(perm, v1), flip));
                    }
                }
            }
        }
    }
}

const cs_cb_table cs_cb_table_avx512 = { "avx512", { CS_CB_AVX512_KERNELS }, NULL };
const cs_cb_table cs_cb_table_avx512_vbmi = { "avx512vbmi", { CS_CB_AVX512_KERNELS }, cs_cb_panel_x8_vbmi };
