#include "pipeline/image_encoder.h"

#include <algorithm>
#include <chrono>

#include "common/error.h"
#include "media/image.h"

namespace reel {
namespace {

using Clock = std::chrono::steady_clock;

double ms_since(Clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
}

}  // namespace

EncodedImage encode_image(const Qwen3VLVision& vision, const std::string& path,
                          const ImageOptions& options, ops::Context& ctx) {
  const VisionConfig& v = vision.config();
  const auto t0 = Clock::now();
  media::ImageLimits limits;
  limits.max_pixels = options.max_input_pixels;
  const media::Image img = media::load_image(path, limits);
  media::ResizeBudget budget;
  budget.factor = v.patch_size * v.spatial_merge;
  budget.min_pixels = options.min_pixels;
  budget.max_pixels = options.max_pixels;
  media::Size2 size;
  try {
    size = media::smart_resize(img.height, img.width, budget);
  } catch (const Error& e) {
    throw Error(path + ": " + e.what());
  }
  const media::Image resized = media::resize_bicubic(img, size.width, size.height);
  const double decode_ms = ms_since(t0);
  EncodedImage enc = encode_resized(vision, resized, ctx);
  enc.path = path;
  enc.width = img.width;
  enc.height = img.height;
  enc.decode_ms = decode_ms;
  return enc;
}

EncodedImage encode_resized(const Qwen3VLVision& vision, const media::Image& resized,
                            ops::Context& ctx) {
  const VisionConfig& v = vision.config();
  EncodedImage out;
  out.width = out.resized_w = resized.width;
  out.height = out.resized_h = resized.height;
  const media::Image* frames[2] = {&resized, &resized};  // a still image fills both time slots
  std::vector<float> pixels;
  media::PatchGrid grid;
  media::patchify(frames, v.patch_size, v.temporal_patch, v.spatial_merge, v.image_mean,
                  v.image_std, pixels, grid);
  out.grid_h = grid.h;
  out.grid_w = grid.w;

  const auto t0 = Clock::now();
  const size_t rows = size_t(out.n_tokens()) * v.out_dim;
  out.main.resize(rows);
  out.deepstack.resize(rows * v.deepstack_layers.size());
  ctx.reserve(int64_t(grid.h) * grid.w, std::max(v.n_ff, 4 * v.n_embd));
  vision.encode(pixels.data(), 1, grid.h, grid.w, out.main.data(), out.deepstack.data(), ctx);
  out.encode_ms = ms_since(t0);
  return out;
}

}  // namespace reel
