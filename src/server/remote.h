// http(s) media URLs, fetched only when the server was started with --allow-remote-media: one
// GET per URL (redirects followed by hand, at most kMaxRedirects), the body streamed into a file
// and cut off past a byte limit or a deadline, TLS certificates verified against the system's
// store. Everything a remote server can do wrong becomes an ApiError for the client.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>

#include "server/url.h"

namespace reel::server {

struct RemoteLimits {
  int64_t max_bytes = int64_t(64) << 20;
  double timeout_s = 30;  // the whole fetch, redirects included
};

inline constexpr int kMaxRedirects = 5;

// A host name looked up: an address to connect to, or why there is none.
struct ResolvedHost {
  std::string address;  // numeric, e.g. "93.184.215.14"; empty on failure
  std::string error;
};
using HostLookup = std::function<ResolvedHost(const std::string& host)>;

// The system resolver (getaddrinfo), an IPv4 address preferred where the name has both (the
// connection is pinned to one address, and a host without an IPv6 route is the common case).
ResolvedHost system_lookup(const std::string& host);

// `lookup(host)` on a thread of its own, waited for until `deadline`; nullopt if the deadline
// came first (the thread then ends on its own when the resolver gives up). cpp-httplib's lookup
// is a blocking getaddrinfo that no timeout of ours covers, and the system resolver may wait
// tens of seconds per name server. A numeric host is returned as it is, without a lookup.
std::optional<ResolvedHost> resolve_host(const std::string& host,
                                         std::chrono::steady_clock::time_point deadline,
                                         const HostLookup& lookup = system_lookup);

// Downloads `url` into the file descriptor `fd` (written from its current offset). Throws
// ApiError naming `param`: 400 for a malformed URL, a failed connection, an error status or too
// many redirects (code media_fetch_failed), 400 for the deadline (media_fetch_timeout), 413 past
// max_bytes (media_too_large).
void fetch_remote(const std::string& url, int fd, const RemoteLimits& limits,
                  const std::string& param);

}  // namespace reel::server
