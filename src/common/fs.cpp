#include "common/fs.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "common/error.h"

namespace reel {
namespace {

[[noreturn]] void fail(const std::string& path, const std::string& reason,
                       ErrorKind kind = ErrorKind::InvalidInput) {
  throw_error(kind, path + ": " + reason);
}

// A failed stat() or open(): the reason in words, and Io unless the path is at fault.
[[noreturn]] void fail_errno(const std::string& path, int err) {
  fail(path, path_error_reason(path, err), error_kind_for_errno(err));
}

std::string with_article(const char* noun) {
  const std::string n = noun && *noun ? noun : "regular";
  return (std::strchr("aeiouAEIOU", n[0]) ? "an " : "a ") + n;
}

}  // namespace

std::string path_error_reason(const std::string& path, int err) {
  switch (err) {
    case ENOENT: {
      // stat() follows links: a dangling link would otherwise read as a missing file.
      struct stat link {};
      if (::lstat(path.c_str(), &link) == 0 && S_ISLNK(link.st_mode))
        return "is a broken symbolic link (its target does not exist)";
      return "no such file";
    }
    case EACCES:
    case EPERM:
      return "permission denied";
    case ELOOP:
      return "too many levels of symbolic links (a link loop?)";
    case ENOTDIR:
      return "a path component is not a directory";
    case ENAMETOOLONG:
      return "file name too long";
    case EMFILE:
    case ENFILE:
      return "too many open files";
    case ENXIO:
      return "no device or reader behind this special file";
    case EIO:
      return "input/output error";
    default:
      return std::string("cannot open: ") + std::strerror(err);
  }
}

namespace {

// Empty when `mode` is a regular file, else why it is not one.
std::string type_reason(mode_t mode, const char* what) {
  if (S_ISREG(mode)) return {};
  if (S_ISDIR(mode)) return "is a directory, not " + with_article(what) + " file";
  if (S_ISFIFO(mode)) return "is a FIFO/pipe, not a regular file";
  if (S_ISCHR(mode) || S_ISBLK(mode)) return "is a device, not a regular file";
  if (S_ISSOCK(mode)) return "is a socket, not a regular file";
  return "is not a regular file";
}

}  // namespace

int open_regular_file(const std::string& path, const char* what) {
  if (path.empty()) throw Error(std::string("empty path given for the ") + (what ? what : "file"));
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) fail_errno(path, errno);
  if (std::string reason = type_reason(st.st_mode, what); !reason.empty()) fail(path, reason);
  // O_NONBLOCK: if the path was swapped for a FIFO since stat(), open() must not wait for a
  // writer; O_NOCTTY: a terminal device must never become our controlling terminal.
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
  if (fd < 0) fail_errno(path, errno);
  struct stat opened {};
  int err = ::fstat(fd, &opened) != 0 ? errno : 0;
  std::string reason = err != 0 ? path_error_reason(path, err) : type_reason(opened.st_mode, what);
  if (reason.empty() && ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) & ~O_NONBLOCK) != 0) {
    err = errno;
    reason = path_error_reason(path, err);
  }
  if (!reason.empty()) {
    ::close(fd);
    fail(path, reason, err != 0 ? error_kind_for_errno(err) : ErrorKind::InvalidInput);
  }
  return fd;
}

void require_regular_file(const std::string& path, const char* what) {
  ::close(open_regular_file(path, what));
}

bool same_file(const std::string& a, const std::string& b) {
  struct stat sa {
  }, sb{};
  if (::stat(a.c_str(), &sa) != 0 || ::stat(b.c_str(), &sb) != 0) return false;
  return sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

}  // namespace reel
