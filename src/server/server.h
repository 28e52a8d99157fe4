// `reel serve`: an OpenAI-compatible HTTP server (chat completions with images and videos,
// streamed or not; models; health; Prometheus metrics) over one engine thread that owns the
// executor and the scheduler and decodes up to --parallel conversations together.
#pragma once

#include <string>
#include <vector>

#include "gguf/gguf.h"
#include "model/kv_cache.h"
#include "pipeline/image_encoder.h"
#include "pipeline/video_encoder.h"

namespace reel::server {

struct ServerOptions {
  std::string model_path, mmproj_path;
  int n_threads = 0;  // 0: all cores
  int n_ctx = 4096;   // per sequence; 0: the model's training context
  int n_batch = 256;
  KvType kv_type = KvType::F16;
  gguf::LoadMode load_mode = gguf::LoadMode::kMap;  // --hugepages: LoadMode::kAuto
  ops::FloatMatmul vision_matmul = ops::FloatMatmul::Exact;  // --vision-precision
  std::string host = "127.0.0.1";
  int port = 8080;      // 0: any free port (printed on stderr)
  int parallel = 1;     // sequences decoded together
  int queue = 16;       // requests waiting for a sequence; beyond: 429
  std::string api_key;  // empty: no authentication
  std::vector<std::string> media_dirs;
  int max_body_mb = 64;
  ImageOptions image;
  VideoOptions video;
  double max_video_seconds = 3600;  // longer videos are refused (0: no limit)
  std::string media_cache_dir;      // encodings kept on disk (shared with the CLI); empty: none
  int64_t media_cache_max_mb = 4096;  // the folder's bound (0: none)
  // http(s) media URLs: off unless allowed; each download is bounded in bytes and seconds.
  bool allow_remote_media = false;
  int remote_media_max_mb = 64;
  double remote_media_timeout_s = 30;
  // Live streams (/v1/streams): allowed source URL prefixes (none: off), how many at once, and
  // each one's vision encoder threads.
  std::vector<std::string> stream_sources;
  int max_streams = 4;
  int stream_threads = 1;
};

// Runs until SIGINT or SIGTERM; returns the process exit code. Throws reel::Error on bad
// options, an unusable address or a model that does not load.
int run_server(const ServerOptions& options);

}  // namespace reel::server
