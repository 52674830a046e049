/* Column-block layout (docs/gguf-sparse.md §3.1): the layout helpers (check, from_rows,
 * to_rows), the activation preparation shared by every ISA, the portable reference of
 * the decode kernel (the spec of the SIMD files chess_cb_*.c) and the public entry points
 * chess_spmv_cb / chess_spmv_cb_parts.
 *
 * Reference arithmetic (per token; this file is compiled without FP contraction):
 * - keep x_j iff |x_j| > tau_j (strict; no tau: x_j != 0); dropped elements are 0;
 * - the masked activations are quantized as ggml's x86 code quantizes them for the
 *   type's vec_dot_type (ggml-cpu's code for this platform): Q8_0 (Q4_0, Q5_0, Q8_0) and
 *   Q8_1 (Q4_1, Q5_1) blocks of 32 with d = amax/127 stored as fp16, q = round-half-even(
 *   x * (127/amax)) on x86 (x * (1/d) on AArch64; generic: round half away), Q8_1's
 *   s = fp16(d * sum q); Q8_K (Q4_K, Q5_K, Q6_K: quantize_row_q8_K_ref) blocks of 256 with
 *   the signed value of largest magnitude `max`, iscale = -127/max, q = min(127,
 *   round-half-even(iscale * x)), float d = 1/iscale, bsums per 16; F16 weights take
 *   fp16-rounded activations, BF16 bf16-rounded ones, F32 the floats;
 * - per row r and group g with a kept channel, the exact integer sum over the group's
 *   kept channels c of w(r, c) * q(c) (w with its offset: Q4_0 -8, Q5_0 -16, Q6_K -32),
 *   then the group's term t, added to y[r] in group order starting from 0:
 *     Q8_0, Q4_0, Q5_0: t = (d_w * d_x) * isum
 *     Q4_1, Q5_1:       t = (d_w * d_x) * isum + m_w * s_x
 *     Q4_K, Q5_K:       isum = sum_j sc_j * isum_j, msum = sum_j m_j * (bsum_2j + bsum_2j+1)
 *                       over the 8 sub-blocks j of 32; t = (d_w * d_x) * isum - (dmin_w * d_x) * msum
 *     Q6_K:             isum = sum_j sc_j * isum_j over the 16 sub-blocks of 16; t = (d_w * d_x) * isum
 *     F32, F16, BF16:   t = w(r, c) * x(c) per kept channel, in channel order.
 *   At sparsity 0 every integer sum equals the one ggml's vec_dot forms; only the float
 *   order across blocks differs from ggml. */
#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>

#include "chess_cb_internal.h"

/* ---------------- type descriptors ---------------- */

static const cs_cb_desc cs_cb_descs[CB_NTYPES] = {
    [CB_F32]  = { CB_F32, CHESS_TYPE_F32, 1, 4, 0, { 0 }, 0, 32 },
    [CB_F16]  = { CB_F16, CHESS_TYPE_F16, 1, 2, 0, { 0 }, 0, 16 },
    [CB_BF16] = { CB_BF16, CHESS_TYPE_BF16, 1, 2, 0, { 0 }, 0, 16 },
    [CB_Q8_0] = { CB_Q8_0, CHESS_TYPE_Q8_0, 32, 34, 1, { 2 }, 2, 8 },
    [CB_Q4_0] = { CB_Q4_0, CHESS_TYPE_Q4_0, 32, 18, 1, { 2 }, 2, 4 },
    [CB_Q4_1] = { CB_Q4_1, CHESS_TYPE_Q4_1, 32, 20, 2, { 2, 2 }, 4, 4 },
    [CB_Q5_0] = { CB_Q5_0, CHESS_TYPE_Q5_0, 32, 22, 1, { 2 }, 2, 5 },
    [CB_Q5_1] = { CB_Q5_1, CHESS_TYPE_Q5_1, 32, 24, 2, { 2, 2 }, 4, 5 },
    [CB_Q4_K] = { CB_Q4_K, CHESS_TYPE_Q4_K, 256, 144, 3, { 2, 2, 12 }, 16, 4 },
    [CB_Q5_K] = { CB_Q5_K, CHESS_TYPE_Q5_K, 256, 176, 3, { 2, 2, 12 }, 16, 5 },
    [CB_Q6_K] = { CB_Q6_K, CHESS_TYPE_Q6_K, 256, 210, 2, { 2, 16 }, 18, 6 },
};

const cs_cb_desc *cs_cb_desc_of(chess_type type) {
    for (int i = 0; i < CB_NTYPES; i++)
        if (cs_cb_descs[i].type == type) return &cs_cb_descs[i];
    return NULL;
}

int chess_cb_supported(chess_type type) { return cs_cb_desc_of(type) != NULL; }

int64_t chess_cb_group_size(chess_type type) {
    const cs_cb_desc *D = cs_cb_desc_of(type);
    return D ? D->B : 0;
}

int chess_cb_check(chess_type type, int64_t n_in, int64_t n_out, size_t nbytes) {
    const cs_cb_desc *D = cs_cb_desc_of(type);
    if (!D) return CHESS_ERR_TYPE;
    if (n_in <= 0 || n_out <= 0 || n_in % D->B != 0) return CHESS_ERR_SHAPE;
    if (D->B > 1 && n_out % 32 != 0) return CHESS_ERR_SHAPE;
    if (n_out > INT32_MAX || n_in > INT32_MAX) return CHESS_ERR_SHAPE;
    const uint64_t groups = (uint64_t)(n_in / D->B);
    if (groups > SIZE_MAX / D->S / (uint64_t)n_out) return CHESS_ERR_SHAPE;
    if (nbytes != (size_t)groups * (size_t)n_out * D->S) return CHESS_ERR_SHAPE;
    return CHESS_OK;
}

/* ---------------- one block <-> scale bytes + values ----------------
 * A block of a row, split into its scale bytes sc (the fields in section order) and its
 * B unsigned values v (the integers the block stores, before offset or scale). */

static void cs_cb_block_split(const cs_cb_desc *D, const uint8_t *blk, uint8_t *sc, uint8_t *v) {
    switch (D->index) {
    case CB_Q8_0:
        memcpy(sc, blk, 2);
        memcpy(v, blk + 2, 32);
        break;
    case CB_Q4_0:
    case CB_Q4_1: {
        const uint8_t *qs = blk + D->sc;
        memcpy(sc, blk, D->sc);
        for (int j = 0; j < 16; j++) { v[j] = qs[j] & 15; v[j + 16] = qs[j] >> 4; }
        break;
    }
    case CB_Q5_0:
    case CB_Q5_1: {
        uint32_t qh;
        memcpy(sc, blk, D->sc);
        memcpy(&qh, blk + D->sc, 4);
        const uint8_t *qs = blk + D->sc + 4;
        for (int j = 0; j < 16; j++) {
            v[j] = (uint8_t)((qs[j] & 15) | ((qh >> j) & 1) << 4);
            v[j + 16] = (uint8_t)((qs[j] >> 4) | ((qh >> (j + 16)) & 1) << 4);
        }
        break;
    }
    case CB_Q4_K: {
        memcpy(sc, blk, 16);
        const uint8_t *qs = blk + 16;
        for (int j = 0; j < 4; j++)
            for (int l = 0; l < 32; l++) { v[64 * j + l] = qs[32 * j + l] & 15; v[64 * j + 32 + l] = qs[32 * j + l] >> 4; }
        break;
    }
    case CB_Q5_K: {
        memcpy(sc, blk, 16);
        const uint8_t *qh = blk + 16, *qs = blk + 48;
        for (int j = 0; j < 4; j++)
            for (int l = 0; l < 32; l++) {
                v[64 * j + l] = (uint8_t)((qs[32 * j + l] & 15) | ((qh[l] >> (2 * j)) & 1) << 4);
                v[64 * j + 32 + l] = (uint8_t)((qs[32 * j + l] >> 4) | ((qh[l] >> (2 * j + 1)) & 1) << 4);
            }
        break;
    }
    case CB_Q6_K: {
        const uint8_t *ql = blk, *qh = blk + 128;
        memcpy(sc, blk + 208, 2);      /* d */
        memcpy(sc + 2, blk + 192, 16); /* scales */
        for (int h = 0; h < 2; h++)
            for (int l = 0; l < 32; l++) {
                const uint8_t *a = ql + 64 * h, *b = qh + 32 * h;
                uint8_t *o = v + 128 * h;
                o[l] = (uint8_t)((a[l] & 15) | ((b[l] >> 0) & 3) << 4);
                o[l + 32] = (uint8_t)((a[l + 32] & 15) | ((b[l] >> 2) & 3) << 4);
                o[l + 64] = (uint8_t)((a[l] >> 4) | ((b[l] >> 4) & 3) << 4);
                o[l + 96] = (uint8_t)((a[l + 32] >> 4) | ((b[l] >> 6) & 3) << 4);
            }
        break;
    }
    }
}

static void cs_cb_block_join(const cs_cb_desc *D, const uint8_t *sc, const uint8_t *v, uint8_t *blk) {
    switch (D->index) {
    case CB_Q8_0:
        memcpy(blk, sc, 2);
        memcpy(blk + 2, v, 32);
        break;
    case CB_Q4_0:
    case CB_Q4_1: {
        uint8_t *qs = blk + D->sc;
        memcpy(blk, sc, D->sc);
        for (int j = 0; j < 16; j++) qs[j] = (uint8_t)((v[j] & 15) | (v[j + 16] << 4));
        break;
    }
    case CB_Q5_0:
    case CB_Q5_1: {
        uint32_t qh = 0;
        uint8_t *qs = blk + D->sc + 4;
        memcpy(blk, sc, D->sc);
        for (int j = 0; j < 16; j++) {
            qs[j] = (uint8_t)((v[j] & 15) | ((v[j + 16] & 15) << 4));
            qh |= (uint32_t)((v[j] >> 4) & 1) << j | (uint32_t)((v[j + 16] >> 4) & 1) << (j + 16);
        }
        memcpy(blk + D->sc, &qh, 4);
        break;
    }
    case CB_Q4_K: {
        memcpy(blk, sc, 16);
        uint8_t *qs = blk + 16;
        for (int j = 0; j < 4; j++)
            for (int l = 0; l < 32; l++) qs[32 * j + l] = (uint8_t)(v[64 * j + l] | (v[64 * j + 32 + l] << 4));
        break;
    }
    case CB_Q5_K: {
        memcpy(blk, sc, 16);
        uint8_t *qh = blk + 16, *qs = blk + 48;
        memset(qh, 0, 32);
        for (int j = 0; j < 4; j++)
            for (int l = 0; l < 32; l++) {
                const uint8_t lo = v[64 * j + l], hi = v[64 * j + 32 + l];
                qs[32 * j + l] = (uint8_t)((lo & 15) | ((hi & 15) << 4));
                qh[l] |= (uint8_t)(((lo >> 4) & 1) << (2 * j) | ((hi >> 4) & 1) << (2 * j + 1));
            }
        break;
    }
    case CB_Q6_K: {
        uint8_t *ql = blk, *qh = blk + 128;
        memcpy(blk + 208, sc, 2);
        memcpy(blk + 192, sc + 2, 16);
        for (int h = 0; h < 2; h++)
            for (int l = 0; l < 32; l++) {
                const uint8_t *o = v + 128 * h;
                uint8_t *a = ql + 64 * h, *b = qh + 32 * h;
                a[l] = (uint8_t)((o[l] & 15) | ((o[l + 64] & 15) << 4));
                a[l + 32] = (uint8_t)((o[l + 32] & 15) | ((o[l + 96] & 15) << 4));
                b[l] = (uint8_t)((o[l] >> 4) | (o[l + 32] >> 4) << 2 | (o[l + 64] >> 4) << 4 | (o[l + 96] >> 4) << 6);
            }
        break;
    }
    }
}

/* ---------------- one column record, one unit of 32 rows <-> 32 values ---------------- */

static void cs_cb_unit_get(const cs_cb_desc *D, const uint8_t *col, int64_t R, int64_t u, uint8_t *v) {
    if (D->bits == 8) { memcpy(v, col + 32 * u, 32); return; }
    const uint8_t *nib = col + 16 * u;
    for (int b = 0; b < 16; b++) { v[b] = nib[b] & 15; v[b + 16] = nib[b] >> 4; }
    if (D->bits == 5) {
        uint32_t hb;
        memcpy(&hb, col + R / 2 + 4 * u, 4);
        for (int b = 0; b < 32; b++) v[b] |= (uint8_t)(((hb >> b) & 1) << 4);
    } else if (D->bits == 6) {
        const uint8_t *p2 = col + R / 2 + 8 * u;
        for (int b = 0; b < 32; b++) v[b] |= (uint8_t)(((p2[b & 7] >> (2 * (b >> 3))) & 3) << 4);
    }
}

static void cs_cb_unit_put(const cs_cb_desc *D, uint8_t *col, int64_t R, int64_t u, const uint8_t *v) {
    if (D->bits == 8) { memcpy(col + 32 * u, v, 32); return; }
    uint8_t *nib = col + 16 * u;
    for (int b = 0; b < 16; b++) nib[b] = (uint8_t)((v[b] & 15) | ((v[b + 16] & 15) << 4));
    if (D->bits == 5) {
        uint32_t hb = 0;
        for (int b = 0; b < 32; b++) hb |= (uint32_t)((v[b] >> 4) & 1) << b;
        memcpy(col + R / 2 + 4 * u, &hb, 4);
    } else if (D->bits == 6) {
        uint8_t *p2 = col + R / 2 + 8 * u;
        for (int b = 0; b < 8; b++)
            p2[b] = (uint8_t)(((v[b] >> 4) & 3) | ((v[b + 8] >> 4) & 3) << 2 | ((v[b + 16] >> 4) & 3) << 4 | ((v[b + 24] >> 4) & 3) << 6);
    }
}

/* ---------------- whole tensor: row layout <-> column-block layout ---------------- */

/* ---- fast cb -> rows for Q4_0, Q4_1, Q4_K and Q8_0 (the prefill route restores the row
 * layout every batch): 8x8 byte transposes in 64-bit words instead of a value at a time
 * (45 ms -> see the commit for a 7B W_down Q4_0 on one thread) ---- */

/* x[i] byte k = M[i][k]  ->  x[i] byte k = M[k][i] (three rounds of masked swaps) */
static inline void cs_t8x8(uint64_t *x) {
    for (int i = 0; i < 8; i += 2) {
        const uint64_t t = ((x[i] >> 8) ^ x[i + 1]) & 0x00ff00ff00ff00ffull;
        x[i + 1] ^= t; x[i] ^= t << 8;
    }
    for (int i = 0; i < 8; i += (i % 4 == 1) ? 3 : 1) {
        const uint64_t t = ((x[i] >> 16) ^ x[i + 2]) & 0x0000ffff0000ffffull;
        x[i + 2] ^= t; x[i] ^= t << 16;
    }
    for (int i = 0; i < 4; i++) {
        const uint64_t t = ((x[i] >> 32) ^ x[i + 4]) & 0x00000000ffffffffull;
        x[i + 4] ^= t; x[i] ^= t << 32;
    }
}

/* The 16 bytes of unit u of 16 columns (cols[0..15]) transposed: t[2b + h] = byte b of
 * columns 8h .. 8h+7 (b = 0..15). */
static inline void cs_t16_cols(const uint8_t *const *cols, size_t off, uint64_t *t) {
    for (int h = 0; h < 2; h++)
        for (int bh = 0; bh < 2; bh++) {
            uint64_t x[8];
            for (int k = 0; k < 8; k++) memcpy(&x[k], cols[8 * h + k] + off + 8 * bh, 8);
            cs_t8x8(x);
            for (int i = 0; i < 8; i++) t[2 * (8 * bh + i) + h] = x[i];
        }
}

/* nibble qs bytes [qo, qo + 16) of a block from channels lo .. lo+15 (low nibbles) and
 * hi .. hi+15 (high nibbles): the pairs of each type's block */
typedef struct { int lo, hi, qo; } cs_nib_pair;

/* Q6_K's qh bytes of the 32 rows of unit u (blk0: row 32u's block of this group): byte
 * 32h + l of a row packs the 2-bit highs of channels 128h + l + 32k (k = 0..3) at bits 2k.
 * A channel's unit plane is one 64-bit word, row i's bits at 8 (i & 7) + 2 (i >> 3): for
 * j = i >> 3, masking the four channels' words shifted by 2j and or-ing them 2k apart gives
 * a word whose byte b is row 8j + b's qh byte; eight such words of consecutive l transposed
 * give each row's 8 consecutive qh bytes. */
static void cs_cb_q6_qh_unit(const uint8_t *const *cols, int64_t R, int64_t u, uint8_t *blk0, size_t row_bytes) {
    const uint64_t m2 = 0x0303030303030303ull;
    for (int h = 0; h < 2; h++)
        for (int l0 = 0; l0 < 32; l0 += 8) {
            uint64_t p[8][4];
            for (int ll = 0; ll < 8; ll++)
                for (int k = 0; k < 4; k++) memcpy(&p[ll][k], cols[128 * h + l0 + ll + 32 * k] + R / 2 + 8 * u, 8);
            for (int j = 0; j < 4; j++) {
                uint64_t x[8];
                for (int ll = 0; ll < 8; ll++)
                    x[ll] = ((p[ll][0] >> (2 * j)) & m2) | (((p[ll][1] >> (2 * j)) & m2) << 2) |
                            (((p[ll][2] >> (2 * j)) & m2) << 4) | (((p[ll][3] >> (2 * j)) & m2) << 6);
                cs_t8x8(x);
                for (int b = 0; b < 8; b++) memcpy(blk0 + (size_t)(8 * j + b) * row_bytes + 128 + 32 * h + l0, &x[b], 8);
            }
        }
}

/* rows: the buffer of row rbase (rows before it are not touched) */
static int cs_cb_fast_rows(const cs_cb_desc *D, const uint8_t *cb, uint8_t *rows, int64_t rbase, int64_t n_in, int64_t R,
                           int64_t u0, int64_t u1) {
    cs_nib_pair pairs[8];
    int np = 0;
    size_t qs_off; /* where the nibbles / bytes start in the block */
    switch (D->index) {
    case CB_Q4_0: case CB_Q4_1: pairs[np++] = (cs_nib_pair){ 0, 16, 0 }; qs_off = D->sc; break;
    case CB_Q4_K:
        for (int j = 0; j < 4; j++)
            for (int s = 0; s < 2; s++) pairs[np++] = (cs_nib_pair){ 64 * j + 16 * s, 64 * j + 32 + 16 * s, 32 * j + 16 * s };
        qs_off = 16;
        break;
    case CB_Q6_K: /* ql: the nibble pairs of each 128-channel half; qh (below): the 2-bit planes */
        for (int h = 0; h < 2; h++)
            for (int s = 0; s < 2; s++) {
                pairs[np++] = (cs_nib_pair){ 128 * h + 16 * s, 128 * h + 64 + 16 * s, 64 * h + 16 * s };
                pairs[np++] = (cs_nib_pair){ 128 * h + 32 + 16 * s, 128 * h + 96 + 16 * s, 64 * h + 32 + 16 * s };
            }
        qs_off = 0;
        break;
    case CB_Q8_0: qs_off = 2; break;
    default: return 0;
    }
    const int64_t G = n_in / D->B;
    const size_t row_bytes = (size_t)G * D->S;
    const uint64_t m4 = 0x0f0f0f0f0f0f0f0full;
    const uint8_t *cols[256];
    for (int64_t uc = u0; uc < u1; uc += 4)
        for (int64_t g = 0; g < G; g++) {
            const uint8_t *grp = cb + (size_t)g * cs_cb_group_bytes(D, R);
            for (int64_t c = 0; c < D->B; c++) cols[c] = cs_cb_col(D, grp, R, c);
            if (g + 1 < G) { /* the next group's lines of these rows: a column stream each, too many for the hardware */
                const uint8_t *nx = grp + cs_cb_group_bytes(D, R);
                const int64_t nu = u1 - uc < 4 ? u1 - uc : 4;
                const size_t cb_ = cs_cb_col_bytes(D, R), per = (size_t)(nu * 32 * D->bits / 8);
                for (int64_t c = 0; c < D->B; c++)
                    for (size_t o = 0; o < per; o += 64) __builtin_prefetch(nx + (size_t)R * D->sc + (size_t)c * cb_ + (size_t)(uc * 32 * D->bits / 8) + o, 0, 3);
                for (size_t o = 0; o < D->sc; o += 2) __builtin_prefetch(nx + (size_t)R * o + (size_t)(uc * 32) * 2, 0, 3);
            }
            for (int64_t u = uc; u < u1 && u < uc + 4; u++) {
                uint8_t *blk0 = rows + (size_t)(32 * u - rbase) * row_bytes + (size_t)g * D->S;
                for (int i = 0; i < 32; i++) { /* the scale fields of the 32 rows (sizes 2, 12, 16: constant copies) */
                    uint8_t *dst = blk0 + (size_t)i * row_bytes;
                    const int64_t r = 32 * u + i;
                    if (D->index == CB_Q6_K) { /* d last, the 16 sub-block scales before it */
                        memcpy(dst + 208, grp + 2 * r, 2);
                        memcpy(dst + 192, grp + 2 * R + 16 * r, 16);
                        continue;
                    }
                    memcpy(dst, grp + 2 * r, 2);
                    if (D->nf > 1) memcpy(dst + 2, grp + 2 * R + 2 * r, 2);
                    if (D->nf > 2) memcpy(dst + 4, grp + 4 * R + 12 * r, 12);
                }
                if (D->index == CB_Q6_K) cs_cb_q6_qh_unit(cols, R, u, blk0, row_bytes);
                if (D->index == CB_Q8_0) { /* a 32 x 32 byte transpose: four 16-channel halves of 16-byte halves */
                    for (int ch = 0; ch < 2; ch++)
                        for (int bh = 0; bh < 2; bh++) {
                            uint64_t t[32];
                            cs_t16_cols(cols + 16 * ch, (size_t)(32 * u + 16 * bh), t);
                            for (int b = 0; b < 16; b++)
                                memcpy(blk0 + (size_t)(16 * bh + b) * row_bytes + qs_off + 16 * ch, &t[2 * b], 16);
                        }
                    continue;
                }
                for (int p = 0; p < np; p++) {
                    uint64_t A[32], Bt[32];
                    cs_t16_cols(cols + pairs[p].lo, (size_t)(16 * u), A);
                    cs_t16_cols(cols + pairs[p].hi, (size_t)(16 * u), Bt);
                    for (int b = 0; b < 16; b++) { /* row 32u + b: low nibbles; row 32u + 16 + b: high nibbles */
                        uint64_t lo[2], hi[2];
                        for (int h = 0; h < 2; h++) {
                            lo[h] = (A[2 * b + h] & m4) | ((Bt[2 * b + h] & m4) << 4);
                            hi[h] = ((A[2 * b + h] >> 4) & m4) | (Bt[2 * b + h] & ~m4);
                        }
                        memcpy(blk0 + (size_t)b * row_bytes + qs_off + (size_t)pairs[p].qo, lo, 16);
                        memcpy(blk0 + (size_t)(16 + b) * row_bytes + qs_off + (size_t)pairs[p].qo, hi, 16);
                    }
                }
            }
        }
    return 1;
}

/* Rows [u0*32, u1*32) of a block type, one group at a time: dir 0 rows -> cb, 1 cb -> rows;
 * rows: the buffer of row rbase. vals[c * 32 + i]: value of channel c in row 32u + i. */
static void cs_cb_convert_units(const cs_cb_desc *D, uint8_t *cb, uint8_t *rows, int64_t rbase, int64_t n_in, int64_t R,
                                int64_t u0, int64_t u1, int dir) {
    const int64_t G = n_in / D->B;
    const size_t row_bytes = (size_t)G * D->S;
    uint8_t vals[256 * 32], v[256], sc[32];
    /* 4 units (128 rows) per pass over the groups: a column's 64 bytes of them are one
     * cache line, read once, and the 128 rows' blocks of adjacent groups are written while
     * their lines are still in L1 */
    for (int64_t uc = u0; uc < u1; uc += 4)
    for (int64_t g = 0; g < G; g++) {
        uint8_t *grp = cb + (size_t)g * cs_cb_group_bytes(D, R);
        for (int64_t u = uc; u < u1 && u < uc + 4; u++) {
            if (dir == 1)
                for (int64_t c = 0; c < D->B; c++) cs_cb_unit_get(D, cs_cb_col(D, grp, R, c), R, u, vals + c * 32);
            for (int i = 0; i < 32; i++) {
                const int64_t r = 32 * u + i;
                uint8_t *blk = rows + (size_t)(r - rbase) * row_bytes + (size_t)g * D->S;
                if (dir == 0) {
                    cs_cb_block_split(D, blk, sc, v);
                    for (int64_t c = 0; c < D->B; c++) vals[c * 32 + i] = v[c];
                    size_t o = 0;
                    for (int f = 0; f < D->nf; f++) {
                        memcpy(grp + (size_t)R * o + (size_t)r * D->fw[f], sc + o, D->fw[f]);
                        o += D->fw[f];
                    }
                } else {
                    size_t o = 0;
                    for (int f = 0; f < D->nf; f++) {
                        memcpy(sc + o, grp + (size_t)R * o + (size_t)r * D->fw[f], D->fw[f]);
                        o += D->fw[f];
                    }
                    for (int64_t c = 0; c < D->B; c++) v[c] = vals[c * 32 + i];
                    cs_cb_block_join(D, sc, v, blk);
                }
            }
            if (dir == 0)
                for (int64_t c = 0; c < D->B; c++) cs_cb_unit_put(D, (uint8_t *)cs_cb_col(D, grp, R, c), R, u, vals + c * 32);
        }
    }
}

/* Float types: element transpose of rows [r0, r1), in tiles (cache-friendly both ways);
 * rows: the buffer of row rbase. */
static void cs_cb_convert_elems(const cs_cb_desc *D, uint8_t *cb, uint8_t *rows, int64_t rbase, int64_t n_in, int64_t R,
                                int64_t r0, int64_t r1, int dir) {
    enum { TILE = 32 };
    const size_t S = D->S;
    for (int64_t rt = r0; rt < r1; rt += TILE)
        for (int64_t ct = 0; ct < n_in; ct += TILE)
            for (int64_t r = rt; r < r1 && r < rt + TILE; r++)
                for (int64_t c = ct; c < n_in && c < ct + TILE; c++) {
                    uint8_t *pr = rows + ((size_t)(r - rbase) * (size_t)n_in + (size_t)c) * S;
                    uint8_t *pc = cb + ((size_t)c * (size_t)R + (size_t)r) * S;
                    if (dir == 0) memcpy(pc, pr, S);
                    else memcpy(pr, pc, S);
                }
}

static int cs_cb_check_shape(const cs_cb_desc *D, int64_t n_in, int64_t n_out) {
    if (!D) return CHESS_ERR_TYPE;
    if (n_in <= 0 || n_out <= 0 || n_in % D->B != 0 || n_in > INT32_MAX || n_out > INT32_MAX) return CHESS_ERR_SHAPE;
    if (D->B > 1 && n_out % 32 != 0) return CHESS_ERR_SHAPE;
    return CHESS_OK;
}

int chess_cb_from_rows(chess_type type, const void *rows, int64_t n_in, int64_t n_out, void *cb) {
    const cs_cb_desc *D = cs_cb_desc_of(type);
    const int rc = cs_cb_check_shape(D, n_in, n_out);
    if (rc) return rc;
    if (!rows || !cb) return CHESS_ERR_NULL;
    if (D->B == 1) cs_cb_convert_elems(D, cb, (uint8_t *)rows, 0, n_in, n_out, 0, n_out, 0);
    else cs_cb_convert_units(D, cb, (uint8_t *)rows, 0, n_in, n_out, 0, n_out / 32, 0);
    return CHESS_OK;
}

int chess_cb_to_rows(chess_type type, const void *cb, int64_t n_in, int64_t n_out, void *rows, int ith, int nth) {
    const cs_cb_desc *D = cs_cb_desc_of(type);
    const int rc = cs_cb_check_shape(D, n_in, n_out);
    if (rc) return rc;
    if (!rows || !cb) return CHESS_ERR_NULL;
    if (nth < 1 || ith < 0 || ith >= nth) return CHESS_ERR_THREAD;
    /* threads: disjoint ranges of 32-row units */
    const int64_t units = (n_out + 31) / 32;
    const int64_t u0 = units * ith / nth, u1 = units * (ith + 1) / nth;
    if (D->B == 1) {
        const int64_t r1 = 32 * u1 < n_out ? 32 * u1 : n_out;
        cs_cb_convert_elems(D, (uint8_t *)cb, rows, 0, n_in, n_out, 32 * u0, r1, 1);
    } else if (!cs_cb_fast_rows(D, (const uint8_t *)cb, rows, 0, n_in, n_out, u0, u1)) {
        cs_cb_convert_units(D, (uint8_t *)cb, rows, 0, n_in, n_out, u0, u1, 1);
    }
    return CHESS_OK;
}

/* ---- cb -> 8-row interleaved blocks (chess_cb_panel_x8) ----
 * Rows 32u + 8m + i (i = 0..7) of channel c are the low (m < 2) or high (m >= 2) nibbles of
 * the 8 bytes at 16u + 8(m & 1) of c's column record: one 64-bit word. The words of the
 * eight channels of a chunk's low nibbles, each combined with the word of its high-nibble
 * channel, form the 8 x 8 byte matrix [channel][row]; transposed, row i's word is the
 * chunk: bytes 8h .. 8h+7 of its block's nibbles (cs_x8_desc). */
static void cs_cb_panel_x8_ref(const cs_cb_desc *D, const uint8_t *cb, int64_t G, int64_t R, int64_t u0, int64_t u1, uint8_t *out) {
    const cs_x8_desc X = cs_x8_desc_of(D);
    const size_t gb = cs_cb_group_bytes(D, R), colb = cs_cb_col_bytes(D, R);
    const uint64_t m4 = 0x0f0f0f0f0f0f0f0full, flip = 0x0101010101010101ull * X.flip;
    for (int64_t uc = u0; uc < u1; uc += 4) {
        const int64_t ue = u1 - uc < 4 ? u1 : uc + 4;
        for (int64_t g = 0; g < G; g++) {
            const uint8_t *grp = cb + (size_t)g * gb, *cols = grp + (size_t)R * D->sc;
            if (g + 1 < G) { /* the next group's lines of these units: B column streams, too many for the hardware */
                const uint8_t *nx = grp + gb;
                for (int64_t c = 0; c < D->B; c++) __builtin_prefetch(nx + (size_t)R * D->sc + (size_t)c * colb + (size_t)(16 * uc), 0, 3);
                for (int f = 0, o = 0; f < D->nf; o += (int)D->fw[f++]) /* the scale fields of these rows */
                    for (size_t b = 0; b < 4 * 32 * D->fw[f]; b += 64) __builtin_prefetch(nx + (size_t)R * (size_t)o + (size_t)(32 * uc) * D->fw[f] + b, 0, 3);
            }
            for (int64_t u = uc; u < ue; u++) {
                for (int m = 0; m < 4; m++)
                    cs_x8_header(D, grp, R, 32 * u + 8 * m, out + ((size_t)(4 * (u - u0) + m) * (size_t)G + (size_t)g) * X.bytes);
                for (int half = 0; half < 2; half++)
                    for (int h = 0; h < X.nh; h++) {
                        const int c0 = cs_x8_lo_channel(D, h);
                        uint64_t lo[8], hi[8];
                        for (int j = 0; j < 8; j++) {
                            memcpy(&lo[j], cols + (size_t)(c0 + j) * colb + (size_t)(16 * u + 8 * half), 8);
                            memcpy(&hi[j], cols + (size_t)(c0 + X.hi_add + j) * colb + (size_t)(16 * u + 8 * half), 8);
                        }
                        for (int nib = 0; nib < 2; nib++) {
                            const int m = half + 2 * nib;
                            uint64_t x[8];
                            for (int j = 0; j < 8; j++)
                                x[j] = nib == 0 ? (lo[j] & m4) | ((hi[j] & m4) << 4) : ((lo[j] >> 4) & m4) | (hi[j] & ~m4);
                            cs_t8x8(x);
                            uint8_t *blk = out + ((size_t)(4 * (u - u0) + m) * (size_t)G + (size_t)g) * X.bytes;
                            for (int i = 0; i < 8; i++) {
                                const uint64_t v = x[i] ^ flip;
                                memcpy(blk + X.qs_off + 64 * h + 8 * i, &v, 8);
                            }
                        }
                    }
            }
        }
    }
}

int chess_cb_panel_x8(chess_type type, const void *cb, int64_t n_in, int64_t n_out, int64_t r0, int64_t r1, void *out) {
    const cs_cb_desc *D = cs_cb_desc_of(type);
    if (!D || (D->index != CB_Q4_0 && D->index != CB_Q4_K)) return CHESS_ERR_TYPE;
    const int rc = cs_cb_check_shape(D, n_in, n_out);
    if (rc) return rc;
    if (!cb || !out) return CHESS_ERR_NULL;
    if (r0 < 0 || r1 > n_out || r0 >= r1 || r0 % 32 != 0 || r1 % 32 != 0) return CHESS_ERR_SHAPE;
    const cs_cb_table *T = cs_cb_table_of(chess_get_isa());
    const cs_cb_panel_fn fn = T && T->panel_x8 ? T->panel_x8 : cs_cb_panel_x8_ref;
    fn(D, (const uint8_t *)cb, n_in / D->B, n_out, r0 / 32, r1 / 32, (uint8_t *)out);
    return CHESS_OK;
}

int chess_cb_rows_range(chess_type type, const void *cb, int64_t n_in, int64_t n_out, int64_t r0, int64_t r1, void *rows) {
    const cs_cb_desc *D = cs_cb_desc_of(type);
    const int rc = cs_cb_check_shape(D, n_in, n_out);
    if (rc) return rc;
    if (!rows || !cb) return CHESS_ERR_NULL;
    const int64_t unit = D->B == 1 ? 1 : 32;
    if (r0 < 0 || r1 > n_out || r0 >= r1 || r0 % unit != 0 || r1 % unit != 0) return CHESS_ERR_SHAPE;
    if (D->B == 1) cs_cb_convert_elems(D, (uint8_t *)cb, rows, r0, n_in, n_out, r0, r1, 1);
    else if (!cs_cb_fast_rows(D, (const uint8_t *)cb, rows, r0, n_in, n_out, r0 / 32, r1 / 32))
        cs_cb_convert_units(D, (uint8_t *)cb, rows, r0, n_in, n_out, r0 / 32, r1 / 32, 1);
    return CHESS_OK;
}

/* ---------------- activation preparation (identical on every ISA) ---------------- */

/* ggml's fp32 -> bf16 (round to nearest even, NaN quieted). */
static float cs_round_bf16(float f) {
    const uint32_t u = cs_f32_to_bits(f);
    if ((u & 0x7fffffffu) > 0x7f800000u) return cs_bits_to_f32(((u >> 16) | 64u) << 16);
    return cs_bits_to_f32(((u + (0x7fffu + ((u >> 16) & 1u))) >> 16) << 16);
}

void cs_cb_quantize_group(const cs_cb_desc *D, const float *xm, int8_t *q, float *d, float *s, int16_t *bsums) {
    if (D->B == 32) {
        /* quantize_row_q8_0 / q8_1 of ggml-cpu on this platform: x86 (AVX/AVX2 paths)
         * multiplies by 127/amax, AArch64 (NEON paths) by 1/d, both round half to even;
         * elsewhere ggml's generic code multiplies by 1/d and rounds half away from zero */
        float amax = 0.0f;
        for (int i = 0; i < 32; i++) {
            const float a = fabsf(xm[i]);
            amax = a > amax ? a : amax;
        }
        const float dd = amax / 127.0f;
#if defined(__x86_64__) || defined(__i386__)
        const float id = amax != 0.0f ? 127.0f / amax : 0.0f;
#define CS_CB_ROUND(v) nearbyintf(v)
#elif defined(__aarch64__)
        const float id = dd != 0.0f ? 1.0f / dd : 0.0f;
#define CS_CB_ROUND(v) nearbyintf(v)
#else
        const float id = dd != 0.0f ? 1.0f / dd : 0.0f;
#define CS_CB_ROUND(v) roundf(v)
#endif
        int32_t sum = 0;
        for (int i = 0; i < 32; i++) {
            int32_t v = (int32_t)CS_CB_ROUND(xm[i] * id);
            v = v > 127 ? 127 : v < -128 ? -128 : v;
            q[i] = (int8_t)v;
            sum += v;
        }
#undef CS_CB_ROUND
        *d = cs_fp16_to_f32(cs_f32_to_fp16(dd));
        if (s) *s = cs_fp16_to_f32(cs_f32_to_fp16(dd * (float)sum));
        return;
    }
    /* quantize_row_q8_K_ref: the signed value of largest magnitude (first one) sets the scale */
    float max = 0.0f, amax = 0.0f;
    for (int j = 0; j < 256; j++) {
        const float ax = fabsf(xm[j]);
        if (ax > amax) { amax = ax; max = xm[j]; }
    }
    if (amax == 0.0f) {
        *d = 0.0f;
        memset(q, 0, 256);
        memset(bsums, 0, 16 * sizeof(int16_t));
        return;
    }
    const float iscale = -127.0f / max;
    for (int j = 0; j < 256; j++) {
        const int32_t v = (int32_t)nearbyintf(iscale * xm[j]);
        q[j] = (int8_t)(v < 127 ? v : 127);
    }
    for (int j = 0; j < 16; j++) {
        int32_t sum = 0;
        for (int i = 0; i < 16; i++) sum += q[16 * j + i];
        bsums[j] = (int16_t)sum;
    }
    *d = 1.0f / iscale;
}

/* per-thread scratch: one block, grown on demand */
static _Thread_local struct { void *p; size_t n; } cs_cb_scratch;

void cs_cb_thread_release(void) {
    free(cs_cb_scratch.p);
    cs_cb_scratch.p = NULL;
    cs_cb_scratch.n = 0;
}

static void *cs_cb_get_scratch(size_t bytes) {
    if (cs_cb_scratch.n < bytes) {
        free(cs_cb_scratch.p);
        const size_t n = (bytes + bytes / 4 + 4096 + 63) & ~(size_t)63;
        cs_cb_scratch.p = aligned_alloc(64, n);
        cs_cb_scratch.n = cs_cb_scratch.p ? n : 0;
    }
    return cs_cb_scratch.p;
}

/* The token x prepared into J (this thread's scratch); returns the kept count, or -1
 * without memory. Only the groups with a kept channel are quantized. */
static int64_t cs_cb_prepare(const chess_spmv_cb_args *a, const cs_cb_desc *D, const float *x, int replay, cs_cb_job *J) {
    const int64_t n = a->n_in, G = n / D->B;
    size_t off = 0;
#define CS_CB_CARVE(T, cnt) (off = (off + 63) & ~(size_t)63, off += (size_t)(cnt) * sizeof(T), off - (size_t)(cnt) * sizeof(T))
    const size_t o_q = CS_CB_CARVE(int8_t, n), o_xf = CS_CB_CARVE(float, D->B == 1 ? n : 0);
    const size_t o_d = CS_CB_CARVE(float, G), o_s = CS_CB_CARVE(float, G), o_bs = CS_CB_CARVE(int16_t, n / 16 + 1);
    const size_t o_g = CS_CB_CARVE(int32_t, G), o_k = CS_CB_CARVE(int32_t, G + 1), o_c = CS_CB_CARVE(uint16_t, n);
    const size_t o_a = CS_CB_CARVE(int32_t, D->B == 256 ? 6 * a->n_out : 0); /* K-quant kernels' per-row scratch */
#undef CS_CB_CARVE
    uint8_t *base = cs_cb_get_scratch(off);
    if (!base) return -1;
    int8_t *q = (int8_t *)(base + o_q);
    float *xf = (float *)(base + o_xf), *d = (float *)(base + o_d), *s = (float *)(base + o_s);
    int16_t *bsums = (int16_t *)(base + o_bs);
    int32_t *groups = (int32_t *)(base + o_g), *kofs = (int32_t *)(base + o_k);
    uint16_t *kch = (uint16_t *)(base + o_c);
    const int q81 = D->index == CB_Q4_1 || D->index == CB_Q5_1;
    int64_t ng = 0, nk = 0;
    kofs[0] = 0;
    for (int64_t g = 0; g < G; g++) {
        float xm[256];
        const int64_t k0 = nk;
        for (int64_t c = 0; c < D->B; c++) {
            const int64_t j = g * D->B + c;
            const int k = replay ? cs_rc_keep(a->site, j) : cs_keep(x[j], a->tau, a->n_tau, j);
            xm[c] = k ? x[j] : 0.0f;
            kch[nk] = (uint16_t)c;
            nk += k;
        }
        if (nk == k0) continue;
        groups[ng] = (int32_t)g;
        kofs[++ng] = (int32_t)nk;
        switch (D->index) {
        case CB_F32: xf[g] = xm[0]; break;
        case CB_F16: xf[g] = cs_fp16_to_f32(cs_f32_to_fp16(xm[0])); break;
        case CB_BF16: xf[g] = cs_round_bf16(xm[0]); break;
        default: cs_cb_quantize_group(D, xm, q + g * D->B, &d[g], q81 ? &s[g] : NULL, bsums + g * (D->B / 16)); break;
        }
    }
    *J = (cs_cb_job){ D, (const uint8_t *)a->w, a->n_out, n, q, xf, d, s, bsums, groups, ng, kofs, kch, (int32_t *)(base + o_a) };
    return nk;
}

/* ---------------- portable reference kernel ---------------- */

/* Value of row r in a column record: the unsigned integer of §3.1 (Q8_0: the signed byte). */
static inline int cs_cb_value(const cs_cb_desc *D, const uint8_t *col, int64_t R, int64_t r) {
    const int64_t u = r >> 5;
    const int i = (int)(r & 31);
    if (D->bits == 8) return (int8_t)col[r];
    const uint8_t b = col[16 * u + (i & 15)];
    int v = i < 16 ? b & 15 : b >> 4;
    if (D->bits == 5) {
        uint32_t hb;
        memcpy(&hb, col + R / 2 + 4 * u, 4);
        v |= (int)((hb >> i) & 1) << 4;
    } else if (D->bits == 6) {
        v |= ((col[R / 2 + 8 * u + (i & 7)] >> (2 * (i >> 3))) & 3) << 4;
    }
    return v;
}

static void cs_cb_groups_ref(const cs_cb_job *J, int64_t i0, int64_t i1, int64_t r0, int64_t r1, float *y) {
    const cs_cb_desc *D = J->D;
    const int64_t R = J->R;
    for (int64_t r = r0; r < r1; r++) y[r] = 0.0f;
    for (int64_t i = i0; i < i1; i++) {
        const int64_t g = J->groups[i];
        const uint8_t *grp = J->w + (size_t)g * cs_cb_group_bytes(D, R);
        const uint16_t *kc = J->kch + J->kofs[i];
        const int64_t nk = J->kofs[i + 1] - J->kofs[i];
        if (D->B == 1) {
            const float xv = J->xf[g];
            for (int64_t r = r0; r < r1; r++) {
                float w;
                if (D->index == CB_F32) memcpy(&w, grp + 4 * r, 4);
                else if (D->index == CB_F16) w = cs_fp16_to_f32(cs_load_u16(grp + 2 * r));
                else w = cs_bf16_to_f32(cs_load_u16(grp + 2 * r));
                y[r] += w * xv;
            }
            continue;
        }
        const int8_t *q = J->q + g * D->B;
        const float dx = J->d[g];
        const int off = D->index == CB_Q4_0 ? 8 : D->index == CB_Q5_0 ? 16 : D->index == CB_Q6_K ? 32 : 0;
        for (int64_t r = r0; r < r1; r++) {
            /* exact integer sums per sub-block (of 32 for Q4_K/Q5_K, 16 for Q6_K; one otherwise) */
            const int sub = D->index == CB_Q6_K ? 16 : 32;
            int32_t isub[16] = { 0 };
            for (int64_t k = 0; k < nk; k++) {
                const int c = kc[k];
                isub[c / sub] += (cs_cb_value(D, cs_cb_col(D, grp, R, c), R, r) - off) * q[c];
            }
            const float dw = cs_fp16_to_f32(cs_load_u16(grp + 2 * r));
            float t;
            switch (D->index) {
            case CB_Q4_1:
            case CB_Q5_1: {
                const float mw = cs_fp16_to_f32(cs_load_u16(grp + 2 * R + 2 * r));
                t = (dw * dx) * (float)isub[0] + mw * J->s[g];
                break;
            }
            case CB_Q4_K:
            case CB_Q5_K: {
                const float dmin = cs_fp16_to_f32(cs_load_u16(grp + 2 * R + 2 * r));
                const uint8_t *scales = grp + 4 * R + 12 * r;
                const int16_t *bs = J->bsums + g * 16;
                int32_t isum = 0, msum = 0;
                for (int j = 0; j < 8; j++) {
                    int sc, m;
                    cs_k4_scale_min(j, scales, &sc, &m);
                    isum += sc * isub[j];
                    msum += m * (bs[2 * j] + bs[2 * j + 1]);
                }
                t = (dw * dx) * (float)isum - (dmin * dx) * (float)msum;
                break;
            }
            case CB_Q6_K: {
                const int8_t *scales = (const int8_t *)(grp + 2 * R + 16 * r);
                int32_t isum = 0;
                for (int j = 0; j < 16; j++) isum += scales[j] * isub[j];
                t = (dw * dx) * (float)isum;
                break;
            }
            default: t = (dw * dx) * (float)isub[0]; break;
            }
            y[r] += t;
        }
    }
}

/* Read-ceiling mode (CHESS_READ_CEILING=1, a timing instrument): the bytes a kernel reads
 * for these groups and rows - the scale sections and kept columns, in the kernels' order and
 * with their prefetch - touched one load per line, nothing computed, y = 0. */
static void cs_cb_groups_read(const cs_cb_job *J, int64_t i0, int64_t i1, int64_t r0, int64_t r1, float *y) {
    const cs_cb_desc *D = J->D;
    const int64_t R = J->R;
    static _Atomic uint64_t sink;
    uint64_t acc = 0;
    cs_cb_pf P;
    cs_cb_pf_init(&P, J, i0, i1, r0, r1, 0);
    for (int64_t i = i0; i < i1; i++) {
        const uint8_t *grp = J->w + (size_t)J->groups[i] * cs_cb_group_bytes(D, R);
        const uint16_t *kc = J->kch + J->kofs[i];
        const int64_t nk = J->kofs[i + 1] - J->kofs[i];
        for (int64_t rb = r0; rb < r1; rb += CS_CB_PF_ROWS) {
            const int64_t n = r1 - rb < CS_CB_PF_ROWS ? r1 - rb : CS_CB_PF_ROWS;
            cs_cb_pf_run(&P, cs_cb_block_bytes(J, i, n));
            size_t o = 0;
            for (int f = 0; f < D->nf; f++) {
                const uint8_t *p = grp + (size_t)R * o + (size_t)rb * D->fw[f];
                for (size_t b = 0; b < (size_t)n * D->fw[f]; b += 64) acc ^= p[b];
                o += D->fw[f];
            }
            for (int64_t k = 0; k < nk; k++) {
                const uint8_t *col = cs_cb_col(D, grp, R, kc[k]);
                const size_t nib = D->bits >= 8 ? (size_t)D->bits / 8 : 0;
                const uint8_t *p = nib ? col + (size_t)rb * nib : col + rb / 2;
                const size_t len = nib ? (size_t)n * nib : (size_t)n / 2;
                for (size_t b = 0; b < len; b += 64) acc ^= p[b];
                if (D->bits == 5 || D->bits == 6) acc ^= col[R / 2 + rb * (D->bits - 4) / 8];
            }
        }
    }
    atomic_fetch_xor_explicit(&sink, acc, memory_order_relaxed);
    for (int64_t r = r0; r < r1; r++) y[r] = 0.0f;
}

const cs_cb_table cs_cb_table_ref = { "ref", { 0 }, NULL };

static const cs_cb_table *cs_cb_tables[CHESS_ISA_COUNT] = {
    [CHESS_ISA_REF] = &cs_cb_table_ref,
#ifdef CHESS_HAVE_AVX2
    [CHESS_ISA_AVX2] = &cs_cb_table_avx2,
    [CHESS_ISA_AVX2_VNNI] = &cs_cb_table_avx2_vnni,
#endif
#ifdef CHESS_HAVE_AVX512
    [CHESS_ISA_AVX512] = &cs_cb_table_avx512,
    [CHESS_ISA_AVX512_VBMI] = &cs_cb_table_avx512_vbmi,
#endif
#ifdef CHESS_HAVE_NEON
    [CHESS_ISA_NEON] = &cs_cb_table_neon,
#endif
};

const cs_cb_table *cs_cb_table_of(chess_isa isa) {
    return ((int)isa < 0 || isa >= CHESS_ISA_COUNT) ? NULL : cs_cb_tables[isa];
}

static cs_cb_groups_fn cs_cb_kernel(const cs_cb_desc *D, int64_t n_tokens) {
    if (cs_rc_mode(n_tokens)) return cs_cb_groups_read;
    const cs_cb_table *T = cs_cb_tables[chess_get_isa()];
    return T && T->groups[D->index] ? T->groups[D->index] : cs_cb_groups_ref;
}

/* ---------------- entry points ---------------- */

static int cs_cb_check_args(const chess_spmv_cb_args *a, int ith, int nth, const cs_cb_desc **Dout) {
    if (!a) return CHESS_ERR_NULL;
    const cs_cb_desc *D = cs_cb_desc_of(a->type);
    int rc = cs_cb_check_shape(D, a->n_in, a->n_out);
    if (rc) return rc;
    if (!a->w || !a->x || !a->y) return CHESS_ERR_NULL;
    if (a->n_tokens <= 0) return CHESS_ERR_SHAPE;
    if (a->n_tokens > 1 && (a->x_nb1 < (size_t)a->n_in * sizeof(float) || a->y_nb1 < (size_t)a->n_out * sizeof(float)))
        return CHESS_ERR_STRIDE;
    if (nth < 1 || ith < 0 || ith >= nth) return CHESS_ERR_THREAD;
    if (a->n_tau != 0 && a->n_tau != 1 && a->n_tau != a->n_in) return CHESS_ERR_TAU;
    if (a->n_tau > 0 && !a->tau) return CHESS_ERR_NULL;
    if (a->site >= CHESS_MAX_SITES) return CHESS_ERR_SITE;
    *Dout = D;
    return CHESS_OK;
}

int chess_spmv_cb(const chess_spmv_cb_args *a, int ith, int nth) {
    const cs_cb_desc *D;
    const int rc = cs_cb_check_args(a, ith, nth, &D);
    if (rc) return rc;
    const cs_cb_groups_fn fn = cs_cb_kernel(D, a->n_tokens);
    const int replay = cs_rc_mode(a->n_tokens) == 2;
    /* this thread's rows: whole units of 32 */
    const int64_t units = (a->n_out + 31) / 32;
    const int64_t r0 = 32 * (units * ith / nth), r1e = 32 * (units * (ith + 1) / nth);
    const int64_t r1 = r1e < a->n_out ? r1e : a->n_out;
    int64_t kept_total = 0;
    for (int64_t t = 0; t < a->n_tokens; t++) {
        if (r0 >= r1 && ith != 0) break; /* no rows; thread 0 still counts */
        const float *x = (const float *)((const char *)a->x + (size_t)t * a->x_nb1);
        float *y = (float *)((char *)a->y + (size_t)t * a->y_nb1);
        cs_cb_job J;
        const int64_t kept = cs_cb_prepare(a, D, x, replay, &J);
        if (kept < 0) return CHESS_ERR_NOMEM;
        kept_total += kept;
        if (r0 < r1) fn(&J, 0, J.ngroups, r0, r1, y);
    }
    if (ith == 0) {
        const uint64_t seen = (uint64_t)a->n_in * (uint64_t)a->n_tokens;
        cs_count_site(a->site, seen, seen - (uint64_t)kept_total);
    }
    return CHESS_OK;
}

int chess_spmv_cb_parts(const chess_spmv_cb_args *a, int n_parts, int ith, int nth) {
    const cs_cb_desc *D;
    const int rc = cs_cb_check_args(a, ith, nth, &D);
    if (rc) return rc;
    if (a->n_tokens != 1 || n_parts < 1 || n_parts > CHESS_MAX_PARTS) return CHESS_ERR_SHAPE;
    if (n_parts > 1 && a->y_nb1 < (size_t)a->n_out * sizeof(float)) return CHESS_ERR_STRIDE;
    if (ith >= n_parts && ith != 0) return CHESS_OK; /* no part for this thread */
    cs_cb_job J;
    const int64_t kept = cs_cb_prepare(a, D, a->x, cs_rc_mode(1) == 2, &J);
    if (kept < 0) return CHESS_ERR_NOMEM;
    const cs_cb_groups_fn fn = cs_cb_kernel(D, 1);
    for (int p = ith; p < n_parts; p += nth) {
        const int64_t i0 = J.ngroups * p / n_parts, i1 = J.ngroups * (p + 1) / n_parts;
        fn(&J, i0, i1, 0, a->n_out, (float *)((char *)a->y + (size_t)p * a->y_nb1));
    }
    if (ith == 0) cs_count_site(a->site, (uint64_t)a->n_in, (uint64_t)(a->n_in - kept));
    return CHESS_OK;
}
