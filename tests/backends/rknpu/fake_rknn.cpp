// A fake librknnrt.so: the RKNN entry points Reel uses (Reel's declarations in rknn_abi.h, which
// follow Rockchip's rknn_api.h), recording every call (fake_common.h) and returning scripted
// outputs. Its "model" is a text file:
//   FAKE-RKNN
//   input WIDTH HEIGHT nhwc|nchw
//   outputs N
//   tokens T
//   embed E
// Output j of a run holds, for token t and element e, 1000*j + t + e/1000 + the run's number
// (from 0), so a test can tell outputs, tokens and frames apart in Reel's embeddings.
#include <map>
#include <set>
#include <string>

#include "backends/rknpu/rknn_abi.h"
#include "fake_common.h"

namespace rknn = reel::rknpu::rknn;
using reel::fake::LogLine;

namespace {

struct Model {
  int width = 0, height = 0;
  bool nchw = false;
  int outputs = 1, tokens = 0, embed = 0;
  int runs = 0;
  bool input_set = false;
  std::set<void*> outstanding;  // output buffers not yet released
};

std::map<rknn::Context, Model>& models() {
  static std::map<rknn::Context, Model> m;
  return m;
}
rknn::Context g_next = 1;

int failure(const char* function) {
  const char* v = reel::fake::scripted_failure(function);
  return v ? std::atoi(v) : 0;
}

bool parse_model(const std::string& text, Model& m) {
  char fmt[8] = {};
  if (std::sscanf(text.c_str(), "FAKE-RKNN input %d %d %7s outputs %d tokens %d embed %d", &m.width,
                  &m.height, fmt, &m.outputs, &m.tokens, &m.embed) != 6)
    return false;
  m.nchw = std::strcmp(fmt, "nchw") == 0;
  return true;
}

Model* find(rknn::Context ctx) {
  auto it = models().find(ctx);
  return it == models().end() ? nullptr : &it->second;
}

}  // namespace

extern "C" {

int rknn_init(rknn::Context* ctx, void* model, uint32_t size, uint32_t flag, void* extend) {
  LogLine log("rknn_init");
  log.str("path", size == 0 ? static_cast<const char*>(model) : "(buffer)")
      .kv("size", size)
      .kv("flag", flag)
      .ptr("extend", extend);
  if (const int rc = failure("rknn_init")) return log.kv("rc", rc), rc;
  Model m;
  if (size != 0 || !parse_model(reel::fake::read_text_file(static_cast<const char*>(model)), m))
    return log.kv("rc", -6), -6;  // RKNN_ERR_MODEL_INVALID
  *ctx = g_next++;
  models()[*ctx] = m;
  log.kv("ctx", *ctx).kv("rc", 0);
  return 0;
}

int rknn_query(rknn::Context ctx, int cmd, void* info, uint32_t size) {
  LogLine log("rknn_query");
  log.kv("ctx", ctx).kv("cmd", cmd).kv("size", size);
  Model* m = find(ctx);
  if (!m) return log.kv("rc", -7), -7;  // RKNN_ERR_CTX_INVALID
  if (const int rc = failure("rknn_query")) return log.kv("rc", rc), rc;
  if (cmd == rknn::kQueryInOutNum && size == sizeof(rknn::InputOutputNum)) {
    auto* io = static_cast<rknn::InputOutputNum*>(info);
    io->n_input = 1;
    io->n_output = uint32_t(m->outputs);
  } else if ((cmd == rknn::kQueryInputAttr || cmd == rknn::kQueryOutputAttr) &&
             size == sizeof(rknn::TensorAttr)) {
    auto* a = static_cast<rknn::TensorAttr*>(info);
    const uint32_t index = a->index;
    log.kv("index", index);
    const uint32_t limit = cmd == rknn::kQueryInputAttr ? 1 : uint32_t(m->outputs);
    if (index >= limit) return log.kv("rc", -5), -5;
    *a = rknn::TensorAttr{};
    a->index = index;
    a->n_dims = 4;
    if (cmd == rknn::kQueryInputAttr) {
      const uint32_t nhwc[4] = {1, uint32_t(m->height), uint32_t(m->width), 3};
      const uint32_t nchw[4] = {1, 3, uint32_t(m->height), uint32_t(m->width)};
      std::memcpy(a->dims, m->nchw ? nchw : nhwc, sizeof nhwc);
      a->fmt = m->nchw ? rknn::kNchw : rknn::kNhwc;
      a->type = rknn::kUint8;
      a->size = uint32_t(m->width * m->height * 3);
    } else {
      const uint32_t dims[4] = {1, uint32_t(m->tokens), uint32_t(m->embed), 1};
      std::memcpy(a->dims, dims, sizeof dims);
      a->n_dims = 3;
      a->fmt = rknn::kNchw;
      a->type = rknn::kFloat16;
      a->size = uint32_t(m->tokens * m->embed * 2);
    }
    a->n_elems = a->size / (cmd == rknn::kQueryInputAttr ? 1 : 2);
    std::snprintf(a->name, sizeof a->name, "%s%u", cmd == rknn::kQueryInputAttr ? "in" : "out",
                  index);
  } else if (cmd == rknn::kQuerySdkVersion && size == sizeof(rknn::SdkVersion)) {
    auto* v = static_cast<rknn::SdkVersion*>(info);
    std::snprintf(v->api_version, sizeof v->api_version, "2.3.2 (fake)");
    std::snprintf(v->drv_version, sizeof v->drv_version, "0.9.8");
  } else {
    return log.kv("rc", -5), -5;  // RKNN_ERR_PARAM_INVALID: a command or size it does not know
  }
  log.kv("rc", 0);
  return 0;
}

int rknn_inputs_set(rknn::Context ctx, uint32_t n_inputs, rknn::Input* inputs) {
  LogLine log("rknn_inputs_set");
  log.kv("ctx", ctx).kv("n_inputs", n_inputs);
  Model* m = find(ctx);
  if (!m) return log.kv("rc", -7), -7;
  if (n_inputs != 1 || !inputs) return log.kv("rc", -5), -5;
  const rknn::Input& in = inputs[0];
  uint64_t sum = 0;
  for (uint32_t i = 0; in.buf && i < in.size; ++i) sum += static_cast<const uint8_t*>(in.buf)[i];
  log.kv("index", in.index)
      .kv("size", in.size)
      .kv("pass_through", int(in.pass_through))
      .kv("type", in.type)
      .kv("fmt", in.fmt)
      .kv("byte_sum", sum);
  if (const int rc = failure("rknn_inputs_set")) return log.kv("rc", rc), rc;
  if (in.index != 0 || !in.buf || in.size != uint32_t(m->width * m->height * 3))
    return log.kv("rc", -8), -8;  // RKNN_ERR_INPUT_INVALID
  m->input_set = true;
  log.kv("rc", 0);
  return 0;
}

int rknn_run(rknn::Context ctx, void* extend) {
  LogLine log("rknn_run");
  log.kv("ctx", ctx).ptr("extend", extend);
  Model* m = find(ctx);
  if (!m) return log.kv("rc", -7), -7;
  if (const int rc = failure("rknn_run")) return log.kv("rc", rc), rc;
  if (!m->input_set) return log.kv("rc", -8), -8;
  log.kv("rc", 0);
  return 0;
}

int rknn_outputs_get(rknn::Context ctx, uint32_t n_outputs, rknn::Output* outputs, void* extend) {
  LogLine log("rknn_outputs_get");
  log.kv("ctx", ctx).kv("n_outputs", n_outputs).ptr("extend", extend);
  Model* m = find(ctx);
  if (!m) return log.kv("rc", -7), -7;
  if (const int rc = failure("rknn_outputs_get")) return log.kv("rc", rc), rc;
  if (n_outputs != uint32_t(m->outputs)) return log.kv("rc", -9), -9;
  for (uint32_t j = 0; j < n_outputs; ++j) {
    rknn::Output& o = outputs[j];
    log.kv("want_float", int(o.want_float))
        .kv("is_prealloc", int(o.is_prealloc))
        .kv("index", o.index);
    if (!o.want_float || o.is_prealloc || o.index != j) return log.kv("rc", -9), -9;
    const size_t n = size_t(m->tokens) * size_t(m->embed);
    auto* buf = static_cast<float*>(std::malloc(n * sizeof(float)));
    for (int t = 0; t < m->tokens; ++t)
      for (int e = 0; e < m->embed; ++e)
        buf[size_t(t) * size_t(m->embed) + size_t(e)] =
            1000.0f * float(j) + float(t) + float(e) / 1000.0f + float(m->runs);
    o.buf = buf;
    o.size = uint32_t(n * sizeof(float));
    m->outstanding.insert(buf);
  }
  ++m->runs;
  m->input_set = false;
  log.kv("rc", 0);
  return 0;
}

int rknn_outputs_release(rknn::Context ctx, uint32_t n_outputs, rknn::Output* outputs) {
  LogLine log("rknn_outputs_release");
  log.kv("ctx", ctx).kv("n_outputs", n_outputs);
  Model* m = find(ctx);
  if (!m) return log.kv("rc", -7), -7;
  for (uint32_t j = 0; j < n_outputs; ++j)
    if (m->outstanding.erase(outputs[j].buf)) std::free(outputs[j].buf);
  log.kv("outstanding", m->outstanding.size()).kv("rc", 0);
  return 0;
}

int rknn_destroy(rknn::Context ctx) {
  LogLine log("rknn_destroy");
  log.kv("ctx", ctx);
  Model* m = find(ctx);
  if (!m) return log.kv("rc", -7), -7;
  log.kv("outstanding", m->outstanding.size());
  for (void* p : m->outstanding) std::free(p);
  models().erase(ctx);
  log.kv("live", models().size()).kv("rc", 0);
  return 0;
}

// Exported by the real library too; Reel does not call it.
int rknn_set_core_mask(rknn::Context ctx, int mask) {
  LogLine("rknn_set_core_mask").kv("ctx", ctx).kv("mask", mask).kv("unexpected", 1);
  return 0;
}

}  // extern "C"
