// Where each prompt token's input row and rotary position come from, for prompts that mix
// text and visual blocks (images, video frame groups), as transformers' Qwen3-VL lays them out.
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <vector>

#include "model/qwen3vl_text.h"
#include "ops/ops.h"

namespace reel {

// A visual block of the prompt: tokens laid out on an hm x wm grid (one image, or one
// temporal group of a video), with the rows that replace its pad tokens.
struct VisualBlock {
  int hm = 0, wm = 0;
  const float* main = nullptr;       // [hm*wm][D]
  const float* deepstack = nullptr;  // [n_deepstack][ds_stride rows][D], this block's first row
  int64_t ds_stride = 0;             // rows between DeepStack levels
  // What the rows are, for reusing a cached prompt prefix: equal for equal rows (the same
  // medium, encoded the same way, same group), 0 when unknown (never reused).
  uint64_t id = 0;
};

struct PromptLayout {
  std::vector<Pos3> pos;                // per token
  std::vector<const float*> main_row;   // per token: its input row, null for text
  std::vector<const float*> ds_row;     // per token: its DeepStack level-0 row, or null
  std::vector<int64_t> ds_stride;       // per token: floats between DeepStack levels
  int next_pos = 0;                     // rotary position after the prompt
};

// get_rope_index's rule: text tokens take (p, p, p) and advance p by one; a block starting at
// p puts its token (r, c) at (p, p + r, p + c) and the text after it continues from
// p + max(hm, wm). Pad tokens (image_pad / video_pad ids) are matched to blocks in order;
// throws reel::Error if they do not match the blocks exactly. D is the row width.
PromptLayout layout_prompt(std::span<const int32_t> ids, std::span<const VisualBlock> blocks,
                           int first_pos, int32_t image_pad, int32_t video_pad, int64_t D);

using PrefillProgress = std::function<void(int done, int total)>;

}  // namespace reel
