#include "pipeline/model.h"

#include <algorithm>

#include "common/clock.h"
#include "common/error.h"
#include "model/qwen35_text.h"

namespace reel {
namespace {

bool is_qwen35(const gguf::File& f) {
  const auto arch = f.opt_str("general.architecture");
  return arch && (*arch == "qwen35" || *arch == "qwen35moe");
}

}  // namespace

std::shared_ptr<const Model> Model::load(const std::string& text_path,
                                         const std::string& mmproj_path,
                                         std::unique_ptr<VisionEncoder> vision, gguf::LoadMode mode,
                                         ops::FloatMatmul vision_matmul) {
  if (text_path.empty() && mmproj_path.empty() && !vision) throw Error("no model file given");
  auto m = std::shared_ptr<Model>(new Model());
  m->text_path_ = text_path;
  m->mmproj_path_ = mmproj_path;
  if (!text_path.empty()) {
    const auto t0 = Clock::now();
    m->text_file_ = gguf::File::open(text_path, mode);
    // Qwen3.5 (qwen35moe: refused there as not supported yet) or Qwen3-VL.
    if (is_qwen35(*m->text_file_)) {
      m->hybrid_ = Qwen35Text::load(*m->text_file_);
      m->decoder_ = m->hybrid_.get();
    } else {
      m->text_ = Qwen3VLText::load(*m->text_file_);
      m->decoder_ = m->text_.get();
    }
    m->tok_ = Tokenizer::from_gguf(*m->text_file_);
    const TextConfig& c = m->text_config();
    if (m->tok_->vocab_size() > c.n_vocab)
      throw Error(text_path + ": the tokenizer has " + std::to_string(m->tok_->vocab_size()) +
                  " tokens but the embedding only " + std::to_string(c.n_vocab) + " rows");
    for (const char* s : {"<|im_end|>", "<|endoftext|>"})
      if (TokenId id = m->tok_->token_id(s); id >= 0) m->stop_ids_.push_back(id);
    if (TokenId eos = m->tok_->eos_id(); eos >= 0) m->stop_ids_.push_back(eos);
    m->image_pad_ = m->tok_->token_id("<|image_pad|>");
    m->video_pad_ = m->tok_->token_id("<|video_pad|>");
    m->text_load_ms_ = ms_since(t0);
  }
  if (vision) {
    if (m->has_text()) m->check_pair(vision->geometry(), mmproj_path);
    m->other_vision_ = std::move(vision);
  } else if (!mmproj_path.empty()) {
    const auto t0 = Clock::now();
    m->load_vision(mmproj_path, mode, vision_matmul);
    m->vision_load_ms_ = ms_since(t0);
  }
  return m;
}

void Model::load_vision(const std::string& path, gguf::LoadMode mode, ops::FloatMatmul matmul) {
  vision_file_ = gguf::File::open(path, mode);
  vision_ = Qwen3VLVision::load(*vision_file_, matmul);
  if (has_text()) check_pair(vision_->geometry(), path);
}

void Model::check_pair(const VisionGeometry& v, const std::string& path) const {
  const TextConfig& t = text_config();
  const std::string pair = " (" + path + " with " + text_path_ + ")";
  if (v.out_dim != t.n_embd)
    throw Error("the vision model makes " + std::to_string(v.out_dim) +
                "-wide embeddings but the text model's hidden size is " + std::to_string(t.n_embd) +
                ": the files do not belong together" + pair);
  // Qwen3.5's tower is Qwen3-VL's without DeepStack; its text model takes no DeepStack rows.
  if (v.n_deepstack != t.n_deepstack)
    throw Error("the vision model has " + std::to_string(v.n_deepstack) +
                " DeepStack layers but the text model expects " + std::to_string(t.n_deepstack) +
                ": the files do not belong together" + pair);
}

const Qwen3VLText& Model::text() const {
  if (hybrid_)
    throw Unsupported("this is not available for Qwen3.5 (hybrid Gated DeltaNet) models yet");
  if (!text_) throw Error("this needs a text model; only a vision model is loaded");
  return *text_;
}

const TextDecoder& Model::decoder() const {
  if (!decoder_) throw Error("this needs a text model; only a vision model is loaded");
  return *decoder_;
}

const VisionEncoder& Model::vision() const {
  if (other_vision_) return *other_vision_;
  return qwen3vl_vision();
}

const Qwen3VLVision& Model::qwen3vl_vision() const {
  if (!vision_) throw Error("images and videos need a vision model (an mmproj file)");
  return *vision_;
}

const Tokenizer& Model::tokenizer() const {
  if (!tok_) throw Error("this needs a text model; only a vision model is loaded");
  return *tok_;
}

bool Model::is_stop_token(TokenId id) const {
  return std::find(stop_ids_.begin(), stop_ids_.end(), id) != stop_ids_.end();
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

LoadTimes Model::measure_load_times() const {
  LoadTimes t;
  if (text_file_) {
    t.text_cold_ms = text_load_ms_ + touch_pages(*text_file_);
    const auto t0 = Clock::now();
    auto f = gguf::File::open(text_path_, gguf::LoadMode::kMap);
    if (is_qwen35(*f))
      Qwen35Text::load(*f);
    else
      Qwen3VLText::load(*f);
    auto tok = Tokenizer::from_gguf(*f);
    touch_pages(*f);
    t.text_warm_ms = ms_since(t0);
  }
  if (vision_file_) {
    t.vision_cold_ms = vision_load_ms_ + touch_pages(*vision_file_);
    const auto t0 = Clock::now();
    auto f = gguf::File::open(mmproj_path_, gguf::LoadMode::kMap);
    auto v = Qwen3VLVision::load(*f);
    touch_pages(*f);
    t.vision_warm_ms = ms_since(t0);
  }
  return t;
}

}  // namespace reel
