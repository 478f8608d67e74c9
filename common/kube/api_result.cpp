#include "common/kube/api_result.h"

namespace cxp::kube {

bool ApiResult::retryable() const {
  switch (error) {
    case ErrorKind::kTransport:
    case ErrorKind::kTimeout:
    case ErrorKind::kConflict:
    case ErrorKind::kTooManyRequests:
    case ErrorKind::kServer:
      return true;
    default:
      return false;
  }
}

std::string ApiResult::describe() const {
  std::string out = request.empty() ? "" : request + ": ";
  out += status == 0 ? std::string(to_string(error)) : std::to_string(status) + " " + reason;
  if (!message.empty()) out += ": " + message;
  return out;
}

ErrorKind error_kind_for_status(int status) {
  if (status >= 200 && status < 300) return ErrorKind::kNone;
  switch (status) {
    case 400:
      return ErrorKind::kBadRequest;
    case 401:
      return ErrorKind::kUnauthorized;
    case 403:
      return ErrorKind::kForbidden;
    case 404:
      return ErrorKind::kNotFound;
    case 409:
      return ErrorKind::kConflict;
    case 410:
      return ErrorKind::kGone;
    case 422:
      return ErrorKind::kInvalid;
    case 429:
      return ErrorKind::kTooManyRequests;
    default:
      return status >= 500 ? ErrorKind::kServer : ErrorKind::kOther;
  }
}

const char* to_string(ErrorKind kind) {
  switch (kind) {
    case ErrorKind::kNone:
      return "ok";
    case ErrorKind::kTransport:
      return "transport error";
    case ErrorKind::kTimeout:
      return "timeout";
    case ErrorKind::kBadRequest:
      return "BadRequest";
    case ErrorKind::kUnauthorized:
      return "Unauthorized";
    case ErrorKind::kForbidden:
      return "Forbidden";
    case ErrorKind::kNotFound:
      return "NotFound";
    case ErrorKind::kConflict:
      return "Conflict";
    case ErrorKind::kGone:
      return "Gone";
    case ErrorKind::kInvalid:
      return "Invalid";
    case ErrorKind::kTooManyRequests:
      return "TooManyRequests";
    case ErrorKind::kServer:
      return "ServerError";
    case ErrorKind::kOther:
      return "Error";
  }
  return "Error";
}

}  // namespace cxp::kube
