// Machine ceilings the benchmarks compare against: sustained DRAM read bandwidth and peak f32
// FMA throughput, both with every thread of a pool. `reel bench` prints ratios to these.
#pragma once

#include <cstddef>

#include "ops/thread_pool.h"

namespace reel::ops {

// All threads stream-read disjoint parts of a `bytes` buffer (larger than the caches); best of a
// few runs, in GB/s (1e9 bytes per second).
double measure_read_bandwidth_gbs(ThreadPool& pool, size_t bytes = size_t{512} << 20);

// Peak f32 FMA throughput with Highway vectors of the best target, all threads, in GFLOP/s
// (an FMA counts as 2 FLOPs).
double measure_fma_gflops(ThreadPool& pool);

}  // namespace reel::ops
