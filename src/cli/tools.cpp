// The tools: tokenize, logits, encode, bench and frames.
#include <algorithm>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <thread>

#include "cli/cli.h"
#include "common/error.h"
#include "common/output_file.h"
#include "media/video.h"
#include "ops/roofline.h"
#include "pipeline/scheduler.h"

namespace reel::cli {
namespace {

int default_threads(int n) {
  return n > 0 ? n : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
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
                         int n_threads, ops::FloatMatmul matmul, const BenchOptions& b,
                         const ImageOptions& image, bool json) {
  auto file = gguf::File::open(mmproj);
  auto vision = Qwen3VLVision::load(*file, matmul);
  ops::Context ctx(default_threads(n_threads));
  const VisionConfig& v = vision->config();
  if (!json)
    std::printf("vision: %s (%d blocks, width %d), %d threads\n", mmproj.c_str(), v.n_layer,
                v.n_embd, ctx.n_threads());
  const double bandwidth = json ? ops::measure_read_bandwidth_gbs(ctx.pool()) : 0;
  for (const std::string& s : sizes) {
    const auto [w, h] = parse_size(s);
    const VisionBenchResult r = run_vision_bench(*vision, w, h, image, b.repetitions, ctx);
    if (json) {
      nlohmann::ordered_json j;
      j["what"] = "vision";
      j["n_prompt"] = r.n_tokens;  // visual tokens made from the image
      j["depth"] = 0;
      j["parallel"] = 1;
      j["tokens_per_s"] = r.n_tokens / (r.encode_ms / 1e3);
      j["bandwidth_gbs"] = bandwidth;
      j["image"] = std::to_string(r.width) + "x" + std::to_string(r.height);
      j["resized"] = std::to_string(r.resized_w) + "x" + std::to_string(r.resized_h);
      j["encode_ms"] = r.encode_ms;
      j["gflops"] = r.gflops();
      j["fma_gflops"] = r.fma_gflops;
      j["threads"] = ctx.n_threads();
      std::printf("%s\n", j.dump().c_str());
      continue;
    }
    std::printf(
        "image %dx%d -> %dx%d, %d tokens: encode %.0f ms, %.1f GFLOP -> %.1f GFLOP/s = "
        "%.1f%% of the measured FMA peak (%.1f GFLOP/s, this run)\n",
        r.width, r.height, r.resized_w, r.resized_h, r.n_tokens, r.encode_ms, r.gflop, r.gflops(),
        100.0 * r.peak_fraction(), r.fma_gflops);
  }
  return 0;
}

int run_text_bench(const EngineOptions& opts, const BenchOptions& b, bool json) {
  const auto model = Model::load(opts.model_path, "", nullptr, opts.load_mode());
  EngineOptions e = opts;
  e.n_ctx = bench_context_size(b);
  Executor exec(*model, executor_options(e, *model));
  const TextConfig& c = model->text_config();
  if (!json)
    std::printf("model: %s (%d layers, hidden %d), %d threads, KV cache %s\n",
                opts.model_path.c_str(), c.n_layer, c.n_embd, exec.n_threads(),
                kv_type_name(b.kv_type));
  const BenchResult r = reel::run_bench(*model, exec, b);
  if (json) {
    for (const BenchMeasurement& m : r.rows) {
      nlohmann::ordered_json j;
      j["what"] = m.what;
      j["n_prompt"] = m.n_prompt;
      j["depth"] = m.depth;
      j["parallel"] = m.parallel;
      j["tokens_per_s"] = m.tokens_per_s;
      j["bandwidth_gbs"] = r.bandwidth_gbs;
      j["fma_gflops"] = r.fma_gflops;
      j["roofline_tokens_per_s"] = r.roofline_tps();
      if (m.what == "decode") {
        j["roofline_at_depth_tokens_per_s"] = r.roofline_tps_at(m.depth, m.parallel);
        j["roofline_fraction"] = r.roofline_fraction(m);
        j["n_gen"] = r.n_decode;
      }
      j["threads"] = exec.n_threads();
      j["kv_type"] = kv_type_name(b.kv_type);
      std::printf("%s\n", j.dump().c_str());
    }
    return 0;
  }
  std::printf("memory bandwidth (measured, this run): %.2f GB/s; FP32 FMA peak %.1f GFLOP/s\n",
              r.bandwidth_gbs, r.fma_gflops);
  std::printf("weights read per step: %.1f MB -> one-sequence decode roofline %.2f tokens/s\n",
              r.weight_bytes_per_token / 1e6, r.roofline_tps());
  std::printf("keys and values read per position of context: %.1f KB a sequence\n",
              r.kv_bytes_per_position / 1e3);
  // Ratios against one sequence's decode at the same depth and the first prompt length's
  // prefill at the same parallel level.
  auto find = [&r](const std::string& what, int n_prompt, int parallel) {
    for (const BenchMeasurement& m : r.rows)
      if (m.what == what && m.n_prompt == n_prompt && m.parallel == parallel) return m.tokens_per_s;
    return 0.0;
  };
  const int first = b.n_prompts.front();
  for (const BenchMeasurement& m : r.rows) {
    const double decode_1 = find("decode", m.n_prompt, 1);
    std::printf("%-7s parallel %3d: %8.2f tokens/s", m.what.c_str(), m.parallel, m.tokens_per_s);
    if (m.what == "prefill") {
      std::printf(" (%d-token prompts", m.n_prompt);
      const double base = find("prefill", first, m.parallel);
      if (m.n_prompt != first && base > 0)
        std::printf("; %.1f%% of the %d-token rate", 100.0 * m.tokens_per_s / base, first);
      std::printf(")\n");
    } else {
      std::printf(" (%d tokens each after %d; %.1f%% of the roofline", b.n_decode, m.depth,
                  100.0 * m.tokens_per_s / r.roofline_tps());
      // Weights once per step plus every sequence's keys and values: the bound at this depth.
      std::printf(", %.1f%% of it with the KV reads", 100.0 * m.tokens_per_s /
                                                         r.roofline_tps_at(m.depth, m.parallel));
      if (decode_1 > 0 && m.parallel > 1)
        std::printf(", %.2fx one sequence", m.tokens_per_s / decode_1);
      std::printf(")\n");
    }
  }
  return 0;
}

}  // namespace

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
  require_cpu("reel logits", opts);
  // First, before anything is loaded: an output that is one of the inputs is refused, and an
  // unwritable directory fails now rather than after the work.
  OutputFile out(
      out_path,
      {{"model", opts.model_path}, {"vision model", opts.mmproj_path}, {"prompt file", file}});
  const std::string text = read_file(file);
  const auto model = Model::load(opts.model_path, "", nullptr, opts.load_mode());
  const auto ids = model->tokenizer().encode(text, true);
  if (ids.empty()) throw Error(file + ": no tokens to evaluate");
  const int n = static_cast<int>(ids.size());
  if (opts.n_ctx > 0 && n > opts.n_ctx)
    throw Error("the input is " + std::to_string(n) + " tokens but the context holds " +
                std::to_string(opts.n_ctx) + "; raise -c");
  const size_t n_vocab = model->text_config().n_vocab;
  Executor exec(*model, executor_options(opts, *model));
  Scheduler sched(*model, exec);
  Sequence seq(*model, SequenceOptions{n, opts.kv_type});
  Request r;
  r.seq = &seq;
  r.ids = ids;
  r.max_tokens = 0;
  r.on_logits = [&](const float* rows, int k) {
    out.write(rows, sizeof(float) * n_vocab * size_t(k));
  };
  sched.run_one(std::move(r));
  out.commit();
  std::fprintf(stderr, "reel: wrote %zu x %zu logits to %s\n", ids.size(), n_vocab,
               out_path.c_str());
  return 0;
}

// `reel encode`: the vision tokens of images, as float32 [n_tokens][(1 + n_deepstack) * D]
// (main output, then each DeepStack feature, per token), the layout RKLLM-style runtimes take.
int run_encode(const std::string& mmproj, const std::vector<std::string>& paths,
               const std::string& out_path, int n_threads, ops::FloatMatmul matmul,
               const ImageOptions& opts) {
  std::vector<NamedInput> inputs = {{"vision model", mmproj}};
  for (const std::string& p : paths) inputs.push_back({"image", p});
  OutputFile out(out_path, inputs);  // first: see run_logits
  auto file = gguf::File::open(mmproj);
  auto vision = Qwen3VLVision::load(*file, matmul);
  ops::Context ctx(default_threads(n_threads));
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
      out.write(row.data(), sizeof(float) * row.size());
    }
    std::printf(
        "%s: %dx%d -> %dx%d, grid %dx%d patches, %d tokens of %d floats "
        "(decode+resize %.0f ms, encode %.0f ms)\n",
        p.c_str(), e.width, e.height, e.resized_w, e.resized_h, e.grid_w, e.grid_h, e.n_tokens(),
        (1 + n_ds) * D, e.decode_ms, e.encode_ms);
  }
  out.commit();
  return 0;
}

int run_bench(const EngineOptions& opts, const BenchOptions& b,
              const std::vector<std::string>& image_sizes, const ImageOptions& image, bool json) {
  require_cpu("reel bench", opts);
  if (opts.model_path.empty() && opts.mmproj_path.empty())
    throw Error("bench needs -m MODEL.gguf and/or --mmproj MMPROJ.gguf");
  if (!opts.model_path.empty()) {
    run_text_bench(opts, b, json);
  }
  if (!opts.mmproj_path.empty())
    run_vision_bench_cmd(opts.mmproj_path, image_sizes, opts.n_threads, opts.vision_matmul, b,
                         image, json);
  return 0;
}

// `reel frames`: the plan for a video, as JSON, without loading a model (Qwen3-VL's patch 16
// and merge 2, Qwen's tokenizer for the counts).
int run_frames(const std::string& path, const VideoOptions& opts, int64_t max_tokens, int n_ctx) {
  // The chat template around a one-video question: "<|im_start|>user\n" before it and
  // "<|im_end|>\n<|im_start|>assistant\n" after (3 + 5 tokens; checked in the tests).
  constexpr int64_t kTemplateTokens = 8;
  // The chat's default room for an answer: 512 tokens, at most a quarter of the context.
  const int64_t answer_reserve = std::min<int64_t>(512, n_ctx / 4);
  int64_t budget = 0;
  if (n_ctx > 0) {
    budget = n_ctx - kTemplateTokens - answer_reserve;
    if (budget < 1)
      throw Error("-c " + std::to_string(n_ctx) + " leaves no room for a video after the " +
                  std::to_string(kTemplateTokens) + " template tokens and " +
                  std::to_string(answer_reserve) + " for an answer");
  }
  VideoOptions o = opts;
  o.max_tokens = max_tokens;  // a visual-token cap on top of the context's
  const VideoPlan p = plan_video_prompt(path, o, kQwen3VLPatchSize, kQwen3VLSpatialMerge, budget);
  nlohmann::ordered_json j;
  j["path"] = path;
  j["video"] = {{"width", p.info.width},
                {"height", p.info.height},
                {"coded_width", p.info.coded_width},
                {"coded_height", p.info.coded_height},
                {"rotation", p.info.rotation},
                {"sar", std::to_string(p.info.sar_num) + ":" + std::to_string(p.info.sar_den)},
                {"fps", p.info.fps},
                {"frames", p.info.n_frames},
                {"duration_s", p.info.duration_s},
                {"codec", p.info.codec},
                {"container", p.info.container},
                {"has_audio", p.info.has_audio},
                {"variable_frame_rate", p.info.variable_rate()}};
  j["mode"] = p.as_images ? "images" : "native";
  char sampling[64];
  if (opts.n_frames > 0)
    std::snprintf(sampling, sizeof sampling, "%d evenly spaced frames", opts.n_frames);
  else
    std::snprintf(sampling, sizeof sampling, "%g frames per second", opts.fps);
  j["sampling"] = sampling;
  j["indices"] = p.indices;
  std::vector<double> times;
  for (int64_t i : p.indices) times.push_back(p.info.frame_time_s(i));
  j["timestamps_s"] = times;
  j["group_frames"] = p.frames;
  std::vector<std::string> texts;
  for (double t : p.group_times) texts.push_back(timestamp_text(t));
  j["group_timestamps"] = texts;
  j["resize"] = {{"width", p.resized_w}, {"height", p.resized_h}};
  j["grid"] = {{"t", p.n_groups}, {"h", p.grid_h}, {"w", p.grid_w}};
  j["tokens_per_group"] = p.tokens_per_group();
  j["tokens"] = p.n_tokens();                                     // visual tokens
  j["video_prompt_tokens"] = video_prompt_tokens(p);              // + timestamps and vision markers
  j["prompt_tokens"] = video_prompt_tokens(p) + kTemplateTokens;  // the whole prompt, no question
  if (budget > 0) {
    j["token_budget"] = budget;
    j["answer_reserve"] = answer_reserve;
  }
  j["notes"] = p.notes;
  std::printf("%s\n", j.dump(2).c_str());
  return 0;
}

}  // namespace reel::cli
