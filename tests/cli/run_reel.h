// Running the built `reel` binary from CLI tests: a scratch directory per test, a run under a
// timeout with stdout and stderr captured, a background start for tests that send signals, and
// the check that a failure is one clean line.
#pragma once

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

namespace reel::test {

namespace fs = std::filesystem;

struct Result {
  int code = -1;  // exit status, or 128 + signal
  std::string out, err;
};

inline std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

inline int exit_code(int status) {
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

class ReelTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("reel-files-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  fs::path file(const std::string& name, const std::string& content) const {
    const fs::path p = dir_ / name;
    std::ofstream(p, std::ios::binary) << content;
    return p;
  }

  // Runs reel with args (already shell-quoted where needed) under a timeout (124: timed out).
  Result reel(const std::string& args, int timeout_s = 120) const {
    return run(args, "/dev/null", timeout_s);
  }
  // The same with `input` on stdin.
  Result reel(const std::string& args, const std::string& input, int timeout_s = 120) const {
    return run(args, file(".in.txt", input).string(), timeout_s);
  }

 private:
  Result run(const std::string& args, const std::string& input, int timeout_s) const {
    const fs::path out = dir_ / ".out.txt", err = dir_ / ".err.txt";
    const std::string cmd = "timeout " + std::to_string(timeout_s) + " " + runner_ +
                            REEL_BINARY " " + args + " < '" + input + "' > '" + out.string() +
                            "' 2> '" + err.string() + "'";
    Result r;
    r.code = exit_code(std::system(cmd.c_str()));
    r.out = slurp(out);
    r.err = slurp(err);
    fs::remove(out);
    fs::remove(err);
    return r;
  }

 protected:
  // Starts reel in the background, output discarded; returns its pid.
  pid_t start(const std::vector<std::string>& args) const {
    const pid_t pid = ::fork();
    if (pid == 0) {
      std::vector<char*> argv{const_cast<char*>(REEL_BINARY)};
      for (const std::string& a : args) argv.push_back(const_cast<char*>(a.c_str()));
      argv.push_back(nullptr);
      std::freopen("/dev/null", "w", stdout);
      std::freopen("/dev/null", "w", stderr);
      ::execv(REEL_BINARY, argv.data());
      ::_exit(127);
    }
    return pid;
  }

  // A failure the way users should see it: non-zero exit that is not a crash (>= 124 would be
  // a timeout or a signal), and one line on stderr starting "reel: ".
  static void expect_clean_error(const Result& r, const std::string& must_contain) {
    EXPECT_NE(r.code, 0);
    EXPECT_LT(r.code, 124) << "crash or hang; stderr: " << r.err;
    EXPECT_EQ(r.err.rfind("reel: ", 0), 0u) << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
    EXPECT_NE(r.err.find(must_contain), std::string::npos) << r.err;
  }

  fs::path dir_;
  std::string runner_;  // a command that runs reel, e.g. as another user ("" or ending in " ")
};

}  // namespace reel::test
