// smart_resize and the antialiased bicubic resize of HF's fast image processor.
#include <algorithm>
#include <cmath>
#include <cstdio>

#include "common/error.h"
#include "media/image.h"
#include "media/parallel_rows.h"

namespace reel::media {
namespace {

// Keys cubic convolution with a = -0.5 (PIL's and torch's antialiased bicubic kernel).
double keys_cubic(double x) {
  constexpr double a = -0.5;
  x = std::abs(x);
  if (x < 1.0) return ((a + 2.0) * x - (a + 3.0)) * x * x + 1.0;
  if (x < 2.0) return ((a * x - 5.0 * a) * x + 8.0 * a) * x - 4.0 * a;
  return 0.0;
}

// One axis of the resample: for each output sample the first input index and its taps in int16
// fixed point with `precision` fractional bits, shared by the whole axis.
struct Axis {
  int taps = 0;  // stride of `weights`
  int precision = 0;
  std::vector<int> first, count;
  std::vector<int32_t> weights;
};

// PyTorch's uint8 antialiased path: centre scale*(i+0.5), support 2*scale when downscaling
// (2 when upscaling), weights normalized in double; then the largest precision (< 22 bits) at
// which the biggest weight still fits int16, each weight rounded half away from zero.
Axis make_axis(int in, int out) {
  const double scale = double(in) / double(out);
  const double support = scale >= 1.0 ? 2.0 * scale : 2.0;
  const double invscale = scale >= 1.0 ? 1.0 / scale : 1.0;
  Axis ax;
  ax.taps = int(std::ceil(support)) * 2 + 1;
  ax.first.resize(out);
  ax.count.resize(out);
  std::vector<double> w(size_t(out) * ax.taps, 0.0);
  double wt_max = 0.0;
  for (int i = 0; i < out; ++i) {
    const double center = scale * (i + 0.5);
    // Casts truncate toward zero, as the reference's int64 casts do.
    const int64_t xmin = std::max<int64_t>(int64_t(center - support + 0.5), 0);
    const int64_t xsize = std::clamp<int64_t>(
        std::min<int64_t>(int64_t(center + support + 0.5), in) - xmin, 0, ax.taps);
    double* wi = &w[size_t(i) * ax.taps];
    double total = 0.0;
    for (int64_t j = 0; j < xsize; ++j) {
      wi[j] = keys_cubic((double(j + xmin) - center + 0.5) * invscale);
      total += wi[j];
    }
    if (total != 0.0) {
      for (int64_t j = 0; j < xsize; ++j) {
        wi[j] /= total;
        wt_max = std::max(wt_max, wi[j]);
      }
    }
    ax.first[i] = int(xmin);
    ax.count[i] = int(xsize);
  }
  int p = 0;
  for (; p < 22; ++p) {
    if (int(0.5 + wt_max * double(1 << (p + 1))) >= (1 << 15)) break;
  }
  ax.precision = p;
  ax.weights.resize(w.size());
  for (size_t k = 0; k < w.size(); ++k) {
    const double v = w[k] * double(1 << p);
    ax.weights[k] = v < 0 ? int(-0.5 + v) : int(0.5 + v);
  }
  return ax;
}

inline uint8_t finish(int32_t acc, int precision) {
  return static_cast<uint8_t>(std::clamp(acc >> precision, 0, 255));
}

// Width pass: rows x in_w -> rows x out_w, interleaved RGB.
std::vector<uint8_t> resize_rows(const uint8_t* src, int rows, int in_w, int out_w,
                                 ops::ThreadPool* pool) {
  const Axis ax = make_axis(in_w, out_w);
  const int32_t half = ax.precision > 0 ? 1 << (ax.precision - 1) : 0;
  std::vector<uint8_t> dst(size_t(rows) * out_w * 3);
  detail::for_row_ranges(pool, rows, int64_t(out_w) * ax.taps * 3, [&](int64_t y0, int64_t y1) {
    for (int64_t y = y0; y < y1; ++y) {
      const uint8_t* s = src + size_t(y) * in_w * 3;
      uint8_t* d = dst.data() + size_t(y) * out_w * 3;
      for (int x = 0; x < out_w; ++x) {
        const int32_t* w = &ax.weights[size_t(x) * ax.taps];
        const uint8_t* p = s + size_t(ax.first[x]) * 3;
        int32_t r = half, g = half, b = half;
        for (int k = 0; k < ax.count[x]; ++k, p += 3) {
          r += w[k] * p[0];
          g += w[k] * p[1];
          b += w[k] * p[2];
        }
        d[x * 3 + 0] = finish(r, ax.precision);
        d[x * 3 + 1] = finish(g, ax.precision);
        d[x * 3 + 2] = finish(b, ax.precision);
      }
    }
  });
  return dst;
}

// Height pass: in_h x width -> out_h x width. Accumulates whole rows so the inner loop is
// contiguous; each task has its own accumulator row.
std::vector<uint8_t> resize_cols(const uint8_t* src, int width, int in_h, int out_h,
                                 ops::ThreadPool* pool) {
  const Axis ax = make_axis(in_h, out_h);
  const int32_t half = ax.precision > 0 ? 1 << (ax.precision - 1) : 0;
  const size_t row = size_t(width) * 3;
  std::vector<uint8_t> dst(row * out_h);
  detail::for_row_ranges(pool, out_h, int64_t(row) * ax.taps, [&](int64_t y0, int64_t y1) {
    std::vector<int32_t> acc(row);
    for (int64_t y = y0; y < y1; ++y) {
      std::fill(acc.begin(), acc.end(), half);
      const int32_t* w = &ax.weights[size_t(y) * ax.taps];
      for (int k = 0; k < ax.count[y]; ++k) {
        const uint8_t* s = src + size_t(ax.first[y] + k) * row;
        const int32_t wk = w[k];
        for (size_t i = 0; i < row; ++i) acc[i] += wk * s[i];
      }
      uint8_t* d = dst.data() + size_t(y) * row;
      for (size_t i = 0; i < row; ++i) d[i] = finish(acc[i], ax.precision);
    }
  });
  return dst;
}

}  // namespace

Size2 smart_resize(int height, int width, const ResizeBudget& budget) {
  const int f = budget.factor;
  if (f <= 0 || budget.min_pixels < 0 || budget.max_pixels <= 0) {
    throw Error("smart_resize: invalid budget");
  }
  // transformers 5.23 has no minimum edge any more (tiny images are upscaled by the min_pixels
  // rule); only an empty side fails, with ZeroDivisionError there.
  if (height <= 0 || width <= 0) {
    throw Error("cannot resize an image of height " + std::to_string(height) + " and width " +
                std::to_string(width));
  }
  const double ratio = double(std::max(height, width)) / double(std::min(height, width));
  if (ratio > 200.0) {
    char buf[64];
    std::snprintf(buf, sizeof(buf), "%.17g", ratio);
    throw Error(std::string("absolute aspect ratio must be smaller than 200, got ") + buf);
  }
  // Python's round(): ties to even, which nearbyint does in the default rounding mode.
  int64_t h_bar = int64_t(std::nearbyint(double(height) / f)) * f;
  int64_t w_bar = int64_t(std::nearbyint(double(width) / f)) * f;
  const double hw = double(int64_t(height) * width);
  if (h_bar * w_bar > budget.max_pixels) {
    const double beta = std::sqrt(hw / double(budget.max_pixels));
    h_bar = std::max<int64_t>(f, int64_t(std::floor(height / beta / f)) * f);
    w_bar = std::max<int64_t>(f, int64_t(std::floor(width / beta / f)) * f);
  } else if (h_bar * w_bar < budget.min_pixels) {
    const double beta = std::sqrt(double(budget.min_pixels) / hw);
    h_bar = int64_t(std::ceil(height * beta / f)) * f;
    w_bar = int64_t(std::ceil(width * beta / f)) * f;
  }
  if (h_bar <= 0 || w_bar <= 0 || h_bar > INT32_MAX || w_bar > INT32_MAX) {
    throw Error("smart_resize: " + std::to_string(height) + "x" + std::to_string(width) +
                " resizes to an unusable " + std::to_string(h_bar) + "x" + std::to_string(w_bar));
  }
  return {int(h_bar), int(w_bar)};
}

Image resize_bicubic(const Image& src, int width, int height, ops::ThreadPool* pool) {
  if (width <= 0 || height <= 0 || src.width <= 0 || src.height <= 0 ||
      src.rgb.size() != size_t(src.width) * src.height * 3) {
    // Callers size images through smart_resize first.
    throw InternalError("resize_bicubic: invalid image or target size");
  }
  Image out;
  out.width = width;
  out.height = height;
  // Width first, then height, through a uint8 image, as torch does; an unchanged axis is skipped
  // (its weights would be the identity anyway).
  std::vector<uint8_t> mid = src.width == width
                                 ? src.rgb
                                 : resize_rows(src.rgb.data(), src.height, src.width, width, pool);
  out.rgb = src.height == height ? std::move(mid)
                                 : resize_cols(mid.data(), width, src.height, height, pool);
  return out;
}

}  // namespace reel::media
