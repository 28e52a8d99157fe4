// Ops-layer benchmarks: GEMV (decode) per weight type at 2048x6144 in GB/s of weight bytes and
// as a fraction of the measured DRAM read bandwidth; prefill matmul in GFLOP/s and as a fraction
// of the measured f32 FMA peak. Threads: REEL_BENCH_THREADS (default: all hardware threads).
//
// The GEMV cycles through enough copies of the matrix to exceed the last-level cache, so the
// weights really come from DRAM (a single 7-13 MB matrix would otherwise be served from L3).
// REEL_BENCH_AVX2=1 keeps the dispatch at AVX2 and below (on an AVX-512 machine: the AVX2
// kernels, e.g. GemvKQuant's int8 GEMV, which AVX3_DL's VNNI kernels replace there).
#include <benchmark/benchmark.h>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <random>
#include <thread>
#include <vector>

#include "gguf/types.h"
#include "hwy/targets.h"
#include "ops/kernels.h"
#include "ops/ops.h"
#include "ops/roofline.h"

namespace {
using reel::GgmlType;
using namespace reel::ops;

int bench_threads() {
  if (const char* s = std::getenv("REEL_BENCH_THREADS")) return std::max(1, std::atoi(s));
  return static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
}

Context& ctx() {
  static Context c(bench_threads());
  return c;
}
double bandwidth_gbs() {
  static const double bw = measure_read_bandwidth_gbs(ctx().pool());
  return bw;
}
double fma_gflops() {
  static const double f = measure_fma_gflops(ctx().pool());
  return f;
}

// Random but valid blocks: random quant bits, small finite fp16 scales everywhere a block
// has one (the fp16 fields get random bytes then overwritten).
std::vector<uint8_t> make_weights(GgmlType t, int64_t rows, int64_t cols) {
  std::mt19937 rng(42);
  std::vector<uint8_t> w(reel::row_bytes(t, cols) * rows);
  for (auto& b : w) b = static_cast<uint8_t>(rng());
  const auto info = reel::type_info(t);
  std::vector<int> f16;
  switch (t) {
    case GgmlType::F32: {
      auto* f = reinterpret_cast<float*>(w.data());
      for (size_t i = 0; i < w.size() / 4; ++i) f[i] = static_cast<float>(rng() % 1000) * 1e-3f;
      return w;
    }
    case GgmlType::F16:
    case GgmlType::BF16: {
      auto* h = reinterpret_cast<uint16_t*>(w.data());
      for (size_t i = 0; i < w.size() / 2; ++i) h[i] = 0x3c00 ^ static_cast<uint16_t>(rng() & 0x3ff);
      return w;
    }
    case GgmlType::Q6_K: f16 = {208}; break;
    case GgmlType::Q4_1: case GgmlType::Q5_1: case GgmlType::Q4_K: case GgmlType::Q5_K:
      f16 = {0, 2}; break;
    default: f16 = {0}; break;
  }
  const uint16_t small = reel::f32_to_fp16(0.01f);
  for (size_t b = 0; b < w.size() / info.block_bytes; ++b)
    for (int o : f16) std::memcpy(&w[b * info.block_bytes + o], &small, 2);
  return w;
}

constexpr int64_t kRows = 6144, kCols = 2048;  // an FFN up/gate projection of a 2B model

// rows x cols GEMV from DRAM (copies > 1: >= 1 GiB of copies in total so every pass streams
// from DRAM), or on one copy (copies == 1: the instruction counts of GemvCall below).
void GemvShape(benchmark::State& state, GgmlType t, int64_t rows, int64_t cols, bool dram) {
  const size_t rb = reel::row_bytes(t, cols);
  const size_t bytes = rb * rows;
  const int copies =
      dram ? static_cast<int>(std::max<size_t>(2, (size_t{1} << 30) / bytes + 1)) : 1;
  const auto one = make_weights(t, rows, cols);
  std::vector<std::vector<uint8_t>> mats(copies, one);
  std::vector<float> x(cols), y(rows);
  for (int64_t i = 0; i < cols; ++i) x[i] = std::sin(0.1f * i);
  ctx().reserve(1, cols);
  const double bw = bandwidth_gbs();
  int c = 0;
  for (auto _ : state) {
    const Matrix m{t, mats[c].data(), rows, cols, rb};
    matmul(m, x.data(), 1, y.data(), ctx());
    benchmark::DoNotOptimize(y.data());
    c = (c + 1) % copies;
  }
  state.counters["GB/s"] = benchmark::Counter(static_cast<double>(bytes) * state.iterations() / 1e9,
                                              benchmark::Counter::kIsRate);
  state.counters["bw_GB/s"] = bw;
  state.counters["threads"] = ctx().n_threads();
  state.SetBytesProcessed(static_cast<int64_t>(bytes) * state.iterations());
}

void BM_Gemv(benchmark::State& state, GgmlType t) { GemvShape(state, t, kRows, kCols, true); }

// Q4_K/Q6_K decode with the int8-activation GEMV on or off (detail::kquant_int8_gemv; off:
// the int16 kernels), registered in alternation for a same-run comparison.
void BM_GemvKQuant(benchmark::State& state, GgmlType t, int64_t rows, int64_t cols, bool int8,
                   bool dram) {
  reel::ops::detail::set_kquant_int8_gemv_enabled(int8);
  GemvShape(state, t, rows, cols, dram);
  reel::ops::detail::set_kquant_int8_gemv_enabled(true);
}

// The same GEMV on a matrix that stays in L2 (768 rows, 0.3-1.7 MB): the kernels' compute
// ceiling. A DRAM GEMV can only be memory-bound if this is well above the read bandwidth.
void BM_GemvHot(benchmark::State& state, GgmlType t) {
  constexpr int64_t kHotRows = 768;
  const size_t rb = reel::row_bytes(t, kCols);
  const size_t bytes = rb * kHotRows;
  const auto w = make_weights(t, kHotRows, kCols);
  std::vector<float> x(kCols), y(kHotRows);
  for (int64_t i = 0; i < kCols; ++i) x[i] = std::sin(0.1f * i);
  ctx().reserve(1, kCols);
  const Matrix m{t, w.data(), kHotRows, kCols, rb};
  for (auto _ : state) {
    matmul(m, x.data(), 1, y.data(), ctx());
    benchmark::DoNotOptimize(y.data());
  }
  state.counters["GB/s"] = benchmark::Counter(static_cast<double>(bytes) * state.iterations() / 1e9,
                                              benchmark::Counter::kIsRate);
}

// Prefill: n activation rows against a 2048x2048 matrix.
void BM_PrefillAs(benchmark::State& state, GgmlType t, FloatMatmul fm) {
  const int64_t n = state.range(0), rows = 2048, cols = 2048;
  const auto w = make_weights(t, rows, cols);
  std::vector<float> x(n * cols), y(n * rows);
  for (size_t i = 0; i < x.size(); ++i) x[i] = std::sin(0.01f * static_cast<float>(i));
  ctx().reserve(n, cols);
  const double peak = fma_gflops();
  const Matrix m{t, w.data(), rows, cols, reel::row_bytes(t, cols)};
  for (auto _ : state) {
    matmul(m, x.data(), n, y.data(), ctx(), fm);
    benchmark::DoNotOptimize(y.data());
  }
  state.counters["GFLOP/s"] = benchmark::Counter(2.0 * n * rows * cols * state.iterations() / 1e9,
                                                 benchmark::Counter::kIsRate);
  state.counters["fma_peak_GFLOP/s"] = peak;
}
void BM_Prefill(benchmark::State& state, GgmlType t) {
  BM_PrefillAs(state, t, FloatMatmul::Exact);
}

// Causal attention of n_q queries against n_kv cached keys (the last n_q of them the queries'
// own) with Qwen3-VL 2B's heads (16 query heads, 8 KV heads of 128) or one KV head's group of
// them, keys and values in f32 or f16 (the KV cache's two types).
void BM_Attention(benchmark::State& state, GgmlType kv_type, AttentionKernel kernel,
                  int64_t n_head, int64_t n_kv_head) {
  AttentionShape s;
  s.n_q = state.range(0), s.n_kv = state.range(1), s.n_head = n_head, s.n_kv_head = n_kv_head;
  s.head_dim = 128;
  s.q_stride = s.out_stride = s.n_head * s.head_dim, s.kv_head_stride = s.n_kv * s.head_dim;
  s.q_pos0 = s.n_kv - s.n_q, s.scale = 0.088f, s.kv_type = kv_type;
  std::vector<float> q(s.n_q * s.q_stride), k(s.n_kv_head * s.kv_head_stride), v(k.size()),
      out(s.n_q * s.out_stride);
  for (size_t i = 0; i < q.size(); ++i) q[i] = std::sin(0.37f * static_cast<float>(i));
  for (size_t i = 0; i < k.size(); ++i) {
    k[i] = std::sin(0.11f * static_cast<float>(i));
    v[i] = std::cos(0.13f * static_cast<float>(i));
  }
  std::vector<uint16_t> kh(k.size()), vh(v.size());
  f32_to_f16(k.data(), kh.data(), static_cast<int64_t>(k.size()));
  f32_to_f16(v.data(), vh.data(), static_cast<int64_t>(v.size()));
  const bool f16 = kv_type == GgmlType::F16;
  const void* kp = f16 ? static_cast<const void*>(kh.data()) : k.data();
  const void* vp = f16 ? static_cast<const void*>(vh.data()) : v.data();
  for (auto _ : state) {
    attention(s, q.data(), kp, vp, out.data(), ctx(), kernel);
    benchmark::DoNotOptimize(out.data());
  }
  // Multiply-adds of QK^T and PV over the keys each query sees, 2 flops each.
  double macs = 0;
  for (int64_t i = 0; i < s.n_q; ++i) macs += 2.0 * double(s.q_pos0 + i + 1) * s.head_dim * s.n_head;
  state.counters["GFLOP/s"] =
      benchmark::Counter(2 * macs * state.iterations() / 1e9, benchmark::Counter::kIsRate);
  if (s.n_q == 1) {
    // Decode: bytes of keys and values in the cache, each read once per call (the row kernel
    // takes a KV group's query heads together; it used to read a KV head once per query head).
    const double kv_bytes = 2.0 * s.n_kv_head * s.n_kv * s.head_dim * (f16 ? 2 : 4);
    state.counters["KV_GB/s"] =
        benchmark::Counter(kv_bytes * state.iterations() / 1e9, benchmark::Counter::kIsRate);
  }
  state.counters["threads"] = ctx().n_threads();
}

// f32 -> f16 conversion of one token's K or V rows of a layer (the KV cache write), in GB/s of
// floats read.
void BM_F32ToF16(benchmark::State& state) {
  const int64_t n = state.range(0);
  std::vector<float> x(n);
  for (int64_t i = 0; i < n; ++i) x[i] = std::sin(0.1f * static_cast<float>(i));
  std::vector<uint16_t> y(n);
  for (auto _ : state) {
    f32_to_f16(x.data(), y.data(), n);
    benchmark::DoNotOptimize(y.data());
  }
  state.SetBytesProcessed(static_cast<int64_t>(n * sizeof(float)) * state.iterations());
}

void register_all() {
  const std::pair<const char*, GgmlType> types[] = {
      {"F32", GgmlType::F32},   {"F16", GgmlType::F16},   {"BF16", GgmlType::BF16},
      {"Q8_0", GgmlType::Q8_0}, {"Q4_0", GgmlType::Q4_0}, {"Q4_1", GgmlType::Q4_1},
      {"Q5_0", GgmlType::Q5_0}, {"Q5_1", GgmlType::Q5_1}, {"Q4_K", GgmlType::Q4_K},
      {"Q5_K", GgmlType::Q5_K}, {"Q6_K", GgmlType::Q6_K}};
  for (auto [name, t] : types) {
    benchmark::RegisterBenchmark((std::string("Gemv2048x6144/") + name).c_str(), BM_Gemv, t)
        ->UseRealTime()->Unit(benchmark::kMicrosecond);
  }
  for (auto [name, t] : types) {
    benchmark::RegisterBenchmark((std::string("GemvHot2048x768/") + name).c_str(), BM_GemvHot, t)
        ->UseRealTime()->Unit(benchmark::kMicrosecond);
  }
  for (auto [name, t] : {std::pair{"F32", GgmlType::F32}, std::pair{"F16", GgmlType::F16},
                         std::pair{"Q8_0", GgmlType::Q8_0}, std::pair{"Q4_K", GgmlType::Q4_K},
                         std::pair{"Q6_K", GgmlType::Q6_K}}) {
    benchmark::RegisterBenchmark((std::string("Prefill2048x2048/") + name).c_str(), BM_Prefill, t)
        ->Arg(64)->Arg(256)->UseRealTime()->Unit(benchmark::kMillisecond);
  }
  // F16 with FloatMatmul::Int16 (--vision-precision int16; the same as F16 where the CPU has
  // no int16 panels): GFLOP/s counts the multiply-adds as FLOPs, as for the others.
  benchmark::RegisterBenchmark("Prefill2048x2048/F16_int16", BM_PrefillAs, GgmlType::F16,
                               FloatMatmul::Int16)
      ->Arg(64)->Arg(256)->UseRealTime()->Unit(benchmark::kMillisecond);
  // Q4_K/Q6_K decode at a 2B model's shapes (attention 2048x2048, FFN 6144x2048 and
  // 2048x6144, the Q6_K output layer 151936x2048), int8 activations on and off: GemvKQuant
  // streams from DRAM; GemvKQuantCall runs 20 calls on one copy, the unit for instruction
  // counts (valgrind --tool=callgrind --toggle-collect='reel::ops::matmul*' bench_ops
  // --benchmark_filter='GemvKQuantCall/Q4_K/2048x2048/int8$').
  struct KShape {
    const char* name;
    int64_t rows, cols;
  };
  const KShape kshapes[] = {{"2048x2048", 2048, 2048}, {"6144x2048", 6144, 2048},
                            {"2048x6144", 2048, 6144}, {"151936x2048", 151936, 2048}};
  for (auto [name, t] : {std::pair{"Q4_K", GgmlType::Q4_K}, std::pair{"Q6_K", GgmlType::Q6_K}}) {
    for (const KShape& k : kshapes) {
      if (k.rows == 151936 && t != GgmlType::Q6_K) continue;
      for (bool int8 : {true, false}) {
        const std::string label = std::string(name) + "/" + k.name + (int8 ? "/int8" : "/int16");
        benchmark::RegisterBenchmark(("GemvKQuant/" + label).c_str(), BM_GemvKQuant, t, k.rows,
                                     k.cols, int8, true)
            ->UseRealTime()->Unit(benchmark::kMicrosecond);
        benchmark::RegisterBenchmark(("GemvKQuantCall/" + label).c_str(), BM_GemvKQuant, t, k.rows,
                                     k.cols, int8, false)
            ->Iterations(20)->UseRealTime()->Unit(benchmark::kMicrosecond);
      }
    }
  }
  // Q4_K, Q6_K and Q8_0 on the f32 panels (the int8 and int16 kernels switched off, where they
  // exist): the comparison (kernels.h kquant_int8_prefill and q8_0_int16_prefill say which
  // types take them on this CPU).
  for (auto [name, t] : {std::pair{"Q4_K", GgmlType::Q4_K}, std::pair{"Q6_K", GgmlType::Q6_K},
                         std::pair{"Q8_0", GgmlType::Q8_0}}) {
    benchmark::RegisterBenchmark((std::string("Prefill2048x2048/") + name + "_f32panels").c_str(),
                                 [t](benchmark::State& state) {
                                   reel::ops::detail::set_kquant_int8_prefill_enabled(false);
                                   reel::ops::detail::set_q8_0_int16_prefill_enabled(false);
                                   BM_Prefill(state, t);
                                   reel::ops::detail::set_kquant_int8_prefill_enabled(true);
                                   reel::ops::detail::set_q8_0_int16_prefill_enabled(true);
                                 })
        ->Arg(64)->Arg(256)->UseRealTime()->Unit(benchmark::kMillisecond);
  }
  for (auto [name, t] : {std::pair{"F32", GgmlType::F32}, std::pair{"F16", GgmlType::F16}}) {
    const std::string n = name;
    const auto autok = AttentionKernel::Auto, rows = AttentionKernel::Rows;
    // Decode (one query) at depth 512 and 4096.
    benchmark::RegisterBenchmark(("AttentionDecode/" + n).c_str(), BM_Attention, t, autok, 16, 8)
        ->Args({1, 512})->Args({1, 4096})->UseRealTime()->Unit(benchmark::kMicrosecond);
    // Prefill: a 512-token prompt in one call, and a 256-token batch at depth 4096 (the last
    // batch of a 4096-token prompt), on the default kernel and on one query row at a time.
    for (auto [suffix, kernel] : {std::pair{"", autok}, std::pair{"/rows", rows}}) {
      benchmark::RegisterBenchmark(("AttentionPrefill/" + n + suffix).c_str(), BM_Attention, t, kernel, 16, 8)
          ->Args({512, 512})->Args({256, 4096})->UseRealTime()->Unit(benchmark::kMillisecond);
      // Few queries at depth (a short prompt continuing a long cache): where the tiles start
      // to beat one query row at a time.
      benchmark::RegisterBenchmark(("AttentionFewQueries/" + n + suffix).c_str(), BM_Attention, t,
                                   kernel, 16, 8)
          ->Args({1, 4096})->Args({2, 4096})->Args({4, 4096})->Args({8, 4096})->Args({32, 4096})
          ->UseRealTime()->Unit(benchmark::kMicrosecond);
      // One whole 4096-token prompt in one call for one KV head and its 2 query heads, run
      // once: the unit for instruction counts (valgrind --tool=callgrind
      // --toggle-collect='reel::ops::attention*' bench_ops --benchmark_filter=AttentionCall).
      benchmark::RegisterBenchmark(("AttentionCall/" + n + suffix).c_str(), BM_Attention, t,
                                   kernel, 2, 1)
          ->Args({4096, 4096})->Iterations(1)->UseRealTime()->Unit(benchmark::kMillisecond);
    }
  }
  benchmark::RegisterBenchmark("F32ToF16", BM_F32ToF16)->Arg(1024)->Arg(1 << 20)->UseRealTime();
}

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (const char* s = std::getenv("REEL_BENCH_AVX2"); s != nullptr && std::atoi(s) != 0) {
    hwy::DisableTargets(HWY_AVX2 - 1);  // every target better than AVX2
  }
  register_all();
  std::printf("threads %d  read bandwidth %.2f GB/s  f32 FMA peak %.1f GFLOP/s\n",
              ctx().n_threads(), bandwidth_gbs(), fma_gflops());
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
}
