// Where the media of a request come from: data: URLs are decoded, and http(s) URLs fetched
// (only with --allow-remote-media), into files of a private temporary directory (removed when
// the server ends; each file when its request ends); local paths or file:// URLs are allowed
// only inside one of the --media-dir folders, checked after resolving links and "..". The
// decoders then read every medium by path.
#pragma once

#include <atomic>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "server/remote.h"
#include "server/request.h"

namespace reel::server {

// Files written for one request; removed when it is destroyed.
class TempFiles {
 public:
  TempFiles() = default;
  TempFiles(const TempFiles&) = delete;
  TempFiles& operator=(const TempFiles&) = delete;
  ~TempFiles();
  void add(std::string path) { paths_.push_back(std::move(path)); }

 private:
  std::vector<std::string> paths_;
};

class MediaResolver {
 public:
  // Throws reel::Error when a media folder does not exist or the temporary folder cannot be made.
  // remote: null refuses http(s) URLs; otherwise they are fetched within its limits.
  explicit MediaResolver(const std::vector<std::string>& media_dirs,
                         std::optional<RemoteLimits> remote = std::nullopt);
  ~MediaResolver();  // removes the temporary folder
  MediaResolver(const MediaResolver&) = delete;
  MediaResolver& operator=(const MediaResolver&) = delete;

  // Replaces every media part's URL with a file path. Throws ApiError: 400 for malformed or
  // unsupported URLs, 403 for paths outside every media folder. The places of `streams` (live
  // stream parts, which have no URL) are left alone.
  void resolve(std::vector<ChatTurn>& turns, TempFiles& files,
               const std::vector<StreamPart>& streams = {});
  const std::string& temp_dir() const { return temp_dir_; }

 private:
  std::string resolve_one(const std::string& url, bool is_video, const std::string& param,
                          TempFiles& files);
  std::string from_data_url(const std::string& url, bool is_video, const std::string& param,
                            TempFiles& files);
  std::string from_path(std::string path, const std::string& param);
  std::string from_remote(const std::string& url, bool is_video, const std::string& param,
                          TempFiles& files);
  // A new file in the temporary folder, open for writing (the descriptor is returned).
  int create_temp(bool is_video, const std::string& extension, TempFiles& files,
                  std::string& path);
  std::vector<std::string> dirs_;  // real paths, each ending in '/'
  std::optional<RemoteLimits> remote_;
  std::string temp_dir_;
  std::atomic<uint64_t> counter_{0};
};

// "%41" -> "A" (file:// URLs); false on a malformed escape or a NUL byte.
bool percent_decode(const std::string& in, std::string& out);

}  // namespace reel::server
