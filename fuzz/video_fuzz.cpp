// Video: arbitrary bytes written to a temporary file, probed, and a few sampled frames decoded
// (FFmpeg demuxers and decoders behind reel_media's VideoReader, with tight limits).
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <string>

#include "common/error.h"
#include "media/sampling.h"
#include "media/video.h"

namespace {
// VideoReader opens a path (FFmpeg's demuxers seek in it), so each input is written to one file
// per process, removed when the fuzzer exits normally.
struct InputFile {
  std::string path = "/tmp/reel-video-fuzz-" + std::to_string(getpid()) + ".bin";
  ~InputFile() { std::remove(path.c_str()); }
};
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const InputFile input;
  const std::string& path = input.path;
  FILE* f = std::fopen(path.c_str(), "wb");
  if (f == nullptr) return 0;
  std::fwrite(data, 1, size, f);
  std::fclose(f);
  reel::media::VideoLimits limits;
  limits.max_pixels = 1 << 20;
  limits.max_frames = 2000;
  limits.timeout_s = 5;
  try {
    auto r = reel::media::VideoReader::open(path, limits);
    const auto idx = reel::media::sample_evenly(r->info().n_frames, 4);
    r->read_frames(idx, [](size_t, reel::media::Image&&) {});
  } catch (const reel::Error&) {
  }
  return 0;
}
