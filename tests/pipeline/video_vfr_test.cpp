// Video plans on clips made at test time with the ffmpeg CLI: a variable frame rate clip gets
// the frames' true presentation times in its prompt timestamps and frames spread evenly in
// time; constant frame rate clips (including NTSC rates whose Matroska pts jitter by a
// millisecond) keep transformers' index / fps arithmetic bit for bit.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "media/sampling.h"
#include "pipeline/video_encoder.h"
#include "../media/ffprobe.h"

namespace reel {
namespace {

namespace fs = std::filesystem;

using test::relative_pts;
using test::run_output;

class VideoVfr : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    ASSERT_EQ(std::system("ffmpeg -version >/dev/null 2>&1"), 0)
        << "the ffmpeg CLI is needed: run scripts/install-deps.sh";
    dir_ = fs::temp_directory_path() / ("reel-vfr-test-" + std::to_string(getpid()));
    fs::create_directories(dir_);
  }
  static void TearDownTestSuite() { fs::remove_all(dir_); }

  static fs::path make(const std::string& name, const std::string& inputs_and_args) {
    const fs::path out = dir_ / name;
    const std::string cmd = "ffmpeg -y -v error " + inputs_and_args + " '" + out.string() + "'";
    EXPECT_EQ(std::system(cmd.c_str()), 0) << cmd;
    return out;
  }

  // 30 fps for 4 s, then 2 fps for 8 s, in Matroska (1 ms time base): 120 + 16 = 136 frames
  // over 12 s, an average of 11.33 fps.
  static fs::path vfr_clip() {
    return make("vfr.mkv",
                "-f lavfi -i testsrc2=size=128x96:rate=30:duration=4 "
                "-f lavfi -i testsrc2=size=128x96:rate=2:duration=8 "
                "-filter_complex \"[0:v][1:v]concat=n=2:v=1[v]\" -map \"[v]\" -vsync vfr "
                "-c:v libx264 -g 15");
  }

  static inline fs::path dir_;
};

// ffprobe prints pts_time with 6 decimals; the file's pts are exact integer milliseconds.
constexpr double kPrintedPts = 1e-6;

TEST_F(VideoVfr, TimestampsAreThePairsPresentationTimes) {
  const fs::path f = vfr_clip();
  const std::vector<double> pts = relative_pts(f);
  ASSERT_EQ(pts.size(), 136u);
  const VideoPlan p = plan_video(f.string(), VideoOptions{}, 16, 2, 0);
  ASSERT_TRUE(p.info.variable_rate());
  ASSERT_EQ(p.info.n_frames, 136);
  // transformers' count, int(136 / (136 / 12) * 2) = 24: the same number of frames.
  EXPECT_EQ(p.indices.size(), 24u);
  EXPECT_EQ(p.indices.size(), media::sample_reference(136, p.info.fps).size());
  ASSERT_EQ(p.frames.size() % 2, 0u);
  ASSERT_EQ(p.group_times.size(), p.frames.size() / 2);
  for (size_t g = 0; g < p.group_times.size(); ++g) {
    const double want = (pts[size_t(p.frames[2 * g])] + pts[size_t(p.frames[2 * g + 1])]) / 2;
    EXPECT_NEAR(p.group_times[g], want, kPrintedPts) << g;
  }
  // Evenly in time: the k-th frame lies within half the slow part's 0.5 s frame spacing of
  // k * 11.5 / 23 s, where transformers' choice, evenly in index, spends 21 of its 24 frames
  // on the first 4 s.
  const auto targets = media::numpy_linspace(0, pts.back(), int64_t(p.indices.size()));
  for (size_t k = 0; k < p.indices.size(); ++k)
    EXPECT_NEAR(pts[size_t(p.indices[k])], targets[k], 0.25 + kPrintedPts) << k;
  EXPECT_EQ(std::count_if(p.indices.begin(), p.indices.end(), [](int64_t i) { return i < 120; }),
            8);  // 0 to 3.5 s in 0.5 s steps
  EXPECT_EQ(p.indices, media::sample_by_time(*p.info.vfr_times_s, int64_t(p.indices.size())));
  // The last group's time is true (near 11.5 s), not index / average fps.
  EXPECT_GT(p.group_times.back(), 11.0);

  // --frames N: N frames evenly in time, and the same true timestamps.
  VideoOptions eight;
  eight.n_frames = 8;
  const VideoPlan e = plan_video(f.string(), eight, 16, 2, 0);
  EXPECT_EQ(e.indices, media::sample_by_time(*e.info.vfr_times_s, 8));
  for (size_t g = 0; g < e.group_times.size(); ++g) {
    const double want = (pts[size_t(e.frames[2 * g])] + pts[size_t(e.frames[2 * g + 1])]) / 2;
    EXPECT_NEAR(e.group_times[g], want, kPrintedPts) << g;
  }
}

TEST_F(VideoVfr, AsImagesEachFrameAtItsPresentationTime) {
  const fs::path f = vfr_clip();
  const std::vector<double> pts = relative_pts(f);
  VideoOptions o;
  o.as_images = true;
  o.n_frames = 6;
  const VideoPlan p = plan_video(f.string(), o, 16, 2, 0);
  ASSERT_EQ(p.group_times.size(), 6u);
  for (size_t k = 0; k < p.frames.size(); ++k)
    EXPECT_NEAR(p.group_times[k], pts[size_t(p.frames[k])], kPrintedPts) << k;
}

TEST_F(VideoVfr, ConstantRateKeepsTheReferenceArithmetic) {
  // NTSC 30000/1001 for 20 s: Matroska stores the pts in whole milliseconds (33/34 ms steps);
  // mp4 stores them exactly. Both are constant rate, so the plan is transformers' own.
  for (const char* name : {"ntsc.mkv", "ntsc.mp4"}) {
    const fs::path f = make(name,
                            "-f lavfi -i testsrc2=size=128x96:rate=30:duration=20 "
                            "-r 30000/1001 -c:v libx264 -g 30");
    SCOPED_TRACE(name);
    for (const int n_frames : {0, 7}) {
      VideoOptions o;
      o.n_frames = n_frames;
      const VideoPlan p = plan_video(f.string(), o, 16, 2, 0);
      ASSERT_FALSE(p.info.variable_rate());
      EXPECT_EQ(p.indices, n_frames ? media::sample_evenly(p.info.n_frames, n_frames)
                                    : media::sample_reference(p.info.n_frames, p.info.fps));
      const double fps = p.info.fps;
      for (size_t g = 0; g < p.group_times.size(); ++g) {
        // Bit-exact: transformers' float64 expression, whose rounding decides the text.
        EXPECT_EQ(p.group_times[g],
                  (double(p.frames[2 * g]) / fps + double(p.frames[2 * g + 1]) / fps) / 2)
            << g;
      }
    }
  }
}

}  // namespace
}  // namespace reel
