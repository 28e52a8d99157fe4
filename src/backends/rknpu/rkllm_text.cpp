#include "backends/rknpu/rkllm_text.h"

#include <chrono>
#include <condition_variable>
#include <exception>
#include <mutex>
#include <thread>
#include <type_traits>
#include <vector>

#include "backends/rknpu/model_files.h"
#include "common/error.h"

namespace reel::rknpu {

// What one rkllm_run's callbacks report, through the callback's userdata.
struct RkllmTextModel::Turn {
  const std::function<void(std::string_view)>* on_text = nullptr;
  RkllmPerf perf;
  const std::atomic<bool>* cancel = nullptr;
  bool finished = false, failed = false;
  std::atomic<bool> aborted{false};  // rkllm_abort was called for this run
  std::exception_ptr error;          // thrown by on_text; never let through the runtime's C frames

  bool cancelled() const { return cancel && cancel->load(); }
};

int RkllmTextModel::on_result(rkllm::Result* result, void* userdata, int state) {
  auto* turn = static_cast<Turn*>(userdata);
  if (!turn) return 0;
  switch (state) {
    case rkllm::kRunNormal:
      // Text that arrives after a stop was asked for is dropped: rkllm_abort is on its way.
      if (!turn->error && !turn->cancelled() && result && result->text && *result->text) {
        try {
          (*turn->on_text)(result->text);
        } catch (...) {
          // Not rkllm_abort from inside the runtime's own callback: the rest of the answer
          // is dropped instead, and the error rethrown once rkllm_run returns.
          turn->error = std::current_exception();
        }
      }
      break;
    case rkllm::kRunFinish:
      turn->finished = true;
      if (result) {
        const rkllm::PerfStat& p = result->perf;
        turn->perf = {p.prefill_time_ms, p.generate_time_ms, p.memory_usage_mb, p.prefill_tokens,
                      p.generate_tokens};
      }
      break;
    case rkllm::kRunError:
      turn->failed = true;
      break;
    default:  // kRunWaiting: a UTF-8 character is incomplete; its bytes come with the next text
      break;
  }
  return 0;
}

namespace {

// The structs and entry points of each ABI, for the one body below; the layouts themselves stay
// in rkllm_abi.h, pinned by its static_asserts.
struct Abi123 {
  using Param = rkllm::v123::Param;
  using Input = rkllm::v123::Input;
  using InferParam = rkllm::v123::InferParam;
  using CreateDefaultParamFn = rkllm::v123::CreateDefaultParamFn;
  using InitFn = rkllm::v123::InitFn;
  using RunFn = rkllm::v123::RunFn;
};
struct Abi130 {
  using Param = rkllm::v130::Param;
  using Input = rkllm::v130::Input;
  using InferParam = rkllm::v130::InferParam;
  using CreateDefaultParamFn = rkllm::v130::CreateDefaultParamFn;
  using InitFn = rkllm::v130::InitFn;
  using RunFn = rkllm::v130::RunFn;
};

// The parameters both versions share, set alike.
template <typename Param>
void fill_common(Param& p, const std::string& path, const RkllmOptions& o) {
  p.model_path = path.c_str();
  p.max_context_len = o.max_context_len;
  p.max_new_tokens = o.max_new_tokens;
  p.skip_special_token = true;  // the answer without <|im_end|> and the like
  p.is_async = false;
  p.extend_param.base_domain_id = o.base_domain_id;
}

// 1.2.3: the image fields sit in the multimodal input itself, the tags were given at init.
void fill_images(rkllm::v123::MultiModalInput& mm, const RkllmImages& images, const RkllmOptions&) {
  mm.image_embed = const_cast<float*>(images.embed);
  mm.n_image_tokens = images.n_tokens;
  mm.n_image = images.n_images;
  mm.image_width = images.width;
  mm.image_height = images.height;
}

// 1.3.0: they moved into its `image` member, with the tags.
void fill_images(rkllm::v130::MultiModalInput& mm, const RkllmImages& images,
                 const RkllmOptions& o) {
  rkllm::v130::ImageInput& im = mm.image;
  im.image_embed = const_cast<float*>(images.embed);
  im.n_image_tokens = images.n_tokens;
  im.n_image = images.n_images;
  im.image_start = o.image_start.c_str();
  im.image_end = o.image_end.c_str();
  im.image_content = o.image_content.c_str();
  im.image_width = images.width;
  im.image_height = images.height;
}

[[noreturn]] void throw_init_failure(const std::string& path, const RkllmApi& api, int rc) {
  throw Error(path + ": the RKLLM runtime (ABI " + rkllm_abi_name(api.abi) +
              ") cannot load this model (rkllm_init returned " + std::to_string(rc) +
              "); a file converted for another RKLLM version needs that version's runtime");
}

}  // namespace

void require_runtime_runs(const RkllmApi& api, const std::string& path) {
  if (api.abi == RkllmAbi::k1_2_3 && names_qwen35(path))
    throw Unsupported(path +
                      ": a Qwen3.5 model needs the RKLLM runtime 1.3.0 or later (Rockchip "
                      "added Qwen3.5 in 1.3.0); " +
                      api.lib->path() + " is ABI 1.2.3");
}

RkllmTextModel::RkllmTextModel(std::shared_ptr<const RkllmApi> api, const std::string& path,
                               const RkllmOptions& options)
    : api_(std::move(api)), path_(path), options_(options) {
  require_runtime_runs(*api_, path_);
  if (api_->abi == RkllmAbi::k1_3_0)
    init<Abi130>(path_, options_);
  else
    init<Abi123>(path_, options_);
}

RkllmTextModel::~RkllmTextModel() {
  if (handle_) api_->destroy(handle_);
}

template <typename Abi>
void RkllmTextModel::init(const std::string& path, const RkllmOptions& o) {
  typename Abi::Param p =
      reinterpret_cast<typename Abi::CreateDefaultParamFn>(api_->create_default_param)();
  fill_common(p, path, o);
  const auto init_fn = reinterpret_cast<typename Abi::InitFn>(api_->init);
  int rc = 0;
  if constexpr (std::is_same_v<Abi, Abi130>) {
    callbacks_ = rkllm::v130::Callbacks{};
    callbacks_.result_callback = &RkllmTextModel::on_result;  // userdata comes with each run
    rc = init_fn(&handle_, &p, &callbacks_);
  } else {
    p.img_start = o.image_start.c_str();  // options_' strings: alive as long as the handle
    p.img_end = o.image_end.c_str();
    p.img_content = o.image_content.c_str();
    rc = init_fn(&handle_, &p, &RkllmTextModel::on_result);
  }
  // Some runtimes returned 0 with no handle when the model did not load (rknn-llm issue 156).
  if (rc != 0 || !handle_) {
    handle_ = nullptr;
    throw_init_failure(path, *api_, rc);
  }
}

template <typename Abi>
int RkllmTextModel::run(Turn& turn, const std::string& prompt, const RkllmImages* images,
                        bool keep) {
  std::vector<char> text(prompt.begin(), prompt.end());  // the API takes a char*
  text.push_back('\0');
  typename Abi::Input in{};
  in.role = "user";
  in.enable_thinking = options_.enable_thinking;
  if (images) {
    in.input_type = rkllm::kInputMultimodal;
    in.multimodal_input = {};
    in.multimodal_input.prompt = text.data();
    fill_images(in.multimodal_input, *images, options_);
  } else {
    in.input_type = rkllm::kInputPrompt;
    in.prompt_input = text.data();
  }
  typename Abi::InferParam infer{};
  infer.mode = rkllm::kInferGenerate;
  infer.keep_history = keep ? 1 : 0;
  if constexpr (requires { infer.max_new_tokens; })
    infer.max_new_tokens = 0;  // 1.3.0: the value given at init
  return reinterpret_cast<typename Abi::RunFn>(api_->run)(handle_, &in, &infer, &turn);
}

// rkllm_run, with a thread of Reel's own that calls rkllm_abort once `cancel` is set: the
// runtime's documented way to stop a run, from outside its callback.
int RkllmTextModel::run_watched(Turn& turn, const std::string& prompt, const RkllmImages* images,
                                bool keep, const std::atomic<bool>* cancel) {
  auto run_once = [&] {
    return api_->abi == RkllmAbi::k1_3_0 ? run<Abi130>(turn, prompt, images, keep)
                                         : run<Abi123>(turn, prompt, images, keep);
  };
  if (!cancel) return run_once();
  std::mutex m;
  std::condition_variable cv;
  bool done = false;
  std::thread watcher([&] {
    std::unique_lock lock(m);
    while (!done) {
      if (cancel->load() && !turn.aborted.exchange(true)) api_->abort(handle_);
      // 20 ms: a stop well inside a token's time on the NPU, at no measurable cost.
      cv.wait_for(lock, std::chrono::milliseconds(20));
    }
  });
  const int rc = run_once();
  {
    std::lock_guard lock(m);
    done = true;
  }
  cv.notify_one();
  watcher.join();
  return rc;
}

RkllmPerf RkllmTextModel::generate(const std::string& prompt, const RkllmImages* images,
                                   bool keep_history,
                                   const std::function<void(std::string_view)>& on_text,
                                   const std::atomic<bool>* cancel) {
  // The runtime would fail or truncate on its own; say why before it starts.
  if (images && images->n_images * images->n_tokens >= size_t(options_.max_context_len))
    throw ContextFull(std::to_string(images->n_images) + " images of " +
                      std::to_string(images->n_tokens) + " tokens do not fit in the " +
                      std::to_string(options_.max_context_len) +
                      "-token context of the NPU language model; use fewer frames");
  Turn turn;
  turn.on_text = &on_text;
  turn.cancel = cancel;
  if (turn.cancelled()) throw Cancelled("the answer was stopped");
  const int rc = run_watched(turn, prompt, images, keep_history, cancel);
  if (turn.error) std::rethrow_exception(turn.error);
  // After rkllm_abort the run's return code and final state say nothing about the model.
  if (turn.aborted || turn.cancelled()) throw Cancelled("the answer was stopped");
  if (rc != 0)
    throw Error(path_ + ": generation failed in the RKLLM runtime (rkllm_run returned " +
                std::to_string(rc) + ")");
  if (turn.failed)
    throw Error(path_ + ": the RKLLM runtime reported an error while generating the answer");
  return turn.perf;
}

void RkllmTextModel::clear_history() {
  const int rc = api_->clear_kv_cache(handle_, 1, nullptr, nullptr);
  if (rc != 0)
    throw Error(path_ +
                ": the RKLLM runtime could not clear its KV cache (rkllm_clear_kv_cache "
                "returned " +
                std::to_string(rc) + ")");
}

}  // namespace reel::rknpu
