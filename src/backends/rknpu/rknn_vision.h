// The vision encoder as an .rknn model on the NPU (librknnrt.so): one RGB image of the model's
// fixed input size in, n_tokens image-token embeddings out. Qwen3-VL's .rknn files have one
// output (the merged image embeddings) or several (those plus the deepstack features); the
// several are interleaved per token, [token][output][embed], the layout RKLLM expects for
// Qwen3-VL's image embedding input.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "backends/rknpu/runtime.h"
#include "media/image.h"
#include "model/vision_encoder.h"

namespace reel::rknpu {

// As a VisionEncoder (the .rknn file feeding the CPU's text decoder): frames of exactly the
// input size, one at a time (temporal_patch 1), output 0 the main rows and the others the
// DeepStack rows in order, Qwen3-VL's 16-pixel patches merged 2x2 (the token count must be
// that grid's: usable_as_vision_encoder()).
class RknnVisionEncoder : public VisionEncoder {
 public:
  // rknn_init with the file path, then the model's input and output shapes from rknn_query.
  // Throws reel::Error naming the file and the runtime's error code when the runtime refuses it,
  // or reel::Unsupported when the shapes are not those of an image encoder.
  RknnVisionEncoder(std::shared_ptr<const RknnApi> api, const std::string& path);
  ~RknnVisionEncoder() override;
  RknnVisionEncoder(const RknnVisionEncoder&) = delete;
  RknnVisionEncoder& operator=(const RknnVisionEncoder&) = delete;

  int input_width() const { return width_; }
  int input_height() const { return height_; }
  int n_tokens() const { return n_tokens_; }
  // Floats per token: the embedding size times the number of outputs.
  int token_floats() const { return embed_ * n_outputs_; }
  // The runtime's own version line (api and driver), from RKNN_QUERY_SDK_VERSION; empty if it
  // did not answer.
  const std::string& sdk_version() const { return sdk_version_; }

  // Encodes an image of exactly input_width() x input_height(), appending n_tokens() *
  // token_floats() floats to `out`.
  void encode(const media::Image& image, std::vector<float>& out) const;

  // Whether the shapes are those the pipeline can use (n_tokens is the input's token grid);
  // throws reel::Unsupported saying why not otherwise.
  void require_pipeline_shapes() const;
  const VisionGeometry& geometry() const override { return geometry_; }
  using VisionEncoder::encode_group;
  void encode_group(std::span<const media::Image* const> frames, float* main, float* deepstack,
                    VisionScratch& scratch, ops::Context& ctx) const override;
  std::unique_ptr<VisionScratch> new_scratch() const override;
  double gflop_per_group(int64_t) const override { return 0; }  // not known for an .rknn

 private:
  void query_shapes();
  void check(int rc, const char* call) const;

  std::shared_ptr<const RknnApi> api_;
  std::string path_;
  rknn::Context ctx_ = 0;
  int width_ = 0, height_ = 0;
  int n_outputs_ = 0, n_tokens_ = 0, embed_ = 0;
  std::string sdk_version_;
  VisionGeometry geometry_;
};

}  // namespace reel::rknpu
