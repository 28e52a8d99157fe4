// `reel watch`: flags, the question loops (lines on stdin, or --ask / --until every N seconds),
// JSON lines on stdout, triggers, signals and exit codes. Reading, encoding and the window
// live in the pipeline (live_window.h); this file only asks and prints.
#include "cli/watch.h"

#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <functional>
#include <iostream>
#include <nlohmann/json.hpp>
#include <optional>
#include <regex>
#include <thread>

#include "backends/rknpu/model_files.h"
#include "cli/errors.h"
#include "common/clock.h"
#include "common/error.h"
#include "pipeline/live_window.h"

namespace reel::cli {
namespace {

std::atomic<bool> g_stop{false};  // SIGINT / SIGTERM: stop the answer in progress and end

void on_signal(int) {
  g_stop.store(true);
}

void install_signals() {
  struct sigaction sa {};
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = 0;  // no SA_RESTART: a read of stdin returns so the loop can end
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
  std::signal(SIGPIPE, SIG_IGN);  // a closed stdout is a write error, reported as such
}

void note(const std::string& line) {
  std::fprintf(stderr, "reel: %s\n", line.c_str());
}

std::string trim(const std::string& s) {
  const size_t b = s.find_first_not_of(" \t\r\n");
  if (b == std::string::npos) return "";
  return s.substr(b, s.find_last_not_of(" \t\r\n") - b + 1);
}

void write_stdout(const std::string& s) {
  if (std::fwrite(s.data(), 1, s.size(), stdout) != s.size() || std::fflush(stdout) != 0)
    throw IoError(std::string("cannot write to standard output: ") + std::strerror(errno));
}

// One answered question about the window.
struct Answer {
  std::string question, text;
  WallTime start, end;
  int frames = 0;
  double ttft_ms = 0;
  GenerationStats gen;
};

nlohmann::ordered_json answer_json(const Answer& a) {
  nlohmann::ordered_json j;
  j["window_start"] = iso8601_utc(a.start);
  j["window_end"] = iso8601_utc(a.end);
  j["frames"] = a.frames;
  j["question"] = a.question;
  j["answer"] = a.text;
  j["time_to_first_token_ms"] = std::round(a.ttft_ms * 10) / 10;
  j["prompt_tokens"] = a.gen.n_prompt + a.gen.n_reused;
  j["reused_tokens"] = a.gen.n_reused;
  return j;
}

// Visual tokens each group may take so that a full window, its timestamps, the question and
// the answer's reserve fit the context.
int64_t group_token_budget(const WatchArgs& a, const Model& model, int n_ctx) {
  const int reserve = a.n_predict > 0 ? a.n_predict : std::min(512, n_ctx / 4);
  const int64_t system = a.system.empty() ? 0 : int64_t(model.tokenizer().encode(a.system).size());
  const int64_t text = 64 + system;  // the template, the question and the window's markers
  const VisionGeometry& v = model.vision().geometry();
  const int64_t budget =
      live_group_token_budget(a.window_s, a.fps, n_ctx, reserve, text, v.temporal_patch);
  if (v.fixed_size()) {
    // Frames of one size cannot shrink to fit: say so once; questions then leave out the oldest.
    const int64_t tokens = int64_t(v.fixed_width / v.factor()) * (v.fixed_height / v.factor());
    if (tokens > budget)
      note("the encoder's " + std::to_string(v.fixed_width) + "x" + std::to_string(v.fixed_height) +
           " frames take " + std::to_string(tokens) +
           " tokens each, more than a full window leaves each frame (" + std::to_string(budget) +
           "): answers will be about the newest frames that fit the context");
  }
  return budget;
}

// The text model runs on the CPU; the vision encoder may be an .rknn file on the NPU (each frame
// encoded alone), with the line that says so (printed once the pair has been checked), or null
// for a vision GGUF (the model reads that itself).
std::unique_ptr<VisionEncoder> watch_vision_encoder(const EngineOptions& e, std::string& line) {
  // The RKLLM runtime answers whole prompts of its own: it is no TextDecoder a window of
  // encoded frames could be prefilled into.
  if (runs_on_npu(e.backend, e.model_path, e.mmproj_path))
    throw UsageError(
        "reel watch runs the text model on the CPU: give a GGUF text model with -m (an .rkllm "
        "model runs only in the chat; an .rknn vision encoder works with watch)");
  return npu_vision_encoder(e.mmproj_path, "vision on the NPU, each frame alone; text on the CPU",
                            line);
}

class Watcher {
 public:
  Watcher(const WatchArgs& a, Scheduler& scheduler, LiveVideo& live, int n_ctx)
      : a_(a), live_(live), session_(scheduler, session_options(a, n_ctx)) {}

  // The question about the last `last_s` seconds of the window (0: all of it); nullopt while
  // the window is still empty.
  // With `stream`, each piece of the answer goes there too as it is generated.
  std::optional<Answer> ask(const std::string& question, double last_s,
                            const std::function<void(std::string_view)>& stream = nullptr) {
    const LiveGroups groups = live_.window().snapshot(last_s);
    if (groups.empty()) return std::nullopt;
    Answer a;
    a.question = question;
    const auto t0 = Clock::now();
    bool first = true;
    size_t used = 0;
    a.gen = ask_about_window(
        session_, groups, question, a_.n_predict,
        [&](std::string_view piece) {
          if (first) a.ttft_ms = ms_since(t0);
          first = false;
          a.text += piece;
          if (stream) stream(piece);
          return !g_stop.load();
        },
        &used);
    if (first) a.ttft_ms = ms_since(t0);
    const LiveGroups in(groups.end() - long(used), groups.end());
    a.start = in.front()->wall0;
    a.end = in.back()->wall1;
    a.frames = live_frames(in);
    if (used < groups.size())
      note("the window's oldest " + std::to_string(groups.size() - used) +
           " groups were left out to fit the context");
    return a;
  }

 private:
  static SessionOptions session_options(const WatchArgs& a, int n_ctx) {
    SessionOptions o;
    o.sampling = a.sampling;
    o.system_prompt = a.system;
    o.think = a.think;
    o.sequence.n_ctx = n_ctx;
    o.sequence.kv_type = a.engine.kv_type;
    o.cancel = &g_stop;
    return o;
  }

  const WatchArgs& a_;
  LiveVideo& live_;
  ChatSession session_;
};

// --until's action: --exec runs a shell command (not waited for; its exit is collected later)
// with the answer in its environment.
void run_exec(const std::string& cmd, const Answer& a) {
  const pid_t pid = fork();
  if (pid < 0) {
    note(std::string("cannot run --exec: ") + std::strerror(errno));
    return;
  }
  if (pid == 0) {
    setenv("REEL_QUESTION", a.question.c_str(), 1);
    setenv("REEL_ANSWER", a.text.c_str(), 1);
    setenv("REEL_WINDOW_END", iso8601_utc(a.end).c_str(), 1);
    execl("/bin/sh", "sh", "-c", cmd.c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
}

void reap_children() {
  while (waitpid(-1, nullptr, WNOHANG) > 0) {
  }
}

class PeriodicLoop {
 public:
  PeriodicLoop(const WatchArgs& a, Watcher& w, LiveVideo& live)
      : a_(a), w_(w), live_(live), re_(a.match, std::regex::ECMAScript | std::regex::icase) {}

  int run() {
    auto next_tick = Clock::now() + std::chrono::milliseconds(int64_t(a_.every_s * 1000));
    for (;;) {
      if (g_stop) return exit_code::kInterrupted;
      reap_children();
      if (live_.finished()) {
        if (auto e = live_.error()) std::rethrow_exception(e);  // the summary, then it
        // The source has ended (a file, stdin): the final window, unless already answered.
        if (live_.window().groups_added() > answered_at_)
          if (auto rc = tick()) return *rc;
        return 0;
      }
      if (Clock::now() >= next_tick) {
        if (auto rc = tick()) return *rc;
        while (next_tick <= Clock::now())
          next_tick += std::chrono::milliseconds(int64_t(a_.every_s * 1000));
      }
      const auto wait =
          std::min<Clock::duration>(next_tick - Clock::now(), std::chrono::milliseconds(100));
      live_.wait_finished(std::chrono::duration_cast<std::chrono::milliseconds>(wait));
    }
  }

 private:
  // The questions of one period; an exit code when watching should end.
  std::optional<int> tick() {
    answered_at_ = live_.window().groups_added();
    if (!a_.ask.empty()) {
      std::optional<Answer> ans = w_.ask(a_.ask, a_.last_s);
      if (!ans) return waiting();
      if (g_stop) return exit_code::kInterrupted;
      write_stdout(answer_json(*ans).dump() + "\n");
      if (auto rc = count()) return rc;
    }
    if (!a_.until.empty()) {
      std::optional<Answer> ans = w_.ask(a_.until, a_.last_s);
      if (!ans) return waiting();
      if (g_stop) return exit_code::kInterrupted;
      const bool matched = std::regex_search(ans->text, re_);
      const auto now = Clock::now();
      const bool fire =
          matched &&
          (!fired_ || std::chrono::duration<double>(now - last_fire_).count() >= a_.cooldown_s);
      nlohmann::ordered_json j = answer_json(*ans);
      j["matched"] = matched;
      j["triggered"] = fire;
      write_stdout(j.dump() + "\n");
      if (fire) {
        fired_ = true;
        last_fire_ = now;
        if (a_.exec.empty()) {
          note("the answer matched --match: stopping");
          return 0;
        }
        run_exec(a_.exec, *ans);
      }
      if (auto rc = count()) return rc;
    }
    return std::nullopt;
  }

  std::optional<int> waiting() {
    if (!said_waiting_) note("no frames in the window yet; the question waits for the next period");
    said_waiting_ = true;
    return std::nullopt;
  }

  std::optional<int> count() {
    if (a_.max_answers > 0 && ++answers_ >= a_.max_answers) return 0;
    return std::nullopt;
  }

  const WatchArgs& a_;
  Watcher& w_;
  LiveVideo& live_;
  std::regex re_;
  uint64_t answered_at_ = 0;
  bool fired_ = false, said_waiting_ = false;
  Clock::time_point last_fire_;
  int answers_ = 0;
};

// "<last 10s> question": the look-back for this question only.
void split_last_prefix(std::string& line, double& last_s) {
  static const std::regex prefix(R"(^<last\s+([^>]+)>\s*)", std::regex::icase);
  std::smatch m;
  if (!std::regex_search(line, m, prefix)) return;
  last_s = parse_duration("<last>", trim(m[1].str()));
  line = m.suffix().str();
}

int interactive_loop(const WatchArgs& a, Watcher& w, LiveVideo& live) {
  note("watching " + a.source + "; type a question about what just happened (Ctrl-D ends)");
  int failures = 0;
  std::string line;
  while (!g_stop && std::getline(std::cin, line)) {
    line = trim(line);
    if (line.empty()) continue;
    if (auto e = live.error()) std::rethrow_exception(e);
    double last_s = a.last_s;
    try {
      split_last_prefix(line, last_s);
    } catch (const CLI::ValidationError& e) {
      note(std::string(e.what()));
      continue;
    }
    try {
      // The answer streams to stdout; what it was about follows on stderr.
      std::optional<Answer> ans =
          w.ask(line, last_s, [](std::string_view p) { write_stdout(std::string(p)); });
      if (!ans) {
        note("no frames yet; ask again in a moment");
        continue;
      }
      write_stdout("\n");
      note("about " + iso8601_utc(ans->start) + " to " + iso8601_utc(ans->end) + " (" +
           std::to_string(ans->frames) + " frames)");
    } catch (const IoError&) {
      throw;
    } catch (const Error& e) {
      if (g_stop) break;
      ++failures;
      std::fprintf(stderr, "%s\n", failure_for(e, Mode::kOneShot).line.c_str());
    }
  }
  if (g_stop) return exit_code::kInterrupted;
  return failures > 0 ? exit_code::kFailure : 0;
}

void print_summary(const LiveVideo& live) {
  const LiveStats s = live.stats();
  const double rate = s.timeline_s > 0 ? s.frames_encoded / s.timeline_s : 0;
  const size_t groups = live.window().size(), bytes = live.window().bytes();
  char buf[360];
  std::snprintf(buf, sizeof buf,
                "%llu frames read, %llu sampled, %llu encoded (%llu dropped; %.2f per second of "
                "video), %.1f ms per group to encode, %llu reconnects; the window holds %zu "
                "groups (%.1f MiB; %.0f KiB each)",
                (unsigned long long)s.frames_read, (unsigned long long)s.frames_sampled,
                (unsigned long long)s.frames_encoded, (unsigned long long)s.frames_dropped, rate,
                s.groups_encoded ? s.encode_ms / double(s.groups_encoded) : 0.0,
                (unsigned long long)s.reconnects, groups, double(bytes) / (1 << 20),
                groups ? double(bytes) / 1024 / double(groups) : 0.0);
  note(buf);
}

}  // namespace

double parse_duration(const std::string& flag, const std::string& text) {
  double scale = 1;
  std::string num = text;
  auto ends = [&](const char* suffix) {
    const size_t n = std::strlen(suffix);
    return num.size() > n && num.compare(num.size() - n, n, suffix) == 0;
  };
  if (ends("ms")) {
    scale = 0.001, num.resize(num.size() - 2);
  } else if (ends("s")) {
    num.pop_back();
  } else if (ends("m")) {
    scale = 60, num.pop_back();
  } else if (ends("h")) {
    scale = 3600, num.pop_back();
  }
  double v = 0;
  size_t used = 0;
  try {
    v = std::stod(num, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (num.empty() || used != num.size() || !(v * scale > 0) || v * scale > 86400)
    throw CLI::ValidationError(flag, "'" + text +
                                         "' is not a duration of up to a day (10s, 2m, 1h, "
                                         "250ms or plain seconds)");
  return v * scale;
}

CLI::App* add_watch_command(CLI::App& app, WatchArgs& a) {
  auto* w = app.add_subcommand("watch", "answer questions about a live video as it happens");
  w->add_option("source", a.source,
                "udp://, tcp://, http://, rtsp://, srt:// URL, /dev/videoN, - (MPEG-TS on "
                "stdin) or a file")
      ->required();
  add_engine_flags(*w, a.engine);
  w->add_option("--mmproj", a.engine.mmproj_path,
                "Qwen3-VL vision model GGUF (mmproj), or an .rknn encoder for the NPU")
      ->required();
  add_sampling_flags(*w, a.sampling);
  add_think_flag(*w, a.think);
  w->add_option("-n,--n-predict", a.n_predict, "max tokens per answer (-1: until done)")
      ->check(CLI::Range(-1, 1 << 24));
  w->add_option("--system", a.system, "system prompt");
  w->add_option("--fps", a.fps, "frames per second to sample (default 2)")
      ->check(CLI::Range(0.01, 60.0));
  auto duration = [&](const char* flag, double& out, const char* help) {
    return w->add_option_function<std::string>(
        flag, [&out, flag](const std::string& v) { out = parse_duration(flag, v); }, help);
  };
  duration("--window", a.window_s, "seconds of video kept (default 60s)");
  duration("--last", a.last_s, "answer about the last SECONDS of the window only");
  w->add_option("--ask", a.ask, "ask this every --every, printing one JSON line per answer");
  duration("--every", a.every_s, "period of --ask and --until (default 10s)");
  auto* until = w->add_option("--until", a.until, "ask this every --every until --match matches");
  auto* match = w->add_option("--match", a.match, "regular expression (ECMAScript, any case)");
  auto* exec = w->add_option("--exec", a.exec, "run this shell command on a match, not stop");
  duration("--cooldown", a.cooldown_s, "least time between two --exec runs (default 30s)");
  until->needs(match);
  match->needs(until);
  exec->needs(until);
  w->add_option("--max-answers", a.max_answers, "stop after this many periodic answers")
      ->check(CLI::Range(1, 1 << 30));
  w->add_flag("--realtime", a.stream.realtime, "play a file at its own speed");
  w->add_option("--rtsp-transport", a.stream.rtsp_transport, "tcp or udp")
      ->check(CLI::IsMember({"tcp", "udp"}));
  w->add_option("--input-format", a.stream.input_format,
                "FFmpeg demuxer of the source (default: probed; mpegts for -)");
  duration("--open-timeout", a.stream.open_timeout_s,
           "give up when the source does not answer for this long (default 10s)");
  duration("--read-timeout", a.stream.read_timeout_s,
           "a stream silent this long breaks off (default 10s)");
  w->add_flag("--no-reconnect", a.no_reconnect, "end when a network stream ends or breaks");
  return w;
}

int run_watch(WatchArgs& a) {
  const bool periodic = !a.ask.empty() || !a.until.empty();
  if (!periodic && a.source == "-")
    throw UsageError(
        "with the video on stdin, questions cannot come from it: use --ask or --until");
  if (a.last_s > a.window_s) throw UsageError("--last cannot be longer than --window");
  if (!a.match.empty()) {
    try {
      std::regex check(a.match, std::regex::ECMAScript);
    } catch (const std::regex_error& e) {
      throw UsageError("--match: not a regular expression (" + std::string(e.what()) + ")");
    }
  }
  std::string npu_line;
  std::unique_ptr<VisionEncoder> npu_vision = watch_vision_encoder(a.engine, npu_line);
  install_signals();
  const std::shared_ptr<const Model> model =
      Model::load(a.engine.model_path, a.engine.mmproj_path, std::move(npu_vision),
                  a.engine.load_mode(), a.engine.vision_matmul);
  if (!npu_line.empty()) note(npu_line);
  Executor executor(*model, executor_options(a.engine, *model));
  Scheduler scheduler(*model, executor);
  const int n_ctx = context_size(a.engine, *model);

  LiveOptions lo;
  lo.fps = a.fps;
  lo.window_s = a.window_s;
  lo.group_tokens = group_token_budget(a, *model, n_ctx);
  lo.n_threads = executor.n_threads();
  lo.stream = a.stream;
  lo.reconnect = !a.no_reconnect;
  lo.note = note;
  LiveVideo live(model->vision(), lo);
  live.start(a.source);
  Watcher watcher(a, scheduler, live, n_ctx);
  int rc = 0;
  try {
    rc = periodic ? PeriodicLoop(a, watcher, live).run() : interactive_loop(a, watcher, live);
  } catch (...) {
    live.stop();
    print_summary(live);
    throw;
  }
  live.stop();
  print_summary(live);
  return rc;
}

}  // namespace reel::cli
