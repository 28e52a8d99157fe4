// Rockchip's NPU runtimes, loaded at run time with dlopen: nothing links librknnrt.so or
// librkllmrt.so at build time, so one binary runs on boards with and without them, and only a
// run that uses an .rknn or .rkllm file needs them. REEL_RKNN_LIB / REEL_RKLLM_LIB name another
// file (tests point them at the fake runtimes; unusual installs at their copy).
#pragma once

#include <memory>
#include <string>

#include "backends/rknpu/rkllm_abi.h"
#include "backends/rknpu/rknn_abi.h"

namespace reel::rknpu {

// A dlopen'ed library, closed with the last owner.
class SharedLibrary {
 public:
  // Opens `env_var`'s file if set, else `default_name` through the dynamic loader's search.
  // Throws reel::Unsupported naming the file and the loader's reason.
  static std::shared_ptr<SharedLibrary> open(const char* env_var, const char* default_name,
                                             const char* what);
  ~SharedLibrary();
  SharedLibrary(const SharedLibrary&) = delete;
  SharedLibrary& operator=(const SharedLibrary&) = delete;

  // The address of `name`; throws reel::Unsupported when it is missing.
  void* require(const char* name) const;
  const std::string& path() const { return path_; }

 private:
  SharedLibrary(void* handle, std::string path, std::string what)
      : handle_(handle), path_(std::move(path)), what_(std::move(what)) {}
  void* handle_;
  std::string path_, what_;
};

// librknnrt.so's entry points.
struct RknnApi {
  static std::shared_ptr<const RknnApi> load();

  std::shared_ptr<SharedLibrary> lib;
  rknn::InitFn init = nullptr;
  rknn::DestroyFn destroy = nullptr;
  rknn::QueryFn query = nullptr;
  rknn::InputsSetFn inputs_set = nullptr;
  rknn::RunFn run = nullptr;
  rknn::OutputsGetFn outputs_get = nullptr;
  rknn::OutputsReleaseFn outputs_release = nullptr;
};

enum class RkllmAbi { k1_2_3, k1_3_0 };
const char* rkllm_abi_name(RkllmAbi abi);

// librkllmrt.so's entry points and which ABI the library speaks.
struct RkllmApi {
  // Detects the ABI (see detect_rkllm_abi); REEL_RKLLM_ABI=1.2.3|1.3.0 overrides it.
  static std::shared_ptr<const RkllmApi> load();

  std::shared_ptr<SharedLibrary> lib;
  RkllmAbi abi = RkllmAbi::k1_2_3;
  std::string abi_source;                // how the ABI was found, for the one line Reel prints
  void* create_default_param = nullptr;  // v123:: or v130::CreateDefaultParamFn, by abi
  void* init = nullptr;                  // v123:: or v130::InitFn, by abi
  void* run = nullptr;                   // v123:: or v130::RunFn, by abi
  rkllm::DestroyFn destroy = nullptr;
  rkllm::AbortFn abort = nullptr;
  rkllm::ClearKvCacheFn clear_kv_cache = nullptr;

  // "RKLLM runtime PATH: ABI 1.2.3 (SOURCE)".
  std::string describe() const;
};

// Both versions export the same names, and no version query exists before a model is loaded.
// What differs and can be seen without a model is the size of RKLLMParam, which
// rkllm_createDefaultParam returns by value (through memory the caller provides, on every ABI
// Reel builds for): 208 bytes in 1.2.3, 184 in 1.3.0. This calls it into a larger buffer filled
// with two patterns in turn and measures how far the library wrote. Throws reel::Unsupported
// when the extent matches neither version.
RkllmAbi detect_rkllm_abi(void* create_default_param, std::string& source);

}  // namespace reel::rknpu
