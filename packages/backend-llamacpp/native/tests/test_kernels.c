/* Conformance tests for chess_sparse.
 *
 *   test_kernels conformance  every kernel x type x available ISA against the
 *                             portable reference, random shapes / masks / thread
 *                             splits / token counts; results must not depend on nth.
 *   test_kernels reference    the reference against a float64 dense computation
 *                             of the masked product from an INDEPENDENT
 *                             dequantization (ggml's own to_float when built with
 *                             CHESS_GGML_SOURCE, and always this file's own).
 *   test_kernels badargs      every error code, nothing written on error.
 *   test_kernels threshold    chess_threshold_mask and the sparsity counters.
 *   test_kernels primitives   white-box, every available SIMD ISA against the reference
 *                             table: the 8-bit activation quantizer bit for bit (scales,
 *                             bytes, sums; incl. zero blocks and exact .5 ties) and
 *                             to_float (exact; Q4_1 may fuse d*q+m: 2 ulp); the
 *                             integer in_accum (Q4_0, Q4_1, Q8_0) of every SIMD ISA
 *                             equal to a scalar model of its arithmetic, avx2's and
 *                             avx2vnni's gemm_rows equal to avx512's and avx2vnni's
 *                             dot_rows equal to avx2's, bit for bit.
 *   test_kernels outq         the output-sparse-only types (Q5_0, Q5_1, Q4_K, Q5_K, Q6_K), every
 *                             available ISA: the activation quantizer equal to this file's
 *                             statement of ggml's and to ggml-cpu's from_float (bit for bit), the
 *                             reference's to_float to ggml's, and every output within float noise
 *                             of this file's float64 model of ggml's exact integer sums (bound:
 *                             (float terms + 16) * 2^-24 * sum of |scaled element products| *
 *                             |g|), the model itself within that bound of ggml's own vec_dot on
 *                             the same rows and activations; results independent of nth, dead
 *                             rows exactly 0; random shapes, sparsities 0 / 0.5 / 1 / random,
 *                             1-4 tokens (and 5-10), 1-4 threads.
 *   test_kernels isaenv       CHESS_KERNEL_ISA selects the named ISA (run by ctest with
 *                             CHESS_KERNEL_ISA=ref, and =<expected ISA> when one is set).
 *
 * CHESS_TEST_EXPECT_ISA=<name> (set by ctest from the CMake option of that name, e.g.
 * neon in the aarch64 cross build): conformance fails unless that ISA is available,
 * is the default selection, and was run for every type and both products.
 * The golden ggml dequantization is compiled in with CHESS_TEST_WITH_GGML (defined
 * by CMake when CHESS_GGML_SOURCE is given); without it the test's own dequantizer
 * is the golden one and every other check is unchanged.
 *
 * Tolerances (relative to the Euclidean norm of the expected result):
 *   SIMD vs reference                          1e-4  (float32, different summation order)
 *   reference vs float64, float activations    1e-5
 *   reference vs float64, 8-bit activations    1e-5 against the same 8-bit quantization
 *                                              (this file's own), 3e-2 against exact x
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chess_sparse.h"
#include "chess_internal.h" /* white-box: per-ISA primitive tables (test_primitives) */

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
static uint64_t g_rng = 0x9e3779b97f4a7c15ull;
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

/* ---------------- this file's own dequantizer (independent of the library) ---------------- */
static double half_to_double(uint16_t h) {
    const int s = h >> 15, e = (h >> 10) & 31, m = h & 1023;
    double v;
    if (e == 0) v = ldexp((double)m, -24);
    else if (e == 31) v = m ? NAN : INFINITY;
    else v = ldexp(1024.0 + m, e - 25);
    return s ? -v : v;
}
static uint16_t rd16(const uint8_t *p) { return (uint16_t)(p[0] | (p[1] << 8)); }
/* random fp16 with exponent in [elo, ehi] (biased), random sign and mantissa */
static uint16_t rnd_half(int elo, int ehi) {
    return (uint16_t)(((rnd_u64() & 1) << 15) | ((uint64_t)rnd_int(elo, ehi) << 10) | (rnd_u64() & 1023));
}

static int64_t blck(chess_type t) { return chess_type_block_size(t); }
static size_t bbytes(chess_type t) { return chess_type_block_bytes(t); }
static size_t row_bytes(chess_type t, int64_t ne0) { return (size_t)(ne0 / blck(t)) * bbytes(t); }

static void own_dequant_row(chess_type t, const uint8_t *src, double *dst, int64_t n) {
    switch (t) {
    case CHESS_TYPE_F32: for (int64_t i = 0; i < n; i++) { float f; memcpy(&f, src + 4 * i, 4); dst[i] = f; } break;
    case CHESS_TYPE_F16: for (int64_t i = 0; i < n; i++) dst[i] = half_to_double(rd16(src + 2 * i)); break;
    case CHESS_TYPE_BF16:
        for (int64_t i = 0; i < n; i++) { uint32_t u = (uint32_t)rd16(src + 2 * i) << 16; float f; memcpy(&f, &u, 4); dst[i] = f; }
        break;
    case CHESS_TYPE_Q8_0:
        for (int64_t b = 0; b < n / 32; b++) {
            const uint8_t *p = src + 34 * b;
            const double d = half_to_double(rd16(p));
            for (int i = 0; i < 32; i++) dst[32 * b + i] = d * (double)(int8_t)p[2 + i];
        }
        break;
    case CHESS_TYPE_Q4_0:
        for (int64_t b = 0; b < n / 32; b++) {
            const uint8_t *p = src + 18 * b;
            const double d = half_to_double(rd16(p));
            for (int i = 0; i < 16; i++) {
                dst[32 * b + i] = d * ((p[2 + i] & 15) - 8);
                dst[32 * b + 16 + i] = d * ((p[2 + i] >> 4) - 8);
            }
        }
        break;
    case CHESS_TYPE_Q4_1:
        for (int64_t b = 0; b < n / 32; b++) {
            const uint8_t *p = src + 20 * b;
            const double d = half_to_double(rd16(p)), m = half_to_double(rd16(p + 2));
            for (int i = 0; i < 16; i++) {
                dst[32 * b + i] = d * (p[4 + i] & 15) + m;
                dst[32 * b + 16 + i] = d * (p[4 + i] >> 4) + m;
            }
        }
        break;
    default: break; /* the output-sparse-only types: own_dequant_out */
    }
}

/* Golden dequantization: ggml's reference to_float when linked (cross-checked
 * against this file's own dequantizer), else the own one. */
static void golden_dequant_row(chess_type t, const uint8_t *src, double *dst, int64_t n) {
    own_dequant_row(t, src, dst, n);
#ifdef CHESS_TEST_WITH_GGML
    ggml_to_float_t to_float = ggml_get_type_traits((enum ggml_type)t)->to_float;
    if (!to_float) return; /* ggml has no converter for F32 (identity) */
    float *tmp = malloc(sizeof(float) * (size_t)n);
    to_float(src, tmp, n);
    int64_t bad = -1;
    for (int64_t i = 0; i < n; i++) {
        if (!((double)tmp[i] == dst[i] || (isnan(tmp[i]) && isnan(dst[i]))) && bad < 0) bad = i;
        dst[i] = tmp[i];
    }
    CHECK(bad < 0, "own dequantizer disagrees with ggml (type %d, i=%lld)", (int)t, (long long)bad);
    free(tmp);
#endif
}

/* random weight rows, realistic magnitudes */
static uint8_t *make_weights(chess_type t, int64_t ne0, int64_t nrows, size_t nb1) {
    uint8_t *w = malloc(nb1 * (size_t)nrows + 1);
    for (size_t i = 0; i < nb1 * (size_t)nrows; i++) w[i] = (uint8_t)rnd_u64();
    for (int64_t r = 0; r < nrows; r++) {
        uint8_t *row = w + (size_t)r * nb1;
        for (int64_t i = 0; i < ne0 / blck(t); i++) {
            uint8_t *b = row + (size_t)i * bbytes(t);
            uint16_t h;
            switch (t) {
            case CHESS_TYPE_F32: { float f = rnd_normal(); memcpy(b, &f, 4); break; }
            case CHESS_TYPE_F16: h = rnd_half(10, 16); memcpy(b, &h, 2); break;
            case CHESS_TYPE_BF16: {
                uint16_t v = (uint16_t)(((rnd_u64() & 1) << 15) | ((uint64_t)rnd_int(122, 128) << 7) | (rnd_u64() & 127));
                memcpy(b, &v, 2);
                break;
            }
            case CHESS_TYPE_Q4_1: h = rnd_half(3, 8); memcpy(b + 2, &h, 2); /* fallthrough */
            case CHESS_TYPE_Q8_0:
            case CHESS_TYPE_Q4_0: h = rnd_half(3, 8); h &= 0x7fff; memcpy(b, &h, 2); break;
            case CHESS_TYPE_Q5_1: h = rnd_half(3, 8); memcpy(b + 2, &h, 2); /* m: either sign */ /* fallthrough */
            case CHESS_TYPE_Q5_0: h = rnd_half(3, 8) & 0x7fff; memcpy(b, &h, 2); break;
            case CHESS_TYPE_Q4_K:
            case CHESS_TYPE_Q5_K: /* d, dmin > 0; the scale bytes stay random (any 6-bit scales and minimums) */
                h = rnd_half(1, 6) & 0x7fff; memcpy(b, &h, 2);
                h = rnd_half(1, 6) & 0x7fff; memcpy(b + 2, &h, 2);
                break;
            case CHESS_TYPE_Q6_K: h = rnd_half(1, 6) & 0x7fff; memcpy(b + 208, &h, 2); break; /* scales: random int8 */
            default: break;
            }
        }
    }
    return w;
}

static double norm_diff(const float *a, const double *b, int64_t n, double *nb) {
    double s = 0, r = 0;
    for (int64_t i = 0; i < n; i++) { const double d = (double)a[i] - b[i]; s += d * d; r += b[i] * b[i]; }
    *nb = sqrt(r);
    return sqrt(s);
}
static int has_nan(const float *a, int64_t n) {
    for (int64_t i = 0; i < n; i++) if (isnan(a[i]) || isinf(a[i])) return 1;
    return 0;
}

static const chess_type k_types[] = { CHESS_TYPE_F32, CHESS_TYPE_F16, CHESS_TYPE_BF16, CHESS_TYPE_Q8_0, CHESS_TYPE_Q4_0, CHESS_TYPE_Q4_1 };
/* Output-sparse only (chess_spmv_in refuses them): checked against ggml's vec_dot by test_out_quant. */
static const chess_type k_out_types[] = { CHESS_TYPE_Q5_0, CHESS_TYPE_Q5_1, CHESS_TYPE_Q4_K, CHESS_TYPE_Q5_K, CHESS_TYPE_Q6_K };
static const char *type_name(chess_type t) {
    switch (t) {
    case CHESS_TYPE_F32: return "f32"; case CHESS_TYPE_F16: return "f16"; case CHESS_TYPE_BF16: return "bf16";
    case CHESS_TYPE_Q8_0: return "q8_0"; case CHESS_TYPE_Q4_0: return "q4_0"; case CHESS_TYPE_Q4_1: return "q4_1";
    case CHESS_TYPE_Q5_0: return "q5_0"; case CHESS_TYPE_Q5_1: return "q5_1"; case CHESS_TYPE_Q4_K: return "q4_K";
    case CHESS_TYPE_Q5_K: return "q5_K"; case CHESS_TYPE_Q6_K: return "q6_K";
    }
    return "?";
}

static int cs_index(chess_type t) {
    switch (t) {
    case CHESS_TYPE_F32: return CS_F32; case CHESS_TYPE_F16: return CS_F16; case CHESS_TYPE_BF16: return CS_BF16;
    case CHESS_TYPE_Q8_0: return CS_Q8_0; case CHESS_TYPE_Q4_0: return CS_Q4_0; case CHESS_TYPE_Q4_1: return CS_Q4_1;
    case CHESS_TYPE_Q5_0: return CS_Q5_0; case CHESS_TYPE_Q5_1: return CS_Q5_1; case CHESS_TYPE_Q4_K: return CS_Q4_K;
    case CHESS_TYPE_Q5_K: return CS_Q5_K; case CHESS_TYPE_Q6_K: return CS_Q6_K;
    }
    return -1;
}

/* ---------------- a random problem ---------------- */
typedef struct {
    chess_type type;
    int64_t ne0, ne1, nt;   /* weight dims (ne0 contiguous), tokens */
    size_t nb1;
    uint8_t *w;
    float *x, *g, *y, *tau;
    int64_t n_tau;
    double sparsity;
    size_t x_nb1, g_nb1, y_nb1;
} problem;

/* kind 0: input-sparse (x has ne1 per token, y ne0); kind 1: out-gated (x ne0, g/y ne1) */
static problem make_problem(int kind, chess_type t, int64_t ne0, int64_t ne1, int64_t nt, double s, int tau_mode) {
    problem p;
    memset(&p, 0, sizeof p);
    p.type = t; p.ne0 = ne0; p.ne1 = ne1; p.nt = nt; p.sparsity = s;
    p.nb1 = row_bytes(t, ne0) + (rnd_u64() & 1 ? 0 : bbytes(t) * (size_t)rnd_int(1, 3)); /* sometimes padded rows */
    p.w = make_weights(t, ne0, ne1, p.nb1);
    const int64_t nx = kind == 0 ? ne1 : ne0, ny = kind == 0 ? ne0 : ne1;
    const int64_t pad = rnd_int(0, 3);
    p.x_nb1 = sizeof(float) * (size_t)(nx + pad);
    p.y_nb1 = sizeof(float) * (size_t)(ny + pad);
    p.g_nb1 = sizeof(float) * (size_t)(ne1 + pad);
    p.x = malloc(p.x_nb1 * (size_t)nt);
    p.y = malloc(p.y_nb1 * (size_t)nt);
    for (size_t i = 0; i < p.x_nb1 / 4 * (size_t)nt; i++) p.x[i] = rnd_normal();
    for (size_t i = 0; i < p.y_nb1 / 4 * (size_t)nt; i++) p.y[i] = NAN; /* must be overwritten */
    const int64_t nm = kind == 0 ? ne1 : ne1; /* channels that are thresholded */
    float *masked = p.x;
    size_t m_nb1 = p.x_nb1;
    if (kind == 1) {
        p.g = malloc(p.g_nb1 * (size_t)nt);
        for (size_t i = 0; i < p.g_nb1 / 4 * (size_t)nt; i++) p.g[i] = rnd_normal();
        masked = p.g;
        m_nb1 = p.g_nb1;
    }
    if (tau_mode == 0) {
        /* exact zeros at random positions (probability s) */
        for (int64_t tt = 0; tt < nt; tt++) {
            float *v = (float *)((char *)masked + (size_t)tt * m_nb1);
            for (int64_t j = 0; j < nm; j++) if (rnd_unit() < s) v[j] = 0.0f;
        }
    } else {
        /* |N(0,1)| <= tau with probability s: tau = quantile of the half-normal */
        p.n_tau = tau_mode == 1 ? 1 : nm;
        p.tau = malloc(sizeof(float) * (size_t)p.n_tau);
        for (int64_t j = 0; j < p.n_tau; j++) {
            double q = s >= 1.0 ? 1e30 : s <= 0.0 ? -1.0 : 0.0;
            if (s > 0.0 && s < 1.0) {
                const double sj = tau_mode == 2 ? fmin(0.999, fmax(0.0, s + 0.3 * (rnd_unit() - 0.5))) : s;
                /* bisection on erf(t/sqrt2) = sj */
                double lo = 0, hi = 10;
                for (int it = 0; it < 60; it++) { const double mid = 0.5 * (lo + hi); if (erf(mid / sqrt(2.0)) < sj) lo = mid; else hi = mid; }
                q = 0.5 * (lo + hi);
            }
            p.tau[j] = (float)q;
        }
    }
    return p;
}
static void free_problem(problem *p) { free(p->w); free(p->x); free(p->g); free(p->y); free(p->tau); }

static int keep(const problem *p, float v, int64_t j) {
    if (p->n_tau == 0) return v != 0.0f;
    return fabsf(v) > (p->n_tau == 1 ? p->tau[0] : p->tau[j]);
}

/* run the kernel as nth slices called in a random order */
static int run(int kind, const problem *p, int nth) {
    int order[16];
    for (int i = 0; i < nth; i++) order[i] = i;
    for (int i = nth - 1; i > 0; i--) { const int j = (int)rnd_int(0, i); const int tmp = order[i]; order[i] = order[j]; order[j] = tmp; }
    for (int i = 0; i < nth; i++) {
        int rc;
        if (kind == 0) {
            const chess_spmv_in_args a = { p->type, p->w, p->ne0, p->ne1, p->nb1, p->x, p->x_nb1, p->y, p->y_nb1, p->nt, p->tau, p->n_tau, 7 };
            rc = chess_spmv_in(&a, order[i], nth);
        } else {
            const chess_spmv_out_gated_args a = { p->type, p->w, p->ne0, p->ne1, p->nb1, p->x, p->x_nb1, p->g, p->g_nb1,
                                                  p->y, p->y_nb1, p->nt, p->tau, p->n_tau, 8 };
            rc = chess_spmv_out_gated(&a, order[i], nth);
        }
        if (rc != CHESS_OK) return rc;
    }
    return CHESS_OK;
}

static float *ycopy(const problem *p, int kind) {
    const int64_t ny = kind == 0 ? p->ne0 : p->ne1;
    float *c = malloc(sizeof(float) * (size_t)(ny * p->nt));
    for (int64_t t = 0; t < p->nt; t++) memcpy(c + t * ny, (char *)p->y + (size_t)t * p->y_nb1, sizeof(float) * (size_t)ny);
    return c;
}

/* Model of the 16-bit integer prefill (cs_isa_table.gemm_i16, contract in chess_internal.h)
 * for problem p (kind 0, nt > 1) on ISA table T: per tile of CS_GEMM_TT tokens, the union
 * of kept inputs; activations quantized to int16 per 32 kept inputs; rows normalized by their magnitude (activations times r_j,
 * weights over it), weights dequantized by T's to_float and re-quantized per 32 union
 * rows and column with the same float32 operations as the kernel; sums in float64.
 * Writes y (nt x ne0). */
static void prefill_i16_model(const problem *p, const cs_isa_table *T, double *y) {
    const int64_t ne0 = p->ne0, ne1 = p->ne1;
    int32_t *uni = malloc(sizeof(int32_t) * (size_t)ne1);
    const int64_t nup_max = (ne1 + 31) / 32 * 32;
    float *P = calloc((size_t)(nup_max * ne0), sizeof(float)), *a = malloc(sizeof(float) * (size_t)nup_max);
    int32_t *u = malloc(sizeof(int32_t) * (size_t)(nup_max * ne0));
    float *e = malloc(sizeof(float) * (size_t)(nup_max / 32 * ne0));
    int32_t *qs = malloc(sizeof(int32_t) * (size_t)nup_max);
    float *d = malloc(sizeof(float) * (size_t)(nup_max / 32));
    float *r = malloc(sizeof(float) * (size_t)nup_max);
    for (int64_t t0 = 0; t0 < p->nt; t0 += CS_GEMM_TT) {
        const int64_t nt = p->nt - t0 < CS_GEMM_TT ? p->nt - t0 : CS_GEMM_TT;
        int64_t nu = 0;
        for (int64_t j = 0; j < ne1; j++) {
            int any = 0;
            for (int64_t t = 0; t < nt; t++) any |= keep(p, ((const float *)((const char *)p->x + (size_t)(t0 + t) * p->x_nb1))[j], j);
            if (any) uni[nu++] = (int32_t)j;
        }
        const int64_t nup = (nu + 31) / 32 * 32;
        memset(P, 0, sizeof(float) * (size_t)(nup * ne0));
        for (int64_t k = 0; k < nu; k++) {
            T->k[cs_index(p->type)].to_float(p->w + (size_t)uni[k] * p->nb1, P + k * ne0, ne0);
            /* row normalization: magnitude from the test's own reading of the blocks */
            float rk = 0.0f;
            for (int64_t b = 0; b < ne0 / 32; b++) {
                const uint8_t *blk = p->w + (size_t)uni[k] * p->nb1 + (size_t)b * bbytes(p->type);
                const float d = fabsf((float)half_to_double(rd16(blk)));
                rk = fmaxf(rk, p->type == CHESS_TYPE_Q4_1 ? fabsf((float)half_to_double(rd16(blk + 2))) + 15.0f * d
                               : p->type == CHESS_TYPE_Q8_0 ? 128.0f * d : 8.0f * d);
            }
            r[k] = rk;
            const float ri = rk > 0.0f ? 1.0f / rk : 0.0f;
            for (int64_t c = 0; c < ne0; c++) P[k * ne0 + c] *= ri;
        }
        for (int64_t k = nu; k < nup; k++) r[k] = 0.0f;
        for (int64_t g = 0; g < nup / 32; g++)
            for (int64_t c = 0; c < ne0; c++) {
                float amax = 0.0f;
                for (int64_t k = 32 * g; k < 32 * g + 32; k++) amax = fmaxf(amax, fabsf(P[k * ne0 + c]));
                const float inv = amax > 0.0f ? 4095.0f / amax : 0.0f;
                e[g * ne0 + c] = amax / 4095.0f;
                for (int64_t k = 32 * g; k < 32 * g + 32; k++) u[k * ne0 + c] = (int32_t)nearbyintf(P[k * ne0 + c] * inv);
            }
        for (int64_t t = 0; t < nt; t++) {
            const float *x = (const float *)((const char *)p->x + (size_t)(t0 + t) * p->x_nb1);
            for (int64_t k = 0; k < nup; k++) a[k] = k < nu && keep(p, x[uni[k]], uni[k]) ? x[uni[k]] * r[k] : 0.0f;
            for (int64_t g = 0; g < nup / 32; g++) {
                float amax = 0.0f;
                for (int64_t k = 32 * g; k < 32 * g + 32; k++) amax = fmaxf(amax, fabsf(a[k]));
                const float inv = amax > 0.0f ? 8191.0f / amax : 0.0f;
                d[g] = amax / 8191.0f;
                for (int64_t k = 32 * g; k < 32 * g + 32; k++) qs[k] = (int32_t)nearbyintf(a[k] * inv);
            }
            for (int64_t c = 0; c < ne0; c++) {
                double acc = 0.0;
                for (int64_t g = 0; g < nup / 32; g++) {
                    int64_t s = 0;
                    for (int64_t k = 32 * g; k < 32 * g + 32; k++) s += (int64_t)u[k * ne0 + c] * qs[k];
                    acc += (double)d[g] * (double)e[g * ne0 + c] * (double)s;
                }
                y[(t0 + t) * ne0 + c] = acc;
            }
        }
    }
    free(uni); free(P); free(a); free(u); free(e); free(qs); free(d); free(r);
}

static void random_shape(chess_type t, int kind, int64_t *ne0, int64_t *ne1, int64_t *nt, int big) {
    const int64_t b = blck(t);
    /* big: more columns than one in_accum call takes (CS_IN_CHUNK, 16384) */
    if (b == 1) *ne0 = big ? rnd_int(16385, 16800) : rnd_int(1, 300);
    else *ne0 = b * (big ? (rnd_int(256, 262) * 2 + 1) : (rnd_int(0, 6) * 2 + 1)); /* odd multiples */
    *ne1 = big ? rnd_int(100, 160) : rnd_int(1, 120);
    const int r = (int)rnd_int(0, 9);
    *nt = r < 6 ? 1 : r < 9 ? rnd_int(2, 9) : rnd_int(0, 1) ? rnd_int(60, 70) : rnd_int(257, 270); /* > 256: several prefill tiles */
    if (big && *nt > 9) *nt = 5;
    (void)kind;
}

/* ---------------- conformance: SIMD vs reference, nth independence ---------------- */
static chess_isa g_default_isa = CHESS_ISA_REF; /* chess_get_isa() before any chess_set_isa */

static void test_conformance(void) {
    const double sparsities[] = { 0.0, 0.5, 1.0, -1.0 };
    const char *expect = getenv("CHESS_TEST_EXPECT_ISA");
    int i16_cases = 0; /* prefill cases checked against the integer prefill model */
    int expect_runs = 0; /* (type, kind) pairs of the expected ISA with all their cases */
    if (expect && *expect) {
        int found = 0;
        for (int isa = 0; isa < CHESS_ISA_COUNT; isa++) {
            if (strcmp(chess_isa_name((chess_isa)isa), expect) != 0) continue;
            found = 1;
            CHECK(chess_isa_available((chess_isa)isa), "expected ISA %s is not available on this CPU/build", expect);
        }
        CHECK(found, "expected ISA %s is unknown to this build", expect);
        CHECK(strcmp(chess_isa_name(g_default_isa), expect) == 0, "default ISA is %s, expected %s",
              chess_isa_name(g_default_isa), expect);
        printf("  default isa %s (expected %s)\n", chess_isa_name(g_default_isa), expect);
    }
    for (int isa = 1; isa < CHESS_ISA_COUNT; isa++) {
        if (!chess_isa_available((chess_isa)isa)) { printf("  isa %s: not available, skipped\n", chess_isa_name((chess_isa)isa)); continue; }
        for (size_t ti = 0; ti < sizeof k_types / sizeof k_types[0]; ti++) {
            const chess_type t = k_types[ti];
            for (int kind = 0; kind < 2; kind++) {
                int cases = 0;
                for (int c = 0; c < 28; c++) {
                    int64_t ne0, ne1, nt;
                    random_shape(t, kind, &ne0, &ne1, &nt, c % 9 == 8);
                    double s = sparsities[c % 4];
                    if (s < 0) s = rnd_unit();
                    const int tau_mode = (int)rnd_int(0, 2);
                    problem p = make_problem(kind, t, ne0, ne1, nt, s, tau_mode);
                    const int nth1 = (int)rnd_int(1, 5), nth2 = (int)rnd_int(1, 5);
                    chess_set_isa(CHESS_ISA_REF);
                    CHECK(run(kind, &p, 1) == CHESS_OK, "ref run");
                    float *yr = ycopy(&p, kind);
                    chess_set_isa((chess_isa)isa);
                    CHECK(run(kind, &p, nth1) == CHESS_OK, "simd run");
                    float *ya = ycopy(&p, kind);
                    CHECK(run(kind, &p, nth2) == CHESS_OK, "simd run 2");
                    float *yb = ycopy(&p, kind);
                    const int64_t n = (kind == 0 ? ne0 : ne1) * nt;
                    double *yrd = malloc(sizeof(double) * (size_t)n);
                    for (int64_t i = 0; i < n; i++) yrd[i] = yr[i];
                    double nref;
                    const double err = norm_diff(ya, yrd, n, &nref);
                    CHECK(!has_nan(ya, n), "%s %s %s: NaN/inf in output", chess_isa_name((chess_isa)isa), type_name(t), kind ? "out_gated" : "in");
                    /* integer prefill (Q4_0, Q4_1, Q8_0 on ISAs with gemm_i16): the float reference
                     * within the error of 16-bit activations and 11-bit re-quantized weights,
                     * and the documented arithmetic exactly (model) */
                    const cs_isa_table *TI = cs_isa_table_of((chess_isa)isa);
                    const int i16 = kind == 0 && nt > 1 && TI->gemm_i16 && (t == CHESS_TYPE_Q4_0 || t == CHESS_TYPE_Q4_1 || t == CHESS_TYPE_Q8_0);
                    CHECK(err <= (i16 ? 1e-3 : 1e-4) * nref + 1e-30, "%s %s %s ne0=%lld ne1=%lld nt=%lld s=%.2f tau=%d nth=%d: rel err %.3g",
                          chess_isa_name((chess_isa)isa), type_name(t), kind ? "out_gated" : "in", (long long)ne0, (long long)ne1,
                          (long long)nt, s, tau_mode, nth1, nref > 0 ? err / nref : err);
                    if (i16) {
                        double *ym = malloc(sizeof(double) * (size_t)n);
                        prefill_i16_model(&p, TI, ym);
                        double nm;
                        const double errm = norm_diff(ya, ym, n, &nm);
                        CHECK(errm <= 1e-5 * nm + 1e-30, "%s %s in integer prefill ne0=%lld ne1=%lld nt=%lld s=%.2f tau=%d: rel err %.3g vs the model",
                              chess_isa_name((chess_isa)isa), type_name(t), (long long)ne0, (long long)ne1, (long long)nt, s, tau_mode,
                              nm > 0 ? errm / nm : errm);
                        free(ym);
                        i16_cases++;
                    }
                    CHECK(memcmp(ya, yb, sizeof(float) * (size_t)n) == 0, "%s %s %s: result depends on nth (%d vs %d)",
                          chess_isa_name((chess_isa)isa), type_name(t), kind ? "out_gated" : "in", nth1, nth2);
                    if (s >= 1.0) {
                        int allzero = 1;
                        for (int64_t i = 0; i < n; i++) allzero &= ya[i] == 0.0f;
                        CHECK(allzero, "100%% sparsity must give exact zeros");
                    }
                    if (kind == 1) { /* dead rows are exact zeros */
                        int ok = 1;
                        for (int64_t tt = 0; tt < nt; tt++)
                            for (int64_t i = 0; i < ne1; i++)
                                if (!keep(&p, ((float *)((char *)p.g + (size_t)tt * p.g_nb1))[i], i)) ok &= ya[tt * ne1 + i] == 0.0f;
                        CHECK(ok, "dead gate rows must be zero");
                    }
                    free(yr); free(ya); free(yb); free(yrd);
                    free_problem(&p);
                    cases++;
                }
                printf("  %-6s %-5s %-9s %d cases\n", chess_isa_name((chess_isa)isa), type_name(t), kind ? "out_gated" : "in", cases);
                if (expect && !strcmp(chess_isa_name((chess_isa)isa), expect) && cases == 28) expect_runs++;
            }
        }
    }
    int i16_isas = 0;
    for (int isa = 1; isa < CHESS_ISA_COUNT; isa++) i16_isas += chess_isa_available((chess_isa)isa) && cs_isa_table_of((chess_isa)isa)->gemm_i16;
    printf("  integer prefill model: %d cases\n", i16_cases);
    CHECK(i16_isas == 0 || i16_cases >= 6, "only %d prefill cases checked against the integer prefill model", i16_cases);
    if (expect && *expect) {
        const int want = (int)(2 * sizeof k_types / sizeof k_types[0]);
        CHECK(expect_runs == want, "expected ISA %s ran %d of %d (type, product) pairs", expect, expect_runs, want);
    }
}

/* ---------------- decode with the active inputs split into parts ---------------- */

/* chess_spmv_in_parts + chess_sum_parts against chess_spmv_in on the same ISA: the
 * same product up to the order of the sums; independent of nth; exact zeros at
 * 100% sparsity; bad part counts rejected. */
static void test_parts(void) {
    const double sparsities[] = { 0.0, 0.5, 1.0, -1.0 };
    for (int isa = 0; isa < CHESS_ISA_COUNT; isa++) {
        if (!chess_isa_available((chess_isa)isa)) continue;
        chess_set_isa((chess_isa)isa);
        for (size_t ti = 0; ti < sizeof k_types / sizeof k_types[0]; ti++) {
            const chess_type t = k_types[ti];
            for (int c = 0; c < 12; c++) {
                int64_t ne0, ne1, nt;
                random_shape(t, 0, &ne0, &ne1, &nt, c % 6 == 5);
                double s = sparsities[c % 4];
                if (s < 0) s = rnd_unit();
                problem p = make_problem(0, t, ne0, ne1, 1, s, (int)rnd_int(0, 2));
                CHECK(run(0, &p, 1) == CHESS_OK, "whole run");
                const int n_parts = (int)rnd_int(1, 7);
                const size_t pnb1 = sizeof(float) * (size_t)(ne0 + rnd_int(0, 3));
                float *parts = malloc(pnb1 * (size_t)n_parts);
                float *ya = malloc(sizeof(float) * (size_t)ne0), *yb = malloc(sizeof(float) * (size_t)ne0);
                for (int rep = 0; rep < 2; rep++) {
                    for (size_t i = 0; i < pnb1 / sizeof(float) * (size_t)n_parts; i++) parts[i] = NAN; /* every part is written */
                    const int nth = (int)rnd_int(1, 5);
                    chess_spmv_in_args a = { p.type, p.w, p.ne0, p.ne1, p.nb1, p.x, p.x_nb1, parts, pnb1, 1, p.tau, p.n_tau, 9 };
                    for (int i = nth - 1; i >= 0; i--) CHECK(chess_spmv_in_parts(&a, n_parts, i, nth) == CHESS_OK, "parts run");
                    const int nth_sum = (int)rnd_int(1, 4);
                    for (int i = 0; i < nth_sum; i++) CHECK(chess_sum_parts(rep ? yb : ya, parts, pnb1, ne0, n_parts, i, nth_sum) == CHESS_OK, "sum run");
                }
                double *yr = malloc(sizeof(double) * (size_t)ne0);
                for (int64_t i = 0; i < ne0; i++) yr[i] = p.y[i];
                double nref;
                const double err = norm_diff(ya, yr, ne0, &nref);
                CHECK(!has_nan(ya, ne0), "%s %s parts: NaN/inf in output", chess_isa_name((chess_isa)isa), type_name(t));
                CHECK(err <= 1e-4 * nref + 1e-30, "%s %s parts=%d ne0=%lld ne1=%lld s=%.2f: rel err %.3g vs the whole product",
                      chess_isa_name((chess_isa)isa), type_name(t), n_parts, (long long)ne0, (long long)ne1, s, nref > 0 ? err / nref : err);
                CHECK(memcmp(ya, yb, sizeof(float) * (size_t)ne0) == 0, "%s %s parts: result depends on nth", chess_isa_name((chess_isa)isa), type_name(t));
                if (s >= 1.0) {
                    int allzero = 1;
                    for (int64_t i = 0; i < ne0; i++) allzero &= ya[i] == 0.0f;
                    CHECK(allzero, "parts: 100%% sparsity must give exact zeros");
                }
                chess_spmv_in_args bad = { p.type, p.w, p.ne0, p.ne1, p.nb1, p.x, p.x_nb1, parts, pnb1, 1, p.tau, p.n_tau, -1 };
                CHECK(chess_spmv_in_parts(&bad, 0, 0, 1) == CHESS_ERR_SHAPE, "0 parts");
                CHECK(chess_spmv_in_parts(&bad, CHESS_MAX_PARTS + 1, 0, 1) == CHESS_ERR_SHAPE, "too many parts");
                bad.n_tokens = 2;
                CHECK(chess_spmv_in_parts(&bad, 2, 0, 1) == CHESS_ERR_SHAPE, "parts need one token");
                CHECK(chess_sum_parts(ya, parts, sizeof(float), ne0 + 1, 2, 0, 1) == CHESS_ERR_STRIDE, "parts stride");
                CHECK(chess_sum_parts(ya, parts, pnb1, ne0, 2, 1, 1) == CHESS_ERR_THREAD, "sum ith");
                free(parts); free(ya); free(yb); free(yr);
                free_problem(&p);
            }
            printf("  %-6s %-5s parts    12 cases\n", chess_isa_name((chess_isa)isa), type_name(t));
        }
    }
    chess_set_isa(g_default_isa);
}

/* ---------------- reference vs float64 ---------------- */

/* this file's own 8-bit activation quantization (same rule as documented in chess_sparse.h) */
static double own_round_half(float f);
/* ggml's 8-bit activations for the Q8_0 / Q4_0 / Q4_1 dot (quantize_row_q8_0 / q8_1, see
 * own_quant_q8g): xq = d * q with d = amax/127 kept as fp16 and q = round_even(x * id), id
 * = 127/amax (x86) or 1/d (AArch64); per block, ds[b] = d and ss[b] = Q8_1's s = fp16(d *
 * sum q) with the unrounded d (the minimum term of Q4_1 takes s, not d * sum q). */
static void own_quant8(const float *x, double *xq, double *ds, double *ss, int64_t n) {
    for (int64_t b = 0; b < n / 32; b++) {
        float amax = 0;
        for (int i = 0; i < 32; i++) amax = fmaxf(amax, fabsf(x[32 * b + i]));
        const float d = amax / 127.0f;
#if defined(__aarch64__)
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
#else
        const float id = amax != 0.0f ? 127.0f / amax : 0.0f;
#endif
        const double dh = own_round_half(d);
        int sum = 0;
        for (int i = 0; i < 32; i++) {
            const float q = nearbyintf(x[32 * b + i] * id);
            xq[32 * b + i] = dh * (double)q;
            sum += (int)q;
        }
        ds[b] = dh;
        ss[b] = own_round_half(d * (float)sum);
    }
}

static void test_reference(void) {
    chess_set_isa(CHESS_ISA_REF);
    const double sparsities[] = { 0.0, 0.5, 1.0, -1.0 };
    for (size_t ti = 0; ti < sizeof k_types / sizeof k_types[0]; ti++) {
        const chess_type t = k_types[ti];
        const int quant = blck(t) > 1;
        for (int kind = 0; kind < 2; kind++) {
            for (int c = 0; c < 12; c++) {
                int64_t ne0, ne1, nt;
                random_shape(t, kind, &ne0, &ne1, &nt, c == 11);
                double s = sparsities[c % 4];
                if (s < 0) s = rnd_unit();
                const int tau_mode = (int)rnd_int(0, 2);
                problem p = make_problem(kind, t, ne0, ne1, nt, s, tau_mode);
                CHECK(run(kind, &p, (int)rnd_int(1, 4)) == CHESS_OK, "ref run");
                double *W = malloc(sizeof(double) * (size_t)(ne0 * ne1));
                for (int64_t r = 0; r < ne1; r++) golden_dequant_row(t, p.w + (size_t)r * p.nb1, W + r * ne0, ne0);
                const int64_t ny = kind == 0 ? ne0 : ne1;
                double *ye = calloc((size_t)(ny * nt), sizeof(double));   /* exact activations */
                double *yq = calloc((size_t)(ny * nt), sizeof(double));   /* 8-bit activations */
                double *xq = malloc(sizeof(double) * (size_t)ne0);
                double *xd = malloc(sizeof(double) * (size_t)(ne0 / 32 + 1)), *xs = malloc(sizeof(double) * (size_t)(ne0 / 32 + 1));
                for (int64_t tt = 0; tt < nt; tt++) {
                    const float *x = (const float *)((char *)p.x + (size_t)tt * p.x_nb1);
                    if (kind == 0) {
                        for (int64_t j = 0; j < ne1; j++)
                            if (keep(&p, x[j], j))
                                for (int64_t i = 0; i < ne0; i++) ye[tt * ne0 + i] += (double)x[j] * W[j * ne0 + i];
                    } else {
                        const float *g = (const float *)((char *)p.g + (size_t)tt * p.g_nb1);
                        if (quant) own_quant8(x, xq, xd, xs, ne0);
                        for (int64_t i = 0; i < ne1; i++) {
                            if (!keep(&p, g[i], i)) continue;
                            double se = 0, sq = 0;
                            for (int64_t k = 0; k < ne0; k++) { se += W[i * ne0 + k] * x[k]; if (quant) sq += W[i * ne0 + k] * xq[k]; }
                            if (t == CHESS_TYPE_Q4_1) /* the minimum m of each block times Q8_1's s instead of d * sum q */
                                for (int64_t b = 0; b < ne0 / 32; b++) {
                                    const double m = half_to_double(rd16(p.w + (size_t)i * p.nb1 + (size_t)b * 20 + 2));
                                    double dq = 0; /* d * sum q, exactly (d has 11 bits, q 8) */
                                    for (int k = 0; k < 32; k++) dq += xq[32 * b + k];
                                    sq += m * (xs[b] - dq);
                                }
                            ye[tt * ne1 + i] = g[i] * se;
                            yq[tt * ne1 + i] = g[i] * sq;
                        }
                    }
                }
                float *y = ycopy(&p, kind);
                const int64_t n = ny * nt;
                double nrm;
                const double err = norm_diff(y, ye, n, &nrm);
                const double tol_exact = (kind == 1 && quant) ? 3e-2 : 1e-5;
                CHECK(!has_nan(y, n), "ref %s: NaN", type_name(t));
                CHECK(err <= tol_exact * nrm + 1e-30, "ref %s %s vs f64 (exact x): ne0=%lld ne1=%lld nt=%lld s=%.2f rel err %.3g > %.1g",
                      type_name(t), kind ? "out_gated" : "in", (long long)ne0, (long long)ne1, (long long)nt, s,
                      nrm > 0 ? err / nrm : err, tol_exact);
                if (kind == 1 && quant) {
                    const double errq = norm_diff(y, yq, n, &nrm);
                    CHECK(errq <= 1e-5 * nrm + 1e-30, "ref %s out_gated vs f64 (8-bit x): rel err %.3g", type_name(t), nrm > 0 ? errq / nrm : errq);
                }
                free(W); free(ye); free(yq); free(xq); free(xd); free(xs); free(y);
                free_problem(&p);
            }
            printf("  ref    %-5s %-9s vs float64: 12 cases\n", type_name(t), kind ? "out_gated" : "in");
        }
    }
}

/* ---------------- bad arguments ---------------- */
static void test_badargs(void) {
    uint8_t w[34 * 8];
    memset(w, 0, sizeof w);
    float x[64], g[64], y[64], tau[2] = { 0.5f, 0.5f };
    for (int i = 0; i < 64; i++) { x[i] = 1; g[i] = 1; y[i] = 42.0f; }
    const chess_spmv_in_args good = { CHESS_TYPE_Q8_0, w, 64, 4, 68, x, 0, y, 0, 1, NULL, 0, -1 };
    chess_spmv_in_args a;
#define EXPECT_IN(field_expr, code)                                                  \
    do {                                                                             \
        a = good;                                                                    \
        field_expr;                                                                  \
        const int rc_ = chess_spmv_in(&a, 0, 1);                                     \
        CHECK(rc_ == (code), "spmv_in: %s -> %d, expected %d", #field_expr, rc_, code); \
        CHECK(y[0] == 42.0f, "spmv_in wrote y on error (%s)", #field_expr);         \
    } while (0)
    EXPECT_IN(a.type = (chess_type)6, CHESS_ERR_TYPE);      /* Q5_0: not supported */
    EXPECT_IN(a.type = (chess_type)99, CHESS_ERR_TYPE);
    EXPECT_IN(a.type = (chess_type)-1, CHESS_ERR_TYPE);
    EXPECT_IN(a.ne0 = 48, CHESS_ERR_SHAPE);                 /* not a multiple of 32 */
    EXPECT_IN(a.ne0 = 0, CHESS_ERR_SHAPE);
    EXPECT_IN(a.ne1 = -3, CHESS_ERR_SHAPE);
    EXPECT_IN(a.n_tokens = 0, CHESS_ERR_SHAPE);
    EXPECT_IN(a.w = NULL, CHESS_ERR_NULL);
    EXPECT_IN(a.x = NULL, CHESS_ERR_NULL);
    EXPECT_IN(a.y = NULL, CHESS_ERR_NULL);
    EXPECT_IN(a.nb1 = 67, CHESS_ERR_STRIDE);
    EXPECT_IN((a.n_tokens = 2, a.x_nb1 = 4, a.y_nb1 = 256), CHESS_ERR_STRIDE);
    EXPECT_IN(a.n_tau = 3, CHESS_ERR_TAU);
    EXPECT_IN(a.n_tau = 1, CHESS_ERR_NULL);                 /* tau NULL */
    EXPECT_IN(a.site = CHESS_MAX_SITES, CHESS_ERR_SITE);
    a = good;
    CHECK(chess_spmv_in(&a, 1, 1) == CHESS_ERR_THREAD, "ith >= nth");
    CHECK(chess_spmv_in(&a, -1, 2) == CHESS_ERR_THREAD, "ith < 0");
    CHECK(chess_spmv_in(&a, 0, 0) == CHESS_ERR_THREAD, "nth 0");
    CHECK(chess_spmv_in(NULL, 0, 1) == CHESS_ERR_NULL, "NULL args");
    CHECK(y[0] == 42.0f, "y untouched");
    a = good; a.n_tau = 1; a.tau = tau;
    CHECK(chess_spmv_in(&a, 0, 1) == CHESS_OK, "good call");

    const chess_spmv_out_gated_args gg = { CHESS_TYPE_Q4_0, w, 64, 4, 36, x, 0, g, 0, y, 0, 1, tau, 1, -1 };
    chess_spmv_out_gated_args b;
    for (int i = 0; i < 64; i++) y[i] = 42.0f;
#define EXPECT_OUT(field_expr, code)                                                 \
    do {                                                                             \
        b = gg;                                                                      \
        field_expr;                                                                  \
        const int rc_ = chess_spmv_out_gated(&b, 0, 1);                              \
        CHECK(rc_ == (code), "out_gated: %s -> %d, expected %d", #field_expr, rc_, code); \
        CHECK(y[0] == 42.0f, "out_gated wrote y on error (%s)", #field_expr);       \
    } while (0)
    EXPECT_OUT(b.type = (chess_type)10, CHESS_ERR_TYPE);    /* Q2_K: not yet */
    EXPECT_OUT(b.ne0 = 33, CHESS_ERR_SHAPE);
    EXPECT_OUT(b.ne1 = 0, CHESS_ERR_SHAPE);
    EXPECT_OUT(b.g = NULL, CHESS_ERR_NULL);
    EXPECT_OUT(b.nb1 = 35, CHESS_ERR_STRIDE);
    EXPECT_OUT(b.n_tau = 2, CHESS_ERR_TAU);
    EXPECT_OUT((b.n_tokens = 3, b.x_nb1 = 256, b.g_nb1 = 8, b.y_nb1 = 16), CHESS_ERR_STRIDE);
    b = gg;
    CHECK(chess_spmv_out_gated(&b, 2, 2) == CHESS_ERR_THREAD, "ith == nth");
    CHECK(chess_spmv_out_gated(&b, 0, 1) == CHESS_OK, "good out_gated call");

    CHECK(chess_threshold_mask(NULL, 4, NULL, 0, -1) == CHESS_ERR_NULL, "mask NULL");
    CHECK(chess_threshold_mask(x, 4, NULL, 1, -1) == CHESS_ERR_NULL, "mask tau NULL");
    CHECK(chess_threshold_mask(x, 4, tau, 2, -1) == CHESS_ERR_TAU, "mask n_tau");
    CHECK(chess_threshold_mask(x, -1, tau, 1, -1) == CHESS_ERR_SHAPE, "mask n");
    CHECK(chess_threshold_mask(x, 4, tau, 1, CHESS_MAX_SITES) == CHESS_ERR_SITE, "mask site");
    uint64_t s0, z0;
    CHECK(chess_counters_get(-1, &s0, &z0) == CHESS_ERR_SITE, "counter site");
    CHECK(chess_set_isa((chess_isa)17) == CHESS_ERR_ISA, "bad isa");
    CHECK(chess_type_block_size((chess_type)10) == 0 && chess_type_block_bytes((chess_type)10) == 0, "block size of unsupported type (Q2_K)");
    /* Q5_0, Q5_1 and the K-quants: the output-sparse product only */
    for (size_t ti = 0; ti < sizeof k_out_types / sizeof k_out_types[0]; ti++) {
        const chess_type t = k_out_types[ti];
        const int k = t == CHESS_TYPE_Q5_0 || t == CHESS_TYPE_Q5_1 ? 32 : 256;
        CHECK(chess_type_block_size(t) == k && chess_type_block_bytes(t) == (size_t)(t == CHESS_TYPE_Q5_0 ? 22 : t == CHESS_TYPE_Q5_1 ? 24 :
                                                                             t == CHESS_TYPE_Q4_K ? 144 : t == CHESS_TYPE_Q5_K ? 176 : 210),
              "%s block size", type_name(t));
        CHECK(!chess_type_supported(t) && chess_out_gated_supported(t) && !chess_out_gated_has_gemm(t), "%s support queries", type_name(t));
        uint8_t wk[210 * 2];
        memset(wk, 0, sizeof wk);
        float xk[512], yk[4];
        for (int i = 0; i < 512; i++) xk[i] = 1.0f;
        yk[0] = 42.0f;
        chess_spmv_in_args ia = { t, wk, k, 1, bbytes(t), xk, 0, yk, 0, 1, NULL, 0, -1 };
        CHECK(chess_spmv_in(&ia, 0, 1) == CHESS_ERR_TYPE && chess_spmv_in_parts(&ia, 1, 0, 1) == CHESS_ERR_TYPE && yk[0] == 42.0f,
              "spmv_in must refuse %s", type_name(t));
        chess_spmv_out_gated_args oa = { t, wk, k, 1, bbytes(t), xk, 0, xk, 0, yk, 0, 1, NULL, 0, -1 };
        CHECK(chess_spmv_out_gated(&oa, 0, 1) == CHESS_OK && yk[0] == 0.0f, "out_gated %s on zero weights", type_name(t));
        yk[0] = 42.0f;
        oa.ne0 = k + 32;
        CHECK(chess_spmv_out_gated(&oa, 0, 1) == (k == 256 ? CHESS_ERR_SHAPE : CHESS_ERR_STRIDE) && yk[0] == 42.0f,
              "out_gated %s: ne0 %d", type_name(t), k + 32);
        oa.ne0 = k;
        oa.nb1 = bbytes(t) - 1;
        CHECK(chess_spmv_out_gated(&oa, 0, 1) == CHESS_ERR_STRIDE && yk[0] == 42.0f, "out_gated %s: short stride", type_name(t));
    }
    printf("  bad-argument checks done\n");
}

/* ---------------- threshold + counters ---------------- */
static void test_threshold(void) {
    chess_counters_reset();
    float x[1000], tau[1000];
    int64_t expect = 0;
    for (int i = 0; i < 1000; i++) { x[i] = rnd_normal(); tau[i] = (float)rnd_unit(); }
    float x2[1000];
    memcpy(x2, x, sizeof x);
    for (int i = 0; i < 1000; i++) expect += fabsf(x[i]) > tau[i];
    CHECK(chess_threshold_mask(x2, 1000, tau, 1000, 3) == expect, "per-channel kept count");
    for (int i = 0; i < 1000; i++) CHECK(x2[i] == (fabsf(x[i]) > tau[i] ? x[i] : 0.0f), "per-channel mask at %d", i);
    memcpy(x2, x, sizeof x);
    int64_t e1 = 0;
    for (int i = 0; i < 1000; i++) e1 += fabsf(x[i]) > 0.7f;
    const float t1 = 0.7f;
    CHECK(chess_threshold_mask(x2, 1000, &t1, 1, 3) == e1, "scalar kept count");
    uint64_t seen, zeroed;
    CHECK(chess_counters_get(3, &seen, &zeroed) == CHESS_OK, "counters get");
    CHECK(seen == 2000 && zeroed == (uint64_t)(2000 - expect - e1), "counters: seen %llu zeroed %llu", (unsigned long long)seen, (unsigned long long)zeroed);
    /* equality is dropped (strict >) */
    float eq[2] = { 0.5f, -0.5f };
    const float th = 0.5f;
    CHECK(chess_threshold_mask(eq, 2, &th, 1, -1) == 0 && eq[0] == 0.0f && eq[1] == 0.0f, "|x| == tau is dropped");

    /* kernels count too, only once per call whatever nth */
    chess_counters_reset();
    problem p = make_problem(0, CHESS_TYPE_Q4_0, 64, 100, 3, 0.5, 0);
    int64_t zeros = 0;
    for (int64_t t = 0; t < 3; t++) for (int64_t j = 0; j < 100; j++) zeros += ((float *)((char *)p.x + (size_t)t * p.x_nb1))[j] == 0.0f;
    CHECK(run(0, &p, 3) == CHESS_OK, "run");
    CHECK(chess_counters_get(7, &seen, &zeroed) == CHESS_OK && seen == 300 && zeroed == (uint64_t)zeros,
          "spmv_in counters: %llu/%llu expected 300/%lld", (unsigned long long)seen, (unsigned long long)zeroed, (long long)zeros);
    free_problem(&p);
    p = make_problem(1, CHESS_TYPE_Q4_1, 64, 100, 1, 0.5, 1);
    zeros = 0;
    for (int64_t j = 0; j < 100; j++) zeros += !(fabsf(p.g[j]) > p.tau[0]);
    CHECK(run(1, &p, 2) == CHESS_OK, "run");
    CHECK(chess_counters_get(8, &seen, &zeroed) == CHESS_OK && seen == 100 && zeroed == (uint64_t)zeros, "out_gated counters");
    free_problem(&p);
    printf("  threshold + counters done\n");
}

/* ---------------- output-sparse Q5_0 / Q5_1 / K-quants against ggml ---------------- */

static int32_t *random_rows(int64_t nrows, double keep_p, int64_t *nr);
static float *random_activations(int64_t n, int zero_halves);

/* This file's own reading of the blocks (ggml-common.h layouts, written here from their
 * description): the unsigned integer value of element i of a block before any offset. */
static int own_q5_value(const uint8_t *qh4, const uint8_t *qs, int i) {
    const uint32_t qh = (uint32_t)qh4[0] | (uint32_t)qh4[1] << 8 | (uint32_t)qh4[2] << 16 | (uint32_t)qh4[3] << 24;
    return ((i < 16 ? qs[i] : qs[i - 16] >> 4) & 15) | (int)((qh >> i) & 1) << 4;
}
/* Q4_K / Q5_K (144 / 176 bytes: d, dmin, 12 scale bytes, [qh 32,] qs 128): sub-block j = i / 32. */
static void own_k_scale_min(const uint8_t *s, int j, int *sc, int *m) {
    if (j < 4) { *sc = s[j] & 63; *m = s[j + 4] & 63; }
    else { *sc = (s[j + 4] & 15) | (s[j - 4] >> 6) << 4; *m = (s[j + 4] >> 4) | (s[j] >> 6) << 4; }
}
static int own_q4k_value(const uint8_t *blk, int i) {
    const int j = i / 32, l = i % 32;
    return (blk[16 + 32 * (j / 2) + l] >> (j % 2 ? 4 : 0)) & 15;
}
static int own_q5k_value(const uint8_t *blk, int i) {
    const int j = i / 32, l = i % 32;
    return ((blk[48 + 32 * (j / 2) + l] >> (j % 2 ? 4 : 0)) & 15) | ((blk[16 + l] >> j) & 1) << 4;
}
/* Q6_K (210 bytes: ql 128, qh 64, int8 scales 16, d): halves of 128, quarters of 32 */
static int own_q6k_value(const uint8_t *blk, int i) {
    const int h = i / 128, c = (i % 128) / 32, l = i % 32;
    const int lo = (blk[64 * h + (c % 2 ? 32 : 0) + l] >> (c >= 2 ? 4 : 0)) & 15;
    return lo | ((blk[128 + 32 * h + l] >> (2 * c)) & 3) << 4;
}
static void own_dequant_out(chess_type t, const uint8_t *src, double *dst, int64_t n) {
    const size_t S = bbytes(t);
    for (int64_t b = 0; b < n / blck(t); b++) {
        const uint8_t *p = src + (size_t)b * S;
        double *o = dst + b * blck(t);
        switch (t) {
        case CHESS_TYPE_Q5_0:
            for (int i = 0; i < 32; i++) o[i] = half_to_double(rd16(p)) * (own_q5_value(p + 2, p + 6, i) - 16);
            break;
        case CHESS_TYPE_Q5_1:
            for (int i = 0; i < 32; i++) o[i] = half_to_double(rd16(p)) * own_q5_value(p + 4, p + 8, i) + half_to_double(rd16(p + 2));
            break;
        case CHESS_TYPE_Q4_K:
        case CHESS_TYPE_Q5_K:
            for (int i = 0; i < 256; i++) {
                int sc, m;
                own_k_scale_min(p + 4, i / 32, &sc, &m);
                const int v = t == CHESS_TYPE_Q4_K ? own_q4k_value(p, i) : own_q5k_value(p, i);
                o[i] = half_to_double(rd16(p)) * sc * v - half_to_double(rd16(p + 2)) * m;
            }
            break;
        case CHESS_TYPE_Q6_K:
            for (int i = 0; i < 256; i++) o[i] = half_to_double(rd16(p + 208)) * (int8_t)p[192 + i / 16] * (own_q6k_value(p, i) - 32);
            break;
        default: break;
        }
    }
}

static int act_kind(chess_type t) {
    return t == CHESS_TYPE_Q5_0 || t == CHESS_TYPE_Q4_0 || t == CHESS_TYPE_Q8_0 ? CS_ACT_Q8_0
         : t == CHESS_TYPE_Q5_1 || t == CHESS_TYPE_Q4_1                        ? CS_ACT_Q8_1
                                                                                : CS_ACT_Q8_K;
}
static const char *act_name(int kind) { return kind == CS_ACT_Q8_0 ? "q8_0" : kind == CS_ACT_Q8_1 ? "q8_1" : "q8_K"; }

/* activations of n elements in a cs_q8g (arrays owned by it) */
static cs_q8g q8g_alloc(int64_t n) {
    cs_q8g q = { malloc((size_t)n), calloc((size_t)(n / 32 + 1), sizeof(float)), calloc((size_t)(n / 32 + 1), sizeof(float)),
                 calloc((size_t)(n / 16 + 1), sizeof(int16_t)) };
    return q;
}
static void q8g_free(cs_q8g *q) { free(q->qs); free(q->d); free(q->s); free(q->bsums); }

/* float -> nearest fp16 value (ties to even), as a double; this file's own rounding */
static double own_round_half(float f) {
    const double v = f, a = fabs(v);
    if (a == 0.0 || isnan(v)) return v;
    int e;
    frexp(a, &e);                                  /* a = m * 2^e, m in [0.5, 1) */
    const int q = e - 11 < -24 ? -24 : e - 11;     /* spacing 2^q: 11 significant bits, subnormals 2^-24 */
    double r = nearbyint(ldexp(a, -q));            /* to even (default rounding mode) */
    r = ldexp(r, q);
    if (r >= 65520.0) r = INFINITY;
    return v < 0 ? -r : r;
}

/* This file's own statement of ggml's activation quantization (see chess_sparse.h):
 * Q8_0 / Q8_1 (ggml-cpu's from_float): d = amax/127 kept as fp16, q = round_even(x * id)
 * with id = 127/amax (x86) or 1/d (AArch64), Q8_1's s = fp16(d * sum q); Q8_K
 * (quantize_row_q8_K_ref): the first element
 * of largest |x| maps to -127, q = min(127, round_even(x * (-127/max))), d = 1/(-127/max),
 * bsums per 16. Fills the same arrays as cs_q8g. */
static void own_quant_q8g(int kind, const float *x, int64_t n, const cs_q8g *q) {
    if (kind == CS_ACT_Q8_K) {
        for (int64_t b = 0; b < n / 256; b++) {
            const float *v = x + 256 * b;
            float amax = 0.0f, mx = 0.0f;
            for (int i = 0; i < 256; i++) if (fabsf(v[i]) > amax) { amax = fabsf(v[i]); mx = v[i]; }
            const float is = amax > 0.0f ? -127.0f / mx : 0.0f;
            for (int i = 0; i < 256; i++) { const float r = nearbyintf(is * v[i]); q->qs[256 * b + i] = (int8_t)(r > 127.0f ? 127.0f : r); }
            for (int j = 0; j < 16; j++) {
                int s = 0;
                for (int i = 0; i < 16; i++) s += q->qs[256 * b + 16 * j + i];
                q->bsums[16 * b + j] = (int16_t)s;
            }
            q->d[b] = amax > 0.0f ? 1.0f / is : 0.0f;
        }
        return;
    }
    for (int64_t b = 0; b < n / 32; b++) {
        float amax = 0.0f;
        for (int i = 0; i < 32; i++) amax = fmaxf(amax, fabsf(x[32 * b + i]));
        const float d = amax / 127.0f;
#if defined(__aarch64__)
        const float id = d > 0.0f ? 1.0f / d : 0.0f;
#else
        const float id = amax > 0.0f ? 127.0f / amax : 0.0f;
#endif
        int s = 0;
        for (int i = 0; i < 32; i++) { q->qs[32 * b + i] = (int8_t)nearbyintf(x[32 * b + i] * id); s += q->qs[32 * b + i]; }
        q->d[b] = (float)own_round_half(d);
        q->s[b] = (float)own_round_half(d * (float)s);
        q->bsums[b] = (int16_t)s;
    }
}
static int q8g_equal(int kind, const cs_q8g *a, const cs_q8g *b, int64_t n) {
    const int64_t nd = kind == CS_ACT_Q8_K ? n / 256 : n / 32, nbs = kind == CS_ACT_Q8_K ? n / 16 : n / 32;
    if (memcmp(a->qs, b->qs, (size_t)n) || memcmp(a->d, b->d, sizeof(float) * (size_t)nd) ||
        memcmp(a->bsums, b->bsums, sizeof(int16_t) * (size_t)nbs))
        return 0;
    return kind != CS_ACT_Q8_1 || memcmp(a->s, b->s, sizeof(float) * (size_t)nd) == 0;
}

#ifdef CHESS_TEST_WITH_GGML
/* q as ggml's own block_q8_0 / block_q8_1 / block_q8_K bytes (34 / 36 / 292 per block) */
static uint8_t *q8g_to_ggml(int kind, const cs_q8g *q, int64_t n) {
    const size_t S = kind == CS_ACT_Q8_0 ? 34 : kind == CS_ACT_Q8_1 ? 36 : 292;
    const int64_t B = kind == CS_ACT_Q8_K ? 256 : 32;
    uint8_t *out = calloc((size_t)(n / B) * S, 1);
    for (int64_t b = 0; b < n / B; b++) {
        uint8_t *o = out + (size_t)b * S;
        if (kind == CS_ACT_Q8_K) {
            memcpy(o, &q->d[b], 4);
            memcpy(o + 4, q->qs + 256 * b, 256);
            memcpy(o + 260, q->bsums + 16 * b, 32);
        } else {
            const ggml_fp16_t d = ggml_fp32_to_fp16(q->d[b]), s = ggml_fp32_to_fp16(q->s[b]);
            memcpy(o, &d, 2);
            if (kind == CS_ACT_Q8_1) memcpy(o + 2, &s, 2);
            memcpy(o + (kind == CS_ACT_Q8_1 ? 4 : 2), q->qs + 32 * b, 32);
        }
    }
    return out;
}
/* ggml-cpu's from_float for the vec_dot type of t, parsed back into a cs_q8g */
static void ggml_quant_q8g(chess_type t, const float *x, int64_t n, const cs_q8g *q) {
    const int kind = act_kind(t);
    const struct ggml_type_traits_cpu *tc = ggml_get_type_traits_cpu((enum ggml_type)t);
    const size_t S = kind == CS_ACT_Q8_0 ? 34 : kind == CS_ACT_Q8_1 ? 36 : 292;
    const int64_t B = kind == CS_ACT_Q8_K ? 256 : 32;
    uint8_t *blk = calloc((size_t)(n / B) * S, 1);
    ggml_get_type_traits_cpu(tc->vec_dot_type)->from_float(x, blk, n);
    for (int64_t b = 0; b < n / B; b++) {
        const uint8_t *o = blk + (size_t)b * S;
        if (kind == CS_ACT_Q8_K) {
            memcpy(&q->d[b], o, 4);
            memcpy(q->qs + 256 * b, o + 4, 256);
            memcpy(q->bsums + 16 * b, o + 260, 32);
        } else {
            q->d[b] = (float)half_to_double(rd16(o));
            q->s[b] = kind == CS_ACT_Q8_1 ? (float)half_to_double(rd16(o + 2)) : 0.0f;
            memcpy(q->qs + 32 * b, o + (kind == CS_ACT_Q8_1 ? 4 : 2), 32);
            int s = 0;
            for (int i = 0; i < 32; i++) s += q->qs[32 * b + i];
            q->bsums[b] = (int16_t)s;
        }
    }
    free(blk);
}
#endif

/* ggml's dot of one row with activations q, in float64 from this file's reading of the
 * blocks and exact integer sums (the activation sums of sub-blocks from q->qs, not from
 * its bsums). *mag: the sum of the magnitudes of its element products, scaled (|d_w d_x
 * sc_j| (|w - off| + off) |q|, |dmin_w d_x m_j q|, |m_w s_x|), which bounds every partial
 * sum whatever the order or lane split (ggml's own SIMD sums lanes of 4-8 products);
 * *nterms: the float terms of the arithmetic (the bound). */
static double own_dot_q(chess_type t, const uint8_t *row, int64_t n, const cs_q8g *q, double *mag, int *nterms) {
    double y = 0.0, M = 0.0;
    int nt = 0;
    const size_t S = bbytes(t);
    for (int64_t b = 0; b < n / blck(t); b++) {
        const uint8_t *p = row + (size_t)b * S;
        const int8_t *x = q->qs + b * blck(t);
        if (t == CHESS_TYPE_Q5_0 || t == CHESS_TYPE_Q5_1) {
            const int q51 = t == CHESS_TYPE_Q5_1;
            int64_t s = 0, a = 0;
            for (int i = 0; i < 32; i++) {
                const int v = own_q5_value(p + (q51 ? 4 : 2), p + (q51 ? 8 : 6), i) - (q51 ? 0 : 16);
                s += (int64_t)v * x[i];
                a += (int64_t)(abs(v) + (q51 ? 0 : 16)) * abs(x[i]);
            }
            const double dd = half_to_double(rd16(p)) * (double)q->d[b];
            const double t2 = q51 ? half_to_double(rd16(p + 2)) * (double)q->s[b] : 0.0;
            y += dd * (double)s + t2;
            M += fabs(dd) * (double)a + fabs(t2);
            nt += q51 ? 2 : 1;
        } else if (t == CHESS_TYPE_Q6_K) {
            const double dd = half_to_double(rd16(p + 208)) * (double)q->d[b];
            for (int j = 0; j < 16; j++) {
                int64_t s = 0, a = 0;
                for (int i = 16 * j; i < 16 * j + 16; i++) {
                    const int v = own_q6k_value(p, i) - 32;
                    s += (int64_t)v * x[i];
                    a += (int64_t)(abs(v) + 32) * abs(x[i]);
                }
                y += dd * (int8_t)p[192 + j] * (double)s;
                M += fabs(dd * (int8_t)p[192 + j]) * (double)a;
            }
            nt += 1;
        } else {
            const double dd = half_to_double(rd16(p)) * (double)q->d[b], dm = half_to_double(rd16(p + 2)) * (double)q->d[b];
            for (int j = 0; j < 8; j++) {
                int sc, m;
                own_k_scale_min(p + 4, j, &sc, &m);
                int64_t s = 0, sx = 0, a = 0, ax = 0;
                for (int i = 32 * j; i < 32 * j + 32; i++) {
                    const int v = t == CHESS_TYPE_Q4_K ? own_q4k_value(p, i) : own_q5k_value(p, i);
                    s += (int64_t)v * x[i];
                    sx += x[i];
                    a += (int64_t)v * abs(x[i]);
                    ax += abs(x[i]);
                }
                y += dd * sc * (double)s - dm * m * (double)sx;
                M += fabs(dd) * sc * (double)a + fabs(dm) * m * (double)ax;
            }
            nt += 2;
        }
    }
    *mag = M;
    *nterms = nt;
    return y;
}

/* Float-summation noise allowed between two evaluations of the same integers: every float
 * step rounds by at most 2^-24 of a value bounded by mag, a sum of k terms takes k steps
 * (plus a few for lanes and the gate): |error| <= (nterms + 16) * 2^-24 * mag (times |g|). */
static double out_quant_bound(double mag, int nterms) { return (double)(nterms + 16) * ldexp(1.0, -24) * mag; }

static void test_out_quant(void) {
#ifdef CHESS_TEST_WITH_GGML
    ggml_cpu_init();
#endif
    /* 1. the activation quantizer: the library's = this file's statement = ggml-cpu's from_float */
    int64_t qblocks = 0;
    /* Q5_0, Q5_1, Q4_K through cs_quant_q8g_ref; Q8_0, Q4_0, Q4_1 through the reference's
     * quant_x8 (cs_q8x: its sum compared as the block's bsum) */
    for (int ti = 0; ti < 6; ti++) {
        static const chess_type qt[6] = { CHESS_TYPE_Q5_0, CHESS_TYPE_Q5_1, CHESS_TYPE_Q4_K,
                                          CHESS_TYPE_Q8_0, CHESS_TYPE_Q4_0, CHESS_TYPE_Q4_1 };
        const chess_type t = qt[ti];
        const int kind = act_kind(t);
        const int64_t B = kind == CS_ACT_Q8_K ? 256 : 32;
        for (int c = 0; c < 40; c++) {
            const int64_t nb = c < 6 ? c + 1 : rnd_int(1, kind == CS_ACT_Q8_K ? 20 : 160), n = B * nb;
            float *x = malloc(sizeof(float) * (size_t)n);
            const float scale = (float)ldexp(1.0, (int)rnd_int(-20, 20));
            for (int64_t i = 0; i < n; i++) x[i] = scale * rnd_normal();
            for (int64_t b = 0; b < nb; b++) {
                float *v = x + B * b;
                const int k = (int)rnd_int(0, 5);
                if (k == 0) for (int i = 0; i < B; i++) v[i] = 0.0f;                           /* d = 0 */
                if (k == 1) {                                                                   /* exact .5 ties */
                    const float e = (float)ldexp(1.0, (int)rnd_int(-10, 10));
                    for (int i = 0; i < B; i++) v[i] = e * ((float)rnd_int(-126, 125) + 0.5f);
                    v[rnd_int(0, B - 1)] = (rnd_u64() & 1 ? 127.0f : -127.0f) * e;
                }
                if (k == 2) { const int64_t i0 = rnd_int(0, B - 1), i1 = rnd_int(0, B - 1);  /* +-max both present */
                              v[i0] = 3.0f * scale; v[i1] = -3.0f * scale; }
                if (k == 3) for (int i = 0; i < B; i++) if (rnd_u64() & 1) v[i] = 0.0f;
            }
            cs_q8g a = q8g_alloc(n), o = q8g_alloc(n);
            if (ti < 3) {
                cs_quant_q8g_ref(kind, x, &a, n);
            } else {
                int32_t *sums = malloc(sizeof(int32_t) * (size_t)(n / 32));
                const cs_q8x x8 = { a.qs, a.d, sums, a.s };
                cs_isa_table_of(CHESS_ISA_REF)->quant_x8(x, &x8, n);
                for (int64_t b = 0; b < n / 32; b++) a.bsums[b] = (int16_t)sums[b];
                free(sums);
            }
            own_quant_q8g(kind, x, n, &o);
            CHECK(q8g_equal(kind, &a, &o, n), "quantizer %s differs from this file's statement of ggml's (n=%lld)", act_name(kind), (long long)n);
#ifdef CHESS_TEST_WITH_GGML
            cs_q8g g = q8g_alloc(n);
            ggml_quant_q8g(t, x, n, &g);
#if defined(__x86_64__) || defined(__i386__) || defined(__aarch64__)
            CHECK(q8g_equal(kind, &a, &g, n), "quantizer %s differs from ggml-cpu's from_float (n=%lld)", act_name(kind), (long long)n);
#else
            /* other platforms: ggml's generic Q8_0/Q8_1 code rounds .5 ties away from zero */
            int64_t off = 0, far = 0;
            for (int64_t i = 0; i < n; i++) { off += a.qs[i] != g.qs[i]; far += abs(a.qs[i] - g.qs[i]) > 1; }
            CHECK(kind == CS_ACT_Q8_K ? q8g_equal(kind, &a, &g, n) : (far == 0 && off * 1000 <= n && !memcmp(a.d, g.d, sizeof(float) * (size_t)(n / 32))),
                  "quantizer %s differs from ggml-cpu's from_float (n=%lld, %lld bytes)", act_name(kind), (long long)n, (long long)off);
#endif
            q8g_free(&g);
#endif
            q8g_free(&a); q8g_free(&o); free(x);
            qblocks += nb;
        }
    }
    printf("  activation quantizers (q8_0, q8_1, q8_K; quant_x8 for q8_0/q4_0/q4_1) equal to this file's statement%s on %lld blocks\n",
#ifdef CHESS_TEST_WITH_GGML
           " and to ggml-cpu's from_float",
#else
           "",
#endif
           (long long)qblocks);

    /* 2. the reference's to_float of the new types equals this file's dequantization (and ggml's) */
    for (size_t ti = 0; ti < sizeof k_out_types / sizeof k_out_types[0]; ti++) {
        const chess_type t = k_out_types[ti];
        int64_t bad = 0, bad_ggml = 0;
        for (int c = 0; c < 10; c++) {
            const int64_t n = blck(t) * rnd_int(1, 6);
            uint8_t *w = make_weights(t, n, 1, row_bytes(t, n));
            float *f = malloc(sizeof(float) * (size_t)n);
            double *e = malloc(sizeof(double) * (size_t)n);
            cs_isa_table_of(CHESS_ISA_REF)->k[cs_index(t)].to_float(w, f, n);
            own_dequant_out(t, w, e, n);
            for (int64_t i = 0; i < n; i++) bad += fabs((double)f[i] - e[i]) > ldexp(fabs(e[i]), -23) + 1e-30; /* one float rounding */
#ifdef CHESS_TEST_WITH_GGML
            float *g = malloc(sizeof(float) * (size_t)n);
            ggml_get_type_traits((enum ggml_type)t)->to_float(w, g, n);
            bad_ggml += memcmp(f, g, sizeof(float) * (size_t)n) != 0;
            free(g);
#endif
            free(w); free(f); free(e);
        }
        CHECK(bad == 0, "ref to_float %s: %lld elements differ from this file's dequantization", type_name(t), (long long)bad);
        CHECK(bad_ggml == 0, "ref to_float %s differs from ggml's to_float in %lld rows", type_name(t), (long long)bad_ggml);
    }

    /* 3. the products, every ISA: against this file's float64 model of ggml's integers (and the
     *    model against ggml's own vec_dot on the same row and the same activations) */
    const double sparsities[] = { 0.0, 0.5, 1.0, -1.0 };
    const char *expect = getenv("CHESS_TEST_EXPECT_ISA");
    int expect_runs = 0;
    double worst = 0.0, worst_ggml = 0.0;
    (void)worst_ggml; /* without ggml: unused */
    for (int isa = 0; isa < CHESS_ISA_COUNT; isa++) {
        if (!chess_isa_available((chess_isa)isa)) { printf("  isa %s: not available, skipped\n", chess_isa_name((chess_isa)isa)); continue; }
        for (size_t ti = 0; ti < sizeof k_out_types / sizeof k_out_types[0]; ti++) {
            const chess_type t = k_out_types[ti];
            const int kind = act_kind(t);
            double worst_t = 0.0;
            int cases = 0;
            for (int c = 0; c < 24; c++) {
                /* n_in: 1..8 blocks, odd counts, and Llama's 4096 (K: 16 super-blocks) */
                const int64_t nblk = c < 3 ? c + 1 : c % 8 == 7 ? 4096 / blck(t) : rnd_int(1, blck(t) == 256 ? 9 : 40);
                const int64_t ne0 = blck(t) * nblk, ne1 = c % 8 == 7 ? rnd_int(40, 70) : rnd_int(1, 130);
                const int64_t nt = c % 5 == 4 ? rnd_int(5, 10) : 1 + c % 4;   /* 1..4 tokens; per-token batches up to 10 */
                double s = sparsities[c % 4];
                if (s < 0) s = rnd_unit();
                const int tau_mode = (int)rnd_int(0, 2);
                problem p = make_problem(1, t, ne0, ne1, nt, s, tau_mode);
                if (c % 6 == 5) /* an all-zero activation block: scale 0 */
                    for (int64_t tk = 0; tk < nt; tk++) memset((char *)p.x + (size_t)tk * p.x_nb1, 0, sizeof(float) * (size_t)blck(t));
                const int nth1 = (int)rnd_int(1, 4), nth2 = (int)rnd_int(1, 4);
                chess_set_isa(CHESS_ISA_REF);
                CHECK(run(1, &p, 1) == CHESS_OK, "ref %s run", type_name(t));
                float *yr = ycopy(&p, 1);
                chess_set_isa((chess_isa)isa);
                CHECK(run(1, &p, nth1) == CHESS_OK, "%s %s run", chess_isa_name((chess_isa)isa), type_name(t));
                float *ya = ycopy(&p, 1);
                CHECK(run(1, &p, nth2) == CHESS_OK, "%s %s run 2", chess_isa_name((chess_isa)isa), type_name(t));
                float *yb = ycopy(&p, 1);
                CHECK(memcmp(ya, yb, sizeof(float) * (size_t)(ne1 * nt)) == 0, "%s %s: result depends on nth (%d vs %d)",
                      chess_isa_name((chess_isa)isa), type_name(t), nth1, nth2);
                int64_t bad = 0, bad_ggml = 0, bad_ref = 0, nonzero_dead = 0;
                cs_q8g q = q8g_alloc(ne0);
                for (int64_t tk = 0; tk < nt; tk++) {
                    const float *x = (const float *)((const char *)p.x + (size_t)tk * p.x_nb1);
                    const float *g = (const float *)((const char *)p.g + (size_t)tk * p.g_nb1);
                    own_quant_q8g(kind, x, ne0, &q); /* = the library's and ggml's (part 1) */
#ifdef CHESS_TEST_WITH_GGML
                    uint8_t *qb = q8g_to_ggml(kind, &q, ne0);
                    ggml_vec_dot_t vec_dot = ggml_get_type_traits_cpu((enum ggml_type)t)->vec_dot;
#endif
                    for (int64_t i = 0; i < ne1; i++) {
                        const float y = ya[tk * ne1 + i];
                        if (!keep(&p, g[i], i)) { nonzero_dead += y != 0.0f; continue; }
                        double mag;
                        int nterms;
                        const double e = (double)g[i] * own_dot_q(t, p.w + (size_t)i * p.nb1, ne0, &q, &mag, &nterms);
                        const double bound = fabs((double)g[i]) * out_quant_bound(mag, nterms) + 1e-30;
                        const double r = fabs((double)y - e) / bound;
                        if (!(r <= 1.0)) {
                            if (bad++ == 0)
                                fprintf(stderr, "  %s %s row %lld token %lld: %.9g, model %.9g, bound %.3g\n", chess_isa_name((chess_isa)isa),
                                        type_name(t), (long long)i, (long long)tk, (double)y, e, bound);
                        } else if (r > worst_t) worst_t = r;
                        bad_ref += !(fabs((double)y - (double)yr[tk * ne1 + i]) <= 2.0 * bound); /* ISA vs the reference */
#ifdef CHESS_TEST_WITH_GGML
                        float d = 0.0f;
                        vec_dot((int)ne0, &d, 0, p.w + (size_t)i * p.nb1, 0, qb, 0, 1);
                        const double rg = fabs((double)(g[i] * d) - e) / bound;
                        if (!(rg <= 1.0) && bad_ggml++ == 0)
                            fprintf(stderr, "  ggml %s row %lld: %.9g (dot %.9g), model %.9g, bound %.3g, ours %.9g\n", type_name(t), (long long)i,
                                    (double)(g[i] * d), (double)d, e, bound, (double)y);
                        else if (rg > worst_ggml) worst_ggml = rg;
#endif
                    }
#ifdef CHESS_TEST_WITH_GGML
                    free(qb);
#endif
                }
                CHECK(bad == 0, "%s %s out_gated ne0=%lld ne1=%lld nt=%lld s=%.2f tau=%d nth=%d: %lld outputs off the model of ggml's dot",
                      chess_isa_name((chess_isa)isa), type_name(t), (long long)ne0, (long long)ne1, (long long)nt, s, tau_mode, nth1, (long long)bad);
                CHECK(bad_ggml == 0, "%s: ggml's vec_dot differs from this file's model in %lld outputs (ne0=%lld)", type_name(t),
                      (long long)bad_ggml, (long long)ne0);
                CHECK(bad_ref == 0, "%s %s: %lld outputs off the reference's by more than twice the bound", chess_isa_name((chess_isa)isa),
                      type_name(t), (long long)bad_ref);
                CHECK(nonzero_dead == 0, "%s %s: %lld dead gate rows not zero", chess_isa_name((chess_isa)isa), type_name(t), (long long)nonzero_dead);
                CHECK(!has_nan(ya, ne1 * nt), "%s %s: NaN/inf in output", chess_isa_name((chess_isa)isa), type_name(t));
                q8g_free(&q);
                free(ya); free(yb); free(yr);
                free_problem(&p);
                cases++;
            }
            if (worst_t > worst) worst = worst_t;
            printf("  %-10s %-5s out_gated vs ggml's integers: %d cases, worst |error| / bound %.3g\n", chess_isa_name((chess_isa)isa),
                   type_name(t), cases, worst_t);
            if (expect && !strcmp(chess_isa_name((chess_isa)isa), expect) && cases == 24) expect_runs++;
        }
    }
    chess_set_isa(g_default_isa);
#ifdef CHESS_TEST_WITH_GGML
    printf("  ggml's vec_dot on the same rows and activations: worst |error| / bound %.3g\n", worst_ggml);
#endif
    /* avx2vnni is avx2 with one instruction per integer dot step, and the two AVX-512 tables
     * share these kernels: equal bit for bit */
    const chess_isa pairs[2][2] = { { CHESS_ISA_AVX2, CHESS_ISA_AVX2_VNNI }, { CHESS_ISA_AVX512, CHESS_ISA_AVX512_VBMI } };
    for (int pi = 0; pi < 2; pi++) {
        const cs_isa_table *A = cs_isa_table_of(pairs[pi][0]), *V = cs_isa_table_of(pairs[pi][1]);
        if (!A || !V || !chess_isa_available(pairs[pi][0]) || !chess_isa_available(pairs[pi][1])) continue;
        int64_t dots = 0;
        for (size_t ti = 0; ti < sizeof k_out_types / sizeof k_out_types[0]; ti++) {
            const chess_type t = k_out_types[ti];
            for (int c = 0; c < 8; c++) {
                const int64_t n = blck(t) * rnd_int(1, blck(t) == 256 ? 16 : 128), nrows = rnd_int(1, 40);
                const size_t nb1 = row_bytes(t, n) + (size_t)(c % 3) * bbytes(t);
                uint8_t *w = make_weights(t, n, nrows, nb1);
                int64_t nr = 0;
                int32_t *rows = random_rows(nrows, c % 4 == 0 ? 1.0 : rnd_unit(), &nr);
                float *x = random_activations(n, c % 5 == 2);
                cs_q8g q = q8g_alloc(n);
                cs_quant_q8g_ref(act_kind(t), x, &q, n);
                float *d1 = calloc((size_t)nrows, sizeof(float)), *d2 = calloc((size_t)nrows, sizeof(float));
                A->k[cs_index(t)].dot_rows(d1, w, nb1, rows, nr, &q, n);
                V->k[cs_index(t)].dot_rows(d2, w, nb1, rows, nr, &q, n);
                CHECK(memcmp(d1, d2, sizeof(float) * (size_t)nrows) == 0, "%s dot_rows %s differs from %s (n=%lld, %lld rows)",
                      chess_isa_name(pairs[pi][1]), type_name(t), chess_isa_name(pairs[pi][0]), (long long)n, (long long)nr);
                dots += nr;
                q8g_free(&q); free(x); free(w); free(rows); free(d1); free(d2);
            }
        }
        printf("  %s dot_rows (5 output-sparse types) identical to %s on %lld row dots\n", chess_isa_name(pairs[pi][1]),
               chess_isa_name(pairs[pi][0]), (long long)dots);
    }
    printf("  bound: (float terms + 16) * 2^-24 * sum |scaled element products| * |g|; worst over all ISAs %.3g\n", worst);
    if (expect && *expect) {
        const int want = (int)(sizeof k_out_types / sizeof k_out_types[0]);
        CHECK(expect_runs == want, "expected ISA %s ran %d of %d output-sparse Q5/K types", expect, expect_runs, want);
    }
}

/* ---------------- white-box: quantizer and to_float per ISA ---------------- */

/* The arithmetic the integer input-sparse kernels promise (chess_avx512.c: Q4_0, Q4_1,
 * Q8_0), written here from that description in scalar C: rows in groups of 16 in the
 * order of the active list; per (group, block b) c_j = x_j * d_jb, amax = max |c_j|,
 * a_j = round_even(c_j * (32767 / amax)) (0 when amax = 0), exact int32 sums of
 * a_j * q_j (Q4: the nibble, 0..15; Q8_0: the int8), y += float(sum) * (amax *
 * (1/32767)) fused; offsets per block, fused, in row order (Q4_0: -8 c_j, Q4_1:
 * x_j m_jb), added after the last group. */
static void model_in_accum_int(chess_type t, float *y, int64_t n, const uint8_t *w, size_t nb1, const int32_t *idx,
                               const float *xv, int64_t nact) {
    const int64_t nb = n / 32;
    const size_t S = bbytes(t);
    const int q4_1 = t == CHESS_TYPE_Q4_1, q8 = t == CHESS_TYPE_Q8_0;
    float *mb = calloc((size_t)nb + 1, sizeof(float));
    memset(y, 0, sizeof(float) * (size_t)n);
    for (int64_t k = 0; k < nact; k += 16) {
        const int64_t g = nact - k < 16 ? nact - k : 16;
        for (int64_t b = 0; b < nb; b++) {
            float c[16], amax = 0.0f;
            for (int64_t j = 0; j < g; j++) {
                const uint8_t *blk = w + (size_t)idx[k + j] * nb1 + (size_t)b * S;
                c[j] = xv[k + j] * (float)half_to_double(rd16(blk));
                if (q4_1) mb[b] = fmaf(xv[k + j], (float)half_to_double(rd16(blk + 2)), mb[b]);
                else if (!q8) mb[b] = fmaf(c[j], -8.0f, mb[b]);
                amax = fmaxf(amax, fabsf(c[j]));
            }
            const float inv = amax > 0.0f ? 32767.0f / amax : 0.0f;
            const float back = amax * (1.0f / 32767.0f);
            int32_t sum[32] = { 0 };
            for (int64_t j = 0; j < g; j++) {
                const uint8_t *blk = w + (size_t)idx[k + j] * nb1 + (size_t)b * S;
                const float scaled = c[j] * inv;
                const int32_t a = (int32_t)nearbyintf(scaled);
                for (int i = 0; i < 32; i++) {
                    const int32_t q = q8 ? (int32_t)(int8_t)blk[2 + i]
                                         : (int32_t)((blk[(q4_1 ? 4 : 2) + (i & 15)] >> (i < 16 ? 0 : 4)) & 15);
                    sum[i] += a * q;
                }
            }
            for (int i = 0; i < 32; i++) y[b * 32 + i] = fmaf((float)sum[i], back, y[b * 32 + i]);
        }
    }
    if (!q8 && nact > 0)
        for (int64_t i = 0; i < n; i++) y[i] += mb[i / 32];
    free(mb);
}

/* Rows 0..nrows-1, each kept with probability keep_p, in order; *nr = how many. */
static int32_t *random_rows(int64_t nrows, double keep_p, int64_t *nr) {
    int32_t *rows = malloc(sizeof(int32_t) * (size_t)nrows);
    *nr = 0;
    for (int64_t j = 0; j < nrows; j++)
        if (rnd_unit() < keep_p) rows[(*nr)++] = (int32_t)j;
    return rows;
}
/* n activations ~ N(0, 1); with zero_halves the first 16 of every 32 are 0 (all-zero
 * halves of the 8-bit blocks). */
static float *random_activations(int64_t n, int zero_halves) {
    float *x = malloc(sizeof(float) * (size_t)n);
    for (int64_t i = 0; i < n; i++) x[i] = zero_halves && i % 32 < 16 ? 0.0f : rnd_normal();
    return x;
}

static void test_primitives(void) {
    const cs_isa_table *R = cs_isa_table_of(CHESS_ISA_REF);
    CHECK(R != NULL && cs_isa_table_of((chess_isa)CHESS_ISA_COUNT) == NULL, "table lookup");
    for (int isa = 1; isa < CHESS_ISA_COUNT; isa++) {
        const cs_isa_table *T = cs_isa_table_of((chess_isa)isa);
        if (!T || !chess_isa_available((chess_isa)isa)) { printf("  isa %s: not available, skipped\n", chess_isa_name((chess_isa)isa)); continue; }
        /* quantizer: identical scales, bytes and sums */
        int64_t blocks = 0;
        for (int c = 0; c < 40; c++) {
            const int64_t nb = c < 8 ? c + 1 : rnd_int(1, 80), n = 32 * nb;
            float *x = malloc(sizeof(float) * (size_t)n);
            const float scale = (float)ldexp(1.0, (int)rnd_int(-20, 20));
            for (int64_t i = 0; i < n; i++) x[i] = scale * rnd_normal();
            for (int64_t b = 0; b < nb; b++) {
                const int kind = (int)rnd_int(0, 5);
                float *v = x + 32 * b;
                if (kind == 0) for (int i = 0; i < 32; i++) v[i] = 0.0f;                  /* d = 0 */
                if (kind == 1) {                                                          /* ties: x*id = k + 0.5 exactly */
                    const float e = (float)ldexp(1.0, (int)rnd_int(-10, 10));
                    for (int i = 0; i < 32; i++) v[i] = e * ((float)rnd_int(-126, 125) + 0.5f);
                    v[rnd_int(0, 31)] = (rnd_u64() & 1 ? 127.0f : -127.0f) * e;
                }
                if (kind == 2) for (int i = 0; i < 32; i++) if (rnd_u64() & 1) v[i] = 0.0f; /* sparse block */
            }
            int8_t *q1 = malloc((size_t)n), *q2 = malloc((size_t)n);
            float *d1 = malloc(sizeof(float) * (size_t)nb), *d2 = malloc(sizeof(float) * (size_t)nb);
            int32_t *s1 = malloc(sizeof(int32_t) * (size_t)nb), *s2 = malloc(sizeof(int32_t) * (size_t)nb);
            float *m1 = malloc(sizeof(float) * (size_t)nb), *m2 = malloc(sizeof(float) * (size_t)nb);
            const cs_q8x a = { q1, d1, s1, m1 }, b = { q2, d2, s2, m2 };
            R->quant_x8(x, &a, n);
            T->quant_x8(x, &b, n);
            CHECK(memcmp(q1, q2, (size_t)n) == 0 && memcmp(d1, d2, sizeof(float) * (size_t)nb) == 0 &&
                      memcmp(s1, s2, sizeof(int32_t) * (size_t)nb) == 0 && memcmp(m1, m2, sizeof(float) * (size_t)nb) == 0,
                  "%s quant_x8 differs from the reference (nb=%lld)", chess_isa_name((chess_isa)isa), (long long)nb);
            blocks += nb;
            free(x); free(q1); free(q2); free(d1); free(d2); free(s1); free(s2); free(m1); free(m2);
        }
        /* to_float of every type */
        for (size_t ti = 0; ti < sizeof k_types / sizeof k_types[0]; ti++) {
            const chess_type t = k_types[ti];
            const int ix = cs_index(t);
            int64_t worst = 0;
            for (int c = 0; c < 20; c++) {
                const int64_t n = blck(t) == 1 ? rnd_int(1, 300) : 32 * rnd_int(1, 12);
                uint8_t *w = make_weights(t, n, 1, row_bytes(t, n));
                float *f1 = malloc(sizeof(float) * (size_t)n), *f2 = malloc(sizeof(float) * (size_t)n);
                R->k[ix].to_float(w, f1, n);
                T->k[ix].to_float(w, f2, n);
                for (int64_t i = 0; i < n; i++) {
                    if (f1[i] == f2[i] || (isnan(f1[i]) && isnan(f2[i]))) continue;
                    /* Q4_1: d*q + m rounded once (fma) or twice: |diff| <= 2^-24 (2|d*q| + |r|) */
                    const double m = t == CHESS_TYPE_Q4_1 ? fabs(half_to_double(rd16(w + 20 * (size_t)(i / 32) + 2))) : 0.0;
                    const double tol = t == CHESS_TYPE_Q4_1 ? 1.8e-7 * (fabs((double)f1[i]) + m) : 0.0;
                    if (fabs((double)f1[i] - (double)f2[i]) > tol) worst++;
                }
                free(w); free(f1); free(f2);
            }
            CHECK(worst == 0, "%s to_float %s: %lld elements differ from the reference", chess_isa_name((chess_isa)isa),
                  type_name(t), (long long)worst);
        }
        printf("  %-6s quant_x8 identical to ref on %lld blocks; to_float of 6 types matches\n",
               chess_isa_name((chess_isa)isa), (long long)blocks);
    }
    /* The integer input-sparse kernels (Q4_0, Q4_1, Q8_0 of avx512, avx512vbmi, avx2,
     * avx2vnni and neon) promise one arithmetic bit for bit (group tails, odd pairs, row tails of the
     * scale loads, padded rows included): each is compared with the scalar model above. */
    const chess_isa int_isas[] = { CHESS_ISA_AVX512, CHESS_ISA_AVX512_VBMI, CHESS_ISA_AVX2, CHESS_ISA_AVX2_VNNI, CHESS_ISA_NEON };
    const chess_type int_types[] = { CHESS_TYPE_Q4_0, CHESS_TYPE_Q4_1, CHESS_TYPE_Q8_0 };
    for (int pi = 0; pi < (int)(sizeof int_isas / sizeof int_isas[0]); pi++) {
        const cs_isa_table *V = cs_isa_table_of(int_isas[pi]);
        if (!V || !chess_isa_available(int_isas[pi])) continue;
        const char *vname = chess_isa_name(int_isas[pi]);
        int64_t rows_checked = 0;
        for (int ti = 0; ti < 3; ti++) {
            const chess_type t = int_types[ti];
            const int ix = cs_index(t);
            for (int c = 0; c < 24; c++) {
                const int64_t n = 32 * (c < 4 ? c + 1 : c < 6 ? CS_IN_CHUNK / 32 - 5 + c : rnd_int(1, CS_IN_CHUNK / 32)), nrows = rnd_int(1, 80); /* in_accum takes <= CS_IN_CHUNK columns */
                const size_t nb1 = row_bytes(t, n) + (size_t)(c % 3) * bbytes(t); /* padded rows too */
                uint8_t *w = make_weights(t, n, nrows, nb1);
                int32_t *idx = malloc(sizeof(int32_t) * (size_t)nrows);
                float *xv = malloc(sizeof(float) * (size_t)nrows);
                int64_t nact = 0;
                const double keep_p = c % 5 == 0 ? 1.0 : rnd_unit();
                for (int64_t j = 0; j < nrows; j++)
                    if (rnd_unit() < keep_p) { idx[nact] = (int32_t)j; xv[nact++] = (c % 7 == 3 && j % 2) ? 0.0f : rnd_normal(); }
                float *y1 = malloc(sizeof(float) * (size_t)n), *y2 = malloc(sizeof(float) * (size_t)n);
                model_in_accum_int(t, y1, n, w, nb1, idx, xv, nact);
                V->k[ix].in_accum(y2, n, w, nb1, idx, xv, nact);
                int64_t first = -1;
                for (int64_t i = 0; i < n && first < 0; i++)
                    if (memcmp(&y1[i], &y2[i], sizeof(float)) != 0) first = i;
                CHECK(first < 0, "%s in_accum %s differs from the integer model (n=%lld, %lld of %lld rows): y[%lld] = %.9g, model %.9g",
                      vname, type_name(t), (long long)n, (long long)nact, (long long)nrows, (long long)first,
                      first < 0 ? 0.0 : (double)y2[first], first < 0 ? 0.0 : (double)y1[first]);
                CHECK(!has_nan(y2, n), "%s in_accum %s: NaN/inf", vname, type_name(t));
                rows_checked += nact;
                free(w); free(idx); free(xv); free(y1); free(y2);
            }
        }
        printf("  %s integer in_accum (3 types) identical to the integer model on %lld active rows\n", vname, (long long)rows_checked);
    }
    /* gemm_rows (output-sparse prefill): avx2's and avx2vnni's 8-row panels promise
     * avx512's results bit for bit (exact integer block dots, the same float steps),
     * whatever the panel tails. */
    const cs_isa_table *A = cs_isa_table_of(CHESS_ISA_AVX512);
    const chess_isa gr_isas[] = { CHESS_ISA_AVX2, CHESS_ISA_AVX2_VNNI };
    for (int gi = 0; gi < 2; gi++) {
        if (!A || !chess_isa_available(CHESS_ISA_AVX512) || !chess_isa_available(gr_isas[gi])) continue;
        const cs_isa_table *V = cs_isa_table_of(gr_isas[gi]);
        const char *vname = chess_isa_name(gr_isas[gi]);
        const chess_type gt[] = { CHESS_TYPE_Q4_0, CHESS_TYPE_Q4_1, CHESS_TYPE_Q8_0 };
        int64_t dots = 0;
        for (int ti = 0; ti < 3; ti++) {
            const chess_type t = gt[ti];
            const int ix = cs_index(t);
            CHECK(A->gemm_rows[ix] && V->gemm_rows[ix], "gemm_rows %s missing", type_name(t));
            if (!A->gemm_rows[ix] || !V->gemm_rows[ix]) continue;
            for (int c = 0; c < 12; c++) {
                const int64_t n = 32 * rnd_int(1, 48), nrows = rnd_int(1, 40), nt = rnd_int(1, 13);
                const size_t nb1 = row_bytes(t, n) + (size_t)(c % 3) * bbytes(t);
                uint8_t *w = make_weights(t, n, nrows, nb1);
                int64_t nr = 0;
                int32_t *rows = random_rows(nrows, c % 4 == 0 ? 1.0 : rnd_unit(), &nr);
                float *x = random_activations(n * nt, c % 5 == 2);
                cs_q8x *xq = malloc(sizeof(cs_q8x) * (size_t)nt);
                for (int64_t tk = 0; tk < nt; tk++) {
                    xq[tk].qs = malloc((size_t)n);
                    xq[tk].d = malloc(sizeof(float) * (size_t)(n / 32));
                    xq[tk].sum = malloc(sizeof(int32_t) * (size_t)(n / 32));
                    xq[tk].s = malloc(sizeof(float) * (size_t)(n / 32));
                    A->quant_x8(x + tk * n, &xq[tk], n);
                }
                uint8_t *pack = aligned_alloc(64, (CS_GEMM_ROWS_PACK(n) + 63) & ~(size_t)63);
                float *d1 = calloc((size_t)(nt * nr) + 1, sizeof(float)), *d2 = calloc((size_t)(nt * nr) + 1, sizeof(float));
                A->gemm_rows[ix](d1, w, nb1, rows, nr, xq, nt, n, pack);
                V->gemm_rows[ix](d2, w, nb1, rows, nr, xq, nt, n, pack);
                CHECK(memcmp(d1, d2, sizeof(float) * (size_t)(nt * nr)) == 0,
                      "%s gemm_rows %s differs from avx512 (n=%lld, %lld rows, %lld tokens)", vname, type_name(t),
                      (long long)n, (long long)nr, (long long)nt);
                CHECK(!has_nan(d2, nt * nr), "%s gemm_rows %s: NaN/inf", vname, type_name(t));
                dots += nt * nr;
                for (int64_t tk = 0; tk < nt; tk++) { free(xq[tk].qs); free(xq[tk].d); free(xq[tk].sum); free(xq[tk].s); }
                free(xq); free(x); free(w); free(rows); free(pack); free(d1); free(d2);
            }
        }
        printf("  %s gemm_rows (3 types) identical to avx512 on %lld row dots\n", vname, (long long)dots);
    }
    /* avx2vnni is avx2 with one instruction per integer dot step (exact int32 sums either
     * way): its output-sparse decode dots must equal avx2's bit for bit. */
    const cs_isa_table *B = cs_isa_table_of(CHESS_ISA_AVX2), *N = cs_isa_table_of(CHESS_ISA_AVX2_VNNI);
    if (B && N && chess_isa_available(CHESS_ISA_AVX2_VNNI)) {
        int64_t dots = 0;
        for (int ti = 0; ti < 3; ti++) {
            const chess_type t = int_types[ti];
            const int ix = cs_index(t);
            for (int c = 0; c < 16; c++) {
                const int64_t n = 32 * (c < 2 ? c + 1 : rnd_int(1, 160)), nrows = rnd_int(1, 40);
                const size_t nb1 = row_bytes(t, n) + (size_t)(c % 3) * bbytes(t);
                uint8_t *w = make_weights(t, n, nrows, nb1);
                int64_t nr = 0;
                int32_t *rows = random_rows(nrows, c % 4 == 0 ? 1.0 : rnd_unit(), &nr);
                float *x = random_activations(n, c % 5 == 2);
                cs_q8x xq = { malloc((size_t)n), malloc(sizeof(float) * (size_t)(n / 32)), malloc(sizeof(int32_t) * (size_t)(n / 32)),
                              malloc(sizeof(float) * (size_t)(n / 32)) };
                B->quant_x8(x, &xq, n);
                float *d1 = calloc((size_t)nrows, sizeof(float)), *d2 = calloc((size_t)nrows, sizeof(float)); /* y[rows[k]] */
                B->k[ix].dot_rows(d1, w, nb1, rows, nr, &xq, n);
                N->k[ix].dot_rows(d2, w, nb1, rows, nr, &xq, n);
                CHECK(memcmp(d1, d2, sizeof(float) * (size_t)nrows) == 0, "avx2vnni dot_rows %s differs from avx2 (n=%lld, %lld rows)",
                      type_name(t), (long long)n, (long long)nr);
                dots += nr;
                free(xq.qs); free(xq.d); free(xq.sum); free(xq.s); free(x); free(w); free(rows); free(d1); free(d2);
            }
        }
        printf("  avx2vnni dot_rows (3 types) identical to avx2 on %lld row dots\n", (long long)dots);
    }
}

/* CHESS_READ_CEILING=1 (set by ctest): one-token products write exact zeros everywhere
 * (and still count), prefill is unchanged (checked against a float64 product). With
 * CHESS_READ_CEILING_SPARSITY=s the one-token products drop a pseudo-random share s
 * of their channels whatever the activations (counters). */
static void test_read_ceiling(void) {
    const char *env = getenv("CHESS_READ_CEILING");
    CHECK(env && strcmp(env, "1") == 0, "run with CHESS_READ_CEILING=1");
    const char *rs = getenv("CHESS_READ_CEILING_SPARSITY");
    const double replay = rs && *rs ? atof(rs) : -1.0; /* < 0: kept channels follow the thresholds */
    for (int isa = 0; isa < CHESS_ISA_COUNT; isa++) {
        if (!chess_isa_available((chess_isa)isa)) continue;
        chess_set_isa((chess_isa)isa);
        for (size_t ti = 0; ti < sizeof k_types / sizeof k_types[0]; ti++) {
            const chess_type t = k_types[ti];
            for (int kind = 0; kind < 2; kind++) {
                int64_t ne0, ne1, nt;
                random_shape(t, kind, &ne0, &ne1, &nt, 0);
                /* decode: nothing dropped, so a computing kernel would give nonzero outputs */
                problem p = make_problem(kind, t, ne0, ne1, 1, 0.0, 1);
                const int32_t site = kind == 0 ? 7 : 8;
                uint64_t seen0 = 0, seen1 = 0, zeroed0 = 0, zeroed1 = 0;
                chess_counters_get(site, &seen0, &zeroed0);
                CHECK(run(kind, &p, (int)rnd_int(1, 4)) == CHESS_OK, "read-ceiling decode run");
                chess_counters_get(site, &seen1, &zeroed1);
                if (replay >= 0) {
                    /* the thresholds keep everything here: what is dropped is the replay's pseudo-random share */
                    const double frac = (double)(zeroed1 - zeroed0) / (double)ne1;
                    const double bound = 4.0 * sqrt(replay * (1.0 - replay) / (double)ne1) + 1.0 / (double)ne1;
                    CHECK(fabs(frac - replay) <= bound, "%s %s kind %d: replay dropped %.3f of %lld channels, expected %.3f",
                          chess_isa_name((chess_isa)isa), type_name(t), kind, frac, (long long)ne1, replay);
                } else {
                    CHECK(zeroed1 == zeroed0, "%s %s kind %d: nothing is below the thresholds, yet channels were dropped",
                          chess_isa_name((chess_isa)isa), type_name(t), kind);
                }
                const int64_t ny = kind == 0 ? ne0 : ne1;
                int64_t nonzero = 0;
                for (int64_t i = 0; i < ny; i++) nonzero += p.y[i] != 0.0f; /* NaN (unwritten) counts too */
                CHECK(nonzero == 0, "%s %s kind %d: read-ceiling decode wrote %lld nonzero outputs", chess_isa_name((chess_isa)isa),
                      type_name(t), kind, (long long)nonzero);
                CHECK(seen1 - seen0 == (uint64_t)ne1, "%s %s kind %d: counters saw %llu channels, expected %lld",
                      chess_isa_name((chess_isa)isa), type_name(t), kind, (unsigned long long)(seen1 - seen0), (long long)ne1);
                if (kind == 0) {
                    float *parts = malloc(sizeof(float) * (size_t)(2 * ne0));
                    for (int64_t i = 0; i < 2 * ne0; i++) parts[i] = NAN;
                    chess_spmv_in_args a = { p.type, p.w, p.ne0, p.ne1, p.nb1, p.x, p.x_nb1, parts, sizeof(float) * (size_t)ne0, 1, p.tau, p.n_tau, -1 };
                    for (int i = 0; i < 2; i++) CHECK(chess_spmv_in_parts(&a, 2, i, 2) == CHESS_OK, "read-ceiling parts run");
                    nonzero = 0;
                    for (int64_t i = 0; i < 2 * ne0; i++) nonzero += parts[i] != 0.0f;
                    CHECK(nonzero == 0, "%s %s: read-ceiling parts wrote %lld nonzero outputs", chess_isa_name((chess_isa)isa), type_name(t),
                          (long long)nonzero);
                    free(parts);
                }
                free_problem(&p);
                /* prefill (input-sparse): the real product */
                if (kind == 0) {
                    problem q = make_problem(0, t, ne0, ne1, 3, 0.5, 1);
                    CHECK(run(0, &q, 2) == CHESS_OK, "read-ceiling prefill run");
                    double *row = malloc(sizeof(double) * (size_t)ne0), *yr = calloc((size_t)(3 * ne0), sizeof(double));
                    for (int64_t j = 0; j < ne1; j++) {
                        own_dequant_row(t, q.w + (size_t)j * q.nb1, row, ne0);
                        for (int64_t tt = 0; tt < 3; tt++) {
                            const float xj = ((const float *)((const char *)q.x + (size_t)tt * q.x_nb1))[j];
                            if (keep(&q, xj, j))
                                for (int64_t i = 0; i < ne0; i++) yr[tt * ne0 + i] += (double)xj * row[i];
                        }
                    }
                    for (int64_t tt = 0; tt < 3; tt++) {
                        double nref;
                        const double err = norm_diff((const float *)((const char *)q.y + (size_t)tt * q.y_nb1), yr + tt * ne0, ne0, &nref);
                        CHECK(err <= 1e-3 * nref + 1e-30, "%s %s: read-ceiling mode changed prefill (rel err %.3g)",
                              chess_isa_name((chess_isa)isa), type_name(t), nref > 0 ? err / nref : err);
                    }
                    free(row); free(yr);
                    free_problem(&q);
                }
            }
        }
        /* the output-sparse-only types: one-token products read their rows and write zeros */
        for (size_t ti = 0; ti < sizeof k_out_types / sizeof k_out_types[0]; ti++) {
            const chess_type t = k_out_types[ti];
            problem p = make_problem(1, t, blck(t) * rnd_int(1, 5), rnd_int(1, 90), 1, 0.0, 1);
            uint64_t seen0 = 0, seen1 = 0, z0 = 0, z1 = 0;
            chess_counters_get(8, &seen0, &z0);
            CHECK(run(1, &p, (int)rnd_int(1, 4)) == CHESS_OK, "read-ceiling %s run", type_name(t));
            chess_counters_get(8, &seen1, &z1);
            int64_t nonzero = 0;
            for (int64_t i = 0; i < p.ne1; i++) nonzero += p.y[i] != 0.0f;
            CHECK(nonzero == 0 && seen1 - seen0 == (uint64_t)p.ne1, "%s %s: read-ceiling out_gated wrote %lld nonzero outputs",
                  chess_isa_name((chess_isa)isa), type_name(t), (long long)nonzero);
            free_problem(&p);
        }
        printf("  %-6s read ceiling: decode outputs 0 for 6 types x 2 products (+ parts) and 5 output-sparse-only types, prefill unchanged\n", chess_isa_name((chess_isa)isa));
    }
    chess_set_isa(g_default_isa);
}

static void test_isaenv(void) {
    const char *want = getenv("CHESS_KERNEL_ISA");
    CHECK(want && strcmp(chess_isa_name(chess_get_isa()), want) == 0, "CHESS_KERNEL_ISA=%s must select %s, got %s",
          want ? want : "(unset)", want ? want : "it", chess_isa_name(chess_get_isa()));
    printf("  CHESS_KERNEL_ISA=%s selected %s\n", want ? want : "(unset)", chess_isa_name(chess_get_isa()));
    for (int i = 0; i < CHESS_ISA_COUNT; i++)
        printf("  isa %-6s available=%d\n", chess_isa_name((chess_isa)i), chess_isa_available((chess_isa)i));
}

int main(int argc, char **argv) {
    const char *what = argc > 1 ? argv[1] : "all";
    const char *seed = getenv("CHESS_TEST_SEED");
    if (seed) g_rng = strtoull(seed, NULL, 0);
    printf("chess_sparse tests (%s), seed 0x%llx\n", what, (unsigned long long)g_rng);
    g_default_isa = chess_get_isa();
    const int all = strcmp(what, "all") == 0;
    if (all || !strcmp(what, "isaenv")) { if (!all) test_isaenv(); }
    if (!strcmp(what, "read_ceiling")) test_read_ceiling(); /* needs CHESS_READ_CEILING=1: not part of "all" */
    if (all || !strcmp(what, "badargs")) test_badargs();
    if (all || !strcmp(what, "threshold")) test_threshold();
    if (all || !strcmp(what, "reference")) test_reference();
    if (all || !strcmp(what, "primitives")) test_primitives();
    if (all || !strcmp(what, "outq")) test_out_quant();
    if (all || !strcmp(what, "conformance")) test_conformance();
    if (all || !strcmp(what, "parts")) test_parts();
    chess_thread_release();
    printf("%ld checks, %d failures\n", g_checks, g_failures);
    return g_failures ? 1 : 0;
}
