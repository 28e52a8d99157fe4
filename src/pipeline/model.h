// A loaded model: the mapped GGUF files, the tokenizer, the text decoder and (optionally) the
// vision encoder. Immutable after load and safe to share across threads: every method is const
// and nothing here holds per-request state (that lives in sequences and the executor).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "gguf/gguf.h"
#include "model/qwen35_text.h"
#include "model/qwen3vl_text.h"
#include "model/qwen3vl_vision.h"
#include "model/text_decoder.h"
#include "tokenizer/tokenizer.h"

namespace reel {

// Load times of both models: cold (first open, validation and reading every weight page) and
// warm (the same again with the files in the page cache).
struct LoadTimes {
  double text_cold_ms = 0, text_warm_ms = 0, vision_cold_ms = 0, vision_warm_ms = 0;
};

class Model {
 public:
  // Either path may be empty (a vision-only or text-only model), not both. Throws reel::Error
  // naming the file, or when the two files do not belong together. `vision`, when given, is the
  // vision encoder the caller built from mmproj_path (another backend's file, e.g. an NPU's):
  // the model takes it instead of reading mmproj_path as GGUF, and checks it against the text
  // model all the same.
  // `mode`: how the GGUF files are held (gguf::LoadMode: read into huge pages, or mapped).
  // `vision_matmul`: how a GGUF vision encoder multiplies its F16 weights (ops::FloatMatmul).
  static std::shared_ptr<const Model> load(
      const std::string& text_path, const std::string& mmproj_path = "",
      std::unique_ptr<VisionEncoder> vision = nullptr, gguf::LoadMode mode = gguf::LoadMode::kMap,
      ops::FloatMatmul vision_matmul = ops::FloatMatmul::Exact);

  bool has_text() const { return decoder_ != nullptr; }
  bool has_vision() const { return vision_ != nullptr || other_vision_ != nullptr; }
  // The text decoder, whichever kind the file holds: all the pipeline needs of it. Throws
  // reel::Error when only a vision model is loaded.
  const TextDecoder& decoder() const;
  // The concrete decoders, for tests and tools that look inside one: the Qwen3-VL decoder
  // (throws reel::Error when there is none, or it is Qwen3.5) and the Qwen3.5 (Gated DeltaNet +
  // attention) decoder when the text file is one, else null.
  const Qwen3VLText& text() const;
  const Qwen35Text* hybrid() const { return hybrid_.get(); }
  // The vision encoder (throws reel::Error when there is none), and the same as the CPU's
  // Qwen3-VL encoder for tests and tools that look inside it.
  const VisionEncoder& vision() const;
  const Qwen3VLVision& qwen3vl_vision() const;
  const Tokenizer& tokenizer() const;
  const TextConfig& text_config() const { return decoder().text_config(); }
  const gguf::File& text_file() const { return *text_file_; }
  const gguf::File* vision_file() const { return vision_file_.get(); }
  const std::string& text_path() const { return text_path_; }
  const std::string& mmproj_path() const { return mmproj_path_; }

  bool is_stop_token(TokenId id) const;
  TokenId image_pad() const { return image_pad_; }
  TokenId video_pad() const { return video_pad_; }
  double load_ms() const { return text_load_ms_ + vision_load_ms_; }
  // Pages every weight in (counted into the cold times) and times a warm reload. The reload maps
  // the files (LoadMode::kMap) whatever the model was loaded with, so that it holds no second
  // copy of the weights (peak RAM stays the model's); for a model read into huge pages the warm
  // figure leaves out that copy from the page cache.
  LoadTimes measure_load_times() const;

 private:
  Model() = default;
  void load_vision(const std::string& path, gguf::LoadMode mode, ops::FloatMatmul matmul);
  void check_pair(const VisionGeometry& v, const std::string& path) const;
  std::string text_path_, mmproj_path_;
  std::unique_ptr<gguf::File> text_file_, vision_file_;
  std::unique_ptr<Tokenizer> tok_;
  std::unique_ptr<Qwen3VLText> text_;
  std::unique_ptr<Qwen35Text> hybrid_;
  const TextDecoder* decoder_ = nullptr;  // text_ or hybrid_
  std::unique_ptr<Qwen3VLVision> vision_;
  std::unique_ptr<VisionEncoder> other_vision_;  // built by the caller (another backend)
  std::vector<TokenId> stop_ids_;
  TokenId image_pad_ = -1, video_pad_ = -1;
  double text_load_ms_ = 0, vision_load_ms_ = 0;
};

}  // namespace reel
