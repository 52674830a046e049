// CHESS activation sparsity inside llama.cpp (our addition; see docs/gguf-sparse.md).
//
// A sparse GGUF declares `general.architecture = "chess"` and names the real
// architecture in `chess.base_architecture`; every other key keeps the base
// architecture's prefix. Stock llama.cpp therefore refuses it ("unknown model
// architecture: 'chess'") instead of running it wrongly.
//
// Per layer, a sparse GGUF may add:
//   blk.N.<proj>_cb.weight   the projection in the COLUMN-BLOCK layout (format 2,
//                            docs/gguf-sparse.md 3.1): the source's own blocks, same
//                            type, shape (ne0 = n_in, ne1 = n_out) and byte count,
//                            re-arranged per input channel; replaces blk.N.<proj>.weight
//   blk.N.<proj>_t.weight    the projection stored TRANSPOSED (ne0 = n_out,
//                            ne1 = n_in), replacing blk.N.<proj>.weight
//   blk.N.<proj>_in_tau      f32 [1]: threshold on the projection's input
//   blk.N.ffn_gate_tau       f32 [n_ff]: per-channel threshold on the gate
//                            after its activation (CHESS / CATS)
// with <proj> one of attn_q, attn_k, attn_v, attn_output, ffn_gate, ffn_up,
// ffn_down. Keep rule everywhere: an element v survives iff |v| > tau.
#pragma once

#include <cstdint>

struct ggml_tensor;

enum llama_chess_proj {
    LLAMA_CHESS_Q = 0,
    LLAMA_CHESS_K,
    LLAMA_CHESS_V,
    LLAMA_CHESS_O,
    LLAMA_CHESS_GATE,
    LLAMA_CHESS_UP,
    LLAMA_CHESS_DOWN,
    LLAMA_CHESS_N_PROJ,
};

// Counter sites of one layer: the input of each projection, then the gate after its activation.
enum {
    LLAMA_CHESS_SITE_GATE_ACT   = LLAMA_CHESS_N_PROJ,
    LLAMA_CHESS_SITES_PER_LAYER = LLAMA_CHESS_N_PROJ + 1,
};

// Newest chess.format_version this build reads (1: transposed weights; 2: column-block weights).
#define LLAMA_CHESS_FORMAT_VERSION_MAX 2u

struct llama_layer_chess {
    ggml_tensor * w_cb[LLAMA_CHESS_N_PROJ]   = {}; // column-block weights, or nullptr
    ggml_tensor * w_t[LLAMA_CHESS_N_PROJ]    = {}; // transposed weights, or nullptr
    ggml_tensor * tau_in[LLAMA_CHESS_N_PROJ] = {}; // input thresholds [1], or nullptr
    ggml_tensor * tau_gate                   = nullptr; // gate thresholds [n_ff], or nullptr

    // true when projection p takes the sparse (or masked) route
    bool uses(int p) const { return w_cb[p] != nullptr || w_t[p] != nullptr || tau_in[p] != nullptr; }

    bool any() const {
        for (int p = 0; p < LLAMA_CHESS_N_PROJ; ++p) {
            if (uses(p)) {
                return true;
            }
        }
        return tau_gate != nullptr;
    }

    bool ffn() const { return tau_gate || uses(LLAMA_CHESS_GATE) || uses(LLAMA_CHESS_UP) || uses(LLAMA_CHESS_DOWN); }
};

// GGUF name stem of projection p ("attn_q", ..., "ffn_down").
const char * llama_chess_proj_name(int p);

// Counter site id of (layer, site kind) for the kernels' counters.
int32_t llama_chess_site(int il, int kind);

// CHESS_DENSE_REFERENCE=1: compute every sparse site with dense ggml ops on
// masked inputs (same thresholds, no sparse kernels). Read once.
bool llama_chess_dense_reference();

// Write the achieved-sparsity report when CHESS_SPARSITY_REPORT is set
// (a file path, or "-" for stderr). Called when a context is freed.
void llama_chess_write_report(int n_layer);

// ---- loader hooks (llama-model.cpp, llama-model-loader.cpp) ----

#include <cstddef>
#include <initializer_list>
#include <string>

struct gguf_context;
struct llama_model_base;
struct llama_model_loader;
struct LLM_TN_IMPL;

// Architecture named by a GGUF: for "chess", the value of chess.base_architecture
// (wrapped = true) and chess.format_version (1 when absent); otherwise arch_name unchanged.
// Throws on a chess GGUF without the base architecture or with a format newer than
// LLAMA_CHESS_FORMAT_VERSION_MAX.
std::string llama_chess_resolve_arch(const gguf_context * meta, const std::string & arch_name, bool & wrapped,
        uint32_t & format_version);

// Called first in llama_model_base::create_tensor for chess GGUFs. Returns true when it
// handled the request: a projection stored in column-block layout or transposed is checked
// and loaded into layer.chess.w_cb / w_t and *out is nullptr; ffn_up of a layer with gate thresholds is loaded so that it is never
// repacked (the fused kernel reads ggml's plain row layout).
bool llama_chess_create_tensor(llama_model_base & model, llama_model_loader & ml, const LLM_TN_IMPL & tn,
        const std::initializer_list<int64_t> & ne, int flags, ggml_tensor ** out);

// Called after load_arch_tensors for chess GGUFs: loads the optional thresholds and
// checks that the base architecture's graph supports the sparse route.
void llama_chess_load_tensors(llama_model_base & model, llama_model_loader & ml);

// ggml_validate_row_data over a tensor's whole data (--check-tensors): a column-block tensor
// (blk.N.<proj>_cb.weight) is checked in its row layout, where ggml knows its blocks' scales.
bool llama_chess_validate_tensor_data(const ggml_tensor * t, const void * data, size_t size);
