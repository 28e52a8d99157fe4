// Splits the rows of an image pass across a thread pool (or runs them inline): each task takes a
// contiguous range, so every output byte is computed exactly as one thread computes it.
#pragma once

#include <algorithm>
#include <cstdint>

#include "ops/thread_pool.h"

namespace reel::media::detail {

// fn(begin, end) over [0, n_rows). `row_cost` (any unit, e.g. multiply-adds per row) decides:
// work under about 2^16 units runs inline, as waking the pool costs more than it saves.
template <class Fn>
void for_row_ranges(ops::ThreadPool* pool, int64_t n_rows, int64_t row_cost, Fn&& fn) {
  constexpr int64_t kMinTaskCost = int64_t{1} << 16;
  if (n_rows <= 0) return;
  const int64_t n_threads = pool ? pool->size() : 1;
  if (n_threads <= 1) {
    fn(int64_t{0}, n_rows);
    return;
  }
  // A few tasks per thread, so a thread that was descheduled (shared cores) is caught up with.
  int64_t n_tasks = std::min(n_rows, n_threads * 4);
  n_tasks = std::min(n_tasks, std::max<int64_t>(1, n_rows * row_cost / kMinTaskCost));
  if (n_tasks <= 1) {
    fn(int64_t{0}, n_rows);
    return;
  }
  pool->run(n_tasks,
            [&](int64_t task, int) { fn(n_rows * task / n_tasks, n_rows * (task + 1) / n_tasks); });
}

}  // namespace reel::media::detail
