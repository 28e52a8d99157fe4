// reel_media against transformers 5.23 / torch 2.15 dumps
// (tools/reference/make_vision_fixtures.py): decoded RGB, resized RGB, pixel_values checksums, and
// smart_resize cases.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "common/error.h"
#include "media/image.h"

namespace reel::media {
namespace {

using nlohmann::json;
namespace fs = std::filesystem;

std::vector<uint8_t> read_bytes(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

json load_json(const std::string& rel) {
  for (const fs::path& dir : {fs::path(REEL_FIXTURE_DIR), fs::path(REEL_FIXTURE_SRC)}) {
    if (fs::exists(dir / rel)) return json::parse(std::ifstream(dir / rel));
  }
  return nullptr;
}

int max_abs_diff(const std::vector<uint8_t>& a, const std::vector<uint8_t>& b) {
  int m = 0;
  for (size_t i = 0; i < std::min(a.size(), b.size()); ++i) {
    m = std::max(m, std::abs(int(a[i]) - int(b[i])));
  }
  return m;
}

std::string source_path(const std::string& src) {
  if (src.rfind("shared:data/", 0) == 0) return std::string(REEL_TEST_DATA) + "/" + src.substr(12);
  return (fs::path(REEL_FIXTURE_SRC).parent_path().parent_path() / src).string();
}

TEST(Reference, SmartResize) {
  json j = load_json("vision/smart_resize.json");
  if (j.is_null()) GTEST_SKIP() << "vision/smart_resize.json not present";
  int n = 0;
  for (const json& c : j["cases"]) {
    const ResizeBudget b{j["factor"].get<int>(), c["min_pixels"].get<int64_t>(),
                         c["max_pixels"].get<int64_t>()};
    const int h = c["h"], w = c["w"];
    if (c.contains("error")) {
      EXPECT_THROW(smart_resize(h, w, b), Error) << h << "x" << w;
    } else {
      Size2 s = smart_resize(h, w, b);
      EXPECT_EQ(s.height, c["result"][0].get<int>()) << h << "x" << w << " " << c.dump();
      EXPECT_EQ(s.width, c["result"][1].get<int>()) << h << "x" << w << " " << c.dump();
    }
    ++n;
  }
  EXPECT_GT(n, 100);
}

TEST(Reference, Images) {
  json j = load_json("vision/images.json");
  if (j.is_null()) GTEST_SKIP() << "vision/images.json not present";
  const json& proc = j["processor"];
  const float mean[3] = {proc["image_mean"][0], proc["image_mean"][1], proc["image_mean"][2]};
  const float stdv[3] = {proc["image_std"][0], proc["image_std"][1], proc["image_std"][2]};
  for (const json& im : j["images"]) {
    const std::string name = im["name"];
    const std::string path = source_path(im["source"]);
    if (!fs::exists(path)) {
      ADD_FAILURE() << name << ": missing " << path;
      continue;
    }
    SCOPED_TRACE(name);
    Image img = load_image(path);
    EXPECT_EQ(img.width, im["size"][0].get<int>());
    EXPECT_EQ(img.height, im["size"][1].get<int>());
    if (im.contains("decoded_rgb")) {
      const auto want =
          read_bytes(fs::path(REEL_FIXTURE_DIR) / im["decoded_rgb"].get<std::string>());
      ASSERT_EQ(img.rgb.size(), want.size());
      const int d = max_abs_diff(img.rgb, want);
      std::printf("  %-20s decoded max|diff| %d\n", name.c_str(), d);
      EXPECT_EQ(d, 0);
    }
    int64_t sum = 0;
    for (uint8_t v : img.rgb) sum += v;
    EXPECT_EQ(sum, std::stoll(im["decoded_sum"].dump()));

    const ResizeBudget budget{32, im["min_pixels"].get<int64_t>(), im["max_pixels"].get<int64_t>()};
    const Size2 s = smart_resize(img.height, img.width, budget);
    ASSERT_EQ(s.width, im["resized"][0].get<int>());
    ASSERT_EQ(s.height, im["resized"][1].get<int>());
    Image resized = resize_bicubic(img, s.width, s.height);
    const auto want = read_bytes(fs::path(REEL_FIXTURE_DIR) / im["resized_rgb"].get<std::string>());
    ASSERT_EQ(resized.rgb.size(), want.size());
    const int d = max_abs_diff(resized.rgb, want);
    std::printf("  %-20s resized max|diff| %d\n", name.c_str(), d);
    EXPECT_EQ(d, 0);

    // Patchify the reference's own resized pixels, so this checks the layout independently.
    Image ref{s.width, s.height, want};
    const Image* frames[] = {&ref, &ref};
    std::vector<float> pv;
    PatchGrid g;
    patchify(frames, proc["patch_size"], proc["temporal_patch_size"], proc["merge_size"], mean,
             stdv, pv, g);
    EXPECT_EQ(g.h, im["grid_thw"][1].get<int>());
    EXPECT_EQ(g.w, im["grid_thw"][2].get<int>());
    const json& pj = im["pixel_values"];
    ASSERT_EQ(pv.size(), pj["shape"][0].get<size_t>() * pj["shape"][1].get<size_t>());
    double total = 0, weighted = 0;
    for (size_t i = 0; i < pv.size(); ++i) {
      total += pv[i];
      weighted += double(pv[i]) * double((i % 997) + 1) / 997.0;
    }
    EXPECT_NEAR(total, pj["sum"].get<double>(), 1e-6 * (1 + std::abs(total)));
    EXPECT_NEAR(weighted, pj["weighted_sum"].get<double>(), 1e-6 * (1 + std::abs(weighted)));
    for (int r = 0; r < 2; ++r) {
      const json& row = pj[r == 0 ? "row0" : "row1"];
      for (size_t k = 0; k < row.size(); ++k) {
        ASSERT_EQ(pv[r * row.size() + k], row[k].get<float>()) << "row " << r << " col " << k;
      }
    }
  }
}

}  // namespace
}  // namespace reel::media
