// require_regular_file / open_regular_file / same_file on every kind of path a user can give:
// each reason must be the precise one, and nothing may block (a FIFO without a writer).
#include "common/fs.h"

#include <gtest/gtest.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "common/error.h"

namespace fs = std::filesystem;

namespace {

// A fresh directory per test, removed afterwards (permissions restored first).
class FsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/reel_fs_test_XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override {
    std::error_code ec;
    for (const auto& e : fs::recursive_directory_iterator(dir_, ec))
      fs::permissions(e.path(), fs::perms::owner_all, fs::perm_options::add, ec);
    fs::remove_all(dir_, ec);
  }
  std::string path(const std::string& name) const { return dir_ + "/" + name; }
  std::string make_file(const std::string& name, const std::string& content = "data") const {
    std::ofstream(path(name), std::ios::binary) << content;
    return path(name);
  }
  // The message require_regular_file throws, or "" when it accepts the path.
  static std::string message(const std::string& p, const char* what = "model") {
    try {
      reel::require_regular_file(p, what);
    } catch (const reel::Error& e) {
      return e.what();
    }
    return "";
  }
  std::string dir_;
};

TEST_F(FsTest, AcceptsRegularFileAndLinkToIt) {
  const std::string f = make_file("a.gguf");
  EXPECT_EQ(message(f), "");
  ASSERT_EQ(::symlink(f.c_str(), path("link").c_str()), 0);
  EXPECT_EQ(message(path("link")), "");
  const int fd = reel::open_regular_file(f, "model");
  ASSERT_GE(fd, 0);
  char buf[8] = {};
  EXPECT_EQ(::read(fd, buf, sizeof buf), 4);
  ::close(fd);
}

TEST_F(FsTest, MissingFile) {
  EXPECT_EQ(message(path("nope.gguf")), path("nope.gguf") + ": no such file");
  EXPECT_THROW(reel::require_regular_file(path("nope.gguf"), "model"), reel::Error);
  try {
    reel::require_regular_file(path("nope.gguf"), "model");
  } catch (const reel::Error& e) {
    EXPECT_EQ(e.kind(), reel::ErrorKind::InvalidInput);  // the user's path, not the system
  }
}

// Out of file descriptors is the system failing: IoError, with the path and the reason.
TEST_F(FsTest, NoDescriptorLeftIsAnIoError) {
  const std::string f = make_file("a.gguf");
  const int next_fd = ::dup(0);  // the lowest free descriptor
  ASSERT_GE(next_fd, 0);
  ::close(next_fd);
  rlimit saved{};
  ASSERT_EQ(::getrlimit(RLIMIT_NOFILE, &saved), 0);
  rlimit low = saved;
  low.rlim_cur = static_cast<rlim_t>(next_fd);  // descriptors below next_fd only: open fails
  ASSERT_EQ(::setrlimit(RLIMIT_NOFILE, &low), 0);
  std::string what;
  bool io = false;
  try {
    ::close(reel::open_regular_file(f, "model"));
  } catch (const reel::IoError& e) {
    io = true;
    what = e.what();
  } catch (const reel::Error& e) {
    what = e.what();
  }
  ASSERT_EQ(::setrlimit(RLIMIT_NOFILE, &saved), 0);
  EXPECT_TRUE(io) << what;
  EXPECT_EQ(what, f + ": too many open files");
}

TEST_F(FsTest, EmptyPath) {
  EXPECT_EQ(message("", "image"), "empty path given for the image");
}

TEST_F(FsTest, DanglingSymlinkIsNotCalledMissing) {
  ASSERT_EQ(::symlink(path("gone").c_str(), path("link").c_str()), 0);
  EXPECT_EQ(message(path("link")),
            path("link") + ": is a broken symbolic link (its target does not exist)");
}

TEST_F(FsTest, SymlinkLoop) {
  ASSERT_EQ(::symlink(path("b").c_str(), path("a").c_str()), 0);
  ASSERT_EQ(::symlink(path("a").c_str(), path("b").c_str()), 0);
  EXPECT_EQ(message(path("a")), path("a") + ": too many levels of symbolic links (a link loop?)");
}

TEST_F(FsTest, Directory) {
  EXPECT_EQ(message(dir_, "model"), dir_ + ": is a directory, not a model file");
  EXPECT_EQ(message(dir_, "image"), dir_ + ": is a directory, not an image file");
}

TEST_F(FsTest, FifoIsRefusedWithoutBlocking) {
  // No writer ever opens this FIFO: a blocking open() would hang the test (ctest's timeout).
  ASSERT_EQ(::mkfifo(path("pipe").c_str(), 0600), 0);
  EXPECT_EQ(message(path("pipe")), path("pipe") + ": is a FIFO/pipe, not a regular file");
  ASSERT_EQ(::symlink(path("pipe").c_str(), path("to_pipe").c_str()), 0);
  EXPECT_EQ(message(path("to_pipe")), path("to_pipe") + ": is a FIFO/pipe, not a regular file");
}

TEST_F(FsTest, Devices) {
  EXPECT_EQ(message("/dev/zero"), "/dev/zero: is a device, not a regular file");
  EXPECT_EQ(message("/dev/null"), "/dev/null: is a device, not a regular file");
}

TEST_F(FsTest, Socket) {
  const std::string p = path("sock");
  const int s = ::socket(AF_UNIX, SOCK_STREAM, 0);
  ASSERT_GE(s, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  ASSERT_LT(p.size(), sizeof addr.sun_path);
  std::copy(p.begin(), p.end(), addr.sun_path);
  ASSERT_EQ(::bind(s, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  EXPECT_EQ(message(p), p + ": is a socket, not a regular file");
  ::close(s);
}

TEST_F(FsTest, PathComponentNotADirectory) {
  const std::string f = make_file("plain");
  EXPECT_EQ(message(f + "/x.gguf"), f + "/x.gguf: a path component is not a directory");
}

TEST_F(FsTest, PermissionDenied) {
  const std::string f = make_file("secret");
  ASSERT_EQ(::chmod(f.c_str(), 0), 0);
  const std::string expected = f + ": permission denied";
  if (::access(f.c_str(), R_OK) != 0) {
    EXPECT_EQ(message(f), expected);
    return;
  }
  // Running as root (as the tests do in CI), where mode 000 does not deny reads: check from a
  // child that drops to an unprivileged user, when it can.
  ASSERT_EQ(::chmod(dir_.c_str(), 0755), 0);
  const pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    if (::setgid(65534) != 0 || ::setuid(65534) != 0) ::_exit(2);
    ::_exit(message(f) == expected ? 0 : 1);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status));
  if (WEXITSTATUS(status) == 2)
    GTEST_SKIP() << "privileges ignore file modes and cannot be dropped: case not testable";
  EXPECT_EQ(WEXITSTATUS(status), 0) << "an unprivileged reader did not get '" << expected << "'";
}

TEST_F(FsTest, SameFile) {
  const std::string a = make_file("a");
  const std::string b = make_file("b");
  ASSERT_EQ(::symlink(a.c_str(), path("sym").c_str()), 0);
  ASSERT_EQ(::link(a.c_str(), path("hard").c_str()), 0);
  EXPECT_TRUE(reel::same_file(a, a));
  EXPECT_TRUE(reel::same_file(a, path("sym")));
  EXPECT_TRUE(reel::same_file(path("sym"), a));
  EXPECT_TRUE(reel::same_file(a, path("hard")));
  EXPECT_TRUE(reel::same_file(a, dir_ + "/./a"));
  EXPECT_FALSE(reel::same_file(a, b));
  EXPECT_FALSE(reel::same_file(a, path("missing")));
  EXPECT_FALSE(reel::same_file(path("missing"), path("missing")));
}

}  // namespace
