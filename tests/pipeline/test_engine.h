// A model, an executor and a scheduler for the pipeline's parity tests, with the two ways they
// drive a prompt: every position's logits, then a greedy continuation (the reference's
// generate() with stop tokens ignored), in f32 keys and values (logits are compared to 1e-3).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "pipeline/image_encoder.h"
#include "pipeline/model.h"
#include "pipeline/scheduler.h"
#include "pipeline/session.h"
#include "pipeline/video_encoder.h"

namespace reel::test {

class TestEngine {
 public:
  TestEngine(const std::string& text, const std::string& mmproj, int n_threads, int n_batch)
      : model_(Model::load(text, mmproj)),
        exec_(*model_, ExecutorOptions{n_threads, n_batch}),
        sched_(*model_, exec_) {}

  const Model& model() const { return *model_; }
  const Qwen3VLText& text() const { return model_->text(); }
  const Qwen3VLVision& vision() const { return model_->qwen3vl_vision(); }
  const Tokenizer& tokenizer() const { return model_->tokenizer(); }
  ops::Context& ctx() { return exec_.ctx(); }
  Executor& executor() { return exec_; }
  Scheduler& scheduler() { return sched_; }

  EncodedImage encode_image(const std::string& path, const ImageOptions& o = {}) {
    return reel::encode_image(vision(), path, o, ctx());
  }
  EncodedVideo encode_video(const std::string& path, const VideoOptions& o, int64_t budget) {
    const VisionConfig& v = vision().config();
    return reel::encode_video(vision(), plan_video(path, o, v.patch_size, v.spatial_merge, budget),
                              ctx());
  }

  // Logits of every prompt position into `logits` ([n][n_vocab]) and the n_greedy tokens that
  // follow, in a fresh f32 cache of n_ctx tokens.
  std::vector<int32_t> run(const std::vector<int32_t>& ids, const std::vector<VisualBlock>& blocks,
                           int n_greedy, std::vector<float>& logits, int n_ctx = 512) {
    Sequence seq(*model_, SequenceOptions{n_ctx, KvType::F32});
    const size_t V = model_->text_config().n_vocab;
    logits.clear();
    Request r;
    r.seq = &seq;
    r.ids = ids;
    r.blocks = blocks;
    r.sampling.temperature = 0;
    r.max_tokens = n_greedy;
    r.ignore_stop = true;
    r.on_logits = [&](const float* rows, int n) {
      logits.insert(logits.end(), rows, rows + n * V);
    };
    return sched_.run_one(std::move(r)).generated;
  }

 private:
  std::shared_ptr<const Model> model_;
  Executor exec_;
  Scheduler sched_;
};

}  // namespace reel::test
