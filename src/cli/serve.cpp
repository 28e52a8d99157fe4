#include "cli/serve.h"

#include <cstdio>
#include <cstdlib>

#include "common/error.h"

namespace reel::cli {

CLI::App* add_serve_command(CLI::App& app, ServeArgs& a) {
  auto* sv = app.add_subcommand("serve", "serve the OpenAI chat API over HTTP (images and videos)");
  add_engine_flags(*sv, a.engine);
  server::ServerOptions& s = a.server;
  sv->add_option("--mmproj", a.engine.mmproj_path, "Qwen3-VL vision model GGUF (mmproj)");
  sv->add_option("--host", s.host, "address to listen on (loopback by default)");
  sv->add_option("--port", s.port, "port (0: any free port)")->check(CLI::Range(0, 65535));
  sv->add_option("--parallel", s.parallel, "conversations decoded together")
      ->check(CLI::Range(1, 256));
  sv->add_option("--queue", s.queue, "requests that may wait for a free sequence (beyond: 429)")
      ->check(CLI::Range(0, 100000));
  sv->add_option("--api-key", s.api_key,
                 "require Authorization: Bearer KEY (default: $REEL_API_KEY)");
  sv->add_option("--media-dir", s.media_dirs, "folder whose files requests may name (repeatable)");
  sv->add_option("--max-body-mb", s.max_body_mb, "largest request body in MiB")
      ->check(CLI::Range(1, 4096));
  sv->add_option(
      "--media-cache", s.media_cache_dir,
      "keep encoded images and videos in this folder (shared with `reel --media-cache`)");
  sv->add_option("--media-cache-max-mb", s.media_cache_max_mb,
                 "most MiB the --media-cache folder holds; least recently used entries go first "
                 "(0: no limit)")
      ->check(CLI::Range(int64_t(0), int64_t(1) << 30));
  sv->add_flag("--allow-remote-media", s.allow_remote_media,
               "fetch http(s) media URLs (the server then reaches any address a client names)");
  sv->add_option("--remote-media-max-mb", s.remote_media_max_mb,
                 "largest http(s) medium in MiB (beyond: 413)")
      ->check(CLI::Range(1, 4096));
  sv->add_option("--remote-media-timeout", s.remote_media_timeout_s,
                 "seconds an http(s) medium may take to arrive")
      ->check(CLI::Range(0.1, 3600.0));
  sv->add_option("--max-video-seconds", s.max_video_seconds, "refuse longer videos (0: no limit)")
      ->check(CLI::Range(0.0, 1e7));
  sv->add_option("--max-image-pixels", s.image.max_input_pixels,
                 "refuse larger images before decoding them")
      ->check(CLI::Range(int64_t(1), int64_t(1) << 40));
  sv->add_option("--stream-source", s.stream_sources,
                 "allow live streams (POST /v1/streams) whose URL starts with this, e.g. "
                 "rtsp://cam1.local/ or udp:// (repeatable; none: streams are off)");
  sv->add_option("--max-streams", s.max_streams, "live streams watched at once (beyond: 429)")
      ->check(CLI::Range(1, 64));
  sv->add_option("--stream-threads", s.stream_threads,
                 "vision encoder threads of each live stream (default 1)")
      ->check(CLI::Range(1, 256));
  add_image_flags(*sv, s.image);
  add_video_flags(*sv, s.video);
  return sv;
}

int run_serve(ServeArgs& a) {
  require_cpu("reel serve", a.engine);
  check_media_cache_flag(a.server.media_cache_dir, a.engine.mmproj_path);
  server::ServerOptions s = a.server;
  s.model_path = a.engine.model_path;
  s.mmproj_path = a.engine.mmproj_path;
  s.n_threads = a.engine.n_threads;
  s.n_ctx = a.engine.n_ctx;
  s.n_batch = a.engine.n_batch;
  s.kv_type = a.engine.kv_type;
  s.load_mode = a.engine.load_mode();
  s.vision_matmul = a.engine.vision_matmul;
  s.video.image = s.image;
  if (s.api_key.empty())
    if (const char* env = std::getenv("REEL_API_KEY")) s.api_key = env;
  return server::run_server(s);
}

}  // namespace reel::cli
