#include "pipeline/scheduler.h"

#include <algorithm>
#include <cstring>
#include <string>

#include "common/clock.h"
#include "common/error.h"
#include "tokenizer/tokenizer.h"

namespace reel {
namespace {

// Prompt positions per step for requests that want every position's logits: bounds the
// logits buffer ([rows][n_vocab] floats: 39 MB for Qwen's vocabulary).
constexpr int kLogitsChunk = 64;

}  // namespace

struct Scheduler::Active {
  Id id = 0;
  Request req;
  PromptLayout layout;         // of the whole prompt, from position 0
  std::vector<uint64_t> keys;  // identities of the prompt's tokens
  int fed = 0;                 // prompt tokens in the sequence's cache
  int reused = 0;
  bool decoding = false;
  TokenId pending = -1;          // sampled, not yet in the cache
  std::vector<int> checkpoints;  // prompt positions where the state keeps a copy, ascending
  size_t next_checkpoint = 0;
  int rows = 0, n_logits = 0;  // this step's share of the batch
  Sampler sampler;
  StreamDecoder decoder;
  RequestResult result;
  Clock::time_point t_admit, t_first;
  bool done = false;

  Active(const Model& m, Request r)
      : req(std::move(r)), sampler(req.sampling, m.text_config().n_vocab), decoder(m.tokenizer()) {}
};

Scheduler::Scheduler(const Model& model, Executor& executor) : model_(model), exec_(executor) {
  if (!exec_.has_text()) throw InternalError("the executor was made for a model without text");
  spans_.reserve(exec_.n_batch());
  in_batch_.reserve(exec_.n_batch());
  const Tokenizer& tok = model_.tokenizer();
  im_start_ = tok.token_id("<|im_start|>");
  vision_end_ = tok.token_id("<|vision_end|>");
  timestamp_open_ = tok.token_id("<");
}

// Where a prompt may later diverge from another that shares its start, so that a recurrent
// state should keep a copy: before each turn (<|im_start|>: after a system prompt, after a
// user's media and question) and after each medium (a <|vision_end|> not followed by another
// one or by a video group's "<t seconds>" timestamp). Positions in (from, n).
std::vector<int> Scheduler::checkpoints(const Request& r, int from) const {
  std::vector<int> out;
  const int n = static_cast<int>(r.ids.size());
  for (int i = std::max(from + 1, 1); i < n; ++i) {
    const TokenId id = r.ids[i], prev = r.ids[i - 1];
    const bool turn = id == im_start_;
    const bool medium_end = prev == vision_end_ && id != vision_end_ && id != timestamp_open_;
    if (im_start_ >= 0 && (turn || medium_end)) out.push_back(i);
  }
  // Before the prompt's last token too: the same prompt asked again (a retried request, a
  // regenerated answer, `reel bench`'s decode at depth) feeds that token alone for its logits,
  // where a state that goes back only to its copies would read the whole prompt again.
  if (n >= 2 && n - 1 > from && (out.empty() || out.back() != n - 1)) out.push_back(n - 1);
  return out;
}

Scheduler::~Scheduler() = default;

Scheduler::Id Scheduler::submit(Request r) {
  if (!r.seq) throw InternalError("a request needs a sequence");
  if (r.ids.empty()) throw Error("the prompt is empty");
  for (const auto& a : active_)
    if (a->req.seq == r.seq) throw InternalError("a sequence runs one request at a time");
  const int n = static_cast<int>(r.ids.size());
  const int n_ctx = r.seq->n_ctx();
  if (r.ignore_stop && r.max_tokens < 0) throw Error("ignoring stop tokens needs a token limit");
  if (n + (r.max_tokens != 0 ? 1 : 0) > n_ctx)
    throw ContextFull("the prompt needs " + std::to_string(n) +
                      " tokens (and one for the answer) but the context holds " +
                      std::to_string(n_ctx));
  auto a = std::make_unique<Active>(model_, std::move(r));
  Request& q = a->req;
  a->layout = layout_prompt(q.ids, q.blocks, 0, model_.image_pad(), model_.video_pad(),
                            model_.text_config().n_embd);
  a->keys = prompt_keys(q.ids, q.blocks, model_.image_pad(), model_.video_pad());
  // At least the last prompt token is computed: its logits give the first answer token.
  const bool reuse = q.reuse_prefix && !q.on_logits;
  a->reused = reuse ? q.seq->reusable_prefix(a->keys, n - 1) : 0;
  q.seq->truncate(a->reused);
  a->fed = a->reused;
  if (q.seq->state().wants_checkpoints()) a->checkpoints = checkpoints(q, a->reused);
  a->result.stats.n_reused = a->reused;
  a->result.stats.n_prompt = n - a->reused;
  a->result.generated.reserve(q.max_tokens > 0 ? q.max_tokens : 256);
  a->t_admit = Clock::now();
  a->id = next_id_++;
  active_.push_back(std::move(a));
  return active_.back()->id;
}

void Scheduler::stage_decode(Active& a, int row) {
  auto& st = exec_.staging();
  const int p = a.req.seq->next_pos();
  st.ids[row] = a.pending;
  st.pos[row] = Pos3{p, p, p};
  st.visual[row] = 0;
  a.rows = 1;
  a.n_logits = 1;
}

// Stages the next chunk of a's prompt at batch rows [row, row + chunk); returns chunk.
int Scheduler::stage_prefill(Active& a, int row, int room) {
  auto& st = exec_.staging();
  const TextConfig& c = model_.text_config();
  const int64_t D = c.n_embd;
  const int n = static_cast<int>(a.req.ids.size());
  int chunk = std::min(room, n - a.fed);
  if (a.req.on_logits) chunk = std::min(chunk, kLogitsChunk);
  if (a.next_checkpoint < a.checkpoints.size())  // the chunk ends where a copy is kept
    chunk = std::min(chunk, a.checkpoints[a.next_checkpoint] - a.fed);
  const PromptLayout& L = a.layout;
  for (int j = 0; j < chunk; ++j) {
    const int i = a.fed + j, r = row + j;
    st.pos[r] = L.pos[i];
    st.visual[r] = L.main_row[i] != nullptr;
    st.ids[r] = st.visual[r] ? -1 : a.req.ids[i];
    if (!st.visual[r]) continue;
    std::memcpy(st.embd.data() + r * D, L.main_row[i], D * sizeof(float));
    for (int l = 0; l < c.n_deepstack && L.ds_row[i]; ++l)
      std::memcpy(st.deepstack.data() + (size_t(l) * exec_.n_batch() + r) * D,
                  L.ds_row[i] + l * L.ds_stride[i], D * sizeof(float));
  }
  a.rows = chunk;
  const bool last = a.fed + chunk == n;
  a.n_logits = a.req.on_logits ? chunk : (last && a.req.max_tokens != 0 ? 1 : 0);
  return chunk;
}

void Scheduler::step() {
  for (auto& a : active_)
    if (a->req.cancel && a->req.cancel->load(std::memory_order_relaxed))
      fail(*a, std::make_exception_ptr(Cancelled()));
  retire();
  spans_.clear();
  in_batch_.clear();
  const int n_batch = exec_.n_batch();
  int rows = 0;
  for (auto& a : active_) {  // every decoding sequence's next token
    if (!a->decoding || rows == n_batch) continue;
    if (a->req.seq->room() == 0) {
      a->result.stats.hit_context_limit = true;
      try {
        finish(*a);
      } catch (...) {
        fail(*a, std::current_exception());
      }
      continue;
    }
    stage_decode(*a, rows++);
    in_batch_.push_back(a.get());
  }
  for (auto& a : active_) {  // prompt chunks in the room left, oldest first
    if (a->decoding || a->done || rows == n_batch) continue;
    rows += stage_prefill(*a, rows, n_batch - rows);
    in_batch_.push_back(a.get());
  }
  if (in_batch_.empty()) return retire();

  int logit_rows = 0;
  for (Active* a : in_batch_) {
    spans_.push_back(DecodeSpan{&a->req.seq->state(), a->rows, a->n_logits});
    logit_rows += a->n_logits;
  }
  auto& st = exec_.staging();
  const size_t V = model_.text_config().n_vocab;
  if (st.logits.size() < logit_rows * V) st.logits.resize(logit_rows * V);  // grows to a bound
  TextBatch b;
  b.n = rows;
  b.ids = st.ids.data();
  b.embd = st.embd.data();
  b.pos = st.pos.data();
  b.visual = st.visual.data();
  bool any_visual = false;
  for (int i = 0; i < rows; ++i) any_visual = any_visual || st.visual[i];
  // The deepstack staging holds n_batch rows per level; the model reads [level][rows][D].
  if (any_visual && model_.text_config().n_deepstack > 0) {
    const int64_t D = model_.text_config().n_embd;
    for (int l = 1; l < model_.text_config().n_deepstack && rows < n_batch; ++l)
      std::memmove(st.deepstack.data() + size_t(l) * rows * D,
                   st.deepstack.data() + size_t(l) * n_batch * D, size_t(rows) * D * sizeof(float));
    b.deepstack = st.deepstack.data();
  }
  try {
    model_.decoder().forward(spans_, b, exec_.scratch(), st.logits.data(), exec_.ctx());
  } catch (...) {
    for (Active* a : in_batch_) fail(*a, std::current_exception());
    return retire();
  }
  const float* logits = st.logits.data();
  for (Active* a : in_batch_) {
    try {
      after_forward(*a, logits);
    } catch (...) {  // a callback threw (e.g. its output failed): only this request stops
      fail(*a, std::current_exception());
    }
    logits += size_t(a->n_logits) * V;
  }
  retire();
}

// Records what the forward pass appended to a's sequence, then samples or hands out logits.
void Scheduler::after_forward(Active& a, const float* logits) {
  Sequence& seq = *a.req.seq;
  const size_t V = model_.text_config().n_vocab;
  if (a.decoding) {
    const int p = seq.next_pos();
    seq.record_one(static_cast<uint32_t>(a.pending), Pos3{p, p, p});
    ++a.result.stats.n_decode_steps;
  } else {
    seq.record(std::span(a.keys).subspan(a.fed, a.rows),
               std::span(a.layout.pos).subspan(a.fed, a.rows));
    if (a.req.on_logits) a.req.on_logits(logits, a.rows);
    a.fed += a.rows;
    if (a.next_checkpoint < a.checkpoints.size() && a.checkpoints[a.next_checkpoint] == a.fed) {
      seq.state().checkpoint();
      ++a.next_checkpoint;
    }
    const int n = static_cast<int>(a.req.ids.size());
    if (a.req.on_prefill) a.req.on_prefill(a.fed - a.reused, n - a.reused);
    if (a.fed < n) return;
    a.result.stats.prefill_ms = ms_since(a.t_admit);
    a.t_first = Clock::now();
    if (a.req.max_tokens == 0) return finish(a);
    logits += (a.n_logits - 1) * V;
  }
  // The sampler applies penalties in place: work on the staging row, which is ours until the
  // next step.
  sample(a, const_cast<float*>(logits));
}

void Scheduler::sample(Active& a, float* logits) {
  const TokenId id = a.sampler.sample(logits, a.result.generated);
  if (!a.req.ignore_stop && model_.is_stop_token(id)) return finish(a);
  a.result.generated.push_back(id);
  ++a.result.stats.n_generated;
  a.decoding = true;
  a.pending = id;
  const std::string piece = a.decoder.push(id);
  if (!piece.empty() && a.req.on_text && !a.req.on_text(piece)) return finish(a);
  if (a.req.max_tokens > 0 && a.result.stats.n_generated >= a.req.max_tokens) return finish(a);
}

void Scheduler::finish(Active& a) {
  if (a.done) return;
  a.done = true;
  if (a.decoding) a.result.stats.decode_ms = ms_since(a.t_first);
  const std::string rest = a.decoder.flush();
  if (!rest.empty() && a.req.on_text) a.req.on_text(rest);
}

void Scheduler::fail(Active& a, std::exception_ptr e) {
  if (a.result.error) return;  // the first error is the one reported
  a.done = true;
  a.result.error = std::move(e);
}

// Moves finished requests out of the active list.
void Scheduler::retire() {
  for (auto& a : active_)
    if (a->done) done_.emplace_back(a->id, std::move(a->result));
  std::erase_if(active_, [](const auto& a) { return a->done; });
}

void Scheduler::run() {
  while (!active_.empty()) step();
}

bool Scheduler::finished(Id id) const {
  return std::any_of(done_.begin(), done_.end(), [&](const auto& d) { return d.first == id; });
}

RequestResult Scheduler::take(Id id) {
  const auto it =
      std::find_if(done_.begin(), done_.end(), [&](const auto& d) { return d.first == id; });
  if (it == done_.end()) throw InternalError("no finished request with that id");
  RequestResult r = std::move(it->second);
  done_.erase(it);
  return r;
}

RequestResult Scheduler::run_one(Request request) {
  const Id id = submit(std::move(request));
  while (!finished(id)) step();
  RequestResult r = take(id);
  if (r.error) std::rethrow_exception(r.error);
  return r;
}

}  // namespace reel
