// Images into vision tokens: decode (orientation applied), smart_resize to the model's
// 32-pixel grid within a token budget, bicubic resize, patchify, and the vision encoder.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "media/image.h"
#include "model/qwen3vl_vision.h"
#include "ops/ops.h"

namespace reel {

// How images are sized before encoding (transformers' defaults: 64 to 16384 tokens).
struct ImageOptions {
  int64_t min_pixels = 65536;     // 64 tokens of 32x32 pixels
  int64_t max_pixels = 16777216;  // 16384 tokens
  int64_t max_input_pixels = 100'000'000;  // refuse larger images before decoding them
};

// One image after the vision encoder: its merged token grid and the rows that replace its
// <|image_pad|> tokens (main) and feed the DeepStack layers.
struct EncodedImage {
  std::string path;
  int width = 0, height = 0;          // as decoded (orientation applied)
  int resized_w = 0, resized_h = 0;
  int grid_h = 0, grid_w = 0;         // in 16-px patches
  int n_tokens() const { return grid_h * grid_w / 4; }
  std::vector<float> main;            // [n_tokens][D]
  std::vector<float> deepstack;       // [n_deepstack][n_tokens][D]
  double decode_ms = 0, encode_ms = 0;
};

// Throws reel::Error naming the file on unreadable, corrupt, too large or too small images.
EncodedImage encode_image(const Qwen3VLVision& vision, const std::string& path,
                          const ImageOptions& options, ops::Context& ctx);

// The vision tokens of an image already at its model size (multiples of 32 pixels).
EncodedImage encode_resized(const Qwen3VLVision& vision, const media::Image& resized,
                            ops::Context& ctx);

}  // namespace reel
