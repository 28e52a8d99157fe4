#include "server/engine.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <thread>

#include "common/error.h"
#include "pipeline/executor.h"
#include "pipeline/sequence.h"
#include "server/streams.h"

namespace reel::server {
namespace {

constexpr auto kRateWindow = std::chrono::seconds(10);

bool has_media(const ChatRequest& r) {
  for (const ChatTurn& t : r.turns)
    for (const ChatPart& p : t.parts)
      if (p.kind != ChatPart::Kind::Text) return true;
  return false;
}

}  // namespace

void Metrics::count_status(int status) {
  std::lock_guard lk(mu);
  for (auto& [s, n] : by_status)
    if (s == status) {
      ++n;
      return;
    }
  by_status.emplace_back(status, 1);
}

void finish_job(Job& job, std::optional<ApiError> error, std::string finish_reason) {
  {
    std::lock_guard lk(job.mu);
    job.error = std::move(error);
    job.finish_reason = std::move(finish_reason);
    job.state = Job::State::Done;
  }
  job.cv.notify_all();
}

Engine::Engine(const ServerOptions& options, Metrics& metrics)
    : opts_(options), metrics_(metrics) {}

Engine::~Engine() = default;

void Engine::load() {
  model_ = Model::load(opts_.model_path, opts_.mmproj_path, nullptr, opts_.load_mode,
                       opts_.vision_matmul);
  if (!model_->has_text()) throw Error("the server needs a text model");
  n_ctx_ = opts_.n_ctx > 0 ? opts_.n_ctx : model_->text_config().n_ctx_train;
  exec_ = std::make_unique<Executor>(
      *model_, ExecutorOptions{opts_.n_threads, std::min(opts_.n_batch, n_ctx_)});
  sched_ = std::make_unique<Scheduler>(*model_, *exec_);
  if (model_->has_vision()) prep_ctx_ = std::make_unique<ops::Context>(exec_->n_threads());
  slots_.resize(size_t(opts_.parallel));
  for (Slot& s : slots_)
    s.seq = std::make_unique<Sequence>(*model_, SequenceOptions{n_ctx_, opts_.kv_type});
  if (!opts_.media_cache_dir.empty() && model_->has_vision()) {
    media_cache_ = std::make_unique<MediaCache>(
        0, opts_.media_cache_dir,
        [](const std::string& note) { std::fprintf(stderr, "reel serve: %s\n", note.c_str()); },
        uint64_t(opts_.media_cache_max_mb) << 20);
    vision_key_ = model_identity(*model_->vision_file());
  }
  model_name_ = std::filesystem::path(opts_.model_path).stem().string();
  created_ = std::chrono::duration_cast<std::chrono::seconds>(
                 std::chrono::system_clock::now().time_since_epoch())
                 .count();
  ready_ = true;
}

bool Engine::enqueue(const std::shared_ptr<Job>& job) {
  {
    std::lock_guard lk(mu_);
    if (stopping_) return false;
    const int free = opts_.parallel - running_;
    if (int(waiting_.size()) >= std::max(0, free) + opts_.queue) return false;
    waiting_.push_back(job);
  }
  cv_.notify_all();
  return true;
}

int Engine::queued() const {
  std::lock_guard lk(mu_);
  return int(waiting_.size());
}

int Engine::running() const {
  std::lock_guard lk(mu_);
  return running_;
}

void Engine::stop() {
  {
    std::lock_guard lk(mu_);
    stopping_ = true;
    if (preparing_) preparing_->cancel = true;  // the preparer stops at its next check
  }
  cv_.notify_all();
  prep_cv_.notify_all();
}

void Engine::run() {
  std::thread preparer;
  if (prep_ctx_) preparer = std::thread([this] { prepare_loop(); });
  while (true) {
    std::vector<std::shared_ptr<Job>> fresh;
    std::vector<std::pair<std::shared_ptr<Job>, ChatPrompt>> ready;
    {
      std::unique_lock lk(mu_);
      cv_.wait(lk, [&] {
        return stopping_ || !sched_->idle() || !prepared_.empty() ||
               (!waiting_.empty() && running_ < opts_.parallel);
      });
      if (stopping_) break;
      bool to_preparer = false;
      while (!waiting_.empty() && running_ < opts_.parallel) {
        std::shared_ptr<Job> job = std::move(waiting_.front());
        waiting_.pop_front();
        ++running_;
        if (prep_ctx_ && has_media(job->req)) {
          to_prepare_.push_back(std::move(job));
          to_preparer = true;
        } else {
          fresh.push_back(std::move(job));
        }
      }
      if (to_preparer) prep_cv_.notify_one();
      while (!prepared_.empty()) {
        ready.push_back(std::move(prepared_.front()));
        prepared_.pop_front();
      }
    }
    for (const auto& job : fresh) {  // text only: the prompt is quick to build here
      ChatPrompt prompt;
      if (prepare(job, exec_->ctx(), prompt)) start(job, std::move(prompt));
    }
    for (auto& [job, prompt] : ready) start(job, std::move(prompt));
    if (!sched_->idle()) step_timed();
    collect();
  }
  if (preparer.joinable()) preparer.join();
  // Shutting down: every request still here gets an answer.
  const ApiError gone(503, "the server is shutting down");
  for (Slot& s : slots_)
    if (s.job) finish_job(*s.job, gone, "");
  std::lock_guard lk(mu_);
  for (const auto& job : waiting_) finish_job(*job, gone, "");
  for (const auto& job : to_prepare_) finish_job(*job, gone, "");
  for (const auto& [job, prompt] : prepared_) finish_job(*job, gone, "");
  waiting_.clear();
  to_prepare_.clear();
  prepared_.clear();
}

void Engine::prepare_loop() {
  while (true) {
    std::shared_ptr<Job> job;
    {
      std::unique_lock lk(mu_);
      prep_cv_.wait(lk, [&] { return stopping_ || !to_prepare_.empty(); });
      if (stopping_) return;
      job = std::move(to_prepare_.front());
      to_prepare_.pop_front();
      preparing_ = job;
    }
    ChatPrompt prompt;
    const bool ok = prepare(job, *prep_ctx_, prompt);
    {
      std::lock_guard lk(mu_);
      preparing_ = nullptr;
      if (ok) prepared_.emplace_back(std::move(job), std::move(prompt));
    }
    if (ok) cv_.notify_all();
  }
}

void Engine::fail_admitted(const std::shared_ptr<Job>& job, const std::exception& e) {
  finish_job(*job, api_error_of(e), "");
  std::lock_guard lk(mu_);
  --running_;
}

bool Engine::prepare(const std::shared_ptr<Job>& job, ops::Context& ctx, ChatPrompt& prompt) {
  try {
    if (job->cancel) throw Cancelled();
    ChatPromptOptions po;
    po.n_ctx = n_ctx_;
    po.max_tokens = job->req.max_tokens;
    po.think = job->req.think;
    po.image = opts_.image;
    po.video = apply_video_request(opts_.video, job->req.video);
    po.max_video_seconds = opts_.max_video_seconds;
    po.media_cache = media_cache_.get();
    po.model_key = vision_key_;
    ctx.set_cancel_flag(&job->cancel);
    // Stream parts come as their windows' snapshots, already encoded: media like the others,
    // in their places among the images and videos.
    place_stream_windows(job->req.turns, job->req.streams, job->windows);
    prompt = build_chat_prompt(*model_, ctx, job->req.turns, po, memo_);
    ctx.set_cancel_flag(nullptr);
    metrics_.vision_encode_us += uint64_t(prompt.vision_encode_ms * 1000);
    metrics_.media_memo_hits += uint64_t(prompt.memo_hits);
    metrics_.media_cache_hits += uint64_t(prompt.cache_hits);
    metrics_.media_encoded += uint64_t(prompt.n_images + prompt.n_videos) - job->windows.size() -
                              uint64_t(prompt.memo_hits + prompt.cache_hits);
    for (const std::string& note : prompt.notes)
      std::fprintf(stderr, "reel serve: %s: %s\n", job->id.c_str(), note.c_str());
    return true;
  } catch (const std::exception& e) {
    ctx.set_cancel_flag(nullptr);
    fail_admitted(job, e);
    return false;
  }
}

void Engine::step_timed() {
  const auto t0 = Clock::now();
  sched_->step();
  const double ms = ms_since(t0);
  metrics_.busy_us += uint64_t(ms * 1000);
  recent_busy_ms_.emplace_back(Clock::now(), ms);
}

// Which free sequence a prompt goes to. A sequence whose whole content begins the prompt (the
// same conversation, re-sent with a new turn) first; then an empty one, unless another already
// holds at least half of the prompt (a shared long system prompt or medium) worth its tail; then
// the longest common prefix; ties go to the sequence used least recently, so that a new
// conversation does not evict a recent one for the few tokens every chat template begins with.
Engine::Slot& Engine::pick_slot(const std::vector<uint64_t>& keys) {
  Slot *whole = nullptr, *empty = nullptr, *partial = nullptr;
  int whole_len = -1, partial_len = -1;
  for (Slot& s : slots_) {
    if (s.job) continue;
    const int held = s.seq->n_past();
    const int len = s.seq->common_prefix(keys);
    if (held == 0) {
      if (!empty) empty = &s;
    } else if (len == held) {
      if (len > whole_len) whole = &s, whole_len = len;
    } else if (len > partial_len || (len == partial_len && s.last_used < partial->last_used)) {
      partial = &s, partial_len = len;
    }
  }
  Slot* pick = whole ? whole
               : empty && (!partial || 2 * int64_t(partial_len) < int64_t(keys.size())) ? empty
               : partial ? partial
                         : empty;
  if (!pick) throw InternalError("no free sequence for an admitted request");
  pick->last_used = ++use_clock_;
  return *pick;
}

void Engine::start(const std::shared_ptr<Job>& job, ChatPrompt prompt) {
  Slot* slot = nullptr;
  try {
    if (job->cancel) throw Cancelled();
    const std::vector<uint64_t> keys =
        prompt_keys(prompt.ids, prompt.blocks, model_->image_pad(), model_->video_pad());
    slot = &pick_slot(keys);
    Request r;
    r.seq = slot->seq.get();
    r.ids = prompt.ids;
    r.blocks = prompt.blocks;
    r.sampling = job->req.sampling;
    r.max_tokens = job->req.max_tokens;
    r.ignore_stop = job->req.ignore_eos;
    r.cancel = &job->cancel;
    r.on_text = [this, slot](std::string_view piece) { return on_text(*slot, piece); };
    slot->job = job;
    slot->stop.emplace(job->req.stop);
    slot->prompt = std::move(prompt);
    slot->id = sched_->submit(std::move(r));
    {
      std::lock_guard lk(job->mu);
      job->prompt_tokens = int(slot->prompt.ids.size());
      job->state = Job::State::Running;
    }
    job->cv.notify_all();
  } catch (const std::exception& e) {
    if (slot) {
      slot->job = nullptr;
      slot->prompt = ChatPrompt{};
    }
    fail_admitted(job, e);
  }
}

bool Engine::on_text(Slot& slot, std::string_view piece) {
  Job& job = *slot.job;
  const std::string out = slot.stop->push(piece);
  if (!out.empty()) {
    {
      std::lock_guard lk(job.mu);
      job.text += out;
    }
    job.cv.notify_all();
  }
  return !slot.stop->stopped() && !job.cancel.load(std::memory_order_relaxed);
}

void Engine::collect() {
  for (Slot& s : slots_) {
    if (!s.job || !sched_->finished(s.id)) continue;
    RequestResult res = sched_->take(s.id);
    Job& job = *s.job;
    if (res.error) {
      try {
        std::rethrow_exception(res.error);
      } catch (const std::exception& e) {
        finish_job(job, api_error_of(e), "");
      }
    } else {
      const GenerationStats& st = res.stats;
      const bool at_limit =
          (job.req.max_tokens > 0 && st.n_generated >= job.req.max_tokens) || st.hit_context_limit;
      const std::string rest = s.stop->flush();
      {
        std::lock_guard lk(job.mu);
        job.text += rest;
        job.cached_tokens = st.n_reused;
        job.completion_tokens = st.n_generated;
      }
      metrics_.prompt_tokens += uint64_t(job.prompt_tokens);
      metrics_.cached_tokens += uint64_t(st.n_reused);
      metrics_.completion_tokens += uint64_t(st.n_generated);
      metrics_.prefill_tps = st.prefill_tps();
      recent_tokens_.emplace_back(Clock::now(), st.n_generated);
      finish_job(job, std::nullopt, !s.stop->stopped() && at_limit ? "length" : "stop");
    }
    release(s);
  }
  // The decode rate: output tokens over busy time, both over the recent window.
  const auto horizon = Clock::now() - kRateWindow;
  while (!recent_tokens_.empty() && recent_tokens_.front().first < horizon)
    recent_tokens_.pop_front();
  while (!recent_busy_ms_.empty() && recent_busy_ms_.front().first < horizon)
    recent_busy_ms_.pop_front();
  double busy = 0;
  int tokens = 0;
  for (const auto& b : recent_busy_ms_) busy += b.second;
  for (const auto& t : recent_tokens_) tokens += t.second;
  metrics_.decode_tps = busy > 0 ? tokens * 1000.0 / busy : 0.0;
}

void Engine::release(Slot& slot) {
  slot.job = nullptr;
  slot.prompt = ChatPrompt{};
  slot.stop.reset();
  slot.id = 0;
  std::lock_guard lk(mu_);
  --running_;
}

}  // namespace reel::server
