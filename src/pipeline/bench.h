// `reel bench`: prefill and decode speed of the text model, with this machine's measured
// memory bandwidth in the same run, so that decode speed is reported against its roofline.
#pragma once

#include <string>
#include <vector>

#include "pipeline/executor.h"
#include "pipeline/image_encoder.h"
#include "pipeline/model.h"
#include "pipeline/sequence.h"

namespace reel {

struct BenchOptions {
  // Prompt lengths: at each, one prefill measurement (the whole prompt) and, when `depths` is
  // empty, one decode measurement with the prompt cached (depth = the length).
  std::vector<int> n_prompts = {128};
  // Decode depths (`-d`): when given, decode is measured at each of these instead of after each
  // prompt length, with exactly that many tokens in the cache before the first timed step.
  std::vector<int> depths;
  int n_decode = 64;                // tokens generated one step at a time by each sequence
  int repetitions = 2;              // best of
  std::vector<int> parallel = {1};  // sequences run side by side, one measurement per level
  KvType kv_type = KvType::F16;
};

// The context each sequence needs for these options: the longest prompt or depth (plus the
// token that starts decoding), then the decoded tokens.
int bench_context_size(const BenchOptions& opts);

// One measurement: aggregate tokens/s over all `parallel` sequences, each with `depth` tokens
// already in its cache when the timing starts.
struct BenchMeasurement {
  std::string what;  // "prefill" | "decode"
  int n_prompt = 0, depth = 0, parallel = 1;
  double tokens_per_s = 0;
};

struct BenchResult {
  double bandwidth_gbs = 0;  // stream-read bandwidth, all threads: the larger of two probes,
                             // before and after the timed runs
  double fma_gflops = 0;     // measured FP32 FMA peak, all threads, this run
  double weight_bytes_per_token = 0;
  double kv_bytes_per_position = 0;  // keys and values of one position, every layer
  int n_decode = 0;
  std::vector<BenchMeasurement> rows;
  // Decode at one sequence cannot beat reading every weight once per token.
  double roofline_tps() const { return bandwidth_gbs * 1e9 / weight_bytes_per_token; }
  // Nor, deeper in a context, reading the weights once per step (for all `parallel` sequences)
  // and each sequence's keys and values once: over the measured steps a sequence holds on
  // average depth + n_decode / 2 positions.
  double roofline_tps_at(int depth, int parallel) const {
    const double positions = depth + 0.5 * n_decode;
    const double bytes = weight_bytes_per_token + parallel * kv_bytes_per_position * positions;
    return parallel * bandwidth_gbs * 1e9 / bytes;
  }
  // How close a decode row came to its bound: tokens/s over roofline_tps_at(depth, parallel).
  double roofline_fraction(const BenchMeasurement& m) const {
    return m.tokens_per_s / roofline_tps_at(m.depth, m.parallel);
  }
};

// Prefill and decode through the scheduler, at each parallel level; greedy, stop tokens ignored.
BenchResult run_bench(const Model& model, Executor& executor, const BenchOptions& opts);

// Vision encoder speed for one image of a given size (synthetic pixels), with this machine's
// measured FMA peak in the same run.
struct VisionBenchResult {
  int width = 0, height = 0, resized_w = 0, resized_h = 0, n_tokens = 0;
  double encode_ms = 0;   // best of the repetitions
  double gflop = 0;       // multiply-adds x 2 of the encoder for this grid
  double fma_gflops = 0;  // measured FP32 FMA peak, all threads, this run
  double gflops() const { return gflop / (encode_ms / 1e3); }
  double peak_fraction() const { return gflops() / fma_gflops; }
};

VisionBenchResult run_vision_bench(const VisionEncoder& vision, int width, int height,
                                   const ImageOptions& image, int repetitions, ops::Context& ctx);

}  // namespace reel
