// The Qwen3-VL vision encoder from an mmproj GGUF (general.architecture "clip", projector
// "qwen3vl_merger"): Conv3d patch embedding (two temporal weight slices), bilinearly
// interpolated learned position embeddings, 2-D rotary ViT blocks with attention restricted to
// one temporal group, the main patch merger and the DeepStack mergers. Numerics follow
// transformers' Qwen3VLVisionModel in float32. Weights are views into the mapped GGUF in their
// stored type; activations live in a VisionState sized once for a maximum patch count.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "model/vision_encoder.h"
#include "ops/ops.h"

namespace reel::gguf {
class File;
}

namespace reel {

struct VisionConfig {
  int n_layer = 0;
  int n_embd = 0;  // D_v
  int n_head = 0;
  int head_dim = 0;        // D_v / n_head
  int n_ff = 0;            // block MLP width
  int patch_size = 0;      // P (pixels per patch side)
  int spatial_merge = 0;   // m: an m x m block of patches becomes one output token
  int temporal_patch = 2;  // frames per patch (the two Conv3d weight slices)
  int n_pos = 0;           // rows of the learned position table
  int pos_grid = 0;        // sqrt(n_pos): the table is a pos_grid x pos_grid grid
  int out_dim = 0;         // merger output width (= text hidden size)
  float eps = 0;           // LayerNorm epsilon
  float rope_theta = 10000.0f;
  std::vector<int> deepstack_layers;  // absolute block indices, ascending
  float image_mean[3] = {0, 0, 0};
  float image_std[3] = {1, 1, 1};

  int patch_dim() const { return 3 * temporal_patch * patch_size * patch_size; }
  int merge_unit() const { return spatial_merge * spatial_merge; }
};

struct VisionLayer {
  const float *ln1_w = nullptr, *ln1_b = nullptr, *ln2_w = nullptr, *ln2_b = nullptr;
  const float *qkv_b = nullptr, *out_b = nullptr, *up_b = nullptr, *down_b = nullptr;
  ops::Matrix qkv, out, up, down;
};

// A patch merger: [norm] -> fc1 -> GELU(erf) -> fc2. The main merger normalises each patch
// (width D_v) before the 2x2 concatenation, the DeepStack ones the concatenation (m*m*D_v).
struct VisionMerger {
  const float *norm_w = nullptr, *norm_b = nullptr, *fc1_b = nullptr, *fc2_b = nullptr;
  ops::Matrix fc1, fc2;
  int norm_dim = 0;
};

class Qwen3VLVision;

// Activation memory of one encode call for up to max_patches patches (all temporal groups
// together). Sized once; encode() does not allocate. Throws IoError when memory runs out.
class VisionState {
 public:
  VisionState(const Qwen3VLVision& model, int max_patches);
  int max_patches() const { return max_patches_; }

 private:
  friend class Qwen3VLVision;
  void allocate(const VisionConfig& c, int max_patches);
  int max_patches_ = 0;
  std::vector<float> x_, xn_, work_, k_, v_, attn_, pos_, rope_cos_, rope_sin_;
};

// Qwen3VLVision's VisionScratch: one group's patch pixels and activations, grown to the largest
// group seen.
class VisionGroupScratch : public VisionScratch {
 private:
  friend class Qwen3VLVision;
  std::vector<float> pixels_;
  std::unique_ptr<VisionState> state_;
};

// Called with block = -1 for the encoder input (patch + position embeddings) and then with each
// block index after that block; x is [n_patches][n_embd] in the pixel-row order. For tests.
using VisionTrace = std::function<void(int block, const float* x, int64_t n_patches)>;

class Qwen3VLVision : public VisionEncoder {
 public:
  // Binds and checks every tensor and clip.* key of a Qwen3-VL mmproj GGUF. Throws
  // reel::Error naming the file and the tensor or key at fault. `float_matmul`: how the
  // matmuls treat F16 weights (ops::FloatMatmul; Int16 is the faster, less exact option of
  // --vision-precision int16: on the 2B-shaped encoder its output differs from Exact's by ~4e-4
  // of the output's rms, at most ~1.7e-3 of it, README "Vision precision").
  static std::unique_ptr<Qwen3VLVision> load(
      const gguf::File& mmproj, ops::FloatMatmul float_matmul = ops::FloatMatmul::Exact);
  ops::FloatMatmul float_matmul() const { return float_matmul_; }

  const VisionConfig& config() const { return cfg_; }
  int n_deepstack() const { return static_cast<int>(cfg_.deepstack_layers.size()); }

  // VisionEncoder: patchify (the processor's layout and normalisation), then encode.
  const VisionGeometry& geometry() const override { return geometry_; }
  using VisionEncoder::encode_group;
  void encode_group(std::span<const media::Image* const> frames, float* main, float* deepstack,
                    VisionScratch& scratch, ops::Context& ctx) const override;
  std::unique_ptr<VisionScratch> new_scratch() const override;
  double gflop_per_group(int64_t n_patches) const override;

  // pixels: [n_groups*grid_h*grid_w][patch_dim()] in the processor's row order (temporal group,
  // merged-block row, merged-block column, then the m x m patches of the block row-major;
  // column ((c*temporal_patch + tt)*P + py)*P + px). Each temporal group is its own attention
  // sequence. Writes main [n_tokens][out_dim] and deepstack [n_deepstack][n_tokens][out_dim]
  // (may be null when n_deepstack() == 0), n_tokens = n_groups*grid_h*grid_w / merge_unit().
  void encode(VisionState& st, const float* pixels, int n_groups, int grid_h, int grid_w,
              float* main, float* deepstack, ops::Context& ctx,
              const VisionTrace& trace = nullptr) const;
  // The same with a state sized for this call.
  void encode(const float* pixels, int n_groups, int grid_h, int grid_w, float* main,
              float* deepstack, ops::Context& ctx) const;

  static int n_tokens(const VisionConfig& c, int n_groups, int grid_h, int grid_w) {
    return n_groups * grid_h * grid_w / c.merge_unit();
  }

 private:
  void embed_patches(VisionState& st, const float* pixels, int n, ops::Context& ctx) const;
  void position_tables(VisionState& st, int grid_h, int grid_w) const;
  void attention_block(VisionState& st, int layer, int n_groups, int n_group_patches,
                       ops::Context& ctx) const;
  void ffn_block(VisionState& st, int layer, int n, ops::Context& ctx) const;
  void merge(VisionState& st, const VisionMerger& m, int n, float* out, ops::Context& ctx) const;
  void matmul_rows(const ops::Matrix& w, const float* x, int64_t n, float* y,
                   ops::Context& ctx) const;

  VisionConfig cfg_;
  VisionGeometry geometry_;
  ops::FloatMatmul float_matmul_ = ops::FloatMatmul::Exact;
  ops::Matrix patch_w_[2];
  const float* patch_b_ = nullptr;
  std::vector<float> pos_owned_;      // position table dequantized when not stored as F32
  const float* pos_table_ = nullptr;  // [n_pos][n_embd]
  std::vector<VisionLayer> layers_;
  VisionMerger merger_;
  std::vector<VisionMerger> deepstack_;  // parallel to cfg_.deepstack_layers
};

// Building blocks exposed for tests.
namespace vision {

// torch.linspace(start, end, steps)[i] in float32, as the CPU kernel computes it (forward
// from start for the first half, backward from end for the second).
float linspace_f32(float start, float end, int steps, int i);

// Bilinear (align-corners) taps into a side x side position table for a grid_h x grid_w patch
// grid, as transformers' fast_pos_embed_interpolate builds them, listed in the merged-block
// order of the pixel rows: [grid_h*grid_w] entries of 4 row indices and 4 float32 weights
// (order: (y0,x0), (y0,x1), (y1,x0), (y1,x1)).
struct PosTaps {
  int32_t idx[4];
  float w[4];
};
std::vector<PosTaps> position_taps(int side, int grid_h, int grid_w, int merge);

// 2-D rotary angles per patch in the merged-block order: [grid_h*grid_w][head_dim/2], first
// head_dim/4 angles row * inv_freq, then head_dim/4 angles col * inv_freq, with
// inv_freq[j] = 1 / theta^(2j / (head_dim/2)) in float32.
std::vector<float> rope_angles(int head_dim, float theta, int grid_h, int grid_w, int merge);

}  // namespace vision

}  // namespace reel
