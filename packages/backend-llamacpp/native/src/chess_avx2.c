/* AVX2 + FMA + F16C kernels. Compiled with its own target flags; selected at run
 * time only when the CPU supports them (chess_dispatch.c).
 *
 * Compiled twice: as the `avx2` table, and by chess_avx2_vnni.c with CS_AVX2_VNNI and
 * -mavxvnni as `avx2vnni` (AVX-VNNI: the 256-bit vpdpbusd / vpdpwssd of Intel's client
 * cores since Alder Lake, its Atom cores since Gracemont, and Zen 5). The integer dot
 * steps go through cs_dpwssd / cs_dpbusd: one instruction with VNNI, vpmaddwd + vpaddd
 * or vpmaddubsw + vpmaddwd + vpaddd without. Every use keeps the vpmaddubsw pair sums
 * inside int16 (unsigned nibbles or |w| <= 128 times |x| <= 127), so both forms give the
 * same exact int32 sums and the two tables the same results bit for bit. */
#include <immintrin.h>
#include <math.h>

#include "chess_internal.h"

#define CS_ALIGN32 __attribute__((aligned(32)))

/* cs_q4_sum_*: a Q4 block dot over 8 registers of unsigned nibbles (gemm_rows), started
 * from an integer offset: with VNNI summed straight into int32; without, the vpmaddubsw
 * pairs are summed in int16 (|sum| <= 8 * 2 * 15 * 127 < 2^15) and widened once at the end. */
#ifdef CS_AVX2_VNNI
#define CS_AVX2_TABLE cs_table_avx2_vnni
#define CS_AVX2_NAME "avx2vnni"
/* acc + sum of the two int16 products per dword lane */
static inline __m256i cs_dpwssd(__m256i acc, __m256i a, __m256i b) { return _mm256_dpwssd_avx_epi32(acc, a, b); }
/* acc + sum of the four unsigned x signed byte products per dword lane */
static inline __m256i cs_dpbusd(__m256i acc, __m256i u, __m256i s) { return _mm256_dpbusd_avx_epi32(acc, u, s); }
static inline __m256i cs_q4_sum_init(int32_t offset) { return _mm256_set1_epi32(offset); }
static inline __m256i cs_q4_sum_step(__m256i s, __m256i u, __m256i x) { return cs_dpbusd(s, u, x); }
static inline __m256i cs_q4_sum_end(__m256i s, int32_t offset) { (void)offset; return s; }
#else
#define CS_AVX2_TABLE cs_table_avx2
#define CS_AVX2_NAME "avx2"
static inline __m256i cs_dpwssd(__m256i acc, __m256i a, __m256i b) { return _mm256_add_epi32(acc, _mm256_madd_epi16(a, b)); }
static inline __m256i cs_dpbusd(__m256i acc, __m256i u, __m256i s) {
    return _mm256_add_epi32(acc, _mm256_madd_epi16(_mm256_maddubs_epi16(u, s), _mm256_set1_epi16(1)));
}
static inline __m256i cs_q4_sum_init(int32_t offset) { (void)offset; return _mm256_setzero_si256(); }
static inline __m256i cs_q4_sum_step(__m256i s, __m256i u, __m256i x) { return _mm256_add_epi16(s, _mm256_maddubs_epi16(u, x)); }
static inline __m256i cs_q4_sum_end(__m256i s, int32_t offset) {
    return _mm256_add_epi32(_mm256_set1_epi32(offset), _mm256_madd_epi16(s, _mm256_set1_epi16(1)));
}
#endif

static inline float cs_h2f(const void *p) { return _cvtsh_ss(cs_load_u16(p)); }

static inline __m256 cs_abs_ps(__m256 v) { return _mm256_andnot_ps(_mm256_set1_ps(-0.0f), v); }
static inline float cs_hmax256(__m256 v) {
    __m128 m = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    m = _mm_max_ps(m, _mm_movehl_ps(m, m));
    m = _mm_max_ss(m, _mm_movehdup_ps(m));
    return _mm_cvtss_f32(m);
}
/* The 32 floats at x as four vectors, and the largest magnitude among them. */
static inline float cs_load32_absmax(const float *x, __m256 v[4]) {
    __m256 am = _mm256_setzero_ps();
    for (int i = 0; i < 4; i++) {
        v[i] = _mm256_loadu_ps(x + 8 * i);
        am = _mm256_max_ps(am, cs_abs_ps(v[i]));
    }
    return cs_hmax256(am);
}

static inline float cs_hsum256(__m256 v) {
    __m128 r = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    r = _mm_add_ps(r, _mm_movehl_ps(r, r));
    r = _mm_add_ss(r, _mm_movehdup_ps(r));
    return _mm_cvtss_f32(r);
}

/* 16 packed nibble bytes -> 32 bytes [lo nibbles | hi nibbles] (element order of a block):
 * the bytes broadcast to both lanes (a load, no shuffle), the high lane shifted by 4. */
static inline __m256i cs_nibbles_256(const uint8_t *qs) {
    const __m256i v = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)qs));
    return _mm256_and_si256(_mm256_srlv_epi64(v, _mm256_setr_epi64x(0, 0, 4, 4)), _mm256_set1_epi8(0x0f));
}

/* ---------------- to_float ---------------- */

static void to_float_f32(const uint8_t *src, float *dst, int64_t n) { memcpy(dst, src, (size_t)n * 4); }
static void to_float_f16(const uint8_t *src, float *dst, int64_t n) {
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(dst + i, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(src + 2 * i))));
    for (; i < n; i++) dst[i] = cs_h2f(src + 2 * i);
}
static void to_float_bf16(const uint8_t *src, float *dst, int64_t n) {
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(dst + i, _mm256_castsi256_ps(_mm256_slli_epi32(
                                      _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)(src + 2 * i))), 16)));
    for (; i < n; i++) dst[i] = cs_bf16_to_f32(cs_load_u16(src + 2 * i));
}
/* 32 bytes of small integers (unsigned if !SIGNED) -> 4 float vectors. */
static inline void cs_bytes_to_ps(__m256i q, int is_signed, __m256 out[4]) {
    const __m128i lo = _mm256_castsi256_si128(q), hi = _mm256_extracti128_si256(q, 1);
    if (is_signed) {
        out[0] = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(lo));
        out[1] = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_srli_si128(lo, 8)));
        out[2] = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(hi));
        out[3] = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_srli_si128(hi, 8)));
    } else {
        out[0] = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(lo));
        out[1] = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_srli_si128(lo, 8)));
        out[2] = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(hi));
        out[3] = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_srli_si128(hi, 8)));
    }
}
static void to_float_q8_0(const uint8_t *src, float *dst, int64_t n) {
    const cs_block_q8_0 *b = (const cs_block_q8_0 *)src;
    for (int64_t ib = 0; ib < n / CS_QK; ib++) {
        const __m256 d = _mm256_set1_ps(cs_h2f(&b[ib].d));
        __m256 v[4];
        cs_bytes_to_ps(_mm256_loadu_si256((const __m256i *)b[ib].qs), 1, v);
        for (int i = 0; i < 4; i++) _mm256_storeu_ps(dst + ib * CS_QK + 8 * i, _mm256_mul_ps(d, v[i]));
    }
}
static void to_float_q4_0(const uint8_t *src, float *dst, int64_t n) {
    const cs_block_q4_0 *b = (const cs_block_q4_0 *)src;
    const __m256 eight = _mm256_set1_ps(8.0f);
    for (int64_t ib = 0; ib < n / CS_QK; ib++) {
        const __m256 d = _mm256_set1_ps(cs_h2f(&b[ib].d));
        __m256 v[4];
        cs_bytes_to_ps(cs_nibbles_256(b[ib].qs), 0, v);
        for (int i = 0; i < 4; i++) _mm256_storeu_ps(dst + ib * CS_QK + 8 * i, _mm256_mul_ps(d, _mm256_sub_ps(v[i], eight)));
    }
}
static void to_float_q4_1(const uint8_t *src, float *dst, int64_t n) {
    const cs_block_q4_1 *b = (const cs_block_q4_1 *)src;
    for (int64_t ib = 0; ib < n / CS_QK; ib++) {
        const __m256 d = _mm256_set1_ps(cs_h2f(&b[ib].d)), m = _mm256_set1_ps(cs_h2f(&b[ib].m));
        __m256 v[4];
        cs_bytes_to_ps(cs_nibbles_256(b[ib].qs), 0, v);
        for (int i = 0; i < 4; i++) _mm256_storeu_ps(dst + ib * CS_QK + 8 * i, _mm256_fmadd_ps(d, v[i], m));
    }
}

/* ---------------- input-sparse accumulation ----------------
 * Float types: two active rows per pass over y, FMAs. Block types (Q4_0, Q4_1, Q8_0):
 * the 16-bit integer scheme of the AVX-512 kernels (chess_avx512.c, where the error
 * bound is derived): groups of CS_IG active rows, per (group, block) coefficients
 * c_j = x_j * d_jb scaled to int16 against the group's largest, row pairs multiplied
 * by vpmaddwd (two int16 products per 32-bit lane, exact int32 sums), the block's sum
 * scaled back to float once per group; the offsets (Q4_0: -8 c_j, Q4_1: x_j m_jb) in
 * a float constant per block. The same float operations in the same order as the
 * AVX-512 kernels, so the results are the same bit for bit (test_kernels primitives).
 * Against the float version it replaces (every weight converted to float and FMA'd, y
 * loaded and stored per row pair), one Zen 4 thread at 50%, ns per row and block,
 * 4096 columns in L3: Q4_0 2.25 -> 1.22, Q4_1 2.41 -> 1.38, Q8_0 1.83 -> 1.29;
 * SmolLM2's 576 columns: 2.28 -> 1.32, 2.70 -> 1.47, 1.86 -> 1.35; from DRAM Q4_0
 * 6.7 -> 11.7 GB/s, Q8_0 14.1 -> 20.7. The row-pair loop is not unrolled by hand
 * (with 16 vector registers the unrolled group spilled and was 10% slower). */

#define CS_MAXB (CS_IN_CHUNK / CS_QK)

/* The fp16 words at p, p + S, .., of nblk (<= 8) consecutive blocks (zero past nblk):
 * word inserts (a store-and-reload through a small array stalls on store forwarding). */
static inline __m128i cs_words8(const uint8_t *p, int S, int64_t nblk) {
    __m128i v = _mm_setzero_si128();
    switch (nblk >= 8 ? 8 : nblk) {
    case 8: v = _mm_insert_epi16(v, cs_load_u16(p + 7 * S), 7); /* fall through */
    case 7: v = _mm_insert_epi16(v, cs_load_u16(p + 6 * S), 6); /* fall through */
    case 6: v = _mm_insert_epi16(v, cs_load_u16(p + 5 * S), 5); /* fall through */
    case 5: v = _mm_insert_epi16(v, cs_load_u16(p + 4 * S), 4); /* fall through */
    case 4: v = _mm_insert_epi16(v, cs_load_u16(p + 3 * S), 3); /* fall through */
    case 3: v = _mm_insert_epi16(v, cs_load_u16(p + 2 * S), 2); /* fall through */
    case 2: v = _mm_insert_epi16(v, cs_load_u16(p + S), 1); /* fall through */
    case 1: v = _mm_insert_epi16(v, cs_load_u16(p), 0); /* fall through */
    default: break;
    }
    return v;
}

/* Coefficients of a group, 8 blocks at a time: the rows' scales times x_j (kept on the
 * stack: AVX2 has 16 vector registers), their maximum, the per-block constants mb, the
 * packed coefficient pairs cf[q][b] (row 2q in the low word, 2q + 1 in the high) and
 * the scale-back factors sb. Rows j >= g get zero coefficients. */
static inline void cs_prep_group(chess_type type, const uint8_t *const *r, const float *xv, int64_t g, int64_t nb,
                                 int32_t (*cf)[CS_MAXB], float *sb, float *mb) {
    const int q8 = type == CHESS_TYPE_Q8_0, q4_1 = type == CHESS_TYPE_Q4_1;
    const int S = q8 ? (int)sizeof(cs_block_q8_0) : q4_1 ? (int)sizeof(cs_block_q4_1) : (int)sizeof(cs_block_q4_0);
    const __m256 off = _mm256_set1_ps(-8.0f);
    __m256 s[CS_IG];
    for (int64_t b = 0; b < nb; b += 8) { /* CS_MAXB is a multiple of 8: whole-vector stores stay in the arrays */
        const int64_t nblk = nb - b < 8 ? nb - b : 8;
        __m256 amax = _mm256_setzero_ps(), macc = q8 ? _mm256_setzero_ps() : _mm256_load_ps(mb + b);
        for (int64_t j = 0; j < CS_IG; j++) {
            if (j < g) {
                const uint8_t *p = r[j] + (size_t)b * S;
                const __m256 vx = _mm256_set1_ps(xv[j]);
                s[j] = _mm256_mul_ps(vx, _mm256_cvtph_ps(cs_words8(p, S, nblk)));
                if (q4_1) macc = _mm256_fmadd_ps(vx, _mm256_cvtph_ps(cs_words8(p + 2, S, nblk)), macc);
                else if (!q8) macc = _mm256_fmadd_ps(s[j], off, macc);
                amax = _mm256_max_ps(amax, cs_abs_ps(s[j]));
            } else {
                s[j] = _mm256_setzero_ps();
            }
        }
        if (!q8) _mm256_store_ps(mb + b, macc);
        const __m256 nz = _mm256_cmp_ps(amax, _mm256_setzero_ps(), _CMP_GT_OQ);
        const __m256 inv = _mm256_and_ps(nz, _mm256_div_ps(_mm256_set1_ps(32767.0f), amax));
        _mm256_store_ps(sb + b, _mm256_mul_ps(amax, _mm256_set1_ps(1.0f / 32767.0f)));
        for (int64_t q = 0; q < CS_IG / 2; q++) {
            const __m256i q0 = _mm256_cvtps_epi32(_mm256_mul_ps(s[2 * q], inv));
            const __m256i q1 = _mm256_cvtps_epi32(_mm256_mul_ps(s[2 * q + 1], inv));
            _mm256_store_si256((__m256i *)(cf[q] + b), _mm256_blend_epi16(q0, _mm256_slli_epi32(q1, 16), 0xAA));
        }
    }
}

/* One row pair of one Q4 block. Bytes i of the two rows are interleaved into dword i
 * (unpack, then zero-extension to words): V0 holds bytes 0..7, V1 bytes 8..15; the low
 * nibbles are columns i (accumulators A0, A1), the high nibbles columns i + 16 (A2, A3). */
#define CS_PAIR_Q4(Q)                                                                                 \
    {                                                                                                 \
        const __m128i a_ = _mm_loadu_si128((const __m128i *)(r[2 * (Q)] + o + S - 16));              \
        const __m128i c_ = _mm_loadu_si128((const __m128i *)(r[2 * (Q) + 1] + o + S - 16));          \
        const __m256i v0_ = _mm256_cvtepu8_epi16(_mm_unpacklo_epi8(a_, c_));                          \
        const __m256i v1_ = _mm256_cvtepu8_epi16(_mm_unpackhi_epi8(a_, c_));                          \
        const __m256i k_ = _mm256_set1_epi32(cf[Q][b]);                                               \
        A0 = cs_dpwssd(A0, _mm256_and_si256(v0_, low4), k_);                                          \
        A1 = cs_dpwssd(A1, _mm256_and_si256(v1_, low4), k_);                                          \
        A2 = cs_dpwssd(A2, _mm256_srli_epi16(v0_, 4), k_);                                            \
        A3 = cs_dpwssd(A3, _mm256_srli_epi16(v1_, 4), k_);                                            \
    }
/* One row pair of one Q8_0 block: each row sign-extended to words (columns 0..15,
 * 16..31), the two rows' words interleaved in-lane: A0 holds columns 0-3 | 8-11, A1
 * 4-7 | 12-15, A2 16-19 | 24-27, A3 20-23 | 28-31 (put back in order at the store). */
#define CS_PAIR_Q8(Q)                                                                                 \
    {                                                                                                 \
        const uint8_t *a_ = r[2 * (Q)] + o + 2, *c_ = r[2 * (Q) + 1] + o + 2;                          \
        const __m256i a0_ = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)a_));              \
        const __m256i a1_ = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(a_ + 16)));       \
        const __m256i c0_ = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)c_));              \
        const __m256i c1_ = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(c_ + 16)));       \
        const __m256i k_ = _mm256_set1_epi32(cf[Q][b]);                                               \
        A0 = cs_dpwssd(A0, _mm256_unpacklo_epi16(a0_, c0_), k_);                                      \
        A1 = cs_dpwssd(A1, _mm256_unpackhi_epi16(a0_, c0_), k_);                                      \
        A2 = cs_dpwssd(A2, _mm256_unpacklo_epi16(a1_, c1_), k_);                                      \
        A3 = cs_dpwssd(A3, _mm256_unpackhi_epi16(a1_, c1_), k_);                                      \
    }

#define CS_IN_ACCUM_INT(NAME, TYPE, BLOCK_T, PAIR)                                                    \
    static void NAME(float *y, int64_t n, const uint8_t *w, size_t nb1, const int32_t *idx,           \
                     const float *xv, int64_t nact) {                                                 \
        const int64_t nb = n / CS_QK;                                                                 \
        const int S = (int)sizeof(BLOCK_T);                                                           \
        const int q8 = (TYPE) == CHESS_TYPE_Q8_0;                                                     \
        int32_t cf[CS_IG / 2][CS_MAXB] CS_ALIGN32;                                                    \
        float sb[CS_MAXB] CS_ALIGN32;                                                                 \
        float mb[CS_MAXB] CS_ALIGN32;                                                                 \
        const uint8_t *r[CS_IG], *p[CS_IG];                                                           \
        const __m256i low4 = _mm256_set1_epi16(0x0f);                                                \
        (void)low4;                                                                                   \
        memset(y, 0, (size_t)n * sizeof(float));                                                      \
        memset(mb, 0, sizeof(mb));                                                                    \
        cs_ig_prefetch_first(w, nb1, idx, nact, (size_t)nb * S);                                      \
        for (int64_t k = 0; k < nact; k += CS_IG) {                                                   \
            const int64_t g = cs_ig_rows(w, nb1, idx, nact, k, r, p);                                 \
            cs_prep_group(TYPE, r, xv + k, g, nb, cf, sb, mb);                                        \
            const int64_t nq = (g + 1) / 2;                                                           \
            for (int64_t b = 0; b < nb; b++) {                                                        \
                const size_t o = (size_t)b * S;                                                       \
                __m256i A0 = _mm256_setzero_si256(), A1 = _mm256_setzero_si256();                     \
                __m256i A2 = _mm256_setzero_si256(), A3 = _mm256_setzero_si256();                     \
                /* the next group's rows, into L2, one prefetch per 64-byte line */                   \
                if (S >= 32 || b % 3 == 0)                                                            \
                    for (int64_t j = 0; j < CS_IG; j++) cs_prefetch(p[j] + o);                        \
                for (int64_t q = 0; q < nq; q++) PAIR(q)                                              \
                __m256i c0 = A0, c1 = A1, c2 = A2, c3 = A3;                                           \
                if (q8) {                                                                             \
                    c0 = _mm256_permute2x128_si256(A0, A1, 0x20); c1 = _mm256_permute2x128_si256(A0, A1, 0x31); \
                    c2 = _mm256_permute2x128_si256(A2, A3, 0x20); c3 = _mm256_permute2x128_si256(A2, A3, 0x31); \
                }                                                                                     \
                const __m256 s = _mm256_set1_ps(sb[b]);                                               \
                float *yb = y + b * CS_QK;                                                            \
                _mm256_storeu_ps(yb, _mm256_fmadd_ps(_mm256_cvtepi32_ps(c0), s, _mm256_loadu_ps(yb))); \
                _mm256_storeu_ps(yb + 8, _mm256_fmadd_ps(_mm256_cvtepi32_ps(c1), s, _mm256_loadu_ps(yb + 8))); \
                _mm256_storeu_ps(yb + 16, _mm256_fmadd_ps(_mm256_cvtepi32_ps(c2), s, _mm256_loadu_ps(yb + 16))); \
                _mm256_storeu_ps(yb + 24, _mm256_fmadd_ps(_mm256_cvtepi32_ps(c3), s, _mm256_loadu_ps(yb + 24))); \
            }                                                                                         \
        }                                                                                             \
        if (!q8 && nact > 0) {                                                                        \
            for (int64_t b = 0; b < nb; b++) {                                                        \
                const __m256 m = _mm256_set1_ps(mb[b]);                                               \
                for (int i = 0; i < CS_QK; i += 8)                                                    \
                    _mm256_storeu_ps(y + b * CS_QK + i, _mm256_add_ps(_mm256_loadu_ps(y + b * CS_QK + i), m)); \
            }                                                                                         \
        }                                                                                             \
    }

CS_IN_ACCUM_INT(in_accum_q4_0, CHESS_TYPE_Q4_0, cs_block_q4_0, CS_PAIR_Q4)
CS_IN_ACCUM_INT(in_accum_q4_1, CHESS_TYPE_Q4_1, cs_block_q4_1, CS_PAIR_Q4)
CS_IN_ACCUM_INT(in_accum_q8_0, CHESS_TYPE_Q8_0, cs_block_q8_0, CS_PAIR_Q8)

#define CS_LD_F32(p) _mm256_loadu_ps((const float *)(p))
#define CS_LD_F16(p) _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(p)))
#define CS_LD_BF16(p) _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)(p))), 16))

#define CS_IN_ACCUM_FLOAT(NAME, ESZ, LD, SCALAR)                                                    \
    static void NAME(float *y, int64_t n, const uint8_t *w, size_t nb1, const int32_t *idx,         \
                     const float *xv, int64_t nact) {                                               \
        memset(y, 0, (size_t)n * sizeof(float));                                                    \
        for (int64_t j = 0; j < nact && j < CS_PF_ROWS; j++) cs_prefetch_span(w + (size_t)idx[j] * nb1, (size_t)n * (ESZ)); \
        int64_t k = 0;                                                                              \
        for (; k + 2 <= nact; k += 2) {                                                             \
            const uint8_t *r0 = w + (size_t)idx[k] * nb1, *r1 = w + (size_t)idx[k + 1] * nb1;       \
            const uint8_t *p0 = k + CS_PF_ROWS + 2 <= nact ? w + (size_t)idx[k + CS_PF_ROWS] * nb1 : r0; \
            const uint8_t *p1 = k + CS_PF_ROWS + 2 <= nact ? w + (size_t)idx[k + CS_PF_ROWS + 1] * nb1 : r1; \
            const __m256 s0 = _mm256_set1_ps(xv[k]), s1 = _mm256_set1_ps(xv[k + 1]);                \
            int64_t i = 0;                                                                          \
            for (; i + 8 <= n; i += 8) {                                                            \
                cs_prefetch(p0 + i * (ESZ));                                                        \
                cs_prefetch(p1 + i * (ESZ));                                                        \
                __m256 a = _mm256_loadu_ps(y + i);                                                  \
                a = _mm256_fmadd_ps(LD(r0 + i * (ESZ)), s0, a);                                     \
                a = _mm256_fmadd_ps(LD(r1 + i * (ESZ)), s1, a);                                     \
                _mm256_storeu_ps(y + i, a);                                                         \
            }                                                                                       \
            for (; i < n; i++) y[i] = fmaf(SCALAR(r1 + i * (ESZ)), xv[k + 1],                       \
                                           fmaf(SCALAR(r0 + i * (ESZ)), xv[k], y[i]));              \
        }                                                                                           \
        for (; k < nact; k++) {                                                                     \
            const uint8_t *r0 = w + (size_t)idx[k] * nb1;                                           \
            const __m256 s0 = _mm256_set1_ps(xv[k]);                                                \
            int64_t i = 0;                                                                          \
            for (; i + 8 <= n; i += 8)                                                              \
                _mm256_storeu_ps(y + i, _mm256_fmadd_ps(LD(r0 + i * (ESZ)), s0, _mm256_loadu_ps(y + i))); \
            for (; i < n; i++) y[i] = fmaf(SCALAR(r0 + i * (ESZ)), xv[k], y[i]);                    \
        }                                                                                           \
    }

static inline float cs_sc_f32(const uint8_t *p) { float f; memcpy(&f, p, 4); return f; }
static inline float cs_sc_f16(const uint8_t *p) { return cs_h2f(p); }
static inline float cs_sc_bf16(const uint8_t *p) { return cs_bf16_to_f32(cs_load_u16(p)); }

CS_IN_ACCUM_FLOAT(in_accum_f32, 4, CS_LD_F32, cs_sc_f32)
CS_IN_ACCUM_FLOAT(in_accum_f16, 2, CS_LD_F16, cs_sc_f16)
CS_IN_ACCUM_FLOAT(in_accum_bf16, 2, CS_LD_BF16, cs_sc_bf16)

/* ---------------- dot products ----------------
 * Block types: 8-bit dot per block with maddubs (unsigned x signed bytes -> int16
 * pairs) and madd (-> int32), converted and scaled into a float accumulator.
 * Q4_0: nibbles are unsigned, the -8 offset is applied from the activation sum.
 * Q8_0: sign trick (|w| x sign(x, w)) keeps maddubs within int16. */

/* Q8_0: active rows 4 at a time (CS_ROWS4_*, chess_internal.h), each activation block
 * loaded once for the four; the sign trick (|w| x sign(x, w)) keeps maddubs within int16,
 * the block scale d_w * d_x is scalar per row and block. */
static void dot_rows_q8_0(float *y, const uint8_t *w, size_t nb1, const int32_t *rows, int64_t nrows,
                          const void *xa, int64_t n) {
    CS_DOT_ROWS4_Q_PROLOGUE(cs_block_q8_0)
    const uint8_t *const rr[4] = { r0, r1, r2, r3 };
    __m256 a[4] = { _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps() };
    for (int64_t ib = 0; ib < nb; ib++) {
        const size_t o = (size_t)ib * S;
        CS_ROWS4_PREFETCH(o)
        const __m256i xq = _mm256_loadu_si256((const __m256i *)(x->qs + ib * CS_QK));
        const float xd = x->d[ib];
        for (int k = 0; k < 4; k++) {
            const cs_block_q8_0 *blk = (const cs_block_q8_0 *)(rr[k] + o);
            const __m256i wq = _mm256_loadu_si256((const __m256i *)blk->qs);
            const __m256i d = cs_dpbusd(_mm256_setzero_si256(), _mm256_sign_epi8(wq, wq), _mm256_sign_epi8(xq, wq));
            a[k] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(d), _mm256_set1_ps(cs_h2f(&blk->d) * xd), a[k]);
        }
    }
    CS_ROWS4_END(cs_hsum256(a[0]), cs_hsum256(a[1]), cs_hsum256(a[2]), cs_hsum256(a[3]))
}

/* Q4_0 / Q4_1: the four rows' scales times the activation's, d_kb * xd_b, 8 blocks at a
 * time into a small table (word inserts, as in_accum's preparation; Q4_1's minimum term
 * m_kb * xd_b * sum_b accumulates 8 blocks wide); the block step broadcasts its scale
 * from the table. Q4_0's -8 offset enters the integer dot through its first lane (bias
 * = -8 * sum of the activation block). Against a scalar fp16 conversion, multiply and
 * broadcast per row and block, W_up decode in the kernel benchmark (ggml and these
 * kernels built for AVX2 only, 2 threads, 4 interleaved pairs of builds): Q4_1 1.11-1.20x
 * faster, Q4_0 0.98-1.11x. Q8_0 keeps the scalar scale (as on AVX-512). */
#define CS_DOT_ROWS4_Q4(NAME, BLOCK_T, HAS_MIN)                                                     \
    static void NAME(float *y, const uint8_t *w, size_t nb1, const int32_t *rows, int64_t nrows,   \
                     const void *xa, int64_t n) {                                                   \
        float sc[4][8] CS_ALIGN32;                                                                  \
        CS_DOT_ROWS4_Q_PROLOGUE(BLOCK_T)                                                             \
        const uint8_t *const rr[4] = { r0, r1, r2, r3 };                                            \
        __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps(), a2 = _mm256_setzero_ps(), a3 = _mm256_setzero_ps(); \
        __m256 mv[4] = { _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps() }; \
        for (int64_t b0 = 0; b0 < nb; b0 += 8) {                                                    \
            const int64_t be = nb - b0 < 8 ? nb - b0 : 8;                                           \
            const __m256i lanes = _mm256_cmpgt_epi32(_mm256_set1_epi32((int)be), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7)); \
            const __m256 xd8 = _mm256_maskload_ps(x->d + b0, lanes);                                \
            const __m256 xs8 = HAS_MIN ? _mm256_maskload_ps(x->s + b0, lanes) : _mm256_setzero_ps();   \
            _Pragma("GCC unroll 4") for (int k = 0; k < 4; k++) {                                   \
                const uint8_t *q = rr[k] + (size_t)b0 * S;                                          \
                _mm256_store_ps(sc[k], _mm256_mul_ps(_mm256_cvtph_ps(cs_words8(q, (int)S, be)), xd8)); \
                if (HAS_MIN)                                                                        \
                    mv[k] = _mm256_fmadd_ps(_mm256_cvtph_ps(cs_words8(q + 2, (int)S, be)), xs8, mv[k]); \
            }                                                                                       \
            for (int64_t j = 0; j < be; j++) {                                                      \
                const int64_t ib = b0 + j;                                                          \
                const size_t o = (size_t)ib * S;                                                    \
                CS_ROWS4_PREFETCH(o)                                                                \
                const __m256i xq = _mm256_loadu_si256((const __m256i *)(x->qs + ib * CS_QK));      \
                const __m256i bias = _mm256_castsi128_si256(_mm_cvtsi32_si128(HAS_MIN ? 0 : -8 * x->sum[ib])); \
                CS_STEP_Q4(r0 + o + S - 16, a0, sc[0][j]) CS_STEP_Q4(r1 + o + S - 16, a1, sc[1][j]) \
                CS_STEP_Q4(r2 + o + S - 16, a2, sc[2][j]) CS_STEP_Q4(r3 + o + S - 16, a3, sc[3][j]) \
            }                                                                                       \
        }                                                                                           \
        CS_ROWS4_END(cs_hsum256(a0) + (HAS_MIN ? cs_hsum256(mv[0]) : 0.0f),                        \
                     cs_hsum256(a1) + (HAS_MIN ? cs_hsum256(mv[1]) : 0.0f),                        \
                     cs_hsum256(a2) + (HAS_MIN ? cs_hsum256(mv[2]) : 0.0f),                        \
                     cs_hsum256(a3) + (HAS_MIN ? cs_hsum256(mv[3]) : 0.0f))                        \
    }
/* QS: the block's 16 nibble bytes (its last 16) */
#define CS_STEP_Q4(QS, A, SCALE)                                                                    \
    {                                                                                               \
        const __m256i dt = cs_dpbusd(bias, cs_nibbles_256(QS), xq);                                 \
        A = _mm256_fmadd_ps(_mm256_cvtepi32_ps(dt), _mm256_set1_ps(SCALE), A);                      \
    }

CS_DOT_ROWS4_Q4(dot_rows_q4_0, cs_block_q4_0, 0)
CS_DOT_ROWS4_Q4(dot_rows_q4_1, cs_block_q4_1, 1)

/* Float types: 8 elements per step, scalar tail (n need not be a multiple of 8). */
#define CS_DOT_ROWS4_FLOAT(NAME, ESZ, LD, SCALAR)                                                   \
    static void NAME(float *y, const uint8_t *w, size_t nb1, const int32_t *rows, int64_t nrows,   \
                     const void *xa, int64_t n) {                                                   \
        const float *x = (const float *)xa;                                                         \
        CS_ROWS4_BEGIN((size_t)n * (ESZ))                                                            \
        __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps(), a2 = _mm256_setzero_ps(), a3 = _mm256_setzero_ps(); \
        float c0 = 0.0f, c1 = 0.0f, c2 = 0.0f, c3 = 0.0f;                                           \
        int64_t i = 0;                                                                              \
        for (; i + 8 <= n; i += 8) {                                                                \
            const size_t o = (size_t)i * (ESZ);                                                     \
            CS_ROWS4_PREFETCH(o)                                                                    \
            const __m256 xv = _mm256_loadu_ps(x + i);                                               \
            a0 = _mm256_fmadd_ps(LD(r0 + o), xv, a0);                                               \
            a1 = _mm256_fmadd_ps(LD(r1 + o), xv, a1);                                               \
            a2 = _mm256_fmadd_ps(LD(r2 + o), xv, a2);                                               \
            a3 = _mm256_fmadd_ps(LD(r3 + o), xv, a3);                                               \
        }                                                                                           \
        for (; i < n; i++) {                                                                        \
            c0 += SCALAR(r0 + i * (ESZ)) * x[i]; c1 += SCALAR(r1 + i * (ESZ)) * x[i];               \
            c2 += SCALAR(r2 + i * (ESZ)) * x[i]; c3 += SCALAR(r3 + i * (ESZ)) * x[i];               \
        }                                                                                           \
        CS_ROWS4_END(cs_hsum256(a0) + c0, cs_hsum256(a1) + c1, cs_hsum256(a2) + c2, cs_hsum256(a3) + c3) \
    }
CS_DOT_ROWS4_FLOAT(dot_rows_f32, 4, CS_LD_F32, cs_sc_f32)
CS_DOT_ROWS4_FLOAT(dot_rows_f16, 2, CS_LD_F16, cs_sc_f16)
CS_DOT_ROWS4_FLOAT(dot_rows_bf16, 2, CS_LD_BF16, cs_sc_bf16)

/* Q5_0, Q5_1 and the K-quants (output-sparse only): chess_x86_outq.h */
#define CS_OQ_DPWSSD cs_dpwssd
#define CS_OQ_DPBUSD cs_dpbusd
/* the 32 bits at p as bytes, 0x10 where set: byte i takes byte i/8 of the word, tests bit i%8 */
static inline __m256i cs_oq_qh_bytes(const uint8_t *p) {
    uint32_t u;
    memcpy(&u, p, 4);
    const __m256i v = _mm256_shuffle_epi8(_mm256_set1_epi32((int)u),
                                          _mm256_setr_epi64x(0, 0x0101010101010101, 0x0202020202020202, 0x0303030303030303));
    const __m256i bit = _mm256_set1_epi64x((long long)0x8040201008040201ull);
    return _mm256_and_si256(_mm256_cmpeq_epi8(_mm256_and_si256(v, bit), bit), _mm256_set1_epi8(0x10));
}
#include "chess_x86_outq.h"

/* ---------------- activation quantizer (same arithmetic as cs_quant_x8_ref) ---------------- */

static void quant_x8(const float *x, const cs_q8x *q, int64_t n) {
    for (int64_t ib = 0; ib < n / CS_QK; ib++) {
        __m256 v[4];
        const float amax = cs_load32_absmax(x + ib * CS_QK, v);
        const float d = amax / 127.0f, id = cs_q8_inv_scale(amax);
        const __m256 vid = _mm256_set1_ps(id);
        __m256i iv[4];
        for (int i = 0; i < 4; i++)
            iv[i] = _mm256_cvtps_epi32(_mm256_round_ps(_mm256_mul_ps(v[i], vid), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
        int32_t tmp[32] CS_ALIGN32;
        int32_t sum = 0;
        for (int i = 0; i < 4; i++) _mm256_store_si256((__m256i *)(tmp + 8 * i), iv[i]);
        for (int i = 0; i < 32; i++) { q->qs[ib * CS_QK + i] = (int8_t)tmp[i]; sum += tmp[i]; }
        q->d[ib] = cs_round_fp16(d);
        q->sum[ib] = sum;
        q->s[ib] = cs_round_fp16(d * (float)sum);
    }
}

/* ---------------- prefill micro-kernel: 4 tokens x 16 columns in 8 registers ---------------- */

static void gemm(float *Y, size_t ldy, const float *A, size_t lda, const float *P, size_t ldp, int64_t nt,
                 int64_t kc, int64_t n) {
    for (int64_t t = 0; t < nt; t += 4) {
        const int tn = nt - t < 4 ? (int)(nt - t) : 4;
        int64_t c = 0;
        for (; c + 16 <= n; c += 16) {
            __m256 acc[4][2];
            for (int i = 0; i < 4; i++) {
                acc[i][0] = i < tn ? _mm256_loadu_ps(Y + (size_t)(t + i) * ldy + c) : _mm256_setzero_ps();
                acc[i][1] = i < tn ? _mm256_loadu_ps(Y + (size_t)(t + i) * ldy + c + 8) : _mm256_setzero_ps();
            }
            const float *pk = P + c;
            for (int64_t k = 0; k < kc; k++, pk += ldp) {
                const __m256 p0 = _mm256_loadu_ps(pk), p1 = _mm256_loadu_ps(pk + 8);
                for (int i = 0; i < 4; i++) {
                    const __m256 a = _mm256_set1_ps(i < tn ? A[(size_t)(t + i) * lda + k] : 0.0f);
                    acc[i][0] = _mm256_fmadd_ps(a, p0, acc[i][0]);
                    acc[i][1] = _mm256_fmadd_ps(a, p1, acc[i][1]);
                }
            }
            for (int i = 0; i < tn; i++) {
                _mm256_storeu_ps(Y + (size_t)(t + i) * ldy + c, acc[i][0]);
                _mm256_storeu_ps(Y + (size_t)(t + i) * ldy + c + 8, acc[i][1]);
            }
        }
        for (; c < n; c++)
            for (int i = 0; i < tn; i++) {
                float s = Y[(size_t)(t + i) * ldy + c];
                for (int64_t k = 0; k < kc; k++) s = fmaf(A[(size_t)(t + i) * lda + k], P[(size_t)k * ldp + c], s);
                Y[(size_t)(t + i) * ldy + c] = s;
            }
    }
}

/* ---------------- 16-bit integer prefill (contract in chess_internal.h) ----------------
 * The AVX-512 kernels' arithmetic on 256-bit vectors (vpmaddwd + vpaddd for vpdpwssd):
 * the same int16 operands, exact int32 sums and float steps, so the same results bit
 * for bit. B's 16-column dword blocks are read as two 8-column halves. */

static void pack_b_i16(const float *P, size_t ldp, const float *rinv, int64_t kc, int64_t n, int32_t *B, float *e) {
    const int64_t ncb = n / 16;
    for (int64_t g = 0; g < kc / 32; g++) {
        for (int64_t cb = 0; cb < ncb; cb++) {
            for (int h = 0; h < 2; h++) {
                const float *p = P + (size_t)(32 * g) * ldp + (size_t)(16 * cb + 8 * h);
                __m256 amax = _mm256_setzero_ps();
                for (int64_t k = 0; k < 32; k++)
                    amax = _mm256_max_ps(amax, cs_abs_ps(_mm256_mul_ps(_mm256_loadu_ps(p + (size_t)k * ldp), _mm256_set1_ps(rinv[32 * g + k]))));
                const __m256 nz = _mm256_cmp_ps(amax, _mm256_setzero_ps(), _CMP_GT_OQ);
                const __m256 inv = _mm256_and_ps(nz, _mm256_div_ps(_mm256_set1_ps(4095.0f), amax));
                _mm256_storeu_ps(e + (size_t)g * (size_t)n + (size_t)(16 * cb + 8 * h), _mm256_div_ps(amax, _mm256_set1_ps(4095.0f)));
                int32_t *dst = B + (size_t)((g * ncb + cb) * 16) * 16 + 8 * h;
                for (int64_t st = 0; st < 16; st++) {
                    const __m256 v0 = _mm256_mul_ps(_mm256_loadu_ps(p + (size_t)(2 * st) * ldp), _mm256_set1_ps(rinv[32 * g + 2 * st]));
                    const __m256 v1 = _mm256_mul_ps(_mm256_loadu_ps(p + (size_t)(2 * st + 1) * ldp), _mm256_set1_ps(rinv[32 * g + 2 * st + 1]));
                    const __m256i q0 = _mm256_cvtps_epi32(_mm256_mul_ps(v0, inv)), q1 = _mm256_cvtps_epi32(_mm256_mul_ps(v1, inv));
                    _mm256_storeu_si256((__m256i *)(dst + st * 16), _mm256_blend_epi16(q0, _mm256_slli_epi32(q1, 16), 0xAA));
                }
            }
        }
    }
}

static void quant_a_i16(const float *x, int64_t n, int16_t *q, float *d) {
    for (int64_t g = 0; g < n / 32; g++) {
        __m256 v[4];
        const float amax = cs_load32_absmax(x + 32 * g, v);
        const float inv = amax > 0.0f ? 8191.0f / amax : 0.0f;
        d[g] = amax / 8191.0f;
        const __m256 vi = _mm256_set1_ps(inv);
        for (int i = 0; i < 4; i += 2) { /* |q| <= 8191: the saturating pack is exact; it interleaves lanes, undone by the permute */
            const __m256i p = _mm256_packs_epi32(_mm256_cvtps_epi32(_mm256_mul_ps(v[i], vi)), _mm256_cvtps_epi32(_mm256_mul_ps(v[i + 1], vi)));
            _mm256_storeu_si256((__m256i *)(q + 32 * g + 8 * i), _mm256_permute4x64_epi64(p, 0xD8));
        }
    }
}

static void row_magnitudes(int type, const uint8_t *w, size_t nb1, const int32_t *rows, int64_t n, int64_t nb, float *r) {
    const int q4_1 = type == CS_Q4_1, q8 = type == CS_Q8_0;
    const int S = q4_1 ? (int)sizeof(cs_block_q4_1) : q8 ? (int)sizeof(cs_block_q8_0) : (int)sizeof(cs_block_q4_0);
    for (int64_t k = 0; k < n; k++) {
        const uint8_t *row = w + (size_t)rows[k] * nb1;
        __m256 m = _mm256_setzero_ps(); /* blocks past nb read as 0: no effect on the maximum */
        for (int64_t b = 0; b < nb; b += 8) {
            const uint8_t *p = row + (size_t)b * S;
            const __m256 d = cs_abs_ps(_mm256_cvtph_ps(cs_words8(p, S, nb - b)));
            m = _mm256_max_ps(m, q4_1 ? _mm256_fmadd_ps(d, _mm256_set1_ps(15.0f), cs_abs_ps(_mm256_cvtph_ps(cs_words8(p + 2, S, nb - b))))
                                      : _mm256_mul_ps(d, _mm256_set1_ps(q8 ? 128.0f : 8.0f)));
        }
        r[k] = cs_hmax256(m);
    }
}

/* 4 tokens x 16 columns: 8 int32 accumulators per group of 32 k (16 steps of 2 k),
 * scaled into float sums once per group. */
static void gemm_i16(float *Y, size_t ldy, const int16_t *qa, size_t ldq, const float *da, size_t ldd, const int32_t *B,
                     const float *e, int64_t nt, int64_t ng, int64_t n) {
    const int64_t ncb = n / 16;
    for (int64_t t0 = 0; t0 < nt; t0 += 4) {
        const int16_t *ar[4];
        const float *dr[4];
        cs_i16_token_rows(qa, ldq, da, ldd, t0, nt, ar, dr);
        for (int64_t cb = 0; cb < ncb; cb++) {
            __m256 f[4][2];
            for (int i = 0; i < 4; i++) f[i][0] = f[i][1] = _mm256_setzero_ps();
            for (int64_t g = 0; g < ng; g++) {
                __m256i acc[4][2];
                for (int i = 0; i < 4; i++) acc[i][0] = acc[i][1] = _mm256_setzero_si256();
                const int32_t *b0 = B + (size_t)((g * ncb + cb) * 16) * 16;
                for (int64_t st = 0; st < 16; st++) {
                    const __m256i w0 = _mm256_loadu_si256((const __m256i *)(b0 + st * 16));
                    const __m256i w1 = _mm256_loadu_si256((const __m256i *)(b0 + st * 16 + 8));
#pragma GCC unroll 4
                    for (int i = 0; i < 4; i++) {
                        int32_t a2;
                        memcpy(&a2, ar[i] + 32 * g + 2 * st, 4);
                        const __m256i a = _mm256_set1_epi32(a2);
                        acc[i][0] = cs_dpwssd(acc[i][0], w0, a);
                        acc[i][1] = cs_dpwssd(acc[i][1], w1, a);
                    }
                }
                const __m256 e0 = _mm256_loadu_ps(e + (size_t)g * (size_t)n + (size_t)(16 * cb));
                const __m256 e1 = _mm256_loadu_ps(e + (size_t)g * (size_t)n + (size_t)(16 * cb + 8));
                for (int i = 0; i < 4; i++) {
                    const __m256 dv = _mm256_set1_ps(dr[i][g]);
                    f[i][0] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(acc[i][0]), _mm256_mul_ps(e0, dv), f[i][0]);
                    f[i][1] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(acc[i][1]), _mm256_mul_ps(e1, dv), f[i][1]);
                }
            }
            for (int i = 0; i < 4 && t0 + i < nt; i++) {
                float *y = Y + (size_t)(t0 + i) * ldy + (size_t)(16 * cb);
                _mm256_storeu_ps(y, _mm256_add_ps(_mm256_loadu_ps(y), f[i][0]));
                _mm256_storeu_ps(y + 8, _mm256_add_ps(_mm256_loadu_ps(y + 8), f[i][1]));
            }
        }
    }
}

/* ---------------- output-sparse prefill (block types, row layout) ----------------
 * The AVX-512 kernel's scheme (chess_avx512.c: panels of rows unpacked once, 4 tokens
 * per panel load) on 8-row panels: dword lane r of register k (k = 0..7) holds weights
 * 4k..4k+3 of row r in a block; per block and token, against the token's 4 activation
 * bytes broadcast: Q4 unsigned nibbles through vpmaddubsw, summed in int16 over the 8
 * registers (|sum| <= 8 * 2 * 15 * 127 < 2^15) and widened once by vpmaddwd, the Q4_0
 * -8 offset through the accumulator's start; Q8_0 signed bytes as |w| x sign(x, w)
 * (pairs <= 2 * 128 * 127 < 2^15), widened per register. The block dots are exact and
 * scaled as in the AVX-512 kernel: the same results bit for bit (test_kernels
 * primitives). Without it, prefill ran W_up through ggml's GEMM on the plain
 * (unrepacked) layout, at half the speed of the repacked dense GEMM (the kernel
 * benchmark, --x86 avx2): this kernel is what keeps AVX2 prefill at dense speed. */
static inline void cs_gemm_rows(int kind, float *D, const uint8_t *w, size_t nb1, const int32_t *rows, int64_t nr,
                                const cs_q8x *xq, int64_t nt, int64_t n, uint8_t *pack) {
    const int64_t nb = n / CS_QK;
    const int q8 = kind == CS_GR_Q8_0;
    const int32_t offset = kind == CS_GR_Q4_0 ? -8 : 0; /* Q8_0 is packed signed: no offset */
    uint8_t *pw = pack;                                 /* nb x 8 x 32 bytes (<= CS_GEMM_ROWS_PACK) */
    float *pd = (float *)(pack + (size_t)nb * 8 * CS_QK); /* nb x 8 row scales */
    float *pm = pd + (size_t)nb * 8;                    /* nb x 8 row minima (Q4_1) */
    for (int64_t p0 = 0; p0 < nr; p0 += 8) {
        const int64_t np = nr - p0 < 8 ? nr - p0 : 8;
        cs_gr_pack_panel(kind, 0, w, nb1, rows + p0, np, 8, nb, pw, pd, pm); /* Q8_0 signed: |w| x sign(x, w) */
        const __m256i store = _mm256_cmpgt_epi32(_mm256_set1_epi32((int)np), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
        for (int64_t t0 = 0; t0 < nt; t0 += 4) {
            const cs_q8x *xt[4] = { &xq[t0], &xq[t0 + 1 < nt ? t0 + 1 : t0], &xq[t0 + 2 < nt ? t0 + 2 : t0],
                                    &xq[t0 + 3 < nt ? t0 + 3 : t0] };
            __m256 f[4] = { _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps() };
            for (int64_t b = 0; b < nb; b++) {
                const uint8_t *pb = pw + (size_t)b * 256;
                __m256i acc[4];
                if (q8) {
#pragma GCC unroll 4
                    for (int t = 0; t < 4; t++) acc[t] = _mm256_setzero_si256();
#pragma GCC unroll 8
                    for (int k = 0; k < 8; k++) {
                        const __m256i wk = _mm256_load_si256((const __m256i *)(pb + 32 * k));
                        const __m256i ak = _mm256_abs_epi8(wk);
#pragma GCC unroll 4
                        for (int t = 0; t < 4; t++) {
                            int32_t xv;
                            memcpy(&xv, xt[t]->qs + b * CS_QK + 4 * k, 4);
                            acc[t] = cs_dpbusd(acc[t], ak, _mm256_sign_epi8(_mm256_set1_epi32(xv), wk));
                        }
                    }
                } else {
                    __m256i s4[4];
#pragma GCC unroll 4
                    for (int t = 0; t < 4; t++) s4[t] = cs_q4_sum_init(offset * xt[t]->sum[b]);
#pragma GCC unroll 8
                    for (int k = 0; k < 8; k++) {
                        const __m256i wk = _mm256_load_si256((const __m256i *)(pb + 32 * k));
#pragma GCC unroll 4
                        for (int t = 0; t < 4; t++) {
                            int32_t xv;
                            memcpy(&xv, xt[t]->qs + b * CS_QK + 4 * k, 4);
                            s4[t] = cs_q4_sum_step(s4[t], wk, _mm256_set1_epi32(xv));
                        }
                    }
#pragma GCC unroll 4
                    for (int t = 0; t < 4; t++) acc[t] = cs_q4_sum_end(s4[t], offset * xt[t]->sum[b]);
                }
                const __m256 dr = _mm256_load_ps(pd + b * 8);
#pragma GCC unroll 4
                for (int t = 0; t < 4; t++) {
                    f[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(acc[t]), _mm256_mul_ps(dr, _mm256_set1_ps(xt[t]->d[b])), f[t]);
                    if (kind == CS_GR_Q4_1)
                        f[t] = _mm256_fmadd_ps(_mm256_load_ps(pm + b * 8), _mm256_set1_ps(xt[t]->s[b]), f[t]);
                }
            }
            for (int t = 0; t < 4 && t0 + t < nt; t++) _mm256_maskstore_ps(D + (size_t)(t0 + t) * (size_t)nr + p0, store, f[t]);
        }
    }
}

#define CS_GEMM_ROWS_FN(NAME, KIND)                                                                        \
    static void NAME(float *D, const uint8_t *w, size_t nb1, const int32_t *rows, int64_t nr, const cs_q8x *xq, \
                     int64_t nt, int64_t n, uint8_t *pack) {                                               \
        cs_gemm_rows(KIND, D, w, nb1, rows, nr, xq, nt, n, pack);                                          \
    }
CS_GEMM_ROWS_FN(gemm_rows_q4_0, CS_GR_Q4_0)
CS_GEMM_ROWS_FN(gemm_rows_q4_1, CS_GR_Q4_1)
CS_GEMM_ROWS_FN(gemm_rows_q8_0, CS_GR_Q8_0)

const cs_isa_table CS_AVX2_TABLE = {
    .name = CS_AVX2_NAME,
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
    .gemm_rows = { [CS_Q8_0] = gemm_rows_q8_0, [CS_Q4_0] = gemm_rows_q4_0, [CS_Q4_1] = gemm_rows_q4_1 },
    .quant_x8 = quant_x8,
    .gemm = gemm,
    .pack_b_i16 = pack_b_i16,
    .gemm_i16 = gemm_i16,
    .quant_a_i16 = quant_a_i16,
    .row_magnitudes = row_magnitudes,
};
