/* Column-block kernel benchmark: chess_spmv_cb (docs/gguf-sparse.md §3.1) against ggml's
 * dense GEMV on the same weight in its row layout, for decode (one token).
 *
 * Everything runs inside ggml graphs on the CPU backend with the same thread count, ours
 * as ggml_custom_4d nodes calling the kernel with (ith, nth) as the llama.cpp integration
 * does. Per (type, shape, threads), interleaved over the repeats:
 *   dense           ggml_mul_mat, row layout in a plain CPU buffer (ggml's vec_dot path);
 *   dense_repacked  the same bytes in ggml-cpu's CPU_REPACK buffer type (the interleaved
 *                   layout and GEMV llama.cpp runs; null where ggml does not repack);
 *   cb_parts        chess_spmv_cb_parts with n_parts = threads, then chess_sum_parts (the
 *                   runtime's decode route: each thread streams whole columns of a range of
 *                   groups);
 *   cb_rows         chess_spmv_cb (threads split the rows);
 *   read_ceiling    no arithmetic: exactly the bytes cb_parts reads (scale sections and kept
 *                   columns of the groups with a kept channel, same split between threads),
 *                   streamed with vector loads and the kernels' prefetch distance.
 * The copies of the weight together exceed the last-level cache, so weights stream from
 * DRAM as in decoding. GB/s = bytes the product reads / its median time.
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

typedef struct { const char *model, *proj; int64_t n_in, n_out; } shape_t;
static const shape_t k_shapes[] = {
    { "llama2-7b", "down", 11008, 4096 },
    { "llama2-7b", "q/o", 4096, 4096 },
    { "llama2-7b", "gate/up (teal)", 4096, 11008 },
    { "llama3-8b", "down", 14336, 4096 },
};

/* wall clock by default; --clock cpu: process CPU time (sum over threads, spinning included),
 * steadier when the machine is oversubscribed */
static clockid_t g_clock = CLOCK_MONOTONIC;
static double now_s(void) {
    struct timespec ts;
    clock_gettime(g_clock, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}
static uint64_t g_rng = 0x9e3779b97f4a7c15ull;
static uint64_t rnd(void) { g_rng ^= g_rng << 13; g_rng ^= g_rng >> 7; g_rng ^= g_rng << 17; return g_rng; }
static double rnd_unit(void) { return (double)(rnd() >> 11) * (1.0 / 9007199254740992.0); }
static float rnd_normal(void) {
    const double u = ((rnd() >> 11) + 1.0) * (1.0 / 9007199254740993.0), v = rnd_unit();
    return (float)(sqrt(-2.0 * log(u)) * cos(6.283185307179586 * v));
}

/* random bytes with sane fp16 scales (d first; Q4_1 / Q5_1 m and K dmin second; Q6_K d last) */
static void fill_weights(uint8_t *w, size_t bytes, enum ggml_type t) {
    for (size_t i = 0; i + 8 <= bytes; i += 8) { const uint64_t r = rnd(); memcpy(w + i, &r, 8); }
    const size_t bs = ggml_type_size(t);
    const size_t d_off = t == GGML_TYPE_Q6_K ? bs - 2 : 0;
    const int second = t == GGML_TYPE_Q4_1 || t == GGML_TYPE_Q5_1 || t == GGML_TYPE_Q4_K || t == GGML_TYPE_Q5_K;
    for (size_t off = 0; off + bs <= bytes; off += bs) {
        const uint16_t d = (uint16_t)(0x1c00 | (rnd() & 0x3ff));
        memcpy(w + off + d_off, &d, 2);
        if (second) memcpy(w + off + 2, &d, 2);
    }
}

/* ---- the products as custom ops ---- */
typedef struct { chess_spmv_cb_args a; int parts; } cb_ud;

static void cb_op(struct ggml_tensor *dst, int ith, int nth, void *ud) {
    const cb_ud *u = ud;
    chess_spmv_cb_args a = u->a;
    a.y = (float *)dst->data;
    a.y_nb1 = dst->nb[1];
    const int rc = u->parts ? chess_spmv_cb_parts(&a, (int)dst->ne[1], ith, nth) : chess_spmv_cb(&a, ith, nth);
    if (rc != CHESS_OK) { fprintf(stderr, "chess_spmv_cb error %d\n", rc); abort(); }
}
static void sum_parts_op(struct ggml_tensor *dst, int ith, int nth, void *ud) {
    (void)ud;
    const struct ggml_tensor *p = dst->src[0];
    if (chess_sum_parts((float *)dst->data, (const float *)p->data, p->nb[1], dst->ne[0], (int)p->ne[1], ith, nth) != CHESS_OK) abort();
}

/* read ceiling: spans (pointer, bytes) per thread, streamed with prefetch CS_CB_PF_BYTES ahead */
typedef struct { const uint8_t **p; size_t *n; int64_t *first; int nspans; } ceil_ud;

static void ceil_op(struct ggml_tensor *dst, int ith, int nth, void *ud) {
    const ceil_ud *u = ud;
    const int64_t s0 = u->first[ith], s1 = u->first[ith + 1];
    (void)nth;
    uint64_t acc[8] = { 0 };
    int64_t pf = s0;
    size_t ahead = 0;
    for (int64_t s = s0; s < s1; s++) {
        while (pf < s1 && ahead < 16384) {
            for (size_t o = 0; o < u->n[pf]; o += 64) __builtin_prefetch(u->p[pf] + o, 0, 2);
            ahead += u->n[pf++];
        }
        const uint8_t *r = u->p[s];
        size_t o = 0;
        for (; o + 64 <= u->n[s]; o += 64)
            for (int i = 0; i < 8; i++) { uint64_t v; memcpy(&v, r + o + 8 * i, 8); acc[i] ^= v; }
        for (; o < u->n[s]; o++) acc[0] ^= r[o];
        ahead -= u->n[s] < ahead ? u->n[s] : ahead;
    }
    uint64_t a = 0;
    for (int i = 0; i < 8; i++) a ^= acc[i];
    ((float *)dst->data)[ith] = (float)(a & 0xffff);
}

/* the column-block geometry of §3.1: scale bytes per row, bits per value */
static void cb_geometry(enum ggml_type t, size_t *sc, size_t *bits) {
    switch (t) {
    case GGML_TYPE_Q4_0: *sc = 2; *bits = 4; break;
    case GGML_TYPE_Q4_1: *sc = 4; *bits = 4; break;
    case GGML_TYPE_Q5_0: *sc = 2; *bits = 5; break;
    case GGML_TYPE_Q5_1: *sc = 4; *bits = 5; break;
    case GGML_TYPE_Q8_0: *sc = 2; *bits = 8; break;
    case GGML_TYPE_Q4_K: *sc = 16; *bits = 4; break;
    case GGML_TYPE_Q5_K: *sc = 16; *bits = 5; break;
    case GGML_TYPE_Q6_K: *sc = 18; *bits = 6; break;
    case GGML_TYPE_F16: case GGML_TYPE_BF16: *sc = 0; *bits = 16; break;
    default: *sc = 0; *bits = 32; break;
    }
}

/* The spans cb_parts reads for mask x (n_parts = nth parts over the groups with a kept
 * channel, as chess_spmv_cb_parts splits them); returns the total bytes. */
static size_t make_spans(ceil_ud *u, const uint8_t *w, enum ggml_type t, int64_t n_in, int64_t R, const float *x, int nth) {
    const int64_t B = ggml_blck_size(t), G = n_in / B;
    size_t sc, bits;
    cb_geometry(t, &sc, &bits);
    const size_t colb = (size_t)R * bits / 8, gbytes = (size_t)R * ggml_type_size(t);
    int64_t *kept_groups = malloc(sizeof(int64_t) * (size_t)G), ng = 0;
    for (int64_t g = 0; g < G; g++) {
        int any = 0;
        for (int64_t c = 0; c < B; c++) any |= x[g * B + c] != 0.0f;
        if (any) kept_groups[ng++] = g;
    }
    u->p = malloc(sizeof(uint8_t *) * (size_t)(n_in + G));
    u->n = malloc(sizeof(size_t) * (size_t)(n_in + G));
    u->first = malloc(sizeof(int64_t) * (size_t)(nth + 1));
    int nspans = 0;
    size_t total = 0;
    for (int p = 0; p < nth; p++) {
        u->first[p] = nspans;
        for (int64_t i = ng * p / nth; i < ng * (p + 1) / nth; i++) {
            const int64_t g = kept_groups[i];
            const uint8_t *grp = w + (size_t)g * gbytes;
            if (sc) { u->p[nspans] = grp; u->n[nspans++] = (size_t)R * sc; total += (size_t)R * sc; }
            for (int64_t c = 0; c < B; c++)
                if (x[g * B + c] != 0.0f) { u->p[nspans] = grp + (size_t)R * sc + (size_t)c * colb; u->n[nspans++] = colb; total += colb; }
        }
    }
    u->first[nth] = nspans;
    u->nspans = nspans;
    free(kept_groups);
    return total;
}

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

static ggml_backend_buffer_type_t find_repack_buft(ggml_backend_t backend) {
    ggml_backend_dev_t dev = ggml_backend_get_device(backend);
    ggml_backend_dev_get_extra_bufts_t get_extra =
        (ggml_backend_dev_get_extra_bufts_t)ggml_backend_reg_get_proc_address(ggml_backend_dev_backend_reg(dev), "ggml_backend_dev_get_extra_bufts");
    if (!get_extra) return NULL;
    for (ggml_backend_buffer_type_t *b = get_extra(dev); b && *b; b++)
        if (!strcmp(ggml_backend_buft_name(*b), "CPU_REPACK")) return *b;
    return NULL;
}

static void log_filter(enum ggml_log_level level, const char *text, void *ud) {
    static int dropping = 0;
    (void)ud;
    if (level != GGML_LOG_LEVEL_CONT) dropping = level == GGML_LOG_LEVEL_DEBUG;
    if (!dropping) fputs(text, stderr);
}

static int cmp_d(const void *a, const void *b) { const double x = *(const double *)a, y = *(const double *)b; return x < y ? -1 : x > y; }
static void stats(double *v, int n, double *med, double *mn, double *mx) {
    qsort(v, (size_t)n, sizeof(double), cmp_d);
    *med = n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
    *mn = v[0];
    *mx = v[n - 1];
}

static enum ggml_type parse_type(const char *s) {
    static const struct { const char *n; enum ggml_type t; } k[] = {
        { "q4_0", GGML_TYPE_Q4_0 }, { "q4_1", GGML_TYPE_Q4_1 }, { "q5_0", GGML_TYPE_Q5_0 }, { "q5_1", GGML_TYPE_Q5_1 },
        { "q8_0", GGML_TYPE_Q8_0 }, { "q4_K", GGML_TYPE_Q4_K }, { "q5_K", GGML_TYPE_Q5_K }, { "q6_K", GGML_TYPE_Q6_K },
        { "f16", GGML_TYPE_F16 }, { "bf16", GGML_TYPE_BF16 }, { "f32", GGML_TYPE_F32 },
    };
    for (size_t i = 0; i < sizeof k / sizeof k[0]; i++) if (!strcasecmp(s, k[i].n)) return k[i].t;
    fprintf(stderr, "unknown type %s\n", s);
    exit(2);
}

int main(int argc, char **argv) {
    const char *out_path = NULL;
    char types_arg[128] = "q4_0", threads_arg[32] = "2", shapes_arg[64] = "0,1", sp_arg[128] = "0,0.3,0.5,0.7";
    int reps = 7;
    double ws_mb = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--out") && i + 1 < argc) out_path = argv[++i];
        else if (!strcmp(argv[i], "--types") && i + 1 < argc) snprintf(types_arg, sizeof types_arg, "%s", argv[++i]);
        else if (!strcmp(argv[i], "--threads") && i + 1 < argc) snprintf(threads_arg, sizeof threads_arg, "%s", argv[++i]);
        else if (!strcmp(argv[i], "--shapes") && i + 1 < argc) snprintf(shapes_arg, sizeof shapes_arg, "%s", argv[++i]);
        else if (!strcmp(argv[i], "--sparsities") && i + 1 < argc) snprintf(sp_arg, sizeof sp_arg, "%s", argv[++i]);
        else if (!strcmp(argv[i], "--reps") && i + 1 < argc) reps = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--working-set-mb") && i + 1 < argc) ws_mb = atof(argv[++i]);
        else if (!strcmp(argv[i], "--clock") && i + 1 < argc) { ++i; g_clock = !strcmp(argv[i], "cpu") ? CLOCK_PROCESS_CPUTIME_ID : CLOCK_MONOTONIC; }
        else {
            fprintf(stderr, "usage: %s [--out f.json] [--types q4_0,..] [--threads 2] [--shapes 0,1 (0 W_down, 1 W_q/W_o, 2 TEAL gate/up, 3 Llama-3 W_down)]\n"
                            "          [--sparsities 0,0.3,0.5,0.7] [--reps 7] [--working-set-mb N] [--clock wall|cpu]\n", argv[0]);
            return 2;
        }
    }
    if (reps < 1) reps = 1;
    double sp[16];
    int n_sp = 0;
    for (char *s = strtok(sp_arg, ","); s && n_sp < 16; s = strtok(NULL, ",")) sp[n_sp++] = atof(s);
    ggml_log_set(log_filter, NULL);
    ggml_cpu_init();
    const char *want_isa = getenv("CHESS_KERNEL_ISA");
    if (want_isa && *want_isa && strcmp(want_isa, chess_isa_name(chess_get_isa())) != 0) {
        fprintf(stderr, "bench_cb: CHESS_KERNEL_ISA=%s is not available (selected: %s)\n", want_isa, chess_isa_name(chess_get_isa()));
        return 2;
    }
    const long l3 = sysconf(_SC_LEVEL3_CACHE_SIZE);
    if (ws_mb <= 0) ws_mb = fmax(512.0, l3 > 0 ? 2.0 * (double)l3 / 1048576.0 : 512.0);
    ggml_backend_t backend = ggml_backend_cpu_init();
    ggml_backend_buffer_type_t repack_buft = find_repack_buft(backend);
    fprintf(stderr, "bench_cb: isa %s, L3 %ld bytes, working set %.0f MB, reps %d\n", chess_isa_name(chess_get_isa()), l3, ws_mb, reps);

    FILE *out = out_path ? fopen(out_path, "w") : stdout;
    if (!out) { perror(out_path); return 1; }
    fprintf(out, "{\n  \"benchmark\": \"chess_spmv_cb (column-block layout) vs ggml dense GEMV, decode\",\n  \"isa\": \"%s\",\n"
                 "  \"l3_bytes\": %ld,\n  \"working_set_mb\": %.0f,\n  \"reps\": %d,\n  \"clock\": \"%s\",\n"
                 "  \"timing\": \"ms per product (graph time / copies), medians over interleaved repeats; gbps = bytes the product reads / median\",\n"
                 "  \"results\": [\n", chess_isa_name(chess_get_isa()), l3, ws_mb, reps, g_clock == CLOCK_MONOTONIC ? "wall" : "process-cpu");
    int first = 1;
    char tb[128];
    snprintf(tb, sizeof tb, "%s", types_arg);
    char *tsave = NULL;
    for (char *ts = strtok_r(tb, ",", &tsave); ts; ts = strtok_r(NULL, ",", &tsave)) {
        const enum ggml_type type = parse_type(ts);
        char shb[64];
        snprintf(shb, sizeof shb, "%s", shapes_arg);
        char *ssave = NULL;
        for (char *ss = strtok_r(shb, ",", &ssave); ss; ss = strtok_r(NULL, ",", &ssave)) {
            const int si = atoi(ss);
            if (si < 0 || si >= (int)(sizeof k_shapes / sizeof k_shapes[0])) { fprintf(stderr, "no shape %d\n", si); return 2; }
            const shape_t *sh = &k_shapes[si];
            const size_t wbytes = ggml_row_size(type, sh->n_in) * (size_t)sh->n_out;
            if (chess_cb_check((chess_type)type, sh->n_in, sh->n_out, wbytes) != CHESS_OK) { fprintf(stderr, "%s: no column-block form\n", ts); return 2; }
            int copies = (int)ceil(ws_mb * 1048576.0 / (double)wbytes);
            if (copies < 1) copies = 1;
            uint8_t **rows = malloc(sizeof(uint8_t *) * (size_t)copies), **cbw = malloc(sizeof(uint8_t *) * (size_t)copies);
            for (int c = 0; c < copies; c++) {
                rows[c] = aligned_alloc(64, (wbytes + 63) & ~(size_t)63);
                cbw[c] = aligned_alloc(64, (wbytes + 63) & ~(size_t)63);
                fill_weights(rows[c], wbytes, type);
                chess_cb_from_rows((chess_type)type, rows[c], sh->n_in, sh->n_out, cbw[c]);
            }
            /* the repacked copies (ggml repacks on upload) */
            struct ggml_context *rctx = NULL;
            ggml_backend_buffer_t rbuf = NULL;
            struct ggml_tensor **rw = NULL;
            if (repack_buft) {
                struct ggml_init_params ip = { ggml_tensor_overhead() * (size_t)(copies + 4), NULL, true };
                rctx = ggml_init(ip);
                rw = malloc(sizeof(*rw) * (size_t)copies);
                for (int c = 0; c < copies; c++) rw[c] = ggml_new_tensor_2d(rctx, type, sh->n_in, sh->n_out);
                rbuf = ggml_backend_alloc_ctx_tensors_from_buft(rctx, repack_buft);
                struct ggml_init_params pp = { ggml_tensor_overhead() * 4, NULL, true };
                struct ggml_context *pctx = ggml_init(pp);
                struct ggml_tensor *probe = ggml_mul_mat(pctx, rw[0], ggml_new_tensor_2d(pctx, GGML_TYPE_F32, sh->n_in, 1));
                const int ok = rbuf && ggml_backend_dev_supports_op(ggml_backend_buft_get_device(repack_buft), probe);
                ggml_free(pctx);
                if (ok) for (int c = 0; c < copies; c++) ggml_backend_tensor_set(rw[c], rows[c], 0, wbytes);
                else { if (rbuf) ggml_backend_buffer_free(rbuf); rbuf = NULL; }
            }
            float *xd = malloc(sizeof(float) * (size_t)sh->n_in);
            for (int64_t i = 0; i < sh->n_in; i++) xd[i] = rnd_normal();
            float **xm = malloc(sizeof(float *) * (size_t)n_sp);
            for (int k = 0; k < n_sp; k++) {
                xm[k] = malloc(sizeof(float) * (size_t)sh->n_in);
                for (int64_t i = 0; i < sh->n_in; i++) xm[k][i] = rnd_unit() < sp[k] ? 0.0f : xd[i];
            }
            char thb[32];
            snprintf(thb, sizeof thb, "%s", threads_arg);
            char *hsave = NULL;
            for (char *th = strtok_r(thb, ",", &hsave); th; th = strtok_r(NULL, ",", &hsave)) {
                const int nth = atoi(th);
                ggml_backend_cpu_set_n_threads(backend, nth);
                /* variants: 0 dense, 1 repacked, then per sparsity: cb_parts, cb_rows, ceiling */
                const int nvar = 2 + 3 * n_sp;
                runnable *rs = calloc((size_t)nvar, sizeof(runnable));
                struct ggml_context **ctxs = calloc((size_t)nvar, sizeof(*ctxs));
                cb_ud *uds = malloc(sizeof(cb_ud) * (size_t)copies * (size_t)n_sp);
                ceil_ud *cus = malloc(sizeof(ceil_ud) * (size_t)copies * (size_t)n_sp);
                size_t *cb_bytes = malloc(sizeof(size_t) * (size_t)n_sp);
                for (int k = 0; k < n_sp; k++)
                    for (int c = 0; c < copies; c++) {
                        const size_t b = make_spans(&cus[k * copies + c], cbw[c], type, sh->n_in, sh->n_out, xm[k], nth);
                        if (c == 0) cb_bytes[k] = b;
                    }
                for (int v = 0; v < nvar; v++) {
                    if (v == 1 && !rbuf) continue;
                    const size_t mem = ggml_tensor_overhead() * (size_t)(4 * copies + 16) + ggml_graph_overhead_custom((size_t)copies * 3 + 16, false) +
                                       sizeof(float) * (size_t)(sh->n_out * (nth + 2)) * (size_t)(copies + 1) + sizeof(float) * (size_t)sh->n_in + (1u << 20);
                    struct ggml_init_params ip = { mem, NULL, false };
                    struct ggml_context *ctx = ctxs[v] = ggml_init(ip);
                    struct ggml_cgraph *gf = ggml_new_graph_custom(ctx, (size_t)copies * 3 + 16, false);
                    const int k = (v - 2) / 3, route = (v - 2) % 3;
                    struct ggml_tensor *x = ggml_new_tensor_2d(ctx, GGML_TYPE_F32, sh->n_in, 1);
                    memcpy(x->data, v < 2 ? xd : xm[k], sizeof(float) * (size_t)sh->n_in);
                    for (int c = 0; c < copies; c++) {
                        struct ggml_tensor *args[1] = { x };
                        if (v == 0) {
                            ggml_set_no_alloc(ctx, true);
                            struct ggml_tensor *w = ggml_new_tensor_2d(ctx, type, sh->n_in, sh->n_out);
                            ggml_set_no_alloc(ctx, false);
                            w->data = rows[c];
                            ggml_build_forward_expand(gf, ggml_mul_mat(ctx, w, x));
                        } else if (v == 1) {
                            ggml_build_forward_expand(gf, ggml_mul_mat(ctx, rw[c], x));
                        } else if (route == 2) {
                            ggml_build_forward_expand(gf, ggml_custom_4d(ctx, GGML_TYPE_F32, 64, 1, 1, 1, args, 1, ceil_op, nth, &cus[k * copies + c]));
                        } else {
                            cb_ud *u = &uds[k * copies + c];
                            u->a = (chess_spmv_cb_args){ (chess_type)type, cbw[c], sh->n_in, sh->n_out, xm[k], sizeof(float) * (size_t)sh->n_in,
                                                         NULL, 0, 1, NULL, 0, -1 };
                            u->parts = route == 0;
                            if (route == 0) {
                                struct ggml_tensor *parts = ggml_custom_4d(ctx, GGML_TYPE_F32, sh->n_out, nth, 1, 1, args, 1, cb_op, GGML_N_TASKS_MAX, u);
                                struct ggml_tensor *sa[1] = { parts };
                                ggml_build_forward_expand(gf, ggml_custom_4d(ctx, GGML_TYPE_F32, sh->n_out, 1, 1, 1, sa, 1, sum_parts_op, GGML_N_TASKS_MAX, NULL));
                            } else {
                                ggml_build_forward_expand(gf, ggml_custom_4d(ctx, GGML_TYPE_F32, sh->n_out, 1, 1, 1, args, 1, cb_op, GGML_N_TASKS_MAX, u));
                            }
                        }
                    }
                    rs[v] = v == 1 ? (runnable){ gf, { 0 }, backend } : make_runnable(gf, nth);
                }
                for (int v = 0; v < nvar; v++) if (rs[v].gf) time_run(&rs[v]);
                double *smp = calloc((size_t)(nvar * reps), sizeof(double));
                for (int r = 0; r < reps; r++)
                    for (int i = 0; i < nvar; i++) {
                        const int v = (i + r) % nvar;
                        if (rs[v].gf) smp[v * reps + r] = time_run(&rs[v]) / copies * 1e3;
                    }
                double dmed, dmin, dmax, rmed = 0, rmin, rmax;
                stats(smp, reps, &dmed, &dmin, &dmax);
                if (rbuf) stats(smp + reps, reps, &rmed, &rmin, &rmax);
                for (int k = 0; k < n_sp; k++) {
                    double pm, pmin, pmax, wm, wmin, wmax, cm, cmin, cmax;
                    stats(smp + (size_t)(2 + 3 * k) * reps, reps, &pm, &pmin, &pmax);
                    stats(smp + (size_t)(3 + 3 * k) * reps, reps, &wm, &wmin, &wmax);
                    stats(smp + (size_t)(4 + 3 * k) * reps, reps, &cm, &cmin, &cmax);
                    const double gb = (double)cb_bytes[k] / 1e9;
                    char rms[32] = "null", rsp[32] = "null";
                    if (rbuf) { snprintf(rms, sizeof rms, "%.4f", rmed); snprintf(rsp, sizeof rsp, "%.3f", rmed / pm); }
                    fprintf(out, "%s    {\"model\": \"%s\", \"proj\": \"%s\", \"n_in\": %lld, \"n_out\": %lld, \"type\": \"%s\", \"threads\": %d, "
                                 "\"sparsity\": %.2f, \"copies\": %d, \"dense_bytes\": %zu, \"cb_bytes\": %zu, \"bytes_fraction\": %.4f, "
                                 "\"dense_ms\": %.4f, \"dense_gbps\": %.2f, \"dense_repacked_ms\": %s, \"cb_parts_ms\": %.4f, \"cb_parts_min_ms\": %.4f, "
                                 "\"cb_parts_max_ms\": %.4f, \"cb_rows_ms\": %.4f, \"read_ceiling_ms\": %.4f, \"cb_parts_gbps\": %.2f, \"cb_rows_gbps\": %.2f, "
                                 "\"read_ceiling_gbps\": %.2f, \"speedup_vs_dense\": %.3f, \"speedup_vs_repacked\": %s, \"parts_vs_ceiling\": %.3f}",
                            first ? "" : ",\n", sh->model, sh->proj, (long long)sh->n_in, (long long)sh->n_out, ts, nth, sp[k], copies, wbytes,
                            cb_bytes[k], (double)cb_bytes[k] / (double)wbytes, dmed, (double)wbytes / 1e9 / (dmed * 1e-3), rms, pm, pmin, pmax, wm, cm, gb / (pm * 1e-3), gb / (wm * 1e-3), gb / (cm * 1e-3), dmed / pm, rsp, cm / pm);
                    first = 0;
                    fprintf(stderr, "%-9s %-5s %-5s t=%d s=%.2f bytes %.3f of dense | dense %.3f ms (%.1f GB/s) repacked %s ms | cb parts %.3f ms (%.1f GB/s) "
                                    "rows %.3f ms | ceiling %.3f ms (%.1f GB/s) | parts vs dense %.2fx, vs repacked %sx, at %.2f of ceiling\n",
                            sh->model, sh->proj, ts, nth, sp[k], (double)cb_bytes[k] / (double)wbytes, dmed, (double)wbytes / 1e9 / (dmed * 1e-3),
                            rms, pm, gb / (pm * 1e-3), wm, cm, gb / (cm * 1e-3), dmed / pm, rsp, cm / pm);
                }
                fflush(out);
                for (int v = 0; v < nvar; v++) { free(rs[v].plan.work_data); if (ctxs[v]) ggml_free(ctxs[v]); }
                for (int i = 0; i < copies * n_sp; i++) { free(cus[i].p); free(cus[i].n); free(cus[i].first); }
                free(rs); free(ctxs); free(uds); free(cus); free(cb_bytes); free(smp);
            }
            if (rbuf) ggml_backend_buffer_free(rbuf);
            if (rctx) ggml_free(rctx);
            free(rw);
            for (int c = 0; c < copies; c++) { free(rows[c]); free(cbw[c]); }
            for (int k = 0; k < n_sp; k++) free(xm[k]);
            free(rows); free(cbw); free(xm); free(xd);
        }
    }
    fprintf(out, "\n  ]\n}\n");
    if (out != stdout) fclose(out);
    ggml_backend_free(backend);
    return 0;
}
