#include "proxy/api/api_error.h"

#include <nlohmann/json.hpp>

namespace cxp::proxy {

std::string api_error_json(const ApiError& error) {
  nlohmann::json body = {
      {"message", error.message},
      {"type", error.type},
      {"code", error.code.empty() ? nlohmann::json(nullptr) : nlohmann::json(error.code)},
      {"param", error.param.empty() ? nlohmann::json(nullptr) : nlohmann::json(error.param)}};
  if (error.retryable) body["retryable"] = true;
  // Messages quote client and worker text, possibly cut inside a UTF-8 sequence: never throw.
  return nlohmann::json{{"error", body}}.dump(-1, ' ', false,
                                              nlohmann::json::error_handler_t::replace);
}

http::HttpResponse render_api_error(const http::HttpRequest& request, const ApiError& error) {
  auto response =
      http::make_response(request, error.status, "application/json", api_error_json(error));
  if (error.retry_after_s > 0) response.set("Retry-After", std::to_string(error.retry_after_s));
  return response;
}

}  // namespace cxp::proxy
