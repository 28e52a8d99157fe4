// Images into vision tokens: decode (orientation applied), smart_resize to the model's
// 32-pixel grid within a token budget, bicubic resize, patchify, and the vision encoder.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "media/image.h"
#include "model/vision_encoder.h"
#include "ops/ops.h"

namespace reel {

// Qwen3-VL's vision geometry: 16-pixel patches, 2x2 patches merged into one token. Used where
// no model is loaded (planning a video for `reel frames`) and as the defaults of the structs
// below; with a model, the values come from its encoder (VisionGeometry).
inline constexpr int kQwen3VLPatchSize = 16;
inline constexpr int kQwen3VLSpatialMerge = 2;

// How images are sized before encoding (transformers' defaults: 64 to 16384 tokens).
struct ImageOptions {
  int64_t min_pixels = 65536;              // 64 tokens of 32x32 pixels
  int64_t max_pixels = 16777216;           // 16384 tokens
  int64_t max_input_pixels = 100'000'000;  // refuse larger images before decoding them
};

// One image after the vision encoder: its merged token grid and the rows that replace its
// <|image_pad|> tokens (main) and feed the DeepStack layers.
struct EncodedImage {
  std::string path;
  int width = 0, height = 0;  // as decoded (orientation applied)
  int resized_w = 0, resized_h = 0;
  int grid_h = 0, grid_w = 0;        // in patches
  int merge = kQwen3VLSpatialMerge;  // patches per token side (the vision model's spatial merge)
  int n_tokens() const { return grid_h * grid_w / (merge * merge); }
  std::vector<float> main;       // [n_tokens][D]
  std::vector<float> deepstack;  // [n_deepstack][n_tokens][D]
  double decode_ms = 0, encode_ms = 0;
};

// Throws reel::Error naming the file on unreadable, corrupt, too large or too small images.
EncodedImage encode_image(const VisionEncoder& vision, const std::string& path,
                          const ImageOptions& options, ops::Context& ctx);

// The same in steps, so that a caller can size several images against one token budget
// before encoding any of them.
struct DecodedImage {
  std::string path;
  media::Image image;  // orientation applied
  double decode_ms = 0;
};
DecodedImage decode_image(const std::string& path, const ImageOptions& options);
// The model-input size of an image under `options` (smart_resize to the vision grid).
media::Size2 model_size(const VisionEncoder& vision, const DecodedImage& img,
                        const ImageOptions& options);
// Visual tokens of an image resized to `size`.
int image_tokens(const VisionEncoder& vision, media::Size2 size);
// `scratch` (from vision.new_scratch()) is kept by a caller that encodes image after image;
// null: one for this image alone.
EncodedImage encode_decoded(const VisionEncoder& vision, const DecodedImage& img, media::Size2 size,
                            ops::Context& ctx, VisionScratch* scratch = nullptr);

// The vision tokens of an image already at its model size (multiples of 32 pixels).
EncodedImage encode_resized(const VisionEncoder& vision, const media::Image& resized,
                            ops::Context& ctx, VisionScratch* scratch = nullptr);

}  // namespace reel
