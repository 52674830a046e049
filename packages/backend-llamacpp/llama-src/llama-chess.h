// CHESS activation sparsity inside llama.cpp (our addition; see docs/gguf-sparse.md).
//
// A sparse GGUF declares `general.architecture = "chess"` and names the real
// architecture in `chess.base_architecture`; every other key keeps the base
// architecture's prefix. Stock llama.cpp therefore refuses it ("unknown model
// architecture: 'chess'") instead of running it wrongly.
//
// Per layer, a sparse GGUF may add:
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

struct llama_layer_chess {
    ggml_tensor * w_t[LLAMA_CHESS_N_PROJ]    = {}; // transposed weights, or nullptr
    ggml_tensor * tau_in[LLAMA_CHESS_N_PROJ] = {}; // input thresholds [1], or nullptr
    ggml_tensor * tau_gate                   = nullptr; // gate thresholds [n_ff], or nullptr

    // true when projection p takes the sparse (or masked) route
    bool uses(int p) const { return w_t[p] != nullptr || tau_in[p] != nullptr; }

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

#include <initializer_list>
#include <string>

struct gguf_context;
struct llama_model_base;
struct llama_model_loader;
struct LLM_TN_IMPL;

// Architecture named by a GGUF: for "chess", the value of chess.base_architecture
// (wrapped = true); otherwise arch_name unchanged. Throws on a chess GGUF without it.
std::string llama_chess_resolve_arch(const gguf_context * meta, const std::string & arch_name, bool & wrapped);

// Called first in llama_model_base::create_tensor for chess GGUFs. Returns true when it
// handled the request: a projection stored transposed is loaded into layer.chess.w_t and
// *out is nullptr; ffn_up of a layer with gate thresholds is loaded so that it is never
// repacked (the fused kernel reads ggml's plain row layout).
bool llama_chess_create_tensor(llama_model_base & model, llama_model_loader & ml, const LLM_TN_IMPL & tn,
        const std::initializer_list<int64_t> & ne, int flags, ggml_tensor ** out);

// Called after load_arch_tensors for chess GGUFs: loads the optional thresholds and
// checks that the base architecture's graph supports the sparse route.
void llama_chess_load_tensors(llama_model_base & model, llama_model_loader & ml);
