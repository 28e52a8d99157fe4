// http(s) media URLs, fetched only when the server was started with --allow-remote-media: one
// GET per URL (redirects followed by hand, at most kMaxRedirects), the body streamed into a file
// and cut off past a byte limit or a deadline, TLS certificates verified against the system's
// store. Everything a remote server can do wrong becomes an ApiError for the client.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>

#include "server/url.h"

namespace reel::server {

struct RemoteLimits {
  int64_t max_bytes = int64_t(64) << 20;
  double timeout_s = 30;  // the whole fetch, redirects included
};

inline constexpr int kMaxRedirects = 5;

// Downloads `url` into the file descriptor `fd` (written from its current offset). Throws
// ApiError naming `param`: 400 for a malformed URL, a failed connection, an error status or too
// many redirects (code media_fetch_failed), 400 for the deadline (media_fetch_timeout), 413 past
// max_bytes (media_too_large).
void fetch_remote(const std::string& url, int fd, const RemoteLimits& limits,
                  const std::string& param);

// The name lookup of a fetch, which its deadline covers too: getaddrinfo has no timeout of its
// own, and a resolver that hangs must not hang the request. `lookup` (an address as numeric
// text, "" when the name does not resolve) runs on a helper thread; when the deadline passes
// first the thread is left to finish on its own (the system resolver gives up after its own
// retries) and TimedOut is returned.
enum class Lookup { Found, NotFound, TimedOut };
using HostLookup = std::function<std::string(const std::string& host)>;
std::string system_lookup(const std::string& host);
Lookup lookup_before(const std::string& host, std::chrono::steady_clock::time_point deadline,
                     std::string& address, const HostLookup& lookup = system_lookup);

}  // namespace reel::server
