/* chess_contract.h: the sparse GGUF contract (docs/gguf-sparse.md) for C and C++.
 *
 * GENERATED from SPARSE_GGUF in packages/contract/src/contract.ts by
 * packages/contract/src/c-header.ts (`pnpm -C packages/contract gen:header`).
 * Do not edit: change the table and regenerate (a test fails when this file is stale).
 */
#ifndef CHESS_CONTRACT_H
#define CHESS_CONTRACT_H

/* sha256 of the table this header was generated from (first 16 hex digits) */
#define CHESS_CONTRACT_STAMP "c77cd0ff4ef183df"

/* sec. 1: general.architecture of every sparse GGUF */
#define CHESS_CONTRACT_ARCHITECTURE "chess"
/* sec. 2: metadata keys */
#define CHESS_CONTRACT_KEY_BASE_ARCHITECTURE "chess.base_architecture"
#define CHESS_CONTRACT_KEY_FORMAT_VERSION "chess.format_version"
#define CHESS_CONTRACT_KEY_METHOD "chess.method"
#define CHESS_CONTRACT_KEY_STATISTIC "chess.statistic"
#define CHESS_CONTRACT_KEY_TARGET_SPARSITY "chess.target_sparsity"
#define CHESS_CONTRACT_KEY_CALIBRATION_SOURCE "chess.calibration.source"
#define CHESS_CONTRACT_KEY_CALIBRATION_TOKENS "chess.calibration.tokens"
#define CHESS_CONTRACT_KEY_CALIBRATION_SEED "chess.calibration.seed"
#define CHESS_CONTRACT_KEY_TOOL "chess.tool"
#define CHESS_CONTRACT_KEY_BUDGET "chess.budget.fraction"
#define CHESS_CONTRACT_KEY_BUDGET_ESTIMATE "chess.budget.estimate"
#define CHESS_CONTRACT_KEY_BUDGET_SITES "chess.budget.sites"
#define CHESS_CONTRACT_KEY_BUDGET_SPARSITY "chess.budget.sparsity"

/* chess.format_version: the largest format of the storage layouts present, at least the base */
#define CHESS_CONTRACT_FORMAT_VERSION_BASE 1
#define CHESS_CONTRACT_FORMAT_VERSION_COLUMN_BLOCKS 2
#define CHESS_CONTRACT_FORMAT_VERSION_TRANSPOSED 1
/* the newest format the contract defines */
#define CHESS_CONTRACT_FORMAT_VERSION_MAX 2

/* keep rule: an activation element v with threshold tau survives iff |v| > tau (strict); dropped elements are exactly zero; with no threshold, v survives iff v != 0 */
#define CHESS_CONTRACT_KEEP_RULE "|v| > tau"
/* the keep rule for one float element (fabsf from <math.h>) */
#define CHESS_CONTRACT_KEEPS(v, tau) (fabsf(v) > (tau))

/* sec. 3: projections, in the runtime order (enum llama_chess_proj) */
#define CHESS_CONTRACT_N_PROJ 7
/* initializer list of the GGUF name stems */
#define CHESS_CONTRACT_PROJ_NAMES "attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up", "ffn_down"

/* sec. 5: counter sites of one layer: each projection input, then the gate after its activation (site id = index) */
#define CHESS_CONTRACT_SITES_PER_LAYER 8
#define CHESS_CONTRACT_SITE_GATE_ACT 7
/* initializer list of the site names */
#define CHESS_CONTRACT_SITE_NAMES "attn_q_in", "attn_k_in", "attn_v_in", "attn_output_in", "ffn_gate_in", "ffn_up_in", "ffn_down_in", "ffn_gate_act"

/* sec. 3: tensor names as printf patterns (%d layer, %s projection) and the suffixes after blk.N.<proj> */
#define CHESS_CONTRACT_TENSOR_WEIGHT "blk.%d.%s.weight"
#define CHESS_CONTRACT_TENSOR_COLUMN_BLOCKS "blk.%d.%s_cb.weight"
#define CHESS_CONTRACT_SUFFIX_COLUMN_BLOCKS "_cb.weight"
#define CHESS_CONTRACT_TENSOR_TRANSPOSED "blk.%d.%s_t.weight"
#define CHESS_CONTRACT_SUFFIX_TRANSPOSED "_t.weight"
#define CHESS_CONTRACT_TENSOR_INPUT_TAU "blk.%d.%s_in_tau"
#define CHESS_CONTRACT_SUFFIX_INPUT_TAU "_in_tau"
#define CHESS_CONTRACT_TENSOR_GATE_TAU "blk.%d.ffn_gate_tau"
#define CHESS_CONTRACT_SUFFIX_GATE_TAU ".ffn_gate_tau"
#define CHESS_CONTRACT_TENSOR_UP_ROWS "blk.%d.ffn_up.weight"

/* graph node names the profile collector reads (llama.cpp names a node "<name>-<layer>") */
#define CHESS_CONTRACT_NODE_STOCK_ATTN_NORM "attn_norm"
#define CHESS_CONTRACT_NODE_STOCK_KQV_OUT "kqv_out"
#define CHESS_CONTRACT_NODE_STOCK_FFN_NORM "ffn_norm"
#define CHESS_CONTRACT_NODE_STOCK_FFN_UP "ffn_up"
#define CHESS_CONTRACT_NODE_STOCK_FFN_GATE "ffn_gate"
#define CHESS_CONTRACT_NODE_STOCK_FFN_SWIGLU "ffn_swiglu"
#define CHESS_CONTRACT_NODE_STOCK_FFN_GEGLU "ffn_geglu"
#define CHESS_CONTRACT_NODE_SPARSE_GATE_ACT "ffn_gate_act"
#define CHESS_CONTRACT_NODE_SPARSE_UP_GATED "chess_up_gated"
#define CHESS_CONTRACT_NODE_SPARSE_GATE_PAR "ffn_gate_par"

/* sec. 3.1: the column-block types (enum chess_type = enum ggml_type numbers) */
#define CHESS_CONTRACT_CB_ROW_UNIT 32
#define CHESS_CONTRACT_CB_N_TYPES 11
/* for messages */
#define CHESS_CONTRACT_CB_TYPE_NAMES "f32, f16, bf16, q8_0, q4_0, q4_1, q5_0, q5_1, q4_K, q5_K, q6_K"
/* X(c name, ggml type, group size B, bytes per block S, n_out multiple) */
#define CHESS_CONTRACT_CB_TYPES(X) \
    X(CHESS_TYPE_F32, 0, 1, 4, 1) \
    X(CHESS_TYPE_F16, 1, 1, 2, 1) \
    X(CHESS_TYPE_BF16, 30, 1, 2, 1) \
    X(CHESS_TYPE_Q8_0, 8, 32, 34, 32) \
    X(CHESS_TYPE_Q4_0, 2, 32, 18, 32) \
    X(CHESS_TYPE_Q4_1, 3, 32, 20, 32) \
    X(CHESS_TYPE_Q5_0, 6, 32, 22, 32) \
    X(CHESS_TYPE_Q5_1, 7, 32, 24, 32) \
    X(CHESS_TYPE_Q4_K, 12, 256, 144, 32) \
    X(CHESS_TYPE_Q5_K, 13, 256, 176, 32) \
    X(CHESS_TYPE_Q6_K, 14, 256, 210, 32)

#endif /* CHESS_CONTRACT_H */
