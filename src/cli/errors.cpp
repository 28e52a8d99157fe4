#include "cli/errors.h"

#include <cstdio>
#include <new>
#include <system_error>

namespace reel::cli {

int exit_code_for(ErrorKind kind) {
  switch (kind) {
    case ErrorKind::InvalidInput:
    case ErrorKind::ContextFull:
    case ErrorKind::Unsupported:
      return exit_code::kFailure;
    case ErrorKind::Cancelled:
      return exit_code::kInterrupted;
    case ErrorKind::Io:
      return exit_code::kIoError;
    case ErrorKind::Internal:
      return exit_code::kSoftware;
  }
  return exit_code::kSoftware;  // a kind added without a code here is our bug too
}

int exit_code_for(const Error& e) {
  if (dynamic_cast<const UsageError*>(&e)) return exit_code::kUsage;
  return exit_code_for(e.kind());
}

namespace {

constexpr const char* kReportBug = "; this is a bug in Reel, please report it";

}  // namespace

std::string cli_advice(const Error& e, Mode mode) {
  switch (e.kind()) {
    case ErrorKind::ContextFull:
      return mode == Mode::kChat ? "; use <clear> to start over or a larger -c"
                                 : "; use a larger -c (context size)";
    case ErrorKind::Internal:
      return kReportBug;
    default:
      return dynamic_cast<const UsageError*>(&e) ? " (see reel --help)" : "";
  }
}

Failure failure_for(const std::exception& e, Mode mode) {
  if (const auto* error = dynamic_cast<const Error*>(&e)) {
    const std::string prefix =
        error->kind() == ErrorKind::Internal ? "reel: internal error: " : "reel: ";
    return {prefix + error->what() + cli_advice(*error, mode), exit_code_for(*error)};
  }
  if (dynamic_cast<const std::bad_alloc*>(&e)) return {"reel: out of memory", exit_code::kIoError};
  if (dynamic_cast<const std::system_error*>(&e))  // a thread or a lock the system refused
    return {std::string("reel: ") + e.what(), exit_code::kIoError};
  // Everything Reel expects to fail throws reel::Error; anything else escaped a check.
  return {std::string("reel: internal error: ") + e.what() + kReportBug, exit_code::kSoftware};
}

int report_failure(const std::exception& e, Mode mode) {
  const Failure f = failure_for(e, mode);
  std::fprintf(stderr, "%s\n", f.line.c_str());
  return f.exit_code;
}

}  // namespace reel::cli
