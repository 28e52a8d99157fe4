// The chat line classifier: what each kind of typed line becomes in both chats.
#include "pipeline/chat_line.h"

#include <gtest/gtest.h>

namespace reel {
namespace {

TEST(ChatLine, BlankLinesAreSkipped) {
  for (const char* s : {"", " ", "\t\r\n", "   \n"}) {
    const ChatLine l = classify_chat_line(s);
    EXPECT_EQ(l.kind, ChatLineKind::kBlank) << '"' << s << '"';
    EXPECT_EQ(l.text, "");
  }
}

TEST(ChatLine, CommandsOnALineOfTheirOwn) {
  EXPECT_EQ(classify_chat_line("<exit>").kind, ChatLineKind::kExit);
  EXPECT_EQ(classify_chat_line("  <exit>\r\n").kind, ChatLineKind::kExit);
  EXPECT_EQ(classify_chat_line("<clear>").kind, ChatLineKind::kClear);
  EXPECT_EQ(classify_chat_line("\t<clear> ").kind, ChatLineKind::kClear);
  // Case matters, as the original app's did.
  EXPECT_EQ(classify_chat_line("<EXIT>").kind, ChatLineKind::kQuestion);
}

TEST(ChatLine, CommandsInsideTextAreMisplaced) {
  for (const char* s : {"<clear> and tell me", "why <exit>", "<exit><exit>", "<image><clear>"}) {
    const ChatLine l = classify_chat_line(s);
    EXPECT_EQ(l.kind, ChatLineKind::kMisplacedCommand) << s;
    EXPECT_EQ(l.image_markers, 0) << s;  // not a question: nothing is counted
  }
  EXPECT_EQ(kMisplacedCommandNote, "write <clear> or <exit> on a line of its own");
}

TEST(ChatLine, QuestionsAreTrimmedAndTheirMarkersCounted) {
  ChatLine l = classify_chat_line("  <image>What happens?  \n");
  EXPECT_EQ(l.kind, ChatLineKind::kQuestion);
  EXPECT_EQ(l.text, "<image>What happens?");
  EXPECT_EQ(l.image_markers, 1);
  EXPECT_EQ(l.video_markers, 0);
  l = classify_chat_line("<image> then <video> and <image><image>");
  EXPECT_EQ(l.image_markers, 3);
  EXPECT_EQ(l.video_markers, 1);
  l = classify_chat_line("And then?");
  EXPECT_EQ(l.kind, ChatLineKind::kQuestion);
  EXPECT_EQ(l.image_markers + l.video_markers, 0);
  // A marker cut short is text.
  EXPECT_EQ(classify_chat_line("<image").image_markers, 0);
}

TEST(ChatTally, ExitCodeIsOneOnlyWhenEveryQuestionFailed) {
  ChatTally none;
  EXPECT_EQ(none.exit_code(), 0);  // an empty chat is not a failure
  ChatTally failed;
  failed.asked();
  failed.asked();
  EXPECT_EQ(failed.exit_code(), 1);
  ChatTally some;
  some.asked();
  some.asked();
  some.answered();
  EXPECT_EQ(some.exit_code(), 0);
  EXPECT_EQ(some.n_asked(), 2);
  EXPECT_EQ(some.n_answered(), 1);
}

}  // namespace
}  // namespace reel
