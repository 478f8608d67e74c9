#include "proxy/api/chat_completion.h"

#include <boost/asio/post.hpp>
#include <boost/beast/http/field.hpp>

#include "proxy/api/model_failure.h"

namespace cxp::proxy {

namespace beast_http = boost::beast::http;
using nlohmann::json;

namespace {

ApiError worker_unavailable(const std::string& message) {
  ApiError e;
  e.status = 502;
  e.type = "server_error";
  e.code = "worker_unavailable";
  e.message = message;
  e.retryable = true;
  return e;
}

std::int64_t unix_now() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace

ChatCompletion::ChatCompletion(boost::asio::io_context& io, http::ExchangePtr exchange,
                               ChatRequest request, std::shared_ptr<JsonRpcChannel> channel,
                               TurnRouter& router, ChatSettings settings,
                               AdmissionGate::TicketPtr ticket)
    : io_(io),
      exchange_(std::move(exchange)),
      request_(std::move(request)),
      channel_(std::move(channel)),
      router_(router),
      settings_(std::move(settings)),
      ticket_(std::move(ticket)),
      deadline_(io),
      keepalive_(io) {
  meta_.id = "chatcmpl-" + exchange_->request_id();
  meta_.created = unix_now();
  meta_.model = request_.model;
  if (request_.tools_active()) extractor_.emplace(settings_.stats->tool_buffer);
}

void ChatCompletion::start() {
  started_at_ = std::chrono::steady_clock::now();
  auto self = shared_from_this();
  self_ = self;
  exchange_->on_client_gone([weak = weak_from_this()] {
    if (auto self = weak.lock()) self->on_client_gone();
  });
  deadline_.expires_after(settings_.request_timeout);
  deadline_.async_wait([weak = weak_from_this()](boost::system::error_code ec) {
    if (auto self = weak.lock(); self && !ec) self->on_deadline();
  });
  const TurnInput input = render_turn_input(request_);
  json params = {{"cwd", settings_.cwd},
                 {"approvalPolicy", "never"},
                 {"sandbox", "read-only"},
                 {"ephemeral", true},
                 {"model", settings_.worker_model}};
  if (!input.instructions.empty()) params["baseInstructions"] = input.instructions;
  if (settings_.trace && settings_.trace->enabled()) trace_.emplace();
  rpc("thread/start", params, [self, text = input.text](RpcOutcome outcome) mutable {
    if (self->finished_) return;
    if (outcome.ok) {
      const auto& thread = outcome.result.value("thread", json::object());
      self->thread_id_ = thread.is_object() ? thread.value("id", "") : "";
    }
    self->on_thread_started(std::move(outcome));
    if (self->finished_) return;
    json turn = {{"threadId", self->thread_id_},
                 {"input", json::array({{{"type", "text"}, {"text", text}}})}};
    self->rpc("turn/start", turn, [self](RpcOutcome started) {
      if (self->finished_) return self->interrupt_late_turn(started);
      self->on_turn_started(std::move(started));
    });
  });
}

void ChatCompletion::on_thread_started(RpcOutcome outcome) {
  if (!outcome.transport_error.empty())
    return fail(worker_unavailable("worker unavailable: " + outcome.transport_error));
  if (!outcome.ok)
    return fail(worker_unavailable("worker refused thread/start: " + outcome.error.dump()));
  if (thread_id_.empty())
    return fail(worker_unavailable("worker answered thread/start without a thread id"));
  router_.attach(thread_id_, weak_from_this());
}

void ChatCompletion::on_turn_started(RpcOutcome outcome) {
  if (!outcome.transport_error.empty())
    return fail(worker_unavailable("worker unavailable: " + outcome.transport_error));
  if (!outcome.ok)
    return fail(worker_unavailable("worker refused turn/start: " + outcome.error.dump()));
  const auto& turn = outcome.result.value("turn", json::object());
  turn_id_ = turn.is_object() ? turn.value("id", "") : "";
  if (!request_.stream) return;
  http::HttpResponse head{beast_http::status::ok, exchange_->request().version()};
  head.set(beast_http::field::content_type, "text/event-stream");
  head.set(beast_http::field::cache_control, "no-cache");
  head.set("X-Accel-Buffering", "no");
  head.keep_alive(exchange_->request().keep_alive());
  exchange_->start_stream(std::move(head));
  streaming_ = true;
  ++settings_.stats->streams_active;
  emit(sse_role_chunk(meta_));
}

void ChatCompletion::interrupt_late_turn(const RpcOutcome& outcome) {
  if (!outcome.ok) return;
  const auto& turn = outcome.result.value("turn", json::object());
  turn_id_ = turn.is_object() ? turn.value("id", "") : "";
  log_.info("late_turn_interrupted",
            {{"request_id", exchange_->request_id()}, {"route", "/v1/chat/completions"}});
  interrupt_turn();
}

void ChatCompletion::on_worker_notification(const RpcNotification& note) {
  if (finished_) return;
  trace("from_worker", {{"method", note.method}, {"params", note.params}});
  const auto& p = note.params;
  if (note.method == "item/agentMessage/delta") {
    if (!turn_id_.empty() && p.value("turnId", turn_id_) != turn_id_) return;
    const auto delta = p.value("delta", std::string());
    if (delta.empty()) return;
    if (extractor_) return take(extractor_->feed(delta));
    text_ += delta;
    if (streaming_) emit(sse_content_chunk(meta_, delta));
  } else if (note.method == "thread/tokenUsage/updated") {
    usage_ = usage_from_notification(p);
  } else if (note.method == "error") {
    // willRetry: codex retries the model by itself; only a final error decides the answer.
    if (!p.value("willRetry", false) && p.contains("error") && p["error"].is_object()) {
      model_error_ = p["error"];
    }
  } else if (note.method == "turn/completed") {
    on_turn_completed(p);
  }
}

void ChatCompletion::on_turn_completed(const json& params) {
  const auto& turn = params.value("turn", json::object());
  const std::string status = turn.is_object() ? turn.value("status", "completed") : "completed";
  if (status == "completed") {
    if (extractor_) take(extractor_->finish());
    return complete(calls_.empty() ? "stop" : "tool_calls");
  }
  if (status == "failed") {
    // The final `error` notification and the failed turn's `error` carry the same reason.
    const bool turn_error = turn.is_object() && turn.contains("error") && turn["error"].is_object();
    return fail(model_failure(model_error_.is_object() ? model_error_
                              : turn_error             ? turn["error"]
                                                       : json()));
  }
  fail(worker_unavailable("the worker ended the turn with status '" + status.substr(0, 64) + "'"));
}

void ChatCompletion::on_worker_lost(const std::string& reason) {
  if (!finished_) fail(worker_unavailable("the worker exited during the request: " + reason));
}

void ChatCompletion::take(ExtractedOutput output) {
  if (!output.text.empty()) {
    text_ += output.text;
    if (streaming_) emit(sse_content_chunk(meta_, output.text));
  }
  for (auto& call : output.calls) {
    ToolCallOut out{"call_" + std::to_string(calls_.size()) + "_" + exchange_->request_id(),
                    std::move(call.name), std::move(call.arguments)};
    if (streaming_) emit(sse_tool_call_chunk(meta_, calls_.size(), out));
    calls_.push_back(std::move(out));
  }
}

void ChatCompletion::emit(std::string bytes) {
  exchange_->send(std::move(bytes));
  schedule_keepalive();
}

void ChatCompletion::schedule_keepalive() {
  keepalive_.expires_after(settings_.keepalive);
  keepalive_.async_wait([weak = weak_from_this()](boost::system::error_code ec) {
    auto self = weak.lock();
    if (ec || !self || self->finished_) return;
    self->emit(sse_keepalive());
  });
}

void ChatCompletion::on_deadline() {
  if (finished_) return;
  interrupt_turn();
  ApiError e;
  e.status = 504;
  e.type = "server_error";
  e.code = "timeout";
  e.retryable = true;
  e.message = "the worker did not finish within WORKER_REQUEST_TIMEOUT_MS=" +
              std::to_string(settings_.request_timeout.count()) + "; the turn was interrupted";
  fail(e);
}

void ChatCompletion::on_client_gone() {
  if (finished_) return;
  log_.info("client_disconnected",
            {{"request_id", exchange_->request_id()}, {"route", "/v1/chat/completions"}});
  interrupt_turn();
  finish();
}

void ChatCompletion::interrupt_turn() {
  if (thread_id_.empty() || turn_id_.empty() || channel_->closed()) return;
  trace("to_worker", {{"method", "turn/interrupt"},
                      {"params", {{"threadId", thread_id_}, {"turnId", turn_id_}}}});
  channel_->request("turn/interrupt", {{"threadId", thread_id_}, {"turnId", turn_id_}},
                    std::chrono::seconds(5), [](RpcOutcome) {});
}

void ChatCompletion::trace(std::string_view direction, const json& frame) {
  if (trace_) trace_->add(direction, frame);
}

// A request to the worker on behalf of this completion, traced both ways.
void ChatCompletion::rpc(std::string_view method, json params,
                         std::function<void(RpcOutcome)> done) {
  trace("to_worker", {{"method", method}, {"params", params}});
  channel_->request(method, params, settings_.request_timeout,
                    [weak = weak_from_this(), method = std::string(method),
                     done = std::move(done)](RpcOutcome outcome) {
                      if (auto self = weak.lock()) {
                        json frame = {{"method", method}};
                        if (!outcome.transport_error.empty())
                          frame["transport_error"] = outcome.transport_error;
                        else if (outcome.ok)
                          frame["result"] = outcome.result;
                        else
                          frame["error"] = outcome.error;
                        self->trace("from_worker", frame);
                      }
                      done(std::move(outcome));
                    });
}

void ChatCompletion::complete(const std::string& finish_reason) {
  if (finished_) return;
  log_.info("request_completed",
            {{"request_id", exchange_->request_id()},
             {"route", "/v1/chat/completions"},
             {"model", request_.model},
             {"stream", request_.stream},
             {"finish_reason", finish_reason},
             {"tool_calls", calls_.size()},
             {"latency_ms", std::chrono::duration_cast<std::chrono::milliseconds>(
                                std::chrono::steady_clock::now() - started_at_)
                                .count()}});
  write_trace();
  if (streaming_) {
    exchange_->send(sse_finish_chunk(meta_, finish_reason));
    if (request_.include_usage)
      exchange_->send(sse_usage_chunk(meta_, usage_.value_or(TokenUsage{})));
    exchange_->send(sse_done());
    exchange_->end_stream();
  } else {
    exchange_->respond(
        http::make_response(exchange_->request(), 200, "application/json",
                            render_completion(meta_, text_, calls_, finish_reason, usage_)));
  }
  finish();
}

void ChatCompletion::fail(const ApiError& unredacted) {
  if (finished_) return;
  ApiError error = unredacted;
  error.message = settings_.redactor->redact(error.message);
  if (extractor_) extractor_->finish();  // a call cut off by the failure counts as aborted
  write_trace();
  log_.warn("request_failed", {{"request_id", exchange_->request_id()},
                               {"latency_ms", std::chrono::duration_cast<std::chrono::milliseconds>(
                                                  std::chrono::steady_clock::now() - started_at_)
                                                  .count()},
                               {"route", "/v1/chat/completions"},
                               {"model", request_.model},
                               {"error_code", error.code},
                               {"retryable", error.retryable},
                               {"message", error.message}});
  if (streaming_) {
    exchange_->send(sse_error_event(api_error_json(error)));
    exchange_->send(sse_done());
    exchange_->end_stream();
  } else {
    exchange_->respond(render_api_error(exchange_->request(), error));
  }
  finish();
}

// Written before the answer's last bytes go out, so a client holding a response (or an error)
// can already find its trace; idempotent.
void ChatCompletion::write_trace() {
  if (!trace_) return;
  settings_.trace->write(exchange_->request_id(), "/v1/chat/completions", *trace_);
  trace_.reset();
}

void ChatCompletion::finish() {
  finished_ = true;
  write_trace();
  if (streaming_) --settings_.stats->streams_active;
  deadline_.cancel();
  keepalive_.cancel();
  if (!thread_id_.empty()) router_.detach(thread_id_);
  ticket_.reset();
  // Let go of ourselves once the current call stack has unwound.
  boost::asio::post(io_, [self = std::move(self_)] {});
}

}  // namespace cxp::proxy
