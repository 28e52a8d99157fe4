// Small FFmpeg helpers shared by the file reader (video.cpp) and the live stream reader
// (stream.cpp): owning pointers that free each FFmpeg object the right way, and FFmpeg's
// message for an error code. Internal to src/media.
#pragma once

#include <memory>
#include <string>

extern "C" {
#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/error.h>
#include <libavutil/frame.h>
#include <libswscale/swscale.h>
}

namespace reel::media {

struct AvFree {
  void operator()(AVFormatContext* f) const { avformat_close_input(&f); }
  void operator()(AVCodecContext* c) const { avcodec_free_context(&c); }
  void operator()(AVFrame* f) const { av_frame_free(&f); }
  void operator()(AVPacket* p) const { av_packet_free(&p); }
  void operator()(SwsContext* s) const { sws_freeContext(s); }
};
template <class T>
using AvPtr = std::unique_ptr<T, AvFree>;

inline std::string av_err(int rc) {
  char buf[AV_ERROR_MAX_STRING_SIZE] = {};
  av_strerror(rc, buf, sizeof buf);
  return buf;
}

}  // namespace reel::media
