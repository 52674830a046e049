/* Tests of the column-block layout (docs/gguf-sparse.md §3.1) and its kernels.
 *
 *   test_cb layout     every type, several shapes: to_rows(from_rows(x)) == x and
 *                      from_rows(to_rows(y)) == y byte for byte on random bytes (to_rows
 *                      split over 1..4 threads called in random order); every value read
 *                      from the column-block form by this file's own accessor (written from
 *                      §3.1) equals ggml's reference dequantization of the row form (when
 *                      linked, else this file's own row dequantizer); chess_cb_check.
 *   test_cb quant      (ggml) the activation quantizer equals ggml's x86 from_float of the
 *                      vec_dot type bit for bit: Q8_0 / Q8_1 (fp16 d and s) and Q8_K (float
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

int main(int argc, char **argv) {
    const char *what = argc > 1 ? argv[1] : "all";
    const char *seed = getenv("CHESS_TEST_SEED");
    if (seed && *seed) g_rng = strtoull(seed, NULL, 0);
#ifdef CHESS_TEST_WITH_GGML
    ggml_cpu_init();
#endif
    int ran = 0;
    if (!strcmp(what, "layout") || !strcmp(what, "all")) { test_layout(); ran = 1; }
    if (!ran) { fprintf(stderr, "unknown test %s\n", what); return 2; }
    printf("%ld checks, %d failures\n", g_checks, g_failures);
    return g_failures ? 1 : 0;
}
