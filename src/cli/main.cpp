// The `reel` command line: one-shot answers, interactive chat, and the tokenize / logits /
// bench tools. Everything here is argument handling and printing; the work happens in the
// pipeline layer.
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <sstream>
#include <span>
#include <string>
#include <thread>
#include <vector>

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
  std::vector<std::string> images;
  ImageOptions image;
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

// --image-min-tokens / --image-max-tokens: budgets in visual tokens of 32x32 pixels.
void add_image_flags(CLI::App& app, ImageOptions& o) {
  app.add_option_function<int64_t>(
         "--image-min-tokens", [&o](int64_t t) { o.min_pixels = t * 32 * 32; },
         "fewest visual tokens per image (default 64)")
      ->check(CLI::Range(int64_t(1), int64_t(1) << 20));
  app.add_option_function<int64_t>(
         "--image-max-tokens", [&o](int64_t t) { o.max_pixels = t * 32 * 32; },
         "most visual tokens per image (default 16384)")
      ->check(CLI::Range(int64_t(1), int64_t(1) << 20));
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

// Image work done for this turn (zero when the images were already in the conversation).
struct MediaStats {
  int n_images = 0, n_tokens = 0;
  double decode_ms = 0, encode_ms = 0;
};

void print_stats(const ChatArgs& a, const Engine& engine, const GenerationStats& g,
                 const MediaStats& m = {}) {
  if (a.stats == "json") {
    std::fprintf(stderr,
                 "{\"load_ms\": %.1f, \"images\": %d, \"image_tokens\": %d, "
                 "\"image_decode_resize_ms\": %.1f, \"vision_encode_ms\": %.1f, "
                 "\"prompt_tokens\": %d, \"prefill_ms\": %.1f, "
                 "\"prefill_tps\": %.2f, \"generated_tokens\": %d, \"decode_ms\": %.1f, "
                 "\"decode_tps\": %.2f}\n",
                 engine.load_ms(), m.n_images, m.n_tokens, m.decode_ms, m.encode_ms, g.n_prompt,
                 g.prefill_ms, g.prefill_tps(), g.n_generated, g.decode_ms, g.decode_tps());
  } else if (a.verbose || a.stats == "text") {
    if (m.n_images > 0)
      std::fprintf(stderr,
                   "\n[%d image(s), %d visual tokens | decode+resize %.0f ms | vision encode "
                   "%.0f ms]",
                   m.n_images, m.n_tokens, m.decode_ms, m.encode_ms);
    std::fprintf(stderr,
                 "\n[model load %.0f ms | prompt %d tokens, %.1f tok/s | generated %d tokens, "
                 "%.1f tok/s]\n",
                 engine.load_ms(), g.n_prompt, g.prefill_tps(), g.n_generated, g.decode_tps());
  }
  if (g.hit_context_limit)
    std::fprintf(stderr, "\nreel: the context is full (%d tokens); use <clear> or raise -c\n",
                 engine.options().n_ctx);
}

GenerationStats answer(ChatSession& session, const std::string& text,
                       std::span<const EncodedImage> images, int n_predict) {
  GenerationStats g = session.ask(text, images, n_predict, [](std::string_view piece) {
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

constexpr const char* kImageMarker = "<|vision_start|><|image_pad|><|vision_end|>";

// The command line's images, encoded once and brought into the dialogue where a turn says
// <image> (or, for a one-shot -p without it, before the text).
class ImageSet {
 public:
  ImageSet(Engine& engine, const std::vector<std::string>& paths) : engine_(engine), paths_(paths) {}
  bool empty() const { return paths_.empty(); }

  // Returns the turn's content with the images' markers, and the images to go with it.
  std::string place(const std::string& text, bool prepend_if_absent,
                    std::vector<EncodedImage>& out, MediaStats& stats) {
    const size_t at = text.find("<image>");
    if (at == std::string::npos && !(prepend_if_absent && !in_dialogue_)) return text;
    std::string markers;
    if (!in_dialogue_) {
      encode_all(stats);
      for (size_t i = 0; i < encoded_.size(); ++i) markers += kImageMarker;
      out = encoded_;
      in_dialogue_ = true;
    }
    if (at == std::string::npos) return markers + text;
    return text.substr(0, at) + markers + text.substr(at + 7);
  }
  void forget() { in_dialogue_ = false; }

 private:
  void encode_all(MediaStats& stats) {
    if (encoded_.empty())
      for (const std::string& p : paths_) encoded_.push_back(engine_.encode_image(p));
    stats.n_images = static_cast<int>(encoded_.size());
    for (const EncodedImage& e : encoded_) {
      stats.n_tokens += e.n_tokens();
      stats.decode_ms += e.decode_ms;
      stats.encode_ms += e.encode_ms;
    }
    for (EncodedImage& e : encoded_) e.decode_ms = e.encode_ms = 0;  // reused from now on
  }
  Engine& engine_;
  std::vector<std::string> paths_;
  std::vector<EncodedImage> encoded_;
  bool in_dialogue_ = false;
};

int run_chat(ChatArgs& a) {
  if (!a.prompt_file.empty()) a.prompt = read_file(a.prompt_file);
  if (!a.images.empty() && a.engine.mmproj_path.empty())
    throw Error("--image needs the vision model: add --mmproj MMPROJ.gguf");
  auto engine = Engine::load(a.engine);
  engine->set_image_options(a.image);
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
  ImageSet images(*engine, a.images);
  if (!a.prompt.empty()) {
    MediaStats m;
    std::vector<EncodedImage> turn_images;
    const std::string content = images.place(a.prompt, /*prepend_if_absent=*/true, turn_images, m);
    print_stats(a, *engine, answer(session, content, turn_images, a.n_predict), m);
    return 0;
  }
  if (isatty(STDIN_FILENO))
    std::fprintf(stderr, "reel: chat with the model. <clear> forgets the dialogue, <exit> or "
                         "Ctrl-D quits.%s\n",
                 images.empty() ? "" : " Write <image> where the images go.");
  std::string line;
  while (read_line(line)) {
    if (line == "<exit>") break;
    if (line == "<clear>") {
      session.clear();
      images.forget();
      std::fprintf(stderr, "reel: dialogue cleared\n");
      continue;
    }
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    try {
      MediaStats m;
      std::vector<EncodedImage> turn_images;
      const std::string content = images.place(line, /*prepend_if_absent=*/false, turn_images, m);
      print_stats(a, *engine, answer(session, content, turn_images, a.n_predict), m);
    } catch (const Error& e) {
      std::fprintf(stderr, "reel: %s\n", e.what());  // e.g. prompt too long: keep chatting
    }
  }
  return 0;
}

// `reel encode`: the vision tokens of images, as float32 [n_tokens][(1 + n_deepstack) * D]
// (main output, then each DeepStack feature, per token), the layout RKLLM-style runtimes take.
int run_encode(const std::string& mmproj, const std::vector<std::string>& paths,
               const std::string& out_path, int n_threads, const ImageOptions& opts) {
  auto file = gguf::File::open(mmproj);
  auto vision = Qwen3VLVision::load(*file);
  ops::Context ctx(n_threads > 0 ? n_threads : std::max(1u, std::thread::hardware_concurrency()));
  std::FILE* out = std::fopen(out_path.c_str(), "wb");
  if (!out) throw Error(out_path + ": cannot create the file");
  try {
    for (const std::string& p : paths) {
      const EncodedImage e = encode_image(*vision, p, opts, ctx);
      const int D = vision->config().out_dim;
      const int n_ds = static_cast<int>(vision->config().deepstack_layers.size());
      std::vector<float> row(size_t(1 + n_ds) * D);
      for (int t = 0; t < e.n_tokens(); ++t) {
        std::copy_n(e.main.data() + size_t(t) * D, D, row.data());
        for (int l = 0; l < n_ds; ++l)
          std::copy_n(e.deepstack.data() + (size_t(l) * e.n_tokens() + t) * D, D,
                      row.data() + size_t(1 + l) * D);
        if (std::fwrite(row.data(), sizeof(float), row.size(), out) != row.size())
          throw Error(out_path + ": write error");
      }
      std::printf("%s: %dx%d -> %dx%d, grid %dx%d patches, %d tokens of %d floats "
                  "(decode+resize %.0f ms, encode %.0f ms)\n",
                  p.c_str(), e.width, e.height, e.resized_w, e.resized_h, e.grid_w, e.grid_h,
                  e.n_tokens(), (1 + n_ds) * D, e.decode_ms, e.encode_ms);
    }
  } catch (...) {
    std::fclose(out);
    throw;
  }
  if (std::fclose(out) != 0) throw Error(out_path + ": write error");
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

// Parses "WxH".
std::pair<int, int> parse_size(const std::string& s) {
  int w = 0, h = 0;
  char x = 0, extra = 0;
  if (std::sscanf(s.c_str(), "%d%c%d%c", &w, &x, &h, &extra) != 3 || (x != 'x' && x != 'X') ||
      w < 1 || h < 1 || w > 16384 || h > 16384)
    throw Error("--image-size '" + s + "' is not WIDTHxHEIGHT (1 to 16384 each)");
  return {w, h};
}

int run_vision_bench_cmd(const std::string& mmproj, const std::vector<std::string>& sizes,
                         int n_threads, const BenchOptions& b, const ImageOptions& image) {
  auto file = gguf::File::open(mmproj);
  auto vision = Qwen3VLVision::load(*file);
  ops::Context ctx(n_threads > 0 ? n_threads : std::max(1u, std::thread::hardware_concurrency()));
  const VisionConfig& v = vision->config();
  std::printf("vision: %s (%d blocks, width %d), %d threads\n", mmproj.c_str(), v.n_layer,
              v.n_embd, ctx.n_threads());
  for (const std::string& s : sizes) {
    const auto [w, h] = parse_size(s);
    const VisionBenchResult r = run_vision_bench(*vision, w, h, image, b.repetitions, ctx);
    std::printf("image %dx%d -> %dx%d, %d tokens: encode %.0f ms, %.1f GFLOP -> %.1f GFLOP/s = "
                "%.1f%% of the measured FMA peak (%.1f GFLOP/s, this run)\n",
                r.width, r.height, r.resized_w, r.resized_h, r.n_tokens, r.encode_ms, r.gflop,
                r.gflops(), 100.0 * r.peak_fraction(), r.fma_peak_gflops);
  }
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
  app.add_option("--mmproj", chat.engine.mmproj_path, "Qwen3-VL vision model GGUF (mmproj)");
  app.add_option("--image", chat.images, "image file (repeatable)");
  add_image_flags(app, chat.image);

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

  std::string enc_mmproj, enc_out;
  std::vector<std::string> enc_images;
  int enc_threads = 0;
  ImageOptions enc_image;
  auto* enc = app.add_subcommand("encode", "write the vision tokens of images as float32");
  enc->add_option("--mmproj", enc_mmproj, "vision model GGUF (mmproj)")->required();
  enc->add_option("--image", enc_images, "image file (repeatable)")->required();
  enc->add_option("-o,--output", enc_out, "output .f32 file")->required();
  enc->add_option("-t,--threads", enc_threads, "threads")->check(CLI::Range(1, 1024));
  add_image_flags(*enc, enc_image);

  EngineOptions bn_opts;
  BenchOptions bn;
  auto* bench = app.add_subcommand("bench", "prefill/decode speed against the memory roofline");
  add_engine_flags(*bench, bn_opts, /*model_required=*/false);
  std::vector<std::string> bn_sizes = {"448x448", "1280x720"};
  ImageOptions bn_image;
  bench->add_option("--mmproj", bn_opts.mmproj_path, "also time the vision encoder");
  bench->add_option("--image-size", bn_sizes, "image sizes for the vision timing (WxH)");
  add_image_flags(*bench, bn_image);
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
  if (*bench) {
    if (bn_opts.model_path.empty() && bn_opts.mmproj_path.empty())
      throw Error("bench needs -m MODEL.gguf and/or --mmproj MMPROJ.gguf");
    if (!bn_opts.model_path.empty()) run_bench_cmd(bn_opts, bn);
    if (!bn_opts.mmproj_path.empty())
      run_vision_bench_cmd(bn_opts.mmproj_path, bn_sizes, bn_opts.n_threads, bn, bn_image);
    return 0;
  }
  if (*enc) return run_encode(enc_mmproj, enc_images, enc_out, enc_threads, enc_image);
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
