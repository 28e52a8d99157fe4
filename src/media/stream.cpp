// The forward-only stream reader: libavformat opens the source with the interrupt callback
// armed, libavcodec decodes packet after packet, and swscale converts each picture to RGB24 the
// way VideoReader does (bilinear chroma, the frame's own colour space and range), so that a
// stream and a file holding the same pictures give the same pixels.
#include "media/stream.h"

#include <sys/stat.h>

#include <cerrno>
#include <chrono>
#include <cmath>
#include <thread>

extern "C" {
#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libswscale/swscale.h>
}

#include "common/error.h"
#include "media/av_util.h"
#include "media/sws_rgb.h"

namespace reel::media {
namespace {

using Clock = std::chrono::steady_clock;

// Packets decoded in a row without a picture before the stream counts as undecodable (more
// than any codec's reordering delay; a stream of garbage reaches it within a second).
constexpr int kMaxPacketsWithoutPicture = 600;

bool starts_with(const std::string& s, const char* prefix) {
  return s.rfind(prefix, 0) == 0;
}

class FfmpegStream final : public StreamReader {
 public:
  FfmpegStream(std::string source, StreamOptions o) : source_(std::move(source)), opts_(o) {
    interrupt_.cancel = o.cancel;
  }
  void open();
  bool advance(double& pts_s) override;
  Image rgb() override;
  const std::string& source() const override { return source_; }
  int width() const override { return dec_->width; }
  int height() const override { return dec_->height; }
  std::string codec() const override { return dec_->codec->name; }
  std::string container() const override { return fmt_->iformat->name; }

 private:
  [[noreturn]] void fail(ErrorKind kind, const std::string& what) const {
    throw_error(kind, source_ + ": " + what);
  }
  void open_input();
  void open_decoder();
  bool read_packet();  // false at the end of the stream
  double frame_time(const AVFrame* f);
  void pace(double pts_s);
  Image to_rgb(const AVFrame* f);

  std::string source_;
  StreamOptions opts_;
  AvInterrupt interrupt_;
  AvPtr<AVFormatContext> fmt_;
  AvPtr<AVCodecContext> dec_;
  AvPtr<AVPacket> pkt_{av_packet_alloc()};
  AvPtr<AVFrame> frame_{av_frame_alloc()};
  AvPtr<SwsContext> sws_;
  int stream_ = -1;
  AVRational tb_{1, 1};
  bool flushed_ = false;
  int packets_without_picture_ = 0;
  Clock::time_point opened_at_ = Clock::now();
  double last_pts_ = -1e300;
  bool paced_ = false;
  Clock::time_point pace_wall_;
  double pace_pts_ = 0;
};

void FfmpegStream::open_input() {
  const SourceInput in = classify_source(source_, opts_.input_format);
  const std::string& url = in.url;
  const std::string& format = in.format;
  if (in.kind == SourceKind::Camera) {
#ifndef REEL_HAVE_AVDEVICE
    fail(ErrorKind::Unsupported, "this build of Reel has no camera support (libavdevice)");
#endif
  } else if (in.kind == SourceKind::File && source_.find("://") == std::string::npos) {
    struct stat st {};
    if (::stat(source_.c_str(), &st) != 0) fail(ErrorKind::InvalidInput, "no such file");
    if (S_ISDIR(st.st_mode)) fail(ErrorKind::InvalidInput, "is a directory, not a video");
  }
  const AVInputFormat* iformat = nullptr;
  if (!format.empty() && (iformat = av_find_input_format(format.c_str())) == nullptr)
    fail(ErrorKind::Unsupported, "FFmpeg has no input format '" + format + "'");

  AVFormatContext* raw = avformat_alloc_context();
  if (raw == nullptr) fail(ErrorKind::Io, "out of memory");
  raw->interrupt_callback = interrupt_.callback();
  AVDictionary* av_opts = nullptr;
  if (!opts_.rtsp_transport.empty())
    av_dict_set(&av_opts, "rtsp_transport", opts_.rtsp_transport.c_str(), 0);
  interrupt_.arm(opts_.open_timeout_s);
  int rc = avformat_open_input(&raw, url.c_str(), iformat, &av_opts);
  av_dict_free(&av_opts);
  if (rc < 0) {
    if (interrupt_.cancelled()) throw Cancelled();
    if (interrupt_.timed_out())
      fail(ErrorKind::Io, "no answer within " + std::to_string(int(opts_.open_timeout_s)) +
                              " s (nothing is sending there, or it cannot be reached)");
    if (rc == AVERROR_PROTOCOL_NOT_FOUND)
      fail(ErrorKind::Unsupported, "this FFmpeg cannot open such a source (" + av_err(rc) + ")");
    if (rc == AVERROR(ENOENT)) fail(ErrorKind::InvalidInput, "no such file or device");
    if (rc == AVERROR_INVALIDDATA)
      fail(ErrorKind::InvalidInput, "not a video stream (" + av_err(rc) + ")");
    fail(ErrorKind::Io, "cannot open (" + av_err(rc) + ")");
  }
  fmt_.reset(raw);
  // Live sources: start soon. Decoding needs only the codec parameters, which MPEG-TS and
  // RTP carry with each keyframe; frame rates are not needed (frames are timed by pts).
  fmt_->max_analyze_duration = AV_TIME_BASE / 2;
  if ((rc = avformat_find_stream_info(fmt_.get(), nullptr)) < 0) {
    if (interrupt_.cancelled()) throw Cancelled();
    if (interrupt_.timed_out())
      fail(ErrorKind::Io, "connected, but no video arrived within " +
                              std::to_string(int(opts_.open_timeout_s)) + " s");
    fail(ErrorKind::InvalidInput, "cannot read the stream's format (" + av_err(rc) + ")");
  }
  for (unsigned i = 0; i < fmt_->nb_streams; ++i) {
    const AVStream* st = fmt_->streams[i];
    if (st->codecpar->codec_type == AVMEDIA_TYPE_VIDEO &&
        !(st->disposition & AV_DISPOSITION_ATTACHED_PIC) && stream_ < 0)
      stream_ = int(i);
  }
  if (stream_ < 0) fail(ErrorKind::InvalidInput, "no video stream");
  for (unsigned i = 0; i < fmt_->nb_streams; ++i)
    if (int(i) != stream_) fmt_->streams[i]->discard = AVDISCARD_ALL;
  tb_ = fmt_->streams[stream_]->time_base;
}

void FfmpegStream::open_decoder() {
  const AVCodecParameters* par = fmt_->streams[stream_]->codecpar;
  const AVCodec* codec = avcodec_find_decoder(par->codec_id);
  if (codec == nullptr) fail(ErrorKind::Unsupported, "unsupported video codec");
  dec_.reset(avcodec_alloc_context3(codec));
  if (!dec_ || avcodec_parameters_to_context(dec_.get(), par) < 0)
    fail(ErrorKind::Io, "out of memory");
  dec_->thread_count = 1;  // frame threads would add their count in frames of latency
  dec_->pkt_timebase = tb_;
  AVDictionary* o = nullptr;
  av_dict_set_int(&o, "max_pixels", opts_.max_pixels, 0);
  const int rc = avcodec_open2(dec_.get(), codec, &o);
  av_dict_free(&o);
  if (rc < 0) fail(ErrorKind::Unsupported, "cannot open the video decoder (" + av_err(rc) + ")");
}

void FfmpegStream::open() {
  init_ffmpeg();
  open_input();
  open_decoder();
  opened_at_ = Clock::now();
}

// One packet of the video stream into the decoder; at the end, the decoder's flush.
bool FfmpegStream::read_packet() {
  AVPacket* p = pkt_.get();
  for (;;) {
    interrupt_.arm(opts_.read_timeout_s);
    const int rc = av_read_frame(fmt_.get(), p);
    if (rc < 0) {
      if (interrupt_.cancelled()) throw Cancelled();
      if (interrupt_.timed_out())
        fail(ErrorKind::Io, "no data for " + std::to_string(int(opts_.read_timeout_s)) + " s");
      if (rc != AVERROR_EOF && rc != AVERROR(EAGAIN) && !(fmt_->pb && avio_feof(fmt_->pb)))
        fail(ErrorKind::Io, "the stream broke off (" + av_err(rc) + ")");
      avcodec_send_packet(dec_.get(), nullptr);
      flushed_ = true;
      return false;
    }
    if (p->stream_index != stream_) {
      av_packet_unref(p);
      continue;
    }
    // A packet the decoder rejects (corrupt data) is skipped; decoding goes on with the next.
    avcodec_send_packet(dec_.get(), p);
    av_packet_unref(p);
    if (++packets_without_picture_ > kMaxPacketsWithoutPicture)
      fail(ErrorKind::InvalidInput, "no picture could be decoded from " +
                                        std::to_string(kMaxPacketsWithoutPicture) +
                                        " packets in a row (corrupt or not video)");
    return true;
  }
}

// Seconds of presentation time; the time since opening when the stream carries none (MJPEG
// over HTTP), and never backwards within a stream.
double FfmpegStream::frame_time(const AVFrame* f) {
  const int64_t ts = f->best_effort_timestamp != AV_NOPTS_VALUE ? f->best_effort_timestamp : f->pts;
  double t = ts != AV_NOPTS_VALUE
                 ? double(ts) * tb_.num / tb_.den
                 : std::chrono::duration<double>(Clock::now() - opened_at_).count();
  last_pts_ = t;
  return t;
}

// --realtime: each frame waits until its presentation time has come, measured from the first
// frame (a jump of more than ten seconds either way restarts the clock there).
void FfmpegStream::pace(double pts_s) {
  const auto now = Clock::now();
  double ahead =
      paced_ ? pts_s - pace_pts_ - std::chrono::duration<double>(now - pace_wall_).count() : 0;
  if (!paced_ || ahead > 10 || ahead < -10) {
    paced_ = true;
    pace_wall_ = now;
    pace_pts_ = pts_s;
    return;
  }
  while (ahead > 0) {
    if (opts_.cancel && opts_.cancel->load()) throw Cancelled();
    const double step = std::min(ahead, 0.05);
    std::this_thread::sleep_for(std::chrono::duration<double>(step));
    ahead -= step;
  }
}

Image FfmpegStream::to_rgb(const AVFrame* f) {
  if (f->width <= 0 || f->height <= 0 || int64_t(f->width) * f->height > opts_.max_pixels)
    fail(ErrorKind::InvalidInput, "a frame of " + std::to_string(f->width) + "x" +
                                      std::to_string(f->height) + " is outside the limits");
  SwsContext* ctx =
      sws_getCachedContext(sws_.release(), f->width, f->height, AVPixelFormat(f->format), f->width,
                           f->height, AV_PIX_FMT_RGB24, SWS_BILINEAR, nullptr, nullptr, nullptr);
  sws_.reset(ctx);
  if (ctx == nullptr) fail(ErrorKind::Unsupported, "unsupported pixel format");
  set_frame_colorspace(ctx, f);
  Image img{f->width, f->height, {}};
  scale_to_rgb(ctx, f, img);
  return img;
}

bool FfmpegStream::advance(double& pts_s) {
  AVFrame* f = frame_.get();
  av_frame_unref(f);  // the previous picture
  for (;;) {
    const int rc = avcodec_receive_frame(dec_.get(), f);
    if (rc >= 0) {
      packets_without_picture_ = 0;
      pts_s = frame_time(f);
      if (opts_.realtime) pace(pts_s);
      return true;
    }
    if (rc == AVERROR_EOF || flushed_) return false;
    if (rc != AVERROR(EAGAIN)) {
      // A decoder error on one picture: skip it (the next packets may decode).
      if (++packets_without_picture_ > kMaxPacketsWithoutPicture)
        fail(ErrorKind::InvalidInput, "the video cannot be decoded (" + av_err(rc) + ")");
    }
    read_packet();
  }
}

Image FfmpegStream::rgb() {
  if (frame_->width <= 0 || !frame_->data[0]) throw InternalError("rgb() without a picture");
  return to_rgb(frame_.get());
}

}  // namespace

std::unique_ptr<StreamReader> StreamReader::open(const std::string& source,
                                                 const StreamOptions& options) {
  if (source.empty()) throw Error("no video source given");
  if (!(options.open_timeout_s > 0) || !(options.read_timeout_s > 0))
    throw Error("stream timeouts must be positive");
  if (!options.rtsp_transport.empty() && options.rtsp_transport != "tcp" &&
      options.rtsp_transport != "udp")
    throw Error("the RTSP transport must be tcp or udp");
  auto s = std::make_unique<FfmpegStream>(source, options);
  try {
    s->open();
  } catch (const std::bad_alloc&) {
    throw IoError(source + ": out of memory");
  }
  return s;
}

bool StreamReader::next(StreamFrame& out) {
  if (!advance(out.pts_s)) return false;
  out.image = rgb();
  return true;
}

SourceInput classify_source(const std::string& source, const std::string& input_format) {
  SourceInput in;
  in.format = input_format;
  const size_t sep = source.find("://");
  if (source == "-") {
    in.kind = SourceKind::Stdin;
    in.url = "pipe:0";
    if (in.format.empty()) in.format = "mpegts";
  } else if (starts_with(source, "/dev/video")) {
    in.kind = SourceKind::Camera;
    in.url = source;
    if (in.format.empty()) in.format = "v4l2";
  } else if (sep != std::string::npos && source.compare(0, sep, "file") != 0) {
    in.kind = SourceKind::Network;
    in.url = source;
  } else {
    in.kind = SourceKind::File;  // a path, or file:// (FFmpeg's file protocol takes both)
    in.url = sep == std::string::npos ? "file:" + source : source;
  }
  return in;
}

bool is_network_source(const std::string& source) {
  return classify_source(source).kind == SourceKind::Network;
}

bool FpsSampler::take(double t) {
  constexpr double kEarly = 1e-3;  // pts rounded to the time base
  if (!started_ || t + kEarly < next_ - interval_ || t > next_ + interval_) {
    // The first frame, a stream whose clock jumped back, or a gap: restart the schedule here.
    started_ = true;
    next_ = t + interval_;
    return true;
  }
  if (t + kEarly < next_) return false;
  next_ += interval_;
  return true;
}

}  // namespace reel::media
