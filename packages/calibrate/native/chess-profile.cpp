// chess-profile: collects CHESS calibration statistics from the named graph
// tensors of a llama.cpp model, through llama.cpp's public eval callback.
//
// Written for this project (see docs/profile-format.md for the exchange
// format and packages/calibrate/src/native.ts for the driver). Modes:
//
//   chess-profile tokenize --model M --text T --max-tokens K --out TOKENS
//       Documents in T are separated by the byte 0x1E. Each document is
//       tokenized on its own (no special tokens) and the ids are appended to one
//       stream until it holds at least K tokens; the stream is written as int32
//       little-endian, and the start offset of every document used as int64
//       little-endian to TOKENS.docs. Prints one JSON line with the model's shape.
//
//   chess-profile collect --model M --tokens TOKENS --ctx C --act silu|gelu
//                         [--threads N] --out STATS
//       TOKENS holds W windows of C int32 ids. ONE pass: each window is decoded
//       on its own (empty KV cache, positions 0..C-1, every token an output so
//       that the last layer's FFN sees all tokens; the graph is cancelled after
//       the last layer's W_down input). Per layer it accumulates per-channel
//       sum|u_i| and sum u_i^2 (double) of the up projection output, a
//       log-linear histogram of |g_i| PER CHANNEL (g = act(W_gate x)), and
//       fine histograms of |g| (all channels) and of |x| at every projection
//       input. The CHESS score threshold is found later from the per-channel
//       histograms (sum_i F_i(t / m_i) = s N), for either statistic m.
//       Progress lines: "progress 1 <done> <total>".
//
//       M may also be a SPARSE GGUF (general.architecture = chess): the same
//       statistics are then taken at the pre-threshold sites of the sparse
//       graph (the model with every threshold applied), which is how the
//       compiler re-calibrates thresholds on the partially sparsified model.
//       The up projection is not materialised there: the moments are absent.
//
// Graph tensors used (names from llama.cpp's llm_graph_context::cb and the
// CHESS routes of llama-chess.cpp, "-<layer>"):
//   attn_norm  input of W_q, W_k, W_v          kqv_out  input of W_o
//   ffn_norm   input of W_gate, W_up           ffn_up   u = W_up x (dense only)
//   ffn_gate   W_gate x before the activation (dense graph; g = act of it)
//   ffn_gate_act  act(W_gate x) (sparse graph)
//   ffn_swiglu / ffn_geglu (dense), chess_up_gated / ffn_gate_par (sparse):
//              the input of W_down

#include "chess_contract.h"  // generated from @chess/contract: graph node names, keys
#include "ggml-backend.h"
#include "ggml.h"
#include "llama.h"

#include <sys/resource.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

namespace {

constexpr const char * kToolVersion = "chess-profile 2";
constexpr char kStatsMagic[8] = {'C', 'H', 'P', 'S', 'T', 'A', 'T', '2'};

constexpr uint32_t kInfBits = 0x7f800000u;

// Log-linear magnitude bins on float32 bit patterns: 2^sub linear sub-bins per
// power of two over [2^min_exp, 2^max_exp). Slot 0: exact zeros, 1: underflow
// (0, 2^min_exp), 2: overflow (>= 2^max_exp, finite), 3..: the bins. Same
// layout as packages/calibrate/src/histogram.ts.
struct BinSpec {
    int sub, min_exp, max_exp;
    uint32_t bins, lo, hi, base, shift;
    constexpr BinSpec(int s, int mn, int mx)
        : sub(s), min_exp(mn), max_exp(mx), bins(uint32_t(mx - mn) << s), lo(uint32_t(mn + 127) << 23),
          hi(uint32_t(mx + 127) << 23), base(uint32_t(mn + 127) << s), shift(uint32_t(23 - s)) {}
    // slot of a magnitude given by its (sign-cleared, finite) bit pattern
    inline uint32_t slot(uint32_t b) const {
        const uint32_t bin = (b >> shift) - base + 3u;
        return b == 0 ? 0u : b < lo ? 1u : b >= hi ? 2u : bin;
    }
};

// fine histograms (tensor-wise thresholds, CATS): 0.39 % relative bin width
constexpr BinSpec kFine(8, -34, 14);
// per-channel |g_i| histograms (CHESS): 12.5 % relative bin width, |g| in [2^-16, 64)
constexpr BinSpec kChan(3, -16, 6);
constexpr uint32_t kChanSlots = kChan.bins + 3;

inline uint32_t abs_bits(float x) {
    uint32_t b;
    std::memcpy(&b, &x, 4);
    return b & 0x7fffffffu;
}

struct Histogram {
    std::vector<uint64_t> counts = std::vector<uint64_t>(kFine.bins + 3, 0);
    uint32_t min_bits = 0xffffffffu, max_bits = 0;  // of the non-zero magnitudes (bit order = value order)
    uint64_t nonfinite = 0;

    // idx: scratch of at least n entries
    void add_row(const float * x, int64_t n, uint32_t * idx) {
        uint32_t mn = min_bits, mx = max_bits;
        for (int64_t i = 0; i < n; i++) {
            const uint32_t b = abs_bits(x[i]);
            mn = std::min(mn, b == 0 ? 0xffffffffu : b);
            mx = std::max(mx, b);
            idx[i] = kFine.slot(b);
        }
        if (mx >= kInfBits) {  // rare: count and drop the non-finite values
            mx = 0;
            for (int64_t i = 0; i < n; i++) {
                const uint32_t b = abs_bits(x[i]);
                if (b >= kInfBits) nonfinite++, idx[i] = 0xffffffffu;
                else mx = std::max(mx, b);
            }
        }
        uint64_t * c = counts.data();
        for (int64_t i = 0; i < n; i++)
            if (idx[i] != 0xffffffffu) c[idx[i]]++;
        min_bits = mn;
        max_bits = mx;
    }
};

// per-channel histograms of one layer: counts[n_ch][kChanSlots] (u32), min/max bits per channel
struct ChannelHistograms {
    int64_t n_ch = 0;
    std::vector<uint32_t> counts, min_bits, max_bits;
    uint64_t nonfinite = 0;

    void init(int64_t n) {
        n_ch = n;
        counts.assign(size_t(n) * kChanSlots, 0);
        min_bits.assign(size_t(n), 0xffffffffu);
        max_bits.assign(size_t(n), 0);
    }
    void add_row(const float * g, uint32_t * idx) {
        uint32_t * mn = min_bits.data();
        uint32_t * mx = max_bits.data();
        bool bad = false;
        for (int64_t i = 0; i < n_ch; i++) {
            const uint32_t b = abs_bits(g[i]);
            bad |= b >= kInfBits;
            mn[i] = std::min(mn[i], b == 0 ? 0xffffffffu : b);
            mx[i] = std::max(mx[i], b);
            idx[i] = uint32_t(i) * kChanSlots + kChan.slot(b);
        }
        if (bad) {  // the fine gate histogram reports them (CALIBRATE_NONFINITE); keep counts sane
            for (int64_t i = 0; i < n_ch; i++)
                if (abs_bits(g[i]) >= kInfBits) nonfinite++, idx[i] = 0xffffffffu;
        }
        uint32_t * c = counts.data();
        for (int64_t i = 0; i < n_ch; i++)
            if (idx[i] != 0xffffffffu) c[idx[i]]++;
    }
};

enum HistIndex { H_GATE_ABS, H_IN_QKV, H_IN_O, H_IN_GATE_UP, H_IN_DOWN, H_COUNT };

enum Kind { K_ATTN_NORM, K_KQV_OUT, K_FFN_NORM, K_FFN_UP, K_FFN_GATE, K_FFN_DOWN_IN, K_NONE };

struct Layer {
    std::vector<double> sum_abs, sum_sq;  // [n_ff]
    Histogram hist[H_COUNT];
    ChannelHistograms gate;
    uint64_t seen[K_NONE] = {0};  // token rows seen per tensor kind (sanity check)
};

struct State {
    bool gelu = false;
    bool sparse = false;  // the model is a sparse (chess) GGUF
    int n_layer = 0, n_ff = 0;
    std::vector<Layer> layers;
    std::vector<float> scratch, act;
    std::vector<uint32_t> idx;
    std::string error;
    bool stopped = false;  // we cancelled the rest of the graph (nothing after it is needed)
};

// is_act: the tensor holds act(W_gate x) already (sparse graph)
Kind classify(const char * name, int * layer, bool * is_act) {
    static const struct {
        const char * prefix;
        Kind kind;
        bool act;
    } table[] = {
        {CHESS_CONTRACT_NODE_STOCK_ATTN_NORM "-", K_ATTN_NORM, false},
        {CHESS_CONTRACT_NODE_STOCK_KQV_OUT "-", K_KQV_OUT, false},
        {CHESS_CONTRACT_NODE_STOCK_FFN_NORM "-", K_FFN_NORM, false},
        {CHESS_CONTRACT_NODE_STOCK_FFN_UP "-", K_FFN_UP, false},
        {CHESS_CONTRACT_NODE_STOCK_FFN_GATE "-", K_FFN_GATE, false},
        {CHESS_CONTRACT_NODE_SPARSE_GATE_ACT "-", K_FFN_GATE, true},
        {CHESS_CONTRACT_NODE_STOCK_FFN_SWIGLU "-", K_FFN_DOWN_IN, false},
        {CHESS_CONTRACT_NODE_STOCK_FFN_GEGLU "-", K_FFN_DOWN_IN, false},
        {CHESS_CONTRACT_NODE_SPARSE_UP_GATED "-", K_FFN_DOWN_IN, false},
        {CHESS_CONTRACT_NODE_SPARSE_GATE_PAR "-", K_FFN_DOWN_IN, false},
    };
    for (const auto & e : table) {
        const size_t n = std::strlen(e.prefix);
        if (std::strncmp(name, e.prefix, n) == 0) {
            char * end = nullptr;
            const long il = std::strtol(name + n, &end, 10);
            if (end == name + n || *end != '\0') return K_NONE;
            *layer = int(il);
            *is_act = e.act;
            return e.kind;
        }
    }
    return K_NONE;
}

// act(x) as ggml computes it in float (SiLU: x / (1 + e^-x); GELU: tanh approximation)
inline float act(float x, bool gelu) {
    if (!gelu) return x / (1.0f + std::exp(-x));
    const float c = 0.7978845608028654f;  // sqrt(2 / pi)
    return 0.5f * x * (1.0f + std::tanh(c * (x + 0.044715f * x * x * x)));
}

// Returns a pointer to row r (ne0 contiguous floats) of an F32 tensor.
const float * row_ptr(const ggml_tensor * t, const uint8_t * base, int64_t r) {
    const int64_t i1 = r % t->ne[1];
    const int64_t i2 = (r / t->ne[1]) % t->ne[2];
    const int64_t i3 = r / (t->ne[1] * t->ne[2]);
    return reinterpret_cast<const float *>(base + i1 * t->nb[1] + i2 * t->nb[2] + i3 * t->nb[3]);
}

bool eval_callback(ggml_tensor * t, bool ask, void * user_data) {
    auto * st = static_cast<State *>(user_data);
    int il = -1;
    bool is_act = false;
    const Kind kind = classify(t->name, &il, &is_act);
    if (ask) return kind != K_NONE;
    if (kind == K_NONE || il < 0 || il >= st->n_layer) return true;
    if (t->type != GGML_TYPE_F32 || t->nb[0] != sizeof(float)) {
        st->error = std::string("tensor ") + t->name + " is not a row-contiguous F32 tensor";
        return false;
    }
    const uint8_t * base;
    if (t->buffer && ggml_backend_buffer_is_host(t->buffer)) {
        base = static_cast<const uint8_t *>(t->data);
    } else {
        st->scratch.resize(ggml_nbytes(t) / sizeof(float) + 1);
        ggml_backend_tensor_get(t, st->scratch.data(), 0, ggml_nbytes(t));
        base = reinterpret_cast<const uint8_t *>(st->scratch.data());
    }
    const int64_t ne0 = t->ne[0];
    const int64_t rows = ggml_nrows(t);
    Layer & L = st->layers[size_t(il)];
    if ((kind == K_FFN_UP || kind == K_FFN_GATE || kind == K_FFN_DOWN_IN) && ne0 != st->n_ff) {
        st->error = std::string("tensor ") + t->name + " has " + std::to_string(ne0) + " channels, expected n_ff = " + std::to_string(st->n_ff);
        return false;
    }
    if (st->idx.size() < size_t(ne0)) st->idx.resize(size_t(ne0));
    uint32_t * idx = st->idx.data();
    L.seen[kind] += uint64_t(rows);
    for (int64_t r = 0; r < rows; r++) {
        const float * x = row_ptr(t, base, r);
        switch (kind) {
            case K_ATTN_NORM: L.hist[H_IN_QKV].add_row(x, ne0, idx); break;
            case K_KQV_OUT: L.hist[H_IN_O].add_row(x, ne0, idx); break;
            case K_FFN_NORM: L.hist[H_IN_GATE_UP].add_row(x, ne0, idx); break;
            case K_FFN_DOWN_IN: L.hist[H_IN_DOWN].add_row(x, ne0, idx); break;
            case K_FFN_UP: {
                double * sa = L.sum_abs.data();
                double * sq = L.sum_sq.data();
                for (int64_t i = 0; i < ne0; i++) {
                    const double v = x[i];
                    sa[i] += std::fabs(v);
                    sq[i] += v * v;
                }
                break;
            }
            case K_FFN_GATE: {
                const float * g = x;
                if (!is_act) {
                    float * a = st->act.data();
                    for (int64_t i = 0; i < ne0; i++) a[i] = act(x[i], st->gelu);
                    g = a;
                }
                L.hist[H_GATE_ABS].add_row(g, ne0, idx);
                L.gate.add_row(g, idx);
                break;
            }
            default: break;
        }
    }
    // Everything after the last layer's W_down input (its W_down, the output
    // norm and the vocabulary projection) is not needed: cancel it.
    if (il == st->n_layer - 1 && kind == K_FFN_DOWN_IN) {
        st->stopped = true;
        return false;
    }
    return true;
}

struct Args {
    std::string mode, model, text, tokens, out, act = "silu";
    long long max_tokens = 0;
    int ctx = 0, threads = 2;
};

[[noreturn]] void die(const std::string & msg) {
    std::fprintf(stderr, "chess-profile: error: %s\n", msg.c_str());
    std::exit(2);
}

Args parse_args(int argc, char ** argv) {
    Args a;
    if (argc < 2) die("usage: chess-profile tokenize|collect|version [options]");
    a.mode = argv[1];
    for (int i = 2; i < argc; i++) {
        const std::string k = argv[i];
        if (i + 1 >= argc) die("option " + k + " needs a value");
        const std::string v = argv[++i];
        if (k == "--model") a.model = v;
        else if (k == "--text") a.text = v;
        else if (k == "--tokens") a.tokens = v;
        else if (k == "--out") a.out = v;
        else if (k == "--act") a.act = v;
        else if (k == "--max-tokens") a.max_tokens = std::atoll(v.c_str());
        else if (k == "--ctx") a.ctx = std::atoi(v.c_str());
        else if (k == "--threads") a.threads = std::atoi(v.c_str());
        else die("unknown option " + k);
    }
    return a;
}

void quiet_log(enum ggml_log_level level, const char * text, void *) {
    if (level == GGML_LOG_LEVEL_ERROR) std::fputs(text, stderr);
}

std::string meta(const llama_model * model, const std::string & key) {
    char buf[256];
    const int n = llama_model_meta_val_str(model, key.c_str(), buf, sizeof(buf));
    return n < 0 ? std::string() : std::string(buf);
}

llama_model * load_model(const std::string & path) {
    llama_model_params mp = llama_model_default_params();
    mp.n_gpu_layers = 0;
    // No weight-repacking buffer types: on hosts that advertise AMX without
    // granting it (e.g. some VMs) the AMX buffer type dies with SIGILL, and the
    // statistics do not depend on the matmul kernel layout.
    mp.use_extra_bufts = false;
    llama_model * model = llama_model_load_from_file(path.c_str(), mp);
    if (!model) die("cannot load model " + path);
    return model;
}

int model_n_ff(const llama_model * model) {
    const std::string arch = meta(model, "general.architecture");
    const std::string base = arch == CHESS_CONTRACT_ARCHITECTURE ? meta(model, CHESS_CONTRACT_KEY_BASE_ARCHITECTURE) : arch;
    const std::string v = meta(model, base + ".feed_forward_length");
    return v.empty() ? 0 : std::atoi(v.c_str());
}

void print_info(const llama_model * model, long long n_tokens) {
    const llama_vocab * vocab = llama_model_get_vocab(model);
    std::printf(
        "{\"tool\":\"%s\",\"arch\":\"%s\",\"n_layer\":%d,\"n_embd\":%d,\"n_ff\":%d,\"n_head\":%d,\"n_head_kv\":%d,"
        "\"n_vocab\":%d,\"add_bos\":%s,\"bos\":%d,\"tokens\":%lld}\n",
        kToolVersion, meta(model, "general.architecture").c_str(), llama_model_n_layer(model), llama_model_n_embd(model),
        model_n_ff(model), llama_model_n_head(model), llama_model_n_head_kv(model), llama_vocab_n_tokens(vocab),
        llama_vocab_get_add_bos(vocab) ? "true" : "false", llama_vocab_bos(vocab), n_tokens);
    std::fflush(stdout);
}

std::vector<char> read_file(const std::string & path) {
    std::ifstream f(path, std::ios::binary);
    if (!f) die("cannot read " + path);
    return std::vector<char>((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
}

int cmd_tokenize(const Args & a) {
    if (a.model.empty() || a.text.empty() || a.out.empty() || a.max_tokens <= 0) die("tokenize needs --model --text --max-tokens --out");
    llama_model * model = load_model(a.model);
    const llama_vocab * vocab = llama_model_get_vocab(model);
    const std::vector<char> text = read_file(a.text);
    std::vector<int32_t> stream;
    std::vector<int64_t> starts;  // stream offset of every document used
    std::vector<llama_token> buf;
    size_t start = 0;
    while (start <= text.size() && (long long) stream.size() < a.max_tokens) {
        size_t end = start;
        while (end < text.size() && text[end] != '\x1e') end++;
        if (end > start) {
            const int32_t len = int32_t(end - start);
            buf.resize(size_t(len) + 16);
            int32_t n = llama_tokenize(vocab, text.data() + start, len, buf.data(), int32_t(buf.size()), false, false);
            if (n < 0) {
                buf.resize(size_t(-n));
                n = llama_tokenize(vocab, text.data() + start, len, buf.data(), int32_t(buf.size()), false, false);
            }
            if (n < 0) die("tokenization failed");
            if (n > 0) starts.push_back(int64_t(stream.size()));
            stream.insert(stream.end(), buf.begin(), buf.begin() + n);
        }
        start = end + 1;
    }
    std::ofstream f(a.out, std::ios::binary);
    f.write(reinterpret_cast<const char *>(stream.data()), std::streamsize(stream.size() * sizeof(int32_t)));
    if (!f) die("cannot write " + a.out);
    f.close();
    std::ofstream fd(a.out + ".docs", std::ios::binary);
    fd.write(reinterpret_cast<const char *>(starts.data()), std::streamsize(starts.size() * sizeof(int64_t)));
    if (!fd) die("cannot write " + a.out + ".docs");
    fd.close();
    print_info(model, (long long) stream.size());
    llama_model_free(model);
    return 0;
}

template <typename T> void put(std::ofstream & f, const T & v) { f.write(reinterpret_cast<const char *>(&v), sizeof(T)); }

double bits_to_double(uint32_t b) {
    float v;
    std::memcpy(&v, &b, 4);
    return double(v);
}

int cmd_collect(const Args & a) {
    if (a.model.empty() || a.tokens.empty() || a.out.empty() || a.ctx <= 0) die("collect needs --model --tokens --ctx --out");
    if (a.act != "silu" && a.act != "gelu") die("--act must be silu or gelu");
    const std::vector<char> raw = read_file(a.tokens);
    const size_t n_total = raw.size() / sizeof(int32_t);
    if (n_total == 0 || n_total % size_t(a.ctx) != 0) die("token file size is not a positive multiple of --ctx");
    std::vector<int32_t> tokens(n_total);
    std::memcpy(tokens.data(), raw.data(), n_total * sizeof(int32_t));
    const size_t n_windows = n_total / size_t(a.ctx);

    llama_model * model = load_model(a.model);
    State st;
    st.gelu = a.act == "gelu";
    st.sparse = meta(model, "general.architecture") == CHESS_CONTRACT_ARCHITECTURE;
    st.n_layer = llama_model_n_layer(model);
    st.n_ff = model_n_ff(model);
    if (st.n_ff <= 0) die("model has no feed_forward_length");
    st.act.resize(size_t(st.n_ff));
    st.layers.resize(size_t(st.n_layer));
    for (auto & L : st.layers) {
        L.sum_abs.assign(size_t(st.n_ff), 0.0);
        L.sum_sq.assign(size_t(st.n_ff), 0.0);
        L.gate.init(st.n_ff);
    }
    const int n_vocab = llama_vocab_n_tokens(llama_model_get_vocab(model));
    for (int32_t t : tokens) {
        if (t < 0 || t >= n_vocab) die("token id " + std::to_string(t) + " out of range");
    }

    llama_context_params cp = llama_context_default_params();
    cp.n_ctx = uint32_t(a.ctx);
    cp.n_batch = uint32_t(a.ctx);
    cp.n_ubatch = uint32_t(a.ctx);
    cp.n_seq_max = 1;
    cp.n_threads = a.threads;
    cp.n_threads_batch = a.threads;
    cp.flash_attn_type = LLAMA_FLASH_ATTN_TYPE_DISABLED;
    cp.no_perf = true;
    cp.cb_eval = std::getenv("CHESS_PROFILE_TIMING_NO_CALLBACK") ? nullptr : eval_callback;  // timing only
    cp.cb_eval_user_data = &st;
    llama_context * ctx = llama_init_from_model(model, cp);
    if (!ctx) die("cannot create a context of " + std::to_string(a.ctx) + " tokens");

    llama_batch batch = llama_batch_init(a.ctx, 0, 1);
    for (size_t w = 0; w < n_windows; w++) {
        llama_memory_clear(llama_get_memory(ctx), true);
        batch.n_tokens = a.ctx;
        for (int k = 0; k < a.ctx; k++) {
            batch.token[k] = tokens[w * size_t(a.ctx) + size_t(k)];
            batch.pos[k] = k;
            batch.n_seq_id[k] = 1;
            batch.seq_id[k][0] = 0;
            batch.logits[k] = 1;  // all outputs: otherwise the last layer's FFN skips tokens
        }
        st.stopped = false;
        const int rc = llama_decode(ctx, batch);
        if (!st.error.empty()) die(st.error);
        if (rc != 0 && !(rc == 2 && st.stopped)) die("llama_decode failed with code " + std::to_string(rc));
        std::printf("progress 1 %zu %zu\n", (w + 1) * size_t(a.ctx), n_total);
        std::fflush(stdout);
    }
    llama_batch_free(batch);

    // every layer must have produced every tensor for every token (the up projection: dense graphs only)
    static const char * kind_names[] = {"attn_norm", "kqv_out", "ffn_norm", "ffn_up", "ffn_gate/ffn_gate_act", "ffn_swiglu/chess_up_gated/ffn_gate_par"};
    for (int il = 0; il < st.n_layer; il++) {
        for (int k = 0; k < K_NONE; k++) {
            if (k == K_FFN_UP && st.sparse) continue;
            const uint64_t expect = uint64_t(n_total);
            if (st.layers[size_t(il)].seen[k] != expect) {
                die(std::string("graph tensor ") + kind_names[k] + "-" + std::to_string(il) + " seen for " +
                    std::to_string(st.layers[size_t(il)].seen[k]) + " token rows, expected " + std::to_string(expect) +
                    " (unsupported graph layout for this architecture?)");
            }
        }
    }

    std::ofstream f(a.out, std::ios::binary);
    f.write(kStatsMagic, 8);
    put<uint32_t>(f, 2);  // stats version
    put<uint32_t>(f, uint32_t(st.n_layer));
    put<uint32_t>(f, uint32_t(st.n_ff));
    put<uint32_t>(f, uint32_t(H_COUNT));
    put<int32_t>(f, kFine.sub);
    put<int32_t>(f, kFine.min_exp);
    put<int32_t>(f, kFine.max_exp);
    put<uint32_t>(f, kFine.bins);
    put<int32_t>(f, kChan.sub);
    put<int32_t>(f, kChan.min_exp);
    put<int32_t>(f, kChan.max_exp);
    put<uint32_t>(f, kChan.bins);
    put<uint64_t>(f, uint64_t(n_total));
    put<uint32_t>(f, st.sparse ? 0u : 1u);  // moments present
    put<uint32_t>(f, 0u);
    for (const auto & L : st.layers) {
        for (int i = 0; i < st.n_ff; i++) put<double>(f, st.sparse ? 0.0 : L.sum_abs[size_t(i)] / double(n_total));
        for (int i = 0; i < st.n_ff; i++) put<double>(f, st.sparse ? 0.0 : std::sqrt(L.sum_sq[size_t(i)] / double(n_total)));
        for (const auto & h : L.hist) {
            put<uint64_t>(f, h.counts[0]);
            put<uint64_t>(f, h.counts[1]);
            put<uint64_t>(f, h.counts[2]);
            put<uint64_t>(f, h.nonfinite);
            put<double>(f, h.min_bits == 0xffffffffu ? -1.0 : bits_to_double(h.min_bits));
            put<double>(f, bits_to_double(h.max_bits));
            f.write(reinterpret_cast<const char *>(h.counts.data() + 3), std::streamsize(kFine.bins * sizeof(uint64_t)));
        }
        put<uint64_t>(f, L.gate.nonfinite);
        f.write(reinterpret_cast<const char *>(L.gate.counts.data()), std::streamsize(L.gate.counts.size() * sizeof(uint32_t)));
        for (int i = 0; i < st.n_ff; i++) {
            const uint32_t b = L.gate.min_bits[size_t(i)];
            put<float>(f, b == 0xffffffffu ? -1.0f : float(bits_to_double(b)));
        }
        for (int i = 0; i < st.n_ff; i++) put<float>(f, float(bits_to_double(L.gate.max_bits[size_t(i)])));
    }
    f.close();
    if (!f) die("cannot write " + a.out);
    llama_free(ctx);
    llama_model_free(model);
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    std::printf("peak_rss_kb %ld\n", ru.ru_maxrss);
    return 0;
}

}  // namespace

int main(int argc, char ** argv) {
    const Args a = parse_args(argc, argv);
    if (a.mode == "version") {
        std::printf("%s\n", kToolVersion);
        return 0;
    }
    llama_log_set(quiet_log, nullptr);
    llama_backend_init();
    int rc;
    if (a.mode == "tokenize") rc = cmd_tokenize(a);
    else if (a.mode == "collect") rc = cmd_collect(a);
    else die("unknown mode " + a.mode);
    llama_backend_free();
    return rc;
}
