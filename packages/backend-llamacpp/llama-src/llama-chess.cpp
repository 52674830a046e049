// CHESS activation sparsity inside llama.cpp: loading of the sparse tensors and
// the graph routes that call our kernels (chess_sparse.h) through ggml_custom_4d.
#include "llama-chess.h"

#include <algorithm>

#include "llama-arch.h"
#include "llama-graph.h"
#include "llama-impl.h"
#include "llama-model-loader.h"
#include "llama-model.h"

#include "chess_contract.h" // generated from @chess/contract: names, keys, suffixes
#include "chess_sparse.h"
#include "ggml-backend.h"
#include "ggml-cpu.h"
#include "ggml.h"
#include "gguf.h"

#if defined(__unix__) || defined(__APPLE__)
#include <dlfcn.h>
#endif

#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

//
// tables
//

// Largest batch that takes the fused output-sparse W_up kernel (see build_ffn_chess).
static constexpr int64_t CHESS_FUSED_UP_MAX_TOKENS = 4;

static_assert(LLAMA_CHESS_N_PROJ == CHESS_CONTRACT_N_PROJ, "enum llama_chess_proj differs from the contract");
static_assert(LLAMA_CHESS_SITES_PER_LAYER == CHESS_CONTRACT_SITES_PER_LAYER && LLAMA_CHESS_SITE_GATE_ACT == CHESS_CONTRACT_SITE_GATE_ACT,
        "counter sites differ from the contract");
static_assert(LLAMA_CHESS_FORMAT_VERSION_MAX == CHESS_CONTRACT_FORMAT_VERSION_MAX, "this build reads another format than the contract's newest");

static const char * const CHESS_PROJ_NAMES[LLAMA_CHESS_N_PROJ] = { CHESS_CONTRACT_PROJ_NAMES };

// the tensor id of the (normal layout) projection, its column-block and transposed forms and its input threshold
static const llm_tensor CHESS_PROJ_TENSOR[LLAMA_CHESS_N_PROJ] = {
    LLM_TENSOR_ATTN_Q, LLM_TENSOR_ATTN_K, LLM_TENSOR_ATTN_V, LLM_TENSOR_ATTN_OUT,
    LLM_TENSOR_FFN_GATE, LLM_TENSOR_FFN_UP, LLM_TENSOR_FFN_DOWN,
};
static const llm_tensor CHESS_PROJ_CB_TENSOR[LLAMA_CHESS_N_PROJ] = {
    LLM_TENSOR_CHESS_ATTN_Q_CB, LLM_TENSOR_CHESS_ATTN_K_CB, LLM_TENSOR_CHESS_ATTN_V_CB, LLM_TENSOR_CHESS_ATTN_OUT_CB,
    LLM_TENSOR_CHESS_FFN_GATE_CB, LLM_TENSOR_CHESS_FFN_UP_CB, LLM_TENSOR_CHESS_FFN_DOWN_CB,
};
static const llm_tensor CHESS_PROJ_T_TENSOR[LLAMA_CHESS_N_PROJ] = {
    LLM_TENSOR_CHESS_ATTN_Q_T, LLM_TENSOR_CHESS_ATTN_K_T, LLM_TENSOR_CHESS_ATTN_V_T, LLM_TENSOR_CHESS_ATTN_OUT_T,
    LLM_TENSOR_CHESS_FFN_GATE_T, LLM_TENSOR_CHESS_FFN_UP_T, LLM_TENSOR_CHESS_FFN_DOWN_T,
};
static const llm_tensor CHESS_PROJ_TAU_TENSOR[LLAMA_CHESS_N_PROJ] = {
    LLM_TENSOR_CHESS_ATTN_Q_IN_TAU, LLM_TENSOR_CHESS_ATTN_K_IN_TAU, LLM_TENSOR_CHESS_ATTN_V_IN_TAU,
    LLM_TENSOR_CHESS_ATTN_OUT_IN_TAU, LLM_TENSOR_CHESS_FFN_GATE_IN_TAU, LLM_TENSOR_CHESS_FFN_UP_IN_TAU,
    LLM_TENSOR_CHESS_FFN_DOWN_IN_TAU,
};

static const char * const CHESS_SITE_NAMES[LLAMA_CHESS_SITES_PER_LAYER] = { CHESS_CONTRACT_SITE_NAMES };

const char * llama_chess_proj_name(int p) {
    return p >= 0 && p < LLAMA_CHESS_N_PROJ ? CHESS_PROJ_NAMES[p] : "?";
}

int32_t llama_chess_site(int il, int kind) {
    const int32_t site = (int32_t) il * LLAMA_CHESS_SITES_PER_LAYER + kind;
    return il >= 0 && site < CHESS_MAX_SITES ? site : -1;
}

bool llama_chess_dense_reference() {
    static const bool on = [] {
        const char * v = getenv("CHESS_DENSE_REFERENCE");
        return v != nullptr && v[0] != '\0' && strcmp(v, "0") != 0;
    }();
    return on;
}

// CHESS_DECODE_PARTS=n (read once): parts of every one-token input-sparse product, or 0 when unset.
static int llama_chess_decode_parts_forced() {
    static const int forced = [] {
        const char * v = getenv("CHESS_DECODE_PARTS");
        if (v == nullptr || v[0] == '\0') {
            return 0;
        }
        char * end = nullptr;
        const long n = strtol(v, &end, 10);
        if (*end != '\0' || n < 1 || n > CHESS_MAX_PARTS) {
            LLAMA_LOG_WARN("%s: ignoring CHESS_DECODE_PARTS=%s (expected an integer in [1, %d])\n", __func__, v, CHESS_MAX_PARTS);
            return 0;
        }
        return (int) n;
    }();
    return forced;
}

// Parts of a one-token input-sparse product over a transposed weight (chess_spmv_in_parts): one
// per thread of the context, unless CHESS_DECODE_PARTS=n overrides it (1: threads split columns).
static int llama_chess_decode_parts(int n_threads) {
    const int forced = llama_chess_decode_parts_forced();
    return forced > 0 ? forced : std::min(std::max(n_threads, 1), (int) CHESS_MAX_PARTS);
}

// The same for a column-block weight (chess_spmv_cb_parts; 1: threads split the rows).
static int llama_chess_cb_decode_parts(int n_threads) {
    const int forced = llama_chess_decode_parts_forced();
    return forced > 0 ? forced : std::min(std::max(n_threads, 1), (int) CHESS_MAX_PARTS);
}

//
// loading
//

std::string llama_chess_resolve_arch(const gguf_context * meta, const std::string & arch_name, bool & wrapped,
        uint32_t & format_version) {
    wrapped = false;
    format_version = 0;
    if (arch_name != CHESS_CONTRACT_ARCHITECTURE) {
        return arch_name;
    }
    const int64_t kid = gguf_find_key(meta, CHESS_CONTRACT_KEY_BASE_ARCHITECTURE);
    if (kid < 0 || gguf_get_kv_type(meta, kid) != GGUF_TYPE_STRING) {
        throw std::runtime_error("chess GGUF without the string key " CHESS_CONTRACT_KEY_BASE_ARCHITECTURE);
    }
    // A newer format may store tensors this build would misread: refuse it instead.
    format_version = 1;
    const int64_t vid = gguf_find_key(meta, CHESS_CONTRACT_KEY_FORMAT_VERSION);
    if (vid >= 0) {
        if (gguf_get_kv_type(meta, vid) != GGUF_TYPE_UINT32) {
            throw std::runtime_error(format("chess GGUF: " CHESS_CONTRACT_KEY_FORMAT_VERSION " has type %s, expected u32",
                    gguf_type_name(gguf_get_kv_type(meta, vid))));
        }
        format_version = gguf_get_val_u32(meta, vid);
        if (format_version < 1 || format_version > LLAMA_CHESS_FORMAT_VERSION_MAX) {
            throw std::runtime_error(format("chess GGUF: " CHESS_CONTRACT_KEY_FORMAT_VERSION " %u is not supported by this build "
                    "(it reads formats 1 to %u); rebuild the patched llama.cpp or write the file with a matching chess toolchain",
                    format_version, LLAMA_CHESS_FORMAT_VERSION_MAX));
        }
    }
    // required keys, and the format against the tensors (native/src/chess_contract_check.c: the rules of
    // @chess/contract's checkSparseContract, so what `chess inspect --check` refuses is refused here too)
    {
        const int64_t sid = gguf_find_key(meta, CHESS_CONTRACT_KEY_TARGET_SPARSITY);
        const int s_type = sid < 0 ? -1 : (int) gguf_get_kv_type(meta, sid);
        const int64_t bid = gguf_find_key(meta, (std::string(gguf_get_val_str(meta, kid)) + ".block_count").c_str());
        const int64_t n_layer = bid >= 0 && gguf_get_kv_type(meta, bid) == GGUF_TYPE_UINT32 ? (int64_t) gguf_get_val_u32(meta, bid) : -1;
        char msg[512];
        int64_t n_cb = 0;
        for (int64_t i = 0; i < gguf_get_n_tensors(meta); ++i) {
            const std::string tname = gguf_get_tensor_name(meta, i);
            static const size_t ns = sizeof(CHESS_CONTRACT_SUFFIX_COLUMN_BLOCKS) - 1;
            n_cb += tname.size() > ns && tname.compare(tname.size() - ns, ns, CHESS_CONTRACT_SUFFIX_COLUMN_BLOCKS) == 0;
            // a sparse tensor of a layer the model does not have (llama.cpp would only count it)
            if (chess_contract_check_layer(tname.c_str(), n_layer, msg, sizeof msg) != CHESS_OK) {
                throw std::runtime_error(format("chess GGUF: %s", msg));
            }
        }
        if (chess_contract_check_keys(vid < 0 ? -1 : (int) gguf_get_kv_type(meta, vid), format_version, LLAMA_CHESS_FORMAT_VERSION_MAX,
                    s_type, s_type == GGUF_TYPE_FLOAT32 ? gguf_get_val_f32(meta, sid) : 0.0f, msg, sizeof msg) != CHESS_OK ||
                chess_contract_check_format(format_version, n_cb, msg, sizeof msg) != CHESS_OK) {
            throw std::runtime_error(format("chess GGUF: %s", msg));
        }
    }
    wrapped = true;
    return gguf_get_val_str(meta, kid);
}

static int chess_proj_of(llm_tensor t) {
    for (int p = 0; p < LLAMA_CHESS_N_PROJ; ++p) {
        if (CHESS_PROJ_TENSOR[p] == t) {
            return p;
        }
    }
    return -1;
}

static bool chess_file_has(const llama_model_loader & ml, const std::string & name) {
    return gguf_find_tensor(ml.metadata, name.c_str()) >= 0;
}

// Checks a column-block tensor against its type and shape before it is loaded: the kernels and
// chess_cb_to_rows trust these, and a wrong file must fail here with the tensor's name, not crash later.
static void chess_check_cb_tensor(const llama_model_loader & ml, const std::string & name, int64_t n_in, int64_t n_out) {
    if (ml.chess_format_version < CHESS_CONTRACT_FORMAT_VERSION_COLUMN_BLOCKS) {
        throw std::runtime_error(format("chess: %s is in column-block layout, which needs " CHESS_CONTRACT_KEY_FORMAT_VERSION " %d, "
                "but the file declares %u", name.c_str(), CHESS_CONTRACT_FORMAT_VERSION_COLUMN_BLOCKS, ml.chess_format_version));
    }
    // from the GGUF's tensor table: the loader may hold metadata only (a memory-fit pass)
    const int64_t tid = gguf_find_tensor(ml.metadata, name.c_str());
    GGML_ASSERT(tid >= 0);
    const ggml_type gtype = gguf_get_tensor_type(ml.metadata, tid);
    const int64_t * ne = gguf_get_tensor_ne(ml.metadata, tid);
    const chess_type type = (chess_type) gtype;
    if (!chess_cb_supported(type)) {
        throw std::runtime_error(format("chess: %s has type %s, which has no column-block layout "
                "(supported: " CHESS_CONTRACT_CB_TYPE_NAMES ")",
                name.c_str(), ggml_type_name(gtype)));
    }
    if (ne[0] != n_in || ne[1] != n_out || ne[2] != 1 || ne[3] != 1) {
        throw std::runtime_error(format("chess: %s has shape [%" PRId64 ", %" PRId64 ", %" PRId64 ", %" PRId64 "], "
                "expected [%" PRId64 ", %" PRId64 "] (n_in, n_out)", name.c_str(), ne[0], ne[1], ne[2], ne[3], n_in, n_out));
    }
    const size_t nbytes = gguf_get_tensor_size(ml.metadata, tid);
    const int rc = chess_cb_check(type, n_in, n_out, nbytes);
    if (rc != CHESS_OK) {
        throw std::runtime_error(format("chess: %s (%s, n_in %" PRId64 ", n_out %" PRId64 ", %zu bytes) cannot be in column-block "
                "layout: n_in must be a multiple of %" PRId64 " and, for block types, n_out a multiple of 32, "
                "with the row layout's byte count (chess_cb_check: %d)", name.c_str(), ggml_type_name(gtype),
                n_in, n_out, nbytes, chess_cb_group_size(type), rc));
    }
}

bool llama_chess_create_tensor(llama_model_base & model, llama_model_loader & ml, const LLM_TN_IMPL & tn,
        const std::initializer_list<int64_t> & ne, int flags, ggml_tensor ** out) {
    if (!ml.chess_wrapped || tn.bid < 0 || tn.suffix == nullptr || strcmp(tn.suffix, "weight") != 0) {
        return false;
    }
    const int p = chess_proj_of(tn.tensor);
    if (p < 0) {
        return false;
    }
    const LLM_TN_IMPL tn_cb(tn.arch, CHESS_PROJ_CB_TENSOR[p], "weight", tn.bid, tn.xid);
    const LLM_TN_IMPL tn_t(tn.arch, CHESS_PROJ_T_TENSOR[p], "weight", tn.bid, tn.xid);
    const bool has_cb = chess_file_has(ml, tn_cb.str());
    const bool has_t  = chess_file_has(ml, tn_t.str());
    if (has_cb || has_t) {
        const std::string name = has_cb ? tn_cb.str() : tn_t.str();
        if (ne.size() != 2) {
            throw std::runtime_error(format("chess: %s replaces %s, but the architecture expects %zu dims", name.c_str(), tn.str().c_str(), ne.size()));
        }
        if (chess_file_has(ml, tn.str())) {
            throw std::runtime_error(format("chess: both %s and %s are present; a sparse GGUF stores one of them", tn.str().c_str(), name.c_str()));
        }
        if (has_cb && has_t) {
            throw std::runtime_error(format("chess: both %s and %s are present; a sparse GGUF stores one of them", tn_cb.str().c_str(), tn_t.str().c_str()));
        }
        const int64_t n_in  = ne.begin()[0];
        const int64_t n_out = ne.begin()[1];
        llama_layer_chess & ch = model.layers.at(tn.bid).chess;
        if (has_cb) {
            chess_check_cb_tensor(ml, name, n_in, n_out);
            ch.w_cb[p] = model.create_tensor(ml, tn_cb, {n_in, n_out}, 0);
        } else {
            ch.w_t[p] = model.create_tensor(ml, tn_t, {n_out, n_in}, 0);
        }
        *out = nullptr;
        return true;
    }
    if (p == LLAMA_CHESS_UP) {
        const LLM_TN_IMPL tn_gate_tau(tn.arch, LLM_TENSOR_CHESS_FFN_GATE_TAU, nullptr, tn.bid, tn.xid);
        if (chess_file_has(ml, tn_gate_tau.str())) {
            const LLM_TN_IMPL tn_rows(tn.arch, LLM_TENSOR_CHESS_FFN_UP_ROWS, "weight", tn.bid, tn.xid);
            *out = model.create_tensor(ml, tn_rows, ne, flags);
            return true;
        }
    }
    return false;
}

// A threshold tensor's type, size and values (chess_contract_check_tau), read from the file before the
// weights are: a NaN threshold drops every activation and a negative one none, running silently as
// another model than the file reports. Without a file (a metadata-only load) type and size only.
static void chess_check_tau(const llama_model_loader & ml, const ggml_tensor * t, int64_t n_expected) {
    if (t == nullptr) {
        return;
    }
    std::vector<float> values;
    const auto it = ml.weights_map.find(ggml_get_name(t));
    if (t->type == GGML_TYPE_F32 && ggml_nelements(t) == n_expected && it != ml.weights_map.end() && it->second.idx < ml.files.size()) {
        values.resize((size_t) n_expected);
        ml.files.at(it->second.idx)->seek(it->second.offs, SEEK_SET);
        ml.files.at(it->second.idx)->read_raw(values.data(), values.size() * sizeof(float));
    }
    char msg[512];
    if (chess_contract_check_tau(ggml_get_name(t), (int) t->type, ggml_nelements(t), n_expected, values.empty() ? nullptr : values.data(),
                msg, sizeof msg) != CHESS_OK) {
        throw std::runtime_error(format("chess: %s", msg));
    }
}

void llama_chess_load_tensors(llama_model_base & model, llama_model_loader & ml) {
    if (!ml.chess_wrapped) {
        return;
    }
    const auto TENSOR_NOT_REQUIRED = llama_model_loader::TENSOR_NOT_REQUIRED;
    const LLM_TN tn(model.arch);
    bool any = false;
    for (int il = 0; il < (int) model.layers.size(); ++il) {
        auto & ch = model.layers[il].chess;
        for (int p = 0; p < LLAMA_CHESS_N_PROJ; ++p) {
            ch.tau_in[p] = model.create_tensor(ml, tn(CHESS_PROJ_TAU_TENSOR[p], il), {1}, TENSOR_NOT_REQUIRED);
        }
        ch.tau_gate = model.create_tensor(ml, tn(LLM_TENSOR_CHESS_FFN_GATE_TAU, il), {(int64_t) model.hparams.n_ff(il)}, TENSOR_NOT_REQUIRED);
        for (int p = 0; p < LLAMA_CHESS_N_PROJ; ++p) {
            chess_check_tau(ml, ch.tau_in[p], 1);
        }
        chess_check_tau(ml, ch.tau_gate, (int64_t) model.hparams.n_ff(il));
        any = any || ch.any();
    }
    if (any && model.arch != LLM_ARCH_LLAMA) {
        throw std::runtime_error(format("chess: sparse tensors are supported for base architecture 'llama' only, not '%s'",
                llm_arch_name(model.arch)));
    }
    if (any) {
        LLAMA_LOG_INFO("%s: CHESS sparse model (kernels: %s%s)\n", __func__, chess_isa_name(chess_get_isa()),
                llama_chess_dense_reference() ? ", CHESS_DENSE_REFERENCE: dense masked products" : "");
    }
}

bool llama_chess_validate_tensor_data(const ggml_tensor * t, const void * data, size_t size) {
    static const char suffix[] = CHESS_CONTRACT_SUFFIX_COLUMN_BLOCKS;
    const size_t n = strlen(t->name), ns = sizeof(suffix) - 1;
    const chess_type type = (chess_type) t->type;
    if (n < ns || strcmp(t->name + n - ns, suffix) != 0 || size != ggml_nbytes(t) ||
            chess_cb_check(type, t->ne[0], t->ne[1], size) != CHESS_OK) {
        return ggml_validate_row_data(t->type, data, size);
    }
    std::vector<uint8_t> rows(size);
    if (chess_cb_to_rows(type, data, t->ne[0], t->ne[1], rows.data(), 0, 1) != CHESS_OK) {
        return false;
    }
    return ggml_validate_row_data(t->type, rows.data(), size);
}

//
// kernels as ggml custom ops (CPU; every thread calls the kernel with identical arguments)
//

// arguments of an input-sparse node: src x, Wt, tau (optional); y = dst
static chess_spmv_in_args chess_spmv_in_args_of(ggml_tensor * dst, void * userdata) {
    const ggml_tensor * x   = dst->src[0];
    const ggml_tensor * w   = dst->src[1];
    const ggml_tensor * tau = dst->src[2];

    chess_spmv_in_args a = {};
    a.type     = (chess_type) w->type;
    a.w        = w->data;
    a.ne0      = w->ne[0];
    a.ne1      = w->ne[1];
    a.nb1      = w->nb[1];
    a.x        = (const float *) x->data;
    a.x_nb1    = x->nb[1];
    a.y        = (float *) dst->data;
    a.y_nb1    = dst->nb[1];
    a.n_tokens = ggml_nrows(x);
    a.tau      = tau ? (const float *) tau->data : nullptr;
    a.n_tau    = tau ? ggml_nelements(tau) : 0;
    a.site     = (int32_t) (intptr_t) userdata;
    return a;
}

static void chess_op_spmv_in(ggml_tensor * dst, int ith, int nth, void * userdata) {
    const chess_spmv_in_args a = chess_spmv_in_args_of(dst, userdata);
    const int rc = chess_spmv_in(&a, ith, nth);
    if (rc != CHESS_OK) {
        GGML_ABORT("chess_spmv_in(%s) failed with code %d", dst->src[1]->name, rc);
    }
}

// decode: the active inputs split into dst->ne[1] parts (rows of dst), summed by chess_op_sum_parts
static void chess_op_spmv_in_parts(ggml_tensor * dst, int ith, int nth, void * userdata) {
    const chess_spmv_in_args a = chess_spmv_in_args_of(dst, userdata); // y: one row per part
    const int rc = chess_spmv_in_parts(&a, (int) dst->ne[1], ith, nth);
    if (rc != CHESS_OK) {
        GGML_ABORT("chess_spmv_in_parts(%s) failed with code %d", dst->src[1]->name, rc);
    }
}

static void chess_op_sum_parts(ggml_tensor * dst, int ith, int nth, void * userdata) {
    GGML_UNUSED(userdata);
    const ggml_tensor * parts = dst->src[0];
    const int rc = chess_sum_parts((float *) dst->data, (const float *) parts->data, parts->nb[1], dst->ne[0],
            (int) parts->ne[1], ith, nth);
    if (rc != CHESS_OK) {
        GGML_ABORT("chess_sum_parts failed with code %d", rc);
    }
}

static void chess_op_up_gated(ggml_tensor * dst, int ith, int nth, void * userdata) {
    const ggml_tensor * g   = dst->src[0];
    const ggml_tensor * tau = dst->src[1];
    const ggml_tensor * w   = dst->src[2];
    const ggml_tensor * x   = dst->src[3];

    chess_spmv_out_gated_args a = {};
    a.type     = (chess_type) w->type;
    a.w        = w->data;
    a.ne0      = w->ne[0];
    a.ne1      = w->ne[1];
    a.nb1      = w->nb[1];
    a.x        = (const float *) x->data;
    a.x_nb1    = x->nb[1];
    a.g        = (const float *) g->data;
    a.g_nb1    = g->nb[1];
    a.y        = (float *) dst->data;
    a.y_nb1    = dst->nb[1];
    a.n_tokens = ggml_nrows(x);
    a.tau      = (const float *) tau->data;
    a.n_tau    = ggml_nelements(tau);
    a.site     = (int32_t) (intptr_t) userdata;

    const int rc = chess_spmv_out_gated(&a, ith, nth);
    if (rc != CHESS_OK) {
        GGML_ABORT("chess_spmv_out_gated(%s) failed with code %d", w->name, rc);
    }
}

// thresholding with the achieved-sparsity counters, for the routes that end in a dense ggml product
// (prefill of a gated FFN or of a column-block weight); no tau: counts the zeros, changes nothing
static void chess_op_mask(ggml_tensor * dst, int ith, int nth, void * userdata) {
    const ggml_tensor * x   = dst->src[0];
    const ggml_tensor * tau = dst->src[1];
    const int64_t n = x->ne[0], rows = ggml_nrows(x);
    const int64_t r0 = rows * ith / nth, r1 = rows * (ith + 1) / nth;
    for (int64_t r = r0; r < r1; ++r) {
        float * y = (float *) ((char *) dst->data + r * dst->nb[1]);
        memcpy(y, (const char *) x->data + r * x->nb[1], n * sizeof(float));
        const int64_t rc = chess_threshold_mask(y, n, tau ? (const float *) tau->data : nullptr, tau ? ggml_nelements(tau) : 0,
                (int32_t) (intptr_t) userdata);
        if (rc < 0) {
            GGML_ABORT("chess_threshold_mask failed with code %d", (int) rc);
        }
    }
}

// arguments of a column-block node: src x, W (column-block layout), tau (optional); y = dst
static chess_spmv_cb_args chess_spmv_cb_args_of(ggml_tensor * dst, void * userdata) {
    const ggml_tensor * x   = dst->src[0];
    const ggml_tensor * w   = dst->src[1];
    const ggml_tensor * tau = dst->src[2];

    chess_spmv_cb_args a = {};
    a.type     = (chess_type) w->type;
    a.w        = w->data;
    a.n_in     = w->ne[0];
    a.n_out    = w->ne[1];
    a.x        = (const float *) x->data;
    a.x_nb1    = x->nb[1];
    a.y        = (float *) dst->data;
    a.y_nb1    = dst->nb[1];
    a.n_tokens = ggml_nrows(x);
    a.tau      = tau ? (const float *) tau->data : nullptr;
    a.n_tau    = tau ? ggml_nelements(tau) : 0;
    a.site     = (int32_t) (intptr_t) userdata;
    return a;
}

static void chess_op_spmv_cb(ggml_tensor * dst, int ith, int nth, void * userdata) {
    const chess_spmv_cb_args a = chess_spmv_cb_args_of(dst, userdata);
    const int rc = chess_spmv_cb(&a, ith, nth);
    if (rc != CHESS_OK) {
        GGML_ABORT("chess_spmv_cb(%s) failed with code %d", dst->src[1]->name, rc);
    }
}

// decode: the groups with a kept channel split into dst->ne[1] parts (rows of dst), summed by chess_op_sum_parts
static void chess_op_spmv_cb_parts(ggml_tensor * dst, int ith, int nth, void * userdata) {
    const chess_spmv_cb_args a = chess_spmv_cb_args_of(dst, userdata); // y: one row per part
    const int rc = chess_spmv_cb_parts(&a, (int) dst->ne[1], ith, nth);
    if (rc != CHESS_OK) {
        GGML_ABORT("chess_spmv_cb_parts(%s) failed with code %d", dst->src[1]->name, rc);
    }
}

// the row layout of a column-block weight, restored into dst (same type and shape) for ggml's GEMM
static void chess_op_cb_to_rows(ggml_tensor * dst, int ith, int nth, void * userdata) {
    GGML_UNUSED(userdata);
    const ggml_tensor * w = dst->src[0];
    const int rc = chess_cb_to_rows((chess_type) w->type, w->data, w->ne[0], w->ne[1], dst->data, ith, nth);
    if (rc != CHESS_OK) {
        GGML_ABORT("chess_cb_to_rows(%s) failed with code %d", w->name, rc);
    }
}

// the kernels read a weight in place: it must be a type the kernel takes (the kernel library's
// own predicate, chess_type_supported for the transposed input-sparse product,
// chess_out_gated_supported for the fused W_up), block-aligned, in a plain host buffer (not
// repacked into another layout)
static bool chess_kernel_can_read(const ggml_tensor * w, int (*takes)(chess_type)) {
    if (!takes((chess_type) w->type)) {
        return false;
    }
    const int64_t block = chess_type_block_size((chess_type) w->type);
    if (block <= 0 || w->ne[0] % block != 0 || w->ne[2] != 1 || w->ne[3] != 1) {
        return false;
    }
    return w->buffer != nullptr && ggml_backend_buffer_is_host(w->buffer) && w->extra == nullptr;
}

// a column-block weight is read in place by the kernel and by chess_cb_to_rows: the loader checked
// its type and shape (chess_check_cb_tensor); it must also sit in a plain host buffer
// ggml-cpu repacks weights of this type into its interleaved GEMM layouts on this CPU
// (repack.cpp: Q4_0 and Q4_K with AVX2 on x86; IQ4_NL likewise), so the dense model's batched
// products of it are not ggml's plain GEMM. Only the x86 answer matters here: the kernel
// library's own GEMMs (chess_out_gated_has_gemm) exist on x86 only.
static bool chess_ggml_repacks(ggml_type type) {
    const bool avx2 = chess_isa_available(CHESS_ISA_AVX2) != 0;
    return avx2 && (type == GGML_TYPE_Q4_0 || type == GGML_TYPE_Q4_K || type == GGML_TYPE_IQ4_NL);
}

static bool chess_cb_can_read(const ggml_tensor * w) {
    return chess_cb_check((chess_type) w->type, w->ne[0], w->ne[1], ggml_nbytes(w)) == CHESS_OK && w->ne[2] == 1 &&
            w->ne[3] == 1 && w->buffer != nullptr && ggml_backend_buffer_is_host(w->buffer) && w->extra == nullptr;
}

//
// ggml's repacked GEMM over panels repacked on the fly
//
// Where ggml-cpu repacks a weight type into its interleaved GEMM layout (Q4_0 with AVX2 on x86),
// the dense model's batched products run that GEMM; the weights our kernels read in place
// (column blocks, and chess+'s W_up, whose rows the decode reads) cannot live in the repacked
// buffer, and ggml's plain GEMM on them is slower and another arithmetic. Their batched
// products instead build one panel of 128 rows at a time (restored from column blocks, or the
// rows themselves) in ggml's interleaved layout, in a cache-sized scratch, and call the very
// ggml-cpu functions the dense model runs, on activations quantized by the same function, with
// the same split of tokens (groups of 4 through the GEMM, the rest one by one): the dense
// model's arithmetic, bit for bit, at its GEMM speed. The functions are ggml-cpu internals
// (repack.h, extern "C", exported by its shared library), looked up once at run time: a build
// without them keeps the plain route.

// a weight type whose batched product runs on panels: ggml's names for its functions and
// the packing of 8 rows into its interleaved block
struct chess_panel_kind {
    ggml_type type;     // the weight's
    ggml_type act_type; // the activations' (ggml's vec_dot_type of the repacked kernels)
    const char * quantize_mat, * gemm, * gemv;
    size_t x8_bytes;    // one interleaved block: 8 rows' blocks at one position
    void (*pack)(const uint8_t * rows, size_t row_bytes, int64_t nb, uint8_t * out);
};

struct chess_panel_fns {
    const chess_panel_kind * kind;
    void (*quantize_mat)(const float * x, void * vy, int64_t k);                                   // 4 rows, interleaved
    ggml_from_float_t quantize_row;                                                               // 1 row
    void (*gemm)(int n, float * s, size_t bs, const void * vx, const void * vy, int nr, int nc); // 4k tokens x 8k rows
    void (*gemv)(int n, float * s, size_t bs, const void * vx, const void * vy, int nr, int nc); // 1 token x 8k rows
};

static void * chess_ggml_cpu_symbol(const char * name) {
#if defined(__unix__) || defined(__APPLE__)
    if (void * p = dlsym(RTLD_DEFAULT, name)) {
        return p;
    }
    // ggml-cpu loaded as a dependency of a module opened with RTLD_LOCAL (node's addons): by its soname
    static void * handle = [] () -> void * {
        for (const char * so : { "libggml-cpu.so", "libggml-cpu.dylib" }) {
            if (void * h = dlopen(so, RTLD_LAZY | RTLD_NOLOAD)) {
                return h;
            }
        }
        return nullptr;
    }();
    return handle != nullptr ? dlsym(handle, name) : nullptr;
#else
    GGML_UNUSED(name);
    return nullptr;
#endif
}

// The nibble arrays of 8 rows' blocks interleaved 8 bytes at a time (chunk 8h + i = bytes
// 8h .. 8h+7 of row i), each byte xor `flip`: both interleaved layouts below store them so.
static void chess_interleave_qs(const uint8_t * const src[8], size_t n, uint64_t flip, uint8_t * out) {
    for (size_t h = 0; h < n / 8; h++) {
        for (int i = 0; i < 8; i++) {
            uint64_t v;
            memcpy(&v, src[i] + 8 * h, 8);
            v ^= flip;
            memcpy(out + 8 * (8 * h + i), &v, 8);
        }
    }
}

// ggml's block_q4_0x8 (repack.h): the 8 rows' fp16 scales, then their nibbles interleaved,
// xor 0x88 (signed nibbles)
static void chess_pack_q4_0x8(const uint8_t * rows, size_t row_bytes, int64_t nb, uint8_t * out) {
    constexpr size_t BS = 2 + 16, X8 = 8 * BS; // block_q4_0, block_q4_0x8
    for (int64_t x = 0; x < nb; x++, out += X8) {
        const uint8_t * src[8];
        for (int i = 0; i < 8; i++) {
            const uint8_t * blk = rows + (size_t) i * row_bytes + (size_t) x * BS;
            memcpy(out + 2 * i, blk, 2);
            src[i] = blk + 2;
        }
        chess_interleave_qs(src, 16, 0x8888888888888888ull, out + 16);
    }
}

// Q4_K's packing of eight 6-bit scales and eight 6-bit mins in 12 bytes, and its reading
// (ggml's get_scale_min_k4)
static void chess_q4_K_scale_min(const uint8_t * q, int j, uint8_t * sc, uint8_t * mn) {
    if (j < 4) {
        *sc = q[j] & 63;
        *mn = q[j + 4] & 63;
    } else {
        *sc = (uint8_t) ((q[j + 4] & 15) | ((q[j - 4] >> 6) << 4));
        *mn = (uint8_t) ((q[j + 4] >> 4) | ((q[j] >> 6) << 4));
    }
}
static void chess_q4_K_pack_scales(const uint8_t sc[8], const uint8_t mn[8], uint8_t * out) {
    for (int j = 0; j < 4; j++) {
        out[j]     = (uint8_t) ((sc[j] & 63) | ((sc[j + 4] >> 4) << 6));
        out[j + 4] = (uint8_t) ((mn[j] & 63) | ((mn[j + 4] >> 4) << 6));
        out[j + 8] = (uint8_t) ((sc[j + 4] & 15) | ((mn[j + 4] & 15) << 4));
    }
}

// ggml's block_q4_Kx8 (repack.h): the 8 rows' d, then their dmin (fp16), then for each of the 8
// sub-blocks k the 8 rows' scale and min of sub-block k packed as Q4_K packs one block's eight
// (12 bytes each), then their nibbles interleaved (as is)
static void chess_pack_q4_Kx8(const uint8_t * rows, size_t row_bytes, int64_t nb, uint8_t * out) {
    constexpr size_t BS = 2 + 2 + 12 + 128, X8 = 8 * BS; // block_q4_K, block_q4_Kx8
    for (int64_t x = 0; x < nb; x++, out += X8) {
        const uint8_t * blk[8];
        const uint8_t * src[8];
        for (int i = 0; i < 8; i++) {
            blk[i] = rows + (size_t) i * row_bytes + (size_t) x * BS;
            memcpy(out + 2 * i, blk[i], 2);
            memcpy(out + 16 + 2 * i, blk[i] + 2, 2);
            src[i] = blk[i] + 16;
        }
        for (int k = 0; k < 8; k++) {
            uint8_t sc[8], mn[8];
            for (int i = 0; i < 8; i++) {
                chess_q4_K_scale_min(blk[i] + 4, k, &sc[i], &mn[i]);
            }
            chess_q4_K_pack_scales(sc, mn, out + 32 + 12 * k);
        }
        chess_interleave_qs(src, 128, 0, out + 32 + 96);
    }
}

static const chess_panel_kind CHESS_PANEL_KINDS[] = {
    { GGML_TYPE_Q4_0, GGML_TYPE_Q8_0, "ggml_quantize_mat_q8_0_4x8", "ggml_gemm_q4_0_8x8_q8_0", "ggml_gemv_q4_0_8x8_q8_0",
      8 * (2 + 16), chess_pack_q4_0x8 },
    { GGML_TYPE_Q4_K, GGML_TYPE_Q8_K, "ggml_quantize_mat_q8_K_4x8", "ggml_gemm_q4_K_8x8_q8_K", "ggml_gemv_q4_K_8x8_q8_K",
      8 * (2 + 2 + 12 + 128), chess_pack_q4_Kx8 },
};

// ggml's panel functions for a weight type, or nullptr (another type, not found, or
// CHESS_PANEL_GEMM=0)
static const chess_panel_fns * chess_panel_fns_of(ggml_type type) {
    static const std::vector<chess_panel_fns> found = [] {
        std::vector<chess_panel_fns> out;
        const char * off = getenv("CHESS_PANEL_GEMM");
        if (off != nullptr && strcmp(off, "0") == 0) {
            return out;
        }
        using traits_fn = const struct ggml_type_traits_cpu * (*)(enum ggml_type);
        const auto traits = (traits_fn) chess_ggml_cpu_symbol("ggml_get_type_traits_cpu");
        for (const chess_panel_kind & k : CHESS_PANEL_KINDS) {
            chess_panel_fns f;
            f.kind = &k;
            f.quantize_mat = (decltype(f.quantize_mat)) chess_ggml_cpu_symbol(k.quantize_mat);
            f.quantize_row = traits != nullptr ? traits(k.act_type)->from_float : nullptr;
            f.gemm = (decltype(f.gemm)) chess_ggml_cpu_symbol(k.gemm);
            f.gemv = (decltype(f.gemv)) chess_ggml_cpu_symbol(k.gemv);
            const bool ok = f.quantize_mat && f.quantize_row && f.gemm && f.gemv;
            LLAMA_LOG_INFO("chess: batched products of %s weights read in place: %s\n", ggml_type_name(k.type),
                    ok ? "ggml's repacked GEMM on panels repacked on the fly" : "ggml's plain GEMM (repacked GEMM not found)");
            if (ok) {
                out.push_back(f);
            }
        }
        return out;
    }();
    for (const chess_panel_fns & f : found) {
        if (f.kind->type == type) {
            return &f;
        }
    }
    return nullptr;
}

// the batched product of w (column blocks, or rows kept out of the repacked buffer) takes the
// panel route: ggml repacks this type here, the functions exist, the shape fits its interleave
static bool chess_panel_gemm_ok(const ggml_tensor * w) {
    return chess_ggml_repacks(w->type) && w->ne[0] % ggml_blck_size(w->type) == 0 && w->ne[1] % 32 == 0 &&
            w->ne[2] == 1 && w->ne[3] == 1 && w->extra == nullptr && chess_panel_fns_of(w->type) != nullptr;
}

// activations of a panel product: dst (bytes) = x's rows quantized as ggml's repacked mul_mat
// quantizes them: groups of 4 tokens interleaved, the last n % 4 tokens one by one.
// userdata: the weight's panel functions.
static void chess_op_panel_quant(ggml_tensor * dst, int ith, int nth, void * userdata) {
    const chess_panel_fns * f = (const chess_panel_fns *) userdata;
    const ggml_tensor * x = dst->src[0];
    const int64_t n_in = x->ne[0], nt = x->ne[1];
    const size_t row = ggml_row_size(f->kind->act_type, n_in);
    const float * xs = (const float *) x->data;
    char * q = (char *) dst->data;
    for (int64_t t = 4 * ith; t < nt - nt % 4; t += 4 * nth) {
        f->quantize_mat(xs + t * n_in, q + t * row, n_in);
    }
    for (int64_t t = nt - nt % 4 + ith; t < nt; t += nth) {
        f->quantize_row(xs + t * n_in, q + t * row, n_in);
    }
}

// dst [n_out, n_tokens] = w x: each thread takes contiguous panels of 128 rows, packs each into
// ggml's interleaved blocks in a per-thread scratch (L2-sized for 4k-wide rows), and runs ggml's GEMM over it (token
// groups of 4), then its GEMV (the rest). src[2] present: w is a column-block weight (Q4_0, Q4_K:
// packed straight from its column blocks by chess_cb_panel_x8; other types: its rows restored
// first), else rows in place.
static void chess_op_panel_gemm(ggml_tensor * dst, int ith, int nth, void * userdata) {
    const chess_panel_fns * f = (const chess_panel_fns *) userdata;
    const ggml_tensor * w = dst->src[0];
    const ggml_tensor * q = dst->src[1];
    const bool cb = dst->src[2] != nullptr;
    const int64_t n_in = w->ne[0], n_out = w->ne[1], nt = dst->ne[1], nb = n_in / ggml_blck_size(w->type);
    const size_t row_bytes = ggml_row_size(w->type, n_in), qrow = ggml_row_size(f->kind->act_type, n_in);
    // 128 rows (4 column-block units): restoring them uses every byte of each column's cache
    // line (32 rows used a quarter of each line, and the next panel fetched it again)
    constexpr int64_t PANEL = 128;
    const int64_t np = (n_out + PANEL - 1) / PANEL, p0 = np * ith / nth, p1 = np * (ith + 1) / nth;
    thread_local std::vector<uint8_t> rows_buf;
    thread_local std::vector<uint64_t> panel_buf; // 8-byte aligned, as ggml's loads of its blocks assume
    // Q4_0 / Q4_K column blocks pack straight into the interleaved blocks (one pass, no row layout)
    const bool cb_direct = cb && (w->type == GGML_TYPE_Q4_0 || w->type == GGML_TYPE_Q4_K);
    if (cb && !cb_direct) {
        rows_buf.resize((size_t) PANEL * row_bytes);
    }
    const size_t panel_bytes = (size_t) (PANEL / 8) * (size_t) nb * f->kind->x8_bytes;
    panel_buf.resize((panel_bytes + 7) / 8);
    uint8_t * panel = (uint8_t *) panel_buf.data();
    float * y = (float *) dst->data;
    const char * qs = (const char *) q->data;
    const int64_t nt4 = nt - nt % 4;
    for (int64_t p = p0; p < p1; p++) {
        const int64_t r0 = p * PANEL, nr = std::min(PANEL, n_out - r0); // a multiple of 32 (n_out is)
        if (cb_direct) {
            const int rc = chess_cb_panel_x8((chess_type) w->type, w->data, n_in, n_out, r0, r0 + nr, panel);
            if (rc != CHESS_OK) {
                GGML_ABORT("chess_cb_panel_x8(%s) failed with code %d", w->name, rc);
            }
        } else {
            const uint8_t * rows;
            size_t stride;
            if (cb) {
                const int rc = chess_cb_rows_range((chess_type) w->type, w->data, n_in, n_out, r0, r0 + nr, rows_buf.data());
                if (rc != CHESS_OK) {
                    GGML_ABORT("chess_cb_rows_range(%s) failed with code %d", w->name, rc);
                }
                rows = rows_buf.data();
                stride = row_bytes;
            } else {
                rows = (const uint8_t *) w->data + (size_t) r0 * w->nb[1];
                stride = w->nb[1];
            }
            for (int64_t g = 0; g < nr; g += 8) {
                f->kind->pack(rows + (size_t) g * stride, stride, nb, panel + (size_t) (g / 8) * (size_t) nb * f->kind->x8_bytes);
            }
        }
        if (nt4 > 0) {
            f->gemm((int) n_in, y + r0, (size_t) n_out, panel, qs, (int) nt4, (int) nr);
        }
        for (int64_t t = nt4; t < nt; t++) {
            f->gemv((int) n_in, y + t * n_out + r0, (size_t) n_out, panel, qs + t * qrow, 1, (int) nr);
        }
    }
}

//
// graph routes
//

ggml_tensor * llm_graph_context::build_chess_mask(ggml_tensor * cur, ggml_tensor * tau) const {
    // keep iff |x| > tau  <=>  step(|x| - tau) == 1
    ggml_tensor * keep = ggml_step(ctx0, ggml_sub(ctx0, ggml_abs(ctx0, cur), tau));
    return ggml_mul(ctx0, cur, keep);
}

static ggml_tensor * chess_as_rows(ggml_context * ctx, ggml_tensor * cur) {
    if (cur->type != GGML_TYPE_F32) {
        cur = ggml_cast(ctx, cur, GGML_TYPE_F32);
    }
    if (!ggml_is_contiguous(cur)) {
        cur = ggml_cont(ctx, cur);
    }
    return ggml_reshape_2d(ctx, cur, cur->ne[0], ggml_nrows(cur));
}

// w x through ggml's repacked GEMM on panels (chess_panel_gemm_ok(w)); x: F32 rows [n_in, n_tokens];
// cb: w is a column-block weight (else rows)
static ggml_tensor * chess_panel_mul_mat(ggml_context * ctx, ggml_tensor * w, ggml_tensor * x, bool cb) {
    const chess_panel_fns * f = chess_panel_fns_of(w->type);
    const size_t qrow = ggml_row_size(f->kind->act_type, x->ne[0]);
    ggml_tensor * q_args[1] = { x };
    ggml_tensor * q = ggml_custom_4d(ctx, GGML_TYPE_I8, (int64_t) qrow * x->ne[1], 1, 1, 1, q_args, 1, chess_op_panel_quant,
            GGML_N_TASKS_MAX, (void *) f);
    ggml_tensor * args[3] = { w, q, w }; // a third source marks column blocks
    return ggml_custom_4d(ctx, GGML_TYPE_F32, w->ne[1], x->ne[1], 1, 1, args, cb ? 3 : 2, chess_op_panel_gemm,
            GGML_N_TASKS_MAX, (void *) f);
}

ggml_tensor * llm_graph_context::build_chess_mm(const llama_layer & layer, int p, ggml_tensor * cur,
        ggml_tensor * w, ggml_tensor * w_s, int il) const {
    const llama_layer_chess & ch = layer.chess;
    ggml_tensor * w_cb = ch.w_cb[p];
    ggml_tensor * w_t = ch.w_t[p];
    ggml_tensor * tau = ch.tau_in[p];
    if (w_cb == nullptr && w_t == nullptr && tau == nullptr) {
        return build_lora_mm(w, cur, w_s);
    }
    GGML_ASSERT(w_cb != nullptr || w_t != nullptr || w != nullptr);

    ggml_tensor * res;
    if (w_cb != nullptr) {
        if (!chess_cb_can_read(w_cb)) {
            GGML_ABORT("chess: %s is not a column-block weight in a host buffer", w_cb->name);
        }
        const int64_t n_out = w_cb->ne[1];
        ggml_tensor * x = chess_as_rows(ctx0, cur);
        const int32_t site = llama_chess_site(il, p);
        if (x->ne[1] <= CHESS_CB_SPARSE_MAX_TOKENS && !llama_chess_dense_reference()) {
            // input-sparse product: groups without a kept channel are skipped, kept columns read
            ggml_tensor * args[3] = { x, w_cb, tau };
            const int n_parts = llama_chess_cb_decode_parts((int) cparams.n_threads);
            if (x->ne[1] == 1 && n_parts > 1) {
                // one token: each thread streams whole columns of its share of the kept groups
                ggml_tensor * parts = ggml_custom_4d(ctx0, GGML_TYPE_F32, n_out, n_parts, 1, 1, args, tau ? 3 : 2,
                        chess_op_spmv_cb_parts, GGML_N_TASKS_MAX, (void *) (intptr_t) site);
                ggml_tensor * sum_args[1] = { parts };
                res = ggml_custom_4d(ctx0, GGML_TYPE_F32, n_out, 1, 1, 1, sum_args, 1, chess_op_sum_parts, GGML_N_TASKS_MAX, nullptr);
            } else {
                res = ggml_custom_4d(ctx0, GGML_TYPE_F32, n_out, x->ne[1], 1, 1, args, tau ? 3 : 2,
                        chess_op_spmv_cb, GGML_N_TASKS_MAX, (void *) (intptr_t) site);
            }
            cb(res, "chess_spmv_cb", il);
        } else {
            // larger batches (and CHESS_DENSE_REFERENCE): the thresholded input times the weight's
            // row layout, restored bit for bit into a graph tensor: the dense model's product, at
            // ggml's GEMM speed. The mask op counts the dropped inputs (prefill included).
            if (llama_chess_dense_reference()) {
                if (tau != nullptr) {
                    x = build_chess_mask(x, tau);
                }
            } else {
                ggml_tensor * mask_args[2] = { x, tau };
                x = ggml_custom_4d(ctx0, GGML_TYPE_F32, x->ne[0], x->ne[1], 1, 1, mask_args, tau ? 2 : 1, chess_op_mask,
                        GGML_N_TASKS_MAX, (void *) (intptr_t) site);
            }
            cb(x, "chess_masked_in", il);
            if (chess_panel_gemm_ok(w_cb)) {
                res = chess_panel_mul_mat(ctx0, w_cb, x, true);
                cb(res, "chess_cb_panel_gemm", il);
            } else {
                ggml_tensor * rows_args[1] = { w_cb };
                ggml_tensor * w_rows = ggml_custom_4d(ctx0, w_cb->type, w_cb->ne[0], n_out, 1, 1, rows_args, 1,
                        chess_op_cb_to_rows, GGML_N_TASKS_MAX, nullptr);
                cb(w_rows, "chess_cb_rows", il);
                res = ggml_mul_mat(ctx0, w_rows, x);
            }
        }
        if (ggml_n_dims(cur) > 2) {
            res = ggml_reshape_4d(ctx0, res, n_out, cur->ne[1], cur->ne[2], cur->ne[3]);
        }
        if (w_s) {
            res = ggml_mul(ctx0, res, w_s);
        }
        return res;
    }
    if (w_t != nullptr && !llama_chess_dense_reference() && chess_kernel_can_read(w_t, chess_type_supported)) {
        // input-sparse product over the transposed weight: dropped inputs skip their row
        const int64_t n_out = w_t->ne[0];
        ggml_tensor * x = chess_as_rows(ctx0, cur);
        ggml_tensor * args[3] = { x, w_t, tau };
        // one token: threads split the active inputs (whole rows of Wt, longer contiguous
        // reads) into one part per thread, then a second node sums the parts
        const int n_parts = llama_chess_decode_parts((int) cparams.n_threads);
        if (x->ne[1] == 1 && n_parts > 1) {
            ggml_tensor * parts = ggml_custom_4d(ctx0, GGML_TYPE_F32, n_out, n_parts, 1, 1, args, tau ? 3 : 2,
                    chess_op_spmv_in_parts, GGML_N_TASKS_MAX, (void *) (intptr_t) llama_chess_site(il, p));
            ggml_tensor * sum_args[1] = { parts };
            res = ggml_custom_4d(ctx0, GGML_TYPE_F32, n_out, 1, 1, 1, sum_args, 1, chess_op_sum_parts, GGML_N_TASKS_MAX, nullptr);
        } else {
            res = ggml_custom_4d(ctx0, GGML_TYPE_F32, n_out, x->ne[1], 1, 1, args, tau ? 3 : 2,
                    chess_op_spmv_in, GGML_N_TASKS_MAX, (void *) (intptr_t) llama_chess_site(il, p));
        }
        if (ggml_n_dims(cur) > 2) {
            res = ggml_reshape_4d(ctx0, res, n_out, cur->ne[1], cur->ne[2], cur->ne[3]);
        }
        cb(res, "chess_spmv_in", il);
        if (w_s) {
            res = ggml_mul(ctx0, res, w_s);
        }
        return res;
    }

    // masked dense route: same thresholds, dense ggml products
    if (tau != nullptr) {
        cur = build_chess_mask(cur, tau);
        cb(cur, "chess_masked_in", il);
    }
    if (w_t != nullptr) {
        // y = Wt^T x with Wt dequantized (reference only: slow, never the fast path)
        ggml_tensor * w_f32 = ggml_cast(ctx0, w_t, GGML_TYPE_F32);
        ggml_tensor * w_std = ggml_cont(ctx0, ggml_transpose(ctx0, w_f32));
        res = ggml_mul_mat(ctx0, w_std, cur);
        if (w_s) {
            res = ggml_mul(ctx0, res, w_s);
        }
    } else {
        res = build_lora_mm(w, cur, w_s);
    }
    return res;
}

ggml_tensor * llm_graph_context::build_ffn_chess(ggml_tensor * cur, const llama_layer & layer,
        llm_ffn_op_type type_op, int il) const {
    const llama_layer_chess & ch = layer.chess;

    // gate: dense (unless its input is thresholded, TEAL), then the activation
    ggml_tensor * g = build_chess_mm(layer, LLAMA_CHESS_GATE, cur, layer.ffn_gate, layer.ffn_gate_s, il);
    if (layer.ffn_gate_b) {
        g = ggml_add(ctx0, g, layer.ffn_gate_b);
    }
    switch (type_op) {
        case LLM_FFN_SILU: g = ggml_silu(ctx0, g); break;
        case LLM_FFN_GELU: g = ggml_gelu(ctx0, g); break;
        default: GGML_ABORT("chess: unsupported FFN activation %d", (int) type_op);
    }
    cb(g, CHESS_CONTRACT_NODE_SPARSE_GATE_ACT, il); // the profile collector reads it

    ggml_tensor * h;
    // The fused output-sparse product pays while few rows are alive in the batch: a row is
    // read if its gate is alive for ANY token, ~1 - s^T of them for T tokens at sparsity s
    // (94% at T = 4, s = 0.5). Larger batches (prefill) take ggml's dense GEMM on the same
    // W_up times the thresholded gate: where ggml does not repack the type that is the dense
    // model's own product, bit for bit (Q4_1, Q8_0, K-quants but Q4_K, on x86). Where it
    // repacks (Q4_0 on AVX2), the dense model runs the repacked GEMM and W_up cannot take
    // it (the decode reads its rows): the kernel's own GEMM is then faster than ggml's plain
    // one, and neither is the dense model's arithmetic.
    // (Between the two the kernel would run per token: ggml's GEMM is faster there.)
    const bool up_batch_ok = n_tokens <= CHESS_FUSED_UP_MAX_TOKENS ||
            (n_tokens >= CHESS_OUT_GATED_GEMM_MIN_TOKENS && layer.ffn_up != nullptr &&
             chess_ggml_repacks(layer.ffn_up->type) && chess_out_gated_has_gemm((chess_type) layer.ffn_up->type));
    const bool fused_up = ch.tau_gate != nullptr && up_batch_ok && !ch.uses(LLAMA_CHESS_UP) && layer.ffn_up != nullptr &&
            layer.ffn_up_b == nullptr && layer.ffn_up_s == nullptr && !llama_chess_dense_reference() &&
            chess_kernel_can_read(layer.ffn_up, chess_out_gated_supported);
    if (fused_up) {
        // output-sparse up product fused with the gate: rows of dead channels are never read
        ggml_tensor * x  = chess_as_rows(ctx0, cur);
        ggml_tensor * gr = chess_as_rows(ctx0, g);
        ggml_tensor * args[4] = { gr, ch.tau_gate, layer.ffn_up, x };
        h = ggml_custom_4d(ctx0, GGML_TYPE_F32, layer.ffn_up->ne[1], x->ne[1], 1, 1, args, 4,
                chess_op_up_gated, GGML_N_TASKS_MAX, (void *) (intptr_t) llama_chess_site(il, LLAMA_CHESS_SITE_GATE_ACT));
        cb(h, CHESS_CONTRACT_NODE_SPARSE_UP_GATED, il);
    } else {
        if (ch.tau_gate != nullptr && !llama_chess_dense_reference()) {
            ggml_tensor * gr = chess_as_rows(ctx0, g);
            ggml_tensor * args[2] = { gr, ch.tau_gate };
            g = ggml_custom_4d(ctx0, GGML_TYPE_F32, gr->ne[0], gr->ne[1], 1, 1, args, 2, chess_op_mask, GGML_N_TASKS_MAX,
                    (void *) (intptr_t) llama_chess_site(il, LLAMA_CHESS_SITE_GATE_ACT));
            cb(g, "chess_gate_masked", il);
        } else if (ch.tau_gate != nullptr) {
            g = build_chess_mask(g, ch.tau_gate);
            cb(g, "chess_gate_masked", il);
        }
        ggml_tensor * u;
        if (n_tokens > CHESS_FUSED_UP_MAX_TOKENS && !ch.uses(LLAMA_CHESS_UP) && layer.ffn_up != nullptr &&
                layer.ffn_up_s == nullptr && chess_panel_gemm_ok(layer.ffn_up)) {
            // W_up kept in rows out of the repacked buffer (the fused decode reads them)
            u = chess_panel_mul_mat(ctx0, layer.ffn_up, chess_as_rows(ctx0, cur), false);
            if (ggml_n_dims(cur) > 2) {
                u = ggml_reshape_4d(ctx0, u, layer.ffn_up->ne[1], cur->ne[1], cur->ne[2], cur->ne[3]);
            }
            cb(u, "chess_up_panel_gemm", il);
        } else {
            u = build_chess_mm(layer, LLAMA_CHESS_UP, cur, layer.ffn_up, layer.ffn_up_s, il);
        }
        if (layer.ffn_up_b) {
            u = ggml_add(ctx0, u, layer.ffn_up_b);
        }
        h = ggml_mul(ctx0, g, u);
        cb(h, CHESS_CONTRACT_NODE_SPARSE_GATE_PAR, il);
    }

    // down: input-sparse over the transposed weight (dead channels are exact zeros)
    ggml_tensor * y = build_chess_mm(layer, LLAMA_CHESS_DOWN, h, layer.ffn_down, layer.ffn_down_s, il);
    if (layer.ffn_down_b) {
        y = ggml_add(ctx0, y, layer.ffn_down_b);
    }
    return y;
}

//
// report
//

void llama_chess_write_report(int n_layer) {
    const char * path = getenv("CHESS_SPARSITY_REPORT");
    if (path == nullptr || path[0] == '\0') {
        return;
    }
    std::string json = "{\n  \"format\": \"chess-sparsity-report/1\",\n  \"keep_rule\": \"" CHESS_CONTRACT_KEEP_RULE "\",\n";
    json += format("  \"n_layer\": %d,\n  \"layers\": [", n_layer);
    uint64_t tot_seen[LLAMA_CHESS_SITES_PER_LAYER] = {};
    uint64_t tot_zero[LLAMA_CHESS_SITES_PER_LAYER] = {};
    bool first_layer = true;
    for (int il = 0; il < n_layer; ++il) {
        std::string sites;
        for (int k = 0; k < LLAMA_CHESS_SITES_PER_LAYER; ++k) {
            uint64_t seen = 0, zeroed = 0;
            const int32_t site = llama_chess_site(il, k);
            if (site < 0 || chess_counters_get(site, &seen, &zeroed) != CHESS_OK || seen == 0) {
                continue;
            }
            tot_seen[k] += seen;
            tot_zero[k] += zeroed;
            sites += format("%s\"%s\": {\"seen\": %" PRIu64 ", \"zeroed\": %" PRIu64 ", \"sparsity\": %.6f}",
                    sites.empty() ? "" : ", ", CHESS_SITE_NAMES[k], seen, zeroed, (double) zeroed / (double) seen);
        }
        if (sites.empty()) {
            continue;
        }
        json += format("%s\n    {\"layer\": %d, %s}", first_layer ? "" : ",", il, sites.c_str());
        first_layer = false;
    }
    json += "\n  ],\n  \"totals\": {";
    bool first_total = true;
    for (int k = 0; k < LLAMA_CHESS_SITES_PER_LAYER; ++k) {
        if (tot_seen[k] == 0) {
            continue;
        }
        json += format("%s\"%s\": {\"seen\": %" PRIu64 ", \"zeroed\": %" PRIu64 ", \"sparsity\": %.6f}", first_total ? "" : ", ",
                CHESS_SITE_NAMES[k], tot_seen[k], tot_zero[k], (double) tot_zero[k] / (double) tot_seen[k]);
        first_total = false;
    }
    json += "}\n}\n";

    if (strcmp(path, "-") == 0) {
        fputs(json.c_str(), stderr);
        return;
    }
    const std::string tmp = std::string(path) + ".tmp";
    FILE * f = fopen(tmp.c_str(), "wb");
    if (f == nullptr) {
        LLAMA_LOG_WARN("%s: cannot write %s\n", __func__, tmp.c_str());
        return;
    }
    const bool ok = fwrite(json.data(), 1, json.size(), f) == json.size();
    if (fclose(f) != 0 || !ok || rename(tmp.c_str(), path) != 0) {
        LLAMA_LOG_WARN("%s: cannot write %s\n", __func__, path);
    }
}
