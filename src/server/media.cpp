#include "server/media.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <climits>
#include <cstdlib>
#include <filesystem>

#include "common/error.h"

namespace reel::server {
namespace {

bool starts_with(const std::string& s, std::string_view prefix) {
  return s.rfind(prefix, 0) == 0;
}

// "image/png" -> ".png": a hint for decoders that look at names; letters and digits only.
std::string extension_of(std::string_view mime) {
  const size_t slash = mime.find('/');
  if (slash == std::string_view::npos) return "";
  std::string ext = ".";
  for (char c : mime.substr(slash + 1)) {
    if (!std::isalnum(static_cast<unsigned char>(c)) || ext.size() > 8) break;
    ext += c;
  }
  if (ext == ".jpeg") ext = ".jpg";
  if (ext == ".quicktime") ext = ".mov";
  return ext.size() > 1 ? ext : "";
}

void write_all(int fd, const std::string& bytes, const std::string& path) {
  size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) throw IoError(path + ": cannot write the medium");
    done += size_t(n);
  }
}

}  // namespace

bool percent_decode(const std::string& in, std::string& out) {
  out.clear();
  for (size_t i = 0; i < in.size(); ++i) {
    if (in[i] != '%') {
      out += in[i];
      continue;
    }
    if (i + 2 >= in.size() || !std::isxdigit(static_cast<unsigned char>(in[i + 1])) ||
        !std::isxdigit(static_cast<unsigned char>(in[i + 2])))
      return false;
    const char c = static_cast<char>(std::stoi(in.substr(i + 1, 2), nullptr, 16));
    if (c == '\0') return false;
    out += c;
    i += 2;
  }
  return true;
}

TempFiles::~TempFiles() {
  for (const std::string& p : paths_) ::unlink(p.c_str());
}

MediaResolver::MediaResolver(const std::vector<std::string>& media_dirs,
                             std::optional<RemoteLimits> remote)
    : remote_(remote) {
  for (const std::string& d : media_dirs) {
    char buf[PATH_MAX];
    if (!::realpath(d.c_str(), buf) || !std::filesystem::is_directory(buf))
      throw Error(d + ": the media folder does not exist");
    std::string real = buf;
    if (real.back() != '/') real += '/';
    dirs_.push_back(real);
  }
  const char* tmp = std::getenv("TMPDIR");
  std::string tmpl = std::string(tmp && *tmp ? tmp : "/tmp") + "/reel-serve-XXXXXX";
  if (!::mkdtemp(tmpl.data())) throw IoError("cannot create a temporary folder in " + tmpl);
  temp_dir_ = tmpl;
}

MediaResolver::~MediaResolver() {
  std::error_code ec;
  std::filesystem::remove_all(temp_dir_, ec);
}

void MediaResolver::resolve(std::vector<ChatTurn>& turns, TempFiles& files,
                            const std::vector<StreamPart>& streams) {
  auto is_stream = [&](size_t i, size_t j) {
    return std::any_of(streams.begin(), streams.end(),
                       [&](const StreamPart& s) { return s.turn == i && s.part == j; });
  };
  for (size_t i = 0; i < turns.size(); ++i)
    for (size_t j = 0; j < turns[i].parts.size(); ++j) {
      ChatPart& p = turns[i].parts[j];
      if (p.kind == ChatPart::Kind::Text || p.kind == ChatPart::Kind::Window || is_stream(i, j))
        continue;  // no URL: text, or a live window (already encoded)
      const bool video = p.kind == ChatPart::Kind::Video;
      const std::string param = "messages[" + std::to_string(i) + "].content[" + std::to_string(j) +
                                "]." + (video ? "video_url" : "image_url");
      p.text = resolve_one(p.text, video, param, files);
    }
}

std::string MediaResolver::resolve_one(const std::string& url, bool is_video,
                                       const std::string& param, TempFiles& files) {
  if (starts_with(url, "data:")) return from_data_url(url, is_video, param, files);
  if (starts_with(url, "http://") || starts_with(url, "https://")) {
    if (!remote_)
      throw ApiError(400,
                     "http(s) media URLs are off on this server (--allow-remote-media); send a "
                     "data: URL or a path in a media folder",
                     param, "unsupported_url");
    return from_remote(url, is_video, param, files);
  }
  if (starts_with(url, "file://")) {
    std::string rest = url.substr(7);
    if (starts_with(rest, "localhost/")) rest = rest.substr(9);
    std::string path;
    if (rest.empty() || rest[0] != '/' || !percent_decode(rest, path))
      throw ApiError(400, "malformed file:// URL", param);
    return from_path(path, param);
  }
  if (url.find("://") != std::string::npos)
    throw ApiError(400, "unsupported media URL scheme", param, "unsupported_url");
  return from_path(url, param);
}

std::string MediaResolver::from_data_url(const std::string& url, bool is_video,
                                         const std::string& param, TempFiles& files) {
  const size_t comma = url.find(',');
  if (comma == std::string::npos) throw ApiError(400, "malformed data: URL (no comma)", param);
  const std::string_view header = std::string_view(url).substr(5, comma - 5);
  if (header.size() < 7 || header.substr(header.size() - 7) != ";base64")
    throw ApiError(400, "data: URLs must be base64 (;base64,)", param);
  const std::string_view mime = header.substr(0, header.find(';'));
  std::string bytes;
  if (!decode_base64(std::string_view(url).substr(comma + 1), bytes))
    throw ApiError(400, "malformed base64 in the data: URL", param);
  if (bytes.empty()) throw ApiError(400, "the data: URL holds no data", param);
  std::string path;
  const int fd = create_temp(is_video, extension_of(mime), files, path);
  try {
    write_all(fd, bytes, path);
  } catch (...) {
    ::close(fd);
    throw;
  }
  if (::close(fd) != 0) throw IoError("cannot write a temporary file for a medium");
  return path;
}

int MediaResolver::create_temp(bool is_video, const std::string& extension, TempFiles& files,
                               std::string& path) {
  path = temp_dir_ + "/" + (is_video ? "video-" : "image-") + std::to_string(++counter_) + extension;
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) throw IoError("cannot create a temporary file for a medium");
  files.add(path);
  return fd;
}

// The decoders sniff the bytes; the URL's extension is only a hint for them.
std::string MediaResolver::from_remote(const std::string& url, bool is_video,
                                       const std::string& param, TempFiles& files) {
  std::string ext;
  const std::string name = url.substr(0, url.find_first_of("?#"));
  if (const size_t dot = name.rfind('.'); dot != std::string::npos && name.size() - dot <= 6) {
    ext = name.substr(dot);
    for (char c : ext.substr(1))
      if (!std::isalnum(static_cast<unsigned char>(c))) ext.clear();
  }
  std::string path;
  const int fd = create_temp(is_video, ext, files, path);
  try {
    fetch_remote(url, fd, *remote_, param);
  } catch (...) {
    ::close(fd);
    throw;
  }
  if (::close(fd) != 0) throw IoError("cannot write a temporary file for a medium");
  return path;
}

std::string MediaResolver::from_path(std::string path, const std::string& param) {
  if (dirs_.empty())
    throw ApiError(403, "local media paths are not allowed (the server has no media folder)", param,
                   "path_not_allowed");
  if (path.find('\0') != std::string::npos) throw ApiError(400, "malformed path", param);
  char buf[PATH_MAX];
  const bool exists = path.size() < PATH_MAX && ::realpath(path.c_str(), buf);
  // A missing file: its lexical form decides (so "dir/../x" is not inside dir).
  std::error_code ec;
  const std::string real =
      exists ? std::string(buf) : std::filesystem::absolute(path, ec).lexically_normal().string();
  for (const std::string& d : dirs_)
    if (starts_with(real, d)) {
      if (!exists) throw ApiError(400, "no such medium in the media folder", param);
      return real;
    }
  throw ApiError(403, "the path is outside every media folder", param, "path_not_allowed");
}

}  // namespace reel::server
