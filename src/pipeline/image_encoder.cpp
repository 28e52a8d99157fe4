#include "pipeline/image_encoder.h"

#include <algorithm>
#include <chrono>

#include "common/clock.h"
#include "common/error.h"
#include "media/image.h"

namespace reel {
DecodedImage decode_image(const std::string& path, const ImageOptions& options) {
  const auto t0 = Clock::now();
  media::ImageLimits limits;
  limits.max_pixels = options.max_input_pixels;
  DecodedImage d;
  d.path = path;
  d.image = media::load_image(path, limits);
  d.decode_ms = ms_since(t0);
  return d;
}

media::Size2 model_size(const VisionEncoder& vision, const DecodedImage& img,
                        const ImageOptions& options) {
  const VisionGeometry& v = vision.geometry();
  if (v.fixed_size()) return media::Size2{v.fixed_height, v.fixed_width};  // stretched to it
  media::ResizeBudget budget;
  budget.factor = vision.geometry().factor();
  budget.min_pixels = options.min_pixels;
  budget.max_pixels = options.max_pixels;
  try {
    return media::smart_resize(img.image.height, img.image.width, budget);
  } catch (const Error& e) {
    throw_error(e.kind(), img.path + ": " + e.what());  // named, of the same kind
  }
}

int image_tokens(const VisionEncoder& vision, media::Size2 size) {
  const int side = vision.geometry().factor();
  return (size.width / side) * (size.height / side);
}

EncodedImage encode_decoded(const VisionEncoder& vision, const DecodedImage& img, media::Size2 size,
                            ops::Context& ctx, VisionScratch* scratch) {
  const auto t0 = Clock::now();
  const media::Image resized =
      media::resize_bicubic(img.image, size.width, size.height, &ctx.pool());
  const double resize_ms = ms_since(t0);
  EncodedImage enc = encode_resized(vision, resized, ctx, scratch);
  enc.path = img.path;
  enc.width = img.image.width;
  enc.height = img.image.height;
  enc.decode_ms = img.decode_ms + resize_ms;
  return enc;
}

EncodedImage encode_image(const VisionEncoder& vision, const std::string& path,
                          const ImageOptions& options, ops::Context& ctx) {
  const DecodedImage img = decode_image(path, options);
  return encode_decoded(vision, img, model_size(vision, img, options), ctx);
}

EncodedImage encode_resized(const VisionEncoder& vision, const media::Image& resized,
                            ops::Context& ctx, VisionScratch* scratch) {
  const VisionGeometry& v = vision.geometry();
  EncodedImage out;
  out.width = out.resized_w = resized.width;
  out.height = out.resized_h = resized.height;
  out.grid_h = resized.height / v.patch_size;
  out.grid_w = resized.width / v.patch_size;
  out.merge = v.spatial_merge;

  const auto t0 = Clock::now();
  const size_t rows = size_t(out.n_tokens()) * v.out_dim;
  out.main.resize(rows);
  out.deepstack.resize(rows * v.n_deepstack);
  // A still image fills every time slot of its group.
  std::vector<const media::Image*> frames(v.temporal_patch, &resized);
  if (scratch)
    vision.encode_group(frames, out.main.data(), out.deepstack.data(), *scratch, ctx);
  else
    vision.encode_group(frames, out.main.data(), out.deepstack.data(), ctx);
  out.encode_ms = ms_since(t0);
  return out;
}

}  // namespace reel
