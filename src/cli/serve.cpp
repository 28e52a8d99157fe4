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
  add_image_flags(*sv, s.image);
  add_video_flags(*sv, s.video);
  return sv;
}

int run_serve(ServeArgs& a) {
  server::ServerOptions s = a.server;
  s.model_path = a.engine.model_path;
  s.mmproj_path = a.engine.mmproj_path;
  s.n_threads = a.engine.n_threads;
  s.n_ctx = a.engine.n_ctx;
  s.n_batch = a.engine.n_batch;
  s.kv_type = a.engine.kv_type;
  s.video.image = s.image;
  if (s.api_key.empty())
    if (const char* env = std::getenv("REEL_API_KEY")) s.api_key = env;
  return server::run_server(s);
}

}  // namespace reel::cli
