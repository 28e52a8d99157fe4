// http(s) media URLs, fetched only when the server was started with --allow-remote-media: one
// GET per URL (redirects followed by hand, at most kMaxRedirects), the body streamed into a file
// and cut off past a byte limit or a deadline, TLS certificates verified against the system's
// store. Everything a remote server can do wrong becomes an ApiError for the client.
#pragma once

#include <cstdint>
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

}  // namespace reel::server
