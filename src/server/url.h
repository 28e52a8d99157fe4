// http(s) URLs as Reel fetches them: the parts the HTTP client needs, and where a redirect
// points. Pure string work (no network), so the request fuzzer can drive it.
#pragma once

#include <string>

namespace reel::server {

// The parts of an http(s) URL Reel fetches; false for anything else (other schemes, user
// information, spaces or control characters, an empty host).
struct RemoteUrl {
  std::string scheme_host_port;  // "https://example.com:8443"
  std::string host;              // "example.com"; an IPv6 literal without its brackets
  std::string path;              // "/a/b.mp4?x=1", fragment removed; "/" when empty
};
bool parse_remote_url(const std::string& url, RemoteUrl& out);

// Where `location` (a Location header) points, seen from `base`; false when it is not http(s).
bool resolve_location(const RemoteUrl& base, const std::string& location, RemoteUrl& out);

}  // namespace reel::server
