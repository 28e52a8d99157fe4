// Video decoding with libavformat/libavcodec/libswscale.
//
// Frame index: one scan of the video stream's packets (av_read_frame, no decoding) records each
// packet's pts, dts and key flag. Every packet not flagged discard (edit-list trimming) is one
// presented frame; sorting their pts gives presentation order. This equals ffprobe
// -count_frames for the codecs FFmpeg packetizes one frame per packet (H.264, HEVC, VP8/9 with
// superframes, AV1 temporal units, MPEG-4 Part 2 without packed B-frames, MJPEG), i.e. what
// torchcodec's exact seek mode (transformers' default backend) counts too.
//
// Seeking: frame i is reached from the last keyframe packet, in decode order before i's packet,
// whose pts is <= pts(i) (so open-GOP leading pictures are decoded from the previous GOP). After
// av_seek_frame the first packet must be that keyframe or an earlier one (checked by pts);
// otherwise the reader falls back to decoding from the start. Decoded frames are identified by
// their pts, so output equals a sequential decode.
#include "media/video.h"

#include <algorithm>
#include <cmath>
#include <new>
#include <numeric>
#include <unordered_map>
#include <vector>

extern "C" {
#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/display.h>
#include <libavutil/imgutils.h>
#include <libswscale/swscale.h>
}

#include "common/error.h"
#include "common/fs.h"
#include "media/av_util.h"
#include "media/sws_rgb.h"

namespace reel::media {
namespace {

[[noreturn]] void fail(const std::string& path, const std::string& what,
                       ErrorKind kind = ErrorKind::InvalidInput) {
  throw_error(kind, path + ": " + what);
}

// The kind of an FFmpeg failure: what FFmpeg says it lacks is Unsupported, the system's own
// failures are Io, and the rest (invalid data, a truncated file; FFmpeg also answers EINVAL
// for bad streams) is the input's.
ErrorKind av_kind(int rc) {
  switch (rc) {
    case AVERROR_PATCHWELCOME:
    case AVERROR_DECODER_NOT_FOUND:
    case AVERROR_DEMUXER_NOT_FOUND:
    case AVERROR(ENOSYS):
      return ErrorKind::Unsupported;
    case AVERROR(ENOMEM):
    case AVERROR(EIO):
    case AVERROR(EMFILE):
    case AVERROR(ENFILE):
      return ErrorKind::Io;
    default:
      return ErrorKind::InvalidInput;
  }
}

struct PacketInfo {
  int64_t pts, dts;  // stream time base; pts falls back to dts when absent
  bool key, discard;
};

// Packet scan results: decode order plus the presented frames sorted by pts.
struct FrameIndex {
  std::vector<PacketInfo> packets;    // decode order, every video packet
  std::vector<int64_t> frame_pts;     // presented frames, ascending pts
  std::vector<int64_t> frame_packet;  // presented frame -> packet position (decode order)
  std::unordered_map<int64_t, int64_t> pts_to_frame;
  std::unordered_map<int64_t, int64_t> pts_to_packet;  // packets are identified by pts (matroska
                                                       // has no dts with B-frames)
  bool seekable = true;  // pts and dts present and unique: frames identifiable by pts
};

// Clockwise rotation from the display matrix, normalized to 0/90/180/270 (others -> 0), as the
// ffmpeg CLI's autorotate computes it; mirrored when the matrix has a negative determinant.
void display_transform(const AVStream* st, int& rotation, bool& mirrored) {
  rotation = 0;
  mirrored = false;
  size_t size = 0;
  const uint8_t* sd = av_stream_get_side_data(st, AV_PKT_DATA_DISPLAYMATRIX, &size);
  if (sd == nullptr || size < 9 * sizeof(int32_t)) return;
  const auto* m = reinterpret_cast<const int32_t*>(sd);
  mirrored = int64_t(m[0]) * m[4] - int64_t(m[1]) * m[3] < 0;
  double theta = -av_display_rotation_get(m);
  if (std::isnan(theta)) return;
  theta -= 360 * std::floor(theta / 360 + 0.9 / 360);
  const int r = int(std::lround(theta / 90)) % 4 * 90;
  if (std::fabs(theta - r) < 1 || std::fabs(theta - 360 - r) < 1) rotation = r;
}

}  // namespace

class FfmpegReader final : public VideoReader {
 public:
  FfmpegReader(std::string path, const VideoLimits& limits) : path_(std::move(path)), lim_(limits) {
    init_ffmpeg();
    open_container();
    scan_packets();
    open_decoder();
  }

  const VideoInfo& info() const override { return info_; }
  int64_t decoded_frames() const override { return decoded_; }

  double timestamp_s(int64_t index) const override {
    if (index < 0 || index >= info_.n_frames) {
      fail(path_, "frame " + std::to_string(index) + " out of range");
    }
    if (!index_.seekable) return double(index) / info_.fps;
    return double(index_.frame_pts[size_t(index)] - index_.frame_pts[0]) * av_q2d(tb_);
  }

  void read_frames(std::span<const int64_t> indices,
                   const std::function<void(size_t, Image&&)>& sink) override;

 private:
  void decode_frames(std::span<const int64_t> indices,
                     const std::function<void(size_t, Image&&)>& sink);
  void open_container();
  void scan_packets();
  void open_decoder();
  void compute_info();
  void record_vfr_times();
  void rewind();
  bool seek_to_packet(int64_t packet);
  int64_t seek_and_peek(int64_t ts);
  bool accept_seek(int64_t packet, int64_t landed);
  int64_t seek_packet_for(int64_t frame) const;
  // Feeds the next packet (or the end-of-stream flush) and hands every decoded frame to
  // on_frame(index, frame). Returns false at the end of the stream.
  bool decode_step(const std::function<void(int64_t, const AVFrame*)>& on_frame);
  void drain(const std::function<void(int64_t, const AVFrame*)>& on_frame);
  Image to_rgb(const AVFrame* f);

  std::string path_;
  VideoLimits lim_;
  AvInterrupt deadline_;
  AvPtr<AVFormatContext> fmt_;
  AvPtr<AVCodecContext> dec_;
  AvPtr<AVPacket> pkt_{av_packet_alloc()};
  AvPtr<AVFrame> frame_{av_frame_alloc()};
  AvPtr<SwsContext> sws_;
  int stream_ = -1;
  AVRational tb_{1, 1};
  FrameIndex index_;
  VideoInfo info_;
  int64_t fed_packet_ = -1;   // decode-order position of the last packet sent to the decoder
  int64_t seq_frame_ = 0;     // output counter, used when frames are not identifiable by pts
  int64_t seek_key_ = -1;     // keyframe packet of the last successful seek
  int64_t last_out_ = -1;     // highest frame index output since the last seek
  bool pending_ = false;      // pkt_ holds a packet read by seek_to_packet, not yet fed
  bool seek_broken_ = false;  // a seek landed after its target once: decode forward only
  bool eof_ = false;
  AvPtr<AVFrame> prev_{av_frame_alloc()};  // last decoded frame, the stand-in for broken ones
  int64_t decoded_ = 0;
};

void FfmpegReader::open_container() {
  // Before FFmpeg sees the path: its file protocol would block opening a FIFO (no timeout
  // applies there), and the probe-then-seek reading below needs a seekable, finite file.
  require_regular_file(path_, "video");

  AVFormatContext* raw = avformat_alloc_context();
  if (raw == nullptr) fail(path_, "out of memory", ErrorKind::Io);
  deadline_.arm(lim_.timeout_s);
  raw->interrupt_callback = deadline_.callback();
  AVDictionary* opts = nullptr;
  // Local files only: no network or nested protocols reachable from a crafted playlist.
  av_dict_set(&opts, "protocol_whitelist", "file", 0);
  const std::string url = "file:" + path_;
  int rc = avformat_open_input(&raw, url.c_str(), nullptr, &opts);
  av_dict_free(&opts);
  if (rc < 0) {
    if (deadline_.timed_out()) fail(path_, "timed out opening the file");
    fail(path_, "not a recognized video file (" + av_err(rc) + ")", av_kind(rc));
  }
  fmt_.reset(raw);
  fmt_->max_analyze_duration = 10 * AV_TIME_BASE;
  std::string name = fmt_->iformat->name;
  if (name.find("image2") == 0 || name.find("_pipe") != std::string::npos) {
    fail(path_, "is a still image, not a video");
  }
  if ((rc = avformat_find_stream_info(fmt_.get(), nullptr)) < 0) {
    fail(path_, "cannot read stream info (" + av_err(rc) + ")", av_kind(rc));
  }
  for (unsigned i = 0; i < fmt_->nb_streams; ++i) {
    const AVStream* st = fmt_->streams[i];
    if (st->codecpar->codec_type == AVMEDIA_TYPE_AUDIO) info_.has_audio = true;
    if (st->codecpar->codec_type == AVMEDIA_TYPE_VIDEO &&
        !(st->disposition & AV_DISPOSITION_ATTACHED_PIC) && stream_ < 0) {
      stream_ = int(i);
    }
  }
  if (stream_ < 0) fail(path_, "no video stream");
  info_.container = name;
  // Only the chosen stream's packets are demuxed into memory.
  for (unsigned i = 0; i < fmt_->nb_streams; ++i) {
    if (int(i) != stream_) fmt_->streams[i]->discard = AVDISCARD_ALL;
  }
  const AVStream* st = fmt_->streams[stream_];
  tb_ = st->time_base;
  const AVCodecParameters* par = st->codecpar;
  const AVCodecDescriptor* desc = avcodec_descriptor_get(par->codec_id);
  info_.codec = desc != nullptr ? desc->name : "unknown";
  info_.coded_width = par->width;
  info_.coded_height = par->height;
  const int64_t w = par->width, h = par->height;
  if (w <= 0 || h <= 0) fail(path_, "video stream has no frame size");
  if (w * h > lim_.max_pixels) {
    fail(path_, "video frames are " + std::to_string(w) + "x" + std::to_string(h) +
                    ", over the limit of " + std::to_string(lim_.max_pixels) + " pixels");
  }
}

void FfmpegReader::scan_packets() {
  deadline_.arm(lim_.timeout_s);
  AVPacket* p = pkt_.get();
  int rc;
  while ((rc = av_read_frame(fmt_.get(), p)) >= 0) {
    if (p->stream_index == stream_) {
      if (int64_t(index_.packets.size()) >= lim_.max_frames) {
        av_packet_unref(p);
        fail(path_, "more than " + std::to_string(lim_.max_frames) + " video frames");
      }
      const int64_t pts = p->pts != AV_NOPTS_VALUE ? p->pts : p->dts;
      index_.packets.push_back(
          {pts, p->dts, (p->flags & AV_PKT_FLAG_KEY) != 0, (p->flags & AV_PKT_FLAG_DISCARD) != 0});
    }
    av_packet_unref(p);
  }
  if (deadline_.timed_out()) fail(path_, "timed out reading the file");
  if (rc != AVERROR_EOF && index_.packets.empty()) {
    fail(path_, "cannot read the video stream (" + av_err(rc) + ")", av_kind(rc));
  }
  // A read error after some packets is a truncated file: keep what was read.
  auto& ix = index_;
  std::vector<int64_t> order;
  for (size_t i = 0; i < ix.packets.size(); ++i) {
    const PacketInfo& pk = ix.packets[i];
    if (pk.discard) continue;
    if (pk.pts == AV_NOPTS_VALUE) ix.seekable = false;
    order.push_back(int64_t(i));
  }
  if (order.empty()) fail(path_, "no video frames");
  if (ix.seekable) {
    std::stable_sort(order.begin(), order.end(),
                     [&](int64_t a, int64_t b) { return ix.packets[a].pts < ix.packets[b].pts; });
  }
  for (int64_t pos : order) {
    ix.frame_packet.push_back(pos);
    ix.frame_pts.push_back(ix.packets[size_t(pos)].pts);
  }
  for (size_t f = 0; ix.seekable && f < ix.frame_pts.size(); ++f) {
    if (!ix.pts_to_frame.emplace(ix.frame_pts[f], int64_t(f)).second) ix.seekable = false;
  }
  for (size_t i = 0; ix.seekable && i < ix.packets.size(); ++i) {
    if (!ix.pts_to_packet.emplace(ix.packets[i].pts, int64_t(i)).second) ix.seekable = false;
  }
  compute_info();
}

void FfmpegReader::compute_info() {
  const AVStream* st = fmt_->streams[stream_];
  info_.n_frames = int64_t(index_.frame_pts.size());
  if (st->avg_frame_rate.num > 0 && st->avg_frame_rate.den > 0) {
    info_.header_fps = av_q2d(st->avg_frame_rate);
  }
  // Content duration: first pts to the end of the last frame. Packet durations are often
  // absent, so the last frame lasts as long as the step before it.
  const auto& pts = index_.frame_pts;
  if (index_.seekable && pts.size() >= 2) {
    const int64_t last_step = pts.back() - pts[pts.size() - 2];
    info_.duration_s = double(pts.back() - pts.front() + last_step) * av_q2d(tb_);
  } else if (info_.header_fps > 0) {
    info_.duration_s = double(info_.n_frames) / info_.header_fps;
  }
  info_.fps = info_.duration_s > 0 ? double(info_.n_frames) / info_.duration_s : 24.0;
  if (index_.seekable) record_vfr_times();

  const AVCodecParameters* par = st->codecpar;
  if (lim_.apply_sar) {
    AVRational sar = av_guess_sample_aspect_ratio(fmt_.get(), fmt_->streams[stream_], nullptr);
    if (sar.num > 0 && sar.den > 0) {
      av_reduce(&info_.sar_num, &info_.sar_den, sar.num, sar.den, 1 << 30);
    }
  }
  // ffmpeg's scale=iw*sar:ih truncates the product; keep at least one column.
  const int64_t w = std::max<int64_t>(1, int64_t(par->width) * info_.sar_num / info_.sar_den);
  const int64_t h = par->height;
  if (w * h > lim_.max_pixels) {
    fail(path_, "display size " + std::to_string(w) + "x" + std::to_string(h) +
                    " is over the limit of " + std::to_string(lim_.max_pixels) + " pixels");
  }
  if (lim_.apply_rotation) display_transform(st, info_.rotation, info_.mirrored);
  const bool swap = info_.rotation == 90 || info_.rotation == 270;
  info_.width = int(swap ? h : w);
  info_.height = int(swap ? w : h);
}

// Keeps the frames' pts-derived times when index / fps misses some frame's time by more than
// the tolerance (a variable frame rate); a constant rate keeps transformers' index / fps.
void FfmpegReader::record_vfr_times() {
  const auto& pts = index_.frame_pts;
  const double tb = av_q2d(tb_);
  const double tolerance = std::max(kVfrToleranceS, 2 * tb);
  auto times = std::make_shared<std::vector<double>>(pts.size());
  bool variable = false;
  for (size_t i = 0; i < pts.size(); ++i) {
    (*times)[i] = double(pts[i] - pts[0]) * tb;
    variable = variable || std::fabs((*times)[i] - double(i) / info_.fps) > tolerance;
  }
  if (variable) info_.vfr_times_s = std::move(times);
}

void FfmpegReader::open_decoder() {
  const AVCodecParameters* par = fmt_->streams[stream_]->codecpar;
  const AVCodec* codec = avcodec_find_decoder(par->codec_id);
  if (codec == nullptr) {
    char tag[AV_FOURCC_MAX_STRING_SIZE] = {};
    av_fourcc_make_string(tag, par->codec_tag);
    const std::string what =
        par->codec_id != AV_CODEC_ID_NONE ? info_.codec : "with tag '" + std::string(tag) + "'";
    fail(path_, "unsupported video codec " + what, ErrorKind::Unsupported);
  }
  dec_.reset(avcodec_alloc_context3(codec));
  if (!dec_ || avcodec_parameters_to_context(dec_.get(), par) < 0)
    fail(path_, "out of memory", ErrorKind::Io);
  dec_->thread_count = lim_.threads;
  dec_->pkt_timebase = tb_;
  AVDictionary* opts = nullptr;
  av_dict_set_int(&opts, "max_pixels", lim_.max_pixels, 0);
  const int rc = avcodec_open2(dec_.get(), codec, &opts);
  av_dict_free(&opts);
  if (rc < 0)
    fail(path_, "cannot open the " + info_.codec + " decoder (" + av_err(rc) + ")", av_kind(rc));
  rewind();
}

void FfmpegReader::rewind() {
  av_packet_unref(pkt_.get());  // a packet a failed seek left pending would leak
  avformat_seek_file(fmt_.get(), stream_, INT64_MIN, INT64_MIN, INT64_MIN, AVSEEK_FLAG_BACKWARD);
  avcodec_flush_buffers(dec_.get());
  fed_packet_ = -1;
  seq_frame_ = 0;
  last_out_ = -1;
  seek_key_ = -1;
  pending_ = false;
  eof_ = false;
}

int64_t FfmpegReader::seek_packet_for(int64_t frame) const {
  const int64_t pos = index_.frame_packet[size_t(frame)];
  const int64_t pts = index_.frame_pts[size_t(frame)];
  for (int64_t i = pos; i >= 0; --i) {
    const PacketInfo& pk = index_.packets[size_t(i)];
    if (pk.key && pk.pts <= pts) return i;
  }
  return 0;
}

// Seeks so that the next packet read is keyframe `packet` or an earlier keyframe. False if the
// demuxer landed elsewhere (then the caller decodes from the start).
bool FfmpegReader::seek_to_packet(int64_t packet) {
  // Demuxers index keyframes by pts (matroska cues), by dts (avi) or by shifted sample times
  // (mov with edit lists, which land one keyframe early for the keyframe's own pts). Try the
  // keyframe's pts, just before the next keyframe, and its dts; take an exact landing, else
  // the latest earlier keyframe reached (still correct, only slower).
  const PacketInfo& target = index_.packets[size_t(packet)];
  int64_t next_key = AV_NOPTS_VALUE;
  for (size_t i = size_t(packet) + 1; i < index_.packets.size(); ++i) {
    if (index_.packets[i].key) {
      next_key = index_.packets[i].pts - 1;
      break;
    }
  }
  int64_t best_ts = AV_NOPTS_VALUE, best = -1;
  for (const int64_t ts : {target.pts, next_key, target.dts}) {
    if (ts == AV_NOPTS_VALUE) continue;
    const int64_t landed = seek_and_peek(ts);
    if (landed == packet) return accept_seek(packet, landed);
    if (landed >= 0 && landed < packet && landed > best) best = landed, best_ts = ts;
  }
  if (best < 0 || seek_and_peek(best_ts) != best) return false;
  return accept_seek(packet, best);
}

bool FfmpegReader::accept_seek(int64_t packet, int64_t landed) {
  fed_packet_ = landed - 1;
  seek_key_ = packet;
  pending_ = true;  // pkt_ holds the landed packet
  return true;
}

// Seeks backwards to `ts` and reads the first video packet into pkt_. Returns its decode-order
// position if it is a known keyframe, else -1 (pkt_ released).
int64_t FfmpegReader::seek_and_peek(int64_t ts) {
  avcodec_flush_buffers(dec_.get());
  eof_ = false;
  pending_ = false;
  last_out_ = -1;
  av_packet_unref(pkt_.get());
  if (av_seek_frame(fmt_.get(), stream_, ts, AVSEEK_FLAG_BACKWARD) < 0) return -1;
  AVPacket* p = pkt_.get();
  while (true) {
    if (av_read_frame(fmt_.get(), p) < 0) return -1;
    if (p->stream_index == stream_) break;
    av_packet_unref(p);
  }
  const auto it = index_.pts_to_packet.find(p->pts != AV_NOPTS_VALUE ? p->pts : p->dts);
  if (it == index_.pts_to_packet.end() || !(p->flags & AV_PKT_FLAG_KEY)) {
    av_packet_unref(p);
    return -1;
  }
  return it->second;
}

void FfmpegReader::drain(const std::function<void(int64_t, const AVFrame*)>& on_frame) {
  AVFrame* f = frame_.get();
  while (avcodec_receive_frame(dec_.get(), f) >= 0) {
    ++decoded_;
    int64_t idx = -1;
    if (index_.seekable) {
      const int64_t pts = f->pts != AV_NOPTS_VALUE ? f->pts : f->best_effort_timestamp;
      const auto it = index_.pts_to_frame.find(pts);
      if (it != index_.pts_to_frame.end()) idx = it->second;  // else: trimmed by an edit list
    } else {
      idx = seq_frame_++;
    }
    if (idx >= 0) {
      last_out_ = std::max(last_out_, idx);
      on_frame(idx, f);
    }
    av_frame_unref(f);
  }
}

bool FfmpegReader::decode_step(const std::function<void(int64_t, const AVFrame*)>& on_frame) {
  if (eof_) return false;
  if (deadline_.timed_out()) fail(path_, "timed out decoding");
  AVPacket* p = pkt_.get();
  bool have = pending_;
  pending_ = false;
  while (!have) {
    if (av_read_frame(fmt_.get(), p) < 0) {
      // End of file, or a read error in a truncated file: flush what the decoder holds.
      avcodec_send_packet(dec_.get(), nullptr);
      drain(on_frame);
      eof_ = true;
      return false;
    }
    if (p->stream_index == stream_) {
      have = true;
    } else {
      av_packet_unref(p);
    }
  }
  const auto it = index_.pts_to_packet.find(p->pts != AV_NOPTS_VALUE ? p->pts : p->dts);
  fed_packet_ = index_.seekable && it != index_.pts_to_packet.end() ? it->second : fed_packet_ + 1;
  // A packet the decoder rejects (corrupt data) is skipped; decoding goes on with the next.
  avcodec_send_packet(dec_.get(), p);
  av_packet_unref(p);
  drain(on_frame);
  return true;
}

namespace {

// Rotates an RGB24 image clockwise by 90, 180 or 270 degrees.
Image rotate(const Image& in, int degrees) {
  const int w = in.width, h = in.height;
  const bool swap = degrees != 180;
  Image out{swap ? h : w, swap ? w : h, std::vector<uint8_t>(in.rgb.size())};
  for (int y = 0; y < out.height; ++y) {
    for (int x = 0; x < out.width; ++x) {
      int sx, sy;
      if (degrees == 90) {
        sx = y, sy = h - 1 - x;
      } else if (degrees == 180) {
        sx = w - 1 - x, sy = h - 1 - y;
      } else {
        sx = w - 1 - y, sy = x;
      }
      const uint8_t* s = &in.rgb[(size_t(sy) * w + sx) * 3];
      uint8_t* d = &out.rgb[(size_t(y) * out.width + x) * 3];
      d[0] = s[0], d[1] = s[1], d[2] = s[2];
    }
  }
  return out;
}

}  // namespace

Image FfmpegReader::to_rgb(const AVFrame* f) {
  const bool swap = info_.rotation == 90 || info_.rotation == 270;
  const int w = swap ? info_.height : info_.width;  // before rotation
  const int h = swap ? info_.width : info_.height;
  const bool scaling = f->width != w || f->height != h;
  // Plain conversion uses bilinear chroma upsampling like torchcodec's swscale path; the SAR
  // stretch uses bicubic as players and ffmpeg's scale filter do.
  const int flags = scaling ? SWS_BICUBIC : SWS_BILINEAR;
  SwsContext* ctx =
      sws_getCachedContext(sws_.release(), f->width, f->height, AVPixelFormat(f->format), w, h,
                           AV_PIX_FMT_RGB24, flags, nullptr, nullptr, nullptr);
  sws_.reset(ctx);
  if (ctx == nullptr)
    fail(path_, "unsupported pixel format in the " + info_.codec + " stream",
         ErrorKind::Unsupported);
  set_frame_colorspace(ctx, f);
  Image img{w, h, {}};
  scale_to_rgb(ctx, f, img);
  if (info_.rotation != 0) img = rotate(img, info_.rotation);
  return img;
}

void FfmpegReader::read_frames(std::span<const int64_t> indices,
                               const std::function<void(size_t, Image&&)>& sink) {
  try {
    decode_frames(indices, sink);
  } catch (const std::bad_alloc&) {
    // Frames within the limits that this machine cannot hold: the system's failure.
    fail(path_, "out of memory", ErrorKind::Io);
  }
}

void FfmpegReader::decode_frames(std::span<const int64_t> indices,
                                 const std::function<void(size_t, Image&&)>& sink) {
  for (size_t k = 0; k < indices.size(); ++k) {
    if (indices[k] < 0 || indices[k] >= info_.n_frames) {
      fail(path_, "frame " + std::to_string(indices[k]) + " out of range (" +
                      std::to_string(info_.n_frames) + " frames)");
    }
    if (k > 0 && indices[k] <= indices[k - 1]) fail(path_, "frame indices not ascending");
  }
  if (indices.empty()) return;
  deadline_.arm(lim_.timeout_s);
  size_t k = 0;
  auto on_frame = [&](int64_t idx, const AVFrame* f) {
    // Wanted frames the decoder skipped get the previous good frame (or this one).
    while (k < indices.size() && indices[k] < idx) {
      sink(k++, to_rgb(prev_->data[0] != nullptr ? prev_.get() : f));
    }
    if (k < indices.size() && indices[k] == idx) sink(k++, to_rgb(f));
    av_frame_unref(prev_.get());
    av_frame_ref(prev_.get(), f);
  };
  while (k < indices.size()) {
    const int64_t want = indices[k];
    if (index_.seekable && !seek_broken_) {
      const int64_t key = seek_packet_for(want);
      // Seek when the keyframe lies ahead of the decoder (and was not just sought), or to go back.
      if ((key > fed_packet_ && key != seek_key_) || want <= last_out_ || eof_) {
        if (!seek_to_packet(key)) {
          seek_broken_ = true;
          rewind();
        }
      }
    } else if (want <= last_out_ || eof_) {
      rewind();
    }
    if (!decode_step(on_frame)) break;
  }
  if (k < indices.size()) {
    if (prev_->data[0] == nullptr) fail(path_, "no decodable video frames");
    while (k < indices.size()) sink(k++, to_rgb(prev_.get()));
  }
}

std::unique_ptr<VideoReader> VideoReader::open(const std::string& path, const VideoLimits& limits) {
  return std::make_unique<FfmpegReader>(path, limits);
}

VideoInfo probe_video(const std::string& path, const VideoLimits& limits) {
  return FfmpegReader(path, limits).info();
}

}  // namespace reel::media
