/* Tests of the loader's sparse-contract checks (src/chess_contract_check.c, docs/gguf-sparse.md §2-3).
 *
 * Fixed cases: each rule accepts the contract's values and refuses its violations with
 * CHESS_ERR_CONTRACT and a message naming the key or tensor. Then a seeded fuzz (CHESS_TEST_SEED,
 * default fixed): random threshold tensors (random bit patterns: NaN, inf, negatives, subnormals,
 * -0), random types and element counts, random key types and values, every buffer allocated to its
 * exact size so that ASan catches a read or write past it; the verdict is compared with this
 * file's own oracle, written on the float's bits rather than with isfinite/comparisons. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chess_sparse.h"

static long g_checks = 0;
static int g_failures = 0;
static uint64_t g_rng = 0x5eedc0de5eedc0deull;

#define CHECK(cond, ...)                                                      \
    do {                                                                      \
        ++g_checks;                                                           \
        if (!(cond)) {                                                        \
            ++g_failures;                                                     \
            fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__);              \
            fprintf(stderr, __VA_ARGS__);                                     \
            fputc('\n', stderr);                                              \
        }                                                                     \
    } while (0)

static uint64_t rnd(void) { /* splitmix64 */
    uint64_t z = (g_rng += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static float from_bits(uint32_t b) { float f; memcpy(&f, &b, sizeof f); return f; }

/* oracle on the bits: exponent all ones = NaN or inf; sign bit with any other bit = negative (-0 is 0) */
static int bits_ok(uint32_t b) {
    if (((b >> 23) & 0xff) == 0xff) return 0;
    if ((b >> 31) && (b & 0x7fffffffu)) return 0;
    return 1;
}

static void test_fixed(void) {
    char msg[256];
    /* keys */
    CHECK(chess_contract_check_keys(4, 2, 2, 6, 0.5f, msg, sizeof msg) == CHESS_OK, "valid keys refused: %s", msg);
    CHECK(chess_contract_check_keys(4, 1, 2, 6, 0.0f, msg, sizeof msg) == CHESS_OK, "sparsity 0 refused: %s", msg);
    CHECK(chess_contract_check_keys(-1, 0, 2, 6, 0.5f, msg, sizeof msg) == CHESS_ERR_CONTRACT && strstr(msg, "chess.format_version is missing"), "%s", msg);
    CHECK(chess_contract_check_keys(5, 2, 2, 6, 0.5f, msg, sizeof msg) == CHESS_ERR_CONTRACT && strstr(msg, "chess.format_version has GGUF type 5"), "%s", msg);
    CHECK(chess_contract_check_keys(4, 3, 2, 6, 0.5f, msg, sizeof msg) == CHESS_ERR_CONTRACT && strstr(msg, "chess.format_version 3"), "%s", msg);
    CHECK(chess_contract_check_keys(4, 0, 2, 6, 0.5f, msg, sizeof msg) == CHESS_ERR_CONTRACT && strstr(msg, "chess.format_version 0"), "%s", msg);
    CHECK(chess_contract_check_keys(4, 2, 2, -1, 0.0f, msg, sizeof msg) == CHESS_ERR_CONTRACT && strstr(msg, "chess.target_sparsity is missing"), "%s", msg);
    CHECK(chess_contract_check_keys(4, 2, 2, 7, 0.5f, msg, sizeof msg) == CHESS_ERR_CONTRACT && strstr(msg, "chess.target_sparsity has GGUF type 7"), "%s", msg);
    CHECK(chess_contract_check_keys(4, 2, 2, 6, NAN, msg, sizeof msg) == CHESS_ERR_CONTRACT && strstr(msg, "chess.target_sparsity is nan"), "%s", msg);
    CHECK(chess_contract_check_keys(4, 2, 2, 6, 1.0f, msg, sizeof msg) == CHESS_ERR_CONTRACT && strstr(msg, "chess.target_sparsity is 1"), "%s", msg);
    CHECK(chess_contract_check_keys(4, 2, 2, 6, -0.25f, msg, sizeof msg) == CHESS_ERR_CONTRACT && strstr(msg, "chess.target_sparsity is -0.25"), "%s", msg);
    /* format against tensors */
    CHECK(chess_contract_check_format(2, 3, msg, sizeof msg) == CHESS_OK, "%s", msg);
    CHECK(chess_contract_check_format(1, 0, msg, sizeof msg) == CHESS_OK, "%s", msg);
    CHECK(chess_contract_check_format(2, 0, msg, sizeof msg) == CHESS_ERR_CONTRACT && strstr(msg, "chess.format_version is 2 but the file holds no column-block"), "%s", msg);
    /* thresholds */
    const float good[3] = { 0.0f, 0.5f, -0.0f };
    CHECK(chess_contract_check_tau("blk.0.ffn_gate_tau", 0, 3, 3, good, msg, sizeof msg) == CHESS_OK, "%s", msg);
    const float bad[4][1] = { { NAN }, { INFINITY }, { -INFINITY }, { -1e-30f } };
    const char *what[4] = { "nan", "inf", "-inf", "-1e-30" };
    for (int i = 0; i < 4; ++i) {
        CHECK(chess_contract_check_tau("blk.2.attn_q_in_tau", 0, 1, 1, bad[i], msg, sizeof msg) == CHESS_ERR_CONTRACT &&
                  strstr(msg, "blk.2.attn_q_in_tau[0] = ") && strstr(msg, what[i]) && strstr(msg, "finite and >= 0"),
              "%s: %s", what[i], msg);
    }
    const float tail[3] = { 1.0f, 2.0f, NAN };
    CHECK(chess_contract_check_tau("blk.1.ffn_gate_tau", 0, 3, 3, tail, msg, sizeof msg) == CHESS_ERR_CONTRACT && strstr(msg, "blk.1.ffn_gate_tau[2]"), "%s", msg);
    CHECK(chess_contract_check_tau("blk.1.ffn_gate_tau", 1, 3, 3, good, msg, sizeof msg) == CHESS_ERR_CONTRACT && strstr(msg, "blk.1.ffn_gate_tau has ggml type 1, expected f32"), "%s", msg);
    CHECK(chess_contract_check_tau("blk.1.ffn_gate_tau", 0, 2, 3, good, msg, sizeof msg) == CHESS_ERR_CONTRACT && strstr(msg, "blk.1.ffn_gate_tau has 2 elements, expected 3"), "%s", msg);
    /* layers */
    CHECK(chess_contract_check_layer("blk.1.ffn_gate_tau", 2, msg, sizeof msg) == CHESS_OK, "%s", msg);
    CHECK(chess_contract_check_layer("blk.2.ffn_gate_tau", 2, msg, sizeof msg) == CHESS_ERR_CONTRACT && strstr(msg, "blk.2.ffn_gate_tau: the model has no layer 2 (block_count 2)"), "%s", msg);
    CHECK(chess_contract_check_layer("blk.30.attn_q_in_tau", 30, msg, sizeof msg) == CHESS_ERR_CONTRACT, "in_tau past the end");
    CHECK(chess_contract_check_layer("blk.7.ffn_down_cb.weight", 4, msg, sizeof msg) == CHESS_ERR_CONTRACT, "_cb past the end");
    CHECK(chess_contract_check_layer("blk.7.attn_v_t.weight", 4, msg, sizeof msg) == CHESS_ERR_CONTRACT, "_t past the end");
    CHECK(chess_contract_check_layer("blk.99999999999999999999999.ffn_gate_tau", 4, msg, sizeof msg) == CHESS_ERR_CONTRACT, "huge layer number");
    CHECK(chess_contract_check_layer("blk.7.ffn_down.weight", 4, msg, sizeof msg) == CHESS_OK, "not a contract tensor: llama.cpp's business");
    CHECK(chess_contract_check_layer("output.weight", 4, msg, sizeof msg) == CHESS_OK, "no layer");
    CHECK(chess_contract_check_layer("blk.7.ffn_gate_tau", -1, msg, sizeof msg) == CHESS_OK, "block_count unknown");
    CHECK(chess_contract_check_layer("blk.x.ffn_gate_tau", 4, msg, sizeof msg) == CHESS_OK, "no number");
    /* a short message buffer: truncated, terminated, nothing written past it */
    char small[8];
    memset(small, 'x', sizeof small);
    CHECK(chess_contract_check_tau("blk.9.ffn_gate_tau", 0, 1, 1, bad[0], small, sizeof small) == CHESS_ERR_CONTRACT && small[7] == '\0' && strlen(small) == 7, "truncation");
    CHECK(chess_contract_check_tau("t", 0, 1, 1, bad[0], NULL, 0) == CHESS_ERR_CONTRACT, "NULL message buffer");
    CHECK(chess_contract_check_tau("t", 0, 5, 5, NULL, msg, sizeof msg) == CHESS_OK, "no values: type and count only");
    CHECK(chess_contract_check_tau("t", 0, 5, 4, NULL, msg, sizeof msg) == CHESS_ERR_CONTRACT, "no values, wrong count");
}

static void test_fuzz(int cases) {
    for (int c = 0; c < cases; ++c) {
        /* threshold tensors */
        const int64_t n = (int64_t) (rnd() % 3000);
        float *v = n ? malloc((size_t) n * sizeof *v) : NULL;
        int expect_ok = 1;
        int64_t first_bad = -1;
        const unsigned mode = (unsigned) (rnd() % 4); /* 0: all valid, 1: one bad value, 2: random bits, 3: valid but wrong type or count */
        for (int64_t i = 0; i < n; ++i) {
            uint32_t b;
            if (mode == 2) b = (uint32_t) rnd();
            else b = (uint32_t) (rnd() % 0x7f800000u); /* finite, >= 0 (subnormals and +0 included) */
            if (mode == 2 && !bits_ok(b) && first_bad < 0) first_bad = i;
            v[i] = from_bits(b);
        }
        if (mode == 1 && n > 0) {
            const uint32_t specials[6] = { 0x7fc00000u, 0x7f800000u, 0xff800000u, 0xbf800000u, 0x80000001u, 0xffc00001u };
            first_bad = (int64_t) (rnd() % (uint64_t) n);
            v[first_bad] = from_bits(specials[rnd() % 6]);
        }
        if (first_bad >= 0) expect_ok = 0;
        int type = 0;
        int64_t expected_n = n;
        if (mode == 3) {
            if (rnd() & 1) type = 1 + (int) (rnd() % 40);
            else expected_n = n + 1 + (int64_t) (rnd() % 5);
            expect_ok = 0;
        }
        char name[64];
        snprintf(name, sizeof name, "blk.%d.ffn_gate_tau", (int) (rnd() % 80));
        const size_t msg_size = 1 + (size_t) (rnd() % 300);
        char *msg = malloc(msg_size);
        const int rc = chess_contract_check_tau(name, type, n, expected_n, v, msg, msg_size);
        CHECK((rc == CHESS_OK) == expect_ok, "case %d (mode %u, n %lld): rc %d, expected %s", c, mode, (long long) n, rc, expect_ok ? "ok" : "refusal");
        if (rc != CHESS_OK) {
            CHECK(memchr(msg, '\0', msg_size) != NULL, "case %d: message not terminated", c);
            /* the message names the tensor (when the buffer holds the name) and, for a bad value, its index */
            if (msg_size > strlen(name) + 1) CHECK(strncmp(msg, name, strlen(name)) == 0, "case %d: message does not name %s: %s", c, name, msg);
            if (mode != 3 && msg_size > 200) {
                char at[96];
                snprintf(at, sizeof at, "%s[%lld] = ", name, (long long) first_bad);
                CHECK(strstr(msg, at) != NULL, "case %d: expected the first bad element %s in: %s", c, at, msg);
            }
        }
        free(msg);
        free(v);

        /* keys */
        const int fvt = (int) (rnd() % 4) == 0 ? -1 : (rnd() % 3 == 0 ? (int) (rnd() % 13) : 4);
        const uint32_t fv = (uint32_t) (rnd() % 5);
        const int tst = (int) (rnd() % 4) == 0 ? -1 : (rnd() % 3 == 0 ? (int) (rnd() % 13) : 6);
        const uint32_t tsb = (rnd() & 1) ? (uint32_t) rnd() : (uint32_t) (rnd() % 0x3f800000u); /* random bits, or [0, 1) */
        const float ts = from_bits(tsb);
        const int keys_ok = fvt == 4 && fv >= 1 && fv <= 2 && tst == 6 && bits_ok(tsb) && tsb < 0x3f800000u;
        char kmsg[200];
        const int krc = chess_contract_check_keys(fvt, fv, 2, tst, ts, kmsg, sizeof kmsg);
        CHECK((krc == CHESS_OK) == keys_ok, "keys case %d (fv type %d = %u, ts type %d = %g): rc %d", c, fvt, fv, tst, (double) ts, krc);
        if (krc != CHESS_OK) CHECK(strstr(kmsg, "chess.format_version") || strstr(kmsg, "chess.target_sparsity"), "keys case %d: no key named: %s", c, kmsg);

        /* layer names: random numbers (up to 25 digits) and suffixes against random block counts */
        {
            static const char *const suffixes[5] = { ".ffn_gate_tau", ".attn_q_in_tau", ".ffn_down_cb.weight", ".attn_k_t.weight", ".ffn_up.weight" };
            char lname[96];
            const int digits = 1 + (int) (rnd() % 25);
            int pos = snprintf(lname, sizeof lname, "blk.");
            for (int d = 0; d < digits; ++d) lname[pos++] = (char) ('0' + (d == 0 && digits > 1 ? 1 + rnd() % 9 : rnd() % 10));
            lname[pos] = '\0';
            const int suffix = (int) (rnd() % 5);
            snprintf(lname + pos, sizeof lname - (size_t) pos, "%s", suffixes[suffix]);
            const int64_t n_layer = (int64_t) (rnd() % 200);
            /* oracle: compare the decimal number as a string with n_layer's */
            char bound[32];
            snprintf(bound, sizeof bound, "%lld", (long long) n_layer);
            const int nd = pos - 4;
            const int below = nd < (int) strlen(bound) || (nd == (int) strlen(bound) && strncmp(lname + 4, bound, (size_t) nd) < 0);
            const int expect_lok = suffix == 4 || below;
            const int lrc = chess_contract_check_layer(lname, n_layer, kmsg, sizeof kmsg);
            CHECK((lrc == CHESS_OK) == expect_lok, "layer case %d (%s, block_count %lld): rc %d", c, lname, (long long) n_layer, lrc);
        }

        const int64_t ncb = (int64_t) (rnd() % 3);
        const int frc = chess_contract_check_format(fv, ncb, kmsg, sizeof kmsg);
        CHECK((frc == CHESS_OK) == !(fv >= 2 && ncb == 0), "format case %d (%u, %lld cb): rc %d", c, fv, (long long) ncb, frc);
    }
}

int main(int argc, char **argv) {
    const char *seed = getenv("CHESS_TEST_SEED");
    if (seed && *seed) g_rng = strtoull(seed, NULL, 0);
    const int cases = argc > 1 ? atoi(argv[1]) : 4000;
    test_fixed();
    test_fuzz(cases);
    printf("contract: %ld checks, %d failures (seed 0x%llx at the end)\n", g_checks, g_failures, (unsigned long long) g_rng);
    return g_failures ? 1 : 0;
}
