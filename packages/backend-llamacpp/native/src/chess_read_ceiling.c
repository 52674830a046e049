/* Read-ceiling mode (CHESS_READ_CEILING=1): a measuring instrument, not a kernel.
 * The one-token products read exactly the rows (or row slices) the real kernels read,
 * in the same order and thread split, prefetching ahead as they do, and compute
 * nothing: every output is 0. End-to-end decode speed in this mode bounds what any
 * arithmetic could reach for the same bytes and access pattern on this machine
 * (benchmarks/e2e-speed --read-ceiling). Outputs are wrong by design: never use it
 * for anything but timing. Prefill (n_tokens > 1) is unchanged. */
#include <stdatomic.h>

#include "chess_internal.h"

/* Prefetch distance: ~64 KB of rows ahead, into L2 (the kernel benchmark's read_ceiling
 * uses the same). */
#define CS_RC_AHEAD_BYTES 65536

static _Atomic uint64_t cs_rc_sink;

/* One load per 64-byte line (plus the span's last byte) pulls every line of the span. */
static uint64_t cs_rc_touch(const uint8_t *p, size_t bytes) {
    uint64_t acc = 0;
    size_t o = 0;
    for (; o + 8 <= bytes; o += 64) {
        uint64_t v;
        memcpy(&v, p + o, 8);
        acc ^= v;
    }
    if (bytes > 0) acc ^= p[bytes - 1];
    return acc;
}

static void cs_rc_stream(const uint8_t *w, size_t nb1, const int32_t *rows, int64_t n, size_t bytes) {
    const int64_t ahead = bytes ? (int64_t)((CS_RC_AHEAD_BYTES + bytes - 1) / bytes) : 1;
    uint64_t acc = 0;
    for (int64_t k = 0; k < n && k < ahead; k++)
        for (size_t o = 0; o < bytes; o += 64) __builtin_prefetch(w + (size_t)rows[k] * nb1 + o, 0, 2);
    for (int64_t k = 0; k < n; k++) {
        if (k + ahead < n)
            for (size_t o = 0; o < bytes; o += 64) __builtin_prefetch(w + (size_t)rows[k + ahead] * nb1 + o, 0, 2);
        acc ^= cs_rc_touch(w + (size_t)rows[k] * nb1, bytes);
    }
    atomic_fetch_xor_explicit(&cs_rc_sink, acc, memory_order_relaxed);
}

#define CS_RC_FNS(NAME, BLCK, BBYTES)                                                               \
    static void rc_in_accum_##NAME(float *y, int64_t n, const uint8_t *w, size_t nb1, const int32_t *idx, \
                                   const float *xv, int64_t nact) {                                \
        (void)xv;                                                                                   \
        cs_rc_stream(w, nb1, idx, nact, (size_t)(n / (BLCK)) * (BBYTES));                           \
        memset(y, 0, (size_t)n * sizeof(float));                                                    \
    }                                                                                               \
    static void rc_dot_rows_##NAME(float *y, const uint8_t *w, size_t nb1, const int32_t *rows, int64_t nrows, \
                                   const void *xa, int64_t n) {                                     \
        (void)xa;                                                                                   \
        cs_rc_stream(w, nb1, rows, nrows, (size_t)(n / (BLCK)) * (BBYTES));                         \
        for (int64_t k = 0; k < nrows; k++) y[rows[k]] = 0.0f;                                      \
    }

CS_RC_FNS(f32, 1, 4)
CS_RC_FNS(f16, 1, 2)
CS_RC_FNS(bf16, 1, 2)
CS_RC_FNS(q8_0, CS_QK, sizeof(cs_block_q8_0))
CS_RC_FNS(q4_0, CS_QK, sizeof(cs_block_q4_0))
CS_RC_FNS(q4_1, CS_QK, sizeof(cs_block_q4_1))
CS_RC_FNS(q5_0, CS_QK, sizeof(cs_block_q5_0))
CS_RC_FNS(q5_1, CS_QK, sizeof(cs_block_q5_1))
CS_RC_FNS(q4_K, CS_QK_K, sizeof(cs_block_q4_K))
CS_RC_FNS(q5_K, CS_QK_K, sizeof(cs_block_q5_K))
CS_RC_FNS(q6_K, CS_QK_K, sizeof(cs_block_q6_K))

void cs_read_ceiling_table(const cs_isa_table *base, cs_isa_table *out) {
    *out = *base;
    out->name = "read-ceiling";
#define CS_RC_SET(IDX, NAME) out->k[IDX].in_accum = rc_in_accum_##NAME; out->k[IDX].dot_rows = rc_dot_rows_##NAME;
    CS_RC_SET(CS_F32, f32)
    CS_RC_SET(CS_F16, f16)
    CS_RC_SET(CS_BF16, bf16)
    CS_RC_SET(CS_Q8_0, q8_0)
    CS_RC_SET(CS_Q4_0, q4_0)
    CS_RC_SET(CS_Q4_1, q4_1)
    /* output-sparse only: no in_accum (the transposed product refuses these types) */
#define CS_RC_SET_OUT(IDX, NAME) out->k[IDX].dot_rows = rc_dot_rows_##NAME; (void)rc_in_accum_##NAME;
    CS_RC_SET_OUT(CS_Q5_0, q5_0)
    CS_RC_SET_OUT(CS_Q5_1, q5_1)
    CS_RC_SET_OUT(CS_Q4_K, q4_K)
    CS_RC_SET_OUT(CS_Q5_K, q5_K)
    CS_RC_SET_OUT(CS_Q6_K, q6_K)
#undef CS_RC_SET_OUT
#undef CS_RC_SET
}
