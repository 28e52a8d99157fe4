// What the decoder parity tests (parity_test.cpp for Qwen3-VL, qwen35_test.cpp for Qwen3.5)
// share: a reference fixture (the JSON written by tools/reference, see its README.md), a text
// model with the GGUF file that must outlive it, the greedy continuation compared with
// transformers' generate(), and the fixture names as test names.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "gguf/gguf.h"
#include "model/text_blocks.h"
#include "ops/ops.h"

namespace reel::test {

// tests/fixtures/reference/<name>.json from the build's fixture folder, or else the source
// tree's; a missing fixture fails the test and gives null.
inline nlohmann::json load_reference(const std::string& name) {
  namespace fs = std::filesystem;
  for (const std::string dir : {REEL_FIXTURE_DIR "/reference/", REEL_FIXTURE_SRC "/reference/"}) {
    const fs::path p = dir + name + ".json";
    if (fs::exists(p)) {
      std::ifstream in(p);
      return nlohmann::json::parse(in);
    }
  }
  ADD_FAILURE() << "reference fixture " << name << ".json not found";
  return nlohmann::json();
}

template <class Model>
struct Loaded {
  std::unique_ptr<gguf::File> file;
  std::unique_ptr<Model> model;
};

// A model fixture (tests/fixtures/models/<gguf_name>) loaded by Model::load.
template <class Model>
Loaded<Model> load_model(const std::string& gguf_name) {
  Loaded<Model> l;
  l.file = gguf::File::open(std::string(REEL_FIXTURE_DIR "/models/") + gguf_name);
  l.model = Model::load(*l.file);
  return l;
}

// transformers' greedy generate() with stop tokens ignored: the prompt in calls of n_batch
// tokens (logits of its last row only), then n tokens, each the argmax of the logits before it
// and fed back one at a time. Model: a text decoder with a one-sequence forward(state, ...).
template <class Model, class State, class Scratch>
std::vector<int32_t> greedy_tokens(const Model& m, State& state, Scratch& scratch,
                                   const std::vector<int32_t>& ids, size_t n, int n_batch,
                                   int n_vocab, ops::Context& ctx) {
  std::vector<float> logits(n_vocab);
  for (size_t i = 0; i < ids.size(); i += n_batch) {
    TextBatch b;
    b.n = static_cast<int>(std::min<size_t>(n_batch, ids.size() - i));
    b.ids = ids.data() + i;
    const bool last = i + b.n == ids.size();
    m.forward(state, b, scratch, last ? logits.data() : nullptr, last ? 1 : 0, ctx);
  }
  std::vector<int32_t> got;
  for (size_t i = 0; i < n; ++i) {
    int32_t id =
        static_cast<int32_t>(std::max_element(logits.begin(), logits.end()) - logits.begin());
    got.push_back(id);
    TextBatch one;
    one.n = 1;
    one.ids = &id;
    m.forward(state, one, scratch, logits.data(), 1, ctx);
  }
  return got;
}

// A fixture name ("tiny-a-f32") as a test name ("tiny_a_f32").
inline std::string param_name(const ::testing::TestParamInfo<const char*>& info) {
  std::string s = info.param;
  std::replace(s.begin(), s.end(), '-', '_');
  return s;
}

}  // namespace reel::test
