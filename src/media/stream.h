// Live video: a reader for anything FFmpeg can open as a stream (udp://, tcp://, http:// MJPEG,
// MPEG-TS and HLS, rtsp://, srt://, a V4L2 camera /dev/videoN, `-` for MPEG-TS on stdin, or a
// file), decoding frame after frame to RGB24 with each frame's presentation time. Unlike
// VideoReader (video.h) it needs no frame count, duration or seeking: it reads forward only.
//
// Every blocking FFmpeg call is bounded by the interrupt callback: opening by open_timeout_s,
// each read by read_timeout_s (no data for that long is an error), so a source that never
// answers fails with a clear message instead of hanging. Corrupt packets are skipped; a stream
// that yields no picture for many packets in a row is an error.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>

#include "media/image.h"

namespace reel::media {

struct StreamOptions {
  double open_timeout_s = 10;  // connecting and reading the stream's header
  double read_timeout_s = 10;  // longest wait for the next packet
  bool realtime = false;       // pace a file at its own speed (network sources pace themselves)
  std::string rtsp_transport;  // "tcp" or "udp" for rtsp:// (empty: FFmpeg's default)
  std::string input_format;    // FFmpeg demuxer name (empty: probe; "mpegts" for `-`)
  int64_t max_pixels = 8192 * 8192;  // per frame
  // Set by another thread to stop a blocking read at once (reel::Cancelled).
  const std::atomic<bool>* cancel = nullptr;
};

// A decoded frame and when it is shown: pts in seconds (the stream's own clock; they may start
// anywhere and jump on a discontinuity).
struct StreamFrame {
  Image image;
  double pts_s = 0;
};

class StreamReader {
 public:
  // Opens the source and finds its video stream. Throws reel::Error naming the source: IoError
  // when it cannot be reached or does not answer in time, InvalidInput for data that is not a
  // video, Unsupported for an unknown protocol, codec or device support missing.
  static std::unique_ptr<StreamReader> open(const std::string& source,
                                            const StreamOptions& options = {});
  virtual ~StreamReader() = default;

  // Decodes the next picture and gives its presentation time; false at the end of the stream
  // (a file's end, a closed connection). Its pixels are converted only when rgb() asks, so
  // that frames not sampled cost no colour conversion. Throws reel::Error on a read timeout or
  // a stream that stops decoding.
  virtual bool advance(double& pts_s) = 0;
  // The picture advance() stopped at, as RGB24 (once per picture).
  virtual Image rgb() = 0;
  // advance() and rgb() together.
  bool next(StreamFrame& out);

  virtual const std::string& source() const = 0;
  virtual int width() const = 0;  // of the stream as opened (frames may change size later)
  virtual int height() const = 0;
  virtual std::string codec() const = 0;
  virtual std::string container() const = 0;
};

// What a source names, and how FFmpeg is asked to open it.
enum class SourceKind { Stdin, Camera, File, Network };
struct SourceInput {
  SourceKind kind = SourceKind::File;
  std::string url;     // for avformat_open_input: "pipe:0", the device, "file:PATH" or the URL
  std::string format;  // the demuxer to force (empty: probe)
};
// `-` is MPEG-TS on stdin, /dev/videoN a V4L2 camera, anything with "://" (but file://) a
// network URL, the rest a file path. `input_format` (--input-format), when given, wins.
SourceInput classify_source(const std::string& source, const std::string& input_format = "");

// Whether the source is a network URL (reconnecting after an end or error makes sense) rather
// than a file, a device or stdin.
bool is_network_source(const std::string& source);

// Takes frames at `fps` per second of presentation time: the first frame, then each frame at
// or after the next due time (a frame 1 ms early still counts, for pts rounding). After a gap
// of more than a frame interval the schedule restarts at the frame, not to burst through it.
class FpsSampler {
 public:
  explicit FpsSampler(double fps) : interval_(1.0 / fps) {}
  bool take(double t);
  void reset() { started_ = false; }

 private:
  double interval_;
  double next_ = 0;
  bool started_ = false;
};

}  // namespace reel::media
