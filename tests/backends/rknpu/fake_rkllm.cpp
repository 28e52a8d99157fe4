// A fake librkllmrt.so, built once per ABI (FAKE_RKLLM_ABI=123 or 130) from Reel's declarations
// in rkllm_abi.h (which follow Rockchip's rkllm.h of that release), exporting every function of
// that release's header. It records every call (fake_common.h): struct sizes, field values,
// whether the buffers Reel passed are still intact when the run ends, and the callbacks it made.
// Its "model" is a text file:
//   FAKE-RKLLM <version the file was converted for: 1.2.3 or 1.3.0>
//   answer <chunks of the answer, separated by |>
//   embed <floats per image token> (optional line; 16 when absent)
// A file for the other version is refused as the real runtimes refuse a file of another
// toolkit version: an error line on stderr and a non-zero rkllm_init.
// FAKE_RKLLM_OMIT_CLEAR leaves rkllm_clear_kv_cache out (the missing-symbol test).
// REEL_FAKE_RKLLM_DELAY_MS=N (or NxK: in the first K runs only) waits N ms before each chunk of
// the answer (a slow generation, for Ctrl-C); rkllm_abort stops a run between chunks, which then
// finishes as a run that ended (finish callback, rc 0) with `aborted=1` in its log line.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "backends/rknpu/rkllm_abi.h"
#include "fake_common.h"

namespace rk = reel::rknpu::rkllm;
#if FAKE_RKLLM_ABI == 130
namespace abi = reel::rknpu::rkllm::v130;
constexpr const char* kVersion = "1.3.0";
#else
namespace abi = reel::rknpu::rkllm::v123;
constexpr const char* kVersion = "1.2.3";
#endif
using reel::fake::LogLine;

namespace {

struct Instance {
  std::vector<std::string> chunks;
  size_t embed_floats = 16;  // per image token
  int history_turns = 0;     // turns kept in the "KV cache"
  // What rkllm_init was given, to check at each run that Reel kept it alive and unchanged.
#if FAKE_RKLLM_ABI == 130
  const abi::Callbacks* callbacks = nullptr;
  abi::Callbacks callbacks_copy{};
#else
  rk::ResultCallback callback = nullptr;
  const char* tags[3] = {};
  std::string tag_copies[3];
#endif
};

int g_live = 0;
std::atomic<bool> g_abort{false};  // rkllm_abort was called during the current run
std::atomic<bool> g_running{false};
// The thread now inside Reel's callback (none: a default id). Not a thread_local: this library
// is dlopen'ed, and LeakSanitizer's stop-the-world tracer crashed (signal 11, under
// `make sanitize`) reading its dynamic TLS at the exit of reel processes that used it, depending
// on the binary's layout.
std::atomic<std::thread::id> g_callback_thread{};

int call_back(rk::ResultCallback callback, rk::Result* r, void* ud, int state) {
  g_callback_thread = std::this_thread::get_id();
  const int rc = callback(r, ud, state);
  g_callback_thread = std::thread::id();
  return rc;
}

// REEL_FAKE_RKLLM_DELAY_MS: "N" before every chunk of every run, "NxK" in the first K runs of
// the process only (a slow answer, then quick ones).
int g_runs = 0;  // rkllm_run calls so far
int delay_ms() {
  const char* d = std::getenv("REEL_FAKE_RKLLM_DELAY_MS");
  if (!d) return 0;
  const char* x = std::strchr(d, 'x');
  if (x && g_runs > std::atoi(x + 1)) return 0;
  return std::atoi(d);
}

const char* failure(const char* function) {
  return reel::fake::scripted_failure(function);
}

double float_sum(const float* p, size_t n) {
  double s = 0;
  for (size_t i = 0; p && i < n; ++i) s += p[i];
  return s;
}

int count_markers(const char* prompt) {
  int n = 0;
  for (const char* p = prompt; p && (p = std::strstr(p, "<image>")); p += 7) ++n;
  return n;
}

}  // namespace

extern "C" {

abi::Param rkllm_createDefaultParam() {
  LogLine("rkllm_createDefaultParam").kv("abi", kVersion).kv("sizeof_param", sizeof(abi::Param));
  abi::Param p;
  std::memset(&p, 0, sizeof p);
  p.max_context_len = 512;
  p.max_new_tokens = -1;
  p.top_k = 1;
  p.top_p = 0.9f;
  p.temperature = 0.8f;
  p.repeat_penalty = 1.1f;
  p.mirostat_tau = 5.0f;
  p.mirostat_eta = 0.1f;
  p.extend_param.n_batch = 1;
  return p;
}

#if FAKE_RKLLM_ABI == 130
int rkllm_init(rk::Handle* handle, abi::Param* param, abi::Callbacks* callbacks)
#else
int rkllm_init(rk::Handle* handle, abi::Param* param, rk::ResultCallback callback)
#endif
{
  LogLine log("rkllm_init");
  log.kv("abi", kVersion)
      .str("model_path", param->model_path)
      .kv("max_context_len", param->max_context_len)
      .kv("max_new_tokens", param->max_new_tokens)
      .kv("top_k", param->top_k)
      .kv("skip_special_token", int(param->skip_special_token))
      .kv("is_async", int(param->is_async))
      .kv("base_domain_id", param->extend_param.base_domain_id)
      .kv("n_batch", int(param->extend_param.n_batch));
  auto inst = std::make_unique<Instance>();
#if FAKE_RKLLM_ABI == 130
  log.kv("ignore_eos_token", int(param->ignore_eos_token))
      .ptr("callbacks", callbacks)
      .ptr("result_callback", callbacks ? (void*)callbacks->result_callback : nullptr)
      .ptr("tokenizer_callback", callbacks ? (void*)callbacks->tokenizer_callback : nullptr)
      .ptr("embed_callback", callbacks ? (void*)callbacks->embed_callback : nullptr);
  if (!callbacks || !callbacks->result_callback) return log.kv("rc", -1), -1;
  inst->callbacks = callbacks;
  inst->callbacks_copy = *callbacks;
#else
  log.str("img_start", param->img_start)
      .str("img_end", param->img_end)
      .str("img_content", param->img_content)
      .ptr("callback", (void*)callback);
  if (!callback) return log.kv("rc", -1), -1;
  inst->callback = callback;
  const char* tags[3] = {param->img_start, param->img_end, param->img_content};
  for (int i = 0; i < 3; ++i) {
    inst->tags[i] = tags[i];
    inst->tag_copies[i] = tags[i] ? tags[i] : "";
  }
#endif
  if (const char* f = failure("rkllm_init")) return log.kv("rc", std::atoi(f)), std::atoi(f);
  const std::string text = reel::fake::read_text_file(param->model_path);
  char version[16] = {};
  if (std::sscanf(text.c_str(), "FAKE-RKLLM %15s", version) != 1) {
    std::fprintf(stderr, "E rkllm: invalid model file '%s'\n", param->model_path);
    return log.kv("rc", -1), -1;
  }
  if (std::strcmp(version, kVersion) != 0) {
    std::fprintf(stderr, "E rkllm: the model was converted for RKLLM %s, this runtime is %s\n",
                 version, kVersion);
    return log.kv("model_version", version).kv("rc", -1), -1;
  }
  if (const size_t e = text.find("\nembed "); e != std::string::npos)
    inst->embed_floats = size_t(std::max(1, std::atoi(text.c_str() + e + 7)));
  const size_t at = text.find("answer ");
  std::string answer = at == std::string::npos ? "" : text.substr(at + 7);
  answer = answer.substr(0, answer.find('\n'));
  for (size_t pos = 0;;) {
    const size_t bar = answer.find('|', pos);
    inst->chunks.push_back(answer.substr(pos, bar - pos));
    if (bar == std::string::npos) break;
    pos = bar + 1;
  }
  *handle = inst.release();
  ++g_live;
  log.kv("rc", 0);
  return 0;
}

int rkllm_run(rk::Handle handle, abi::Input* input, abi::InferParam* infer, void* userdata) {
  LogLine log("rkllm_run");
  auto* inst = static_cast<Instance*>(handle);
  log.kv("abi", kVersion)
      .kv("sizeof_input", sizeof(abi::Input))
      .str("role", input->role)
      .kv("enable_thinking", int(input->enable_thinking))
      .kv("input_type", input->input_type)
      .kv("mode", infer->mode)
      .ptr("lora_params", infer->lora_params)
      .ptr("prompt_cache_params", infer->prompt_cache_params)
      .kv("keep_history", infer->keep_history)
      .ptr("userdata", userdata)
      .kv("history_turns", inst->history_turns);
#if FAKE_RKLLM_ABI == 130
  log.ptr("sampling_params", infer->sampling_params)
      .kv("infer_max_new_tokens", infer->max_new_tokens);
  const bool alive =
      std::memcmp(inst->callbacks, &inst->callbacks_copy, sizeof(abi::Callbacks)) == 0;
  log.kv("init_args_alive", int(alive));
  rk::ResultCallback callback = inst->callbacks_copy.result_callback;
  void* ud = userdata ? userdata : inst->callbacks_copy.result_userdata;
#else
  bool alive = true;
  for (int i = 0; i < 3; ++i)
    alive = alive && inst->tags[i] && inst->tag_copies[i] == inst->tags[i];
  log.kv("init_args_alive", int(alive));
  rk::ResultCallback callback = inst->callback;
  void* ud = userdata;
#endif
  const float* embed = nullptr;
  size_t n_floats = 0;
  double sum_before = 0;
  int prompt_tokens = 0;
  if (input->input_type == rk::kInputPrompt) {
    log.str("prompt", input->prompt_input);
    prompt_tokens = int(std::strlen(input->prompt_input ? input->prompt_input : "")) / 4 + 1;
  } else if (input->input_type == rk::kInputMultimodal) {
    const abi::MultiModalInput& mm = input->multimodal_input;
    log.str("prompt", mm.prompt).kv("image_markers", count_markers(mm.prompt));
#if FAKE_RKLLM_ABI == 130
    const abi::ImageInput& im = mm.image;
    log.str("image_start", im.image_start)
        .str("image_end", im.image_end)
        .str("image_content", im.image_content)
        .ptr("video_embed", mm.video.video_embed)
        .kv("n_video", mm.video.n_video);
#else
    const abi::MultiModalInput& im = mm;
#endif
    log.kv("n_image", im.n_image)
        .kv("n_image_tokens", im.n_image_tokens)
        .kv("image_width", im.image_width)
        .kv("image_height", im.image_height);
    embed = im.image_embed;
    // The embedding size is the model's (its file's `embed` line).
    n_floats = im.n_image * im.n_image_tokens * inst->embed_floats;
    sum_before = float_sum(embed, n_floats);
    log.kv("embed_sum", sum_before);
    prompt_tokens = int(im.n_image * im.n_image_tokens) + int(std::strlen(mm.prompt)) / 4;
  } else {
    return log.kv("rc", -1), -1;
  }
  if (const char* f = failure("rkllm_run"); f && std::strcmp(f, "state") != 0)
    return log.kv("rc", std::atoi(f)), std::atoi(f);

  int calls = 0;
  rk::Result r{};
  if (failure("rkllm_run")) {  // "state": the runtime reports an error through the callback
    call_back(callback, &r, ud, rk::kRunError);
    log.kv("callbacks", 1).kv("rc", 0);
    return 0;
  }
  g_abort = false;
  g_running = true;
  ++g_runs;
  size_t produced = 0;
  for (size_t i = 0; i < inst->chunks.size(); ++i) {
    if (const int d = delay_ms(); d > 0) std::this_thread::sleep_for(std::chrono::milliseconds(d));
    if (g_abort) break;
    if (i == 1) {  // an incomplete UTF-8 character: no text, wait for the next chunk
      r.text = nullptr;
      call_back(callback, &r, ud, rk::kRunWaiting);
      ++calls;
    }
    r.text = inst->chunks[i].c_str();
    r.token_id = int32_t(i);
    call_back(callback, &r, ud, rk::kRunNormal);
    ++calls;
    ++produced;
  }
  g_running = false;
  log.kv("aborted", int(g_abort.load())).kv("chunks", produced);
  r = rk::Result{};
  r.perf.prefill_time_ms = 250.0f;
  r.perf.prefill_tokens = prompt_tokens;
  r.perf.generate_time_ms = 100.0f * float(produced);
  r.perf.generate_tokens = int(produced);
  r.perf.memory_usage_mb = 1234.0f;
  call_back(callback, &r, ud, rk::kRunFinish);
  ++calls;
  // The embeddings must stay valid and unchanged until rkllm_run returns.
  if (embed) log.kv("embed_stable", int(float_sum(embed, n_floats) == sum_before));
  inst->history_turns = infer->keep_history ? inst->history_turns + 1 : 0;
  log.kv("callbacks", calls).kv("rc", 0);
  return 0;
}

#ifndef FAKE_RKLLM_OMIT_CLEAR
int rkllm_clear_kv_cache(rk::Handle handle, int keep_system_prompt, int* start_pos, int* end_pos) {
  LogLine log("rkllm_clear_kv_cache");
  log.kv("keep_system_prompt", keep_system_prompt)
      .ptr("start_pos", start_pos)
      .ptr("end_pos", end_pos);
  if (const char* f = failure("rkllm_clear_kv_cache"))
    return log.kv("rc", std::atoi(f)), std::atoi(f);
  static_cast<Instance*>(handle)->history_turns = 0;
  log.kv("rc", 0);
  return 0;
}
#endif

int rkllm_abort(rk::Handle) {
  // from_callback: called from inside the runtime's own callback, which Reel never does.
  LogLine("rkllm_abort")
      .kv("running", int(g_running.load()))
      .kv("from_callback", int(g_callback_thread.load() == std::this_thread::get_id()))
      .kv("rc", 0);
  g_abort = true;
  return 0;
}

int rkllm_destroy(rk::Handle handle) {
  delete static_cast<Instance*>(handle);
  --g_live;
  LogLine("rkllm_destroy").kv("live", g_live).kv("rc", 0);
  return 0;
}

// The rest of the header's functions, for the same exported symbols; Reel calls none of them.
#define FAKE_UNEXPECTED(name)        \
  LogLine(name).kv("unexpected", 1); \
  return -1
int rkllm_load_lora(rk::Handle, void*) {
  FAKE_UNEXPECTED("rkllm_load_lora");
}
int rkllm_load_prompt_cache(rk::Handle, const char*) {
  FAKE_UNEXPECTED("rkllm_load_prompt_cache");
}
int rkllm_release_prompt_cache(rk::Handle) {
  FAKE_UNEXPECTED("rkllm_release_prompt_cache");
}
int rkllm_run_async(rk::Handle, abi::Input*, abi::InferParam*, void*) {
  FAKE_UNEXPECTED("rkllm_run_async");
}
int rkllm_is_running(rk::Handle) {
  FAKE_UNEXPECTED("rkllm_is_running");
}
int rkllm_get_kv_cache_size(rk::Handle, int*) {
  FAKE_UNEXPECTED("rkllm_get_kv_cache_size");
}
int rkllm_set_chat_template(rk::Handle, const char*, const char*, const char*) {
  FAKE_UNEXPECTED("rkllm_set_chat_template");
}
int rkllm_set_function_tools(rk::Handle, const char*, const char*, const char*) {
  FAKE_UNEXPECTED("rkllm_set_function_tools");
}
int rkllm_set_cross_attn_params(rk::Handle, void*) {
  FAKE_UNEXPECTED("rkllm_set_cross_attn_params");
}

}  // extern "C"
