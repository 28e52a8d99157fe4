// Binding GGUF tensors to model weights: every tensor looked up by name, its shape and type
// checked, and an error that names the file and the tensor when anything is off. Shared by
// the text and vision models.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <string>

#include "gguf/gguf.h"
#include "ops/ops.h"

namespace reel::weights {

std::string shape_str(const int64_t* ne, int n);

// Hyperparameters are range-checked before any buffer is sized from them, so a hostile file
// cannot ask for absurd allocations.
void check_range(const gguf::File& f, const char* what, int64_t v, int64_t lo, int64_t hi);

const gguf::TensorInfo& need_tensor(const gguf::File& f, const std::string& name,
                                    std::initializer_list<int64_t> shape);
const float* need_f32(const gguf::File& f, const std::string& name, int64_t n);
// A [rows][cols] matrix view of t (any supported type whose blocks tile a row).
ops::Matrix as_matrix(const gguf::File& f, const gguf::TensorInfo& t, int64_t cols, int64_t rows);
ops::Matrix need_matrix(const gguf::File& f, const std::string& name, int64_t cols, int64_t rows);
// Bytes of a matrix's stored rows (what one product with it reads).
inline size_t matrix_bytes(const ops::Matrix& m) {
  return m.row_stride * static_cast<size_t>(m.rows);
}

}  // namespace reel::weights
