#include "proxy/rpc/json_rpc_channel.h"

#include <boost/asio/post.hpp>
#include <boost/asio/write.hpp>

namespace cxp::proxy {

namespace asio = boost::asio;

JsonRpcChannel::JsonRpcChannel(asio::io_context& io, int stdin_fd, int stdout_fd)
    : io_(io), stdin_(io, stdin_fd), stdout_(io, stdout_fd) {}

JsonRpcChannel::~JsonRpcChannel() {
  boost::system::error_code ignored;
  stdin_.close(ignored);
  stdout_.close(ignored);
}

void JsonRpcChannel::start(Handlers handlers) {
  handlers_ = std::move(handlers);
  read_more();
}

void JsonRpcChannel::read_more() {
  stdout_.async_read_some(
      asio::buffer(read_buffer_),
      [self = shared_from_this()](boost::system::error_code ec, std::size_t n) {
        if (self->closed_) return;
        if (ec) {
          self->fail_all("worker closed its stdout");
          if (self->handlers_.on_closed) self->handlers_.on_closed();
          return;
        }
        const auto oversized_before = self->splitter_.oversized();
        const auto lines = self->splitter_.feed(std::string_view(self->read_buffer_.data(), n));
        if (self->splitter_.oversized() != oversized_before && self->handlers_.on_bad_line) {
          self->handlers_.on_bad_line(
              "line longer than " + std::to_string(kMaxLineBytes) + " bytes skipped", {});
        }
        for (const auto& line : lines) {
          if (self->closed_) return;
          self->handle_line(line);
        }
        if (!self->closed_) self->read_more();
      });
}

void JsonRpcChannel::handle_line(std::string_view line) {
  if (line.empty()) return;
  auto message = parse_rpc_line(line);
  if (auto* response = std::get_if<RpcResponse>(&message)) {
    RpcOutcome outcome;
    outcome.ok = response->ok;
    outcome.result = std::move(response->result);
    outcome.error = std::move(response->error);
    complete(response->id, std::move(outcome));
  } else if (auto* note = std::get_if<RpcNotification>(&message)) {
    if (handlers_.on_notification) handlers_.on_notification(*note);
  } else if (auto* ask = std::get_if<RpcServerRequest>(&message)) {
    if (handlers_.on_request) return handlers_.on_request(*ask);
    respond_error(ask->id, -32601, "codex-proxy does not handle " + ask->method);
  } else if (auto* bad = std::get_if<RpcMalformed>(&message)) {
    if (handlers_.on_bad_line) handlers_.on_bad_line(bad->reason, line);
  }
}

void JsonRpcChannel::request(std::string_view method, const nlohmann::json& params,
                             std::chrono::milliseconds timeout, Callback done) {
  if (closed_) {
    RpcOutcome outcome;
    outcome.transport_error = "worker channel is closed";
    asio::post(io_, [done = std::move(done), outcome = std::move(outcome)]() mutable {
      done(std::move(outcome));
    });
    return;
  }
  const std::int64_t id = next_id_++;
  Pending entry{std::move(done), nullptr};
  if (timeout.count() > 0) {
    entry.timer = std::make_unique<asio::steady_timer>(io_, timeout);
    entry.timer->async_wait([weak = weak_from_this(), id, timeout,
                             method = std::string(method)](boost::system::error_code ec) {
      auto self = weak.lock();
      if (ec || !self) return;
      RpcOutcome outcome;
      outcome.transport_error =
          method + " timed out after " + std::to_string(timeout.count()) + " ms";
      self->complete(id, std::move(outcome));
    });
  }
  pending_.emplace(id, std::move(entry));
  write_line(render_rpc_request(id, method, params));
}

void JsonRpcChannel::notify(std::string_view method, const nlohmann::json& params) {
  if (!closed_) write_line(render_rpc_notification(method, params));
}

void JsonRpcChannel::respond(const nlohmann::json& id, const nlohmann::json& result) {
  if (!closed_) write_line(render_rpc_result_reply(id, result));
}

void JsonRpcChannel::respond_error(const nlohmann::json& id, int code, std::string_view message) {
  if (!closed_) write_line(render_rpc_error_reply(id, code, message));
}

void JsonRpcChannel::write_line(std::string line) {
  line.push_back('\n');
  write_queue_.push_back(std::move(line));
  if (!writing_) write_next();
}

void JsonRpcChannel::write_next() {
  if (write_queue_.empty() || closed_) {
    writing_ = false;
    return;
  }
  writing_ = true;
  asio::async_write(stdin_, asio::buffer(write_queue_.front()),
                    [self = shared_from_this()](boost::system::error_code ec, std::size_t) {
                      if (self->closed_) return;
                      self->write_queue_.pop_front();
                      if (ec) {
                        // The worker stopped reading (it died or closed stdin). Its exit is
                        // reported by the supervisor; fail what waits on it now.
                        self->write_queue_.clear();
                        self->writing_ = false;
                        self->fail_all("cannot write to worker stdin: " + ec.message());
                        return;
                      }
                      self->write_next();
                    });
}

void JsonRpcChannel::complete(std::int64_t id, RpcOutcome outcome) {
  const auto found = pending_.find(id);
  if (found == pending_.end()) return;  // late answer to a request that already timed out
  auto done = std::move(found->second.done);
  if (found->second.timer) found->second.timer->cancel();
  pending_.erase(found);
  done(std::move(outcome));
}

void JsonRpcChannel::fail_all(const std::string& reason) {
  auto pending = std::move(pending_);
  pending_.clear();
  for (auto& [id, entry] : pending) {
    if (entry.timer) entry.timer->cancel();
    RpcOutcome outcome;
    outcome.transport_error = reason;
    entry.done(std::move(outcome));
  }
}

void JsonRpcChannel::close(const std::string& reason) {
  if (closed_) return;
  closed_ = true;
  boost::system::error_code ignored;
  stdin_.close(ignored);
  stdout_.close(ignored);
  write_queue_.clear();
  fail_all(reason);
}

}  // namespace cxp::proxy
