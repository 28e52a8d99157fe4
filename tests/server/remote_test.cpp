// http(s) media URLs (--allow-remote-media): URL parsing and redirect resolution, and fetches
// from an in-process HTTP server on loopback: a body arrives whole, redirects are followed (at
// most kMaxRedirects), error statuses, a body over the limit (announced or not), a server too
// slow for the deadline and a closed port each become the ApiError the client is sent; host names
// are looked up within the deadline (a resolver that does not answer cannot hold a request).
#include "server/remote.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <httplib.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <string>
#include <thread>

#include "server/media.h"
#include "server/request.h"

namespace reel::server {
namespace {

TEST(RemoteUrl, ParsesHttpAndHttpsOnly) {
  RemoteUrl u;
  ASSERT_TRUE(parse_remote_url("https://example.com:8443/a/b.mp4?x=1#frag", u));
  EXPECT_EQ(u.scheme_host_port, "https://example.com:8443");
  EXPECT_EQ(u.host, "example.com");
  EXPECT_EQ(u.path, "/a/b.mp4?x=1");
  ASSERT_TRUE(parse_remote_url("http://example.com", u));
  EXPECT_EQ(u.path, "/");
  ASSERT_TRUE(parse_remote_url("http://[::1]:8080?q", u));
  EXPECT_EQ(u.scheme_host_port, "http://[::1]:8080");
  EXPECT_EQ(u.host, "::1");
  EXPECT_EQ(u.path, "/?q");
  for (const char* bad :
       {"ftp://x/y", "http://", "http:///x", "http://user:pw@host/x", "http://[::1/x",
        "http://[]:80/x", "http://host/a b", "http://:80/x", "https//x", "http://h/\x01"})
    EXPECT_FALSE(parse_remote_url(bad, u)) << bad;
}

TEST(RemoteUrl, RedirectsResolveAgainstTheBase) {
  RemoteUrl base, out;
  ASSERT_TRUE(parse_remote_url("http://h:1/dir/file.mp4?q=1", base));
  ASSERT_TRUE(resolve_location(base, "/root.mp4", out));
  EXPECT_EQ(out.scheme_host_port, "http://h:1");
  EXPECT_EQ(out.path, "/root.mp4");
  ASSERT_TRUE(resolve_location(base, "other.mp4", out));
  EXPECT_EQ(out.path, "/dir/other.mp4");
  EXPECT_EQ(out.host, "h");
  ASSERT_TRUE(resolve_location(base, "https://x/y", out));
  EXPECT_EQ(out.scheme_host_port, "https://x");
  ASSERT_TRUE(resolve_location(base, "//cdn/z", out));
  EXPECT_EQ(out.scheme_host_port, "http://cdn");
  EXPECT_EQ(out.host, "cdn");
  EXPECT_FALSE(resolve_location(base, "file:///etc/passwd", out));
  EXPECT_FALSE(resolve_location(base, "", out));
}

// A name server that does not answer must not hold a request past its deadline: the lookup runs
// on its own thread, and the wait for it ends at the deadline.
TEST(ResolveHost, DeadlineBoundsASlowLookup) {
  using namespace std::chrono;
  const HostLookup slow = [](const std::string&) {
    std::this_thread::sleep_for(seconds(3));
    return ResolvedHost{"192.0.2.1", ""};
  };
  const auto t0 = steady_clock::now();
  EXPECT_FALSE(resolve_host("media.example", t0 + milliseconds(200), slow).has_value());
  // The deadline plus scheduling; far below the lookup's 3 s (slack for sanitizers).
  EXPECT_LT(steady_clock::now() - t0, milliseconds(1500));
  const HostLookup quick = [](const std::string& h) {
    return ResolvedHost{h == "media.example" ? "192.0.2.7" : "", "unknown"};
  };
  const auto found = resolve_host("media.example", steady_clock::now() + seconds(5), quick);
  ASSERT_TRUE(found.has_value());
  EXPECT_EQ(found->address, "192.0.2.7");
  EXPECT_EQ(resolve_host("elsewhere", steady_clock::now() + seconds(5), quick)->error, "unknown");
}

TEST(ResolveHost, NumericHostsAreNotLookedUp) {
  const HostLookup never = [](const std::string&) { return ResolvedHost{"", "looked up"}; };
  const auto far = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  for (const char* ip : {"127.0.0.1", "::1", "2001:db8::5"}) {
    const auto r = resolve_host(ip, far, never);
    ASSERT_TRUE(r.has_value());
    EXPECT_EQ(r->address, ip);
  }
  EXPECT_EQ(system_lookup("localhost").address, "127.0.0.1");  // /etc/hosts; IPv4 preferred
}

class RemoteFetch : public ::testing::Test {
 protected:
  void SetUp() override {
    body_ = std::string(100000, 'x');
    server_.Get("/ok", [this](const httplib::Request&, httplib::Response& r) {
      r.set_content(body_, "video/mp4");
    });
    server_.Get("/missing", [](const httplib::Request&, httplib::Response& r) { r.status = 404; });
    server_.Get(R"(/hop/(\d+))", [](const httplib::Request& q, httplib::Response& r) {
      const int n = std::stoi(q.matches[1]);
      r.set_redirect(n == 0 ? "/ok" : "/hop/" + std::to_string(n - 1));
    });
    server_.Get("/relative",
                [](const httplib::Request&, httplib::Response& r) { r.set_redirect("ok"); });
    server_.Get("/to-file", [](const httplib::Request&, httplib::Response& r) {
      r.set_redirect("file:///etc/passwd");
    });
    server_.Get("/chunked", [](const httplib::Request&, httplib::Response& r) {
      // No Content-Length: the limit is found while reading.
      r.set_chunked_content_provider("video/mp4", [](size_t offset, httplib::DataSink& sink) {
        const std::string chunk(4096, 'y');
        sink.write(chunk.data(), chunk.size());
        if (offset > (size_t(4) << 20)) sink.done();
        return true;
      });
    });
    server_.Get("/slow", [](const httplib::Request&, httplib::Response& r) {
      r.set_chunked_content_provider("video/mp4", [](size_t offset, httplib::DataSink& sink) {
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
        sink.write("z", 1);
        if (offset > 100) sink.done();
        return true;
      });
    });
    port_ = server_.bind_to_any_port("127.0.0.1");
    ASSERT_GT(port_, 0);
    thread_ = std::thread([this] { server_.listen_after_bind(); });
    char name[] = "/tmp/reel-remote-test-XXXXXX";
    fd_ = ::mkstemp(name);
    ASSERT_GE(fd_, 0);
    path_ = name;
  }
  void TearDown() override {
    server_.stop();
    thread_.join();
    ::close(fd_);
    std::remove(path_.c_str());
  }
  std::string url(const std::string& path) const {
    return "http://127.0.0.1:" + std::to_string(port_) + path;
  }
  // The status and code of the ApiError fetching `path` throws (0 and "" on success).
  std::pair<int, std::string> fetch(const std::string& path, RemoteLimits limits = {}) {
    try {
      fetch_remote(url(path), fd_, limits, "param");
    } catch (const ApiError& e) {
      EXPECT_EQ(e.param(), "param");
      return {e.status(), e.code()};
    }
    return {0, ""};
  }
  off_t size() const { return ::lseek(fd_, 0, SEEK_END); }

  httplib::Server server_;
  std::thread thread_;
  int port_ = 0, fd_ = -1;
  std::string path_, body_;
};

TEST_F(RemoteFetch, BodyArrivesWhole) {
  EXPECT_EQ(fetch("/ok"), std::make_pair(0, std::string()));
  EXPECT_EQ(size(), off_t(body_.size()));
}

// By name: looked up within the deadline, connected to the address found.
TEST_F(RemoteFetch, NamedHostIsResolvedAndFetched) {
  fetch_remote("http://localhost:" + std::to_string(port_) + "/ok", fd_, {}, "param");
  EXPECT_EQ(size(), off_t(body_.size()));
}

TEST_F(RemoteFetch, RedirectsAreFollowedUpToTheLimit) {
  EXPECT_EQ(fetch("/hop/" + std::to_string(kMaxRedirects - 1)).first, 0);
  EXPECT_EQ(size(), off_t(body_.size()));
  EXPECT_EQ(fetch("/relative").first, 0);
  EXPECT_EQ(fetch("/hop/" + std::to_string(kMaxRedirects)),
            std::make_pair(400, std::string("media_fetch_failed")));
  EXPECT_EQ(fetch("/to-file"), std::make_pair(400, std::string("media_fetch_failed")));
}

TEST_F(RemoteFetch, ErrorStatusesAndDeadPorts) {
  EXPECT_EQ(fetch("/missing"), std::make_pair(400, std::string("media_fetch_failed")));
  EXPECT_EQ(size(), 0);
  RemoteLimits quick;
  quick.timeout_s = 2;
  try {
    fetch_remote("http://127.0.0.1:1/x", fd_, quick, "p");  // port 1: nothing listens
    ADD_FAILURE() << "fetched from a closed port";
  } catch (const ApiError& e) {
    EXPECT_EQ(e.status(), 400);
  }
}

TEST_F(RemoteFetch, SizeLimitAnnouncedOrFoundWhileReading) {
  RemoteLimits small;
  small.max_bytes = 50000;  // /ok is 100000 bytes, announced in Content-Length
  EXPECT_EQ(fetch("/ok", small), std::make_pair(413, std::string("media_too_large")));
  EXPECT_EQ(size(), 0);       // refused before any byte was written
  small.max_bytes = 1 << 20;  // /chunked sends 4 MiB without a length
  EXPECT_EQ(fetch("/chunked", small), std::make_pair(413, std::string("media_too_large")));
  EXPECT_LE(size(), off_t(1) << 20);
}

TEST_F(RemoteFetch, DeadlineCoversTheWholeFetch) {
  RemoteLimits quick;
  quick.timeout_s = 0.5;  // /slow sends a byte every 100 ms for about 10 s
  const auto t0 = std::chrono::steady_clock::now();
  EXPECT_EQ(fetch("/slow", quick), std::make_pair(400, std::string("media_fetch_timeout")));
  // The deadline, plus at most one 100 ms chunk and scheduling (2 s of slack for sanitizers).
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::milliseconds(2500));
}

TEST_F(RemoteFetch, ResolverFetchesOnlyWhenAllowed) {
  auto turns_with = [](const std::string& u) {
    return std::vector<ChatTurn>{{"user", {{ChatPart::Kind::Video, u}}}};
  };
  MediaResolver closed({});
  TempFiles files;
  auto turns = turns_with(url("/ok"));
  try {
    closed.resolve(turns, files);
    ADD_FAILURE() << "fetched without --allow-remote-media";
  } catch (const ApiError& e) {
    EXPECT_EQ(e.status(), 400);
    EXPECT_EQ(e.code(), "unsupported_url");
  }
  MediaResolver open({}, RemoteLimits{});
  std::string path;
  {
    TempFiles request;
    turns = turns_with(url("/ok?name=x.mp4"));
    open.resolve(turns, request);
    path = turns[0].parts[0].text;
    EXPECT_EQ(path.rfind(open.temp_dir() + "/", 0), 0u) << path;
    EXPECT_EQ(::access(path.c_str(), F_OK), 0);
    EXPECT_EQ(std::filesystem::file_size(path), body_.size());
  }
  EXPECT_NE(::access(path.c_str(), F_OK), 0);  // removed with its request
}

}  // namespace
}  // namespace reel::server
