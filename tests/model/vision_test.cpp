// The Qwen3-VL vision encoder: loading and validation of the tiny mmproj fixture, the
// position-interpolation and rotary tables, and the whole encoder against a plain
// double-precision re-implementation written from the transformers semantics (this checks the
// threaded kernels, layouts and per-group attention, independent of the reference dumps).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <tuple>
#include <vector>

#include "common/error.h"
#include "gguf/gguf.h"
#include "model/qwen3vl_vision.h"
#include "ops/kernels.h"
#include "ops/ops.h"

namespace reel {
namespace {

const std::string kMmproj = REEL_FIXTURE_DIR "/models/tiny-a-mmproj-f32.gguf";
const std::string kText = REEL_FIXTURE_DIR "/models/tiny-a-f32.gguf";

std::vector<uint8_t> read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// Replaces the first occurrence of `from` with `to` (same length) in a GGUF image: renames a
// key, tensor or string value while keeping the file valid.
void patch_bytes(std::vector<uint8_t>& b, const std::string& from, const std::string& to) {
  ASSERT_EQ(from.size(), to.size());
  auto it = std::search(b.begin(), b.end(), from.begin(), from.end());
  ASSERT_NE(it, b.end()) << from;
  std::copy(to.begin(), to.end(), it);
}

std::string load_error(const std::vector<uint8_t>& bytes) {
  auto f = gguf::File::from_memory(bytes.data(), bytes.size(), "patched.gguf");
  try {
    Qwen3VLVision::load(*f);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

// The kind of the load error, by name ("" when the file loads).
std::string load_error_kind(const std::vector<uint8_t>& bytes) {
  auto f = gguf::File::from_memory(bytes.data(), bytes.size(), "patched.gguf");
  try {
    Qwen3VLVision::load(*f);
  } catch (const Error& e) {
    return error_kind_name(e.kind());
  }
  return "";
}

// ---- double-precision reference ---------------------------------------------------------

std::vector<double> tensor(const gguf::File& f, const std::string& name) {
  const gguf::TensorInfo* t = f.find_tensor(name);
  EXPECT_NE(t, nullptr) << name;
  std::vector<float> tmp(t->n_elements());
  dequantize_row_ref(t->type, t->data, tmp.data(), t->n_elements());
  return {tmp.begin(), tmp.end()};
}

// y[n][rows] = x[n][cols] * W^T + b
std::vector<double> linear(const std::vector<double>& x, const std::vector<double>& w,
                           const std::vector<double>& b, int cols) {
  const size_t rows = b.size(), n = x.size() / cols;
  std::vector<double> y(n * rows);
  for (size_t i = 0; i < n; ++i)
    for (size_t o = 0; o < rows; ++o) {
      double s = b[o];
      for (int k = 0; k < cols; ++k) s += w[o * cols + k] * x[i * cols + k];
      y[i * rows + o] = s;
    }
  return y;
}

std::vector<double> layer_norm(const std::vector<double>& x, const std::vector<double>& w,
                               const std::vector<double>& b) {
  const size_t dim = w.size(), n = x.size() / dim;
  std::vector<double> y(x.size());
  for (size_t i = 0; i < n; ++i) {
    const double* r = x.data() + i * dim;
    double mean = 0, var = 0;
    for (size_t k = 0; k < dim; ++k) mean += r[k];
    mean /= dim;
    for (size_t k = 0; k < dim; ++k) var += (r[k] - mean) * (r[k] - mean);
    const double inv = 1.0 / std::sqrt(var / dim + 1e-6);
    for (size_t k = 0; k < dim; ++k) y[i * dim + k] = (r[k] - mean) * inv * w[k] + b[k];
  }
  return y;
}

struct RefOut {
  std::vector<double> block0_in, main;
  std::vector<std::vector<double>> deepstack;
};

RefOut reference(const gguf::File& f, const VisionConfig& c, const std::vector<float>& pix,
                 int n_groups, int gh, int gw) {
  const int D = c.n_embd, P = c.patch_size, hd = c.head_dim, H = c.n_head, m = c.spatial_merge;
  const int gp = gh * gw, n = n_groups * gp, in_w = c.patch_dim();
  // Patch embedding: the Conv3d kernel W[o][c][tt][py][px] rebuilt from the two slices.
  const auto w0 = tensor(f, "v.patch_embd.weight"), w1 = tensor(f, "v.patch_embd.weight.1");
  std::vector<double> conv(size_t(D) * in_w), zero_b(D, 0.0);
  for (int o = 0; o < D; ++o)
    for (int ch = 0; ch < 3; ++ch)
      for (int tt = 0; tt < 2; ++tt)
        for (int k = 0; k < P * P; ++k)
          conv[size_t(o) * in_w + (ch * 2 + tt) * P * P + k] =
              (tt ? w1 : w0)[(size_t(o) * 3 + ch) * P * P + k];
  std::vector<double> x =
      linear({pix.begin(), pix.end()}, conv, tensor(f, "v.patch_embd.bias"), in_w);
  // Patch (row, col) of each pixel row, and bilinear align-corners position embeddings.
  std::vector<int> prow(gp), pcol(gp);
  for (int k = 0, bh = 0; bh < gh / m; ++bh)
    for (int bw = 0; bw < gw / m; ++bw)
      for (int ih = 0; ih < m; ++ih)
        for (int iw = 0; iw < m; ++iw, ++k) prow[k] = bh * m + ih, pcol[k] = bw * m + iw;
  const auto table = tensor(f, "v.position_embd.weight");
  const int S = c.pos_grid;
  for (int i = 0; i < n; ++i) {
    const int k = i % gp;
    const double y = gh > 1 ? prow[k] * double(S - 1) / (gh - 1) : 0.0;
    const double xx = gw > 1 ? pcol[k] * double(S - 1) / (gw - 1) : 0.0;
    const int y0 = int(y), x0 = int(xx), y1 = std::min(y0 + 1, S - 1), x1 = std::min(x0 + 1, S - 1);
    const double dy = y - y0, dx = xx - x0;
    for (int d = 0; d < D; ++d)
      x[size_t(i) * D + d] += (1 - dy) * (1 - dx) * table[size_t(y0 * S + x0) * D + d] +
                              (1 - dy) * dx * table[size_t(y0 * S + x1) * D + d] +
                              dy * (1 - dx) * table[size_t(y1 * S + x0) * D + d] +
                              dy * dx * table[size_t(y1 * S + x1) * D + d];
  }
  RefOut out;
  out.block0_in = x;

  auto rotate = [&](double* v, int k) {  // 2-D rotary on one head, NeoX pairs (d, d + hd/2)
    for (int d = 0; d < hd / 2; ++d) {
      const int j = d % (hd / 4);
      const double pos = d < hd / 4 ? prow[k] : pcol[k];
      const double a = pos * std::pow(10000.0, -4.0 * j / hd);
      const double x1 = v[d], x2 = v[d + hd / 2];
      v[d] = x1 * std::cos(a) - x2 * std::sin(a);
      v[d + hd / 2] = x2 * std::cos(a) + x1 * std::sin(a);
    }
  };
  auto merger = [&](const std::vector<double>& h, const std::string& norm, const std::string& fc1,
                    const std::string& fc2, bool post_shuffle) {
    std::vector<double> t = layer_norm(h, tensor(f, norm + ".weight"), tensor(f, norm + ".bias"));
    (void)post_shuffle;  // both views are the same memory; only the norm width differs
    const int width = D * m * m;
    t = linear(t, tensor(f, fc1 + ".weight"), tensor(f, fc1 + ".bias"), width);
    for (double& v : t) v = 0.5 * v * (1 + std::erf(v / std::sqrt(2.0)));
    return linear(t, tensor(f, fc2 + ".weight"), tensor(f, fc2 + ".bias"), width);
  };

  for (int l = 0; l < c.n_layer; ++l) {
    const std::string p = "v.blk." + std::to_string(l) + ".";
    auto xn = layer_norm(x, tensor(f, p + "ln1.weight"), tensor(f, p + "ln1.bias"));
    auto qkv = linear(xn, tensor(f, p + "attn_qkv.weight"), tensor(f, p + "attn_qkv.bias"), D);
    for (int i = 0; i < n; ++i)
      for (int h = 0; h < H; ++h)
        for (int part = 0; part < 2; ++part)
          rotate(&qkv[size_t(i) * 3 * D + part * D + h * hd], i % gp);
    std::vector<double> att(size_t(n) * D);
    for (int i = 0; i < n; ++i) {
      const int g0 = i / gp * gp;
      for (int h = 0; h < H; ++h) {
        std::vector<double> s(gp);
        double mx = -1e300, sum = 0;
        for (int j = 0; j < gp; ++j) {
          double dot = 0;
          for (int d = 0; d < hd; ++d)
            dot +=
                qkv[size_t(i) * 3 * D + h * hd + d] * qkv[size_t(g0 + j) * 3 * D + D + h * hd + d];
          s[j] = dot / std::sqrt(double(hd));
          mx = std::max(mx, s[j]);
        }
        for (double& v : s) sum += (v = std::exp(v - mx));
        for (int j = 0; j < gp; ++j)
          for (int d = 0; d < hd; ++d)
            att[size_t(i) * D + h * hd + d] +=
                s[j] / sum * qkv[size_t(g0 + j) * 3 * D + 2 * D + h * hd + d];
      }
    }
    auto o = linear(att, tensor(f, p + "attn_out.weight"), tensor(f, p + "attn_out.bias"), D);
    for (size_t i = 0; i < x.size(); ++i) x[i] += o[i];
    xn = layer_norm(x, tensor(f, p + "ln2.weight"), tensor(f, p + "ln2.bias"));
    auto u = linear(xn, tensor(f, p + "ffn_up.weight"), tensor(f, p + "ffn_up.bias"), D);
    for (double& v : u)
      v = 0.5 * v * (1 + std::tanh(std::sqrt(2 / M_PI) * (v + 0.044715 * v * v * v)));
    o = linear(u, tensor(f, p + "ffn_down.weight"), tensor(f, p + "ffn_down.bias"), c.n_ff);
    for (size_t i = 0; i < x.size(); ++i) x[i] += o[i];
    if (std::find(c.deepstack_layers.begin(), c.deepstack_layers.end(), l) !=
        c.deepstack_layers.end()) {
      const std::string q = "v.deepstack." + std::to_string(l) + ".";
      out.deepstack.push_back(merger(x, q + "norm", q + "fc1", q + "fc2", true));
    }
  }
  out.main = merger(x, "v.post_ln", "mm.0", "mm.2", false);
  return out;
}

double max_abs_diff(const float* a, const std::vector<double>& b) {
  double m = 0;
  for (size_t i = 0; i < b.size(); ++i) m = std::max(m, std::abs(double(a[i]) - b[i]));
  return m;
}

std::vector<float> random_pixels(int n, int width, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  std::vector<float> p(size_t(n) * width);
  for (float& v : p) v = u(rng);
  return p;
}

// ---- tests --------------------------------------------------------------------------------

class Vision : public ::testing::Test {
 protected:
  void SetUp() override {
    file_ = gguf::File::open(kMmproj);
    model_ = Qwen3VLVision::load(*file_);
  }
  std::unique_ptr<gguf::File> file_;
  std::unique_ptr<Qwen3VLVision> model_;
};

TEST_F(Vision, ConfigOfTinyFixture) {
  const VisionConfig& c = model_->config();
  EXPECT_EQ(c.n_layer, 4);
  EXPECT_EQ(c.n_embd, 32);
  EXPECT_EQ(c.n_head, 2);
  EXPECT_EQ(c.head_dim, 16);
  EXPECT_EQ(c.n_ff, 64);
  EXPECT_EQ(c.patch_size, 16);
  EXPECT_EQ(c.patch_dim(), 1536);
  EXPECT_EQ(c.spatial_merge, 2);
  EXPECT_EQ(c.n_pos, 64);
  EXPECT_EQ(c.pos_grid, 8);
  EXPECT_EQ(c.out_dim, 32);
  EXPECT_FLOAT_EQ(c.eps, 1e-6f);
  EXPECT_EQ(c.deepstack_layers, (std::vector<int>{1, 2, 3}));
  for (int i = 0; i < 3; ++i) {
    EXPECT_FLOAT_EQ(c.image_mean[i], 0.5f);
    EXPECT_FLOAT_EQ(c.image_std[i], 0.5f);
  }
}

TEST(VisionTables, LinspaceMatchesTorchFloat32) {
  // torch.linspace(0, 47, 14, dtype=float32): forward half from 0, backward half from 47.
  const float step = 47.0f / 13.0f;
  EXPECT_EQ(vision::linspace_f32(0, 47, 14, 0), 0.0f);
  EXPECT_EQ(vision::linspace_f32(0, 47, 14, 6), step * 6.0f);
  EXPECT_EQ(vision::linspace_f32(0, 47, 14, 7), 47.0f - step * 6.0f);
  EXPECT_EQ(vision::linspace_f32(0, 47, 14, 13), 47.0f);
  EXPECT_EQ(vision::linspace_f32(0, 47, 1, 0), 0.0f);
  for (int i = 0; i < 22; ++i) EXPECT_NEAR(vision::linspace_f32(0, 7, 22, i), i * 7.0 / 21.0, 1e-6);
}

TEST(VisionTables, PositionTapsIdentityOnNativeGrid) {
  // An 8x8 patch grid on an 8x8 table samples each table row exactly (weight 1 at (y0, x0)).
  const auto taps = vision::position_taps(8, 8, 8, 2);
  ASSERT_EQ(taps.size(), 64u);
  // Block order: pixel row 2 is the bottom-left patch of the first 2x2 block = grid (1, 0).
  EXPECT_EQ(taps[2].idx[0], 8);
  EXPECT_EQ(taps[4].idx[0], 2);  // second block, top-left = grid (0, 2)
  EXPECT_EQ(taps[5].idx[0], 3);  // its top-right = grid (0, 3)
  for (const auto& t : taps) {
    EXPECT_EQ(t.w[0], 1.0f);
    EXPECT_EQ(t.w[1] + t.w[2] + t.w[3], 0.0f);
  }
  // The last row/column clamps the upper tap to the table edge.
  EXPECT_EQ(taps[63].idx[0], 63);
  EXPECT_EQ(taps[63].idx[3], 63);
}

TEST(VisionTables, PositionTapsAreAlignCornersBilinear) {
  const int side = 8, gh = 4, gw = 6;
  const auto taps = vision::position_taps(side, gh, gw, 2);
  for (int k = 0, bh = 0; bh < gh / 2; ++bh)
    for (int bw = 0; bw < gw / 2; ++bw)
      for (int ih = 0; ih < 2; ++ih)
        for (int iw = 0; iw < 2; ++iw, ++k) {
          const int i = bh * 2 + ih, j = bw * 2 + iw;
          const double y = i * 7.0 / (gh - 1), x = j * 7.0 / (gw - 1);
          const int y0 = int(y), x0 = int(x);
          const double dy = y - y0, dx = x - x0;
          EXPECT_EQ(taps[k].idx[0], y0 * side + x0);
          EXPECT_EQ(taps[k].idx[3], std::min(y0 + 1, 7) * side + std::min(x0 + 1, 7));
          EXPECT_NEAR(taps[k].w[0], (1 - dy) * (1 - dx), 1e-6);
          EXPECT_NEAR(taps[k].w[1], (1 - dy) * dx, 1e-6);
          EXPECT_NEAR(taps[k].w[2], dy * (1 - dx), 1e-6);
          EXPECT_NEAR(taps[k].w[3], dy * dx, 1e-6);
        }
}

TEST(VisionTables, RopeAnglesSplitRowsAndColumns) {
  const int hd = 16, gh = 4, gw = 6;
  const auto a = vision::rope_angles(hd, 10000.0f, gh, gw, 2);
  ASSERT_EQ(a.size(), size_t(gh * gw * hd / 2));
  // Pixel row 7 = second block (grid rows 0-1, cols 2-3), bottom-right patch: (1, 3).
  const float* p = a.data() + 7 * hd / 2;
  for (int j = 0; j < hd / 4; ++j) {
    const double w = std::pow(10000.0, -4.0 * j / hd);
    EXPECT_NEAR(p[j], 1 * w, 1e-6);
    EXPECT_NEAR(p[hd / 4 + j], 3 * w, 1e-6);
  }
}

// Encoder output vs the double reference. Tolerance: f32 weights, activations O(1) through 4
// blocks; float32 accumulation error is ~1e-6 relative, far under 1e-4.
void check_against_reference(const gguf::File& f, const Qwen3VLVision& m, int groups, int gh,
                             int gw, int threads) {
  const VisionConfig& c = m.config();
  const int n = groups * gh * gw, n_tok = Qwen3VLVision::n_tokens(c, groups, gh, gw);
  const auto pix = random_pixels(n, c.patch_dim(), 1234 + n);
  const RefOut ref = reference(f, c, pix, groups, gh, gw);

  ops::Context ctx(threads);
  VisionState st(m, n);
  std::vector<float> main(size_t(n_tok) * c.out_dim), ds(3 * main.size()), in0;
  m.encode(st, pix.data(), groups, gh, gw, main.data(), ds.data(), ctx,
           [&](int block, const float* x, int64_t np) {
             if (block == -1) in0.assign(x, x + np * c.n_embd);
           });
  const double d_in = max_abs_diff(in0.data(), ref.block0_in);
  const double d_main = max_abs_diff(main.data(), ref.main);
  EXPECT_LT(d_in, 1e-5);
  EXPECT_LT(d_main, 1e-4);
  ASSERT_EQ(ref.deepstack.size(), 3u);
  double d_ds = 0;
  for (int k = 0; k < 3; ++k) {
    const double d = max_abs_diff(ds.data() + k * main.size(), ref.deepstack[k]);
    EXPECT_LT(d, 1e-4) << "deepstack " << k;
    d_ds = std::max(d_ds, d);
  }
  std::printf("max |diff| vs double reference: input %.3g, main %.3g, deepstack %.3g\n", d_in,
              d_main, d_ds);
  double mag = 0;
  for (double v : ref.main) mag = std::max(mag, std::abs(v));
  EXPECT_GT(mag, 0.1);  // the comparison is not vacuous
}

TEST_F(Vision, ImageMatchesDoubleReference) {
  check_against_reference(*file_, *model_, 1, 4, 6, 1);
}
TEST_F(Vision, ImageMatchesDoubleReferenceThreaded) {
  check_against_reference(*file_, *model_, 1, 10, 8, 4);
}
// Two temporal groups: attention must stay inside each group.
TEST_F(Vision, VideoGroupsMatchDoubleReference) {
  check_against_reference(*file_, *model_, 2, 4, 4, 3);
}

TEST_F(Vision, VideoGroupsAreIndependent) {
  // Encoding groups together equals encoding each alone.
  const VisionConfig& c = model_->config();
  const int gh = 4, gw = 6, gp = gh * gw, n_tok = gp / 4, w = c.out_dim;
  const auto pix = random_pixels(2 * gp, c.patch_dim(), 7);
  ops::Context ctx(2);
  std::vector<float> both(2 * n_tok * w), ds_both(3 * both.size());
  model_->encode(pix.data(), 2, gh, gw, both.data(), ds_both.data(), ctx);
  for (int g = 0; g < 2; ++g) {
    std::vector<float> one(n_tok * w), ds(3 * one.size());
    model_->encode(pix.data() + size_t(g) * gp * c.patch_dim(), 1, gh, gw, one.data(), ds.data(),
                   ctx);
    for (int i = 0; i < n_tok * w; ++i) EXPECT_NEAR(one[i], both[g * n_tok * w + i], 1e-5);
    for (int k = 0; k < 3; ++k)
      for (int i = 0; i < n_tok * w; ++i)
        EXPECT_NEAR(ds[k * n_tok * w + i], ds_both[(k * 2 + g) * n_tok * w + i], 1e-5);
  }
}

TEST_F(Vision, RejectsBadGrids) {
  ops::Context ctx(1);
  VisionState st(*model_, 16);
  std::vector<float> pix(size_t(36) * 1536), out(1024), ds(4096);
  // The encoders derive grids and states from one plan: a mismatch is Reel's bug.
  EXPECT_THROW(model_->encode(st, pix.data(), 1, 3, 4, out.data(), ds.data(), ctx), InternalError);
  EXPECT_THROW(model_->encode(st, pix.data(), 1, 6, 6, out.data(), ds.data(), ctx), InternalError);
  EXPECT_THROW(model_->encode(st, pix.data(), 0, 2, 2, out.data(), ds.data(), ctx), InternalError);
  EXPECT_THROW(VisionState(*model_, 0), InternalError);
}

// ---- parity with transformers (tests/fixtures/vision/encoder.json, written by
// tools/reference/make_vision_fixtures.py: HF float32, eager attention, tiny-a weights) -------

using nlohmann::json;

std::string find_fixture(const std::string& rel) {
  for (const std::string dir : {REEL_FIXTURE_DIR "/", REEL_FIXTURE_SRC "/"})
    if (std::filesystem::exists(dir + rel)) return dir + rel;
  return "";
}

json load_json(const std::string& rel) {
  std::ifstream in(find_fixture(rel));
  return json::parse(in);
}

// The processor's pixel_values from its resized uint8 image ([h][w][3]): (v - 127.5) / 127.5 in
// float32 (HF fuses rescale and normalize this way for mean = std = 0.5), the frame duplicated
// in time, rows in merged-block order (spec 3.3).
std::vector<float> patchify(const std::vector<uint8_t>& rgb, int gh, int gw, int P) {
  const int W = gw * P, in_w = 3 * 2 * P * P;
  std::vector<float> pv(size_t(gh) * gw * in_w);
  int r = 0;
  for (int bh = 0; bh < gh / 2; ++bh)
    for (int bw = 0; bw < gw / 2; ++bw)
      for (int ih = 0; ih < 2; ++ih)
        for (int iw = 0; iw < 2; ++iw, ++r)
          for (int c = 0; c < 3; ++c)
            for (int tt = 0; tt < 2; ++tt)
              for (int py = 0; py < P; ++py)
                for (int px = 0; px < P; ++px) {
                  const int y = (bh * 2 + ih) * P + py, x = (bw * 2 + iw) * P + px;
                  const float v = rgb[(size_t(y) * W + x) * 3 + c];
                  pv[size_t(r) * in_w + ((c * 2 + tt) * P + py) * P + px] = (v - 127.5f) / 127.5f;
                }
  return pv;
}

double max_abs_diff_json(const float* a, const json& rows) {
  double m = 0;
  size_t k = 0;
  for (const auto& row : rows)
    for (const auto& v : row) m = std::max(m, std::abs(double(a[k++]) - v.get<double>()));
  return m;
}

// (mmproj file, image index): the F16 file holds the same weights (the fixture's weights are
// exact in f16), so one reference serves both.
class Parity : public ::testing::TestWithParam<std::tuple<const char*, int>> {};

TEST_P(Parity, EncoderMatchesTransformers) {
  if (find_fixture("vision/encoder.json").empty()) GTEST_SKIP() << "no vision/encoder.json";
  const json enc = load_json("vision/encoder.json");
  const json images = load_json("vision/images.json");
  const std::string mmproj = std::get<0>(GetParam());
  const size_t idx = std::get<1>(GetParam());
  if (find_fixture("models/" + mmproj).empty()) GTEST_SKIP() << "no " << mmproj;
  auto file = gguf::File::open(find_fixture("models/" + mmproj));
  auto model_ = Qwen3VLVision::load(*file);
  ASSERT_LT(idx, enc["images"].size());
  const json& e = enc["images"][idx];
  const std::string name = e["name"];
  const json* info = nullptr;
  for (const auto& im : images["images"])
    if (im["name"] == name) info = &im;
  ASSERT_NE(info, nullptr) << name;

  const VisionConfig& c = model_->config();
  const int gh = e["grid_thw"][1], gw = e["grid_thw"][2];
  ASSERT_EQ(e["grid_thw"][0], 1);
  const std::vector<uint8_t> rgb = read_bytes(find_fixture((*info)["resized_rgb"]));
  ASSERT_EQ(rgb.size(), size_t(gh) * gw * c.patch_size * c.patch_size * 3) << name;
  const std::vector<float> pv = patchify(rgb, gh, gw, c.patch_size);
  // Same pixel_values as the processor (sums recorded by the fixture script).
  double sum = 0, wsum = 0;
  for (size_t i = 0; i < pv.size(); ++i) {
    sum += pv[i];
    wsum += pv[i] * double(i % 997 + 1) / 997.0;
  }
  EXPECT_NEAR(sum, (*info)["pixel_values"]["sum"].get<double>(), 1e-6 * pv.size());
  EXPECT_NEAR(wsum, (*info)["pixel_values"]["weighted_sum"].get<double>(), 1e-6 * pv.size());

  const int n = gh * gw, n_tok = e["n_tokens"];
  ASSERT_EQ(n_tok, Qwen3VLVision::n_tokens(c, 1, gh, gw));
  ops::Context ctx(3);
  VisionState st(*model_, n);
  std::vector<float> main(size_t(n_tok) * c.out_dim), ds(3 * main.size()), in0, out0;
  model_->encode(st, pv.data(), 1, gh, gw, main.data(), ds.data(), ctx,
                 [&](int block, const float* x, int64_t np) {
                   if (block == -1) in0.assign(x, x + np * c.n_embd);
                   if (block == 0) out0.assign(x, x + np * c.n_embd);
                 });
  // Tolerance: F32 weights, float32 on both sides; only summation order and libm differ. The
  // outputs are O(1-5) after 4 blocks and two 128-wide matmuls: observed ~1e-6, bound 1e-4.
  const double d_main = max_abs_diff_json(main.data(), e["main"]);
  EXPECT_LT(d_main, 1e-4) << name;
  double d_ds = 0;
  for (int k = 0; k < 3; ++k) {
    const double d = max_abs_diff_json(ds.data() + k * main.size(), e["deepstack"][k]);
    EXPECT_LT(d, 1e-4) << name << " deepstack " << k;
    d_ds = std::max(d_ds, d);
  }
  std::printf("%s %s grid %dx%d: max |diff| main %.3g, deepstack %.3g", mmproj.c_str(),
              name.c_str(), gh, gw, d_main, d_ds);
  if (e.contains("block0_input")) {
    const double d_in = max_abs_diff_json(in0.data(), e["block0_input"]);
    const double d_out = max_abs_diff_json(out0.data(), e["block0_output"]);
    EXPECT_LT(d_in, 1e-5) << name;
    EXPECT_LT(d_out, 1e-5) << name;
    std::printf(", block0 input %.3g, output %.3g", d_in, d_out);
  }
  std::printf("\n");

  // --vision-precision int16 (ops::FloatMatmul::Int16) on the F16 file: the weights and the
  // activations of every matmul rounded to 14 bits per 32 values (tests/ops matmul_test.cpp
  // pins the roundings down), which moves the outputs by ~1.4e-3 to 2.8e-3 of their rms at most
  // here (~1.7e-3 on the 2B-shaped random encoder): more than issue 11's 1e-3 for the default,
  // hence an option. Bound: the 5e-3 of the output's rms that the README promises for it. Where
  // the CPU has no int16 panels the mode is exact, which the bound also holds.
  if (mmproj.find("f16") == std::string::npos) return;
  auto int16 = Qwen3VLVision::load(*file, ops::FloatMatmul::Int16);
  std::vector<float> main16(main.size()), ds16(ds.size());
  int16->encode(st, pv.data(), 1, gh, gw, main16.data(), ds16.data(), ctx);
  double sq = 0;
  for (const auto& row : e["main"])
    for (const auto& v : row) sq += v.get<double>() * v.get<double>();
  const double rms = std::sqrt(sq / double(main.size()));
  const double d16 = max_abs_diff_json(main16.data(), e["main"]);
  EXPECT_LT(d16, 5e-3 * rms) << name;
  for (int k = 0; k < 3; ++k)
    EXPECT_LT(max_abs_diff_json(ds16.data() + k * main.size(), e["deepstack"][k]), 5e-3 * rms)
        << name << " deepstack " << k;
  if (ops::detail::f16_int16_prefill() && gh * gw >= ops::detail::kPanelMinRows) {
    EXPECT_NE(main16, main) << "the int16 panels did not run";
  }
  std::printf("  int16: max |diff| main %.3g = %.3g of the output's rms\n", d16, d16 / rms);
}

INSTANTIATE_TEST_SUITE_P(Images, Parity,
                         ::testing::Combine(::testing::Values("tiny-a-mmproj-f32.gguf",
                                                              "tiny-a-mmproj-f16.gguf"),
                                            ::testing::Range(0, 4)));

TEST(VisionLoad, RejectsTextModel) {
  auto f = gguf::File::open(kText);
  try {
    Qwen3VLVision::load(*f);
    FAIL() << "a text GGUF was accepted as mmproj";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("not a vision projector"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("tiny-a-f32.gguf"), std::string::npos) << e.what();
    EXPECT_EQ(e.kind(), ErrorKind::InvalidInput);  // the wrong file, not an unknown one
  }
}

TEST(VisionLoad, NamesMissingTensor) {
  auto bytes = read_bytes(kMmproj);
  patch_bytes(bytes, "v.post_ln.bias", "v.post_ln.bia_");
  const std::string e = load_error(bytes);
  EXPECT_NE(e.find("patched.gguf"), std::string::npos) << e;
  EXPECT_NE(e.find("v.post_ln.bias is missing"), std::string::npos) << e;
  EXPECT_EQ(load_error_kind(bytes), "invalid_input");
}

TEST(VisionLoad, NamesMissingDeepstackTensor) {
  auto bytes = read_bytes(kMmproj);
  patch_bytes(bytes, "v.deepstack.2.fc1.weight", "v.deepstack.2.fc1.weighT");
  EXPECT_NE(load_error(bytes).find("v.deepstack.2.fc1.weight is missing"), std::string::npos);
}

TEST(VisionLoad, RejectsOtherProjector) {
  auto bytes = read_bytes(kMmproj);
  patch_bytes(bytes, "qwen3vl_merger", "qwen2vl_merger");
  EXPECT_NE(load_error(bytes).find("projector type 'qwen2vl_merger'"), std::string::npos);
  EXPECT_EQ(load_error_kind(bytes), "unsupported");
}

TEST(VisionLoad, RejectsFileWithoutVisionEncoder) {
  auto bytes = read_bytes(kMmproj);
  // The bool value follows the key and its type id (7 = BOOL).
  const std::string k = "clip.has_vision_encoder";
  auto it = std::search(bytes.begin(), bytes.end(), k.begin(), k.end());
  ASSERT_NE(it, bytes.end());
  uint8_t* value = &*it + k.size() + 4;
  ASSERT_EQ(*value, 1);
  *value = 0;
  EXPECT_NE(load_error(bytes).find("has no vision encoder"), std::string::npos);
  EXPECT_EQ(load_error_kind(bytes), "unsupported");
}

TEST(VisionLoad, DeepstackFromTensorsWhenKeyAbsent) {
  auto bytes = read_bytes(kMmproj);
  // Renaming the key hides it; the layers then come from the v.deepstack.<L> tensors.
  patch_bytes(bytes, "clip.vision.is_deepstack_layers", "clip.vision.is_deepstack_layerX");
  auto f = gguf::File::from_memory(bytes.data(), bytes.size(), "patched.gguf");
  auto m = Qwen3VLVision::load(*f);
  EXPECT_EQ(m->config().deepstack_layers, (std::vector<int>{1, 2, 3}));
}

}  // namespace
}  // namespace reel
