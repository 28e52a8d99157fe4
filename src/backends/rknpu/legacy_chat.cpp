#include "backends/rknpu/legacy_chat.h"

#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <functional>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <string_view>
#include <thread>

#include "backends/rknpu/rkllm_text.h"
#include "backends/rknpu/rknn_vision.h"
#include "common/error.h"
#include "media/image.h"
#include "media/sampling.h"
#include "media/video.h"
#include "ops/ops.h"
#include "pipeline/chat_line.h"

namespace reel::rknpu {
namespace {

using Clock = std::chrono::steady_clock;

double ms_since(Clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
}

double peak_rss_mib() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return u.ru_maxrss / 1024.0;  // Linux reports KiB
}

// Loads with `make` twice, the first copy released before the second (two copies of a model may
// not fit in the NPU's memory): the first load is cold, the second finds the file in the page
// cache. Keeps the second.
template <typename T, typename Make>
std::unique_ptr<T> load_cold_warm(Make make, double& cold_ms, double& warm_ms) {
  auto t0 = Clock::now();
  std::unique_ptr<T> m = make();
  cold_ms = ms_since(t0);
  m.reset();
  t0 = Clock::now();
  m = make();
  warm_ms = ms_since(t0);
  return m;
}

struct VisionResult {
  std::vector<float> embed;
  int n_images = 0, n_frames = 0;
  double decode_ms = 0, encode_ms = 0;
};

// What the chat needs of a vision encoder: one input size, and per image n_tokens rows of
// token_floats floats appended in the .rknn layout.
struct FrameEncoder {
  int width = 0, height = 0, n_tokens = 0, token_floats = 0;
  std::function<void(const media::Image&, std::vector<float>&)> encode;
};

FrameEncoder rknn_frames(const RknnVisionEncoder& enc) {
  return {enc.input_width(), enc.input_height(), enc.n_tokens(), enc.token_floats(),
          [&enc](const media::Image& img, std::vector<float>& out) { enc.encode(img, out); }};
}

// The size of the first frame or image, as the CPU pipeline sizes an image by default.
media::Size2 first_medium_size(const LegacyChatArgs& a, const VisionGeometry& v) {
  if (v.fixed_size()) return media::Size2{v.fixed_height, v.fixed_width};
  int w = 0, h = 0;
  if (!a.video_path.empty()) {
    const media::VideoInfo info = media::VideoReader::open(a.video_path)->info();
    w = info.width;
    h = info.height;
  } else if (!a.image_paths.empty()) {
    const media::Image img = media::load_image(a.image_paths.front());
    w = img.width;
    h = img.height;
  }
  media::ResizeBudget budget;
  budget.factor = v.factor();
  return media::smart_resize(h, w, budget);
}

// A VisionEncoder's main and DeepStack rows interleaved per token, as an .rknn file gives them.
FrameEncoder interleaved_frames(const VisionEncoder& enc, media::Size2 size, ops::Context& ctx) {
  const VisionGeometry& v = enc.geometry();
  FrameEncoder f;
  f.width = size.width;
  f.height = size.height;
  f.n_tokens = (size.width / v.factor()) * (size.height / v.factor());
  f.token_floats = v.out_dim * (1 + v.n_deepstack);
  // One scratch for every frame (FrameEncoder::encode is a copyable std::function).
  f.encode = [&enc, &ctx, tokens = size_t(f.n_tokens),
              scratch = std::shared_ptr<VisionScratch>(enc.new_scratch())](
                 const media::Image& img, std::vector<float>& out) {
    const VisionGeometry& g = enc.geometry();
    const size_t dim = size_t(g.out_dim), n_ds = size_t(g.n_deepstack);
    std::vector<float> main(tokens * dim), ds(tokens * dim * n_ds);
    // A still image fills every time slot of its group.
    std::vector<const media::Image*> frames(size_t(g.temporal_patch), &img);
    enc.encode_group(frames, main.data(), ds.data(), *scratch, ctx);
    for (size_t t = 0; t < tokens; ++t) {
      out.insert(out.end(), main.begin() + std::ptrdiff_t(t * dim),
                 main.begin() + std::ptrdiff_t((t + 1) * dim));
      for (size_t l = 0; l < n_ds; ++l) {
        const auto row = ds.begin() + std::ptrdiff_t((l * tokens + t) * dim);
        out.insert(out.end(), row, row + std::ptrdiff_t(dim));
      }
    }
  };
  return f;
}

// The frames (sampled as the CPU path samples the original app's FRAMES: evenly over the
// video's frames) or the images, each resized to the encoder's input size and encoded.
VisionResult encode_media(const LegacyChatArgs& a, const FrameEncoder& enc) {
  VisionResult r;
  auto encode_one = [&](const media::Image& img) {
    const media::Image sized = img.width == enc.width && img.height == enc.height
                                   ? img
                                   : media::resize_bicubic(img, enc.width, enc.height);
    const auto t0 = Clock::now();
    enc.encode(sized, r.embed);
    r.encode_ms += ms_since(t0);
  };
  const auto t0 = Clock::now();
  if (!a.video_path.empty()) {
    auto reader = media::VideoReader::open(a.video_path);
    const std::vector<int64_t> idx = media::sample_video_evenly(reader->info(), a.n_frames);
    if (idx.empty()) throw Error(a.video_path + ": the video has no frames");
    reader->read_frames(idx, [&](size_t, media::Image&& img) { encode_one(img); });
    r.n_frames = int(idx.size());
  } else {
    for (const std::string& p : a.image_paths) encode_one(media::load_image(p));
    r.n_images = int(a.image_paths.size());
  }
  r.decode_ms = ms_since(t0) - r.encode_ms;
  return r;
}

void write_out(std::string_view s) {
  if (std::fwrite(s.data(), 1, s.size(), stdout) != s.size() || std::fflush(stdout) != 0)
    throw IoError("cannot write to standard output");
}

// The runtime writes an image where the prompt says `<image>`: the first marker the user wrote
// becomes one per encoded image (frame), in order; later ones are dropped (the embeddings
// go in once per question).
std::string expand_image_marker(const std::string& line, size_t n_images) {
  static constexpr std::string_view kMarker = "<image>";
  std::string out;
  size_t pos = 0;
  bool first = true;
  for (size_t at; (at = line.find(kMarker, pos)) != std::string::npos; pos = at + kMarker.size()) {
    out.append(line, pos, at - pos);
    if (first)
      for (size_t i = 0; i < n_images; ++i) out += kMarker;
    first = false;
  }
  out.append(line, pos, std::string::npos);
  return out;
}

double per_second(int n, double ms) {
  return ms > 0 ? n * 1000.0 / ms : 0;
}

// One answer's numbers on standard error: the original app's line, or one JSON line with the
// CPU path's names for what the NPU runtime measures too.
void print_turn_stats(const LegacyChatArgs& a, const VisionResult& media, int tokens_per_image,
                      const RkllmPerf& p) {
  if (a.stats == "json") {
    nlohmann::ordered_json j;
    const int n = media.n_images + media.n_frames;
    j["images"] = media.n_images;
    j["frames"] = media.n_frames;
    j["visual_tokens"] = n * tokens_per_image;
    j["media_decode_ms"] = media.decode_ms;
    j["vision_encode_ms"] = media.encode_ms;
    j["vision_ms_per_frame"] = n > 0 ? media.encode_ms / n : 0.0;
    j["prompt_tokens"] = p.prefill_tokens;
    j["prefill_ms"] = p.prefill_ms;
    j["prefill_tps"] = per_second(p.prefill_tokens, p.prefill_ms);
    j["generated_tokens"] = p.generate_tokens;
    j["decode_ms"] = p.generate_ms;
    j["decode_tps"] = per_second(p.generate_tokens, p.generate_ms);
    j["npu_memory_mib"] = p.memory_mb;
    j["peak_rss_mib"] = peak_rss_mib();
    std::fprintf(stderr, "%s\n", j.dump().c_str());
    return;
  }
  std::fprintf(stderr,
               "[prompt %d tokens, %.1f tok/s | generated %d tokens, %.1f tok/s | NPU runtime "
               "memory %.0f MiB | peak RAM %.0f MiB]\n",
               p.prefill_tokens, per_second(p.prefill_tokens, p.prefill_ms), p.generate_tokens,
               per_second(p.generate_tokens, p.generate_ms), p.memory_mb, peak_rss_mib());
}

bool read_stdin_line(std::string& line) {
  return bool(std::getline(std::cin, line));
}

// Tells the caller's Ctrl-C handler that an answer runs, for as long as this lives.
class BusyScope {
 public:
  explicit BusyScope(const std::function<void(bool)>& on_busy) : on_busy_(on_busy) {
    if (on_busy_) on_busy_(true);
  }
  ~BusyScope() {
    if (on_busy_) on_busy_(false);
  }
  BusyScope(const BusyScope&) = delete;
  BusyScope& operator=(const BusyScope&) = delete;

 private:
  const std::function<void(bool)>& on_busy_;
};

}  // namespace

int run_legacy_chat(const LegacyChatArgs& a) {
  // The runtimes first: without them nothing below can run, and the error says what to install.
  const std::shared_ptr<const RknnApi> rknn = a.vision ? nullptr : RknnApi::load();
  const std::shared_ptr<const RkllmApi> rkllm = RkllmApi::load();
  require_runtime_runs(*rkllm, a.text_path);  // before any model loads, as the only line
  std::fprintf(stderr, "reel: NPU: %s\n", rkllm->describe().c_str());

  double v_cold = a.vision_load_ms, v_warm = a.vision_load_ms, t_cold = 0, t_warm = 0;
  std::unique_ptr<RknnVisionEncoder> rknn_vision;
  if (!a.vision) {
    rknn_vision = load_cold_warm<RknnVisionEncoder>(
        [&] { return std::make_unique<RknnVisionEncoder>(rknn, a.vision_path); }, v_cold, v_warm);
    std::fprintf(stderr, "reel: NPU: RKNN runtime %s%s%s\n", rknn->lib->path().c_str(),
                 rknn_vision->sdk_version().empty() ? "" : ": ",
                 rknn_vision->sdk_version().c_str());
  }
  RkllmOptions text_options;
  text_options.enable_thinking = a.enable_thinking;
  auto text = load_cold_warm<RkllmTextModel>(
      [&] { return std::make_unique<RkllmTextModel>(rkllm, a.text_path, text_options); }, t_cold,
      t_warm);
  ops::Context ctx(a.n_threads > 0 ? a.n_threads
                                   : int(std::max(1u, std::thread::hardware_concurrency())));
  const FrameEncoder vision =
      a.vision ? interleaved_frames(*a.vision, first_medium_size(a, a.vision->geometry()), ctx)
               : rknn_frames(*rknn_vision);
  const bool one_shot = !a.prompt.empty();
  // The original app's tables: always in the chat, on request in one-shot mode (as the CPU
  // path prints its own).
  const bool tables = !one_shot || a.legacy || a.verbose;
  const bool turn_stats = tables || a.stats == "text" || a.stats == "json";
  if (tables)
    std::fprintf(stderr,
                 "reel: %-8s %-50s cold %7.0f ms  warm %7.0f ms\n"
                 "reel: %-8s %-50s cold %7.0f ms  warm %7.0f ms\n"
                 "reel: peak RAM %.0f MiB, %s (vision input %dx%d, %d tokens per image)\n",
                 "vision", a.vision_path.c_str(), v_cold, v_warm, "text", a.text_path.c_str(),
                 t_cold, t_warm, peak_rss_mib(), a.vision ? "NPU text, CPU vision" : "NPU",
                 vision.width, vision.height, vision.n_tokens);

  const VisionResult media = encode_media(a, vision);
  const int n = media.n_images + media.n_frames;
  if (tables || a.stats == "text")
    std::fprintf(stderr,
                 "[%d image(s), %d frame(s), %d visual tokens | decode %.0f ms | vision encode "
                 "%.0f ms (%.0f ms/frame)]\n",
                 media.n_images, media.n_frames, n * vision.n_tokens, media.decode_ms,
                 media.encode_ms, n > 0 ? media.encode_ms / n : 0.0);
  RkllmImages images;
  images.embed = media.embed.data();
  images.n_images = size_t(n);
  images.n_tokens = size_t(vision.n_tokens);
  images.width = size_t(vision.width);
  images.height = size_t(vision.height);

  // One question: its answer streamed, then its stats. Throws what the runtime threw.
  auto ask = [&](const ChatLine& q, bool keep_history) {
    const bool with_images = q.image_markers > 0;
    RkllmPerf perf;
    {
      BusyScope busy(a.on_busy);
      perf = text->generate(with_images ? expand_image_marker(q.text, images.n_images) : q.text,
                            with_images ? &images : nullptr, keep_history, write_out, a.cancel);
    }
    write_out("\n");
    if (turn_stats) print_turn_stats(a, media, vision.n_tokens, perf);
  };

  if (one_shot) {
    // The media come with the question, first unless it says where.
    // The prompt is the question whatever it says: no chat commands here.
    ChatLine q;
    q.kind = ChatLineKind::kQuestion;
    q.text = a.prompt.find("<image>") == std::string::npos ? "<image>" + a.prompt : a.prompt;
    q.image_markers = 1;  // at least; expand_image_marker places them all at the first
    ask(q, /*keep_history=*/false);
    return 0;
  }

  if (isatty(STDIN_FILENO))
    std::fprintf(stderr,
                 "reel: chat with the model. Write <image> where the %s go; <clear> forgets the "
                 "dialogue, <exit> or Ctrl-D quits.\n",
                 media.n_frames > 0 ? "frames" : "images");
  const std::function<bool(std::string&)> read_line =
      a.read_line ? a.read_line : std::function<bool(std::string&)>(read_stdin_line);
  ChatTally tally;
  for (std::string line; read_line(line);) {
    const ChatLine cmd = classify_chat_line(line);
    if (cmd.kind == ChatLineKind::kBlank) continue;
    if (cmd.kind == ChatLineKind::kExit) break;
    if (cmd.kind == ChatLineKind::kClear) {
      text->clear_history();
      std::fprintf(stderr, "reel: dialogue cleared\n");
      continue;
    }
    if (cmd.kind == ChatLineKind::kMisplacedCommand) {
      std::fprintf(stderr, "reel: %s\n", std::string(kMisplacedCommandNote).c_str());
      continue;
    }
    tally.asked();
    try {
      ask(cmd, /*keep_history=*/true);
      tally.answered();
    } catch (const IoError&) {
      throw;  // standard output is gone: nothing more can be answered
    } catch (const Cancelled&) {
      // What the runtime keeps of a stopped answer in its KV cache is its own affair.
      std::fprintf(stderr, "\nreel: stopped; <clear> forgets the dialogue\n");
    } catch (const Error& e) {
      std::fprintf(stderr, "\nreel: %s\n", e.what());
    }
  }
  return tally.exit_code();
}

}  // namespace reel::rknpu
