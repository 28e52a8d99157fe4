// Small FFmpeg helpers shared by the image decoder (decode.cpp), the file reader (video.cpp)
// and the live stream reader (stream.cpp): FFmpeg's one-time set-up (the one place its log is
// configured), the deadline (and cancel flag) its blocking calls poll,
// owning pointers that free each FFmpeg object the right way, and FFmpeg's message for an error
// code. Internal to src/media.
#pragma once

#include <atomic>
#include <chrono>
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

// FFmpeg's set-up, once per process: its log silenced (Reel words its own errors), the network
// protocols initialised, and the capture devices (V4L2) registered when built with libavdevice.
void init_ffmpeg();

// What FFmpeg's blocking calls poll through the interrupt callback: a deadline, armed before
// each call, and the caller's cancel flag (optional). Give `callback()` to an AVFormatContext's
// interrupt_callback; the object must outlive the context's I/O.
struct AvInterrupt {
  std::chrono::steady_clock::time_point deadline;
  const std::atomic<bool>* cancel = nullptr;

  void arm(double seconds) {
    deadline =
        std::chrono::steady_clock::now() + std::chrono::milliseconds(int64_t(seconds * 1000));
  }
  bool timed_out() const { return std::chrono::steady_clock::now() > deadline; }
  bool cancelled() const { return cancel && cancel->load(std::memory_order_relaxed); }
  AVIOInterruptCB callback() { return {&AvInterrupt::poll, this}; }

 private:
  static int poll(void* self) {
    const auto* i = static_cast<const AvInterrupt*>(self);
    return i->timed_out() || i->cancelled() ? 1 : 0;
  }
};

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
