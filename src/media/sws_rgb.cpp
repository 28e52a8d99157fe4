#include "media/sws_rgb.h"

#include <cstring>
#include <vector>

namespace reel::media {
namespace {

// An enum field of a decoded frame as the integer stored in it. Decoders copy bitstream values
// into these fields unchecked (the video fuzzer found an MPEG-4 stream whose colour matrix is 170,
// outside AVColorSpace), and loading such a value as the enum is undefined behaviour.
template <class Enum>
int raw_value(const Enum& field) {
  static_assert(sizeof(Enum) == sizeof(int), "FFmpeg's colour enums are int-sized");
  int v;
  std::memcpy(&v, &field, sizeof v);
  return v;
}

}  // namespace

void set_frame_colorspace(SwsContext* ctx, const AVFrame* frame) {
  const bool full = raw_value(frame->color_range) == AVCOL_RANGE_JPEG;
  // The AVColorSpace values swscale has coefficients for are 0..10 (its SWS_CS_* share them).
  const int matrix = raw_value(frame->colorspace);
  const int cs =
      matrix < 0 || matrix > 10 || matrix == AVCOL_SPC_UNSPECIFIED ? SWS_CS_DEFAULT : matrix;
  sws_setColorspaceDetails(ctx, sws_getCoefficients(cs), full ? 1 : 0,
                           sws_getCoefficients(SWS_CS_DEFAULT), 1, 0, 1 << 16, 1 << 16);
}

void scale_to_rgb(SwsContext* ctx, const AVFrame* frame, Image& out) {
  constexpr size_t kAlign = 64, kSlack = 64;  // more than any SIMD block swscale writes
  const size_t row = size_t(out.width) * 3;
  const size_t stride = (row + kAlign - 1) / kAlign * kAlign + kSlack;
  std::vector<uint8_t> padded(stride * size_t(out.height) + kSlack);
  uint8_t* dst[4] = {padded.data(), nullptr, nullptr, nullptr};
  int dst_stride[4] = {static_cast<int>(stride), 0, 0, 0};
  sws_scale(ctx, frame->data, frame->linesize, 0, frame->height, dst, dst_stride);
  out.rgb.resize(row * size_t(out.height));
  for (int y = 0; y < out.height; ++y)
    std::memcpy(out.rgb.data() + size_t(y) * row, padded.data() + size_t(y) * stride, row);
}

}  // namespace reel::media
