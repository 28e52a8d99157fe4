// A dialogue with the model: the chat template around each turn, and the tokens of every turn
// so far, which each new turn's request presents in full so that the scheduler computes only
// what the sequence does not already hold.
#pragma once

#include <atomic>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "pipeline/chat_template.h"
#include "pipeline/image_encoder.h"
#include "pipeline/scheduler.h"
#include "pipeline/video_encoder.h"

namespace reel {

struct SessionOptions {
  SamplingParams sampling;
  std::string system_prompt;
  SequenceOptions sequence;
  const std::atomic<bool>* cancel = nullptr;  // stops a turn between steps
  Think think = Think::kDefault;              // Qwen3.5's thinking switch (chat_template.h)
  // The chat template whose generation prompt and think blocks the dialogue follows (empty:
  // the model file's tokenizer.chat_template).
  std::string chat_template;
};

// The chat template's media markers (one pad each, expanded to a medium's tokens), and their
// token count: vision_start, one pad, vision_end.
inline constexpr std::string_view kImageMarker = "<|vision_start|><|image_pad|><|vision_end|>";
inline constexpr std::string_view kVideoMarker = "<|vision_start|><|video_pad|><|vision_end|>";
inline constexpr int kMarkerTokens = 3;

// An image marker expanded to n_tokens pads.
std::string image_prompt_text(int n_tokens);

// The prompt block of an encoded image.
VisualBlock block_of(const EncodedImage& img);

// Expands the chat template's media markers, in order, into the pad tokens (and, for videos,
// the timestamps) of the encoded media, appending their visual blocks in prompt order.
// Throws reel::Error when markers and media do not pair up.
std::string expand_markers(const std::string& content, std::span<const EncodedImage> images,
                           std::span<const EncodedVideo> videos, std::vector<VisualBlock>& blocks);

class ChatSession {
 public:
  ChatSession(Scheduler& scheduler, SessionOptions options);

  // The template text of a user turn holding `content`, as it will follow the first n_kept()
  // tokens of the dialogue (the system prompt on a fresh dialogue, the end of the previous
  // answer), ready to tokenize. Under a template with think blocks (Qwen3.5's) the previous
  // answer is written again without its reasoning, as the template renders earlier turns: the
  // dialogue goes back to that answer's start (the recurrent state to its checkpoint before
  // the turn) and the request feeds the trimmed answer again.
  std::string user_turn_text(const std::string& content) const;
  // Runs a tokenized user turn (pad tokens take their rows from `blocks`, in order), then
  // generates the answer (at most max_tokens; < 0: until a stop token or a full context),
  // streaming it to sink. Throws reel::ContextFull when the turn leaves no room for an answer.
  // A turn that fails or is cancelled leaves the dialogue as it was.
  GenerationStats ask_tokens(std::span<const TokenId> ids, std::span<const VisualBlock> blocks,
                             int max_tokens, const TextSink& sink,
                             const PrefillProgress& progress = nullptr);
  // The same from text; user_content may hold one template media marker per image and video
  // (<|vision_start|><|image_pad|><|vision_end|>, ...), each kind in order.
  GenerationStats ask(const std::string& user_content, int max_tokens, const TextSink& sink,
                      std::span<const EncodedImage> images = {},
                      std::span<const EncodedVideo> videos = {});

  // Forgets the dialogue (the system prompt stays). The cache keeps its contents, so a new
  // dialogue that starts the same way reuses them.
  void clear();
  int n_past() const { return static_cast<int>(dialogue_.size()); }  // tokens in the dialogue
  // The dialogue's tokens the next turn builds on (n_past(), less the previous answer and its
  // think block when the template trims them).
  int n_kept() const;
  const std::vector<TokenId>& dialogue() const { return dialogue_; }
  int n_ctx() const { return seq_.n_ctx(); }
  const std::vector<TokenId>& answer_ids() const { return answer_; }
  const Sequence& sequence() const { return seq_; }
  Scheduler& scheduler() { return sched_; }
  const Model& model() const { return sched_.model(); }
  const SessionOptions& options() const { return opts_; }

 private:
  Scheduler& sched_;
  SessionOptions opts_;
  Sequence seq_;
  bool trims_answers() const { return think_blocks_ && answer_open_; }

  std::string generation_prompt_;    // the assistant turn's start (with Qwen3.5's think block)
  bool think_blocks_ = false;        // earlier answers lose their reasoning (chat_template.h)
  int n_think_prompt_ = 0;           // tokens of generation_prompt_ after kAssistantPrompt
  int answer_at_ = 0;                // where the last answer starts in dialogue_
  std::vector<TokenId> dialogue_;    // every token of the dialogue so far
  std::vector<VisualBlock> blocks_;  // its visual blocks (rows no longer read)
  std::vector<TokenId> answer_;
  bool answer_open_ = false;  // the last answer's <|im_end|> is not yet in the dialogue
};

}  // namespace reel
