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

// Runs a laid-out prompt after what state holds, in batches of state.n_batch(). logits gets
// the last token's row, or every token's ([ids.size()][n_vocab]) when all_logits.
// progress(done, total) after each batch, in tokens.
using PrefillProgress = std::function<void(int done, int total)>;
void run_prompt(const Qwen3VLText& model, TextState& state, std::span<const int32_t> ids,
                const PromptLayout& layout, float* logits, bool all_logits, ops::Context& ctx,
                const PrefillProgress& progress = nullptr);

}  // namespace reel
