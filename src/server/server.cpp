#include "server/server.h"

#include <httplib.h>
#include <pthread.h>
#include <signal.h>

#include <chrono>
#include <cstdio>
#include <map>
#include <random>
#include <nlohmann/json.hpp>
#include <thread>

#include "common/error.h"
#include "server/engine.h"
#include "server/streams.h"

namespace reel::server {
namespace {

std::string random_hex(int bytes) {
  std::random_device rd;
  std::string out;
  for (int i = 0; i < bytes; ++i) {
    char buf[3];
    std::snprintf(buf, sizeof buf, "%02x", unsigned(rd() & 0xff));
    out += buf;
  }
  return out;
}

std::optional<RemoteLimits> remote_limits(const ServerOptions& o) {
  if (!o.allow_remote_media) return std::nullopt;
  return RemoteLimits{int64_t(o.remote_media_max_mb) << 20, o.remote_media_timeout_s};
}


using nlohmann::json;

std::string dump(const json& j) {
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

void send_error(httplib::Response& res, const ApiError& e) {
  res.status = e.status();
  res.set_content(error_body(e), "application/json");
}

// Equal strings in time that depends only on their lengths, not on where they differ.
bool constant_time_equal(std::string_view a, std::string_view b) {
  unsigned char diff = a.size() == b.size() ? 0 : 1;
  const size_t n = std::max(a.size(), b.size());
  for (size_t i = 0; i < n; ++i)
    diff |= static_cast<unsigned char>((i < a.size() ? a[i] : 0) ^ (i < b.size() ? b[i] : 0));
  return diff == 0;
}

int64_t unix_now() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// What the per-request log line says beyond the status.
struct LogEntry {
  std::string id;
  std::shared_ptr<Job> job;
  Clock::time_point t0 = Clock::now();
};

class Server {
 public:
  explicit Server(const ServerOptions& o)
      : opts_(o),
        engine_(o, metrics_),
        resolver_(o.media_dirs, remote_limits(o)),
        streams_(StreamLimits{o.stream_sources, o.max_streams, o.stream_threads}) {}

  int run();

 private:
  void routes();
  void chat(const httplib::Request& req, httplib::Response& res);
  void stream_routes();
  // The snapshots of a request's stream parts; throws ApiError.
  std::vector<LiveGroups> stream_windows(const ChatRequest& r) const;
  void respond_whole(const std::shared_ptr<Job>& job, httplib::Response& res);
  void respond_stream(const std::shared_ptr<Job>& job, httplib::Response& res);
  json chunk(const Job& job, json delta, const json& finish_reason) const;
  json completion(const Job& job) const;
  std::string metrics_text();
  bool authorized(const httplib::Request& req) const;
  void log(const httplib::Request& req, const httplib::Response& res);
  LogEntry& entry(const httplib::Request& req, bool fresh = false);

  ServerOptions opts_;
  Metrics metrics_;
  Engine engine_;
  MediaResolver resolver_;
  Streams streams_;
  httplib::Server http_;
  ParseLimits limits_;
  std::atomic<uint64_t> next_id_{1};
  // Random per process, so that replicas behind one proxy never hand out the same response id.
  const std::string instance_ = random_hex(6);
  std::mutex log_mu_;
  std::map<const httplib::Request*, LogEntry> log_;
};

// The log entry of a request, made when its routing starts. Entries of requests whose
// response failed half-way are never logged; they are dropped after an hour so the map stays
// bounded.
LogEntry& Server::entry(const httplib::Request& req, bool fresh) {
  std::lock_guard lk(log_mu_);
  if (fresh && log_.size() > 1024)
    std::erase_if(log_, [](const auto& kv) { return ms_since(kv.second.t0) > 3600e3; });
  LogEntry& e = log_[&req];
  if (fresh || e.id.empty())
    e = LogEntry{"req-" + std::to_string(next_id_++), nullptr, Clock::now()};
  return e;
}

bool Server::authorized(const httplib::Request& req) const {
  if (opts_.api_key.empty()) return true;
  const std::string header = req.get_header_value("Authorization");
  return constant_time_equal(header, "Bearer " + opts_.api_key);
}

void Server::log(const httplib::Request& req, const httplib::Response& res) {
  metrics_.count_status(res.status);
  LogEntry e;
  {
    std::lock_guard lk(log_mu_);
    const auto it = log_.find(&req);
    if (it != log_.end()) {
      e = std::move(it->second);
      log_.erase(it);
    }
  }
  int prompt = 0, completion = 0;
  if (e.job) {
    std::lock_guard lk(e.job->mu);
    prompt = e.job->prompt_tokens;
    completion = e.job->completion_tokens;
  }
  std::fprintf(stderr,
               "reel serve: %s %s %s status=%d prompt_tokens=%d completion_tokens=%d ms=%.0f\n",
               e.id.empty() ? "-" : e.id.c_str(), req.method.c_str(), req.path.c_str(), res.status,
               prompt, completion, ms_since(e.t0));
}

json Server::chunk(const Job& job, json delta, const json& finish_reason) const {
  json c = {{"id", job.id},
            {"object", "chat.completion.chunk"},
            {"created", unix_now()},
            {"model", engine_.model_name()},
            {"choices", json::array({{{"index", 0},
                                      {"delta", std::move(delta)},
                                      {"logprobs", nullptr},
                                      {"finish_reason", finish_reason}}})}};
  if (job.req.include_usage) c["usage"] = nullptr;
  return c;
}

json usage_of(const Job& job) {
  return {{"prompt_tokens", job.prompt_tokens},
          {"completion_tokens", job.completion_tokens},
          {"total_tokens", job.prompt_tokens + job.completion_tokens},
          {"prompt_tokens_details", {{"cached_tokens", job.cached_tokens}}}};
}

void Server::chat(const httplib::Request& req, httplib::Response& res) {
  LogEntry& log_entry = entry(req);
  if (!engine_.ready()) return send_error(res, ApiError(503, "the model is still loading"));
  auto job = std::make_shared<Job>();
  try {
    job->req = parse_chat_request(req.body, limits_);
    job->windows = stream_windows(job->req);
    resolver_.resolve(job->req.turns, job->files, job->req.streams);
  } catch (const std::exception& e) {
    return send_error(res, api_error_of(e));
  }
  job->id = "chatcmpl-" + instance_ + "-" + log_entry.id.substr(4);
  log_entry.id = job->id;
  log_entry.job = job;
  if (!engine_.enqueue(job)) {
    res.set_header("Retry-After", "1");
    return send_error(
        res, ApiError(429, "the server is busy: every sequence is taken and the queue is full", "",
                      "queue_full"));
  }
  {
    std::unique_lock lk(job->mu);
    job->cv.wait(lk, [&] { return job->state != Job::State::Queued; });
    if (job->error) return send_error(res, *job->error);
  }
  if (job->req.stream) return respond_stream(job, res);
  respond_whole(job, res);
}

std::vector<LiveGroups> Server::stream_windows(const ChatRequest& r) const {
  std::vector<LiveGroups> out;
  if (r.streams.empty()) return out;
  for (const StreamPart& p : r.streams) out.push_back(streams_.snapshot(p.id, p.last_s, p.param));
  return out;
}

void Server::stream_routes() {
  auto json_reply = [](httplib::Response& res, int status, const json& j) {
    res.status = status;
    res.set_content(dump(j), "application/json");
  };
  http_.Post("/v1/streams",
             [this, json_reply](const httplib::Request& req, httplib::Response& res) {
               json_reply(res, 201, streams_.add(req.body));
             });
  http_.Get("/v1/streams", [this, json_reply](const httplib::Request&, httplib::Response& res) {
    json_reply(res, 200, streams_.list());
  });
  http_.Get(R"(/v1/streams/([^/]+))",
            [this, json_reply](const httplib::Request& req, httplib::Response& res) {
              json_reply(res, 200, streams_.get(req.matches[1]));
            });
  http_.Delete(R"(/v1/streams/([^/]+))",
               [this, json_reply](const httplib::Request& req, httplib::Response& res) {
                 json_reply(res, 200, streams_.remove(req.matches[1]));
               });
}

json Server::completion(const Job& job) const {
  return {{"id", job.id},
          {"object", "chat.completion"},
          {"created", unix_now()},
          {"model", engine_.model_name()},
          {"choices", json::array({{{"index", 0},
                                    {"message", {{"role", "assistant"}, {"content", job.text}}},
                                    {"logprobs", nullptr},
                                    {"finish_reason", job.finish_reason}}})},
          {"usage", usage_of(job)}};
}

// A whole answer. One that takes longer than a moment goes out chunked, with a space (JSON
// allows leading whitespace) every half second until it is ready: a write that fails means the
// client went away, and its request is cancelled. Its status is then 200 whatever happens; an
// error after that point comes as the error object in the body.
void Server::respond_whole(const std::shared_ptr<Job>& job, httplib::Response& res) {
  {
    std::unique_lock lk(job->mu);
    if (job->cv.wait_for(lk, std::chrono::seconds(1),
                         [&] { return job->state == Job::State::Done; })) {
      if (job->error) return send_error(res, *job->error);
      return res.set_content(dump(completion(*job)), "application/json");
    }
  }
  res.set_chunked_content_provider(
      "application/json",
      [this, job](size_t, httplib::DataSink& sink) {
        while (true) {
          {
            std::unique_lock lk(job->mu);
            if (job->cv.wait_for(lk, std::chrono::milliseconds(500),
                                 [&] { return job->state == Job::State::Done; }))
              break;
          }
          if (!sink.write(" ", 1)) {
            job->cancel = true;
            return false;
          }
        }
        const std::string body = job->error ? error_body(*job->error) : dump(completion(*job));
        if (!sink.write(body.data(), body.size())) return false;
        sink.done();
        return true;
      },
      [job](bool success) {
        if (!success) job->cancel = true;
      });
}

void Server::respond_stream(const std::shared_ptr<Job>& job, httplib::Response& res) {
  res.set_header("Cache-Control", "no-cache");
  res.set_header("X-Accel-Buffering", "no");  // nginx and friends: pass each event on at once
  res.set_chunked_content_provider(
      "text/event-stream",
      [this, job](size_t, httplib::DataSink& sink) {
        auto send = [&](const std::string& data) {
          const std::string event = "data: " + data + "\n\n";
          if (sink.write(event.data(), event.size())) return true;
          job->cancel = true;  // the client went away: free its sequence
          return false;
        };
        if (!send(dump(chunk(*job, {{"role", "assistant"}, {"content", ""}}, nullptr))))
          return false;
        while (true) {
          std::string text;
          bool done;
          {
            std::unique_lock lk(job->mu);
            job->cv.wait(lk, [&] { return !job->text.empty() || job->state == Job::State::Done; });
            text.swap(job->text);
            done = job->state == Job::State::Done;
          }
          if (!text.empty() && !send(dump(chunk(*job, {{"content", text}}, nullptr)))) return false;
          if (done) break;
        }
        if (job->error) {
          send(error_body(*job->error));
        } else {
          if (!send(dump(chunk(*job, json::object(), job->finish_reason)))) return false;
          if (job->req.include_usage) {
            json u = chunk(*job, json::object(), nullptr);
            u["choices"] = json::array();
            u["usage"] = usage_of(*job);
            if (!send(dump(u))) return false;
          }
        }
        send("[DONE]");
        sink.done();
        return true;
      },
      [job](bool success) {
        if (!success) job->cancel = true;
      });
}

std::string Server::metrics_text() {
  std::string out;
  auto metric = [&](const char* name, const char* type, const char* help, double value) {
    char line[256];
    std::snprintf(line, sizeof line, "# HELP %s %s\n# TYPE %s %s\n%s %.6g\n", name, help, name,
                  type, name, value);
    out += line;
  };
  out +=
      "# HELP reel_requests_total HTTP requests answered, by status.\n# TYPE reel_requests_total "
      "counter\n";
  {
    std::lock_guard lk(metrics_.mu);
    for (const auto& [status, n] : metrics_.by_status)
      out += "reel_requests_total{status=\"" + std::to_string(status) + "\"} " + std::to_string(n) +
             "\n";
  }
  metric("reel_prompt_tokens_total", "counter", "Prompt tokens of finished requests.",
         double(metrics_.prompt_tokens));
  metric("reel_prompt_tokens_cached_total", "counter",
         "Prompt tokens taken from a sequence's KV cache.", double(metrics_.cached_tokens));
  metric("reel_completion_tokens_total", "counter", "Generated tokens.",
         double(metrics_.completion_tokens));
  metric("reel_queue_depth", "gauge", "Requests waiting for a sequence.", engine_.queued());
  metric("reel_active_sessions", "gauge", "Requests holding a sequence.", engine_.running());
  metric("reel_decode_tokens_per_second", "gauge",
         "Output tokens per second of engine time over the last 10 seconds.",
         metrics_.decode_tps.load());
  metric("reel_prefill_tokens_per_second", "gauge", "Prompt tokens per second of the last request.",
         metrics_.prefill_tps.load());
  metric("reel_engine_busy_seconds_total", "counter", "Engine time in forward passes.",
         double(metrics_.busy_us) / 1e6);
  metric("reel_vision_encode_ms_total", "counter", "Vision encoder time.",
         double(metrics_.vision_encode_us) / 1e3);
  metric("reel_media_encoded_total", "counter", "Images and videos encoded.",
         double(metrics_.media_encoded));
  metric("reel_media_memo_hits_total", "counter", "Images and videos whose encoding was reused.",
         double(metrics_.media_memo_hits));
  metric("reel_media_cache_hits_total", "counter",
         "Images and videos whose encoding was read from the media cache folder.",
         double(metrics_.media_cache_hits));
  metric("reel_streams_active", "gauge", "Live streams registered (/v1/streams).",
         streams_.active());
  metric("reel_stream_frames_encoded_total", "counter",
         "Frames of live streams encoded into their windows.", double(streams_.frames_encoded()));
  metric("reel_ready", "gauge", "1 once the model is loaded.", engine_.ready() ? 1 : 0);
  return out;
}

void Server::routes() {
  const size_t threads = size_t(std::max(8, 2 * (opts_.parallel + opts_.queue) + 4));
  http_.new_task_queue = [threads] { return new httplib::ThreadPool(threads); };
  http_.set_payload_max_length(size_t(opts_.max_body_mb) << 20);
  http_.set_pre_routing_handler([this](const httplib::Request& req, httplib::Response& res) {
    entry(req, /*fresh=*/true);
    const bool protected_route = req.path.rfind("/v1/", 0) == 0 || req.path == "/metrics";
    if (protected_route && !authorized(req)) {
      send_error(res, ApiError(401, "invalid or missing API key (Authorization: Bearer KEY)", "",
                               "invalid_api_key"));
      return httplib::Server::HandlerResponse::Handled;
    }
    return httplib::Server::HandlerResponse::Unhandled;
  });
  http_.set_error_handler(httplib::Server::HandlerWithResponse(
      [this](const httplib::Request& req, httplib::Response& res) {
        if (!res.body.empty()) return httplib::Server::HandlerResponse::Unhandled;
        if (res.status == 413)
          send_error(res, ApiError(413,
                                   "the request body is larger than " +
                                       std::to_string(opts_.max_body_mb) + " MiB",
                                   "", "body_too_large"));
        else if (res.status == 404)
          send_error(res, ApiError(404, "no route " + req.method + " " + req.path));
        else
          send_error(res, ApiError(res.status, "the request could not be served"));
        return httplib::Server::HandlerResponse::Handled;
      }));
  http_.set_exception_handler(
      [](const httplib::Request&, httplib::Response& res, std::exception_ptr ep) {
        try {
          std::rethrow_exception(ep);
        } catch (const std::exception& e) {
          send_error(res, api_error_of(e));
        } catch (...) {
          send_error(res, ApiError(500, "internal error"));
        }
      });
  http_.set_logger(
      [this](const httplib::Request& req, const httplib::Response& res) { log(req, res); });
  http_.Post("/v1/chat/completions",
             [this](const httplib::Request& req, httplib::Response& res) { chat(req, res); });
  http_.Get("/v1/models", [this](const httplib::Request&, httplib::Response& res) {
    if (!engine_.ready()) return send_error(res, ApiError(503, "the model is still loading"));
    json m = {{"id", engine_.model_name()},
              {"object", "model"},
              {"created", engine_.created()},
              {"owned_by", "reel"}};
    res.set_content(dump({{"object", "list"}, {"data", json::array({m})}}), "application/json");
  });
  http_.Get("/health", [this](const httplib::Request&, httplib::Response& res) {
    res.status = engine_.ready() ? 200 : 503;
    res.set_content(dump({{"status", engine_.ready() ? "ok" : "loading"}}), "application/json");
  });
  http_.Get("/metrics", [this](const httplib::Request&, httplib::Response& res) {
    res.set_content(metrics_text(), "text/plain; version=0.0.4");
  });
  stream_routes();
}

int Server::run() {
  routes();
  int port = opts_.port;
  if (port == 0) {
    port = http_.bind_to_any_port(opts_.host);
    if (port < 0) throw Error("cannot listen on " + opts_.host);
  } else if (!http_.bind_to_port(opts_.host, port)) {
    throw Error("cannot listen on " + opts_.host + ":" + std::to_string(port));
  }
  // Signals go to one thread that stops everything in order; the others never see them.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  std::signal(SIGPIPE, SIG_IGN);
  std::thread listener([this] { http_.listen_after_bind(); });
  std::fprintf(stderr, "reel serve: listening on http://%s:%d\n", opts_.host.c_str(), port);

  int rc = 0;
  std::thread engine_thread([this, &rc] {
    try {
      engine_.load();
      streams_.set_model(engine_.model(), engine_.n_ctx());
      std::fprintf(stderr, "reel serve: ready (%s, %d parallel, queue %d)\n",
                   engine_.model_name().c_str(), opts_.parallel, opts_.queue);
      engine_.run();
    } catch (const std::exception& e) {
      std::fprintf(stderr, "reel serve: %s\n", e.what());
      rc = 1;
      kill(getpid(), SIGTERM);  // wake the signal thread
    }
  });
  int sig = 0;
  sigwait(&signals, &sig);
  std::fprintf(stderr, "reel serve: stopping\n");
  engine_.stop();
  engine_thread.join();
  http_.stop();
  listener.join();
  return rc;
}

}  // namespace

int run_server(const ServerOptions& options) {
  if (options.parallel < 1) throw Error("parallel must be at least 1");
  if (options.queue < 0) throw Error("queue must be at least 0");
  if (options.max_body_mb < 1) throw Error("the body limit must be at least 1 MiB");
  Server server(options);
  return server.run();
}

}  // namespace reel::server
