/*
 * chess_sparse.h - sparse CPU kernels for CHESS activation sparsity.
 *
 * Two products, one thresholding helper, and sparsity counters. Weights are
 * passed exactly as ggml stores them (same block layouts, same type numbers),
 * so the llama.cpp side hands tensor data pointers straight in.
 *
 *   chess_spmv_in         input-sparse product on a TRANSPOSED weight:
 *                         y[t, :] = sum_{j kept} x[t, j] * Wt[j, :]
 *                         Wt has ne1 = n_in rows of ne0 = n_out elements
 *                         (quantized along the output axis). A dropped
 *                         input j skips one contiguous row of Wt.
 *   chess_spmv_out_gated  output-sparse product fused with the gate, on a
 *                         weight in ggml's normal layout (ne1 = n_out rows
 *                         of ne0 = n_in elements):
 *                         y[t, i] = |g[t,i]| > tau[i] ? g[t,i] * dot(W[i,:], x[t,:]) : 0
 *                         Rows whose gate dies for every token are never read.
 *   chess_threshold_mask  x[i] = |x[i]| > tau[i] ? x[i] : 0, returns the count kept.
 *
 * Naming follows ggml: ne0 is the contiguous dimension of the weight, nb1 the
 * byte stride between its rows; activations are float32 rows of one token.
 *
 * Keep rule (all entry points): an element v with threshold tau is kept iff
 * |v| > tau (strict; CHESS first release). With no threshold (n_tau == 0) an
 * element is kept iff v != 0 (so NaN inputs propagate).
 *
 * Types (numbering = enum ggml_type): F32, F16, BF16, Q8_0, Q4_0, Q4_1 for both
 * products; chess_spmv_out_gated also takes Q5_0, Q5_1 (blocks of 32) and Q4_K, Q5_K,
 * Q6_K (256-element super-blocks), chess_spmv_in refuses them (CHESS_ERR_TYPE: the
 * transposed layout re-quantizes to one of the first six). For a block type, ne0 must
 * be a multiple of the block size; otherwise the call returns CHESS_ERR_SHAPE.
 *
 * Threading contract (matches a ggml custom op callback `fun(dst, ith, nth, ud)`):
 * every thread ith in [0, nth) calls the entry point with IDENTICAL arguments.
 * No barrier is needed: each thread writes a disjoint part of y, and together
 * the nth calls write every element of y (including zeros). Results do not
 * depend on nth (each output element is accumulated by one thread in a fixed
 * order). spmv_in splits the OUTPUT columns in block-aligned slices;
 * spmv_out_gated splits rows so that each thread gets the same number of
 * ACTIVE rows. Counters are updated by thread 0 only.
 *
 * Numerics: float32 accumulation. For Q4_0/Q4_1/Q8_0 the output-sparse dot
 * quantizes the activations of each token to 8 bits in blocks of 32 (scale
 * amax/127, round half to even), like ggml's vec_dot does with Q8_0/Q8_1; every
 * ISA variant (the portable reference included) uses the same quantized
 * activations, so variants agree to float rounding. Q5_0, Q5_1 and the K-quants
 * quantize them exactly as ggml-cpu does for the type's vec_dot (Q8_0 / Q8_1 with
 * fp16 scales as its x86 or AArch64 code computes them; Q8_K) and take ggml's exact
 * integer sums per block
 * (K-quants: per super-block), so that they differ from ggml's dense dot by float
 * summation order only. The input-sparse product
 * uses float activations on every ISA; it dequantizes weights to float, except
 * the AVX-512 decode of Q4_0/Q4_1, which scales the coefficients x_j * d_jb of
 * each group of 16 active rows (list order) to 16-bit integers against the
 * group's largest and sums exact integer products (relative error ~1e-5 of y),
 * and the AVX-512 prefill (n_tokens > 1) of Q4_0/Q4_1, which multiplies in 16-bit
 * integers: per tile of 256 tokens, rows normalized by their magnitude, the kept
 * activations quantized to 14 bits per 32 kept inputs, the weights re-quantized to
 * 13 bits along the inputs per 32 rows and column, exact int32 sums (relative error
 * ~2e-4 of y; tests/test_kernels.c checks this exact arithmetic against a model).
 *
 * Preconditions: pointers non-NULL (except tau when n_tau == 0), strides at
 * least one row, y must not alias w/x/g. No alignment is required beyond the
 * natural alignment of float for x/g/y/tau. Scratch memory is per thread
 * (thread-local, grown on demand); chess_thread_release() frees it.
 */
#ifndef CHESS_SPARSE_H
#define CHESS_SPARSE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define CHESS_SPARSE_VERSION 2

/* Weight types; values equal enum ggml_type. */
typedef enum chess_type {
    CHESS_TYPE_F32  = 0,
    CHESS_TYPE_F16  = 1,
    CHESS_TYPE_Q4_0 = 2,
    CHESS_TYPE_Q4_1 = 3,
    CHESS_TYPE_Q5_0 = 6,
    CHESS_TYPE_Q5_1 = 7,
    CHESS_TYPE_Q8_0 = 8,
    CHESS_TYPE_Q4_K = 12,
    CHESS_TYPE_Q5_K = 13,
    CHESS_TYPE_Q6_K = 14,
    CHESS_TYPE_BF16 = 30,
} chess_type;

/* Return codes: 0 success, negative on a bad argument (nothing is written). */
enum {
    CHESS_OK          =  0,
    CHESS_ERR_NULL    = -1, /* a required pointer is NULL */
    CHESS_ERR_TYPE    = -2, /* unsupported weight type */
    CHESS_ERR_SHAPE   = -3, /* ne0/ne1/n_tokens <= 0, or ne0 not a multiple of the block size */
    CHESS_ERR_STRIDE  = -4, /* a row stride smaller than one row */
    CHESS_ERR_THREAD  = -5, /* nth < 1 or ith outside [0, nth) */
    CHESS_ERR_TAU     = -6, /* n_tau not in {0, 1, channels} */
    CHESS_ERR_ISA     = -7, /* ISA not compiled in or not supported by this CPU */
    CHESS_ERR_NOMEM   = -8, /* scratch allocation failed */
    CHESS_ERR_SITE    = -9, /* counter site id out of range */
    CHESS_ERR_CONTRACT = -10, /* a sparse GGUF breaks the contract (chess_contract_check_*; msg says what) */
};

/* Instruction-set variants. */
typedef enum chess_isa {
    CHESS_ISA_REF    = 0, /* portable C reference */
    CHESS_ISA_AVX2   = 1, /* AVX2 + FMA + F16C */
    CHESS_ISA_AVX512 = 2, /* AVX-512 F/BW/VL + VNNI (+ FMA, F16C) */
    CHESS_ISA_NEON   = 3, /* AArch64 Advanced SIMD (+ SDOT when built with CHESS_NEON_DOTPROD) */
    CHESS_ISA_AVX512_VBMI = 4, /* CHESS_ISA_AVX512 + VBMI (Ice Lake, Zen 4 and later): faster 4-bit input-sparse kernels */
    CHESS_ISA_AVX2_VNNI = 5, /* CHESS_ISA_AVX2 + AVX-VNNI (Alder Lake and later Intel client CPUs): same results as AVX2 */
    CHESS_ISA_COUNT  = 6,
} chess_isa;

/* Input-sparse product on a transposed weight. */
typedef struct chess_spmv_in_args {
    chess_type   type;
    const void * w;        /* Wt: ne1 rows (n_in) of ne0 elements (n_out) */
    int64_t      ne0;      /* n_out, multiple of the block size */
    int64_t      ne1;      /* n_in */
    size_t       nb1;      /* bytes between rows of Wt (>= row size) */
    const float *x;        /* n_tokens rows of ne1 floats */
    size_t       x_nb1;    /* bytes between token rows of x (ignored if n_tokens == 1) */
    float       *y;        /* n_tokens rows of ne0 floats (written, not accumulated) */
    size_t       y_nb1;    /* bytes between token rows of y (ignored if n_tokens == 1) */
    int64_t      n_tokens; /* >= 1 */
    const float *tau;      /* thresholds on x: NULL/0, one scalar, or ne1 per channel */
    int64_t      n_tau;    /* 0, 1 or ne1 */
    int32_t      site;     /* counter site id, or -1 for none */
} chess_spmv_in_args;

/* Output-sparse product fused with the gate, weight in ggml's row layout. */
typedef struct chess_spmv_out_gated_args {
    chess_type   type;
    const void * w;        /* W: ne1 rows (n_out) of ne0 elements (n_in) */
    int64_t      ne0;      /* n_in, multiple of the block size */
    int64_t      ne1;      /* n_out */
    size_t       nb1;      /* bytes between rows of W (>= row size) */
    const float *x;        /* n_tokens rows of ne0 floats (dense activations) */
    size_t       x_nb1;
    const float *g;        /* n_tokens rows of ne1 floats (gate, after its activation) */
    size_t       g_nb1;
    float       *y;        /* n_tokens rows of ne1 floats (written) */
    size_t       y_nb1;
    int64_t      n_tokens;
    const float *tau;      /* gate thresholds: one scalar or ne1 per channel (n_tau 0: keep g != 0) */
    int64_t      n_tau;
    int32_t      site;
} chess_spmv_out_gated_args;

int chess_spmv_in(const chess_spmv_in_args *args, int ith, int nth);

/* Decode (n_tokens == 1) variant of chess_spmv_in that splits the ACTIVE INPUTS,
 * not the outputs, between threads: the kept inputs, in channel order, are cut
 * into n_parts contiguous ranges; part p writes the partial product over its range
 * to row p of y (n_parts rows of ne0 floats, y_nb1 apart); thread ith computes the
 * parts ith, ith + nth, ... Each thread then streams whole rows of Wt instead of a
 * 1/nth column slice of every row (longer contiguous reads; measured 1-25% faster
 * end to end on a 7B shape, see native/README.md). Every thread builds the same
 * active list (no barrier inside a node). The result depends on n_parts, not on nth.
 * Sum the parts with chess_sum_parts. n_parts in [1, CHESS_MAX_PARTS]. */
#define CHESS_MAX_PARTS 64
int chess_spmv_in_parts(const chess_spmv_in_args *args, int n_parts, int ith, int nth);

/* y[i] = sum over p in order of parts[p][i] (n_parts rows, parts_nb1 bytes apart),
 * for i < n; threads take disjoint column slices. */
int chess_sum_parts(float *y, const float *parts, size_t parts_nb1, int64_t n, int n_parts, int ith, int nth);
int chess_spmv_out_gated(const chess_spmv_out_gated_args *args, int ith, int nth);

/* In place: x[i] = keep(x[i], tau) ? x[i] : 0 for i < n. tau: NULL/0, 1 scalar or
 * n per channel. Returns the number of kept elements (>= 0) or an error code.
 * Counts "seen = n, zeroed = n - kept" on `site` (-1 for none). Threads may call
 * it on disjoint slices (pass the matching slice of a per-channel tau). */
int64_t chess_threshold_mask(float *x, int64_t n, const float *tau, int64_t n_tau, int32_t site);

/* Achieved-sparsity counters, one pair per call site id in [0, CHESS_MAX_SITES).
 * Relaxed atomics, updated once per call (not per element). */
#define CHESS_MAX_SITES 4096
int  chess_counters_get(int32_t site, uint64_t *seen, uint64_t *zeroed);
void chess_counters_reset(void);

/* Variant selection. The default is the best ISA the CPU supports (x86-64:
 * avx512 > avx2 > ref; AArch64: neon > ref), unless the environment variable
 * CHESS_KERNEL_ISA=ref|avx2|avx512|neon forces one (read once; an unavailable
 * forced ISA falls back to ref with a warning on stderr).
 * Timing instrument: CHESS_READ_CEILING=1 makes one-token products read their rows
 * and compute nothing (outputs 0; CHESS_READ_CEILING_SPARSITY=s keeps a pseudo-random
 * share 1-s of channels instead of thresholding); see src/chess_read_ceiling.c. */
int         chess_isa_available(chess_isa isa);   /* compiled in and supported by the CPU */
chess_isa   chess_get_isa(void);
int         chess_set_isa(chess_isa isa);         /* CHESS_OK or CHESS_ERR_ISA */
const char *chess_isa_name(chess_isa isa);
/* 1 if the selected ISA runs chess_spmv_out_gated with n_tokens >= CHESS_OUT_GATED_GEMM_MIN_TOKENS
 * as a GEMM over the rows alive for any token (else, and below that batch size, per token
 * over its kept rows, a GEMV per token: slower than a dense GEMM, so callers may prefer the
 * dense product plus a mask for larger batches). */
#define CHESS_OUT_GATED_GEMM_MIN_TOKENS 8
int         chess_out_gated_has_gemm(chess_type type);
int         chess_type_supported(chess_type type);      /* both products take it (F32 .. Q4_1) */
int         chess_out_gated_supported(chess_type type); /* chess_spmv_out_gated takes it (also Q5_*, K-quants) */
int64_t     chess_type_block_size(chess_type type); /* elements per block, or 0 if no product takes it */
size_t      chess_type_block_bytes(chess_type type);/* bytes per block, or 0 */

/* ---- Column-block layout (sparse GGUF format 2, docs/gguf-sparse.md §3.1) ----
 *
 * The weight W (n_out rows of n_in inputs, ggml type `type`) stored with its own
 * blocks, bit for bit, re-arranged into G = n_in / B group records (B = the type's
 * block size: 1, 32 or 256 channels) of n_out * block_bytes bytes each: the group's
 * scale section (per-row arrays) followed by one column record per channel (that
 * channel's values for every row: nibble plane, bit plane, 2-bit plane, or plain
 * bytes/values). Same type, same byte count as the row layout; nothing re-rounded.
 *
 * Types: F32, F16, BF16 (B = 1), Q8_0, Q4_0, Q4_1, Q5_0, Q5_1 (B = 32), Q4_K, Q5_K,
 * Q6_K (B = 256). Block types need n_out % 32 == 0.
 *
 * chess_spmv_cb: y[t, r] = sum over blocks b of row r of ggml's block dot product of
 * (W[r, block b]) with the masked activations x'[t] quantized as ggml quantizes them
 * for that type's vec_dot (Q8_0 / Q8_1 / Q8_K / fp16 / bf16 / none), dropped inputs
 * exactly 0: an exact integer sum per block over its kept channels, scaled as ggml
 * scales it. Float accumulation across blocks is in group order. Groups with no kept
 * channel are not read; for the others the kernel reads the scale section and the
 * kept columns only.
 * Threads: with n_tokens == 1 the rows are split between threads in slices of whole
 * 32-row units (each thread reads its slice of every kept column); chess_spmv_cb_parts
 * instead splits the groups with a kept channel into n_parts contiguous ranges (row p of
 * y = the partial sum of part p; sum with chess_sum_parts), so that each thread streams
 * whole columns. Results do not depend on nth. Larger batches: per token (the runtime
 * restores the row layout with chess_cb_to_rows and uses ggml's GEMM instead above
 * CHESS_CB_SPARSE_MAX_TOKENS tokens). */
#define CHESS_CB_SPARSE_MAX_TOKENS 4

typedef struct chess_spmv_cb_args {
    chess_type   type;
    const void * w;        /* the weight in column-block layout */
    int64_t      n_in;     /* ne0 of the tensor; multiple of the type's block size */
    int64_t      n_out;    /* ne1; multiple of 32 for block types */
    const float *x;        /* n_tokens rows of n_in floats */
    size_t       x_nb1;
    float       *y;        /* n_tokens rows of n_out floats (written, not accumulated) */
    size_t       y_nb1;
    int64_t      n_tokens; /* >= 1 */
    const float *tau;      /* thresholds on x: NULL/0, one scalar, or n_in per channel */
    int64_t      n_tau;
    int32_t      site;     /* counter site id, or -1 */
} chess_spmv_cb_args;

int chess_spmv_cb(const chess_spmv_cb_args *args, int ith, int nth);
int chess_spmv_cb_parts(const chess_spmv_cb_args *args, int n_parts, int ith, int nth);

/* 1 if `type` has a column-block layout. */
int     chess_cb_supported(chess_type type);
/* Input channels per group (1, 32 or 256), or 0 if unsupported. */
int64_t chess_cb_group_size(chess_type type);
/* CHESS_OK if a tensor of this type and shape may be in column-block layout and holds
 * exactly `nbytes` bytes; CHESS_ERR_TYPE / CHESS_ERR_SHAPE otherwise. */
int     chess_cb_check(chess_type type, int64_t n_in, int64_t n_out, size_t nbytes);
/* Row layout (ggml's: n_out rows of n_in/B blocks) -> column-block layout, whole tensor. */
int     chess_cb_from_rows(chess_type type, const void *rows, int64_t n_in, int64_t n_out, void *cb);
/* Column-block layout -> ggml's row layout, bit for bit. Threads write disjoint row
 * ranges (every thread calls it with identical arguments). */
int     chess_cb_to_rows(chess_type type, const void *cb, int64_t n_in, int64_t n_out, void *rows, int ith, int nth);
/* Rows [r0, r1) only, into `rows` (r1 - r0 rows; its first is row r0), bit for bit: for
 * prefill routes that restore one cache-sized panel of rows at a time. 0 <= r0 < r1 <= n_out,
 * both multiples of 32 for block types (CHESS_ERR_SHAPE otherwise). */
int     chess_cb_rows_range(chess_type type, const void *cb, int64_t n_in, int64_t n_out, int64_t r0, int64_t r1, void *rows);
/* Rows [r0, r1) of a Q4_0 or Q4_K column-block weight packed straight into 8-row
 * interleaved blocks, the layouts ggml-cpu's repacked GEMMs read (its block_q4_0x8 and
 * block_q4_Kx8), in one pass: the block of the q-th 8 rows and the x-th group of input
 * channels is at out + (q * n_in / B + x) * S. Q4_0 (B = 32, S = 144): the 8 rows' fp16
 * scales, then for h = 0, 1 and row i = 0..7 the row's qs bytes 8h .. 8h+7, each xor 0x88.
 * Q4_K (B = 256, S = 1152): the 8 rows' d, their dmin, for each sub-block k = 0..7 the 8
 * rows' 6-bit scale and min of sub-block k packed in 12 bytes as Q4_K packs a block's eight,
 * then for h = 0..15 and row i the row's qs bytes 8h .. 8h+7. Bit for bit the packing of
 * chess_cb_rows_range's rows (the prefill panel route, without the row-layout round trip).
 * r0, r1: multiples of 32; CHESS_ERR_TYPE for other types. */
int     chess_cb_panel_x8(chess_type type, const void *cb, int64_t n_in, int64_t n_out, int64_t r0, int64_t r1, void *out);

/* Sparse-contract checks of the loader (docs/gguf-sparse.md §2-3; src/chess_contract_check.c).
 * Each returns CHESS_OK, or CHESS_ERR_CONTRACT with a message naming the key or tensor in msg
 * (NUL-terminated, truncated to msg_size). *_type: the key's GGUF value type id, -1 if absent. */
int chess_contract_check_keys(int format_version_type, uint32_t format_version, uint32_t format_version_max,
                              int target_sparsity_type, float target_sparsity, char *msg, size_t msg_size);
/* chess.format_version against the tensors: 2 or more needs a column-block tensor. */
int chess_contract_check_format(uint32_t format_version, int64_t n_cb_tensors, char *msg, size_t msg_size);
/* A tensor of the contract (a _cb / _t weight or a threshold, by name) of a layer the model has
 * (blk.N. with N < n_layer; n_layer < 0: unknown, not checked). Other names pass. */
int chess_contract_check_layer(const char *name, int64_t n_layer, char *msg, size_t msg_size);
/* A threshold tensor: ggml type f32, n_expected elements, every value finite and >= 0 (values NULL:
 * type and count only). */
int chess_contract_check_tau(const char *name, int ggml_type, int64_t n_elements, int64_t n_expected, const float *values,
                             char *msg, size_t msg_size);

/* Frees this thread's scratch memory (safe to call any time outside a kernel). */
void chess_thread_release(void);

#ifdef __cplusplus
}
#endif

#endif /* CHESS_SPARSE_H */
