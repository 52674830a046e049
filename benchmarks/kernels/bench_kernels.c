/* Kernel benchmark: chess_sparse sparse products vs ggml's dense mul_mat.
 *
 * All run inside ggml graphs computed by the CPU backend (same thread count):
 * ours as ggml_custom_4d nodes whose callback calls the kernel with (ith, nth),
 * exactly as the llama.cpp integration does, against two dense baselines of
 * ggml_mul_mat nodes:
 *   dense          - the weight in a plain CPU buffer (ggml_graph_plan +
 *                    ggml_graph_compute): ggml's generic vec_dot path;
 *   dense_repacked - the same bytes uploaded into ggml-cpu's "CPU_REPACK" extra
 *                    buffer type (ggml_backend_graph_compute): the interleaved
 *                    layout and gemv kernels llama.cpp really uses at run time
 *                    (e.g. Q4_0 8x8 on AVX2/AVX-512). Only where ggml repacks
 *                    this type on this CPU; null in the JSON otherwise.
 * and, for decode (one token), a memory ceiling:
 *   read_ceiling   - no arithmetic: the same active rows (the same bytes, the same
 *                    split between threads) only streamed through vector loads with
 *                    software prefetch. What any kernel over this layout could reach
 *                    on this machine; on a VM, scattered rows read well below the
 *                    sequential bandwidth the dense GEMV gets.
 * One graph holds one node per copy of the weight; the copies together exceed
 * the last-level cache, so weights stream from DRAM as they do in decoding. All
 * variants are interleaved (round robin) over the repeats; we report
 * median/min/max per product, the speedup over each dense baseline and its
 * ratio to the ideal 1/(1-s).
 *
 * Dense weight = ggml's row layout [n_out rows of n_in]; ours for input-sparse
 * projections = the transposed layout [n_in rows of n_out]; both are the same
 * number of bytes and share one buffer (values do not change the speed). The
 * repacked copies are a separate allocation of the same size.
 */
#define _GNU_SOURCE
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "chess_sparse.h"
#include "ggml.h"
#include "ggml-alloc.h"
#include "ggml-backend.h"
#include "ggml-cpu.h"

typedef struct { const char *model, *proj; int kind; int64_t n_in, n_out; } shape_t; /* kind 0: in, 1: out_gated */
static const shape_t k_shapes[] = {
    { "llama2-7b", "up", 1, 4096, 11008 },
    { "llama2-7b", "down", 0, 11008, 4096 },
    { "llama2-7b", "q/o", 0, 4096, 4096 },
    { "llama3-8b", "up", 1, 4096, 14336 },
    { "llama3-8b", "down", 0, 14336, 4096 },
    { "llama3-8b", "q/o", 0, 4096, 4096 },
    { "llama3-8b", "k/v", 0, 4096, 1024 },
    { "llama2-7b", "gate/up (teal)", 0, 4096, 11008 }, /* all-seven: input-sparse, 6.2 KB Q4_0 rows */
};

/* wall clock by default; --clock cpu uses the process CPU time (sum over threads,
 * spinning included): a steadier proxy when the machine is oversubscribed */
static clockid_t g_clock = CLOCK_MONOTONIC;
static double now_s(void) {
    struct timespec ts;
    clock_gettime(g_clock, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static uint64_t g_rng = 0x12345678abcdefull;
static uint64_t rnd(void) { g_rng ^= g_rng << 13; g_rng ^= g_rng >> 7; g_rng ^= g_rng << 17; return g_rng; }
static float rnd_normal(void) {
    double u = ((rnd() >> 11) + 1.0) * (1.0 / 9007199254740993.0), v = (rnd() >> 11) * (1.0 / 9007199254740992.0);
    return (float)(sqrt(-2.0 * log(u)) * cos(6.283185307179586 * v));
}

/* random bytes, then sane fp16 scales / values (no NaN, no subnormals) */
static void fill_weights(uint8_t *w, size_t bytes, enum ggml_type t) {
    uint64_t *p = (uint64_t *)w;
    for (size_t i = 0; i < bytes / 8; i++) p[i] = rnd();
    const size_t bs = ggml_type_size(t);
    if (t == GGML_TYPE_F16) {
        uint16_t *h = (uint16_t *)w;
        for (size_t i = 0; i < bytes / 2; i++) h[i] = (uint16_t)((h[i] & 0x83ff) | (((h[i] >> 10) % 8 + 9) << 10));
        return;
    }
    /* the fp16 scales of each block: d first (Q6_K: last), then Q4_1/Q5_1's m, Q4_K/Q5_K's dmin */
    const size_t d_off = t == GGML_TYPE_Q6_K ? bs - 2 : 0;
    const int second = t == GGML_TYPE_Q4_1 || t == GGML_TYPE_Q5_1 || t == GGML_TYPE_Q4_K || t == GGML_TYPE_Q5_K;
    for (size_t off = 0; off + bs <= bytes; off += bs) {
        uint16_t d = (uint16_t)(0x1c00 | (rnd() & 0x3ff));
        memcpy(w + off + d_off, &d, 2);
        if (second) memcpy(w + off + 2, &d, 2);
    }
}

typedef struct {
    int kind;
    int n_parts; /* kind 0, one token: > 1 splits the active inputs (chess_spmv_in_parts), as the runtime does */
    chess_spmv_in_args in;
    chess_spmv_out_gated_args out;
} op_ud;

static void chess_op(struct ggml_tensor *dst, int ith, int nth, void *ud) {
    op_ud *u = ud;
    int rc;
    if (u->kind == 0 && u->n_parts > 1) {
        chess_spmv_in_args a = u->in;
        a.y = (float *)dst->data;
        a.y_nb1 = dst->nb[1];
        rc = chess_spmv_in_parts(&a, u->n_parts, ith, nth);
    } else if (u->kind == 0) { chess_spmv_in_args a = u->in; a.y = (float *)dst->data; rc = chess_spmv_in(&a, ith, nth); }
    else { chess_spmv_out_gated_args a = u->out; a.y = (float *)dst->data; rc = chess_spmv_out_gated(&a, ith, nth); }
    if (rc != CHESS_OK) { fprintf(stderr, "kernel error %d\n", rc); abort(); }
}

static void sum_parts_op(struct ggml_tensor *dst, int ith, int nth, void *ud) {
    (void)ud;
    const struct ggml_tensor *parts = dst->src[0];
    const int rc = chess_sum_parts((float *)dst->data, (const float *)parts->data, parts->nb[1], dst->ne[0], (int)parts->ne[1], ith, nth);
    if (rc != CHESS_OK) { fprintf(stderr, "chess_sum_parts error %d\n", rc); abort(); }
}

/* read_ceiling: stream the active rows (list range ith/nth of rows), prefetching
 * about 64 KB ahead into L2; the XOR keeps the loads alive */
typedef struct { const uint8_t *w; size_t nb1, row_bytes; const int32_t *rows; int64_t nrows; } read_ud;

static void read_rows_op(struct ggml_tensor *dst, int ith, int nth, void *ud) {
    const read_ud *u = ud;
    const int64_t k0 = u->nrows * ith / nth, k1 = u->nrows * (ith + 1) / nth;
    int64_t ahead = (int64_t)(65536 / (u->row_bytes ? u->row_bytes : 1));
    if (ahead < 2) ahead = 2;
    uint64_t acc[8] = { 0 };
    for (int64_t k = k0; k < k1; k++) {
        if (k + ahead < k1) {
            const uint8_t *p = u->w + (size_t)u->rows[k + ahead] * u->nb1;
            for (size_t o = 0; o < u->row_bytes; o += 64) __builtin_prefetch(p + o, 0, 2);
        }
        const uint8_t *r = u->w + (size_t)u->rows[k] * u->nb1;
        size_t o = 0;
        for (; o + 64 <= u->row_bytes; o += 64)
            for (int i = 0; i < 8; i++) { uint64_t v; memcpy(&v, r + o + 8 * i, 8); acc[i] ^= v; }
        for (; o < u->row_bytes; o++) acc[0] ^= r[o];
    }
    uint64_t a = 0;
    for (int i = 0; i < 8; i++) a ^= acc[i];
    ((float *)dst->data)[ith] = (float)(a & 0xffff);
}

/* backend == NULL: ggml_graph_compute with our plan; else ggml_backend_graph_compute
 * (plans per call, as llama.cpp does; needed for the extra buffer types) */
typedef struct { struct ggml_cgraph *gf; struct ggml_cplan plan; ggml_backend_t backend; } runnable;

static runnable make_runnable(struct ggml_cgraph *gf, int nthreads) {
    runnable r = { gf, ggml_graph_plan(gf, nthreads, NULL), NULL };
    r.plan.work_data = r.plan.work_size ? malloc(r.plan.work_size) : NULL;
    return r;
}
static double time_run(runnable *r) {
    const double t0 = now_s();
    const enum ggml_status st = r->backend ? ggml_backend_graph_compute(r->backend, r->gf) : ggml_graph_compute(r->gf, &r->plan);
    if (st != GGML_STATUS_SUCCESS) { fprintf(stderr, "graph compute failed\n"); abort(); }
    return now_s() - t0;
}

/* ggml-cpu's repack extra buffer type, found through the device's public extra-buffer
 * list (it is not in the public headers); NULL if this ggml build has none */
static ggml_backend_buffer_type_t find_repack_buft(ggml_backend_t backend) {
    ggml_backend_dev_t dev = ggml_backend_get_device(backend);
    ggml_backend_dev_get_extra_bufts_t get_extra =
        (ggml_backend_dev_get_extra_bufts_t)ggml_backend_reg_get_proc_address(ggml_backend_dev_backend_reg(dev), "ggml_backend_dev_get_extra_bufts");
    if (!get_extra) return NULL;
    for (ggml_backend_buffer_type_t *b = get_extra(dev); b && *b; b++)
        if (!strcmp(ggml_backend_buft_name(*b), "CPU_REPACK")) return *b;
    return NULL;
}

/* the weight copies uploaded into the repack buffer type */
typedef struct { struct ggml_context *ctx; ggml_backend_buffer_t buf; struct ggml_tensor **w; } repacked_t;

static void free_repacked(repacked_t *rp) {
    if (rp->buf) ggml_backend_buffer_free(rp->buf);
    if (rp->ctx) ggml_free(rp->ctx);
    free(rp->w);
    memset(rp, 0, sizeof *rp);
}

/* Returns 0 with the copies in rp, or -1 (nothing kept, *why set) when ggml has no
 * repacked mul_mat for this type/shape on this CPU. The set_tensor of that buffer
 * type does the repack, and would crash on a tensor it cannot repack, so ask the
 * device's supports_op first (it checks the repack buffer and the type). */
static int make_repacked(repacked_t *rp, ggml_backend_buffer_type_t buft, enum ggml_type type, const shape_t *sh, int64_t T,
                         uint8_t **bufs, int copies, const char **why) {
    memset(rp, 0, sizeof *rp);
    if (!buft) { *why = "no CPU_REPACK buffer type in this ggml build"; return -1; }
    struct ggml_init_params ip = { ggml_tensor_overhead() * (size_t)(copies + 2), NULL, true };
    rp->ctx = ggml_init(ip);
    rp->w = malloc(sizeof(struct ggml_tensor *) * (size_t)copies);
    for (int c = 0; c < copies; c++) rp->w[c] = ggml_new_tensor_2d(rp->ctx, type, sh->n_in, sh->n_out);
    rp->buf = ggml_backend_alloc_ctx_tensors_from_buft(rp->ctx, buft);
    if (!rp->buf) { *why = "allocation in CPU_REPACK failed"; free_repacked(rp); return -1; }
    /* probe node: a mul_mat of the first copy by an f32 activation, as in the graphs */
    struct ggml_init_params pp = { ggml_tensor_overhead() * 4, NULL, true };
    struct ggml_context *pctx = ggml_init(pp);
    struct ggml_tensor *probe = ggml_mul_mat(pctx, rp->w[0], ggml_new_tensor_2d(pctx, GGML_TYPE_F32, sh->n_in, T));
    const bool ok = ggml_backend_dev_supports_op(ggml_backend_buft_get_device(buft), probe);
    ggml_free(pctx);
    if (!ok) { *why = "no repacked mul_mat for this type on this CPU"; free_repacked(rp); return -1; }
    const size_t wbytes = ggml_row_size(type, sh->n_in) * (size_t)sh->n_out;
    for (int c = 0; c < copies; c++) ggml_backend_tensor_set(rp->w[c], bufs[c], 0, wbytes); /* repacks */
    return 0;
}

/* ggml's debug log has one line per repacked tensor: drop debug (and its continuations) */
static void log_filter(enum ggml_log_level level, const char *text, void *ud) {
    static int dropping = 0;
    (void)ud;
    if (level != GGML_LOG_LEVEL_CONT) dropping = level == GGML_LOG_LEVEL_DEBUG;
    if (!dropping) fputs(text, stderr);
}

/* max |a - b| / max |a| over the outputs of node 0 of two graphs (same weights, same x) */
static double max_rel_diff(struct ggml_cgraph *a, struct ggml_cgraph *b) {
    const struct ggml_tensor *ya = ggml_graph_node(a, 0), *yb = ggml_graph_node(b, 0);
    const int64_t n = ggml_nelements(ya);
    double d = 0, m = 0;
    for (int64_t i = 0; i < n; i++) {
        const double u = ((const float *)ya->data)[i], v = ((const float *)yb->data)[i];
        d = fmax(d, fabs(u - v));
        m = fmax(m, fabs(u));
    }
    return m > 0 ? d / m : d;
}

static void json_ms(FILE *out, const char *name, int have, double med, double mn, double mx) {
    if (have) fprintf(out, "\"%s\": {\"median\": %.4f, \"min\": %.4f, \"max\": %.4f}, ", name, med, mn, mx);
    else fprintf(out, "\"%s\": null, ", name);
}

static int cmp_d(const void *a, const void *b) { const double x = *(const double *)a, y = *(const double *)b; return x < y ? -1 : x > y; }
static void stats(double *v, int n, double *med, double *mn, double *mx) {
    qsort(v, (size_t)n, sizeof(double), cmp_d);
    *med = n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
    *mn = v[0];
    *mx = v[n - 1];
}

static enum ggml_type parse_type(const char *s) {
    if (!strcmp(s, "q4_0")) return GGML_TYPE_Q4_0;
    if (!strcmp(s, "q4_1")) return GGML_TYPE_Q4_1;
    if (!strcmp(s, "q8_0")) return GGML_TYPE_Q8_0;
    /* output-sparse only (the W_up shapes: --shapes 0,3) */
    if (!strcmp(s, "q5_0")) return GGML_TYPE_Q5_0;
    if (!strcmp(s, "q5_1")) return GGML_TYPE_Q5_1;
    if (!strcmp(s, "q4_K") || !strcmp(s, "q4_k")) return GGML_TYPE_Q4_K;
    if (!strcmp(s, "q5_K") || !strcmp(s, "q5_k")) return GGML_TYPE_Q5_K;
    if (!strcmp(s, "q6_K") || !strcmp(s, "q6_k")) return GGML_TYPE_Q6_K;
    if (!strcmp(s, "f16")) return GGML_TYPE_F16;
    if (!strcmp(s, "bf16")) return GGML_TYPE_BF16;
    if (!strcmp(s, "f32")) return GGML_TYPE_F32;
    fprintf(stderr, "unknown type %s\n", s);
    exit(2);
}

int main(int argc, char **argv) {
    const char *out_path = NULL;
    char types_arg[256] = "q4_0,q4_1,q8_0,f16";
    char threads_arg[64] = "1,2";
    char shapes_arg[256] = "all";
    int reps = 7, n_sp = 10, tokens = 1;
    double ws_mb = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--out") && i + 1 < argc) out_path = argv[++i];
        else if (!strcmp(argv[i], "--types") && i + 1 < argc) snprintf(types_arg, sizeof types_arg, "%s", argv[++i]);
        else if (!strcmp(argv[i], "--threads") && i + 1 < argc) snprintf(threads_arg, sizeof threads_arg, "%s", argv[++i]);
        else if (!strcmp(argv[i], "--shapes") && i + 1 < argc) snprintf(shapes_arg, sizeof shapes_arg, "%s", argv[++i]);
        else if (!strcmp(argv[i], "--reps") && i + 1 < argc) reps = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--sparsities") && i + 1 < argc) n_sp = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--tokens") && i + 1 < argc) tokens = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--working-set-mb") && i + 1 < argc) ws_mb = atof(argv[++i]);
        else if (!strcmp(argv[i], "--clock") && i + 1 < argc) { ++i; g_clock = !strcmp(argv[i], "cpu") ? CLOCK_PROCESS_CPUTIME_ID : CLOCK_MONOTONIC; }
        else {
            fprintf(stderr,
                    "usage: %s [--out file.json] [--types q4_0,q4_1,q8_0,f16 (W_up shapes 0,3 only: q5_0,q5_1,q4_K,q5_K,q6_K)]\n"
                    "          [--threads 1,2] [--shapes all|0,2,..]\n"
                    "          [--reps 7] [--sparsities 10 (0,0.1,..)] [--tokens 1] [--working-set-mb N] [--clock wall|cpu]\n", argv[0]);
            return 2;
        }
    }
    if (reps < 1) reps = 1;
    if (n_sp < 1) n_sp = 1;
    ggml_log_set(log_filter, NULL);
    ggml_cpu_init();
    /* a named ISA the CPU lacks falls back to ref in the library: never time that by mistake */
    const char *want_isa = getenv("CHESS_KERNEL_ISA");
    if (want_isa && *want_isa && strcmp(want_isa, chess_isa_name(chess_get_isa())) != 0) {
        fprintf(stderr, "bench_kernels: CHESS_KERNEL_ISA=%s is not available on this CPU/build (selected: %s)\n", want_isa,
                chess_isa_name(chess_get_isa()));
        return 2;
    }
    long l3 = sysconf(_SC_LEVEL3_CACHE_SIZE);
    if (ws_mb <= 0) {
        /* weights must stream from DRAM: at least 2x the last-level cache (and 512 MB) for decode;
         * prefill is compute-bound, a smaller set suffices */
        ws_mb = tokens > 1 ? 64 : fmax(512.0, l3 > 0 ? 2.0 * (double)l3 / 1048576.0 : 512.0);
    }
    /* one CPU backend for the repacked baseline; its thread count is set per run */
    ggml_backend_t backend = ggml_backend_cpu_init();
    if (!backend) { fprintf(stderr, "ggml_backend_cpu_init failed\n"); return 1; }
    ggml_backend_buffer_type_t repack_buft = find_repack_buft(backend);
    fprintf(stderr, "bench_kernels: isa %s, L3 %ld bytes, working set %.0f MB, tokens %d, reps %d, repack buffer type %s\n",
            chess_isa_name(chess_get_isa()), l3, ws_mb, tokens, reps, repack_buft ? ggml_backend_buft_name(repack_buft) : "none");

    FILE *out = out_path ? fopen(out_path, "w") : stdout;
    if (!out) { perror(out_path); return 1; }
    fprintf(out, "{\n  \"benchmark\": \"chess_sparse kernels vs ggml dense mul_mat\",\n");
    fprintf(out, "  \"isa\": \"%s\",\n  \"ggml_cpu_avx512\": %d,\n  \"l3_bytes\": %ld,\n  \"working_set_mb\": %.0f,\n  \"tokens\": %d,\n  \"reps\": %d,\n  \"clock\": \"%s\",\n",
            chess_isa_name(chess_get_isa()), ggml_cpu_has_avx512(), l3, ws_mb, tokens, reps,
            g_clock == CLOCK_MONOTONIC ? "wall" : "process-cpu");
    fprintf(out, "  \"timing\": \"per product (graph time / copies), all variants interleaved in one run; "
                 "speedup = dense median / sparse median; efficiency = speedup / (1/(1-s)); "
                 "speedup_vs_repacked = dense_repacked median / sparse median; efficiency_vs_repacked = speedup_vs_repacked / (1/(1-s)); "
                 "efficiency_vs_ceiling = read_ceiling median / sparse median (decode only)\",\n");
    fprintf(out, "  \"baselines\": {\"dense_ms\": \"ggml_mul_mat, weight in a plain CPU buffer (no repack), ggml_graph_compute\", "
                 "\"dense_repacked_ms\": \"ggml_mul_mat, same weight bytes uploaded into ggml-cpu's %s extra buffer type "
                 "(repacked layout + kernels llama.cpp uses at run time), ggml_backend_graph_compute; null where ggml does not repack the type on this CPU\", "
                 "\"read_ceiling_ms\": \"decode only: the sparse product's active rows (same bytes, same thread split) streamed with vector loads and prefetch, no arithmetic: the memory system's limit for this access pattern\"},\n",
            repack_buft ? ggml_backend_buft_name(repack_buft) : "CPU_REPACK (absent in this build)");
    fprintf(out, "  \"results\": [\n");
    int first = 1;

    char tbuf[256];
    snprintf(tbuf, sizeof tbuf, "%s", types_arg);
    for (char *ts = strtok(tbuf, ","); ts; ts = strtok(NULL, ",")) {
        const enum ggml_type type = parse_type(ts);
        for (size_t si = 0; si < sizeof k_shapes / sizeof k_shapes[0]; si++) {
            if (strcmp(shapes_arg, "all") != 0) {
                char key[16];
                snprintf(key, sizeof key, "%zu", si);
                char sb[256];
                snprintf(sb, sizeof sb, ",%s,", shapes_arg);
                char kb[20];
                snprintf(kb, sizeof kb, ",%s,", key);
                if (!strstr(sb, kb)) continue;
            }
            const shape_t *sh = &k_shapes[si];
            if (sh->kind == 0 && !chess_type_supported((chess_type)type)) {
                fprintf(stderr, "%-9s %-4s %-5s skipped: the input-sparse products do not take this type\n", sh->model, sh->proj, ts);
                continue;
            }
            const size_t wbytes = ggml_row_size(type, sh->n_in) * (size_t)sh->n_out;
            int copies = (int)ceil(ws_mb * 1048576.0 / (double)wbytes);
            if (copies < 1) copies = 1;
            if (copies > 2000) copies = 2000;
            uint8_t **bufs = malloc(sizeof(uint8_t *) * (size_t)copies);
            for (int c = 0; c < copies; c++) {
                bufs[c] = aligned_alloc(64, (wbytes + 63) & ~(size_t)63);
                fill_weights(bufs[c], wbytes, type);
            }
            const int64_t T = tokens;
            /* the same bytes in the repack buffer type, shared by all thread counts */
            repacked_t rp;
            const char *why = NULL;
            const int have_rp = make_repacked(&rp, repack_buft, type, sh, T, bufs, copies, &why) == 0;
            fprintf(stderr, "%-9s %-4s %-5s repacked baseline: %s\n", sh->model, sh->proj, ts,
                    have_rp ? ggml_backend_buffer_name(rp.buf) : why);
            /* activations */
            float *x_dense = malloc(sizeof(float) * (size_t)(sh->n_in * T));
            for (int64_t i = 0; i < sh->n_in * T; i++) x_dense[i] = rnd_normal();
            const int64_t nmask = sh->kind == 0 ? sh->n_in : sh->n_out;
            float **masked = malloc(sizeof(float *) * (size_t)n_sp); /* x (in) or g (out_gated) per sparsity */
            for (int k = 0; k < n_sp; k++) {
                const double s = 0.1 * k;
                masked[k] = malloc(sizeof(float) * (size_t)(nmask * T));
                for (int64_t i = 0; i < nmask * T; i++) {
                    const float v = rnd_normal();
                    masked[k][i] = (double)(rnd() >> 11) * (1.0 / 9007199254740992.0) < s ? 0.0f : v;
                }
            }

            /* decode: the active rows per sparsity for the read ceiling (kind 0: inputs, rows of
             * the transposed weight; kind 1: live gates, rows of the row layout) */
            const int have_ceiling = T == 1;
            const size_t active_row_bytes = ggml_row_size(type, sh->kind == 0 ? sh->n_out : sh->n_in);
            int32_t **active = malloc(sizeof(int32_t *) * (size_t)n_sp);
            int64_t *n_active = malloc(sizeof(int64_t) * (size_t)n_sp);
            for (int k = 0; k < n_sp; k++) {
                active[k] = malloc(sizeof(int32_t) * (size_t)nmask);
                n_active[k] = 0;
                for (int64_t i = 0; i < nmask; i++)
                    if (masked[k][i] != 0.0f) active[k][n_active[k]++] = (int32_t)i;
            }

            char thbuf[64];
            snprintf(thbuf, sizeof thbuf, "%s", threads_arg);
            char *save = NULL;
            for (char *th = strtok_r(thbuf, ",", &save); th; th = strtok_r(NULL, ",", &save)) {
                const int nthreads = atoi(th);
                /* variants: 0 dense, 1..n_sp sparse, then n_sp read ceilings (decode), then dense repacked (if any) */
                const int v_ceil = have_ceiling ? 1 + n_sp : -1;
                const int v_rp = have_rp ? 1 + n_sp + (have_ceiling ? n_sp : 0) : -1;
                const int nvar = 1 + n_sp + (have_ceiling ? n_sp : 0) + (have_rp ? 1 : 0);
                read_ud *rud = malloc(sizeof(read_ud) * (size_t)copies * (size_t)n_sp);
                ggml_backend_cpu_set_n_threads(backend, nthreads);
                struct ggml_context **ctxs = malloc(sizeof(*ctxs) * (size_t)nvar);
                runnable *rs = malloc(sizeof(runnable) * (size_t)nvar);
                op_ud *uds = malloc(sizeof(op_ud) * (size_t)copies * (size_t)n_sp);
                for (int v = 0; v < nvar; v++) {
                    /* outputs: T rows per copy, plus nthreads partial rows per copy on the parts route */
                    const size_t mem = ggml_tensor_overhead() * (size_t)(4 * copies + 16) + ggml_graph_overhead_custom((size_t)copies * 3 + 16, false) +
                                       sizeof(float) * (size_t)(sh->n_out * (T + nthreads)) * (size_t)(copies + 1) + sizeof(float) * (size_t)(sh->n_in * T) + (1u << 20);
                    struct ggml_init_params ip = { mem, NULL, false };
                    struct ggml_context *ctx = ggml_init(ip);
                    ctxs[v] = ctx;
                    struct ggml_cgraph *gf = ggml_new_graph_custom(ctx, (size_t)copies * 3 + 16, false);
                    struct ggml_tensor *x = ggml_new_tensor_2d(ctx, GGML_TYPE_F32, sh->n_in, T);
                    memcpy(x->data, x_dense, sizeof(float) * (size_t)(sh->n_in * T));
                    for (int c = 0; c < copies; c++) {
                        if (v == 0) {
                            ggml_set_no_alloc(ctx, true); /* the weight lives in our own buffer */
                            struct ggml_tensor *w = ggml_new_tensor_2d(ctx, type, sh->n_in, sh->n_out);
                            ggml_set_no_alloc(ctx, false);
                            w->data = bufs[c];
                            ggml_build_forward_expand(gf, ggml_mul_mat(ctx, w, x));
                        } else if (v == v_rp) {
                            ggml_build_forward_expand(gf, ggml_mul_mat(ctx, rp.w[c], x));
                        } else if (have_ceiling && v >= v_ceil && v < v_ceil + n_sp) {
                            read_ud *u = &rud[(size_t)(v - v_ceil) * (size_t)copies + (size_t)c];
                            *u = (read_ud){ bufs[c], active_row_bytes, active_row_bytes, active[v - v_ceil], n_active[v - v_ceil] };
                            struct ggml_tensor *args[1] = { x };
                            ggml_build_forward_expand(gf, ggml_custom_4d(ctx, GGML_TYPE_F32, 64, 1, 1, 1, args, 1, read_rows_op,
                                                                         GGML_N_TASKS_MAX, u));
                        } else {
                            op_ud *u = &uds[(size_t)(v - 1) * (size_t)copies + (size_t)c];
                            memset(u, 0, sizeof *u);
                            u->kind = sh->kind;
                            const float *m = masked[v - 1];
                            if (sh->kind == 0) {
                                u->in = (chess_spmv_in_args){ (chess_type)type, bufs[c], sh->n_out, sh->n_in,
                                                              ggml_row_size(type, sh->n_out), m, sizeof(float) * (size_t)sh->n_in,
                                                              NULL, sizeof(float) * (size_t)sh->n_out, T, NULL, 0, -1 };
                            } else {
                                u->out = (chess_spmv_out_gated_args){ (chess_type)type, bufs[c], sh->n_in, sh->n_out,
                                                                      ggml_row_size(type, sh->n_in), x_dense, sizeof(float) * (size_t)sh->n_in,
                                                                      m, sizeof(float) * (size_t)sh->n_out, NULL,
                                                                      sizeof(float) * (size_t)sh->n_out, T, NULL, 0, -1 };
                            }
                            struct ggml_tensor *args[1] = { x };
                            u->n_parts = sh->kind == 0 && T == 1 ? nthreads : 1; /* the runtime's decode route */
                            if (u->n_parts > 1) {
                                struct ggml_tensor *parts = ggml_custom_4d(ctx, GGML_TYPE_F32, sh->n_out, u->n_parts, 1, 1, args, 1,
                                                                           chess_op, GGML_N_TASKS_MAX, u);
                                struct ggml_tensor *sum_args[1] = { parts };
                                ggml_build_forward_expand(gf, ggml_custom_4d(ctx, GGML_TYPE_F32, sh->n_out, 1, 1, 1, sum_args, 1,
                                                                             sum_parts_op, GGML_N_TASKS_MAX, NULL));
                            } else {
                                ggml_build_forward_expand(gf, ggml_custom_4d(ctx, GGML_TYPE_F32, sh->n_out, T, 1, 1, args, 1,
                                                                             chess_op, GGML_N_TASKS_MAX, u));
                            }
                        }
                    }
                    if (v == v_rp) rs[v] = (runnable){ gf, { 0 }, backend };
                    else rs[v] = make_runnable(gf, nthreads);
                }
                /* warm-up, then interleaved repeats */
                for (int v = 0; v < nvar; v++) time_run(&rs[v]);
                if (have_rp) {
                    /* the repacked product must be the plain one (both quantize x to q8_0; only the
                     * summation order differs), else the baseline is not measuring the same work */
                    const double rd = max_rel_diff(rs[0].gf, rs[v_rp].gf);
                    fprintf(stderr, "%-9s %-4s %-5s t=%d repacked vs plain dense output: max rel diff %.2g%s\n", sh->model, sh->proj, ts,
                            nthreads, rd, rd < 1e-3 ? "" : "  WARNING: not the same product");
                }
                double *samples = malloc(sizeof(double) * (size_t)(nvar * reps));
                for (int r = 0; r < reps; r++)
                    for (int i = 0; i < nvar; i++) {
                        const int v = (i + r) % nvar; /* rotate the order every repeat */
                        samples[v * reps + r] = time_run(&rs[v]) / copies * 1e3;
                    }
                double dmed, dmin, dmax, rmed = 0, rmin = 0, rmax = 0;
                stats(samples, reps, &dmed, &dmin, &dmax);
                if (have_rp) stats(samples + (size_t)v_rp * (size_t)reps, reps, &rmed, &rmin, &rmax);
                for (int k = 0; k < n_sp; k++) {
                    const double s = 0.1 * k;
                    double med, mn, mx;
                    stats(samples + (size_t)(k + 1) * (size_t)reps, reps, &med, &mn, &mx);
                    const double speedup = dmed / med, ideal = 1.0 / (1.0 - s), speedup_rp = rmed / med;
                    fprintf(out, "%s    {\"model\": \"%s\", \"proj\": \"%s\", \"kernel\": \"%s\", \"n_in\": %lld, \"n_out\": %lld, "
                                 "\"type\": \"%s\", \"threads\": %d, \"tokens\": %d, \"sparsity\": %.1f, \"copies\": %d, ",
                            first ? "" : ",\n", sh->model, sh->proj, sh->kind ? "spmv_out_gated" : "spmv_in", (long long)sh->n_in,
                            (long long)sh->n_out, ts, nthreads, tokens, s, copies);
                    json_ms(out, "dense_ms", 1, dmed, dmin, dmax);
                    json_ms(out, "dense_repacked_ms", have_rp, rmed, rmin, rmax);
                    json_ms(out, "sparse_ms", 1, med, mn, mx);
                    double cmed = 0, cmin = 0, cmax = 0;
                    if (have_ceiling) stats(samples + (size_t)(v_ceil + k) * (size_t)reps, reps, &cmed, &cmin, &cmax);
                    json_ms(out, "read_ceiling_ms", have_ceiling, cmed, cmin, cmax);
                    char crp[32] = "null";
                    if (have_ceiling && have_rp) snprintf(crp, sizeof crp, "%.3f", rmed / cmed);
                    if (have_ceiling)
                        fprintf(out, "\"efficiency_vs_ceiling\": %.3f, \"ceiling_speedup_vs_dense\": %.3f, \"ceiling_speedup_vs_repacked\": %s, ",
                                cmed / med, dmed / cmed, crp);
                    else fprintf(out, "\"efficiency_vs_ceiling\": null, \"ceiling_speedup_vs_dense\": null, \"ceiling_speedup_vs_repacked\": null, ");
                    fprintf(out, "\"dense_gbps\": %.2f, \"speedup\": %.3f, \"ideal\": %.3f, \"efficiency\": %.3f, ",
                            (double)wbytes / (dmed * 1e-3) / 1e9, speedup, ideal, speedup / ideal);
                    if (have_rp)
                        fprintf(out, "\"dense_repacked_gbps\": %.2f, \"speedup_vs_repacked\": %.3f, \"efficiency_vs_repacked\": %.3f}",
                                (double)wbytes / (rmed * 1e-3) / 1e9, speedup_rp, speedup_rp / ideal);
                    else fprintf(out, "\"dense_repacked_gbps\": null, \"speedup_vs_repacked\": null, \"efficiency_vs_repacked\": null}");
                    first = 0;
                    char rbuf[96] = "repacked n/a";
                    if (have_rp) snprintf(rbuf, sizeof rbuf, "repacked %.3f ms, vs repacked %.2f (eff %.2f)", rmed, speedup_rp, speedup_rp / ideal);
                    char cbuf[96] = "";
                    if (have_ceiling) snprintf(cbuf, sizeof cbuf, "; read ceiling %.3f ms (kernel at %.2f of it)", cmed, cmed / med);
                    fprintf(stderr, "%-9s %-4s %-5s t=%d T=%d s=%.1f dense %.3f ms (%.1f GB/s) sparse %.3f ms speedup %.2f (ideal %.2f, eff %.2f); %s%s\n",
                            sh->model, sh->proj, ts, nthreads, tokens, s, dmed, (double)wbytes / (dmed * 1e-3) / 1e9, med, speedup,
                            ideal, speedup / ideal, rbuf, cbuf);
                }
                fflush(out);
                for (int v = 0; v < nvar; v++) { free(rs[v].plan.work_data); ggml_free(ctxs[v]); }
                free(samples); free(ctxs); free(rs); free(uds); free(rud);
            }
            if (have_rp) free_repacked(&rp);
            for (int c = 0; c < copies; c++) free(bufs[c]);
            free(bufs);
            free(x_dense);
            for (int k = 0; k < n_sp; k++) { free(masked[k]); free(active[k]); }
            free(masked); free(active); free(n_active);
        }
    }
    fprintf(out, "\n  ]\n}\n");
    if (out != stdout) fclose(out);
    ggml_backend_free(backend);
    return 0;
}
