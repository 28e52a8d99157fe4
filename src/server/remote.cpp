#include "server/remote.h"

#include <httplib.h>
#include <netdb.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <map>
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

// The host name of "scheme://host[:port]", or "" for a bracketed IPv6 literal (nothing to look
// up). httplib's client keys its address map by the same text.
std::string host_name(const std::string& scheme_host_port) {
  const size_t start = scheme_host_port.find("://");
  const size_t begin = start == std::string::npos ? 0 : start + 3;
  if (scheme_host_port.compare(begin, 1, "[") == 0) return "";
  const size_t end = scheme_host_port.find(':', begin);
  return scheme_host_port.substr(begin, end == std::string::npos ? std::string::npos : end - begin);
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
  // Look the name up here, under the deadline, and hand httplib the address: it connects to it
  // while the Host header, TLS SNI and certificate check keep the name.
  if (const std::string host = host_name(u.scheme_host_port); !host.empty()) {
    std::string address;
    const Lookup found = lookup_before(host, deadline, address);
    if (found == Lookup::TimedOut) timed_out(limits, param);
    if (found == Lookup::NotFound) failed("the URL's host name does not resolve", param);
    client.set_hostname_addr_map({{host, address}});
  }
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

std::string system_lookup(const std::string& host) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_ADDRCONFIG;  // only families this machine can reach: the first one is used
  addrinfo* found = nullptr;
  if (::getaddrinfo(host.c_str(), nullptr, &hints, &found) != 0 || !found) return "";
  char text[NI_MAXHOST] = {};
  const int rc = ::getnameinfo(found->ai_addr, found->ai_addrlen, text, sizeof text, nullptr, 0,
                               NI_NUMERICHOST);
  ::freeaddrinfo(found);
  return rc == 0 ? text : "";
}

Lookup lookup_before(const std::string& host, Clock::time_point deadline, std::string& address,
                     const HostLookup& lookup) {
  struct Pending {  // shared with the helper thread, which may outlive this call
    std::mutex m;
    std::condition_variable done_cv;
    bool done = false;
    std::string address;
  };
  auto pending = std::make_shared<Pending>();
  std::thread([pending, host, lookup] {
    std::string a = lookup(host);
    const std::lock_guard lock(pending->m);
    pending->address = std::move(a);
    pending->done = true;
    pending->done_cv.notify_one();
  }).detach();
  std::unique_lock lock(pending->m);
  if (!pending->done_cv.wait_until(lock, deadline, [&] { return pending->done; }))
    return Lookup::TimedOut;
  address = pending->address;
  return address.empty() ? Lookup::NotFound : Lookup::Found;
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
