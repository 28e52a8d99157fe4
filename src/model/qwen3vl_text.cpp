#include "model/qwen3vl_text.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>

#include "common/error.h"
#include "gguf/gguf.h"
#include "model/weights.h"

namespace reel {

namespace {

// A span's cache. Its state was made by Qwen3VLText::new_state (or is the KvState of the
// one-sequence forward), so the spans are read as they come, with no per-call conversion.
KvCache& kv_of(const DecodeSpan& s) {
  return static_cast<KvState*>(s.state)->kv;
}

using namespace weights;

constexpr const char* kArch = "qwen3vl";

std::string key(const char* suffix) {
  return std::string(kArch) + "." + suffix;
}

TextConfig read_config(const gguf::File& f) {
  auto arch = f.opt_str("general.architecture");
  if (!arch) throw Error(f.path() + ": no general.architecture key; not a model GGUF");
  if (*arch == "clip")
    throw Error(f.path() +
                ": this is a vision projector (mmproj) file, not a text model; "
                "the two files were given the other way round?");
  if (*arch != kArch)
    throw Unsupported(f.path() + ": architecture '" + std::string(*arch) +
                      "' is not supported (Reel runs qwen3vl text models)");
  TextConfig c;
  c.n_layer = static_cast<int>(f.get_u32(key("block_count")));
  c.n_embd = static_cast<int>(f.get_u32(key("embedding_length")));
  c.n_ff = static_cast<int>(f.get_u32(key("feed_forward_length")));
  c.n_head = static_cast<int>(f.get_u32(key("attention.head_count")));
  c.n_head_kv = static_cast<int>(f.get_u32(key("attention.head_count_kv")));
  check_range(f, "block_count", c.n_layer, 1, 1024);
  check_range(f, "embedding_length", c.n_embd, 1, 1 << 16);
  check_range(f, "feed_forward_length", c.n_ff, 1, 1 << 18);
  check_range(f, "attention.head_count", c.n_head, 1, 1024);
  check_range(f, "attention.head_count_kv", c.n_head_kv, 1, c.n_head);
  if (c.n_head % c.n_head_kv != 0)
    throw Error(f.path() + ": head_count " + std::to_string(c.n_head) +
                " is not a multiple of head_count_kv " + std::to_string(c.n_head_kv));
  auto kl = f.opt_u32(key("attention.key_length"));
  c.head_dim = kl ? static_cast<int>(*kl) : c.n_embd / c.n_head;
  check_range(f, "attention.key_length", c.head_dim, 2, 1024);
  if (auto vl = f.opt_u32(key("attention.value_length")); vl && static_cast<int>(*vl) != c.head_dim)
    throw Unsupported(f.path() + ": value_length differs from key_length; not supported");
  if (c.head_dim % 2) throw Error(f.path() + ": attention.key_length must be even");
  c.rms_eps = f.get_f32(key("attention.layer_norm_rms_epsilon"));
  c.rope_theta = f.get_f32(key("rope.freq_base"));
  if (!(c.rms_eps > 0 && c.rms_eps < 1) || !(c.rope_theta > 1 && std::isfinite(c.rope_theta)))
    throw Error(f.path() + ": rms epsilon or rope.freq_base out of range");
  auto sections = f.get_int_array(key("rope.dimension_sections"));
  if (sections.empty() || sections.size() > 4)
    throw Error(f.path() + ": rope.dimension_sections must hold 1 to 4 values");
  int64_t sum = 0;
  for (size_t i = 0; i < sections.size(); ++i) {
    check_range(f, "rope.dimension_sections[i]", sections[i], 0, c.head_dim / 2);
    c.mrope_sections[i] = static_cast<int>(sections[i]);
    sum += sections[i];
  }
  if (sum != c.head_dim / 2)
    throw Error(f.path() + ": rope.dimension_sections sum to " + std::to_string(sum) +
                ", expected head_dim/2 = " + std::to_string(c.head_dim / 2));
  c.n_deepstack = static_cast<int>(f.opt_u32(key("n_deepstack_layers")).value_or(0));
  // May exceed block_count in tiny models: features past the last layer are simply unused.
  check_range(f, "n_deepstack_layers", c.n_deepstack, 0, 64);
  c.n_ctx_train = static_cast<int>(f.opt_u32(key("context_length")).value_or(4096));
  check_range(f, "context_length", c.n_ctx_train, 1, 1 << 24);
  return c;
}

}  // namespace

std::unique_ptr<Qwen3VLText> Qwen3VLText::load(const gguf::File& f) {
  auto m = std::unique_ptr<Qwen3VLText>(new Qwen3VLText());
  TextConfig& c = m->cfg_ = read_config(f);
  const gguf::TensorInfo* embd = f.find_tensor("token_embd.weight");
  if (!embd) throw Error(f.path() + ": tensor token_embd.weight is missing");
  c.n_vocab = static_cast<int>(std::min<int64_t>(embd->ne[1], 1 << 24));
  m->tok_embd_ = need_matrix(f, "token_embd.weight", c.n_embd, c.n_vocab);
  m->output_norm_ = need_f32(f, "output_norm.weight", c.n_embd);
  c.tied_output = f.find_tensor("output.weight") == nullptr;
  m->output_ = c.tied_output ? m->tok_embd_ : need_matrix(f, "output.weight", c.n_embd, c.n_vocab);

  const int64_t D = c.n_embd, hd = c.head_dim, q_w = int64_t(c.n_head) * hd,
                kv_w = int64_t(c.n_head_kv) * hd;
  for (int l = 0; l < c.n_layer; ++l) {
    const std::string p = "blk." + std::to_string(l) + ".";
    LayerWeights w;
    w.attn_norm = need_f32(f, p + "attn_norm.weight", D);
    w.q_norm = need_f32(f, p + "attn_q_norm.weight", hd);
    w.k_norm = need_f32(f, p + "attn_k_norm.weight", hd);
    w.ffn_norm = need_f32(f, p + "ffn_norm.weight", D);
    w.wq = need_matrix(f, p + "attn_q.weight", D, q_w);
    w.wk = need_matrix(f, p + "attn_k.weight", D, kv_w);
    w.wv = need_matrix(f, p + "attn_v.weight", D, kv_w);
    w.wo = need_matrix(f, p + "attn_output.weight", q_w, D);
    w.w_gate = need_matrix(f, p + "ffn_gate.weight", D, c.n_ff);
    w.w_up = need_matrix(f, p + "ffn_up.weight", D, c.n_ff);
    w.w_down = need_matrix(f, p + "ffn_down.weight", c.n_ff, D);
    m->layers_.push_back(w);
  }

  m->rope_ = InterleavedMRope(c.head_dim, c.rope_theta, c.mrope_sections);
  return m;
}

size_t Qwen3VLText::weight_bytes_per_token() const {
  size_t bytes = matrix_bytes(output_) + tok_embd_.row_stride;
  for (const auto& w : layers_)
    for (const ops::Matrix* m : {&w.wq, &w.wk, &w.wv, &w.wo, &w.w_gate, &w.w_up, &w.w_down})
      bytes += matrix_bytes(*m);
  return bytes;
}

TextScratch::TextScratch(const TextConfig& c, int n_batch) : n_batch_(n_batch) {
  if (n_batch < 1) throw InternalError("the batch size must be positive");
  const size_t nb = n_batch;
  x_.resize(nb * c.n_embd);
  xn_.resize(nb * c.n_embd);
  q_.resize(nb * c.n_head * c.head_dim);
  attn_.resize(nb * c.n_head * c.head_dim);
  k_new_.resize(nb * c.n_head_kv * c.head_dim);
  v_new_.resize(nb * c.n_head_kv * c.head_dim);
  gate_.resize(nb * c.n_ff);
  up_.resize(nb * c.n_ff);
  rope_cos_.resize(nb * c.head_dim / 2);
  rope_sin_.resize(nb * c.head_dim / 2);
  pos_.resize(nb);
}

void Qwen3VLText::rope_tables(std::span<const DecodeSpan> seqs, const TextBatch& b,
                              TextScratch& st) const {
  Pos3* pos = st.pos_.data();
  int row = 0;
  for (const DecodeSpan& s : seqs)
    for (int i = 0; i < s.n; ++i, ++row) {
      const int32_t p = kv_of(s).n_past() + i;
      pos[row] = b.pos ? b.pos[row] : Pos3{p, p, p};
    }
  rope_.tables(pos, b.n, st.rope_cos_.data(), st.rope_sin_.data());
}

void Qwen3VLText::attention_block(std::span<const DecodeSpan> seqs, TextScratch& st, int layer,
                                  int n, ops::Context& ctx) const {
  const LayerWeights& w = layers_[layer];
  const int hd = cfg_.head_dim, nh = cfg_.n_head, nkv = cfg_.n_head_kv;
  float* xn = st.xn_.data();
  ops::rms_norm(st.x_.data(), w.attn_norm, xn, n, cfg_.n_embd, cfg_.rms_eps, ctx);
  const ops::Matrix qkv[3] = {w.wq, w.wk, w.wv};
  float* const qkv_out[3] = {st.q_.data(), st.k_new_.data(), st.v_new_.data()};
  ops::matmul_multi(qkv, xn, n, qkv_out, ctx);
  ops::rms_norm(st.q_.data(), w.q_norm, st.q_.data(), int64_t(n) * nh, hd, cfg_.rms_eps, ctx);
  ops::rms_norm(st.k_new_.data(), w.k_norm, st.k_new_.data(), int64_t(n) * nkv, hd, cfg_.rms_eps, ctx);
  ops::rope(st.q_.data(), n, nh, hd, int64_t(nh) * hd, st.rope_cos_.data(), st.rope_sin_.data(), ctx);
  ops::rope(st.k_new_.data(), n, nkv, hd, int64_t(nkv) * hd, st.rope_cos_.data(),
            st.rope_sin_.data(), ctx);
  int row0 = 0;
  for (const DecodeSpan& s : seqs) {
    attend(s, row0, st, layer, ctx);
    row0 += s.n;
  }
  ops::matmul(w.wo, st.attn_.data(), n, xn, ctx);
  ops::add(st.x_.data(), xn, int64_t(n) * cfg_.n_embd, ctx);
}

// Appends one sequence's new keys/values (rows [row0, row0 + n) of the batch) to its cache and
// runs its queries over everything the cache holds.
void Qwen3VLText::attend(const DecodeSpan& seq, int row0, TextScratch& st, int layer,
                         ops::Context& ctx) const {
  KvCache& kv = kv_of(seq);
  const int hd = cfg_.head_dim, nh = cfg_.n_head, nkv = cfg_.n_head_kv;
  const int past = kv.n_past();
  const size_t elem = kv.element_bytes();
  for (int i = 0; i < seq.n; ++i)
    for (int h = 0; h < nkv; ++h) {
      const size_t src = (size_t(row0 + i) * nkv + h) * hd;
      auto* k = static_cast<uint8_t*>(kv.keys(layer, h)) + size_t(past + i) * hd * elem;
      auto* v = static_cast<uint8_t*>(kv.values(layer, h)) + size_t(past + i) * hd * elem;
      if (kv.type() == KvType::F16) {
        ops::f32_to_f16(st.k_new_.data() + src, reinterpret_cast<uint16_t*>(k), hd);
        ops::f32_to_f16(st.v_new_.data() + src, reinterpret_cast<uint16_t*>(v), hd);
      } else {
        std::memcpy(k, st.k_new_.data() + src, hd * sizeof(float));
        std::memcpy(v, st.v_new_.data() + src, hd * sizeof(float));
      }
    }
  ops::AttentionShape s;
  s.n_q = seq.n;
  s.n_kv = past + seq.n;
  s.n_head = nh;
  s.n_kv_head = nkv;
  s.head_dim = hd;
  s.q_stride = s.out_stride = int64_t(nh) * hd;
  s.kv_head_stride = kv.head_stride();
  s.q_pos0 = past;
  s.causal = true;
  s.scale = 1.0f / std::sqrt(static_cast<float>(hd));
  s.kv_type = kv.element_type();
  const size_t q0 = size_t(row0) * nh * hd;
  ops::attention(s, st.q_.data() + q0, kv.keys(layer, 0), kv.values(layer, 0), st.attn_.data() + q0,
                 ctx);
}

void Qwen3VLText::ffn_block(TextScratch& st, int layer, int n, ops::Context& ctx) const {
  const LayerWeights& w = layers_[layer];
  swiglu_block(SwiGlu{w.ffn_norm, cfg_.rms_eps, w.w_gate, w.w_up, w.w_down}, st.x_.data(),
               st.xn_.data(), st.gate_.data(), st.up_.data(), n, cfg_.n_embd, cfg_.n_ff, ctx);
}

void Qwen3VLText::check(std::span<const DecodeSpan> seqs, const TextBatch& b,
                        const TextScratch& st) const {
  if (b.n < 1 || b.n > st.n_batch_) throw InternalError("batch size out of range");
  if (st.x_.size() != size_t(st.n_batch_) * cfg_.n_embd)
    throw InternalError("the scratch was sized for another model");
  check_spans(seqs, b.n, [](const DecodeSpan& s) -> const KvCache& { return kv_of(s); });
}

void Qwen3VLText::embed(const TextBatch& b, TextScratch& st) const {
  embed_batch(tok_embd_, cfg_.n_vocab, b, st.x_.data());
}

void Qwen3VLText::forward(std::span<const DecodeSpan> seqs, const TextBatch& b, TextScratch& st,
                          float* logits, ops::Context& ctx) const {
  check(seqs, b, st);
  const int n = b.n;
  const int64_t D = cfg_.n_embd;
  embed(b, st);
  rope_tables(seqs, b, st);
  for (int l = 0; l < cfg_.n_layer; ++l) {
    // A prefill batch takes seconds on a large model: stop between layers. The caches' n_past
    // only advances after the last layer, so a stopped batch leaves no trace.
    ctx.throw_if_cancelled();
    attention_block(seqs, st, l, n, ctx);
    ffn_block(st, l, n, ctx);
    if (b.deepstack && b.visual && l < cfg_.n_deepstack) {
      const float* ds = b.deepstack + size_t(l) * n * D;
      for (int i = 0; i < n; ++i)
        if (b.visual[i]) ops::add(st.x_.data() + i * D, ds + i * D, D);
    }
  }
  for (const DecodeSpan& s : seqs) kv_of(s).advance(s.n);
  output_logits(seqs, OutputHead{output_norm_, cfg_.rms_eps, output_}, st.x_.data(), st.xn_.data(),
                cfg_.n_embd, logits, ctx);
}

void Qwen3VLText::forward(KvState& state, const TextBatch& b, TextScratch& st, float* logits,
                          int n_logits, ops::Context& ctx) const {
  const DecodeSpan one{&state, b.n, logits ? n_logits : 0};
  forward({&one, 1}, b, st, logits, ctx);
}

// TextDecoder.

std::unique_ptr<DecoderState> Qwen3VLText::new_state(int n_ctx, KvType kv_type) const {
  return std::make_unique<KvState>(cfg_, n_ctx, kv_type);
}

size_t Qwen3VLText::state_bytes(int n_ctx, KvType kv_type) const {
  return KvCache::full_bytes(cfg_, n_ctx, kv_type);
}

size_t Qwen3VLText::bytes_per_position(KvType kv_type) const {
  return KvCache::full_bytes(cfg_, 1, kv_type);
}

std::unique_ptr<DecoderScratch> Qwen3VLText::new_scratch(int n_batch) const {
  return std::make_unique<TextScratch>(cfg_, n_batch);
}

int Qwen3VLText::widest_row() const {
  return std::max({cfg_.n_embd, cfg_.n_ff, cfg_.n_head * cfg_.head_dim});
}

void Qwen3VLText::forward(std::span<const DecodeSpan> seqs, const TextBatch& b,
                          DecoderScratch& scratch, float* logits, ops::Context& ctx) const {
  forward(seqs, b, static_cast<TextScratch&>(scratch), logits, ctx);  // made by new_scratch
}

}  // namespace reel
