// Video probing and decoding on clips generated at test time with the ffmpeg CLI (installed by
// scripts/install-deps.sh; a missing ffmpeg fails the suite), plus the shared 10 s H.264 clip.
#include "media/video.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <future>
#include <map>
#include <numeric>
#include <thread>

#include "common/error.h"
#include "ffprobe.h"
#include "media/sampling.h"

namespace reel::media {
namespace {

namespace fs = std::filesystem;

using test::relative_pts;
using test::run_output;

bool has_encoder(const std::string& name) {
  return run_output("ffmpeg -hide_banner -encoders 2>/dev/null").find(" " + name + " ") !=
         std::string::npos;
}

// ffprobe -count_frames: frames the decoder outputs.
int64_t ffprobe_frames(const fs::path& file) {
  const std::string out = run_output(
      "ffprobe -v error -select_streams v:0 -count_frames -show_entries stream=nb_read_frames "
      "-of csv=p=0 '" +
      file.string() + "'");
  return std::stoll(out);
}

// Presentation times of the video packets, ascending, in seconds.
std::vector<double> ffprobe_pts(const fs::path& file) {
  const std::string out = run_output(
      "ffprobe -v error -select_streams v:0 -show_entries packet=pts_time -of csv=p=0 '" +
      file.string() + "' | sort -g");
  std::vector<double> v;
  size_t at = 0;
  while (at < out.size()) {
    const size_t nl = out.find('\n', at);
    const std::string line = out.substr(at, nl - at);
    if (!line.empty()) v.push_back(std::stod(line));
    if (nl == std::string::npos) break;
    at = nl + 1;
  }
  return v;
}

struct Clip {
  Clip(std::string n, std::string a, std::string sz = "160x96", int r = 25, double s = 4,
       std::string extra = "")
      : name(std::move(n)),
        args(std::move(a)),
        size(std::move(sz)),
        rate(r),
        seconds(s),
        extra_input(std::move(extra)) {}
  std::string name;  // file name; the extension picks the container
  std::string args;  // ffmpeg arguments between the inputs and the output
  std::string size;
  int rate;
  double seconds;
  std::string extra_input;  // e.g. an audio source
};

class VideoTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    ASSERT_EQ(std::system("ffmpeg -version >/dev/null 2>&1"), 0)
        << "the ffmpeg CLI is needed: run scripts/install-deps.sh";
    dir_ = fs::temp_directory_path() / ("reel-video-test-" + std::to_string(getpid()));
    fs::create_directories(dir_);
  }
  static void TearDownTestSuite() { fs::remove_all(dir_); }

  static fs::path make(const Clip& c) {
    const fs::path out = dir_ / c.name;
    if (fs::exists(out)) return out;
    const std::string cmd = "ffmpeg -y -v error -f lavfi -i testsrc2=size=" + c.size +
                            ":rate=" + std::to_string(c.rate) +
                            ":duration=" + std::to_string(c.seconds) + " " + c.extra_input + " " +
                            c.args + " '" + out.string() + "'";
    EXPECT_EQ(std::system(cmd.c_str()), 0) << cmd;
    return out;
  }

  static inline fs::path dir_;
};

std::vector<Image> read(VideoReader& r, const std::vector<int64_t>& idx) {
  std::vector<Image> out(idx.size());
  size_t calls = 0;
  r.read_frames(idx, [&](size_t k, Image&& img) {
    EXPECT_EQ(k, calls++);
    out[k] = std::move(img);
  });
  EXPECT_EQ(calls, idx.size());
  return out;
}

std::vector<int64_t> all_frames(int64_t n) {
  std::vector<int64_t> v(static_cast<size_t>(n));
  std::iota(v.begin(), v.end(), 0);
  return v;
}

// Frames read with seeking, in several sets, equal the same frames from one sequential decode.
void expect_seek_matches_sequential(const fs::path& file) {
  SCOPED_TRACE(file.string());
  auto seq_reader = VideoReader::open(file.string());
  const int64_t n = seq_reader->info().n_frames;
  const auto all = read(*seq_reader, all_frames(n));
  const std::vector<std::vector<int64_t>> sets = {{0},
                                                  {n - 1},
                                                  {n / 2},
                                                  {1, 2, 3},
                                                  {n / 3, n / 2, n - 2},
                                                  sample_reference(n, 25),
                                                  sample_evenly(n, 8)};
  auto r = VideoReader::open(file.string());  // one reader for all sets: also seeks backwards
  for (const auto& set : sets) {
    const auto got = read(*r, set);
    for (size_t k = 0; k < set.size(); ++k) {
      ASSERT_EQ(got[k].width, all[size_t(set[k])].width);
      EXPECT_TRUE(got[k].rgb == all[size_t(set[k])].rgb) << "frame " << set[k];
    }
  }
  // Distinct content: testsrc2 frames differ, so a wrong index would show.
  EXPECT_FALSE(all[0].rgb == all[1].rgb);
}

void expect_basic(const fs::path& file, int64_t frames, int w, int h, const std::string& codec) {
  SCOPED_TRACE(file.string());
  const VideoInfo info = probe_video(file.string());
  EXPECT_EQ(info.n_frames, frames);
  EXPECT_EQ(info.n_frames, ffprobe_frames(file));
  EXPECT_EQ(info.width, w);
  EXPECT_EQ(info.height, h);
  EXPECT_EQ(info.codec, codec);
  EXPECT_NEAR(info.fps, 25.0, 0.01);
  EXPECT_NEAR(info.duration_s, frames / 25.0, 0.01);
  auto r = VideoReader::open(file.string());
  EXPECT_NEAR(r->timestamp_s(10), 0.4, 1e-6);
  const auto img = read(*r, {frames - 1});
  EXPECT_EQ(img[0].width, w);
  EXPECT_EQ(img[0].height, h);
  EXPECT_EQ(img[0].rgb.size(), size_t(w) * h * 3);
}

TEST_F(VideoTest, H264Mp4WithBFrames) {
  const auto f = make({"h264.mp4", "-c:v libx264 -g 12 -bf 3 -pix_fmt yuv420p"});
  expect_basic(f, 100, 160, 96, "h264");
  expect_seek_matches_sequential(f);
}

TEST_F(VideoTest, Mpeg4Avi) {
  const auto f = make({"mpeg4.avi", "-c:v mpeg4 -g 10 -q:v 5"});
  expect_basic(f, 100, 160, 96, "mpeg4");
  expect_seek_matches_sequential(f);
}

TEST_F(VideoTest, MjpegAviAndMovOddSize444) {
  for (const char* name : {"mjpeg.avi", "mjpeg.mov"}) {
    const auto f = make({name, "-vf scale=97:61,setsar=1 -c:v mjpeg -pix_fmt yuvj444p"});
    expect_basic(f, 100, 97, 61, "mjpeg");
    expect_seek_matches_sequential(f);
  }
}

TEST_F(VideoTest, Vp9Webm) {
  const auto f = make({"vp9.webm", "-c:v libvpx-vp9 -g 15 -deadline realtime -cpu-used 8"});
  expect_basic(f, 100, 160, 96, "vp9");
  expect_seek_matches_sequential(f);
}

TEST_F(VideoTest, HevcMkv) {
  ASSERT_TRUE(has_encoder("libx265")) << "Debian's ffmpeg ships libx265";
  const auto f =
      make({"hevc.mkv", "-c:v libx265 -x265-params log-level=error:keyint=20 -pix_fmt yuv420p"});
  expect_basic(f, 100, 160, 96, "hevc");
  expect_seek_matches_sequential(f);
}

TEST_F(VideoTest, Av1Mkv) {
  ASSERT_TRUE(has_encoder("libsvtav1") || has_encoder("libaom-av1"));
  const std::string enc = has_encoder("libsvtav1") ? "-c:v libsvtav1 -preset 12 -g 20"
                                                   : "-c:v libaom-av1 -cpu-used 8 -g 20";
  const auto f = make({"av1.mkv", enc + " -pix_fmt yuv420p", "160x96", 25, 2});
  expect_basic(f, 50, 160, 96, "av1");
  expect_seek_matches_sequential(f);
}

TEST_F(VideoTest, RotationMetadata) {
  // Debian 12's ffmpeg 5.1 has no -display_rotation and ignores rotate metadata, so the mp4's
  // tkhd matrix is patched to the 90-degree clockwise one, {0, 1, 0, -1, 0, 0, 0, 0, 1}.
  const auto src = make({"rot-src.mp4", "-c:v libx264 -g 12"});
  std::ifstream in(src, std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(in)), {});
  const size_t tkhd = bytes.find("tkhd");
  ASSERT_NE(tkhd, std::string::npos);
  ASSERT_EQ(bytes[tkhd + 4], 0);                  // version 0 layout
  const size_t m = tkhd + 4 + 4 + 4 * 5 + 8 + 8;  // version/flags, times, id, dur, reserved...
  const uint8_t one[4] = {0, 1, 0, 0}, minus_one[4] = {0xFF, 0xFF, 0, 0}, zero[4] = {};
  std::memcpy(&bytes[m + 0], zero, 4);
  std::memcpy(&bytes[m + 4], one, 4);
  std::memcpy(&bytes[m + 12], minus_one, 4);
  std::memcpy(&bytes[m + 16], zero, 4);
  const fs::path f = dir_ / "rot90.mp4";
  std::ofstream(f, std::ios::binary).write(bytes.data(), std::streamsize(bytes.size()));
  EXPECT_NE(run_output("ffprobe -v error -show_streams '" + f.string() + "'").find("rotation=-90"),
            std::string::npos);
  const VideoInfo info = probe_video(f.string());
  EXPECT_EQ(info.rotation, 90);
  EXPECT_EQ(info.width, 96);
  EXPECT_EQ(info.height, 160);
  EXPECT_EQ(info.coded_width, 160);
  VideoLimits raw;
  raw.apply_rotation = false;
  const VideoInfo info_raw = probe_video(f.string(), raw);
  EXPECT_EQ(info_raw.rotation, 0);
  EXPECT_EQ(info_raw.width, 160);
  // The rotated frame is the raw frame turned clockwise: raw bottom-left -> rotated top-left.
  auto r = VideoReader::open(f.string());
  auto rr = VideoReader::open(f.string(), raw);
  const Image a = read(*r, {7})[0], b = read(*rr, {7})[0];
  ASSERT_EQ(a.width, 96);
  for (int y : {0, 50, 159})
    for (int x : {0, 40, 95}) {
      const int sx = y, sy = 95 - x;
      for (int c = 0; c < 3; ++c)
        EXPECT_EQ(a.rgb[(size_t(y) * 96 + x) * 3 + c], b.rgb[(size_t(sy) * 160 + sx) * 3 + c]);
    }
  expect_seek_matches_sequential(f);
}

TEST_F(VideoTest, NonSquarePixels) {
  const auto f = make({"sar.mkv", "-vf setsar=3/2 -c:v libx264 -g 12"});
  const VideoInfo info = probe_video(f.string());
  EXPECT_EQ(info.sar_num, 3);
  EXPECT_EQ(info.sar_den, 2);
  EXPECT_EQ(info.width, 240);  // 160 * 3/2
  EXPECT_EQ(info.height, 96);
  VideoLimits raw;
  raw.apply_sar = false;
  EXPECT_EQ(probe_video(f.string(), raw).width, 160);
  auto r = VideoReader::open(f.string());
  EXPECT_EQ(read(*r, {3})[0].width, 240);
}

TEST_F(VideoTest, VariableFrameRate) {
  // 20 frames 40 ms apart, then 30 frames 100 ms apart.
  const auto f = make({"vfr.mkv",
                       "-vf \"setpts='if(lt(N,20),N*0.04,0.8+(N-20)*0.1)/TB'\" -vsync vfr "
                       "-c:v libx264 -g 10",
                       "160x96", 25, 2});
  auto r = VideoReader::open(f.string());
  EXPECT_EQ(r->info().n_frames, 50);
  EXPECT_EQ(r->info().n_frames, ffprobe_frames(f));
  // libx264 keeps the 1/25 s time base, so 100 ms steps land on 40 ms multiples (1.3 -> 1.28).
  const auto pts = ffprobe_pts(f);
  ASSERT_EQ(pts.size(), 50u);
  for (int64_t i = 0; i < 50; ++i) EXPECT_NEAR(r->timestamp_s(i), pts[i] - pts[0], 1e-6) << i;
  EXPECT_NEAR(r->timestamp_s(10), 0.4, 1e-6);
  EXPECT_GT(r->timestamp_s(49) - r->timestamp_s(48), 0.07);  // the slow part
  EXPECT_NEAR(r->info().duration_s, pts[49] - pts[0] + (pts[49] - pts[48]), 1e-6);
  expect_seek_matches_sequential(f);
}

TEST_F(VideoTest, AudioTrackIgnored) {
  const auto f = make({"audio.mp4", "-map 0:v -map 1:a -c:v libx264 -g 12 -c:a aac -shortest",
                       "160x96", 25, 4, "-f lavfi -i sine=frequency=440:duration=4"});
  const VideoInfo info = probe_video(f.string());
  EXPECT_TRUE(info.has_audio);
  EXPECT_EQ(info.n_frames, 100);
  expect_seek_matches_sequential(f);
}

TEST_F(VideoTest, SeekingAvoidsFullDecode) {
  const auto f = make({"long.mp4", "-c:v libx264 -g 25", "160x96", 25, 10});
  auto r = VideoReader::open(f.string());
  ASSERT_EQ(r->info().n_frames, 250);
  read(*r, {200});
  EXPECT_LT(r->decoded_frames(), 60);  // from the keyframe at 200, plus B-frame lookahead
  // 8 evenly spaced frames of a 10 s clip with 1 s GOPs: at most one GOP each.
  auto r8 = VideoReader::open(f.string());
  read(*r8, sample_evenly(250, 8));
  EXPECT_LT(r8->decoded_frames(), 8 * 25 + 10);
  EXPECT_LT(r8->decoded_frames(), 250);
}

TEST_F(VideoTest, SharedClip) {
  const fs::path f = fs::path(REEL_TEST_DATA) / "media/clip-10s-720x358-h264.mp4";
  ASSERT_TRUE(fs::exists(f)) << f;
  auto r = VideoReader::open(f.string());
  const VideoInfo& info = r->info();
  EXPECT_EQ(info.n_frames, 240);
  EXPECT_EQ(info.n_frames, ffprobe_frames(f));
  EXPECT_EQ(info.coded_width, 720);
  EXPECT_EQ(info.coded_height, 358);
  EXPECT_EQ(info.width, 854);  // 720 * 427/360 = 854.08, truncated like scale=iw*sar:ih
  EXPECT_EQ(info.height, 358);
  EXPECT_TRUE(info.has_audio);
  EXPECT_EQ(info.codec, "h264");
  EXPECT_NEAR(info.header_fps, 23.88, 0.01);
  EXPECT_NEAR(info.duration_s, 10.024, 0.01);
  // 240 frames at ~23.9 fps, fps=2 -> int(20.0x) = 20 frames (either fps value).
  // linspace(0, 239, 20): step 12.578..., e.g. 75.47 -> 75, 201.26 -> 201.
  const std::vector<int64_t> want = {0,   13,  25,  38,  50,  63,  75,  88,  101, 113,
                                     126, 138, 151, 164, 176, 189, 201, 214, 226, 239};
  EXPECT_EQ(sample_reference(info.n_frames, info.fps), want);
  EXPECT_EQ(sample_reference(info.n_frames, info.header_fps), want);
  // Its GOPs are long (keyframes at 0, 39, 81, 146, 189), so 8 evenly spaced frames need most
  // of it; two late frames start at a late keyframe (85 frames decoded, not 240).
  const auto frames = read(*r, {200, 230});
  EXPECT_LT(r->decoded_frames(), 120) << "late frames must not decode the whole clip";
  EXPECT_EQ(frames[0].width, 854);
  // Seeking result equals a sequential decode with display corrections off.
  VideoLimits raw;
  raw.apply_sar = false;
  auto a = VideoReader::open(f.string(), raw);
  auto b = VideoReader::open(f.string(), raw);
  const auto all = read(*a, all_frames(240));
  const auto some = read(*b, want);
  for (size_t k = 0; k < want.size(); ++k) EXPECT_TRUE(some[k].rgb == all[size_t(want[k])].rgb);
}

// ---- bad input ------------------------------------------------------------------------------

// Bad files and values are InvalidInput; what Reel cannot decode is Unsupported (see below).
void expect_error(const std::string& path, const std::string& part, const VideoLimits& l = {},
                  ErrorKind kind = ErrorKind::InvalidInput) {
  try {
    auto r = VideoReader::open(path, l);
    std::vector<int64_t> idx = all_frames(r->info().n_frames);
    r->read_frames(idx, [](size_t, Image&&) {});
    ADD_FAILURE() << path << ": no error";
  } catch (const Error& e) {
    const std::string msg = e.what();
    EXPECT_EQ(msg.rfind(path + ": ", 0), 0u) << msg;
    EXPECT_NE(msg.find(part), std::string::npos) << msg;
    EXPECT_EQ(e.kind(), kind) << msg << " is " << error_kind_name(e.kind());
  }
}

TEST_F(VideoTest, Errors) {
  expect_error((dir_ / "missing.mp4").string(), "no such file");
  expect_error(dir_.string(), "directory");
  const fs::path text = dir_ / "text.mp4";
  std::ofstream(text) << "this is not a video\n";
  expect_error(text.string(), "not a recognized video");
  const fs::path empty = dir_ / "empty.mkv";
  std::ofstream{empty};
  expect_error(empty.string(), "not a recognized video");
  const fs::path wav = dir_ / "audio.wav";
  ASSERT_EQ(std::system(
                ("ffmpeg -y -v error -f lavfi -i sine=duration=1 '" + wav.string() + "'").c_str()),
            0);
  expect_error(wav.string(), "no video stream");
  const auto f = make({"limits.mkv", "-c:v libx264 -g 12"});
  VideoLimits small;
  small.max_pixels = 1000;
  expect_error(f.string(), "over the limit", small);
  VideoLimits few;
  few.max_frames = 10;
  expect_error(f.string(), "more than 10", few);
}

// A codec FFmpeg has no decoder for: an MPEG-4 AVI whose FourCC is rewritten to one nobody
// knows. The file is well-formed, so this is Unsupported (a server's 415), not invalid input.
TEST_F(VideoTest, UnknownCodecIsUnsupported) {
  const auto src = make({"fourcc-src.avi", "-c:v mpeg4"});
  std::ifstream in(src, std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(in)), {});
  size_t replaced = 0;
  for (size_t at = bytes.find("FMP4"); at != std::string::npos; at = bytes.find("FMP4", at)) {
    bytes.replace(at, 4, "ZZZZ");  // the stream header's handler and the bitmap's compression
    ++replaced;
  }
  ASSERT_EQ(replaced, 2u) << "ffmpeg's AVI layout changed";
  const fs::path f = dir_ / "unknown-codec.avi";
  std::ofstream(f, std::ios::binary).write(bytes.data(), std::streamsize(bytes.size()));
  expect_error(f.string(), "unsupported video codec with tag 'ZZZZ'", {}, ErrorKind::Unsupported);
  // probe_video, the check made before any model loads, opens the decoder too.
  EXPECT_THROW(probe_video(f.string()), Unsupported);
}

TEST_F(VideoTest, TruncatedAndCorrupt) {
  const auto f = make({"trunc-src.mkv", "-c:v libx264 -g 12"});
  const auto size = fs::file_size(f);
  std::ifstream in(f, std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(in)), {});
  // Cut in half: the first frames still decode.
  const fs::path half = dir_ / "half.mkv";
  std::ofstream(half, std::ios::binary).write(bytes.data(), std::streamsize(size / 2));
  auto r = VideoReader::open(half.string());
  EXPECT_GT(r->info().n_frames, 10);
  EXPECT_LT(r->info().n_frames, 100);
  read(*r, sample_evenly(r->info().n_frames, 8));
  // Garbage over the middle: still decodes (broken frames replaced), never crashes.
  std::string corrupt = bytes;
  for (size_t i = size / 3; i < size / 3 + 2000 && i < size; ++i) corrupt[i] = char(i * 131);
  const fs::path bad = dir_ / "corrupt.mkv";
  std::ofstream(bad, std::ios::binary).write(corrupt.data(), std::streamsize(corrupt.size()));
  try {
    auto rc = VideoReader::open(bad.string());
    read(*rc, all_frames(rc->info().n_frames));
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()).rfind(bad.string() + ": ", 0), 0u);
  }
  // Only the header: no frames.
  const fs::path head = dir_ / "head.mkv";
  std::ofstream(head, std::ios::binary).write(bytes.data(), 600);
  try {
    auto rh = VideoReader::open(head.string());
    read(*rh, {0});
    ADD_FAILURE() << "header-only file decoded";
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()).rfind(head.string() + ": ", 0), 0u) << e.what();
  }
}

// An MPEG-4 stream (found by the video fuzzer) whose header gives colour matrix 170: FFmpeg's
// MPEG-4 decoder passes the value on unchecked, outside AVColorSpace. It decodes with the
// default matrix; reading the field as the enum was undefined behaviour, which the sanitizer
// build of this test (-fno-sanitize-recover) turns into a failure.
TEST_F(VideoTest, ColourMatrixOutsideFfmpegsEnumDecodes) {
  const fs::path f = fs::path(REEL_TEST_DATA) / "media/mpeg4-colour-matrix-170.m4v";
  auto r = VideoReader::open(f.string());
  EXPECT_EQ(r->info().codec, "mpeg4");
  const auto frames = read(*r, sample_evenly(r->info().n_frames, 4));
  ASSERT_FALSE(frames.empty());
  EXPECT_EQ(frames[0].width, 32);
  EXPECT_EQ(frames[0].height, 24);
}

TEST_F(VideoTest, BadIndices) {
  const auto f = make({"idx.mkv", "-c:v libx264 -g 12"});
  auto r = VideoReader::open(f.string());
  std::vector<int64_t> out_of_range = {100};
  EXPECT_THROW(r->read_frames(out_of_range, [](size_t, Image&&) {}), Error);
  std::vector<int64_t> descending = {5, 3};
  EXPECT_THROW(r->read_frames(descending, [](size_t, Image&&) {}), Error);
}

// ---- variable frame rate: per-frame times only where index / fps is not the time ------------

// ffprobe prints pts_time with 6 decimals: 1e-6 covers its rounding (the pts themselves are
// exact integer ticks).
void expect_times_are_pts(const fs::path& file, const VideoInfo& info) {
  SCOPED_TRACE(file.string());
  ASSERT_TRUE(info.variable_rate());
  const auto pts = relative_pts(file);
  ASSERT_EQ(int64_t(pts.size()), info.n_frames);
  ASSERT_EQ(info.vfr_times_s->size(), pts.size());
  for (int64_t i = 0; i < info.n_frames; ++i)
    EXPECT_NEAR(info.frame_time_s(i), pts[size_t(i)], 1e-6) << i;
}

TEST_F(VideoTest, VariableFrameRateTimesFromPts) {
  // The clip of VariableFrameRate: 20 frames 40 ms apart, then 30 frames 100 ms apart (on the
  // 1/25 s grid), in Matroska.
  const auto mkv = make({"vfr.mkv",
                         "-vf \"setpts='if(lt(N,20),N*0.04,0.8+(N-20)*0.1)/TB'\" -vsync vfr "
                         "-c:v libx264 -g 10",
                         "160x96", 25, 2});
  auto r = VideoReader::open(mkv.string());
  expect_times_are_pts(mkv, r->info());
  for (int64_t i = 0; i < r->info().n_frames; ++i)
    EXPECT_EQ(r->info().frame_time_s(i), r->timestamp_s(i)) << i;
  // Frame 20, the first slow one, is shown at 0.8 s; index / fps over the average rate
  // (50 frames in ~3.8 s) would put it at ~1.5 s.
  EXPECT_NEAR(r->info().frame_time_s(20), 0.8, 1e-6);
  EXPECT_GT(20 / r->info().fps, 1.4);

  // Two segments, 30 fps for 1 s then 5 fps for 2 s, concatenated into an H.264 mp4 with
  // B-frames (the concat filter's microsecond time base survives into the mp4).
  const auto mp4 = make({"vfr-concat.mp4",
                         "-filter_complex \"[0:v][1:v]concat=n=2:v=1[v]\" -map \"[v]\" -vsync vfr "
                         "-c:v libx264 -g 10 -bf 2",
                         "160x96", 30, 1, "-f lavfi -i testsrc2=size=160x96:rate=5:duration=2"});
  const VideoInfo info = probe_video(mp4.string());
  // 40 packets; the mp4 muxer's edit list cuts the last one (flagged discard), as
  // ffprobe -count_frames and torchcodec count.
  ASSERT_EQ(info.n_frames, 39);
  EXPECT_EQ(info.n_frames, ffprobe_frames(mp4));
  expect_times_are_pts(mp4, info);
  EXPECT_NEAR(info.frame_time_s(29), 29.0 / 30, 1e-6);
  EXPECT_NEAR(info.frame_time_s(30), 1.0, 1e-6);
  EXPECT_NEAR(info.frame_time_s(38), 2.6, 1e-6);
  expect_seek_matches_sequential(mp4);
}

TEST_F(VideoTest, ConstantFrameRateKeepsIndexOverFps) {
  // Regular pts in every container of the suite, and NTSC 30000/1001 in Matroska, whose 1 ms
  // time base rounds the pts to 33/34 ms steps: all read as constant rate, so times (and the
  // prompt's timestamps) stay transformers' index / fps, bit for bit.
  const std::vector<Clip> clips = {
      {"h264.mp4", "-c:v libx264 -g 12 -bf 3 -pix_fmt yuv420p"},
      {"mpeg4.avi", "-c:v mpeg4 -g 10 -q:v 5"},
      {"vp9.webm", "-c:v libvpx-vp9 -g 15 -deadline realtime -cpu-used 8"},
      {"ntsc.mkv", "-r 30000/1001 -c:v libx264 -g 30", "160x96", 30, 20},
      {"ntsc.mp4", "-r 30000/1001 -c:v libx264 -g 30", "160x96", 30, 20},
  };
  for (const Clip& c : clips) {
    const auto f = make(c);
    SCOPED_TRACE(f.string());
    const VideoInfo info = probe_video(f.string());
    EXPECT_FALSE(info.variable_rate());
    EXPECT_EQ(info.frame_time_s(info.n_frames - 1), double(info.n_frames - 1) / info.fps);
    // The pts do differ from index / fps in the Matroska one, by less than the tolerance.
    const auto pts = relative_pts(f);
    ASSERT_EQ(int64_t(pts.size()), info.n_frames);
    for (size_t i = 0; i < pts.size(); ++i)
      ASSERT_LE(std::fabs(pts[i] - double(i) / info.fps), 0.002 + 1e-6) << i;
  }
}

TEST_F(VideoTest, SharedClipHoldsItsFirstFrameSoIsVariableRate) {
  // Its first frame lasts 66 ms, every later one 1/24 s: index / fps (240 frames over
  // 10.024 s) runs up to 24 ms behind the pts, well over the 1 ms tolerance.
  const fs::path f = fs::path(REEL_TEST_DATA) / "media/clip-10s-720x358-h264.mp4";
  ASSERT_TRUE(fs::exists(f)) << f;
  const VideoInfo info = probe_video(f.string());
  ASSERT_TRUE(info.variable_rate());
  expect_times_are_pts(f, info);
  EXPECT_NEAR(info.frame_time_s(1), 0.066, 1e-3);
  EXPECT_NEAR(info.frame_time_s(239) - info.frame_time_s(1), 238.0 / 24, 1e-3);
}

// ---- paths that are not regular files: refused at once, never opened --------------------------

// probe_video and VideoReader::open on a thread, so that a regression that blocks (a FIFO
// opened for reading waits for a writer) fails the test after 10 s instead of hanging it.
// Returns the error message, or "" on timeout, "no error" when the path was accepted.
std::string open_error_within_10s(const std::string& path) {
  auto result = std::make_shared<std::promise<std::string>>();
  std::future<std::string> done = result->get_future();
  std::thread([path, result] {
    std::string msg = "no error";
    try {
      VideoLimits l;
      l.timeout_s = 5;  // bounds a regression that reads an endless device
      probe_video(path, l);
      VideoReader::open(path, l);
    } catch (const std::exception& e) {
      msg = e.what();
    }
    result->set_value(msg);
  }).detach();
  if (done.wait_for(std::chrono::seconds(10)) != std::future_status::ready) return "";
  return done.get();
}

void expect_refused(const std::string& path, const std::string& reason) {
  const auto t0 = std::chrono::steady_clock::now();
  const std::string msg = open_error_within_10s(path);
  ASSERT_FALSE(msg.empty()) << path << ": still blocked after 10 s";
  EXPECT_EQ(msg.rfind(path + ": ", 0), 0u) << msg;
  EXPECT_NE(msg.find(reason), std::string::npos) << msg;
  EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;  // one line
  // Refused from stat() alone, not after a read that happens to fail.
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(1)) << msg;
}

TEST_F(VideoTest, FifoIsRefusedWithoutBlocking) {
  const fs::path fifo = dir_ / "pipe.mp4";
  ASSERT_EQ(mkfifo(fifo.c_str(), 0600), 0) << std::strerror(errno);
  expect_refused(fifo.string(), "FIFO");
  // Release a reader a regression left waiting on the FIFO (a writer opening and closing
  // gives it end of file), so the detached thread ends.
  const int w = open(fifo.c_str(), O_WRONLY | O_NONBLOCK);
  if (w >= 0) close(w);
}

TEST_F(VideoTest, DirectoryDeviceAndSocketAreRefused) {
  expect_refused(dir_.string(), "is a directory");
  expect_refused("/dev/zero", "device");
  expect_refused("/dev/null", "device");
  const fs::path sock = dir_ / "sock.mp4";
  const int fd = socket(AF_UNIX, SOCK_STREAM, 0);
  ASSERT_GE(fd, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  ASSERT_LT(sock.string().size(), sizeof addr.sun_path);
  std::strncpy(addr.sun_path, sock.c_str(), sizeof addr.sun_path - 1);
  ASSERT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0) << std::strerror(errno);
  expect_refused(sock.string(), "socket");
  close(fd);
  // A symbolic link to a regular file is that file: still read.
  const auto f = make({"idx.mkv", "-c:v libx264 -g 12"});
  const fs::path link = dir_ / "link.mkv";
  fs::create_symlink(f, link);
  EXPECT_EQ(open_error_within_10s(link.string()), "no error");
}

}  // namespace
}  // namespace reel::media
