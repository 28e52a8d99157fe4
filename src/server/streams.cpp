#include "server/streams.h"

#include <algorithm>
#include <cstdio>
#include <random>

#include "common/error.h"
#include "pipeline/session.h"

namespace reel::server {
namespace {

using nlohmann::json;

constexpr double kMaxWindowS = 3600;

std::string random_suffix() {
  std::random_device rd;
  char buf[17];
  std::snprintf(buf, sizeof buf, "%08x%08x", unsigned(rd()), unsigned(rd()));
  return buf;
}

[[noreturn]] void bad(const std::string& message, const std::string& param) {
  throw ApiError(400, message, param);
}

double number_field(const json& body, const char* name, double fallback, double lo, double hi) {
  const auto it = body.find(name);
  if (it == body.end() || it->is_null()) return fallback;
  if (!it->is_number() || !(it->get<double>() >= lo) || it->get<double>() > hi) {
    char range[96];
    std::snprintf(range, sizeof range, " must be a number from %g to %g", lo, hi);
    bad(std::string(name) + range, name);
  }
  return it->get<double>();
}

json wall_or_null(const LiveGroups& g, bool first) {
  if (g.empty()) return nullptr;
  return iso8601_utc(first ? g.front()->wall0 : g.back()->wall1);
}

}  // namespace

Streams::~Streams() {
  std::map<std::string, std::shared_ptr<Stream>> all;
  {
    std::lock_guard lk(mu_);
    all.swap(streams_);
  }
  for (auto& [id, s] : all) s->live->stop();
}

void Streams::set_model(std::shared_ptr<const Model> model, int n_ctx) {
  std::lock_guard lk(mu_);
  model_ = std::move(model);
  n_ctx_ = n_ctx;
}

json Streams::describe(const Stream& s) {
  const LiveGroups g = s.live->window().snapshot();
  std::string state = "running";
  if (s.live->error())
    state = "failed";
  else if (s.live->finished())
    state = "ended";
  else if (g.empty())
    state = "starting";
  json j = {{"id", s.id},
            {"object", "stream"},
            {"source", s.source},
            {"fps", s.fps},
            {"window_seconds", s.window_s},
            {"state", state},
            {"frames", live_frames(g)},
            {"window_start", wall_or_null(g, true)},
            {"window_end", wall_or_null(g, false)}};
  if (!s.transport.empty()) j["rtsp_transport"] = s.transport;
  if (auto e = s.live->error()) {
    try {
      std::rethrow_exception(e);
    } catch (const std::exception& ex) {
      j["error"] = ex.what();
    }
  }
  return j;
}

json Streams::add(const std::string& body) {
  if (limits_.sources.empty())
    throw ApiError(403, "live streams are off on this server (start it with --stream-source)", "",
                   "streams_off");
  if (json_depth(body, 8) > 8) bad("the JSON is nested more than 8 levels deep", "");
  const json j = json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) bad("the body must be a JSON object", "");
  const auto src = j.find("source");
  if (src == j.end() || !src->is_string() || src->get<std::string>().empty())
    bad("source must be a stream URL", "source");
  auto s = std::make_shared<Stream>();
  s->source = src->get<std::string>();
  if (s->source.size() > 2048) bad("source is longer than 2048 bytes", "source");
  const bool allowed =
      std::any_of(limits_.sources.begin(), limits_.sources.end(),
                  [&](const std::string& p) { return s->source.rfind(p, 0) == 0; });
  if (!allowed)
    throw ApiError(403, "the source does not start with any of the server's --stream-source",
                   "source", "source_not_allowed");
  s->fps = number_field(j, "fps", 2, 0.01, 60);
  s->window_s = number_field(j, "window_seconds", 60, 1, kMaxWindowS);
  if (const auto t = j.find("rtsp_transport"); t != j.end() && !t->is_null()) {
    if (!t->is_string() || (*t != "tcp" && *t != "udp"))
      bad("rtsp_transport must be tcp or udp", "rtsp_transport");
    s->transport = t->get<std::string>();
  }

  std::shared_ptr<const Model> model;
  int n_ctx = 0;
  {
    std::lock_guard lk(mu_);
    if (!model_) throw ApiError(503, "the model is still loading");
    if (!model_->has_vision())
      throw ApiError(400, "live streams need a vision model (--mmproj)", "source");
    if (int(streams_.size()) + starting_ >= limits_.max_streams)
      throw ApiError(429,
                     "the server already watches " + std::to_string(limits_.max_streams) +
                         " streams (--max-streams); delete one first",
                     "", "too_many_streams");
    ++starting_;
    model = model_;
    n_ctx = n_ctx_;
  }
  struct Unreserve {
    Streams& self;
    ~Unreserve() {
      std::lock_guard lk(self.mu_);
      --self.starting_;
    }
  } unreserve{*this};

  s->id = "stream-" + random_suffix();
  LiveOptions lo;
  lo.fps = s->fps;
  lo.window_s = s->window_s;
  try {
    // As `reel watch` sizes its frames: a full window, the template and a question of about
    // 64 tokens, and the chat's answer reserve fit one sequence's context.
    lo.group_tokens =
        live_group_token_budget(s->window_s, s->fps, n_ctx, std::min(512, n_ctx / 4), 64);
  } catch (const Error& e) {
    bad(e.what(), "window_seconds");
  }
  lo.n_threads = std::max(1, limits_.n_threads);
  if (!s->transport.empty()) lo.stream.rtsp_transport = s->transport;
  lo.reconnect = true;
  const std::string id = s->id;
  lo.note = [id](const std::string& line) {
    std::fprintf(stderr, "reel serve: %s: %s\n", id.c_str(), line.c_str());
  };
  lo.on_group = [this](const LiveGroup& g) { frames_encoded_ += uint64_t(g.n_frames); };
  s->live = std::make_unique<LiveVideo>(model->vision(), lo);
  try {
    s->live->start(s->source);
  } catch (const Error& e) {
    throw ApiError(400, std::string("cannot open the stream: ") + e.what(), "source",
                   "stream_unavailable");
  }
  std::fprintf(stderr, "reel serve: %s: watching %s\n", id.c_str(), s->source.c_str());
  json out = describe(*s);
  std::lock_guard lk(mu_);
  streams_[s->id] = std::move(s);
  return out;
}

std::shared_ptr<Streams::Stream> Streams::find(const std::string& id) const {
  std::lock_guard lk(mu_);
  const auto it = streams_.find(id);
  if (it == streams_.end()) throw ApiError(404, "no stream '" + id + "'", "id", "stream_not_found");
  return it->second;
}

json Streams::list() const {
  std::vector<std::shared_ptr<Stream>> all;
  {
    std::lock_guard lk(mu_);
    for (const auto& [id, s] : streams_) all.push_back(s);
  }
  json data = json::array();
  for (const auto& s : all) data.push_back(describe(*s));
  return {{"object", "list"}, {"data", std::move(data)}};
}

json Streams::get(const std::string& id) const {
  return describe(*find(id));
}

json Streams::remove(const std::string& id) {
  std::shared_ptr<Stream> s;
  {
    std::lock_guard lk(mu_);
    const auto it = streams_.find(id);
    if (it == streams_.end())
      throw ApiError(404, "no stream '" + id + "'", "id", "stream_not_found");
    s = std::move(it->second);
    streams_.erase(it);
  }
  s->live->stop();  // joins its reader and encoder; snapshots taken before stay valid
  json out = describe(*s);
  out["state"] = "deleted";
  out["deleted"] = true;
  std::fprintf(stderr, "reel serve: %s: deleted\n", id.c_str());
  return out;
}

LiveGroups Streams::snapshot(const std::string& id, double last_s, const std::string& param) const {
  std::shared_ptr<Stream> s;
  try {
    s = find(id);
  } catch (const ApiError& e) {
    throw ApiError(404, e.what(), param + ".stream.id", "stream_not_found");
  }
  LiveGroups g = s->live->window().snapshot(last_s);
  if (g.empty())
    throw ApiError(400, "stream '" + id + "' has no frames yet; ask again in a moment",
                   param + ".stream.id", "stream_empty");
  return g;
}

int Streams::active() const {
  std::lock_guard lk(mu_);
  return int(streams_.size());
}

void place_stream_windows(std::vector<ChatTurn>& turns, const std::vector<StreamPart>& parts,
                          const std::vector<LiveGroups>& windows) {
  if (parts.size() != windows.size()) throw InternalError("stream parts and windows differ");
  for (size_t i = 0; i < parts.size(); ++i) {
    const StreamPart& p = parts[i];
    if (p.turn >= turns.size() || p.part >= turns[p.turn].parts.size() || windows[i].empty())
      throw InternalError("a stream part out of place");
    ChatPart& place = turns[p.turn].parts[p.part];
    place.kind = ChatPart::Kind::Window;
    place.text.clear();
    place.window = std::make_shared<const LiveGroups>(windows[i]);
  }
}

}  // namespace reel::server
