#include "pipeline/chat_template.h"

#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>

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

// Qwen3.5's thinking switch against transformers' apply_chat_template on Qwen3.5-shaped
// templates of both defaults (tests/fixtures/tokenizer/qwen35-chat-template.json, written by
// tools/reference/make_qwen35_template_fixtures.py): the switch and its default are read from
// the template, and the prompt for each setting is transformers' text.
TEST(ChatTemplate, ThinkingSwitchMatchesTransformers) {
  std::ifstream in(REEL_FIXTURE_SRC "/tokenizer/qwen35-chat-template.json");
  ASSERT_TRUE(in.good());
  const auto fixture = nlohmann::json::parse(in);
  const auto& templates = fixture["templates"];
  EXPECT_TRUE(thinking_switch(templates["small"].get<std::string>()).present);
  EXPECT_FALSE(thinking_switch(templates["small"].get<std::string>()).default_on);
  EXPECT_TRUE(thinking_switch(templates["large"].get<std::string>()).present);
  EXPECT_TRUE(thinking_switch(templates["large"].get<std::string>()).default_on);
  EXPECT_FALSE(thinking_switch(templates["qwen3vl"].get<std::string>()).present);
  EXPECT_TRUE(thinking_switch(templates["small"].get<std::string>()).think_blocks);
  EXPECT_TRUE(thinking_switch(templates["large"].get<std::string>()).think_blocks);
  EXPECT_FALSE(thinking_switch(templates["qwen3vl"].get<std::string>()).think_blocks);
  int n = 0, trimmed = 0;
  for (const auto& c : fixture["cases"]) {
    const ThinkingSwitch sw =
        thinking_switch(templates[c["template"].get<std::string>()].get<std::string>());
    const Think think = c["enable_thinking"].is_null()     ? Think::kDefault
                        : c["enable_thinking"].get<bool>() ? Think::kOn
                                                           : Think::kOff;
    std::vector<ChatMessage> messages;
    for (const auto& m : c["messages"])
      messages.push_back({m["role"].get<std::string>(), m["content"].get<std::string>()});
    SCOPED_TRACE(c.dump());
    if (c["template"] == "qwen3vl" && think == Think::kOn) {
      // Reel's choice: a model without the switch is not asked to think; it says so.
      EXPECT_THROW(generation_prompt(sw, think), Unsupported);
      continue;
    }
    const std::string want = c["text"].get<std::string>();
    EXPECT_EQ(render_chat(messages, generation_prompt(sw, think), sw.think_blocks), want);
    // Cases where the think blocks matter (a reasoning-free rendering would differ).
    trimmed += render_chat(messages, generation_prompt(sw, think)) != want;
    ++n;
  }
  EXPECT_EQ(n, 40);
  EXPECT_EQ(trimmed, 18);  // small and large, each thinking setting, the three think cases
}

// What an earlier assistant turn keeps under a think-block template (Qwen3.5's): the answer
// after the last "</think>", trimmed, without leading newlines.
TEST(ChatTemplate, EarlierAnswersLoseTheirReasoning) {
  EXPECT_EQ(answer_without_thinking("<think>\nwhy\n</think>\n\nBecause."), "Because.");
  EXPECT_EQ(answer_without_thinking("why\n</think>\n\nBecause.\n"), "Because.");
  EXPECT_EQ(answer_without_thinking("a</think>b</think>\n c"), " c");
  EXPECT_EQ(answer_without_thinking("  no reasoning  "), "no reasoning");
  EXPECT_EQ(answer_without_thinking("cut short <think> before the end"),
            "cut short <think> before the end");
  EXPECT_EQ(answer_without_thinking("</think>"), "");
}

TEST(ChatTemplate, NoTemplateMeansNoSwitch) {
  EXPECT_FALSE(thinking_switch("").present);
  EXPECT_EQ(generation_prompt(thinking_switch(""), Think::kOff), kAssistantPrompt);
  EXPECT_EQ(generation_prompt(thinking_switch(""), Think::kDefault), kAssistantPrompt);
  EXPECT_FALSE(thinking_switch("").think_blocks);
}

}  // namespace
}  // namespace reel
