// A child process for CLI tests that need more than std::system: writing to its stdin while
// it runs, sending it signals, and timing how fast it reacts.
#pragma once

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <string>
#include <thread>
#include <vector>

namespace reel::test {

class Process {
 public:
  // Runs argv[0] with stdout and stderr captured through pipes and stdin from a pipe.
  explicit Process(const std::vector<std::string>& argv) {
    int in[2], out[2], err[2];
    if (pipe(in) || pipe(out) || pipe(err)) return;
    pid_ = fork();
    if (pid_ == 0) {
      dup2(in[0], 0);
      dup2(out[1], 1);
      dup2(err[1], 2);
      for (int fd : {in[0], in[1], out[0], out[1], err[0], err[1]}) close(fd);
      std::vector<char*> args;
      for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
      args.push_back(nullptr);
      execv(args[0], args.data());
      _exit(127);
    }
    close(in[0]);
    close(out[1]);
    close(err[1]);
    in_ = in[1];
    out_ = out[0];
    err_ = err[0];
    fcntl(out_, F_SETFL, O_NONBLOCK);
    fcntl(err_, F_SETFL, O_NONBLOCK);
  }
  ~Process() {
    if (pid_ > 0 && code_ < 0) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
    for (int fd : {in_, out_, err_})
      if (fd >= 0) close(fd);
  }

  void write_line(const std::string& line) {
    const std::string s = line + "\n";
    (void)!write(in_, s.data(), s.size());
  }
  void close_stdin() {
    close(in_);
    in_ = -1;
  }
  void signal(int sig) { kill(pid_, sig); }
  pid_t pid() const { return pid_; }

  // Waits until stdout or stderr (everything read so far) contains `what`.
  bool wait_for(const std::string& what, double seconds, bool on_stderr = true) {
    const auto end = now() + seconds;
    while (now() < end) {
      drain();
      if ((on_stderr ? err_text_ : out_text_).find(what) != std::string::npos) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return false;
  }
  // The exit code (128 + signal for a signal), or -1 if still running after `seconds`.
  int wait_exit(double seconds) {
    const auto end = now() + seconds;
    while (now() < end) {
      drain();
      int status = 0;
      if (waitpid(pid_, &status, WNOHANG) == pid_) {
        drain();
        code_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        return code_;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return -1;
  }
  const std::string& out() const { return out_text_; }
  const std::string& err() const { return err_text_; }

  static double now() {
    using namespace std::chrono;
    return duration<double>(steady_clock::now().time_since_epoch()).count();
  }

 private:
  void drain() {
    char buf[4096];
    for (auto [fd, text] : {std::pair{out_, &out_text_}, std::pair{err_, &err_text_}})
      for (ssize_t n; fd >= 0 && (n = read(fd, buf, sizeof buf)) > 0;) text->append(buf, n);
  }
  pid_t pid_ = -1;
  int in_ = -1, out_ = -1, err_ = -1, code_ = -1;
  std::string out_text_, err_text_;
};

}  // namespace reel::test
