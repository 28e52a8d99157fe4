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

}  // namespace reel
