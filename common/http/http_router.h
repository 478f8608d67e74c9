#pragma once

#include <functional>
#include <map>
#include <string>
#include <string_view>

#include "common/http/http_exchange.h"
#include "common/http/http_types.h"

namespace cxp::http {

// Exact-path routing. Unknown paths answer 404, known paths with another method 405 (with Allow);
// both in the OpenAI error envelope.
class HttpRouter {
 public:
  using Handler = std::function<void(const ExchangePtr&)>;
  using SimpleHandler = std::function<HttpResponse(const HttpRequest&)>;

  void add(boost::beast::http::verb method, std::string path, Handler handler);
  // A handler that answers at once with a complete response.
  void add_simple(boost::beast::http::verb method, std::string path, SimpleHandler handler);
  void dispatch(const ExchangePtr& exchange) const;

 private:
  std::map<std::string, std::map<boost::beast::http::verb, Handler>, std::less<>> routes_;
};

// The path of a request target without its query string.
std::string_view target_path(std::string_view target);
// True when the query string has `name` as a key (e.g. "?verbose" or "?verbose=1").
bool has_query_flag(std::string_view target, std::string_view name);

}  // namespace cxp::http
