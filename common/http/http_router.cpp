#include "common/http/http_router.h"

namespace cxp::http {

namespace beast_http = boost::beast::http;

std::string_view target_path(std::string_view target) {
  return target.substr(0, target.find('?'));
}

bool has_query_flag(std::string_view target, std::string_view name) {
  const auto q = target.find('?');
  if (q == std::string_view::npos) return false;
  std::string_view query = target.substr(q + 1);
  while (!query.empty()) {
    const auto amp = query.find('&');
    const auto pair = query.substr(0, amp);
    if (pair.substr(0, pair.find('=')) == name) return true;
    if (amp == std::string_view::npos) break;
    query.remove_prefix(amp + 1);
  }
  return false;
}

void HttpRouter::add(beast_http::verb method, std::string path, Handler handler) {
  routes_[std::move(path)][method] = std::move(handler);
}

void HttpRouter::add_simple(beast_http::verb method, std::string path, SimpleHandler handler) {
  add(method, std::move(path), [handler = std::move(handler)](const ExchangePtr& exchange) {
    exchange->respond(handler(exchange->request()));
  });
}

void HttpRouter::dispatch(const ExchangePtr& exchange) const {
  const auto& request = exchange->request();
  const auto path = target_path(request.target());
  const auto route = routes_.find(path);
  if (route == routes_.end()) {
    return exchange->respond(make_error(request, 404, "no route for " + std::string(path),
                                        "invalid_request_error", "not_found"));
  }
  const auto handler = route->second.find(request.method());
  if (handler == route->second.end()) {
    std::string allow;
    for (const auto& [verb, unused] : route->second) {
      allow += (allow.empty() ? "" : ", ") + std::string(beast_http::to_string(verb));
    }
    auto response =
        make_error(request, 405,
                   "method " + std::string(request.method_string()) + " is not allowed on " +
                       std::string(path) + "; allowed: " + allow,
                   "invalid_request_error", "method_not_allowed");
    response.set(beast_http::field::allow, allow);
    return exchange->respond(std::move(response));
  }
  handler->second(exchange);
}

}  // namespace cxp::http
