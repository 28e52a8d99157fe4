// Which files belong to the NPU backend: Rockchip's converted models, told apart by extension
// (their headers are not documented). For the CLI's dispatch and, next, `--backend auto`.
#pragma once

#include <algorithm>
#include <cctype>
#include <cstddef>
#include <string>
#include <string_view>

namespace reel::rknpu {

inline bool has_extension(const std::string& path, std::string_view ext) {
  if (path.size() <= ext.size()) return false;
  return std::equal(
      ext.begin(), ext.end(), path.end() - std::ptrdiff_t(ext.size()),
      [](char a, char b) { return a == std::tolower(static_cast<unsigned char>(b)); });
}

// A vision encoder for librknnrt.so.
inline bool is_rknn_file(const std::string& path) {
  return has_extension(path, ".rknn");
}
// A language model for librkllmrt.so.
inline bool is_rkllm_file(const std::string& path) {
  return has_extension(path, ".rkllm");
}

}  // namespace reel::rknpu
