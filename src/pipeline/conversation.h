// A conversation about media: the dialogue (a ChatSession and its KV cache), the images and
// the video attached to it, and the token budget that decides how large they may be.
//
// Every turn is planned in full before any pixel is decoded for the model: the template, the
// question, each image's and each video group's tokens (timestamps and markers included) and
// room for the answer are counted with the tokenizer, and media are sized down to fit, with a
// note saying what was chosen, or the turn is refused with the numbers. A turn either
// completes or leaves the conversation exactly as it was (media not yet brought in stay out),
// whether it failed on bad media, a full context or a cancellation.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "pipeline/media_cache.h"
#include "pipeline/session.h"

namespace reel {

struct ConversationOptions {
  SamplingParams sampling;
  std::string system_prompt;
  Think think = Think::kDefault;  // Qwen3.5's thinking switch (chat_template.h)
  std::string chat_template;      // overrides the model file's (SessionOptions::chat_template)
  SequenceOptions sequence;       // context size and KV cache type
  const std::atomic<bool>* cancel = nullptr;  // stops a turn (also set it on the executor)
  ImageOptions image;
  VideoOptions video;
  std::vector<std::string> images;  // attached image files, in order
  std::string video_path;           // attached video file (empty: none)
  int max_tokens = -1;              // per answer; < 0: until a stop token or the context ends
  // Context kept free for the answer when media are sized and max_tokens < 0 (at most a
  // quarter of the context, so that a small context still takes media).
  int answer_reserve = 512;
  // The original app's single marker: <image> brings in the video too.
  bool image_marker_brings_video = false;
  // Encodings shared across conversations and processes (null: each conversation keeps its
  // own). Its keys also give media their identities, so that a cached prefix holding the same
  // medium is reused by another conversation.
  MediaCache* media_cache = nullptr;
};

// What one turn did.
struct TurnStats {
  GenerationStats gen;
  std::vector<TokenId> generated;          // the answer's token ids, in order
  int n_images = 0;                        // images brought in by this turn
  int n_frames = 0;                        // video frames brought in by this turn
  int image_tokens = 0, video_tokens = 0;  // visual tokens of each kind in this turn
  double media_decode_ms = 0;   // decoding and resizing (video: overlapped with encoding)
  double vision_encode_ms = 0;  // the vision encoder
  double media_wall_ms = 0;     // planning, decoding and encoding, as the user waits
  double first_token_ms = 0;    // from the turn's start to the first streamed text
  int media_cache_hits = 0;     // media taken from the media cache, not encoded
  size_t kv_bytes =
      0;  // memory the conversation's state (KV cache, recurrent state) holds after the turn
  int visual_tokens() const { return image_tokens + video_tokens; }
};

// Callbacks of a turn; each may be empty.
struct TurnEvents {
  TextSink text;                                 // the answer, in UTF-8 pieces
  std::function<void(const std::string&)> note;  // a choice made for the caller, in words
  // Progress of a long stage ("encoding images", "encoding video", "reading the prompt").
  std::function<void(const char* stage, int done, int total)> progress;
};

class Conversation {
 public:
  Conversation(Scheduler& scheduler, ConversationOptions options);
  ~Conversation();

  // One user turn. `text` may say <image> and <video> where the attached media go (each tag
  // is replaced by its media; they enter the dialogue once). With place_unmarked_media (a
  // one-shot question), media not yet in the dialogue go before the text when it names none.
  // Throws reel::Error (ContextFull, Cancelled, bad media) with the conversation unchanged.
  TurnStats ask(const std::string& text, bool place_unmarked_media, const TurnEvents& events);

  // Forgets the dialogue (the system prompt stays); attached media can be brought in again.
  void clear();
  bool has_media() const { return !opts_.images.empty() || !opts_.video_path.empty(); }
  int n_past() const { return session_.n_past(); }
  int n_ctx() const { return session_.n_ctx(); }

 private:
  struct Turn;
  void plan_images(Turn& t, int64_t budget, const TurnEvents& ev);
  void plan_video(Turn& t, int64_t budget, const TurnEvents& ev);
  void encode_media(Turn& t, const TurnEvents& ev);
  int64_t count_tokens(const std::string& content) const;
  const MediaKey& file_key(const std::string& path);
  const MediaKey& model_key();
  static uint64_t identity_of(const MediaKey& key);

  const Model& model() const { return session_.model(); }
  ops::Context& exec_ctx() { return session_.scheduler().executor().ctx(); }

  ConversationOptions opts_;
  ChatSession session_;
  bool images_in_ = false, video_in_ = false;  // already in the dialogue
  // Encodings kept for reuse (after <clear>, or after a turn that failed later on).
  std::vector<std::shared_ptr<const EncodedImage>> image_cache_;
  std::shared_ptr<const EncodedVideo> video_cache_;
  // Identities of the cached encodings (equal identity = equal rows), for prefix reuse.
  std::vector<uint64_t> image_ids_;
  uint64_t video_id_ = 0;
  std::map<std::string, MediaKey> file_keys_;
  std::optional<MediaKey> model_key_;
};

// Removes every <image> / <video> tag from user text and puts `markers` where the first one
// was (or before the text when there is none).
std::string splice_media_markers(std::string text, const std::string& markers);

}  // namespace reel
