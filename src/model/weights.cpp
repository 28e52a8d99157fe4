#include "model/weights.h"

#include <vector>

#include "common/error.h"

namespace reel::weights {

std::string shape_str(const int64_t* ne, int n) {
  std::string s = "[";
  for (int i = 0; i < n; ++i) s += (i ? ", " : "") + std::to_string(ne[i]);
  return s + "]";
}

// Checks hyperparameters before any buffer is sized from them, so a hostile file cannot ask
// for absurd allocations.
void check_range(const gguf::File& f, const char* what, int64_t v, int64_t lo, int64_t hi) {
  if (v < lo || v > hi)
    throw Error(f.path() + ": " + what + " = " + std::to_string(v) + " is outside [" +
                std::to_string(lo) + ", " + std::to_string(hi) + "]");
}

const gguf::TensorInfo& need_tensor(const gguf::File& f, const std::string& name,
                                    std::initializer_list<int64_t> shape) {
  const gguf::TensorInfo* t = f.find_tensor(name);
  if (!t) throw Error(f.path() + ": tensor " + name + " is missing");
  const int n = static_cast<int>(shape.size());
  bool ok = t->n_dims == n;
  int i = 0;
  for (int64_t d : shape) ok = ok && t->ne[i++] == d;
  if (!ok) {
    std::vector<int64_t> want(shape);
    throw Error(f.path() + ": tensor " + name + " has shape " + shape_str(t->ne, t->n_dims) +
                ", expected " + shape_str(want.data(), n));
  }
  if (!type_info(t->type).supported)
    throw Unsupported(f.path() + ": tensor " + name + " has unsupported type " +
                      std::string(type_info(t->type).name));
  return *t;
}

const float* need_f32(const gguf::File& f, const std::string& name, int64_t n) {
  const auto& t = need_tensor(f, name, {n});
  if (t.type != GgmlType::F32)
    throw Unsupported(f.path() + ": tensor " + name + " must be F32, found " +
                      std::string(type_info(t.type).name));
  return reinterpret_cast<const float*>(t.data);
}

ops::Matrix as_matrix(const gguf::File& f, const gguf::TensorInfo& t, int64_t cols, int64_t rows) {
  const TypeInfo ti = type_info(t.type);
  if (cols % ti.block_elems != 0)
    throw Error(f.path() + ": tensor " + std::string(t.name) + " of type " + std::string(ti.name) +
                " has rows of " + std::to_string(cols) +
                " elements, not a multiple of its block size");
  return ops::Matrix{t.type, t.data, rows, cols, row_bytes(t.type, cols)};
}

ops::Matrix need_matrix(const gguf::File& f, const std::string& name, int64_t cols, int64_t rows) {
  return as_matrix(f, need_tensor(f, name, {cols, rows}), cols, rows);
}

}  // namespace reel::weights
