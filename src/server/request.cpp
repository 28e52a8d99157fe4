#include "server/request.h"

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

ChatPart parse_part(const json& part, const std::string& param) {
  if (!part.is_object()) bad(param + " must be an object", param);
  const json* type = field(part, "type");
  if (!type || !type->is_string()) bad(param + ".type must be a string", param + ".type");
  const std::string t = type->get<std::string>();
  if (t == "text") {
    const json* text = field(part, "text");
    if (!text || !text->is_string()) bad(param + ".text must be a string", param + ".text");
    return {ChatPart::Kind::Text, text->get<std::string>()};
  }
  if (t == "image_url") return {ChatPart::Kind::Image, media_url(part, "image_url", param)};
  if (t == "video_url") return {ChatPart::Kind::Video, media_url(part, "video_url", param)};
  bad(param + ".type '" + t + "' is not supported (text, image_url, video_url)", param + ".type");
}

ChatTurn parse_message(const json& m, const std::string& param, const ParseLimits& limits,
                       size_t& n_media) {
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
    turn.parts.push_back(parse_part((*content)[j], param + ".content[" + std::to_string(j) + "]"));
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
  if (number_in(body, "frequency_penalty", -2, 2, 0) != 0)
    throw ApiError(
        400,
        "frequency_penalty is not supported (only 0); use presence_penalty or repetition_penalty",
        "frequency_penalty", "unsupported_parameter");
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

void parse_sampling(const json& body, ChatRequest& r) {
  SamplingParams& s = r.sampling;
  s.temperature = float(number_in(body, "temperature", 0, 100, s.temperature));
  s.top_p = float(number_in(body, "top_p", 0, 1, s.top_p));
  s.top_k = int(integer_in(body, "top_k", -1, 1 << 24, s.top_k));  // <= 0: off (vLLM: -1)
  s.min_p = float(number_in(body, "min_p", 0, 1, s.min_p));
  s.presence_penalty = float(number_in(body, "presence_penalty", -2, 2, s.presence_penalty));
  s.repeat_penalty = float(number_in(body, "repetition_penalty", 0.01, 100, s.repeat_penalty));
  if (const json* seed = field(body, "seed")) {
    if (!seed->is_number_integer()) bad("seed must be an integer", "seed");
    s.seed = seed->is_number_unsigned() ? seed->get<uint64_t>() : uint64_t(seed->get<int64_t>());
  }
  const int64_t max_tokens = integer_in(body, "max_tokens", 1, 1 << 24, -1);
  r.max_tokens = int(integer_in(body, "max_completion_tokens", 1, 1 << 24, max_tokens));
}

}  // namespace

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
    r.turns.push_back(
        parse_message((*messages)[i], "messages[" + std::to_string(i) + "]", limits, n_media));
  refuse_unsupported(j);
  parse_sampling(j, r);
  r.stop = parse_stop(j, limits);
  r.stream = boolean(j, "stream", false);
  if (const json* so = field(j, "stream_options")) {
    if (!so->is_object()) bad("stream_options must be an object", "stream_options");
    r.include_usage = boolean(*so, "include_usage", false);
  }
  return r;
}

}  // namespace reel::server
