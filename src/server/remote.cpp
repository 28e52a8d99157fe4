#include "server/remote.h"

#include <arpa/inet.h>
#include <httplib.h>
#include <netdb.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <memory>
#include <mutex>
#include <thread>

#include "server/request.h"

namespace reel::server {
namespace {

using Clock = std::chrono::steady_clock;

std::string mib_text(int64_t bytes) {
  return std::to_string((bytes + (int64_t(1) << 20) - 1) >> 20);
}

[[noreturn]] void failed(const std::string& why, const std::string& param) {
  throw ApiError(400, "fetching the medium failed: " + why, param, "media_fetch_failed");
}

[[noreturn]] void timed_out(const RemoteLimits& limits, const std::string& param) {
  throw ApiError(400,
                 "fetching the medium took longer than " + std::to_string(int(limits.timeout_s)) +
                     " s (--remote-media-timeout)",
                 param, "media_fetch_timeout");
}

bool is_numeric_host(const std::string& host) {
  unsigned char buf[sizeof(in6_addr)];
  return inet_pton(AF_INET, host.c_str(), buf) == 1 || inet_pton(AF_INET6, host.c_str(), buf) == 1;
}

bool write_all(int fd, const char* data, size_t n) {
  while (n > 0) {
    const ssize_t w = ::write(fd, data, n);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return false;
    data += w;
    n -= size_t(w);
  }
  return true;
}

// One GET. Returns the Location of a redirect, or "" once the body is in fd.
std::string get_once(const RemoteUrl& u, int fd, const RemoteLimits& limits,
                     Clock::time_point deadline, const std::string& param) {
  httplib::Client client(u.scheme_host_port);
  if (!client.is_valid()) failed("the URL's host is not usable", param);
  const std::optional<ResolvedHost> resolved = resolve_host(u.host, deadline);
  if (!resolved) timed_out(limits, param);
  if (resolved->address.empty()) failed("cannot resolve " + u.host + ": " + resolved->error, param);
  // Connect to the address found within the deadline; the name still goes in Host and SNI.
  if (resolved->address != u.host) client.set_hostname_addr_map({{u.host, resolved->address}});
  const auto left = std::chrono::duration_cast<std::chrono::microseconds>(deadline - Clock::now());
  if (left.count() <= 0) timed_out(limits, param);
  client.set_connection_timeout(left);
  client.set_read_timeout(left);
  client.set_write_timeout(left);
  client.set_follow_location(false);
  client.enable_server_certificate_verification(true);
  for (const char* ca : {"/etc/ssl/certs/ca-certificates.crt", "/etc/pki/tls/certs/ca-bundle.crt"})
    if (std::filesystem::exists(ca)) {
      client.set_ca_cert_path(ca);
      break;
    }

  int status = 0;
  std::string location;
  int64_t received = 0;
  bool too_large = false, too_slow = false, write_failed = false;
  const auto result = client.Get(
      u.path, httplib::Headers{{"User-Agent", "reel-serve"}},
      [&](const httplib::Response& r) {
        status = r.status;
        if (status >= 300 && status < 400) {
          location = r.get_header_value("Location");
          return false;  // followed by the caller, with its own checks
        }
        if (status < 200 || status >= 300) return false;
        if (r.has_header("Content-Length")) {
          const std::string len = r.get_header_value("Content-Length");
          const bool digits = !len.empty() && len.find_first_not_of("0123456789") == len.npos;
          if (digits && (len.size() > 18 || std::stoll(len) > limits.max_bytes)) {
            too_large = true;
            return false;
          }
        }
        return true;
      },
      [&](const char* data, size_t n) {
        received += int64_t(n);
        if (received > limits.max_bytes) return !(too_large = true);
        if (Clock::now() > deadline) return !(too_slow = true);
        if (!write_all(fd, data, n)) return !(write_failed = true);
        return true;
      });
  if (too_large)
    throw ApiError(
        413,
        "the medium is larger than " + mib_text(limits.max_bytes) + " MiB (--remote-media-max-mb)",
        param, "media_too_large");
  if (too_slow || (!result && result.error() == httplib::Error::Read && Clock::now() >= deadline))
    timed_out(limits, param);
  if (write_failed) throw ApiError(500, "cannot write a temporary file for a medium", param);
  if (status >= 300 && status < 400) {
    if (location.empty()) failed("a redirect without a Location", param);
    return location;
  }
  if (status != 0 && (status < 200 || status >= 300))
    failed("the server answered HTTP " + std::to_string(status), param);
  if (!result) failed(httplib::to_string(result.error()), param);
  return "";
}

}  // namespace

ResolvedHost system_lookup(const std::string& host) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  const int rc = getaddrinfo(host.c_str(), nullptr, &hints, &found);
  if (rc != 0) return {"", gai_strerror(rc)};
  const addrinfo* pick = found;
  for (const addrinfo* a = found; a != nullptr; a = a->ai_next)
    if (a->ai_family == AF_INET) {
      pick = a;
      break;
    }
  char text[INET6_ADDRSTRLEN] = {};
  const int named = pick != nullptr ? getnameinfo(pick->ai_addr, pick->ai_addrlen, text,
                                                  sizeof text, nullptr, 0, NI_NUMERICHOST)
                                    : EAI_NONAME;
  freeaddrinfo(found);
  if (named != 0) return {"", gai_strerror(named)};
  return {text, ""};
}

std::optional<ResolvedHost> resolve_host(const std::string& host, Clock::time_point deadline,
                                         const HostLookup& lookup) {
  if (is_numeric_host(host)) return ResolvedHost{host, ""};
  struct Shared {  // outlives this call when the deadline comes first
    std::mutex m;
    std::condition_variable cv;
    std::optional<ResolvedHost> result;
  };
  auto shared = std::make_shared<Shared>();
  std::thread([shared, host, lookup] {
    ResolvedHost r = lookup(host);
    std::lock_guard lock(shared->m);
    shared->result = std::move(r);
    shared->cv.notify_all();
  }).detach();
  std::unique_lock lock(shared->m);
  shared->cv.wait_until(lock, deadline, [&] { return shared->result.has_value(); });
  return shared->result;
}

void fetch_remote(const std::string& url, int fd, const RemoteLimits& limits,
                  const std::string& param) {
  RemoteUrl u;
  if (!parse_remote_url(url, u)) throw ApiError(400, "malformed http(s) URL", param);
  const auto deadline = Clock::now() + std::chrono::duration_cast<Clock::duration>(
                                           std::chrono::duration<double>(limits.timeout_s));
  for (int hop = 0;; ++hop) {
    const std::string location = get_once(u, fd, limits, deadline, param);
    if (location.empty()) return;
    if (hop == kMaxRedirects)
      failed("more than " + std::to_string(kMaxRedirects) + " redirects", param);
    RemoteUrl next;
    if (!resolve_location(u, location, next)) failed("a redirect to a non-http(s) place", param);
    u = next;
  }
}

}  // namespace reel::server
