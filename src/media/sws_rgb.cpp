#include "media/sws_rgb.h"

#include <cstring>
#include <vector>

namespace reel::media {

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
