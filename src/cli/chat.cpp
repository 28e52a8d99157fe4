// One-shot answers and the interactive chat, with images and a video brought in where a turn
// says <image> / <video>. The conversation itself (budgets, media, rollback of failed turns)
// lives in the pipeline; this file reads lines, handles Ctrl-C, prints and picks exit codes.
#include <sys/resource.h>
#include <termios.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <nlohmann/json.hpp>
#include <string>

#include "backends/rknpu/legacy_chat.h"
#include "backends/rknpu/model_files.h"
#include "cli/cli.h"
#include "cli/errors.h"
#include "common/error.h"
#include "common/fs.h"
#include "media/video.h"
#include "ops/cpu_features.h"
#include "pipeline/chat_line.h"
#include "pipeline/conversation.h"

extern "C" {
#include <editline/readline.h>
}

namespace reel::cli {
namespace {

// Ctrl-C. During a turn the first press cancels it (the library polls g_cancel between units
// of work); at the prompt, with nothing typed, or twice in a row, it ends Reel with 130. In
// one-shot mode it ends Reel at once.
std::atomic<bool> g_cancel{false};
volatile sig_atomic_t g_busy = 0;  // a turn is running
volatile sig_atomic_t g_one_shot = 0;
volatile sig_atomic_t g_interrupts = 0;  // Ctrl-C presses since the last line was entered
volatile sig_atomic_t g_typed = 0;       // the terminal line has characters typed into it

constexpr int kExitInterrupted = 130;

termios g_termios{};  // the terminal as Reel found it, restored on a Ctrl-C exit
volatile sig_atomic_t g_have_termios = 0;

// Ends Reel from the signal handler. Exiting here, rather than after a read returns, cannot
// miss a Ctrl-C that lands between two reads.
void exit_interrupted() {
  if (g_have_termios) tcsetattr(STDIN_FILENO, TCSANOW, &g_termios);
  const char nl = '\n';
  (void)!write(STDERR_FILENO, &nl, 1);
  _exit(kExitInterrupted);
}

void on_sigint(int) {
  g_interrupts = g_interrupts + 1;
  if (g_one_shot || g_interrupts >= 2 || (!g_busy && !g_typed)) exit_interrupted();
  if (g_busy) g_cancel.store(true);
  // Otherwise a half-typed line: the read returns early and the line is dropped.
}

void install_sigint(bool one_shot) {
  g_one_shot = one_shot;
  if (isatty(STDIN_FILENO) && tcgetattr(STDIN_FILENO, &g_termios) == 0) g_have_termios = 1;
  struct sigaction sa {};
  sa.sa_handler = on_sigint;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = 0;  // no SA_RESTART: a read at the prompt returns so the loop can decide
  sigaction(SIGINT, &sa, nullptr);
}

// Reads terminal input for libedit, noting whether the current line has anything typed.
int getc_tracking(FILE* f) {
  unsigned char c;
  const ssize_t n = read(fileno(f), &c, 1);
  if (n != 1) return EOF;
  g_typed = !(c == '\n' || c == '\r');
  return c;
}

double peak_rss_mib() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return u.ru_maxrss / 1024.0;  // Linux reports KiB
}

// A progress bar on a terminal, nothing otherwise. Prompt reading only shows when it takes
// several batches.
class Progress {
 public:
  explicit Progress(int n_batch) : on_(isatty(STDERR_FILENO)), n_batch_(n_batch) {}
  void operator()(const char* stage, int done, int total) {
    if (!on_ || total <= 0) return;
    if (std::strcmp(stage, "reading the prompt") == 0 && total <= n_batch_) return;
    const int width = 30, filled = done * width / total;
    std::fprintf(stderr, "\rreel: %s [%.*s%*s] %d/%d", stage, filled,
                 "##############################", width - filled, "", done, total);
    if (done >= total) std::fputs("\r\033[K", stderr);
    std::fflush(stderr);
  }
  void clear() {
    if (on_) std::fputs("\r\033[K", stderr);
  }

 private:
  bool on_;
  int n_batch_;
};

// The answer goes to stdout as it streams; a failed write ends the run (exit 1), since no
// later answer could be delivered either.
class StdoutError : public Error {
 public:
  using Error::Error;
};

bool write_out(std::string_view piece) {
  if (std::fwrite(piece.data(), 1, piece.size(), stdout) != piece.size() ||
      std::fflush(stdout) != 0)
    throw StdoutError(std::string("cannot write the answer to standard output: ") +
                      std::strerror(errno));
  return true;
}

void print_stats(const ChatArgs& a, const Model& model, const TurnStats& t) {
  const GenerationStats& g = t.gen;
  const double per_frame = t.n_frames > 0 ? t.vision_encode_ms / t.n_frames : 0;
  if (a.stats == "json") {
    nlohmann::ordered_json j;
    j["load_ms"] = model.load_ms();
    j["images"] = t.n_images;
    j["frames"] = t.n_frames;
    j["visual_tokens"] = t.visual_tokens();
    j["image_tokens"] = t.image_tokens;
    j["video_tokens"] = t.video_tokens;
    j["media_decode_ms"] = t.media_decode_ms;
    j["vision_encode_ms"] = t.vision_encode_ms;
    j["vision_ms_per_frame"] = per_frame;
    j["prompt_tokens"] = g.n_prompt;
    j["prompt_tokens_reused"] = g.n_reused;
    j["prefill_ms"] = g.prefill_ms;
    j["prefill_tps"] = g.prefill_tps();
    j["generated_tokens"] = g.n_generated;
    j["generated_ids"] = t.generated;
    j["decode_ms"] = g.decode_ms;
    j["decode_tps"] = g.decode_tps();
    j["media_wall_ms"] = t.media_wall_ms;
    j["media_cache_hits"] = t.media_cache_hits;
    j["time_to_first_token_ms"] = t.first_token_ms;
    j["context_full"] = g.hit_context_limit;
    j["kv_type"] = kv_type_name(a.engine.kv_type);
    j["kv_cache_mib"] = double(t.kv_bytes) / double(1 << 20);
    j["peak_rss_mib"] = peak_rss_mib();
    std::fprintf(stderr, "%s\n", j.dump().c_str());
  } else if (a.verbose || a.stats == "text" || a.legacy) {
    if (t.n_images + t.n_frames > 0)
      std::fprintf(stderr,
                   "\n[%d image(s), %d frame(s), %d visual tokens | decode %.0f ms | vision "
                   "encode %.0f ms (%.0f ms/frame)]",
                   t.n_images, t.n_frames, t.visual_tokens(), t.media_decode_ms, t.vision_encode_ms,
                   per_frame);
    std::fprintf(stderr,
                 "\n[prompt %d tokens, %.1f tok/s | generated %d tokens, %.1f tok/s | KV cache "
                 "%.1f MiB | peak RAM %.0f MiB]\n",
                 g.n_prompt, g.prefill_tps(), g.n_generated, g.decode_tps(),
                 double(t.kv_bytes) / double(1 << 20), peak_rss_mib());
  }
}

// The original app's start-up table: memory and both models' cold and warm load times.
void print_load_table(const Model& model, int n_threads, int n_ctx, const ChatArgs& a) {
  const LoadTimes t = model.measure_load_times();
  std::fprintf(stderr,
               "reel: %-8s %-50s cold %7.0f ms  warm %7.0f ms\n"
               "reel: %-8s %-50s cold %7.0f ms  warm %7.0f ms\n"
               "reel: peak RAM %.0f MiB, %d threads, context %d tokens\n",
               "vision", a.engine.mmproj_path.c_str(), t.vision_cold_ms, t.vision_warm_ms, "text",
               a.engine.model_path.c_str(), t.text_cold_ms, t.text_warm_ms, peak_rss_mib(),
               n_threads, n_ctx);
}

enum class LineStatus { kLine, kEnd, kInterrupted };

// Reads one line: with line editing on a terminal, plainly (read(2), so that Ctrl-C is seen)
// otherwise.
LineStatus read_line(std::string& line) {
  line.clear();
  if (isatty(STDIN_FILENO)) {
    g_typed = 0;
    const int before = g_interrupts;
    char* s = readline("> ");
    if (!s) return g_interrupts != before ? LineStatus::kInterrupted : LineStatus::kEnd;
    line = s;
    if (!line.empty()) add_history(s);
    std::free(s);
    return LineStatus::kLine;
  }
  for (char c;;) {
    const ssize_t n = read(STDIN_FILENO, &c, 1);
    if (n == 1 && c == '\n') return LineStatus::kLine;
    if (n == 1) {
      line += c;
      continue;
    }
    if (n < 0 && errno == EINTR) return LineStatus::kInterrupted;
    return line.empty() ? LineStatus::kEnd : LineStatus::kLine;
  }
}

// Every file is checked before the models load, so that a typo costs milliseconds.
void check_media(const ChatArgs& a) {
  for (const std::string& p : a.images) require_regular_file(p, "image");
  if (!a.video.empty()) {
    media::VideoLimits limits;
    limits.apply_rotation = limits.apply_sar = a.video_opts.display_corrections;
    media::probe_video(a.video, limits);
  }
}

ConversationOptions conversation_options(const ChatArgs& a, const Model& model,
                                         MediaCache* media_cache) {
  ConversationOptions o;
  o.media_cache = media_cache;
  o.sequence.n_ctx = context_size(a.engine, model);
  o.sequence.kv_type = a.engine.kv_type;
  o.cancel = &g_cancel;
  o.sampling = a.sampling;
  o.system_prompt = a.system;
  o.think = a.think;
  o.image = a.image;
  o.video = a.video_opts;
  o.images = a.images;
  o.video_path = a.video;
  o.max_tokens = a.n_predict;
  o.image_marker_brings_video = a.legacy;
  return o;
}

class ChatRunner {
 public:
  ChatRunner(ChatArgs& a, const Model& model, Scheduler& scheduler, MediaCache* media_cache)
      : a_(a),
        model_(model),
        convo_(scheduler, conversation_options(a, model, media_cache)),
        progress_(scheduler.executor().n_batch()) {}

  // One turn; true when its answer was produced and written.
  bool turn(const std::string& text, bool one_shot) {
    TurnEvents ev;
    ev.text = write_out;
    ev.note = [&](const std::string& n) {
      progress_.clear();
      std::fprintf(stderr, "reel: %s\n", n.c_str());
    };
    ev.progress = [&](const char* stage, int done, int total) { progress_(stage, done, total); };
    g_cancel.store(false);
    g_busy = 1;
    try {
      const TurnStats t = convo_.ask(text, one_shot, ev);
      g_busy = 0;
      write_out("\n");
      print_stats(a_, model_, t);
      if (t.gen.hit_context_limit)
        std::fprintf(stderr, "reel: the context is full (%d tokens)%s\n", convo_.n_ctx(),
                     one_shot ? "; use a larger -c" : "; use <clear> or a larger -c");
      return true;
    } catch (const Cancelled&) {
      g_busy = 0;
      progress_.clear();
      std::fprintf(
          stderr,
          "\nreel: stopped; this turn is forgotten (its question and any partial answer)\n");
    } catch (const StdoutError&) {
      g_busy = 0;
      throw;
    } catch (const Error& e) {
      g_busy = 0;
      progress_.clear();
      last_exit_ = exit_code_for(e);
      std::fprintf(stderr, "%s\n",
                   failure_for(e, one_shot ? Mode::kOneShot : Mode::kChat).line.c_str());
    }
    return false;
  }

  int last_exit() const { return last_exit_; }

  int chat() {
    if (isatty(STDIN_FILENO)) {
      rl_getc_function = getc_tracking;
      std::fprintf(stderr,
                   "reel: chat with the model. <clear> forgets the dialogue, <exit> or Ctrl-D "
                   "quits.%s\n",
                   convo_.has_media() ? " Write <image> or <video> where the media go." : "");
    }
    ChatTally tally;
    std::string line;
    while (true) {
      const LineStatus st = read_line(line);
      if (st == LineStatus::kEnd) break;
      if (st == LineStatus::kInterrupted) {
        // Ctrl-C at the prompt with a half-typed line: the line is dropped. (At an empty
        // prompt, or a second Ctrl-C in a row, the handler has ended Reel already.)
        std::fputs("\n", stderr);
        continue;
      }
      g_interrupts = 0;
      const ChatLine cmd = classify_chat_line(line);
      if (cmd.kind == ChatLineKind::kBlank) continue;
      if (cmd.kind == ChatLineKind::kExit) break;
      if (cmd.kind == ChatLineKind::kClear) {
        convo_.clear();
        std::fprintf(stderr, "reel: dialogue cleared\n");
        continue;
      }
      if (cmd.kind == ChatLineKind::kMisplacedCommand) {
        std::fprintf(stderr, "reel: %s\n", std::string(kMisplacedCommandNote).c_str());
        continue;
      }
      tally.asked();
      if (turn(line, /*one_shot=*/false)) tally.answered();
    }
    return tally.exit_code();
  }

 private:
  int last_exit_ = exit_code::kFailure;  // of the last failed turn
  ChatArgs& a_;
  const Model& model_;
  Conversation convo_;
  Progress progress_;
};

// The NPU runs the original app's chat (questions on standard input, media brought by <image>)
// on the files the flags name.
int run_npu_chat(const ChatArgs& a) {
  if (a.engine.mmproj_path.empty() || (a.video.empty() && a.images.empty()))
    throw UsageError(
        "the NPU chat is the original app's: give --mmproj FILE.rknn (or a vision GGUF) and "
        "--video or --image");
  if (!a.video.empty() && !a.images.empty())
    throw UsageError("the NPU chat takes either one video or images");
  rknpu::LegacyChatArgs l;
  l.vision_path = a.engine.mmproj_path;
  l.text_path = a.engine.model_path;
  l.video_path = a.video;
  l.n_frames = a.video_opts.n_frames > 0 ? a.video_opts.n_frames : 8;  // the original's default
  l.image_paths = a.images;
  l.prompt = a.prompt;  // -p, or -f's text: one question, answered once
  // RKLLMInput.enable_thinking exists in both ABIs Reel speaks, so --think is never refused
  // here; without it the switch stays off, as before (an .rkllm file's own default cannot be
  // read: its header is not documented).
  l.enable_thinking = a.think == Think::kOn;
  l.stats = a.stats;
  l.verbose = a.verbose;
  l.legacy = a.legacy;
  // Ctrl-C as in the CPU chat: it stops an answer (rkllm_abort), exits at the prompt.
  const bool one_shot = !a.prompt.empty();
  install_sigint(one_shot);
  l.cancel = &g_cancel;
  l.on_busy = [](bool busy) {
    if (busy) g_cancel.store(false);
    g_busy = busy ? 1 : 0;
  };
  l.read_line = [](std::string& line) {
    if (isatty(STDIN_FILENO)) rl_getc_function = getc_tracking;
    while (true) {
      const LineStatus st = read_line(line);
      if (st == LineStatus::kEnd) return false;
      if (st == LineStatus::kLine) {
        g_interrupts = 0;
        return true;
      }
      std::fputs("\n", stderr);  // a half-typed line dropped by Ctrl-C
    }
  };
  if (!rknpu::is_rknn_file(a.engine.mmproj_path)) {
    // A GGUF vision model: the CPU encodes, the NPU answers.
    check_media(a);
    const std::shared_ptr<const Model> vision = Model::load(
        "", a.engine.mmproj_path, nullptr, a.engine.load_mode(), a.engine.vision_matmul);
    l.vision = std::shared_ptr<const VisionEncoder>(vision, &vision->vision());
    l.vision_load_ms = vision->load_ms();
    l.n_threads = a.engine.n_threads;
  }
  const int rc = rknpu::run_legacy_chat(l);
  std::fflush(stdout);
  return rc;
}

}  // namespace

int run_chat(ChatArgs& a) {
  if (runs_on_npu(a.engine.backend, a.engine.model_path, a.engine.mmproj_path))
    return run_npu_chat(a);
  if ((!a.images.empty() || !a.video.empty()) && a.engine.mmproj_path.empty())
    throw Error("--image and --video need the vision model: add --mmproj MMPROJ.gguf");
  const bool one_shot = !a.prompt.empty();
  install_sigint(one_shot);
  check_media(a);
  std::string npu_note;
  const std::shared_ptr<const Model> model = Model::load(
      a.engine.model_path, a.engine.mmproj_path,
      npu_vision_encoder(a.engine.mmproj_path, "vision on the NPU, text on the CPU", npu_note),
      a.engine.load_mode(), a.engine.vision_matmul);
  if (!npu_note.empty()) std::fprintf(stderr, "reel: %s\n", npu_note.c_str());
  Executor executor(*model, executor_options(a.engine, *model));
  executor.ctx().set_cancel_flag(&g_cancel);
  Scheduler scheduler(*model, executor);
  if (a.legacy || a.verbose)
    print_load_table(*model, executor.n_threads(), context_size(a.engine, *model), a);
  if (a.verbose) {
    const TextConfig& c = model->text_config();
    std::fprintf(stderr, "reel: text model: %d layers, hidden %d, %d/%d heads, vocab %d\n",
                 c.n_layer, c.n_embd, c.n_head, c.n_head_kv, c.n_vocab);
    std::fprintf(stderr, "reel: cpu: %s\n", ops::cpu_summary().c_str());
  }
  // Encodings shared between runs through a folder; in memory a conversation keeps its own.
  std::unique_ptr<MediaCache> media_cache;
  if (!a.media_cache_dir.empty())
    media_cache = std::make_unique<MediaCache>(
        size_t{256} << 20, a.media_cache_dir,
        [](const std::string& n) { std::fprintf(stderr, "reel: media cache: %s\n", n.c_str()); },
        uint64_t(a.media_cache_max_mb) << 20);
  ChatRunner runner(a, *model, scheduler, media_cache.get());
  if (one_shot) return runner.turn(a.prompt, /*one_shot=*/true) ? 0 : runner.last_exit();
  return runner.chat();
}

}  // namespace reel::cli
