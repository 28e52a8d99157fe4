#include "common/output_file.h"

#include <fcntl.h>
#include <limits.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <iterator>

#include "common/error.h"
#include "common/fs.h"

namespace reel {
namespace {

// Temporaries to remove when a signal ends the process before their owner's destructor runs.
// Plain arrays and sig_atomic_t flags: the handler may only touch async-signal-safe state.
constexpr int kSlots = 8;
char g_temp_paths[kSlots][PATH_MAX];
volatile sig_atomic_t g_slot_used[kSlots];
int g_live_slots = 0;

constexpr int kSignals[] = {SIGINT, SIGTERM, SIGHUP};
struct sigaction g_previous[std::size(kSignals)];

void remove_temps_and_reraise(int sig) {
  for (int i = 0; i < kSlots; ++i)
    if (g_slot_used[i]) ::unlink(g_temp_paths[i]);
  // Then what would have happened without us (by default: the process ends by this signal).
  for (size_t i = 0; i < std::size(kSignals); ++i)
    if (kSignals[i] == sig) ::sigaction(sig, &g_previous[i], nullptr);
  ::raise(sig);
}

// Registration happens on the thread that creates the output, before worker threads start.
int register_temp(const std::string& path) {
  if (path.size() >= PATH_MAX) return -1;
  for (int i = 0; i < kSlots; ++i) {
    if (g_slot_used[i]) continue;
    std::memcpy(g_temp_paths[i], path.c_str(), path.size() + 1);
    std::atomic_signal_fence(std::memory_order_seq_cst);  // the path is complete before it is used
    g_slot_used[i] = 1;
    if (g_live_slots++ == 0) {
      struct sigaction sa {};
      sa.sa_handler = remove_temps_and_reraise;
      sigemptyset(&sa.sa_mask);
      for (size_t s = 0; s < std::size(kSignals); ++s) {
        ::sigaction(kSignals[s], nullptr, &g_previous[s]);
        // An ignored signal stays ignored (nohup, background jobs of a script): it ends nothing.
        if (g_previous[s].sa_handler != SIG_IGN) ::sigaction(kSignals[s], &sa, nullptr);
      }
    }
    return i;
  }
  return -1;  // more live outputs than slots: only a signal could then leave a temporary behind
}

void unregister_temp(int slot) {
  if (slot < 0) return;
  g_slot_used[slot] = 0;
  if (--g_live_slots == 0)
    for (size_t s = 0; s < std::size(kSignals); ++s)
      ::sigaction(kSignals[s], &g_previous[s], nullptr);
}

std::string directory_of(const std::string& path) {
  const size_t slash = path.find_last_of('/');
  if (slash == std::string::npos) return ".";
  return slash == 0 ? "/" : path.substr(0, slash);
}

std::string base_name(const std::string& path) {
  const size_t slash = path.find_last_of('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

mode_t default_file_mode() {
  const mode_t mask = ::umask(0);  // umask can only be read by setting it
  ::umask(mask);
  return 0666 & ~mask;
}

}  // namespace

OutputFile::OutputFile(std::string target, const std::vector<NamedInput>& inputs)
    : target_(std::move(target)) {
  if (target_.empty()) throw Error("empty output path");
  for (const NamedInput& in : inputs) {
    if (same_file(in.path, target_))
      fail("is the same file as the " + in.role + " " + in.path +
           "; refusing to overwrite an input");
  }
  struct stat st {};
  mode_t mode = 0;
  if (::stat(target_.c_str(), &st) == 0) {
    if (S_ISDIR(st.st_mode)) fail("is a directory");
    if (!S_ISREG(st.st_mode)) {
      // A device or a FIFO: a stream, nothing to replace. O_NONBLOCK so that a FIFO without a
      // reader is an error, not a hang.
      const int fd = ::open(target_.c_str(), O_WRONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
      if (fd < 0) {
        const int err = errno;
        fail_errno(err, err == ENXIO ? "is a FIFO with no reader" : "");
      }
      ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) & ~O_NONBLOCK);
      file_ = ::fdopen(fd, "wb");
      if (!file_) {
        const int err = errno;
        ::close(fd);
        fail_errno(err, std::string("cannot open: ") + std::strerror(err));
      }
      return;
    }
    // A read-only file stays protected, although the directory would allow replacing it.
    if (::access(target_.c_str(), W_OK) != 0) {
      const int err = errno;
      fail_errno(err, err == EACCES ? "permission denied (the file is read-only)" : "");
    }
    mode = st.st_mode & 07777;
    // Through a symbolic link the file the link names is replaced, not the link.
    char resolved[PATH_MAX];
    destination_ = ::realpath(target_.c_str(), resolved) ? resolved : target_;
  } else if (errno == ENOENT) {
    mode = default_file_mode();
    destination_ = target_;
  } else {
    const int err = errno;
    fail_errno(err);
  }

  const std::string dir = directory_of(destination_);
  std::string temp = dir + "/." + base_name(destination_) + ".reel-XXXXXX";
  const int fd = ::mkostemp(temp.data(), O_CLOEXEC);
  if (fd < 0) {
    const int err = errno;
    fail_errno(err, "cannot create a file in " + dir + ": " +
                        (err == ENOENT ? "no such directory" : path_error_reason(dir, err)));
  }
  temp_ = temp;
  slot_ = register_temp(temp_);
  if (::fchmod(fd, mode) != 0 || !(file_ = ::fdopen(fd, "wb"))) {
    const int err = errno;
    ::close(fd);
    discard();
    fail_errno(err, std::string("cannot prepare the output: ") + std::strerror(err));
  }
}

OutputFile::~OutputFile() {
  discard();
}

void OutputFile::fail(const std::string& reason, ErrorKind kind) const {
  throw_error(kind, target_ + ": " + reason);
}

void OutputFile::fail_errno(int err, const std::string& reason) const {
  fail(reason.empty() ? path_error_reason(target_, err) : reason, error_kind_for_errno(err));
}

void OutputFile::discard() noexcept {
  if (file_) std::fclose(file_);
  file_ = nullptr;
  if (!temp_.empty() && !committed_) ::unlink(temp_.c_str());
  unregister_temp(slot_);
  slot_ = -1;
}

void OutputFile::write(const void* data, size_t bytes) {
  if (!file_) fail("write after the output was closed", ErrorKind::Internal);
  if (bytes > 0 && std::fwrite(data, 1, bytes, file_) != bytes) {
    const int err = errno;
    fail_errno(err, std::string("write error: ") + std::strerror(err));
  }
}

void OutputFile::commit() {
  if (!file_) fail("the output was already closed", ErrorKind::Internal);
  std::FILE* f = file_;
  file_ = nullptr;
  // fsync before rename: after a crash the target is either the old file or the complete new
  // one, never a truncated one.
  const bool ok = std::fflush(f) == 0 && (temp_.empty() || ::fsync(::fileno(f)) == 0);
  int err = errno;
  if (std::fclose(f) != 0 || !ok) {
    if (ok) err = errno;
    fail_errno(err, std::string("write error: ") + std::strerror(err));
  }
  if (temp_.empty()) return;
  if (::rename(temp_.c_str(), destination_.c_str()) != 0) {
    err = errno;
    fail_errno(err, "cannot replace the file: " + path_error_reason(destination_, err));
  }
  committed_ = true;
  unregister_temp(slot_);
  slot_ = -1;
}

}  // namespace reel
