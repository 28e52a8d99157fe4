// libFuzzer target for the server's request parser: any body must either parse or throw
// ApiError with a 400 (never another exception, a crash or unbounded work), the error object
// must be valid JSON with all four keys, and what a successful parse yields must be usable:
// its stop strings run through the stop matcher, its data: URLs through base64, its other media
// URLs through the http(s) URL parser (and each as a redirect from the previous one), and its
// video options onto the server's.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "server/request.h"
#include "server/stop.h"
#include "server/url.h"

namespace {

using namespace reel::server;

void check_error(const ApiError& e) {
  if (e.status() != 400) std::abort();
  const auto j = nlohmann::json::parse(error_body(e), nullptr, false);
  if (j.is_discarded() || !j.contains("error")) std::abort();
  for (const char* key : {"message", "type", "param", "code"})
    if (!j["error"].contains(key)) std::abort();
}

void use(const ChatRequest& r, std::string_view data) {
  StopMatcher stop(r.stop);
  // Feed the input itself in small pieces as if it were an answer.
  for (size_t at = 0; at < data.size() && !stop.stopped(); at += 7) stop.push(data.substr(at, 7));
  stop.flush();
  std::string bytes;
  RemoteUrl previous, url, next;
  for (const reel::ChatTurn& t : r.turns)
    for (const reel::ChatPart& p : t.parts) {
      if (p.kind == reel::ChatPart::Kind::Text) continue;
      const size_t comma = p.text.find(',');
      if (p.text.rfind("data:", 0) == 0 && comma != std::string::npos)
        decode_base64(std::string_view(p.text).substr(comma + 1), bytes);
      if (parse_remote_url(p.text, url) && (url.path.empty() || url.path[0] != '/')) std::abort();
      resolve_location(previous, p.text, next);
      previous = url;
    }
  const reel::VideoOptions v = apply_video_request(reel::VideoOptions{}, r.video);
  if (v.min_frames > v.max_frames || v.budget.min_pixels > v.budget.max_pixels) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view body(reinterpret_cast<const char*>(data), size);
  try {
    use(parse_chat_request(body), body);
  } catch (const ApiError& e) {
    check_error(e);
  }
  return 0;
}
