// The interactive chat driven through a pseudo-terminal, as a person would use it: line
// editing on, a progress bar while the video is encoded, a follow-up, <clear> and <exit>.
#include <gtest/gtest.h>
#include <poll.h>
#include <pty.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <string>
#include <vector>

#include "../emulation.h"

namespace {

using reel::test::slowdown;

class PtyChat {
 public:
  explicit PtyChat(const std::vector<std::string>& args) {
    pid_ = forkpty(&fd_, nullptr, nullptr, nullptr);
    if (pid_ == 0) {
      std::vector<char*> argv;
      for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
      argv.push_back(nullptr);
      execv(argv[0], argv.data());
      _exit(127);
    }
  }
  ~PtyChat() {
    if (pid_ > 0 && !exited_) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
    if (fd_ >= 0) close(fd_);
  }
  bool started() const { return pid_ > 0; }

  // Reads until `what` appears after the current mark (or the timeout, scaled under emulation:
  // tests/emulation.h), returns all read.
  bool wait_for(const std::string& what, double seconds = 60) {
    const auto end =
        std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds * slowdown());
    while (seen_.find(what, mark_) == std::string::npos) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          end - std::chrono::steady_clock::now()).count();
      if (left <= 0) return false;
      pollfd p{fd_, POLLIN, 0};
      if (poll(&p, 1, static_cast<int>(left)) <= 0) continue;
      char buf[4096];
      const ssize_t n = read(fd_, buf, sizeof buf);
      if (n <= 0) return false;
      seen_.append(buf, n);
    }
    mark_ = seen_.find(what, mark_) + what.size();
    return true;
  }
  void keys(const std::string& k) { ASSERT_EQ(write(fd_, k.data(), k.size()), ssize_t(k.size())); }
  void type(const std::string& line) {
    const std::string s = line + "\r";
    ASSERT_EQ(write(fd_, s.data(), s.size()), ssize_t(s.size()));
  }
  int exit_code(double seconds = 30) {
    for (int i = 0; i < seconds * slowdown() * 10; ++i) {
      int status = 0;
      if (waitpid(pid_, &status, WNOHANG) == pid_) {
        exited_ = true;
        return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
      }
      // Drain what the child still prints so it never blocks on a full terminal buffer.
      char buf[4096];
      pollfd p{fd_, POLLIN, 0};
      const ssize_t n = poll(&p, 1, 100) > 0 ? read(fd_, buf, sizeof buf) : 0;
      if (n > 0)
        seen_.append(buf, n);
      else
        usleep(100 * 1000);  // hung up or nothing to read: wait for the child
    }
    return -1;
  }
  const std::string& transcript() const { return seen_; }

 private:
  int fd_ = -1;
  pid_t pid_ = -1;
  bool exited_ = false;
  std::string seen_;
  size_t mark_ = 0;
};

TEST(PtyChat, VideoFollowUpClearExit) {
  PtyChat chat({REEL_BINARY, "-m", REEL_FIXTURE_DIR "/models/tiny-a-q8_0.gguf", "--mmproj",
                REEL_FIXTURE_DIR "/models/tiny-a-mmproj-f16.gguf", "--video",
                REEL_TEST_DATA "/media/clip-10s-720x358-h264.mp4", "--frames", "8", "-n",
                "6", "--temp", "0", "--stats", "text"});
  ASSERT_TRUE(chat.started());
  ASSERT_TRUE(chat.wait_for("> ")) << chat.transcript();
  chat.type("<video> What happens in this video?");
  ASSERT_TRUE(chat.wait_for("encoding video")) << "no progress bar: " << chat.transcript();
  ASSERT_TRUE(chat.wait_for("8 frame(s)")) << chat.transcript();
  ASSERT_TRUE(chat.wait_for("> ")) << chat.transcript();
  chat.type("And after that?");
  ASSERT_TRUE(chat.wait_for("generated 6 tokens")) << chat.transcript();
  ASSERT_TRUE(chat.wait_for("> ")) << chat.transcript();
  chat.type("<clear>");
  ASSERT_TRUE(chat.wait_for("dialogue cleared")) << chat.transcript();
  ASSERT_TRUE(chat.wait_for("> ")) << chat.transcript();
  chat.type("<exit>");
  EXPECT_EQ(chat.exit_code(), 0) << chat.transcript();
}

// Progress bars cover image encoding and long prompts too (a prompt of several batches).
TEST(PtyChat, ProgressForImagesAndLongPrompts) {
  PtyChat chat({REEL_BINARY, "-m", REEL_FIXTURE_DIR "/models/tiny-a-q8_0.gguf", "--mmproj",
                REEL_FIXTURE_DIR "/models/tiny-a-mmproj-f16.gguf", "--image",
                REEL_FIXTURE_SRC "/images/large-320x200.png", "-b", "8", "-n", "2", "--temp",
                "0"});
  ASSERT_TRUE(chat.started());
  ASSERT_TRUE(chat.wait_for("> ")) << chat.transcript();
  chat.type("<image> What is this?");
  ASSERT_TRUE(chat.wait_for("encoding images")) << chat.transcript();
  ASSERT_TRUE(chat.wait_for("reading the prompt")) << chat.transcript();
  ASSERT_TRUE(chat.wait_for("> ")) << chat.transcript();
  chat.type("<exit>");
  EXPECT_EQ(chat.exit_code(), 0) << chat.transcript();
}

// Ctrl-C at an empty prompt, after a turn, ends Reel with 130. (Dropping a half-typed line
// depends on where libedit is in its read when the signal lands; it is not asserted here.)
TEST(PtyChat, CtrlCAtThePrompt) {
  PtyChat chat({REEL_BINARY, "-m", REEL_FIXTURE_DIR "/models/tiny-a-q8_0.gguf", "-n", "3",
                "--temp", "0", "--stats", "text"});
  ASSERT_TRUE(chat.started());
  ASSERT_TRUE(chat.wait_for("quits.")) << chat.transcript();  // the banner has "> " too
  ASSERT_TRUE(chat.wait_for("> ")) << chat.transcript();
  chat.type("Hello");
  ASSERT_TRUE(chat.wait_for("generated 3 tokens")) << "the chat went on: " << chat.transcript();
  ASSERT_TRUE(chat.wait_for("> ")) << chat.transcript();
  chat.keys("\x03");
  EXPECT_EQ(chat.exit_code(), 130) << chat.transcript();
}

}  // namespace
