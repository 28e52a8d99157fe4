// Frame sampling and the clip-level resize budget of transformers' (5.23) Qwen3VLVideoProcessor
// (spec §4.1), plus the original app's "N evenly spaced frames" policy.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <vector>

#include "media/image.h"
#include "media/video.h"

namespace reel::media {

// Qwen3VLVideoProcessor.sample_frames. With num_frames unset:
//   n = int(total_frames / video_fps * fps), clamped to [min_frames, max_frames] and then to
//   total_frames; video_fps <= 0 (unknown) means 24, as transformers assumes.
// With num_frames set (transformers makes it exclusive with fps), n = num_frames unclamped, so
// n > total_frames repeats indices exactly as numpy does.
// indices = numpy.linspace(0, total_frames - 1, n).round() (half to even) as int64.
std::vector<int64_t> sample_reference(int64_t total_frames, double video_fps, double fps = 2.0,
                                      int min_frames = 4, int max_frames = 768,
                                      std::optional<int64_t> num_frames = std::nullopt);

// n evenly spaced frames: linspace(0, total_frames - 1, min(n, total_frames)) rounded half to
// even, the reference formula with a fixed count (n <= 0 or total_frames <= 0: empty).
std::vector<int64_t> sample_evenly(int64_t total_frames, int n);

// Variable frame rate: up to n frames placed evenly in time instead of evenly in index. The
// targets are numpy_linspace(times.front(), times.back(), n); each takes the frame whose time
// is nearest (the earlier one on a tie). times: ascending, one per frame. Indices come out
// ascending and distinct: where frames are further apart than the targets (a frame held on
// screen), several targets pick the same frame and it is taken once, so such a video yields
// fewer than n frames (a repeat would only add a group with the same picture and the same
// timestamp). n <= 0 or no times: empty.
std::vector<int64_t> sample_by_time(std::span<const double> times, int64_t n);

// What the pipeline samples. Constant frame rate: sample_reference / sample_evenly, bit-exact
// with transformers. Variable frame rate (info.variable_rate()): transformers' frame count,
// placed evenly in time with sample_by_time, so that "fps frames per second" holds in every
// part of the video and each temporal pair spans the same time (transformers spreads its
// frames evenly over the indices, so dense parts get more of them).
std::vector<int64_t> sample_video(const VideoInfo& info, double fps = 2.0, int min_frames = 4,
                                  int max_frames = 768);
std::vector<int64_t> sample_video_evenly(const VideoInfo& info, int n);

// numpy.linspace(start, stop, n) in double, as numpy computes it (step multiply, exact end).
std::vector<double> numpy_linspace(double start, double stop, int64_t n);

// Clip-level pixel budget (transformers' size dict). The class default is
// {shortest_edge: 128*32*32, longest_edge: 768*32*32}; Qwen3-VL's video_preprocessor_config.json
// sets {4096, 25165824} per spec §4.1 (unverified there), which is what kQwen3VLVideoBudget holds.
struct VideoBudget {
  int64_t min_pixels = 128 * 32 * 32;  // size["shortest_edge"], counts all frames
  int64_t max_pixels = 768 * 32 * 32;  // size["longest_edge"], counts all frames
  int factor = 32;                     // patch_size * merge_size
  int temporal = 2;                    // temporal_patch_size
};
inline constexpr VideoBudget kQwen3VLVideoBudget{4096, 25'165'824, 32, 2};

// transformers' qwen3_vl video smart_resize(num_frames, height, width): n_frames is the number
// of sampled frames (before padding to even). Sides below factor are first scaled up so the
// smaller one reaches factor (int() truncation). Throws reel::Error for n_frames < temporal,
// an empty side, or an aspect ratio > 200.
Size2 smart_resize_video(int n_frames, int height, int width, const VideoBudget& budget = {});

// transformers' optional cap_pixels_per_frame (off by default in 5.23): the max_pixels that
// resize() then passes to smart_resize_video.
int64_t capped_max_pixels(int n_frames, const VideoBudget& budget);

}  // namespace reel::media
