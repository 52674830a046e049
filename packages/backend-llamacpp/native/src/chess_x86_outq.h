/* Output-sparse decode (dot_rows) of Q5_0, Q5_1, Q4_K, Q5_K and Q6_K on 256-bit vectors,
 * included by chess_avx2.c (the avx2 and avx2vnni tables) and chess_avx512.c (avx512,
 * avx512vbmi) after they define
 *   CS_OQ_DPWSSD(acc, a, b)  acc + the two int16 products of each dword lane (exact)
 *   CS_OQ_DPBUSD(acc, u, s)  acc + the four unsigned x signed byte products of each dword lane
 *                            (exact for the 5-bit values used here: |pair sum| <= 2*31*127)
 *   cs_oq_qh_bytes(qh)       the 32 bits at qh as bytes, 0x10 where the bit is set
 * and cs_nibbles_256, cs_hsum256 (both files have them).
 *
 * The activations are ggml's (cs_q8g, chess_dispatch.c), the block sums ggml's integers
 * exactly, the float steps those of the reference up to order: per row lanes of exact
 * int32 sums, converted and scaled once per block (K-quants: per super-block) by the
 * block's scale times the activation's. Four active rows at a time (CS_ROWS4_*), each
 * activation block loaded once for the four; rows CS_PF_ROWS ahead are prefetched a
 * block (K: every line of the super-block) per step.
 *
 * K-quants: a sub-block's 32 unsigned values (Q4_K 0..15, Q5_K 0..31, Q6_K 0..63) times
 * the activation bytes by vpmaddubsw (pairs <= 2*63*127 < 2^15: no saturation), then
 * times the sub-block's scale by CS_OQ_DPWSSD. Q4_K / Q5_K take their minimums from the
 * activation sums (bsums, 16 per super-block: one vpmaddwd against the minimums doubled);
 * Q6_K its -32 offset the same way (32 * sum_j sc_j * bsum_j). Q4_K / Q5_K scales go
 * through a small table, 8 dwords of (sc | sc << 16) per row, read back by broadcast loads
 * (the four rows' headers decoded together, cs_oq_k45_heads); Q6_K's
 * 16 signed scales are widened once, even sub-blocks in the low lane and odd ones in the
 * high lane, so that each 32-value quarter (sub-blocks 2i, 2i+1) takes its two scales by
 * one in-lane byte shuffle. Int32 lanes stay below 2^31 (Q6_K: |lane| <= 8 * 2 * 16002 *
 * 128 + 32 * 2 * 128 * 2032). */

#define CS_OQ_ALIGN32 __attribute__((aligned(32)))

/* every line of the four rows' super-block at byte offset o (S <= 256 bytes; no two
 * prefetched addresses more than 64 bytes apart, so that no line in between is skipped:
 * Q6_K's 210-byte blocks span up to five lines) */
#define CS_OQ_PREFETCH_SB(o)                                                                         \
    CS_ROWS4_PREFETCH(o) CS_ROWS4_PREFETCH((o) + 64) CS_ROWS4_PREFETCH((o) + 128)                    \
    if (S > 192) { CS_ROWS4_PREFETCH((o) + 192) }                                                    \
    CS_ROWS4_PREFETCH((o) + S - 1)

/* bit 4 of each byte: bit j of the bytes of qh (Q5_K: sub-block j's fifth bit) */
static inline __m256i cs_oq_bit4(__m256i qh, int j) {
    const __m256i v = j <= 4 ? _mm256_slli_epi16(qh, 4 - j) : _mm256_srli_epi16(qh, j - 4);
    return _mm256_and_si256(v, _mm256_set1_epi8(0x10));
}

/* Q4_K / Q5_K: the 16-byte headers (d, dmin, 12 scale bytes) of the four rows' super-block,
 * decoded together (a 4 x 4 dword transpose puts each field of the four rows in one register):
 * tbl[k][j] = sc_j | sc_j << 16 of row k (read back by broadcast loads), mn[k] = its 8
 * minimums as 16 words, each twice (one vpmaddwd against the 16 bsums gives the 8 min terms),
 * dm[2k] / dm[2k+1] = d / dmin of row k times the activation's scale. Against a scalar
 * decode per row (cs_kq_scales): Q4_K 7.2 -> 6.1 ns per row and super-block, one Zen 4
 * thread, rows in L2 (ggml's AVX2 vec_dot_q4_K_q8_K: 6.3). A 512-bit variant (two
 * sub-blocks per step, scales by a dword permute) was no faster there (6.5). */
static inline void cs_oq_k45_heads(const uint8_t *const *hd, float xd, int32_t tbl[4][8], __m256i mn[4], float dm[8]) {
    const __m128i h0 = _mm_loadu_si128((const __m128i *)hd[0]), h1 = _mm_loadu_si128((const __m128i *)hd[1]);
    const __m128i h2 = _mm_loadu_si128((const __m128i *)hd[2]), h3 = _mm_loadu_si128((const __m128i *)hd[3]);
    const __m128i t0 = _mm_unpacklo_epi32(h0, h1), t1 = _mm_unpacklo_epi32(h2, h3);
    const __m128i t2 = _mm_unpackhi_epi32(h0, h1), t3 = _mm_unpackhi_epi32(h2, h3);
    const __m128i dd = _mm_unpacklo_epi64(t0, t1), a = _mm_unpackhi_epi64(t0, t1); /* lane k: row k */
    const __m128i b = _mm_unpacklo_epi64(t2, t3), c = _mm_unpackhi_epi64(t2, t3);
    const __m128i lo6 = _mm_set1_epi8(0x3f), lo4 = _mm_set1_epi8(0x0f), top2 = _mm_set1_epi8(0x03);
    /* the packing of cs_kq_scales, on the four rows at once */
    const __m128i sl = _mm_and_si128(a, lo6), ml = _mm_and_si128(b, lo6);
    const __m128i sh = _mm_or_si128(_mm_and_si128(c, lo4), _mm_slli_epi32(_mm_and_si128(_mm_srli_epi32(a, 6), top2), 4));
    const __m128i mh = _mm_or_si128(_mm_and_si128(_mm_srli_epi32(c, 4), lo4), _mm_slli_epi32(_mm_and_si128(_mm_srli_epi32(b, 6), top2), 4));
    const __m128i s01 = _mm_unpacklo_epi32(sl, sh), s23 = _mm_unpackhi_epi32(sl, sh); /* rows 0, 1 | rows 2, 3: 8 bytes each */
    const __m128i m01 = _mm_unpacklo_epi32(ml, mh), m23 = _mm_unpackhi_epi32(ml, mh);
    const __m128i sp[2] = { s01, s23 }, mp[2] = { m01, m23 };
    for (int p = 0; p < 2; p++) {
        const __m256i w = _mm256_cvtepu8_epi16(sp[p]);                       /* lanes: row 2p, row 2p + 1 */
        const __m256i lo = _mm256_unpacklo_epi16(w, w), hi = _mm256_unpackhi_epi16(w, w);
        _mm256_store_si256((__m256i *)tbl[2 * p], _mm256_permute2x128_si256(lo, hi, 0x20));
        _mm256_store_si256((__m256i *)tbl[2 * p + 1], _mm256_permute2x128_si256(lo, hi, 0x31));
        mn[2 * p] = _mm256_cvtepu8_epi16(_mm_unpacklo_epi8(mp[p], mp[p]));
        mn[2 * p + 1] = _mm256_cvtepu8_epi16(_mm_unpackhi_epi8(mp[p], mp[p]));
    }
    _mm256_store_ps(dm, _mm256_mul_ps(_mm256_cvtph_ps(dd), _mm256_set1_ps(xd)));
}

#define CS_OQ_K45(NAME, BLOCK_T, Q5)                                                                  \
    static void NAME(float *y, const uint8_t *w, size_t nb1, const int32_t *rows, int64_t nrows,      \
                     const void *xa, int64_t n) {                                                      \
        const cs_q8g *x = (const cs_q8g *)xa;                                                          \
        const int64_t nb = n / CS_QK_K;                                                                \
        const size_t S = sizeof(BLOCK_T);                                                              \
        const __m256i m4 = _mm256_set1_epi8(0x0f);                                                     \
        int32_t tbl[4][8] CS_OQ_ALIGN32;                                                               \
        float dm[8] CS_OQ_ALIGN32;                                                                     \
        CS_ROWS4_BEGIN((size_t)nb * S)                                                                 \
            const uint8_t *const rr[4] = { r0, r1, r2, r3 };                                           \
            __m256 acc[4] = { _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps() }; \
            for (int64_t b = 0; b < nb; b++) {                                                         \
                const size_t o = (size_t)b * S;                                                        \
                CS_OQ_PREFETCH_SB(o)                                                                   \
                const int8_t *xq = x->qs + b * CS_QK_K;                                                \
                const __m256i bs16 = _mm256_loadu_si256((const __m256i *)(x->bsums + b * 16));         \
                const uint8_t *const hd[4] = { r0 + o, r1 + o, r2 + o, r3 + o };                       \
                __m256i mn[4];                                                                         \
                cs_oq_k45_heads(hd, x->d[b], tbl, mn, dm);                                             \
                for (int k = 0; k < 4; k++) {                                                          \
                    const BLOCK_T *blk = (const BLOCK_T *)(rr[k] + o);                                 \
                    const __m256i mins = _mm256_madd_epi16(mn[k], bs16);                               \
                    __m256i qh = _mm256_setzero_si256();                                               \
                    if (Q5) qh = _mm256_loadu_si256((const __m256i *)((const uint8_t *)blk + 16));     \
                    (void)qh;                                                                          \
                    __m256i ai = _mm256_setzero_si256();                                               \
                    _Pragma("GCC unroll 4") for (int c = 0; c < 4; c++) {                              \
                        const __m256i q = _mm256_loadu_si256((const __m256i *)(blk->qs + 32 * c));     \
                        __m256i lo = _mm256_and_si256(q, m4), hi = _mm256_and_si256(_mm256_srli_epi16(q, 4), m4); \
                        if (Q5) {                                                                      \
                            lo = _mm256_or_si256(lo, cs_oq_bit4(qh, 2 * c));                           \
                            hi = _mm256_or_si256(hi, cs_oq_bit4(qh, 2 * c + 1));                       \
                        }                                                                              \
                        ai = CS_OQ_DPWSSD(ai, _mm256_maddubs_epi16(lo, _mm256_loadu_si256((const __m256i *)(xq + 64 * c))), \
                                          _mm256_set1_epi32(tbl[k][2 * c]));                           \
                        ai = CS_OQ_DPWSSD(ai, _mm256_maddubs_epi16(hi, _mm256_loadu_si256((const __m256i *)(xq + 64 * c + 32))), \
                                          _mm256_set1_epi32(tbl[k][2 * c + 1]));                       \
                    }                                                                                  \
                    acc[k] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(ai), _mm256_set1_ps(dm[2 * k]), acc[k]); \
                    acc[k] = _mm256_fnmadd_ps(_mm256_cvtepi32_ps(mins), _mm256_set1_ps(dm[2 * k + 1]), acc[k]); \
                }                                                                                      \
            }                                                                                          \
        CS_ROWS4_END(cs_hsum256(acc[0]), cs_hsum256(acc[1]), cs_hsum256(acc[2]), cs_hsum256(acc[3]))   \
    }
CS_OQ_K45(dot_rows_q4_K, cs_block_q4_K, 0)
CS_OQ_K45(dot_rows_q5_K, cs_block_q5_K, 1)

static void dot_rows_q6_K(float *y, const uint8_t *w, size_t nb1, const int32_t *rows, int64_t nrows, const void *xa,
                          int64_t n) {
    const cs_q8g *x = (const cs_q8g *)xa;
    const int64_t nb = n / CS_QK_K;
    const size_t S = sizeof(cs_block_q6_K);
    const __m256i m4 = _mm256_set1_epi8(0x0f), m30 = _mm256_set1_epi8(0x30);
    /* scale bytes: even sub-blocks first, then odd (widened: even in the low lane) */
    const __m128i even_odd = _mm_setr_epi8(0, 2, 4, 6, 8, 10, 12, 14, 1, 3, 5, 7, 9, 11, 13, 15);
    CS_ROWS4_BEGIN((size_t)nb * S)
        const uint8_t *const rr[4] = { r0, r1, r2, r3 };
        __m256 acc[4] = { _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps() };
        for (int64_t b = 0; b < nb; b++) {
            const size_t o = (size_t)b * S;
            CS_OQ_PREFETCH_SB(o)
            const int8_t *xq = x->qs + b * CS_QK_K;
            const float xd = x->d[b];
            const __m256i bs16 = _mm256_loadu_si256((const __m256i *)(x->bsums + b * 16));
            for (int k = 0; k < 4; k++) {
                const cs_block_q6_K *blk = (const cs_block_q6_K *)(rr[k] + o);
                const __m128i s8 = _mm_loadu_si128((const __m128i *)blk->scales);
                const __m256i sc_eo = _mm256_cvtepi8_epi16(_mm_shuffle_epi8(s8, even_odd));
                /* the -32 offset: -32 * sum_j sc_j * bsum_j, spread over the lanes */
                __m256i ai = _mm256_sub_epi32(_mm256_setzero_si256(),
                                              _mm256_slli_epi32(_mm256_madd_epi16(_mm256_cvtepi8_epi16(s8), bs16), 5));
                _Pragma("GCC unroll 2") for (int h = 0; h < 2; h++) {
                    const __m256i A = _mm256_loadu_si256((const __m256i *)(blk->ql + 64 * h));
                    const __m256i B = _mm256_loadu_si256((const __m256i *)(blk->ql + 64 * h + 32));
                    const __m256i H = _mm256_loadu_si256((const __m256i *)(blk->qh + 32 * h));
                    const __m256i q[4] = {
                        _mm256_or_si256(_mm256_and_si256(A, m4), _mm256_and_si256(_mm256_slli_epi16(H, 4), m30)),
                        _mm256_or_si256(_mm256_and_si256(B, m4), _mm256_and_si256(_mm256_slli_epi16(H, 2), m30)),
                        _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(A, 4), m4), _mm256_and_si256(H, m30)),
                        _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(B, 4), m4), _mm256_and_si256(_mm256_srli_epi16(H, 2), m30)),
                    };
                    _Pragma("GCC unroll 4") for (int c = 0; c < 4; c++) {
                        const int i = 4 * h + c; /* quarter: sub-blocks 2i (low lane) and 2i + 1 (high lane) */
                        const __m256i sel = _mm256_set1_epi16((short)((2 * i) | (2 * i + 1) << 8));
                        ai = CS_OQ_DPWSSD(ai, _mm256_maddubs_epi16(q[c], _mm256_loadu_si256((const __m256i *)(xq + 128 * h + 32 * c))),
                                          _mm256_shuffle_epi8(sc_eo, sel));
                    }
                }
                acc[k] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(ai), _mm256_set1_ps(_cvtsh_ss(cs_load_u16(&blk->d)) * xd), acc[k]);
            }
        }
    CS_ROWS4_END(cs_hsum256(acc[0]), cs_hsum256(acc[1]), cs_hsum256(acc[2]), cs_hsum256(acc[3]))
}

/* Q5_0 / Q5_1: per block, the 32 values (nibbles | fifth bit) in element order, one exact
 * integer dot with the activation bytes (Q5_0's -16 offset as -16 * sum q in the first
 * lane), scaled by d_w * d_x; Q5_1's minimum term m_w * s_x per row in a float. */
#define CS_OQ_Q5(NAME, BLOCK_T, Q51)                                                                   \
    static void NAME(float *y, const uint8_t *w, size_t nb1, const int32_t *rows, int64_t nrows,      \
                     const void *xa, int64_t n) {                                                      \
        const cs_q8g *x = (const cs_q8g *)xa;                                                          \
        const int64_t nb = n / CS_QK;                                                                  \
        const size_t S = sizeof(BLOCK_T);                                                              \
        CS_ROWS4_BEGIN((size_t)nb * S)                                                                 \
            const uint8_t *const rr[4] = { r0, r1, r2, r3 };                                           \
            __m256 acc[4] = { _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps() }; \
            float mt[4] = { 0.0f, 0.0f, 0.0f, 0.0f };                                                  \
            for (int64_t b = 0; b < nb; b++) {                                                         \
                const size_t o = (size_t)b * S;                                                        \
                CS_ROWS4_PREFETCH(o)                                                                   \
                const __m256i xq = _mm256_loadu_si256((const __m256i *)(x->qs + b * CS_QK));           \
                const float xd = x->d[b];                                                              \
                const __m256i bias = _mm256_setr_epi32(Q51 ? 0 : -16 * (int32_t)x->bsums[b], 0, 0, 0, 0, 0, 0, 0); \
                _Pragma("GCC unroll 4") for (int k = 0; k < 4; k++) {                                  \
                    const BLOCK_T *blk = (const BLOCK_T *)(rr[k] + o);                                 \
                    const __m256i v = _mm256_or_si256(cs_nibbles_256(blk->qs), cs_oq_qh_bytes(blk->qh)); \
                    const __m256i dt = CS_OQ_DPBUSD(bias, v, xq);                                      \
                    acc[k] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(dt), _mm256_set1_ps(_cvtsh_ss(cs_load_u16(&blk->d)) * xd), acc[k]); \
                    if (Q51) mt[k] = fmaf(_cvtsh_ss(cs_load_u16((const uint8_t *)blk + 2)), x->s[b], mt[k]); \
                }                                                                                      \
            }                                                                                          \
        CS_ROWS4_END(cs_hsum256(acc[0]) + mt[0], cs_hsum256(acc[1]) + mt[1], cs_hsum256(acc[2]) + mt[2], \
                     cs_hsum256(acc[3]) + mt[3])                                                       \
    }
CS_OQ_Q5(dot_rows_q5_0, cs_block_q5_0, 0)
CS_OQ_Q5(dot_rows_q5_1, cs_block_q5_1, 1)
