#include "backends/rknpu/runtime.h"

#include <dlfcn.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <new>

#include "common/error.h"

namespace reel::rknpu {

std::shared_ptr<SharedLibrary> SharedLibrary::open(const char* env_var, const char* default_name,
                                                   const char* what) {
  const char* env = std::getenv(env_var);
  const std::string path = env && *env ? env : default_name;
  dlerror();
  void* h = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (!h) {
    const char* why = dlerror();
    throw Unsupported(std::string("cannot load the ") + what + " " + path + " (" +
                      (why ? why : "unknown reason") + "); install Rockchip's runtime or set " +
                      env_var + " to its path");
  }
  return std::shared_ptr<SharedLibrary>(new SharedLibrary(h, path, what));
}

SharedLibrary::~SharedLibrary() {
  dlclose(handle_);
}

void* SharedLibrary::require(const char* name) const {
  dlerror();
  void* p = dlsym(handle_, name);
  if (!p)
    throw Unsupported(what_ + " " + path_ + " has no symbol " + name +
                      ": not a runtime version Reel supports");
  return p;
}

std::shared_ptr<const RknnApi> RknnApi::load() {
  auto api = std::make_shared<RknnApi>();
  api->lib = SharedLibrary::open("REEL_RKNN_LIB", "librknnrt.so", "RKNN runtime");
  const SharedLibrary& l = *api->lib;
  api->init = reinterpret_cast<rknn::InitFn>(l.require("rknn_init"));
  api->destroy = reinterpret_cast<rknn::DestroyFn>(l.require("rknn_destroy"));
  api->query = reinterpret_cast<rknn::QueryFn>(l.require("rknn_query"));
  api->inputs_set = reinterpret_cast<rknn::InputsSetFn>(l.require("rknn_inputs_set"));
  api->run = reinterpret_cast<rknn::RunFn>(l.require("rknn_run"));
  api->outputs_get = reinterpret_cast<rknn::OutputsGetFn>(l.require("rknn_outputs_get"));
  api->outputs_release =
      reinterpret_cast<rknn::OutputsReleaseFn>(l.require("rknn_outputs_release"));
  return api;
}

const char* rkllm_abi_name(RkllmAbi abi) {
  return abi == RkllmAbi::k1_3_0 ? "1.3.0" : "1.2.3";
}

namespace {

// Larger than RKLLMParam in any version, so the library writes only inside it.
struct ParamProbe {
  unsigned char bytes[1024];
};
using ProbeFn = ParamProbe (*)();

// Calls `fn` with `out` as the memory its by-value result goes to (C++17 guarantees that the
// prvalue initializes *out directly, so no temporary hides the library's writes). Not inlined,
// so that the caller's fill cannot be seen as dead.
[[gnu::noinline]] void call_into(ProbeFn fn, void* out) {
  ::new (out) ParamProbe(fn());
}

// One past the last byte the library changed in a buffer filled with `fill`.
size_t written_extent(ProbeFn fn, unsigned char fill) {
  alignas(16) static unsigned char buffer[sizeof(ParamProbe)];
  std::memset(buffer, fill, sizeof buffer);
  asm volatile("" ::: "memory");
  call_into(fn, buffer);
  asm volatile("" ::: "memory");
  size_t end = 0;
  for (size_t i = 0; i < sizeof buffer; ++i)
    if (buffer[i] != fill) end = i + 1;
  return end;
}

}  // namespace

RkllmAbi detect_rkllm_abi(void* create_default_param, std::string& source) {
  const auto fn = reinterpret_cast<ProbeFn>(create_default_param);
  // A byte the library writes may equal one pattern by chance, never both.
  const size_t extent = std::max(written_extent(fn, 0xA5), written_extent(fn, 0x5A));
  constexpr size_t k123 = sizeof(rkllm::v123::Param), k130 = sizeof(rkllm::v130::Param);
  // 1.3.0's struct ends 4 bytes of padding after extend_param (180), 1.2.3's reserved bytes
  // end at 206: a library that leaves trailing padding alone still lands in its own range.
  if (extent > k130 && extent <= k123) {
    source = "RKLLMParam is " + std::to_string(k123) + " bytes";
    return RkllmAbi::k1_2_3;
  }
  if (extent > k130 - 8 && extent <= k130) {
    source = "RKLLMParam is " + std::to_string(k130) + " bytes";
    return RkllmAbi::k1_3_0;
  }
  throw Unsupported("cannot tell the RKLLM runtime's version (rkllm_createDefaultParam wrote " +
                    std::to_string(extent) +
                    " bytes; 1.2.3 writes 208, 1.3.0 184): set REEL_RKLLM_ABI=1.2.3 or 1.3.0");
}

std::shared_ptr<const RkllmApi> RkllmApi::load() {
  auto api = std::make_shared<RkllmApi>();
  api->lib = SharedLibrary::open("REEL_RKLLM_LIB", "librkllmrt.so", "RKLLM runtime");
  const SharedLibrary& l = *api->lib;
  api->create_default_param = l.require("rkllm_createDefaultParam");
  api->init = l.require("rkllm_init");
  api->run = l.require("rkllm_run");
  api->destroy = reinterpret_cast<rkllm::DestroyFn>(l.require("rkllm_destroy"));
  api->abort = reinterpret_cast<rkllm::AbortFn>(l.require("rkllm_abort"));
  api->clear_kv_cache = reinterpret_cast<rkllm::ClearKvCacheFn>(l.require("rkllm_clear_kv_cache"));
  const char* forced = std::getenv("REEL_RKLLM_ABI");
  if (forced && *forced) {
    const std::string v = forced;
    if (v != "1.2.3" && v != "1.3.0")
      throw Error("REEL_RKLLM_ABI must be 1.2.3 or 1.3.0, not '" + v + "'");
    api->abi = v == "1.3.0" ? RkllmAbi::k1_3_0 : RkllmAbi::k1_2_3;
    api->abi_source = "set by REEL_RKLLM_ABI";
  } else {
    api->abi = detect_rkllm_abi(api->create_default_param, api->abi_source);
  }
  return api;
}

std::string RkllmApi::describe() const {
  return "RKLLM runtime " + lib->path() + ": ABI " + rkllm_abi_name(abi) + " (" + abi_source + ")";
}

}  // namespace reel::rknpu
