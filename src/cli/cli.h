// Shared pieces of the `reel` frontend: argument structs, flag groups and the commands.
#pragma once

#include <CLI/CLI.hpp>
#include <memory>
#include <string>
#include <vector>

#include "pipeline/bench.h"
#include "pipeline/conversation.h"
#include "pipeline/executor.h"
#include "pipeline/model.h"

namespace reel::cli {

// The engine flags: which files, how many threads, how large a context and batch.
struct EngineOptions {
  std::string model_path;
  std::string mmproj_path;  // vision encoder (optional)
  int n_threads = 0;        // 0: all cores
  int n_ctx = 4096;         // 0: the model's training context
  int n_batch = 256;        // tokens per forward pass
  KvType kv_type = KvType::F16;
  std::string backend = "auto";  // --backend cpu | rknpu | auto (by the files' types)
  bool hugepages = false;        // --hugepages: read the GGUF files into huge pages, not mapped
  // --vision-precision: f32 (Exact, the default) or int16 (the GGUF vision encoder's F16
  // matmuls in int16 where the CPU has AVX-512 VNNI).
  ops::FloatMatmul vision_matmul = ops::FloatMatmul::Exact;
  gguf::LoadMode load_mode() const {
    return hugepages ? gguf::LoadMode::kAuto : gguf::LoadMode::kMap;
  }
};
// Whether the chat runs on the RK3588 NPU: the text model (-m) is an .rkllm file; the vision file
// only brings its encoder (an .rknn one feeds the CPU's decoder, a GGUF one the NPU's). Throws
// UsageError when --backend disagrees with the files or a file is in the wrong place.
bool runs_on_npu(const std::string& backend, const std::string& model_path,
                 const std::string& mmproj_path);
// The vision encoder of an .rknn file on the NPU, for the CPU's text decoder, and the line that
// says so in `note` ("NPU: RKNN runtime PATH: VERSION (HOW)"), to print once the pair has been
// checked; null for a vision GGUF (the model reads that itself).
std::unique_ptr<VisionEncoder> npu_vision_encoder(const std::string& mmproj_path, const char* how,
                                                  std::string& note);
// Throws UsageError naming the command when either file is the NPU's.
void require_cpu(const char* command, const EngineOptions& e);
// The context these options give with this model (0 means the model's own).
int context_size(const EngineOptions& e, const Model& model);
ExecutorOptions executor_options(const EngineOptions& e, const Model& model);

struct ChatArgs {
  EngineOptions engine;
  SamplingParams sampling;
  std::vector<std::string> images;
  std::string video;
  ImageOptions image;
  VideoOptions video_opts;
  std::string prompt, prompt_file, system, stats;
  std::string media_cache_dir;        // encoded media kept on disk across runs (empty: none)
  int64_t media_cache_max_mb = 4096;  // the folder's bound (0: none)
  int n_predict = -1;
  bool verbose = false;
  bool legacy = false;            // started with the original app's positional command line
  Think think = Think::kDefault;  // --think on|off (Qwen3.5)
};

void add_engine_flags(CLI::App& app, EngineOptions& e, bool model_required = true);
// --vision-precision (f32 | int16), part of the engine flags; also `reel encode`'s.
void add_vision_precision_flag(CLI::App& app, ops::FloatMatmul& m);
void add_sampling_flags(CLI::App& app, SamplingParams& s);
void add_think_flag(CLI::App& app, Think& think);
void add_image_flags(CLI::App& app, ImageOptions& o);
void add_video_flags(CLI::App& app, VideoOptions& o);

std::string read_file(const std::string& path);
// --media-cache keeps encoded media, so it needs a vision model (a UsageError without --mmproj);
// the folder is created or checked now, before a model loads or a server listens.
void check_media_cache_flag(const std::string& dir, const std::string& mmproj_path);
// -t: at most 4 threads per core; more is clamped with a warning naming the value used.
int usable_threads(int requested);

int run_chat(ChatArgs& a);
int run_tokenize(const std::string& model, const std::string& file);
int run_logits(EngineOptions opts, const std::string& file, const std::string& out_path);
int run_encode(const std::string& mmproj, const std::vector<std::string>& paths,
               const std::string& out_path, int n_threads, ops::FloatMatmul matmul,
               const ImageOptions& opts);
int run_bench(const EngineOptions& opts, const BenchOptions& b,
              const std::vector<std::string>& image_sizes, const ImageOptions& image, bool json);
int run_frames(const std::string& path, const VideoOptions& opts, int64_t max_tokens, int n_ctx);

// The original app's command line, `reel VISION_MODEL TEXT_MODEL VIDEO [FRAMES]` or
// `reel VISION_MODEL TEXT_MODEL IMG1 IMG2 ...`, rewritten into Reel's flags (any flags after
// the positional arguments are kept). Returns false when argv is not in that form.
bool rewrite_legacy(const std::vector<std::string>& argv, std::vector<std::string>& out);

}  // namespace reel::cli
