#include "common/http/http_types.h"

#include <boost/beast/http/field.hpp>
#include <nlohmann/json.hpp>
#include <random>

namespace cxp::http {

namespace beast_http = boost::beast::http;

HttpResponse make_response(const HttpRequest& request, int status, std::string content_type,
                           std::string body) {
  HttpResponse response{static_cast<beast_http::status>(status), request.version()};
  response.set(beast_http::field::server, "codex-proxy");
  response.set(beast_http::field::content_type, content_type);
  response.set(beast_http::field::cache_control, "no-store");
  response.keep_alive(request.keep_alive());
  response.body() = std::move(body);
  response.prepare_payload();
  return response;
}

HttpResponse make_error(const HttpRequest& request, int status, std::string_view message,
                        std::string_view type, std::string_view code) {
  nlohmann::json body = {{"error", {{"message", message}, {"type", type}, {"code", code}}}};
  // The message may quote the request (its path): never throw on bytes that are not UTF-8.
  return make_response(request, status, "application/json",
                       body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
}

std::string request_id_for(const HttpRequest& request) {
  const auto given = request["X-Request-Id"];
  constexpr std::size_t kMaxLength = 128;
  bool sane = !given.empty() && given.size() <= kMaxLength;
  for (char c : given) {
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == ':' ||
          c == '-')) {
      sane = false;
      break;
    }
  }
  if (sane) return std::string(given);
  static thread_local std::mt19937_64 rng{std::random_device{}()};
  static constexpr char kHex[] = "0123456789abcdef";
  std::string id = "req_";
  for (int i = 0; i < 2; ++i) {
    auto bits = rng();
    for (int j = 0; j < 16; ++j, bits >>= 4) id.push_back(kHex[bits & 0xF]);
  }
  return id;
}

}  // namespace cxp::http
