#include "pipeline/video_encoder.h"

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <deque>
#include <exception>
#include <map>
#include <mutex>
#include <thread>

#include "common/error.h"

namespace reel {
namespace {

using Clock = std::chrono::steady_clock;

double ms_since(Clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
}

// Below this many tokens per frame group (128x128 pixels) a smaller picture says little, so a
// tight budget takes fewer frames instead.
constexpr int64_t kMinGroupTokens = 16;

std::vector<int64_t> sample(const media::VideoInfo& info, const VideoOptions& o) {
  if (o.n_frames > 0) return media::sample_evenly(info.n_frames, o.n_frames);
  return media::sample_reference(info.n_frames, info.fps, o.fps, o.min_frames, o.max_frames);
}

// Sizes every frame of a native plan with the clip-level budget; fills frames, times, grid.
void size_native(VideoPlan& p, const media::VideoBudget& budget, int patch) {
  p.frames = p.indices;
  if (p.frames.size() % 2) p.frames.push_back(p.frames.back());  // as the reference pads
  const int n = static_cast<int>(std::max<size_t>(p.indices.size(), 2));
  const media::Size2 s = media::smart_resize_video(n, p.info.height, p.info.width, budget);
  p.resized_w = s.width;
  p.resized_h = s.height;
  p.grid_h = s.height / patch;
  p.grid_w = s.width / patch;
  p.n_groups = static_cast<int>(p.frames.size() / 2);
  p.group_times.clear();
  const double fps = p.info.fps;
  for (int g = 0; g < p.n_groups; ++g)
    p.group_times.push_back((double(p.frames[2 * g]) / fps + double(p.frames[2 * g + 1]) / fps) / 2);
}

void size_as_images(VideoPlan& p, const ImageOptions& image, int patch, int merge) {
  p.frames = p.indices;
  media::ResizeBudget b;
  b.factor = patch * merge;
  b.min_pixels = image.min_pixels;
  b.max_pixels = image.max_pixels;
  const media::Size2 s = media::smart_resize(p.info.height, p.info.width, b);
  p.resized_w = s.width;
  p.resized_h = s.height;
  p.grid_h = s.height / patch;
  p.grid_w = s.width / patch;
  p.n_groups = static_cast<int>(p.frames.size());
  p.group_times.clear();
  for (int64_t f : p.frames) p.group_times.push_back(double(f) / p.info.fps);
}

void size_plan(VideoPlan& p, const VideoOptions& o, const media::VideoBudget& budget,
               const ImageOptions& image, int patch, int merge) {
  if (p.as_images)
    size_as_images(p, image, patch, merge);
  else
    size_native(p, budget, patch);
}

// Shrinks the frames, then drops frames, until the plan fits `token_budget`.
void fit_budget(VideoPlan& p, const VideoOptions& o, int patch, int merge, int64_t token_budget) {
  const int64_t area = int64_t(patch) * merge * patch * merge;  // pixels per token
  const int64_t before = p.n_tokens();
  const size_t frames_before = p.indices.size();
  for (int round = 0; round < 64 && p.n_tokens() > token_budget; ++round) {
    int64_t per_group = token_budget / std::max(1, p.n_groups);
    if (per_group < kMinGroupTokens) {
      // Too many groups for the budget: keep as many as can have kMinGroupTokens each.
      const int64_t groups = std::max<int64_t>(1, token_budget / kMinGroupTokens);
      const int64_t frames = p.as_images ? groups : 2 * groups;
      p.indices = media::sample_evenly(p.info.n_frames, static_cast<int>(frames));
      per_group = std::max<int64_t>(1, token_budget / groups);
    }
    // Shrink so that a group holds at most per_group tokens, a little less each round in case
    // rounding to the 32-pixel grid overshoots.
    const double shrink = 1.0 - 0.05 * round;
    media::VideoBudget vb = o.budget;
    ImageOptions im = o.image;
    const int64_t slots = p.as_images ? 1 : 2 * int64_t((p.indices.size() + 1) / 2);
    vb.max_pixels = std::max<int64_t>(area, int64_t(per_group * area * slots * shrink));
    vb.min_pixels = std::min(vb.min_pixels, vb.max_pixels);
    im.max_pixels = std::max<int64_t>(area, int64_t(per_group * area * shrink));
    im.min_pixels = std::min(im.min_pixels, im.max_pixels);
    size_plan(p, o, vb, im, patch, merge);
  }
  if (p.n_tokens() > token_budget)
    throw Error(p.path + ": cannot fit the video into " + std::to_string(token_budget) +
                " visual tokens");
  char note[256];
  std::snprintf(note, sizeof note,
                "%zu frames at %dx%d would take %lld visual tokens, over the budget of %lld: "
                "took %zu frames at %dx%d (%d tokens)",
                frames_before, p.info.width, p.info.height, static_cast<long long>(before),
                static_cast<long long>(token_budget), p.indices.size(), p.resized_w, p.resized_h,
                p.n_tokens());
  p.notes.push_back(note);
}

}  // namespace

std::string timestamp_text(double seconds) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "<%.1f seconds>", seconds);
  return buf;
}

VideoPlan plan_video(const std::string& path, const VideoOptions& o, int patch, int merge,
                     int64_t token_budget) {
  if (o.n_frames < 0 || o.n_frames > 100000) throw Error("the frame count must be 1 to 100000");
  if (!(o.fps > 0 && o.fps <= 1000)) throw Error("the sampling fps must be in (0, 1000]");
  media::VideoLimits limits;
  limits.apply_rotation = limits.apply_sar = o.display_corrections;
  VideoPlan p;
  p.path = path;
  p.display_corrections = o.display_corrections;
  p.info = media::probe_video(path, limits);
  if (p.info.n_frames < 1) throw Error(path + ": the video has no frames");
  p.as_images = o.as_images;
  p.indices = sample(p.info, o);
  try {
    size_plan(p, o, o.budget, o.image, patch, merge);
    if (token_budget > 0 && p.n_tokens() > token_budget) fit_budget(p, o, patch, merge, token_budget);
  } catch (const Error& e) {
    const std::string what = e.what();
    throw Error(what.rfind(path, 0) == 0 ? what : path + ": " + what);
  }
  return p;
}

std::string EncodedVideo::prompt_text() const {
  std::string pads;
  const int n = plan.tokens_per_group();
  std::string s;
  if (plan.as_images) {
    for (int g = 0; g < plan.n_groups; ++g) {
      s += "<|vision_start|>";
      for (int i = 0; i < n; ++i) s += "<|image_pad|>";
      s += "<|vision_end|>";
    }
    return s;
  }
  s += "<|vision_start|>";
  for (int g = 0; g < plan.n_groups; ++g) {
    s += timestamp_text(plan.group_times[g]) + "<|vision_start|>";
    for (int i = 0; i < n; ++i) s += "<|video_pad|>";
    s += "<|vision_end|>";
  }
  return s + "<|vision_end|>";
}

std::vector<VisualBlock> EncodedVideo::blocks() const {
  std::vector<VisualBlock> out;
  const int tpg = plan.tokens_per_group();
  for (int g = 0; g < plan.n_groups; ++g) {
    VisualBlock b;
    b.hm = plan.grid_h / 2;
    b.wm = plan.grid_w / 2;
    b.main = main.data() + size_t(g) * tpg * out_dim;
    b.deepstack = deepstack.empty() ? nullptr : deepstack.data() + size_t(g) * tpg * out_dim;
    b.ds_stride = plan.n_tokens();
    out.push_back(b);
  }
  return out;
}

namespace {

// Decoded, resized frames handed from the decoding thread to the encoder, at most a few at a
// time so memory stays bounded on long videos.
class FrameQueue {
 public:
  void push(int64_t index, media::Image&& img) {
    std::unique_lock lock(mu_);
    room_.wait(lock, [&] { return q_.size() < kCapacity || closed_; });
    q_.emplace_back(index, std::move(img));
    ready_.notify_one();
  }
  // False when the producer has finished and nothing is left.
  bool pop(std::pair<int64_t, media::Image>& out) {
    std::unique_lock lock(mu_);
    ready_.wait(lock, [&] { return !q_.empty() || done_; });
    if (q_.empty()) return false;
    out = std::move(q_.front());
    q_.pop_front();
    room_.notify_one();
    return true;
  }
  void finish(std::exception_ptr error) {
    std::lock_guard lock(mu_);
    done_ = true;
    error_ = error;
    ready_.notify_all();
  }
  void close() {  // the consumer gives up: unblock the producer
    std::lock_guard lock(mu_);
    closed_ = true;
    room_.notify_all();
  }
  std::exception_ptr error() {
    std::lock_guard lock(mu_);
    return error_;
  }

 private:
  static constexpr size_t kCapacity = 4;
  std::mutex mu_;
  std::condition_variable ready_, room_;
  std::deque<std::pair<int64_t, media::Image>> q_;
  bool done_ = false, closed_ = false;
  std::exception_ptr error_;
};

}  // namespace

EncodedVideo encode_video(const Qwen3VLVision& vision, const VideoPlan& plan, ops::Context& ctx,
                          const ProgressFn& progress) {
  const VisionConfig& v = vision.config();
  EncodedVideo out;
  out.plan = plan;
  out.out_dim = v.out_dim;
  out.n_deepstack = static_cast<int>(v.deepstack_layers.size());
  const int tpg = plan.tokens_per_group();
  const size_t rows = size_t(plan.n_tokens()) * v.out_dim;
  out.main.resize(rows);
  out.deepstack.resize(rows * out.n_deepstack);
  const auto t_start = Clock::now();

  media::VideoLimits limits;
  limits.apply_rotation = limits.apply_sar = plan.display_corrections;
  auto reader = media::VideoReader::open(plan.path, limits);
  if (reader->info().n_frames != plan.info.n_frames || reader->info().width != plan.info.width)
    throw Error(plan.path + ": the file changed since it was planned");

  FrameQueue queue;
  std::vector<int64_t> unique = plan.indices;
  unique.erase(std::unique(unique.begin(), unique.end()), unique.end());
  double decode_ms = 0;
  std::thread producer([&] {
    std::exception_ptr error;
    try {
      // Decoding and resizing time only: the waits for room in the queue are left out.
      auto t_work = Clock::now();
      reader->read_frames(unique, [&](size_t k, media::Image&& img) {
        media::Image resized = (img.width == plan.resized_w && img.height == plan.resized_h)
                                   ? std::move(img)
                                   : media::resize_bicubic(img, plan.resized_w, plan.resized_h);
        decode_ms += ms_since(t_work);
        queue.push(unique[k], std::move(resized));
        t_work = Clock::now();
      });
      decode_ms += ms_since(t_work);
    } catch (...) {
      error = std::current_exception();
    }
    queue.finish(error);
  });

  std::map<int64_t, media::Image> pending;  // decoded frames not yet encoded
  std::vector<float> pixels;
  int done = 0;
  try {
    const int slots = plan.as_images ? 1 : 2;
    for (int g = 0; g < plan.n_groups; ++g) {
      const int64_t need_last = plan.frames[size_t(g) * slots + slots - 1];
      std::pair<int64_t, media::Image> item;
      while (!pending.count(need_last) && queue.pop(item)) pending.emplace(std::move(item));
      if (!pending.count(need_last)) {
        if (auto e = queue.error()) std::rethrow_exception(e);
        throw Error(plan.path + ": frame " + std::to_string(need_last) + " could not be decoded");
      }
      const media::Image* frames[2];
      for (int s = 0; s < 2; ++s)
        frames[s] = &pending.at(plan.frames[size_t(g) * slots + (slots == 2 ? s : 0)]);
      media::PatchGrid grid;
      media::patchify(frames, v.patch_size, v.temporal_patch, v.spatial_merge, v.image_mean,
                      v.image_std, pixels, grid);
      const auto t0 = Clock::now();
      std::vector<float> ds(size_t(out.n_deepstack) * tpg * v.out_dim);
      vision.encode(pixels.data(), 1, grid.h, grid.w, out.main.data() + size_t(g) * tpg * v.out_dim,
                    ds.data(), ctx);
      for (int l = 0; l < out.n_deepstack; ++l)
        std::copy_n(ds.data() + size_t(l) * tpg * v.out_dim, size_t(tpg) * v.out_dim,
                    out.deepstack.data() + (size_t(l) * plan.n_tokens() + size_t(g) * tpg) * v.out_dim);
      out.encode_ms += ms_since(t0);
      // Frames no later group needs are released.
      const int64_t next_first =
          g + 1 < plan.n_groups ? plan.frames[size_t(g + 1) * slots] : INT64_MAX;
      for (auto it = pending.begin(); it != pending.end() && it->first < next_first;)
        it = pending.erase(it);
      if (progress) progress(++done, plan.n_groups);
    }
  } catch (...) {
    queue.close();
    producer.join();
    throw;
  }
  queue.close();
  producer.join();
  if (auto e = queue.error()) std::rethrow_exception(e);
  out.decode_ms = decode_ms;
  out.wall_ms = ms_since(t_start);
  return out;
}

}  // namespace reel
