#include "common/http/http_server.h"

#include <boost/asio/ip/address.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <deque>
#include <sstream>
#include <stdexcept>
#include <type_traits>

#include "common/telemetry/json_log.h"

namespace cxp::http {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace beast_http = beast::http;
using tcp = asio::ip::tcp;

namespace {
// After a refused request, read and discard what the client still sends for at most this long or
// this many bytes (more than the largest body a client may send, 16 MiB by default, so that a
// client just over the limit reads our 413 instead of a reset).
constexpr std::chrono::seconds kLingerTime{2};
constexpr std::size_t kLingerMaxBytes = 64 * 1024 * 1024;
constexpr std::chrono::milliseconds kAcceptRetryDelay{50};
constexpr std::chrono::seconds kTlsHandshakeTimeout{10};
constexpr std::chrono::seconds kTlsShutdownTimeout{1};

using TlsStream = beast::ssl_stream<beast::tcp_stream>;
using RequestObserver = HttpServer::RequestObserver;

// One connection: read a request → hand an exchange to the router → write the response (complete,
// or streamed in chunks) → read the next request (keep-alive). While a response is pending, a read
// on the socket watches for the client going away (plain TCP only: under TLS a watching read
// would have to be cancelled mid-record, which leaves the TLS stream unusable, so a TLS session
// learns of a departed client from its failing write).
template <class Stream>
class Session : public std::enable_shared_from_this<Session<Stream>> {
  static constexpr bool kTls = std::is_same_v<Stream, TlsStream>;

 public:
  Session(tcp::socket socket, asio::ssl::context* tls, const HttpRouter& router,
          const HttpServerLimits& limits, std::shared_ptr<std::atomic<std::size_t>> open_sessions,
          const RequestObserver& observer)
      : stream_(make_stream(std::move(socket), tls)),
        router_(router),
        limits_(limits),
        open_sessions_(std::move(open_sessions)),
        observer_(observer) {
    ++*open_sessions_;
  }
  ~Session() { --*open_sessions_; }

  void start() {
    if constexpr (kTls) {
      lowest().expires_after(kTlsHandshakeTimeout);
      stream_.async_handshake(asio::ssl::stream_base::server,
                              [self = this->shared_from_this()](beast::error_code ec) {
                                if (ec) return self->lowest().close();  // not TLS, or timed out
                                self->read();
                              });
    } else {
      read();
    }
  }

  // --- the exchange of the current request (see Exchange below) ---------------------------------
  void respond(std::uint64_t seq, HttpResponse response) {
    if (!current(seq) || started_) return;
    started_ = true;
    status_ = static_cast<int>(response.result_int());
    response.set("X-Request-Id", request_id_);
    for (const auto& [name, value] : extra_headers_) response.set(name, value);
    keep_alive_ = response.keep_alive() && !client_gone_;
    response_ = std::make_unique<HttpResponse>(std::move(response));
    lowest().expires_after(limits_.write_timeout);
    beast_http::async_write(stream_, *response_,
                            [self = this->shared_from_this()](beast::error_code ec, std::size_t) {
                              self->response_.reset();
                              self->finish(!ec);
                            });
  }

  void start_stream(std::uint64_t seq, HttpResponse head) {
    if (!current(seq) || started_) return;
    started_ = true;
    streaming_ = true;
    status_ = static_cast<int>(head.result_int());
    beast_http::response<beast_http::empty_body> header{head.result(), head.version()};
    for (const auto& field : head.base()) header.set(field.name_string(), field.value());
    header.set("X-Request-Id", request_id_);
    for (const auto& [name, value] : extra_headers_) header.set(name, value);
    header.chunked(true);
    header.keep_alive(head.keep_alive());
    keep_alive_ = head.keep_alive();
    std::ostringstream out;
    out << header.base();
    queue_write(out.str());
  }

  void send(std::uint64_t seq, std::string_view bytes) {
    if (!current(seq) || !streaming_ || stream_ended_ || bytes.empty()) return;
    char size[20];
    std::snprintf(size, sizeof size, "%zx\r\n", bytes.size());
    std::string chunk = size;
    chunk.append(bytes);
    chunk.append("\r\n");
    queue_write(std::move(chunk));
  }

  void end_stream(std::uint64_t seq) {
    if (!current(seq) || !streaming_ || stream_ended_) return;
    stream_ended_ = true;
    queue_write("0\r\n\r\n");
  }

  void on_client_gone(std::uint64_t seq, std::function<void()> callback) {
    if (!current(seq)) return;
    if (client_gone_) {
      asio::post(stream_.get_executor(), std::move(callback));
      return;
    }
    gone_callbacks_.push_back(std::move(callback));
  }

  bool client_gone(std::uint64_t seq) const { return !current(seq) || client_gone_; }
  void set_model(std::uint64_t seq, std::string model) {
    if (current(seq)) model_ = std::move(model);
  }
  void set_caller(std::uint64_t seq, std::string caller) {
    if (current(seq)) caller_ = std::move(caller);
  }
  void add_header(std::uint64_t seq, std::string name, std::string value) {
    if (current(seq) && !started_) extra_headers_.emplace_back(std::move(name), std::move(value));
  }
  const HttpRequest& request() const { return request_; }
  const std::string& request_id() const { return request_id_; }

 private:
  class Exchange;

  bool current(std::uint64_t seq) const { return seq == seq_ && !finished_; }
  ExchangePtr make_exchange();

  void read() {
    parser_.emplace();
    parser_->body_limit(limits_.max_body_bytes);
    parser_->header_limit(limits_.max_header_bytes);
    // Headers may take up to the keep-alive idle time; the body must then arrive within the read
    // timeout. Every operation of the stream is bounded.
    lowest().expires_after(limits_.idle_timeout);
    beast_http::async_read_header(
        stream_, buffer_, *parser_,
        [self = this->shared_from_this()](beast::error_code ec, std::size_t) {
          if (ec) return self->on_read(ec);
          self->lowest().expires_after(self->limits_.read_timeout);
          beast_http::async_read(self->stream_, self->buffer_, *self->parser_,
                                 [self](beast::error_code ec, std::size_t) { self->on_read(ec); });
        });
  }

  void on_read(beast::error_code ec) {
    if (ec == beast_http::error::end_of_stream || ec == beast::error::timeout ||
        ec == asio::error::connection_reset || ec == asio::error::operation_aborted ||
        ec == asio::ssl::error::stream_truncated || ec == asio::error::eof) {
      return close();
    }
    if (ec) return refuse(ec);
    ++seq_;
    finished_ = started_ = streaming_ = stream_ended_ = client_gone_ = false;
    gone_callbacks_.clear();
    model_.clear();
    caller_.clear();
    extra_headers_.clear();
    status_ = 0;
    received_at_ = std::chrono::steady_clock::now();
    request_ = parser_->release();
    request_id_ = request_id_for(request_);
    lowest().expires_never();
    watch_client();
    try {
      router_.dispatch(make_exchange());
    } catch (const std::exception& e) {
      telemetry::JsonLog("http").error("handler_failed",
                                       {{"request_id", request_id_},
                                        {"route", std::string(target_path(request_.target()))},
                                        {"message", e.what()}});
      respond(seq_, make_error(request_, 500,
                               "internal error; see the proxy log for request " + request_id_,
                               "server_error", "internal_error"));
    }
  }

  // A request that could not be read: answer 413/431/400 and close after a lingering drain.
  void refuse(beast::error_code ec) {
    HttpRequest header_only;
    header_only.version(11);
    header_only.keep_alive(false);
    ++seq_;
    finished_ = started_ = streaming_ = stream_ended_ = client_gone_ = false;
    request_ = header_only;
    request_id_ = request_id_for(header_only);
    model_.clear();
    caller_.clear();
    extra_headers_.clear();
    received_at_ = std::chrono::steady_clock::now();
    linger_ = true;
    if (ec == beast_http::error::body_limit) {
      return respond(
          seq_, make_error(header_only, 413,
                           std::string("request body exceeds ") + limits_.body_limit_name + " (" +
                               std::to_string(limits_.max_body_bytes) + " bytes)",
                           "invalid_request_error", "request_too_large"));
    }
    const bool header_too_big = ec == beast_http::error::header_limit;
    respond(seq_, make_error(header_only, header_too_big ? 431 : 400,
                             "malformed HTTP request: " + ec.message(), "invalid_request_error",
                             header_too_big ? "headers_too_large" : "bad_request"));
  }

  // The client closed or reset the connection while its response was pending: tell whoever
  // produces it (once), so that it stops (a turn is interrupted, its worker slot freed).
  void client_went_away() {
    if (client_gone_) return;
    client_gone_ = true;
    auto callbacks = std::move(gone_callbacks_);
    gone_callbacks_.clear();
    for (auto& callback : callbacks) callback();
  }

  // While a response is pending, a read tells us when the client goes away. Bytes that arrive
  // (a pipelined request) stay in the buffer for the next read.
  void watch_client() {
    if constexpr (kTls) return;
    watching_ = true;
    lowest().socket().async_read_some(
        buffer_.prepare(4096),
        [self = this->shared_from_this(), seq = seq_](beast::error_code ec, std::size_t n) {
          self->watching_ = false;
          if (!ec) {
            self->buffer_.commit(n);
            if (self->current(seq) && self->buffer_.size() < 64 * 1024) return self->watch_client();
            if (self->current(seq)) return;  // too much pipelined data: stop reading until done
          }
          // An error other than our own cancel: the client closed or reset the connection.
          const bool peer_gone = ec && ec != asio::error::operation_aborted;
          if (peer_gone && self->current(seq)) self->client_went_away();
          if (self->resume_after_watch_) {
            self->resume_after_watch_ = false;
            // The end of the stream may have been read here after the response was written
            // (our cancel came too late). Reading again would wait for a readiness edge that
            // never comes (the reactor is edge-triggered) and hold the socket in CLOSE_WAIT
            // until the idle timeout.
            if (peer_gone) return self->close();
            self->next_request();
          }
        });
  }

  void queue_write(std::string bytes) {
    out_.push_back(std::move(bytes));
    if (!writing_) write_next();
  }

  void write_next() {
    if (out_.empty()) {
      writing_ = false;
      if (stream_ended_) finish(true);
      return;
    }
    writing_ = true;
    lowest().expires_after(limits_.write_timeout);
    asio::async_write(stream_, asio::buffer(out_.front()),
                      [self = this->shared_from_this()](beast::error_code ec, std::size_t) {
                        self->out_.pop_front();
                        if (ec) {
                          // The client reset the connection (or stopped reading): whoever
                          // produces the response must hear it, as when the watch sees it.
                          self->out_.clear();
                          self->writing_ = false;
                          if (!self->finished_) self->client_went_away();
                          return self->finish(false);
                        }
                        self->write_next();
                      });
  }

  // The response is complete (or failed): stop watching, then read the next request or close.
  void finish(bool ok) {
    if (finished_) return;
    finished_ = true;
    if (observer_ && status_ > 0) {
      const std::chrono::duration<double, std::milli> took =
          std::chrono::steady_clock::now() - received_at_;
      observer_({target_path(request_.target()), request_.method_string(),
                 client_gone_ ? 499 : status_, model_, caller_, took.count()});
    }
    gone_callbacks_.clear();
    if (!ok) {
      keep_alive_ = false;
    }
    if (linger_ && ok) return linger_close();
    if (!keep_alive_ || client_gone_) return close();
    if (watching_) {
      resume_after_watch_ = true;
      beast::error_code ignored;
      lowest().socket().cancel(ignored);
      return;
    }
    next_request();
  }

  void next_request() { read(); }

  // After refusing a request whose body is still arriving, stop sending and drain (bounded in time
  // and bytes) what the client sends, so that it can read our answer instead of a reset.
  void linger_close() {
    if constexpr (kTls) return close();
    beast::error_code ignored;
    lowest().socket().shutdown(tcp::socket::shutdown_send, ignored);
    lowest().expires_after(kLingerTime);
    drain();
  }

  void drain() {
    stream_.async_read_some(asio::buffer(drain_buffer_),
                            [self = this->shared_from_this()](beast::error_code ec, std::size_t n) {
                              self->drained_ += n;
                              if (ec || self->drained_ > kLingerMaxBytes) return self->close();
                              self->drain();
                            });
  }

  void close() {
    if constexpr (kTls) {
      if (!tls_closing_) {
        // close_notify first (bounded), so that the client sees a clean end of the stream.
        tls_closing_ = true;
        lowest().expires_after(kTlsShutdownTimeout);
        stream_.async_shutdown(
            [self = this->shared_from_this()](beast::error_code) { self->lowest().close(); });
        return;
      }
    }
    beast::error_code ignored;
    lowest().socket().shutdown(tcp::socket::shutdown_both, ignored);
    lowest().close();
  }

  static Stream make_stream(tcp::socket socket, asio::ssl::context* tls) {
    if constexpr (kTls) {
      return Stream(std::move(socket), *tls);
    } else {
      return Stream(std::move(socket));
    }
  }
  beast::tcp_stream& lowest() { return beast::get_lowest_layer(stream_); }

  Stream stream_;
  bool tls_closing_ = false;
  const HttpRouter& router_;
  const HttpServerLimits& limits_;
  std::shared_ptr<std::atomic<std::size_t>> open_sessions_;
  beast::flat_buffer buffer_;
  std::optional<beast_http::request_parser<beast_http::string_body>> parser_;
  HttpRequest request_;
  std::string request_id_;
  std::uint64_t seq_ = 0;
  bool started_ = false;
  bool streaming_ = false;
  bool stream_ended_ = false;
  bool finished_ = true;
  bool keep_alive_ = false;
  bool client_gone_ = false;
  bool watching_ = false;
  bool resume_after_watch_ = false;
  bool writing_ = false;
  std::vector<std::function<void()>> gone_callbacks_;
  const RequestObserver& observer_;
  std::string model_;
  std::string caller_;
  std::vector<std::pair<std::string, std::string>> extra_headers_;
  int status_ = 0;
  std::chrono::steady_clock::time_point received_at_{};
  std::unique_ptr<HttpResponse> response_;
  std::deque<std::string> out_;
  bool linger_ = false;
  std::size_t drained_ = 0;
  std::array<char, 16 * 1024> drain_buffer_{};
};

// The handle a route handler holds: forwards to the session while its request is the current one.
template <class Stream>
class Session<Stream>::Exchange : public HttpExchange {
 public:
  Exchange(std::shared_ptr<Session> session, std::uint64_t seq)
      : session_(std::move(session)), seq_(seq) {}

  const HttpRequest& request() const override { return session_->request(); }
  const std::string& request_id() const override { return session_->request_id(); }
  void respond(HttpResponse response) override { session_->respond(seq_, std::move(response)); }
  void start_stream(HttpResponse head) override { session_->start_stream(seq_, std::move(head)); }
  void send(std::string bytes) override { session_->send(seq_, bytes); }
  void end_stream() override { session_->end_stream(seq_); }
  void on_client_gone(std::function<void()> callback) override {
    session_->on_client_gone(seq_, std::move(callback));
  }
  bool client_gone() const override { return session_->client_gone(seq_); }
  void set_model(std::string model) override { session_->set_model(seq_, std::move(model)); }
  void set_caller(std::string caller) override { session_->set_caller(seq_, std::move(caller)); }
  void add_header(std::string name, std::string value) override {
    session_->add_header(seq_, std::move(name), std::move(value));
  }

 private:
  std::shared_ptr<Session> session_;
  std::uint64_t seq_;
};

template <class Stream>
ExchangePtr Session<Stream>::make_exchange() {
  return std::make_shared<Exchange>(this->shared_from_this(), seq_);
}

}  // namespace

HttpServer::HttpServer(asio::io_context& io, const HttpRouter& router, HttpServerLimits limits,
                       std::shared_ptr<asio::ssl::context> tls)
    : io_(io),
      router_(router),
      limits_(limits),
      tls_(std::move(tls)),
      acceptor_(io),
      accept_retry_(io) {}

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
      // Streams are many small writes: without TCP_NODELAY, Nagle's algorithm and delayed ACKs
      // hold each SSE chunk back by up to 40 ms (measured in bench/).
      beast::error_code ignored;
      socket.set_option(tcp::no_delay(true), ignored);
      if (tls_) {
        std::make_shared<Session<TlsStream>>(std::move(socket), tls_.get(), router_, limits_,
                                             open_sessions_, observer_)
            ->start();
      } else {
        std::make_shared<Session<beast::tcp_stream>>(std::move(socket), nullptr, router_, limits_,
                                                     open_sessions_, observer_)
            ->start();
      }
    }
    accept();
  });
}

}  // namespace cxp::http
