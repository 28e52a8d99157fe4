// The vision encoder as the pipeline sees it: frames in, rows for the text decoder out. Every
// implementation (the CPU's Qwen3-VL encoder today; an NPU's later) provides this, so that the
// pipeline sizes images, plans videos and encodes them without naming a model class. Encoders
// are immutable and shared; each call brings its own ops::Context and, to encode group after
// group without allocating, its own VisionScratch.
#pragma once

#include <memory>
#include <span>

#include "media/image.h"
#include "ops/ops.h"

namespace reel {

// What the pipeline sizes images and plans videos with.
struct VisionGeometry {
  int patch_size = 16;     // pixels per patch side
  int spatial_merge = 2;   // patches per output token side
  int temporal_patch = 2;  // frames per temporal group (a still image repeats its frame)
  int out_dim = 0;         // width of an output row (the text decoder's hidden size)
  int n_deepstack = 0;     // extra row sets for the text decoder's DeepStack layers (0: none)
  // An encoder compiled for one input size (an NPU's) takes only frames of exactly that size;
  // 0 x 0: any size whose sides are multiples of factor().
  int fixed_width = 0, fixed_height = 0;
  int factor() const { return patch_size * spatial_merge; }  // pixels per output token side
  bool fixed_size() const { return fixed_width > 0 && fixed_height > 0; }
};

// The working memory of encode_group (patch buffers, activations), kept by a caller that encodes
// group after group (a video's groups, a live window's frames) so that, once it has seen the
// largest group, no group allocates. Each encoder makes and reads its own kind; one thread uses a
// scratch at a time, while the encoder itself stays shared.
class VisionScratch {
 public:
  virtual ~VisionScratch() = default;
};

class VisionEncoder {
 public:
  virtual ~VisionEncoder() = default;

  virtual const VisionGeometry& geometry() const = 0;

  // Encodes one temporal group: geometry().temporal_patch frames of one size whose sides are
  // multiples of factor() (of the fixed size, when there is one). An encoder with temporal_patch
  // 1 sees every frame alone, so its videos go as images (one frame per image). Writes main
  // [tokens][out_dim] and deepstack [n_deepstack][tokens][out_dim] (may be null when n_deepstack is
  // 0), tokens = (height / factor) * (width / factor). `scratch` comes from this encoder's
  // new_scratch(). Throws reel::Error for frames of the wrong count or size.
  virtual void encode_group(std::span<const media::Image* const> frames, float* main,
                            float* deepstack, VisionScratch& scratch, ops::Context& ctx) const = 0;
  // An empty scratch for encode_group; it grows to the largest group it is used for.
  virtual std::unique_ptr<VisionScratch> new_scratch() const = 0;
  // The same with a scratch of its own, for a single group (it allocates).
  void encode_group(std::span<const media::Image* const> frames, float* main, float* deepstack,
                    ops::Context& ctx) const {
    const std::unique_ptr<VisionScratch> scratch = new_scratch();
    encode_group(frames, main, deepstack, *scratch, ctx);
  }

  // Floating-point operations (2 per multiply-add) of encoding one group of n_patches patches,
  // for reports against the machine's peak; 0 when unknown.
  virtual double gflop_per_group(int64_t n_patches) const = 0;
};

}  // namespace reel
