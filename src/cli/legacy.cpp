// The original RK3588 app's command lines, kept working:
//   reel VISION_MODEL TEXT_MODEL VIDEO [FRAMES]
//   reel VISION_MODEL TEXT_MODEL IMG1 IMG2 ...
#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstdlib>

#include "backends/rknpu/model_files.h"
#include "cli/cli.h"
#include "cli/errors.h"
#include "common/error.h"

namespace reel::cli {
namespace {

bool ends_with_any(const std::string& s, std::initializer_list<const char*> exts) {
  std::string low = s;
  std::transform(low.begin(), low.end(), low.begin(),
                 [](unsigned char c) { return std::tolower(c); });
  for (const char* e : exts) {
    const std::string ext = e;
    if (low.size() > ext.size() && low.compare(low.size() - ext.size(), ext.size(), ext) == 0)
      return true;
  }
  return false;
}

bool is_video_path(const std::string& s) {
  return ends_with_any(s, {".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".ts",
                           ".flv", ".wmv", ".3gp"});
}

bool is_subcommand(const std::string& s) {
  for (const char* c : {"tokenize", "logits", "bench", "encode", "frames"})
    if (s == c) return true;
  return false;
}

// FRAMES: a positive count of frames, at most 100000.
int parse_frames(const std::string& s) {
  char* end = nullptr;
  errno = 0;
  const long v = std::strtol(s.c_str(), &end, 10);
  if (s.empty() || *end != '\0' || errno == ERANGE || v < 1 || v > 100000)
    throw UsageError("FRAMES must be a whole number from 1 to 100000, not '" + s + "'");
  return static_cast<int>(v);
}

}  // namespace

bool rewrite_legacy(const std::vector<std::string>& argv, std::vector<std::string>& out) {
  // Positional arguments up to the first flag.
  size_t n_pos = 1;
  while (n_pos < argv.size() && !argv[n_pos].empty() && argv[n_pos][0] != '-') ++n_pos;
  const size_t count = n_pos - 1;
  if (count < 3 || is_subcommand(argv[1])) return false;
  // .rknn (vision) and .rkllm (text): Rockchip's NPU runtimes, as the original app ran them
  // (run_chat sends them to the NPU backend).
  const bool npu = rknpu::is_rknn_file(argv[1]) || rknpu::is_rkllm_file(argv[1]) ||
                   rknpu::is_rknn_file(argv[2]) || rknpu::is_rkllm_file(argv[2]);
  if (npu && !(rknpu::is_rknn_file(argv[1]) && rknpu::is_rkllm_file(argv[2])))
    throw UsageError("on the NPU give the vision model as .rknn then the text model as .rkllm");
  out = {argv[0], "--legacy", "--mmproj", argv[1], "-m", argv[2]};
  if (is_video_path(argv[3])) {
    // A negative FRAMES looks like a flag; it is still the FRAMES argument, and wrong.
    if (count == 3 && n_pos < argv.size() && argv[n_pos].size() > 1 &&
        std::isdigit(static_cast<unsigned char>(argv[n_pos][1])))
      parse_frames(argv[n_pos]);
    if (count > 4) throw UsageError("usage: reel VISION_MODEL TEXT_MODEL VIDEO [FRAMES]");
    out.insert(out.end(), {"--video", argv[3]});
    // The original app's default: 8 evenly spaced frames.
    out.insert(out.end(), {"--frames", std::to_string(count == 4 ? parse_frames(argv[4]) : 8)});
  } else {
    for (size_t i = 3; i < n_pos; ++i) {
      if (is_video_path(argv[i]))
        throw UsageError(
            "give either one video or images: usage: reel VISION_MODEL TEXT_MODEL "
            "VIDEO [FRAMES] | IMG1 IMG2 ...");
      out.insert(out.end(), {"--image", argv[i]});
    }
  }
  out.insert(out.end(), argv.begin() + n_pos, argv.end());
  return true;
}

}  // namespace reel::cli
