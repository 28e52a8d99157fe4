#include "backends/rknpu/legacy_chat.h"

#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <functional>
#include <iostream>
#include <memory>
#include <string_view>
#include <thread>

#include "backends/rknpu/rkllm_text.h"
#include "backends/rknpu/rknn_vision.h"
#include "common/error.h"
#include "media/image.h"
#include "media/sampling.h"
#include "media/video.h"
#include "ops/ops.h"

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
  f.encode = [&enc, &ctx, tokens = size_t(f.n_tokens)](const media::Image& img,
                                                       std::vector<float>& out) {
    const VisionGeometry& g = enc.geometry();
    const size_t dim = size_t(g.out_dim), n_ds = size_t(g.n_deepstack);
    std::vector<float> main(tokens * dim), ds(tokens * dim * n_ds);
    // A still image fills every time slot of its group.
    std::vector<const media::Image*> frames(size_t(g.temporal_patch), &img);
    enc.encode_group(frames, main.data(), ds.data(), ctx);
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

std::string trim(const std::string& s) {
  const size_t b = s.find_first_not_of(" \t\r\n");
  if (b == std::string::npos) return "";
  return s.substr(b, s.find_last_not_of(" \t\r\n") - b + 1);
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

void print_turn_stats(const RkllmPerf& p) {
  const double prefill_tps = p.prefill_ms > 0 ? p.prefill_tokens * 1000.0 / p.prefill_ms : 0;
  const double gen_tps = p.generate_ms > 0 ? p.generate_tokens * 1000.0 / p.generate_ms : 0;
  std::fprintf(stderr,
               "[prompt %d tokens, %.1f tok/s | generated %d tokens, %.1f tok/s | NPU runtime "
               "memory %.0f MiB | peak RAM %.0f MiB]\n",
               p.prefill_tokens, prefill_tps, p.generate_tokens, gen_tps, p.memory_mb,
               peak_rss_mib());
}

}  // namespace

int run_legacy_chat(const LegacyChatArgs& a) {
  // The runtimes first: without them nothing below can run, and the error says what to install.
  const std::shared_ptr<const RknnApi> rknn = a.vision ? nullptr : RknnApi::load();
  const std::shared_ptr<const RkllmApi> rkllm = RkllmApi::load();
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
  auto text = load_cold_warm<RkllmTextModel>(
      [&] { return std::make_unique<RkllmTextModel>(rkllm, a.text_path); }, t_cold, t_warm);
  ops::Context ctx(a.n_threads > 0 ? a.n_threads
                                   : int(std::max(1u, std::thread::hardware_concurrency())));
  const FrameEncoder vision =
      a.vision ? interleaved_frames(*a.vision, first_medium_size(a, a.vision->geometry()), ctx)
               : rknn_frames(*rknn_vision);
  std::fprintf(stderr,
               "reel: %-8s %-50s cold %7.0f ms  warm %7.0f ms\n"
               "reel: %-8s %-50s cold %7.0f ms  warm %7.0f ms\n"
               "reel: peak RAM %.0f MiB, %s (vision input %dx%d, %d tokens per image)\n",
               "vision", a.vision_path.c_str(), v_cold, v_warm, "text", a.text_path.c_str(), t_cold,
               t_warm, peak_rss_mib(), a.vision ? "NPU text, CPU vision" : "NPU", vision.width,
               vision.height, vision.n_tokens);

  const VisionResult media = encode_media(a, vision);
  const int n = media.n_images + media.n_frames;
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

  if (isatty(STDIN_FILENO))
    std::fprintf(stderr,
                 "reel: chat with the model. Write <image> where the %s go; <clear> forgets the "
                 "dialogue, <exit> or Ctrl-D quits.\n",
                 media.n_frames > 0 ? "frames" : "images");
  int asked = 0, answered = 0;
  for (std::string line; std::getline(std::cin, line);) {
    const std::string cmd = trim(line);
    if (cmd.empty()) continue;
    if (cmd == "<exit>") break;
    if (cmd == "<clear>") {
      text->clear_history();
      std::fprintf(stderr, "reel: dialogue cleared\n");
      continue;
    }
    if (cmd.find("<exit>") != std::string::npos || cmd.find("<clear>") != std::string::npos) {
      std::fprintf(stderr, "reel: write <clear> or <exit> on a line of its own\n");
      continue;
    }
    ++asked;
    const bool with_images = cmd.find("<image>") != std::string::npos;
    try {
      const RkllmPerf perf =
          text->generate(with_images ? expand_image_marker(cmd, images.n_images) : cmd,
                         with_images ? &images : nullptr, /*keep_history=*/true, write_out);
      write_out("\n");
      print_turn_stats(perf);
      ++answered;
    } catch (const IoError&) {
      throw;  // standard output is gone: nothing more can be answered
    } catch (const Error& e) {
      std::fprintf(stderr, "\nreel: %s\n", e.what());
    }
  }
  return asked > 0 && answered == 0 ? 1 : 0;
}

}  // namespace reel::rknpu
