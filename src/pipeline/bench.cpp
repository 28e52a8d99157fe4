#include "pipeline/bench.h"

#include <algorithm>
#include <chrono>
#include <vector>

#include "common/error.h"
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

}  // namespace reel
