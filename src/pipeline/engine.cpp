#include "pipeline/engine.h"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <thread>

#include "common/clock.h"
#include "common/error.h"

namespace reel {
namespace {

double physical_memory_bytes() {
  const long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGE_SIZE);
  return pages > 0 && page > 0 ? double(pages) * double(page) : 0.0;
}

// The KV cache may take at most this share of physical memory: the weights, activations and
// the rest of the system need the remainder.
constexpr double kMaxKvShareOfRam = 0.8;

std::string gib(double bytes) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f GiB", bytes / double(1 << 30));
  return buf;
}

int max_matmul_input(const TextConfig& c) {
  return std::max({c.n_embd, c.n_ff, c.n_head * c.head_dim});
}

}  // namespace

void check_kv_memory(int n_ctx, double kv_bytes, double ram_bytes) {
  if (ram_bytes > 0 && kv_bytes > kMaxKvShareOfRam * ram_bytes)
    throw Error("a context of " + std::to_string(n_ctx) + " tokens needs " + gib(kv_bytes) +
                " of KV cache, more than the " + gib(kMaxKvShareOfRam * ram_bytes) +
                " it may take (80% of this machine's " + gib(ram_bytes) +
                " of memory); use a smaller context");
}

std::unique_ptr<Engine> Engine::load(const EngineOptions& opts) {
  const auto t0 = Clock::now();
  auto e = std::unique_ptr<Engine>(new Engine());
  e->opts_ = opts;
  if (opts.n_threads < 0 || opts.n_threads > 1024) throw Error("-t must be between 1 and 1024");
  if (opts.n_ctx < 0) throw Error("-c must not be negative");
  if (opts.n_batch < 1 || opts.n_batch > 65536) throw Error("the batch size must be 1 to 65536");
  e->file_ = gguf::File::open(opts.model_path);
  e->model_ = Qwen3VLText::load(*e->file_);
  e->tok_ = Tokenizer::from_gguf(*e->file_);
  const TextConfig& c = e->model_->config();
  if (e->tok_->vocab_size() > c.n_vocab)
    throw Error(opts.model_path + ": the tokenizer has " + std::to_string(e->tok_->vocab_size()) +
                " tokens but the embedding only " + std::to_string(c.n_vocab) + " rows");

  EngineOptions& o = e->opts_;
  if (o.n_threads == 0) o.n_threads = std::max(1u, std::thread::hardware_concurrency());
  if (o.n_ctx == 0) o.n_ctx = c.n_ctx_train;
  if (o.n_ctx > c.n_ctx_train)
    throw Error("-c " + std::to_string(o.n_ctx) + " exceeds the model's context length " +
                std::to_string(c.n_ctx_train));
  o.n_batch = std::min(o.n_batch, o.n_ctx);
  check_kv_memory(o.n_ctx, 2.0 * c.n_layer * c.n_head_kv * c.head_dim * 4.0 * o.n_ctx,
                  physical_memory_bytes());

  e->text_load_ms_ = ms_since(t0);
  if (!opts.mmproj_path.empty()) {
    const auto tv = Clock::now();
    e->load_vision(opts.mmproj_path);
    e->vision_load_ms_ = ms_since(tv);
  }
  e->ctx_ = std::make_unique<ops::Context>(o.n_threads);
  e->ctx_->reserve(o.n_batch, max_matmul_input(c));
  for (const char* s : {"<|im_end|>", "<|endoftext|>"})
    if (TokenId id = e->tok_->token_id(s); id >= 0) e->stop_ids_.push_back(id);
  if (TokenId eos = e->tok_->eos_id(); eos >= 0) e->stop_ids_.push_back(eos);
  e->load_ms_ = ms_since(t0);
  return e;
}

void Engine::load_vision(const std::string& path) {
  mmproj_file_ = gguf::File::open(path);
  vision_ = Qwen3VLVision::load(*mmproj_file_);
  const VisionConfig& v = vision_->config();
  const TextConfig& t = model_->config();
  const std::string pair = " (" + path + " with " + opts_.model_path + ")";
  if (v.out_dim != t.n_embd)
    throw Error("the vision model makes " + std::to_string(v.out_dim) +
                "-wide embeddings but the text model's hidden size is " +
                std::to_string(t.n_embd) + ": the files do not belong together" + pair);
  if (static_cast<int>(v.deepstack_layers.size()) != t.n_deepstack)
    throw Error("the vision model has " + std::to_string(v.deepstack_layers.size()) +
                " DeepStack layers but the text model expects " + std::to_string(t.n_deepstack) +
                ": the files do not belong together" + pair);
}

EncodedImage Engine::encode_image(const std::string& path) {
  if (!vision_) throw Error(path + ": images need a vision model; pass --mmproj MMPROJ.gguf");
  return reel::encode_image(*vision_, path, image_opts_, *ctx_);
}

EncodedVideo Engine::encode_video(const std::string& path, const VideoOptions& opts,
                                  int64_t token_budget, const ProgressFn& progress) {
  if (!vision_) throw Error(path + ": videos need a vision model; pass --mmproj MMPROJ.gguf");
  const VisionConfig& v = vision_->config();
  const VideoPlan plan = plan_video(path, opts, v.patch_size, v.spatial_merge, token_budget);
  return reel::encode_video(*vision_, plan, *ctx_, progress);
}

VisualBlock block_of(const EncodedImage& img) {
  VisualBlock b;
  b.hm = img.grid_h / 2;
  b.wm = img.grid_w / 2;
  b.main = img.main.data();
  b.deepstack = img.deepstack.empty() ? nullptr : img.deepstack.data();
  b.ds_stride = img.n_tokens();
  return b;
}

namespace {

// Reads every page of a mapping so that the first answer does not pay for page faults; the
// time it takes is the honest "load" time of a memory-mapped model.
double touch_pages(const gguf::File& f) {
  const auto t0 = Clock::now();
  volatile uint8_t sink = 0;
  for (const auto& t : f.tensors())
    for (uint64_t i = 0; i < t.nbytes; i += 4096) sink = sink + t.data[i];
  (void)sink;
  return ms_since(t0);
}

}  // namespace

LoadTimes Engine::measure_load_times() {
  LoadTimes t;
  t.text_cold_ms = text_load_ms_ + touch_pages(*file_);
  if (mmproj_file_) t.vision_cold_ms = vision_load_ms_ + touch_pages(*mmproj_file_);
  // Warm: the same again, now that the files are in the page cache.
  auto t0 = Clock::now();
  {
    auto f = gguf::File::open(opts_.model_path);
    auto m = Qwen3VLText::load(*f);
    auto tok = Tokenizer::from_gguf(*f);
    touch_pages(*f);
  }
  t.text_warm_ms = ms_since(t0);
  if (mmproj_file_) {
    t0 = Clock::now();
    auto f = gguf::File::open(opts_.mmproj_path);
    auto v = Qwen3VLVision::load(*f);
    touch_pages(*f);
    t.vision_warm_ms = ms_since(t0);
  }
  return t;
}

bool Engine::is_stop_token(TokenId id) const {
  return std::find(stop_ids_.begin(), stop_ids_.end(), id) != stop_ids_.end();
}

ChatSession::ChatSession(Engine& engine, const SamplingParams& sampling, std::string system_prompt)
    : engine_(engine),
      state_(engine.model(), engine.options().n_ctx, engine.options().n_batch),
      sampler_(sampling, engine.model().config().n_vocab),
      system_prompt_(std::move(system_prompt)) {
  generated_.reserve(engine.options().n_ctx);
  last_logits_.resize(engine.model().config().n_vocab);
  pos_.resize(engine.options().n_batch);
  image_pad_ = engine.tokenizer().token_id("<|image_pad|>");
  video_pad_ = engine.tokenizer().token_id("<|video_pad|>");
}

void ChatSession::clear() {
  state_.truncate(0);
  next_pos_ = 0;
  answer_open_ = false;
  generated_.clear();
}

bool ChatSession::is_pad(TokenId id) const {
  return id >= 0 && (id == image_pad_ || id == video_pad_);
}

void ChatSession::restore(const Checkpoint& c) {
  state_.truncate(c.n_past);
  next_pos_ = c.next_pos;
  answer_open_ = c.answer_open;
}

void ChatSession::eval(std::span<const TokenId> ids, std::span<const VisualBlock> blocks,
                       const PrefillProgress& progress) {
  bool any_pad = false;
  for (TokenId id : ids) any_pad = any_pad || is_pad(id);
  if (!any_pad && blocks.empty()) return eval_text(ids, progress);
  eval_visual(ids, blocks, progress);
}

// Text only: positions count on from next_pos_ on all three axes. Runs in the token loop,
// so it uses the preallocated position buffer.
void ChatSession::eval_text(std::span<const TokenId> ids, const PrefillProgress& progress) {
  const int n_batch = state_.n_batch();
  for (size_t i = 0; i < ids.size(); i += n_batch) {
    const int n = static_cast<int>(std::min<size_t>(n_batch, ids.size() - i));
    for (int j = 0; j < n; ++j) pos_[j] = Pos3{next_pos_ + j, next_pos_ + j, next_pos_ + j};
    TextBatch b;
    b.n = n;
    b.ids = ids.data() + i;
    b.pos = pos_.data();
    const bool last = i + n == ids.size();
    engine_.model().forward(state_, b, last ? last_logits_.data() : nullptr, last ? 1 : 0,
                            engine_.ctx());
    next_pos_ += n;
    if (progress) progress(static_cast<int>(i + n), static_cast<int>(ids.size()));
  }
}

void ChatSession::eval_visual(std::span<const TokenId> ids, std::span<const VisualBlock> blocks,
                              const PrefillProgress& progress) {
  const PromptLayout layout = layout_prompt(ids, blocks, next_pos_, image_pad_, video_pad_,
                                            engine_.model().config().n_embd);
  run_prompt(engine_.model(), state_, ids, layout, last_logits_.data(), false, engine_.ctx(),
             progress);
  next_pos_ = layout.next_pos;
}

GenerationStats ChatSession::ask(const std::string& user_text, int max_tokens,
                                 const TextSink& sink) {
  return ask(user_text, {}, max_tokens, sink);
}

namespace {

constexpr std::string_view kImageMarker = "<|vision_start|><|image_pad|><|vision_end|>";
constexpr std::string_view kVideoMarker = "<|vision_start|><|video_pad|><|vision_end|>";

}  // namespace

std::string expand_markers(const std::string& content, std::span<const EncodedImage> images,
                           std::span<const EncodedVideo> videos, std::vector<VisualBlock>& blocks) {
  std::string out;
  size_t at = 0, n_img = 0, n_vid = 0;
  while (true) {
    const size_t hi = content.find(kImageMarker, at), hv = content.find(kVideoMarker, at);
    const size_t hit = std::min(hi, hv);
    if (hit == std::string::npos) break;
    out.append(content, at, hit - at);
    if (hit == hi) {
      if (n_img == images.size()) throw Error("the prompt has more image markers than images");
      const EncodedImage& img = images[n_img++];
      out += "<|vision_start|>";
      for (int i = 0; i < img.n_tokens(); ++i) out += "<|image_pad|>";
      out += "<|vision_end|>";
      blocks.push_back(block_of(img));
    } else {
      if (n_vid == videos.size()) throw Error("the prompt has more video markers than videos");
      const EncodedVideo& v = videos[n_vid++];
      out += v.prompt_text();
      for (const VisualBlock& b : v.blocks()) blocks.push_back(b);
    }
    at = hit + kImageMarker.size();  // both markers have the same length
  }
  if (n_img != images.size()) throw Error("the prompt has fewer image markers than images");
  if (n_vid != videos.size()) throw Error("the prompt has fewer video markers than videos");
  out.append(content, at);
  return out;
}

GenerationStats ChatSession::ask(const std::string& user_content,
                                 std::span<const EncodedImage> images, int max_tokens,
                                 const TextSink& sink) {
  return ask(user_content, images, {}, max_tokens, sink);
}

GenerationStats ChatSession::ask(const std::string& user_content,
                                 std::span<const EncodedImage> images,
                                 std::span<const EncodedVideo> videos, int max_tokens,
                                 const TextSink& sink) {
  std::vector<VisualBlock> blocks;
  const std::string content = expand_markers(user_content, images, videos, blocks);
  const std::vector<TokenId> ids = engine_.tokenizer().encode(user_turn_text(content), true);
  return ask_tokens(ids, blocks, max_tokens, sink);
}

std::string ChatSession::user_turn_text(const std::string& content) const {
  std::string text;
  if (answer_open_) text += "<|im_end|>\n";
  if (state_.n_past() == 0 && !system_prompt_.empty()) text += render_turn("system", system_prompt_);
  return text + render_turn("user", content) + kAssistantPrompt;
}

GenerationStats ChatSession::ask_tokens(std::span<const TokenId> ids,
                                        std::span<const VisualBlock> blocks, int max_tokens,
                                        const TextSink& sink, const PrefillProgress& progress) {
  const int room = state_.n_ctx() - state_.n_past();
  if (static_cast<int>(ids.size()) + 1 > room)
    throw ContextFull("the prompt needs " + std::to_string(ids.size()) +
                      " tokens (and one for the answer) but the context has " +
                      std::to_string(room) + " left of " + std::to_string(state_.n_ctx()));
  const Checkpoint before = checkpoint();
  try {
    const auto t0 = Clock::now();
    eval(ids, blocks, progress);
    const double prefill_ms = ms_since(t0);
    answer_open_ = true;
    GenerationStats g = generate(max_tokens, sink);
    g.n_prompt = static_cast<int>(ids.size());
    g.prefill_ms = prefill_ms;
    return g;
  } catch (...) {
    restore(before);
    generated_.clear();
    throw;
  }
}

GenerationStats ChatSession::generate(int max_tokens, const TextSink& sink) {
  GenerationStats st;
  StreamDecoder decoder(engine_.tokenizer());
  generated_.clear();
  const auto t0 = Clock::now();
  bool pending = false;  // the last sampled token is not yet in the cache
  while (max_tokens < 0 || st.n_generated < max_tokens) {
    engine_.ctx().throw_if_cancelled();
    if (pending) {
      if (state_.n_past() >= state_.n_ctx()) {
        st.hit_context_limit = true;
        break;
      }
      eval_text({&generated_.back(), 1});
      pending = false;
    }
    const TokenId id = sampler_.sample(last_logits_.data(), generated_);
    if (engine_.is_stop_token(id)) break;
    generated_.push_back(id);
    pending = true;
    ++st.n_generated;
    const std::string piece = decoder.push(id);
    if (!piece.empty() && !sink(piece)) break;
  }
  const std::string rest = decoder.flush();
  if (!rest.empty()) sink(rest);
  // Keep the whole answer in the cache so that the next turn follows it.
  if (pending && state_.n_past() < state_.n_ctx()) eval_text({&generated_.back(), 1});
  st.decode_ms = ms_since(t0);
  return st;
}

void compute_all_logits(Engine& engine, std::span<const TokenId> ids,
                        const std::function<void(const float*, int)>& write) {
  if (ids.empty()) throw Error("no tokens to evaluate");
  const int n = static_cast<int>(ids.size());
  if (n > engine.options().n_ctx)
    throw Error("the input is " + std::to_string(n) + " tokens but the context holds " +
                std::to_string(engine.options().n_ctx) + "; raise -c");
  const int chunk = std::min(engine.options().n_batch, 64);
  TextState state(engine.model(), n, chunk);
  std::vector<float> logits(size_t(chunk) * engine.model().config().n_vocab);
  for (int i = 0; i < n; i += chunk) {
    TextBatch b;
    b.n = std::min(chunk, n - i);
    b.ids = ids.data() + i;
    engine.model().forward(state, b, logits.data(), b.n, engine.ctx());
    write(logits.data(), b.n);
  }
}

}  // namespace reel
