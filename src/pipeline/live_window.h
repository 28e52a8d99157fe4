// Live video into a rolling window of visual tokens (`reel watch`). A reader thread decodes the
// source and samples frames at `fps` by presentation time; an encoder thread pairs the sampled
// frames into Qwen3-VL's temporal groups as they arrive and encodes each group once (an encoder
// of single frames, temporal_patch 1 such as an NPU's, encodes each frame alone); the window
// keeps the groups of the last `window_s` seconds. A question then costs only the text prefill
// of the window (with prefix reuse when the window has only grown) plus the question: no frame
// is decoded or encoded again.
//
// Memory is bounded everywhere: the reader hands sampled frames (already resized) to the
// encoder through a queue of two, dropping frames when the encoder cannot keep up (so drops
// spread evenly over time and the reader never waits); the window holds at most
// max_groups() groups.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include "media/stream.h"
#include "pipeline/session.h"
#include "pipeline/video_encoder.h"

namespace reel {

using WallTime = std::chrono::system_clock::time_point;

// One encoded temporal group of the live video.
struct LiveGroup {
  uint64_t id = 0;            // identity of its rows, for prefix reuse
  double t0_s = 0, t1_s = 0;  // its frames' times on the watch's timeline (seconds)
  WallTime wall0, wall1;      // when its frames arrived
  int n_frames = 2;           // sampled frames it holds (1 when the last frame was repeated)
  // One frame encoded alone (an encoder of temporal_patch 1): it goes into the prompt as an
  // image, as a video planned as images does (video_prompt_text).
  bool as_image = false;
  EncodedGroup rows;
};
using LiveGroups = std::vector<std::shared_ptr<const LiveGroup>>;

// The groups of the last window_s seconds, shared between the encoder (adding) and questions
// (taking snapshots). Thread-safe.
class LiveWindow {
 public:
  LiveWindow(double window_s, size_t max_groups) : window_s_(window_s), max_groups_(max_groups) {}
  // Appends a group and lets out the groups older than the window.
  void add(std::shared_ptr<const LiveGroup> g);
  // The groups whose first frame lies within the last `last_s` seconds of the window's newest
  // frame (last_s <= 0: all); at least the newest group when there is one.
  LiveGroups snapshot(double last_s = 0) const;
  size_t size() const;
  size_t bytes() const;  // of the rows it holds
  size_t max_groups() const { return max_groups_; }
  double window_s() const { return window_s_; }
  uint64_t groups_added() const;

 private:
  mutable std::mutex mu_;
  double window_s_;
  size_t max_groups_;
  std::deque<std::shared_ptr<const LiveGroup>> groups_;
  uint64_t added_ = 0;
};

// The prompt text of a snapshot as one video (Qwen3-VL's form, as video_prompt_text writes
// it): each group's "<t.t seconds>" counted from the first group's first frame, then its pads;
// and its visual blocks, in order. Groups of single frames (as_image) are written as
// video_prompt_text writes a video planned as images: one image per frame, no timestamps.
std::string live_video_text(std::span<const std::shared_ptr<const LiveGroup>> groups);
std::vector<VisualBlock> live_blocks(std::span<const std::shared_ptr<const LiveGroup>> groups);
// Sampled frames in a snapshot.
int live_frames(std::span<const std::shared_ptr<const LiveGroup>> groups);

// The frame size of a live video: the video sizing rules (smart_resize_video with the clip
// level budget) for a clip of the window's frames, further bounded so that a full window fits
// `group_tokens` visual tokens per group (<= 0: no bound).
media::Size2 live_frame_size(int width, int height, int window_frames, int64_t group_tokens,
                             int factor);
// The same for `vision`: an encoder of one input size (an NPU's) gets that size whatever the
// budget (a full window that does not fit then loses its oldest groups when asked about).
media::Size2 live_frame_size(const VisionGeometry& vision, int width, int height, int window_frames,
                             int64_t group_tokens);

// Visual tokens each group may take so that a full window of `window_s` seconds at `fps`, its
// timestamps, `text_tokens` of other text (template, system prompt, question) and `reserve`
// tokens for the answer fit `n_ctx`. Groups hold `frames_per_group` frames (the encoder's
// temporal_patch; a group of 1 is an image with 2 markers and no timestamp). Throws reel::Error
// (saying what to change) when not even one token per group fits.
int64_t live_group_token_budget(double window_s, double fps, int n_ctx, int64_t reserve,
                                int64_t text_tokens, int frames_per_group = 2);

// "2026-12-01T13:20:00.123Z": a wall-clock time in ISO 8601, UTC, to the millisecond.
std::string iso8601_utc(WallTime t);

struct LiveOptions {
  double fps = 2;
  double window_s = 60;
  int64_t group_tokens = 0;  // most visual tokens per group (from the context); 0: no bound
  int n_threads = 1;         // vision encoder threads
  media::StreamOptions stream;
  bool reconnect = true;  // network sources: reconnect after an error or the end, with backoff
  double max_backoff_s = 8;
  // Messages for the user (reconnecting, dropping frames), one line each, without "reel: ";
  // called on the reader thread, no lock held.
  std::function<void(const std::string&)> note;
  // Called on the encoder thread after each group enters the window (progress, tests).
  std::function<void(const LiveGroup&)> on_group;
};

struct LiveStats {
  uint64_t frames_read = 0;     // decoded
  uint64_t frames_sampled = 0;  // taken at fps
  uint64_t frames_dropped = 0;  // sampled but dropped because the encoder was busy
  uint64_t frames_encoded = 0;
  uint64_t groups_encoded = 0;
  uint64_t reconnects = 0;
  double encode_ms = 0;   // vision encoder time (resizing is the reader's)
  double timeline_s = 0;  // newest sampled frame's time
};

class LiveVideo {
 public:
  LiveVideo(const VisionEncoder& vision, LiveOptions options);
  ~LiveVideo();  // stops and joins the threads
  // Opens the source (a network source is retried until the open timeout has passed) and
  // starts reading and encoding. Throws reel::Error when the source cannot be opened.
  void start(const std::string& source);
  void stop();
  // The source has ended (a file, stdin, or a network source without reconnect) and every
  // frame read has been encoded, or reading failed (error()).
  bool finished() const;
  // Waits until finished() or `timeout`; true when finished.
  bool wait_finished(std::chrono::milliseconds timeout);
  std::exception_ptr error() const;  // the reader's or encoder's failure, null if none
  LiveWindow& window() { return *window_; }
  const LiveWindow& window() const { return *window_; }
  LiveStats stats() const;
  media::Size2 frame_size() const;  // 0x0 until the first frame

 private:
  struct Sampled {
    media::Image image;
    double t_s = 0;
    WallTime wall;
  };
  void read_loop();
  void read_connection(media::StreamReader& reader, bool& got_frame);
  void offer(Sampled&& s);
  void encode_loop();
  void encode_pair(Sampled& a, Sampled& b, int n_frames);
  void encode_single(Sampled& s);
  void add_group(std::shared_ptr<LiveGroup> g, std::chrono::steady_clock::time_point t0);
  std::unique_ptr<media::StreamReader> open_with_retry(double budget_s);
  void say(const std::string& line) const;
  void fail(std::exception_ptr e);

  const VisionEncoder& vision_;
  LiveOptions opts_;
  std::string source_;
  std::unique_ptr<LiveWindow> window_;
  std::unique_ptr<ops::Context> ctx_;
  std::unique_ptr<VisionScratch> scratch_;  // the encoder thread's, reused for every group
  std::atomic<bool> stop_{false};
  std::unique_ptr<media::StreamReader> first_reader_;
  std::thread reader_, encoder_;

  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Sampled> queue_;  // at most kQueue
  bool reading_done_ = false, encoding_done_ = false;
  std::exception_ptr error_;
  LiveStats stats_;
  media::Size2 size_{};
  std::chrono::steady_clock::time_point started_;
};

// Asks `question` about a snapshot in a fresh dialogue of `session` (whose cache keeps the
// previous question's prefix, so a window that only grew is reused): the window as one video,
// then the question. When the prompt does not fit the context, the oldest groups are left out
// (`used` says how many groups went in). Throws reel::Error as ChatSession::ask_tokens does.
GenerationStats ask_about_window(ChatSession& session, const LiveGroups& groups,
                                 const std::string& question, int max_tokens, const TextSink& sink,
                                 size_t* used = nullptr);

}  // namespace reel
