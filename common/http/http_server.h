#pragma once

#include <atomic>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "common/http/http_router.h"
#include "common/telemetry/log_rate_limiter.h"

namespace cxp::http {

struct HttpServerLimits {
  std::uint64_t max_body_bytes = 1024 * 1024;
  // What the 413 names as the limit (a setting the operator can change, or a fixed bound).
  const char* body_limit_name = "PROXY_MAX_BODY_BYTES";
  std::uint32_t max_header_bytes = 16 * 1024;
  std::chrono::milliseconds read_timeout{30000};  // a whole request must arrive within this
  std::chrono::milliseconds idle_timeout{60000};  // keep-alive connection without a request
  std::chrono::milliseconds write_timeout{30000};
  std::size_t max_connections = 4096;
};

// Asynchronous HTTP/1.1 server on Boost.Beast: one session per connection (read → handle → write,
// keep-alive), a timeout on every socket operation, bounded headers and bodies, bounded
// connections. With a TLS context it serves HTTPS (the context's certificate may be replaced
// while serving: each handshake uses the one set at that moment).
class HttpServer {
 public:
  HttpServer(boost::asio::io_context& io, const HttpRouter& router, HttpServerLimits limits,
             std::shared_ptr<boost::asio::ssl::context> tls = nullptr);
  ~HttpServer();

  // Binds and listens; throws std::runtime_error naming the address on failure.
  void listen(const std::string& host, std::uint16_t port);
  std::uint16_t port() const;
  void stop();

  // What the observer hears of each answered request.
  struct ObservedRequest {
    std::string_view path;
    std::string_view method;
    int status = 0;           // 499: the client went away first
    std::string_view model;   // HttpExchange::set_model
    std::string_view caller;  // HttpExchange::set_caller
    double latency_ms = 0;
  };
  // Called once per answered request.
  using RequestObserver = std::function<void(const ObservedRequest&)>;
  void set_request_observer(RequestObserver observer) { observer_ = std::move(observer); }

 private:
  void accept();

  boost::asio::io_context& io_;
  const HttpRouter& router_;
  HttpServerLimits limits_;
  std::shared_ptr<boost::asio::ssl::context> tls_;
  boost::asio::ip::tcp::acceptor acceptor_;
  boost::asio::steady_timer accept_retry_;
  RequestObserver observer_;
  telemetry::LogRateLimiter accept_errors_{1.0, 5.0};
  std::shared_ptr<std::atomic<std::size_t>> open_sessions_ =
      std::make_shared<std::atomic<std::size_t>>(0);
};

}  // namespace cxp::http
