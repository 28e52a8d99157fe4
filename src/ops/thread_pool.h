// A fixed pool of worker threads for data-parallel loops. run() hands out task indices
// [0, n_tasks) to the workers and the calling thread, and returns when all are done.
// No allocation per call: the job is passed by reference.
#pragma once

#include <cstdint>
#include <type_traits>
#include <utility>

namespace reel::ops {

// Blocks Ctrl-C and the termination signals in the calling thread. Every helper thread calls
// it first, so that those signals reach the application's main thread: a read it is blocked in
// (a chat prompt) is then interrupted, as the frontend expects.
void block_async_signals();

class ThreadPool {
 public:
  explicit ThreadPool(int n_threads);  // total threads including the caller; >= 1
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int size() const { return n_threads_; }

  // fn(task, thread) for every task in [0, n_tasks); thread in [0, size()).
  template <class Fn>
  void run(int64_t n_tasks, Fn&& fn) {
    using F = std::remove_reference_t<Fn>;
    run_erased(n_tasks, [](void* ctx, int64_t task, int thread) { (*static_cast<F*>(ctx))(task, thread); },
               const_cast<void*>(static_cast<const void*>(&fn)));
  }

 private:
  using Job = void (*)(void* ctx, int64_t task, int thread);
  void run_erased(int64_t n_tasks, Job job, void* ctx);
  struct State;
  State* state_ = nullptr;
  int n_threads_ = 1;
};

}  // namespace reel::ops
