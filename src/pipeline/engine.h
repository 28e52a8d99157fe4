// A loaded text model ready to run: the mapped GGUF, its tokenizer, the decoder graph and
// the thread pool. Sessions (one conversation each) run on an engine.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "gguf/gguf.h"
#include "model/qwen3vl_text.h"
#include "model/qwen3vl_vision.h"
#include "ops/ops.h"
#include "pipeline/chat_template.h"
#include "pipeline/image_encoder.h"
#include "pipeline/prompt_layout.h"
#include "pipeline/video_encoder.h"
#include "pipeline/sampler.h"
#include "tokenizer/tokenizer.h"

namespace reel {

struct EngineOptions {
  std::string model_path;
  std::string mmproj_path;  // vision encoder (optional)
  int n_threads = 0;  // 0: all cores
  int n_ctx = 4096;   // 0: the model's training context
  int n_batch = 256;  // prefill chunk
};

// The prompt block of an encoded image.
VisualBlock block_of(const EncodedImage& img);

// Expands the chat template's media markers, in order, into the pad tokens (and, for videos,
// the timestamps) of the encoded media, appending their visual blocks in prompt order.
// Throws reel::Error when markers and media do not pair up.
std::string expand_markers(const std::string& content, std::span<const EncodedImage> images,
                           std::span<const EncodedVideo> videos, std::vector<VisualBlock>& blocks);

// Load times of both models: cold (first open, validation and reading every weight page) and
// warm (the same again with the files in the page cache).
struct LoadTimes {
  double text_cold_ms = 0, text_warm_ms = 0, vision_cold_ms = 0, vision_warm_ms = 0;
};

// Throws reel::Error when a KV cache of kv_bytes would take more than 80% of ram_bytes (the
// weights, activations and the rest of the system need the remainder).
void check_kv_memory(int n_ctx, double kv_bytes, double ram_bytes);

class Engine {
 public:
  static std::unique_ptr<Engine> load(const EngineOptions& opts);

  const Qwen3VLText& model() const { return *model_; }
  bool has_vision() const { return vision_ != nullptr; }
  const Qwen3VLVision& vision() const { return *vision_; }
  const ImageOptions& image_options() const { return image_opts_; }
  void set_image_options(const ImageOptions& o) { image_opts_ = o; }
  // Decodes, resizes and encodes one image (throws reel::Error naming the file).
  EncodedImage encode_image(const std::string& path);
  // Plans and encodes a video; token_budget as plan_video's.
  EncodedVideo encode_video(const std::string& path, const VideoOptions& opts,
                            int64_t token_budget, const ProgressFn& progress = nullptr);
  const Tokenizer& tokenizer() const { return *tok_; }
  const gguf::File& file() const { return *file_; }
  ops::Context& ctx() { return *ctx_; }
  const EngineOptions& options() const { return opts_; }
  double load_ms() const { return load_ms_; }
  // Pages every weight in (counted into the cold times) and times a warm reload.
  LoadTimes measure_load_times();
  bool is_stop_token(TokenId id) const;

 private:
  void load_vision(const std::string& path);
  EngineOptions opts_;
  std::unique_ptr<gguf::File> file_;
  std::unique_ptr<Tokenizer> tok_;
  std::unique_ptr<Qwen3VLText> model_;
  std::unique_ptr<gguf::File> mmproj_file_;
  std::unique_ptr<Qwen3VLVision> vision_;
  ImageOptions image_opts_;
  std::unique_ptr<ops::Context> ctx_;
  std::vector<TokenId> stop_ids_;
  double load_ms_ = 0, text_load_ms_ = 0, vision_load_ms_ = 0;
};

struct GenerationStats {
  int n_prompt = 0;       // prompt tokens evaluated (computed) for this turn
  int n_generated = 0;
  double prefill_ms = 0;
  double decode_ms = 0;
  bool hit_context_limit = false;
  double prefill_tps() const { return prefill_ms > 0 ? n_prompt * 1000.0 / prefill_ms : 0; }
  double decode_tps() const { return decode_ms > 0 ? n_generated * 1000.0 / decode_ms : 0; }
};

// Returns false to stop generation early.
using TextSink = std::function<bool(std::string_view)>;

// One conversation: the KV cache holds every token so far, so a follow-up turn only
// evaluates its own new tokens.
class ChatSession {
 public:
  ChatSession(Engine& engine, const SamplingParams& sampling, std::string system_prompt = "");

  // Appends a user turn, then generates the answer (at most max_tokens; < 0: until the
  // context is full), streaming whole UTF-8 pieces to sink.
  GenerationStats ask(const std::string& user_text, int max_tokens, const TextSink& sink);
  // The same with images: user_content already holds one
  // <|vision_start|><|image_pad|><|vision_end|> marker per image (expanded here), in order.
  GenerationStats ask(const std::string& user_content, std::span<const EncodedImage> images,
                      int max_tokens, const TextSink& sink);
  // Images and videos: one template marker per item, each kind in order.
  GenerationStats ask(const std::string& user_content, std::span<const EncodedImage> images,
                      std::span<const EncodedVideo> videos, int max_tokens, const TextSink& sink);
  int n_ctx() const { return state_.n_ctx(); }
  // Forgets the dialogue (keeps the system prompt).
  void clear();
  int n_past() const { return state_.n_past(); }

  // The template text of a user turn holding `content`, as it will be appended to the cache
  // (the system prompt on a fresh dialogue, the end of the previous answer), ready to tokenize.
  std::string user_turn_text(const std::string& content) const;
  // Evaluates a tokenized user turn (pad tokens take their rows from `blocks`, in order), then
  // generates the answer. Throws reel::ContextFull when the turn leaves no room for an answer.
  // On any error, cancellation included, the session is left exactly as it was before the
  // call: a failed turn is forgotten, question and partial answer alike.
  GenerationStats ask_tokens(std::span<const TokenId> ids, std::span<const VisualBlock> blocks,
                             int max_tokens, const TextSink& sink,
                             const PrefillProgress& progress = nullptr);
  // The token ids of the last answer, in order (without the stop token).
  const std::vector<TokenId>& answer_ids() const { return generated_; }

  // A point in the dialogue to return to.
  struct Checkpoint {
    int n_past = 0, next_pos = 0;
    bool answer_open = false;
  };
  Checkpoint checkpoint() const { return {state_.n_past(), next_pos_, answer_open_}; }
  void restore(const Checkpoint& c);

  // Evaluates tokens after what is cached; logits of the last token into last_logits_.
  // Pad tokens (<|image_pad|>, <|video_pad|>) take their rows and grid positions from
  // `blocks`, in order.
  void eval(std::span<const TokenId> ids, std::span<const VisualBlock> blocks = {},
            const PrefillProgress& progress = nullptr);
  int next_position() const { return next_pos_; }

 private:
  GenerationStats generate(int max_tokens, const TextSink& sink);
  bool is_pad(TokenId id) const;
  void eval_text(std::span<const TokenId> ids, const PrefillProgress& progress = nullptr);
  void eval_visual(std::span<const TokenId> ids, std::span<const VisualBlock> blocks,
                   const PrefillProgress& progress);
  Engine& engine_;
  TextState state_;
  Sampler sampler_;
  std::string system_prompt_;
  std::vector<TokenId> generated_;
  std::vector<float> last_logits_;
  std::vector<Pos3> pos_;  // positions of one text batch (preallocated)
  bool answer_open_ = false;  // the previous answer's <|im_end|> is not yet in the cache
  int next_pos_ = 0;          // rotary position of the next token (< n_past after images)
  TokenId image_pad_ = -1, video_pad_ = -1;
};

// Runs ids (no template) through a fresh cache and writes the logits of every position,
// [ids.size()][n_vocab], chunk by chunk through `write`.
void compute_all_logits(Engine& engine, std::span<const TokenId> ids,
                        const std::function<void(const float* rows, int n_rows)>& write);

}  // namespace reel
