// http(s) media URLs, fetched only when the server was started with --allow-remote-media: one
// GET per URL (redirects followed by hand, at most kMaxRedirects), the body streamed into a file
// and cut off past a byte limit or a deadline, TLS certificates verified against the system's
// store. Everything a remote server can do wrong becomes an ApiError for the client.
#pragma once

#include <cstdint>
#include <string>

namespace reel::server {

struct RemoteLimits {
  int64_t max_bytes = int64_t(64) << 20;
  double timeout_s = 30;  // the whole fetch, redirects included
};

inline constexpr int kMaxRedirects = 5;

// The parts of an http(s) URL Reel fetches; false for anything else (other schemes, user
// information, spaces or control characters, an empty host).
struct RemoteUrl {
  std::string scheme_host_port;  // "https://example.com:8443"
  std::string path;              // "/a/b.mp4?x=1", fragment removed; "/" when empty
};
bool parse_remote_url(const std::string& url, RemoteUrl& out);

// Where `location` (a Location header) points, seen from `base`; false when it is not http(s).
bool resolve_location(const RemoteUrl& base, const std::string& location, RemoteUrl& out);

// Downloads `url` into the file descriptor `fd` (written from its current offset). Throws
// ApiError naming `param`: 400 for a malformed URL, a failed connection, an error status or too
// many redirects (code media_fetch_failed), 400 for the deadline (media_fetch_timeout), 413 past
// max_bytes (media_too_large).
void fetch_remote(const std::string& url, int fd, const RemoteLimits& limits,
                  const std::string& param);

}  // namespace reel::server
