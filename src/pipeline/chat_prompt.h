// Prompts from OpenAI-style chat messages: a list of turns (system, user, assistant), each a
// sequence of text, image and video parts, becomes the chat template's text with one media
// marker per medium, the media encoded and sized into the context, and finally the prompt's
// token ids and visual blocks, ready for a Scheduler request.
//
// Each medium has an identity derived from its bytes and how it is encoded, so that a client
// re-sending the same image or video in the next turn of a chat gets the same identity (and
// the scheduler reuses the KV prefix that holds it), and recent encodings are kept in a small
// in-memory map under that identity so that the vision encoder does not run again.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "pipeline/chat_template.h"
#include "pipeline/image_encoder.h"
#include "pipeline/live_window.h"
#include "pipeline/media_cache.h"
#include "pipeline/model.h"
#include "pipeline/prompt_layout.h"
#include "pipeline/video_encoder.h"

namespace reel {

struct ChatPart {
  // Window: a medium already encoded, the snapshot of a live video's rolling window
  // (live_window.h), put in the prompt as one video exactly as `reel watch` asks about it.
  enum class Kind { Text, Image, Video, Window };
  Kind kind = Kind::Text;
  std::string text;                                    // the text, or the medium's file path
  std::shared_ptr<const LiveGroups> window = nullptr;  // Kind::Window: its groups (not empty)
};

struct ChatTurn {
  std::string role;  // "system", "user" or "assistant"
  std::vector<ChatPart> parts;
};

struct ChatPromptOptions {
  int n_ctx = 4096;          // the sequence's context
  int max_tokens = -1;       // the answer's limit (< 0: none)
  int answer_reserve = 512;  // kept free for the answer when media are sized and max_tokens < 0
  ImageOptions image;
  VideoOptions video;
  double max_video_seconds = 0;  // refuse longer videos (0: no limit)
  // A shared encoding cache (memory and/or disk) consulted when the memo misses, and the vision
  // model's identity for its keys (model_identity of the mmproj). Null: none.
  MediaCache* media_cache = nullptr;
  MediaKey model_key;
  // Qwen3.5's thinking switch (chat_template.h): kDefault follows the model's template.
  Think think = Think::kDefault;
};

// Encodings of recent media under their identities, least recently used evicted first, within
// a number of entries and of bytes. Not thread-safe: one engine thread owns it.
class MediaMemo {
 public:
  explicit MediaMemo(size_t max_entries = 8, size_t max_bytes = size_t(1) << 30);
  std::shared_ptr<const EncodedImage> image(uint64_t key);
  std::shared_ptr<const EncodedVideo> video(uint64_t key);
  void put(uint64_t key, std::shared_ptr<const EncodedImage> image);
  void put(uint64_t key, std::shared_ptr<const EncodedVideo> video);
  size_t size() const { return entries_.size(); }
  size_t bytes() const { return bytes_; }

 private:
  struct Entry {
    uint64_t key = 0, last_use = 0;
    size_t bytes = 0;
    std::shared_ptr<const EncodedImage> image;
    std::shared_ptr<const EncodedVideo> video;
  };
  Entry* find(uint64_t key);
  void insert(Entry e);
  size_t max_entries_, max_bytes_, bytes_ = 0;
  uint64_t clock_ = 0;
  std::vector<Entry> entries_;
};

// What build_chat_prompt made: the request's inputs and what the media cost.
struct ChatPrompt {
  std::vector<TokenId> ids;
  std::vector<VisualBlock> blocks;  // in prompt order, each with its identity
  // The encodings the blocks' rows point into; keep this alive until the request is computed.
  std::vector<std::shared_ptr<const void>> media;
  int n_images = 0, n_videos = 0, n_frames = 0;
  int image_tokens = 0, video_tokens = 0;
  int memo_hits = 0;               // media whose encoding came from the memo
  int cache_hits = 0;              // media whose encoding came from the media cache
  double vision_encode_ms = 0;     // the vision encoder, for media encoded now
  std::vector<std::string> notes;  // what a budget made Reel choose, in words
};

// The chat template's text with one marker per medium (<|vision_start|><|image_pad|>
// <|vision_end|> for an image, the same with <|video_pad|> for a video or a window), where the
// parts are, followed by the generation prompt. Throws reel::Error on an unknown role.
// With think_blocks, assistant turns as Qwen3.5's template renders them (render_chat in
// chat_template.h): earlier turns' reasoning is left out.
std::string render_chat_turns(const std::vector<ChatTurn>& turns,
                              const std::string& generation_prompt = kAssistantPrompt,
                              bool think_blocks = false);

// The thinking switch and think-block handling of the model's chat template
// (tokenizer.chat_template; none without one).
ThinkingSwitch model_thinking_switch(const Model& model);

// The generation prompt of the model's chat template (its tokenizer.chat_template) under
// `think`; see generation_prompt() in chat_template.h (throws reel::Unsupported for kOn on a
// model whose template has no thinking switch).
std::string model_generation_prompt(const Model& model, Think think);

// The whole prompt of `turns`. Images are sized with options.image; windows keep their encoding
// (when the text, images, windows and the answer's reserve do not fit, the oldest groups of the
// longest window are left out first, with a note); each video is planned against the context
// left after them, shared equally among videos. Media may come in any order; the prompt is the
// one the CLI builds for the same media in that order (a window as the video of its frames).
// Throws reel::ContextFull naming the token counts when the prompt cannot fit, reel::Error on
// bad media (naming the file) or when media are given without a vision model.
ChatPrompt build_chat_prompt(const Model& model, ops::Context& ctx,
                             const std::vector<ChatTurn>& turns, const ChatPromptOptions& options,
                             MediaMemo& memo);

// A 64-bit FNV-1a hash of a file's bytes, mixed with `salt`; never 0. Throws reel::Error when
// the file cannot be read.
uint64_t file_identity(const std::string& path, uint64_t salt);

}  // namespace reel
