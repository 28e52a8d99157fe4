// swscale into RGB24 without trusting it to stop at the end of the buffer: its unscaled
// yuv420p -> rgb24 path writes whole SIMD blocks, up to 18 bytes past a row whose width is
// 9-15 modulo 16 (found by the video fuzzer: heap corruption on 426x240 video). Rows are
// converted with a padded stride into a scratch buffer with slack, then copied out exactly.
#pragma once

extern "C" {
#include <libavutil/frame.h>
#include <libswscale/swscale.h>
}

#include "media/image.h"

namespace reel::media {

// Tells `ctx` the frame's YUV matrix and range (full-range JPEG or limited); the RGB output is
// full range. Unknown or unspecified matrices get swscale's default (BT.601).
void set_frame_colorspace(SwsContext* ctx, const AVFrame* frame);

// Converts all of `frame` with `ctx` (whose output is out.width x out.height RGB24) into
// out.rgb, sized here.
void scale_to_rgb(SwsContext* ctx, const AVFrame* frame, Image& out);

}  // namespace reel::media
