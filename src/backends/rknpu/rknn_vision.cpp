#include "backends/rknpu/rknn_vision.h"

#include <cstring>

#include "common/error.h"

namespace reel::rknpu {
namespace {

constexpr uint32_t kMaxOutputs = 16;  // Qwen3-VL: 1 merged output + 3 deepstack levels
constexpr int kMaxSide = 8192;
constexpr int64_t kMaxOutputFloats = int64_t{1} << 28;  // 1 GiB of float32 per output

std::string bounded(const char* s, size_t n) {
  return std::string(s, strnlen(s, n));
}

}  // namespace

RknnVisionEncoder::RknnVisionEncoder(std::shared_ptr<const RknnApi> api, const std::string& path)
    : api_(std::move(api)), path_(path) {
  // size 0: `model` is the file's path, the runtime reads it.
  const int rc = api_->init(&ctx_, const_cast<char*>(path_.c_str()), 0, 0, nullptr);
  if (rc != rknn::kSucc) {
    ctx_ = 0;  // rknn_destroy is for contexts rknn_init made
    throw Error(path_ + ": the RKNN runtime cannot load this model (rknn_init returned " +
                std::to_string(rc) + "); is it an .rknn file for this chip and runtime?");
  }
  try {
    query_shapes();
  } catch (...) {
    api_->destroy(ctx_);
    throw;
  }
}

RknnVisionEncoder::~RknnVisionEncoder() {
  if (ctx_) api_->destroy(ctx_);
}

void RknnVisionEncoder::check(int rc, const char* call) const {
  if (rc != rknn::kSucc)
    throw Error(path_ + ": " + call + " failed in the RKNN runtime (error " + std::to_string(rc) +
                ")");
}

void RknnVisionEncoder::query_shapes() {
  rknn::SdkVersion version{};
  if (api_->query(ctx_, rknn::kQuerySdkVersion, &version, sizeof version) == rknn::kSucc)
    sdk_version_ = "api " + bounded(version.api_version, sizeof version.api_version) + ", driver " +
                   bounded(version.drv_version, sizeof version.drv_version);

  rknn::InputOutputNum io{};
  check(api_->query(ctx_, rknn::kQueryInOutNum, &io, sizeof io), "rknn_query(IN_OUT_NUM)");
  if (io.n_input != 1 || io.n_output < 1 || io.n_output > kMaxOutputs)
    throw Unsupported(path_ + ": not an image encoder (" + std::to_string(io.n_input) +
                      " inputs, " + std::to_string(io.n_output) + " outputs; Reel needs 1 input)");

  rknn::TensorAttr in{};
  in.index = 0;
  check(api_->query(ctx_, rknn::kQueryInputAttr, &in, sizeof in), "rknn_query(INPUT_ATTR)");
  const bool nchw = in.fmt == rknn::kNchw;
  const uint32_t c = nchw ? in.dims[1] : in.dims[3];
  height_ = int(nchw ? in.dims[2] : in.dims[1]);
  width_ = int(nchw ? in.dims[3] : in.dims[2]);
  if (in.n_dims != 4 || c != 3 || height_ < 1 || width_ < 1 || height_ > kMaxSide ||
      width_ > kMaxSide)
    throw Unsupported(path_ + ": its input is not one RGB image (dims " +
                      std::to_string(in.dims[0]) + "x" + std::to_string(in.dims[1]) + "x" +
                      std::to_string(in.dims[2]) + "x" + std::to_string(in.dims[3]) + ")");

  n_outputs_ = int(io.n_output);
  for (uint32_t i = 0; i < io.n_output; ++i) {
    rknn::TensorAttr out{};
    out.index = i;
    check(api_->query(ctx_, rknn::kQueryOutputAttr, &out, sizeof out), "rknn_query(OUTPUT_ATTR)");
    // [1, tokens, embed] or [tokens, embed]: the first dimension over 1 counts tokens, the
    // next one is the embedding, as Rockchip's demo reads it.
    int tokens = 0, embed = 0;
    for (uint32_t d = 0; d + 1 < out.n_dims && d + 1 < uint32_t(rknn::kMaxDims); ++d)
      if (out.dims[d] > 1) {
        tokens = int(out.dims[d]);
        embed = int(out.dims[d + 1]);
        break;
      }
    if (tokens < 1 || embed < 1 || int64_t(tokens) * embed > kMaxOutputFloats)
      throw Unsupported(path_ + ": output " + std::to_string(i) +
                        " is not [tokens, embedding] image embeddings");
    if (i > 0 && (tokens != n_tokens_ || embed != embed_))
      throw Unsupported(path_ + ": its outputs differ in shape; Reel needs them equal");
    n_tokens_ = tokens;
    embed_ = embed;
  }
  geometry_.patch_size = 16;  // Qwen3-VL's
  geometry_.spatial_merge = 2;
  geometry_.temporal_patch = 1;
  geometry_.out_dim = embed_;
  geometry_.n_deepstack = n_outputs_ - 1;
  geometry_.fixed_width = width_;
  geometry_.fixed_height = height_;
}

void RknnVisionEncoder::require_pipeline_shapes() const {
  const int f = geometry_.factor();
  if (width_ % f || height_ % f || (width_ / f) * (height_ / f) != n_tokens_)
    throw Unsupported(path_ + ": its " + std::to_string(width_) + "x" + std::to_string(height_) +
                      " input gives " + std::to_string(n_tokens_) +
                      " tokens, not one per 32x32 pixels as Qwen3-VL's encoder does");
}

namespace {

// The runtime's interleaved rows of one frame, kept between frames.
struct RknnScratch : VisionScratch {
  std::vector<float> rows;
};

}  // namespace

std::unique_ptr<VisionScratch> RknnVisionEncoder::new_scratch() const {
  return std::make_unique<RknnScratch>();
}

void RknnVisionEncoder::encode_group(std::span<const media::Image* const> frames, float* main,
                                     float* deepstack, VisionScratch& scratch,
                                     ops::Context& ctx) const {
  if (frames.size() != 1 || !frames[0])
    throw InternalError("the RKNN encoder takes one frame at a time, not " +
                        std::to_string(frames.size()));
  auto* mine = dynamic_cast<RknnScratch*>(&scratch);
  if (!mine) throw InternalError("RKNN encoder: a scratch of another encoder");
  ctx.throw_if_cancelled();
  std::vector<float>& rows = mine->rows;
  rows.clear();
  encode(*frames[0], rows);
  // [token][output][embed] to main [token][embed] and deepstack [output - 1][token][embed].
  const size_t embed = size_t(embed_), tokens = size_t(n_tokens_);
  for (size_t t = 0; t < tokens; ++t) {
    const float* src = rows.data() + t * embed * size_t(n_outputs_);
    std::memcpy(main + t * embed, src, embed * sizeof(float));
    for (size_t o = 1; o < size_t(n_outputs_); ++o)
      std::memcpy(deepstack + ((o - 1) * tokens + t) * embed, src + o * embed,
                  embed * sizeof(float));
  }
}

void RknnVisionEncoder::encode(const media::Image& image, std::vector<float>& out) const {
  if (image.width != width_ || image.height != height_ ||
      image.rgb.size() != size_t(width_) * size_t(height_) * 3)
    throw InternalError("RKNN encoder given a " + std::to_string(image.width) + "x" +
                        std::to_string(image.height) + " image for a " + std::to_string(width_) +
                        "x" + std::to_string(height_) + " model");
  rknn::Input in{};
  in.index = 0;
  in.buf = const_cast<uint8_t*>(image.rgb.data());
  in.size = uint32_t(image.rgb.size());
  in.pass_through = 0;  // the runtime converts uint8 NHWC to what the model takes
  in.type = rknn::kUint8;
  in.fmt = rknn::kNhwc;
  check(api_->inputs_set(ctx_, 1, &in), "rknn_inputs_set");
  check(api_->run(ctx_, nullptr), "rknn_run");

  std::vector<rknn::Output> outs(static_cast<size_t>(n_outputs_));
  for (int i = 0; i < n_outputs_; ++i) {
    outs[size_t(i)] = rknn::Output{};
    outs[size_t(i)].want_float = 1;
    outs[size_t(i)].index = uint32_t(i);
  }
  check(api_->outputs_get(ctx_, uint32_t(n_outputs_), outs.data(), nullptr), "rknn_outputs_get");
  // The runtime owns the output buffers from here until rknn_outputs_release, also on errors.
  struct Release {
    const RknnVisionEncoder& self;
    std::vector<rknn::Output>& outs;
    ~Release() { self.api_->outputs_release(self.ctx_, uint32_t(outs.size()), outs.data()); }
  } release{*this, outs};

  const size_t embed = size_t(embed_), per_output = size_t(n_tokens_) * embed;
  for (const rknn::Output& o : outs)
    if (!o.buf || o.size != per_output * sizeof(float))
      throw Error(path_ + ": the RKNN runtime returned " + std::to_string(o.size) +
                  " bytes for an output of " + std::to_string(per_output * sizeof(float)));
  const size_t base = out.size();
  out.resize(base + per_output * outs.size());
  float* dst = out.data() + base;
  for (size_t t = 0; t < size_t(n_tokens_); ++t)
    for (const rknn::Output& o : outs) {
      std::memcpy(dst, static_cast<const float*>(o.buf) + t * embed, embed * sizeof(float));
      dst += embed;
    }
}

}  // namespace reel::rknpu
