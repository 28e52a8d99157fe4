// Helpers shared by the image and video prompt parity tests.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "model/qwen3vl_text.h"
#include "ops/ops.h"

namespace reel::test {

inline nlohmann::json read_json(const std::string& path) {
  std::ifstream in(path);
  EXPECT_TRUE(in.good()) << path;
  return in.good() ? nlohmann::json::parse(in) : nlohmann::json();
}

// Largest |ours - reference| over the stored columns of every position.
inline double max_column_diff(const std::vector<float>& logits, int n_vocab,
                              const nlohmann::json& columns, const nlohmann::json& ref_logits) {
  double m = 0;
  for (size_t p = 0; p < ref_logits.size(); ++p)
    for (size_t k = 0; k < columns.size(); ++k)
      m = std::max(m, std::abs(double(logits[p * n_vocab + columns[k].get<int>()]) -
                               ref_logits[p][k].get<double>()));
  return m;
}

}  // namespace reel::test
