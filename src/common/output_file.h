// An output file that never destroys anything: the data goes to a temporary file in the
// target's directory, renamed over the target only when complete. A target that is one of the
// command's inputs is refused before anything is created; a failed run (an exception, a write
// error, SIGINT/SIGTERM/SIGHUP) removes the temporary and leaves an existing target untouched.
#pragma once

#include <cstddef>
#include <cstdio>
#include <string>
#include <utility>
#include <vector>

#include "common/error.h"

namespace reel {

// An input of the command and its role in messages, e.g. {"model", "m.gguf"}.
struct NamedInput {
  std::string role, path;
};

class OutputFile {
 public:
  // Throws reel::Error("<target>: <reason>") when the target is one of `inputs` (the same file,
  // also through a symbolic or hard link), a directory, or its directory is not writable; the
  // kind is Io when the system failed rather than the path (error_kind_for_errno).
  // An existing target that is not a regular file (/dev/null, a FIFO with a reader) is written
  // in place, as there is nothing in it to destroy.
  OutputFile(std::string target, const std::vector<NamedInput>& inputs);
  ~OutputFile();  // removes the temporary unless commit() succeeded
  OutputFile(const OutputFile&) = delete;
  OutputFile& operator=(const OutputFile&) = delete;

  // Throws IoError("<target>: write error: ...") when the disk is full or failed.
  void write(const void* data, size_t bytes);
  // Flushes, syncs and renames the temporary over the target (which keeps its permissions).
  void commit();

  const std::string& target() const { return target_; }
  const std::string& temp_path() const { return temp_; }  // empty when writing in place

 private:
  [[noreturn]] void fail(const std::string& reason, ErrorKind kind = ErrorKind::InvalidInput) const;
  // A failed system call: `reason` (path_error_reason when empty), Io unless the path is at fault.
  [[noreturn]] void fail_errno(int err, const std::string& reason = "") const;
  void discard() noexcept;

  std::string target_;       // as the user gave it
  std::string destination_;  // where the rename goes: the target, or its link's final target
  std::string temp_;
  std::FILE* file_ = nullptr;
  int slot_ = -1;  // this temporary's entry in the signal-time cleanup list
  bool committed_ = false;
};

}  // namespace reel
