// Reel's own declarations of Rockchip's RKLLM runtime API (librkllmrt.so), for the two ABIs Reel
// supports. Written from the public rkllm.h of airockchip/rknn-llm at the tags release-v1.2.3
// and release-v1.3.0: names, values and struct layouts follow it so that these structs are
// byte-compatible with the real library. Both versions export the same function names; what
// changed in 1.3.0:
//   - RKLLMParam: img_start / img_end / img_content left it (they moved into the multimodal
//     input) and ignore_eos_token was added after skip_special_token (208 -> 184 bytes on LP64);
//   - rkllm_init takes an RKLLMCallback* (result, tokenizer and embedding callbacks with their
//     userdata) instead of a bare LLMResultCallback;
//   - RKLLMMultiModalInput: the image fields moved into an `image` member with the three tags,
//     and a `video` member was added (48 -> 144 bytes; RKLLMInput 64 -> 160);
//   - RKLLMInferParam: sampling_params (pointer) before keep_history and max_new_tokens after
//     it (32 -> 40 bytes);
//   - the result callback's return value 2 (release the output buffer) is new.
// Unchanged: the states, the input types, RKLLMResult and RKLLMPerfStat, the other functions.
#pragma once

#include <cstddef>
#include <cstdint>

namespace reel::rknpu::rkllm {

using Handle = void*;

// LLMCallState.
enum CallState : int { kRunNormal = 0, kRunWaiting = 1, kRunFinish = 2, kRunError = 3 };

// RKLLMInputType.
enum InputType : int { kInputPrompt = 0, kInputToken = 1, kInputEmbed = 2, kInputMultimodal = 3 };

// RKLLMInferMode.
enum InferMode : int { kInferGenerate = 0, kInferLastHidden = 1, kInferLogits = 2 };

// RKLLMExtendParam (both versions).
struct ExtendParam {
  int32_t base_domain_id;
  int8_t embed_flash;
  int8_t enabled_cpus_num;
  uint32_t enabled_cpus_mask;
  uint8_t n_batch;
  int8_t use_cross_attn;
  uint8_t reserved[104];
};

struct EmbedInput {
  float* embed;
  size_t n_tokens;
};

struct TokenInput {
  int32_t* input_ids;
  size_t n_tokens;
};

struct ResultLastHiddenLayer {
  const float* hidden_states;
  int embd_size;
  int num_tokens;
};

struct ResultLogits {
  const float* logits;
  int vocab_size;
  int num_tokens;
};

// RKLLMPerfStat: what the runtime measured for the run that just finished.
struct PerfStat {
  float prefill_time_ms;
  int prefill_tokens;
  float generate_time_ms;
  int generate_tokens;
  float memory_usage_mb;
};

// RKLLMResult (both versions).
struct Result {
  const char* text;
  int32_t token_id;
  ResultLastHiddenLayer last_hidden_layer;
  ResultLogits logits;
  PerfStat perf;
};

// LLMResultCallback. Return 0 to go on (1: pause; 1.3.0 also: 2 to release the output buffer).
using ResultCallback = int (*)(Result* result, void* userdata, int state);

// The opaque pointers Reel never fills (LoRA, prompt cache, sampling overrides).
struct LoraParam;
struct PromptCacheParam;
struct SamplingParam;

namespace v123 {

struct Param {
  const char* model_path;
  int32_t max_context_len;
  int32_t max_new_tokens;
  int32_t top_k;
  int32_t n_keep;
  float top_p;
  float temperature;
  float repeat_penalty;
  float frequency_penalty;
  float presence_penalty;
  int32_t mirostat;
  float mirostat_tau;
  float mirostat_eta;
  bool skip_special_token;
  bool is_async;
  const char* img_start;
  const char* img_end;
  const char* img_content;
  ExtendParam extend_param;
};

struct MultiModalInput {
  char* prompt;
  float* image_embed;  // n_image * n_image_tokens * embedding size floats
  size_t n_image_tokens;
  size_t n_image;
  size_t image_width;
  size_t image_height;
};

struct Input {
  const char* role;
  bool enable_thinking;
  int input_type;  // InputType
  union {
    const char* prompt_input;
    EmbedInput embed_input;
    TokenInput token_input;
    MultiModalInput multimodal_input;
  };
};

struct InferParam {
  int mode;  // InferMode
  LoraParam* lora_params;
  PromptCacheParam* prompt_cache_params;
  int keep_history;
};

using InitFn = int (*)(Handle* handle, Param* param, ResultCallback callback);
using RunFn = int (*)(Handle handle, Input* input, InferParam* infer, void* userdata);
using CreateDefaultParamFn = Param (*)();

}  // namespace v123

namespace v130 {

struct Param {
  const char* model_path;
  int32_t max_context_len;
  int32_t max_new_tokens;
  int32_t top_k;
  int32_t n_keep;
  float top_p;
  float temperature;
  float repeat_penalty;
  float frequency_penalty;
  float presence_penalty;
  int32_t mirostat;
  float mirostat_tau;
  float mirostat_eta;
  bool skip_special_token;
  bool ignore_eos_token;
  bool is_async;
  ExtendParam extend_param;
};

struct ImageInput {
  float* image_embed;  // n_image * n_image_tokens * embedding size floats
  size_t n_image_tokens;
  size_t n_image;
  const char* image_start;
  const char* image_end;
  const char* image_content;
  size_t image_width;
  size_t image_height;
};

struct VideoInput {
  float* video_embed;  // n_video * n_frame_per_video * n_frame_tokens * embedding size floats
  size_t n_frame_tokens;
  size_t n_frame_per_video;
  size_t n_video;
  const char* video_start;
  const char* video_end;
  const char* video_content;
  size_t frame_width;
  size_t frame_height;
};

struct MultiModalInput {
  char* prompt;
  ImageInput image;
  VideoInput video;
};

struct Input {
  const char* role;
  bool enable_thinking;
  int input_type;  // InputType
  union {
    const char* prompt_input;
    EmbedInput embed_input;
    TokenInput token_input;
    MultiModalInput multimodal_input;
  };
};

struct InferParam {
  int mode;  // InferMode
  LoraParam* lora_params;
  PromptCacheParam* prompt_cache_params;
  SamplingParam* sampling_params;
  int keep_history;
  int32_t max_new_tokens;  // <= 0: the value given at init
};

using TokenizerCallback = int (*)(void* userdata, const char* text, int32_t text_len,
                                  int32_t* tokens, int32_t n_tokens_max);
using EmbedCallback = int (*)(void* userdata, int32_t* tokens, uint64_t num_tokens, void* embed,
                              uint64_t len);

// RKLLMCallback: only the result callback is needed for a model with its own tokenizer and
// embedding table (every .rkllm file Rockchip's toolkit writes for Qwen3-VL).
struct Callbacks {
  ResultCallback result_callback;
  void* result_userdata;
  TokenizerCallback tokenizer_callback;
  void* tokenizer_userdata;
  EmbedCallback embed_callback;
  void* embed_userdata;
};

using InitFn = int (*)(Handle* handle, Param* param, Callbacks* callbacks);
using RunFn = int (*)(Handle handle, Input* input, InferParam* infer, void* userdata);
using CreateDefaultParamFn = Param (*)();

}  // namespace v130

// The functions whose signatures are the same in both versions.
using DestroyFn = int (*)(Handle handle);
using AbortFn = int (*)(Handle handle);
using ClearKvCacheFn = int (*)(Handle handle, int keep_system_prompt, int* start_pos, int* end_pos);

// The layouts on LP64 (aarch64, x86-64), worked out by hand from the public headers: a mistake
// in the declarations above fails the build instead of corrupting memory on a board.
#if defined(__LP64__)
static_assert(sizeof(ExtendParam) == 120);
static_assert(sizeof(PerfStat) == 20 && sizeof(Result) == 72 && offsetof(Result, perf) == 48);
static_assert(offsetof(v123::Param, img_start) == 64 && offsetof(v123::Param, extend_param) == 88);
static_assert(sizeof(v123::Param) == 208);
static_assert(offsetof(v130::Param, is_async) == 58 && offsetof(v130::Param, extend_param) == 60);
static_assert(sizeof(v130::Param) == 184);
static_assert(sizeof(v123::MultiModalInput) == 48 && sizeof(v123::Input) == 64);
static_assert(offsetof(v123::Input, multimodal_input) == 16);
static_assert(sizeof(v130::ImageInput) == 64 && sizeof(v130::VideoInput) == 72);
static_assert(offsetof(v130::MultiModalInput, video) == 72 && sizeof(v130::Input) == 160);
static_assert(sizeof(v123::InferParam) == 32 && offsetof(v123::InferParam, keep_history) == 24);
static_assert(sizeof(v130::InferParam) == 40 && offsetof(v130::InferParam, keep_history) == 32);
static_assert(sizeof(v130::Callbacks) == 48);
#endif

}  // namespace reel::rknpu::rkllm
