// One-shot answers and the interactive chat, with images and a video brought in where a turn
// says <image> / <video>.
#include <sys/resource.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <functional>
#include <utility>
#include <iostream>
#include <optional>

#include "cli/cli.h"
#include "common/error.h"

extern "C" {
#include <editline/readline.h>
}

namespace reel::cli {
namespace {

constexpr const char* kImageMarker = "<|vision_start|><|image_pad|><|vision_end|>";
constexpr const char* kVideoMarker = "<|vision_start|><|video_pad|><|vision_end|>";

double peak_rss_mib() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return u.ru_maxrss / 1024.0;  // Linux reports KiB
}

// Vision work done for one turn (zero when the media were already in the conversation).
struct MediaStats {
  int n_images = 0, n_frames = 0, n_tokens = 0;
  double decode_ms = 0, encode_ms = 0;
  double media_wall_ms = 0;      // decoding and encoding, overlapped, as the user waits
  double first_token_ms = 0;     // from the turn's start to the first streamed text
};

// A progress bar on a terminal, nothing otherwise.
void show_progress(const char* what, int done, int total) {
  if (!isatty(STDERR_FILENO) || total <= 0) return;
  const int width = 30, filled = done * width / total;
  std::fprintf(stderr, "\r%s [%.*s%*s] %d/%d", what, filled, "##############################",
               width - filled, "", done, total);
  if (done == total) std::fputs("\r\033[K", stderr);
  std::fflush(stderr);
}

// The command line's images and video, encoded once, brought into the dialogue where a turn
// says <image> or <video> (for a one-shot -p without markers: before the text).
class MediaSet {
 public:
  MediaSet(Engine& engine, const ChatArgs& a) : engine_(engine), a_(a) {}
  bool empty() const { return a_.images.empty() && a_.video.empty(); }

  std::string place(const std::string& text, ChatSession& session, bool one_shot,
                    MediaStats& stats) {
    std::string out = text;
    const bool has_image = out.find("<image>") != std::string::npos;
    const bool has_video = out.find("<video>") != std::string::npos;
    // The original app had one marker for all media: <image> brings in the video too.
    const bool want_video = has_video || (a_.legacy && has_image) || (one_shot && !has_image);
    const bool want_images = has_image || (one_shot && !has_video);
    std::string markers;
    if (want_images && !images_in_ && !a_.images.empty()) {
      encode_images(stats);
      for (size_t i = 0; i < images_.size(); ++i) markers += kImageMarker;
      turn_images_ = images_;
      images_in_ = true;
    }
    if (want_video && !video_in_ && !a_.video.empty()) {
      encode_video(session, text, stats);
      if (video_->plan.as_images)
        for (int g = 0; g < video_->plan.n_groups; ++g) markers += kImageMarker;
      else
        markers += kVideoMarker;
      video_in_ = true;
    }
    return splice(out, markers);
  }
  std::span<const EncodedImage> images() const { return turn_images_; }
  std::span<const EncodedVideo> videos() const {
    return turn_video_ ? std::span<const EncodedVideo>(&*turn_video_, 1)
                       : std::span<const EncodedVideo>();
  }
  void turn_done() {
    turn_images_.clear();
    turn_video_.reset();
  }
  void forget() { images_in_ = video_in_ = false; }

 private:
  // Puts the markers where the first <image>/<video> was (removing every such tag), or before
  // the text.
  static std::string splice(std::string text, const std::string& markers) {
    size_t first = std::string::npos;
    for (const char* tag : {"<image>", "<video>"})
      for (size_t at; (at = text.find(tag)) != std::string::npos;) {
        first = std::min(first, at);
        text.erase(at, 7);
      }
    if (first == std::string::npos) first = 0;
    return text.insert(first, markers);
  }

  void encode_images(MediaStats& stats) {
    if (images_.empty())
      for (const std::string& p : a_.images) images_.push_back(engine_.encode_image(p));
    for (EncodedImage& e : images_) {
      ++stats.n_images;
      stats.n_tokens += e.n_tokens();
      stats.decode_ms += e.decode_ms;
      stats.encode_ms += e.encode_ms;
      e.decode_ms = e.encode_ms = 0;  // reused from now on
    }
  }

  void encode_video(ChatSession& session, const std::string& text, MediaStats& stats) {
    if (!video_) {
      // What the context leaves: room for the turn's text and for an answer.
      const int answer_room = a_.n_predict > 0 ? a_.n_predict : 512;
      int64_t budget = session.n_ctx() - session.n_past() - answer_room -
                       static_cast<int64_t>(text.size() / 2 + 64) -
                       int64_t(images_in_ ? 0 : total_image_tokens());
      if (a_.video_opts.max_tokens > 0) budget = std::min(budget, a_.video_opts.max_tokens);
      if (budget < 1)
        throw Error(a_.video + ": no room left in the context for the video; raise -c or <clear>");
      video_ = engine_.encode_video(a_.video, a_.video_opts, budget, [](int done, int total) {
        show_progress("reel: encoding video", done, total);
      });
      for (const std::string& n : video_->plan.notes)
        std::fprintf(stderr, "reel: %s: %s\n", a_.video.c_str(), n.c_str());
      if (a_.verbose)
        std::fprintf(stderr, "reel: %s: %zu frames at %dx%d, %d temporal groups, %d tokens\n",
                     a_.video.c_str(), video_->plan.indices.size(), video_->plan.resized_w,
                     video_->plan.resized_h, video_->plan.n_groups, video_->plan.n_tokens());
      stats.decode_ms += video_->decode_ms;
      stats.encode_ms += video_->encode_ms;
    }
    stats.n_frames += static_cast<int>(video_->plan.indices.size());
    stats.n_tokens += video_->plan.n_tokens();
    if (video_->plan.as_images) {
      // Every frame is an image of its own, after the command line's images.
      const int tpg = video_->plan.tokens_per_group(), D = video_->out_dim;
      for (int g = 0; g < video_->plan.n_groups; ++g) {
        EncodedImage e;
        e.grid_h = video_->plan.grid_h;
        e.grid_w = video_->plan.grid_w;
        e.main.assign(video_->main.begin() + size_t(g) * tpg * D,
                      video_->main.begin() + size_t(g + 1) * tpg * D);
        for (int l = 0; l < video_->n_deepstack; ++l) {
          const auto* src = video_->deepstack.data() + (size_t(l) * video_->plan.n_tokens() + size_t(g) * tpg) * D;
          e.deepstack.insert(e.deepstack.end(), src, src + size_t(tpg) * D);
        }
        turn_images_.push_back(std::move(e));
      }
    } else {
      turn_video_ = video_;
    }
    video_->decode_ms = video_->encode_ms = 0;
  }

  int total_image_tokens() const {
    int n = 0;
    for (const EncodedImage& e : images_) n += e.n_tokens();
    return n;
  }

  Engine& engine_;
  const ChatArgs& a_;
  std::vector<EncodedImage> images_, turn_images_;
  std::optional<EncodedVideo> video_, turn_video_;
  bool images_in_ = false, video_in_ = false;
};

void print_stats(const ChatArgs& a, const Engine& engine, const GenerationStats& g,
                 const MediaStats& m) {
  const double per_frame = m.n_frames > 0 ? m.encode_ms / m.n_frames : 0;
  if (a.stats == "json") {
    std::fprintf(stderr,
                 "{\"load_ms\": %.1f, \"images\": %d, \"frames\": %d, \"visual_tokens\": %d, "
                 "\"image_tokens\": %d, \"media_decode_ms\": %.1f, \"vision_encode_ms\": %.1f, "
                 "\"vision_ms_per_frame\": %.1f, \"prompt_tokens\": %d, \"prefill_ms\": %.1f, "
                 "\"prefill_tps\": %.2f, \"generated_tokens\": %d, \"decode_ms\": %.1f, "
                 "\"decode_tps\": %.2f, \"media_wall_ms\": %.1f, \"time_to_first_token_ms\": "
                 "%.1f, \"peak_rss_mib\": %.0f}\n",
                 engine.load_ms(), m.n_images, m.n_frames, m.n_tokens, m.n_tokens, m.decode_ms,
                 m.encode_ms, per_frame, g.n_prompt, g.prefill_ms, g.prefill_tps(), g.n_generated,
                 g.decode_ms, g.decode_tps(), m.media_wall_ms, m.first_token_ms, peak_rss_mib());
  } else if (a.verbose || a.stats == "text" || a.legacy) {
    if (m.n_images + m.n_frames > 0)
      std::fprintf(stderr,
                   "\n[%d image(s), %d frame(s), %d visual tokens | decode %.0f ms | vision "
                   "encode %.0f ms (%.0f ms/frame)]",
                   m.n_images, m.n_frames, m.n_tokens, m.decode_ms, m.encode_ms, per_frame);
    std::fprintf(stderr,
                 "\n[prompt %d tokens, %.1f tok/s | generated %d tokens, %.1f tok/s | peak RAM "
                 "%.0f MiB]\n",
                 g.n_prompt, g.prefill_tps(), g.n_generated, g.decode_tps(), peak_rss_mib());
  }
  if (g.hit_context_limit)
    std::fprintf(stderr, "\nreel: the context is full (%d tokens); use <clear> or raise -c\n",
                 engine.options().n_ctx);
}

// The original app's start-up table: memory and both models' cold and warm load times.
void print_load_table(Engine& engine, const ChatArgs& a) {
  const LoadTimes t = engine.measure_load_times();
  std::fprintf(stderr,
               "reel: %-8s %-50s cold %7.0f ms  warm %7.0f ms\n"
               "reel: %-8s %-50s cold %7.0f ms  warm %7.0f ms\n"
               "reel: peak RAM %.0f MiB, %d threads, context %d tokens\n",
               "vision", a.engine.mmproj_path.c_str(), t.vision_cold_ms, t.vision_warm_ms, "text",
               a.engine.model_path.c_str(), t.text_cold_ms, t.text_warm_ms, peak_rss_mib(),
               engine.options().n_threads, engine.options().n_ctx);
}

GenerationStats answer(ChatSession& session, const std::string& text, const MediaSet& media,
                       int n_predict, std::function<void()> on_first) {
  GenerationStats g = session.ask(text, media.images(), media.videos(), n_predict,
                                  [&](std::string_view piece) {
                                    if (on_first) std::exchange(on_first, nullptr)();
                                    std::fwrite(piece.data(), 1, piece.size(), stdout);
                                    std::fflush(stdout);
                                    return true;
                                  });
  std::fputc('\n', stdout);
  std::fflush(stdout);
  return g;
}

// Reads one line: with line editing on a terminal, plainly otherwise. False at end of input.
bool read_line(std::string& line) {
  if (isatty(STDIN_FILENO)) {
    char* s = readline("> ");
    if (!s) return false;
    line = s;
    if (!line.empty()) add_history(s);
    std::free(s);
    return true;
  }
  return static_cast<bool>(std::getline(std::cin, line));
}

void one_turn(ChatArgs& a, Engine& engine, ChatSession& session, MediaSet& media,
              const std::string& text, bool one_shot) {
  MediaStats m;
  const auto t0 = std::chrono::steady_clock::now();
  auto ms_since_start = [&] {
    return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  };
  const std::string content = media.place(text, session, one_shot, m);
  m.media_wall_ms = ms_since_start();
  try {
    const GenerationStats g = answer(session, content, media, a.n_predict,
                                     [&] { m.first_token_ms = ms_since_start(); });
    media.turn_done();
    print_stats(a, engine, g, m);
  } catch (...) {
    media.turn_done();
    throw;
  }
}

}  // namespace

int run_chat(ChatArgs& a) {
  if (!a.prompt_file.empty()) a.prompt = read_file(a.prompt_file);
  if ((!a.images.empty() || !a.video.empty()) && a.engine.mmproj_path.empty())
    throw Error("--image and --video need the vision model: add --mmproj MMPROJ.gguf");
  auto engine = Engine::load(a.engine);
  engine->set_image_options(a.image);
  if (a.legacy || a.verbose) print_load_table(*engine, a);
  if (a.verbose) {
    const TextConfig& c = engine->model().config();
    std::fprintf(stderr, "reel: text model: %d layers, hidden %d, %d/%d heads, vocab %d\n",
                 c.n_layer, c.n_embd, c.n_head, c.n_head_kv, c.n_vocab);
  }
  ChatSession session(*engine, a.sampling, a.system);
  MediaSet media(*engine, a);
  if (!a.prompt.empty()) {
    one_turn(a, *engine, session, media, a.prompt, /*one_shot=*/true);
    return 0;
  }
  if (isatty(STDIN_FILENO))
    std::fprintf(stderr, "reel: chat with the model. <clear> forgets the dialogue, <exit> or "
                         "Ctrl-D quits.%s\n",
                 media.empty() ? "" : " Write <image> or <video> where the media go.");
  std::string line;
  while (read_line(line)) {
    if (line == "<exit>") break;
    if (line == "<clear>") {
      session.clear();
      media.forget();
      std::fprintf(stderr, "reel: dialogue cleared\n");
      continue;
    }
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    try {
      one_turn(a, *engine, session, media, line, /*one_shot=*/false);
    } catch (const Error& e) {
      std::fprintf(stderr, "reel: %s\n", e.what());  // e.g. prompt too long: keep chatting
    }
  }
  return 0;
}

}  // namespace reel::cli
