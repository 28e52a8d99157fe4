// The original RK3588 app's chat, on the NPU: `reel VISION.rknn TEXT.rkllm VIDEO [FRAMES]` or
// `reel VISION.rknn TEXT.rkllm IMG1 IMG2 ...`. Reads questions from standard input, one a line;
// `<image>` in a question brings the frames (or images), `<clear>` forgets the dialogue,
// `<exit>` or end of input quits. Answers stream to standard output, the original app's stats
// (RAM, cold and warm load of both models, vision time per frame, tokens/s) go to standard
// error. With a prompt given, one question with the media, answered once (the CPU path's
// one-shot mode).
#pragma once

#include <atomic>
#include <functional>
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

  // One-shot: this question (the media go where it says <image>, first when it does not say),
  // answered once without history; errors are thrown rather than printed.
  std::string prompt;
  bool enable_thinking = false;  // RKLLMInput.enable_thinking (--think on)
  // What goes to standard error besides the answer, as the CPU path's flags say: the load table
  // and the stats of each answer in the chat, with `legacy` or `verbose`, or stats == "text";
  // one JSON line per answer with stats == "json". A one-shot run prints neither unless asked.
  std::string stats;
  bool verbose = false, legacy = false;

  // Ctrl-C: `cancel` (set by the caller's signal handler) stops the answer being generated;
  // `on_busy(true)` comes before each answer and `on_busy(false)` after it, so that the handler
  // knows whether an answer is running. `read_line` reads the next question (false at the end
  // of input); by default a line of standard input.
  const std::atomic<bool>* cancel = nullptr;
  std::function<void(bool)> on_busy;
  std::function<bool(std::string&)> read_line;
};

// Returns the exit code: 0, or 1 when every question failed. Throws reel::Error for what stops
// the chat before it starts (a runtime or model that does not load, media that do not decode),
// and in one-shot mode for a failed answer.
int run_legacy_chat(const LegacyChatArgs& args);

}  // namespace reel::rknpu
