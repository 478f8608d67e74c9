#include "proxy/http/http_server.h"

#include <boost/asio/ip/address.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <stdexcept>

#include "common/telemetry/json_log.h"

namespace cxp::proxy {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

namespace {
constexpr std::chrono::seconds kLingerTime{2};
constexpr std::size_t kLingerMaxBytes = 16 * 1024 * 1024;
constexpr std::chrono::milliseconds kAcceptRetryDelay{50};
}  // namespace

class HttpServer::Session : public std::enable_shared_from_this<HttpServer::Session> {
 public:
  Session(tcp::socket socket, const HttpRouter& router, const HttpServerLimits& limits,
          std::shared_ptr<std::atomic<std::size_t>> open_sessions)
      : stream_(std::move(socket)),
        router_(router),
        limits_(limits),
        open_sessions_(std::move(open_sessions)) {
    ++*open_sessions_;
  }
  ~Session() { --*open_sessions_; }

  void start() { read(limits_.idle_timeout); }

 private:
  void read(std::chrono::milliseconds timeout) {
    parser_.emplace();
    parser_->body_limit(limits_.max_body_bytes);
    parser_->header_limit(limits_.max_header_bytes);
    // Headers may take up to `timeout` (the keep-alive idle time); the body must then arrive
    // within the read timeout. Every operation of the stream is bounded.
    stream_.expires_after(timeout);
    http::async_read_header(
        stream_, buffer_, *parser_, [self = shared_from_this()](beast::error_code ec, std::size_t) {
          if (ec) return self->on_read(ec);
          self->stream_.expires_after(self->limits_.read_timeout);
          http::async_read(self->stream_, self->buffer_, *self->parser_,
                           [self](beast::error_code ec, std::size_t) { self->on_read(ec); });
        });
  }

  void on_read(beast::error_code ec) {
    if (ec == http::error::end_of_stream || ec == beast::error::timeout ||
        ec == asio::error::connection_reset || ec == asio::error::operation_aborted) {
      return close();
    }
    if (ec == http::error::body_limit) {
      HttpRequest header_only;
      header_only.version(11);
      header_only.keep_alive(false);
      linger_ = true;
      return write(make_error(header_only, 413,
                              "request body exceeds PROXY_MAX_BODY_BYTES (" +
                                  std::to_string(limits_.max_body_bytes) + " bytes)",
                              "invalid_request_error", "request_too_large"),
                   "");
    }
    if (ec) {
      HttpRequest header_only;
      header_only.version(11);
      header_only.keep_alive(false);
      const bool header_too_big = ec == http::error::header_limit;
      linger_ = true;
      return write(make_error(header_only, header_too_big ? 431 : 400,
                              "malformed HTTP request: " + ec.message(), "invalid_request_error",
                              header_too_big ? "headers_too_large" : "bad_request"),
                   "");
    }
    HttpRequest request = parser_->release();
    const std::string request_id = request_id_for(request);
    HttpResponse response;
    try {
      response = router_.handle(request);
    } catch (const std::exception& e) {
      telemetry::JsonLog("http").error("handler_failed",
                                       {{"request_id", request_id},
                                        {"route", std::string(target_path(request.target()))},
                                        {"message", e.what()}});
      response =
          make_error(request, 500, "internal error; see the proxy log for request " + request_id,
                     "server_error", "internal_error");
    }
    write(std::move(response), request_id);
  }

  void write(HttpResponse response, const std::string& request_id) {
    response.set("X-Request-Id", request_id.empty() ? request_id_for(HttpRequest{}) : request_id);
    response_ = std::make_unique<HttpResponse>(std::move(response));
    stream_.expires_after(limits_.write_timeout);
    http::async_write(stream_, *response_,
                      [self = shared_from_this()](beast::error_code ec, std::size_t) {
                        const bool keep_alive = self->response_->keep_alive();
                        self->response_.reset();
                        if (!ec && self->linger_) return self->linger_close();
                        if (ec || !keep_alive) return self->close();
                        self->read(self->limits_.idle_timeout);
                      });
  }

  // After refusing a request whose body is still arriving, stop sending and drain (bounded in time
  // and bytes) what the client sends, so that it can read our answer instead of a reset.
  void linger_close() {
    beast::error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
    stream_.expires_after(kLingerTime);
    drain();
  }

  void drain() {
    stream_.async_read_some(asio::buffer(drain_buffer_),
                            [self = shared_from_this()](beast::error_code ec, std::size_t n) {
                              self->drained_ += n;
                              if (ec || self->drained_ > kLingerMaxBytes) return self->close();
                              self->drain();
                            });
  }

  void close() {
    beast::error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_both, ignored);
    stream_.close();
  }

  beast::tcp_stream stream_;
  const HttpRouter& router_;
  const HttpServerLimits& limits_;
  std::shared_ptr<std::atomic<std::size_t>> open_sessions_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  std::unique_ptr<HttpResponse> response_;
  bool linger_ = false;
  std::size_t drained_ = 0;
  std::array<char, 16 * 1024> drain_buffer_{};
};

HttpServer::HttpServer(asio::io_context& io, const HttpRouter& router, HttpServerLimits limits)
    : io_(io), router_(router), limits_(limits), acceptor_(io), accept_retry_(io) {}

HttpServer::~HttpServer() {
  stop();
}

void HttpServer::listen(const std::string& host, std::uint16_t port) {
  beast::error_code ec;
  const auto address = asio::ip::make_address(host, ec);
  if (ec) throw std::runtime_error("PROXY_HOST: expected an IP address, found '" + host + "'");
  const tcp::endpoint endpoint{address, port};
  acceptor_.open(endpoint.protocol());
  acceptor_.set_option(asio::socket_base::reuse_address(true));
  acceptor_.bind(endpoint, ec);
  if (ec) {
    throw std::runtime_error("cannot listen on " + host + ":" + std::to_string(port) + ": " +
                             ec.message());
  }
  acceptor_.listen(asio::socket_base::max_listen_connections);
  accept();
}

std::uint16_t HttpServer::port() const {
  return acceptor_.local_endpoint().port();
}

void HttpServer::stop() {
  beast::error_code ignored;
  acceptor_.close(ignored);
  accept_retry_.cancel();
}

void HttpServer::accept() {
  acceptor_.async_accept(asio::make_strand(io_), [this](beast::error_code ec, tcp::socket socket) {
    if (ec == asio::error::operation_aborted || !acceptor_.is_open()) return;
    if (ec) {
      // E.g. EMFILE: retrying at once would spin; pause so that sessions can finish and free fds.
      if (accept_errors_.allow(std::chrono::steady_clock::now())) {
        telemetry::JsonLog("http").warn("accept_failed", {{"message", ec.message()}});
      }
      accept_retry_.expires_after(kAcceptRetryDelay);
      accept_retry_.async_wait([this](beast::error_code wait_ec) {
        if (!wait_ec) accept();
      });
      return;
    }
    if (*open_sessions_ >= limits_.max_connections) {
      beast::error_code ignored;
      socket.close(ignored);  // shed load: a bounded number of connections
    } else {
      std::make_shared<Session>(std::move(socket), router_, limits_, open_sessions_)->start();
    }
    accept();
  });
}

}  // namespace cxp::proxy
