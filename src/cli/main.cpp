// The `reel` command line: one-shot answers, interactive chat, and the tokenize / logits /
// bench tools. Everything here is argument handling and printing; the work happens in the
// pipeline layer.
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>

#include "common/error.h"
#include "pipeline/bench.h"
#include "pipeline/engine.h"

extern "C" {
#include <editline/readline.h>
}

namespace reel {
namespace {

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(path + ": cannot open the file");
  std::ostringstream s;
  s << in.rdbuf();
  if (in.bad()) throw Error(path + ": read error");
  return s.str();
}

struct ChatArgs {
  EngineOptions engine;
  SamplingParams sampling;
  std::string prompt, prompt_file, system, stats;
  int n_predict = -1;
  bool verbose = false;
};

void add_engine_flags(CLI::App& app, EngineOptions& e, bool model_required = true) {
  app.add_option("-m,--model", e.model_path, "Qwen3-VL text model GGUF")->required(model_required);
  app.add_option("-t,--threads", e.n_threads, "threads (default: all cores)")
      ->check(CLI::Range(1, 1024));
  app.add_option("-c,--ctx-size", e.n_ctx, "context length in tokens (0: the model's)")
      ->check(CLI::Range(0, 1 << 24));
  app.add_option("-b,--batch-size", e.n_batch, "prompt tokens per forward pass")
      ->check(CLI::Range(1, 65536));
}

void add_sampling_flags(CLI::App& app, SamplingParams& s) {
  app.add_option("-s,--seed", s.seed, "random seed");
  app.add_option("--temp", s.temperature, "temperature (0: greedy)")->check(CLI::Range(0.0, 100.0));
  app.add_option("--top-k", s.top_k, "top-k (0: off)")->check(CLI::Range(0, 1 << 24));
  app.add_option("--top-p", s.top_p, "top-p (1: off)")->check(CLI::Range(0.0, 1.0));
  app.add_option("--min-p", s.min_p, "min-p (0: off)")->check(CLI::Range(0.0, 1.0));
  app.add_option("--repeat-penalty", s.repeat_penalty, "repetition penalty (1: off)")
      ->check(CLI::Range(0.01, 100.0));
  app.add_option("--presence-penalty", s.presence_penalty, "presence penalty (0: off)")
      ->check(CLI::Range(-100.0, 100.0));
}

void print_stats(const ChatArgs& a, const Engine& engine, const GenerationStats& g) {
  if (a.stats == "json") {
    std::fprintf(stderr,
                 "{\"load_ms\": %.1f, \"prompt_tokens\": %d, \"prefill_ms\": %.1f, "
                 "\"prefill_tps\": %.2f, \"generated_tokens\": %d, \"decode_ms\": %.1f, "
                 "\"decode_tps\": %.2f}\n",
                 engine.load_ms(), g.n_prompt, g.prefill_ms, g.prefill_tps(), g.n_generated,
                 g.decode_ms, g.decode_tps());
  } else if (a.verbose || a.stats == "text") {
    std::fprintf(stderr,
                 "\n[model load %.0f ms | prompt %d tokens, %.1f tok/s | generated %d tokens, "
                 "%.1f tok/s]\n",
                 engine.load_ms(), g.n_prompt, g.prefill_tps(), g.n_generated, g.decode_tps());
  }
  if (g.hit_context_limit)
    std::fprintf(stderr, "\nreel: the context is full (%d tokens); use <clear> or raise -c\n",
                 engine.options().n_ctx);
}

GenerationStats answer(ChatSession& session, const std::string& text, int n_predict) {
  GenerationStats g = session.ask(text, n_predict, [](std::string_view piece) {
    std::fwrite(piece.data(), 1, piece.size(), stdout);
    std::fflush(stdout);
    return true;
  });
  std::fputc('\n', stdout);
  std::fflush(stdout);
  return g;
}

// Reads one line: with line editing on a terminal, plainly otherwise. False at end of input.
bool read_line(std::string& line) {
  if (isatty(STDIN_FILENO)) {
    char* s = readline("> ");
    if (!s) return false;
    line = s;
    if (!line.empty()) add_history(s);
    std::free(s);
    return true;
  }
  return static_cast<bool>(std::getline(std::cin, line));
}

int run_chat(ChatArgs& a) {
  if (!a.prompt_file.empty()) a.prompt = read_file(a.prompt_file);
  auto engine = Engine::load(a.engine);
  if (a.verbose) {
    const TextConfig& c = engine->model().config();
    std::fprintf(stderr,
                 "reel: %s: %d layers, hidden %d, %d/%d heads, vocab %d, context %d, %d threads, "
                 "loaded in %.0f ms\n",
                 a.engine.model_path.c_str(), c.n_layer, c.n_embd, c.n_head, c.n_head_kv,
                 c.n_vocab, engine->options().n_ctx, engine->options().n_threads,
                 engine->load_ms());
  }
  ChatSession session(*engine, a.sampling, a.system);
  if (!a.prompt.empty()) {
    print_stats(a, *engine, answer(session, a.prompt, a.n_predict));
    return 0;
  }
  if (isatty(STDIN_FILENO))
    std::fprintf(stderr, "reel: chat with the model. <clear> forgets the dialogue, <exit> or "
                         "Ctrl-D quits.\n");
  std::string line;
  while (read_line(line)) {
    if (line == "<exit>") break;
    if (line == "<clear>") {
      session.clear();
      std::fprintf(stderr, "reel: dialogue cleared\n");
      continue;
    }
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    try {
      print_stats(a, *engine, answer(session, line, a.n_predict));
    } catch (const Error& e) {
      std::fprintf(stderr, "reel: %s\n", e.what());  // e.g. prompt too long: keep chatting
    }
  }
  return 0;
}

int run_tokenize(const std::string& model, const std::string& file) {
  const std::string text = read_file(file);
  auto gguf = gguf::File::open(model);
  auto tok = Tokenizer::from_gguf(*gguf);
  const auto ids = tok->encode(text, true);
  std::string out;
  for (size_t i = 0; i < ids.size(); ++i) out += (i ? " " : "") + std::to_string(ids[i]);
  std::printf("%s\n", out.c_str());
  return 0;
}

int run_logits(EngineOptions opts, const std::string& file, const std::string& out_path) {
  const std::string text = read_file(file);
  auto engine = Engine::load(opts);
  const auto ids = engine->tokenizer().encode(text, true);
  std::FILE* out = std::fopen(out_path.c_str(), "wb");
  if (!out) throw Error(out_path + ": cannot create the file");
  const size_t n_vocab = engine->model().config().n_vocab;
  try {
    compute_all_logits(*engine, ids, [&](const float* rows, int n) {
      if (std::fwrite(rows, sizeof(float) * n_vocab, n, out) != size_t(n))
        throw Error(out_path + ": write error");
    });
  } catch (...) {
    std::fclose(out);
    throw;
  }
  if (std::fclose(out) != 0) throw Error(out_path + ": write error");
  std::fprintf(stderr, "reel: wrote %zu x %zu logits to %s\n", ids.size(), n_vocab,
               out_path.c_str());
  return 0;
}

int run_bench_cmd(EngineOptions opts, const BenchOptions& b) {
  opts.n_ctx = b.n_prompt + b.n_decode + 1;
  auto engine = Engine::load(opts);
  const TextConfig& c = engine->model().config();
  std::printf("model: %s (%d layers, hidden %d), %d threads\n", opts.model_path.c_str(),
              c.n_layer, c.n_embd, engine->options().n_threads);
  const BenchResult r = run_bench(*engine, b);
  std::printf("prefill: %.2f tokens/s (%d-token prompt)\n", r.prefill_tps, b.n_prompt);
  std::printf("decode:  %.2f tokens/s (%d tokens)\n", r.decode_tps, b.n_decode);
  std::printf("memory bandwidth (measured, this run): %.2f GB/s\n", r.bandwidth_gbs);
  std::printf("weights read per token: %.1f MB -> roofline %.2f tokens/s\n",
              r.weight_bytes_per_token / 1e6, r.roofline_tps());
  std::printf("decode at %.1f%% of the bandwidth roofline\n", 100.0 * r.roofline_fraction());
  return 0;
}

int run(int argc, char** argv) {
  CLI::App app{"Reel: ask questions about videos and images with Qwen3-VL", "reel"};
  app.require_subcommand(0, 1);
  ChatArgs chat;
  add_engine_flags(app, chat.engine, /*model_required=*/false);
  add_sampling_flags(app, chat.sampling);
  app.add_option("-p,--prompt", chat.prompt, "answer this prompt and exit (else: chat)");
  app.add_option("-f,--file", chat.prompt_file, "read the prompt from a file");
  app.add_option("-n,--n-predict", chat.n_predict, "max tokens per answer (-1: until done)")
      ->check(CLI::Range(-1, 1 << 24));
  app.add_option("--system", chat.system, "system prompt");
  app.add_option("--stats", chat.stats, "print stats after each answer")
      ->check(CLI::IsMember({"text", "json"}));
  app.add_flag("-v,--verbose", chat.verbose, "print model info and stats");

  std::string tok_model, tok_file;
  auto* tok = app.add_subcommand("tokenize", "print the token ids of a text file");
  tok->add_option("-m,--model", tok_model, "model GGUF")->required();
  tok->add_option("-f,--file", tok_file, "text file")->required();

  EngineOptions lg_opts;
  std::string lg_file, lg_out;
  auto* lg = app.add_subcommand("logits", "write float32 logits for every position");
  add_engine_flags(*lg, lg_opts);
  lg->add_option("-f,--file", lg_file, "text file (tokenized as is, no template)")->required();
  lg->add_option("-o,--output", lg_out, "output .f32 file")->required();

  EngineOptions bn_opts;
  BenchOptions bn;
  auto* bench = app.add_subcommand("bench", "prefill/decode speed against the memory roofline");
  add_engine_flags(*bench, bn_opts);
  bench->add_option("-p,--n-prompt", bn.n_prompt, "prompt tokens")->check(CLI::Range(1, 65536));
  bench->add_option("-n,--n-gen", bn.n_decode, "generated tokens")->check(CLI::Range(1, 65536));
  bench->add_option("-r,--repetitions", bn.repetitions, "best of")->check(CLI::Range(1, 100));

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  if (*tok) return run_tokenize(tok_model, tok_file);
  if (*lg) return run_logits(lg_opts, lg_file, lg_out);
  if (*bench) return run_bench_cmd(bn_opts, bn);
  if (chat.engine.model_path.empty()) {
    std::fprintf(stderr, "reel: -m MODEL.gguf is required (see reel --help)\n");
    return 2;
  }
  return run_chat(chat);
}

}  // namespace
}  // namespace reel

int main(int argc, char** argv) {
  try {
    return reel::run(argc, argv);
  } catch (const reel::Error& e) {
    std::fprintf(stderr, "reel: %s\n", e.what());
  } catch (const std::bad_alloc&) {
    std::fprintf(stderr, "reel: out of memory\n");
  } catch (const std::exception& e) {
    std::fprintf(stderr, "reel: %s\n", e.what());
  }
  return 1;
}
