// `reel watch` end to end over loopback: an ffmpeg publisher started by the test sends a
// generated clip in real time over UDP MPEG-TS, TCP, HTTP (MPEG-TS and MJPEG, ffmpeg listening),
// HLS (ffmpeg writing segments, python3's http.server serving them), SRT (ffmpeg the listener)
// and stdin; a file is played with --realtime. Checked: the JSON lines of --ask (UTC times), the
// answer equal to the CLI's for the same frames given as a video file, triggers and their
// cool-down, a silent source's timeout, reconnecting after the publisher is killed and
// restarted (TCP, SRT), a missing camera, durations, usage errors, and a soak whose resident
// memory stays flat once the window is full.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <regex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "process.h"
#include "run_reel.h"

namespace reel::test {
namespace {

using nlohmann::json;

const std::string kModel = REEL_FIXTURE_DIR "/models/tiny-a-f32.gguf";
const std::string kMmproj = REEL_FIXTURE_DIR "/models/tiny-a-mmproj-f32.gguf";
const std::string kAssets = REEL_FIXTURE_SRC "/../../assets/";
const std::string kShapes = kAssets + "shapes-clip.mp4";
const std::string kShapesModel = kAssets + "models/reel-shapes.gguf";
const std::string kShapesMmproj = kAssets + "models/reel-shapes-mmproj.gguf";
const std::string kQuestion = "What color is the circle?";

// A port for this test process (UDP and TCP on loopback), different per call.
int next_port() {
  static int n = 0;
  return 20000 + (::getpid() * 7 + 13 * n++) % 40000;
}

std::vector<json> json_lines(const std::string& out) {
  std::vector<json> lines;
  std::istringstream in(out);
  for (std::string line; std::getline(in, line);) {
    if (line.empty()) continue;
    lines.push_back(json::parse(line));  // throws (failing the test) on anything but JSON
  }
  return lines;
}

std::string iso_now() {
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                      std::chrono::system_clock::now().time_since_epoch())
                      .count();
  const std::time_t s = ms / 1000;
  std::tm tm{};
  gmtime_r(&s, &tm);
  char buf[64];
  const size_t n = std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  std::snprintf(buf + n, sizeof buf - n, ".%03dZ", int(ms % 1000));
  return buf;
}

// Built with AddressSanitizer (make sanitize): freed memory then waits in its quarantine (up
// to 256 MiB) and shadow memory grows with what is touched, so resident memory says nothing
// about leaks (LeakSanitizer checks those at exit instead).
#if defined(__SANITIZE_ADDRESS__)
constexpr bool kAddressSanitizer = true;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
constexpr bool kAddressSanitizer = true;
#else
constexpr bool kAddressSanitizer = false;
#endif
#else
constexpr bool kAddressSanitizer = false;
#endif

// Whether this FFmpeg (the CLI's libavformat, the one Reel links) has `protocol`.
bool ffmpeg_has_protocol(const std::string& protocol) {
  FILE* p = ::popen("ffmpeg -hide_banner -protocols 2>/dev/null", "r");
  if (p == nullptr) return false;
  bool found = false;
  char line[256];
  while (std::fgets(line, sizeof line, p) != nullptr)
    found = found || std::string(line).find(" " + protocol + "\n") != std::string::npos;
  ::pclose(p);
  return found;
}

// Whether something accepts TCP connections on 127.0.0.1:port within `seconds`.
bool wait_until_listening(int port, int seconds) {
  for (int i = 0; i < seconds * 20; ++i) {
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) return false;
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(port));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    const bool ok = ::connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) == 0;
    ::close(fd);
    if (ok) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return false;
}

// Resident memory of a running process in KiB (VmRSS), or -1 when it is gone.
long rss_kib(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  for (std::string line; std::getline(in, line);)
    if (line.rfind("VmRSS:", 0) == 0) return std::stol(line.substr(6));
  return -1;
}

class Watch : public ReelTest {
 protected:
  void SetUp() override {
    ReelTest::SetUp();
    // Wall-clock times must come out in UTC whatever the local zone: run reel 14 hours ahead
    // (a POSIX zone, no tzdata needed). The test's own clock (iso_now) is UTC by gmtime_r.
    ::setenv("TZ", "XYZ-14", 1);
    started_ = iso_now();
    // The shapes clip at exactly 2 fps, 4 s (8 frames): `--fps 2` takes every frame both in
    // the CLI's sampling (transformers': n = frames / video fps * 2) and by presentation time.
    ffmpeg("-i '" + kShapes + "' -vf fps=2 -t 4 -c:v libx264 -pix_fmt yuv420p", "clip2.mp4");
  }

  void ffmpeg(const std::string& args, const std::string& out) const {
    const std::string cmd =
        "ffmpeg -v error -y " + args + " '" + (dir_ / out).string() + "' </dev/null";
    ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
  }
  std::string path(const std::string& name) const { return (dir_ / name).string(); }

  // The publisher: a generated clip in real time to `url`.
  static std::vector<std::string> publisher(const std::string& url, int seconds,
                                            const std::string& format = "mpegts") {
    return {"/usr/bin/ffmpeg",
            "-v",
            "error",
            "-re",
            "-f",
            "lavfi",
            "-i",
            "testsrc=size=160x120:rate=10",
            "-t",
            std::to_string(seconds),
            "-c:v",
            "mpeg2video",
            "-q:v",
            "5",
            "-f",
            format,
            url};
  }

  static std::vector<std::string> watch(const std::string& source,
                                        const std::vector<std::string>& extra) {
    std::vector<std::string> a = {REEL_BINARY, "watch",  source, "-m", kModel, "--mmproj",
                                  kMmproj,     "--temp", "0",    "-t", "1"};
    a.insert(a.end(), extra.begin(), extra.end());
    if (std::find(extra.begin(), extra.end(), "-n") == extra.end()) a.insert(a.end(), {"-n", "4"});
    return a;
  }

  void expect_answer_line(const json& j, const std::string& question) const {
    for (const char* k :
         {"window_start", "window_end", "frames", "question", "answer", "time_to_first_token_ms"})
      EXPECT_TRUE(j.contains(k)) << k << " in " << j.dump();
    EXPECT_EQ(j["question"], question);
    EXPECT_GT(j["frames"].get<int>(), 0);
    // ISO 8601 in UTC to the millisecond, e.g. 2026-12-01T12:00:00.000Z, and the arrival times
    // of frames during this test (in UTC: with the local zone's 14 hours they would be after
    // now).
    static const std::regex iso(R"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z)");
    const std::string start = j["window_start"], end = j["window_end"];
    EXPECT_TRUE(std::regex_match(start, iso)) << start;
    EXPECT_TRUE(std::regex_match(end, iso)) << end;
    EXPECT_LE(started_, start);
    EXPECT_LE(start, end);
    EXPECT_LE(end, iso_now());
    EXPECT_GT(j["time_to_first_token_ms"].get<double>(), 0);
  }

  // Waits up to `seconds` for an answer line about frames that arrived after `since`.
  static bool fresh_answer(Process& w, const std::string& since, double seconds) {
    for (int i = 0; i < int(seconds * 10); ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
      w.wait_for("\n", 0.01, false);  // reads what came
      for (const json& j : json_lines(w.out()))
        if (j["window_end"].get<std::string>() > since) return true;
    }
    return false;
  }

  std::string started_;  // when the test began, as iso_now()
};

// The key correctness check: a window is asked about exactly as the CLI asks about the same
// frames in a file (same frames, size and timestamps, so the same prompt and greedy answer).
// With the shapes model (assets/models), whose answers depend on what the frames show: the
// random tiny fixture answers the same garbage about any frames, so it could not tell.
TEST_F(Watch, AnswersAsTheCliDoesForTheSameFrames) {
  const std::string m = " -m " + kShapesModel + " --mmproj " + kShapesMmproj;
  const std::string q = "Describe this video.";
  const auto t0 = std::chrono::steady_clock::now();
  // --window 10s: the context then leaves each group more than the clip's 60 tokens, so the
  // frames keep the size the CLI gives them (a 60 s window would shrink them to fit 4096).
  Process w({REEL_BINARY,   "watch",      path("clip2.mp4"),
             "-m",          kShapesModel, "--mmproj",
             kShapesMmproj, "--temp",     "0",
             "-t",          "1",          "-n",
             "32",          "--realtime", "--window",
             "10s",         "--ask",      q,
             "--every",     "100s"});
  ASSERT_EQ(w.wait_exit(60), 0) << w.err();
  const double took = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_GE(took, 3.4) << "--realtime plays 4 s of video in real time";
  const std::vector<json> lines = json_lines(w.out());
  ASSERT_EQ(lines.size(), 1u) << w.out();  // the file's end: one answer about the last window
  expect_answer_line(lines[0], q);
  EXPECT_EQ(lines[0]["frames"], 8);

  const Result cli = reel(m + " --video " + path("clip2.mp4") + " -p '" + q +
                          "' --temp 0 -t 1 -n 32 --stats json");
  ASSERT_EQ(cli.code, 0) << cli.err;
  ASSERT_GT(cli.out.size(), 10u);
  EXPECT_EQ(lines[0]["answer"].get<std::string>() + "\n", cli.out);
  const json stats = json::parse(cli.err.substr(cli.err.rfind("\n{") + 1));
  EXPECT_EQ(lines[0]["prompt_tokens"], stats["prompt_tokens"]);
  EXPECT_EQ(stats["frames"], 8);
  // The comparison can fail: other frames of the same clip (3 s later) are described
  // differently by this model.
  ffmpeg("-i '" + kShapes + "' -vf fps=2 -ss 3 -t 4 -c:v libx264 -pix_fmt yuv420p", "later.mp4");
  const Result other =
      reel(m + " --video " + path("later.mp4") + " -p '" + q + "' --temp 0 -t 1 -n 32");
  ASSERT_EQ(other.code, 0) << other.err;
  EXPECT_NE(other.out, cli.out);
}

// The same check with a Qwen3.5 pair (the hybrid decoder, whose recurrent state cannot be cut
// back, and Qwen3.5's vision tower): the window's prompt and greedy answer equal the CLI's for
// the same frames. The fixture is random, so it cannot tell frames apart by their content; the
// prompt token count and the answer (which depends on every visual row) still have to agree.
TEST_F(Watch, AQwen35PairAnswersAsTheCliDoes) {
  const std::string model = REEL_FIXTURE_DIR "/models/q35-a-f32.gguf";
  const std::string mmproj = REEL_FIXTURE_DIR "/models/q35-a-mmproj-f16.gguf";
  const std::string q = "Describe this video.";
  Process w({REEL_BINARY, "watch",      path("clip2.mp4"),
             "-m",        model,        "--mmproj",
             mmproj,      "--temp",     "0",
             "-t",        "1",          "-n",
             "16",        "--realtime", "--window",
             "10s",       "--ask",      q,
             "--every",   "100s"});
  ASSERT_EQ(w.wait_exit(60), 0) << w.err();
  const std::vector<json> lines = json_lines(w.out());
  ASSERT_EQ(lines.size(), 1u) << w.out();
  expect_answer_line(lines[0], q);
  EXPECT_EQ(lines[0]["frames"], 8);

  const Result cli = reel(" -m " + model + " --mmproj " + mmproj + " --video " + path("clip2.mp4") +
                          " -p '" + q + "' --temp 0 -t 1 -n 16 --stats json");
  ASSERT_EQ(cli.code, 0) << cli.err;
  ASSERT_GT(cli.out.size(), 1u);
  EXPECT_EQ(lines[0]["answer"].get<std::string>() + "\n", cli.out);
  const json stats = json::parse(cli.err.substr(cli.err.rfind("\n{") + 1));
  EXPECT_EQ(lines[0]["prompt_tokens"], stats["prompt_tokens"]);
  EXPECT_EQ(stats["frames"], 8);
}

TEST_F(Watch, UdpMpegTsEveryPeriod) {
  const std::string url = "udp://127.0.0.1:" + std::to_string(next_port());
  Process w(watch(
      url, {"--ask", kQuestion, "--every", "1s", "--max-answers", "1", "--open-timeout", "20s"}));
  Process pub(publisher(url + "?pkt_size=1316", 10));
  ASSERT_EQ(w.wait_exit(30), 0) << w.err();
  const std::vector<json> lines = json_lines(w.out());
  ASSERT_EQ(lines.size(), 1u) << w.out();
  for (const json& j : lines) expect_answer_line(j, kQuestion);
  // Messages go to stderr only; the frame size is said there.
  EXPECT_NE(w.err().find("frames of 160x120 are encoded at"), std::string::npos) << w.err();
}

TEST_F(Watch, TcpFromAListeningPublisher) {
  const std::string url = "tcp://127.0.0.1:" + std::to_string(next_port());
  Process pub(publisher(url + "?listen=1", 10));
  // Started right away: refused connections are retried until the publisher listens.
  Process w(watch(url, {"--ask", kQuestion, "--every", "1s", "--max-answers", "2"}));
  ASSERT_EQ(w.wait_exit(30), 0) << w.err();
  const std::vector<json> lines = json_lines(w.out());
  ASSERT_EQ(lines.size(), 2u) << w.out();
  for (const json& j : lines) expect_answer_line(j, kQuestion);
}

TEST_F(Watch, HttpMpegTsFromAServingPublisher) {
  const std::string url = "http://127.0.0.1:" + std::to_string(next_port()) + "/live.ts";
  std::vector<std::string> args = publisher(url, 10);
  args.insert(args.end() - 1, {"-listen", "1"});  // ffmpeg serves the stream over HTTP
  Process pub(args);
  Process w(watch(url, {"--ask", kQuestion, "--every", "1s", "--max-answers", "1"}));
  ASSERT_EQ(w.wait_exit(30), 0) << w.err();
  const std::vector<json> lines = json_lines(w.out());
  ASSERT_EQ(lines.size(), 1u) << w.out();
  expect_answer_line(lines[0], kQuestion);
}

TEST_F(Watch, MpegTsOnStdin) {
  // 3 s at 10 fps in real time: 6 frames sampled at 2 fps; the end of stdin ends the watch
  // with one answer about the final window.
  const std::string cmd =
      "ffmpeg -v error -re -f lavfi -i testsrc=size=128x96:rate=10 -t 3 -c:v mpeg2video -f "
      "mpegts - </dev/null | " REEL_BINARY " watch - -m " +
      kModel + " --mmproj " + kMmproj + " --temp 0 -t 1 -n 4 --ask '" + kQuestion +
      "' --every 100s > " + path("out.txt") + " 2> " + path("err.txt");
  ASSERT_EQ(exit_code(std::system(("timeout 60 sh -c \"" + cmd + "\"").c_str())), 0)
      << slurp(path("err.txt"));
  const std::vector<json> lines = json_lines(slurp(path("out.txt")));
  ASSERT_EQ(lines.size(), 1u);
  expect_answer_line(lines[0], kQuestion);
  EXPECT_EQ(lines[0]["frames"], 6);
}

TEST_F(Watch, SilentSourceTimesOutWithAClearError) {
  const std::string url = "udp://127.0.0.1:" + std::to_string(next_port());
  const auto t0 = std::chrono::steady_clock::now();
  const Result r = reel("watch " + url + " -m " + kModel + " --mmproj " + kMmproj +
                        " --ask hi --open-timeout 1s");
  expect_clean_error(r, "no answer within 1 s");
  EXPECT_EQ(r.code, 74);  // the system's failure (sysexits' EX_IOERR), as other I/O errors
  EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(), 10);
}

TEST_F(Watch, ReconnectsWhenThePublisherComesBack) {
  const int port = next_port();
  const std::string url = "tcp://127.0.0.1:" + std::to_string(port);
  auto pub = std::make_unique<Process>(publisher(url + "?listen=1", 30));
  Process w(watch(url, {"--ask", kQuestion, "--every", "1s"}));
  ASSERT_TRUE(w.wait_for("\"answer\"", 20, /*on_stderr=*/false)) << w.err();
  pub->signal(SIGKILL);
  ASSERT_TRUE(w.wait_for("reconnecting in", 15)) << w.err();
  pub.reset();
  const std::string restarted = iso_now();
  pub = std::make_unique<Process>(publisher(url + "?listen=1", 30));
  // Answers continue, about frames that arrived after the restart.
  EXPECT_TRUE(fresh_answer(w, restarted, 30)) << w.out() << w.err();
  w.signal(SIGTERM);
  EXPECT_EQ(w.wait_exit(10), 130) << w.err();
  EXPECT_NE(w.err().find("reconnects"), std::string::npos) << w.err();  // the summary
}

TEST_F(Watch, ReconnectsWithBackoffAfterTheStreamEnds) {
  // A publisher that ends normally and does not come back: the end is said, then each refused
  // attempt doubles the wait (0.5 s, 1 s, 2 s, 4 s, ... up to 8 s), all on stderr.
  const std::string url = "tcp://127.0.0.1:" + std::to_string(next_port());
  Process pub(publisher(url + "?listen=1", 2));
  Process w(watch(url, {"--ask", kQuestion, "--every", "1s"}));
  ASSERT_TRUE(w.wait_for("reconnecting in 4.0 s", 30)) << w.err();
  const std::string& err = w.err();
  size_t at = err.find("the stream ended; reconnecting in 0.5 s");
  ASSERT_NE(at, std::string::npos) << err;
  for (const char* next :
       {"reconnecting in 1.0 s", "reconnecting in 2.0 s", "reconnecting in 4.0 s"}) {
    const size_t found = err.find(next, at + 1);
    ASSERT_NE(found, std::string::npos) << next << " after the previous attempt in\n" << err;
    at = found;
  }
  EXPECT_NE(err.find("127.0.0.1"), std::string::npos) << err;  // why, naming the source
  w.signal(SIGTERM);
  EXPECT_EQ(w.wait_exit(10), 130) << w.err();
  EXPECT_GE(json_lines(w.out()).size(), 1u) << w.out();  // it answered while it could
}

TEST_F(Watch, UntilStopsOnAMatch) {
  Process w(watch(path("clip2.mp4"),
                  {"--realtime", "--until", kQuestion, "--match", ".", "--every", "1s"}));
  ASSERT_EQ(w.wait_exit(30), 0) << w.err();
  const std::vector<json> lines = json_lines(w.out());
  ASSERT_EQ(lines.size(), 1u) << w.out();  // the first answer matched: stopped there
  EXPECT_EQ(lines[0]["matched"], true);
  EXPECT_EQ(lines[0]["triggered"], true);
  EXPECT_NE(w.err().find("matched --match"), std::string::npos) << w.err();
}

TEST_F(Watch, ExecRunsOncePerCooldown) {
  const std::string mark = path("fired.txt");
  Process w(watch(path("clip2.mp4"),
                  {"--realtime", "--until", kQuestion, "--match", ".", "--every", "1s", "--exec",
                   "echo \"$REEL_QUESTION\" >> '" + mark + "'", "--cooldown", "100s"}));
  ASSERT_EQ(w.wait_exit(30), 0) << w.err();
  const std::vector<json> lines = json_lines(w.out());
  ASSERT_GE(lines.size(), 3u) << w.out();  // 4 s at one question a second, then the end
  int triggered = 0;
  for (const json& j : lines) triggered += j["triggered"].get<bool>();
  EXPECT_EQ(triggered, 1);
  // The window only grew between two questions: the second reuses the first one's prompt up
  // to its last group (template, timestamps and visual tokens), computing only what is new.
  EXPECT_GT(lines[1]["reused_tokens"].get<int>(), 20) << lines[1].dump();
  EXPECT_LT(lines[1]["reused_tokens"].get<int>(), lines[1]["prompt_tokens"].get<int>());
  for (int i = 0; i < 100 && slurp(mark).empty(); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  EXPECT_EQ(slurp(mark), kQuestion + "\n");
}

TEST_F(Watch, InteractiveQuestionsWithALookBack) {
  // --last 2s: questions are about the window's last 2 s unless they say otherwise.
  Process w(watch(path("clip2.mp4"), {"--realtime", "-n", "2", "--last", "2s"}));
  ASSERT_TRUE(w.wait_for("frames of 320x180", 20)) << w.err();
  // Let the whole clip in (4 s), then ask about its last 2 s (the default) and its last second.
  w.wait_exit(4.5);
  w.write_line(kQuestion);
  w.write_line("<last 1s> " + kQuestion);
  ASSERT_TRUE(w.wait_for("(2 frames)", 20)) << w.err();
  EXPECT_NE(w.err().find("(4 frames)"), std::string::npos) << w.err();
  // With the window's wall-clock span, in UTC.
  static const std::regex about(
      R"(about (\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z) to (\S+Z) \(4 frames\))");
  std::smatch m;
  ASSERT_TRUE(std::regex_search(w.err(), m, about)) << w.err();
  EXPECT_LE(started_, m[1].str());
  EXPECT_LE(m[1].str(), m[2].str());
  EXPECT_LE(m[2].str(), iso_now());
  w.close_stdin();
  ASSERT_EQ(w.wait_exit(10), 0) << w.err();
  EXPECT_EQ(std::count(w.out().begin(), w.out().end(), '\n'), 2) << w.out();
}

TEST_F(Watch, UndecodableInputIsAnError) {
  std::string junk(100000, '\0');
  uint32_t x = 7;
  for (char& c : junk) c = char((x = x * 1664525u + 1013904223u) >> 24);
  const std::string m = " -m " + kModel + " --mmproj " + kMmproj + " --ask q";
  const Result r = reel("watch " + file("junk.ts", junk).string() + m);
  EXPECT_EQ(r.code, 1) << r.err;
  EXPECT_NE(r.err.find("junk.ts: not a video stream"), std::string::npos) << r.err;
  // A real MPEG-TS whose video payloads are noise (the tables and packet headers kept): read
  // to the end without a picture, then refused, the error last after the summary.
  ffmpeg("-f lavfi -i testsrc=size=64x64:rate=10 -t 2 -c:v mpeg2video -f mpegts", "clip.ts");
  std::string ts = slurp(path("clip.ts"));
  for (size_t p = 3 * 188; p + 188 <= ts.size(); p += 188)
    for (size_t k = 4; k < 188; ++k) ts[p + k] = char((x = x * 1664525u + 1013904223u) >> 24);
  const Result t = reel("watch " + file("noise.ts", ts).string() + m);
  EXPECT_EQ(t.code, 1) << t.err;
  const std::string last = t.err.substr(t.err.rfind('\n', t.err.size() - 2) + 1);
  EXPECT_NE(last.find("noise.ts: "), std::string::npos) << t.err;
}

TEST_F(Watch, UsageErrors) {
  const std::string m = " -m " + kModel + " --mmproj " + kMmproj;
  EXPECT_EQ(reel("watch -" + m).code, 2);  // questions cannot come from the video's stdin
  EXPECT_EQ(reel("watch x.ts" + m + " --every banana --ask q").code, 2);
  EXPECT_EQ(reel("watch x.ts" + m + " --every 0 --ask q").code, 2);
  EXPECT_EQ(reel("watch x.ts" + m + " --match yes").code, 2);
  EXPECT_EQ(reel("watch x.ts" + m + " --until q --match '('").code, 2);
  EXPECT_EQ(reel("watch x.ts" + m + " --last 2m --window 1m --ask q").code, 2);
  expect_clean_error(reel("watch " + path("missing.ts") + m + " --ask q"), "missing.ts");
}

TEST_F(Watch, MjpegOverHttp) {
  // ffmpeg serves multipart JPEG (a webcam's usual HTTP stream); its frames carry no
  // presentation times, so they are timed by arrival.
  const std::string url = "http://127.0.0.1:" + std::to_string(next_port()) + "/cam.mjpg";
  Process pub({"/usr/bin/ffmpeg", "-v", "error", "-re", "-f", "lavfi", "-i",
               "testsrc=size=160x120:rate=10", "-t", "10", "-c:v", "mjpeg", "-q:v", "5", "-f",
               "mpjpeg", "-listen", "1", url});
  Process w(watch(url, {"--ask", kQuestion, "--every", "1s", "--max-answers", "2"}));
  ASSERT_EQ(w.wait_exit(30), 0) << w.err();
  const std::vector<json> lines = json_lines(w.out());
  ASSERT_EQ(lines.size(), 2u) << w.out();
  for (const json& j : lines) expect_answer_line(j, kQuestion);
}

TEST_F(Watch, HlsFromSegmentsServedOverHttp) {
  // ffmpeg writes a live playlist of 1 s segments (the oldest deleted) and python3's
  // http.server serves the folder: FFmpeg's HLS demuxer follows the playlist as it grows.
  const int port = next_port();
  const fs::path hls = dir_ / "hls";
  fs::create_directories(hls);
  Process pub({"/usr/bin/ffmpeg",
               "-v",
               "error",
               "-re",
               "-f",
               "lavfi",
               "-i",
               "testsrc=size=160x120:rate=10",
               "-t",
               "20",
               "-c:v",
               "mpeg2video",
               "-g",
               "10",
               "-f",
               "hls",
               "-hls_time",
               "1",
               "-hls_list_size",
               "4",
               "-hls_flags",
               "delete_segments",
               (hls / "live.m3u8").string()});
  Process http({"/usr/bin/python3", "-m", "http.server", std::to_string(port), "--bind",
                "127.0.0.1", "--directory", hls.string()});
  for (int i = 0; i < 100 && !fs::exists(hls / "live.m3u8"); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  ASSERT_TRUE(fs::exists(hls / "live.m3u8"));
  // The playlist can exist before python3 listens: on a loaded machine (ctest -j2) reel
  // once met a refused connection here.
  ASSERT_TRUE(wait_until_listening(port, 10));
  Process w(watch("http://127.0.0.1:" + std::to_string(port) + "/live.m3u8",
                  {"--ask", kQuestion, "--every", "1s", "--max-answers", "3"}));
  ASSERT_EQ(w.wait_exit(30), 0) << w.err();
  const std::vector<json> lines = json_lines(w.out());
  ASSERT_EQ(lines.size(), 3u) << w.out();
  for (const json& j : lines) expect_answer_line(j, kQuestion);
  // The window grew with new segments.
  EXPECT_GT(lines[2]["frames"].get<int>(), lines[0]["frames"].get<int>()) << w.out();
}

TEST_F(Watch, SrtFromAListeningPublisherAndBack) {
  if (!ffmpeg_has_protocol("srt")) {
    if (std::getenv("CI") != nullptr) FAIL() << "this FFmpeg has no srt protocol";
    GTEST_SKIP() << "this FFmpeg has no srt protocol (libsrt)";
  }
  // ffmpeg is the SRT listener (MPEG-TS), reel the caller, as with an encoder on a camera.
  const std::string url = "srt://127.0.0.1:" + std::to_string(next_port());
  auto pub = std::make_unique<Process>(publisher(url + "?mode=listener", 30));
  // A short read timeout: a listener killed without a word is noticed within 2 s.
  Process w(watch(url, {"--ask", kQuestion, "--every", "1s", "--read-timeout", "2s"}));
  ASSERT_TRUE(w.wait_for("\"answer\"", 20, /*on_stderr=*/false)) << w.err();
  for (const json& j : json_lines(w.out())) expect_answer_line(j, kQuestion);
  pub->signal(SIGKILL);
  ASSERT_TRUE(w.wait_for("reconnecting in", 15)) << w.err();
  pub.reset();
  const std::string restarted = iso_now();
  pub = std::make_unique<Process>(publisher(url + "?mode=listener", 30));
  EXPECT_TRUE(fresh_answer(w, restarted, 30)) << w.out() << w.err();
  w.signal(SIGTERM);
  EXPECT_EQ(w.wait_exit(10), 130) << w.err();
}

TEST_F(Watch, MissingCameraIsOneClearLine) {
  // /dev/videoN opens as a V4L2 camera; one that does not exist is refused at once.
  const Result r =
      reel("watch /dev/video99 -m " + kModel + " --mmproj " + kMmproj + " --ask q", 20);
  EXPECT_NE(r.code, 0);
  expect_clean_error(r, "/dev/video99");
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
}

TEST_F(Watch, DurationsTakeSecondsMinutesAndPlainNumbers) {
  // Flags that parse reach the source (a missing file: exit 1); those that do not are usage
  // errors (exit 2). --last may not exceed --window, which compares their values.
  auto code = [&](const std::string& flags) {
    return reel("watch " + path("missing.ts") + " -m " + kModel + " --mmproj " + kMmproj +
                " --ask q " + flags)
        .code;
  };
  for (const char* ok :
       {"--every 10s", "--every 2m", "--every 1.5", "--every 250ms", "--every 1h", "--cooldown 45"})
    EXPECT_EQ(code(ok), 1) << ok;
  for (const char* bad : {"--every 10x", "--every s", "--every -5", "--every 25h", "--every 2m3"})
    EXPECT_EQ(code(bad), 2) << bad;
  EXPECT_EQ(code("--window 2m --last 120"), 1);  // 2m is 120 plain seconds
  EXPECT_EQ(code("--window 2m --last 121"), 2);
  EXPECT_EQ(code("--window 90 --last 1m"), 1);
  EXPECT_EQ(code("--window 59s --last 1m"), 2);
  EXPECT_EQ(code("--window 1.5 --last 1500ms"), 1);
  EXPECT_EQ(code("--window 1.5 --last 1501ms"), 2);
}

// The soak: a long generated stream read as fast as it decodes, many times the window passing
// through it, while the process's resident memory is sampled. Once the window is full (its
// oldest frames have started to leave), memory must stay flat.
TEST_F(Watch, SoakKeepsResidentMemoryFlat) {
  if (kAddressSanitizer) GTEST_SKIP() << "resident memory means nothing under AddressSanitizer";
  // A minute of 320x240 at 25 fps, looped by ffmpeg without end (stream copy, cheap) into a
  // FIFO, decoded by reel as fast as it can (some 2500 frames a second here, a hundred times
  // real time). It runs for 15 s after the window is full, then is stopped.
  ffmpeg("-f lavfi -i testsrc=size=320x240:rate=25 -t 60 -c:v mpeg2video -q:v 8 -f mpegts",
         "minute.ts");
  const std::string fifo = path("live.ts");
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  Process pub({"/usr/bin/ffmpeg", "-v", "error", "-stream_loop", "-1", "-i", path("minute.ts"),
               "-c", "copy", "-f", "mpegts", "-y", fifo});
  Process w(watch(fifo, {"--window", "10s", "--ask", kQuestion, "--every", "0.5s", "-n", "2"}));
  constexpr double kAfterFullS = 15;
  const double t_start = Process::now();
  long base = -1, last = -1;
  double t_base = 0, t_last = 0;
  std::string first_start;
  while (w.wait_exit(0.05) < 0 && Process::now() - t_start < 120) {
    const long rss = rss_kib(w.pid());
    if (rss < 0) continue;
    if (base < 0) {
      // Full: an answer whose window starts later than the first answer's (frames have left).
      for (const json& j : json_lines(w.out().substr(0, w.out().rfind('\n') + 1))) {
        if (first_start.empty()) first_start = j["window_start"];
        if (base < 0 && j["window_start"].get<std::string>() > first_start) {
          base = rss;
          t_base = Process::now();
        }
      }
    }
    last = rss;
    t_last = Process::now();
    if (base > 0 && t_last - t_base >= kAfterFullS) break;
  }
  w.signal(SIGTERM);
  ASSERT_EQ(w.wait_exit(30), 130) << w.err();  // stopped by the signal, not ended or failed
  ASSERT_GT(base, 0) << "the window never let frames go\n" << w.out();
  // The encoder could not keep up with this stream: the effective rate was said.
  EXPECT_NE(w.err().find("encoding keeps up with"), std::string::npos) << w.err();
  // What passed through the window after it filled, from the summary: groups encoded (two
  // frames each) times the rows each holds, in the share of the run after the fill.
  std::smatch m;
  static const std::regex summary(
      R"((\d+) encoded .* the window holds \d+ groups \([\d.]+ MiB; (\d+) KiB each\))");
  ASSERT_TRUE(std::regex_search(w.err(), m, summary)) << w.err();
  const double groups = std::stod(m[1].str()) / 2, group_kib = std::stod(m[2].str());
  const double passed_kib = groups * group_kib * (t_last - t_base) / (t_last - t_start);
  const long growth = last - base;
  std::printf(
      "soak: resident %ld KiB when the window was full, %ld KiB at the end (%+ld); "
      "%.0f KiB of rows passed through the window after it filled\n",
      base, last, growth, passed_kib);
  // The bound: 4 MiB. Allocator noise once the window is full is below it: glibc's arenas for
  // the reader, encoder and question threads are warm by then; measured here, resident memory
  // at the end was 4 to 10 MiB *below* the sample at the fill (the first questions' buffers
  // are given back), and flat to 0.1 MiB between samples after that. A leak of the rows that
  // leave the window (a reference kept anywhere) costs each group's rows (~40 KiB here, 80
  // tokens): the run passes at least 3 times the bound through the window after it fills
  // (asserted; 28-46 MiB here), so such a leak shows as 12 MiB or more. Tried by making the
  // window keep every group it lets go: +37 MiB, and this test fails.
  constexpr long kBoundKib = 4 * 1024;
  ASSERT_GE(passed_kib, 3.0 * kBoundKib) << "the soak encoded too little to tell a leak";
  EXPECT_LT(growth, kBoundKib);
}

}  // namespace
}  // namespace reel::test
