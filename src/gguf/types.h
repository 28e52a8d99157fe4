// ggml tensor element types as stored in GGUF files: ids, block geometry and reference
// (scalar, obviously-correct) conversion to float. Fast kernels live in ops/; these are the
// ground truth they are tested against.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

namespace reel {

// Values are the ggml type ids written in GGUF tensor infos.
enum class GgmlType : uint32_t {
  F32 = 0,
  F16 = 1,
  Q4_0 = 2,
  Q4_1 = 3,
  Q5_0 = 6,
  Q5_1 = 7,
  Q8_0 = 8,
  Q8_1 = 9,
  Q2_K = 10,
  Q3_K = 11,
  Q4_K = 12,
  Q5_K = 13,
  Q6_K = 14,
  Q8_K = 15,
  BF16 = 30,
};

struct TypeInfo {
  GgmlType type;
  std::string_view name;  // "Q4_K", as ggml names it
  int block_elems;        // elements per block (1 for float types)
  int block_bytes;        // bytes per block
  bool supported;         // Reel can dequantize it (and so load tensors of it)
};

// Geometry of a ggml type id read from a file, or nullopt for an id Reel does not know.
std::optional<TypeInfo> type_info(uint32_t id);
TypeInfo type_info(GgmlType type);

// Bytes taken by n elements of `type`; n must be a multiple of the block size.
size_t row_bytes(GgmlType type, int64_t n);

// Reference dequantization of n elements (a multiple of the block size) starting at src.
void dequantize_row_ref(GgmlType type, const void* src, float* dst, int64_t n);

// IEEE half and bfloat16 conversions (round-to-nearest-even on the way down).
float fp16_to_f32(uint16_t h);
uint16_t f32_to_fp16(float f);
float bf16_to_f32(uint16_t h);

}  // namespace reel
