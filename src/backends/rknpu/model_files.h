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

// Whether the file's name says Qwen3.5 ("Qwen3.5-0.8B_w8a8_rk3588.rkllm", as Rockchip names its
// conversions; also qwen3_5, qwen3-5, qwen35). The .rkllm header is not documented, so the name
// is all Reel can read before the runtime does.
inline bool names_qwen35(const std::string& path) {
  std::string name = path.substr(path.find_last_of('/') + 1);
  std::transform(name.begin(), name.end(), name.begin(),
                 [](unsigned char c) { return char(std::tolower(c)); });
  for (std::string_view tag : {"qwen3.5", "qwen3_5", "qwen3-5", "qwen35"})
    if (name.find(tag) != std::string::npos) return true;
  return false;
}

}  // namespace reel::rknpu
