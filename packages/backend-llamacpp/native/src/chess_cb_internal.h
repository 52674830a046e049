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
} cs_cb_job;

/* One group's masked activations xm (B values, dropped = 0) quantized as ggml's x86 code
 * does for the type's vec_dot_type (B = 32: Q8_0, plus Q8_1's s when s != NULL; B = 256:
 * Q8_K with its bsums). d: the scale as the dot uses it (Q8_0/Q8_1: the fp16 value). */
void cs_cb_quantize_group(const cs_cb_desc *D, const float *xm, int8_t *q, float *d, float *s, int16_t *bsums);

/* y[r0..r1) = sum over the listed groups groups[i0..i1) of each group's term, added in
 * list order to 0 (the float steps of chess_cb.c's reference; rows r0, r1 multiples of
 * 32 for block types). */
typedef void (*cs_cb_groups_fn)(const cs_cb_job *J, int64_t i0, int64_t i1, int64_t r0, int64_t r1, float *y);

/* Software prefetch for the SIMD kernels, in the order they consume the bytes: group by
 * group, and within a group 128-row blocks of its scale section and kept columns (a block
 * is one cache line of each 4-bit column). A cursor (listed group, row) stays
 * CS_CB_PF_BYTES ahead of the computation, into L2 (cs_prefetch; why L2 and how far:
 * chess_internal.h and native/README.md). A group of a large matrix is tens of KB read as
 * one stream per kept column: prefetching it whole at once, or column after column, put
 * most of it far from where the computation was. */
#define CS_CB_PF_BYTES 16384
#define CS_CB_PF_ROWS 128
typedef struct {
    const cs_cb_job *J;
    int64_t i, r, i1, r0, r1; /* next block to prefetch: (list index, first row); end of the list */
    int64_t ahead;            /* bytes prefetched and not yet consumed */
} cs_cb_pf;

/* Bytes of one block (rows [r, r + n) of listed group i): what its computation consumes. */
static inline int64_t cs_cb_block_bytes(const cs_cb_job *J, int64_t i, int64_t n) {
    return n * (int64_t)J->D->sc + (J->kofs[i + 1] - J->kofs[i]) * (n * J->D->bits / 8);
}
/* Prefetch until CS_CB_PF_BYTES are ahead; `consumed`: bytes computed since the last call. */
static inline void cs_cb_pf_run(cs_cb_pf *P, int64_t consumed) {
    const cs_cb_job *J = P->J;
    const cs_cb_desc *D = J->D;
    const int64_t R = J->R;
    P->ahead -= consumed;
    while (P->ahead < CS_CB_PF_BYTES && P->i < P->i1) {
        const int64_t n = P->r1 - P->r < CS_CB_PF_ROWS ? P->r1 - P->r : CS_CB_PF_ROWS;
        const uint8_t *grp = J->w + (size_t)J->groups[P->i] * cs_cb_group_bytes(D, R);
        size_t o = 0;
        for (int f = 0; f < D->nf; f++) {
            cs_prefetch_span(grp + (size_t)R * o + (size_t)P->r * D->fw[f], (size_t)n * D->fw[f]);
            o += D->fw[f];
        }
        const uint16_t *kc = J->kch + J->kofs[P->i];
        const int64_t nk = J->kofs[P->i + 1] - J->kofs[P->i];
        for (int64_t k = 0; k < nk; k++) {
            const uint8_t *col = cs_cb_col(D, grp, R, kc[k]);
            if (D->bits == 8) cs_prefetch_span(col + (size_t)P->r, (size_t)n);
            else cs_prefetch_span(col + (size_t)P->r / 2, (size_t)n / 2); /* the nibble plane */
            if (D->bits == 5 || D->bits == 6) /* the bit plane / 2-bit plane after the nibbles */
                cs_prefetch_span(col + (size_t)R / 2 + (size_t)P->r * (size_t)(D->bits - 4) / 8, (size_t)n * (size_t)(D->bits - 4) / 8);
        }
        P->ahead += cs_cb_block_bytes(J, P->i, n);
        P->r += n;
        if (P->r >= P->r1) { P->r = P->r0; P->i++; }
    }
}
static inline void cs_cb_pf_init(cs_cb_pf *P, const cs_cb_job *J, int64_t i0, int64_t i1, int64_t r0, int64_t r1) {
    *P = (cs_cb_pf){ J, i0, r0, i1, r0, r1, 0 };
    cs_cb_pf_run(P, 0);
}

typedef struct {
    const char *name;
    cs_cb_groups_fn groups[CB_NTYPES]; /* NULL: the portable reference */
} cs_cb_table;

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
void cs_cb_thread_release(void);

/* The table of an ISA (NULL if not compiled in): white-box tests. */
const cs_cb_table *cs_cb_table_of(chess_isa isa);

#endif
