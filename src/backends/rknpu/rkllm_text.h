// The language model as an .rkllm file on the NPU (librkllmrt.so, ABI 1.2.3 or 1.3.0). The file
// carries its own tokenizer and chat template and the runtime samples: Reel gives it text (with
// `<image>` where image embeddings go) plus the embeddings, and gets text back through the
// result callback.
#pragma once

#include <atomic>
#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "backends/rknpu/runtime.h"

namespace reel::rknpu {

struct RkllmOptions {
  int max_context_len = 4096;
  int max_new_tokens = 1024;
  // Rockchip's multimodal demo: 1 on RK3588 and RK3576 (the vision encoder's .rknn runs in
  // domain 0 beside it), 0 on RK3562 and RV1126B.
  int base_domain_id = 1;
  // How the runtime writes an image into the prompt: start, content repeated per image token,
  // end. Qwen3-VL's own tokens, as Rockchip's demo sets them.
  std::string image_start = "<|vision_start|>";
  std::string image_end = "<|vision_end|>";
  std::string image_content = "<|image_pad|>";
  // RKLLMInput.enable_thinking, in both ABIs: the chat template's thinking switch (Qwen3,
  // Qwen3.5). Off unless asked for, as Reel always sent it.
  bool enable_thinking = false;
};

// Image embeddings for a turn: n_images * n_tokens * token_floats floats, valid until
// generate() returns.
struct RkllmImages {
  const float* embed = nullptr;
  size_t n_images = 0, n_tokens = 0;
  size_t width = 0, height = 0;  // the encoder's input size, which the runtime is told
};

// What the runtime measured for the turn (RKLLMPerfStat, passed with the finishing callback).
struct RkllmPerf {
  double prefill_ms = 0, generate_ms = 0, memory_mb = 0;
  int prefill_tokens = 0, generate_tokens = 0;
};

// Throws reel::Unsupported, one line, when the runtime cannot run the file: a Qwen3.5 model (by
// its name, names_qwen35) on ABI 1.2.3. Rockchip added Qwen3.5 in RKLLM 1.3.0 (rknn-llm's
// CHANGELOG; 1.2.3's list of supported models has no Qwen3.5), and 1.2.3's toolkit cannot
// convert it, so such a file is always a 1.3.0 conversion.
void require_runtime_runs(const RkllmApi& api, const std::string& path);

class RkllmTextModel {
 public:
  // require_runtime_runs, rkllm_createDefaultParam, then rkllm_init. Throws reel::Error naming the
  // file, the runtime's ABI and its error code when the runtime refuses the file (a file converted
  // for another RKLLM version fails here).
  RkllmTextModel(std::shared_ptr<const RkllmApi> api, const std::string& path,
                 const RkllmOptions& options = {});
  ~RkllmTextModel();
  RkllmTextModel(const RkllmTextModel&) = delete;
  RkllmTextModel& operator=(const RkllmTextModel&) = delete;

  // One turn: `prompt` (with one `<image>` per image when `images` is given) as the user's
  // message; the answer streams to on_text as the runtime produces it. keep_history: the
  // dialogue stays in the runtime's KV cache for the next turn. Throws reel::Error when
  // rkllm_run fails or the runtime reports an error state; an exception thrown by on_text
  // drops the rest of the answer and is rethrown once rkllm_run has returned. `cancel`, when
  // given, is watched from a thread of Reel's own while the runtime generates: once set,
  // rkllm_abort stops the run (never from inside the runtime's callback), the rest of the answer
  // is dropped and reel::Cancelled is thrown once rkllm_run has returned; the model stays usable.
  RkllmPerf generate(const std::string& prompt, const RkllmImages* images, bool keep_history,
                     const std::function<void(std::string_view)>& on_text,
                     const std::atomic<bool>* cancel = nullptr);

  // Forgets the dialogue: rkllm_clear_kv_cache, keeping the system prompt.
  void clear_history();

  const RkllmApi& api() const { return *api_; }

 private:
  struct Turn;
  static int on_result(rkllm::Result* result, void* userdata, int state);
  // One body for both ABIs; `Abi` names the version's structs and the calls that differ.
  template <typename Abi>
  void init(const std::string& path, const RkllmOptions& o);
  template <typename Abi>
  int run(Turn& turn, const std::string& prompt, const RkllmImages* images, bool keep);
  int run_watched(Turn& turn, const std::string& prompt, const RkllmImages* images, bool keep,
                  const std::atomic<bool>* cancel);

  std::shared_ptr<const RkllmApi> api_;
  std::string path_;
  RkllmOptions options_;  // its strings stay alive as long as the runtime may read them
  rkllm::v130::Callbacks callbacks_{};  // 1.3.0 keeps the pointer given to rkllm_init
  rkllm::Handle handle_ = nullptr;
};

}  // namespace reel::rknpu
