// The `reel` command line: one-shot answers, interactive chat about images and videos, and
// the tokenize / logits / encode / bench / frames tools. Everything here is argument handling
// and printing; the work happens in the pipeline layer.
#include <cstdio>
#include <string>
#include <vector>

#include "cli/cli.h"
#include "cli/errors.h"
#include "cli/serve.h"
#include "cli/watch.h"
#include "common/error.h"
#include "ops/cpu_features.h"

namespace reel::cli {
namespace {

constexpr int kExitUsage = 2;

int usage_error(const std::string& message) {
  std::fprintf(stderr, "reel: %s (see reel --help)\n", message.c_str());
  return kExitUsage;
}

// -p and -f: one of them, not empty. Neither means chat.
int take_prompt(ChatArgs& chat, bool has_p, bool has_f) {
  if (has_p && has_f) return usage_error("give the prompt with -p or -f, not both");
  if (has_f) {
    try {
      chat.prompt = read_file(chat.prompt_file);
    } catch (const Error& e) {
      return usage_error(e.what());
    }
    if (chat.prompt.find_first_not_of(" \t\r\n") == std::string::npos)
      return usage_error(chat.prompt_file + ": the prompt file is empty");
  } else if (has_p && chat.prompt.find_first_not_of(" \t\r\n") == std::string::npos) {
    return usage_error("-p needs a prompt; leave -p out to chat");
  }
  return 0;
}

int run(int argc, char** argv) {
  std::vector<std::string> args(argv, argv + argc), rewritten;
  if (rewrite_legacy(args, rewritten)) args = rewritten;

  CLI::App app{"Reel: ask questions about videos and images with Qwen3-VL", "reel"};
  app.require_subcommand(0, 1);
  app.option_defaults()->always_capture_default();  // --help shows every default
  // The CPU features and the kernels' instruction set, so a user sees which paths run here.
  app.set_version_flag(
      "--version", [] { return std::string("reel " REEL_VERSION "\ncpu: ") + ops::cpu_summary(); });
  ChatArgs chat;
  add_engine_flags(app, chat.engine, /*model_required=*/false);
  add_sampling_flags(app, chat.sampling);
  add_think_flag(app, chat.think);
  auto* prompt_opt =
      app.add_option("-p,--prompt", chat.prompt, "answer this prompt and exit (else: chat)");
  auto* file_opt = app.add_option("-f,--file", chat.prompt_file, "read the prompt from a file");
  app.add_option("-n,--n-predict", chat.n_predict, "max tokens per answer (-1: until done)")
      ->check(CLI::Range(-1, 1 << 24));
  app.add_option("--system", chat.system, "system prompt");
  app.add_option("--stats", chat.stats, "print stats after each answer")
      ->check(CLI::IsMember({"text", "json"}));
  app.add_flag("-v,--verbose", chat.verbose, "print model info and stats");
  app.add_option("--mmproj", chat.engine.mmproj_path, "Qwen3-VL vision model GGUF (mmproj)");
  app.add_option("--media-cache", chat.media_cache_dir,
                 "keep encoded images and videos in this folder, for later runs");
  app.add_option("--media-cache-max-mb", chat.media_cache_max_mb,
                 "most MiB the --media-cache folder holds; least recently used entries go first "
                 "(0: no limit)")
      ->check(CLI::Range(int64_t(0), int64_t(1) << 30));
  app.add_option("--image", chat.images, "image file (repeatable)");
  app.add_option("--video", chat.video, "video file");
  app.add_flag("--legacy", chat.legacy)->group("");  // set by the original app's command line
  add_image_flags(app, chat.image);
  add_video_flags(app, chat.video_opts);

  std::string tok_model, tok_file;
  auto* tok = app.add_subcommand("tokenize", "print the token ids of a text file");
  tok->add_option("-m,--model", tok_model, "model GGUF")->required();
  tok->add_option("-f,--file", tok_file, "text file")->required();

  EngineOptions lg_opts;
  std::string lg_file, lg_out;
  auto* lg = app.add_subcommand("logits", "write float32 logits for every position");
  add_engine_flags(*lg, lg_opts);
  lg->add_option("-f,--file", lg_file, "text file (tokenized as is, no template)")->required();
  lg->add_option("-o,--output", lg_out, "output .f32 file")->required();

  std::string enc_mmproj, enc_out;
  std::vector<std::string> enc_images;
  int enc_threads = 0;
  ops::FloatMatmul enc_matmul = ops::FloatMatmul::Exact;
  ImageOptions enc_image;
  auto* enc = app.add_subcommand("encode", "write the vision tokens of images as float32");
  enc->add_option("--mmproj", enc_mmproj, "vision model GGUF (mmproj)")->required();
  enc->add_option("--image", enc_images, "image file (repeatable)")->required();
  enc->add_option("-o,--output", enc_out, "output .f32 file")->required();
  add_vision_precision_flag(*enc, enc_matmul);
  enc->add_option_function<int>(
         "-t,--threads", [&enc_threads](int n) { enc_threads = usable_threads(n); },
         "threads (default: all cores)")
      ->check(CLI::Range(1, 1024));
  add_image_flags(*enc, enc_image);

  EngineOptions bn_opts;
  BenchOptions bn;
  std::vector<std::string> bn_sizes = {"448x448", "1280x720"};
  ImageOptions bn_image;
  auto* bench = app.add_subcommand("bench", "prefill/decode speed against the memory roofline");
  add_engine_flags(*bench, bn_opts, /*model_required=*/false);
  bench
      ->add_option("-p,--n-prompt", bn.n_prompts,
                   "prompt lengths, one measurement each, e.g. 512,2048,4096")
      ->delimiter(',')
      ->check(CLI::Range(1, 65536))
      ->default_str("128");
  bench->add_option("-n,--n-gen", bn.n_decode, "generated tokens")->check(CLI::Range(1, 65536));
  bench
      ->add_option("-d,--depth", bn.depths,
                   "decode after this many cached tokens, one measurement each, e.g. 0,4096 "
                   "(default: after each prompt length)")
      ->delimiter(',')
      ->check(CLI::Range(0, 1 << 20));
  bench->add_option("-r,--repetitions", bn.repetitions, "best of")->check(CLI::Range(1, 100));
  bench->add_option("--parallel", bn.parallel, "sequences decoded side by side, e.g. 1,2,4,8")
      ->delimiter(',')
      ->check(CLI::Range(1, 256))
      ->default_str("1");
  bool bn_json = false;
  bench->add_flag("--json", bn_json, "one JSON object per measurement on stdout");
  bench->add_option("--mmproj", bn_opts.mmproj_path, "also time the vision encoder");
  bench->add_option("--image-size", bn_sizes, "image sizes for the vision timing (WxH)");
  add_image_flags(*bench, bn_image);

  std::string fr_video;
  VideoOptions fr_opts;
  int fr_ctx = 0;
  auto* frames = app.add_subcommand("frames", "print a video's sampling plan as JSON (no model)");
  frames->add_option("video", fr_video, "video file")->required();
  frames->add_option("-c,--ctx-size", fr_ctx, "fit the video into this context")
      ->check(CLI::Range(0, 1 << 24));
  add_video_flags(*frames, fr_opts);

  ServeArgs serve;
  auto* sv = add_serve_command(app, serve);

  WatchArgs watch;
  auto* wt = add_watch_command(app, watch);

  try {
    std::vector<std::string> rev(args.rbegin(), args.rend() - 1);  // CLI11 takes them reversed
    app.parse(rev);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) return app.exit(e);  // --help
    // One line, like every other error.
    std::fprintf(stderr, "reel: %s (see reel --help)\n", e.what());
    return 2;
  }
  if (*tok) return run_tokenize(tok_model, tok_file);
  if (*lg) return run_logits(lg_opts, lg_file, lg_out);
  if (*enc) return run_encode(enc_mmproj, enc_images, enc_out, enc_threads, enc_matmul, enc_image);
  if (*bench) {
    bn.kv_type = bn_opts.kv_type;
    return run_bench(bn_opts, bn, bn_sizes, bn_image, bn_json);
  }
  if (*frames) return run_frames(fr_video, fr_opts, fr_opts.max_tokens, fr_ctx);
  if (*sv) return run_serve(serve);
  if (*wt) return run_watch(watch);
  if (chat.engine.model_path.empty()) {
    std::fprintf(stderr, "reel: -m MODEL.gguf is required (see reel --help)\n");
    return 2;
  }
  chat.video_opts.image = chat.image;
  if (const int rc = take_prompt(chat, prompt_opt->count() > 0, file_opt->count() > 0); rc != 0)
    return rc;
  check_media_cache_flag(chat.media_cache_dir, chat.engine.mmproj_path);
  return run_chat(chat);
}

}  // namespace
}  // namespace reel::cli

int main(int argc, char** argv) {
  try {
    const int rc = reel::cli::run(argc, argv);
    // Output that could not be written is a failure, whatever the command did.
    if (std::fflush(stdout) != 0 || std::ferror(stdout)) {
      std::fprintf(stderr, "reel: cannot write to standard output\n");
      return 1;
    }
    return rc;
  } catch (const std::exception& e) {  // the exit code and advice by kind: cli/errors.h
    return reel::cli::report_failure(e, reel::cli::Mode::kOneShot);
  }
}
