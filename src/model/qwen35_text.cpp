#include "model/qwen35_text.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>

#include "common/error.h"
#include "gguf/gguf.h"
#include "model/weights.h"
#include "ops/delta_net.h"

namespace reel {
namespace {

// A span's state. It was made by Qwen35Text::new_state (or is the HybridState of the
// one-sequence forward), so the spans are read as they come, with no per-call conversion.
HybridState& hybrid_of(const DecodeSpan& s) {
  return *static_cast<HybridState*>(s.state);
}

using namespace weights;

constexpr const char* kArch = "qwen35";

std::string key(const char* suffix) {
  return std::string(kArch) + "." + suffix;
}

int get_int(const gguf::File& f, const char* suffix, int64_t lo, int64_t hi) {
  const int64_t v = f.get_u32(key(suffix));
  check_range(f, suffix, v, lo, hi);
  return static_cast<int>(v);
}

void check_architecture(const gguf::File& f) {
  auto arch = f.opt_str("general.architecture");
  if (!arch) throw Error(f.path() + ": no general.architecture key; not a model GGUF");
  if (*arch == kArch) return;
  if (*arch == "qwen35moe")
    throw Unsupported(f.path() +
                      ": Qwen3.5 MoE models (architecture 'qwen35moe') are not supported yet");
  if (*arch == "clip")
    throw Error(f.path() + ": this is a vision projector (mmproj) file, not a text model");
  throw Unsupported(f.path() + ": architecture '" + std::string(*arch) +
                    "' is not a Qwen3.5 text model (expected 'qwen35')");
}

// The attention part of the config (the keys Qwen3-VL's text model has too).
void read_attention_config(const gguf::File& f, TextConfig& c) {
  c.n_embd = get_int(f, "embedding_length", 1, 1 << 16);
  c.n_ff = get_int(f, "feed_forward_length", 1, 1 << 18);
  c.n_head = get_int(f, "attention.head_count", 1, 1024);
  c.n_head_kv = get_int(f, "attention.head_count_kv", 1, c.n_head);
  if (c.n_head % c.n_head_kv != 0)
    throw Error(f.path() + ": head_count " + std::to_string(c.n_head) +
                " is not a multiple of head_count_kv " + std::to_string(c.n_head_kv));
  c.head_dim = get_int(f, "attention.key_length", 2, 1024);
  if (f.get_u32(key("attention.value_length")) != uint32_t(c.head_dim))
    throw Unsupported(f.path() + ": value_length differs from key_length; not supported");
  c.rms_eps = f.get_f32(key("attention.layer_norm_rms_epsilon"));
  c.rope_theta = f.get_f32(key("rope.freq_base"));
  if (!(c.rms_eps > 0 && c.rms_eps < 1) || !(c.rope_theta > 1 && std::isfinite(c.rope_theta)))
    throw Error(f.path() + ": rms epsilon or rope.freq_base out of range");
  c.n_ctx_train = static_cast<int>(f.opt_u32(key("context_length")).value_or(4096));
  check_range(f, "context_length", c.n_ctx_train, 1, 1 << 24);
}

void read_rope_config(const gguf::File& f, Qwen35Config& c) {
  c.rope_dim = get_int(f, "rope.dimension_count", 2, c.text.head_dim);
  if (c.rope_dim % 2) throw Error(f.path() + ": rope.dimension_count must be even");
  auto sections = f.get_int_array(key("rope.dimension_sections"));
  if (sections.empty() || sections.size() > 4)
    throw Error(f.path() + ": rope.dimension_sections must hold 1 to 4 values");
  int64_t sum = 0;
  for (size_t i = 0; i < sections.size(); ++i) {
    check_range(f, "rope.dimension_sections[i]", sections[i], 0, c.rope_dim / 2);
    c.text.mrope_sections[i] = static_cast<int>(sections[i]);
    sum += sections[i];
  }
  if (sum != c.rope_dim / 2)
    throw Error(f.path() + ": rope.dimension_sections sum to " + std::to_string(sum) +
                ", expected rope.dimension_count/2 = " + std::to_string(c.rope_dim / 2));
}

void read_ssm_config(const gguf::File& f, Qwen35Config& c) {
  c.conv_kernel = get_int(f, "ssm.conv_kernel", 1, 64);
  c.k_head_dim = get_int(f, "ssm.state_size", 1, 1024);
  c.n_k_heads = get_int(f, "ssm.group_count", 1, 1024);
  c.n_v_heads = get_int(f, "ssm.time_step_rank", 1, 4096);
  if (c.n_v_heads % c.n_k_heads != 0)
    throw Error(f.path() + ": ssm.time_step_rank (value heads) " + std::to_string(c.n_v_heads) +
                " is not a multiple of ssm.group_count (key heads) " + std::to_string(c.n_k_heads));
  const int inner = get_int(f, "ssm.inner_size", 1, 1 << 20);
  if (inner % c.n_v_heads != 0)
    throw Error(f.path() + ": ssm.inner_size is not a multiple of ssm.time_step_rank");
  c.v_head_dim = inner / c.n_v_heads;
  check_range(f, "ssm.inner_size / ssm.time_step_rank", c.v_head_dim, 1, 1024);
}

Qwen35Config read_config(const gguf::File& f) {
  check_architecture(f);
  Qwen35Config c;
  read_attention_config(f, c.text);
  read_rope_config(f, c);
  read_ssm_config(f, c);
  const int blocks = get_int(f, "block_count", 1, 1024);
  // Converters that keep the multi-token-prediction head count its blocks in block_count;
  // they come last and transformers does not run them, so neither does Reel.
  const int nextn = static_cast<int>(f.opt_u32(key("nextn_predict_layers")).value_or(0));
  check_range(f, "nextn_predict_layers", nextn, 0, blocks - 1);
  c.text.n_layer = blocks - nextn;
  // llama.cpp's default when the key is absent; layer i is full attention when
  // (i + 1) % interval == 0, as transformers' default layer_types.
  c.full_attention_interval =
      static_cast<int>(f.opt_u32(key("full_attention_interval")).value_or(4));
  check_range(f, "full_attention_interval", c.full_attention_interval, 1, 1024);
  c.full_attention.resize(c.text.n_layer);
  for (int i = 0; i < c.text.n_layer; ++i) {
    c.full_attention[i] = (i + 1) % c.full_attention_interval == 0;
    (c.full_attention[i] ? c.n_full : c.n_linear) += 1;
  }
  return c;
}

const float* need_f32_matrix(const gguf::File& f, const std::string& name, int64_t cols,
                             int64_t rows) {
  const auto& t = need_tensor(f, name, {cols, rows});
  if (t.type != GgmlType::F32)
    throw Unsupported(f.path() + ": tensor " + name + " must be F32, found " +
                      std::string(type_info(t.type).name));
  return reinterpret_cast<const float*>(t.data);
}

// transformers' softplus (threshold 20: linear above it).
float softplus(float x) {
  return x > 20.0f ? x : std::log1p(std::exp(x));
}

}  // namespace

TextConfig Qwen35Config::kv_config() const {
  TextConfig k = text;
  k.n_layer = std::max(n_full, 1);
  return k;
}

DeltaNetState::DeltaNetState(const Qwen35Config& c) {
  conv_floats_ = size_t(c.conv_kernel - 1) * c.conv_channels();
  ssm_floats_ = size_t(c.n_v_heads) * c.k_head_dim * c.v_head_dim;
  for (int side = 0; side < 2; ++side) {
    conv_[side].assign(conv_floats_ * c.n_linear, 0.0f);
    ssm_[side].assign(ssm_floats_ * c.n_linear, 0.0f);
  }
}

void DeltaNetState::truncate(int n) {
  if (n == n_past_) return;
  if (n != 0)
    throw Unsupported("a recurrent (Gated DeltaNet) state cannot be rewound to position " +
                      std::to_string(n) + "; only cleared");
  std::fill(conv_[cur_].begin(), conv_[cur_].end(), 0.0f);
  std::fill(ssm_[cur_].begin(), ssm_[cur_].end(), 0.0f);
  n_past_ = 0;
}

size_t DeltaNetState::bytes() const {
  return 2 * (conv_[0].size() + ssm_[0].size()) * sizeof(float);
}

std::unique_ptr<Qwen35Text> Qwen35Text::load(const gguf::File& f) {
  auto m = std::unique_ptr<Qwen35Text>(new Qwen35Text());
  Qwen35Config& c = m->cfg_ = read_config(f);
  TextConfig& t = c.text;
  const gguf::TensorInfo* embd = f.find_tensor("token_embd.weight");
  if (!embd) throw Error(f.path() + ": tensor token_embd.weight is missing");
  t.n_vocab = static_cast<int>(std::min<int64_t>(embd->ne[1], 1 << 24));
  m->tok_embd_ = need_matrix(f, "token_embd.weight", t.n_embd, t.n_vocab);
  m->output_norm_ = need_f32(f, "output_norm.weight", t.n_embd);
  t.tied_output = f.find_tensor("output.weight") == nullptr;
  m->output_ = t.tied_output ? m->tok_embd_ : need_matrix(f, "output.weight", t.n_embd, t.n_vocab);

  const int64_t D = t.n_embd, hd = t.head_dim, q_w = int64_t(t.n_head) * hd,
                kv_w = int64_t(t.n_head_kv) * hd;
  const int64_t value_w = int64_t(c.n_v_heads) * c.v_head_dim, channels = c.conv_channels();
  for (int l = 0; l < t.n_layer; ++l) {
    const std::string p = "blk." + std::to_string(l) + ".";
    Qwen35Layer w;
    w.attn_norm = need_f32(f, p + "attn_norm.weight", D);
    w.post_norm = need_f32(f, p + "post_attention_norm.weight", D);
    w.w_gate = need_matrix(f, p + "ffn_gate.weight", D, t.n_ff);
    w.w_up = need_matrix(f, p + "ffn_up.weight", D, t.n_ff);
    w.w_down = need_matrix(f, p + "ffn_down.weight", t.n_ff, D);
    if (c.full_attention[l]) {
      w.q_norm = need_f32(f, p + "attn_q_norm.weight", hd);
      w.k_norm = need_f32(f, p + "attn_k_norm.weight", hd);
      w.wq_gate = need_matrix(f, p + "attn_q.weight", D, 2 * q_w);
      w.wk = need_matrix(f, p + "attn_k.weight", D, kv_w);
      w.wv = need_matrix(f, p + "attn_v.weight", D, kv_w);
      w.wo = need_matrix(f, p + "attn_output.weight", q_w, D);
    } else {
      w.w_qkv = need_matrix(f, p + "attn_qkv.weight", D, channels);
      w.w_z = need_matrix(f, p + "attn_gate.weight", D, value_w);
      w.w_beta = need_matrix(f, p + "ssm_beta.weight", D, c.n_v_heads);
      w.w_alpha = need_matrix(f, p + "ssm_alpha.weight", D, c.n_v_heads);
      w.w_out = need_matrix(f, p + "ssm_out.weight", value_w, D);
      w.conv = need_f32_matrix(f, p + "ssm_conv1d.weight", c.conv_kernel, channels);
      w.dt_bias = need_f32(f, p + "ssm_dt.bias", c.n_v_heads);
      w.ssm_a = need_f32(f, p + "ssm_a", c.n_v_heads);
      w.ssm_norm = need_f32(f, p + "ssm_norm.weight", c.v_head_dim);
    }
    m->layers_.push_back(w);
  }

  // Partial: only the first rope_dim dimensions of a head rotate.
  m->rope_ = InterleavedMRope(c.rope_dim, t.rope_theta, t.mrope_sections);
  return m;
}

Qwen35Scratch::Qwen35Scratch(const Qwen35Config& c, int n_batch) : n_batch_(n_batch) {
  if (n_batch < 1) throw InternalError("the batch size must be positive");
  const size_t nb = n_batch;
  const TextConfig& t = c.text;
  const size_t q_w = size_t(t.n_head) * t.head_dim, kv_w = size_t(t.n_head_kv) * t.head_dim;
  const size_t value_w = size_t(c.n_v_heads) * c.v_head_dim;
  x_.resize(nb * t.n_embd);
  xn_.resize(nb * t.n_embd);
  if (c.n_linear) {
    mixed_.resize(nb * c.conv_channels());
    conv_out_.resize(nb * c.conv_channels());
    z_.resize(nb * value_w);
    core_.resize(nb * value_w);
    beta_.resize(nb * c.n_v_heads);
    alpha_.resize(nb * c.n_v_heads);
  }
  if (c.n_full) {
    qg_.resize(nb * 2 * q_w);
    q_.resize(nb * q_w);
    gate_.resize(nb * q_w);
    attn_.resize(nb * q_w);
    k_.resize(nb * kv_w);
    v_.resize(nb * kv_w);
  }
  ffn_gate_.resize(nb * t.n_ff);
  ffn_up_.resize(nb * t.n_ff);
  rope_cos_.resize(nb * c.rope_dim / 2);
  rope_sin_.resize(nb * c.rope_dim / 2);
  pos_.resize(nb);
}

void Qwen35Text::embed(const TextBatch& b, Qwen35Scratch& st) const {
  embed_batch(tok_embd_, cfg_.text.n_vocab, b, st.x_.data());
}

void Qwen35Text::rope_tables(std::span<const DecodeSpan> seqs, const TextBatch& b,
                             Qwen35Scratch& st) const {
  Pos3* pos = st.pos_.data();
  int row = 0;
  for (const DecodeSpan& s : seqs)
    for (int i = 0; i < s.n; ++i, ++row) {
      const int32_t p =
          hybrid_of(s).kv.n_past() + i;  // text positions n_past + i on all three axes
      pos[row] = b.pos ? b.pos[row] : Pos3{p, p, p};
    }
  rope_.tables(pos, b.n, st.rope_cos_.data(), st.rope_sin_.data());
}

// Gated DeltaNet: in_proj_qkv -> causal conv + SiLU -> l2-normalised q, k (q scaled by
// 1/sqrt(k_head_dim)) -> gated delta rule with beta = sigmoid(b), g = A * softplus(a + dt_bias)
// -> RMSNorm(o) * silu(z) per value head -> out_proj. Everything but the conv and the delta
// rule is row by row, so it runs over the whole batch; those two run per sequence.
void Qwen35Text::linear_block(std::span<const DecodeSpan> seqs, int layer, int li, int n,
                              Qwen35Scratch& st, ops::Context& ctx) const {
  const Qwen35Layer& w = layers_[layer];
  const Qwen35Config& c = cfg_;
  const int64_t nv = c.n_v_heads, value_w = nv * c.v_head_dim;
  float* xn = st.xn_.data();
  ops::rms_norm(st.x_.data(), w.attn_norm, xn, n, c.text.n_embd, c.text.rms_eps, ctx);
  const ops::Matrix proj[4] = {w.w_qkv, w.w_z, w.w_beta, w.w_alpha};
  float* const proj_out[4] = {st.mixed_.data(), st.z_.data(), st.beta_.data(), st.alpha_.data()};
  ops::matmul_multi(proj, xn, n, proj_out, ctx);
  for (int i = 0; i < n; ++i)
    for (int64_t h = 0; h < nv; ++h) {
      float& b = st.beta_[i * nv + h];
      b = 1.0f / (1.0f + std::exp(-b));
      float& a = st.alpha_[i * nv + h];  // becomes g, the log decay
      a = w.ssm_a[h] * softplus(a + w.dt_bias[h]);
    }
  int row0 = 0;
  for (const DecodeSpan& s : seqs) {
    mix_linear(s, row0, layer, li, st, ctx);
    row0 += s.n;
  }
  ops::rms_norm(st.core_.data(), w.ssm_norm, st.core_.data(), int64_t(n) * nv, c.v_head_dim,
                c.text.rms_eps, ctx);
  ops::silu_mul(st.z_.data(), st.core_.data(), int64_t(n) * value_w, ctx);
  ops::matmul(w.w_out, st.z_.data(), n, xn, ctx);
  ops::add(st.x_.data(), xn, int64_t(n) * c.text.n_embd, ctx);
}

// One sequence's rows [row0, row0 + n) through the causal conv and the delta rule, reading its
// state's current side and writing the other (the sides swap when the whole pass is done).
void Qwen35Text::mix_linear(const DecodeSpan& seq, int row0, int layer, int li, Qwen35Scratch& st,
                            ops::Context& ctx) const {
  const Qwen35Layer& w = layers_[layer];
  const Qwen35Config& c = cfg_;
  const int64_t channels = c.conv_channels(), dk = c.k_head_dim, dv = c.v_head_dim;
  const int64_t nk = c.n_k_heads, nv = c.n_v_heads, key_w = nk * dk, value_w = nv * dv;
  DeltaNetState& state = hybrid_of(seq).recurrent;
  const int n = seq.n, in = state.cur_, out = 1 - in;
  float* conv_out = st.conv_out_.data() + size_t(row0) * channels;
  ops::causal_conv1d_silu(st.mixed_.data() + size_t(row0) * channels, n, channels, channels, w.conv,
                          c.conv_kernel, state.conv(in, li), state.conv(out, li), conv_out);
  const float q_scale = 1.0f / std::sqrt(static_cast<float>(dk));
  for (int i = 0; i < n; ++i) {
    float* row = conv_out + i * channels;
    ops::l2_norm(row, nk, dk, 1e-6f, q_scale);
    ops::l2_norm(row + key_w, nk, dk, 1e-6f, 1.0f);
  }
  ops::DeltaRuleShape s;
  s.n_tokens = n;
  s.n_k_heads = nk;
  s.n_v_heads = nv;
  s.k_dim = dk;
  s.v_dim = dv;
  s.q_stride = s.k_stride = s.v_stride = channels;
  s.gb_stride = nv;
  s.out_stride = value_w;
  ops::gated_delta_rule(s, conv_out, conv_out + key_w, conv_out + 2 * key_w,
                        st.alpha_.data() + size_t(row0) * nv, st.beta_.data() + size_t(row0) * nv,
                        state.ssm(in, li), state.ssm(out, li),
                        st.core_.data() + size_t(row0) * value_w, ctx);
}

// Gated attention: q_proj yields, per head, the query and an output gate; q/k RMSNorm, rotary
// on the first rope_dim dimensions, attention over each sequence's cache, output *
// sigmoid(gate), o_proj.
void Qwen35Text::attention_block(std::span<const DecodeSpan> seqs, int layer, int fi, int n,
                                 Qwen35Scratch& st, ops::Context& ctx) const {
  const Qwen35Layer& w = layers_[layer];
  const TextConfig& t = cfg_.text;
  const int hd = t.head_dim, nh = t.n_head, nkv = t.n_head_kv;
  const int64_t q_w = int64_t(nh) * hd;
  float* xn = st.xn_.data();
  ops::rms_norm(st.x_.data(), w.attn_norm, xn, n, t.n_embd, t.rms_eps, ctx);
  const ops::Matrix proj[3] = {w.wq_gate, w.wk, w.wv};
  float* const proj_out[3] = {st.qg_.data(), st.k_.data(), st.v_.data()};
  ops::matmul_multi(proj, xn, n, proj_out, ctx);
  for (int64_t r = 0; r < int64_t(n) * nh; ++r) {
    const float* src = st.qg_.data() + r * 2 * hd;
    std::memcpy(st.q_.data() + r * hd, src, hd * sizeof(float));
    std::memcpy(st.gate_.data() + r * hd, src + hd, hd * sizeof(float));
  }
  ops::rms_norm(st.q_.data(), w.q_norm, st.q_.data(), int64_t(n) * nh, hd, t.rms_eps, ctx);
  ops::rms_norm(st.k_.data(), w.k_norm, st.k_.data(), int64_t(n) * nkv, hd, t.rms_eps, ctx);
  for (int h = 0; h < nh; ++h)
    ops::rope(st.q_.data() + h * hd, n, 1, cfg_.rope_dim, q_w, st.rope_cos_.data(),
              st.rope_sin_.data(), ctx);
  for (int h = 0; h < nkv; ++h)
    ops::rope(st.k_.data() + h * hd, n, 1, cfg_.rope_dim, int64_t(nkv) * hd, st.rope_cos_.data(),
              st.rope_sin_.data(), ctx);
  int row0 = 0;
  for (const DecodeSpan& s : seqs) {
    attend(s, row0, fi, st, ctx);
    row0 += s.n;
  }
  ops::sigmoid_mul(st.attn_.data(), st.gate_.data(), int64_t(n) * q_w);
  ops::matmul(w.wo, st.attn_.data(), n, xn, ctx);
  ops::add(st.x_.data(), xn, int64_t(n) * t.n_embd, ctx);
}

// Appends one sequence's new keys/values (rows [row0, row0 + n) of the batch) to its cache and
// runs its queries over everything the cache holds.
void Qwen35Text::attend(const DecodeSpan& seq, int row0, int fi, Qwen35Scratch& st,
                        ops::Context& ctx) const {
  KvCache& kv = hybrid_of(seq).kv;
  const TextConfig& t = cfg_.text;
  const int hd = t.head_dim, nh = t.n_head, nkv = t.n_head_kv;
  const int64_t q_w = int64_t(nh) * hd;
  const int past = kv.n_past();
  const size_t elem = kv.element_bytes();
  for (int i = 0; i < seq.n; ++i)
    for (int h = 0; h < nkv; ++h) {
      const size_t src = (size_t(row0 + i) * nkv + h) * hd;
      auto* kd = static_cast<uint8_t*>(kv.keys(fi, h)) + size_t(past + i) * hd * elem;
      auto* vd = static_cast<uint8_t*>(kv.values(fi, h)) + size_t(past + i) * hd * elem;
      if (kv.type() == KvType::F16) {
        ops::f32_to_f16(st.k_.data() + src, reinterpret_cast<uint16_t*>(kd), hd);
        ops::f32_to_f16(st.v_.data() + src, reinterpret_cast<uint16_t*>(vd), hd);
      } else {
        std::memcpy(kd, st.k_.data() + src, hd * sizeof(float));
        std::memcpy(vd, st.v_.data() + src, hd * sizeof(float));
      }
    }
  ops::AttentionShape s;
  s.n_q = seq.n;
  s.n_kv = past + seq.n;
  s.n_head = nh;
  s.n_kv_head = nkv;
  s.head_dim = hd;
  s.q_stride = s.out_stride = q_w;
  s.kv_head_stride = kv.head_stride();
  s.q_pos0 = past;
  s.causal = true;
  s.scale = 1.0f / std::sqrt(static_cast<float>(hd));
  s.kv_type = kv.element_type();
  const size_t q0 = size_t(row0) * q_w;
  ops::attention(s, st.q_.data() + q0, kv.keys(fi, 0), kv.values(fi, 0), st.attn_.data() + q0, ctx);
}

void Qwen35Text::ffn_block(int layer, int n, Qwen35Scratch& st, ops::Context& ctx) const {
  const Qwen35Layer& w = layers_[layer];
  const TextConfig& t = cfg_.text;
  swiglu_block(SwiGlu{w.post_norm, t.rms_eps, w.w_gate, w.w_up, w.w_down}, st.x_.data(),
               st.xn_.data(), st.ffn_gate_.data(), st.ffn_up_.data(), n, t.n_embd, t.n_ff, ctx);
}

void Qwen35Text::check(std::span<const DecodeSpan> seqs, const TextBatch& b,
                       const Qwen35Scratch& st) const {
  if (b.n < 1 || b.n > st.n_batch_) throw InternalError("batch size out of range");
  if (st.x_.size() != size_t(st.n_batch_) * cfg_.text.n_embd)
    throw InternalError("the scratch was sized for another model");
  check_spans(seqs, b.n, [](const DecodeSpan& s) -> const KvCache& { return hybrid_of(s).kv; });
  for (const DecodeSpan& s : seqs) {
    const DeltaNetState& state = hybrid_of(s).recurrent;
    if (state.conv_[0].size() != state.conv_floats_ * cfg_.n_linear ||
        state.ssm_floats_ != size_t(cfg_.n_v_heads) * cfg_.k_head_dim * cfg_.v_head_dim)
      throw InternalError("the recurrent state was sized for another model");
    if (state.n_past() != hybrid_of(s).kv.n_past())
      throw InternalError("the recurrent state and the KV cache are not at the same position");
  }
}

void Qwen35Text::forward(std::span<const DecodeSpan> seqs, const TextBatch& b, Qwen35Scratch& st,
                         float* logits, ops::Context& ctx) const {
  check(seqs, b, st);
  const int n = b.n;
  embed(b, st);
  rope_tables(seqs, b, st);
  int fi = 0, li = 0;
  for (int l = 0; l < cfg_.text.n_layer; ++l) {
    // Stop between layers; neither a cache's n_past nor a state's side has moved yet.
    ctx.throw_if_cancelled();
    if (cfg_.full_attention[l])
      attention_block(seqs, l, fi++, n, st, ctx);
    else
      linear_block(seqs, l, li++, n, st, ctx);
    ffn_block(l, n, st, ctx);
  }
  for (const DecodeSpan& s : seqs) {
    HybridState& h = hybrid_of(s);
    h.kv.advance(s.n);
    if (cfg_.n_linear) h.recurrent.cur_ = 1 - h.recurrent.cur_;
    h.recurrent.n_past_ += s.n;
  }
  output_logits(seqs, OutputHead{output_norm_, cfg_.text.rms_eps, output_}, st.x_.data(),
                st.xn_.data(), cfg_.text.n_embd, logits, ctx);
}

void Qwen35Text::forward(HybridState& state, const TextBatch& b, Qwen35Scratch& st, float* logits,
                         int n_logits, ops::Context& ctx) const {
  const DecodeSpan one{&state, b.n, logits ? n_logits : 0};
  forward({&one, 1}, b, st, logits, ctx);
}

// TextDecoder.

void DeltaNetState::save(Snapshot& out) const {
  out.n_past = n_past_;
  out.conv = conv_[cur_];
  out.ssm = ssm_[cur_];
}

void DeltaNetState::restore(const Snapshot& from) {
  if (from.conv.size() != conv_[cur_].size() || from.ssm.size() != ssm_[cur_].size())
    throw InternalError("a recurrent state snapshot of another shape");
  std::copy(from.conv.begin(), from.conv.end(), conv_[cur_].begin());
  std::copy(from.ssm.begin(), from.ssm.end(), ssm_[cur_].begin());
  n_past_ = from.n_past;
}

int HybridState::rewind_point(int n) const {
  if (n >= kv.n_past()) return kv.n_past();
  int best = 0;
  for (const auto& c : checkpoints_)
    if (c.n_past <= n) best = std::max(best, c.n_past);
  return best;
}

void HybridState::truncate(int n) {
  if (n == kv.n_past()) return;
  if (rewind_point(n) != n)
    throw InternalError("a recurrent state goes back only to a checkpoint");  // callers check
  while (!checkpoints_.empty() && checkpoints_.back().n_past > n) {  // ascending: drop the tail
    spare_.push_back(std::move(checkpoints_.back()));
    checkpoints_.pop_back();
  }
  if (n == 0)
    recurrent.truncate(0);
  else
    for (const auto& c : checkpoints_)
      if (c.n_past == n) recurrent.restore(c);
  kv.truncate(n);
}

void HybridState::checkpoint() {
  const int n = kv.n_past();
  if (n == 0 || (!checkpoints_.empty() && checkpoints_.back().n_past >= n)) return;
  recurrent.save(next_snapshot());
}

// The snapshot the next checkpoint fills, at the end of checkpoints_: the evicted oldest-but-
// first one when all are taken (rotated to the end), else a spare, else a new one. save()
// copy-assigns into vectors of the right size, which reuses their storage.
DeltaNetState::Snapshot& HybridState::next_snapshot() {
  if (static_cast<int>(checkpoints_.size()) == kMaxCheckpoints) {
    // keep the first, drop the oldest other
    std::rotate(checkpoints_.begin() + 1, checkpoints_.begin() + 2, checkpoints_.end());
    return checkpoints_.back();
  }
  if (spare_.empty()) return checkpoints_.emplace_back();
  checkpoints_.push_back(std::move(spare_.back()));
  spare_.pop_back();
  return checkpoints_.back();
}

size_t HybridState::bytes() const {
  return kv.bytes() + recurrent.bytes() +
         (checkpoints_.size() + spare_.size()) * recurrent.snapshot_bytes();
}

std::unique_ptr<DecoderState> Qwen35Text::new_state(int n_ctx, KvType kv_type) const {
  return std::make_unique<HybridState>(cfg_, n_ctx, kv_type);
}

size_t Qwen35Text::state_bytes(int n_ctx, KvType kv_type) const {
  const DeltaNetState one(cfg_);
  return KvCache::full_bytes(cfg_.kv_config(), n_ctx, kv_type) + one.bytes() +
         HybridState::kMaxCheckpoints * one.snapshot_bytes();
}

size_t Qwen35Text::bytes_per_position(KvType kv_type) const {
  return cfg_.n_full ? KvCache::full_bytes(cfg_.kv_config(), 1, kv_type) : 0;
}

std::unique_ptr<DecoderScratch> Qwen35Text::new_scratch(int n_batch) const {
  return std::make_unique<Qwen35Scratch>(cfg_, n_batch);
}

int Qwen35Text::widest_row() const {
  const TextConfig& c = cfg_.text;
  return std::max({c.n_embd, c.n_ff, c.n_head * c.head_dim, cfg_.n_v_heads * cfg_.v_head_dim});
}

void Qwen35Text::forward(std::span<const DecodeSpan> seqs, const TextBatch& b,
                         DecoderScratch& scratch, float* logits, ops::Context& ctx) const {
  forward(seqs, b, static_cast<Qwen35Scratch&>(scratch), logits, ctx);  // made by new_scratch
}

size_t Qwen35Text::weight_bytes_per_token() const {
  size_t bytes = matrix_bytes(output_) + tok_embd_.row_stride;
  for (const Qwen35Layer& w : layers_) {
    for (const ops::Matrix* m : {&w.w_gate, &w.w_up, &w.w_down, &w.wq_gate, &w.wk, &w.wv, &w.wo,
                                 &w.w_qkv, &w.w_z, &w.w_beta, &w.w_alpha, &w.w_out})
      if (m->data) bytes += matrix_bytes(*m);
  }
  return bytes;
}

}  // namespace reel
