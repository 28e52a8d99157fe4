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

#include "common/clock.h"
#include "common/error.h"

namespace reel {
namespace {

// Below this many tokens per frame group (128x128 pixels) a smaller picture says little, so a
// tight budget takes fewer frames instead.
constexpr int64_t kMinGroupTokens = 16;

// transformers' sampling on a constant frame rate; evenly in time on a variable one.
std::vector<int64_t> sample(const media::VideoInfo& info, const VideoOptions& o) {
  if (o.n_frames > 0) return media::sample_video_evenly(info, o.n_frames);
  return media::sample_video(info, o.fps, o.min_frames, o.max_frames);
}

// A temporal group's time: the mean of its two frames' times. Constant frame rate: exactly
// transformers' float64 (a / fps + b / fps) / 2, whose rounding decides the "%.1f" text;
// variable frame rate: the mean of the two frames' presentation times.
double group_time(const media::VideoInfo& info, int64_t a, int64_t b) {
  return (info.frame_time_s(a) + info.frame_time_s(b)) / 2;
}

// Sizes every frame of a native plan with the clip-level budget; fills frames, times, grid.
void size_native(VideoPlan& p, const media::VideoBudget& budget, int patch) {
  p.frames = p.indices;
  if (p.frames.size() % 2) p.frames.push_back(p.frames.back());  // as the reference pads
  const int n = static_cast<int>(std::max<size_t>(p.indices.size(), 2));
  const media::Size2 s = p.fixed.width > 0
                             ? p.fixed
                             : media::smart_resize_video(n, p.info.height, p.info.width, budget);
  p.resized_w = s.width;
  p.resized_h = s.height;
  p.grid_h = s.height / patch;
  p.grid_w = s.width / patch;
  p.n_groups = static_cast<int>(p.frames.size() / 2);
  p.group_times.clear();
  for (int g = 0; g < p.n_groups; ++g)
    p.group_times.push_back(group_time(p.info, p.frames[2 * g], p.frames[2 * g + 1]));
}

void size_as_images(VideoPlan& p, const ImageOptions& image, int patch, int merge) {
  p.frames = p.indices;
  media::ResizeBudget b;
  b.factor = patch * merge;
  b.min_pixels = image.min_pixels;
  b.max_pixels = image.max_pixels;
  const media::Size2 s =
      p.fixed.width > 0 ? p.fixed : media::smart_resize(p.info.height, p.info.width, b);
  p.resized_w = s.width;
  p.resized_h = s.height;
  p.grid_h = s.height / patch;
  p.grid_w = s.width / patch;
  p.n_groups = static_cast<int>(p.frames.size());
  p.group_times.clear();
  for (int64_t f : p.frames) p.group_times.push_back(p.info.frame_time_s(f));
}

void size_plan(VideoPlan& p, const media::VideoBudget& budget, const ImageOptions& image, int patch,
               int merge) {
  p.merge = merge;
  if (p.as_images)
    size_as_images(p, image, patch, merge);
  else
    size_native(p, budget, patch);
}

// What a plan costs in prompt tokens: its visual tokens plus `per_group_extra` for each group
// (timestamp text and markers).
int64_t plan_cost(const VideoPlan& p, int per_group_extra) {
  return p.n_tokens() + int64_t(p.n_groups) * per_group_extra;
}

// Shrinks the frames, then drops frames, until the plan's cost fits `token_budget`.
void fit_budget(VideoPlan& p, const VideoOptions& o, int patch, int merge, int64_t token_budget,
                int per_group_extra) {
  const int64_t area = int64_t(patch) * merge * patch * merge;  // pixels per token
  const int64_t before = plan_cost(p, per_group_extra);
  const size_t frames_before = p.indices.size();
  const int before_w = p.resized_w, before_h = p.resized_h;
  // Frames that are small already keep their size when fewer are taken.
  const int64_t floor_tokens = std::min<int64_t>(kMinGroupTokens, p.tokens_per_group());
  const int64_t smallest_group = floor_tokens + per_group_extra;
  if (token_budget < 1 + per_group_extra)
    throw ContextFull("the video needs at least " + std::to_string(1 + per_group_extra) +
                      " tokens but only " + std::to_string(std::max<int64_t>(0, token_budget)) +
                      " are left for it");
  if (p.fixed.width > 0 && plan_cost(p, per_group_extra) > token_budget) {
    // Frames of a fixed size cannot shrink: take as many as fit.
    const int64_t groups = token_budget / (p.tokens_per_group() + per_group_extra);
    if (groups < 1)
      throw ContextFull("one frame of the video needs " +
                        std::to_string(p.tokens_per_group() + per_group_extra) +
                        " tokens but only " + std::to_string(token_budget) + " are left for it");
    p.indices = media::sample_video_evenly(p.info, int(p.as_images ? groups : 2 * groups));
    size_plan(p, o.budget, o.image, patch, merge);
  }
  for (int round = 0; round < 64 && plan_cost(p, per_group_extra) > token_budget; ++round) {
    int64_t per_group = token_budget / std::max(1, p.n_groups) - per_group_extra;
    if (per_group < floor_tokens) {
      // Too many groups for the budget: keep as many as can have floor_tokens each.
      const int64_t groups = std::max<int64_t>(1, token_budget / smallest_group);
      const int64_t frames = p.as_images ? groups : 2 * groups;
      p.indices = media::sample_video_evenly(p.info, static_cast<int>(frames));
      per_group = std::max<int64_t>(1, token_budget / groups - per_group_extra);
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
    size_plan(p, vb, im, patch, merge);
  }
  if (plan_cost(p, per_group_extra) > token_budget)
    throw ContextFull("the video cannot be fitted into the " + std::to_string(token_budget) +
                      " tokens left for it (its smallest plan takes " +
                      std::to_string(plan_cost(p, per_group_extra)) + ")");
  char note[320];
  std::snprintf(note, sizeof note,
                "%zu frames at %dx%d would take about %lld prompt tokens, over the %lld left for "
                "the video: took %zu frames at %dx%d (%d visual tokens)",
                frames_before, before_w, before_h, static_cast<long long>(before),
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
                     int64_t token_budget, int per_group_extra) {
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
  if (o.fixed_width > 0 && o.fixed_height > 0)
    p.fixed = media::Size2{o.fixed_height, o.fixed_width};
  p.indices = sample(p.info, o);
  try {
    size_plan(p, o.budget, o.image, patch, merge);
    if (token_budget > 0 && plan_cost(p, per_group_extra) > token_budget)
      fit_budget(p, o, patch, merge, token_budget, per_group_extra);
  } catch (const Error& e) {
    // Named by the file, of the same kind (a full context stays ContextFull).
    const std::string what = e.what();
    throw_error(e.kind(), what.rfind(path, 0) == 0 ? what : path + ": " + what);
  }
  return p;
}

VideoOptions video_options_for(const VisionEncoder& vision, VideoOptions o) {
  const VisionGeometry& v = vision.geometry();
  if (v.temporal_patch == 1) o.as_images = true;
  if (v.fixed_size()) {
    o.fixed_width = v.fixed_width;
    o.fixed_height = v.fixed_height;
  }
  return o;
}

std::string video_prompt_text(const VideoPlan& plan) {
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

int timestamp_tokens(double seconds) {
  // "<", each digit of the whole part, ".", the tenths digit, " seconds", ">": the Qwen
  // pre-tokenizer splits digits one by one (checked against the tokenizer in the tests).
  const std::string t = timestamp_text(seconds);
  const size_t dot = t.find('.');
  return static_cast<int>(dot - 1) + 5;
}

int64_t video_prompt_tokens(const VideoPlan& plan) {
  if (plan.as_images) return int64_t(plan.n_groups) * (plan.tokens_per_group() + 2);
  int64_t n = 2;
  for (int g = 0; g < plan.n_groups; ++g)
    n += timestamp_tokens(plan.group_times[g]) + 2 + plan.tokens_per_group();
  return n;
}

std::string EncodedVideo::prompt_text() const {
  return video_prompt_text(plan);
}

// The per-group cost of the timestamp text is not known until the plan is: plan with the
// shortest timestamps, count exactly, and plan again with the excess taken off. The same loop
// applies the visual-token cap of the options (max_tokens).
VideoPlan plan_video_prompt(const std::string& path, const VideoOptions& o, int patch, int merge,
                            int64_t prompt_budget) {
  const int64_t cap = o.max_tokens;
  if (prompt_budget <= 0 && cap <= 0) return plan_video(path, o, patch, merge, 0);
  const int per_group_extra = o.as_images ? 2 : 2 + timestamp_tokens(0);
  const int outer = o.as_images ? 0 : 2;  // the marker's own vision_start / vision_end
  auto excess = [&](const VideoPlan& p) {
    const int64_t over_prompt = prompt_budget > 0 ? video_prompt_tokens(p) - prompt_budget : 0;
    const int64_t over_cap = cap > 0 ? p.n_tokens() - cap : 0;
    return std::max(over_prompt, over_cap);
  };
  int extra = per_group_extra;
  VideoPlan p =
      plan_video(path, o, patch, merge,
                 prompt_budget > 0 ? std::max<int64_t>(1, prompt_budget - outer) : 0, extra);
  int64_t target = video_prompt_tokens(p);
  for (int attempt = 0; attempt < 8 && excess(p) > 0; ++attempt) {
    // The timestamps' real length (longer for later seconds), rounded up, for the next plan.
    const int64_t text = video_prompt_tokens(p) - outer - p.n_tokens();
    extra =
        std::max<int>(extra, static_cast<int>((text + p.n_groups - 1) / std::max(1, p.n_groups)));
    target = std::min(target, video_prompt_tokens(p)) - excess(p);
    if (target <= outer) break;
    p = plan_video(path, o, patch, merge, target - outer, extra);
  }
  if (excess(p) > 0)
    throw ContextFull(path + ": the video cannot be fitted into the " +
                      std::to_string(prompt_budget) + " prompt tokens left for it");
  if (!p.notes.empty())
    p.notes.back() += ", " + std::to_string(video_prompt_tokens(p)) +
                      " prompt tokens with its timestamps and markers";
  return p;
}

std::vector<VisualBlock> EncodedVideo::blocks() const {
  std::vector<VisualBlock> out;
  const int tpg = plan.tokens_per_group();
  for (int g = 0; g < plan.n_groups; ++g) {
    VisualBlock b;
    b.hm = plan.grid_h / plan.merge;
    b.wm = plan.grid_w / plan.merge;
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
  // False when the consumer has given up: the producer stops decoding.
  bool push(int64_t index, media::Image&& img) {
    std::unique_lock lock(mu_);
    room_.wait(lock, [&] { return q_.size() < kCapacity || closed_; });
    if (closed_) return false;
    q_.emplace_back(index, std::move(img));
    ready_.notify_one();
    return true;
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

EncodedGroup encode_video_group(const VisionEncoder& vision, const media::Image& first,
                                const media::Image& second, ops::Context& ctx) {
  const media::Image* frames[2] = {&first, &second};
  return encode_video_group(vision, frames, ctx);
}

EncodedGroup encode_video_group(const VisionEncoder& vision,
                                std::span<const media::Image* const> frames, ops::Context& ctx,
                                VisionScratch* scratch) {
  const VisionGeometry& v = vision.geometry();
  const int factor = v.factor();
  if (frames.size() != size_t(v.temporal_patch))
    throw InternalError("this vision encoder takes " + std::to_string(v.temporal_patch) +
                        " frames per group, not " + std::to_string(frames.size()));
  const media::Image& first = *frames[0];
  for (const media::Image* f : frames)
    if (f->width != first.width || f->height != first.height || first.width <= 0 ||
        first.height <= 0 || first.width % factor || first.height % factor)
      throw Error("the frames of a temporal group must have one size, a multiple of " +
                  std::to_string(factor) + " pixels");
  EncodedGroup g;
  g.hm = first.height / factor;
  g.wm = first.width / factor;
  const size_t rows = size_t(g.n_tokens()) * v.out_dim;
  g.main.resize(rows);
  g.deepstack.resize(rows * v.n_deepstack);
  if (scratch)
    vision.encode_group(frames, g.main.data(), g.deepstack.data(), *scratch, ctx);
  else
    vision.encode_group(frames, g.main.data(), g.deepstack.data(), ctx);
  return g;
}

EncodedVideo encode_video(const VisionEncoder& vision, const VideoPlan& plan, ops::Context& ctx,
                          const ProgressFn& progress) {
  const VisionGeometry& v = vision.geometry();
  if (v.temporal_patch != 1 && v.temporal_patch != 2)
    throw Unsupported("vision encoders of " + std::to_string(v.temporal_patch) +
                      " frames per group are not supported");
  if (v.temporal_patch == 1 && !plan.as_images)
    throw InternalError("an encoder of single frames needs the video planned as images");
  if (v.fixed_size() && (plan.resized_w != v.fixed_width || plan.resized_h != v.fixed_height))
    throw InternalError("the video was planned for another frame size than the encoder's");
  EncodedVideo out;
  out.plan = plan;
  out.out_dim = v.out_dim;
  out.n_deepstack = v.n_deepstack;
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
    ops::block_async_signals();
    std::exception_ptr error;
    try {
      // Decoding and resizing time only: the waits for room in the queue are left out.
      auto t_work = Clock::now();
      reader->read_frames(unique, [&](size_t k, media::Image&& img) {
        // Resized on this thread alone: it runs beside the encoder, whose pool has the cores.
        media::Image resized = (img.width == plan.resized_w && img.height == plan.resized_h)
                                   ? std::move(img)
                                   : media::resize_bicubic(img, plan.resized_w, plan.resized_h);
        decode_ms += ms_since(t_work);
        if (!queue.push(unique[k], std::move(resized))) throw Cancelled();  // stop decoding
        t_work = Clock::now();
      });
      decode_ms += ms_since(t_work);
    } catch (...) {
      error = std::current_exception();
    }
    queue.finish(error);
  });

  std::map<int64_t, media::Image> pending;  // decoded frames not yet encoded
  int done = 0;
  // One group's DeepStack rows (copied out to each level's place) and the encoder's working
  // memory, allocated once for all groups.
  std::vector<float> ds(size_t(out.n_deepstack) * tpg * v.out_dim);
  const std::unique_ptr<VisionScratch> scratch = vision.new_scratch();
  try {
    const int slots = plan.as_images ? 1 : 2;
    for (int g = 0; g < plan.n_groups; ++g) {
      ctx.throw_if_cancelled();
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
      const auto t0 = Clock::now();
      vision.encode_group(std::span(frames, size_t(v.temporal_patch)),
                          out.main.data() + size_t(g) * tpg * v.out_dim, ds.data(), *scratch, ctx);
      for (int l = 0; l < out.n_deepstack; ++l)
        std::copy_n(
            ds.data() + size_t(l) * tpg * v.out_dim, size_t(tpg) * v.out_dim,
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

bool same_plan(const VideoPlan& a, const VideoPlan& b) {
  return a.indices == b.indices && a.frames == b.frames && a.resized_w == b.resized_w &&
         a.resized_h == b.resized_h && a.as_images == b.as_images &&
         a.group_times == b.group_times && a.display_corrections == b.display_corrections;
}

}  // namespace reel
