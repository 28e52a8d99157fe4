// The OpenAI chat-completions request, parsed and checked: messages into chat turns (media
// parts keep their URL until resolve_media turns them into files), sampling parameters into
// Reel's, and every problem a client can cause into an ApiError with the HTTP status and
// OpenAI's error fields. Parsing is pure (no files, no model), so it can be fuzzed.
#pragma once

#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "pipeline/chat_prompt.h"
#include "pipeline/sampler.h"
#include "pipeline/video_encoder.h"

namespace reel::server {

// An error answered to the client: {"error": {"message", "type", "param", "code"}}.
class ApiError : public std::runtime_error {
 public:
  ApiError(int status, const std::string& message, std::string param = "", std::string code = "");
  int status() const { return status_; }
  const std::string& param() const { return param_; }  // empty: null
  const std::string& code() const { return code_; }    // empty: null
  const char* type() const;                            // OpenAI's type for the status

 private:
  int status_;
  std::string param_, code_;
};

// The error object's JSON text.
std::string error_body(const ApiError& e);
// The status and error of a reel::Error (InvalidInput, ContextFull, Unsupported: 400; Io,
// Internal: 500; Cancelled: 499, the client went away).
ApiError api_error_of(const std::exception& e);

struct ParseLimits {
  int max_depth = 32;  // JSON nesting
  size_t max_messages = 1024;
  size_t max_parts = 256;       // content parts per message
  size_t max_media = 64;        // media parts in the request
  size_t max_stop = 8;          // stop strings
  size_t max_stop_bytes = 256;  // per stop string
};

// Per-request video sampling, from vLLM's forms (`mm_processor_kwargs`,
// `media_io_kwargs.video`) and Reel's top-level fields; what is unset keeps the server's flags.
struct VideoRequestOptions {
  std::optional<double> fps;
  std::optional<int> num_frames, min_frames, max_frames;
  std::optional<int64_t> max_tokens;              // max_video_tokens
  std::optional<int64_t> min_pixels, max_pixels;  // over all sampled frames (size.*_edge)
  bool empty() const {
    return !fps && !num_frames && !min_frames && !max_frames && !max_tokens && !min_pixels &&
           !max_pixels;
  }
};

// The server's video options with a request's overrides. A request's num_frames wins over
// its fps (as --frames over --fps); a request's fps replaces a server's --frames.
VideoOptions apply_video_request(VideoOptions base, const VideoRequestOptions& r);

// A {"type": "stream", "stream": {"id", "last_seconds"?}} content part: the window of a live
// stream registered with POST /v1/streams (or its last seconds), asked about as one video. Its
// place in `turns` holds a Video part with an empty path, which the media resolver leaves alone.
struct StreamPart {
  size_t turn = 0, part = 0;  // where it is in ChatRequest::turns
  std::string id;
  double last_s = 0;  // 0: the whole window
  std::string param;  // its JSON path, for errors
};

struct ChatRequest {
  std::string model;
  std::vector<ChatTurn> turns;  // media parts hold their URL (data:, file:// or a path)
  SamplingParams sampling;      // defaults exactly the CLI's
  int max_tokens = -1;          // < 0: until a stop token or a full context
  std::vector<std::string> stop;
  bool ignore_eos = false;  // vLLM's and llama-server's name: run to max_tokens
  VideoRequestOptions video;
  Think think = Think::kDefault;    // chat_template_kwargs.enable_thinking (Qwen3.5)
  std::vector<StreamPart> streams;  // live stream parts, in order of appearance
  bool stream = false;
  bool include_usage = false;
};

// Throws ApiError (400) on malformed JSON, wrong types, unknown roles or part types,
// out-of-range or unsupported parameters, or input over `limits`.
ChatRequest parse_chat_request(std::string_view body, const ParseLimits& limits = {});

// Nesting depth of a JSON text's arrays and objects (strings skipped); stops counting past
// `limit` (returns limit + 1).
int json_depth(std::string_view text, int limit);

// Strict base64 (RFC 4648, padding optional, no whitespace). Returns false on bad input.
bool decode_base64(std::string_view in, std::string& out);

}  // namespace reel::server
