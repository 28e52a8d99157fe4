#include "server/url.h"

namespace reel::server {
namespace {

bool url_char_ok(char c) {
  return static_cast<unsigned char>(c) > 0x20 && static_cast<unsigned char>(c) < 0x7f;
}

// The host of an authority ("h", "h:80", "[::1]:80"); empty when a bracket is not closed.
std::string authority_host(const std::string& authority) {
  if (authority[0] == '[') {
    const size_t close = authority.find(']');
    return close == std::string::npos ? "" : authority.substr(1, close - 1);
  }
  return authority.substr(0, authority.find(':'));
}

}  // namespace

bool parse_remote_url(const std::string& url, RemoteUrl& out) {
  std::string scheme;
  if (url.rfind("http://", 0) == 0)
    scheme = "http";
  else if (url.rfind("https://", 0) == 0)
    scheme = "https";
  else
    return false;
  for (char c : url)
    if (!url_char_ok(c)) return false;
  const size_t start = scheme.size() + 3;
  size_t end = url.find_first_of("/?#", start);
  if (end == std::string::npos) end = url.size();
  const std::string authority = url.substr(start, end - start);
  if (authority.empty() || authority.find('@') != std::string::npos) return false;
  if (authority[0] == ':') return false;
  const std::string host = authority_host(authority);
  if (host.empty()) return false;
  std::string rest = url.substr(end);
  rest = rest.substr(0, rest.find('#'));
  if (rest.empty() || rest[0] != '/') rest = "/" + rest;
  out.scheme_host_port = scheme + "://" + authority;
  out.host = host;
  out.path = rest;
  return true;
}

bool resolve_location(const RemoteUrl& base, const std::string& location, RemoteUrl& out) {
  if (location.rfind("http://", 0) == 0 || location.rfind("https://", 0) == 0)
    return parse_remote_url(location, out);
  if (location.rfind("//", 0) == 0) {
    const std::string scheme = base.scheme_host_port.substr(0, base.scheme_host_port.find(':'));
    return parse_remote_url(scheme + ":" + location, out);
  }
  if (location.empty() || location.find("://") != std::string::npos) return false;
  for (char c : location)
    if (!url_char_ok(c)) return false;
  out.scheme_host_port = base.scheme_host_port;
  out.host = base.host;
  if (location[0] == '/') {
    out.path = location;
  } else {  // relative to the base path's folder
    const std::string dir = base.path.substr(0, base.path.find('?'));
    out.path = dir.substr(0, dir.rfind('/') + 1) + location;
  }
  out.path = out.path.substr(0, out.path.find('#'));
  return true;
}

}  // namespace reel::server
