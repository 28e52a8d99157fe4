// Frame sampling and the clip-level smart_resize against transformers 5.23 semantics (spec §4).
#include "media/sampling.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

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

}  // namespace
}  // namespace reel::media
