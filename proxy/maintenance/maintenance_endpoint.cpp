#include "proxy/maintenance/maintenance_endpoint.h"

#include <boost/beast/http/field.hpp>
#include <nlohmann/json.hpp>

#include "common/http/bearer_gate.h"
#include "proxy/api/api_error.h"

namespace cxp::proxy {

namespace beast_http = boost::beast::http;
using nlohmann::json;

namespace {

ApiError error(int status, std::string code, std::string message, std::string param = "") {
  ApiError e;
  e.status = status;
  e.code = std::move(code);
  e.message = std::move(message);
  e.param = std::move(param);
  return e;
}

http::HttpResponse state_response(const http::HttpRequest& request, const MaintenanceState& state) {
  return http::make_response(
      request, 200, "application/json",
      json{{"enabled", state.enabled}, {"retry_after_s", state.retry_after_s}}.dump());
}

}  // namespace

void register_maintenance_endpoint(http::HttpRouter& router, MaintenanceSwitch& maintenance,
                                   std::function<std::vector<std::string>()> admin_tokens) {
  auto handle = [&maintenance, admin_tokens = std::move(admin_tokens)](
                    const http::HttpRequest& request) -> http::HttpResponse {
    const auto admin_token = admin_tokens();
    if (admin_token.empty()) {
      return render_api_error(
          request,
          error(404, "not_found",
                "no route for /internal/maintenance (set PROXY_ADMIN_TOKEN to enable it)"));
    }
    if (auto refusal = http::refuse_without_bearer(request, admin_token, "PROXY_ADMIN_TOKEN"))
      return *refusal;
    if (request.method() == beast_http::verb::get)
      return state_response(request, maintenance.state());
    const json body = json::parse(request.body(), nullptr, false);
    if (!body.is_object())
      return render_api_error(request,
                              error(400, "invalid_request_error", "body must be a JSON object"));
    const auto enabled = body.find("enabled");
    if (enabled == body.end() || !enabled->is_boolean()) {
      return render_api_error(
          request, error(400, "invalid_request_error", "enabled: expected a boolean", "enabled"));
    }
    MaintenanceState next = maintenance.state();
    next.enabled = enabled->get<bool>();
    if (const auto retry = body.find("retry_after_s"); retry != body.end() && !retry->is_null()) {
      if (!retry->is_number_integer() || retry->get<std::int64_t>() < 0 ||
          retry->get<std::int64_t>() > 86400) {
        return render_api_error(
            request,
            error(400, "invalid_request_error",
                  "retry_after_s: expected an integer between 0 and 86400", "retry_after_s"));
      }
      next.retry_after_s = static_cast<int>(retry->get<std::int64_t>());
    }
    maintenance.set(next, "admin_api");
    return state_response(request, maintenance.state());
  };
  router.add_simple(beast_http::verb::get, "/internal/maintenance", handle);
  router.add_simple(beast_http::verb::post, "/internal/maintenance", handle);
}

}  // namespace cxp::proxy
