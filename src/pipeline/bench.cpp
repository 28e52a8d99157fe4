#include "pipeline/bench.h"

#include <algorithm>
#include <chrono>
#include <vector>

#include "common/error.h"
#include "media/image.h"
#include "ops/roofline.h"

namespace reel {
namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

// Ordinary text token ids (not special tokens), spread over the vocabulary.
std::vector<TokenId> bench_prompt(int n, int n_vocab) {
  std::vector<TokenId> ids(n);
  const int usable = std::min(n_vocab, 150000);
  for (int i = 0; i < n; ++i) ids[i] = static_cast<TokenId>((1000 + 7919LL * i) % usable);
  return ids;
}

}  // namespace

BenchResult run_bench(Engine& engine, const BenchOptions& opts) {
  if (opts.n_prompt < 1 || opts.n_decode < 1 || opts.repetitions < 1)
    throw Error("bench sizes must be positive");
  const Qwen3VLText& model = engine.model();
  const int n_ctx = opts.n_prompt + opts.n_decode + 1;
  if (n_ctx > engine.options().n_ctx) throw Error("bench prompt + decode exceed the context (-c)");
  const int n_vocab = model.config().n_vocab;
  TextState state(model, n_ctx, std::min(opts.n_prompt, engine.options().n_batch));
  std::vector<float> logits(n_vocab);
  const std::vector<TokenId> prompt = bench_prompt(opts.n_prompt, n_vocab);

  BenchResult r;
  r.bandwidth_gbs = ops::measure_read_bandwidth_gbs(engine.ctx().pool());
  r.weight_bytes_per_token = static_cast<double>(model.weight_bytes_per_token());
  for (int rep = 0; rep < opts.repetitions; ++rep) {
    state.truncate(0);
    auto t0 = Clock::now();
    for (int i = 0; i < opts.n_prompt; i += state.n_batch()) {
      TextBatch b;
      b.n = std::min(state.n_batch(), opts.n_prompt - i);
      b.ids = prompt.data() + i;
      const bool last = i + b.n == opts.n_prompt;
      model.forward(state, b, last ? logits.data() : nullptr, last ? 1 : 0, engine.ctx());
    }
    r.prefill_tps = std::max(r.prefill_tps, opts.n_prompt / seconds_since(t0));

    t0 = Clock::now();
    for (int i = 0; i < opts.n_decode; ++i) {
      TokenId id = argmax(logits.data(), n_vocab);
      TextBatch b;
      b.n = 1;
      b.ids = &id;
      model.forward(state, b, logits.data(), 1, engine.ctx());
    }
    r.decode_tps = std::max(r.decode_tps, opts.n_decode / seconds_since(t0));
  }
  return r;
}

namespace {

// Floating-point operations (2 per multiply-add) of one encoder pass over n_patches patches
// in one attention group: the matmuls and the attention products; norms and activations are
// a negligible O(n*D) on top.
double vision_gflop(const VisionConfig& v, int64_t n_patches) {
  const double n = double(n_patches), D = v.n_embd, F = v.n_ff, M = 4.0 * v.n_embd;
  double macs = n * v.patch_dim() * D;                          // patch embedding
  macs += v.n_layer * (n * (3 * D * D + D * D + 2 * D * F)      // qkv, out, fc1, fc2
                       + 2 * n * n * D);                         // QK^T and AV
  const double tokens = n / 4;
  macs += (1 + v.deepstack_layers.size()) * tokens * (M * M + M * v.out_dim);  // mergers
  return 2 * macs / 1e9;
}

media::Image synthetic_image(int width, int height) {
  media::Image img;
  img.width = width;
  img.height = height;
  img.rgb.resize(size_t(width) * height * 3);
  for (int y = 0; y < height; ++y)
    for (int x = 0; x < width; ++x)
      for (int c = 0; c < 3; ++c)
        img.rgb[(size_t(y) * width + x) * 3 + c] = static_cast<uint8_t>((x * 7 + y * 3 + c * 50) & 255);
  return img;
}

}  // namespace

VisionBenchResult run_vision_bench(const Qwen3VLVision& vision, int width, int height,
                                   const ImageOptions& image, int repetitions, ops::Context& ctx) {
  const VisionConfig& v = vision.config();
  media::ResizeBudget budget;
  budget.factor = v.patch_size * v.spatial_merge;
  budget.min_pixels = image.min_pixels;
  budget.max_pixels = image.max_pixels;
  const media::Size2 size = media::smart_resize(height, width, budget);
  const media::Image resized = media::resize_bicubic(synthetic_image(width, height), size.width, size.height);
  VisionBenchResult r;
  r.width = width;
  r.height = height;
  r.resized_w = size.width;
  r.resized_h = size.height;
  r.fma_peak_gflops = ops::measure_fma_gflops(ctx.pool());
  r.encode_ms = 1e300;
  for (int i = 0; i < repetitions; ++i) {
    const EncodedImage e = encode_resized(vision, resized, ctx);
    r.encode_ms = std::min(r.encode_ms, e.encode_ms);
    r.n_tokens = e.n_tokens();
  }
  r.gflop = vision_gflop(v, int64_t(r.n_tokens) * 4);
  return r;
}

}  // namespace reel
