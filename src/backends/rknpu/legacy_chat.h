// The original RK3588 app's chat, on the NPU: `reel VISION.rknn TEXT.rkllm VIDEO [FRAMES]` or
// `reel VISION.rknn TEXT.rkllm IMG1 IMG2 ...`. Reads questions from standard input, one a line;
// `<image>` in a question brings the frames (or images), `<clear>` forgets the dialogue,
// `<exit>` or end of input quits. Answers stream to standard output, the original app's stats
// (RAM, cold and warm load of both models, vision time per frame, tokens/s) go to standard
// error.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "model/vision_encoder.h"

namespace reel::rknpu {

struct LegacyChatArgs {
  std::string vision_path;  // .rknn, or the file `vision` was built from
  std::string text_path;    // .rkllm
  std::string video_path;   // or image_paths
  int n_frames = 8;
  std::vector<std::string> image_paths;
  // A vision encoder the caller built from vision_path (the CPU's, from a GGUF file) instead of
  // the .rknn one; its rows go to the runtime in the .rknn layout ([token][main, DeepStack...]).
  // Every frame or image is sized as the first one (the runtime takes one size per turn).
  std::shared_ptr<const VisionEncoder> vision;
  double vision_load_ms = 0;  // what loading `vision` took, for the load table
  int n_threads = 0;          // for `vision` (0: all cores)
};

// Returns the exit code: 0, or 1 when every question failed. Throws reel::Error for what stops
// the chat before it starts (a runtime or model that does not load, media that do not decode).
int run_legacy_chat(const LegacyChatArgs& args);

}  // namespace reel::rknpu
