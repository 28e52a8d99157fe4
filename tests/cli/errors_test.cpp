// The CLI's answer to each error kind: exit code, one-line message and advice.
#include "cli/errors.h"

#include <gtest/gtest.h>

#include <new>
#include <stdexcept>
#include <system_error>

namespace reel::cli {
namespace {

TEST(CliErrors, ExitCodePerKind) {
  EXPECT_EQ(exit_code_for(ErrorKind::InvalidInput), 1);
  EXPECT_EQ(exit_code_for(ErrorKind::ContextFull), 1);
  EXPECT_EQ(exit_code_for(ErrorKind::Unsupported), 1);
  EXPECT_EQ(exit_code_for(ErrorKind::Io), 74);        // EX_IOERR
  EXPECT_EQ(exit_code_for(ErrorKind::Internal), 70);  // EX_SOFTWARE
  EXPECT_EQ(exit_code_for(ErrorKind::Cancelled), 130);
}

TEST(CliErrors, ExitCodeFollowsTheErrorsKind) {
  EXPECT_EQ(exit_code_for(Error("bad value")), 1);
  EXPECT_EQ(exit_code_for(ContextFull("full")), 1);
  EXPECT_EQ(exit_code_for(Unsupported("codec")), 1);
  EXPECT_EQ(exit_code_for(IoError("disk")), 74);
  EXPECT_EQ(exit_code_for(InternalError("bug")), 70);
  EXPECT_EQ(exit_code_for(Cancelled()), 130);
  // A plain Error given a kind answers like the subclass.
  EXPECT_EQ(exit_code_for(Error("disk", ErrorKind::Io)), 74);
}

TEST(CliErrors, ContextFullAdviceNamesTheFlagAndInChatTheCommand) {
  const ContextFull e("the prompt needs 5000 tokens");
  EXPECT_EQ(cli_advice(e, Mode::kOneShot), "; use a larger -c (context size)");
  EXPECT_EQ(cli_advice(e, Mode::kChat), "; use <clear> to start over or a larger -c");
  EXPECT_EQ(failure_for(e, Mode::kOneShot).line,
            "reel: the prompt needs 5000 tokens; use a larger -c (context size)");
}

TEST(CliErrors, OtherKindsGetNoAdvice) {
  for (const Error& e : {Error("x"), Error("x", ErrorKind::Unsupported), Error("x", ErrorKind::Io),
                         Error("x", ErrorKind::Cancelled)}) {
    EXPECT_EQ(cli_advice(e, Mode::kOneShot), "") << error_kind_name(e.kind());
    EXPECT_EQ(cli_advice(e, Mode::kChat), "") << error_kind_name(e.kind());
    EXPECT_EQ(failure_for(e, Mode::kChat).line, "reel: x");
  }
}

TEST(CliErrors, InternalErrorSaysItIsABugAndAsksForAReport) {
  const Failure f = failure_for(InternalError("patchify: frames differ in size"), Mode::kChat);
  EXPECT_EQ(f.line,
            "reel: internal error: patchify: frames differ in size; this is a bug in Reel, "
            "please report it");
  EXPECT_EQ(f.exit_code, 70);
}

TEST(CliErrors, ExceptionsOutsideReelError) {
  const Failure oom = failure_for(std::bad_alloc(), Mode::kOneShot);
  EXPECT_EQ(oom.line, "reel: out of memory");
  EXPECT_EQ(oom.exit_code, 74);

  const std::system_error sys(std::make_error_code(std::errc::resource_unavailable_try_again),
                              "cannot start a thread");
  const Failure s = failure_for(sys, Mode::kOneShot);
  EXPECT_EQ(s.exit_code, 74);
  EXPECT_EQ(s.line.rfind("reel: cannot start a thread", 0), 0u) << s.line;

  // Reel's own checks throw reel::Error; anything else slipped past one.
  const Failure other = failure_for(std::out_of_range("vector::at"), Mode::kOneShot);
  EXPECT_EQ(other.exit_code, 70);
  EXPECT_EQ(other.line,
            "reel: internal error: vector::at; this is a bug in Reel, please report it");
}

// The original app's command line is checked before CLI11 parses: its mistakes are usage
// errors like the parser's (exit code 2).
TEST(CliErrors, UsageErrorExitsTwoAndPointsToHelp) {
  const UsageError e("FRAMES must be a whole number from 1 to 100000, not 'zz'");
  EXPECT_EQ(e.kind(), ErrorKind::InvalidInput);
  const Failure f = failure_for(e, Mode::kOneShot);
  EXPECT_EQ(f.exit_code, 2);
  EXPECT_EQ(f.line,
            "reel: FRAMES must be a whole number from 1 to 100000, not 'zz' (see reel --help)");
}

TEST(CliErrors, MessagesStayOneLine) {
  for (Mode m : {Mode::kOneShot, Mode::kChat}) {
    for (ErrorKind k : {ErrorKind::InvalidInput, ErrorKind::ContextFull, ErrorKind::Unsupported,
                        ErrorKind::Cancelled, ErrorKind::Io, ErrorKind::Internal}) {
      EXPECT_EQ(failure_for(Error("m", k), m).line.find('\n'), std::string::npos);
    }
  }
}

}  // namespace
}  // namespace reel::cli
