/* Public entry points: argument checks, ISA selection, per-thread work split,
 * scratch memory, counters. The per-type arithmetic lives in the per-ISA files
 * (chess_ref.c, chess_avx2.c, chess_avx512.c, chess_neon.c) behind cs_isa_table. */
#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#if defined(__aarch64__) && defined(__linux__)
#include <sys/auxv.h>
#endif

#include "chess_internal.h"
#include "chess_cb_internal.h"

/* ---------------- type traits ---------------- */

typedef struct {
    int index;       /* CS_* or -1 */
    int64_t blck;    /* elements per block (1 for float types) */
    size_t bbytes;   /* bytes per block */
    int quantized;   /* activations quantized for the dot (act != CS_ACT_F32) */
    int act;         /* CS_ACT_*: what the dot takes (float, cs_q8x, cs_q8g as Q8_0 / Q8_1 / Q8_K) */
    int in_ok;       /* the transposed input-sparse product (chess_spmv_in) takes it */
} cs_type_traits;

static cs_type_traits cs_traits(chess_type t) {
    switch (t) {
    case CHESS_TYPE_F32:  return (cs_type_traits){ CS_F32, 1, 4, 0, CS_ACT_F32, 1 };
    case CHESS_TYPE_F16:  return (cs_type_traits){ CS_F16, 1, 2, 0, CS_ACT_F32, 1 };
    case CHESS_TYPE_BF16: return (cs_type_traits){ CS_BF16, 1, 2, 0, CS_ACT_F32, 1 };
    case CHESS_TYPE_Q8_0: return (cs_type_traits){ CS_Q8_0, CS_QK, sizeof(cs_block_q8_0), 1, CS_ACT_Q8X, 1 };
    case CHESS_TYPE_Q4_0: return (cs_type_traits){ CS_Q4_0, CS_QK, sizeof(cs_block_q4_0), 1, CS_ACT_Q8X, 1 };
    case CHESS_TYPE_Q4_1: return (cs_type_traits){ CS_Q4_1, CS_QK, sizeof(cs_block_q4_1), 1, CS_ACT_Q8X, 1 };
    /* output-sparse product only: the transposed layout re-quantizes, the row layout keeps these */
    case CHESS_TYPE_Q5_0: return (cs_type_traits){ CS_Q5_0, CS_QK, sizeof(cs_block_q5_0), 1, CS_ACT_Q8_0, 0 };
    case CHESS_TYPE_Q5_1: return (cs_type_traits){ CS_Q5_1, CS_QK, sizeof(cs_block_q5_1), 1, CS_ACT_Q8_1, 0 };
    case CHESS_TYPE_Q4_K: return (cs_type_traits){ CS_Q4_K, CS_QK_K, sizeof(cs_block_q4_K), 1, CS_ACT_Q8_K, 0 };
    case CHESS_TYPE_Q5_K: return (cs_type_traits){ CS_Q5_K, CS_QK_K, sizeof(cs_block_q5_K), 1, CS_ACT_Q8_K, 0 };
    case CHESS_TYPE_Q6_K: return (cs_type_traits){ CS_Q6_K, CS_QK_K, sizeof(cs_block_q6_K), 1, CS_ACT_Q8_K, 0 };
    default: return (cs_type_traits){ -1, 0, 0, 0, CS_ACT_F32, 0 };
    }
}

int chess_type_supported(chess_type type) { return cs_traits(type).in_ok; }
int chess_out_gated_supported(chess_type type) { return cs_traits(type).index >= 0; }
int64_t chess_type_block_size(chess_type type) { return cs_traits(type).blck; }
size_t chess_type_block_bytes(chess_type type) { return cs_traits(type).bbytes; }

/* ---------------- ISA selection ---------------- */

static const cs_isa_table *cs_tables[CHESS_ISA_COUNT] = {
    &cs_table_ref,
#ifdef CHESS_HAVE_AVX2
    &cs_table_avx2,
#else
    NULL,
#endif
#ifdef CHESS_HAVE_AVX512
    &cs_table_avx512,
#else
    NULL,
#endif
#ifdef CHESS_HAVE_NEON
    &cs_table_neon,
#else
    NULL,
#endif
#ifdef CHESS_HAVE_AVX512
    &cs_table_avx512_vbmi,
#else
    NULL,
#endif
#ifdef CHESS_HAVE_AVX2
    &cs_table_avx2_vnni,
#else
    NULL,
#endif
};

const cs_isa_table *cs_isa_table_of(chess_isa isa) {
    return ((int)isa < 0 || isa >= CHESS_ISA_COUNT) ? NULL : cs_tables[isa];
}

static int cs_cpu_has(chess_isa isa) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_cpu_init();
    switch (isa) {
    case CHESS_ISA_REF: return 1;
    case CHESS_ISA_AVX2:
        return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c");
    case CHESS_ISA_AVX512:
        return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
               __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512vnni") &&
               __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c");
    case CHESS_ISA_AVX512_VBMI: return cs_cpu_has(CHESS_ISA_AVX512) && __builtin_cpu_supports("avx512vbmi");
    case CHESS_ISA_AVX2_VNNI: return cs_cpu_has(CHESS_ISA_AVX2) && __builtin_cpu_supports("avxvnni");
    default: return 0;
    }
#elif defined(__aarch64__)
    switch (isa) {
    case CHESS_ISA_REF: return 1;
    case CHESS_ISA_NEON: {
#if defined(__linux__)
        /* ASIMD is architectural on AArch64; SDOT is optional (ARMv8.2+). */
#ifndef HWCAP_ASIMD
#define HWCAP_ASIMD (1UL << 1)
#endif
#ifndef HWCAP_ASIMDDP
#define HWCAP_ASIMDDP (1UL << 20)
#endif
        const unsigned long hw = getauxval(AT_HWCAP);
#ifdef CHESS_NEON_DOTPROD
        return (hw & HWCAP_ASIMD) && (hw & HWCAP_ASIMDDP);
#else
        return (hw & HWCAP_ASIMD) != 0;
#endif
#else
        return 1; /* e.g. Apple arm64: ASIMD and SDOT on every CPU */
#endif
    }
    default: return 0;
    }
#else
    return isa == CHESS_ISA_REF;
#endif
}

int chess_isa_available(chess_isa isa) {
    if ((int)isa < 0 || isa >= CHESS_ISA_COUNT) return 0;
    return cs_tables[isa] != NULL && cs_cpu_has(isa);
}

const char *chess_isa_name(chess_isa isa) {
    switch (isa) {
    case CHESS_ISA_REF: return "ref";
    case CHESS_ISA_AVX2: return "avx2";
    case CHESS_ISA_AVX512: return "avx512";
    case CHESS_ISA_NEON: return "neon";
    case CHESS_ISA_AVX512_VBMI: return "avx512vbmi";
    case CHESS_ISA_AVX2_VNNI: return "avx2vnni";
    default: return "unknown";
    }
}

/* -1: not chosen yet. Selection is idempotent, so a benign race is harmless. */
static _Atomic int cs_isa_current = -1;

static chess_isa cs_isa_default(void) {
    const char *env = getenv("CHESS_KERNEL_ISA");
    if (env && *env) {
        for (int i = 0; i < CHESS_ISA_COUNT; i++) {
            if (strcmp(env, chess_isa_name((chess_isa)i)) == 0) {
                if (chess_isa_available((chess_isa)i)) return (chess_isa)i;
                fprintf(stderr, "chess_sparse: CHESS_KERNEL_ISA=%s is not available on this CPU/build; using ref\n", env);
                return CHESS_ISA_REF;
            }
        }
        char names[128] = "";
        for (int i = 0; i < CHESS_ISA_COUNT; i++) {
            if (i) strncat(names, "|", sizeof names - strlen(names) - 1);
            strncat(names, chess_isa_name((chess_isa)i), sizeof names - strlen(names) - 1);
        }
        fprintf(stderr, "chess_sparse: unknown CHESS_KERNEL_ISA=%s (expected %s); using the best available\n", env, names);
    }
    /* best first (the enum's order is the order ISAs were added, not a ranking) */
    static const chess_isa preference[] = { CHESS_ISA_AVX512_VBMI, CHESS_ISA_AVX512, CHESS_ISA_AVX2_VNNI,
                                            CHESS_ISA_AVX2, CHESS_ISA_NEON };
    for (size_t i = 0; i < sizeof preference / sizeof preference[0]; i++)
        if (chess_isa_available(preference[i])) return preference[i];
    return CHESS_ISA_REF;
}

chess_isa chess_get_isa(void) {
    int cur = atomic_load_explicit(&cs_isa_current, memory_order_acquire);
    if (cur < 0) {
        cur = (int)cs_isa_default();
        atomic_store_explicit(&cs_isa_current, cur, memory_order_release);
    }
    return (chess_isa)cur;
}

int chess_set_isa(chess_isa isa) {
    if (!chess_isa_available(isa)) return CHESS_ERR_ISA;
    atomic_store_explicit(&cs_isa_current, (int)isa, memory_order_release);
    return CHESS_OK;
}

/* CHESS_READ_CEILING=1: one-token products stream their rows and compute nothing
 * (chess_read_ceiling.c), for timing the memory limit end to end. Their zero outputs
 * change every later activation, hence which rows later products keep; with
 * CHESS_READ_CEILING_SPARSITY=s (0 <= s < 1) each one-token product instead keeps a
 * pseudo-random fraction 1-s of its channels, fixed per (site, channel), so the bytes
 * read do not depend on the distorted activations. Read once; the first caller builds
 * the tables while the others wait. */
static _Atomic int cs_rc_state = 0; /* 0 unread, 1 building, 2 off, 3 on */
static cs_isa_table cs_rc_tables[CHESS_ISA_COUNT];
static int cs_rc_replay;          /* CHESS_READ_CEILING_SPARSITY given */
static uint32_t cs_rc_drop_below; /* channel dropped iff its hash < this (s * 2^32) */

static int cs_read_ceiling_on(void) {
    int st = atomic_load_explicit(&cs_rc_state, memory_order_acquire);
    if (st >= 2) return st == 3;
    int expected = 0;
    if (atomic_compare_exchange_strong_explicit(&cs_rc_state, &expected, 1, memory_order_acq_rel, memory_order_acquire)) {
        const char *env = getenv("CHESS_READ_CEILING");
        const int on = env && strcmp(env, "1") == 0;
        if (env && *env && !on && strcmp(env, "0") != 0)
            fprintf(stderr, "chess_sparse: CHESS_READ_CEILING=%s ignored (expected 0 or 1)\n", env);
        if (on) {
            for (int i = 0; i < CHESS_ISA_COUNT; i++)
                if (cs_tables[i]) cs_read_ceiling_table(cs_tables[i], &cs_rc_tables[i]);
            const char *sp = getenv("CHESS_READ_CEILING_SPARSITY");
            if (sp && *sp) {
                char *end = NULL;
                const double s = strtod(sp, &end);
                if (end && *end == '\0' && s >= 0.0 && s < 1.0) {
                    cs_rc_replay = 1;
                    cs_rc_drop_below = (uint32_t)(s * 4294967296.0);
                } else {
                    fprintf(stderr, "chess_sparse: CHESS_READ_CEILING_SPARSITY=%s ignored (expected a number in [0, 1))\n", sp);
                }
            }
            fprintf(stderr, "chess_sparse: CHESS_READ_CEILING=1: one-token sparse products read their rows and "
                            "compute nothing (outputs are 0): for timing only%s\n",
                    cs_rc_replay ? "; kept channels pseudo-random (CHESS_READ_CEILING_SPARSITY)" : "");
        }
        atomic_store_explicit(&cs_rc_state, on ? 3 : 2, memory_order_release);
        return on;
    }
    while ((st = atomic_load_explicit(&cs_rc_state, memory_order_acquire)) < 2) {}
    return st == 3;
}

/* Read-ceiling replay: is channel j of a one-token product at `site` kept? A 32-bit
 * mix (murmur3's finalizer) of (site, j): cheap and branch-free, so that the replay
 * itself does not lower the ceiling it measures. */
static inline int cs_rc_replay_keep(int32_t site, int64_t j) {
    uint32_t h = ((uint32_t)site << 17) ^ (uint32_t)j ^ 0x9e3779b9u;
    h ^= h >> 16;
    h *= 0x85ebca6bu;
    h ^= h >> 13;
    h *= 0xc2b2ae35u;
    h ^= h >> 16;
    return h >= cs_rc_drop_below;
}
static int cs_rc_replaying(int64_t n_tokens) { return n_tokens == 1 && cs_read_ceiling_on() && cs_rc_replay; }
/* the same switches for the column-block products (chess_cb.c) */
int cs_rc_mode(int64_t n_tokens) { return n_tokens == 1 && cs_read_ceiling_on() ? (cs_rc_replay ? 2 : 1) : 0; }
int cs_rc_keep(int32_t site, int64_t j) { return cs_rc_replay_keep(site, j); }

/* The one test of whether an out-gated product of a type runs as the ISA's GEMM
 * (batch size aside): shared by the public query and the dispatcher. */
static int cs_has_gemm_rows(const cs_isa_table *T, cs_type_traits tr) {
    return tr.index >= 0 && tr.act == CS_ACT_Q8X && T->gemm_rows[tr.index] != NULL;
}

int chess_out_gated_has_gemm(chess_type type) { return cs_has_gemm_rows(cs_tables[chess_get_isa()], cs_traits(type)); }

/* The table for a product of n_tokens tokens. */
static const cs_isa_table *cs_table_for(int64_t n_tokens) {
    const chess_isa isa = chess_get_isa();
    return n_tokens == 1 && cs_read_ceiling_on() ? &cs_rc_tables[isa] : cs_tables[isa];
}

/* ---------------- per-thread scratch ---------------- */

enum { CS_SCRATCH_IDX, CS_SCRATCH_VAL, CS_SCRATCH_ACT, CS_SCRATCH_P, CS_SCRATCH_A, CS_SCRATCH_Q, CS_SCRATCH_B, CS_NSCRATCH };
static _Thread_local struct { void *p; size_t n; } cs_scratch[CS_NSCRATCH];

static void *cs_get_scratch(int slot, size_t bytes) {
    if (cs_scratch[slot].n < bytes) {
        free(cs_scratch[slot].p);
        size_t n = bytes + bytes / 4 + 256;
        cs_scratch[slot].p = aligned_alloc(64, (n + 63) & ~(size_t)63);
        cs_scratch[slot].n = cs_scratch[slot].p ? n : 0;
    }
    return cs_scratch[slot].p;
}

void chess_thread_release(void) {
    for (int i = 0; i < CS_NSCRATCH; i++) {
        free(cs_scratch[i].p);
        cs_scratch[i].p = NULL;
        cs_scratch[i].n = 0;
    }
    cs_cb_thread_release();
}

/* ---------------- counters ---------------- */

static _Atomic uint64_t cs_seen[CHESS_MAX_SITES];
static _Atomic uint64_t cs_zeroed[CHESS_MAX_SITES];

static void cs_count(int32_t site, uint64_t seen, uint64_t zeroed) {
    if (site < 0 || site >= CHESS_MAX_SITES) return;
    atomic_fetch_add_explicit(&cs_seen[site], seen, memory_order_relaxed);
    atomic_fetch_add_explicit(&cs_zeroed[site], zeroed, memory_order_relaxed);
}
void cs_count_site(int32_t site, uint64_t seen, uint64_t zeroed) { cs_count(site, seen, zeroed); }

int chess_counters_get(int32_t site, uint64_t *seen, uint64_t *zeroed) {
    if (site < 0 || site >= CHESS_MAX_SITES) return CHESS_ERR_SITE;
    if (seen) *seen = atomic_load_explicit(&cs_seen[site], memory_order_relaxed);
    if (zeroed) *zeroed = atomic_load_explicit(&cs_zeroed[site], memory_order_relaxed);
    return CHESS_OK;
}

void chess_counters_reset(void) {
    for (int i = 0; i < CHESS_MAX_SITES; i++) {
        atomic_store_explicit(&cs_seen[i], 0, memory_order_relaxed);
        atomic_store_explicit(&cs_zeroed[i], 0, memory_order_relaxed);
    }
}

/* ---------------- thresholding ---------------- */

/* One token of a prefill tile: At[j] = x[j] if kept else 0, union[j] |= kept; returns
 * the kept count. Select loops per threshold mode with no aliasing, so that they
 * compile to blends (the branchy form mispredicted half the time at s = 0.5: a
 * quarter of the dispatcher's prefill time). */
static int64_t cs_mask_row(const float *restrict x, int64_t n, const float *restrict tau, int64_t n_tau,
                           float *restrict At, uint8_t *restrict uni) {
    int64_t kept = 0;
    if (n_tau == 0) {
        for (int64_t j = 0; j < n; j++) {
            const int k = x[j] != 0.0f;
            At[j] = k ? x[j] : 0.0f;
            uni[j] |= (uint8_t)k;
            kept += k;
        }
    } else if (n_tau == 1) {
        const float t = tau[0];
        for (int64_t j = 0; j < n; j++) {
            const int k = CHESS_CONTRACT_KEEPS(x[j], t);
            At[j] = k ? x[j] : 0.0f;
            uni[j] |= (uint8_t)k;
            kept += k;
        }
    } else {
        for (int64_t j = 0; j < n; j++) {
            const int k = CHESS_CONTRACT_KEEPS(x[j], tau[j]);
            At[j] = k ? x[j] : 0.0f;
            uni[j] |= (uint8_t)k;
            kept += k;
        }
    }
    return kept;
}

static int cs_check_tau(const float *tau, int64_t n_tau, int64_t channels) {
    if (n_tau != 0 && n_tau != 1 && n_tau != channels) return CHESS_ERR_TAU;
    if (n_tau > 0 && !tau) return CHESS_ERR_NULL;
    return CHESS_OK;
}

int64_t chess_threshold_mask(float *x, int64_t n, const float *tau, int64_t n_tau, int32_t site) {
    if (!x) return CHESS_ERR_NULL;
    if (n < 0) return CHESS_ERR_SHAPE;
    int rc = cs_check_tau(tau, n_tau, n);
    if (rc) return rc;
    if (site >= CHESS_MAX_SITES) return CHESS_ERR_SITE;
    int64_t kept = 0;
    if (n_tau == 1) {
        const float t = tau[0];
        for (int64_t i = 0; i < n; i++) {
            const int k = CHESS_CONTRACT_KEEPS(x[i], t);
            x[i] = k ? x[i] : 0.0f;
            kept += k;
        }
    } else if (n_tau == 0) {
        for (int64_t i = 0; i < n; i++) kept += x[i] != 0.0f;
    } else {
        for (int64_t i = 0; i < n; i++) {
            const int k = CHESS_CONTRACT_KEEPS(x[i], tau[i]);
            x[i] = k ? x[i] : 0.0f;
            kept += k;
        }
    }
    cs_count(site, (uint64_t)n, (uint64_t)(n - kept));
    return kept;
}

/* ---------------- shared checks ---------------- */

static int cs_check_common(chess_type type, const void *w, int64_t ne0, int64_t ne1, size_t nb1,
                           int64_t n_tokens, int ith, int nth, int32_t site, cs_type_traits *tr) {
    *tr = cs_traits(type);
    if (tr->index < 0) return CHESS_ERR_TYPE;
    if (!w) return CHESS_ERR_NULL;
    if (ne0 <= 0 || ne1 <= 0 || n_tokens <= 0 || ne0 % tr->blck != 0) return CHESS_ERR_SHAPE;
    if (ne1 > INT32_MAX) return CHESS_ERR_SHAPE;
    if (nb1 < (size_t)(ne0 / tr->blck) * tr->bbytes) return CHESS_ERR_STRIDE;
    if (nth < 1 || ith < 0 || ith >= nth) return CHESS_ERR_THREAD;
    if (site >= CHESS_MAX_SITES) return CHESS_ERR_SITE;
    return CHESS_OK;
}

/* Column slice of thread ith: units of `align` elements, the last one possibly partial. */
static void cs_slice(int64_t ne0, int64_t align, int ith, int nth, int64_t *c0, int64_t *c1) {
    const int64_t units = (ne0 + align - 1) / align;
    const int64_t u0 = units * ith / nth, u1 = units * (ith + 1) / nth;
    *c0 = u0 * align;
    *c1 = u1 * align < ne0 ? u1 * align : ne0;
}

/* ---------------- input-sparse product ---------------- */

#define CS_GEMM_NC 128     /* prefill: columns per panel */
#define CS_GEMM_KC 64      /* prefill: active rows per panel */

/* The kept inputs of one token, in channel order, into this thread's scratch:
 * their indices (*idx) and values (*xv); returns their count, or -1 without memory. */
static int64_t cs_active_inputs(const chess_spmv_in_args *a, const float *x, int32_t **idx_out, float **xv_out) {
    int32_t *idx = cs_get_scratch(CS_SCRATCH_IDX, (size_t)a->ne1 * sizeof(int32_t));
    float *xv = cs_get_scratch(CS_SCRATCH_VAL, (size_t)a->ne1 * sizeof(float));
    if (!idx || !xv) return -1;
    /* branch-free compaction: at s ~ 0.5 a branch per input mispredicts half the time */
    int64_t nact = 0;
    if (cs_rc_replaying(a->n_tokens)) {
        for (int64_t j = 0; j < a->ne1; j++) {
            idx[nact] = (int32_t)j;
            xv[nact] = x[j];
            nact += cs_rc_replay_keep(a->site, j);
        }
    } else {
        for (int64_t j = 0; j < a->ne1; j++) {
            const float v = x[j];
            idx[nact] = (int32_t)j;
            xv[nact] = v;
            nact += cs_keep(v, a->tau, a->n_tau, j);
        }
    }
    *idx_out = idx;
    *xv_out = xv;
    return nact;
}

static int cs_spmv_in_decode(const cs_isa_table *T, const cs_kernels *K, const chess_spmv_in_args *a,
                             const cs_type_traits *tr, int64_t c0, int64_t c1, const float *x, float *y,
                             int64_t *kept_out) {
    (void)T;
    int32_t *idx;
    float *xv;
    const int64_t nact = cs_active_inputs(a, x, &idx, &xv);
    if (nact < 0) return CHESS_ERR_NOMEM;
    *kept_out = nact;
    const uint8_t *w = (const uint8_t *)a->w;
    for (int64_t c = c0; c < c1; c += CS_IN_CHUNK) {
        const int64_t nc = c1 - c < CS_IN_CHUNK ? c1 - c : CS_IN_CHUNK;
        K->in_accum(y + c, nc, w + (size_t)(c / tr->blck) * tr->bbytes, a->nb1, idx, xv, nact);
    }
    return CHESS_OK;
}

/* 16-bit integer prefill of one tile (Q4_0, Q4_1, Q8_0; contract in chess_internal.h):
 * rows normalized by their magnitude, the tile's compacted kept activations A (nt rows
 * of nu) times r quantized to 14 bits per 32 kept inputs, each panel of up to CS_I16_KC
 * kept rows x CS_GEMM_NC columns dequantized (to_float), normalized and re-quantized to
 * 13 bits along the inputs, and the integer micro-kernel accumulates into Y (~2e-4 of
 * |y|). The float micro-kernel did the same multiply-adds at about half the rate; 8-bit
 * activations and weights (vpdpbusd, faster again) cost +0.8% perplexity on SmolLM2 at
 * sparsity 0 (native/README.md). */
#define CS_I16_KC 256
static int cs_prefill_i16(const cs_isa_table *T, const cs_kernels *K, const chess_spmv_in_args *a, const cs_type_traits *tr,
                          const float *A, int64_t nu, const int32_t *uni, int64_t nt, int64_t c0, int64_t c1, float *Y0,
                          size_t ldy, float *P) {
    const int64_t nup = (nu + 31) / 32 * 32, ng = nup / 32;
    uint8_t *q = cs_get_scratch(CS_SCRATCH_Q, (size_t)nt * (2 * (size_t)nup + 4 * (size_t)ng) + 3 * (size_t)nup * sizeof(float) + 64);
    int32_t *B = cs_get_scratch(CS_SCRATCH_B, (size_t)CS_I16_KC * CS_GEMM_NC * 2 + (size_t)(CS_I16_KC / 32) * CS_GEMM_NC * sizeof(float));
    if (!q || !B) return CHESS_ERR_NOMEM;
    float *da = (float *)q, *tmp = da + (size_t)nt * (size_t)ng;           /* 4-byte arrays first */
    float *r = tmp + nup, *rinv = r + nup;
    int16_t *qa = (int16_t *)(rinv + nup);
    float *e = (float *)(B + (size_t)CS_I16_KC * CS_GEMM_NC / 2);
    const uint8_t *w = (const uint8_t *)a->w;
    const int64_t nb = a->ne0 / tr->blck;
    T->row_magnitudes(tr->index, w, a->nb1, uni, nu, nb, r);
    for (int64_t k = 0; k < nup; k++) {
        if (k >= nu) r[k] = 0.0f;
        rinv[k] = r[k] > 0.0f ? 1.0f / r[k] : 0.0f;
    }
    for (int64_t t = 0; t < nt; t++) {
        const float *At = A + (size_t)t * (size_t)nu;
        for (int64_t k = 0; k < nu; k++) tmp[k] = At[k] * r[k];
        memset(tmp + nu, 0, (size_t)(nup - nu) * sizeof(float));
        T->quant_a_i16(tmp, nup, qa + (size_t)t * (size_t)nup, da + (size_t)t * (size_t)ng);
    }
    for (int64_t c = c0; c < c1; c += CS_GEMM_NC) {
        const int64_t nc = c1 - c < CS_GEMM_NC ? c1 - c : CS_GEMM_NC;
        const uint8_t *wc = w + (size_t)(c / tr->blck) * tr->bbytes;
        for (int64_t k0 = 0; k0 < nup; k0 += CS_I16_KC) {
            const int64_t kc = nup - k0 < CS_I16_KC ? nup - k0 : CS_I16_KC;
            for (int64_t k = 0; k < kc; k++) {
                if (k0 + k < nu) K->to_float(wc + (size_t)uni[k0 + k] * a->nb1, P + k * CS_GEMM_NC, nc);
                else memset(P + k * CS_GEMM_NC, 0, (size_t)nc * sizeof(float));
            }
            T->pack_b_i16(P, CS_GEMM_NC, rinv + k0, kc, nc, B, e);
            T->gemm_i16(Y0 + c, ldy, qa + k0, (size_t)nup, da + k0 / 32, (size_t)ng, B, e, nt, kc / 32, nc);
        }
    }
    return CHESS_OK;
}

/* Checks shared by the input-sparse entry points; fills *tr. */
static int cs_check_spmv_in(const chess_spmv_in_args *a, int ith, int nth, cs_type_traits *tr) {
    if (!a) return CHESS_ERR_NULL;
    if (!cs_traits(a->type).in_ok) return CHESS_ERR_TYPE;
    int rc = cs_check_common(a->type, a->w, a->ne0, a->ne1, a->nb1, a->n_tokens, ith, nth, a->site, tr);
    if (rc) return rc;
    if (!a->x || !a->y) return CHESS_ERR_NULL;
    return cs_check_tau(a->tau, a->n_tau, a->ne1);
}

int chess_spmv_in(const chess_spmv_in_args *a, int ith, int nth) {
    cs_type_traits tr;
    int rc = cs_check_spmv_in(a, ith, nth, &tr);
    if (rc) return rc;
    if (a->n_tokens > 1 && (a->x_nb1 < (size_t)a->ne1 * sizeof(float) || a->y_nb1 < (size_t)a->ne0 * sizeof(float)))
        return CHESS_ERR_STRIDE;

    const cs_isa_table *T = cs_table_for(a->n_tokens);
    const cs_kernels *K = &T->k[tr.index];
    const int64_t align = tr.blck > 16 ? tr.blck : 16;
    int64_t c0, c1;
    cs_slice(a->ne0, align, ith, nth, &c0, &c1);
    int64_t kept_total = 0;

    if (a->n_tokens == 1 || T->gemm == NULL) {
        for (int64_t t = 0; t < a->n_tokens; t++) {
            const float *x = (const float *)((const char *)a->x + (size_t)t * a->x_nb1);
            float *y = (float *)((char *)a->y + (size_t)t * a->y_nb1);
            int64_t kept = 0;
            if (c0 < c1 || ith == 0) {
                if ((rc = cs_spmv_in_decode(T, K, a, &tr, c0, c1, x, y, &kept))) return rc;
            }
            kept_total += kept;
        }
    } else {
        /* Prefill: per (token tile, column panel), dequantize each row that is kept
         * by at least one token of the tile once, and apply it to every token with
         * a float micro-kernel (tokens whose x[t,j] is dropped get coefficient 0).
         * The coefficients of a tile, A[t][k] for its union of kept inputs, are built
         * once per tile, row-wise, not once per column panel (that rebuild, column-wise
         * over x, took a quarter of the prefill time). */
        const int64_t nt_all = a->n_tokens;
        const int64_t tt = nt_all < CS_GEMM_TT ? nt_all : CS_GEMM_TT;
        int32_t *uni = cs_get_scratch(CS_SCRATCH_IDX, (size_t)a->ne1 * sizeof(int32_t));
        uint8_t *in_union = cs_get_scratch(CS_SCRATCH_ACT, (size_t)a->ne1);
        float *P = cs_get_scratch(CS_SCRATCH_P, (size_t)(CS_GEMM_KC > CS_I16_KC ? CS_GEMM_KC : CS_I16_KC) * CS_GEMM_NC * sizeof(float));
        float *A = cs_get_scratch(CS_SCRATCH_A, (size_t)tt * (size_t)a->ne1 * sizeof(float));
        if (!uni || !in_union || !P || !A) return CHESS_ERR_NOMEM;
        const uint8_t *w = (const uint8_t *)a->w;
        const int integer_route = T->gemm_i16 && T->pack_b_i16 && T->quant_a_i16 && T->row_magnitudes && (tr.index == CS_Q4_0 || tr.index == CS_Q4_1 || tr.index == CS_Q8_0);
        /* a thread without columns only counts (thread 0 owns the counters) */
        for (int64_t t0 = 0; t0 < nt_all && (c0 < c1 || ith == 0); t0 += CS_GEMM_TT) {
            const int64_t nt = nt_all - t0 < CS_GEMM_TT ? nt_all - t0 : CS_GEMM_TT;
            /* one pass over x: the masked rows (row t at A + t*ne1), the union of kept
             * inputs over the tile, and the kept count */
            memset(in_union, 0, (size_t)a->ne1);
            for (int64_t t = 0; t < nt; t++) {
                const float *x = (const float *)((const char *)a->x + (size_t)(t0 + t) * a->x_nb1);
                const int64_t kept = cs_mask_row(x, a->ne1, a->tau, a->n_tau, A + (size_t)t * (size_t)a->ne1, in_union);
                if (ith == 0) kept_total += kept;
            }
            if (c0 >= c1) continue;
            int64_t nu = 0;
            for (int64_t j = 0; j < a->ne1; j++)
                if (in_union[j]) uni[nu++] = (int32_t)j;
            /* compact the rows to the union in place (row t moves to A + t*nu; every
             * destination precedes its source, which no earlier row still needs) */
            for (int64_t t = 0; t < nt; t++) {
                const float *src = A + (size_t)t * (size_t)a->ne1;
                float *dst = A + (size_t)t * (size_t)nu;
                for (int64_t k = 0; k < nu; k++) dst[k] = src[uni[k]];
            }
            float *Y0 = (float *)((char *)a->y + (size_t)t0 * a->y_nb1);
            const size_t ldy = a->y_nb1 / sizeof(float);
            for (int64_t t = 0; t < nt; t++) memset(Y0 + (size_t)t * ldy + c0, 0, (size_t)(c1 - c0) * sizeof(float));
            if (integer_route) {
                if ((rc = cs_prefill_i16(T, K, a, &tr, A, nu, uni, nt, c0, c1, Y0, ldy, P))) return rc;
                continue;
            }
            for (int64_t c = c0; c < c1; c += CS_GEMM_NC) {
                const int64_t nc = c1 - c < CS_GEMM_NC ? c1 - c : CS_GEMM_NC;
                const uint8_t *wc = w + (size_t)(c / tr.blck) * tr.bbytes;
                for (int64_t k0 = 0; k0 < nu; k0 += CS_GEMM_KC) {
                    const int64_t kc = nu - k0 < CS_GEMM_KC ? nu - k0 : CS_GEMM_KC;
                    for (int64_t k = 0; k < kc; k++) K->to_float(wc + (size_t)uni[k0 + k] * a->nb1, P + k * CS_GEMM_NC, nc);
                    T->gemm(Y0 + c, ldy, A + k0, (size_t)nu, P, CS_GEMM_NC, nt, kc, nc);
                }
            }
        }
    }
    if (ith == 0) {
        const uint64_t seen = (uint64_t)a->ne1 * (uint64_t)a->n_tokens;
        cs_count(a->site, seen, seen - (uint64_t)kept_total);
    }
    return CHESS_OK;
}

int chess_spmv_in_parts(const chess_spmv_in_args *a, int n_parts, int ith, int nth) {
    cs_type_traits tr;
    int rc = cs_check_spmv_in(a, ith, nth, &tr);
    if (rc) return rc;
    if (a->n_tokens != 1 || n_parts < 1 || n_parts > CHESS_MAX_PARTS) return CHESS_ERR_SHAPE;
    if (n_parts > 1 && a->y_nb1 < (size_t)a->ne0 * sizeof(float)) return CHESS_ERR_STRIDE;

    const cs_kernels *K = &cs_table_for(1)->k[tr.index];
    int32_t *idx;
    float *xv;
    const int64_t nact = cs_active_inputs(a, a->x, &idx, &xv);
    if (nact < 0) return CHESS_ERR_NOMEM;
    const uint8_t *w = (const uint8_t *)a->w;
    for (int p = ith; p < n_parts; p += nth) {
        const int64_t k0 = nact * p / n_parts, k1 = nact * (p + 1) / n_parts;
        float *y = (float *)((char *)a->y + (size_t)p * a->y_nb1);
        for (int64_t c = 0; c < a->ne0; c += CS_IN_CHUNK) {
            const int64_t nc = a->ne0 - c < CS_IN_CHUNK ? a->ne0 - c : CS_IN_CHUNK;
            K->in_accum(y + c, nc, w + (size_t)(c / tr.blck) * tr.bbytes, a->nb1, idx + k0, xv + k0, k1 - k0);
        }
    }
    if (ith == 0) cs_count(a->site, (uint64_t)a->ne1, (uint64_t)(a->ne1 - nact));
    return CHESS_OK;
}

int chess_sum_parts(float *y, const float *parts, size_t parts_nb1, int64_t n, int n_parts, int ith, int nth) {
    if (!y || !parts) return CHESS_ERR_NULL;
    if (n <= 0 || n_parts < 1 || n_parts > CHESS_MAX_PARTS) return CHESS_ERR_SHAPE;
    if (n_parts > 1 && parts_nb1 < (size_t)n * sizeof(float)) return CHESS_ERR_STRIDE;
    if (nth < 1 || ith < 0 || ith >= nth) return CHESS_ERR_THREAD;
    int64_t c0, c1;
    cs_slice(n, 16, ith, nth, &c0, &c1);
    for (int64_t i = c0; i < c1; i++) {
        float s = parts[i];
        for (int p = 1; p < n_parts; p++) s += ((const float *)((const char *)parts + (size_t)p * parts_nb1))[i];
        y[i] = s;
    }
    return CHESS_OK;
}

/* ---------------- output-sparse product fused with the gate ---------------- */

int chess_spmv_out_gated(const chess_spmv_out_gated_args *a, int ith, int nth) {
    if (!a) return CHESS_ERR_NULL;
    cs_type_traits tr;
    int rc = cs_check_common(a->type, a->w, a->ne0, a->ne1, a->nb1, a->n_tokens, ith, nth, a->site, &tr);
    if (rc) return rc;
    if (!a->x || !a->g || !a->y) return CHESS_ERR_NULL;
    if ((rc = cs_check_tau(a->tau, a->n_tau, a->ne1))) return rc;
    if (a->n_tokens > 1 && (a->x_nb1 < (size_t)a->ne0 * sizeof(float) || a->g_nb1 < (size_t)a->ne1 * sizeof(float) ||
                            a->y_nb1 < (size_t)a->ne1 * sizeof(float)))
        return CHESS_ERR_STRIDE;

    const cs_isa_table *T = cs_table_for(a->n_tokens);
    const cs_kernels *K = &T->k[tr.index];
    const int64_t nt = a->n_tokens, ne0 = a->ne0, ne1 = a->ne1;
#define CS_G(t) ((const float *)((const char *)a->g + (size_t)(t) * a->g_nb1))
#define CS_X(t) ((const float *)((const char *)a->x + (size_t)(t) * a->x_nb1))
#define CS_Y(t) ((float *)((char *)a->y + (size_t)(t) * a->y_nb1))

    /* 1. mark rows kept by at least one token; count them */
    uint8_t *act = cs_get_scratch(CS_SCRATCH_ACT, (size_t)ne1);
    int32_t *rows = cs_get_scratch(CS_SCRATCH_IDX, (size_t)ne1 * sizeof(int32_t));
    if (!act || !rows) return CHESS_ERR_NOMEM;
    int64_t n_active = 0, kept_total = 0;
    if (nt == 1) {
        const float *g = CS_G(0);
        const int replay = cs_rc_replaying(1);
        for (int64_t i = 0; i < ne1; i++) {
            act[i] = (uint8_t)(replay ? cs_rc_replay_keep(a->site, i) : cs_keep(g[i], a->tau, a->n_tau, i));
            n_active += act[i];
        }
        kept_total = n_active;
    } else {
        memset(act, 0, (size_t)ne1);
        for (int64_t t = 0; t < nt; t++) {
            const float *g = CS_G(t);
            for (int64_t i = 0; i < ne1; i++) {
                const int k = cs_keep(g[i], a->tau, a->n_tau, i);
                act[i] |= (uint8_t)k;
                kept_total += k;
            }
        }
        for (int64_t i = 0; i < ne1; i++) n_active += act[i];
    }

    /* 2. this thread's rows [r0, r1): boundary k sits at the active row of ordinal
     *    o_k = A*k/nth (or at ne1 when o_k == A), so each thread gets A/nth active rows
     *    and the dead rows between its boundaries (all of y is written exactly once). */
    const int64_t o0 = n_active * ith / nth, o1 = n_active * (ith + 1) / nth;
    int64_t r0 = (ith == 0) ? 0 : ne1, r1 = ne1;
    {
        int64_t ord = 0;
        for (int64_t i = 0; i < ne1; i++) {
            if (!act[i]) continue;
            if (ith > 0 && ord == o0) r0 = i;
            if (ith + 1 < nth && ord == o1) { r1 = i; break; }
            ord++;
        }
    }
    int64_t nr = 0;
    for (int64_t i = r0; i < r1; i++) if (act[i]) rows[nr++] = (int32_t)i;

    /* 3. activations: block types quantize every token to 8 bits (each thread
     *    its own copy: no barrier exists between the threads of a custom op). Q5_0,
     *    Q5_1 and the K-quants take them as ggml's Q8_0 / Q8_1 / Q8_K (cs_q8g, one
     *    portable quantizer for every ISA: O(n_in) per token against the rows' O(n_in *
     *    rows)). XA(t): what dot_rows takes for token t. */
    cs_q8x *xq = NULL;
    cs_q8g *xg = NULL;
    if (tr.act == CS_ACT_Q8X) {
        const int64_t nbx = ne0 / CS_QK;
        const size_t per_tok = (size_t)ne0 + (size_t)nbx * (2 * sizeof(float) + sizeof(int32_t));
        uint8_t *buf = cs_get_scratch(CS_SCRATCH_P, (size_t)nt * (per_tok + sizeof(cs_q8x)) + 64);
        if (!buf) return CHESS_ERR_NOMEM;
        xq = (cs_q8x *)buf;
        uint8_t *p = buf + (((size_t)nt * sizeof(cs_q8x) + 63) & ~(size_t)63);
        for (int64_t t = 0; t < nt; t++) {
            xq[t].d = (float *)p; p += (size_t)nbx * sizeof(float);
            xq[t].s = (float *)p; p += (size_t)nbx * sizeof(float);
            xq[t].sum = (int32_t *)p; p += (size_t)nbx * sizeof(int32_t);
            xq[t].qs = (int8_t *)p; p += (size_t)ne0;
            if (nr > 0) T->quant_x8(CS_X(t), &xq[t], ne0);
        }
    } else if (tr.quantized) {
        /* per token: d and s per 32 (Q8_K: d per 256), bsums per 16, qs; 64-byte aligned parts */
        const size_t nd = (size_t)(ne0 / CS_QK), nbs = (size_t)(ne0 / 16);
        const size_t per_tok = ((2 * nd * sizeof(float) + 63) & ~(size_t)63) + ((nbs * sizeof(int16_t) + 63) & ~(size_t)63) +
                               (((size_t)ne0 + 63) & ~(size_t)63);
        uint8_t *buf = cs_get_scratch(CS_SCRATCH_P, (size_t)nt * (per_tok + sizeof(cs_q8g)) + 128);
        if (!buf) return CHESS_ERR_NOMEM;
        xg = (cs_q8g *)buf;
        uint8_t *p = buf + (((size_t)nt * sizeof(cs_q8g) + 63) & ~(size_t)63);
        for (int64_t t = 0; t < nt; t++) {
            uint8_t *p0 = p;
            xg[t].d = (float *)p;
            xg[t].s = xg[t].d + nd;
            p = p0 + ((2 * nd * sizeof(float) + 63) & ~(size_t)63);
            xg[t].bsums = (int16_t *)p;
            p += (nbs * sizeof(int16_t) + 63) & ~(size_t)63;
            xg[t].qs = (int8_t *)p;
            p += ((size_t)ne0 + 63) & ~(size_t)63;
            if (nr > 0) cs_quant_q8g_ref(tr.act, CS_X(t), &xg[t], ne0);
        }
    }
#define XA(t) (xg ? (const void *)&xg[t] : xq ? (const void *)&xq[t] : (const void *)CS_X(t))
    /* an ISA without a kernel for the type takes the reference's (NEON: Q5_*, K-quants) */
    const cs_dot_rows_fn dot_rows = K->dot_rows ? K->dot_rows : cs_table_ref.k[tr.index].dot_rows;

    /* 4. compute */
    const uint8_t *w = (const uint8_t *)a->w;
    if (nt == 1) {
        float *y = CS_Y(0);
        const float *g = CS_G(0);
        for (int64_t i = r0; i < r1; i++) if (!act[i]) y[i] = 0.0f;
        dot_rows(y, w, a->nb1, rows, nr, XA(0), ne0);
        for (int64_t k = 0; k < nr; k++) y[rows[k]] *= g[rows[k]];
    } else {
        for (int64_t t = 0; t < nt; t++) {
            float *y = CS_Y(t);
            for (int64_t i = r0; i < r1; i++) if (!act[i]) y[i] = 0.0f;
        }
        /* Chunks of active rows small enough to stay in L2, so that each row comes from
         * DRAM once for all tokens; per token, the rows it keeps go to dot_rows together
         * (its 4-row kernel gives every row the same arithmetic however rows are grouped). */
        enum { CHUNK = 64 };
        if (nt >= CHESS_OUT_GATED_GEMM_MIN_TOKENS && cs_has_gemm_rows(T, tr)) {
            /* the ISA's GEMM (below that batch size many (row, token) pairs of the union rows
             * are dead and dot_rows skips them): every (row, token) of the chunk, then the
             * gate keeps or zeroes it */
            float *dots = cs_get_scratch(CS_SCRATCH_Q, (size_t)nt * CHUNK * sizeof(float));
            uint8_t *pack = cs_get_scratch(CS_SCRATCH_B, CS_GEMM_ROWS_PACK(ne0));
            if (!dots || !pack) return CHESS_ERR_NOMEM;
            for (int64_t c0 = 0; c0 < nr; c0 += CHUNK) {
                const int64_t nc = nr - c0 < CHUNK ? nr - c0 : CHUNK;
                T->gemm_rows[tr.index](dots, w, a->nb1, rows + c0, nc, xq, nt, ne0, pack);
                for (int64_t t = 0; t < nt; t++) {
                    const float *g = CS_G(t);
                    float *y = CS_Y(t);
                    for (int64_t k = 0; k < nc; k++) {
                        /* a select by mask, not a branch (kept or not is a coin flip at s = 0.5) */
                        const int32_t i = rows[c0 + k];
                        const uint32_t keep = 0u - (uint32_t)cs_keep(g[i], a->tau, a->n_tau, i);
                        y[i] = cs_bits_to_f32(cs_f32_to_bits(dots[t * nc + k] * g[i]) & keep);
                    }
                }
            }
        } else {
            int32_t *sub = cs_get_scratch(CS_SCRATCH_A, CHUNK * sizeof(int32_t));
            if (!sub) return CHESS_ERR_NOMEM;
            for (int64_t c0 = 0; c0 < nr; c0 += CHUNK) {
                const int64_t c1 = nr - c0 < CHUNK ? nr : c0 + CHUNK;
                for (int64_t t = 0; t < nt; t++) {
                    const float *g = CS_G(t);
                    float *y = CS_Y(t);
                    int64_t ns = 0;
                    for (int64_t k = c0; k < c1; k++) {
                        const int32_t i = rows[k];
                        if (cs_keep(g[i], a->tau, a->n_tau, i)) sub[ns++] = i;
                        else y[i] = 0.0f;
                    }
                    dot_rows(y, w, a->nb1, sub, ns, XA(t), ne0);
                    for (int64_t k = 0; k < ns; k++) y[sub[k]] *= g[sub[k]];
                }
            }
        }
    }
    if (ith == 0) {
        const uint64_t seen = (uint64_t)ne1 * (uint64_t)nt;
        cs_count(a->site, seen, seen - (uint64_t)kept_total);
    }
    return CHESS_OK;
#undef XA
#undef CS_G
#undef CS_X
#undef CS_Y
}
