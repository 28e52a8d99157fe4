#include "backends/rknpu/rkllm_text.h"

#include <exception>
#include <vector>

#include "common/error.h"

namespace reel::rknpu {

// What one rkllm_run's callbacks report, through the callback's userdata.
struct RkllmTextModel::Turn {
  const std::function<void(std::string_view)>* on_text = nullptr;
  RkllmPerf perf;
  bool finished = false, failed = false;
  std::exception_ptr error;  // thrown by on_text; never let through the runtime's C frames
};

int RkllmTextModel::on_result(rkllm::Result* result, void* userdata, int state) {
  auto* turn = static_cast<Turn*>(userdata);
  if (!turn) return 0;
  switch (state) {
    case rkllm::kRunNormal:
      if (!turn->error && result && result->text && *result->text) {
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

RkllmTextModel::RkllmTextModel(std::shared_ptr<const RkllmApi> api, const std::string& path,
                               const RkllmOptions& options)
    : api_(std::move(api)), path_(path), options_(options) {
  if (api_->abi == RkllmAbi::k1_3_0)
    init_v130(path_, options_);
  else
    init_v123(path_, options_);
}

RkllmTextModel::~RkllmTextModel() {
  if (handle_) api_->destroy(handle_);
}

namespace {

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

[[noreturn]] void throw_init_failure(const std::string& path, const RkllmApi& api, int rc) {
  throw Error(path + ": the RKLLM runtime (ABI " + rkllm_abi_name(api.abi) +
              ") cannot load this model (rkllm_init returned " + std::to_string(rc) +
              "); a file converted for another RKLLM version needs that version's runtime");
}

}  // namespace

void RkllmTextModel::init_v123(const std::string& path, const RkllmOptions& o) {
  namespace v = rkllm::v123;
  v::Param p = reinterpret_cast<v::CreateDefaultParamFn>(api_->create_default_param)();
  fill_common(p, path, o);
  p.img_start = o.image_start.c_str();
  p.img_end = o.image_end.c_str();
  p.img_content = o.image_content.c_str();
  const int rc = reinterpret_cast<v::InitFn>(api_->init)(&handle_, &p, &RkllmTextModel::on_result);
  // Some runtimes returned 0 with no handle when the model did not load (rknn-llm issue 156).
  if (rc != 0 || !handle_) {
    handle_ = nullptr;
    throw_init_failure(path, *api_, rc);
  }
}

void RkllmTextModel::init_v130(const std::string& path, const RkllmOptions& o) {
  namespace v = rkllm::v130;
  v::Param p = reinterpret_cast<v::CreateDefaultParamFn>(api_->create_default_param)();
  fill_common(p, path, o);
  callbacks_ = v::Callbacks{};
  callbacks_.result_callback = &RkllmTextModel::on_result;  // userdata comes with each run
  const int rc = reinterpret_cast<v::InitFn>(api_->init)(&handle_, &p, &callbacks_);
  if (rc != 0 || !handle_) {
    handle_ = nullptr;
    throw_init_failure(path, *api_, rc);
  }
}

int RkllmTextModel::run_v123(Turn& turn, const std::string& prompt, const RkllmImages* images,
                             bool keep) {
  namespace v = rkllm::v123;
  std::vector<char> text(prompt.begin(), prompt.end());  // the API takes a char*
  text.push_back('\0');
  v::Input in{};
  in.role = "user";
  in.enable_thinking = false;
  if (images) {
    in.input_type = rkllm::kInputMultimodal;
    in.multimodal_input = v::MultiModalInput{};
    in.multimodal_input.prompt = text.data();
    in.multimodal_input.image_embed = const_cast<float*>(images->embed);
    in.multimodal_input.n_image_tokens = images->n_tokens;
    in.multimodal_input.n_image = images->n_images;
    in.multimodal_input.image_width = images->width;
    in.multimodal_input.image_height = images->height;
  } else {
    in.input_type = rkllm::kInputPrompt;
    in.prompt_input = text.data();
  }
  v::InferParam infer{};
  infer.mode = rkllm::kInferGenerate;
  infer.keep_history = keep ? 1 : 0;
  return reinterpret_cast<v::RunFn>(api_->run)(handle_, &in, &infer, &turn);
}

int RkllmTextModel::run_v130(Turn& turn, const std::string& prompt, const RkllmImages* images,
                             bool keep) {
  namespace v = rkllm::v130;
  std::vector<char> text(prompt.begin(), prompt.end());
  text.push_back('\0');
  v::Input in{};
  in.role = "user";
  in.enable_thinking = false;
  if (images) {
    in.input_type = rkllm::kInputMultimodal;
    in.multimodal_input = v::MultiModalInput{};
    in.multimodal_input.prompt = text.data();
    v::ImageInput& im = in.multimodal_input.image;
    im.image_embed = const_cast<float*>(images->embed);
    im.n_image_tokens = images->n_tokens;
    im.n_image = images->n_images;
    im.image_start = options_.image_start.c_str();
    im.image_end = options_.image_end.c_str();
    im.image_content = options_.image_content.c_str();
    im.image_width = images->width;
    im.image_height = images->height;
  } else {
    in.input_type = rkllm::kInputPrompt;
    in.prompt_input = text.data();
  }
  v::InferParam infer{};
  infer.mode = rkllm::kInferGenerate;
  infer.keep_history = keep ? 1 : 0;
  infer.max_new_tokens = 0;  // the value given at init
  return reinterpret_cast<v::RunFn>(api_->run)(handle_, &in, &infer, &turn);
}

RkllmPerf RkllmTextModel::generate(const std::string& prompt, const RkllmImages* images,
                                   bool keep_history,
                                   const std::function<void(std::string_view)>& on_text) {
  // The runtime would fail or truncate on its own; say why before it starts.
  if (images && images->n_images * images->n_tokens >= size_t(options_.max_context_len))
    throw ContextFull(std::to_string(images->n_images) + " images of " +
                      std::to_string(images->n_tokens) + " tokens do not fit in the " +
                      std::to_string(options_.max_context_len) +
                      "-token context of the NPU language model; use fewer frames");
  Turn turn;
  turn.on_text = &on_text;
  const int rc = api_->abi == RkllmAbi::k1_3_0 ? run_v130(turn, prompt, images, keep_history)
                                               : run_v123(turn, prompt, images, keep_history);
  if (turn.error) std::rethrow_exception(turn.error);
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
