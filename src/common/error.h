// Errors shared by every layer: one exception type carrying a one-line message worded for any
// caller, and a kind that frontends map to their own answers (the CLI to messages and exit
// codes, the server to HTTP statuses). Messages name no frontend flag or command.
#pragma once

#include <stdexcept>
#include <string>

namespace reel {

enum class ErrorKind {
  InvalidInput,  // the caller's input is wrong: a bad file, a bad option value, a bad request
  ContextFull,   // the request does not fit in the context that is left
  Unsupported,   // valid, but something Reel does not do (an architecture, a codec, a type)
  Cancelled,     // stopped through a cancellation flag; no partial result is kept
  Io,            // the system failed us: a read, a write, memory
  Internal,      // a broken invariant: a bug in Reel
};

// A short lower-case name of a kind ("invalid_input", "context_full", ...), for logs and JSON.
const char* error_kind_name(ErrorKind kind);

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& message, ErrorKind kind = ErrorKind::InvalidInput)
      : std::runtime_error(message), kind_(kind) {}
  ErrorKind kind() const { return kind_; }

 private:
  ErrorKind kind_;
};

class ContextFull : public Error {
 public:
  explicit ContextFull(const std::string& message) : Error(message, ErrorKind::ContextFull) {}
};

class Unsupported : public Error {
 public:
  explicit Unsupported(const std::string& message) : Error(message, ErrorKind::Unsupported) {}
};

class Cancelled : public Error {
 public:
  Cancelled() : Error("cancelled", ErrorKind::Cancelled) {}
  explicit Cancelled(const std::string& message) : Error(message, ErrorKind::Cancelled) {}
};

class IoError : public Error {
 public:
  explicit IoError(const std::string& message) : Error(message, ErrorKind::Io) {}
};

class InternalError : public Error {
 public:
  explicit InternalError(const std::string& message) : Error(message, ErrorKind::Internal) {}
};

// Throws the subclass of Error that matches `kind`, so that a caught error can be reworded (its
// file name put in front, say) without losing its kind: `catch (const Error& e) {
// throw_error(e.kind(), path + ": " + e.what()); }`.
[[noreturn]] void throw_error(ErrorKind kind, const std::string& message);

// The kind of a failed system call's errno: what the caller can fix by giving another path or
// value (no such file, permission denied, a link loop, a read-only file system, ...) is
// InvalidInput; the rest (I/O errors, a full disk, no memory, too many open files, ...) is Io.
ErrorKind error_kind_for_errno(int err);

}  // namespace reel
