#include "pipeline/executor.h"

#include <algorithm>
#include <thread>

#include "common/error.h"

namespace reel {
namespace {

int threads_or_all(int n) {
  if (n < 0 || n > 1024) throw Error("the thread count must be between 1 and 1024");
  return n > 0 ? n : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
}

}  // namespace

Executor::Executor(const Model& model, ExecutorOptions o)
    : ctx_(threads_or_all(o.n_threads)), n_batch_(o.n_batch) {
  if (o.n_batch < 1 || o.n_batch > 65536) throw Error("the batch size must be 1 to 65536");
  if (!model.has_text()) return;
  const TextDecoder& decoder = model.decoder();
  const TextConfig& c = decoder.text_config();
  ctx_.reserve(n_batch_, decoder.widest_row());
  scratch_ = decoder.new_scratch(n_batch_);
  const size_t nb = n_batch_, D = c.n_embd;
  staging_.ids.resize(nb);
  staging_.embd.resize(nb * D);
  staging_.deepstack.resize(size_t(c.n_deepstack) * nb * D);
  staging_.visual.resize(nb);
  staging_.pos.resize(nb);
}

}  // namespace reel
