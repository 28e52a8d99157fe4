// Video layer: container probing, an exact frame index from a packet scan, and frame-accurate
// decoding of chosen frames to RGB24 (seek to a keyframe, decode forward) with FFmpeg.
//
// Frame indices are presented frames in presentation order, index 0 = first, the numbering
// transformers' video loaders use. Timestamps come from pts, so variable frame rate is exact.
//
// Only regular files are read: a FIFO, device, socket or directory is refused before FFmpeg
// opens the path (the reader probes and then seeks, and opening a FIFO would block).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "media/image.h"

namespace reel::media {

struct VideoLimits {
  int64_t max_pixels = 8192 * 8192;  // per frame, coded and display size
  int64_t max_frames = 1'000'000;    // packets of the video stream
  double timeout_s = 300;            // per open / probe / read_frames call (interrupt callback)
  // Display corrections. HF's default backends (torchcodec, PyAV) apply neither, so reference
  // parity turns them off; a user viewing the video expects both.
  bool apply_rotation = true;  // display-matrix rotation (90/180/270) and mirror
  bool apply_sar = true;       // scale width by the sample aspect ratio to square pixels
  int threads = 1;             // decoder threads; 0 = FFmpeg chooses
};

struct VideoInfo {
  int width = 0, height = 0;  // output size: after rotation and SAR correction (if enabled)
  int coded_width = 0, coded_height = 0;  // decoded picture size (codecpar width/height)
  int rotation = 0;                       // degrees clockwise applied (0 when disabled)
  bool mirrored = false;                  // display matrix flips horizontally (applied if rotating)
  int sar_num = 1, sar_den = 1;           // sample aspect ratio (1:1 when unknown)
  // n_frames / duration_s; 24 when the duration is unknown, as transformers assumes.
  double fps = 24;
  double header_fps = 0;  // the container's avg_frame_rate (0 if absent), for information
  int64_t n_frames = 0;   // presented frames: video packets not flagged discard (edit lists)
  // First pts to the end of the last frame (its packet duration, or else the previous pts step).
  double duration_s = 0;
  std::string codec, container;
  bool has_audio = false;
  // Presentation time of every frame minus frame 0's, in seconds, kept only for a variable
  // frame rate stream: one where some frame's time differs from index / fps (the time
  // transformers assumes) by more than kVfrToleranceS or two time-base ticks, whichever is
  // larger. Null for constant frame rate (then index / fps is the time) and when pts are
  // missing. Shared, so copies of the info stay cheap; n_frames doubles at most.
  std::shared_ptr<const std::vector<double>> vfr_times_s;

  bool variable_rate() const { return vfr_times_s != nullptr; }
  // Frame `index`'s time in seconds from frame 0: its pts when variable_rate(), else
  // index / fps exactly as transformers computes it. index in [0, n_frames).
  double frame_time_s(int64_t index) const {
    return vfr_times_s ? (*vfr_times_s)[size_t(index)] : double(index) / fps;
  }
};

// Largest difference between a frame's pts and index / fps still read as constant frame rate,
// or two ticks of the stream's time base if that is more: pts rounded to the time base stay
// within it (NTSC 30000/1001 in Matroska's 1 ms base: 33/34 ms steps, within 1.2 ms), a
// dropped or held frame (a whole frame interval) does not.
inline constexpr double kVfrToleranceS = 0.001;

// Opens, scans the packets (no decoding) and closes. Throws reel::Error("<path>: ...").
VideoInfo probe_video(const std::string& path, const VideoLimits& limits = {});

class VideoReader {
 public:
  static std::unique_ptr<VideoReader> open(const std::string& path, const VideoLimits& limits = {});
  virtual ~VideoReader() = default;

  virtual const VideoInfo& info() const = 0;

  // Decodes the frames with these indices (ascending, unique, < n_frames) and calls
  // sink(k, image) in order for the k-th one. Seeks to the last keyframe at or before a wanted
  // frame only when that keyframe lies ahead of what was already decoded, so nearby indices
  // share one forward decode. A wanted frame the decoder could not produce (corrupt data) is
  // replaced by the nearest earlier decoded frame (or the next one); no decoded frame at all
  // is an error.
  virtual void read_frames(std::span<const int64_t> indices,
                           const std::function<void(size_t, Image&&)>& sink) = 0;

  // Presentation time of frame `index` minus that of frame 0, in seconds.
  virtual double timestamp_s(int64_t index) const = 0;

  // Frames the decoder produced since open (tests check that sampling avoids a full decode).
  virtual int64_t decoded_frames() const = 0;
};

}  // namespace reel::media
