// Reference encoder for the codec tests: runs llama.cpp's own reference
// quantizers (ggml-quants.c, compiled from the pristine tree) over a raw
// little-endian float32 file and writes one raw block file per type.
//
//   quantize_ref IN.f32 OUTDIR   -> OUTDIR/{f16,bf16,q8_0,q4_0,q4_1,q5_0,q5_1}.bin
//   quantize_ref --fp16-table OUT -> fp32 bits of all 65536 fp16 patterns
//
// F16/BF16 use the ggml-impl.h conversions that ggml_fp32_to_fp16_row and
// ggml_fp32_to_bf16_row_ref apply element by element (ggml.c itself is not
// linked: it drags in the whole runtime).
#include "ggml-impl.h"
#include "ggml-quants.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void * read_all(const char * path, size_t * size) {
    FILE * f = fopen(path, "rb");
    if (!f) { perror(path); exit(2); }
    fseek(f, 0, SEEK_END);
    *size = (size_t) ftell(f);
    fseek(f, 0, SEEK_SET);
    void * data = malloc(*size ? *size : 1);
    if (fread(data, 1, *size, f) != *size) { perror(path); exit(2); }
    fclose(f);
    return data;
}

static void write_file(const char * path, const void * data, size_t size) {
    FILE * f = fopen(path, "wb");
    if (!f || fwrite(data, 1, size, f) != size) { perror(path); exit(2); }
    fclose(f);
}

static void write_all(const char * dir, const char * name, const void * data, size_t size) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    write_file(path, data, size);
}

typedef void (*quantize_fn)(const float *, void *, int64_t);

static void run_block_type(const char * dir, const char * name, quantize_fn fn, size_t block_bytes,
                           const float * x, int64_t n) {
    const size_t size = (size_t) (n / 32) * block_bytes;
    void * out = calloc(size ? size : 1, 1);
    fn(x, out, n);
    write_all(dir, name, out, size);
    free(out);
}

int main(int argc, char ** argv) {
    if (argc == 3 && strcmp(argv[1], "--fp16-table") == 0) {
        static float table[65536];
        for (uint32_t h = 0; h < 65536; h++) table[h] = GGML_FP16_TO_FP32((ggml_fp16_t) h);
        write_file(argv[2], table, sizeof table);
        return 0;
    }
    if (argc != 3) {
        fprintf(stderr, "usage: %s IN.f32 OUTDIR | --fp16-table OUT\n", argv[0]);
        return 2;
    }
    size_t size;
    const float * x = read_all(argv[1], &size);
    const int64_t n = (int64_t) (size / sizeof(float));
    if (n % 32 != 0) { fprintf(stderr, "%s: %lld floats, not a multiple of 32\n", argv[1], (long long) n); return 2; }

    ggml_fp16_t * h = malloc((size_t) n * sizeof *h + 1);
    for (int64_t i = 0; i < n; i++) h[i] = GGML_FP32_TO_FP16(x[i]);
    write_all(argv[2], "f16.bin", h, (size_t) n * sizeof *h);
    ggml_bf16_t * b = malloc((size_t) n * sizeof *b + 1);
    for (int64_t i = 0; i < n; i++) b[i] = GGML_FP32_TO_BF16(x[i]);
    write_all(argv[2], "bf16.bin", b, (size_t) n * sizeof *b);

    run_block_type(argv[2], "q8_0.bin", (quantize_fn) quantize_row_q8_0_ref, sizeof(block_q8_0), x, n);
    run_block_type(argv[2], "q4_0.bin", (quantize_fn) quantize_row_q4_0_ref, sizeof(block_q4_0), x, n);
    run_block_type(argv[2], "q4_1.bin", (quantize_fn) quantize_row_q4_1_ref, sizeof(block_q4_1), x, n);
    run_block_type(argv[2], "q5_0.bin", (quantize_fn) quantize_row_q5_0_ref, sizeof(block_q5_0), x, n);
    run_block_type(argv[2], "q5_1.bin", (quantize_fn) quantize_row_q5_1_ref, sizeof(block_q5_1), x, n);
    return 0;
}
