// Decodes arbitrary bytes as an image (every format reel_media knows), then runs the
// preprocessing on what decodes. Only reel::Error may escape the library.
#include <cstddef>
#include <cstdint>

#include "common/error.h"
#include "media/image.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace reel::media;
  // Small limits keep each run fast and bounded in memory under the sanitizers.
  const ImageLimits limits{1 << 20, 1 << 22};
  try {
    Image img = decode_image(data, size, "fuzz", limits);
    const ResizeBudget budget{32, 1024, 16384};
    const Size2 s = smart_resize(img.height, img.width, budget);
    Image r = resize_bicubic(img, s.width, s.height);
    const Image* frames[] = {&r, &r};
    const float mean[3] = {0.5f, 0.5f, 0.5f}, stdv[3] = {0.5f, 0.5f, 0.5f};
    std::vector<float> pv;
    PatchGrid grid;
    patchify(frames, 16, 2, 2, mean, stdv, pv, grid);
  } catch (const reel::Error&) {
  }
  return 0;
}
