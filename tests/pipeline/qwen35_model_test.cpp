// Qwen3.5 files through the pipeline's loader: recognised, checked, and refused with what is
// missing (the chat pipeline does not carry the recurrent state yet) instead of an unknown-
// architecture error; Qwen3-VL files still load.
#include <gtest/gtest.h>

#include <string>

#include "common/error.h"
#include "pipeline/model.h"

namespace reel {
namespace {

const std::string kModels = REEL_FIXTURE_DIR "/models/";

TEST(Qwen35Model, RecognisedButRefusedWithWhatIsMissing) {
  try {
    Model::load(kModels + "q35-a-f32.gguf", "");
    FAIL() << "a qwen35 file loaded into the Qwen3-VL pipeline";
  } catch (const Unsupported& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("Qwen3.5 text models are recognised"), std::string::npos) << msg;
    EXPECT_NE(msg.find("recurrent state"), std::string::npos) << msg;
    EXPECT_EQ(msg.find('\n'), std::string::npos);
  }
}

TEST(Qwen35Model, Qwen3VlStillLoads) {
  EXPECT_NO_THROW(Model::load(kModels + "tiny-a-f32.gguf", ""));
}

}  // namespace
}  // namespace reel
