#include "model/qwen3vl_vision.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>
#include <new>
#include <string>

#include "common/error.h"
#include "gguf/gguf.h"
#include "media/image.h"
#include "model/weights.h"

namespace reel {
namespace {

using namespace weights;

// transformers builds every vision LayerNorm (blocks and mergers) with eps=1e-6 regardless of
// any config value; the GGUF key is a copy of the text model's rms_norm_eps. We follow HF.
constexpr float kHfLayerNormEps = 1e-6f;
// Rows per matmul call: bounds the ops scratch (activations quantized per call) for large
// images without costing throughput.
constexpr int64_t kMatmulRows = 1024;

int get_int(const gguf::File& f, const char* key, int64_t lo, int64_t hi) {
  const int64_t v = f.get_u32(key);
  check_range(f, key, v, lo, hi);
  return static_cast<int>(v);
}

std::array<float, 3> need_rgb(const gguf::File& f, const char* key, bool positive) {
  const std::vector<float> v = f.get_f32_array(key);
  if (v.size() != 3) throw Error(f.path() + ": " + key + " must hold 3 values");
  for (float x : v)
    if (!std::isfinite(x) || (positive && !(x > 0)))
      throw Error(f.path() + ": " + key + " holds an invalid value");
  return {v[0], v[1], v[2]};
}

void check_architecture(const gguf::File& f) {
  auto arch = f.opt_str("general.architecture");
  if (!arch) throw Error(f.path() + ": no general.architecture key; not a model GGUF");
  if (*arch != "clip")
    throw Error(f.path() + ": architecture '" + std::string(*arch) +
                "' is not a vision projector (mmproj) file; expected 'clip'");
  if (!f.get_bool("clip.has_vision_encoder"))
    throw Unsupported(f.path() + ": has no vision encoder (an audio projector?)");
  const std::string_view proj = f.get_str("clip.projector_type");
  if (proj != "qwen3vl_merger")
    throw Unsupported(f.path() + ": projector type '" + std::string(proj) +
                      "' is not supported (Reel runs qwen3vl_merger)");
}

VisionConfig read_config(const gguf::File& f) {
  check_architecture(f);
  VisionConfig c;
  c.n_layer = get_int(f, "clip.vision.block_count", 1, 1024);
  c.n_embd = get_int(f, "clip.vision.embedding_length", 1, 1 << 15);
  c.n_ff = get_int(f, "clip.vision.feed_forward_length", 1, 1 << 17);
  c.n_head = get_int(f, "clip.vision.attention.head_count", 1, 1024);
  c.patch_size = get_int(f, "clip.vision.patch_size", 1, 256);
  c.out_dim = get_int(f, "clip.vision.projection_dim", 1, 1 << 17);
  c.spatial_merge = get_int(f, "clip.vision.spatial_merge_size", 1, 8);
  if (c.n_embd % c.n_head != 0)
    throw Error(f.path() + ": clip.vision.embedding_length " + std::to_string(c.n_embd) +
                " is not a multiple of the head count " + std::to_string(c.n_head));
  c.head_dim = c.n_embd / c.n_head;
  // The 2-D rotary splits half of each head between rows and columns.
  if (c.head_dim % 4 != 0)
    throw Unsupported(f.path() + ": vision head dim " + std::to_string(c.head_dim) +
                      " is not a multiple of 4 (needed by the 2-D rotary embedding)");
  if (auto eps = f.opt_f32("clip.vision.attention.layer_norm_epsilon");
      eps && !(*eps > 0 && *eps < 1))
    throw Error(f.path() + ": clip.vision.attention.layer_norm_epsilon is out of range");
  c.eps = kHfLayerNormEps;
  const auto mean = need_rgb(f, "clip.vision.image_mean", false);
  const auto std = need_rgb(f, "clip.vision.image_std", true);
  std::copy(mean.begin(), mean.end(), c.image_mean);
  std::copy(std.begin(), std.end(), c.image_std);
  return c;
}

// Absolute indices of the blocks tapped for DeepStack: from clip.vision.is_deepstack_layers
// when the converter wrote it, else (as llama.cpp does) from the v.deepstack.<L>.* tensors.
std::vector<int> deepstack_layers(const gguf::File& f, int n_layer) {
  std::vector<int> out;
  if (f.find("clip.vision.is_deepstack_layers")) {
    const std::vector<bool> flags = f.get_bool_array("clip.vision.is_deepstack_layers");
    if (static_cast<int>(flags.size()) != n_layer)
      throw Error(f.path() + ": clip.vision.is_deepstack_layers holds " +
                  std::to_string(flags.size()) + " flags for " + std::to_string(n_layer) +
                  " blocks");
    for (int l = 0; l < n_layer; ++l)
      if (flags[l]) out.push_back(l);
    return out;
  }
  for (int l = 0; l < n_layer; ++l)
    if (f.find_tensor("v.deepstack." + std::to_string(l) + ".norm.weight")) out.push_back(l);
  return out;
}

VisionMerger need_merger(const gguf::File& f, const std::string& norm, const std::string& fc1,
                         const std::string& fc2, int norm_dim, int width, int out_dim) {
  VisionMerger m;
  m.norm_dim = norm_dim;
  m.norm_w = need_f32(f, norm + ".weight", norm_dim);
  m.norm_b = need_f32(f, norm + ".bias", norm_dim);
  m.fc1 = need_matrix(f, fc1 + ".weight", width, width);
  m.fc1_b = need_f32(f, fc1 + ".bias", width);
  m.fc2 = need_matrix(f, fc2 + ".weight", width, out_dim);
  m.fc2_b = need_f32(f, fc2 + ".bias", out_dim);
  return m;
}

VisionLayer need_layer(const gguf::File& f, const VisionConfig& c, int l) {
  const std::string p = "v.blk." + std::to_string(l) + ".";
  const int64_t D = c.n_embd;
  VisionLayer w;
  w.ln1_w = need_f32(f, p + "ln1.weight", D);
  w.ln1_b = need_f32(f, p + "ln1.bias", D);
  w.ln2_w = need_f32(f, p + "ln2.weight", D);
  w.ln2_b = need_f32(f, p + "ln2.bias", D);
  w.qkv = need_matrix(f, p + "attn_qkv.weight", D, 3 * D);
  w.qkv_b = need_f32(f, p + "attn_qkv.bias", 3 * D);
  w.out = need_matrix(f, p + "attn_out.weight", D, D);
  w.out_b = need_f32(f, p + "attn_out.bias", D);
  w.up = need_matrix(f, p + "ffn_up.weight", D, c.n_ff);
  w.up_b = need_f32(f, p + "ffn_up.bias", c.n_ff);
  w.down = need_matrix(f, p + "ffn_down.weight", c.n_ff, D);
  w.down_b = need_f32(f, p + "ffn_down.bias", D);
  return w;
}

// Visits the patches of a grid_h x grid_w grid in the pixel-row order (merged-block row,
// merged-block column, then the merge x merge patches of the block row-major), passing the
// patch's row and column in the grid.
template <typename F>
void for_each_patch_in_block_order(int grid_h, int grid_w, int merge, F&& f) {
  int64_t k = 0;
  for (int bh = 0; bh < grid_h / merge; ++bh)
    for (int bw = 0; bw < grid_w / merge; ++bw)
      for (int ih = 0; ih < merge; ++ih)
        for (int iw = 0; iw < merge; ++iw) f(k++, bh * merge + ih, bw * merge + iw);
}

}  // namespace

namespace vision {

float linspace_f32(float start, float end, int steps, int i) {
  if (steps == 1) return start;
  const float step = (end - start) / static_cast<float>(steps - 1);
  const int halfway = steps / 2;
  if (i < halfway) return start + step * static_cast<float>(i);
  return end - step * static_cast<float>(steps - i - 1);
}

std::vector<PosTaps> position_taps(int side, int grid_h, int grid_w, int merge) {
  // Per axis: source coordinate, floor, clamped ceil and fraction, all float32 like HF.
  struct Axis {
    int32_t lo, hi;
    float frac;
  };
  auto axis = [side](int n) {
    std::vector<Axis> a(n);
    for (int i = 0; i < n; ++i) {
      const float s = linspace_f32(0.0f, static_cast<float>(side - 1), n, i);
      const int32_t lo = static_cast<int32_t>(s);  // torch .int() truncates
      a[i] = {lo, std::min(lo + 1, side - 1), s - static_cast<float>(lo)};
    }
    return a;
  };
  const std::vector<Axis> ys = axis(grid_h), xs = axis(grid_w);
  std::vector<PosTaps> taps(size_t(grid_h) * grid_w);
  for_each_patch_in_block_order(grid_h, grid_w, merge, [&](int64_t k, int i, int j) {
    const Axis& y = ys[i];
    const Axis& x = xs[j];
    PosTaps& t = taps[k];
    t.idx[0] = y.lo * side + x.lo;
    t.idx[1] = y.lo * side + x.hi;
    t.idx[2] = y.hi * side + x.lo;
    t.idx[3] = y.hi * side + x.hi;
    t.w[0] = (1.0f - y.frac) * (1.0f - x.frac);
    t.w[1] = (1.0f - y.frac) * x.frac;
    t.w[2] = y.frac * (1.0f - x.frac);
    t.w[3] = y.frac * x.frac;
  });
  return taps;
}

std::vector<float> rope_angles(int head_dim, float theta, int grid_h, int grid_w, int merge) {
  // HF: Qwen3VLVisionRotaryEmbedding(head_dim/2), inv_freq over arange(0, dim, 2) / dim in
  // float32; a patch's angles are [row * inv_freq | col * inv_freq].
  const int dim = head_dim / 2, quarter = head_dim / 4;
  std::vector<float> inv_freq(quarter);
  for (int j = 0; j < quarter; ++j)
    inv_freq[j] = 1.0f / std::pow(theta, static_cast<float>(2 * j) / static_cast<float>(dim));
  std::vector<float> angles(size_t(grid_h) * grid_w * dim);
  for_each_patch_in_block_order(grid_h, grid_w, merge, [&](int64_t k, int row, int col) {
    float* a = angles.data() + k * dim;
    for (int j = 0; j < quarter; ++j) {
      a[j] = static_cast<float>(row) * inv_freq[j];
      a[quarter + j] = static_cast<float>(col) * inv_freq[j];
    }
  });
  return angles;
}

}  // namespace vision

std::unique_ptr<Qwen3VLVision> Qwen3VLVision::load(const gguf::File& f,
                                                   ops::FloatMatmul float_matmul) {
  auto m = std::unique_ptr<Qwen3VLVision>(new Qwen3VLVision());
  m->float_matmul_ = float_matmul;
  VisionConfig& c = m->cfg_ = read_config(f);
  const int64_t D = c.n_embd, P = c.patch_size;

  // Conv3d weight, split along time by the converter: one [D][3*P*P] matrix per frame.
  for (int tt = 0; tt < 2; ++tt) {
    const std::string name = tt ? "v.patch_embd.weight.1" : "v.patch_embd.weight";
    m->patch_w_[tt] = as_matrix(f, need_tensor(f, name, {P, P, 3, D}), 3 * P * P, D);
  }
  m->patch_b_ = need_f32(f, "v.patch_embd.bias", D);

  const gguf::TensorInfo* pos = f.find_tensor("v.position_embd.weight");
  if (!pos) throw Error(f.path() + ": tensor v.position_embd.weight is missing");
  c.n_pos = static_cast<int>(std::clamp<int64_t>(pos->ne[1], 0, 1 << 20));
  c.pos_grid = static_cast<int>(std::lround(std::sqrt(static_cast<double>(c.n_pos))));
  if (c.n_pos < 1 || c.pos_grid * c.pos_grid != c.n_pos)
    throw Error(f.path() + ": v.position_embd.weight has " + std::to_string(pos->ne[1]) +
                " rows, not a square grid");
  const ops::Matrix pos_m = need_matrix(f, "v.position_embd.weight", D, c.n_pos);
  if (pos_m.type == GgmlType::F32) {
    m->pos_table_ = reinterpret_cast<const float*>(pos_m.data);
  } else {
    m->pos_owned_.resize(size_t(c.n_pos) * D);
    std::vector<int32_t> ids(c.n_pos);
    for (int i = 0; i < c.n_pos; ++i) ids[i] = i;
    ops::get_rows(pos_m, ids.data(), c.n_pos, m->pos_owned_.data());
    m->pos_table_ = m->pos_owned_.data();
  }

  for (int l = 0; l < c.n_layer; ++l) m->layers_.push_back(need_layer(f, c, l));

  const int width = c.merge_unit() * c.n_embd;
  m->merger_ = need_merger(f, "v.post_ln", "mm.0", "mm.2", c.n_embd, width, c.out_dim);
  c.deepstack_layers = deepstack_layers(f, c.n_layer);
  for (int l : c.deepstack_layers) {
    const std::string p = "v.deepstack." + std::to_string(l) + ".";
    m->deepstack_.push_back(
        need_merger(f, p + "norm", p + "fc1", p + "fc2", width, width, c.out_dim));
  }
  m->geometry_ = VisionGeometry{c.patch_size, c.spatial_merge, c.temporal_patch, c.out_dim,
                                static_cast<int>(c.deepstack_layers.size())};
  return m;
}

VisionState::VisionState(const Qwen3VLVision& model, int max_patches) : max_patches_(max_patches) {
  const VisionConfig& c = model.config();
  // Sized by encode() from a grid it has checked, or by tests.
  if (max_patches < 1) throw InternalError("vision state: max_patches must be positive");
  try {
    allocate(c, max_patches);
  } catch (const std::bad_alloc&) {
    // A grid within every limit that this machine cannot hold: the system's failure.
    throw IoError("vision encoder: out of memory for " + std::to_string(max_patches) + " patches");
  }
}

void VisionState::allocate(const VisionConfig& c, int max_patches) {
  const size_t n = max_patches, D = c.n_embd;
  x_.resize(n * D);
  xn_.resize(n * D);
  attn_.resize(n * D);
  k_.resize(n * D);
  v_.resize(n * D);
  pos_.resize(n * D);
  // Shared by things never alive together: one frame's gathered pixels, the qkv projection,
  // the MLP hidden layer and the mergers' hidden layer.
  work_.resize(
      n * std::max<size_t>({size_t(c.patch_dim()) / c.temporal_patch, 3 * D, size_t(c.n_ff), D}));
  rope_cos_.resize(n * c.head_dim / 2);
  rope_sin_.resize(n * c.head_dim / 2);
}

// y = x * w^T in slices of rows, so the ops scratch stays bounded by kMatmulRows; F16 weights
// as the model was loaded to multiply them (float_matmul_).
void Qwen3VLVision::matmul_rows(const ops::Matrix& w, const float* x, int64_t n, float* y,
                                ops::Context& ctx) const {
  for (int64_t r = 0; r < n; r += kMatmulRows) {
    const int64_t nr = std::min(kMatmulRows, n - r);
    ops::matmul(w, x + r * w.cols, nr, y + r * w.rows, ctx, float_matmul_);
  }
}

// x = W0 * frame0 + W1 * frame1 + b: the Conv3d over a temporal pair, one weight slice per frame.
void Qwen3VLVision::embed_patches(VisionState& st, const float* pixels, int n,
                                  ops::Context& ctx) const {
  const int64_t PP = int64_t(cfg_.patch_size) * cfg_.patch_size, T = cfg_.temporal_patch;
  const int64_t in_w = cfg_.patch_dim(), frame_w = 3 * PP, D = cfg_.n_embd;
  float* frame = st.work_.data();
  for (int tt = 0; tt < T; ++tt) {
    // Pixel columns are ((c*T + tt)*P + py)*P + px: gather this frame's 3*P*P values per row.
    for (int64_t r = 0; r < n; ++r)
      for (int64_t ch = 0; ch < 3; ++ch)
        std::memcpy(frame + r * frame_w + ch * PP, pixels + r * in_w + (ch * T + tt) * PP,
                    PP * sizeof(float));
    matmul_rows(patch_w_[tt], frame, n, tt == 0 ? st.x_.data() : st.attn_.data(), ctx);
    if (tt > 0) ops::add(st.x_.data(), st.attn_.data(), int64_t(n) * D, ctx);
  }
  ops::add_bias(st.x_.data(), patch_b_, n, D, ctx);
}

// Position embeddings and rotary cos/sin of one temporal group (identical for every group).
void Qwen3VLVision::position_tables(VisionState& st, int grid_h, int grid_w) const {
  const int64_t D = cfg_.n_embd;
  const std::vector<vision::PosTaps> taps =
      vision::position_taps(cfg_.pos_grid, grid_h, grid_w, cfg_.spatial_merge);
  for (size_t k = 0; k < taps.size(); ++k) {
    float* pe = st.pos_.data() + k * D;
    const vision::PosTaps& t = taps[k];
    // Same float32 products and summation order as HF: ((p0 + p1) + p2) + p3.
    for (int64_t d = 0; d < D; ++d) {
      float s = pos_table_[t.idx[0] * D + d] * t.w[0];
      s += pos_table_[t.idx[1] * D + d] * t.w[1];
      s += pos_table_[t.idx[2] * D + d] * t.w[2];
      s += pos_table_[t.idx[3] * D + d] * t.w[3];
      pe[d] = s;
    }
  }
  const std::vector<float> angles =
      vision::rope_angles(cfg_.head_dim, cfg_.rope_theta, grid_h, grid_w, cfg_.spatial_merge);
  for (size_t i = 0; i < angles.size(); ++i) {
    st.rope_cos_[i] = std::cos(angles[i]);
    st.rope_sin_[i] = std::sin(angles[i]);
  }
}

void Qwen3VLVision::attention_block(VisionState& st, int layer, int n_groups, int gp,
                                    ops::Context& ctx) const {
  const VisionLayer& w = layers_[layer];
  const int64_t D = cfg_.n_embd, hd = cfg_.head_dim, nh = cfg_.n_head;
  const int64_t n = int64_t(n_groups) * gp;
  float* qkv = st.work_.data();  // [n][q | k | v], each [n_head][head_dim]
  ops::layer_norm(st.x_.data(), w.ln1_w, w.ln1_b, st.xn_.data(), n, D, cfg_.eps, ctx);
  matmul_rows(w.qkv, st.xn_.data(), n, qkv, ctx);
  ops::add_bias(qkv, w.qkv_b, n, 3 * D, ctx);
  for (int g = 0; g < n_groups; ++g) {
    float* qg = qkv + int64_t(g) * gp * 3 * D;
    ops::rope(qg, gp, nh, hd, 3 * D, st.rope_cos_.data(), st.rope_sin_.data(), ctx);
    ops::rope(qg + D, gp, nh, hd, 3 * D, st.rope_cos_.data(), st.rope_sin_.data(), ctx);
  }
  // Keys and values head-major ([head][n][head_dim]) as the attention kernel reads them, in
  // slices of patches across the pool (on one thread: about 1% of a 2-thread encode).
  constexpr int64_t kCopyRows = 64;
  ctx.pool().run((n + kCopyRows - 1) / kCopyRows, [&](int64_t task, int) {
    for (int64_t i = task * kCopyRows; i < std::min(n, (task + 1) * kCopyRows); ++i)
      for (int64_t h = 0; h < nh; ++h) {
        const float* src = qkv + i * 3 * D + h * hd;
        std::memcpy(st.k_.data() + (h * n + i) * hd, src + D, hd * sizeof(float));
        std::memcpy(st.v_.data() + (h * n + i) * hd, src + 2 * D, hd * sizeof(float));
      }
  });
  // Each temporal group is its own non-causal sequence (HF cu_seqlens).
  for (int g = 0; g < n_groups; ++g) {
    const int64_t first = int64_t(g) * gp;
    ops::AttentionShape s;
    s.n_q = s.n_kv = gp;
    s.n_head = s.n_kv_head = nh;
    s.head_dim = hd;
    s.q_stride = 3 * D;
    s.out_stride = D;
    s.kv_head_stride = n * hd;
    s.causal = false;
    s.scale = 1.0f / std::sqrt(static_cast<float>(hd));
    ops::attention(s, qkv + first * 3 * D, st.k_.data() + first * hd, st.v_.data() + first * hd,
                   st.attn_.data() + first * D, ctx);
  }
  matmul_rows(w.out, st.attn_.data(), n, st.xn_.data(), ctx);
  ops::add_bias(st.xn_.data(), w.out_b, n, D, ctx);
  ops::add(st.x_.data(), st.xn_.data(), n * D, ctx);
}

void Qwen3VLVision::ffn_block(VisionState& st, int layer, int n, ops::Context& ctx) const {
  const VisionLayer& w = layers_[layer];
  const int64_t D = cfg_.n_embd;
  float* hidden = st.work_.data();
  ops::layer_norm(st.x_.data(), w.ln2_w, w.ln2_b, st.xn_.data(), n, D, cfg_.eps, ctx);
  matmul_rows(w.up, st.xn_.data(), n, hidden, ctx);
  ops::add_bias(hidden, w.up_b, n, cfg_.n_ff, ctx);
  ops::gelu_tanh(hidden, int64_t(n) * cfg_.n_ff, ctx);
  matmul_rows(w.down, hidden, n, st.xn_.data(), ctx);
  ops::add_bias(st.xn_.data(), w.down_b, n, D, ctx);
  ops::add(st.x_.data(), st.xn_.data(), int64_t(n) * D, ctx);
}

// One merger over the current hidden state: LayerNorm (per patch or per block of patches,
// the two views share the same memory), fc1, exact GELU, fc2 into out [n/merge_unit][out_dim].
void Qwen3VLVision::merge(VisionState& st, const VisionMerger& m, int n, float* out,
                          ops::Context& ctx) const {
  const int64_t total = int64_t(n) * cfg_.n_embd;
  const int64_t width = int64_t(cfg_.merge_unit()) * cfg_.n_embd;
  const int64_t n_tok = total / width;
  ops::layer_norm(st.x_.data(), m.norm_w, m.norm_b, st.xn_.data(), total / m.norm_dim, m.norm_dim,
                  cfg_.eps, ctx);
  float* hidden = st.work_.data();
  matmul_rows(m.fc1, st.xn_.data(), n_tok, hidden, ctx);
  ops::add_bias(hidden, m.fc1_b, n_tok, width, ctx);
  ops::gelu_erf(hidden, n_tok * width, ctx);
  matmul_rows(m.fc2, hidden, n_tok, out, ctx);
  ops::add_bias(out, m.fc2_b, n_tok, cfg_.out_dim, ctx);
}

void Qwen3VLVision::encode(VisionState& st, const float* pixels, int n_groups, int grid_h,
                           int grid_w, float* main, float* deepstack, ops::Context& ctx,
                           const VisionTrace& trace) const {
  const int m = cfg_.spatial_merge;
  // The encoders size grids from smart_resize and their VisionState from the same plan.
  if (n_groups < 1 || grid_h < m || grid_w < m || grid_h % m || grid_w % m)
    throw InternalError("vision encode: the patch grid " + std::to_string(grid_h) + "x" +
                        std::to_string(grid_w) + " (" + std::to_string(n_groups) +
                        " groups) is not a positive multiple of the merge size " +
                        std::to_string(m));
  const int64_t gp = int64_t(grid_h) * grid_w, n64 = gp * n_groups;
  if (n64 > st.max_patches_)
    throw InternalError("vision encode: " + std::to_string(n64) + " patches exceed the state's " +
                        std::to_string(st.max_patches_));
  if (!deepstack && !deepstack_.empty())
    throw InternalError("vision encode: no deepstack output given");
  const int n = static_cast<int>(n64);
  const int64_t D = cfg_.n_embd;
  const int64_t widest = std::max<int64_t>(
      {cfg_.patch_dim() / cfg_.temporal_patch, D, cfg_.n_ff, int64_t(cfg_.merge_unit()) * D});
  ctx.reserve(std::min<int64_t>(n, kMatmulRows), widest);

  embed_patches(st, pixels, n, ctx);
  position_tables(st, grid_h, grid_w);
  for (int g = 0; g < n_groups; ++g) ops::add(st.x_.data() + g * gp * D, st.pos_.data(), gp * D, ctx);
  if (trace) trace(-1, st.x_.data(), n);

  const int64_t n_tok = n64 / cfg_.merge_unit();
  for (int l = 0; l < cfg_.n_layer; ++l) {
    ctx.throw_if_cancelled();  // a large image takes seconds: stop between blocks
    attention_block(st, l, n_groups, static_cast<int>(gp), ctx);
    ffn_block(st, l, n, ctx);
    if (trace) trace(l, st.x_.data(), n);
    for (size_t k = 0; k < deepstack_.size(); ++k)
      if (cfg_.deepstack_layers[k] == l)
        merge(st, deepstack_[k], n, deepstack + k * n_tok * cfg_.out_dim, ctx);
  }
  merge(st, merger_, n, main, ctx);
}

void Qwen3VLVision::encode(const float* pixels, int n_groups, int grid_h, int grid_w, float* main,
                           float* deepstack, ops::Context& ctx) const {
  VisionState st(*this, std::max(1, n_groups * grid_h * grid_w));
  encode(st, pixels, n_groups, grid_h, grid_w, main, deepstack, ctx);
}

// VisionEncoder.

std::unique_ptr<VisionScratch> Qwen3VLVision::new_scratch() const {
  return std::make_unique<VisionGroupScratch>();
}

void Qwen3VLVision::encode_group(std::span<const media::Image* const> frames, float* main,
                                 float* deepstack, VisionScratch& scratch,
                                 ops::Context& ctx) const {
  auto* mine = dynamic_cast<VisionGroupScratch*>(&scratch);
  if (!mine) throw InternalError("vision encode: a scratch of another encoder");
  const int factor = geometry_.factor();
  if (frames.size() != size_t(cfg_.temporal_patch))
    throw InternalError("a temporal group holds " + std::to_string(cfg_.temporal_patch) +
                        " frames");
  for (const media::Image* f : frames)
    if (f->width != frames[0]->width || f->height != frames[0]->height || f->width <= 0 ||
        f->height <= 0 || f->width % factor || f->height % factor)
      throw Error("the frames of a temporal group must have one size, a multiple of " +
                  std::to_string(factor) + " pixels");
  media::PatchGrid grid;
  media::patchify(frames, cfg_.patch_size, cfg_.temporal_patch, cfg_.spatial_merge, cfg_.image_mean,
                  cfg_.image_std, mine->pixels_, grid, &ctx.pool());
  ctx.reserve(int64_t(grid.h) * grid.w, std::max(cfg_.n_ff, 4 * cfg_.n_embd));
  // Activations for the largest group so far: a video's groups, all of one size, allocate once.
  const int n_patches = std::max(1, grid.h * grid.w);
  if (!mine->state_ || mine->state_->max_patches() < n_patches)
    mine->state_ = std::make_unique<VisionState>(*this, n_patches);
  encode(*mine->state_, mine->pixels_.data(), 1, grid.h, grid.w, main, deepstack, ctx);
}

// The matmuls and the attention products; norms and activations are a negligible O(n*D) on top.
double Qwen3VLVision::gflop_per_group(int64_t n_patches) const {
  const VisionConfig& v = cfg_;
  const double n = double(n_patches), D = v.n_embd, F = v.n_ff, M = 4.0 * v.n_embd;
  double macs = n * v.patch_dim() * D;                      // patch embedding
  macs += v.n_layer * (n * (3 * D * D + D * D + 2 * D * F)  // qkv, out, fc1, fc2
                       + 2 * n * n * D);                    // QK^T and AV
  const double tokens = n / (v.spatial_merge * v.spatial_merge);
  macs += (1 + v.deepstack_layers.size()) * tokens * (M * M + M * v.out_dim);  // mergers
  return 2 * macs / 1e9;
}

}  // namespace reel
