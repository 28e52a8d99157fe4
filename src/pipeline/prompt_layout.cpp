#include "pipeline/prompt_layout.h"

#include <algorithm>

#include "common/error.h"

namespace reel {

PromptLayout layout_prompt(std::span<const int32_t> ids, std::span<const VisualBlock> blocks,
                           int first_pos, int32_t image_pad, int32_t video_pad, int64_t D) {
  const size_t n = ids.size();
  PromptLayout L;
  L.pos.resize(n);
  L.main_row.assign(n, nullptr);
  L.ds_row.assign(n, nullptr);
  L.ds_stride.assign(n, 0);
  int next = first_pos, base = 0, k = 0;
  size_t b = 0;
  for (size_t i = 0; i < n; ++i) {
    const bool pad = ids[i] >= 0 && (ids[i] == image_pad || ids[i] == video_pad);
    if (!pad) {
      if (k != 0) throw Error("a visual block's pad tokens are interrupted by text");
      L.pos[i] = Pos3{next, next, next};
      ++next;
      continue;
    }
    if (b >= blocks.size()) throw Error("the prompt has more visual pad tokens than encoded media");
    const VisualBlock& vb = blocks[b];
    if (vb.hm < 1 || vb.wm < 1) throw Error("empty visual block");
    if (k == 0) base = next;
    L.pos[i] = Pos3{base, base + k / vb.wm, base + k % vb.wm};
    L.main_row[i] = vb.main + int64_t(k) * D;
    if (vb.deepstack) L.ds_row[i] = vb.deepstack + int64_t(k) * D;
    L.ds_stride[i] = vb.ds_stride * D;
    if (++k == vb.hm * vb.wm) {
      next = base + std::max(vb.hm, vb.wm);
      k = 0;
      ++b;
    }
  }
  if (k != 0 || b != blocks.size())
    throw Error("the prompt's visual pad tokens do not match the encoded media");
  L.next_pos = next;
  return L;
}

}  // namespace reel
