#pragma once

#include <nlohmann/json.hpp>
#include <string>

namespace cxp::kube {

// What went wrong with an API call, by the cases callers handle differently.
enum class ErrorKind {
  kNone,
  kTransport,  // no answer: connection refused/reset, TLS failure, cancelled
  kTimeout,    // no answer within the request timeout
  kBadRequest,
  kUnauthorized,
  kForbidden,
  kNotFound,
  kConflict,  // 409: resourceVersion conflict or AlreadyExists
  kGone,      // 410: the resourceVersion is too old (relist)
  kInvalid,   // 422: rejected by validation (schema, CEL, admission)
  kTooManyRequests,
  kServer,  // 5xx
  kOther,
};

// The result of one API call: the decoded object on success, the typed error otherwise.
struct ApiResult {
  int status = 0;  // HTTP status; 0 when no answer arrived
  ErrorKind error = ErrorKind::kNone;
  std::string reason;   // metav1.Status reason, e.g. "AlreadyExists", or a transport error
  std::string message;  // metav1.Status message (what the API server said)
  nlohmann::json object;

  bool ok() const { return error == ErrorKind::kNone; }
  // Worth retrying later with backoff (transport trouble, timeouts, 409, 429, 5xx).
  bool retryable() const;
  // "PATCH /apis/x: 403 Forbidden: <message>", for logs, Events and conditions.
  std::string describe() const;
  std::string request;  // "METHOD path", filled by the client
};

ErrorKind error_kind_for_status(int status);
const char* to_string(ErrorKind kind);

}  // namespace cxp::kube
