// Frame sampling and the clip-level smart_resize against transformers 5.23 semantics (spec §4).
#include "media/sampling.h"

#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <numeric>
#include <utility>

#include "common/error.h"

namespace reel::media {
namespace {

TEST(SampleReference, SpecWorkedExample) {
  // Spec §4.3: 300 frames at 30 fps, fps=2 -> 20 frames.
  const std::vector<int64_t> want = {0,   16,  31,  47,  63,  79,  94,  110, 126, 142,
                                     157, 173, 189, 205, 220, 236, 252, 268, 283, 299};
  EXPECT_EQ(sample_reference(300, 30.0), want);
}

TEST(SampleReference, HalfToEvenRounding) {
  // linspace(0, 9, 3) = 0, 4.5, 9: numpy rounds 4.5 to 4. Asked via num_frames.
  EXPECT_EQ(sample_reference(10, 30, 2, 4, 768, 3), (std::vector<int64_t>{0, 4, 9}));
  // linspace(0, 5, 3) = 0, 2.5, 5 -> 0, 2, 5.
  EXPECT_EQ(sample_reference(6, 30, 2, 4, 768, 3), (std::vector<int64_t>{0, 2, 5}));
}

TEST(SampleReference, ClampsToMinMaxAndTotal) {
  // 1 s at 30 fps -> int(2) = 2, raised to min_frames 4: linspace(0, 29, 4) = 0, 9.67, 19.33, 29.
  EXPECT_EQ(sample_reference(30, 30.0), (std::vector<int64_t>{0, 10, 19, 29}));
  // Fewer frames than min_frames: every frame once.
  EXPECT_EQ(sample_reference(3, 30.0), (std::vector<int64_t>{0, 1, 2}));
  // Long video: max_frames.
  EXPECT_EQ(sample_reference(1'000'000, 30.0).size(), 768u);
  EXPECT_EQ(sample_reference(1'000'000, 30.0).back(), 999'999);
  EXPECT_TRUE(sample_reference(0, 30.0).empty());
}

TEST(SampleReference, UnknownFpsIs24AndTruncation) {
  // 240 frames, fps unknown -> 24: int(240 / 24 * 2) = 20.
  EXPECT_EQ(sample_reference(240, 0).size(), 20u);
  // 239 / 24 * 2 = 19.92 -> int() = 19.
  EXPECT_EQ(sample_reference(239, 0).size(), 19u);
  // The shared clip's numbers: 240 frames at ~23.9 fps -> 20 frames.
  EXPECT_EQ(sample_reference(240, 23.884).size(), 20u);
}

TEST(SampleReference, NumFramesIsNotClamped) {
  // transformers does not clamp an explicit num_frames: linspace repeats indices.
  EXPECT_EQ(sample_reference(3, 30, 2, 4, 768, 5), (std::vector<int64_t>{0, 0, 1, 2, 2}));
}

TEST(SampleEvenly, Definition) {
  EXPECT_EQ(sample_evenly(100, 5), (std::vector<int64_t>{0, 25, 50, 74, 99}));  // 24.75, 74.25
  EXPECT_EQ(sample_evenly(3, 8), (std::vector<int64_t>{0, 1, 2}));
  EXPECT_EQ(sample_evenly(10, 1), (std::vector<int64_t>{0}));
  EXPECT_TRUE(sample_evenly(10, 0).empty());
}

TEST(NumpyLinspace, ExactEndpoint) {
  const auto v = numpy_linspace(0, 299, 20);
  EXPECT_EQ(v.back(), 299.0);
  EXPECT_DOUBLE_EQ(v[1], 299.0 / 19);
}

TEST(SmartResizeVideo, SpecExample1280x720) {
  // Spec §4.3: 20 frames of 1280x720 with the model's budget -> 704x1280.
  const Size2 s = smart_resize_video(20, 720, 1280, kQwen3VLVideoBudget);
  EXPECT_EQ(s.height, 704);
  EXPECT_EQ(s.width, 1280);
}

TEST(SmartResizeVideo, ClassDefaultBudgetShrinks) {
  // Class default longest_edge 786432 over 20 frames: t'h'w' = 20*704*1280 > max.
  // beta = sqrt(20*720*1280/786432) = 4.841..; h = floor(720/beta/32)*32 = 128, w = 256.
  const Size2 s = smart_resize_video(20, 720, 1280, VideoBudget{});
  EXPECT_EQ(s.height, 128);
  EXPECT_EQ(s.width, 256);
}

TEST(SmartResizeVideo, GrowsSmallClips) {
  // 4 frames of 64x64 = 16384*4 < 131072: beta = sqrt(131072/16384) = 2.83 -> ceil(181/32)*32.
  const Size2 s = smart_resize_video(4, 64, 64, VideoBudget{});
  EXPECT_EQ(s.height, 192);
  EXPECT_EQ(s.width, 192);
}

TEST(SmartResizeVideo, UpscalesSidesBelowFactor) {
  // 10x40 -> scale 3.2 -> 32x128 (int()), then rounding: 32x128; budget large enough.
  const Size2 s = smart_resize_video(2, 10, 40, VideoBudget{0, 1 << 30, 32, 2});
  EXPECT_EQ(s.height, 32);
  EXPECT_EQ(s.width, 128);
}

TEST(SmartResizeVideo, OddFrameCountRoundsHalfEven) {
  // n=3: t' = round(1.5)*2 = 4; n=5: round(2.5) = 2 -> t' = 4. Budget exactly 4*32*32.
  const VideoBudget b{0, 4 * 32 * 32, 32, 2};
  EXPECT_EQ(smart_resize_video(5, 32, 32, b).height, 32);  // 4*32*32 not > max
  EXPECT_EQ(smart_resize_video(3, 32, 32, b).height, 32);
}

TEST(SmartResizeVideo, Errors) {
  EXPECT_THROW(smart_resize_video(1, 100, 100), Error);
  EXPECT_THROW(smart_resize_video(4, 0, 100), Error);
  EXPECT_THROW(smart_resize_video(4, 32, 32 * 201), Error);
}

TEST(CappedMaxPixels, MirrorsQwenVlUtils) {
  // 20 frames, model budget: min(786432, 25165824/20=1258291) = 786432 per frame.
  EXPECT_EQ(capped_max_pixels(20, kQwen3VLVideoBudget), 786432 * 20);
  const Size2 s = smart_resize_video(20, 720, 1280,
                                     VideoBudget{4096, capped_max_pixels(20, kQwen3VLVideoBudget)});
  EXPECT_EQ(s.height, 640);  // spec §4.3's qwen-vl-utils size
  EXPECT_EQ(s.width, 1152);
}

nlohmann::json load_fixture(const char* name) {
  const std::filesystem::path p = std::filesystem::path(REEL_FIXTURE_SRC) / "video" / name;
  std::ifstream in(p);
  EXPECT_TRUE(in.good()) << p;
  return nlohmann::json::parse(in);
}

// Indices transformers 5.23 produced for many (total_frames, video_fps[, num_frames]) cases.
TEST(SampleReference, TransformersFixture) {
  const auto j = load_fixture("sampling.json");
  int checked = 0;
  for (const auto& c : j.at("cases")) {
    if (c.value("error_stage", "") == "sample_frames") continue;  // total_frames == 0
    const int64_t total = c.at("total_frames");
    const double vfps = c.at("video_fps").is_null() ? 0.0 : double(c["video_fps"]);
    std::optional<int64_t> num;
    if (c.at("mode") == "num_frames") num = int64_t(c.at("num_frames"));
    const auto want = c.at("indices").get<std::vector<int64_t>>();
    EXPECT_EQ(sample_reference(total, vfps, 2.0, 4, 768, num), want) << c.dump();
    ++checked;
  }
  EXPECT_GT(checked, 300);
}

TEST(SmartResizeVideo, TransformersFixture) {
  const auto j = load_fixture("smart_resize.json");
  for (const auto& c : j.at("cases")) {
    const VideoBudget b{c.at("min_pixels"), c.at("max_pixels"), 32, 2};
    const int n = c.at("num_frames"), h = c.at("h"), w = c.at("w");
    if (c.contains("error")) {
      EXPECT_THROW(smart_resize_video(n, h, w, b), Error) << c.dump();
      continue;
    }
    if (c.contains("cap_pixels_per_frame")) {
      EXPECT_EQ(capped_max_pixels(n, kQwen3VLVideoBudget), int64_t(c["max_pixels"])) << c.dump();
    }
    const Size2 s = smart_resize_video(n, h, w, b);
    EXPECT_EQ(s.height, int(c["result"][0])) << c.dump();
    EXPECT_EQ(s.width, int(c["result"][1])) << c.dump();
  }
}

// ---- variable frame rate --------------------------------------------------------------------

// A constant-rate VideoInfo (no per-frame times), as probe_video reports one.
VideoInfo cfr_info(int64_t n, double fps) {
  VideoInfo info;
  info.n_frames = n;
  info.fps = fps;
  info.duration_s = double(n) / fps;
  return info;
}

// A variable-rate VideoInfo with these frame times (average rate n / duration, as probed).
VideoInfo vfr_info(std::vector<double> times, double last_frame_s) {
  VideoInfo info;
  info.n_frames = int64_t(times.size());
  info.duration_s = times.back() + last_frame_s;
  info.fps = double(info.n_frames) / info.duration_s;
  info.vfr_times_s = std::make_shared<const std::vector<double>>(std::move(times));
  return info;
}

TEST(SampleByTime, NearestFrameToEvenlySpacedTimes) {
  // Frames at 0, 0.1, 0.2, then 1.0, 2.0, 3.0: targets 0, 1, 2, 3 take the frames at those
  // times, not the index-evenly 0, 2, 3, 5 (0, 0.2, 1.0, 3.0 s).
  const std::vector<double> t = {0, 0.1, 0.2, 1.0, 2.0, 3.0};
  EXPECT_EQ(sample_by_time(t, 4), (std::vector<int64_t>{0, 3, 4, 5}));
  // Targets 0, 0.5, 1, 1.5, 2, 2.5, 3 (exact in binary): 0.5 is nearer 0.2 than 1.0; 1.5 and
  // 2.5 are exact ties and take the earlier frame, the frames at 1 and 2 s, already taken.
  EXPECT_EQ(sample_by_time(t, 7), (std::vector<int64_t>{0, 2, 3, 4, 5}));
  // Ties with nothing taken yet: frames at 0, 2, 4 s, targets 0, 1, 2, 3, 4 -> 0, 0, 1, 1, 2,
  // each taken once.
  const std::vector<double> tie = {0, 2, 4};
  EXPECT_EQ(sample_by_time(tie, 5), (std::vector<int64_t>{0, 1, 2}));
  // A frame held for 4 s: targets inside the hold pick its first or last frame, once each.
  const std::vector<double> hold = {0, 0.1, 0.2, 0.3, 4.3, 4.4};
  EXPECT_EQ(sample_by_time(hold, 12), (std::vector<int64_t>{0, 3, 4, 5}));
  EXPECT_EQ(sample_by_time(t, 1), (std::vector<int64_t>{0}));
  EXPECT_TRUE(sample_by_time(t, 0).empty());
  EXPECT_TRUE(sample_by_time({}, 3).empty());
}

TEST(SampleByTime, ConstantRateTimesGiveTheReferenceIndicesAwayFromTies) {
  // On a regular grid nearest-in-time is round(linspace(0, T-1, n)); only exact .5 ties differ
  // (the reference rounds half to even, sample_by_time takes the earlier frame), which is why
  // constant-rate videos keep sample_reference rather than relying on this.
  std::vector<double> t(300);
  for (size_t i = 0; i < t.size(); ++i) t[i] = double(i) / 30;
  EXPECT_EQ(sample_by_time(t, 20), sample_reference(300, 30.0));
}

TEST(SampleVideo, ConstantRateIsTheReference) {
  for (const auto& [n, fps] : std::vector<std::pair<int64_t, double>>{
           {300, 30.0}, {240, 23.884}, {30, 10.0}, {3, 30.0}, {100000, 29.97}, {7, 0.5}}) {
    const VideoInfo info = cfr_info(n, fps);
    EXPECT_EQ(sample_video(info), sample_reference(n, fps)) << n << " " << fps;
    EXPECT_EQ(sample_video(info, 1.0, 2, 100), sample_reference(n, fps, 1.0, 2, 100));
    EXPECT_EQ(sample_video_evenly(info, 8), sample_evenly(n, 8));
  }
}

TEST(SampleVideo, VariableRateKeepsTheCountAndSpreadsInTime) {
  // 20 frames 40 ms apart (0.8 s), then 30 frames 100 ms apart (3 s): 50 frames in 3.8 s.
  std::vector<double> t;
  for (int i = 0; i < 20; ++i) t.push_back(i * 0.04);
  for (int i = 0; i < 30; ++i) t.push_back(0.8 + i * 0.1);
  const VideoInfo info = vfr_info(t, 0.1);
  // The reference count: int(50 / (50 / 3.8) * 2) = 7 (same as transformers).
  const auto ref = sample_reference(50, info.fps);
  const auto got = sample_video(info);
  ASSERT_EQ(got.size(), ref.size());
  ASSERT_EQ(got.size(), 7u);
  // Targets linspace(0, 3.7, 7) = 0, 0.6167, 1.2333, 1.85, 2.4667, 3.0833, 3.7: every chosen
  // frame lies within half the slow part's 100 ms spacing of its target.
  const auto targets = numpy_linspace(0, 3.7, 7);
  for (size_t k = 0; k < got.size(); ++k)
    EXPECT_LE(std::fabs(t[size_t(got[k])] - targets[k]), 0.05 + 1e-12) << k;
  // The reference's index-even choice puts 3 of 7 frames in the first 0.8 s.
  EXPECT_EQ(ref, (std::vector<int64_t>{0, 8, 16, 24, 33, 41, 49}));
  EXPECT_EQ(got, (std::vector<int64_t>{0, 15, 24, 30, 37, 43, 49}));
  const auto even = sample_video_evenly(info, 4);  // linspace(0, 3.7, 4): 0, 1.233, 2.467, 3.7
  EXPECT_EQ(even, (std::vector<int64_t>{0, 24, 37, 49}));
  // More frames asked than the video has: every frame once, as sample_evenly gives.
  std::vector<int64_t> all(50);
  std::iota(all.begin(), all.end(), 0);
  EXPECT_EQ(sample_video_evenly(info, 100), all);
  EXPECT_TRUE(sample_video_evenly(info, 0).empty());
}

}  // namespace
}  // namespace reel::media
