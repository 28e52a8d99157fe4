// Media-layer benchmarks: the vision preprocessing (antialiased bicubic resize, patch layout) on
// one thread and split across a pool, in output MB/s. Each pair of rows is measured in one run,
// so the ratio of the threaded to the one-thread figure is the speed-up on this machine.
// Threads: REEL_BENCH_THREADS (default: all hardware threads).
#include <benchmark/benchmark.h>

#include <cstdlib>
#include <memory>
#include <random>
#include <thread>
#include <vector>

#include "media/image.h"
#include "ops/thread_pool.h"

namespace {

using reel::media::Image;

int bench_threads() {
  if (const char* t = std::getenv("REEL_BENCH_THREADS")) return std::max(1, std::atoi(t));
  return std::max(1u, std::thread::hardware_concurrency());
}

Image noise_image(int w, int h) {
  Image im{w, h, std::vector<uint8_t>(size_t(w) * h * 3)};
  std::mt19937 rng(7);
  for (auto& v : im.rgb) v = uint8_t(rng());
  return im;
}

// A 1080p camera frame to the size the default video budget gives it, and a photo upscaled.
void BM_Resize(benchmark::State& state, int in_w, int in_h, int out_w, int out_h, bool pooled) {
  const Image src = noise_image(in_w, in_h);
  std::unique_ptr<reel::ops::ThreadPool> pool;
  if (pooled) pool = std::make_unique<reel::ops::ThreadPool>(bench_threads());
  for (auto _ : state) {
    Image out = reel::media::resize_bicubic(src, out_w, out_h, pool.get());
    benchmark::DoNotOptimize(out.rgb.data());
  }
  state.SetBytesProcessed(int64_t(out_w) * out_h * 3 * state.iterations());
  state.counters["threads"] = pooled ? bench_threads() : 1;
}

void BM_Patchify(benchmark::State& state, int w, int h, bool pooled) {
  const Image f0 = noise_image(w, h), f1 = noise_image(w, h);
  const Image* frames[] = {&f0, &f1};
  const float mean[3] = {0.5f, 0.5f, 0.5f}, stdv[3] = {0.5f, 0.5f, 0.5f};
  std::unique_ptr<reel::ops::ThreadPool> pool;
  if (pooled) pool = std::make_unique<reel::ops::ThreadPool>(bench_threads());
  std::vector<float> pv;
  reel::media::PatchGrid grid;
  for (auto _ : state) {
    reel::media::patchify(frames, 16, 2, 2, mean, stdv, pv, grid, pool.get());
    benchmark::DoNotOptimize(pv.data());
  }
  state.SetBytesProcessed(int64_t(pv.size() * sizeof(float)) * state.iterations());
  state.counters["threads"] = pooled ? bench_threads() : 1;
}

}  // namespace

BENCHMARK_CAPTURE(BM_Resize, 1920x1080_to_640x352_one, 1920, 1080, 640, 352, false)->UseRealTime();
BENCHMARK_CAPTURE(BM_Resize, 1920x1080_to_640x352_pool, 1920, 1080, 640, 352, true)->UseRealTime();
BENCHMARK_CAPTURE(BM_Resize, 640x480_to_1280x960_one, 640, 480, 1280, 960, false)->UseRealTime();
BENCHMARK_CAPTURE(BM_Resize, 640x480_to_1280x960_pool, 640, 480, 1280, 960, true)->UseRealTime();
BENCHMARK_CAPTURE(BM_Patchify, 1280x960_one, 1280, 960, false)->UseRealTime();
BENCHMARK_CAPTURE(BM_Patchify, 1280x960_pool, 1280, 960, true)->UseRealTime();

BENCHMARK_MAIN();
