// Reel's own declarations of the parts of Rockchip's RKNN runtime API (librknnrt.so, rknpu2)
// that the NPU vision encoder uses. Written from the public rknn_api.h (airockchip/rknn-toolkit2,
// the copy shipped with rknn-llm 1.2.3 and 1.3.0 is the same file): names, values and struct
// layouts follow it so that the structs here are byte-compatible with the real library. Only
// what Reel calls is declared. The fake runtime in tests/backends/rknpu implements these.
#pragma once

#include <cstddef>
#include <cstdint>

namespace reel::rknpu::rknn {

// The header makes the context 32-bit on 32-bit ARM and 64-bit elsewhere.
#if defined(__arm__)
using Context = uint32_t;
#else
using Context = uint64_t;
#endif

inline constexpr int kSucc = 0;
inline constexpr int kMaxDims = 16;
inline constexpr int kMaxNameLen = 256;

// rknn_query_cmd (an enum: int-sized).
enum QueryCmd : int {
  kQueryInOutNum = 0,
  kQueryInputAttr = 1,
  kQueryOutputAttr = 2,
  kQuerySdkVersion = 5,
};

// rknn_tensor_type.
enum TensorType : int { kFloat32 = 0, kFloat16 = 1, kInt8 = 2, kUint8 = 3 };

// rknn_tensor_format.
enum TensorFormat : int { kNchw = 0, kNhwc = 1 };

// rknn_input_output_num.
struct InputOutputNum {
  uint32_t n_input;
  uint32_t n_output;
};

// rknn_tensor_attr: `index` is set by the caller before rknn_query, the rest is filled in.
struct TensorAttr {
  uint32_t index;
  uint32_t n_dims;
  uint32_t dims[kMaxDims];
  char name[kMaxNameLen];
  uint32_t n_elems;
  uint32_t size;
  int fmt;       // TensorFormat
  int type;      // TensorType
  int qnt_type;  // rknn_tensor_qnt_type
  int8_t fl;
  int32_t zp;
  float scale;
  uint32_t w_stride;
  uint32_t size_with_stride;
  uint8_t pass_through;
  uint32_t h_stride;
};

// rknn_sdk_version.
struct SdkVersion {
  char api_version[256];
  char drv_version[256];
};

// rknn_input: the runtime converts `buf` (type, fmt) to the model's input layout.
struct Input {
  uint32_t index;
  void* buf;
  uint32_t size;
  uint8_t pass_through;
  int type;  // TensorType
  int fmt;   // TensorFormat
};

// rknn_output: with is_prealloc = 0 the runtime owns `buf` until rknn_outputs_release.
struct Output {
  uint8_t want_float;
  uint8_t is_prealloc;
  uint32_t index;
  void* buf;
  uint32_t size;
};

// The entry points. rknn_init takes a file path in `model` when size is 0.
using InitFn = int (*)(Context* ctx, void* model, uint32_t size, uint32_t flag, void* extend);
using DestroyFn = int (*)(Context ctx);
using QueryFn = int (*)(Context ctx, int cmd, void* info, uint32_t size);
using InputsSetFn = int (*)(Context ctx, uint32_t n_inputs, Input* inputs);
using RunFn = int (*)(Context ctx, void* extend);
using OutputsGetFn = int (*)(Context ctx, uint32_t n_outputs, Output* outputs, void* extend);
using OutputsReleaseFn = int (*)(Context ctx, uint32_t n_outputs, Output* outputs);

// The layouts on LP64 (aarch64, x86-64), from the public header by hand: a mistake in the
// declarations above fails the build instead of corrupting memory on a board.
#if defined(__LP64__)
static_assert(sizeof(InputOutputNum) == 8);
static_assert(offsetof(TensorAttr, name) == 72 && offsetof(TensorAttr, n_elems) == 328);
static_assert(offsetof(TensorAttr, fl) == 348 && offsetof(TensorAttr, zp) == 352);
static_assert(offsetof(TensorAttr, h_stride) == 372 && sizeof(TensorAttr) == 376);
static_assert(offsetof(Input, buf) == 8 && offsetof(Input, type) == 24 && sizeof(Input) == 32);
static_assert(offsetof(Output, index) == 4 && offsetof(Output, buf) == 8 && sizeof(Output) == 24);
static_assert(sizeof(SdkVersion) == 512);
#endif

}  // namespace reel::rknpu::rknn
