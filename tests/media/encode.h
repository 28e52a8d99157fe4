// Small encoders for the tests: images are made at test time with the decoders' own libraries.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace reel::media::test {

using Bytes = std::vector<uint8_t>;

// `pixels` has `components` (1 gray, 3 RGB) samples per pixel. `app1` is written as an APP1
// marker verbatim (e.g. "Exif\0\0" + TIFF) when not empty.
Bytes encode_jpeg(const std::vector<uint8_t>& pixels, int w, int h, int components, int quality,
                  const Bytes& app1 = {});

// color_type as libpng's PNG_COLOR_TYPE_*; samples are big-endian pairs when depth == 16.
// `palette` (RGB triples) for palette images; `exif` written as an eXIf chunk when not empty.
Bytes encode_png(const std::vector<uint8_t>& samples, int w, int h, int color_type, int depth,
                 const std::vector<uint8_t>& palette = {}, const Bytes& exif = {});

Bytes encode_webp_lossless(const std::vector<uint8_t>& rgb, int w, int h);
Bytes encode_bmp24(const std::vector<uint8_t>& rgb, int w, int h);
// 8-bit indices into a 256-entry global palette (RGB triples), one frame, no compression tricks.
Bytes encode_gif(const std::vector<uint8_t>& indices, int w, int h,
                 const std::vector<uint8_t>& palette);

// A TIFF (big-endian) EXIF block with only the Orientation tag, prefixed by "Exif\0\0".
Bytes exif_block(int orientation, bool prefix = true);

}  // namespace reel::media::test
