/* Sparse-contract checks of the patched loader (docs/gguf-sparse.md §2-3): the same rules
 * as @chess/contract's checkSparseContract, so a file that `chess inspect --check` refuses
 * is refused at load too, naming the key or tensor. Plain C over plain values: the loader
 * reads the GGUF (gguf.h) and passes what it found; nothing here touches ggml. */
#include "chess_contract.h" /* generated from @chess/contract: keys and tensor suffixes */
#include "chess_sparse.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* GGUF value type ids (enum gguf_type; a file-format fact): the loader passes these. */
enum { GGUF_ID_UINT32 = 4, GGUF_ID_FLOAT32 = 6 };

static int fail(char *msg, size_t msg_size, const char *fmt, ...) {
    if (msg != NULL && msg_size > 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, msg_size, fmt, ap);
        va_end(ap);
    }
    return CHESS_ERR_CONTRACT;
}

int chess_contract_check_keys(int format_version_type, uint32_t format_version, uint32_t format_version_max,
                              int target_sparsity_type, float target_sparsity, char *msg, size_t msg_size) {
    if (format_version_type < 0) {
        return fail(msg, msg_size, CHESS_CONTRACT_KEY_FORMAT_VERSION " is missing (required: u32, 1 to %u)", format_version_max);
    }
    if (format_version_type != GGUF_ID_UINT32) {
        return fail(msg, msg_size, CHESS_CONTRACT_KEY_FORMAT_VERSION " has GGUF type %d, expected u32", format_version_type);
    }
    if (format_version < 1 || format_version > format_version_max) {
        return fail(msg, msg_size, CHESS_CONTRACT_KEY_FORMAT_VERSION " %u is not supported by this build (it reads formats 1 to %u)",
                    format_version, format_version_max);
    }
    if (target_sparsity_type < 0) {
        return fail(msg, msg_size, CHESS_CONTRACT_KEY_TARGET_SPARSITY " is missing (required: f32 in [0, 1))");
    }
    if (target_sparsity_type != GGUF_ID_FLOAT32) {
        return fail(msg, msg_size, CHESS_CONTRACT_KEY_TARGET_SPARSITY " has GGUF type %d, expected f32", target_sparsity_type);
    }
    /* written this way round so that NaN fails too */
    if (!(target_sparsity >= 0.0f && target_sparsity < 1.0f)) {
        return fail(msg, msg_size, CHESS_CONTRACT_KEY_TARGET_SPARSITY " is %g, expected a number in [0, 1)", (double) target_sparsity);
    }
    return CHESS_OK;
}

int chess_contract_check_format(uint32_t format_version, int64_t n_cb_tensors, char *msg, size_t msg_size) {
    /* format 2 with a _cb tensor, 1 without: a file declaring 1 with a _cb tensor is refused by the
     * tensor's own check (it names the tensor); this is the other direction */
    if (format_version >= 2 && n_cb_tensors <= 0) {
        return fail(msg, msg_size,
                    CHESS_CONTRACT_KEY_FORMAT_VERSION " is %u but the file holds no column-block (_cb) tensor: the format is the largest "
                    "of the storage layouts present (1 without a _cb tensor)",
                    format_version);
    }
    return CHESS_OK;
}

int chess_contract_check_tau(const char *name, int ggml_type, int64_t n_elements, int64_t n_expected, const float *values,
                             char *msg, size_t msg_size) {
    if (name == NULL) name = "(unnamed threshold tensor)";
    if (ggml_type != CHESS_TYPE_F32) {
        return fail(msg, msg_size, "%s has ggml type %d, expected f32 (0): thresholds are read as floats", name, ggml_type);
    }
    if (n_elements != n_expected) {
        return fail(msg, msg_size, "%s has %lld elements, expected %lld", name, (long long) n_elements, (long long) n_expected);
    }
    if (values == NULL) {
        return CHESS_OK; /* a metadata-only load: type and count only; the data is checked when it is read */
    }
    for (int64_t i = 0; i < n_elements; ++i) {
        const float v = values[i];
        /* NaN drops every activation (|v| > NaN is false), a negative one keeps every one: both
         * run silently as another model than the file reports */
        if (!isfinite(v) || v < 0.0f) {
            return fail(msg, msg_size, "%s[%lld] = %g: a threshold must be finite and >= 0", name, (long long) i, (double) v);
        }
    }
    return CHESS_OK;
}

static int ends_with(const char *s, size_t n, const char *suffix) {
    const size_t m = strlen(suffix);
    return n >= m && memcmp(s + n - m, suffix, m) == 0;
}

int chess_contract_check_layer(const char *name, int64_t n_layer, char *msg, size_t msg_size) {
    if (name == NULL || n_layer < 0 || strncmp(name, "blk.", 4) != 0) {
        return CHESS_OK;
    }
    const size_t n = strlen(name);
    /* only the contract's own tensors: llama.cpp names the others it does not expect itself */
    if (!ends_with(name, n, CHESS_CONTRACT_SUFFIX_COLUMN_BLOCKS) && !ends_with(name, n, CHESS_CONTRACT_SUFFIX_TRANSPOSED) &&
        !ends_with(name, n, CHESS_CONTRACT_SUFFIX_INPUT_TAU) && !ends_with(name, n, CHESS_CONTRACT_SUFFIX_GATE_TAU)) {
        return CHESS_OK;
    }
    int64_t layer = 0;
    const char *p = name + 4;
    if (*p < '0' || *p > '9') {
        return CHESS_OK;
    }
    for (; *p >= '0' && *p <= '9'; ++p) {
        if (layer > (INT64_MAX - 9) / 10) {
            layer = INT64_MAX; /* any number this long is out of range */
            break;
        }
        layer = layer * 10 + (*p - '0');
    }
    if (layer >= n_layer) {
        return fail(msg, msg_size, "%s: the model has no layer %lld (block_count %lld)", name, (long long) layer, (long long) n_layer);
    }
    return CHESS_OK;
}
