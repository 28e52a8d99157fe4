#include "common/error.h"

#include <cerrno>

namespace reel {

const char* error_kind_name(ErrorKind kind) {
  switch (kind) {
    case ErrorKind::InvalidInput: return "invalid_input";
    case ErrorKind::ContextFull: return "context_full";
    case ErrorKind::Unsupported: return "unsupported";
    case ErrorKind::Cancelled: return "cancelled";
    case ErrorKind::Io: return "io";
    case ErrorKind::Internal: return "internal";
  }
  return "internal";
}

void throw_error(ErrorKind kind, const std::string& message) {
  switch (kind) {
    case ErrorKind::InvalidInput: throw Error(message);
    case ErrorKind::ContextFull: throw ContextFull(message);
    case ErrorKind::Unsupported: throw Unsupported(message);
    case ErrorKind::Cancelled: throw Cancelled(message);
    case ErrorKind::Io: throw IoError(message);
    case ErrorKind::Internal: throw InternalError(message);
  }
  throw InternalError(message);
}

ErrorKind error_kind_for_errno(int err) {
  switch (err) {
    case ENOENT:
    case EACCES:
    case EPERM:
    case ELOOP:
    case ENOTDIR:
    case EISDIR:
    case ENAMETOOLONG:
    case ENXIO:  // a FIFO without a reader, a device that is not there: the path's fault
    case EROFS:
    case ETXTBSY:
    case EEXIST:
      return ErrorKind::InvalidInput;
    default:
      return ErrorKind::Io;
  }
}

}  // namespace reel
