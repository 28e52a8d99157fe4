// Frame sampling and video smart_resize, following transformers 5.23
// (models/qwen3_vl/video_processing_qwen3_vl.py) operation by operation, in double precision like
// Python floats.
#include "media/sampling.h"

#include <algorithm>
#include <cmath>
#include <string>

#include "common/error.h"

namespace reel::media {
namespace {

// Python round() / numpy.round(): half to even.
double round_half_even(double x) {
  return std::nearbyint(x);
}  // FE_TONEAREST, the default

std::vector<int64_t> round_all(const std::vector<double>& v) {
  std::vector<int64_t> out(v.size());
  for (size_t i = 0; i < v.size(); ++i) out[i] = int64_t(round_half_even(v[i]));
  return out;
}

}  // namespace

std::vector<double> numpy_linspace(double start, double stop, int64_t n) {
  std::vector<double> y;
  if (n <= 0) return y;
  y.resize(size_t(n));
  const double delta = stop - start;
  const int64_t div = n - 1;
  // numpy: step = delta / div; y = arange(n) * step + start; y[-1] = stop. When step == 0
  // (or div == 0) it computes (arange(n) / div) * delta instead, which is 0 for our inputs.
  const double step = div > 0 ? delta / double(div) : 0.0;
  for (int64_t i = 0; i < n; ++i) {
    double v = step != 0.0 ? double(i) * step : (div > 0 ? double(i) / double(div) * delta : 0.0);
    y[size_t(i)] = v + start;
  }
  if (n > 1) y.back() = stop;
  return y;
}

namespace {

// Qwen3VLVideoProcessor.sample_frames' frame count in fps mode.
int64_t reference_count(int64_t total_frames, double video_fps, double fps, int min_frames,
                        int max_frames) {
  if (!(video_fps > 0)) video_fps = 24;
  // Python: int(total_num_frames / metadata.fps * fps), left to right, truncating toward 0.
  const int64_t n = int64_t(std::trunc(double(total_frames) / video_fps * fps));
  return std::min({std::max<int64_t>(n, min_frames), int64_t(max_frames), total_frames});
}

}  // namespace

std::vector<int64_t> sample_reference(int64_t total_frames, double video_fps, double fps,
                                      int min_frames, int max_frames,
                                      std::optional<int64_t> num_frames) {
  const int64_t n = num_frames
                        ? *num_frames
                        : reference_count(total_frames, video_fps, fps, min_frames, max_frames);
  if (n <= 0) return {};
  return round_all(numpy_linspace(0, double(total_frames - 1), n));
}

std::vector<int64_t> sample_evenly(int64_t total_frames, int n) {
  if (n <= 0 || total_frames <= 0) return {};
  const int64_t count = std::min<int64_t>(n, total_frames);
  return round_all(numpy_linspace(0, double(total_frames - 1), count));
}

std::vector<int64_t> sample_by_time(std::span<const double> times, int64_t n) {
  if (n <= 0 || times.empty()) return {};
  std::vector<int64_t> out;
  out.reserve(size_t(n));
  size_t j = 0;  // the last frame at or before the target (targets ascend)
  for (const double target : numpy_linspace(times.front(), times.back(), n)) {
    while (j + 1 < times.size() && times[j + 1] <= target) ++j;
    const bool next_closer = j + 1 < times.size() && times[j + 1] - target < target - times[j];
    const auto pick = int64_t(next_closer ? j + 1 : j);
    if (out.empty() || pick != out.back()) out.push_back(pick);  // picks never decrease
  }
  return out;
}

std::vector<int64_t> sample_video(const VideoInfo& info, double fps, int min_frames,
                                  int max_frames) {
  if (!info.variable_rate()) {
    return sample_reference(info.n_frames, info.fps, fps, min_frames, max_frames);
  }
  return sample_by_time(*info.vfr_times_s,
                        reference_count(info.n_frames, info.fps, fps, min_frames, max_frames));
}

std::vector<int64_t> sample_video_evenly(const VideoInfo& info, int n) {
  if (!info.variable_rate()) return sample_evenly(info.n_frames, n);
  // n targets even when the video has fewer frames: spread denser than the frames, they pick
  // every frame once (sample_evenly's min(n, total_frames)).
  return sample_by_time(*info.vfr_times_s, n);
}

Size2 smart_resize_video(int n_frames, int height, int width, const VideoBudget& b) {
  if (n_frames < b.temporal) {
    throw Error("video smart_resize: " + std::to_string(n_frames) +
                " frames, fewer than the temporal patch size " + std::to_string(b.temporal));
  }
  if (height <= 0 || width <= 0) {
    throw Error("video smart_resize: empty frame " + std::to_string(width) + "x" +
                std::to_string(height));
  }
  const double f = b.factor;
  double h = height, w = width;
  if (height < b.factor || width < b.factor) {
    const double scale = std::max(f / h, f / w);
    h = std::trunc(h * scale);  // Python int()
    w = std::trunc(w * scale);
  }
  if (std::max(h, w) / std::min(h, w) > 200) {
    throw Error("video smart_resize: aspect ratio of " + std::to_string(width) + "x" +
                std::to_string(height) + " is over 200");
  }
  double h_bar = round_half_even(h / f) * f;
  double w_bar = round_half_even(w / f) * f;
  const double t_bar = round_half_even(double(n_frames) / b.temporal) * b.temporal;
  const double n = n_frames;
  if (t_bar * h_bar * w_bar > double(b.max_pixels)) {
    const double beta = std::sqrt((n * h * w) / double(b.max_pixels));
    h_bar = std::max(f, std::floor(h / beta / f) * f);
    w_bar = std::max(f, std::floor(w / beta / f) * f);
  } else if (t_bar * h_bar * w_bar < double(b.min_pixels)) {
    const double beta = std::sqrt(double(b.min_pixels) / (n * h * w));
    h_bar = std::ceil(h * beta / f) * f;
    w_bar = std::ceil(w * beta / f) * f;
  }
  return {int(h_bar), int(w_bar)};
}

int64_t capped_max_pixels(int n_frames, const VideoBudget& b) {
  const int64_t frame_cap = int64_t{768} * b.factor * b.factor;
  const int64_t per_frame =
      std::max(std::min(frame_cap, b.max_pixels / n_frames), int64_t(double(b.min_pixels) * 1.05));
  return per_frame * n_frames;
}

}  // namespace reel::media
