// Roofline probes. Each run hands every thread many contiguous slices (the pool's chunking), so
// a thread that is descheduled on the shared VM does not stall the whole measurement.
#include "ops/roofline.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstring>

#include "common/error.h"
#include "common/huge_pages.h"
#include "ops/kernels.h"

namespace reel::ops {
namespace {
double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}
}  // namespace

double measure_read_bandwidth_gbs(ThreadPool& pool, size_t bytes) {
  constexpr size_t kSlice = size_t{1} << 20;
  const size_t n_slices = std::max<size_t>(1, bytes / kSlice);
  bytes = n_slices * kSlice;
  // Huge pages, as the model's weights have where the kernel grants them (`--hugepages`, or a
  // page cache of 2 MiB folios): over 4 KiB pages the same loop read 0-35% less (2 vCPUs of a
  // Zen 4 EPYC, alternated: 48 against 65 GB/s, 31.7 against 33.6), below what decode streamed.
  size_t mapped = 0;
  auto* buf = static_cast<float*>(map_huge_page_region(bytes, &mapped));
  if (!buf) throw Error("measure_read_bandwidth_gbs: out of memory");
  const int64_t floats_per_slice = kSlice / sizeof(float);
  // First touch from the pool so pages are spread like the data the kernels read.
  pool.run(static_cast<int64_t>(n_slices), [&](int64_t s, int) {
    std::memset(buf + s * floats_per_slice, 1, kSlice);
  });
  std::atomic<double> sink{0.0};
  double best = 0.0;
  for (int rep = 0; rep < 5; ++rep) {
    const auto t0 = std::chrono::steady_clock::now();
    pool.run(static_cast<int64_t>(n_slices), [&](int64_t s, int) {
      const double v = detail::stream_read_f32(buf + s * floats_per_slice, floats_per_slice);
      if (v == 12345.0) sink.store(v, std::memory_order_relaxed);  // keeps the read alive
    });
    best = std::max(best, static_cast<double>(bytes) / seconds_since(t0) / 1e9);
  }
  unmap_huge_page_region(buf, mapped);
  return best;
}

double measure_fma_gflops(ThreadPool& pool) {
  constexpr int64_t kIters = 1 << 20;
  const int64_t n_tasks = 8 * int64_t{pool.size()};
  double best = 0.0;
  std::atomic<size_t> lanes{0};
  for (int rep = 0; rep < 3; ++rep) {
    const auto t0 = std::chrono::steady_clock::now();
    pool.run(n_tasks, [&](int64_t, int) {
      double sink = 0.0;
      lanes.store(detail::fma_loop(kIters, &sink), std::memory_order_relaxed);
      if (sink == 12345.0) lanes.store(0);
    });
    const double flops = 2.0 * 16.0 * static_cast<double>(kIters) *
                         static_cast<double>(lanes.load()) * static_cast<double>(n_tasks);
    best = std::max(best, flops / seconds_since(t0) / 1e9);
  }
  return best;
}

}  // namespace reel::ops
