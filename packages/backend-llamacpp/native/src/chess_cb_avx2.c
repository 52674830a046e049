/* Column-block decode kernels, AVX2 (+ FMA, F16C); compiled a second time with AVX-VNNI
 * by chess_cb_avx2_vnni.c (`avx2vnni`). The arithmetic of chess_cb.c's reference, bit for
 * bit; the scheme of chess_cb_avx512.c on 256-bit vectors (its header explains the quads,
 * the in-lane unpacks and why the rows are transposed back once per group):
 * - Q4: a 32-byte load is 2 units (64 rows) of a channel's nibble plane. Without VNNI the
 *   quad's products go through vpmaddubsw into int16 sums over the whole group (at most 8
 *   quads: |sum| <= 8 * 2 * 15 * 128 = 30720 < 2^15), widened once per group by vpmaddwd;
 *   with VNNI one vpdpbusd per step into int32.
 * - Q8_0: a load is 32 rows. Without VNNI each step is vpmaddubsw(|w|, sign(q, w)) (pairs
 *   <= 2 * 128 * 127 < 2^15; q is never -128: ggml's Q8_0 q lies in [-127, 127]) widened at
 *   once; with VNNI the weights + 128 as unsigned, as on AVX-512.
 * The two tables give the same results bit for bit (exact integer sums). */
#include <immintrin.h>

#include "chess_cb_internal.h"

#ifdef CS_AVX2_VNNI
#define CS_CB_NAME(x) x##_avx2vnni
#else
#define CS_CB_NAME(x) x##_avx2
#endif

/* the quads of listed group i (as in chess_cb_avx512.c) */
static inline int64_t CS_CB_NAME(cs_cb_quads)(const cs_cb_job *J, int64_t i, const uint8_t *grp, const uint8_t **cols,
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

#define CS_INTERLEAVE4_256(L0, L1, L2, L3, Q0, Q1, Q2, Q3)                          \
    do {                                                                            \
        const __m256i p01l = _mm256_unpacklo_epi8(L0, L1), p01h = _mm256_unpackhi_epi8(L0, L1); \
        const __m256i p23l = _mm256_unpacklo_epi8(L2, L3), p23h = _mm256_unpackhi_epi8(L2, L3); \
        Q0 = _mm256_unpacklo_epi16(p01l, p23l); Q1 = _mm256_unpackhi_epi16(p01l, p23l);          \
        Q2 = _mm256_unpacklo_epi16(p01h, p23h); Q3 = _mm256_unpackhi_epi16(p01h, p23h);          \
    } while (0)

/* y[r..r+8) += the reference's term of this group for 8 rows with integer sums acc. */
static inline void CS_CB_NAME(cs_cb_step8)(float *y, int64_t r, const uint8_t *grp, int64_t R, int kind, __m256 dx,
                                           __m256 sx, __m256i acc) {
    const __m256 dw = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(grp + 2 * r)));
    __m256 t = _mm256_mul_ps(_mm256_mul_ps(dw, dx), _mm256_cvtepi32_ps(acc));
    if (kind == CB_Q4_1) {
        const __m256 mw = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(grp + 2 * R + 2 * r)));
        t = _mm256_add_ps(t, _mm256_mul_ps(mw, sx));
    }
    _mm256_storeu_ps(y + r, _mm256_add_ps(_mm256_loadu_ps(y + r), t));
}

static inline __m256i CS_CB_NAME(cs_load_units)(const uint8_t *p, int64_t units) {
    return units == 2 ? _mm256_loadu_si256((const __m256i *)p) : _mm256_castsi128_si256(_mm_loadu_si128((const __m128i *)p));
}

static inline __attribute__((always_inline)) void CS_CB_NAME(cs_cb_q4_body)(const cs_cb_job *J, int64_t i0, int64_t i1,
                                                                            int64_t r0, int64_t r1, float *y, int kind) {
    const cs_cb_desc *D = J->D;
    const int64_t R = J->R;
    for (int64_t r = r0; r < r1; r += 8) _mm256_storeu_ps(y + r, _mm256_setzero_ps());
    cs_cb_pf P;
    cs_cb_pf_init(&P, J, i0, i1, r0, r1, 0);
    const uint8_t *cols[32];
    int32_t qq[8];
    const __m256i m4 = _mm256_set1_epi8(15);
#ifndef CS_AVX2_VNNI
    const __m256i ones = _mm256_set1_epi16(1);
#endif
    for (int64_t i = i0; i < i1; i++) {
        const int64_t g = J->groups[i];
        const uint8_t *grp = J->w + (size_t)g * cs_cb_group_bytes(D, R);
        int32_t qsum;
        const int64_t nq = CS_CB_NAME(cs_cb_quads)(J, i, grp, cols, qq, &qsum);
        const __m256i init = _mm256_set1_epi32(kind == CB_Q4_0 ? -8 * qsum : 0);
        const __m256 dx = _mm256_set1_ps(J->d[g]), sx = _mm256_set1_ps(kind == CB_Q4_1 ? J->s[g] : 0.0f);
        for (int64_t rb = r0; rb < r1; rb += 64) {
            cs_cb_pf_run(&P, cs_cb_block_bytes(J, i, r1 - rb < 64 ? r1 - rb : 64));
            const int64_t units = r1 - rb >= 64 ? 2 : 1;
#ifdef CS_AVX2_VNNI
            __m256i a0 = init, a1 = init, a2 = init, a3 = init, h0 = init, h1 = init, h2 = init, h3 = init;
#define CS_Q4_STEP(acc, v) acc = _mm256_dpbusd_avx_epi32(acc, v, qv)
#else
            __m256i a0 = _mm256_setzero_si256(), a1 = a0, a2 = a0, a3 = a0, h0 = a0, h1 = a0, h2 = a0, h3 = a0;
#define CS_Q4_STEP(acc, v) acc = _mm256_add_epi16(acc, _mm256_maddubs_epi16(v, qv))
#endif
            for (int64_t qd = 0; qd < nq; qd++) {
                const __m256i qv = _mm256_set1_epi32(qq[qd]);
                const uint8_t *const *c = cols + 4 * qd;
                const __m256i L0 = CS_CB_NAME(cs_load_units)(c[0] + rb / 2, units), L1 = CS_CB_NAME(cs_load_units)(c[1] + rb / 2, units);
                const __m256i L2 = CS_CB_NAME(cs_load_units)(c[2] + rb / 2, units), L3 = CS_CB_NAME(cs_load_units)(c[3] + rb / 2, units);
                __m256i Q0, Q1, Q2, Q3;
                CS_INTERLEAVE4_256(L0, L1, L2, L3, Q0, Q1, Q2, Q3);
                CS_Q4_STEP(a0, _mm256_and_si256(Q0, m4));
                CS_Q4_STEP(h0, _mm256_and_si256(_mm256_srli_epi16(Q0, 4), m4));
                CS_Q4_STEP(a1, _mm256_and_si256(Q1, m4));
                CS_Q4_STEP(h1, _mm256_and_si256(_mm256_srli_epi16(Q1, 4), m4));
                CS_Q4_STEP(a2, _mm256_and_si256(Q2, m4));
                CS_Q4_STEP(h2, _mm256_and_si256(_mm256_srli_epi16(Q2, 4), m4));
                CS_Q4_STEP(a3, _mm256_and_si256(Q3, m4));
                CS_Q4_STEP(h3, _mm256_and_si256(_mm256_srli_epi16(Q3, 4), m4));
            }
#undef CS_Q4_STEP
#ifndef CS_AVX2_VNNI
            a0 = _mm256_add_epi32(init, _mm256_madd_epi16(a0, ones)); a1 = _mm256_add_epi32(init, _mm256_madd_epi16(a1, ones));
            a2 = _mm256_add_epi32(init, _mm256_madd_epi16(a2, ones)); a3 = _mm256_add_epi32(init, _mm256_madd_epi16(a3, ones));
            h0 = _mm256_add_epi32(init, _mm256_madd_epi16(h0, ones)); h1 = _mm256_add_epi32(init, _mm256_madd_epi16(h1, ones));
            h2 = _mm256_add_epi32(init, _mm256_madd_epi16(h2, ones)); h3 = _mm256_add_epi32(init, _mm256_madd_epi16(h3, ones));
#endif
            /* lane k of a_j: rows 32k + 4j .. 4j+3 (h_j: + 16) */
            CS_CB_NAME(cs_cb_step8)(y, rb, grp, R, kind, dx, sx, _mm256_permute2x128_si256(a0, a1, 0x20));
            CS_CB_NAME(cs_cb_step8)(y, rb + 8, grp, R, kind, dx, sx, _mm256_permute2x128_si256(a2, a3, 0x20));
            CS_CB_NAME(cs_cb_step8)(y, rb + 16, grp, R, kind, dx, sx, _mm256_permute2x128_si256(h0, h1, 0x20));
            CS_CB_NAME(cs_cb_step8)(y, rb + 24, grp, R, kind, dx, sx, _mm256_permute2x128_si256(h2, h3, 0x20));
            if (units == 2) {
                CS_CB_NAME(cs_cb_step8)(y, rb + 32, grp, R, kind, dx, sx, _mm256_permute2x128_si256(a0, a1, 0x31));
                CS_CB_NAME(cs_cb_step8)(y, rb + 40, grp, R, kind, dx, sx, _mm256_permute2x128_si256(a2, a3, 0x31));
                CS_CB_NAME(cs_cb_step8)(y, rb + 48, grp, R, kind, dx, sx, _mm256_permute2x128_si256(h0, h1, 0x31));
                CS_CB_NAME(cs_cb_step8)(y, rb + 56, grp, R, kind, dx, sx, _mm256_permute2x128_si256(h2, h3, 0x31));
            }
        }
    }
}

static void CS_CB_NAME(cs_cb_q4_0)(const cs_cb_job *J, int64_t i0, int64_t i1, int64_t r0, int64_t r1, float *y) {
    CS_CB_NAME(cs_cb_q4_body)(J, i0, i1, r0, r1, y, CB_Q4_0);
}
static void CS_CB_NAME(cs_cb_q4_1)(const cs_cb_job *J, int64_t i0, int64_t i1, int64_t r0, int64_t r1, float *y) {
    CS_CB_NAME(cs_cb_q4_body)(J, i0, i1, r0, r1, y, CB_Q4_1);
}

static void CS_CB_NAME(cs_cb_q8_0)(const cs_cb_job *J, int64_t i0, int64_t i1, int64_t r0, int64_t r1, float *y) {
    const cs_cb_desc *D = J->D;
    const int64_t R = J->R;
    for (int64_t r = r0; r < r1; r += 8) _mm256_storeu_ps(y + r, _mm256_setzero_ps());
    cs_cb_pf P;
    cs_cb_pf_init(&P, J, i0, i1, r0, r1, 0);
    const uint8_t *cols[32];
    int32_t qq[8];
    const __m256 zero = _mm256_setzero_ps();
#ifdef CS_AVX2_VNNI
    const __m256i flip = _mm256_set1_epi8((char)0x80);
#else
    const __m256i ones = _mm256_set1_epi16(1);
#endif
    for (int64_t i = i0; i < i1; i++) {
        const int64_t g = J->groups[i];
        const uint8_t *grp = J->w + (size_t)g * cs_cb_group_bytes(D, R);
        int32_t qsum;
        const int64_t nq = CS_CB_NAME(cs_cb_quads)(J, i, grp, cols, qq, &qsum);
        const __m256 dx = _mm256_set1_ps(J->d[g]);
        for (int64_t rb = r0; rb < r1; rb += 32) {
            cs_cb_pf_run(&P, cs_cb_block_bytes(J, i, r1 - rb < 32 ? r1 - rb : 32));
#ifdef CS_AVX2_VNNI
            const __m256i init = _mm256_set1_epi32(-128 * qsum);
            __m256i a0 = init, a1 = init, a2 = init, a3 = init;
#else
            __m256i a0 = _mm256_setzero_si256(), a1 = a0, a2 = a0, a3 = a0;
#endif
            for (int64_t qd = 0; qd < nq; qd++) {
                const __m256i qv = _mm256_set1_epi32(qq[qd]);
                const uint8_t *const *c = cols + 4 * qd;
                __m256i L0 = _mm256_loadu_si256((const __m256i *)(c[0] + rb)), L1 = _mm256_loadu_si256((const __m256i *)(c[1] + rb));
                __m256i L2 = _mm256_loadu_si256((const __m256i *)(c[2] + rb)), L3 = _mm256_loadu_si256((const __m256i *)(c[3] + rb));
#ifdef CS_AVX2_VNNI
                L0 = _mm256_xor_si256(L0, flip); L1 = _mm256_xor_si256(L1, flip);
                L2 = _mm256_xor_si256(L2, flip); L3 = _mm256_xor_si256(L3, flip);
#endif
                __m256i Q0, Q1, Q2, Q3;
                CS_INTERLEAVE4_256(L0, L1, L2, L3, Q0, Q1, Q2, Q3);
#ifdef CS_AVX2_VNNI
#define CS_Q8_STEP(acc, v) acc = _mm256_dpbusd_avx_epi32(acc, v, qv)
#else
#define CS_Q8_STEP(acc, v) acc = _mm256_add_epi32(acc, _mm256_madd_epi16(_mm256_maddubs_epi16(_mm256_abs_epi8(v), _mm256_sign_epi8(qv, v)), ones))
#endif
                CS_Q8_STEP(a0, Q0);
                CS_Q8_STEP(a1, Q1);
                CS_Q8_STEP(a2, Q2);
                CS_Q8_STEP(a3, Q3);
#undef CS_Q8_STEP
            }
            /* lane k of a_j: rows 16k + 4j .. 4j+3 */
            CS_CB_NAME(cs_cb_step8)(y, rb, grp, R, CB_Q8_0, dx, zero, _mm256_permute2x128_si256(a0, a1, 0x20));
            CS_CB_NAME(cs_cb_step8)(y, rb + 8, grp, R, CB_Q8_0, dx, zero, _mm256_permute2x128_si256(a2, a3, 0x20));
            CS_CB_NAME(cs_cb_step8)(y, rb + 16, grp, R, CB_Q8_0, dx, zero, _mm256_permute2x128_si256(a0, a1, 0x31));
            CS_CB_NAME(cs_cb_step8)(y, rb + 24, grp, R, CB_Q8_0, dx, zero, _mm256_permute2x128_si256(a2, a3, 0x31));
        }
    }
}

/* the plain-C kernel (chess_cb_generic.h) for the other types */
static inline void CS_CB_NAME(cs_cbg_f16)(float *dst, const uint8_t *src, int64_t n) {
    int64_t k = 0;
    for (; k + 8 <= n; k += 8) _mm256_storeu_ps(dst + k, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(src + 2 * k))));
    for (; k < n; k++) dst[k] = cs_fp16_to_f32(cs_load_u16(src + 2 * k));
}
#ifdef CS_AVX2_VNNI
#define CS_CBG(name) cs_cbg_avx2vnni_##name
#else
#define CS_CBG(name) cs_cbg_avx2_##name
#endif
#define CS_CBG_F16 CS_CB_NAME(cs_cbg_f16)
#include "chess_cb_generic.h"

#ifdef CS_AVX2_VNNI
const cs_cb_table cs_cb_table_avx2_vnni = { "avx2vnni", {
#else
const cs_cb_table cs_cb_table_avx2 = { "avx2", {
#endif
    [CB_Q4_0] = CS_CB_NAME(cs_cb_q4_0),
    [CB_Q4_1] = CS_CB_NAME(cs_cb_q4_1),
    [CB_Q8_0] = CS_CB_NAME(cs_cb_q8_0),
    [CB_Q5_0] = CS_CBG(groups), [CB_Q5_1] = CS_CBG(groups), [CB_Q4_K] = CS_CBG(groups), [CB_Q5_K] = CS_CBG(groups),
    [CB_Q6_K] = CS_CBG(groups), [CB_F32] = CS_CBG(groups), [CB_F16] = CS_CBG(groups), [CB_BF16] = CS_CBG(groups),
}, NULL };
