/* AVX-512 (F/BW/VL + VNNI, FMA, F16C) kernels. Compiled with its own target flags;
 * selected at run time only when the CPU supports them (chess_dispatch.c). */
#include <immintrin.h>
#include <math.h>

#include "chess_internal.h"

#define CS_ALIGN64 __attribute__((aligned(64)))

/* ---------------- helpers ---------------- */

/* Byte offsets b*S for b = 0..15 (gathering the fp16 scale of 16 consecutive blocks). */
static inline __m512i cs_block_offsets(int stride) {
    return _mm512_mullo_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
                              _mm512_set1_epi32(stride));
}

/* 32-bit words at row + off[b] for the first nb (<= 16) blocks. */
static inline __m512i cs_gather_head(const uint8_t *row, __m512i off, int64_t nb) {
    const __mmask16 m = nb >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << nb) - 1u);
    return _mm512_mask_i32gather_epi32(_mm512_setzero_si512(), m, off, (const void *)row, 1);
}
static inline __m512 cs_lo_half_to_ps(__m512i v) { return _mm512_cvtph_ps(_mm512_cvtepi32_epi16(v)); }
static inline __m512 cs_hi_half_to_ps(__m512i v) { return _mm512_cvtph_ps(_mm512_cvtepi32_epi16(_mm512_srli_epi32(v, 16))); }

static inline __mmask16 cs_tail_mask(int64_t r) { return r >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << r) - 1u); }

/* ---------------- to_float ---------------- */

static void to_float_f32(const uint8_t *src, float *dst, int64_t n) { memcpy(dst, src, (size_t)n * 4); }
static void to_float_f16(const uint8_t *src, float *dst, int64_t n) {
    for (int64_t i = 0; i < n; i += 16) {
        const __mmask16 m = cs_tail_mask(n - i);
        _mm512_mask_storeu_ps(dst + i, m, _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, src + 2 * i)));
    }
}
static void to_float_bf16(const uint8_t *src, float *dst, int64_t n) {
    for (int64_t i = 0; i < n; i += 16) {
        const __mmask16 m = cs_tail_mask(n - i);
        const __m512i v = _mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(m, src + 2 * i)), 16);
        _mm512_mask_storeu_ps(dst + i, m, _mm512_castsi512_ps(v));
    }
}
static void to_float_q8_0(const uint8_t *src, float *dst, int64_t n) {
    const cs_block_q8_0 *b = (const cs_block_q8_0 *)src;
    for (int64_t ib = 0; ib < n / CS_QK; ib++) {
        const __m512 d = _mm512_set1_ps(_cvtsh_ss(cs_load_u16(&b[ib].d)));
        const __m512i q0 = _mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)b[ib].qs));
        const __m512i q1 = _mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)(b[ib].qs + 16)));
        _mm512_storeu_ps(dst + ib * CS_QK, _mm512_mul_ps(d, _mm512_cvtepi32_ps(q0)));
        _mm512_storeu_ps(dst + ib * CS_QK + 16, _mm512_mul_ps(d, _mm512_cvtepi32_ps(q1)));
    }
}
/* Nibble -> float via a 16-entry table in a register (vpermps uses the low 4 bits). */
static void to_float_q4_0(const uint8_t *src, float *dst, int64_t n) {
    const cs_block_q4_0 *b = (const cs_block_q4_0 *)src;
    const __m512 tab = _mm512_setr_ps(-8, -7, -6, -5, -4, -3, -2, -1, 0, 1, 2, 3, 4, 5, 6, 7);
    for (int64_t ib = 0; ib < n / CS_QK; ib++) {
        const __m512 d = _mm512_set1_ps(_cvtsh_ss(cs_load_u16(&b[ib].d)));
        const __m512i q = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)b[ib].qs));
        _mm512_storeu_ps(dst + ib * CS_QK, _mm512_mul_ps(d, _mm512_permutexvar_ps(q, tab)));
        _mm512_storeu_ps(dst + ib * CS_QK + 16, _mm512_mul_ps(d, _mm512_permutexvar_ps(_mm512_srli_epi32(q, 4), tab)));
    }
}
static void to_float_q4_1(const uint8_t *src, float *dst, int64_t n) {
    const cs_block_q4_1 *b = (const cs_block_q4_1 *)src;
    const __m512 tab = _mm512_setr_ps(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    for (int64_t ib = 0; ib < n / CS_QK; ib++) {
        const __m512 d = _mm512_set1_ps(_cvtsh_ss(cs_load_u16(&b[ib].d)));
        const __m512 m = _mm512_set1_ps(_cvtsh_ss(cs_load_u16(&b[ib].m)));
        const __m512i q = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)b[ib].qs));
        _mm512_storeu_ps(dst + ib * CS_QK, _mm512_fmadd_ps(d, _mm512_permutexvar_ps(q, tab), m));
        _mm512_storeu_ps(dst + ib * CS_QK + 16, _mm512_fmadd_ps(d, _mm512_permutexvar_ps(_mm512_srli_epi32(q, 4), tab), m));
    }
}

/* ---------------- input-sparse accumulation ----------------
 * Float types: two active rows at a time, FMAs into y. Block types (Q4_0, Q4_1,
 * Q8_0): groups of 16 active rows multiplied in 16-bit integers with per-(group,
 * block) coefficients (below); y is loaded and stored once per group and block. The
 * next group's rows are prefetched into L2 while the current one runs. */

#define CS_MAXB (CS_IN_CHUNK / CS_QK)

static inline void cs_zero(float *y, int64_t n) { memset(y, 0, (size_t)n * sizeof(float)); }

/* Q4_0 scales without a gather (a gather of 16 scales cost about as much as the
 * products of a whole row-block): 8 blocks (144 bytes) hold their fp16 scales at words
 * 0, 9, .., 63 of the first 128 bytes, picked by one two-register word permute; two
 * such windows give 16 scales. Loads are masked to the row's nb blocks (no read past
 * the row; masked-off lanes read as 0). */
static inline __mmask64 cs_byte_mask(int64_t avail) {
    return avail >= 64 ? ~(__mmask64)0 : avail <= 0 ? (__mmask64)0 : (((__mmask64)1 << avail) - 1);
}
static inline __m128i cs_q4_0_window_scales(const uint8_t *p, int64_t avail) {
    const __m512i idx = _mm512_setr_epi32(0x00090000, 0x001b0012, 0x002d0024, 0x003f0036, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0);
    const __m512i a = _mm512_maskz_loadu_epi8(cs_byte_mask(avail), p), b = _mm512_maskz_loadu_epi8(cs_byte_mask(avail - 64), p + 64);
    return _mm512_castsi512_si128(_mm512_permutex2var_epi16(a, idx, b));
}
/* The scales of the (up to) 16 Q4_0 blocks at p, avail bytes of the row left, as floats. */
static inline __m512 cs_q4_0_scales16(const uint8_t *p, int64_t avail) {
    const int64_t w = 8 * (int64_t)sizeof(cs_block_q4_0);
    return _mm512_cvtph_ps(_mm256_inserti128_si256(_mm256_castsi128_si256(cs_q4_0_window_scales(p, avail)),
                                                   cs_q4_0_window_scales(p + w, avail - w), 1));
}
/* The scales of the (up to) 16 Q8_0 blocks at p: four 128-byte windows of 4 blocks (scale
 * words 0, 17, 34, 51), merged by masked word permutes; masked loads, never past the row. */
static inline __m512 cs_q8_0_scales16(const uint8_t *p, int64_t avail) {
    const __m512i idx = _mm512_setr_epi32(0x00110000, 0x00330022, 0x00110000, 0x00330022, 0x00110000, 0x00330022,
                                          0x00110000, 0x00330022, 0, 0, 0, 0, 0, 0, 0, 0);
    const int64_t w = 4 * (int64_t)sizeof(cs_block_q8_0);
    /* words 4k..4k+3 from window k; words not written yet still hold their index */
    __m512i h = idx;
    for (int k = 0; k < 4; k++) {
        const uint8_t *q = p + k * w;
        const int64_t a = avail - k * w;
        const __m512i lo = _mm512_maskz_loadu_epi8(cs_byte_mask(a), q), hi = _mm512_maskz_loadu_epi8(cs_byte_mask(a - 64), q + 64);
        h = _mm512_mask2_permutex2var_epi16(lo, h, (__mmask32)(0xfu << (4 * k)), hi);
    }
    return _mm512_cvtph_ps(_mm512_castsi512_si256(h));
}

/* Q4_0 / Q4_1: 16-bit integer products. Active rows go in groups of CS_IG (16, in
 * the order of the active list, so the grouping does not depend on the thread split).
 * Per (group, block b) the float coefficients c_j = x_j * d_jb are scaled to 16-bit
 * integers a_j = nearbyint(c_j * 32767 / max_j |c_j|), pairs of rows go through
 * vpdpwssd (two int16 products per 32-bit lane, exact int32 sums: 16 * 32767 * 15
 * < 2^31), and the block's sum is scaled back to float once per group. A coefficient
 * is off by at most 2^-16 of the group's largest one: about 1e-5 of |y| (the
 * conformance tolerance against the float reference is 1e-4). The offsets (Q4_0:
 * -8 c_j, Q4_1: x_j m_jb) stay float, in the per-block constant mb.
 * A row pair's 16 nibble bytes of a block are interleaved into words: dword i holds
 * byte i of the first row in its low word and of the second in its high word (the low
 * nibble is column i, the high nibble column i+16). Two variants, same results bit for
 * bit: one two-source byte permute (AVX512-VBMI: Ice Lake, Zen 4 and later), or two
 * in-lane shuffles of the rows' bytes broadcast to the four lanes.
 * Measured on Zen 4 (one thread, 4096 x 4096 at 50%, weights in L3): 1.25 ns per row
 * and block with the shuffles and separate scale / coefficient passes, 0.86 with the
 * permute, the fused preparation and the unrolled group; from DRAM 12.3 -> 17.3 GB/s.
 * A second accumulator pair (two dependency chains) or the high nibble by a mask
 * (no shift; the sum is 16x, rescaled exactly) measured no faster. 8-bit coefficients
 * (four rows per lane, vpdpbusd) were 15% faster from L3 but no faster from DRAM, at
 * 1e-2 instead of 1e-5 of |y|: not taken. */

/* Scales and coefficients of a group in one pass, in registers: for 16 blocks at a
 * time, the 16 rows' scales (Q4_0, Q8_0: window loads; Q4_1: a gather of its (d, m)
 * pairs), their maximum, the per-block constants mb (Q4_0: -8 c_j, Q4_1: x_j m_jb;
 * none for Q8_0), then the packed coefficient pairs. Against a scale pass per row and
 * a coefficient pass through 16 x 128 floats on the stack: a third fewer cycles. */
static inline void cs_prep_group(chess_type type, const uint8_t *const *r, const float *xv, int64_t g, int64_t nb,
                                 int32_t (*cf)[CS_MAXB], float *sb, float *mb) {
    const int q8 = type == CHESS_TYPE_Q8_0, q4_1 = type == CHESS_TYPE_Q4_1;
    const int S = q8 ? (int)sizeof(cs_block_q8_0) : q4_1 ? (int)sizeof(cs_block_q4_1) : (int)sizeof(cs_block_q4_0);
    const __m512 off = _mm512_set1_ps(-8.0f);
    const __m512i gather_off = cs_block_offsets(S);
    for (int64_t b = 0; b < nb; b += 16) {
        const __mmask16 m = cs_tail_mask(nb - b);
        __m512 s[CS_IG];
        __m512 amax = _mm512_setzero_ps(), macc = q8 ? _mm512_setzero_ps() : _mm512_load_ps(mb + b);
#pragma GCC unroll 16
        for (int64_t j = 0; j < CS_IG; j++) {
            if (j < g) {
                const uint8_t *p = r[j] + (size_t)b * S;
                const int64_t avail = (nb - b) * S;
                const __m512 vx = _mm512_set1_ps(xv[j]);
                if (q4_1) {
                    const __m512i dm = cs_gather_head(p, gather_off, nb - b);
                    s[j] = _mm512_mul_ps(vx, cs_lo_half_to_ps(dm));
                    macc = _mm512_fmadd_ps(vx, cs_hi_half_to_ps(dm), macc);
                } else {
                    s[j] = _mm512_mul_ps(vx, q8 ? cs_q8_0_scales16(p, avail) : cs_q4_0_scales16(p, avail));
                    if (!q8) macc = _mm512_fmadd_ps(s[j], off, macc);
                }
                amax = _mm512_max_ps(amax, _mm512_abs_ps(s[j]));
            } else {
                s[j] = _mm512_setzero_ps();
            }
        }
        if (!q8) _mm512_store_ps(mb + b, macc);
        const __mmask16 nz = _mm512_cmp_ps_mask(amax, _mm512_setzero_ps(), _CMP_GT_OQ);
        const __m512 inv = _mm512_maskz_div_ps(nz, _mm512_set1_ps(32767.0f), amax);
        _mm512_mask_storeu_ps(sb + b, m, _mm512_mul_ps(amax, _mm512_set1_ps(1.0f / 32767.0f)));
#pragma GCC unroll 8
        for (int64_t p = 0; p < CS_IG / 2; p++) {
            const __m512i q0 = _mm512_cvtps_epi32(_mm512_mul_ps(s[2 * p], inv));
            const __m512i q1 = _mm512_cvtps_epi32(_mm512_mul_ps(s[2 * p + 1], inv));
            _mm512_mask_storeu_epi32(cf[p] + b, m, _mm512_mask_blend_epi16(0xAAAAAAAAu, q0, _mm512_slli_epi32(q1, 16)));
        }
    }
}

/* One row pair of one block: interleave (see above), then the low nibbles into lo and
 * the high nibbles into hi (the words are (byte, 0): the shift alone leaves the high
 * nibble). Uses the names of CS_IN_ACCUM_INT's body. */
#define CS_PAIR_STEP(V, Q, LO, HI)                                                                    \
    {                                                                                                 \
        const __m512i c_ = _mm512_set1_epi32(cf[Q][b]);                                               \
        LO = _mm512_dpwssd_epi32(LO, _mm512_and_si512(V, low4), c_);                                   \
        HI = _mm512_dpwssd_epi32(HI, _mm512_srli_epi16(V, 4), c_);                                     \
    }
#define CS_PAIR_SHUFFLE(Q, LO, HI)                                                                    \
    {                                                                                                 \
        const uint8_t *q0_ = r[2 * (Q)] + o + S - 16, *q1_ = r[2 * (Q) + 1] + o + S - 16;             \
        __m512i v_ = _mm512_maskz_shuffle_epi8(0x1111111111111111ull, _mm512_broadcast_i32x4(_mm_loadu_si128((const __m128i *)q0_)), ilv); \
        v_ = _mm512_mask_shuffle_epi8(v_, 0x4444444444444444ull, _mm512_broadcast_i32x4(_mm_loadu_si128((const __m128i *)q1_)), ilv); \
        CS_PAIR_STEP(v_, Q, LO, HI)                                                                   \
    }
#define CS_PAIR_VBMI(Q, LO, HI)                                                                       \
    {                                                                                                 \
        const uint8_t *q0_ = r[2 * (Q)] + o + S - 16, *q1_ = r[2 * (Q) + 1] + o + S - 16;             \
        const __m512i v_ = _mm512_maskz_permutex2var_epi8(0x5555555555555555ull,                      \
            _mm512_castsi128_si512(_mm_loadu_si128((const __m128i *)q0_)), ilv2,                      \
            _mm512_castsi128_si512(_mm_loadu_si128((const __m128i *)q1_)));                           \
        CS_PAIR_STEP(v_, Q, LO, HI)                                                                   \
    }

/* Q8_0: the same 16-bit integer scheme as Q4 (groups of CS_IG rows, coefficients
 * scaled to int16 per (group, block), vpdpwssd on row pairs; |sum| <= 16 * 128 * 32767
 * < 2^31). A row pair's 32 bytes of a block are sign-extended to words and interleaved
 * by in-lane word unpacks: lane L of the low half holds columns 8L..8L+3, of the high
 * half 8L+4..8L+7, put back in column order once per group and block. The scales of
 * 16 blocks come from four 128-byte windows (4 blocks of 34 bytes each, scale words
 * 0, 17, 34, 51; masked loads, never past the row) merged by masked word permutes; a
 * gather cost 38% of the kernel. One Zen 4 thread at 50%: 1.79 -> 1.13 ns per row
 * and block for 4096 columns in L3, 2.02 -> 1.46 for SmolLM2's 576, 9.1 -> 15.4 GB/s
 * from DRAM, against the float version (every weight converted and multiplied). */

#define CS_PAIR_Q8(Q, LO, HI)                                                                         \
    {                                                                                                 \
        const __m512i w0_ = _mm512_cvtepi8_epi16(_mm256_loadu_si256((const __m256i *)(r[2 * (Q)] + o + 2)));     \
        const __m512i w1_ = _mm512_cvtepi8_epi16(_mm256_loadu_si256((const __m256i *)(r[2 * (Q) + 1] + o + 2))); \
        const __m512i c_ = _mm512_set1_epi32(cf[Q][b]);                                               \
        LO = _mm512_dpwssd_epi32(LO, _mm512_unpacklo_epi16(w0_, w1_), c_);                            \
        HI = _mm512_dpwssd_epi32(HI, _mm512_unpackhi_epi16(w0_, w1_), c_);                            \
    }

/* The integer input-sparse kernel of the block types: PAIR(q, lo, hi) adds row pair q
 * of block b into the two accumulators; Q8_0's accumulators hold its columns in unpack
 * order and are put back in column order before the store. */
#define CS_IN_ACCUM_INT(NAME, TYPE, BLOCK_T, ATTR, PAIR)                                              \
    ATTR static void NAME(float *y, int64_t n, const uint8_t *w, size_t nb1, const int32_t *idx,      \
                          const float *xv, int64_t nact) {                                            \
        const int64_t nb = n / CS_QK;                                                                 \
        const int S = (int)sizeof(BLOCK_T);                                                           \
        int32_t cf[CS_IG / 2][CS_MAXB] CS_ALIGN64;                                                    \
        float sb[CS_MAXB] CS_ALIGN64;                                                                 \
        float mb[CS_MAXB] CS_ALIGN64;                                                                 \
        const uint8_t *r[CS_IG], *p[CS_IG];                                                           \
        cs_zero(y, n);                                                                                \
        memset(mb, 0, sizeof(mb));                                                                    \
        cs_ig_prefetch_first(w, nb1, idx, nact, (size_t)nb * S);                                      \
        const __m512i low4 = _mm512_set1_epi8(0x0f);                                                  \
        /* shuffle: byte 16L+4i+j of a pair's interleave = byte 4L+i of its row j/2 (j = 0, 2; 1, 3 zero) */ \
        const __m512i ilv = _mm512_add_epi8(_mm512_set4_epi32(0x03030303, 0x02020202, 0x01010101, 0x00000000), \
            _mm512_set_epi32(0x0c0c0c0c, 0x0c0c0c0c, 0x0c0c0c0c, 0x0c0c0c0c, 0x08080808, 0x08080808, \
                             0x08080808, 0x08080808, 0x04040404, 0x04040404, 0x04040404, 0x04040404, 0, 0, 0, 0)); \
        /* permute: bytes 4i and 4i+2 = byte i of the first (index i) and second (64 + i) row */ \
        const __m512i ilv2 = _mm512_add_epi32(_mm512_set1_epi32(0x00400000),                          \
            _mm512_setr_epi32(0x00000, 0x10001, 0x20002, 0x30003, 0x40004, 0x50005, 0x60006, 0x70007, \
                              0x80008, 0x90009, 0xa000a, 0xb000b, 0xc000c, 0xd000d, 0xe000e, 0xf000f)); \
        /* Q8_0 column order from (lo, hi): y[0..16) = lo L0, hi L0, lo L1, hi L1; y[16..32) = lanes 2, 3 */ \
        const __m512i ord0 = _mm512_setr_epi32(0, 1, 2, 3, 16, 17, 18, 19, 4, 5, 6, 7, 20, 21, 22, 23);    \
        const __m512i ord1 = _mm512_setr_epi32(8, 9, 10, 11, 24, 25, 26, 27, 12, 13, 14, 15, 28, 29, 30, 31); \
        (void)low4; (void)ilv; (void)ilv2; (void)ord0; (void)ord1;                                    \
        for (int64_t k = 0; k < nact; k += CS_IG) {                                                   \
            const int64_t g = cs_ig_rows(w, nb1, idx, nact, k, r, p);                                 \
            cs_prep_group(TYPE, r, xv + k, g, nb, cf, sb, mb);                                        \
            const int64_t nq = (g + 1) / 2;                                                           \
            for (int64_t b = 0; b < nb; b++) {                                                        \
                const size_t o = (size_t)b * S;                                                       \
                __m512i lo = _mm512_setzero_si512(), hi = _mm512_setzero_si512();                     \
                /* the next group's rows, into L2 (the group's 36-68 KB would evict this one's from \
                 * L1); every 64-byte line gets one: every third block of 18-20 bytes, every 34-byte one */ \
                if (S >= 32 || b % 3 == 0)                                                            \
                    for (int64_t j = 0; j < CS_IG; j++) _mm_prefetch((const char *)p[j] + o, _MM_HINT_T1); \
                if (nq == CS_IG / 2) { /* a whole group, unrolled: no loop-carried register copies */ \
                    PAIR(0, lo, hi) PAIR(1, lo, hi) PAIR(2, lo, hi) PAIR(3, lo, hi)                   \
                    PAIR(4, lo, hi) PAIR(5, lo, hi) PAIR(6, lo, hi) PAIR(7, lo, hi)                   \
                } else {                                                                              \
                    for (int64_t q = 0; q < nq; q++) PAIR(q, lo, hi)                                  \
                }                                                                                     \
                const int q8_ = (TYPE) == CHESS_TYPE_Q8_0;                                            \
                const __m512i c0 = q8_ ? _mm512_permutex2var_epi32(lo, ord0, hi) : lo;                \
                const __m512i c1 = q8_ ? _mm512_permutex2var_epi32(lo, ord1, hi) : hi;                \
                const __m512 s = _mm512_set1_ps(sb[b]);                                               \
                _mm512_storeu_ps(y + b * CS_QK, _mm512_fmadd_ps(_mm512_cvtepi32_ps(c0), s, _mm512_loadu_ps(y + b * CS_QK))); \
                _mm512_storeu_ps(y + b * CS_QK + 16, _mm512_fmadd_ps(_mm512_cvtepi32_ps(c1), s, _mm512_loadu_ps(y + b * CS_QK + 16))); \
            }                                                                                         \
        }                                                                                             \
        if ((TYPE) != CHESS_TYPE_Q8_0 && nact > 0) {                                                  \
            for (int64_t b = 0; b < nb; b++) {                                                        \
                const __m512 m = _mm512_set1_ps(mb[b]);                                               \
                _mm512_storeu_ps(y + b * CS_QK, _mm512_add_ps(_mm512_loadu_ps(y + b * CS_QK), m));    \
                _mm512_storeu_ps(y + b * CS_QK + 16, _mm512_add_ps(_mm512_loadu_ps(y + b * CS_QK + 16), m)); \
            }                                                                                         \
        }                                                                                             \
    }

#define CS_VBMI __attribute__((target("avx512vbmi")))
CS_IN_ACCUM_INT(in_accum_q4_0, CHESS_TYPE_Q4_0, cs_block_q4_0, , CS_PAIR_SHUFFLE)
CS_IN_ACCUM_INT(in_accum_q4_1, CHESS_TYPE_Q4_1, cs_block_q4_1, , CS_PAIR_SHUFFLE)
CS_IN_ACCUM_INT(in_accum_q4_0_vbmi, CHESS_TYPE_Q4_0, cs_block_q4_0, CS_VBMI, CS_PAIR_VBMI)
CS_IN_ACCUM_INT(in_accum_q4_1_vbmi, CHESS_TYPE_Q4_1, cs_block_q4_1, CS_VBMI, CS_PAIR_VBMI)
CS_IN_ACCUM_INT(in_accum_q8_0, CHESS_TYPE_Q8_0, cs_block_q8_0, , CS_PAIR_Q8)

/* Float types: 2 rows per pass, 16 elements per step, masked tail. LOAD(ptr, mask) -> __m512. */
#define CS_IN_ACCUM_FLOAT(NAME, ESZ, LOAD)                                                            \
    static void NAME(float *y, int64_t n, const uint8_t *w, size_t nb1, const int32_t *idx,           \
                     const float *xv, int64_t nact) {                                                 \
        cs_zero(y, n);                                                                                \
        for (int64_t j = 0; j < nact && j < CS_PF_ROWS; j++) cs_prefetch_span(w + (size_t)idx[j] * nb1, (size_t)n * (ESZ)); \
        int64_t k = 0;                                                                                \
        for (; k + 2 <= nact; k += 2) {                                                               \
            const uint8_t *r0 = w + (size_t)idx[k] * nb1, *r1 = w + (size_t)idx[k + 1] * nb1;         \
            const uint8_t *p0 = k + CS_PF_ROWS + 2 <= nact ? w + (size_t)idx[k + CS_PF_ROWS] * nb1 : r0; \
            const uint8_t *p1 = k + CS_PF_ROWS + 2 <= nact ? w + (size_t)idx[k + CS_PF_ROWS + 1] * nb1 : r1; \
            const __m512 s0 = _mm512_set1_ps(xv[k]), s1 = _mm512_set1_ps(xv[k + 1]);                  \
            for (int64_t i = 0; i < n; i += 16) {                                                     \
                const __mmask16 m = cs_tail_mask(n - i);                                              \
                cs_prefetch(p0 + i * (ESZ));                                                          \
                cs_prefetch(p1 + i * (ESZ));                                                          \
                __m512 a = _mm512_maskz_loadu_ps(m, y + i);                                           \
                a = _mm512_fmadd_ps(LOAD(r0 + i * (ESZ), m), s0, a);                                  \
                a = _mm512_fmadd_ps(LOAD(r1 + i * (ESZ), m), s1, a);                                  \
                _mm512_mask_storeu_ps(y + i, m, a);                                                   \
            }                                                                                         \
        }                                                                                             \
        for (; k < nact; k++) {                                                                       \
            const uint8_t *r0 = w + (size_t)idx[k] * nb1;                                             \
            const __m512 s0 = _mm512_set1_ps(xv[k]);                                                  \
            for (int64_t i = 0; i < n; i += 16) {                                                     \
                const __mmask16 m = cs_tail_mask(n - i);                                              \
                _mm512_mask_storeu_ps(y + i, m, _mm512_fmadd_ps(LOAD(r0 + i * (ESZ), m), s0,          \
                                                                _mm512_maskz_loadu_ps(m, y + i)));    \
            }                                                                                         \
        }                                                                                             \
    }

#define CS_LOAD_F32(p, m) _mm512_maskz_loadu_ps((m), (const void *)(p))
#define CS_LOAD_F16(p, m) _mm512_cvtph_ps(_mm256_maskz_loadu_epi16((m), (const void *)(p)))
#define CS_LOAD_BF16(p, m) _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16((m), (const void *)(p))), 16))

CS_IN_ACCUM_FLOAT(in_accum_f32, 4, CS_LOAD_F32)
CS_IN_ACCUM_FLOAT(in_accum_f16, 2, CS_LOAD_F16)
CS_IN_ACCUM_FLOAT(in_accum_bf16, 2, CS_LOAD_BF16)

/* ---------------- dot products ----------------
 * Active rows go 4 at a time (see CS_DOT_ROWS4 below); a last group of fewer rows
 * repeats its last row, so that every row gets the same arithmetic whatever the
 * thread split (the conformance test checks results do not depend on nth). */

static inline __m256i cs_nibbles_256(const uint8_t *qs) {
    /* [lo nibbles of 16 bytes | hi nibbles] = element order of a 32-block */
    const __m256i v = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)qs));
    return _mm256_and_si256(_mm256_srlv_epi64(v, _mm256_setr_epi64x(0, 0, 4, 4)), _mm256_set1_epi8(0x0f));
}

#define CS_W_Q4(p) cs_nibbles_256(p)
#define CS_W_Q8(p) _mm256_xor_si256(_mm256_loadu_si256((const __m256i *)(p)), _mm256_set1_epi8((char)0x80))

/* Float types: 4 active rows at a time (as the block types below: scattered rows
 * stream together, x is loaded once for the four), 16 elements per step, masked tail. */
#define CS_DOT_ROWS4_FLOAT(NAME, ESZ, LOAD)                                                     \
    static void NAME(float *y, const uint8_t *w, size_t nb1, const int32_t *rows, int64_t nrows,     \
                     const void *xa, int64_t n) {                                                     \
        const float *x = (const float *)xa;                                                           \
        CS_ROWS4_BEGIN((size_t)n * (ESZ))                                                             \
            __m512 a0 = _mm512_setzero_ps(), a1 = _mm512_setzero_ps(), a2 = _mm512_setzero_ps(),      \
                   a3 = _mm512_setzero_ps();                                                          \
            for (int64_t i = 0; i < n; i += 16) {                                                     \
                const __mmask16 m = cs_tail_mask(n - i);                                              \
                const size_t o = (size_t)i * (ESZ);                                                   \
                CS_ROWS4_PREFETCH(o)                                                                  \
                const __m512 xv = _mm512_maskz_loadu_ps(m, x + i);                                    \
                a0 = _mm512_fmadd_ps(LOAD(r0 + o, m), xv, a0);                                        \
                a1 = _mm512_fmadd_ps(LOAD(r1 + o, m), xv, a1);                                        \
                a2 = _mm512_fmadd_ps(LOAD(r2 + o, m), xv, a2);                                        \
                a3 = _mm512_fmadd_ps(LOAD(r3 + o, m), xv, a3);                                        \
            }                                                                                         \
        CS_ROWS4_END(_mm512_reduce_add_ps(a0), _mm512_reduce_add_ps(a1), _mm512_reduce_add_ps(a2), _mm512_reduce_add_ps(a3)) \
    }
CS_DOT_ROWS4_FLOAT(dot_rows_f32, 4, CS_LOAD_F32)
CS_DOT_ROWS4_FLOAT(dot_rows_f16, 2, CS_LOAD_F16)
CS_DOT_ROWS4_FLOAT(dot_rows_bf16, 2, CS_LOAD_BF16)

/* Block types: 4 active rows at a time, block by block, so that four rows stream
 * together (the rows are scattered: one row at a time leaves the memory system idle
 * between rows) and each activation block is loaded once for the four. Rows
 * CS_PF_ROWS ahead are prefetched a block at a time. The weight offset (Q4_0: -8,
 * Q8_0 after its sign flip: -128) enters the integer dot through its first lane. */
static inline float cs_hsum256(__m256 v) {
    __m128 r = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    r = _mm_add_ps(r, _mm_movehl_ps(r, r));
    r = _mm_add_ss(r, _mm_movehdup_ps(r));
    return _mm_cvtss_f32(r);
}

/* One row's block: exact integer dot (the offset in bias), into A with the block's scale. */
#define CS_DOT4_ROW(R, A, SCALE, WBYTES, QS_OFF)                                                        \
    {                                                                                                   \
        const __m256i dt = _mm256_dpbusd_epi32(bias, WBYTES((R) + o + (QS_OFF)), xq);                   \
        A = _mm256_fmadd_ps(_mm256_cvtepi32_ps(dt), _mm256_set1_ps(SCALE), A);                          \
    }

/* Q8_0: the scale d_kb * xd_b per row and block, scalar. */
#define CS_DOT_ROWS4_Q8(NAME)                                                                           \
    static void NAME(float *y, const uint8_t *w, size_t nb1, const int32_t *rows, int64_t nrows,       \
                     const void *xa, int64_t n) {                                                       \
        CS_DOT_ROWS4_Q_PROLOGUE(cs_block_q8_0)                                                       \
            __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps(), a2 = _mm256_setzero_ps(),        \
                   a3 = _mm256_setzero_ps();                                                            \
            for (int64_t b = 0; b < nb; b++) {                                                          \
                const size_t o = (size_t)b * S;                                                         \
                CS_ROWS4_PREFETCH(o)                                                                    \
                const __m256i xq = _mm256_loadu_si256((const __m256i *)(x->qs + b * CS_QK));           \
                const float xd = x->d[b];                                                               \
                const __m256i bias = _mm256_castsi128_si256(_mm_cvtsi32_si128(-128 * x->sum[b]));       \
                CS_DOT4_ROW(r0, a0, _cvtsh_ss(cs_load_u16(r0 + o)) * xd, CS_W_Q8, 2)                    \
                CS_DOT4_ROW(r1, a1, _cvtsh_ss(cs_load_u16(r1 + o)) * xd, CS_W_Q8, 2)                    \
                CS_DOT4_ROW(r2, a2, _cvtsh_ss(cs_load_u16(r2 + o)) * xd, CS_W_Q8, 2)                    \
                CS_DOT4_ROW(r3, a3, _cvtsh_ss(cs_load_u16(r3 + o)) * xd, CS_W_Q8, 2)                    \
            }                                                                                           \
        CS_ROWS4_END(cs_hsum256(a0), cs_hsum256(a1), cs_hsum256(a2), cs_hsum256(a3))                   \
    }

/* Q4_0 / Q4_1: the four rows' scales times the activation's, d_kb * xd_b, 16 blocks at
 * a time into a small table (Q4_0: the window loads of in_accum; Q4_1: a gather of its
 * (d, m) pairs, whose minimum term m_kb * xd_b * sum_b then accumulates 16 blocks
 * wide); the block step broadcasts its scale from the table (a load, no ALU work).
 * Against a scalar fp16 conversion, multiply and broadcast per row and block (and
 * Q4_1's scalar minimum term), one Zen 4 thread, 4096 columns in L2, ns per row and
 * block: Q4_0 0.82 -> 0.78, Q4_1 1.26 -> 1.01; kernel benchmark, W_up, 2 threads,
 * 5 interleaved pairs of builds: Q4_1 1.20-1.25x faster at every sparsity, Q4_0
 * 1.00-1.07x (at s = 0 0.84-0.88 -> 0.93-0.95 of ggml's repacked GEMV). Q8_0 keeps
 * the scalar scale: its table (from four 128-byte windows per 16 blocks, or scalar)
 * made it slower, 0.75 -> 0.95-1.0. */
#define CS_DOT_ROWS4(NAME, BLOCK_T, QS_OFF, BIAS_K, HAS_MIN)                                          \
    static void NAME(float *y, const uint8_t *w, size_t nb1, const int32_t *rows, int64_t nrows,       \
                     const void *xa, int64_t n) {                                                       \
        float sc[4][16] CS_ALIGN64;                                                                     \
        const __m512i gather_off = cs_block_offsets((int)sizeof(BLOCK_T));                            \
        (void)gather_off;                                                                               \
        CS_DOT_ROWS4_Q_PROLOGUE(BLOCK_T)                                                             \
            const uint8_t *const rr[4] = { r0, r1, r2, r3 };                                            \
            __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps(), a2 = _mm256_setzero_ps(),        \
                   a3 = _mm256_setzero_ps();                                                            \
            __m512 mv[4] = { _mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps() }; \
            for (int64_t b0 = 0; b0 < nb; b0 += 16) {                                                   \
                const int64_t be = nb - b0 < 16 ? nb - b0 : 16;                                         \
                const __mmask16 msk = cs_tail_mask(be);                                                 \
                const __m512 xd16 = _mm512_maskz_loadu_ps(msk, x->d + b0);                              \
                const __m512 xs16 = HAS_MIN ? _mm512_maskz_loadu_ps(msk, x->s + b0) : _mm512_setzero_ps();   \
                _Pragma("GCC unroll 4") for (int k = 0; k < 4; k++) {                                   \
                    const uint8_t *q = rr[k] + (size_t)b0 * S;                                          \
                    __m512 d16;                                                                         \
                    if (HAS_MIN) {                                                                      \
                        const __m512i dm = cs_gather_head(q, gather_off, be);                          \
                        d16 = cs_lo_half_to_ps(dm);                                                     \
                        mv[k] = _mm512_fmadd_ps(cs_hi_half_to_ps(dm), xs16, mv[k]);                     \
                    } else {                                                                            \
                        d16 = cs_q4_0_scales16(q, (nb - b0) * (int64_t)S);                              \
                    }                                                                                   \
                    _mm512_store_ps(sc[k], _mm512_mul_ps(d16, xd16));                                   \
                }                                                                                       \
                for (int64_t j = 0; j < be; j++) {                                                      \
                    const int64_t b = b0 + j;                                                           \
                    const size_t o = (size_t)b * S;                                                     \
                    CS_ROWS4_PREFETCH(o)                                                                \
                    const __m256i xq = _mm256_loadu_si256((const __m256i *)(x->qs + b * CS_QK));       \
                    const __m256i bias = _mm256_castsi128_si256(_mm_cvtsi32_si128((BIAS_K) * x->sum[b])); \
                    CS_DOT4_ROW(r0, a0, sc[0][j], CS_W_Q4, QS_OFF)                                      \
                    CS_DOT4_ROW(r1, a1, sc[1][j], CS_W_Q4, QS_OFF)                                      \
                    CS_DOT4_ROW(r2, a2, sc[2][j], CS_W_Q4, QS_OFF)                                      \
                    CS_DOT4_ROW(r3, a3, sc[3][j], CS_W_Q4, QS_OFF)                                      \
                }                                                                                       \
            }                                                                                           \
        CS_ROWS4_END(cs_hsum256(a0) + (HAS_MIN ? _mm512_reduce_add_ps(mv[0]) : 0.0f),                 \
                     cs_hsum256(a1) + (HAS_MIN ? _mm512_reduce_add_ps(mv[1]) : 0.0f),                 \
                     cs_hsum256(a2) + (HAS_MIN ? _mm512_reduce_add_ps(mv[2]) : 0.0f),                 \
                     cs_hsum256(a3) + (HAS_MIN ? _mm512_reduce_add_ps(mv[3]) : 0.0f))                 \
    }

CS_DOT_ROWS4_Q8(dot_rows_q8_0)
CS_DOT_ROWS4(dot_rows_q4_0, cs_block_q4_0, 2, -8, 0)
CS_DOT_ROWS4(dot_rows_q4_1, cs_block_q4_1, 4, 0, 1)

/* Q5_0, Q5_1 and the K-quants (output-sparse only): chess_x86_outq.h, with AVX512-VNNI's
 * 256-bit dot steps and the fifth bits through a mask register */
static inline __m256i cs_oq_dpwssd(__m256i acc, __m256i a, __m256i b) { return _mm256_dpwssd_epi32(acc, a, b); }
static inline __m256i cs_oq_dpbusd(__m256i acc, __m256i u, __m256i s) { return _mm256_dpbusd_epi32(acc, u, s); }
#define CS_OQ_DPWSSD cs_oq_dpwssd
#define CS_OQ_DPBUSD cs_oq_dpbusd
static inline __m256i cs_oq_qh_bytes(const uint8_t *p) {
    uint32_t u;
    memcpy(&u, p, 4);
    return _mm256_maskz_mov_epi8((__mmask32)u, _mm256_set1_epi8(0x10));
}
#include "chess_x86_outq.h"

/* ---------------- activation quantizer (same arithmetic as cs_quant_x8_ref) ---------------- */

static void quant_x8(const float *x, const cs_q8x *q, int64_t n) {
    for (int64_t ib = 0; ib < n / CS_QK; ib++) {
        const __m512 v0 = _mm512_loadu_ps(x + ib * CS_QK), v1 = _mm512_loadu_ps(x + ib * CS_QK + 16);
        const __m512 am = _mm512_max_ps(_mm512_abs_ps(v0), _mm512_abs_ps(v1));
        const float amax = _mm512_reduce_max_ps(am);
        const float d = amax / 127.0f, id = cs_q8_inv_scale(amax);
        const __m512 vid = _mm512_set1_ps(id);
        const __m512i i0 = _mm512_cvtps_epi32(_mm512_roundscale_ps(_mm512_mul_ps(v0, vid), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
        const __m512i i1 = _mm512_cvtps_epi32(_mm512_roundscale_ps(_mm512_mul_ps(v1, vid), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
        _mm_storeu_si128((__m128i *)(q->qs + ib * CS_QK), _mm512_cvtepi32_epi8(i0));
        _mm_storeu_si128((__m128i *)(q->qs + ib * CS_QK + 16), _mm512_cvtepi32_epi8(i1));
        const int32_t sum = _mm512_reduce_add_epi32(_mm512_add_epi32(i0, i1));
        q->d[ib] = cs_round_fp16(d);
        q->sum[ib] = sum;
        q->s[ib] = cs_round_fp16(d * (float)sum);
    }
}

/* ---------------- prefill micro-kernel ----------------
 * Y[t][c..c+64) for 4 tokens in 16 registers, loop over k: 4 loads of P, 4
 * broadcasts of A, 16 FMAs. Column tails use masks; missing tokens use a dummy. */

static void gemm(float *Y, size_t ldy, const float *A, size_t lda, const float *P, size_t ldp, int64_t nt,
                 int64_t kc, int64_t n) {
    float dummy_y[64] CS_ALIGN64;
    static const float zero_a[1] = { 0.0f };
    for (int64_t t = 0; t < nt; t += 4) {
        float *yr[4];
        const float *ar[4];
        size_t as[4];
        for (int i = 0; i < 4; i++) {
            if (t + i < nt) { yr[i] = Y + (size_t)(t + i) * ldy; ar[i] = A + (size_t)(t + i) * lda; as[i] = 1; }
            else { yr[i] = NULL; ar[i] = zero_a; as[i] = 0; }
        }
        for (int64_t c = 0; c < n; c += 64) {
            __mmask16 m[4];
            for (int v = 0; v < 4; v++) m[v] = c + 16 * v < n ? cs_tail_mask(n - c - 16 * v) : 0;
            __m512 acc[4][4];
            for (int i = 0; i < 4; i++)
                for (int v = 0; v < 4; v++)
                    acc[i][v] = yr[i] ? _mm512_maskz_loadu_ps(m[v], yr[i] + c + 16 * v) : _mm512_setzero_ps();
            const float *pk = P + c;
            for (int64_t k = 0; k < kc; k++, pk += ldp) {
                const __m512 p0 = _mm512_maskz_loadu_ps(m[0], pk), p1 = _mm512_maskz_loadu_ps(m[1], pk + 16);
                const __m512 p2 = _mm512_maskz_loadu_ps(m[2], pk + 32), p3 = _mm512_maskz_loadu_ps(m[3], pk + 48);
                for (int i = 0; i < 4; i++) {
                    const __m512 a = _mm512_set1_ps(ar[i][k * as[i]]);
                    acc[i][0] = _mm512_fmadd_ps(a, p0, acc[i][0]);
                    acc[i][1] = _mm512_fmadd_ps(a, p1, acc[i][1]);
                    acc[i][2] = _mm512_fmadd_ps(a, p2, acc[i][2]);
                    acc[i][3] = _mm512_fmadd_ps(a, p3, acc[i][3]);
                }
            }
            for (int i = 0; i < 4; i++) {
                float *dst = yr[i] ? yr[i] + c : dummy_y;
                for (int v = 0; v < 4; v++)
                    if (yr[i]) _mm512_mask_storeu_ps(dst + 16 * v, m[v], acc[i][v]);
            }
        }
    }
}

/* ---------------- 16-bit integer prefill (contract in chess_internal.h) ---------------- */

static void pack_b_i16(const float *P, size_t ldp, const float *rinv, int64_t kc, int64_t n, int32_t *B, float *e) {
    const int64_t ncb = n / 16;
    for (int64_t g = 0; g < kc / 32; g++) {
        for (int64_t cb = 0; cb < ncb; cb++) {
            const float *p = P + (size_t)(32 * g) * ldp + (size_t)(16 * cb);
            __m512 amax = _mm512_setzero_ps();
            for (int64_t k = 0; k < 32; k++)
                amax = _mm512_max_ps(amax, _mm512_abs_ps(_mm512_mul_ps(_mm512_loadu_ps(p + (size_t)k * ldp), _mm512_set1_ps(rinv[32 * g + k]))));
            const __mmask16 nz = _mm512_cmp_ps_mask(amax, _mm512_setzero_ps(), _CMP_GT_OQ);
            const __m512 inv = _mm512_maskz_div_ps(nz, _mm512_set1_ps(4095.0f), amax);
            _mm512_storeu_ps(e + (size_t)g * (size_t)n + (size_t)(16 * cb), _mm512_div_ps(amax, _mm512_set1_ps(4095.0f)));
            int32_t *dst = B + (size_t)((g * ncb + cb) * 16) * 16;
            for (int64_t st = 0; st < 16; st++) {
                const __m512 v0 = _mm512_mul_ps(_mm512_loadu_ps(p + (size_t)(2 * st) * ldp), _mm512_set1_ps(rinv[32 * g + 2 * st]));
                const __m512 v1 = _mm512_mul_ps(_mm512_loadu_ps(p + (size_t)(2 * st + 1) * ldp), _mm512_set1_ps(rinv[32 * g + 2 * st + 1]));
                const __m512i q0 = _mm512_cvtps_epi32(_mm512_mul_ps(v0, inv)), q1 = _mm512_cvtps_epi32(_mm512_mul_ps(v1, inv));
                _mm512_storeu_si512(dst + st * 16, _mm512_or_si512(_mm512_and_si512(q0, _mm512_set1_epi32(0xffff)), _mm512_slli_epi32(q1, 16)));
            }
        }
    }
}

static void quant_a_i16(const float *x, int64_t n, int16_t *q, float *d) {
    for (int64_t g = 0; g < n / 32; g++) {
        const __m512 v0 = _mm512_loadu_ps(x + 32 * g), v1 = _mm512_loadu_ps(x + 32 * g + 16);
        const float amax = _mm512_reduce_max_ps(_mm512_max_ps(_mm512_abs_ps(v0), _mm512_abs_ps(v1)));
        const float inv = amax > 0.0f ? 8191.0f / amax : 0.0f;
        d[g] = amax / 8191.0f;
        const __m512 vi = _mm512_set1_ps(inv);
        _mm256_storeu_si256((__m256i *)(q + 32 * g), _mm512_cvtepi32_epi16(_mm512_cvtps_epi32(_mm512_mul_ps(v0, vi))));
        _mm256_storeu_si256((__m256i *)(q + 32 * g + 16), _mm512_cvtepi32_epi16(_mm512_cvtps_epi32(_mm512_mul_ps(v1, vi))));
    }
}

/* Q4_0: the scales through the windows of in_accum (no gather); Q4_1 through a gather */
static void row_magnitudes(int type, const uint8_t *w, size_t nb1, const int32_t *rows, int64_t n, int64_t nb, float *r) {
    const int q4_1 = type == CS_Q4_1, q8 = type == CS_Q8_0;
    const int S = q4_1 ? (int)sizeof(cs_block_q4_1) : q8 ? (int)sizeof(cs_block_q8_0) : (int)sizeof(cs_block_q4_0);
    const __m512i off = cs_block_offsets(S);
    for (int64_t k = 0; k < n; k++) {
        const uint8_t *row = w + (size_t)rows[k] * nb1;
        __m512 m = _mm512_setzero_ps();
        for (int64_t b = 0; b < nb; b += 16) {
            const __mmask16 tail = cs_tail_mask(nb - b);
            const uint8_t *p = row + (size_t)b * S;
            if (q4_1) {
                const __m512i raw = cs_gather_head(p, off, nb - b);
                const __m512 v = _mm512_fmadd_ps(_mm512_abs_ps(cs_lo_half_to_ps(raw)), _mm512_set1_ps(15.0f), _mm512_abs_ps(cs_hi_half_to_ps(raw)));
                m = _mm512_mask_max_ps(m, tail, m, v);
            } else if (q8) {
                m = _mm512_mask_max_ps(m, tail, m, _mm512_mul_ps(_mm512_abs_ps(cs_q8_0_scales16(p, (nb - b) * S)), _mm512_set1_ps(128.0f)));
            } else {
                m = _mm512_mask_max_ps(m, tail, m, _mm512_mul_ps(_mm512_abs_ps(cs_q4_0_scales16(p, (nb - b) * S)), _mm512_set1_ps(8.0f)));
            }
        }
        r[k] = _mm512_reduce_max_ps(m);
    }
}

/* 4 tokens x 32 columns: 8 int32 accumulators per group of 32 k (16 vpdpwssd steps),
 * scaled into 8 float ones; 16 columns x 2 k per instruction. */
static void gemm_i16(float *Y, size_t ldy, const int16_t *qa, size_t ldq, const float *da, size_t ldd, const int32_t *B,
                     const float *e, int64_t nt, int64_t ng, int64_t n) {
    const int64_t ncb = n / 16;
    for (int64_t t0 = 0; t0 < nt; t0 += 4) {
        const int16_t *ar[4];
        const float *dr[4];
        cs_i16_token_rows(qa, ldq, da, ldd, t0, nt, ar, dr);
        for (int64_t cb = 0; cb < ncb; cb += 2) {
            __m512 f[4][2];
            for (int i = 0; i < 4; i++) f[i][0] = f[i][1] = _mm512_setzero_ps();
            for (int64_t g = 0; g < ng; g++) {
                __m512i acc[4][2];
                for (int i = 0; i < 4; i++) acc[i][0] = acc[i][1] = _mm512_setzero_si512();
                const int32_t *b0 = B + (size_t)((g * ncb + cb) * 16) * 16, *b1 = b0 + 16 * 16;
                for (int64_t st = 0; st < 16; st++) {
                    const __m512i w0 = _mm512_loadu_si512(b0 + st * 16), w1 = _mm512_loadu_si512(b1 + st * 16);
                    for (int i = 0; i < 4; i++) {
                        int32_t a2;
                        memcpy(&a2, ar[i] + 32 * g + 2 * st, 4);
                        const __m512i a = _mm512_set1_epi32(a2);
                        acc[i][0] = _mm512_dpwssd_epi32(acc[i][0], w0, a);
                        acc[i][1] = _mm512_dpwssd_epi32(acc[i][1], w1, a);
                    }
                }
                const __m512 e0 = _mm512_loadu_ps(e + (size_t)g * (size_t)n + (size_t)(16 * cb)), e1 = _mm512_loadu_ps(e + (size_t)g * (size_t)n + (size_t)(16 * cb + 16));
                for (int i = 0; i < 4; i++) {
                    const __m512 d = _mm512_set1_ps(dr[i][g]);
                    f[i][0] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(acc[i][0]), _mm512_mul_ps(e0, d), f[i][0]);
                    f[i][1] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(acc[i][1]), _mm512_mul_ps(e1, d), f[i][1]);
                }
            }
            for (int i = 0; i < 4 && t0 + i < nt; i++) {
                float *y = Y + (size_t)(t0 + i) * ldy + (size_t)(16 * cb);
                _mm512_storeu_ps(y, _mm512_add_ps(_mm512_loadu_ps(y), f[i][0]));
                _mm512_storeu_ps(y + 16, _mm512_add_ps(_mm512_loadu_ps(y + 16), f[i][1]));
            }
        }
    }
}

/* ---------------- output-sparse prefill (block types, row layout) ----------------
 * Per-token dot_rows is a GEMV per token: each weight byte is unpacked once per token.
 * Here 16 rows form a panel, unpacked once into unsigned bytes and transposed so that
 * dword lane r of register k (k = 0..7) holds weights 4k..4k+3 of row r in a block;
 * per block and token one vpdpbusd per k against the token's 4 activation bytes
 * broadcast gives the 16 rows' block dots (exact; a weight offset, Q4_0 -8 and Q8_0
 * -128 after its sign flip, enters through the accumulator's start, offset * sum of
 * the block's activations), scaled once per block (Q4_1 adds m * dx * sum): 4 tokens
 * share each panel load. The rows' blocks are summed in order, so a row's result does
 * not depend on its panel. Kernel benchmark, 256 tokens, 2 threads, Llama-2-7B W_up
 * Q4_0: 55 ms, against 87 ms for ggml's repacked dense GEMM and 99-175 ms for dot_rows
 * per token. */
static inline void cs_gemm_rows(int kind, float *D, const uint8_t *w, size_t nb1, const int32_t *rows, int64_t nr,
                                const cs_q8x *xq, int64_t nt, int64_t n, uint8_t *pack) {
    const int64_t nb = n / CS_QK;
    const int32_t offset = kind == CS_GR_Q4_0 ? -8 : kind == CS_GR_Q8_0 ? -128 : 0;
    uint8_t *pw = pack;                                                  /* nb x 8 x 64 bytes */
    float *pd = (float *)(pack + (size_t)nb * 16 * CS_QK);               /* nb x 16 row scales */
    float *pm = pd + (size_t)nb * 16;                                    /* nb x 16 row minima (Q4_1) */
    for (int64_t p0 = 0; p0 < nr; p0 += 16) {
        const int64_t np = nr - p0 < 16 ? nr - p0 : 16;
        cs_gr_pack_panel(kind, 1, w, nb1, rows + p0, np, 16, nb, pw, pd, pm); /* Q8_0 unsigned: vpdpbusd */
        const __mmask16 store = cs_tail_mask(np);
        for (int64_t t0 = 0; t0 < nt; t0 += 4) {
            const cs_q8x *x0 = &xq[t0], *x1 = &xq[t0 + 1 < nt ? t0 + 1 : t0], *x2 = &xq[t0 + 2 < nt ? t0 + 2 : t0],
                         *x3 = &xq[t0 + 3 < nt ? t0 + 3 : t0];
            __m512 f0 = _mm512_setzero_ps(), f1 = _mm512_setzero_ps(), f2 = _mm512_setzero_ps(), f3 = _mm512_setzero_ps();
            for (int64_t b = 0; b < nb; b++) {
                const uint8_t *pb = pw + (size_t)b * 512;
                const __m512 dr = _mm512_load_ps(pd + b * 16);
#define CS_GR_TOKEN(X, F)                                                                                     \
                {                                                                                            \
                    const int8_t *xb = (X)->qs + b * CS_QK;                                                  \
                    __m512i acc = _mm512_set1_epi32(offset * (X)->sum[b]);                                   \
                    for (int k = 0; k < 8; k++) {                                                            \
                        int32_t xv;                                                                          \
                        memcpy(&xv, xb + 4 * k, 4);                                                          \
                        acc = _mm512_dpbusd_epi32(acc, _mm512_load_si512((const void *)(pb + 64 * k)), _mm512_set1_epi32(xv)); \
                    }                                                                                        \
                    F = _mm512_fmadd_ps(_mm512_cvtepi32_ps(acc), _mm512_mul_ps(dr, _mm512_set1_ps((X)->d[b])), F); \
                    if (kind == CS_GR_Q4_1)                                                                  \
                        F = _mm512_fmadd_ps(_mm512_load_ps(pm + b * 16), _mm512_set1_ps((X)->s[b]), F); \
                }
                CS_GR_TOKEN(x0, f0)
                CS_GR_TOKEN(x1, f1)
                CS_GR_TOKEN(x2, f2)
                CS_GR_TOKEN(x3, f3)
#undef CS_GR_TOKEN
            }
            _mm512_mask_storeu_ps(D + (size_t)t0 * (size_t)nr + p0, store, f0);
            if (t0 + 1 < nt) _mm512_mask_storeu_ps(D + (size_t)(t0 + 1) * (size_t)nr + p0, store, f1);
            if (t0 + 2 < nt) _mm512_mask_storeu_ps(D + (size_t)(t0 + 2) * (size_t)nr + p0, store, f2);
            if (t0 + 3 < nt) _mm512_mask_storeu_ps(D + (size_t)(t0 + 3) * (size_t)nr + p0, store, f3);
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

/* The two AVX-512 tables differ only in the 4-bit input-sparse kernels. */
#define CS_AVX512_TABLE(NAME, LABEL, IN_Q4_0, IN_Q4_1)                                                \
    const cs_isa_table NAME = {                                                                       \
        .name = LABEL,                                                                                \
        .gemm_rows = { [CS_Q8_0] = gemm_rows_q8_0, [CS_Q4_0] = gemm_rows_q4_0, [CS_Q4_1] = gemm_rows_q4_1 }, \
        .k = {                                                                                        \
            [CS_F32]  = { in_accum_f32, dot_rows_f32, to_float_f32 },                                 \
            [CS_F16]  = { in_accum_f16, dot_rows_f16, to_float_f16 },                                 \
            [CS_BF16] = { in_accum_bf16, dot_rows_bf16, to_float_bf16 },                              \
            [CS_Q8_0] = { in_accum_q8_0, dot_rows_q8_0, to_float_q8_0 },                              \
            [CS_Q4_0] = { IN_Q4_0, dot_rows_q4_0, to_float_q4_0 },                                    \
            [CS_Q4_1] = { IN_Q4_1, dot_rows_q4_1, to_float_q4_1 },                                    \
            [CS_Q5_0] = { NULL, dot_rows_q5_0, NULL },                                                \
            [CS_Q5_1] = { NULL, dot_rows_q5_1, NULL },                                                \
            [CS_Q4_K] = { NULL, dot_rows_q4_K, NULL },                                                \
            [CS_Q5_K] = { NULL, dot_rows_q5_K, NULL },                                                \
            [CS_Q6_K] = { NULL, dot_rows_q6_K, NULL },                                                \
        },                                                                                            \
        .quant_x8 = quant_x8,                                                                         \
        .gemm = gemm,                                                                                 \
        .pack_b_i16 = pack_b_i16,                                                                     \
        .gemm_i16 = gemm_i16,                                                                         \
        .quant_a_i16 = quant_a_i16,                                                                   \
        .row_magnitudes = row_magnitudes,                                                             \
    };
CS_AVX512_TABLE(cs_table_avx512, "avx512", in_accum_q4_0, in_accum_q4_1)
CS_AVX512_TABLE(cs_table_avx512_vbmi, "avx512vbmi", in_accum_q4_0_vbmi, in_accum_q4_1_vbmi)
