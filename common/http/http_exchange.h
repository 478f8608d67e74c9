#pragma once

#include <functional>
#include <memory>
#include <string>

#include "common/http/http_types.h"

namespace cxp::http {

// One request and its response, handed to a route handler. A handler answers at once or later
// (from any callback on the io_context): either one complete `respond`, or `start_stream` followed
// by `send` calls and one `end_stream` (chunked transfer encoding, e.g. server-sent events).
// Calls after the response finished, or after the client went away, are ignored.
class HttpExchange {
 public:
  virtual ~HttpExchange() = default;

  virtual const HttpRequest& request() const = 0;
  virtual const std::string& request_id() const = 0;

  virtual void respond(HttpResponse response) = 0;
  virtual void start_stream(HttpResponse head) = 0;  // head's body is ignored
  virtual void send(std::string bytes) = 0;
  virtual void end_stream() = 0;

  // Each registered callback runs once if the client disconnects before the response finished.
  virtual void on_client_gone(std::function<void()> callback) = 0;
  virtual bool client_gone() const = 0;

  // The model this request asked for, for the request metrics ("" when none applies).
  virtual void set_model(std::string model) = 0;
  // Who asked (an API key's name), for the request metrics ("" when nobody was identified).
  virtual void set_caller(std::string caller) = 0;
  // A header every response of this request carries, whichever way it is answered (a complete
  // response, a stream's head, an error).
  virtual void add_header(std::string name, std::string value) = 0;
};

using ExchangePtr = std::shared_ptr<HttpExchange>;

}  // namespace cxp::http
