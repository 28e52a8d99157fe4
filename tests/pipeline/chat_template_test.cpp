#include "pipeline/chat_template.h"

#include <gtest/gtest.h>

#include "common/error.h"

namespace reel {
namespace {

// Expected strings are the spec's renderings of the Qwen3-VL template (section 8).
TEST(ChatTemplate, MultiTurnWithSystem) {
  const std::vector<ChatMessage> m = {{"system", "You are helpful."},
                                      {"user", "What is this?"},
                                      {"assistant", "A cat."},
                                      {"user", "What color?"}};
  EXPECT_EQ(render_chat(m, true),
            "<|im_start|>system\nYou are helpful.<|im_end|>\n<|im_start|>user\nWhat is "
            "this?<|im_end|>\n<|im_start|>assistant\nA cat.<|im_end|>\n<|im_start|>user\nWhat "
            "color?<|im_end|>\n<|im_start|>assistant\n");
}

TEST(ChatTemplate, NoDefaultSystemAndNoGenerationPrompt) {
  EXPECT_EQ(render_chat({{"user", "Hi"}}, false), "<|im_start|>user\nHi<|im_end|>\n");
}

TEST(ChatTemplate, LaterSystemMessagesAreDropped) {
  EXPECT_EQ(render_chat({{"user", "a"}, {"system", "ignored"}}, false),
            "<|im_start|>user\na<|im_end|>\n");
}

TEST(ChatTemplate, UnknownRoleIsAnError) {
  EXPECT_THROW(render_chat({{"tool-ish", "x"}}, false), Error);
}

}  // namespace
}  // namespace reel
