// Live streams in the server (POST/GET/DELETE /v1/streams): each registered stream is a
// LiveVideo (src/pipeline/live_window.h) reading its source and encoding into a rolling window
// on its own small thread pool, beside the engine (the model is shared and immutable). A chat
// completion asks about a stream through a {"type": "stream"} content part, which becomes a
// snapshot of its window as one video, built exactly as `reel watch` builds it.
#pragma once

#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "pipeline/chat_prompt.h"
#include "pipeline/live_window.h"
#include "server/request.h"

namespace reel::server {

struct StreamLimits {
  std::vector<std::string> sources;  // allowed URL prefixes; none: streams are off
  int max_streams = 4;
  int n_threads = 1;  // vision encoder threads per stream
};

class Streams {
 public:
  explicit Streams(StreamLimits limits) : limits_(std::move(limits)) {}
  ~Streams();  // stops every stream

  // The model, once loaded (streams are refused with 503 before).
  void set_model(std::shared_ptr<const Model> model, int n_ctx);

  // POST /v1/streams's body -> the new stream's object. Throws ApiError: 400 (bad fields, a
  // source that cannot be opened, a window that cannot fit the context), 403 (streams off or
  // the source not allowed), 429 (--max-streams reached), 503 (model loading).
  nlohmann::json add(const std::string& body);
  nlohmann::json list() const;
  nlohmann::json get(const std::string& id) const;  // 404 when unknown
  // Stops the stream's threads; its last object. 404 when unknown.
  nlohmann::json remove(const std::string& id);
  // A snapshot of the window (its last `last_s` seconds; 0: all). 404 when unknown, 400 while
  // the window has no frames yet; `param` names the part in errors.
  LiveGroups snapshot(const std::string& id, double last_s, const std::string& param) const;

  int active() const;
  uint64_t frames_encoded() const { return frames_encoded_.load(); }

 private:
  struct Stream {
    std::string id, source, transport;
    double fps = 2, window_s = 60;
    std::unique_ptr<LiveVideo> live;
  };
  static nlohmann::json describe(const Stream& s);
  std::shared_ptr<Stream> find(const std::string& id) const;

  StreamLimits limits_;
  std::shared_ptr<const Model> model_;
  int n_ctx_ = 0;
  mutable std::mutex mu_;
  std::map<std::string, std::shared_ptr<Stream>> streams_;
  int starting_ = 0;  // registrations opening their source (they count against the limit)
  std::atomic<uint64_t> next_{1};
  std::atomic<uint64_t> frames_encoded_{0};
};

// Puts each stream part's window snapshot (`windows`, in the order of `parts`) in its place in
// `turns` as a ChatPart::Kind::Window, so that build_chat_prompt makes the prompt with the
// request's images and videos around it: each window as one video, as `reel watch` asks about
// it (live_video_text: timestamps counted from its first frame). Throws reel::InternalError
// when the places and windows do not match.
void place_stream_windows(std::vector<ChatTurn>& turns, const std::vector<StreamPart>& parts,
                          const std::vector<LiveGroups>& windows);

}  // namespace reel::server
