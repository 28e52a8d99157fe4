// `reel watch SOURCE`: questions about a live video (a stream URL, a camera, stdin or a file)
// answered from a rolling window of already-encoded frames; the work is src/pipeline/live_window.
#pragma once

#include <CLI/CLI.hpp>
#include <string>

#include "cli/cli.h"
#include "media/stream.h"

namespace reel::cli {

struct WatchArgs {
  EngineOptions engine;
  SamplingParams sampling;
  Think think = Think::kDefault;  // --think on|off (Qwen3.5)
  std::string source;
  std::string system;
  int n_predict = -1;
  double fps = 2;
  double window_s = 60;
  double last_s = 0;  // 0: the whole window
  std::string ask, until, match, exec;
  double every_s = 10;
  double cooldown_s = 30;
  int max_answers = 0;  // periodic answers before exiting (0: no limit)
  media::StreamOptions stream;
  bool no_reconnect = false;
};

// Adds the `watch` subcommand to app, filling args.
CLI::App* add_watch_command(CLI::App& app, WatchArgs& args);
// Runs until the source ends (a file or stdin), stdin's questions end, a trigger without
// --exec fires, or SIGINT / SIGTERM; the process exit code.
int run_watch(WatchArgs& args);

// "10s", "2m", "1h", "250ms" or plain seconds ("1.5"), more than 0 and at most a day.
// Throws CLI::ValidationError naming `flag`.
double parse_duration(const std::string& flag, const std::string& text);

}  // namespace reel::cli
