#include "server/request.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <nlohmann/json.hpp>

#include "common/error.h"

namespace reel::server {
namespace {

using nlohmann::json;

[[noreturn]] void bad(const std::string& message, const std::string& param) {
  throw ApiError(400, message, param);
}

const json* field(const json& obj, const char* name) {
  const auto it = obj.find(name);
  return it == obj.end() || it->is_null() ? nullptr : &*it;
}

double number_in(const json& body, const char* name, double lo, double hi, double fallback) {
  const json* v = field(body, name);
  if (!v) return fallback;
  if (!v->is_number()) bad(std::string(name) + " must be a number", name);
  const double x = v->get<double>();
  if (!std::isfinite(x) || x < lo || x > hi)
    bad(std::string(name) + " must be between " + json(lo).dump() + " and " + json(hi).dump(),
        name);
  return x;
}

int64_t integer_in(const json& body, const char* name, int64_t lo, int64_t hi, int64_t fallback) {
  const json* v = field(body, name);
  if (!v) return fallback;
  if (!v->is_number_integer()) bad(std::string(name) + " must be an integer", name);
  if (v->is_number_unsigned() && v->get<uint64_t>() > uint64_t(std::numeric_limits<int64_t>::max()))
    bad(std::string(name) + " must be at most " + std::to_string(hi), name);
  const int64_t x = v->get<int64_t>();
  if (x < lo || x > hi)
    bad(std::string(name) + " must be between " + std::to_string(lo) + " and " + std::to_string(hi),
        name);
  return x;
}

bool boolean(const json& body, const char* name, bool fallback) {
  const json* v = field(body, name);
  if (!v) return fallback;
  if (!v->is_boolean()) bad(std::string(name) + " must be true or false", name);
  return v->get<bool>();
}

std::string media_url(const json& part, const char* key, const std::string& param) {
  const json* v = field(part, key);
  if (!v) bad(param + "." + key + " is missing", param + "." + key);
  if (v->is_string()) return v->get<std::string>();  // the bare-string form some clients send
  if (!v->is_object()) bad(param + "." + key + " must be an object with a url", param + "." + key);
  const json* url = field(*v, "url");
  if (!url || !url->is_string())
    bad(param + "." + key + ".url must be a string", param + "." + key + ".url");
  return url->get<std::string>();
}

// Anthropic's source object, which llama-server also accepts: {"type": "base64", "media_type",
// "data"} becomes a data: URL, {"type": "url", "url"} its URL.
std::string source_url(const json& part, const std::string& param) {
  const json* src = field(part, "source");
  if (!src->is_object()) bad(param + ".source must be an object", param + ".source");
  const json* type = field(*src, "type");
  if (!type || !type->is_string())
    bad(param + ".source.type must be a string", param + ".source.type");
  if (*type == "url") {
    const json* url = field(*src, "url");
    if (!url || !url->is_string())
      bad(param + ".source.url must be a string", param + ".source.url");
    return url->get<std::string>();
  }
  if (*type != "base64")
    bad(param + ".source.type must be base64 or url", param + ".source.type");
  const json* mime = field(*src, "media_type");
  const json* data = field(*src, "data");
  if (!mime || !mime->is_string())
    bad(param + ".source.media_type must be a string", param + ".source.media_type");
  if (!data || !data->is_string())
    bad(param + ".source.data must be a base64 string", param + ".source.data");
  return "data:" + mime->get<std::string>() + ";base64," + data->get<std::string>();
}

// The part shapes clients send for a medium of `kind` ("image" or "video"):
//   {"type": "image_url", "image_url": {"url": U}}   OpenAI (vLLM: video_url); bare string too
//   {"type": "input_image", "image_url": U}          OpenAI's Responses API
//   {"type": "image", "image": U}                    Qwen's and transformers' messages
//   {"type": "image", "source": {...}}               Anthropic's, as llama-server takes it
std::optional<ChatPart> media_part(const json& part, const std::string& t,
                                   const std::string& param) {
  const bool image = t == "image_url" || t == "input_image" || t == "image";
  const bool video = t == "video_url" || t == "input_video" || t == "video";
  if (!image && !video) return std::nullopt;
  const ChatPart::Kind kind = image ? ChatPart::Kind::Image : ChatPart::Kind::Video;
  const char* key = image ? "image_url" : "video_url";
  if (t == "image" || t == "video") {
    if (field(part, "source")) return ChatPart{kind, source_url(part, param)};
    key = image ? "image" : "video";
  }
  return ChatPart{kind, media_url(part, key, param)};
}

// {"type": "stream", "stream": {"id": "stream-...", "last_seconds": 30}}
StreamPart stream_part(const json& part, const std::string& param) {
  const json* s = field(part, "stream");
  if (!s || !s->is_object()) bad(param + ".stream must be an object", param + ".stream");
  const json* id = field(*s, "id");
  if (!id || !id->is_string() || id->get<std::string>().empty() ||
      id->get<std::string>().size() > 64)
    bad(param + ".stream.id must be a stream's id", param + ".stream.id");
  StreamPart out;
  out.id = id->get<std::string>();
  out.param = param;
  if (const json* last = field(*s, "last_seconds"); last && !last->is_null()) {
    if (!last->is_number() || !(last->get<double>() > 0) || last->get<double>() > 86400)
      bad(param + ".stream.last_seconds must be a number of seconds over 0 (at most a day)",
          param + ".stream.last_seconds");
    out.last_s = last->get<double>();
  }
  return out;
}

ChatPart parse_part(const json& part, const std::string& param) {
  if (!part.is_object()) bad(param + " must be an object", param);
  const json* type = field(part, "type");
  if (!type || !type->is_string()) bad(param + ".type must be a string", param + ".type");
  const std::string t = type->get<std::string>();
  if (t == "text" || t == "input_text") {
    const json* text = field(part, "text");
    if (!text || !text->is_string()) bad(param + ".text must be a string", param + ".text");
    return {ChatPart::Kind::Text, text->get<std::string>()};
  }
  if (std::optional<ChatPart> media = media_part(part, t, param)) return *media;
  bad(param + ".type '" + t +
          "' is not supported (text, image_url, video_url, image, video, stream)",
      param + ".type");
}

ChatTurn parse_message(const json& m, const std::string& param, const ParseLimits& limits,
                       size_t& n_media, size_t index, std::vector<StreamPart>& streams) {
  if (!m.is_object()) bad(param + " must be an object", param);
  const json* role = field(m, "role");
  if (!role || !role->is_string()) bad(param + ".role must be a string", param + ".role");
  ChatTurn turn{role->get<std::string>(), {}};
  if (turn.role == "developer") turn.role = "system";  // OpenAI's newer name for it
  if (turn.role != "system" && turn.role != "user" && turn.role != "assistant")
    bad(param + ".role '" + turn.role + "' is not supported (system, user, assistant)",
        param + ".role");
  const json* content = field(m, "content");
  if (!content) {
    if (turn.role != "assistant") bad(param + ".content is missing", param + ".content");
    return turn;  // an assistant turn without text
  }
  if (content->is_string()) {
    turn.parts.push_back({ChatPart::Kind::Text, content->get<std::string>()});
    return turn;
  }
  if (!content->is_array())
    bad(param + ".content must be a string or an array of parts", param + ".content");
  if (content->size() > limits.max_parts)
    bad(param + ".content has more than " + std::to_string(limits.max_parts) + " parts",
        param + ".content");
  for (size_t j = 0; j < content->size(); ++j) {
    const json& part = (*content)[j];
    const std::string part_param = param + ".content[" + std::to_string(j) + "]";
    const json* type = part.is_object() ? field(part, "type") : nullptr;
    if (type && type->is_string() && *type == "stream") {
      if (turn.role != "user") bad(part_param + ": stream parts go in user messages", part_param);
      streams.push_back(stream_part(part, part_param));
      streams.back().turn = index;
      streams.back().part = j;
      turn.parts.push_back({ChatPart::Kind::Video, ""});
    } else {
      turn.parts.push_back(parse_part(part, part_param));
    }
    if (turn.parts.back().kind != ChatPart::Kind::Text && ++n_media > limits.max_media)
      bad("the request has more than " + std::to_string(limits.max_media) + " images and videos",
          param + ".content");
  }
  return turn;
}

std::vector<std::string> parse_stop(const json& body, const ParseLimits& limits) {
  const json* v = field(body, "stop");
  if (!v) return {};
  std::vector<std::string> out;
  auto add = [&](const json& s) {
    if (!s.is_string()) bad("stop must be a string or an array of strings", "stop");
    std::string text = s.get<std::string>();
    if (text.empty()) bad("stop strings must not be empty", "stop");
    if (text.size() > limits.max_stop_bytes)
      bad("stop strings must be at most " + std::to_string(limits.max_stop_bytes) + " bytes",
          "stop");
    out.push_back(std::move(text));
  };
  if (v->is_array()) {
    if (v->size() > limits.max_stop)
      bad("stop takes at most " + std::to_string(limits.max_stop) + " strings", "stop");
    for (const json& s : *v) add(s);
  } else {
    add(*v);
  }
  return out;
}

// Parameters Reel does not implement: accepted at their neutral value, refused otherwise.
void refuse_unsupported(const json& body) {
  if (integer_in(body, "n", 1, 1'000'000, 1) != 1)
    throw ApiError(400, "n must be 1 (one answer per request)", "n", "unsupported_parameter");
  if (boolean(body, "logprobs", false))
    throw ApiError(400, "logprobs are not supported", "logprobs", "unsupported_parameter");
  if (const json* tools = field(body, "tools"); tools && !(tools->is_array() && tools->empty()))
    throw ApiError(400, "tools are not supported", "tools", "unsupported_parameter");
  if (const json* rf = field(body, "response_format")) {
    const json* type = rf->is_object() ? field(*rf, "type") : nullptr;
    if (!type || *type != "text")
      throw ApiError(400, "response_format other than text is not supported", "response_format",
                     "unsupported_parameter");
  }
}

// One video option from one place of the request; the same option given twice with different
// values is refused rather than one silently winning.
template <class T>
void set_once(std::optional<T>& slot, std::optional<T> value, const std::string& param,
              std::string& first_param) {
  if (!value) return;
  if (slot && *slot != *value)
    bad(param + " disagrees with " + first_param + " (give the option once)", param);
  if (!slot) first_param = param;
  slot = value;
}

struct VideoOptionSources {
  std::string fps, num_frames, min_frames, max_frames, max_tokens, min_pixels, max_pixels;
};

std::optional<int64_t> optional_integer(const json& obj, const char* name, int64_t lo, int64_t hi,
                                        const std::string& prefix) {
  const json* v = field(obj, name);
  if (!v) return std::nullopt;
  try {
    return integer_in(obj, name, lo, hi, 0);
  } catch (const ApiError& e) {
    throw ApiError(400, prefix + e.what(), prefix + name);
  }
}

std::optional<double> optional_number(const json& obj, const char* name, double lo, double hi,
                                      const std::string& prefix) {
  if (!field(obj, name)) return std::nullopt;
  try {
    return number_in(obj, name, lo, hi, 0);
  } catch (const ApiError& e) {
    throw ApiError(400, prefix + e.what(), prefix + name);
  }
}

constexpr int kMaxFramesOption = 4096;
constexpr int64_t kMaxPixelsOption = int64_t(1) << 40;

void video_fields(const json& obj, const std::string& prefix, bool sizes, VideoRequestOptions& v,
                  VideoOptionSources& from) {
  auto as_int = [](std::optional<int64_t> x) {
    return x ? std::optional<int>(int(*x)) : std::nullopt;
  };
  set_once(v.fps, optional_number(obj, "fps", 0.001, 1000, prefix), prefix + "fps", from.fps);
  std::optional<int64_t> n = optional_integer(obj, "num_frames", -1, kMaxFramesOption, prefix);
  if (n && *n == 0) bad(prefix + "num_frames must be at least 1 (-1: the default)", prefix + "num_frames");
  if (n && *n < 0) n.reset();  // vLLM's "all frames" default: the server's sampling
  set_once(v.num_frames, as_int(n), prefix + "num_frames", from.num_frames);
  set_once(v.min_frames, as_int(optional_integer(obj, "min_frames", 1, kMaxFramesOption, prefix)),
           prefix + "min_frames", from.min_frames);
  set_once(v.max_frames, as_int(optional_integer(obj, "max_frames", 1, kMaxFramesOption, prefix)),
           prefix + "max_frames", from.max_frames);
  if (!sizes) return;
  set_once(v.min_pixels, optional_integer(obj, "min_pixels", 1, kMaxPixelsOption, prefix),
           prefix + "min_pixels", from.min_pixels);
  set_once(v.max_pixels, optional_integer(obj, "max_pixels", 1, kMaxPixelsOption, prefix),
           prefix + "max_pixels", from.max_pixels);
  if (const json* size = field(obj, "size")) {
    if (!size->is_object()) bad(prefix + "size must be an object", prefix + "size");
    const std::string sp = prefix + "size.";
    set_once(v.min_pixels, optional_integer(*size, "shortest_edge", 1, kMaxPixelsOption, sp),
             sp + "shortest_edge", from.min_pixels);
    set_once(v.max_pixels, optional_integer(*size, "longest_edge", 1, kMaxPixelsOption, sp),
             sp + "longest_edge", from.max_pixels);
  }
}

// Keys of `obj` outside `known`: refused, so that an option Reel does not know is not silently
// without effect.
void refuse_unknown_keys(const json& obj, std::initializer_list<std::string_view> known,
                         const std::string& prefix) {
  for (const auto& [key, value] : obj.items()) {
    if (std::find(known.begin(), known.end(), key) != known.end()) continue;
    throw ApiError(400, prefix + key + " is not supported here", prefix + key,
                   "unsupported_parameter");
  }
}

// chat_template_kwargs.enable_thinking, as vLLM and llama-server take it: Qwen3.5's thinking
// switch (absent: the model's template decides). Other template arguments are refused.
Think parse_think(const json& body) {
  const json* kw = field(body, "chat_template_kwargs");
  if (!kw) return Think::kDefault;
  if (!kw->is_object()) bad("chat_template_kwargs must be an object", "chat_template_kwargs");
  refuse_unknown_keys(*kw, {"enable_thinking"}, "chat_template_kwargs.");
  const json* on = field(*kw, "enable_thinking");
  if (!on || on->is_null()) return Think::kDefault;
  if (!on->is_boolean())
    bad("chat_template_kwargs.enable_thinking must be true or false",
        "chat_template_kwargs.enable_thinking");
  return on->get<bool>() ? Think::kOn : Think::kOff;
}

VideoRequestOptions parse_video_options(const json& body) {
  VideoRequestOptions v;
  VideoOptionSources from;
  video_fields(body, "", /*sizes=*/false, v, from);
  set_once(v.max_tokens, optional_integer(body, "max_video_tokens", 1, int64_t(1) << 24, ""),
           std::string("max_video_tokens"), from.max_tokens);
  if (const json* kw = field(body, "mm_processor_kwargs")) {
    if (!kw->is_object()) bad("mm_processor_kwargs must be an object", "mm_processor_kwargs");
    refuse_unknown_keys(*kw,
                        {"fps", "num_frames", "min_frames", "max_frames", "min_pixels",
                         "max_pixels", "size", "do_sample_frames"},
                        "mm_processor_kwargs.");
    // Reel samples frames once, from the file; do_sample_frames has nothing to turn off.
    if (const json* d = field(*kw, "do_sample_frames"); d && !d->is_boolean())
      bad("mm_processor_kwargs.do_sample_frames must be true or false",
          "mm_processor_kwargs.do_sample_frames");
    video_fields(*kw, "mm_processor_kwargs.", /*sizes=*/true, v, from);
  }
  if (const json* io = field(body, "media_io_kwargs")) {
    if (!io->is_object()) bad("media_io_kwargs must be an object", "media_io_kwargs");
    refuse_unknown_keys(*io, {"video", "image"}, "media_io_kwargs.");
    if (const json* video = field(*io, "video")) {
      if (!video->is_object())
        bad("media_io_kwargs.video must be an object", "media_io_kwargs.video");
      refuse_unknown_keys(*video, {"num_frames", "fps"}, "media_io_kwargs.video.");
      video_fields(*video, "media_io_kwargs.video.", /*sizes=*/false, v, from);
    }
  }
  if (v.min_frames && v.max_frames && *v.min_frames > *v.max_frames)
    bad("min_frames is larger than max_frames", from.min_frames);
  if (v.min_pixels && v.max_pixels && *v.min_pixels > *v.max_pixels)
    bad("the minimum pixels are more than the maximum", from.min_pixels);
  return v;
}

void parse_sampling(const json& body, ChatRequest& r) {
  SamplingParams& s = r.sampling;
  s.temperature = float(number_in(body, "temperature", 0, 100, s.temperature));
  s.top_p = float(number_in(body, "top_p", 0, 1, s.top_p));
  s.top_k = int(integer_in(body, "top_k", -1, 1 << 24, s.top_k));  // <= 0: off (vLLM: -1)
  s.min_p = float(number_in(body, "min_p", 0, 1, s.min_p));
  s.presence_penalty = float(number_in(body, "presence_penalty", -2, 2, s.presence_penalty));
  s.frequency_penalty = float(number_in(body, "frequency_penalty", -2, 2, s.frequency_penalty));
  s.repeat_penalty = float(number_in(body, "repetition_penalty", 0.01, 100, s.repeat_penalty));
  if (const json* seed = field(body, "seed")) {
    if (!seed->is_number_integer()) bad("seed must be an integer", "seed");
    s.seed = seed->is_number_unsigned() ? seed->get<uint64_t>() : uint64_t(seed->get<int64_t>());
  }
  const int64_t max_tokens = integer_in(body, "max_tokens", 1, 1 << 24, -1);
  r.max_tokens = int(integer_in(body, "max_completion_tokens", 1, 1 << 24, max_tokens));
}

}  // namespace

VideoOptions apply_video_request(VideoOptions base, const VideoRequestOptions& r) {
  if (r.fps) {
    base.fps = *r.fps;
    base.n_frames = 0;
  }
  if (r.num_frames) base.n_frames = *r.num_frames;
  if (r.min_frames) base.min_frames = *r.min_frames;
  if (r.max_frames) base.max_frames = *r.max_frames;
  if (base.min_frames > base.max_frames) {  // one side given: the other follows it
    if (r.min_frames)
      base.max_frames = base.min_frames;
    else
      base.min_frames = base.max_frames;
  }
  if (r.max_tokens) base.max_tokens = *r.max_tokens;
  if (r.min_pixels) base.budget.min_pixels = *r.min_pixels;
  if (r.max_pixels) base.budget.max_pixels = *r.max_pixels;
  if (base.budget.min_pixels > base.budget.max_pixels) {
    if (r.min_pixels)
      base.budget.max_pixels = base.budget.min_pixels;
    else
      base.budget.min_pixels = base.budget.max_pixels;
  }
  return base;
}

ApiError::ApiError(int status, const std::string& message, std::string param, std::string code)
    : std::runtime_error(message),
      status_(status),
      param_(std::move(param)),
      code_(std::move(code)) {}

const char* ApiError::type() const {
  switch (status_) {
    case 401:
      return "authentication_error";
    case 403:
      return "permission_error";
    case 404:
      return "not_found_error";
    case 413:
      return "invalid_request_error";
    case 429:
      return "rate_limit_error";
    case 503:
      return "server_unavailable";
    default:
      return status_ >= 500 ? "server_error" : "invalid_request_error";
  }
}

std::string error_body(const ApiError& e) {
  json err = {{"message", e.what()},
              {"type", e.type()},
              {"param", e.param().empty() ? json(nullptr) : json(e.param())},
              {"code", e.code().empty() ? json(nullptr) : json(e.code())}};
  return json{{"error", err}}.dump(-1, ' ', false, json::error_handler_t::replace);
}

ApiError api_error_of(const std::exception& e) {
  if (const auto* a = dynamic_cast<const ApiError*>(&e)) return *a;
  if (const auto* r = dynamic_cast<const Error*>(&e)) {
    switch (r->kind()) {
      case ErrorKind::InvalidInput:
        return ApiError(400, r->what());
      case ErrorKind::ContextFull:
        return ApiError(400, r->what(), "messages", "context_length_exceeded");
      case ErrorKind::Unsupported:
        return ApiError(400, r->what(), "", "unsupported");
      case ErrorKind::Cancelled:
        return ApiError(499, "the request was cancelled");
      case ErrorKind::Io:
        return ApiError(500, r->what());
      case ErrorKind::Internal:
        return ApiError(500, r->what());
    }
  }
  if (dynamic_cast<const std::bad_alloc*>(&e)) return ApiError(500, "out of memory");
  return ApiError(500, std::string("internal error: ") + e.what());
}

int json_depth(std::string_view text, int limit) {
  int depth = 0, most = 0;
  bool in_string = false, escaped = false;
  for (const char c : text) {
    if (in_string) {
      if (escaped)
        escaped = false;
      else if (c == '\\')
        escaped = true;
      else if (c == '"')
        in_string = false;
      continue;
    }
    if (c == '"')
      in_string = true;
    else if (c == '[' || c == '{') {
      most = std::max(most, ++depth);
      if (most > limit) return limit + 1;
    } else if (c == ']' || c == '}') {
      --depth;
    }
  }
  return most;
}

bool decode_base64(std::string_view in, std::string& out) {
  auto value = [](char c) -> int {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+' || c == '-') return 62;  // standard and URL-safe alphabets
    if (c == '/' || c == '_') return 63;
    return -1;
  };
  while (!in.empty() && in.back() == '=') in.remove_suffix(1);
  if (in.size() % 4 == 1) return false;
  out.clear();
  out.reserve(in.size() / 4 * 3 + 2);
  uint32_t acc = 0;
  int bits = 0;
  for (const char c : in) {
    const int v = value(c);
    if (v < 0) return false;
    acc = (acc << 6) | uint32_t(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<char>((acc >> bits) & 0xff));
    }
  }
  return true;
}

ChatRequest parse_chat_request(std::string_view body, const ParseLimits& limits) {
  if (json_depth(body, limits.max_depth) > limits.max_depth)
    bad("the JSON is nested more than " + std::to_string(limits.max_depth) + " levels deep", "");
  json j = json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) bad("the body is not valid JSON", "");
  if (!j.is_object()) bad("the body must be a JSON object", "");
  ChatRequest r;
  if (const json* model = field(j, "model")) {
    if (!model->is_string()) bad("model must be a string", "model");
    r.model = model->get<std::string>();
  }
  const json* messages = field(j, "messages");
  if (!messages || !messages->is_array() || messages->empty())
    bad("messages must be a non-empty array", "messages");
  if (messages->size() > limits.max_messages)
    bad("messages has more than " + std::to_string(limits.max_messages) + " entries", "messages");
  size_t n_media = 0;
  for (size_t i = 0; i < messages->size(); ++i)
    r.turns.push_back(parse_message((*messages)[i], "messages[" + std::to_string(i) + "]", limits,
                                    n_media, i, r.streams));
  refuse_unsupported(j);
  parse_sampling(j, r);
  r.stop = parse_stop(j, limits);
  r.ignore_eos = boolean(j, "ignore_eos", false);
  r.video = parse_video_options(j);
  r.think = parse_think(j);
  r.stream = boolean(j, "stream", false);
  if (const json* so = field(j, "stream_options")) {
    if (!so->is_object()) bad("stream_options must be an object", "stream_options");
    r.include_usage = boolean(*so, "include_usage", false);
  }
  return r;
}

}  // namespace reel::server
