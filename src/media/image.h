// Image layer: decoding (JPEG, PNG, WebP, BMP, GIF, TIFF) to RGB24 with EXIF orientation applied,
// and the HF Qwen2-VL/Qwen3-VL "fast" preprocessing steps: smart_resize, torchvision's antialiased
// bicubic resize on uint8, and the pixel_values patch layout (spec §3).
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace reel::ops {
class ThreadPool;
}

namespace reel::media {

// RGB24, row-major, top row first, orientation already applied.
struct Image {
  int width = 0, height = 0;
  std::vector<uint8_t> rgb;  // width * height * 3
};

struct ImageLimits {
  int64_t max_pixels = 100'000'000;             // refused from the header, before pixel decoding
  int64_t max_file_bytes = int64_t{512} << 20;  // load_image only
};

// Decodes the whole file. Throws reel::Error("<path>: ...") for anything but a readable regular
// file (missing, a directory, a FIFO or device, a link loop: refused at once, never read as a
// stream), an unknown format, corrupt or truncated data, or an image over the limits.
Image load_image(const std::string& path, const ImageLimits& limits = {});

// Same from memory; `name` prefixes error messages.
Image decode_image(const uint8_t* data, size_t size, const std::string& name,
                   const ImageLimits& limits = {});

struct ResizeBudget {
  int factor = 32;
  int64_t min_pixels = 65536;
  int64_t max_pixels = 16777216;
};

struct Size2 {
  int height = 0, width = 0;
};

// transformers' (5.23) Qwen2-VL smart_resize: round half to even, then floor/ceil rescaling into
// [min_pixels, max_pixels] (the floor branch keeps each side >= factor). Throws reel::Error for
// an empty side or an aspect ratio > 200. No minimum edge: tiny images are upscaled.
Size2 smart_resize(int height, int width, const ResizeBudget& budget);

// torchvision F.resize(uint8 tensor, BICUBIC, antialias=True) as PyTorch's CPU kernel computes it:
// Keys cubic (a = -0.5), support widened by the downscale factor, weights normalized in double and
// quantized to int16 fixed point, width pass then height pass with a uint8 intermediate.
// With a pool, rows are split across its threads (the same bytes as one thread).
Image resize_bicubic(const Image& src, int width, int height, ops::ThreadPool* pool = nullptr);

// Grid in patches (16 px) per axis; t counts temporal pairs of frames.
struct PatchGrid {
  int t = 0, h = 0, w = 0;
};

// Builds pixel_values [t*h*w][3*temporal_patch*patch*patch] from frames.size() == temporal_patch*t
// equally sized frames (an image: the same frame repeated), sides multiples of patch*merge.
// Values are (x - 255*mean) / (255*std) in float, the fused rescale+normalize of HF's fast
// processor. Row and column order as spec §3.3. With a pool, rows of merged blocks are split
// across its threads (the same values as one thread).
void patchify(std::span<const Image* const> frames, int patch, int temporal_patch, int merge,
              const float mean[3], const float std[3], std::vector<float>& out, PatchGrid& grid,
              ops::ThreadPool* pool = nullptr);

}  // namespace reel::media
