// `reel bench --json` from the command line on the fixture models: one object per measurement
// with the fields the side-by-side script (bench/llama_side_by_side.py) reads, -d's depths as
// the decode rows, roofline_fraction on decode rows only, and both peaks measured in the run.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "run_reel.h"

namespace reel::test {
namespace {

const std::string kModel = REEL_FIXTURE_DIR "/models/tiny-a-q8_0.gguf";
const std::string kMmproj = REEL_FIXTURE_DIR "/models/tiny-a-mmproj-f16.gguf";

std::vector<nlohmann::json> json_lines(const std::string& out) {
  std::vector<nlohmann::json> rows;
  std::istringstream in(out);
  for (std::string line; std::getline(in, line);)
    if (!line.empty()) rows.push_back(nlohmann::json::parse(line));
  return rows;
}

class BenchCli : public ReelTest {};

TEST_F(BenchCli, JsonHasDepthRowsRooflineFractionAndPeaks) {
  const Result r = reel("bench -m " + kModel + " -t 1 -p 8,12 -d 0,20 -n 2 -r 1 --json");
  ASSERT_EQ(r.code, 0) << r.err;
  const std::vector<nlohmann::json> rows = json_lines(r.out);
  ASSERT_EQ(rows.size(), 4u) << r.out;
  std::vector<int> prompts, depths;
  for (const nlohmann::json& j : rows) {
    SCOPED_TRACE(j.dump());
    for (const char* key : {"what", "n_prompt", "depth", "parallel", "tokens_per_s",
                            "bandwidth_gbs", "fma_gflops", "threads"})
      ASSERT_TRUE(j.contains(key)) << key;
    EXPECT_GT(j["bandwidth_gbs"].get<double>(), 0);
    EXPECT_GT(j["fma_gflops"].get<double>(), 0);
    EXPECT_EQ(j["threads"], 1);
    if (j["what"] == "prefill") {
      prompts.push_back(j["n_prompt"]);
      EXPECT_FALSE(j.contains("roofline_fraction"));
      continue;
    }
    ASSERT_EQ(j["what"], "decode");
    depths.push_back(j["depth"]);
    EXPECT_EQ(j["n_gen"], 2);
    // The fraction printed against the two numbers printed beside it: JSON's shortest
    // round-trip doubles, so only the division's last-bit rounding can differ (1e-12 relative).
    const double tps = j["tokens_per_s"], bound = j["roofline_at_depth_tokens_per_s"];
    EXPECT_NEAR(j["roofline_fraction"].get<double>(), tps / bound, 1e-12 * (tps / bound));
  }
  EXPECT_EQ(prompts, (std::vector<int>{8, 12}));
  EXPECT_EQ(depths, (std::vector<int>{0, 20}));
}

// Without -d, as before: decode after each prompt, at that prompt's depth.
TEST_F(BenchCli, WithoutDepthsDecodeFollowsEachPrompt) {
  const Result r = reel("bench -m " + kModel + " -t 1 -p 6,10 -n 2 -r 1 --json");
  ASSERT_EQ(r.code, 0) << r.err;
  const std::vector<nlohmann::json> rows = json_lines(r.out);
  ASSERT_EQ(rows.size(), 4u) << r.out;
  for (size_t i = 0; i < rows.size(); ++i) {
    SCOPED_TRACE(rows[i].dump());
    EXPECT_EQ(rows[i]["what"], i % 2 ? "decode" : "prefill");
    EXPECT_EQ(rows[i]["n_prompt"], i < 2 ? 6 : 10);
    EXPECT_EQ(rows[i]["depth"], i % 2 ? rows[i]["n_prompt"].get<int>() : 0);
  }
}

// The vision row carries the same name for the FMA peak as the text rows.
TEST_F(BenchCli, VisionRowNamesTheFmaPeakLikeTheTextRows) {
  const Result r = reel("bench --mmproj " + kMmproj + " -t 1 --image-size 64x64 -r 1 --json");
  ASSERT_EQ(r.code, 0) << r.err;
  const std::vector<nlohmann::json> rows = json_lines(r.out);
  ASSERT_EQ(rows.size(), 1u) << r.out;
  EXPECT_EQ(rows[0]["what"], "vision");
  EXPECT_GT(rows[0]["fma_gflops"].get<double>(), 0);
  EXPECT_FALSE(rows[0].contains("fma_peak_gflops"));
}

TEST_F(BenchCli, RefusesANegativeDepth) {
  const Result r = reel("bench -m " + kModel + " -t 1 -d -5 --json");
  EXPECT_EQ(r.code, 2) << r.err;
  EXPECT_NE(r.err.find("depth"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace reel::test
