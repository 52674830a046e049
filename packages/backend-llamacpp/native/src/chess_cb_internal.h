/* Column-block layout (docs/gguf-sparse.md §3.1): type descriptors, the prepared
 * activations of one token, and the per-ISA kernel table. Shared by chess_cb.c (layout,
 * dispatcher, portable reference) and the SIMD files chess_cb_*.c. */
#ifndef CHESS_CB_INTERNAL_H
#define CHESS_CB_INTERNAL_H

#include "chess_internal.h"

/* Dense index of the column-block types (tables). */
enum { CB_F32, CB_F16, CB_BF16, CB_Q8_0, CB_Q4_0, CB_Q4_1, CB_Q5_0, CB_Q5_1, CB_Q4_K, CB_Q5_K, CB_Q6_K, CB_NTYPES };

/* One type in column-block form. A group record is R * S bytes: the scale section (its
 * fields, each an array over the R rows of fw[f] bytes per row, in order), then B column
 * records of R * bits / 8 bytes. */
typedef struct {
    int index;       /* CB_* */
    chess_type type;
    int64_t B;       /* input channels per group (the type's block size) */
    size_t S;        /* bytes per block (float types: per element) */
    int nf;          /* scale fields */
    size_t fw[3];    /* bytes per row of each field */
    size_t sc;       /* scale bytes per row (sum of fw) */
    int bits;        /* bits per value in a column record (4, 5, 6, 8, 16, 32) */
} cs_cb_desc;

const cs_cb_desc *cs_cb_desc_of(chess_type type); /* NULL if the type has no column-block form */

static inline size_t cs_cb_group_bytes(const cs_cb_desc *D, int64_t R) { return (size_t)R * D->S; }
static inline size_t cs_cb_col_bytes(const cs_cb_desc *D, int64_t R) { return (size_t)R * (size_t)D->bits / 8; }
/* Column record of channel c (0..B-1) of a group record. */
static inline const uint8_t *cs_cb_col(const cs_cb_desc *D, const uint8_t *grp, int64_t R, int64_t c) {
    return grp + (size_t)R * D->sc + (size_t)c * cs_cb_col_bytes(D, R);
}

/* Q4_K / Q5_K: 6-bit scale and min of sub-block j (0..7) from the 12 packed bytes. */
static inline void cs_k4_scale_min(int j, const uint8_t *q, int *sc, int *m) {
    if (j < 4) {
        *sc = q[j] & 63;
        *m = q[j + 4] & 63;
    } else {
        *sc = (q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4);
        *m = (q[j + 4] >> 4) | ((q[j] >> 6) << 4);
    }
}

/* The activations of one token prepared for the column-block kernels (chess_cb.c builds
 * them, identically for every ISA): masked (dropped = 0) and quantized as ggml quantizes
 * them for the type's vec_dot (x86 paths), plus the groups with a kept channel. */
typedef struct {
    const cs_cb_desc *D;
    const uint8_t *w;      /* the weight, column-block form */
    int64_t R, n_in;
    const int8_t *q;       /* block types: quantized activation of each channel */
    const float *xf;       /* float types: the activation as the dot sees it (fp16 / bf16 rounded) */
    const float *d;        /* per group: the activation block's scale (Q8_0 / Q8_1: the fp16 value) */
    const float *s;        /* per group, Q8_1: the block's s (fp16 of d * sum q) */
    const int16_t *bsums;  /* Q8_K: sums of q per 16 channels */
    const int32_t *groups; /* groups with a kept channel, ascending */
    int64_t ngroups;
    const int32_t *kofs;   /* kept channels of groups[i]: kch[kofs[i] .. kofs[i+1]) */
    const uint16_t *kch;   /* channel within its group, ascending */
    int32_t *kacc;         /* K-quants: this thread's per-row scratch, 2 * R int32 + 16 * R bytes */
} cs_cb_job;

/* One group's masked activations xm (B values, dropped = 0) quantized as ggml-cpu's code
 * for this platform does for the type's vec_dot_type (B = 32: Q8_0, plus Q8_1's s when s != NULL; B = 256:
 * Q8_K with its bsums). d: the scale as the dot uses it (Q8_0/Q8_1: the fp16 value). */
void cs_cb_quantize_group(const cs_cb_desc *D, const float *xm, int8_t *q, float *d, float *s, int16_t *bsums);

/* y[r0..r1) = sum over the listed groups groups[i0..i1) of each group's term, added in
 * list order to 0 (the float steps of chess_cb.c's reference; rows r0, r1 multiples of
 * 32 for block types). */
typedef void (*cs_cb_groups_fn)(const cs_cb_job *J, int64_t i0, int64_t i1, int64_t r0, int64_t r1, float *y);

/* Software prefetch for the SIMD kernels, in the order they consume the bytes, into L2
 * (cs_prefetch; why L2 and how far: chess_internal.h and native/README.md). The kernels go
 * group by group; a group is one part (sub == 0: its scale section and kept columns, 128-row
 * blocks of all of them together) or, for the K-quant kernels (sub = channels per sub-block),
 * its scale section first and then each sub-block with kept channels, each over all rows in
 * 128-row blocks (so that a pass reads 16 or 32 column streams, not 256). A cursor (group,
 * part, row) stays CS_CB_PF_BYTES ahead of the computation; the kernels report the bytes of
 * each block they start (cs_cb_pf_run). The kept columns' addresses are computed once per
 * part: per block that cost more than the prefetch gained with 256-column groups. */
#define CS_CB_PF_BYTES 16384
#define CS_CB_PF_ROWS 128
typedef struct {
    const cs_cb_job *J;
    int64_t i, part, r, i1, r0, r1; /* next block to prefetch: (list index, part, first row); end of the list */
    int64_t ahead;                  /* bytes prefetched and not yet consumed */
    int64_t sub;                    /* channels per part (0: one part per group) */
    int64_t nk;                     /* kept columns of the current part, their record addresses */
    const uint8_t *grp, *col[256];
} cs_cb_pf;

/* Bytes of n rows of the scale section, and of n rows of nk columns. */
static inline int64_t cs_cb_scale_bytes(const cs_cb_desc *D, int64_t n) { return n * (int64_t)D->sc; }
static inline int64_t cs_cb_cols_bytes(const cs_cb_desc *D, int64_t nk, int64_t n) { return nk * (n * D->bits / 8); }
/* Bytes of one block of a whole group (sub == 0): rows [r, r + n) of listed group i. */
static inline int64_t cs_cb_block_bytes(const cs_cb_job *J, int64_t i, int64_t n) {
    return cs_cb_scale_bytes(J->D, n) + cs_cb_cols_bytes(J->D, J->kofs[i + 1] - J->kofs[i], n);
}
/* kept-list range [*kb, *ke) of sub-block j (sub channels) of listed group i */
static inline void cs_cb_sub_range(const cs_cb_job *J, int64_t i, int64_t sub, int64_t j, int64_t *kb, int64_t *ke) {
    const uint16_t *kc = J->kch + J->kofs[i];
    const int64_t nk = J->kofs[i + 1] - J->kofs[i];
    int64_t k = 0;
    while (k < nk && kc[k] < sub * j) k++;
    *kb = k;
    while (k < nk && kc[k] < sub * (j + 1)) k++;
    *ke = k;
}
static inline void cs_cb_pf_enter(cs_cb_pf *P) {
    const cs_cb_job *J = P->J;
    for (;;) {
        if (P->i >= P->i1) return;
        if (P->sub && P->part >= P->J->D->B / P->sub) { P->i++; P->part = -1; continue; }
        P->grp = J->w + (size_t)J->groups[P->i] * cs_cb_group_bytes(J->D, J->R);
        int64_t kb = 0, ke = J->kofs[P->i + 1] - J->kofs[P->i];
        if (P->sub && P->part < 0) ke = 0;
        else if (P->sub) cs_cb_sub_range(J, P->i, P->sub, P->part, &kb, &ke);
        if (P->sub && P->part >= 0 && kb == ke) { P->part++; continue; } /* a sub-block without kept channels */
        const uint16_t *kc = J->kch + J->kofs[P->i];
        P->nk = ke - kb;
        for (int64_t k = 0; k < P->nk; k++) P->col[k] = cs_cb_col(J->D, P->grp, J->R, kc[kb + k]);
        return;
    }
}
/* first and last byte of a span of at most 128 bytes (every line it touches, whatever the alignment) */
static inline void cs_cb_pf_short(const uint8_t *p, size_t n) {
    cs_prefetch(p);
    if (n > 64) cs_prefetch(p + 64);
    cs_prefetch(p + n - 1);
}
/* Prefetch until CS_CB_PF_BYTES are ahead; `consumed`: bytes of the block the caller starts. */
static inline void cs_cb_pf_run(cs_cb_pf *P, int64_t consumed) {
    const cs_cb_job *J = P->J;
    const cs_cb_desc *D = J->D;
    const int64_t R = J->R;
    P->ahead -= consumed;
    while (P->ahead < CS_CB_PF_BYTES && P->i < P->i1) {
        const int64_t n = P->r1 - P->r < CS_CB_PF_ROWS ? P->r1 - P->r : CS_CB_PF_ROWS;
        if (P->sub == 0 || P->part < 0) {
            size_t o = 0;
            for (int f = 0; f < D->nf; f++) {
                cs_prefetch_span(P->grp + (size_t)R * o + (size_t)P->r * D->fw[f], (size_t)n * D->fw[f]);
                o += D->fw[f];
            }
            P->ahead += cs_cb_scale_bytes(D, n);
        }
        if (D->bits == 8) {
            for (int64_t k = 0; k < P->nk; k++) cs_cb_pf_short(P->col[k] + P->r, (size_t)n);
        } else if (D->bits > 8) { /* float types: a group is one column */
            const size_t bpv = (size_t)D->bits / 8;
            for (int64_t k = 0; k < P->nk; k++) cs_prefetch_span(P->col[k] + (size_t)P->r * bpv, (size_t)n * bpv);
        } else {
            const size_t hb = (size_t)(D->bits - 4); /* bit plane / 2-bit plane after the nibbles */
            for (int64_t k = 0; k < P->nk; k++) {
                cs_cb_pf_short(P->col[k] + P->r / 2, (size_t)n / 2);
                if (hb) cs_cb_pf_short(P->col[k] + R / 2 + (size_t)P->r * hb / 8, (size_t)n * hb / 8);
            }
        }
        P->ahead += cs_cb_cols_bytes(D, P->nk, n);
        P->r += n;
        if (P->r >= P->r1) {
            P->r = P->r0;
            if (P->sub) P->part++;
            else P->i++;
            cs_cb_pf_enter(P);
        }
    }
}
static inline void cs_cb_pf_init(cs_cb_pf *P, const cs_cb_job *J, int64_t i0, int64_t i1, int64_t r0, int64_t r1, int64_t sub) {
    P->J = J; P->i = i0; P->part = sub ? -1 : 0; P->r = r0; P->i1 = i1; P->r0 = r0; P->r1 = r1; P->ahead = 0; P->sub = sub;
    P->nk = 0; P->grp = NULL;
    cs_cb_pf_enter(P);
    cs_cb_pf_run(P, 0);
}

/* chess_cb_panel_x8 for the 32-row units [u0, u1) of a Q4_0 or Q4_K column-block weight
 * (D) of G groups and R rows; the first 8-row block written is that of unit u0 (out as in
 * the API). */
typedef void (*cs_cb_panel_fn)(const cs_cb_desc *D, const uint8_t *cb, int64_t G, int64_t R, int64_t u0, int64_t u1, uint8_t *out);

typedef struct {
    const char *name;
    cs_cb_groups_fn groups[CB_NTYPES]; /* NULL: the portable reference */
    cs_cb_panel_fn panel_x8;           /* NULL: the portable one */
} cs_cb_table;

/* The 8-row interleaved blocks (chess_cb_panel_x8): bytes of one block, where its nibbles
 * start, how many 8-byte chunks of each row's nibbles it holds, and the byte each is xored
 * with (Q4_0: 8 fp16 scales + 8 x 16 qs bytes xor 0x88; Q4_K: 8 d, 8 dmin, 8 x 12 repacked
 * scale bytes, 8 x 128 qs bytes as they are). Chunk h of a row's nibbles (qs bytes 8h ..
 * 8h+7) pairs the channels cs_x8_lo_channel(h) + j (low nibbles) and + 16 or + 32 (high). */
typedef struct { size_t bytes, qs_off; int nh, hi_add; uint8_t flip; } cs_x8_desc;
static inline cs_x8_desc cs_x8_desc_of(const cs_cb_desc *D) {
    return D->index == CB_Q4_0 ? (cs_x8_desc){ 144, 16, 2, 16, 0x88 } : (cs_x8_desc){ 1152, 128, 16, 32, 0 };
}
static inline int cs_x8_lo_channel(const cs_cb_desc *D, int h) { return D->index == CB_Q4_0 ? 8 * h : 64 * (h / 4) + 8 * (h % 4); }
/* The header of the 8-row block of rows r .. r+7 (scales; Q4_K also mins and the sub-block
 * scales regrouped by sub-block, each group of 8 packed as Q4_K packs a block's eight). */
static inline void cs_x8_header(const cs_cb_desc *D, const uint8_t *grp, int64_t R, int64_t r, uint8_t *blk) {
    memcpy(blk, grp + 2 * r, 16);
    if (D->index != CB_Q4_K) return;
    memcpy(blk + 16, grp + 2 * R + 2 * r, 16);
    uint8_t sc[8][8], mn[8][8]; /* [sub-block][row] */
    for (int i = 0; i < 8; i++) {
        const uint8_t *q = grp + 4 * R + 12 * (r + i);
        for (int k = 0; k < 8; k++) {
            int a, b;
            cs_k4_scale_min(k, q, &a, &b);
            sc[k][i] = (uint8_t)a;
            mn[k][i] = (uint8_t)b;
        }
    }
    for (int k = 0; k < 8; k++) {
        uint8_t *o = blk + 32 + 12 * k;
        for (int j = 0; j < 4; j++) {
            o[j] = (uint8_t)((sc[k][j] & 63) | ((sc[k][j + 4] >> 4) << 6));
            o[j + 4] = (uint8_t)((mn[k][j] & 63) | ((mn[k][j + 4] >> 4) << 6));
            o[j + 8] = (uint8_t)((sc[k][j + 4] & 15) | ((mn[k][j + 4] & 15) << 4));
        }
    }
}

extern const cs_cb_table cs_cb_table_ref;
#ifdef CHESS_HAVE_AVX2
extern const cs_cb_table cs_cb_table_avx2;
extern const cs_cb_table cs_cb_table_avx2_vnni;
#endif
#ifdef CHESS_HAVE_AVX512
extern const cs_cb_table cs_cb_table_avx512;
extern const cs_cb_table cs_cb_table_avx512_vbmi;
#endif
#ifdef CHESS_HAVE_NEON
extern const cs_cb_table cs_cb_table_neon;
#endif

/* Hooks in chess_dispatch.c / chess_cb.c: the sparsity counters (relaxed atomics, -1 or
 * out of range: none) and this thread's column-block scratch (freed by chess_thread_release). */
void cs_count_site(int32_t site, uint64_t seen, uint64_t zeroed);
/* The read-ceiling switches (chess_dispatch.c, CHESS_READ_CEILING / _SPARSITY): 0 off, 1 on
 * (one-token products read their bytes and compute nothing), 2 on with the kept channels a
 * pseudo-random share fixed per (site, channel), cs_rc_keep. */
int cs_rc_mode(int64_t n_tokens);
int cs_rc_keep(int32_t site, int64_t j);
void cs_cb_thread_release(void);

/* The table of an ISA (NULL if not compiled in): white-box tests. */
const cs_cb_table *cs_cb_table_of(chess_isa isa);

#endif
