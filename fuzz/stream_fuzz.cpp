// Live video's stream reader: arbitrary bytes as a file read forward (demuxer probed, or forced
// to MPEG-TS as for stdin, by the first byte), every picture decoded and a few converted to RGB.
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <string>

#include "common/error.h"
#include "media/stream.h"

namespace {
struct InputFile {
  std::string path = "/tmp/reel-stream-fuzz-" + std::to_string(getpid()) + ".bin";
  ~InputFile() { std::remove(path.c_str()); }
};
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const InputFile input;
  if (size < 1) return 0;
  FILE* f = std::fopen(input.path.c_str(), "wb");
  if (f == nullptr) return 0;
  std::fwrite(data + 1, 1, size - 1, f);
  std::fclose(f);
  reel::media::StreamOptions o;
  o.open_timeout_s = o.read_timeout_s = 5;
  o.max_pixels = 1 << 20;
  if (data[0] & 1) o.input_format = "mpegts";
  try {
    auto r = reel::media::StreamReader::open(input.path, o);
    double pts = 0;
    for (int n = 0; n < 300 && r->advance(pts); ++n)
      if (n % 8 == 0) r->rgb();
  } catch (const reel::Error&) {
  }
  return 0;
}
