#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <map>
#include <memory>
#include <thread>

#include "backends/rknpu/model_files.h"
#include "backends/rknpu/rknn_vision.h"
#include "cli/cli.h"
#include "cli/errors.h"
#include "common/error.h"
#include "common/fs.h"
#include "pipeline/chat_template.h"
#include "pipeline/media_cache.h"

namespace reel::cli {

// Prompt files may be streams as well as regular files (`-f <(cmd)`, /dev/stdin), so they are
// read to the end with a cap rather than refused; the cap also bounds /dev/zero.
constexpr size_t kMaxPromptFileBytes = size_t{64} << 20;

namespace {

// A failed stat(), open() or read() of the prompt file: Io unless the path is at fault.
[[noreturn]] void fail_errno(const std::string& path, int err, const std::string& reason) {
  throw_error(error_kind_for_errno(err), path + ": " + reason);
}

}  // namespace

std::string read_file(const std::string& path) {
  if (path.empty()) throw Error("empty path given for the prompt file");
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    const int err = errno;
    fail_errno(path, err, path_error_reason(path, err));
  }
  if (S_ISDIR(st.st_mode)) throw Error(path + ": is a directory, not a prompt file");
  if (S_ISSOCK(st.st_mode)) throw Error(path + ": is a socket, not a regular file");
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY);
  if (fd < 0) {
    const int err = errno;
    fail_errno(path, err, path_error_reason(path, err));
  }
  std::string text;
  char buf[1 << 16];
  for (;;) {
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0 || text.size() + size_t(n) > kMaxPromptFileBytes) {
      const int err = errno;
      ::close(fd);
      if (n < 0) fail_errno(path, err, std::string("read error: ") + std::strerror(err));
      if (n == 0) return text;
      throw Error(path + ": over the " + std::to_string(kMaxPromptFileBytes >> 20) +
                  " MiB limit for a prompt file");
    }
    text.append(buf, size_t(n));
  }
}

void check_media_cache_flag(const std::string& dir, const std::string& mmproj_path) {
  if (dir.empty()) return;
  if (mmproj_path.empty())
    throw UsageError("--media-cache needs a vision model (--mmproj): it keeps encoded media");
  MediaCache probe(0, dir, {});  // throws, naming the folder, when it cannot be one
}

// More threads than 4 per core only add scheduling overhead (1000 threads on 2 cores made a
// one-token answer take minutes): such a request is clamped, with a warning naming the value.
// (Not in cli.h yet: `encode -t`, defined in main.cpp, should use it too.)
int usable_threads(int requested) {
  const int cores = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  const int most = 4 * cores;
  if (requested <= most) return requested;
  std::fprintf(stderr,
               "reel: warning: -t %d is more than 4 threads per core (%d cores); using %d\n",
               requested, cores, most);
  return most;
}

namespace {

// A seed is any 64-bit unsigned value, written in decimal; CLI11 alone would take "-1" or a
// value past 2^64 silently.
uint64_t parse_seed(const std::string& v) {
  uint64_t seed = 0;
  const auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), seed);
  if (v.empty() || ec != std::errc() || end != v.data() + v.size())
    throw CLI::ValidationError(
        "--seed", "'" + v + "' is not a whole number from 0 to " + std::to_string(UINT64_MAX));
  return seed;
}

}  // namespace

void add_engine_flags(CLI::App& app, EngineOptions& e, bool model_required) {
  app.add_option("-m,--model", e.model_path, "Qwen3-VL text model GGUF")->required(model_required);
  app.add_option_function<int>(
         "-t,--threads", [&e](int n) { e.n_threads = usable_threads(n); },
         "threads (default: all cores)")
      ->check(CLI::Range(1, 1024));
  app.add_option("-c,--ctx-size", e.n_ctx, "context length in tokens (0: the model's)")
      ->check(CLI::Range(0, 1 << 24));
  app.add_option("-b,--batch-size", e.n_batch, "prompt tokens per forward pass")
      ->check(CLI::Range(1, 65536));
  app.add_option("--kv-type", e.kv_type, "KV cache element type: f16 or f32")
      ->transform(CLI::CheckedTransformer(
          std::map<std::string, KvType>{{"f16", KvType::F16}, {"f32", KvType::F32}}))
      ->default_str("f16");
  app.add_option("--backend", e.backend,
                 "cpu (GGUF files), rknpu (Rockchip's .rkllm and .rknn files on the RK3588 NPU) "
                 "or auto (by the files)")
      ->check(CLI::IsMember({"cpu", "rknpu", "auto"}));
  app.add_flag("--hugepages", e.hugepages,
               "read GGUF files of 64 MiB and up into transparent huge pages where the kernel has "
               "them, instead of mapping them: decode up to ~8% faster, start-up slower (the "
               "copy), and a private copy per process");
  add_vision_precision_flag(app, e.vision_matmul);
}

void add_vision_precision_flag(CLI::App& app, ops::FloatMatmul& m) {
  app.add_option("--vision-precision", m,
                 "the vision encoder's F16 matmuls: f32 (exact, the default) or int16 (weights and "
                 "activations rounded to 14 bits per 32 values, ~1.4x faster on CPUs with "
                 "AVX-512 VNNI, elsewhere the same as f32; README: Vision precision)")
      ->transform(CLI::CheckedTransformer(std::map<std::string, ops::FloatMatmul>{
          {"f32", ops::FloatMatmul::Exact}, {"int16", ops::FloatMatmul::Int16}}))
      ->default_str("f32");
}

void require_cpu(const char* command, const EngineOptions& e) {
  if (runs_on_npu(e.backend, e.model_path, e.mmproj_path) || rknpu::is_rknn_file(e.mmproj_path))
    throw UsageError(std::string(command) +
                     " runs on the CPU (GGUF files) only so far; with .rkllm and .rknn files Reel "
                     "runs the chat (reel -m FILE.rkllm --mmproj FILE.rknn --video VIDEO), and "
                     "reel watch takes an .rknn encoder with a GGUF text model");
}

bool runs_on_npu(const std::string& backend, const std::string& model_path,
                 const std::string& mmproj_path) {
  if (rknpu::is_rknn_file(model_path))
    throw UsageError(model_path +
                     " is a vision encoder (.rknn): give it as --mmproj and the text model as -m");
  if (rknpu::is_rkllm_file(mmproj_path))
    throw UsageError(mmproj_path +
                     " is a text model (.rkllm): give it as -m and the vision model as --mmproj");
  const bool npu_text = rknpu::is_rkllm_file(model_path);
  const bool any_npu = npu_text || rknpu::is_rknn_file(mmproj_path);
  if (backend == "cpu" && any_npu)
    throw UsageError(
        "--backend cpu runs GGUF files; .rkllm and .rknn files run on the NPU "
        "(--backend rknpu)");
  if (backend == "rknpu" && (!model_path.empty() || !mmproj_path.empty()) && !any_npu)
    throw UsageError(
        "--backend rknpu runs Rockchip's .rkllm (text) and .rknn (vision) files; "
        "GGUF files run on the CPU (--backend cpu)");
  // The text model decides which chat runs; the other file only brings its vision encoder
  // (an .rknn one feeds the CPU's decoder, a GGUF one the NPU's).
  return npu_text;
}

int context_size(const EngineOptions& e, const Model& model) {
  return e.n_ctx > 0 ? e.n_ctx : model.text_config().n_ctx_train;
}

ExecutorOptions executor_options(const EngineOptions& e, const Model& model) {
  ExecutorOptions o;
  o.n_threads = e.n_threads;
  o.n_batch = model.has_text() ? std::min(e.n_batch, context_size(e, model)) : e.n_batch;
  return o;
}

void add_sampling_flags(CLI::App& app, SamplingParams& s) {
  app.add_option_function<std::string>(
         "-s,--seed", [&s](const std::string& v) { s.seed = parse_seed(v); }, "random seed")
      ->type_name("UINT")
      ->default_str(std::to_string(s.seed));
  app.add_option("--temp", s.temperature, "temperature (0: greedy)")->check(CLI::Range(0.0, 100.0));
  app.add_option("--top-k", s.top_k, "top-k (0: off)")->check(CLI::Range(0, 1 << 24));
  app.add_option("--top-p", s.top_p, "top-p (1: off)")->check(CLI::Range(0.0, 1.0));
  app.add_option("--min-p", s.min_p, "min-p (0: off)")->check(CLI::Range(0.0, 1.0));
  app.add_option("--repeat-penalty", s.repeat_penalty, "repetition penalty (1: off)")
      ->check(CLI::Range(0.01, 100.0));
  app.add_option("--presence-penalty", s.presence_penalty, "presence penalty (0: off)")
      ->check(CLI::Range(-100.0, 100.0));
  app.add_option("--frequency-penalty", s.frequency_penalty,
                 "frequency penalty, per earlier occurrence (0: off)")
      ->check(CLI::Range(-100.0, 100.0));
}

// --image-min-tokens / --image-max-tokens: budgets in visual tokens of 32x32 pixels. Both given
// with min > max is an error; one alone may cross the other's default (smart_resize then keeps
// the image within the maximum).
void add_image_flags(CLI::App& app, ImageOptions& o) {
  struct Given {
    int64_t min = 0, max = 0;  // 0: not on the command line
  };
  auto given = std::make_shared<Given>();
  // Callbacks run once each, in either order: whichever runs second sees both values.
  auto check_order = [given] {
    if (given->min > 0 && given->max > 0 && given->min > given->max)
      throw CLI::ValidationError("--image-min-tokens", std::to_string(given->min) +
                                                           " is more than --image-max-tokens " +
                                                           std::to_string(given->max));
  };
  app.add_option_function<int64_t>(
         "--image-min-tokens",
         [&o, given, check_order](int64_t t) {
           o.min_pixels = t * 32 * 32;
           given->min = t;
           check_order();
         },
         "fewest visual tokens per image (default 64)")
      ->check(CLI::Range(int64_t(1), int64_t(1) << 20));
  app.add_option_function<int64_t>(
         "--image-max-tokens",
         [&o, given, check_order](int64_t t) {
           o.max_pixels = t * 32 * 32;
           given->max = t;
           check_order();
         },
         "most visual tokens per image (default 16384; together, the images get at most "
         "what the context leaves)")
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

// --think on|off: Qwen3.5's thinking switch (the chat template's enable_thinking); absent, the
// model's template decides (Qwen3.5-0.8B: off, larger sizes: on). `on` with a model whose
// template has no switch (Qwen3-VL) is refused when the prompt is built.
void add_think_flag(CLI::App& app, Think& think) {
  app.add_option("--think", think, "thinking (Qwen3.5): on or off (default: the model's)")
      ->transform(CLI::CheckedTransformer(
          std::map<std::string, Think>{{"on", Think::kOn}, {"off", Think::kOff}}))
      ->type_name("on|off");
}

std::unique_ptr<VisionEncoder> npu_vision_encoder(const std::string& mmproj_path, const char* how,
                                                  std::string& note) {
  if (!rknpu::is_rknn_file(mmproj_path)) return nullptr;
  const std::shared_ptr<const rknpu::RknnApi> api = rknpu::RknnApi::load();
  auto enc = std::make_unique<rknpu::RknnVisionEncoder>(api, mmproj_path);
  enc->require_pipeline_shapes();
  note = "NPU: RKNN runtime " + api->lib->path() + (enc->sdk_version().empty() ? "" : ": ") +
         enc->sdk_version() + " (" + how + ")";
  return enc;
}

}  // namespace reel::cli
