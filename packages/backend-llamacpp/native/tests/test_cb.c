/* Tests of the column-block layout (docs/gguf-sparse.md §3.1) and its kernels.
 *
 *   test_cb layout     every type, several shapes: to_rows(from_rows(x)) == x and
 *                      from_rows(to_rows(y)) == y byte for byte on random bytes (to_rows
 *                      split over 1..4 threads called in random order); every value read
 *                      from the column-block form by this file's own accessor (written from
 *                      §3.1) equals ggml's reference dequantization of the row form (when
 *                      linked, else this file's own row dequantizer); chess_cb_check.
 *   test_cb quant      (ggml) the activation quantizer equals ggml-cpu's from_float of the
 *                      vec_dot type on this platform (x86 and AArch64 differ) bit for bit: Q8_0 / Q8_1 (fp16 d and s) and Q8_K (float
 *                      d, bsums), incl. zero blocks and exact .5 ties.
 *   test_cb reference  chess_spmv_cb / _parts on the portable reference against ggml's own
 *                      dense product of the ROW-layout weight (ggml_vec_dot of the type on
 *                      the masked input quantized by ggml's from_float), every type, random
 *                      shapes, sparsities 0 / 0.3 / 0.5 / 0.9 / 1, 1..3 tokens, 1..4 threads,
 *                      1..4 parts; "exact" cases (power-of-two scales, integer activations:
 *                      every float operation exact in either order) must equal ggml bit for
 *                      bit, which pins every integer block sum; the rest within the bound
 *                      below; a float64 product loosely; 100% sparsity gives exactly 0;
 *                      results do not depend on the thread count; the counters.
 *   test_cb simd       every compiled ISA the CPU has against the reference, bit for bit.
 *   test_cb badargs    error codes, nothing written on error.
 *
 * Tolerance against ggml (non-exact cases). Both sides add the same exact products
 * (integer block sums scaled by the same float scales) in different float orders: ours
 * block by block, ggml's in 8 SIMD lanes then a horizontal sum, each with up to 3
 * roundings per product term. With u = 2^-24 and A = the sum over every weight x
 * activation product (and minimum term) of its absolute value, each side is within
 * (n_blocks + 8 + 3) u A of the exact sum (recursive summation bound), so
 * |ours - ggml| <= (2 n_blocks + 32) u A.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chess_sparse.h"
#include "chess_cb_internal.h" /* white-box: the activation quantizer, per-ISA tables */

#ifdef CHESS_TEST_WITH_GGML
#include "ggml.h"
#include "ggml-cpu.h"
#endif

static int g_failures = 0;
static long g_checks = 0;
#define CHECK(cond, ...)                                                         \
    do {                                                                         \
        g_checks++;                                                              \
        if (!(cond)) {                                                           \
            g_failures++;                                                        \
            fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__);                 \
            fprintf(stderr, __VA_ARGS__);                                        \
            fprintf(stderr, "\n");                                               \
            if (g_failures > 30) { fprintf(stderr, "too many failures\n"); exit(1); } \
        }                                                                        \
    } while (0)

/* ---------------- random numbers ---------------- */
static uint64_t g_rng = 0x2545f4914f6cdd1dull;
static uint64_t rnd_u64(void) {
    uint64_t z = (g_rng += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}
static double rnd_unit(void) { return (double)(rnd_u64() >> 11) * (1.0 / 9007199254740992.0); }
static int64_t rnd_int(int64_t lo, int64_t hi) { return lo + (int64_t)(rnd_u64() % (uint64_t)(hi - lo + 1)); }
static float rnd_normal(void) {
    double u = rnd_unit(), v = rnd_unit();
    if (u < 1e-300) u = 1e-300;
    return (float)(sqrt(-2.0 * log(u)) * cos(6.283185307179586 * v));
}

/* ---------------- types ---------------- */
static const chess_type k_types[] = { CHESS_TYPE_F32, CHESS_TYPE_F16, CHESS_TYPE_BF16, CHESS_TYPE_Q8_0,
                                      CHESS_TYPE_Q4_0, CHESS_TYPE_Q4_1, CHESS_TYPE_Q5_0, CHESS_TYPE_Q5_1,
                                      CHESS_TYPE_Q4_K, CHESS_TYPE_Q5_K, CHESS_TYPE_Q6_K };
#define N_TYPES (int)(sizeof k_types / sizeof k_types[0])
static const char *tname(chess_type t) {
    switch (t) {
    case CHESS_TYPE_F32: return "f32"; case CHESS_TYPE_F16: return "f16"; case CHESS_TYPE_BF16: return "bf16";
    case CHESS_TYPE_Q8_0: return "q8_0"; case CHESS_TYPE_Q4_0: return "q4_0"; case CHESS_TYPE_Q4_1: return "q4_1";
    case CHESS_TYPE_Q5_0: return "q5_0"; case CHESS_TYPE_Q5_1: return "q5_1"; case CHESS_TYPE_Q4_K: return "q4_K";
    case CHESS_TYPE_Q5_K: return "q5_K"; case CHESS_TYPE_Q6_K: return "q6_K";
    }
    return "?";
}
/* this file's own block sizes (§3.1: B channels per group, S bytes per block) */
static int64_t tB(chess_type t) {
    switch (t) {
    case CHESS_TYPE_F32: case CHESS_TYPE_F16: case CHESS_TYPE_BF16: return 1;
    case CHESS_TYPE_Q4_K: case CHESS_TYPE_Q5_K: case CHESS_TYPE_Q6_K: return 256;
    default: return 32;
    }
}
static size_t tS(chess_type t) {
    switch (t) {
    case CHESS_TYPE_F32: return 4; case CHESS_TYPE_F16: case CHESS_TYPE_BF16: return 2;
    case CHESS_TYPE_Q8_0: return 34; case CHESS_TYPE_Q4_0: return 18; case CHESS_TYPE_Q4_1: return 20;
    case CHESS_TYPE_Q5_0: return 22; case CHESS_TYPE_Q5_1: return 24; case CHESS_TYPE_Q4_K: return 144;
    case CHESS_TYPE_Q5_K: return 176; case CHESS_TYPE_Q6_K: return 210;
    }
    return 0;
}
static size_t row_bytes(chess_type t, int64_t n_in) { return (size_t)(n_in / tB(t)) * tS(t); }
static size_t tensor_bytes(chess_type t, int64_t n_in, int64_t n_out) { return row_bytes(t, n_in) * (size_t)n_out; }

static float half_to_float(uint16_t h) {
    const int s = h >> 15, e = (h >> 10) & 31, m = h & 1023;
    double v;
    if (e == 0) v = ldexp((double)m, -24);
    else if (e == 31) v = m ? NAN : INFINITY;
    else v = ldexp(1024.0 + m, e - 25);
    return (float)(s ? -v : v);
}
static float bf16_to_float(uint16_t h) { uint32_t u = (uint32_t)h << 16; float f; memcpy(&f, &u, 4); return f; }
static uint16_t rd16(const uint8_t *p) { return (uint16_t)(p[0] | (p[1] << 8)); }
static void wr16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); }
static uint16_t rnd_half(int elo, int ehi) {
    return (uint16_t)(((rnd_u64() & 1) << 15) | ((uint64_t)rnd_int(elo, ehi) << 10) | (rnd_u64() & 1023));
}
static uint16_t pow2_half(int e) { return (uint16_t)((uint16_t)(e + 15) << 10); } /* 2^e, e in [-14, 15] */

/* scale/min field offsets (fp16) inside a block of the row form */
static int half_fields(chess_type t, int *off) {
    switch (t) {
    case CHESS_TYPE_Q8_0: case CHESS_TYPE_Q4_0: case CHESS_TYPE_Q5_0: off[0] = 0; return 1;
    case CHESS_TYPE_Q4_1: case CHESS_TYPE_Q5_1: case CHESS_TYPE_Q4_K: case CHESS_TYPE_Q5_K: off[0] = 0; off[1] = 2; return 2;
    case CHESS_TYPE_Q6_K: off[0] = 208; return 1;
    default: return 0;
    }
}

/* Row-form weights: random bytes with sane scales (mode 0) or power-of-two scales and
 * small values (mode 1, "exact": see the header). */
static uint8_t *make_rows(chess_type t, int64_t n_in, int64_t n_out, int exact) {
    const size_t n = tensor_bytes(t, n_in, n_out);
    uint8_t *w = malloc(n + 1);
    for (size_t i = 0; i < n; i++) w[i] = (uint8_t)rnd_u64();
    const int64_t nblk = (int64_t)(n / tS(t));
    const int e0 = (int)rnd_int(-8, -3); /* exact: one exponent for K-quants, a range of 4 otherwise */
    for (int64_t b = 0; b < nblk; b++) {
        uint8_t *p = w + (size_t)b * tS(t);
        int off[2];
        const int nf = half_fields(t, off);
        for (int f = 0; f < nf; f++) {
            uint16_t h;
            if (!exact) h = f == 0 ? (uint16_t)(rnd_half(3, 8) & 0x7fff) : rnd_half(3, 8);
            else h = (uint16_t)(pow2_half(tB(t) == 256 ? e0 : e0 + (int)rnd_int(0, 2)) | (rnd_u64() & 1) << 15);
            wr16(p + off[f], h);
        }
        switch (t) {
        case CHESS_TYPE_F32: {
            float f = exact ? (float)rnd_int(-8, 8) : rnd_normal();
            memcpy(p, &f, 4);
            break;
        }
        case CHESS_TYPE_F16:
            wr16(p, exact ? (uint16_t)(rnd_int(0, 1) ? 0 : (pow2_half((int)rnd_int(-2, 3)) | (rnd_u64() & 1) << 15)) : rnd_half(10, 16));
            break;
        case CHESS_TYPE_BF16: {
            uint16_t v = exact ? (uint16_t)(((rnd_u64() & 1) << 15) | ((uint64_t)rnd_int(125, 130) << 7))
                               : (uint16_t)(((rnd_u64() & 1) << 15) | ((uint64_t)rnd_int(122, 128) << 7) | (rnd_u64() & 127));
            wr16(p, v);
            break;
        }
        case CHESS_TYPE_Q6_K:
            if (exact) for (int j = 0; j < 16; j++) p[192 + j] = (uint8_t)(int8_t)rnd_int(-32, 32);
            break;
        default: break;
        }
    }
    return w;
}

/* ---------------- this file's own reading of the column-block form (§3.1) ---------------- */
typedef struct {
    int v;      /* the stored integer (unsigned; Q8_0 signed) */
    int off;    /* offset subtracted before scaling (Q4_0 8, Q5_0 16, Q6_K 32) */
    float d;    /* block scale (fp16) */
    float dm;   /* Q4_1/Q5_1 m, K-quant dmin */
    int sc, mn; /* K-quants: sub-block scale (and min for Q4_K/Q5_K) */
    float deq;  /* the dequantized value, with ggml's float operations */
} elem;

static void own_k4_scale_min(int j, const uint8_t *q, int *sc, int *m) {
    if (j < 4) { *sc = q[j] & 63; *m = q[j + 4] & 63; }
    else { *sc = (q[j + 4] & 15) | ((q[j - 4] >> 6) << 4); *m = (q[j + 4] >> 4) | ((q[j] >> 6) << 4); }
}

static elem own_cb_elem(chess_type t, const uint8_t *cb, int64_t n_in, int64_t R, int64_t r, int64_t j) {
    (void)n_in;
    elem e;
    memset(&e, 0, sizeof e);
    const int64_t B = tB(t), g = j / B, c = j % B;
    const uint8_t *grp = cb + (size_t)g * (size_t)R * tS(t);
    if (B == 1) {
        const uint8_t *p = grp + (size_t)r * tS(t);
        if (t == CHESS_TYPE_F32) memcpy(&e.deq, p, 4);
        else e.deq = t == CHESS_TYPE_F16 ? half_to_float(rd16(p)) : bf16_to_float(rd16(p));
        return e;
    }
    size_t sc_bytes, bits;
    switch (t) {
    case CHESS_TYPE_Q8_0: sc_bytes = 2; bits = 8; break;
    case CHESS_TYPE_Q4_0: sc_bytes = 2; bits = 4; break;
    case CHESS_TYPE_Q4_1: sc_bytes = 4; bits = 4; break;
    case CHESS_TYPE_Q5_0: sc_bytes = 2; bits = 5; break;
    case CHESS_TYPE_Q5_1: sc_bytes = 4; bits = 5; break;
    case CHESS_TYPE_Q4_K: sc_bytes = 16; bits = 4; break;
    case CHESS_TYPE_Q5_K: sc_bytes = 16; bits = 5; break;
    default: sc_bytes = 18; bits = 6; break;
    }
    const uint8_t *col = grp + (size_t)R * sc_bytes + (size_t)c * (size_t)R * bits / 8;
    const int64_t u = r / 32, b = r % 32;
    if (bits == 8) e.v = (int8_t)col[r];
    else {
        const uint8_t nb = col[16 * u + (b % 16)];
        e.v = b < 16 ? nb & 15 : nb >> 4;
        if (bits == 5) e.v |= ((col[R / 2 + 4 * u + b / 8] >> (b % 8)) & 1) << 4;
        if (bits == 6) e.v |= ((col[R / 2 + 8 * u + b % 8] >> (2 * (b / 8))) & 3) << 4;
    }
    e.d = half_to_float(rd16(grp + 2 * r));
    switch (t) {
    case CHESS_TYPE_Q8_0: e.deq = (float)e.v * e.d; break;
    case CHESS_TYPE_Q4_0: e.off = 8; e.deq = (float)(e.v - 8) * e.d; break;
    case CHESS_TYPE_Q5_0: e.off = 16; e.deq = (float)(e.v - 16) * e.d; break;
    case CHESS_TYPE_Q4_1: case CHESS_TYPE_Q5_1:
        e.dm = half_to_float(rd16(grp + 2 * R + 2 * r));
        e.deq = (float)e.v * e.d + e.dm;
        break;
    case CHESS_TYPE_Q4_K: case CHESS_TYPE_Q5_K: {
        e.dm = half_to_float(rd16(grp + 2 * R + 2 * r));
        own_k4_scale_min((int)(c / 32), grp + 4 * R + 12 * r, &e.sc, &e.mn);
        const float d1 = e.d * (float)e.sc, m1 = e.dm * (float)e.mn;
        e.deq = d1 * (float)e.v - m1;
        break;
    }
    default: /* Q6_K */
        e.off = 32;
        e.sc = (int8_t)grp[2 * R + 16 * r + c / 16];
        e.deq = e.d * (float)e.sc * (float)(e.v - 32);
        break;
    }
    return e;
}

/* This file's own row-form dequantizer (used when ggml is not linked; checked against
 * ggml's when it is). */
static void own_row_deq(chess_type t, const uint8_t *row, int64_t n_in, float *out) {
    const int64_t B = tB(t);
    for (int64_t b = 0; b < n_in / B; b++) {
        const uint8_t *p = row + (size_t)b * tS(t);
        float *o = out + b * B;
        switch (t) {
        case CHESS_TYPE_F32: memcpy(o, p, 4); break;
        case CHESS_TYPE_F16: o[0] = half_to_float(rd16(p)); break;
        case CHESS_TYPE_BF16: o[0] = bf16_to_float(rd16(p)); break;
        case CHESS_TYPE_Q8_0: for (int i = 0; i < 32; i++) o[i] = (float)(int8_t)p[2 + i] * half_to_float(rd16(p)); break;
        case CHESS_TYPE_Q4_0: case CHESS_TYPE_Q4_1: case CHESS_TYPE_Q5_0: case CHESS_TYPE_Q5_1: {
            const int has_m = t == CHESS_TYPE_Q4_1 || t == CHESS_TYPE_Q5_1, five = t == CHESS_TYPE_Q5_0 || t == CHESS_TYPE_Q5_1;
            const float d = half_to_float(rd16(p)), m = has_m ? half_to_float(rd16(p + 2)) : 0.0f;
            const uint8_t *qh = p + (has_m ? 4 : 2), *qs = qh + (five ? 4 : 0);
            uint32_t h = 0;
            if (five) memcpy(&h, qh, 4);
            for (int i = 0; i < 16; i++) {
                int v0 = qs[i] & 15, v1 = qs[i] >> 4;
                if (five) { v0 |= ((h >> i) & 1) << 4; v1 |= ((h >> (i + 16)) & 1) << 4; }
                const int off = has_m ? 0 : five ? 16 : 8;
                o[i] = has_m ? (float)v0 * d + m : (float)(v0 - off) * d;
                o[i + 16] = has_m ? (float)v1 * d + m : (float)(v1 - off) * d;
            }
            break;
        }
        case CHESS_TYPE_Q4_K: case CHESS_TYPE_Q5_K: {
            const int five = t == CHESS_TYPE_Q5_K;
            const float d = half_to_float(rd16(p)), dmin = half_to_float(rd16(p + 2));
            const uint8_t *scales = p + 4, *qh = p + 16, *qs = p + (five ? 48 : 16);
            for (int j = 0; j < 8; j++) {
                int sc, m;
                own_k4_scale_min(j, scales, &sc, &m);
                const float d1 = d * (float)sc, m1 = dmin * (float)m;
                for (int l = 0; l < 32; l++) {
                    const uint8_t byte = qs[32 * (j / 2) + l];
                    int v = j % 2 ? byte >> 4 : byte & 15;
                    if (five) v |= ((qh[l] >> j) & 1) << 4;
                    o[32 * j + l] = d1 * (float)v - m1;
                }
            }
            break;
        }
        case CHESS_TYPE_Q6_K: {
            const float d = half_to_float(rd16(p + 208));
            for (int i = 0; i < 256; i++) {
                const int h = i / 128, k = (i % 128) / 32, l = i % 32;
                const uint8_t ql = p[64 * h + 32 * (k % 2) + l];
                const int lo = k < 2 ? ql & 15 : ql >> 4;
                const int hi = (p[128 + 32 * h + l] >> (2 * k)) & 3;
                o[i] = d * (float)(int8_t)p[192 + i / 16] * (float)((lo | hi << 4) - 32);
            }
            break;
        }
        }
    }
}

/* Golden row dequantization: ggml's reference to_float when linked, else the own one. */
static void golden_row_deq(chess_type t, const uint8_t *row, int64_t n_in, float *out) {
    own_row_deq(t, row, n_in, out);
#ifdef CHESS_TEST_WITH_GGML
    const ggml_to_float_t to_float = ggml_get_type_traits((enum ggml_type)t)->to_float;
    if (!to_float) return; /* F32: identity */
    float *g = malloc(sizeof(float) * (size_t)n_in);
    to_float(row, g, n_in);
    int64_t bad = -1;
    for (int64_t i = 0; i < n_in; i++)
        if (memcmp(&g[i], &out[i], 4) != 0 && bad < 0) bad = i;
    CHECK(bad < 0, "%s: own row dequantizer disagrees with ggml at %lld (%g vs %g)", tname(t), (long long)bad,
          bad < 0 ? 0.0 : (double)out[bad], bad < 0 ? 0.0 : (double)g[bad]);
    memcpy(out, g, sizeof(float) * (size_t)n_in);
    free(g);
#endif
}

/* ---------------- layout ---------------- */

static void to_rows_threads(chess_type t, const uint8_t *cb, int64_t n_in, int64_t n_out, uint8_t *rows, int nth) {
    int order[8];
    for (int i = 0; i < nth; i++) order[i] = i;
    for (int i = nth - 1; i > 0; i--) { const int j = (int)rnd_int(0, i); const int tmp = order[i]; order[i] = order[j]; order[j] = tmp; }
    for (int i = 0; i < nth; i++)
        CHECK(chess_cb_to_rows(t, cb, n_in, n_out, rows, order[i], nth) == CHESS_OK, "to_rows rc");
}

static void test_layout(void) {
    for (int ti = 0; ti < N_TYPES; ti++) {
        const chess_type t = k_types[ti];
        const int64_t B = tB(t);
        CHECK(chess_cb_supported(t), "%s supported", tname(t));
        CHECK(chess_cb_group_size(t) == B, "%s group size %lld", tname(t), (long long)chess_cb_group_size(t));
        int cases = 0;
        const int64_t outs_q[] = { 32, 64, 192, 576, 96, 160 }, outs_f[] = { 1, 7, 32, 33, 100, 576 };
        for (int si = 0; si < 6; si++) {
            const int64_t n_out = B == 1 ? outs_f[si] : outs_q[si];
            const int64_t n_in = B * (B == 256 ? rnd_int(1, 3) : B == 1 ? rnd_int(1, 70) : rnd_int(1, 9));
            const size_t n = tensor_bytes(t, n_in, n_out);
            CHECK(chess_cb_check(t, n_in, n_out, n) == CHESS_OK, "%s check %lldx%lld", tname(t), (long long)n_in, (long long)n_out);
            CHECK(chess_cb_check(t, n_in, n_out, n + 1) == CHESS_ERR_SHAPE, "%s check size+1", tname(t));
            CHECK(chess_cb_check(t, n_in, n_out, n - 1) == CHESS_ERR_SHAPE, "%s check size-1", tname(t));
            if (B > 1) {
                CHECK(chess_cb_check(t, n_in + 1, n_out, n) == CHESS_ERR_SHAPE, "%s check n_in %% B", tname(t));
                CHECK(chess_cb_check(t, n_in, n_out + 16, row_bytes(t, n_in) * (size_t)(n_out + 16)) == CHESS_ERR_SHAPE,
                      "%s check n_out %% 32", tname(t));
            }
            /* round trips on random bytes (every bit of every block is carried) */
            uint8_t *rows = malloc(n), *cb = malloc(n), *back = malloc(n), *cb2 = malloc(n);
            for (size_t i = 0; i < n; i++) rows[i] = (uint8_t)rnd_u64();
            memset(cb, 0xa5, n);
            CHECK(chess_cb_from_rows(t, rows, n_in, n_out, cb) == CHESS_OK, "from_rows rc");
            memset(back, 0x5a, n);
            to_rows_threads(t, cb, n_in, n_out, back, (int)rnd_int(1, 4));
            CHECK(memcmp(rows, back, n) == 0, "%s %lldx%lld: to_rows(from_rows(x)) != x", tname(t), (long long)n_in, (long long)n_out);
            if (B > 1) CHECK(memcmp(rows, cb, n) != 0, "%s: column-block form equals the row form", tname(t));
            for (size_t i = 0; i < n; i++) cb[i] = (uint8_t)rnd_u64();
            to_rows_threads(t, cb, n_in, n_out, back, (int)rnd_int(1, 4));
            CHECK(chess_cb_from_rows(t, back, n_in, n_out, cb2) == CHESS_OK, "from_rows rc");
            CHECK(memcmp(cb, cb2, n) == 0, "%s %lldx%lld: from_rows(to_rows(y)) != y", tname(t), (long long)n_in, (long long)n_out);
            /* a range of rows alone (rows_range) = those rows of the whole restore, nothing written around them */
            {
                const int64_t step = B == 1 ? 1 : 32, nst = (n_out + step - 1) / step;
                const int64_t r0 = step * rnd_int(0, nst - 1), r1 = r0 + step * rnd_int(1, nst - r0 / step) > n_out ? n_out : r0 + step * rnd_int(1, nst - r0 / step);
                const size_t rb = row_bytes(t, n_in), part = (size_t)(r1 - r0) * rb;
                uint8_t *seg = malloc(part + 64);
                memset(seg, 0x77, part + 64);
                CHECK(chess_cb_rows_range(t, cb, n_in, n_out, r0, r1, seg) == CHESS_OK, "rows_range rc");
                CHECK(memcmp(seg, back + (size_t)r0 * rb, part) == 0, "%s %lldx%lld: rows_range [%lld, %lld) differs from to_rows",
                      tname(t), (long long)n_in, (long long)n_out, (long long)r0, (long long)r1);
                int untouched = 1;
                for (int i = 0; i < 64; i++) untouched &= seg[part + i] == 0x77;
                CHECK(untouched, "%s: rows_range wrote past its rows", tname(t));
                if (B > 1) {
                    CHECK(chess_cb_rows_range(t, cb, n_in, n_out, 16, 32, seg) == CHESS_ERR_SHAPE, "rows_range r0 %% 32");
                    CHECK(chess_cb_rows_range(t, cb, n_in, n_out, 0, n_out + 32, seg) == CHESS_ERR_SHAPE, "rows_range r1 > n_out");
                }
                CHECK(chess_cb_rows_range(t, cb, n_in, n_out, 0, 0, seg) == CHESS_ERR_SHAPE, "rows_range empty");
                free(seg);
            }
            /* value positions: own accessor on the column-block form == golden dequantization of the rows */
            uint8_t *w = make_rows(t, n_in, n_out, 0);
            CHECK(chess_cb_from_rows(t, w, n_in, n_out, cb) == CHESS_OK, "from_rows rc");
            float *deq = malloc(sizeof(float) * (size_t)n_in);
            int64_t bad_r = -1, bad_j = -1;
            for (int64_t r = 0; r < n_out; r++) {
                golden_row_deq(t, w + (size_t)r * row_bytes(t, n_in), n_in, deq);
                for (int64_t j = 0; j < n_in; j++) {
                    const elem e = own_cb_elem(t, cb, n_in, n_out, r, j);
                    if (memcmp(&e.deq, &deq[j], 4) != 0 && bad_r < 0) { bad_r = r; bad_j = j; }
                }
            }
            CHECK(bad_r < 0, "%s %lldx%lld: value (r=%lld, j=%lld) from the column-block form differs from the row form",
                  tname(t), (long long)n_in, (long long)n_out, (long long)bad_r, (long long)bad_j);
            free(deq); free(w); free(rows); free(cb); free(back); free(cb2);
            cases++;
        }
        printf("  layout %-5s %d shapes: round trips byte for byte, values at their positions\n", tname(t), cases);
    }
    /* bad arguments */
    uint8_t buf[64];
    CHECK(chess_cb_check((chess_type)9, 32, 32, 0) == CHESS_ERR_TYPE, "check: Q8_1 has no column-block form");
    CHECK(!chess_cb_supported((chess_type)9) && chess_cb_group_size((chess_type)9) == 0, "unsupported type");
    CHECK(chess_cb_check(CHESS_TYPE_Q4_0, 0, 32, 0) == CHESS_ERR_SHAPE, "check: n_in 0");
    CHECK(chess_cb_check(CHESS_TYPE_Q4_0, 32, -32, 0) == CHESS_ERR_SHAPE, "check: n_out < 0");
    CHECK(chess_cb_from_rows(CHESS_TYPE_Q4_0, NULL, 32, 32, buf) == CHESS_ERR_NULL, "from_rows NULL");
    CHECK(chess_cb_to_rows(CHESS_TYPE_Q4_0, buf, 32, 32, NULL, 0, 1) == CHESS_ERR_NULL, "to_rows NULL");
    CHECK(chess_cb_to_rows(CHESS_TYPE_Q4_0, buf, 32, 32, buf, 1, 1) == CHESS_ERR_THREAD, "to_rows ith");
    CHECK(chess_cb_to_rows(CHESS_TYPE_Q4_K, buf, 32, 32, buf, 0, 1) == CHESS_ERR_SHAPE, "to_rows K n_in");
    CHECK(chess_cb_from_rows(CHESS_TYPE_Q4_0, buf, 32, 48, buf) == CHESS_ERR_SHAPE, "from_rows n_out %% 32");
}

/* ---------------- a random problem ---------------- */
typedef struct {
    chess_type t;
    int64_t n_in, n_out, nt;
    int exact;
    uint8_t *rows, *cb;
    float *x, *tau;
    int64_t n_tau;
    size_t x_nb1, y_nb1;
} problem;

static int keep(const problem *p, float v, int64_t j) {
    if (p->n_tau == 0) return v != 0.0f;
    return fabsf(v) > (p->n_tau == 1 ? p->tau[0] : p->tau[j]);
}
static const float *xrow(const problem *p, int64_t t) { return (const float *)((const char *)p->x + (size_t)t * p->x_nb1); }

/* the activation quantization block: 32 (Q8_0 / Q8_1), 256 (Q8_K), 1 (float types) */
static int64_t qblock(chess_type t) { return tB(t); }

/* tau_mode 0: exact zeros with probability s; 1: one scalar tau; 2: per-channel tau.
 * Exact problems: per quantization block one element of magnitude 127 * 2^k (never
 * dropped unless s = 1) and the others small integers times 2^k, so that ggml's scale is
 * 2^k and every q exact. */
static problem make_problem(chess_type t, int64_t n_in, int64_t n_out, int64_t nt, double s, int tau_mode, int exact) {
    problem p;
    memset(&p, 0, sizeof p);
    p.t = t; p.n_in = n_in; p.n_out = n_out; p.nt = nt; p.exact = exact;
    p.rows = make_rows(t, n_in, n_out, exact);
    p.cb = malloc(tensor_bytes(t, n_in, n_out) + 1);
    CHECK(chess_cb_from_rows(t, p.rows, n_in, n_out, p.cb) == CHESS_OK, "from_rows");
    p.x_nb1 = sizeof(float) * (size_t)(n_in + rnd_int(0, 3));
    p.y_nb1 = sizeof(float) * (size_t)(n_out + rnd_int(0, 3));
    p.x = malloc(p.x_nb1 * (size_t)nt);
    const int64_t QB = qblock(t);
    const int small = tB(t) == 256 ? 4 : 8;
    for (int64_t tt = 0; tt < nt; tt++) {
        float *x = (float *)((char *)p.x + (size_t)tt * p.x_nb1);
        for (int64_t j = 0; j < (int64_t)(p.x_nb1 / 4); j++) x[j] = rnd_normal();
        if (!exact) continue;
        for (int64_t b = 0; b < n_in / QB; b++) {
            const float scale = ldexpf(1.0f, (int)rnd_int(-3, 1));
            const int64_t big = QB > 1 ? b * QB + rnd_int(0, QB - 1) : -1;
            for (int64_t j = b * QB; j < (b + 1) * QB; j++)
                x[j] = j == big ? (rnd_u64() & 1 ? 127.0f : -127.0f) * scale : (float)rnd_int(-small, small) * scale;
        }
    }
    if (tau_mode == 0 || exact) {
        for (int64_t tt = 0; tt < nt; tt++) {
            float *x = (float *)((char *)p.x + (size_t)tt * p.x_nb1);
            for (int64_t j = 0; j < n_in; j++) {
                const int is_big = exact && QB > 1 && fabsf(x[j]) >= 15.0f; /* 127 * 2^-3 */
                if (s >= 1.0 || (!is_big && rnd_unit() < s)) x[j] = 0.0f;
            }
        }
    }
    if (tau_mode != 0) {
        /* |N(0,1)| <= tau with probability s (exact problems: their zeros set s already) */
        p.n_tau = tau_mode == 1 ? 1 : n_in;
        p.tau = malloc(sizeof(float) * (size_t)p.n_tau);
        for (int64_t j = 0; j < p.n_tau; j++) {
            const double sj = exact ? 0.0 : tau_mode == 2 ? fmin(0.999, fmax(0.0, s + 0.3 * (rnd_unit() - 0.5))) : s;
            double q = -1.0;
            if (s >= 1.0) q = 1e30;
            else if (sj > 0.0) {
                double lo = 0, hi = 10;
                for (int it = 0; it < 60; it++) { const double mid = 0.5 * (lo + hi); if (erf(mid / sqrt(2.0)) < sj) lo = mid; else hi = mid; }
                q = 0.5 * (lo + hi);
            }
            p.tau[j] = (float)q;
        }
    }
    return p;
}
static void free_problem(problem *p) { free(p->rows); free(p->cb); free(p->x); free(p->tau); }

static float *alloc_y(const problem *p, int64_t rows_of_y) {
    float *y = malloc(p->y_nb1 * (size_t)rows_of_y);
    for (size_t i = 0; i < p->y_nb1 / 4 * (size_t)rows_of_y; i++) y[i] = NAN; /* must be overwritten */
    return y;
}

static chess_spmv_cb_args args_of(const problem *p, const uint8_t *w, float *y, int32_t site) {
    return (chess_spmv_cb_args){ p->t, w, p->n_in, p->n_out, p->x, p->x_nb1, y, p->y_nb1, p->nt, p->tau, p->n_tau, site };
}

/* chess_spmv_cb as nth calls in random order */
static int run_cb(const problem *p, const uint8_t *w, float *y, int nth, int32_t site) {
    int order[8];
    for (int i = 0; i < nth; i++) order[i] = i;
    for (int i = nth - 1; i > 0; i--) { const int j = (int)rnd_int(0, i); const int tmp = order[i]; order[i] = order[j]; order[j] = tmp; }
    const chess_spmv_cb_args a = args_of(p, w, y, site);
    for (int i = 0; i < nth; i++) {
        const int rc = chess_spmv_cb(&a, order[i], nth);
        if (rc) return rc;
    }
    return CHESS_OK;
}

/* chess_spmv_cb_parts (one token) into parts rows, then chess_sum_parts into y */
static int run_parts(const problem *p, const uint8_t *w, float *y, int n_parts, int nth) {
    float *parts = alloc_y(p, n_parts);
    const chess_spmv_cb_args a = args_of(p, w, parts, -1);
    for (int i = nth - 1; i >= 0; i--) {
        const int rc = chess_spmv_cb_parts(&a, n_parts, i, nth);
        if (rc) { free(parts); return rc; }
    }
    for (int i = 0; i < nth; i++) chess_sum_parts(y, parts, p->y_nb1, p->n_out, n_parts, i, nth);
    free(parts);
    return CHESS_OK;
}

/* What the dot sees for one token: the masked activations, their dequantized values xd
 * (d * q; fp16 / bf16 rounded for F16 / BF16) and, per quantization block, d and the sum
 * of |q| (for the bound); from ggml's from_float when linked, else from the library's
 * quantizer (itself checked against ggml by `test_cb quant`). qbuf: ggml's block form. */
typedef struct { float *xm; double *xd, *bd, *bs, *babsq; uint8_t *qbuf; } act; /* bs: Q8_1's s per block */

static act make_act(const problem *p, int64_t t) {
    act A;
    const int64_t n = p->n_in, QB = qblock(p->t), nb = n / QB;
    A.xm = malloc(sizeof(float) * (size_t)n);
    A.xd = malloc(sizeof(double) * (size_t)n);
    A.bd = calloc((size_t)nb, sizeof(double));
    A.bs = calloc((size_t)nb, sizeof(double));
    A.babsq = calloc((size_t)nb, sizeof(double));
    A.qbuf = malloc((size_t)n * 4 + 1024);
    const float *x = xrow(p, t);
    for (int64_t j = 0; j < n; j++) A.xm[j] = keep(p, x[j], j) ? x[j] : 0.0f;
#ifdef CHESS_TEST_WITH_GGML
    const struct ggml_type_traits_cpu *tc = ggml_get_type_traits_cpu((enum ggml_type)p->t);
    const enum ggml_type vt = tc->vec_dot_type;
    ggml_get_type_traits_cpu(vt)->from_float(A.xm, A.qbuf, n);
    for (int64_t b = 0; b < nb; b++) {
        if (vt == GGML_TYPE_Q8_0 || vt == GGML_TYPE_Q8_1) {
            const size_t bs = vt == GGML_TYPE_Q8_0 ? 34 : 36;
            const uint8_t *blk = A.qbuf + (size_t)b * bs;
            A.bd[b] = half_to_float(rd16(blk));
            if (vt == GGML_TYPE_Q8_1) A.bs[b] = half_to_float(rd16(blk + 2));
            for (int i = 0; i < 32; i++) {
                const int8_t q = (int8_t)blk[bs - 32 + (size_t)i];
                A.xd[b * 32 + i] = A.bd[b] * q;
                A.babsq[b] += abs(q);
            }
        } else if (vt == GGML_TYPE_Q8_K) {
            const uint8_t *blk = A.qbuf + (size_t)b * 292;
            float d;
            memcpy(&d, blk, 4);
            A.bd[b] = d;
            for (int i = 0; i < 256; i++) { const int8_t q = (int8_t)blk[4 + i]; A.xd[b * 256 + i] = (double)d * q; A.babsq[b] += abs(q); }
        } else if (vt == GGML_TYPE_F16) {
            for (int64_t j = 0; j < n; j++) A.xd[j] = half_to_float(rd16(A.qbuf + 2 * j));
        } else if (vt == GGML_TYPE_BF16) {
            for (int64_t j = 0; j < n; j++) A.xd[j] = bf16_to_float(rd16(A.qbuf + 2 * j));
        } else {
            for (int64_t j = 0; j < n; j++) A.xd[j] = A.xm[j];
        }
    }
    if (QB == 1 && vt == GGML_TYPE_F32) for (int64_t j = 0; j < n; j++) A.xd[j] = A.xm[j];
#else
    const cs_cb_desc *D = cs_cb_desc_of(p->t);
    if (QB == 1) {
        for (int64_t j = 0; j < n; j++) {
            uint32_t u;
            memcpy(&u, &A.xm[j], 4);
            if (p->t == CHESS_TYPE_BF16) u = ((u + 0x7fffu + ((u >> 16) & 1u)) >> 16) << 16; /* no NaN here */
            float f;
            memcpy(&f, &u, 4);
            A.xd[j] = p->t == CHESS_TYPE_F16 ? (double)(_Float16)A.xm[j] : p->t == CHESS_TYPE_BF16 ? f : A.xm[j];
        }
    } else {
        int8_t q[256];
        int16_t bs[16];
        for (int64_t b = 0; b < nb; b++) {
            float d, sv;
            cs_cb_quantize_group(D, A.xm + b * QB, q, &d, &sv, bs);
            A.bd[b] = d;
            A.bs[b] = sv;
            for (int64_t i = 0; i < QB; i++) { A.xd[b * QB + i] = (double)d * q[i]; A.babsq[b] += abs(q[i]); }
        }
    }
#endif
    return A;
}
static void free_act(act *A) { free(A->xm); free(A->xd); free(A->bd); free(A->bs); free(A->babsq); free(A->qbuf); }

/* Row r: the float64 product over what the dot sees, and A (the header's bound). */
static void row_ref(const problem *p, const act *A, int64_t r, double *yref, double *absum) {
    const int64_t QB = qblock(p->t);
    double y = 0.0, a = 0.0;
    for (int64_t j = 0; j < p->n_in; j++) {
        const elem e = own_cb_elem(p->t, p->cb, p->n_in, p->n_out, r, j);
        double w;
        switch (p->t) {
        case CHESS_TYPE_F32: case CHESS_TYPE_F16: case CHESS_TYPE_BF16: w = e.deq; a += fabs(w * A->xd[j]); break;
        case CHESS_TYPE_Q4_1: case CHESS_TYPE_Q5_1:
            w = (double)e.d * e.v; /* the minimum enters as m * s (Q8_1's fp16 s), below */
            a += fabs((double)e.d * e.v * A->xd[j]);
            break;
        case CHESS_TYPE_Q4_K: case CHESS_TYPE_Q5_K:
            w = (double)e.d * e.sc * e.v - (double)e.dm * e.mn;
            a += fabs((double)e.d * e.sc * e.v * A->xd[j]);
            break;
        case CHESS_TYPE_Q6_K: w = (double)e.d * e.sc * (e.v - 32); a += fabs((double)e.d * e.sc) * (e.v + 32) * fabs(A->xd[j]); break;
        default: w = (double)e.d * (e.v - e.off); a += fabs((double)e.d) * (abs(e.v) + e.off) * fabs(A->xd[j]); break;
        }
        y += w * A->xd[j];
        /* minimum terms, once per block (Q4_1/Q5_1) or sub-block of 32 (Q4_K/Q5_K) */
        if ((p->t == CHESS_TYPE_Q4_1 || p->t == CHESS_TYPE_Q5_1) && j % 32 == 0) {
            y += (double)e.dm * A->bs[j / QB];
            a += fabs((double)e.dm * A->bs[j / QB]);
        }
        if ((p->t == CHESS_TYPE_Q4_K || p->t == CHESS_TYPE_Q5_K) && j % 32 == 0)
            a += fabs((double)e.dm * e.mn * A->bd[j / QB]) * A->babsq[j / QB];
    }
    *yref = y;
    *absum = a;
}

/* The library's output for one problem (current ISA) against ggml / float64. */
static int check_against_golden(const problem *p, const float *y, int extra_adds, const char *what) {
    const double u = ldexp(1.0, -24);
    const int64_t nblocks = p->n_in / qblock(p->t);
    int bad = 0;
    for (int64_t t = 0; t < p->nt; t++) {
        const float *yt = (const float *)((const char *)y + (size_t)t * p->y_nb1);
        act A = make_act(p, t);
#ifdef CHESS_TEST_WITH_GGML
        const struct ggml_type_traits_cpu *tc = ggml_get_type_traits_cpu((enum ggml_type)p->t);
#endif
        double e2 = 0, r2 = 0, ex2 = 0;
        for (int64_t r = 0; r < p->n_out; r++) {
            double yref, absum;
            row_ref(p, &A, r, &yref, &absum);
            const double bound = (2.0 * (double)nblocks + 32.0 + extra_adds) * u * absum;
            double yx = 0; /* unquantized masked activations (loose) */
            for (int64_t j = 0; j < p->n_in; j++) yx += (double)own_cb_elem(p->t, p->cb, p->n_in, p->n_out, r, j).deq * A.xm[j];
            e2 += (yt[r] - yx) * (yt[r] - yx);
            ex2 += yx * yx;
            r2 += yref * yref;
            if (p->exact) {
                if (!((double)yt[r] == yref) && bad++ < 3)
                    CHECK(0, "%s %s exact: y[%lld] = %.9g, float64 %.9g", what, tname(p->t), (long long)r, (double)yt[r], yref);
            } else if (!(fabs(yt[r] - yref) <= bound) && bad++ < 3) {
                CHECK(0, "%s %s: y[%lld] = %.9g, float64 %.9g (bound %.3g)", what, tname(p->t), (long long)r, (double)yt[r], yref, bound);
            }
#ifdef CHESS_TEST_WITH_GGML
            float yg;
            tc->vec_dot((int)p->n_in, &yg, 0, p->rows + (size_t)r * row_bytes(p->t, p->n_in), 0, A.qbuf, 0, 1);
            if (p->exact) {
                if (!(yt[r] == yg) && bad++ < 3)
                    CHECK(0, "%s %s exact: y[%lld] = %.9g, ggml %.9g", what, tname(p->t), (long long)r, (double)yt[r], (double)yg);
            } else if (!(fabs((double)yt[r] - yg) <= bound) && bad++ < 3) {
                CHECK(0, "%s %s: y[%lld] = %.9g, ggml %.9g (bound %.3g, %lld x %lld)", what, tname(p->t), (long long)r,
                      (double)yt[r], (double)yg, bound, (long long)p->n_in, (long long)p->n_out);
            }
#endif
        }
        /* 8-bit activations: a few % of |y| against the exact masked product */
        if (ex2 > 0 && !(sqrt(e2) <= 5e-2 * sqrt(ex2)) && bad++ < 3)
            CHECK(0, "%s %s: |y - y(x)| = %.3g of |y(x)|", what, tname(p->t), sqrt(e2 / ex2));
        (void)r2;
        free_act(&A);
    }
    g_checks++;
    return bad;
}

static int64_t count_dropped(const problem *p) {
    int64_t dropped = 0;
    for (int64_t t = 0; t < p->nt; t++)
        for (int64_t j = 0; j < p->n_in; j++) dropped += !keep(p, xrow(p, t)[j], j);
    return dropped;
}

/* The column-block weight with every group that no token keeps poisoned (NaN scales,
 * all bytes 0xff): such groups must not be used. */
static uint8_t *poison_dead_groups(const problem *p) {
    const size_t n = tensor_bytes(p->t, p->n_in, p->n_out), gbytes = (size_t)p->n_out * tS(p->t);
    uint8_t *w = malloc(n + 1);
    memcpy(w, p->cb, n);
    const int64_t B = tB(p->t);
    for (int64_t g = 0; g < p->n_in / B; g++) {
        int any = 0;
        for (int64_t t = 0; t < p->nt; t++)
            for (int64_t j = g * B; j < (g + 1) * B; j++) any |= keep(p, xrow(p, t)[j], j);
        if (!any) memset(w + (size_t)g * gbytes, 0xff, gbytes);
    }
    return w;
}

static int64_t random_n_out(chess_type t) {
    static const int64_t outs[] = { 32, 576, 192, 64, 96, 4096 / 8, 288 };
    if (tB(t) == 1 && rnd_int(0, 1)) return rnd_int(1, 300);
    return outs[rnd_int(0, 6)];
}
static int64_t random_n_in(chess_type t, int exact) {
    const int64_t B = tB(t);
    if (B == 256) return 256 * rnd_int(1, exact ? 2 : 3);
    if (B == 1) return rnd_int(1, 400);
    return 32 * rnd_int(1, 12);
}

static void test_reference(void) {
    const double sparsities[] = { 0.0, 0.3, 0.5, 0.9, 1.0 };
    CHECK(chess_set_isa(CHESS_ISA_REF) == CHESS_OK, "set ref");
    for (int ti = 0; ti < N_TYPES; ti++) {
        const chess_type t = k_types[ti];
        int cases = 0, exact_cases = 0;
        for (int si = 0; si < 5; si++) {
            for (int c = 0; c < 4; c++) {
                const int exact = c % 2;
                const int64_t n_in = random_n_in(t, exact), n_out = random_n_out(t), nt = c < 2 ? 1 : rnd_int(2, 3);
                problem p = make_problem(t, n_in, n_out, nt, sparsities[si], (int)rnd_int(0, 2), exact);
                float *y = alloc_y(&p, nt), *y2 = alloc_y(&p, nt);
                const int nth1 = (int)rnd_int(1, 4), nth2 = (int)rnd_int(1, 4);
                chess_counters_reset();
                CHECK(run_cb(&p, p.cb, y, nth1, 21) == CHESS_OK, "spmv_cb rc");
                uint64_t seen = 0, zeroed = 0;
                chess_counters_get(21, &seen, &zeroed);
                CHECK(seen == (uint64_t)(n_in * nt) && zeroed == (uint64_t)count_dropped(&p),
                      "%s counters seen %llu zeroed %llu (expected %lld, %lld)", tname(t), (unsigned long long)seen,
                      (unsigned long long)zeroed, (long long)(n_in * nt), (long long)count_dropped(&p));
                check_against_golden(&p, y, 0, "spmv_cb");
                /* thread count independence, and dead groups unused */
                uint8_t *wp = poison_dead_groups(&p);
                CHECK(run_cb(&p, wp, y2, nth2, -1) == CHESS_OK, "spmv_cb rc");
                for (int64_t tt = 0; tt < nt; tt++)
                    CHECK(memcmp((char *)y + (size_t)tt * p.y_nb1, (char *)y2 + (size_t)tt * p.y_nb1, sizeof(float) * (size_t)n_out) == 0,
                          "%s: nth %d vs %d (dead groups poisoned) differ", tname(t), nth1, nth2);
                if (sparsities[si] >= 1.0)
                    for (int64_t tt = 0; tt < nt; tt++)
                        for (int64_t r = 0; r < n_out; r++) {
                            const float v = ((float *)((char *)y + (size_t)tt * p.y_nb1))[r];
                            uint32_t bits;
                            memcpy(&bits, &v, 4);
                            if (bits != 0) { CHECK(0, "%s: 100%% sparsity, y[%lld] = %g", tname(t), (long long)r, (double)v); break; }
                        }
                if (nt == 1) {
                    const int n_parts = (int)rnd_int(1, 4);
                    float *yp = alloc_y(&p, 1);
                    CHECK(run_parts(&p, wp, yp, n_parts, (int)rnd_int(1, 4)) == CHESS_OK, "parts rc");
                    if (n_parts == 1) CHECK(memcmp(yp, y, sizeof(float) * (size_t)n_out) == 0, "%s: 1 part differs from spmv_cb", tname(t));
                    check_against_golden(&p, yp, n_parts, "parts");
                    free(yp);
                }
                free(wp); free(y); free(y2);
                free_problem(&p);
                cases++;
                exact_cases += exact;
            }
        }
        printf("  reference %-5s %d cases (%d exact) against %s\n", tname(t), cases, exact_cases,
#ifdef CHESS_TEST_WITH_GGML
               "ggml's vec_dot and float64"
#else
               "float64"
#endif
        );
    }
}

#ifdef CHESS_TEST_WITH_GGML
/* The library's activation quantizer against ggml's from_float of the vec_dot type. */
static void test_quant(void) {
    const chess_type types[] = { CHESS_TYPE_Q4_0, CHESS_TYPE_Q4_1, CHESS_TYPE_Q4_K };
    for (int ti = 0; ti < 3; ti++) {
        const cs_cb_desc *D = cs_cb_desc_of(types[ti]);
        const enum ggml_type vt = ggml_get_type_traits_cpu((enum ggml_type)types[ti])->vec_dot_type;
        const int64_t QB = D->B;
        int blocks = 0;
        for (int c = 0; c < 400; c++) {
            float x[256];
            const int kind = c % 5;
            for (int i = 0; i < QB; i++) {
                switch (kind) {
                case 0: x[i] = rnd_normal(); break;
                case 1: x[i] = 0.0f; break;                                                    /* zero block */
                case 2: x[i] = i == 3 ? 127.0f : (float)rnd_int(-20, 20) + 0.5f; break;       /* .5 ties */
                case 3: x[i] = rnd_unit() < 0.7 ? 0.0f : rnd_normal() * 1e-3f; break;         /* mostly dropped */
                default: x[i] = (float)rnd_int(-127, 127) * ldexpf(1.0f, (int)rnd_int(-10, 10)); break;
                }
            }
            int8_t q[256];
            float d, sv;
            int16_t bs[16];
            cs_cb_quantize_group(D, x, q, &d, &sv, bs);
            uint8_t g[300];
            ggml_get_type_traits_cpu(vt)->from_float(x, g, QB);
            if (vt == GGML_TYPE_Q8_K) {
                float gd;
                int16_t gbs[16];
                memcpy(&gd, g, 4);
                memcpy(gbs, g + 4 + 256, 32);
                CHECK(memcmp(&gd, &d, 4) == 0, "q8_K d %g vs ggml %g (kind %d)", (double)d, (double)gd, kind);
                CHECK(memcmp(q, g + 4, 256) == 0, "q8_K qs differ (kind %d)", kind);
                if (gd != 0.0f) CHECK(memcmp(gbs, bs, 32) == 0, "q8_K bsums differ (kind %d)", kind);
            } else {
                const size_t qo = vt == GGML_TYPE_Q8_0 ? 2 : 4;
                const float gd = half_to_float(rd16(g));
                CHECK(memcmp(&gd, &d, 4) == 0, "%s d %g vs ggml %g (kind %d)", ggml_type_name(vt), (double)d, (double)gd, kind);
                CHECK(memcmp(q, g + qo, 32) == 0, "%s qs differ (kind %d)", ggml_type_name(vt), kind);
                if (vt == GGML_TYPE_Q8_1) {
                    const float gs = half_to_float(rd16(g + 2));
                    CHECK(memcmp(&gs, &sv, 4) == 0, "q8_1 s %g vs ggml %g (kind %d)", (double)sv, (double)gs, kind);
                }
            }
            blocks++;
        }
        printf("  quant %s: %d blocks identical to ggml's from_float\n", ggml_type_name(vt), blocks);
    }
}
#endif

static void test_badargs(void) {
    problem p = make_problem(CHESS_TYPE_Q4_0, 64, 64, 1, 0.5, 0, 0);
    float *y = alloc_y(&p, 2);
    chess_spmv_cb_args a = args_of(&p, p.cb, y, -1);
    CHECK(chess_spmv_cb(NULL, 0, 1) == CHESS_ERR_NULL, "NULL args");
    a.w = NULL; CHECK(chess_spmv_cb(&a, 0, 1) == CHESS_ERR_NULL, "NULL w"); a.w = p.cb;
    a.x = NULL; CHECK(chess_spmv_cb(&a, 0, 1) == CHESS_ERR_NULL, "NULL x"); a.x = p.x;
    a.y = NULL; CHECK(chess_spmv_cb(&a, 0, 1) == CHESS_ERR_NULL, "NULL y"); a.y = y;
    a.type = (chess_type)9; CHECK(chess_spmv_cb(&a, 0, 1) == CHESS_ERR_TYPE, "type"); a.type = CHESS_TYPE_Q4_0;
    a.n_in = 48; CHECK(chess_spmv_cb(&a, 0, 1) == CHESS_ERR_SHAPE, "n_in %% 32"); a.n_in = 64;
    a.n_out = 48; CHECK(chess_spmv_cb(&a, 0, 1) == CHESS_ERR_SHAPE, "n_out %% 32"); a.n_out = 64;
    a.n_tokens = 0; CHECK(chess_spmv_cb(&a, 0, 1) == CHESS_ERR_SHAPE, "n_tokens 0");
    a.n_tokens = 2; a.x_nb1 = 4; CHECK(chess_spmv_cb(&a, 0, 1) == CHESS_ERR_STRIDE, "x stride");
    a.n_tokens = 1; a.x_nb1 = p.x_nb1;
    CHECK(chess_spmv_cb(&a, 1, 1) == CHESS_ERR_THREAD, "ith");
    CHECK(chess_spmv_cb(&a, 0, 0) == CHESS_ERR_THREAD, "nth");
    a.n_tau = 3; CHECK(chess_spmv_cb(&a, 0, 1) == CHESS_ERR_TAU, "n_tau");
    a.n_tau = 1; a.tau = NULL; CHECK(chess_spmv_cb(&a, 0, 1) == CHESS_ERR_NULL, "tau NULL"); a.n_tau = 0;
    a.site = CHESS_MAX_SITES; CHECK(chess_spmv_cb(&a, 0, 1) == CHESS_ERR_SITE, "site"); a.site = -1;
    CHECK(chess_spmv_cb_parts(&a, 0, 0, 1) == CHESS_ERR_SHAPE, "0 parts");
    CHECK(chess_spmv_cb_parts(&a, CHESS_MAX_PARTS + 1, 0, 1) == CHESS_ERR_SHAPE, "too many parts");
    a.y_nb1 = 4; CHECK(chess_spmv_cb_parts(&a, 2, 0, 1) == CHESS_ERR_STRIDE, "parts stride"); a.y_nb1 = p.y_nb1;
    a.n_tokens = 2; CHECK(chess_spmv_cb_parts(&a, 2, 0, 1) == CHESS_ERR_SHAPE, "parts: one token"); a.n_tokens = 1;
    int untouched = 1;
    for (size_t i = 0; i < p.y_nb1 / 4 * 2; i++) untouched &= isnan(y[i]);
    CHECK(untouched, "y written on error");
    CHECK(chess_spmv_cb(&a, 0, 1) == CHESS_OK, "valid call");
    free(y);
    free_problem(&p);
    printf("  badargs: every error code, nothing written\n");
}

/* Every compiled ISA the CPU has against the reference, bit for bit. */
static void test_simd(void) {
    /* CHESS_TEST_EXPECT_ISA (ctest, from the CMake option): that ISA must be available and tested */
    const char *expect = getenv("CHESS_TEST_EXPECT_ISA");
    int expect_tested = 0;
    for (int isa = 1; isa < CHESS_ISA_COUNT; isa++) {
        if (!chess_isa_available((chess_isa)isa)) { printf("  simd %s: not available on this CPU/build\n", chess_isa_name((chess_isa)isa)); continue; }
        if (expect && !strcmp(expect, chess_isa_name((chess_isa)isa))) expect_tested = 1;
        const cs_cb_table *T = cs_cb_table_of((chess_isa)isa);
        CHECK(T != NULL, "%s: no column-block table", chess_isa_name((chess_isa)isa));
        if (!T) continue;
        char have[160] = "";
        for (int ti = 0; ti < N_TYPES; ti++) {
            const chess_type t = k_types[ti];
            if (!T->groups[cs_cb_desc_of(t)->index]) continue;
            strncat(have, " ", sizeof have - strlen(have) - 1);
            strncat(have, tname(t), sizeof have - strlen(have) - 1);
            for (int c = 0; c < 24; c++) {
                const double s = c % 6 == 5 ? 1.0 : c % 6 == 0 ? 0.0 : rnd_unit();
                const int exact = c % 3 == 0;
                const int64_t n_in = random_n_in(t, exact), n_out = random_n_out(t), nt = c % 4 == 3 ? rnd_int(2, 4) : 1;
                problem p = make_problem(t, n_in, n_out, nt, s, (int)rnd_int(0, 2), exact);
                float *yr = alloc_y(&p, nt), *ys = alloc_y(&p, nt);
                const int nth_r = (int)rnd_int(1, 4), nth_s = (int)rnd_int(1, 4);
                chess_set_isa(CHESS_ISA_REF);
                CHECK(run_cb(&p, p.cb, yr, nth_r, -1) == CHESS_OK, "ref rc");
                chess_set_isa((chess_isa)isa);
                uint8_t *wp = poison_dead_groups(&p);
                CHECK(run_cb(&p, wp, ys, nth_s, -1) == CHESS_OK, "simd rc");
                for (int64_t tt = 0; tt < nt; tt++) {
                    const float *a = (const float *)((char *)yr + (size_t)tt * p.y_nb1), *b = (const float *)((char *)ys + (size_t)tt * p.y_nb1);
                    int64_t bad = -1;
                    for (int64_t r = 0; r < n_out && bad < 0; r++) if (memcmp(&a[r], &b[r], 4) != 0) bad = r;
                    CHECK(bad < 0, "%s %s %lldx%lld s=%.2f: y[%lld] = %.9g, ref %.9g", chess_isa_name((chess_isa)isa), tname(t),
                          (long long)n_in, (long long)n_out, s, (long long)bad, bad < 0 ? 0.0 : (double)b[bad], bad < 0 ? 0.0 : (double)a[bad]);
                }
                if (nt == 1) {
                    const int n_parts = (int)rnd_int(1, 4);
                    float *pr = alloc_y(&p, 1), *ps = alloc_y(&p, 1);
                    chess_set_isa(CHESS_ISA_REF);
                    run_parts(&p, p.cb, pr, n_parts, 1);
                    chess_set_isa((chess_isa)isa);
                    run_parts(&p, wp, ps, n_parts, (int)rnd_int(1, 4));
                    CHECK(memcmp(pr, ps, sizeof(float) * (size_t)n_out) == 0, "%s %s parts differ from ref", chess_isa_name((chess_isa)isa), tname(t));
                    free(pr); free(ps);
                }
                free(wp); free(yr); free(ys);
                free_problem(&p);
            }
        }
        chess_set_isa(CHESS_ISA_REF);
        /* every table has a kernel for every type (hand-written or chess_cb_generic.h): none
         * may fall back to the per-element reference */
        int n = 0;
        for (int ti = 0; ti < N_TYPES; ti++) n += T->groups[cs_cb_desc_of(k_types[ti])->index] != NULL;
        CHECK(n == N_TYPES, "%s: kernels for %d of %d types", chess_isa_name((chess_isa)isa), n, N_TYPES);
        printf("  simd %s: kernels for%s identical to the reference\n", chess_isa_name((chess_isa)isa), *have ? have : " (none)");
    }
    if (expect && *expect) CHECK(expect_tested, "expected ISA %s was not available or not tested", expect);
}

/* CHESS_READ_CEILING=1 (ctest sets it; not part of "all"): one-token products read their
 * bytes and compute nothing (y = 0), counting as the real ones do, or with
 * CHESS_READ_CEILING_SPARSITY=s dropping a pseudo-random share s of the channels; batches
 * compute the real product. */
static void test_read_ceiling(void) {
    const char *env = getenv("CHESS_READ_CEILING");
    CHECK(env && strcmp(env, "1") == 0, "run with CHESS_READ_CEILING=1");
    const char *rs = getenv("CHESS_READ_CEILING_SPARSITY");
    const double replay = rs && *rs ? atof(rs) : -1.0;
    for (int isa = 0; isa < CHESS_ISA_COUNT; isa++) {
        if (!chess_isa_available((chess_isa)isa)) continue;
        chess_set_isa((chess_isa)isa);
        for (int ti = 0; ti < N_TYPES; ti++) {
            const chess_type t = k_types[ti];
            const int64_t n_in = random_n_in(t, 0) * (tB(t) == 1 ? 4 : 2), n_out = random_n_out(t);
            /* tau -1: every channel survives its threshold, so a computing kernel would write nonzeros */
            problem p = make_problem(t, n_in, n_out, 1, 0.0, 1, 0);
            float *y = alloc_y(&p, 1);
            uint64_t s0, z0, s1, z1;
            chess_counters_get(31, &s0, &z0);
            CHECK(run_cb(&p, p.cb, y, (int)rnd_int(1, 4), 31) == CHESS_OK, "read-ceiling run");
            chess_counters_get(31, &s1, &z1);
            CHECK(s1 - s0 == (uint64_t)n_in, "%s %s: counters saw %llu channels, expected %lld", chess_isa_name((chess_isa)isa), tname(t),
                  (unsigned long long)(s1 - s0), (long long)n_in);
            if (replay >= 0) {
                const double frac = (double)(z1 - z0) / (double)n_in, bound = 4.0 * sqrt(replay * (1.0 - replay) / (double)n_in) + 1.0 / (double)n_in;
                CHECK(fabs(frac - replay) <= bound, "%s %s: replay dropped %.3f of %lld channels, expected %.3f", chess_isa_name((chess_isa)isa),
                      tname(t), frac, (long long)n_in, replay);
            } else {
                CHECK(z1 == z0, "%s %s: nothing is below the thresholds, yet channels were dropped", chess_isa_name((chess_isa)isa), tname(t));
            }
            int64_t nonzero = 0;
            for (int64_t r = 0; r < n_out; r++) nonzero += y[r] != 0.0f; /* NaN (unwritten) counts too */
            float *yp = alloc_y(&p, 1);
            CHECK(run_parts(&p, p.cb, yp, 2, 2) == CHESS_OK, "read-ceiling parts run");
            for (int64_t r = 0; r < n_out; r++) nonzero += yp[r] != 0.0f;
            CHECK(nonzero == 0, "%s %s: read-ceiling decode wrote %lld nonzero outputs", chess_isa_name((chess_isa)isa), tname(t), (long long)nonzero);
            free(y); free(yp);
            free_problem(&p);
            /* a batch computes the real product */
            problem q = make_problem(t, n_in, n_out, 2, 0.5, 0, 0);
            float *yq = alloc_y(&q, 2);
            CHECK(run_cb(&q, q.cb, yq, 2, -1) == CHESS_OK, "read-ceiling batch run");
            check_against_golden(&q, yq, 0, "read-ceiling batch");
            free(yq);
            free_problem(&q);
        }
        printf("  read_ceiling %s: %d types, decode reads and writes 0%s, batches compute\n", chess_isa_name((chess_isa)isa), N_TYPES,
               replay >= 0 ? " (replayed channels)" : "");
    }
    chess_set_isa(CHESS_ISA_REF);
}

/* chess_cb_panel_x8 on every ISA = the 8-row interleaved blocks packed here from
 * chess_cb_rows_range's rows (packing written from the header's description, not the
 * library's code); ranges of whole 32-row units; bad arguments refused. */
static void k4_get(const uint8_t *q, int j, uint8_t *sc, uint8_t *mn) { /* Q4_K's 6-bit scale and min j of 12 bytes */
    if (j < 4) { *sc = q[j] & 63; *mn = q[j + 4] & 63; }
    else { *sc = (uint8_t)((q[j + 4] & 15) | ((q[j - 4] >> 6) << 4)); *mn = (uint8_t)((q[j + 4] >> 4) | ((q[j] >> 6) << 4)); }
}
static void k4_put(const uint8_t sc[8], const uint8_t mn[8], uint8_t *q) { /* the inverse: eight pairs into 12 bytes */
    memset(q, 0, 12);
    for (int j = 0; j < 8; j++) {
        if (j < 4) { q[j] |= sc[j]; q[j + 4] |= mn[j]; }
        else {
            q[j + 4] = (uint8_t)((sc[j] & 15) | ((mn[j] & 15) << 4));
            q[j - 4] |= (uint8_t)((sc[j] >> 4) << 6);
            q[j] |= (uint8_t)((mn[j] >> 4) << 6);
        }
    }
}
static void pack_x8_expected(chess_type t, const uint8_t *rows, int64_t nrows, int64_t G, uint8_t *out) {
    const int k = t == CHESS_TYPE_Q4_K;
    const size_t bs = k ? 144 : 18, x8 = 8 * bs, qs = k ? 16 : 2, nq = k ? 128 : 16, hdr = k ? 128 : 16;
    const size_t rb = (size_t)G * bs;
    for (int64_t q = 0; q < nrows / 8; q++)
        for (int64_t x = 0; x < G; x++) {
            uint8_t *blk = out + ((size_t)q * (size_t)G + (size_t)x) * x8;
            const uint8_t *src[8];
            for (int i = 0; i < 8; i++) src[i] = rows + (size_t)(8 * q + i) * rb + (size_t)x * bs;
            for (int i = 0; i < 8; i++) {
                memcpy(blk + 2 * i, src[i], 2);
                if (k) memcpy(blk + 16 + 2 * i, src[i] + 2, 2);
            }
            if (k)
                for (int j = 0; j < 8; j++) {
                    uint8_t sc[8], mn[8];
                    for (int i = 0; i < 8; i++) k4_get(src[i] + 4, j, &sc[i], &mn[i]);
                    k4_put(sc, mn, blk + 32 + 12 * j);
                }
            for (size_t h = 0; h < nq / 8; h++)
                for (int i = 0; i < 8; i++)
                    for (int b = 0; b < 8; b++) blk[hdr + 64 * h + 8 * (size_t)i + b] = (uint8_t)(src[i][qs + 8 * h + b] ^ (k ? 0 : 0x88));
        }
}

static void test_panel(void) {
    const chess_type types[2] = { CHESS_TYPE_Q4_0, CHESS_TYPE_Q4_K };
    for (int isa = 0; isa < CHESS_ISA_COUNT; isa++) {
        if (!chess_isa_available((chess_isa)isa)) continue;
        for (int ti = 0; ti < 2; ti++) {
            const chess_type t = types[ti];
            const int64_t B = chess_cb_group_size(t);
            const size_t x8 = t == CHESS_TYPE_Q4_K ? 1152 : 144;
            for (int c = 0; c < 10; c++) {
                const int64_t n_in = B * rnd_int(1, B == 256 ? 4 : 40), n_out = 32 * rnd_int(1, 12), G = n_in / B;
                const size_t n = tensor_bytes(t, n_in, n_out);
                uint8_t *cb = malloc(n), *rows = malloc(n);
                for (size_t i = 0; i < n; i++) cb[i] = (uint8_t)rnd_u64();
                const int64_t nu = n_out / 32, u0 = rnd_int(0, nu - 1), u1 = rnd_int(u0 + 1, nu);
                const int64_t r0 = 32 * u0, r1 = 32 * u1;
                const size_t pb = (size_t)(r1 - r0) / 8 * (size_t)G * x8;
                uint8_t *want = malloc(pb), *got = malloc(pb + 64);
                chess_set_isa(CHESS_ISA_REF);
                CHECK(chess_cb_rows_range(t, cb, n_in, n_out, r0, r1, rows) == CHESS_OK, "rows_range rc");
                pack_x8_expected(t, rows, r1 - r0, G, want);
                chess_set_isa((chess_isa)isa);
                memset(got, 0x77, pb + 64);
                CHECK(chess_cb_panel_x8(t, cb, n_in, n_out, r0, r1, got) == CHESS_OK, "panel rc");
                size_t bad = pb;
                for (size_t i = 0; i < pb && bad == pb; i++) if (got[i] != want[i]) bad = i;
                CHECK(bad == pb, "%s %s %lldx%lld rows [%lld, %lld): panel byte %zu (block %zu, offset %zu) = %02x, packed rows give %02x",
                      chess_isa_name((chess_isa)isa), tname(t), (long long)n_in, (long long)n_out, (long long)r0, (long long)r1, bad,
                      bad / x8, bad % x8, bad < pb ? got[bad] : 0, bad < pb ? want[bad] : 0);
                int untouched = 1;
                for (int i = 0; i < 64; i++) untouched &= got[pb + i] == 0x77;
                CHECK(untouched, "%s %s: panel wrote past its blocks", chess_isa_name((chess_isa)isa), tname(t));
                CHECK(chess_cb_panel_x8(t, cb, n_in, n_out, 16, 32, got) == CHESS_ERR_SHAPE, "panel r0 %% 32");
                CHECK(chess_cb_panel_x8(t, cb, n_in, n_out, 0, n_out + 32, got) == CHESS_ERR_SHAPE, "panel r1 > n_out");
                CHECK(chess_cb_panel_x8(t, cb, n_in + 16, n_out, 0, 32, got) == CHESS_ERR_SHAPE, "panel n_in %% B");
                CHECK(chess_cb_panel_x8(t, NULL, n_in, n_out, 0, 32, got) == CHESS_ERR_NULL, "panel null");
                free(cb); free(rows); free(want); free(got);
            }
            printf("  panel %s x8 %s: ok\n", tname(t), chess_isa_name((chess_isa)isa));
        }
    }
    CHECK(chess_cb_panel_x8(CHESS_TYPE_Q8_0, "", 32, 32, 0, 32, (void *)"") == CHESS_ERR_TYPE, "panel refuses Q8_0");
    chess_set_isa(CHESS_ISA_REF);
}

int main(int argc, char **argv) {
    const char *what = argc > 1 ? argv[1] : "all";
    const char *seed = getenv("CHESS_TEST_SEED");
    if (seed && *seed) g_rng = strtoull(seed, NULL, 0);
#ifdef CHESS_TEST_WITH_GGML
    ggml_cpu_init();
#endif
    int ran = 0;
    if (!strcmp(what, "layout") || !strcmp(what, "all")) { test_layout(); ran = 1; }
#ifdef CHESS_TEST_WITH_GGML
    if (!strcmp(what, "quant") || !strcmp(what, "all")) { test_quant(); ran = 1; }
#endif
    if (!strcmp(what, "reference") || !strcmp(what, "all")) { test_reference(); ran = 1; }
    if (!strcmp(what, "simd") || !strcmp(what, "all")) { test_simd(); ran = 1; }
    if (!strcmp(what, "badargs") || !strcmp(what, "all")) { test_badargs(); ran = 1; }
    if (!strcmp(what, "panel") || !strcmp(what, "all")) { test_panel(); ran = 1; }
    if (!strcmp(what, "read_ceiling")) { test_read_ceiling(); ran = 1; } /* needs CHESS_READ_CEILING=1: not part of "all" */
    if (!ran) { fprintf(stderr, "unknown test %s\n", what); return 2; }
    printf("%ld checks, %d failures\n", g_checks, g_failures);
    return g_failures ? 1 : 0;
}
