#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "proxy/rpc/json_rpc_message.h"
#include "proxy/rpc/line_splitter.h"

namespace cxp::proxy {

// Outcome of one request: the worker's result, its error object, or a transport failure
// (timeout, worker gone) described in `transport_error`.
struct RpcOutcome {
  bool ok = false;
  nlohmann::json result;
  nlohmann::json error;
  std::string transport_error;
};

// Newline-delimited JSON-RPC over a worker's stdin/stdout, on one io_context. Owns both pipe ends.
// Requests get increasing integer ids; each may carry a timeout. When the worker's stdout closes or
// `close()` is called, every pending request completes with a transport error.
class JsonRpcChannel : public std::enable_shared_from_this<JsonRpcChannel> {
 public:
  struct Handlers {
    std::function<void(const RpcNotification&)> on_notification;
    // A request of the worker (e.g. a dynamic tool call). The handler answers it — at once or
    // later — with respond()/respond_error(); without a handler it is refused at once.
    std::function<void(const RpcServerRequest&)> on_request;
    std::function<void(const std::string& reason, std::string_view line)> on_bad_line;
    std::function<void()> on_closed;  // stdout reached EOF or failed
  };
  using Callback = std::function<void(RpcOutcome)>;

  static constexpr std::size_t kMaxLineBytes = 16 * 1024 * 1024;

  JsonRpcChannel(boost::asio::io_context& io, int stdin_fd, int stdout_fd);
  ~JsonRpcChannel();

  void start(Handlers handlers);
  void request(std::string_view method, const nlohmann::json& params,
               std::chrono::milliseconds timeout, Callback done);
  void notify(std::string_view method, const nlohmann::json& params);
  // Answers a request of the worker (its id echoed as it came).
  void respond(const nlohmann::json& id, const nlohmann::json& result);
  void respond_error(const nlohmann::json& id, int code, std::string_view message);
  // Closes stdin (the worker sees EOF), stops reading and fails pending requests.
  void close(const std::string& reason);

  std::size_t pending() const { return pending_.size(); }
  bool closed() const { return closed_; }

 private:
  struct Pending {
    Callback done;
    std::unique_ptr<boost::asio::steady_timer> timer;
  };

  void read_more();
  void handle_line(std::string_view line);
  void write_line(std::string line);
  void write_next();
  void complete(std::int64_t id, RpcOutcome outcome);
  void fail_all(const std::string& reason);

  boost::asio::io_context& io_;
  boost::asio::posix::stream_descriptor stdin_;
  boost::asio::posix::stream_descriptor stdout_;
  Handlers handlers_;
  LineSplitter splitter_{kMaxLineBytes};
  std::array<char, 64 * 1024> read_buffer_{};
  std::deque<std::string> write_queue_;
  bool writing_ = false;
  bool closed_ = false;
  std::int64_t next_id_ = 1;
  std::map<std::int64_t, Pending> pending_;
};

}  // namespace cxp::proxy
