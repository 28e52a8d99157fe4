#include "pipeline/session.h"

#include <algorithm>

#include "common/error.h"
#include "pipeline/chat_prompt.h"
#include "pipeline/chat_template.h"

namespace reel {
std::string image_prompt_text(int n_tokens) {
  std::string s = "<|vision_start|>";
  for (int i = 0; i < n_tokens; ++i) s += "<|image_pad|>";
  return s + "<|vision_end|>";
}

VisualBlock block_of(const EncodedImage& img) {
  VisualBlock b;
  b.hm = img.grid_h / img.merge;
  b.wm = img.grid_w / img.merge;
  b.main = img.main.data();
  b.deepstack = img.deepstack.empty() ? nullptr : img.deepstack.data();
  b.ds_stride = img.n_tokens();
  return b;
}

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
      out += image_prompt_text(img.n_tokens());
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

namespace {

ThinkingSwitch session_switch(const Model& model, const SessionOptions& o) {
  return o.chat_template.empty() ? model_thinking_switch(model) : thinking_switch(o.chat_template);
}

}  // namespace

ChatSession::ChatSession(Scheduler& scheduler, SessionOptions options)
    : sched_(scheduler), opts_(std::move(options)), seq_(scheduler.model(), opts_.sequence) {
  const ThinkingSwitch sw = session_switch(model(), opts_);
  generation_prompt_ = generation_prompt(sw, opts_.think);
  // The previous answer is cut where its think block starts, after "<|im_start|>assistant\n";
  // that is a token boundary when the block starts with a special or added token (<think> is
  // one in Qwen3.5's and Qwen3's vocabularies). Otherwise earlier answers stay as they were.
  const Tokenizer& tok = model().tokenizer();
  const std::vector<TokenId> whole = tok.encode(generation_prompt_, true),
                             head = tok.encode(kAssistantPrompt, true);
  think_blocks_ = sw.think_blocks && whole.size() >= head.size() &&
                  std::equal(head.begin(), head.end(), whole.begin());
  n_think_prompt_ = static_cast<int>(whole.size() - head.size());
  dialogue_.reserve(seq_.n_ctx());
}

int ChatSession::n_kept() const {
  return trims_answers() ? answer_at_ - n_think_prompt_ : static_cast<int>(dialogue_.size());
}

void ChatSession::clear() {
  answer_at_ = 0;
  dialogue_.clear();
  blocks_.clear();
  answer_.clear();
  answer_open_ = false;
}

std::string ChatSession::user_turn_text(const std::string& content) const {
  std::string text;
  if (trims_answers()) text += answer_without_thinking(model().tokenizer().decode(answer_));
  if (answer_open_) text += "<|im_end|>\n";
  if (dialogue_.empty() && !opts_.system_prompt.empty())
    text += render_turn("system", opts_.system_prompt);
  return text + render_turn("user", content) + generation_prompt_;
}

GenerationStats ChatSession::ask_tokens(std::span<const TokenId> ids,
                                        std::span<const VisualBlock> blocks, int max_tokens,
                                        const TextSink& sink, const PrefillProgress& progress) {
  const int kept = n_kept();
  const int room = n_ctx() - kept;
  if (static_cast<int>(ids.size()) + 1 > room)
    throw ContextFull("the prompt needs " + std::to_string(ids.size()) +
                      " tokens (and one for the answer) but the context has " +
                      std::to_string(room) + " left of " + std::to_string(n_ctx()));
  Request r;
  r.seq = &seq_;
  r.ids.reserve(kept + ids.size());
  r.ids.assign(dialogue_.begin(), dialogue_.begin() + kept);
  r.ids.insert(r.ids.end(), ids.begin(), ids.end());
  r.blocks = blocks_;
  r.blocks.insert(r.blocks.end(), blocks.begin(), blocks.end());
  // Rows without an identity get one now, so that later turns find them in the cache.
  for (size_t i = blocks_.size(); i < r.blocks.size(); ++i)
    if (r.blocks[i].id == 0) r.blocks[i].id = new_block_identity();
  r.sampling = opts_.sampling;
  r.max_tokens = max_tokens;
  r.on_text = sink;
  r.on_prefill = progress;
  r.cancel = opts_.cancel;
  std::vector<TokenId> prompt = r.ids;
  std::vector<VisualBlock> prompt_blocks = r.blocks;
  RequestResult res = sched_.run_one(std::move(r));
  // The turn is complete: it and its answer are now the dialogue.
  answer_at_ = static_cast<int>(prompt.size());
  dialogue_ = std::move(prompt);
  dialogue_.insert(dialogue_.end(), res.generated.begin(), res.generated.end());
  blocks_ = std::move(prompt_blocks);
  answer_ = std::move(res.generated);
  answer_open_ = true;
  return res.stats;
}

GenerationStats ChatSession::ask(const std::string& user_content, int max_tokens,
                                 const TextSink& sink, std::span<const EncodedImage> images,
                                 std::span<const EncodedVideo> videos) {
  std::vector<VisualBlock> blocks;
  const std::string content = expand_markers(user_content, images, videos, blocks);
  const std::vector<TokenId> ids = sched_.model().tokenizer().encode(user_turn_text(content), true);
  return ask_tokens(ids, blocks, max_tokens, sink);
}

}  // namespace reel
