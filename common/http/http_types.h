#pragma once

#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>
#include <string>
#include <string_view>

namespace cxp::http {

using HttpRequest = boost::beast::http::request<boost::beast::http::string_body>;
using HttpResponse = boost::beast::http::response<boost::beast::http::string_body>;

// A response with a body and content type, for the request's HTTP version and keep-alive.
HttpResponse make_response(const HttpRequest& request, int status, std::string content_type,
                           std::string body);
// The OpenAI error envelope {"error":{"message","type","code"}}.
HttpResponse make_error(const HttpRequest& request, int status, std::string_view message,
                        std::string_view type, std::string_view code);

// The request id to use: the client's X-Request-Id when it is sane (1-128 characters of
// [A-Za-z0-9._:-]), a fresh random one otherwise.
std::string request_id_for(const HttpRequest& request);

}  // namespace cxp::http
