#include <fstream>
#include <sstream>

#include "cli/cli.h"
#include "common/error.h"

namespace reel::cli {

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(path + ": cannot open the file");
  std::ostringstream s;
  s << in.rdbuf();
  if (in.bad()) throw Error(path + ": read error");
  return s.str();
}

void add_engine_flags(CLI::App& app, EngineOptions& e, bool model_required) {
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

void add_video_flags(CLI::App& app, VideoOptions& o) {
  app.add_option("--frames", o.n_frames, "take N evenly spaced frames (default: 2 per second)")
      ->check(CLI::Range(1, 100000));
  app.add_option("--fps", o.fps, "frames per second to sample (default 2)")
      ->check(CLI::Range(0.001, 1000.0));
  app.add_option("--max-video-tokens", o.max_tokens,
                 "visual token budget of a video (default: what the context leaves)")
      ->check(CLI::Range(int64_t(1), int64_t(1) << 24));
  app.add_flag("--video-as-images", o.as_images,
               "encode every frame as a separate image (the original app's way)");
  app.add_flag("!--no-display-corrections", o.display_corrections,
               "ignore rotation metadata and non-square pixels (as transformers does)");
}

}  // namespace reel::cli
