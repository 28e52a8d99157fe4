// pixel_values layout of the Qwen2-VL/Qwen3-VL processors (spec §3.3).
#include <string>

#include "common/error.h"
#include "media/image.h"
#include "media/parallel_rows.h"

namespace reel::media {

void patchify(std::span<const Image* const> frames, int patch, int temporal_patch, int merge,
              const float mean[3], const float std[3], std::vector<float>& out, PatchGrid& grid,
              ops::ThreadPool* pool) {
  // Frames come resized to the grid by the encoders, and the geometry from a checked model.
  if (patch <= 0 || temporal_patch <= 0 || merge <= 0 || frames.empty() ||
      frames.size() % temporal_patch != 0) {
    throw InternalError("patchify: frame count must be a positive multiple of the temporal patch");
  }
  const int width = frames[0]->width, height = frames[0]->height;
  const int unit = patch * merge;
  if (width <= 0 || height <= 0 || width % unit != 0 || height % unit != 0) {
    throw InternalError("patchify: frame size " + std::to_string(width) + "x" +
                        std::to_string(height) + " is not a multiple of " + std::to_string(unit));
  }
  for (const Image* f : frames) {
    if (f->width != width || f->height != height || f->rgb.size() != size_t(width) * height * 3) {
      throw InternalError("patchify: frames differ in size");
    }
  }
  grid = {int(frames.size()) / temporal_patch, height / patch, width / patch};
  const int hm = grid.h / merge, wm = grid.w / merge;
  const size_t cols = size_t(3) * temporal_patch * patch * patch;
  out.resize(size_t(grid.t) * grid.h * grid.w * cols);  // every value is written below
  // HF's fast processor fuses rescale and normalize: (x - 255*mean) / (255*std) in float32.
  float m[3], s[3];
  for (int c = 0; c < 3; ++c) {
    m[c] = mean[c] * 255.0f;
    s[c] = std[c] * 255.0f;
  }
  // Row order: temporal group, merged-block row, merged-block column, then the merge x merge
  // patches inside the block row-major. Column order: channel, frame in the pair, py, px.
  const size_t rows_per_band = size_t(wm) * merge * merge;
  // One merged-block row (t, bh): its wm * merge * merge output rows.
  auto write_band = [&](int64_t band) {
    const int t = int(band / hm), bh = int(band % hm);
    float* dst = out.data() + size_t(band) * rows_per_band * cols;
    for (int bw = 0; bw < wm; ++bw)
      for (int ih = 0; ih < merge; ++ih)
        for (int iw = 0; iw < merge; ++iw, dst += cols) {
          const int y0 = (bh * merge + ih) * patch, x0 = (bw * merge + iw) * patch;
          float* d = dst;
          for (int c = 0; c < 3; ++c)
            for (int tt = 0; tt < temporal_patch; ++tt) {
              const uint8_t* px = frames[size_t(t) * temporal_patch + tt]->rgb.data();
              for (int py = 0; py < patch; ++py) {
                const uint8_t* row = px + (size_t(y0 + py) * width + x0) * 3 + c;
                for (int x = 0; x < patch; ++x) *d++ = (float(row[x * 3]) - m[c]) / s[c];
              }
            }
        }
  };
  detail::for_row_ranges(pool, int64_t(grid.t) * hm, int64_t(rows_per_band * cols),
                         [&](int64_t band0, int64_t band1) {
                           for (int64_t band = band0; band < band1; ++band) write_band(band);
                         });
}

}  // namespace reel::media
