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

void run_prompt(const Qwen3VLText& model, TextState& state, std::span<const int32_t> ids,
                const PromptLayout& L, float* logits, bool all_logits, ops::Context& ctx,
                const PrefillProgress& progress) {
  const int n = static_cast<int>(ids.size());
  const int64_t D = model.config().n_embd;
  const int64_t V = model.config().n_vocab;
  const int n_ds = model.config().n_deepstack;
  const int n_batch = state.n_batch();
  std::vector<int32_t> chunk_ids(n_batch);
  std::vector<uint8_t> visual(n_batch);
  std::vector<float> embd(size_t(n_batch) * D), deepstack(size_t(n_ds) * n_batch * D);
  for (int i0 = 0; i0 < n; i0 += n_batch) {
    const int m = std::min(n_batch, n - i0);
    std::fill(deepstack.begin(), deepstack.end(), 0.0f);
    bool any_visual = false;
    for (int j = 0; j < m; ++j) {
      const int i = i0 + j;
      visual[j] = L.main_row[i] != nullptr;
      chunk_ids[j] = visual[j] ? -1 : ids[i];
      if (!visual[j]) continue;
      any_visual = true;
      std::copy_n(L.main_row[i], D, embd.data() + j * D);
      for (int l = 0; l < n_ds && L.ds_row[i]; ++l)
        std::copy_n(L.ds_row[i] + l * L.ds_stride[i], D, deepstack.data() + (size_t(l) * m + j) * D);
    }
    TextBatch tb;
    tb.n = m;
    tb.ids = chunk_ids.data();
    tb.embd = embd.data();
    tb.pos = L.pos.data() + i0;
    tb.deepstack = any_visual && n_ds > 0 ? deepstack.data() : nullptr;
    tb.visual = visual.data();
    const bool last = i0 + m == n;
    if (all_logits)
      model.forward(state, tb, logits + size_t(i0) * V, m, ctx);
    else
      model.forward(state, tb, last ? logits : nullptr, last ? 1 : 0, ctx);
    if (progress) progress(i0 + m, n);
  }
}

}  // namespace reel
