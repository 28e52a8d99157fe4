// Thread pool: persistent workers woken per run() by a generation counter. Workers spin briefly
// (decode issues hundreds of small matmuls per token, so the wake-up latency of a condition
// variable would dominate), then block so idle pools cost no CPU. Tasks are handed out in
// contiguous chunks from an atomic cursor: each thread works on neighbouring rows (good for
// prefetch), and a thread that finishes early takes the next chunk (the VM's cores are shared).
#include "ops/thread_pool.h"

#include "common/error.h"

#include <pthread.h>
#include <signal.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define REEL_CPU_RELAX() _mm_pause()
#elif defined(__aarch64__)
#define REEL_CPU_RELAX() asm volatile("yield" ::: "memory")
#else
#define REEL_CPU_RELAX() ((void)0)
#endif

namespace reel::ops {
namespace {
// About 10-50 microseconds of polling before sleeping: long enough to bridge the gap between
// two consecutive matmuls of a decode step, short enough not to starve a co-tenant.
constexpr int kSpinIterations = 20000;
}  // namespace

struct ThreadPool::State {
  std::vector<std::thread> threads;
  std::mutex mu;
  std::condition_variable wake;      // workers wait here for a new generation
  std::condition_variable finished;  // the caller waits here for stragglers
  std::atomic<uint64_t> generation{0};
  std::atomic<int> sleepers{0};
  std::atomic<int> busy{0};  // workers still inside the current job
  bool caller_waiting = false;
  bool stop = false;

  // The current job; written by the caller before bumping `generation`.
  Job job = nullptr;
  void* ctx = nullptr;
  int64_t n_tasks = 0;
  int64_t chunk = 1;
  alignas(64) std::atomic<int64_t> cursor{0};
  std::exception_ptr error;  // first exception thrown by a task, rethrown by run()
  // A pool runs one job at a time: a second caller (another thread sharing an executor) would
  // overwrite the job under the workers' feet, so it is refused instead.
  std::atomic<bool> running{false};
  std::mutex error_mu;

  void work(int thread) {
    try {
      for (;;) {
        const int64_t begin = cursor.fetch_add(chunk, std::memory_order_relaxed);
        if (begin >= n_tasks) break;
        const int64_t end = std::min(n_tasks, begin + chunk);
        for (int64_t t = begin; t < end; ++t) job(ctx, t, thread);
      }
    } catch (...) {
      std::lock_guard<std::mutex> lock(error_mu);
      if (!error) error = std::current_exception();
      cursor.store(n_tasks, std::memory_order_relaxed);  // stop handing out work
    }
  }

  void worker_main(int thread) {
    uint64_t seen = 0;
    for (;;) {
      uint64_t gen = generation.load(std::memory_order_acquire);
      for (int i = 0; gen == seen && i < kSpinIterations; ++i) {
        REEL_CPU_RELAX();
        gen = generation.load(std::memory_order_acquire);
      }
      if (gen == seen) {
        std::unique_lock<std::mutex> lock(mu);
        sleepers.fetch_add(1, std::memory_order_relaxed);
        wake.wait(lock, [&] { return stop || generation.load(std::memory_order_acquire) != seen; });
        sleepers.fetch_sub(1, std::memory_order_relaxed);
        if (stop) return;
        gen = generation.load(std::memory_order_acquire);
      }
      seen = gen;
      work(thread);
      if (busy.fetch_sub(1, std::memory_order_acq_rel) == 1) {
        std::lock_guard<std::mutex> lock(mu);
        if (caller_waiting) finished.notify_one();
      }
    }
  }
};

void block_async_signals() {
  sigset_t set;
  sigemptyset(&set);
  for (int sig : {SIGINT, SIGTERM, SIGHUP, SIGQUIT}) sigaddset(&set, sig);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
}

ThreadPool::ThreadPool(int n_threads) : state_(new State), n_threads_(std::max(1, n_threads)) {
  for (int i = 1; i < n_threads_; ++i) {
    state_->threads.emplace_back([this, i] {
      block_async_signals();
      state_->worker_main(i);
    });
  }
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lock(state_->mu);
    state_->stop = true;
  }
  state_->wake.notify_all();
  for (auto& t : state_->threads) t.join();
  delete state_;
}

void ThreadPool::run_erased(int64_t n_tasks, Job job, void* ctx) {
  if (n_tasks <= 0) return;
  State& s = *state_;
  if (n_threads_ == 1 || n_tasks == 1) {
    for (int64_t t = 0; t < n_tasks; ++t) job(ctx, t, 0);
    return;
  }
  if (s.running.exchange(true, std::memory_order_acquire))
    throw InternalError("a thread pool runs one job at a time: give each thread its own executor");
  struct Release {
    std::atomic<bool>& flag;
    ~Release() { flag.store(false, std::memory_order_release); }
  } release{s.running};
  s.job = job;
  s.ctx = ctx;
  s.n_tasks = n_tasks;
  // ~4 chunks per thread: contiguous runs of rows, with some slack for load balancing.
  s.chunk = std::max<int64_t>(1, n_tasks / (4 * int64_t{n_threads_}));
  s.cursor.store(0, std::memory_order_relaxed);
  s.error = nullptr;
  s.busy.store(n_threads_ - 1, std::memory_order_relaxed);
  {
    // Bumping the generation under the mutex pairs with the predicate check in worker_main,
    // so a worker that is about to sleep cannot miss this job.
    std::lock_guard<std::mutex> lock(s.mu);
    s.generation.fetch_add(1, std::memory_order_release);
  }
  if (s.sleepers.load(std::memory_order_relaxed) > 0) s.wake.notify_all();

  s.work(0);

  for (int i = 0; s.busy.load(std::memory_order_acquire) != 0 && i < kSpinIterations; ++i) {
    REEL_CPU_RELAX();
  }
  if (s.busy.load(std::memory_order_acquire) != 0) {
    std::unique_lock<std::mutex> lock(s.mu);
    s.caller_waiting = true;
    s.finished.wait(lock, [&] { return s.busy.load(std::memory_order_acquire) == 0; });
    s.caller_waiting = false;
  }
  if (s.error) std::rethrow_exception(s.error);
}

}  // namespace reel::ops
