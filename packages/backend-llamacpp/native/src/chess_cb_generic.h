/* Column-block decode kernel in plain C for the (ISA, type) pairs without a hand-written
 * one (AVX2 and NEON: Q5_0, Q5_1, K-quants; every ISA: F32, F16, BF16). Included by each
 * SIMD file, so the loops are vectorized for that file's target; the arithmetic of
 * chess_cb.c's reference, bit for bit (exact integer sums, the same float steps). The
 * reference reads every value through a per-element accessor, about 60x slower than the
 * SIMD kernels; this is about 3x slower than them.
 *
 * Per group and 32-row unit: each kept column's 32 values are decoded into int8 (offset
 * applied) and multiplied into int32 sums per row and sub-block; then the scales per row
 * and the float step. Float types: y[r] += w[r] * x per kept channel, a column at a time.
 *
 * The including file defines CS_CBG(name) (a per-file prefix) and
 * CS_CBG_F16(float *dst, const uint8_t *src, int64_t n) (fp16 -> f32, exact). */

/* 32 values of unit u of a column, minus the type's offset, as int8 */
#ifndef __AVX2__
static inline __attribute__((always_inline)) void CS_CBG(unit_vals)(int bits, const uint8_t *col, int64_t R, int64_t u, int off, int8_t *v) {
    if (bits == 8) {
        for (int b = 0; b < 32; b++) v[b] = (int8_t)col[32 * u + b];
        return;
    }
    /* the nibbles as 64-bit words (GCC made the byte loop scalar: a load and insert per byte) */
    uint8_t x[32];
    uint64_t n[2], w[4];
    memcpy(n, col + 16 * u, 16);
    const uint64_t m4 = 0x0f0f0f0f0f0f0f0full;
    w[0] = n[0] & m4; w[1] = n[1] & m4; w[2] = (n[0] >> 4) & m4; w[3] = (n[1] >> 4) & m4;
    memcpy(x, w, 32);
    if (bits == 5) {
        /* bit b of the unit's u32 -> 16 in byte b: 8 bits to 8 bytes by a multiply (byte k keeps
         * bit k) and a carry into each byte's top bit (a per-element variable shift did not vectorize) */
        uint32_t hb;
        memcpy(&hb, col + R / 2 + 4 * u, 4);
        for (int k = 0; k < 4; k++) {
            const uint64_t bb = ((uint64_t)((hb >> (8 * k)) & 0xffu) * 0x0101010101010101ull) & 0x8040201008040201ull;
            uint64_t xk;
            memcpy(&xk, x + 8 * k, 8);
            xk |= ((bb + 0x7f7f7f7f7f7f7f7full) & 0x8080808080808080ull) >> 3;
            memcpy(x + 8 * k, &xk, 8);
        }
    } else if (bits == 6) {
        const uint8_t *p2 = col + R / 2 + 8 * u;
        for (int b = 0; b < 8; b++) {
            x[b] |= (uint8_t)((p2[b] & 3) << 4);
            x[b + 8] |= (uint8_t)(((p2[b] >> 2) & 3) << 4);
            x[b + 16] |= (uint8_t)(((p2[b] >> 4) & 3) << 4);
            x[b + 24] |= (uint8_t)((p2[b] >> 6) << 4);
        }
    }
    for (int b = 0; b < 32; b++) v[b] = (int8_t)(x[b] - off);
}
#endif

#ifdef __AVX2__
/* x86: the 32 values of a unit as one vector (GCC turned the portable byte loops into a
 * load and insert per byte), minus the offset */
static inline __attribute__((always_inline)) __m256i CS_CBG(unit_vec)(int bits, const uint8_t *col, int64_t R, int64_t u, int off) {
    __m256i v;
    if (bits == 8) return _mm256_loadu_si256((const __m256i *)(col + 32 * u));
    const __m128i n = _mm_loadu_si128((const __m128i *)(col + 16 * u)), m4 = _mm_set1_epi8(15);
    v = _mm256_set_m128i(_mm_and_si128(_mm_srli_epi16(n, 4), m4), _mm_and_si128(n, m4));
    if (bits == 5) { /* byte b takes bit b of the unit's u32: byte b / 8 of it, tested against 1 << b % 8 */
        uint32_t hb;
        memcpy(&hb, col + R / 2 + 4 * u, 4);
        const __m256i sel = _mm256_shuffle_epi8(_mm256_set1_epi32((int32_t)hb),
                                                _mm256_setr_epi8(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1,
                                                                 2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3));
        const __m256i bm = _mm256_set1_epi64x((int64_t)0x8040201008040201ull);
        v = _mm256_or_si256(v, _mm256_and_si256(_mm256_cmpeq_epi8(_mm256_and_si256(sel, bm), bm), _mm256_set1_epi8(16)));
    } else if (bits == 6) { /* byte b takes bits 2(b/8) .. +1 of plane byte b % 8 */
        uint64_t p2;
        memcpy(&p2, col + R / 2 + 8 * u, 8);
        const __m256i x = _mm256_set1_epi64x((int64_t)p2), m3 = _mm256_set1_epi8(3);
        const __m256i s01 = _mm256_blend_epi32(_mm256_and_si256(x, m3), _mm256_and_si256(_mm256_srli_epi16(x, 2), m3), 0x0c);
        const __m256i s23 = _mm256_blend_epi32(_mm256_and_si256(_mm256_srli_epi16(x, 4), m3), _mm256_and_si256(_mm256_srli_epi16(x, 6), m3), 0xc0);
        v = _mm256_or_si256(v, _mm256_slli_epi16(_mm256_blend_epi32(s01, s23, 0xf0), 4));
    }
    return _mm256_sub_epi8(v, _mm256_set1_epi8((char)off));
}
#endif

static inline __attribute__((always_inline)) void CS_CBG(body)(const cs_cb_job *J, int64_t i0, int64_t i1, int64_t r0, int64_t r1,
                                                              float *y, int kind, int bits) {
    const cs_cb_desc *D = J->D;
    const int64_t R = J->R;
    for (int64_t r = r0; r < r1; r++) y[r] = 0.0f;
    cs_cb_pf P;
    cs_cb_pf_init(&P, J, i0, i1, r0, r1, 0);
    if (kind == CB_F32 || kind == CB_F16 || kind == CB_BF16) {
        float w[32];
        for (int64_t i = i0; i < i1; i++) {
            const int64_t g = J->groups[i];
            const uint8_t *col = J->w + (size_t)g * cs_cb_group_bytes(D, R);
            const float xv = J->xf[g];
            for (int64_t rb = r0; rb < r1; rb += 32) {
                const int64_t n = r1 - rb < 32 ? r1 - rb : 32;
                if ((rb - r0) % CS_CB_PF_ROWS == 0) cs_cb_pf_run(&P, cs_cb_block_bytes(J, i, r1 - rb < CS_CB_PF_ROWS ? r1 - rb : CS_CB_PF_ROWS));
                if (D->index == CB_F32) memcpy(w, col + 4 * rb, (size_t)n * 4);
                else if (D->index == CB_F16) CS_CBG_F16(w, col + 2 * rb, n);
                else
                    for (int64_t k = 0; k < n; k++) w[k] = cs_bits_to_f32((uint32_t)cs_load_u16(col + 2 * (rb + k)) << 16);
                for (int64_t k = 0; k < n; k++) y[rb + k] += w[k] * xv;
            }
        }
        return;
    }
    const int off = kind == CB_Q4_0 ? 8 : kind == CB_Q5_0 ? 16 : kind == CB_Q6_K ? 32 : 0;
    const int subw = kind == CB_Q6_K ? 16 : 32, nsub = (int)(D->B / subw);
    const uint8_t *cols[256];
    for (int64_t i = i0; i < i1; i++) {
        const int64_t g = J->groups[i];
        const uint8_t *grp = J->w + (size_t)g * cs_cb_group_bytes(D, R);
        const uint16_t *kc = J->kch + J->kofs[i];
        const int64_t nk = J->kofs[i + 1] - J->kofs[i];
        const int8_t *q = J->q + g * D->B;
        for (int64_t k = 0; k < nk; k++) cols[k] = cs_cb_col(D, grp, R, kc[k]);
        int used[16] = { 0 };
        for (int64_t k = 0; k < nk; k++) used[kc[k] / subw] = 1;
        int32_t bs[8] = { 0 };
        if (kind == CB_Q4_K || kind == CB_Q5_K)
            for (int j = 0; j < 8; j++) bs[j] = J->bsums[g * 16 + 2 * j] + J->bsums[g * 16 + 2 * j + 1];
        const float dx = J->d[g];
        for (int64_t rb = r0; rb < r1; rb += 32) {
            if ((rb - r0) % CS_CB_PF_ROWS == 0) cs_cb_pf_run(&P, cs_cb_block_bytes(J, i, r1 - rb < CS_CB_PF_ROWS ? r1 - rb : CS_CB_PF_ROWS));
            const int64_t u = rb / 32;
            int32_t acc[16][32];
            for (int j = 0; j < nsub; j++)
                if (used[j]) memset(acc[j], 0, sizeof acc[j]);
#ifdef __AVX2__
            /* int16 products summed over up to 4 channels of one sub-block (|v q| <= 32 * 128 for
             * the 4- to 6-bit values: |sum| <= 2^14; 8-bit values one channel at a time), then
             * widened into the int32 sums (a vpmulld per channel and 8 rows was the cost) */
            const int maxn = bits == 8 ? 1 : 4;
            for (int64_t k = 0; k < nk;) {
                const int sb = kc[k] / subw;
                __m256i lo = _mm256_setzero_si256(), hi = _mm256_setzero_si256();
                for (int n = 0; n < maxn && k < nk && kc[k] / subw == sb; n++, k++) {
                    const __m256i v = CS_CBG(unit_vec)(bits, cols[k], R, u, off), qb = _mm256_set1_epi16((int16_t)q[kc[k]]);
                    lo = _mm256_add_epi16(lo, _mm256_mullo_epi16(_mm256_cvtepi8_epi16(_mm256_castsi256_si128(v)), qb));
                    hi = _mm256_add_epi16(hi, _mm256_mullo_epi16(_mm256_cvtepi8_epi16(_mm256_extracti128_si256(v, 1)), qb));
                }
                __m256i *a8 = (__m256i *)acc[sb];
                _mm256_storeu_si256(a8, _mm256_add_epi32(_mm256_loadu_si256(a8), _mm256_cvtepi16_epi32(_mm256_castsi256_si128(lo))));
                _mm256_storeu_si256(a8 + 1, _mm256_add_epi32(_mm256_loadu_si256(a8 + 1), _mm256_cvtepi16_epi32(_mm256_extracti128_si256(lo, 1))));
                _mm256_storeu_si256(a8 + 2, _mm256_add_epi32(_mm256_loadu_si256(a8 + 2), _mm256_cvtepi16_epi32(_mm256_castsi256_si128(hi))));
                _mm256_storeu_si256(a8 + 3, _mm256_add_epi32(_mm256_loadu_si256(a8 + 3), _mm256_cvtepi16_epi32(_mm256_extracti128_si256(hi, 1))));
            }
#else
            for (int64_t k = 0; k < nk; k++) {
                const int32_t qv = q[kc[k]];
                int32_t *a = acc[kc[k] / subw];
                int8_t v[32];
                CS_CBG(unit_vals)(bits, cols[k], R, u, off, v);
                for (int b = 0; b < 32; b++) a[b] += (int32_t)v[b] * qv;
            }
#endif
            /* the float step of the reference, 32 rows */
            float dw[32], t[32];
            CS_CBG_F16(dw, grp + 2 * rb, 32);
            if (kind == CB_Q4_1 || kind == CB_Q5_1) {
                float mw[32];
                CS_CBG_F16(mw, grp + 2 * R + 2 * rb, 32);
                const float sx = J->s[g];
                for (int b = 0; b < 32; b++) t[b] = (dw[b] * dx) * (float)acc[0][b] + mw[b] * sx;
            } else if (kind == CB_Q4_K || kind == CB_Q5_K) {
                float dm[32];
                CS_CBG_F16(dm, grp + 2 * R + 2 * rb, 32);
                for (int b = 0; b < 32; b++) {
                    const uint8_t *sc12 = grp + 4 * R + 12 * (rb + b);
                    int32_t isum = 0, msum = 0;
                    for (int j = 0; j < 8; j++) {
                        int sc, m;
                        cs_k4_scale_min(j, sc12, &sc, &m);
                        if (used[j]) isum += sc * acc[j][b];
                        msum += m * bs[j];
                    }
                    t[b] = (dw[b] * dx) * (float)isum - (dm[b] * dx) * (float)msum;
                }
            } else if (kind == CB_Q6_K) {
                for (int b = 0; b < 32; b++) {
                    const int8_t *sc16 = (const int8_t *)(grp + 2 * R + 16 * (rb + b));
                    int32_t isum = 0;
                    for (int j = 0; j < 16; j++)
                        if (used[j]) isum += sc16[j] * acc[j][b];
                    t[b] = (dw[b] * dx) * (float)isum;
                }
            } else {
                for (int b = 0; b < 32; b++) t[b] = (dw[b] * dx) * (float)acc[0][b];
            }
            for (int b = 0; b < 32; b++) y[rb + b] += t[b];
        }
    }
}

/* one function per type: the kind and the value width are constants in each */
static void CS_CBG(groups)(const cs_cb_job *J, int64_t i0, int64_t i1, int64_t r0, int64_t r1, float *y) {
    switch (J->D->index) {
    case CB_Q8_0: CS_CBG(body)(J, i0, i1, r0, r1, y, CB_Q8_0, 8); break;
    case CB_Q4_0: CS_CBG(body)(J, i0, i1, r0, r1, y, CB_Q4_0, 4); break;
    case CB_Q4_1: CS_CBG(body)(J, i0, i1, r0, r1, y, CB_Q4_1, 4); break;
    case CB_Q5_0: CS_CBG(body)(J, i0, i1, r0, r1, y, CB_Q5_0, 5); break;
    case CB_Q5_1: CS_CBG(body)(J, i0, i1, r0, r1, y, CB_Q5_1, 5); break;
    case CB_Q4_K: CS_CBG(body)(J, i0, i1, r0, r1, y, CB_Q4_K, 4); break;
    case CB_Q5_K: CS_CBG(body)(J, i0, i1, r0, r1, y, CB_Q5_K, 5); break;
    case CB_Q6_K: CS_CBG(body)(J, i0, i1, r0, r1, y, CB_Q6_K, 6); break;
    default: CS_CBG(body)(J, i0, i1, r0, r1, y, J->D->index, 16); break;
    }
}
