#include "pipeline/bench.h"

#include <algorithm>
#include <chrono>
#include <memory>
#include <vector>

#include "common/clock.h"
#include "common/error.h"
#include "media/image.h"
#include "ops/roofline.h"
#include "pipeline/scheduler.h"

namespace reel {
namespace {

double seconds_since(Clock::time_point t0) {
  return ms_since(t0) / 1e3;
}

// Ordinary text token ids (not special tokens), spread over the vocabulary.
std::vector<TokenId> bench_prompt(int n, int n_vocab) {
  std::vector<TokenId> ids(n);
  const int usable = std::min(n_vocab, 150000);
  for (int i = 0; i < n; ++i) ids[i] = static_cast<TokenId>((1000 + 7919LL * i) % usable);
  return ids;
}

}  // namespace

namespace {

// Runs one request per sequence side by side; returns the wall time in seconds.
double run_side_by_side(Scheduler& sched, std::vector<std::unique_ptr<Sequence>>& seqs,
                        const std::vector<TokenId>& prompt, int max_tokens) {
  std::vector<Scheduler::Id> ids;
  const auto t0 = Clock::now();
  for (auto& s : seqs) {
    Request r;
    r.seq = s.get();
    r.ids = prompt;
    r.sampling.temperature = 0;
    r.max_tokens = max_tokens;
    r.ignore_stop = true;
    ids.push_back(sched.submit(std::move(r)));
  }
  sched.run();
  const double dt = seconds_since(t0);
  for (Scheduler::Id id : ids) {
    RequestResult r = sched.take(id);
    if (r.error) std::rethrow_exception(r.error);
  }
  return dt;
}

}  // namespace

int bench_context_size(const BenchOptions& opts) {
  int longest = 0;
  for (int n : opts.n_prompts) longest = std::max(longest, n);
  for (int d : opts.depths) longest = std::max(longest, d + 1);
  return longest + opts.n_decode + 1;
}

namespace {

void check_bench_options(const BenchOptions& opts) {
  if (opts.n_prompts.empty() || opts.n_decode < 1 || opts.repetitions < 1)
    throw Error("bench sizes must be positive");
  for (int n : opts.n_prompts)
    if (n < 1 || n > (1 << 20)) throw Error("bench prompt lengths must be 1 to 1048576");
  for (int d : opts.depths)
    if (d < 0 || d > (1 << 20)) throw Error("bench decode depths must be 0 to 1048576");
  for (int p : opts.parallel)
    if (p < 1 || p > 256) throw Error("parallel levels must be 1 to 256");
  if (opts.n_decode > (1 << 20)) throw Error("bench generated tokens must be at most 1048576");
}

// One request per sequence, from an empty cache: `prompt` alone, then the same requests with
// `n_decode` answers (none if 0), which reuse the prompt but for its last token, whose logits
// give the first answer token; every step after that decodes. Both times in seconds.
struct PromptThenAnswers {
  double prompt_s, answers_s;
};
PromptThenAnswers run_prompt_then_answers(Scheduler& sched,
                                          std::vector<std::unique_ptr<Sequence>>& seqs,
                                          const std::vector<TokenId>& prompt, int n_decode) {
  for (auto& s : seqs) s->truncate(0);
  const double prompt_s = run_side_by_side(sched, seqs, prompt, 0);
  return {prompt_s, n_decode > 0 ? run_side_by_side(sched, seqs, prompt, n_decode) : 0.0};
}

// Decode speed with `prompt` cached in every sequence, best of the repetitions.
double decode_tokens_per_s(Scheduler& sched, std::vector<std::unique_ptr<Sequence>>& seqs,
                           const std::vector<TokenId>& prompt, const BenchOptions& opts) {
  double best = 0;
  for (int rep = 0; rep < opts.repetitions; ++rep) {
    const double t = run_prompt_then_answers(sched, seqs, prompt, opts.n_decode).answers_s;
    best = std::max(best, double(seqs.size()) * opts.n_decode / t);
  }
  return best;
}

}  // namespace

BenchResult run_bench(const Model& model, Executor& exec, const BenchOptions& opts) {
  check_bench_options(opts);
  const int n_ctx = bench_context_size(opts);
  const std::vector<TokenId> prompt = bench_prompt(n_ctx, model.text_config().n_vocab);
  Scheduler sched(model, exec);
  BenchResult r;
  r.bandwidth_gbs = ops::measure_read_bandwidth_gbs(exec.ctx().pool());
  r.fma_gflops = ops::measure_fma_gflops(exec.ctx().pool());
  r.weight_bytes_per_token = static_cast<double>(model.decoder().weight_bytes_per_token());
  r.kv_bytes_per_position = static_cast<double>(model.decoder().bytes_per_position(opts.kv_type));
  r.n_decode = opts.n_decode;
  {  // untimed: page the weights in and warm the caches, so that best-of-1 means something
    std::vector<std::unique_ptr<Sequence>> warm;
    warm.push_back(std::make_unique<Sequence>(model, SequenceOptions{n_ctx, opts.kv_type}));
    run_side_by_side(sched, warm, std::vector<TokenId>(prompt.begin(), prompt.begin() + 1), 2);
  }
  // Each length's prompt is the start of the longest one.
  auto head = [&prompt](int n) { return std::vector<TokenId>(prompt.begin(), prompt.begin() + n); };
  for (int p : opts.parallel) {
    std::vector<std::unique_ptr<Sequence>> seqs;
    for (int i = 0; i < p; ++i)
      seqs.push_back(std::make_unique<Sequence>(model, SequenceOptions{n_ctx, opts.kv_type}));
    for (int n : opts.n_prompts) {
      const std::vector<TokenId> ids = head(n);
      BenchMeasurement prefill{"prefill", n, 0, p, 0};
      BenchMeasurement decode{"decode", n, n, p, 0};
      // Without -d, decode right after each prompt (depth = the prompt's length), reusing it.
      const int n_answers = opts.depths.empty() ? opts.n_decode : 0;
      for (int rep = 0; rep < opts.repetitions; ++rep) {
        const PromptThenAnswers t = run_prompt_then_answers(sched, seqs, ids, n_answers);
        prefill.tokens_per_s = std::max(prefill.tokens_per_s, double(p) * n / t.prompt_s);
        if (n_answers > 0)
          decode.tokens_per_s = std::max(decode.tokens_per_s, double(p) * n_answers / t.answers_s);
      }
      r.rows.push_back(prefill);
      if (opts.depths.empty()) r.rows.push_back(decode);
    }
    // With -d: `depth` tokens cached before the first timed step, whose input is one more token.
    for (int d : opts.depths)
      r.rows.push_back({"decode", d, d, p, decode_tokens_per_s(sched, seqs, head(d + 1), opts)});
  }
  // Probed again after the timed runs: on a shared host the bandwidth drifts within a minute
  // (2 vCPUs of a Zen 4 EPYC: 28-43 GB/s between runs of one command), and the roofline is the
  // most the memory delivered in this sitting, so the larger probe is the bound.
  r.bandwidth_gbs = std::max(r.bandwidth_gbs, ops::measure_read_bandwidth_gbs(exec.ctx().pool()));
  return r;
}

namespace {

media::Image synthetic_image(int width, int height) {
  media::Image img;
  img.width = width;
  img.height = height;
  img.rgb.resize(size_t(width) * height * 3);
  for (int y = 0; y < height; ++y)
    for (int x = 0; x < width; ++x)
      for (int c = 0; c < 3; ++c)
        img.rgb[(size_t(y) * width + x) * 3 + c] =
            static_cast<uint8_t>((x * 7 + y * 3 + c * 50) & 255);
  return img;
}

}  // namespace

VisionBenchResult run_vision_bench(const VisionEncoder& vision, int width, int height,
                                   const ImageOptions& image, int repetitions, ops::Context& ctx) {
  const VisionGeometry& v = vision.geometry();
  media::ResizeBudget budget;
  budget.factor = v.factor();
  budget.min_pixels = image.min_pixels;
  budget.max_pixels = image.max_pixels;
  const media::Size2 size = media::smart_resize(height, width, budget);
  const media::Image resized =
      media::resize_bicubic(synthetic_image(width, height), size.width, size.height, &ctx.pool());
  VisionBenchResult r;
  r.width = width;
  r.height = height;
  r.resized_w = size.width;
  r.resized_h = size.height;
  r.fma_gflops = ops::measure_fma_gflops(ctx.pool());
  r.encode_ms = 1e300;
  const std::unique_ptr<VisionScratch> scratch = vision.new_scratch();  // as a video reuses one
  for (int i = 0; i < repetitions; ++i) {
    const EncodedImage e = encode_resized(vision, resized, ctx, scratch.get());
    r.encode_ms = std::min(r.encode_ms, e.encode_ms);
    r.n_tokens = e.n_tokens();
  }
  r.gflop = vision.gflop_per_group(int64_t(r.n_tokens) * v.spatial_merge * v.spatial_merge);
  return r;
}

}  // namespace reel
