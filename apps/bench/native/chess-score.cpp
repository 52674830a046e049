// chess-score: the evaluator's scoring loop in C++ against libllama, so that only the
// log-probabilities the metrics need leave the process (node-llama-cpp 3.21.1 hands every
// scored position's whole vocabulary to JavaScript as a sorted Map: ~20 ms per position on
// SmolLM2, four times the forward pass). Built by apps/bench/src/native-scorer.ts against
// the libllama of the build that runs the model (stock prebuilt or patched).
//
//   chess-score score --model M --threads T --batch B --seqs S < requests > scores
//     requests: "D <docs>" then per document "C <choices>" and per choice
//               "<n> <first_target> <n token ids>"; scores: per choice
//               "<doc> <choice> <greedy 0|1> <ln p of each continuation token>".
//     A document's choices share the longest common prefix of their inputs: it is evaluated
//     once on the first choice's sequence and copied (llama_memory_seq_cp) to the others,
//     then every choice's own tokens in one batch. --batch sets the batch size (raised to the
//     longest document); --seqs is accepted for compatibility (one sequence per choice).
//
//   chess-score kl --model S --reference D --text-file F --ctx N --chunks K --threads T
//     Windows as llama-perplexity forms them (BOS-tokenized text, K windows of N tokens,
//     first token BOS, second half scored); per scored position one line
//     "<window> <kl(D||S)> <nll_D> <nll_S> <same_top 0|1>", all in float64 from the logits.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "ggml-backend.h"
#include "llama.h"

namespace {

[[noreturn]] void die(const std::string & msg) {
    std::fprintf(stderr, "chess-score: %s\n", msg.c_str());
    std::exit(2);
}

void quiet_log(ggml_log_level level, const char * text, void *) {
    if (level >= GGML_LOG_LEVEL_ERROR) std::fputs(text, stderr);
}

struct Args {
    std::string mode, model, reference, text_file, lib_dir;
    int threads = 2, batch = 2048, seqs = 64, ctx = 512, chunks = 0;
};

Args parse_args(int argc, char ** argv) {
    if (argc < 2) die("usage: chess-score score|kl --model M ...");
    Args a;
    a.mode = argv[1];
    for (int i = 2; i < argc; i++) {
        std::string k = argv[i];
        if (i + 1 >= argc) die(k + " needs a value");
        std::string v = argv[++i];
        if (k == "--model") a.model = v;
        else if (k == "--reference") a.reference = v;
        else if (k == "--text-file") a.text_file = v;
        else if (k == "--lib-dir") a.lib_dir = v;
        else if (k == "--threads") a.threads = std::atoi(v.c_str());
        else if (k == "--batch") a.batch = std::atoi(v.c_str());
        else if (k == "--seqs") a.seqs = std::atoi(v.c_str());
        else if (k == "--ctx") a.ctx = std::atoi(v.c_str());
        else if (k == "--chunks") a.chunks = std::atoi(v.c_str());
        else die("unknown option " + k);
    }
    if (a.model.empty()) die("--model is required");
    if (a.threads < 1 || a.batch < 1 || a.seqs < 1 || a.ctx < 4) die("--threads, --batch, --seqs must be >= 1 and --ctx >= 4");
    return a;
}

llama_model * load_model(const std::string & path) {
    llama_model_params mp = llama_model_default_params();
    mp.n_gpu_layers = 0;
    mp.progress_callback = [](float, void *) { return true; };  // no progress dots on stderr
    llama_model * m = llama_model_load_from_file(path.c_str(), mp);
    if (!m) die("cannot load model " + path);
    return m;
}

llama_context * make_context(llama_model * m, int n_ctx, int n_batch, int n_seq, int threads) {
    llama_context_params cp = llama_context_default_params();
    cp.n_ctx = n_ctx;
    cp.n_batch = n_batch;
    cp.n_ubatch = n_batch;  // one ubatch per decode: every group is evaluated in one graph
    cp.n_seq_max = n_seq;
    cp.n_threads = threads;
    cp.n_threads_batch = threads;
    cp.kv_unified = true;
    cp.no_perf = true;
    llama_context * c = llama_init_from_model(m, cp);
    if (!c) die("cannot create a context");
    return c;
}

// ln softmax(logits)[target] in float64, and whether target is the first argmax.
void log_prob(const float * logits, int n_vocab, int target, double & lp, bool & greedy) {
    int best = 0;
    for (int i = 1; i < n_vocab; i++) if (logits[i] > logits[best]) best = i;
    const double mx = logits[best];
    double sum = 0;
    for (int i = 0; i < n_vocab; i++) sum += std::exp(double(logits[i]) - mx);
    lp = double(logits[target]) - mx - std::log(sum);
    greedy = best == target;
}

struct Choice {
    std::vector<llama_token> input;
    int first_target = 0;
};
struct Doc {
    std::vector<Choice> choices;
    int shared = 0;  // tokens [0, shared) identical in every choice's evaluated part
    int tokens() const {
        int n = shared;
        for (const auto & c : choices) n += int(c.input.size()) - 1 - shared;
        return n;
    }
};

void read_requests(std::vector<Doc> & docs) {
    char tag[4];
    int n_docs = 0;
    if (std::scanf("%1s %d", tag, &n_docs) != 2 || tag[0] != 'D' || n_docs < 0) die("requests: expected 'D <docs>'");
    docs.resize(n_docs);
    for (int d = 0; d < n_docs; d++) {
        int n_choices = 0;
        if (std::scanf("%1s %d", tag, &n_choices) != 2 || tag[0] != 'C' || n_choices < 1) die("requests: expected 'C <choices>' for document " + std::to_string(d));
        docs[d].choices.resize(n_choices);
        for (auto & c : docs[d].choices) {
            int n = 0;
            if (std::scanf("%d %d", &n, &c.first_target) != 2 || n < 2 || c.first_target < 1 || c.first_target >= n) die("requests: bad choice header in document " + std::to_string(d));
            c.input.resize(n);
            for (auto & t : c.input) if (std::scanf("%d", &t) != 1) die("requests: missing token in document " + std::to_string(d));
        }
        // Longest common prefix of the evaluated parts (the last input token is never evaluated).
        int limit = int(docs[d].choices[0].input.size()) - 1;
        for (const auto & c : docs[d].choices) limit = std::min(limit, int(c.input.size()) - 1);
        int shared = 0;
        while (shared < limit) {
            bool same = true;
            for (const auto & c : docs[d].choices) same = same && c.input[shared] == docs[d].choices[0].input[shared];
            if (!same) break;
            shared++;
        }
        docs[d].shared = shared;
    }
}

int run_score(const Args & a) {
    std::vector<Doc> docs;
    read_requests(docs);
    int max_tokens = 1, max_choices = 1, max_len = 1;
    for (const auto & d : docs) {
        max_tokens = std::max(max_tokens, d.tokens());
        max_choices = std::max(max_choices, int(d.choices.size()));
        for (const auto & c : d.choices) max_len = std::max(max_len, int(c.input.size()));
    }
    const int n_batch = std::max(a.batch, max_tokens);
    // One document per llama_decode pair, one unified KV cache: on this llama.cpp, several
    // documents packed into one batch (disjoint sequences) scored up to 0.5 nat off, and one KV
    // stream per sequence (kv_unified false) was exact but 3-6x slower than node-llama-cpp.
    const int n_seq = max_choices;
    const int cells = (max_len + 31) / 32 * 32 + 32 * max_choices;
    llama_model * model = load_model(a.model);
    const llama_vocab * vocab = llama_model_get_vocab(model);
    const int n_vocab = llama_vocab_n_tokens(vocab);
    llama_context * ctx = make_context(model, cells + max_tokens, n_batch, n_seq, a.threads);
    llama_memory_t mem = llama_get_memory(ctx);
    llama_batch batch = llama_batch_init(n_batch, 0, 1);
    // scored positions: (doc, choice, input position) -> ln p, greedy
    struct Out { int doc, choice, pos, batch_index; };
    struct Score { double lp; bool greedy; };
    std::vector<Out> outs;
    std::vector<std::vector<std::vector<Score>>> scores(docs.size());
    auto add = [&](llama_token t, int pos, int seq, bool logits) {
        const int i = batch.n_tokens++;
        batch.token[i] = t;
        batch.pos[i] = pos;
        batch.n_seq_id[i] = 1;
        batch.seq_id[i][0] = seq;
        batch.logits[i] = logits;
        return i;
    };
    auto decode = [&](const char * what, size_t first_doc) {
        if (batch.n_tokens == 0) return;
        if (llama_decode(ctx, batch) != 0) die(std::string("llama_decode failed (") + what + ") at document " + std::to_string(first_doc));
        for (const Out & o : outs) {
            const Choice & ch = docs[o.doc].choices[o.choice];
            Score sc;
            log_prob(llama_get_logits_ith(ctx, o.batch_index), n_vocab, ch.input[o.pos + 1], sc.lp, sc.greedy);
            scores[o.doc][o.choice][o.pos + 1 - ch.first_target] = sc;
        }
        outs.clear();
        batch.n_tokens = 0;
    };
    size_t next = 0;
    while (next < docs.size()) {
        const size_t end = next + 1;
        llama_memory_clear(mem, true);
        // 1. each document's shared prefix once, on its first choice's sequence
        int seq = 0;
        for (size_t d = next; d < end; d++) {
            const Doc & doc = docs[d];
            scores[d].resize(doc.choices.size());
            for (size_t c = 0; c < doc.choices.size(); c++) scores[d][c].resize(doc.choices[c].input.size() - doc.choices[c].first_target);
            for (int p = 0; p < doc.shared; p++) {
                bool needed = false;
                for (const auto & c : doc.choices) needed = needed || p + 1 >= c.first_target;
                const int i = add(doc.choices[0].input[p], p, seq, needed);
                for (int c = 0; c < int(doc.choices.size()); c++) if (p + 1 >= doc.choices[c].first_target) outs.push_back({int(d), c, p, i});
            }
            seq += int(doc.choices.size());
        }
        decode("shared prefixes", next);
        // 2. branch: the other choices start from a copy of the prefix's cache
        seq = 0;
        for (size_t d = next; d < end; d++) {
            const Doc & doc = docs[d];
            if (doc.shared > 0) for (int c = 1; c < int(doc.choices.size()); c++) llama_memory_seq_cp(mem, seq, seq + c, -1, -1);
            seq += int(doc.choices.size());
        }
        // 3. every choice's own tokens
        seq = 0;
        for (size_t d = next; d < end; d++) {
            const Doc & doc = docs[d];
            for (int c = 0; c < int(doc.choices.size()); c++) {
                const Choice & ch = doc.choices[c];
                for (int p = doc.shared; p < int(ch.input.size()) - 1; p++) {
                    const int i = add(ch.input[p], p, seq + c, p + 1 >= ch.first_target);
                    if (p + 1 >= ch.first_target) outs.push_back({int(d), c, p, i});
                }
            }
            seq += int(doc.choices.size());
        }
        decode("continuations", next);
        for (size_t d = next; d < end; d++) {
            for (size_t c = 0; c < docs[d].choices.size(); c++) {
                bool greedy = true;
                for (const Score & sc : scores[d][c]) greedy = greedy && sc.greedy;
                std::printf("%zu %zu %d", d, c, greedy ? 1 : 0);
                for (const Score & sc : scores[d][c]) std::printf(" %.17g", sc.lp);
                std::printf("\n");
            }
            scores[d].clear();
            scores[d].shrink_to_fit();
        }
        std::fflush(stdout);
        next = end;
    }
    llama_batch_free(batch);
    llama_free(ctx);
    llama_model_free(model);
    return 0;
}

int run_kl(const Args & a) {
    if (a.reference.empty() || a.text_file.empty()) die("kl needs --reference and --text-file");
    std::ifstream in(a.text_file, std::ios::binary);
    if (!in) die("cannot read " + a.text_file);
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    llama_model * ref = load_model(a.reference);
    llama_model * mod = load_model(a.model);
    const llama_vocab * vocab = llama_model_get_vocab(ref);
    const int n_vocab = llama_vocab_n_tokens(vocab);
    if (llama_vocab_n_tokens(llama_model_get_vocab(mod)) != n_vocab) die("the model and the reference have different vocabularies");
    // as common_tokenize(ctx, text, add_special = true, parse_special = false)
    std::vector<llama_token> tokens(text.size() + 2);
    int n = llama_tokenize(vocab, text.data(), int(text.size()), tokens.data(), int(tokens.size()), true, false);
    if (n < 0) die("tokenization failed");
    tokens.resize(n);
    const int available = n / a.ctx;
    const int windows = a.chunks > 0 ? std::min(available, a.chunks) : available;
    if (windows < 1) die("the text has " + std::to_string(n) + " tokens, fewer than one window of " + std::to_string(a.ctx));
    std::fprintf(stderr, "chess-score kl: %d tokens, %d of %d windows of %d\n", n, windows, available, a.ctx);
    const int n_batch = std::min(a.ctx, a.batch);
    llama_context * cref = make_context(ref, a.ctx, n_batch, 1, a.threads);
    llama_context * cmod = make_context(mod, a.ctx, n_batch, 1, a.threads);
    const bool add_bos = llama_vocab_get_add_bos(vocab);
    const int first = a.ctx / 2;
    llama_batch batch = llama_batch_init(n_batch, 0, 1);
    std::vector<float> ref_logits(size_t(a.ctx) * n_vocab), mod_logits(size_t(a.ctx) * n_vocab);
    auto eval = [&](llama_context * c, const std::vector<llama_token> & w, std::vector<float> & out) {
        llama_memory_clear(llama_get_memory(c), true);
        for (int start = 0; start < a.ctx; start += n_batch) {
            const int m = std::min(n_batch, a.ctx - start);
            batch.n_tokens = m;
            for (int i = 0; i < m; i++) {
                batch.token[i] = w[start + i];
                batch.pos[i] = start + i;
                batch.n_seq_id[i] = 1;
                batch.seq_id[i][0] = 0;
                batch.logits[i] = start + i >= first;
            }
            if (llama_decode(c, batch) != 0) die("llama_decode failed");
            for (int i = 0; i < m; i++) {
                if (start + i < first) continue;
                std::memcpy(&out[size_t(start + i) * n_vocab], llama_get_logits_ith(c, i), sizeof(float) * n_vocab);
            }
        }
    };
    std::vector<double> lr(n_vocab), lm(n_vocab);
    auto log_softmax = [&](const float * x, std::vector<double> & o) {
        int best = 0;
        for (int i = 1; i < n_vocab; i++) if (x[i] > x[best]) best = i;
        double sum = 0;
        for (int i = 0; i < n_vocab; i++) sum += std::exp(double(x[i]) - x[best]);
        const double z = double(x[best]) + std::log(sum);
        for (int i = 0; i < n_vocab; i++) o[i] = double(x[i]) - z;
        return best;
    };
    for (int w = 0; w < windows; w++) {
        std::vector<llama_token> win(tokens.begin() + size_t(w) * a.ctx, tokens.begin() + size_t(w + 1) * a.ctx);
        if (add_bos) win[0] = llama_vocab_bos(vocab);
        eval(cref, win, ref_logits);
        eval(cmod, win, mod_logits);
        for (int p = first; p < a.ctx - 1; p++) {
            const int top_r = log_softmax(&ref_logits[size_t(p) * n_vocab], lr);
            const int top_m = log_softmax(&mod_logits[size_t(p) * n_vocab], lm);
            double kl = 0;
            for (int i = 0; i < n_vocab; i++) kl += std::exp(lr[i]) * (lr[i] - lm[i]);
            const int target = win[p + 1];
            std::printf("%d %.17g %.17g %.17g %d\n", w, kl, -lr[target], -lm[target], top_r == top_m ? 1 : 0);
        }
        std::fflush(stdout);
    }
    llama_batch_free(batch);
    llama_free(cref);
    llama_free(cmod);
    llama_model_free(ref);
    llama_model_free(mod);
    return 0;
}

}  // namespace

int main(int argc, char ** argv) {
    Args a = parse_args(argc, argv);
    llama_log_set(quiet_log, nullptr);
    // The stock prebuilt ships its CPU backends as loadable variants; the patched build links one.
    if (ggml_backend_dev_count() == 0 && !a.lib_dir.empty()) ggml_backend_load_all_from_path(a.lib_dir.c_str());
    if (ggml_backend_dev_count() == 0) die("no ggml backend available (give --lib-dir for a build with loadable backends)");
    llama_backend_init();
    int rc = a.mode == "score" ? run_score(a) : a.mode == "kl" ? run_kl(a) : (die("unknown mode " + a.mode), 2);
    llama_backend_free();
    return rc;
}
