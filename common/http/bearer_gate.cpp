#include "common/http/bearer_gate.h"

#include <boost/beast/http/field.hpp>
#include <string>

#include "common/secure_compare.h"

namespace cxp::http {

std::optional<HttpResponse> refuse_without_bearer(const HttpRequest& request,
                                                  std::string_view token,
                                                  std::string_view setting) {
  return refuse_without_bearer(request, std::vector<std::string>{std::string(token)}, setting);
}

std::optional<HttpResponse> refuse_without_bearer(const HttpRequest& request,
                                                  const std::vector<std::string>& tokens,
                                                  std::string_view setting) {
  const auto authorization = request[boost::beast::http::field::authorization];
  if (authorization.empty()) {
    return make_error(request, 401, "missing bearer token (" + std::string(setting) + " is set)",
                      "invalid_request_error", "unauthorized");
  }
  bool matched = false;
  // Every token is compared (no early exit): the time says nothing of which one matched.
  for (const auto& token : tokens) matched = bearer_matches(authorization, token) || matched;
  if (!matched) {
    return make_error(request, 403, "wrong bearer token (" + std::string(setting) + ")",
                      "invalid_request_error", "forbidden");
  }
  return std::nullopt;
}

}  // namespace cxp::http
