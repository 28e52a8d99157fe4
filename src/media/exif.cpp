#include "media/exif.h"

#include <cstring>
#include <utility>

namespace reel::media::detail {
namespace {

constexpr uint16_t kOrientationTag = 0x0112;
constexpr uint16_t kTypeShort = 3;

struct TiffReader {
  const uint8_t* data;
  size_t size;
  bool big_endian;

  bool u16(size_t at, uint16_t& v) const {
    if (at > size || size - at < 2) return false;
    v = big_endian ? uint16_t(data[at] << 8 | data[at + 1])
                   : uint16_t(data[at + 1] << 8 | data[at]);
    return true;
  }
  bool u32(size_t at, uint32_t& v) const {
    uint16_t a, b;
    if (!u16(at, a) || !u16(at + 2, b)) return false;
    v = big_endian ? (uint32_t(a) << 16 | b) : (uint32_t(b) << 16 | a);
    return true;
  }
};

}  // namespace

int exif_orientation(const uint8_t* data, size_t size) {
  if (size >= 6 && std::memcmp(data, "Exif\0\0", 6) == 0) {
    data += 6;
    size -= 6;
  }
  if (size < 8) return 1;
  TiffReader r{data, size, false};
  if (std::memcmp(data, "II*\0", 4) == 0) {
    r.big_endian = false;
  } else if (std::memcmp(data, "MM\0*", 4) == 0) {
    r.big_endian = true;
  } else {
    return 1;
  }
  uint32_t ifd0;
  uint16_t count;
  if (!r.u32(4, ifd0) || !r.u16(ifd0, count)) return 1;
  // Only IFD0 carries the orientation of the main image.
  for (uint32_t i = 0; i < count; ++i) {
    size_t entry = size_t{ifd0} + 2 + size_t{i} * 12;
    uint16_t tag, type, value;
    uint32_t n;
    if (!r.u16(entry, tag) || !r.u16(entry + 2, type) || !r.u32(entry + 4, n)) return 1;
    if (tag != kOrientationTag) continue;
    if (type != kTypeShort || n < 1 || !r.u16(entry + 8, value)) return 1;
    return value >= 1 && value <= 8 ? value : 1;
  }
  return 1;
}

void apply_orientation(Image& img, int orientation) {
  if (orientation <= 1 || orientation > 8) return;
  const int w = img.width, h = img.height;
  const bool swap = orientation >= 5;  // transpose, rotations by 90° and transverse swap axes
  const int ow = swap ? h : w, oh = swap ? w : h;
  std::vector<uint8_t> out(img.rgb.size());
  for (int y = 0; y < oh; ++y) {
    for (int x = 0; x < ow; ++x) {
      // Source pixel (sx, sy) of output (x, y), per PIL's Transpose operation for each tag:
      // 2 FLIP_LEFT_RIGHT, 3 ROTATE_180, 4 FLIP_TOP_BOTTOM, 5 TRANSPOSE, 6 ROTATE_270 (clockwise),
      // 7 TRANSVERSE, 8 ROTATE_90 (counter-clockwise).
      int sx = x, sy = y;
      switch (orientation) {
        case 2:
          sx = w - 1 - x;
          break;
        case 3:
          sx = w - 1 - x;
          sy = h - 1 - y;
          break;
        case 4:
          sy = h - 1 - y;
          break;
        case 5:
          sx = y;
          sy = x;
          break;
        case 6:
          sx = y;
          sy = h - 1 - x;
          break;
        case 7:
          sx = w - 1 - y;
          sy = h - 1 - x;
          break;
        case 8:
          sx = w - 1 - y;
          sy = x;
          break;
      }
      const uint8_t* s = &img.rgb[(size_t(sy) * w + sx) * 3];
      uint8_t* d = &out[(size_t(y) * ow + x) * 3];
      d[0] = s[0];
      d[1] = s[1];
      d[2] = s[2];
    }
  }
  img.rgb = std::move(out);
  img.width = ow;
  img.height = oh;
}

}  // namespace reel::media::detail
