// `reel bench`: prefill and decode speed of the text model, with this machine's measured
// memory bandwidth in the same run, so that decode speed is reported against its roofline.
#pragma once

#include "pipeline/engine.h"

namespace reel {

struct BenchOptions {
  int n_prompt = 128;  // tokens in the prefill measurement
  int n_decode = 64;   // tokens generated one at a time
  int repetitions = 2; // best of
};

struct BenchResult {
  double prefill_tps = 0;
  double decode_tps = 0;
  double bandwidth_gbs = 0;        // measured stream-read bandwidth, all threads
  double weight_bytes_per_token = 0;
  double roofline_tps() const { return bandwidth_gbs * 1e9 / weight_bytes_per_token; }
  double roofline_fraction() const { return decode_tps / roofline_tps(); }
};

BenchResult run_bench(Engine& engine, const BenchOptions& opts);

// Vision encoder speed for one image of a given size (synthetic pixels), with this machine's
// measured FMA peak in the same run.
struct VisionBenchResult {
  int width = 0, height = 0, resized_w = 0, resized_h = 0, n_tokens = 0;
  double encode_ms = 0;   // best of the repetitions
  double gflop = 0;       // multiply-adds x 2 of the encoder for this grid
  double fma_peak_gflops = 0;
  double gflops() const { return gflop / (encode_ms / 1e3); }
  double peak_fraction() const { return gflops() / fma_peak_gflops; }
};

VisionBenchResult run_vision_bench(const Qwen3VLVision& vision, int width, int height,
                                   const ImageOptions& image, int repetitions, ops::Context& ctx);

}  // namespace reel
