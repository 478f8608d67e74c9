#pragma once

#include <string>

#include "common/http/http_types.h"

namespace cxp::proxy {

// An error answered in the OpenAI envelope {"error":{"message","type","code","param"}}.
struct ApiError {
  int status = 400;
  std::string message;
  std::string type = "invalid_request_error";
  std::string code;
  std::string param;       // the request field at fault, when there is one
  bool retryable = false;  // adds "retryable": true (503 while the worker is not ready, 429)
  int retry_after_s = 0;   // adds a Retry-After header when > 0
};

http::HttpResponse render_api_error(const http::HttpRequest& request, const ApiError& error);
std::string api_error_json(const ApiError& error);

}  // namespace cxp::proxy
