// The edges a new user meets, through the `reel` binary: prompt flags, exit codes, stdout
// failures, Ctrl-C in each mode, chat commands, turns that fail and the chat that goes on,
// budgets that count the whole prompt, media checked before the models load, machine-readable
// stats, progress only on terminals, and --help with every default.
#include <gtest/gtest.h>
#include <signal.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "../emulation.h"
#include "process.h"

namespace reel::test {
namespace {

namespace fs = std::filesystem;

const std::string kReel = REEL_BINARY;
const std::string kModel = REEL_FIXTURE_DIR "/models/tiny-a-q8_0.gguf";
const std::string kMmproj = REEL_FIXTURE_DIR "/models/tiny-a-mmproj-f16.gguf";
const std::string kVideo = REEL_FIXTURE_SRC "/../../assets/demo-4s-320x180.mp4";
const std::string kImage = REEL_FIXTURE_SRC "/images/rgb-97x61.png";

struct Outcome {
  int code = -1;
  std::string out, err;
  double seconds = 0;
};

// Waits for Reel (a start, an answer, a reaction to Ctrl-C) scale with the emulator's slowdown
// in a cross build run under emulation (tests/emulation.h); natively they are as written.
double scaled(double seconds) { return seconds * slowdown(); }

// Runs reel with `args`, feeding `input` on stdin, for at most 120 s (scaled).
Outcome reel(std::vector<std::string> args, const std::string& input = "") {
  args.insert(args.begin(), kReel);
  const double t0 = Process::now();
  Process p(args);
  if (!input.empty()) p.write_line(input);
  p.close_stdin();
  Outcome r;
  r.code = p.wait_exit(scaled(120));
  r.out = p.out();
  r.err = p.err();
  r.seconds = Process::now() - t0;
  return r;
}

std::vector<std::string> with_model(std::vector<std::string> args) {
  args.insert(args.begin(), {"-m", kModel, "--temp", "0", "-t", "2"});
  return args;
}

std::vector<std::string> with_vision(std::vector<std::string> args) {
  args.insert(args.begin(), {"--mmproj", kMmproj});
  return with_model(args);
}

// The stats object of the last answer in a stderr transcript.
nlohmann::json last_stats(const std::string& err) {
  const size_t at = err.rfind("{\"load_ms\"");
  if (at == std::string::npos) return {};
  return nlohmann::json::parse(err.substr(at, err.find('\n', at) - at));
}

int lines(const std::string& s) {
  return static_cast<int>(std::count(s.begin(), s.end(), '\n'));
}

class Edges : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("reel-edges-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string file(const std::string& name, const std::string& content) {
    std::ofstream(dir_ / name, std::ios::binary) << content;
    return (dir_ / name).string();
  }
  fs::path dir_;
};

// Item 6: -p "", an empty -f, -f on a directory, and -p with -f are usage errors (exit 2).
TEST_F(Edges, PromptFlagsThatMakeNoSenseAreUsageErrors) {
  for (const auto& args :
       std::vector<std::vector<std::string>>{{"-p", ""},
                                             {"-p", "  \n "},
                                             {"-f", file("empty.txt", "")},
                                             {"-f", dir_.string()},
                                             {"-p", "hi", "-f", file("q.txt", "hello")}}) {
    const Outcome r = reel(with_model(args));
    EXPECT_EQ(r.code, 2) << r.err;
    EXPECT_EQ(lines(r.err), 1) << r.err;
    EXPECT_EQ(r.err.rfind("reel: ", 0), 0u) << r.err;
    EXPECT_TRUE(r.out.empty()) << "nothing was asked: " << r.out;
  }
}

// Item 7: a failed write to stdout is an error.
TEST_F(Edges, AnswerThatCannotBeWrittenExitsOne) {
  const std::string cmd =
      kReel + " -m " + kModel + " -p hi -n 4 --temp 0 > /dev/full 2> " + (dir_ / "err").string();
  const int status = std::system(cmd.c_str());
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 1);
  std::ifstream err(dir_ / "err");
  std::stringstream s;
  s << err.rdbuf();
  EXPECT_NE(s.str().find("standard output"), std::string::npos) << s.str();
}

// Item 7 and 9: a one-shot turn that fails exits non-zero and does not suggest chat commands.
TEST_F(Edges, OneShotFailureExitsNonZeroWithoutChatAdvice) {
  const Outcome r = reel(with_model({"-c", "16", "-p", std::string(200, 'x')}));
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(r.err.find("<clear>"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("-c"), std::string::npos) << r.err;
}

// Item 7: a chat in which every turn failed exits non-zero; one that answered exits 0.
TEST_F(Edges, ChatExitCodeSaysWhetherAnythingWasAnswered) {
  const Outcome failed = reel(with_model({"-c", "16"}), std::string(200, 'x'));
  EXPECT_EQ(failed.code, 1) << failed.err;
  EXPECT_NE(failed.err.find("<clear>"), std::string::npos) << "chat advice in chat mode";
  const Outcome ok = reel(with_model({"-n", "3"}), "hello");
  EXPECT_EQ(ok.code, 0) << ok.err;
}

// Item 9: commands are recognised with spaces around them and never reach the model.
TEST_F(Edges, ChatCommandsWithSpacesAndMixedIn) {
  const Outcome r = reel(with_model({"-n", "3", "--stats", "json"}),
                         "  <clear>  \nsay <clear> now\n\t<exit> \nnever asked");
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.err.find("dialogue cleared"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("on a line of its own"), std::string::npos) << r.err;
  EXPECT_EQ(r.err.find("prompt_tokens"), std::string::npos) << "no turn reached the model";
}

// Item 12: --stats json is one JSON object per answer, with the ids of the answer.
TEST_F(Edges, StatsJsonIsOneObjectPerAnswer) {
  const Outcome r = reel(with_vision({"--video", kVideo, "-n", "5", "--stats", "json"}),
                         "<video> What happens?\nAnd then?");
  ASSERT_EQ(r.code, 0) << r.err;
  std::vector<nlohmann::json> objects;
  std::istringstream in(r.err);
  for (std::string line; std::getline(in, line);)
    if (!line.empty() && line[0] == '{') objects.push_back(nlohmann::json::parse(line));
  ASSERT_EQ(objects.size(), 2u) << r.err;
  const auto& first = objects[0];
  EXPECT_EQ(first["image_tokens"], 0) << "a video's tokens are not image tokens";
  EXPECT_GT(first["video_tokens"].get<int>(), 0);
  EXPECT_EQ(first["generated_ids"].size(), first["generated_tokens"].get<size_t>());
  EXPECT_GT(first["prompt_tokens"].get<int>(), first["video_tokens"].get<int>());
  // The follow-up computes only its own tokens: its prompt is a few tokens, and its rate is
  // that of those tokens.
  const auto& second = objects[1];
  EXPECT_EQ(second["video_tokens"], 0);
  EXPECT_LT(second["prompt_tokens"].get<int>(), 32);
}

// Item 2: a prompt whose video, question and answer could not fit is cut down before decoding.
TEST_F(Edges, VideoBudgetCountsTheWholePrompt) {
  for (const std::vector<std::string>& extra :
       {std::vector<std::string>{"-c", "200", "-n", "4"},
        std::vector<std::string>{"-c", "300", "--frames", "100000", "-n", "8"},
        std::vector<std::string>{"-c", "256"}}) {
    std::vector<std::string> args = {"--video", kVideo, "-p", "Describe this video.",
                                     "--stats", "json"};
    args.insert(args.end(), extra.begin(), extra.end());
    const Outcome r = reel(with_vision(args));
    EXPECT_EQ(r.code, 0) << r.err;
    EXPECT_NE(r.err.find("took"), std::string::npos) << "one line says what was chosen: " << r.err;
  }
  // No room at all: refused with the numbers, before anything is decoded.
  const Outcome r =
      reel(with_vision({"--video", kVideo, "-p", "Describe.", "-c", "64", "-n", "60"}));
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("60"), std::string::npos) << r.err;
}

// Item 2: a 12-megapixel photo is sized down to fit the context, saying so (its own budget
// would be 16384 tokens). -c 2048 rather than the default keeps the encoder's work small
// enough for the sanitizer build.
TEST_F(Edges, LargePhotoIsSizedDownToFitTheContext) {
  const std::string big = (dir_ / "big.jpg").string();
  const std::string make =
      "ffmpeg -loglevel error -f lavfi -i testsrc2=size=4000x3000 "
      "-frames:v 1 -y '" +
      big + "'";
  ASSERT_EQ(std::system(make.c_str()), 0);
  const Outcome r = reel(with_vision(
      {"--image", big, "-p", "What is this?", "-n", "4", "-c", "2048", "--stats", "json"}));
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.err.find("sized down"), std::string::npos) << r.err;
  const auto stats = last_stats(r.err);
  EXPECT_GT(stats["image_tokens"].get<int>(), 1500) << "the budget is used, not wasted";
  EXPECT_LE(stats["prompt_tokens"].get<int>() + 4, 2048);
}

// Item 2: a video longer than 5 minutes at the default 2 fps and context is sampled down to
// what the 4096-token context holds with room for a 4-token answer, before decoding.
TEST_F(Edges, LongVideoFitsTheDefaultContext) {
  const std::string clip = (dir_ / "long.mp4").string();
  const std::string make =
      "ffmpeg -loglevel error -f lavfi -i testsrc2=size=64x48:rate=4 "
      "-t 360 -c:v libx264 -g 16 -y '" +
      clip + "'";
  ASSERT_EQ(std::system(make.c_str()), 0);
  const Outcome r =
      reel(with_vision({"--video", clip, "-p", "What happens?", "-n", "4", "--stats", "json"}));
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.err.find("took"), std::string::npos) << r.err;
  const auto stats = last_stats(r.err);
  EXPECT_LE(stats["prompt_tokens"].get<int>() + 4, 4096);
  EXPECT_GT(stats["prompt_tokens"].get<int>(), 3000) << "the budget is used, not wasted";
}

// Item 2: reel frames -c reports the whole prompt's tokens beside the visual tokens.
TEST_F(Edges, FramesReportsPromptTokens) {
  const Outcome r = reel({"frames", kVideo, "-c", "1024"});
  ASSERT_EQ(r.code, 0) << r.err;
  const auto j = nlohmann::json::parse(r.out);
  EXPECT_GT(j["prompt_tokens"].get<int>(), j["tokens"].get<int>());
  EXPECT_LE(j["prompt_tokens"].get<int>() + j["answer_reserve"].get<int>(), 1024);
}

// Item 7: media are checked before the models load: a typo is reported first.
TEST_F(Edges, MediaAreCheckedBeforeTheModels) {
  const Outcome image = reel({"-m", "/nonexistent/model.gguf", "--mmproj", kMmproj, "--image",
                              "/nonexistent/typo.png", "-p", "hi"});
  EXPECT_NE(image.err.find("typo.png"), std::string::npos) << image.err;
  const Outcome video = reel({"-m", "/nonexistent/model.gguf", "--mmproj", kMmproj, "--video",
                              file("notavideo.mp4", "garbage"), "-p", "hi"});
  EXPECT_NE(video.err.find("notavideo.mp4"), std::string::npos) << video.err;
}

// Item 10: no progress bar (carriage returns) when stderr is not a terminal.
TEST_F(Edges, NoProgressOnANonTerminal) {
  const Outcome r =
      reel(with_vision({"--image", kImage, "--video", kVideo, "-p", "hi", "-n", "2"}));
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.err.find('\r'), std::string::npos) << r.err;
}

// Item 9: --help shows every default.
TEST_F(Edges, HelpShowsDefaults) {
  const Outcome r = reel({"--help"});
  EXPECT_EQ(r.code, 0);
  for (const char* d : {"4096", "3407", "0.7", "0.8", "20", "256", "64", "16384"})
    EXPECT_NE(r.out.find(d), std::string::npos) << d;
}

// Item 5: Ctrl-C in one-shot mode exits 130 at once.
TEST_F(Edges, CtrlCInOneShotExits130AtOnce) {
  Process p({kReel, "-m", kModel, "-t", "2", "-p", "Tell a long story.", "-n", "1000000", "--temp",
             "1", "-c", "32768"});
  p.close_stdin();
  // loading, then answering
  std::this_thread::sleep_for(std::chrono::duration<double>(scaled(1.5)));
  const double t0 = Process::now();
  p.signal(SIGINT);
  EXPECT_EQ(p.wait_exit(scaled(5)), 130);
  EXPECT_LT(Process::now() - t0, scaled(0.5));
}

// Item 5: in chat, Ctrl-C stops the answer within half a second and returns to the prompt with
// the conversation as it was; a Ctrl-C at the (empty) prompt then exits 130.
TEST_F(Edges, CtrlCInChatStopsTheTurnThenExits) {
  Process p({kReel, "-m", kModel, "-t", "2", "-n", "1000000", "--temp", "1", "-c", "32768",
             "--stats", "json"});
  p.write_line("Tell a long story.");
  ASSERT_TRUE(p.wait_for(" ", scaled(60), /*on_stderr=*/false)) << p.err();  // answering
  const double t0 = Process::now();
  p.signal(SIGINT);
  ASSERT_TRUE(p.wait_for("stopped", scaled(5))) << p.err();
  EXPECT_LT(Process::now() - t0, scaled(0.5));
  EXPECT_EQ(p.wait_exit(0.2), -1) << "still running";
  p.signal(SIGINT);  // the second in a row
  EXPECT_EQ(p.wait_exit(scaled(5)), 130) << p.err();
}

// Item 4 + 5: after a stopped turn, the next turn brings the media in and answers exactly as
// the same turn in a fresh run.
TEST_F(Edges, AfterAStoppedTurnTheVideoComesIn) {
  const std::vector<std::string> args = {"-m", kModel,    "--mmproj", kMmproj,  "-t",
                                         "2",  "--video", kVideo,     "--temp", "0",
                                         "-n", "64",      "--stats",  "json"};
  const Outcome fresh = reel(args, "<video> What happens?");
  ASSERT_EQ(fresh.code, 0) << fresh.err;
  const auto want = last_stats(fresh.err);
  ASSERT_GT(want["video_tokens"].get<int>(), 0) << fresh.err;

  std::vector<std::string> argv = args;
  argv.insert(argv.begin(), kReel);
  Process p(argv);
  p.write_line("<video> Tell a long story.");
  ASSERT_TRUE(p.wait_for(" ", scaled(60), /*on_stderr=*/false)) << p.err();
  p.signal(SIGINT);
  ASSERT_TRUE(p.wait_for("stopped", scaled(5))) << p.err();
  EXPECT_EQ(p.err().find("generated_ids"), std::string::npos) << "the first turn was stopped";
  p.write_line("<video> What happens?");
  p.close_stdin();
  EXPECT_EQ(p.wait_exit(scaled(60)), 0) << p.err();
  const auto got = last_stats(p.err());
  EXPECT_EQ(got["video_tokens"], want["video_tokens"]);
  // The stopped turn had read the video: this one reuses that part of the cache (same
  // identity), so the prompt is the fresh run's, partly computed before.
  EXPECT_EQ(got["prompt_tokens"].get<int>() + got["prompt_tokens_reused"].get<int>(),
            want["prompt_tokens"].get<int>());
  EXPECT_EQ(got["generated_ids"], want["generated_ids"]);
}

// --media-cache: a second run about the same video skips decoding and encoding and says so;
// a corrupt entry is dropped and recomputed; other sampling is another entry. The answer is
// the same every time.
TEST_F(Edges, MediaCacheServesALaterRun) {
  const std::string cache = (dir_ / "cache").string();
  auto run = [&](std::vector<std::string> extra = {}) {
    std::vector<std::string> args = {"--video", kVideo,    "-p",   "What happens?", "-n",
                                     "6",       "--stats", "json", "--media-cache", cache};
    args.insert(args.end(), extra.begin(), extra.end());
    const Outcome r = reel(with_vision(args));
    EXPECT_EQ(r.code, 0) << r.err;
    return r;
  };
  const Outcome first = run();
  const auto s1 = last_stats(first.err);
  EXPECT_EQ(s1["media_cache_hits"], 0);
  EXPECT_GT(s1["vision_encode_ms"].get<double>(), 0);
  std::vector<fs::path> entries;
  for (const auto& e : fs::directory_iterator(cache)) entries.push_back(e.path());
  ASSERT_EQ(entries.size(), 1u);

  const Outcome second = run();
  const auto s2 = last_stats(second.err);
  EXPECT_EQ(s2["media_cache_hits"], 1);
  EXPECT_EQ(s2["vision_encode_ms"].get<double>(), 0);
  EXPECT_NE(second.err.find("taken from the media cache"), std::string::npos) << second.err;
  EXPECT_EQ(s2["generated_ids"], s1["generated_ids"]);

  {  // flip one byte in the middle of the entry: detected, dropped, recomputed
    std::fstream f(entries[0], std::ios::in | std::ios::out | std::ios::binary);
    f.seekg(0, std::ios::end);
    const std::streamoff mid = f.tellg() / 2;
    f.seekg(mid);
    const char c = static_cast<char>(f.get());
    f.seekp(mid);
    f.put(static_cast<char>(c ^ 0x5a));
  }
  const Outcome third = run();
  const auto s3 = last_stats(third.err);
  EXPECT_EQ(s3["media_cache_hits"], 0) << "a corrupt entry is never trusted";
  EXPECT_EQ(s3["generated_ids"], s1["generated_ids"]);
  EXPECT_EQ(last_stats(run().err)["media_cache_hits"], 1) << "rewritten after the corrupt one";

  const Outcome other = run({"--frames", "4"});
  EXPECT_EQ(last_stats(other.err)["media_cache_hits"], 0) << "other sampling, other entry";
}

// --media-cache without a vision model is a usage error, for the CLI and the server alike, and a
// folder that cannot be one fails before any model loads (the server: before it listens). Both
// used to pass silently (no vision model) or fail only after the server said "listening".
TEST_F(Edges, MediaCacheFlagIsCheckedBeforeAnythingLoads) {
  const std::string not_a_folder = file("plain-file", "x");
  for (const bool serve : {false, true}) {
    std::vector<std::string> head;
    if (serve) head = {"serve", "-m", kModel, "--port", "0"};
    auto args = [&](std::vector<std::string> more) {
      std::vector<std::string> a = head;
      if (!serve) a = {"-m", kModel, "-p", "hi", "-n", "1"};
      a.insert(a.end(), more.begin(), more.end());
      return a;
    };
    const Outcome no_vision = reel(args({"--media-cache", (dir_ / "c").string()}));
    EXPECT_EQ(no_vision.code, 2) << no_vision.err;
    EXPECT_EQ(lines(no_vision.err), 1) << no_vision.err;
    EXPECT_NE(no_vision.err.find("--media-cache needs a vision model"), std::string::npos)
        << no_vision.err;
    const Outcome bad = reel(args({"--mmproj", kMmproj, "--media-cache", not_a_folder}));
    EXPECT_EQ(bad.code, 1) << bad.err;
    EXPECT_EQ(lines(bad.err), 1) << bad.err;
    EXPECT_NE(bad.err.find("cannot use as the media cache folder"), std::string::npos) << bad.err;
    EXPECT_EQ(bad.err.find("listening"), std::string::npos) << bad.err;
  }
}

}  // namespace
}  // namespace reel::test
