// File checks for user-given paths, shared by every layer that opens one (models, images, videos,
// prompt files, outputs): a precise one-line reason instead of a hang on a FIFO, a SIGBUS on a
// truncated mapping or a misleading "no such file".
#pragma once

#include <string>

namespace reel {

// Throws reel::Error("<path>: <reason>") unless path names a readable regular file.
// `what` names the role in messages, e.g. "model", "image", "video".
// Reasons: "no such file", "is a broken symbolic link (its target does not exist)",
// "permission denied", "too many levels of symbolic links (a link loop?)",
// "a path component is not a directory", "is a directory, not a <what> file",
// "is a FIFO/pipe, not a regular file", "is a device, not a regular file",
// "is a socket, not a regular file", ... Never blocks: FIFOs are opened non-blocking.
// The kind is InvalidInput, or Io when the system failed (error_kind_for_errno: an I/O error,
// too many open files, no memory).
void require_regular_file(const std::string& path, const char* what);

// Same checks, then returns a read-only descriptor (O_CLOEXEC, blocking mode restored) that the
// caller closes. The type is checked again on the open descriptor, so a file swapped for a FIFO
// between the checks is still refused.
int open_regular_file(const std::string& path, const char* what);

// Why a stat() or open() of `path` failed with errno `err`, in words a user can act on
// ("no such file", "permission denied", "too many levels of symbolic links (a link loop?)", ...).
std::string path_error_reason(const std::string& path, int err);

// True when a and b are the same file (st_dev/st_ino), following links; false when b does not
// exist (or a does not).
bool same_file(const std::string& a, const std::string& b);

}  // namespace reel
