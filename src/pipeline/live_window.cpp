#include "pipeline/live_window.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <ctime>

#include "common/clock.h"
#include "common/error.h"
#include "ops/thread_pool.h"

namespace reel {
namespace {

constexpr size_t kQueue = 2;  // sampled frames waiting for the encoder
// Reported at most once per this many seconds of video while frames are being dropped (of
// video, not of the wall clock, so that a file read as fast as it decodes reports too).
constexpr double kDropReportS = 10;

std::string fixed(double v, int digits) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", digits, v);
  return buf;
}

}  // namespace

void LiveWindow::add(std::shared_ptr<const LiveGroup> g) {
  std::lock_guard lock(mu_);
  const double newest = g->t1_s;
  groups_.push_back(std::move(g));
  ++added_;
  // A window of W seconds holds the groups whose frames all lie within W seconds of the
  // newest frame (a tiny tolerance for pts rounding).
  while (!groups_.empty() &&
         (newest - groups_.front()->t0_s > window_s_ + 1e-3 || groups_.size() > max_groups_))
    groups_.pop_front();
}

LiveGroups LiveWindow::snapshot(double last_s) const {
  std::lock_guard lock(mu_);
  LiveGroups out;
  if (groups_.empty()) return out;
  const double newest = groups_.back()->t1_s;
  for (const auto& g : groups_)
    if (last_s <= 0 || newest - g->t0_s <= last_s + 1e-3) out.push_back(g);
  if (out.empty()) out.push_back(groups_.back());
  return out;
}

size_t LiveWindow::size() const {
  std::lock_guard lock(mu_);
  return groups_.size();
}

size_t LiveWindow::bytes() const {
  std::lock_guard lock(mu_);
  size_t n = 0;
  for (const auto& g : groups_)
    n += (g->rows.main.size() + g->rows.deepstack.size()) * sizeof(float);
  return n;
}

uint64_t LiveWindow::groups_added() const {
  std::lock_guard lock(mu_);
  return added_;
}

std::string live_video_text(std::span<const std::shared_ptr<const LiveGroup>> groups) {
  if (!groups.empty() && groups.front()->as_image) {
    // Single frames: as video_prompt_text writes a video planned as images.
    std::string s;
    for (const auto& g : groups) {
      s += "<|vision_start|>";
      for (int i = 0; i < g->rows.n_tokens(); ++i) s += "<|image_pad|>";
      s += "<|vision_end|>";
    }
    return s;
  }
  std::string s = "<|vision_start|>";
  if (groups.empty()) return s + "<|vision_end|>";
  const double start = groups.front()->t0_s;
  for (const auto& g : groups) {
    // As plan_video's group_time: the mean of the two frames' times from the start, in this
    // order of operations, so that "%.1f" rounds as for the same frames in a file.
    const double t = ((g->t0_s - start) + (g->t1_s - start)) / 2;
    s += timestamp_text(t) + "<|vision_start|>";
    for (int i = 0; i < g->rows.n_tokens(); ++i) s += "<|video_pad|>";
    s += "<|vision_end|>";
  }
  return s + "<|vision_end|>";
}

std::vector<VisualBlock> live_blocks(std::span<const std::shared_ptr<const LiveGroup>> groups) {
  std::vector<VisualBlock> out;
  for (const auto& g : groups) {
    VisualBlock b;
    b.hm = g->rows.hm;
    b.wm = g->rows.wm;
    b.main = g->rows.main.data();
    b.deepstack = g->rows.deepstack.empty() ? nullptr : g->rows.deepstack.data();
    b.ds_stride = g->rows.n_tokens();
    b.id = g->id;
    out.push_back(b);
  }
  return out;
}

int live_frames(std::span<const std::shared_ptr<const LiveGroup>> groups) {
  int n = 0;
  for (const auto& g : groups) n += g->n_frames;
  return n;
}

media::Size2 live_frame_size(int width, int height, int window_frames, int64_t group_tokens,
                             int factor) {
  media::VideoBudget b = media::kQwen3VLVideoBudget;
  b.factor = factor;
  const int n = std::max(2, window_frames + window_frames % 2);
  if (group_tokens > 0) {
    // Each frame of a group at most group_tokens tokens of factor x factor pixels.
    const double per_frame = double(group_tokens) * factor * factor;
    b.max_pixels = int64_t(std::min<double>(double(b.max_pixels), per_frame * n));
    b.min_pixels = std::min(b.min_pixels, b.max_pixels);
  }
  return media::smart_resize_video(n, height, width, b);
}

media::Size2 live_frame_size(const VisionGeometry& vision, int width, int height, int window_frames,
                             int64_t group_tokens) {
  if (vision.fixed_size()) return media::Size2{vision.fixed_height, vision.fixed_width};
  // A group's tokens are one frame's grid whether it holds one frame or a pair.
  return live_frame_size(width, height, window_frames, group_tokens, vision.factor());
}

LiveVideo::LiveVideo(const VisionEncoder& vision, LiveOptions options)
    : vision_(vision), opts_(std::move(options)) {
  if (!(opts_.fps > 0 && opts_.fps <= 60)) throw Error("the sampling rate must be in (0, 60] fps");
  if (!(opts_.window_s >= 1 && opts_.window_s <= 3600))
    throw Error("the window must be 1 to 3600 seconds");
  const int per_group = vision_.geometry().temporal_patch;
  if (per_group != 1 && per_group != 2)
    throw Unsupported("vision encoders of " + std::to_string(per_group) +
                      " frames per group are not supported");
  opts_.stream.cancel = &stop_;
  const size_t groups = size_t(std::ceil(opts_.window_s * opts_.fps / per_group)) + 1;
  window_ = std::make_unique<LiveWindow>(opts_.window_s, groups);
  ctx_ = std::make_unique<ops::Context>(opts_.n_threads);
  scratch_ = vision_.new_scratch();
  ctx_->set_cancel_flag(&stop_);
}

LiveVideo::~LiveVideo() {
  stop();
}

void LiveVideo::say(const std::string& line) const {
  if (opts_.note) opts_.note(line);
}

void LiveVideo::fail(std::exception_ptr e) {
  std::lock_guard lock(mu_);
  if (!error_) error_ = e;
  cv_.notify_all();
}

std::unique_ptr<media::StreamReader> LiveVideo::open_with_retry(double budget_s) {
  const auto deadline = Clock::now() + std::chrono::milliseconds(int64_t(budget_s * 1000));
  const bool network = media::is_network_source(source_);
  for (double wait = 0.1;; wait = std::min(wait * 2, 1.0)) {
    try {
      return media::StreamReader::open(source_, opts_.stream);
    } catch (const IoError&) {
      // Refused at once (a publisher not listening yet): try again until the time is up. A
      // timeout has used up the time by itself.
      if (!network || stop_ ||
          Clock::now() + std::chrono::milliseconds(int64_t(wait * 1000)) >= deadline)
        throw;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(int64_t(wait * 1000)));
  }
}

void LiveVideo::start(const std::string& source) {
  source_ = source;
  first_reader_ = open_with_retry(opts_.stream.open_timeout_s);
  started_ = Clock::now();
  encoder_ = std::thread([this] { encode_loop(); });
  reader_ = std::thread([this] { read_loop(); });
}

void LiveVideo::stop() {
  stop_ = true;
  cv_.notify_all();
  if (reader_.joinable()) reader_.join();
  if (encoder_.joinable()) encoder_.join();
}

bool LiveVideo::finished() const {
  std::lock_guard lock(mu_);
  return encoding_done_ || error_ != nullptr;
}

bool LiveVideo::wait_finished(std::chrono::milliseconds timeout) {
  std::unique_lock lock(mu_);
  return cv_.wait_for(lock, timeout, [&] { return encoding_done_ || error_ != nullptr; });
}

std::exception_ptr LiveVideo::error() const {
  std::lock_guard lock(mu_);
  return error_;
}

LiveStats LiveVideo::stats() const {
  std::lock_guard lock(mu_);
  return stats_;
}

media::Size2 LiveVideo::frame_size() const {
  std::lock_guard lock(mu_);
  return size_;
}

// The reader: one connection after another (network sources), until the end or stop().
void LiveVideo::read_loop() {
  ops::block_async_signals();
  std::unique_ptr<media::StreamReader> reader = std::move(first_reader_);
  const bool network = media::is_network_source(source_) && opts_.reconnect;
  double backoff = 0.5;
  try {
    while (!stop_) {
      bool got_frame = false;
      std::string why;
      try {
        if (!reader) reader = media::StreamReader::open(source_, opts_.stream);
        read_connection(*reader, got_frame);
        if (!network && !got_frame) throw Error(source_ + ": no video frame could be decoded");
        why = "the stream ended";
      } catch (const Cancelled&) {
        if (stop_) break;
        throw;
      } catch (const Error& e) {
        if (!network) throw;
        why = e.what();
      }
      reader.reset();
      if (!network || stop_) break;
      if (got_frame) backoff = 0.5;
      say(why + "; reconnecting in " + fixed(backoff, 1) + " s");
      for (double slept = 0; slept < backoff && !stop_; slept += 0.05)
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
      backoff = std::min(backoff * 2, opts_.max_backoff_s);
      std::lock_guard lock(mu_);
      ++stats_.reconnects;
    }
  } catch (...) {
    fail(std::current_exception());
  }
  std::lock_guard lock(mu_);
  reading_done_ = true;
  cv_.notify_all();
}

// Frames of one connection onto the watch's timeline: the first connection starts at 0; a
// later one continues at the time that has passed (and after the last frame), so that times
// only grow; a jump of the stream's clock (backwards, or more than 30 s ahead) is bridged
// the same way.
void LiveVideo::read_connection(media::StreamReader& reader, bool& got_frame) {
  media::FpsSampler sampler(opts_.fps);
  double pts = 0;
  bool based = false;
  double base_pts = 0, offset = 0;
  double last_drop_report = -1;  // timeline seconds
  uint64_t dropped_reported = 0;
  while (!stop_ && reader.advance(pts)) {
    got_frame = true;
    double last_t;
    {
      std::lock_guard lock(mu_);
      ++stats_.frames_read;
      last_t = stats_.frames_sampled ? stats_.timeline_s : -1;
    }
    double t = offset + (pts - base_pts);
    // More than 30 s (or two sampling intervals, at very low rates) ahead is a jump.
    if (!based || t < last_t - 1e-3 || t > last_t + 30 + 2 / opts_.fps) {
      const double elapsed = std::chrono::duration<double>(Clock::now() - started_).count();
      offset = last_t < 0 ? 0 : std::max(elapsed, last_t + 1 / opts_.fps);
      base_pts = pts;
      based = true;
      sampler.reset();
      t = offset;
    }
    if (!sampler.take(t)) continue;
    media::Image image = reader.rgb();  // only sampled frames are converted
    Sampled s;
    s.t_s = t;
    s.wall = std::chrono::system_clock::now();
    media::Size2 size = frame_size();
    if (size.width == 0) {
      const VisionGeometry& v = vision_.geometry();
      const int factor = v.factor();
      size = live_frame_size(v, image.width, image.height,
                             int(std::ceil(opts_.window_s * opts_.fps)), opts_.group_tokens);
      {
        std::lock_guard lock(mu_);
        size_ = size;
      }
      say("frames of " + std::to_string(image.width) + "x" + std::to_string(image.height) +
          " are encoded at " + std::to_string(size.width) + "x" + std::to_string(size.height) +
          " (" + std::to_string(size.width * size.height / (factor * factor)) +
          (v.temporal_patch == 1 ? " visual tokens per frame, each encoded alone)"
                                 : " visual tokens per pair of frames)"));
    }
    s.image = (image.width == size.width && image.height == size.height)
                  ? std::move(image)
                  : media::resize_bicubic(image, size.width, size.height);
    offer(std::move(s));
    const LiveStats now = stats();
    if (last_drop_report < 0) last_drop_report = now.timeline_s;
    if (now.frames_dropped > dropped_reported &&
        now.timeline_s - last_drop_report >= kDropReportS) {
      const double rate = opts_.fps * double(now.frames_encoded) /
                          double(std::max<uint64_t>(1, now.frames_sampled));
      say("encoding keeps up with " + fixed(rate, 2) + " of " + fixed(opts_.fps, 2) +
          " frames per second; the others are dropped evenly (" +
          std::to_string(now.frames_dropped) + " so far)");
      dropped_reported = now.frames_dropped;
      last_drop_report = now.timeline_s;
    }
  }
}

// The reader never waits for the encoder: a frame that finds the queue full is dropped.
void LiveVideo::offer(Sampled&& s) {
  std::lock_guard lock(mu_);
  ++stats_.frames_sampled;
  stats_.timeline_s = s.t_s;
  if (queue_.size() >= kQueue) {
    ++stats_.frames_dropped;
    return;
  }
  queue_.push_back(std::move(s));
  cv_.notify_all();
}

void LiveVideo::encode_loop() {
  ops::block_async_signals();
  std::optional<Sampled> first;
  try {
    for (;;) {
      Sampled s;
      {
        std::unique_lock lock(mu_);
        cv_.wait(lock, [&] { return !queue_.empty() || reading_done_ || stop_; });
        if (stop_) break;
        if (queue_.empty()) break;  // reading done, all encoded
        s = std::move(queue_.front());
        queue_.pop_front();
      }
      if (vision_.geometry().temporal_patch == 1) {
        encode_single(s);
        continue;
      }
      if (!first) {
        first = std::move(s);
        continue;
      }
      encode_pair(*first, s, 2);
      first.reset();
    }
    // An odd last frame at the end of the source: repeated, as the reference pads a clip.
    if (first && !stop_) {
      Sampled copy = *first;
      encode_pair(*first, copy, 1);
    }
  } catch (const Cancelled&) {
    if (!stop_) fail(std::current_exception());
  } catch (...) {
    fail(std::current_exception());
  }
  std::lock_guard lock(mu_);
  encoding_done_ = true;
  cv_.notify_all();
}

void LiveVideo::encode_pair(Sampled& a, Sampled& b, int n_frames) {
  const auto t0 = Clock::now();
  auto g = std::make_shared<LiveGroup>();
  const media::Image* frames[2] = {&a.image, &b.image};
  g->rows = encode_video_group(vision_, frames, *ctx_, scratch_.get());
  g->t0_s = a.t_s;
  g->t1_s = b.t_s;
  g->wall0 = a.wall;
  g->wall1 = b.wall;
  g->n_frames = n_frames;
  add_group(std::move(g), t0);
}

void LiveVideo::encode_single(Sampled& s) {
  const auto t0 = Clock::now();
  auto g = std::make_shared<LiveGroup>();
  const media::Image* frames[1] = {&s.image};
  g->rows = encode_video_group(vision_, frames, *ctx_, scratch_.get());
  g->t0_s = g->t1_s = s.t_s;
  g->wall0 = g->wall1 = s.wall;
  g->n_frames = 1;
  g->as_image = true;
  add_group(std::move(g), t0);
}

void LiveVideo::add_group(std::shared_ptr<LiveGroup> g, std::chrono::steady_clock::time_point t0) {
  g->id = new_block_identity();
  const int n_frames = g->n_frames;
  if (opts_.on_group) opts_.on_group(*g);
  window_->add(std::move(g));
  std::lock_guard lock(mu_);
  stats_.encode_ms += ms_since(t0);
  stats_.frames_encoded += n_frames;
  ++stats_.groups_encoded;
}

int64_t live_group_token_budget(double window_s, double fps, int n_ctx, int64_t reserve,
                                int64_t text_tokens, int frames_per_group) {
  if (frames_per_group != 1 && frames_per_group != 2)
    throw InternalError("a live group holds 1 or 2 frames");
  const int64_t groups = int64_t(std::ceil(window_s * fps / frames_per_group));
  // A pair: its timestamp and markers; a single frame (an image): its two markers.
  const int64_t markers = frames_per_group == 1 ? 2 : timestamp_tokens(window_s) + 2;
  const int64_t per_group = (n_ctx - reserve - text_tokens) / groups - markers;
  if (per_group < 1)
    throw Error("a window of " + std::to_string(int(window_s)) + " s at " + fixed(fps, 2) +
                " fps does not fit the context of " + std::to_string(n_ctx) +
                " tokens: use a larger context, a shorter window or a lower fps");
  return per_group;
}

std::string iso8601_utc(WallTime t) {
  const auto ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
  const std::time_t secs = std::time_t(ms / 1000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[64];
  const size_t n = std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  std::snprintf(buf + n, sizeof buf - n, ".%03dZ", int(ms % 1000));
  return buf;
}

GenerationStats ask_about_window(ChatSession& session, const LiveGroups& groups,
                                 const std::string& question, int max_tokens, const TextSink& sink,
                                 size_t* used) {
  const Tokenizer& tok = session.model().tokenizer();
  // Room kept for the answer when it has no limit: as the chat's media budget does.
  const int reserve = max_tokens > 0 ? max_tokens : std::min(512, session.n_ctx() / 4);
  session.clear();
  std::span<const std::shared_ptr<const LiveGroup>> in(groups);
  for (;;) {
    const std::string content = live_video_text(in) + question;
    const std::vector<TokenId> ids = tok.encode(session.user_turn_text(content), true);
    const int64_t over = int64_t(ids.size()) + reserve - session.n_ctx();
    if (over <= 0 || in.size() <= 1) {
      if (used) *used = in.size();
      const std::vector<VisualBlock> blocks = live_blocks(in);
      return session.ask_tokens(ids, blocks, max_tokens, sink);
    }
    // Leave out enough of the oldest groups (their tokens plus about 8 of text each).
    const int64_t per_group = in.front()->rows.n_tokens() + 8;
    const size_t drop = std::min<size_t>(in.size() - 1, size_t((over + per_group - 1) / per_group));
    in = in.subspan(drop);
  }
}

}  // namespace reel
