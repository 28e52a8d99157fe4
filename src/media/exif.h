// EXIF orientation: reading the tag and applying it (internal to reel_media).
#pragma once

#include <cstddef>
#include <cstdint>

#include "media/image.h"

namespace reel::media::detail {

// Orientation (1..8) from an EXIF block: a TIFF header ("II*\0" / "MM\0*"), optionally preceded
// by "Exif\0\0". Returns 1 for anything missing, malformed or out of range.
int exif_orientation(const uint8_t* data, size_t size);

// Transposes `img` in place as PIL's ImageOps.exif_transpose does for that orientation.
void apply_orientation(Image& img, int orientation);

}  // namespace reel::media::detail
