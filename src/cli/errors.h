// How the `reel` CLI answers a failure: an exit code per error kind, and the advice that names
// its own flags and chat commands (the library's messages name none, common/error.h).
#pragma once

#include <exception>
#include <string>

#include "common/error.h"

namespace reel::cli {

// Exit codes; 70 and 74 are sysexits.h's EX_SOFTWARE and EX_IOERR.
namespace exit_code {
constexpr int kFailure = 1;        // the request could not be served (bad input, no room, ...)
constexpr int kUsage = 2;          // bad flags or arguments
constexpr int kSoftware = 70;      // a bug in Reel
constexpr int kIoError = 74;       // the system failed: a read, a write, memory
constexpr int kInterrupted = 130;  // 128 + SIGINT: Ctrl-C
}  // namespace exit_code

// A wrong command line found outside CLI11's parser (the original app's positional form): exit
// code 2 and "(see reel --help)", like the parser's own usage errors.
class UsageError : public Error {
 public:
  using Error::Error;
};

// Where the failure happened: a one-shot question (-p/-f, the tools) or a turn of a chat,
// whose advice may name chat commands.
enum class Mode { kOneShot, kChat };

// InvalidInput, ContextFull, Unsupported: 1; Io: 74; Internal: 70; Cancelled: 130; a UsageError: 2.
int exit_code_for(ErrorKind kind);
int exit_code_for(const Error& e);

// What the CLI adds after the message, starting with "; ", or "" when nothing helps: a larger
// -c (or <clear> in a chat) for a full context, a request to report an internal error.
std::string cli_advice(const Error& e, Mode mode);

// A failure as the CLI prints it: one line "reel: <message><advice>" (no newline) and the exit
// code. Besides reel::Error: std::bad_alloc is out of memory and std::system_error a failed
// system call (both 74); any other exception is a bug in Reel (70).
struct Failure {
  std::string line;
  int exit_code;
};
Failure failure_for(const std::exception& e, Mode mode);

// Prints failure_for(e, mode).line on stderr and returns its exit code.
int report_failure(const std::exception& e, Mode mode);

}  // namespace reel::cli
