// reel::Error's kinds: throw_error keeps the kind when a message is reworded, and errno values
// split into the caller's fault (InvalidInput) and the system's (Io).
#include "common/error.h"

#include <gtest/gtest.h>

#include <cerrno>
#include <string>

namespace reel {
namespace {

// Throws through throw_error and returns what was caught as each type.
template <class Expected>
void expect_thrown_as(ErrorKind kind) {
  try {
    throw_error(kind, "f.gguf: reworded");
  } catch (const Expected& e) {
    EXPECT_EQ(e.kind(), kind);
    EXPECT_EQ(std::string(e.what()), "f.gguf: reworded");
    return;
  } catch (...) {
  }
  ADD_FAILURE() << "throw_error(" << error_kind_name(kind) << ") threw another type";
}

TEST(Error, ThrowErrorThrowsTheSubclassOfTheKind) {
  expect_thrown_as<Error>(ErrorKind::InvalidInput);
  expect_thrown_as<ContextFull>(ErrorKind::ContextFull);
  expect_thrown_as<Unsupported>(ErrorKind::Unsupported);
  expect_thrown_as<Cancelled>(ErrorKind::Cancelled);
  expect_thrown_as<IoError>(ErrorKind::Io);
  expect_thrown_as<InternalError>(ErrorKind::Internal);
}

TEST(Error, PlainErrorIsInvalidInput) {
  EXPECT_EQ(Error("x").kind(), ErrorKind::InvalidInput);
  EXPECT_EQ(Cancelled().kind(), ErrorKind::Cancelled);
  EXPECT_EQ(std::string(Cancelled().what()), "cancelled");
}

TEST(Error, ErrnoOfABadPathIsInvalidInput) {
  for (int err : {ENOENT, EACCES, EPERM, ELOOP, ENOTDIR, EISDIR, ENAMETOOLONG, ENXIO, EROFS})
    EXPECT_EQ(error_kind_for_errno(err), ErrorKind::InvalidInput) << err;
}

TEST(Error, ErrnoOfAFailingSystemIsIo) {
  for (int err : {EIO, ENOSPC, EDQUOT, EMFILE, ENFILE, ENOMEM, EFBIG, EAGAIN})
    EXPECT_EQ(error_kind_for_errno(err), ErrorKind::Io) << err;
}

TEST(Error, KindNames) {
  EXPECT_STREQ(error_kind_name(ErrorKind::InvalidInput), "invalid_input");
  EXPECT_STREQ(error_kind_name(ErrorKind::ContextFull), "context_full");
  EXPECT_STREQ(error_kind_name(ErrorKind::Unsupported), "unsupported");
  EXPECT_STREQ(error_kind_name(ErrorKind::Cancelled), "cancelled");
  EXPECT_STREQ(error_kind_name(ErrorKind::Io), "io");
  EXPECT_STREQ(error_kind_name(ErrorKind::Internal), "internal");
}

}  // namespace
}  // namespace reel
