#pragma once

#include <nlohmann/json.hpp>

#include "proxy/api/api_error.h"

namespace cxp::proxy {

// The answer to a turn the model provider failed (the worker's `error` notification or the failed
// turn's `error`: {message, codexErrorInfo, additionalDetails}): 502 `model_error` whose message
// carries the provider's reason. Retryable unless the provider refused the request itself
// (unauthorized, bad request, unknown model, context window, policy; HTTP 400/401/403/404/422).
// The caller redacts the message. Pure.
ApiError model_failure(const nlohmann::json& turn_error);

// A short name of the failure kind for logs: the codexErrorInfo string, or its object's key
// (e.g. "httpConnectionFailed"), or "unknown".
std::string model_failure_kind(const nlohmann::json& turn_error);

}  // namespace cxp::proxy
