// The server's engine: one thread owns the model's executor and scheduler and loops, taking
// new requests from a bounded queue, giving each the free sequence that already holds the
// longest part of its prompt, and stepping every admitted request together. Requests with
// images or videos are first handed to a second thread, the preparer, which decodes and
// encodes their media with its own thread pool while the engine keeps decoding the others
// (the model is immutable and shared; only the vision encoder runs there). HTTP threads talk
// to the engine through Jobs: each carries the request in and the answer out (text as it is
// generated, then the end), under its own mutex and condition variable.
#pragma once

#include <atomic>
#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "common/clock.h"
#include "pipeline/chat_prompt.h"
#include "pipeline/live_window.h"
#include "pipeline/scheduler.h"
#include "server/media.h"
#include "server/request.h"
#include "server/server.h"
#include "server/stop.h"

namespace reel::server {

struct Job {
  std::string id;
  ChatRequest req;
  TempFiles files;
  // Snapshots of the live stream windows its stream parts ask about (req.streams' order).
  std::vector<LiveGroups> windows;
  std::atomic<bool> cancel{false};  // the client went away

  std::mutex mu;
  std::condition_variable cv;
  enum class State { Queued, Running, Done } state = State::Queued;
  std::string text;               // generated text not yet taken by the HTTP side
  std::optional<ApiError> error;  // set when the request failed
  std::string finish_reason;      // "stop" or "length", once done
  int prompt_tokens = 0, cached_tokens = 0, completion_tokens = 0;
};

// Counters for /metrics (Prometheus text).
struct Metrics {
  std::atomic<uint64_t> prompt_tokens{0}, completion_tokens{0}, cached_tokens{0};
  std::atomic<uint64_t> vision_encode_us{0}, media_encoded{0}, media_memo_hits{0};
  std::atomic<uint64_t> media_cache_hits{0};  // encodings read from --media-cache
  std::atomic<uint64_t> busy_us{0};    // engine time spent in forward passes
  std::atomic<double> decode_tps{0};   // output tokens per busy second, recent window
  std::atomic<double> prefill_tps{0};  // prompt tokens per second of the last request
  std::mutex mu;
  std::vector<std::pair<int, uint64_t>> by_status;  // (HTTP status, requests)
  void count_status(int status);
};

class Engine {
 public:
  Engine(const ServerOptions& options, Metrics& metrics);
  ~Engine();

  // Loads the model and sizes the sequences (throws reel::Error); then run() serves.
  void load();
  bool ready() const { return ready_.load(); }
  std::string model_name() const { return model_name_; }
  // The loaded model and a sequence's context (valid once ready()).
  std::shared_ptr<const Model> model() const { return model_; }
  int n_ctx() const { return n_ctx_; }
  int64_t created() const { return created_; }
  void run();   // the engine loop, until stop()
  void stop();  // fails every request not yet finished and makes run() return

  // Queues a job; false when the queue is full (the caller answers 429).
  bool enqueue(const std::shared_ptr<Job>& job);
  int queued() const;
  int running() const;

 private:
  struct Slot {
    std::unique_ptr<Sequence> seq;
    std::shared_ptr<Job> job;
    Scheduler::Id id = 0;
    ChatPrompt prompt;  // keeps the media rows alive while the prompt is read
    std::optional<StopMatcher> stop;
    uint64_t last_used = 0;  // use_clock_ when it was last picked
  };
  // A request whose prompt is built: take a sequence and submit it to the scheduler.
  void start(const std::shared_ptr<Job>& job, ChatPrompt prompt);
  // Builds a request's prompt (encoding its media on `ctx`); false after failing the job.
  bool prepare(const std::shared_ptr<Job>& job, ops::Context& ctx, ChatPrompt& prompt);
  void fail_admitted(const std::shared_ptr<Job>& job, const std::exception& e);
  void prepare_loop();  // the preparer thread
  Slot& pick_slot(const std::vector<uint64_t>& keys);
  bool on_text(Slot& slot, std::string_view piece);
  void collect();
  void release(Slot& slot);
  void step_timed();

  ServerOptions opts_;
  Metrics& metrics_;
  std::shared_ptr<const Model> model_;
  std::unique_ptr<Executor> exec_;
  std::unique_ptr<Scheduler> sched_;
  std::vector<Slot> slots_;
  uint64_t use_clock_ = 0;
  MediaMemo memo_;  // used by the preparer only (text-only prompts have no media)
  std::unique_ptr<MediaCache> media_cache_;  // --media-cache (disk only: the memo is the memory)
  MediaKey vision_key_;                      // the mmproj's identity, for media cache keys
  int n_ctx_ = 0;
  std::string model_name_;
  int64_t created_ = 0;
  std::atomic<bool> ready_{false};

  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::shared_ptr<Job>> waiting_;
  int running_ = 0;  // slots taken (or being set up)
  bool stopping_ = false;
  // The preparer: its thread pool, the requests with media it has to encode, the one it is
  // encoding now and those it finished (their prompts built), all under mu_.
  std::unique_ptr<ops::Context> prep_ctx_;
  std::condition_variable prep_cv_;
  std::deque<std::shared_ptr<Job>> to_prepare_;
  std::shared_ptr<Job> preparing_;
  std::deque<std::pair<std::shared_ptr<Job>, ChatPrompt>> prepared_;

  // Recent finished requests' output tokens and the busy time, for the decode rate.
  std::deque<std::pair<Clock::time_point, int>> recent_tokens_;
  std::deque<std::pair<Clock::time_point, double>> recent_busy_ms_;
};

// Finishes a job (wakes its HTTP thread).
void finish_job(Job& job, std::optional<ApiError> error, std::string finish_reason);

}  // namespace reel::server
