#include "proxy/api/turn_session.h"

#include <algorithm>
#include <boost/asio/post.hpp>
#include <boost/beast/http/field.hpp>

#include "common/json_fields.h"
#include "common/utf8.h"
#include "proxy/api/model_failure.h"

namespace cxp::proxy {

namespace beast_http = boost::beast::http;
using nlohmann::json;

namespace {

constexpr std::chrono::seconds kInterruptTimeout{5};
constexpr std::string_view kCallReturned =
    "not run by codex-proxy: the call was returned to the API client, which runs it";

ApiError worker_unavailable(const std::string& message) {
  ApiError e;
  e.status = 502;
  e.type = "server_error";
  e.code = "worker_unavailable";
  e.message = message;
  e.retryable = true;
  return e;
}

json not_run(std::string_view why) {
  return {{"contentItems", json::array({{{"type", "inputText"}, {"text", why}}})},
          {"success", false}};
}

}  // namespace

TurnSession::TurnSession(boost::asio::io_context& io, http::ExchangePtr exchange,
                         TurnRequest request, std::unique_ptr<TurnRenderer> renderer,
                         std::shared_ptr<JsonRpcChannel> channel, TurnRouter& router,
                         TurnSettings settings, Holds holds)
    : io_(io),
      exchange_(std::move(exchange)),
      request_(std::move(request)),
      renderer_(std::move(renderer)),
      offered_(request_.offered_tools()),
      channel_(std::move(channel)),
      router_(router),
      settings_(std::move(settings)),
      holds_(std::move(holds)),
      deadline_(io),
      keepalive_(io),
      settle_(io),
      answer_(request_) {
  // A function named like one of codex's own tools gets a name of its own for the model.
  for (const auto& tool : offered_) {
    std::string name = tool.name;
    const auto taken = [&](const std::string& candidate) {
      const auto& reserved = settings_.reserved_tool_names;
      return std::find(reserved.begin(), reserved.end(), candidate) != reserved.end() ||
             std::any_of(offered_.begin(), offered_.end(), [&](const ToolSpec& t) {
               return t.name == candidate && t.name != tool.name;
             });
    };
    if (taken(name)) {
      name = tool.name.substr(0, 60) + "_fn";
      for (int n = 2; taken(name); ++n) name = tool.name.substr(0, 58) + "_fn" + std::to_string(n);
    }
    worker_names_[tool.name] = name;
  }
}

std::string TurnSession::caller_name(const std::string& worker_name) const {
  for (const auto& [caller, worker] : worker_names_) {
    if (worker == worker_name) return caller;
  }
  return "";
}

void TurnSession::start() {
  started_at_ = std::chrono::steady_clock::now();
  self_ = shared_from_this();
  exchange_->on_client_gone([weak = weak_from_this()] {
    if (auto self = weak.lock()) self->on_client_gone();
  });
  deadline_.expires_after(settings_.request_timeout);
  deadline_.async_wait([weak = weak_from_this()](boost::system::error_code ec) {
    if (auto self = weak.lock(); self && !ec) self->on_deadline();
  });
  if (settings_.trace && settings_.trace->enabled()) trace_.emplace();
  if (!request_.ignored_tools.empty()) {
    log_.info("tools_ignored", {{"request_id", exchange_->request_id()},
                                {"route", renderer_->route()},
                                {"tools", request_.ignored_tools}});
  }
  start_thread();
}

// A failed setup step fails the request; true when it did.
bool TurnSession::failed_step(const RpcOutcome& outcome, std::string_view method) {
  if (!outcome.transport_error.empty()) {
    fail(worker_unavailable("worker unavailable: " + outcome.transport_error));
    return true;
  }
  if (!outcome.ok) {
    fail(worker_unavailable("worker refused " + std::string(method) + ": " + outcome.error.dump()));
    return true;
  }
  return false;
}

void TurnSession::start_thread() {
  json params = {{"cwd", settings_.cwd},
                 {"approvalPolicy", "never"},
                 {"sandbox", "read-only"},
                 {"ephemeral", true},
                 {"model", settings_.worker_model}};
  // Always set: without it codex gives the model its own coding-agent prompt.
  params["baseInstructions"] =
      request_.instructions.empty() ? settings_.default_instructions : request_.instructions;
  if (const auto note = request_.tool_choice_instructions(); !note.empty()) {
    params["developerInstructions"] = note;
  }
  if (!offered_.empty()) {
    json tools = json::array();
    for (const auto& tool : offered_) {
      tools.push_back({{"type", "function"},
                       {"name", worker_names_.at(tool.name)},
                       {"description", tool.description},
                       {"inputSchema", tool.parameters}});
    }
    params["dynamicTools"] = std::move(tools);
    params["experimentalRawEvents"] = true;  // rawResponse/completed: the model's response ended
  }
  rpc("thread/start", params, [self = shared_from_this()](RpcOutcome outcome) {
    if (self->finished_ || self->failed_step(outcome, "thread/start")) return;
    self->thread_id_ = string_field(field_of(outcome.result, "thread"), "id");
    if (self->thread_id_.empty()) {
      return self->fail(worker_unavailable("worker answered thread/start without a thread id"));
    }
    self->router_.attach(self->thread_id_, self->weak_from_this(), self->channel_.get());
    if (self->request_.history.empty()) return self->start_turn();
    self->inject_history();
  });
}

void TurnSession::inject_history() {
  json items = json::array();
  for (const auto& item : request_.history) items.push_back(history_item_json(item));
  rpc("thread/inject_items", {{"threadId", thread_id_}, {"items", std::move(items)}},
      [self = shared_from_this()](RpcOutcome outcome) {
        if (self->finished_ || self->failed_step(outcome, "thread/inject_items")) return;
        self->start_turn();
      });
}

void TurnSession::start_turn() {
  json input = json::array();
  for (const auto& part : request_.input) {
    if (part.image) {
      input.push_back(
          {{"type", "image"}, {"url", part.image->url}, {"detail", part.image->detail}});
    } else {
      input.push_back({{"type", "text"}, {"text", part.text}});
    }
  }
  json params = {{"threadId", thread_id_}, {"input", std::move(input)}};
  if (!request_.effort.empty()) params["effort"] = request_.effort;
  if (!request_.summary.empty()) params["summary"] = request_.summary;
  if (auto schema = request_.format.worker_schema(); !schema.is_null()) {
    params["outputSchema"] = std::move(schema);
  }
  rpc("turn/start", std::move(params), [self = shared_from_this()](RpcOutcome started) {
    if (self->finished_) return self->interrupt_late_turn(started);
    self->on_turn_started(std::move(started));
  });
}

void TurnSession::on_turn_started(RpcOutcome outcome) {
  if (failed_step(outcome, "turn/start")) return;
  if (settings_.on_turn_started) settings_.on_turn_started(channel_.get());
  turn_id_ = string_field(field_of(outcome.result, "turn"), "id");
  begin_stream();
}

void TurnSession::begin_stream() {
  if (!request_.stream || streaming_) return;
  http::HttpResponse head{beast_http::status::ok, exchange_->request().version()};
  head.set(beast_http::field::content_type, "text/event-stream");
  head.set(beast_http::field::cache_control, "no-cache");
  head.set("X-Accel-Buffering", "no");
  head.keep_alive(exchange_->request().keep_alive());
  exchange_->start_stream(std::move(head));
  streaming_ = true;
  ++settings_.stats->streams_active;
  emit(renderer_->stream_start());
  // What came before the answer: reasoning, then text.
  emit(reasoning_.replay(*renderer_));
  if (!text_.empty()) emit(renderer_->text_delta(text_));
}

void TurnSession::interrupt_late_turn(const RpcOutcome& outcome) {
  if (!outcome.ok) return;
  turn_id_ = string_field(field_of(outcome.result, "turn"), "id");
  log_.info("late_turn_interrupted",
            {{"request_id", exchange_->request_id()}, {"route", renderer_->route()}});
  interrupt_turn();
}

void TurnSession::on_worker_notification(const RpcNotification& note) {
  if (finished_) return;
  trace("from_worker", {{"method", note.method}, {"params", note.params}});
  const auto& p = note.params;
  if (note.method == "item/agentMessage/delta") {
    if (!turn_id_.empty() && string_field(p, "turnId", turn_id_) != turn_id_) return;
    const auto delta = string_field(p, "delta");
    if (!delta.empty()) text(delta);
  } else if (ReasoningItems::concerns(note)) {
    if (!turn_id_.empty() && string_field(p, "turnId", turn_id_) != turn_id_) return;
    emit(reasoning_.take(note, *renderer_, streaming_));
  } else if (note.method == "thread/tokenUsage/updated") {
    usage_ = usage_from_notification(p);
  } else if (note.method == "error") {
    // willRetry: codex retries the model by itself; only a final error decides the answer.
    if (!bool_field(p, "willRetry", false) && field_of(p, "error").is_object()) {
      model_error_ = field_of(p, "error");
    }
  } else if (note.method == "rawResponseItem/completed") {
    // The model's own function calls, as it made them: how many item/tool/call requests to expect.
    const auto& item = field_of(p, "item");
    const bool offered = !caller_name(string_field(item, "name")).empty();
    const auto call_id = string_field(item, "call_id");
    const bool past = std::any_of(request_.history.begin(), request_.history.end(),
                                  [&](const HistoryItem& h) { return h.call_id == call_id; });
    if (string_field(item, "type") == "function_call" && offered && !past) {
      announced_calls_.push_back(call_id);
    }
  } else if (note.method == "rawResponse/completed") {
    response_done_ = true;
    maybe_finish_with_tool_calls();
  } else if (note.method == "turn/completed") {
    on_turn_completed(p);
  }
}

void TurnSession::on_worker_request(const RpcServerRequest& request, JsonRpcChannel& channel) {
  trace("from_worker",
        {{"method", request.method}, {"id", request.id}, {"params", request.params}});
  if (request.method == "item/tool/call") return on_tool_call(request);
  // Anything else (request_user_input, approvals) has nobody to ask: refused, the turn goes on.
  channel.respond_error(request.id, -32601, "codex-proxy does not handle " + request.method);
}

void TurnSession::on_tool_call(const RpcServerRequest& request) {
  auto& counters = settings_.stats->tool_buffer;
  ++counters.started;
  const auto& p = request.params;
  const auto name = caller_name(string_field(p, "tool"));
  const auto call_id = string_field(p, "callId");
  const bool declared = !name.empty() && field_of(p, "namespace").is_null();
  const auto arguments = tool_arguments_text(field_of(p, "arguments"));
  std::string refusal;
  if (finished_) {
    refusal = std::string(kCallReturned);
  } else if (!declared || call_id.empty()) {
    refusal = "unknown function '" + utf8_prefix(string_field(p, "tool"), 64) +
              "': call only the functions provided";
  } else if (!arguments) {
    refusal = "the arguments of '" + name + "' are not JSON; call it again with a JSON object";
  }
  if (!refusal.empty()) {
    // The model hears why and may go on; the client never sees this call.
    ++counters.aborted;
    if (!finished_) {
      log_.warn("tool_call_refused", {{"request_id", exchange_->request_id()},
                                      {"route", renderer_->route()},
                                      {"tool", utf8_prefix(name, 64)},
                                      {"message", refusal}});
    }
    trace("to_worker", {{"id", request.id}, {"result", not_run(refusal)}});
    return channel_->respond(request.id, not_run(refusal));
  }
  ToolCallOut call{call_id, name, *arguments};
  // Without parallel calls, the one kept (the model's first) is streamed when the response is over.
  if (streaming_ && request_.parallel_tool_calls) emit(renderer_->tool_call(calls_.size(), call));
  calls_.push_back(std::move(call));
  pending_calls_.push_back(request.id);
  maybe_finish_with_tool_calls();
  if (finished_) return;
  // Should the end of the response never be seen, the calls so far go out after a pause.
  settle_.expires_after(settings_.tool_call_settle);
  settle_.async_wait([weak = weak_from_this()](boost::system::error_code ec) {
    if (auto self = weak.lock(); self && !ec) self->finish_with_tool_calls();
  });
}

void TurnSession::maybe_finish_with_tool_calls() {
  if (calls_.empty() || !response_done_) return;
  for (const auto& id : announced_calls_) {
    const bool arrived = std::any_of(calls_.begin(), calls_.end(),
                                     [&](const ToolCallOut& call) { return call.id == id; });
    if (!arrived) return;
  }
  finish_with_tool_calls();
}

// The model's response ended with function calls: the client runs them. The turn is interrupted
// before the calls are answered, so the worker never asks the model again with made-up outputs.
void TurnSession::finish_with_tool_calls() {
  if (finished_) return;
  settle_.cancel();
  interrupt_turn();
  if (!streaming_ || !request_.parallel_tool_calls) {
    // The worker runs calls concurrently; the answer lists them in the order the model made them.
    const auto rank = [this](const ToolCallOut& call) {
      return std::find(announced_calls_.begin(), announced_calls_.end(), call.id) -
             announced_calls_.begin();
    };
    std::stable_sort(calls_.begin(), calls_.end(),
                     [&](const ToolCallOut& a, const ToolCallOut& b) { return rank(a) < rank(b); });
  }
  if (!request_.parallel_tool_calls) {
    // One call per answer, as the client asked: the model's first; the others were not made.
    settings_.stats->tool_buffer.aborted += calls_.size() - 1;
    calls_.resize(1);
    if (streaming_) emit(renderer_->tool_call(0, calls_.front()));
  }
  settings_.stats->tool_buffer.flushed += calls_.size();
  answer_pending_calls(kCallReturned);
  complete("tool_calls");
}

void TurnSession::answer_pending_calls(std::string_view why) {
  for (const auto& id : pending_calls_) {
    trace("to_worker", {{"id", id}, {"result", not_run(why)}});
    channel_->respond(id, not_run(why));
  }
  pending_calls_.clear();
}

void TurnSession::on_turn_completed(const json& params) {
  const auto& turn = field_of(params, "turn");
  const std::string status = string_field(turn, "status", "completed");
  if (status == "completed") return complete(calls_.empty() ? "stop" : "tool_calls");
  if (status == "failed") {
    // The final `error` notification and the failed turn's `error` carry the same reason.
    return fail(model_failure(model_error_.is_object() ? model_error_ : field_of(turn, "error")));
  }
  fail(worker_unavailable("the worker ended the turn with status '" + utf8_prefix(status, 64) +
                          "'"));
}

void TurnSession::on_worker_lost(const std::string& reason) {
  if (!finished_) fail(worker_unavailable("the worker exited during the request: " + reason));
}

void TurnSession::text(const std::string& delta) {
  if (answer_.stopped()) return;
  deliver(answer_.feed(delta));
  if (!answer_.stopped() || finished_) return;
  // A stop sequence: the answer ends here, and the model's response with it.
  log_.info("stop_sequence_matched",
            {{"request_id", exchange_->request_id()}, {"route", renderer_->route()}});
  interrupt_turn();
  complete("stop");
}

void TurnSession::deliver(const std::string& text) {
  if (text.empty()) return;
  text_ += text;
  if (streaming_) emit(renderer_->text_delta(text));
}

void TurnSession::flush_text() {
  deliver(answer_.finish());
}

void TurnSession::emit(std::string bytes) {
  if (bytes.empty()) return;  // an event the endpoint does not show (chat has no reasoning)
  exchange_->send(std::move(bytes));
  schedule_keepalive();
}

void TurnSession::schedule_keepalive() {
  keepalive_.expires_after(settings_.keepalive);
  keepalive_.async_wait([weak = weak_from_this()](boost::system::error_code ec) {
    auto self = weak.lock();
    if (ec || !self || self->finished_) return;
    self->emit(sse_keepalive());
  });
}

void TurnSession::on_deadline() {
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

void TurnSession::on_client_gone() {
  if (finished_) return;
  log_.info("client_disconnected",
            {{"request_id", exchange_->request_id()}, {"route", renderer_->route()}});
  interrupt_turn();
  settings_.stats->tool_buffer.aborted += pending_calls_.size();
  finish();
}

void TurnSession::interrupt_turn() {
  if (thread_id_.empty() || turn_id_.empty() || channel_->closed()) return;
  const json params = {{"threadId", thread_id_}, {"turnId", turn_id_}};
  trace("to_worker", {{"method", "turn/interrupt"}, {"params", params}});
  channel_->request("turn/interrupt", params, kInterruptTimeout, [](RpcOutcome) {});
}

void TurnSession::trace(std::string_view direction, const json& frame) {
  if (trace_) trace_->add(direction, frame);
}

// A request to the worker on behalf of this session, traced both ways.
void TurnSession::rpc(std::string_view method, json params, std::function<void(RpcOutcome)> done) {
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

void TurnSession::complete(const std::string& finish_reason) {
  if (finished_) return;
  flush_text();
  json fields = {{"request_id", exchange_->request_id()},
                 {"route", renderer_->route()},
                 {"key", holds_.caller},
                 {"model", request_.model},
                 {"stream", request_.stream},
                 {"finish_reason", finish_reason},
                 {"tool_calls", calls_.size()},
                 {"latency_ms", std::chrono::duration_cast<std::chrono::milliseconds>(
                                    std::chrono::steady_clock::now() - started_at_)
                                    .count()}};
  if (!request_.ignored_params.empty()) fields["params_ignored"] = request_.ignored_params;
  if (usage_) {
    fields["usage"] = {{"input_tokens", usage_->prompt_tokens},
                       {"cached_input_tokens", usage_->cached_tokens},
                       {"output_tokens", usage_->completion_tokens},
                       {"reasoning_tokens", usage_->reasoning_tokens}};
  }
  log_.info("request_completed", fields);
  if (request_.format.kind == OutputFormat::Kind::kJsonObject && calls_.empty() &&
      !json::parse(text_, nullptr, false).is_object()) {
    // Strict mode makes the model fill the wrapper; what it put inside is not checked by anyone.
    log_.warn("json_object_invalid",
              {{"request_id", exchange_->request_id()}, {"route", renderer_->route()}});
  }
  write_trace();
  begin_stream();
  const TurnOutcome outcome{text_, calls_, finish_reason, usage_, reasoning_.items()};
  if (streaming_) {
    exchange_->send(renderer_->stream_end(outcome));
    exchange_->end_stream();
  } else {
    exchange_->respond(http::make_response(exchange_->request(), 200, "application/json",
                                           renderer_->body(outcome)));
  }
  finish();
}

void TurnSession::fail(const ApiError& unredacted) {
  if (finished_) return;
  ApiError error = unredacted;
  error.message = settings_.redactor->redact(error.message);
  settings_.stats->tool_buffer.aborted += pending_calls_.size();
  answer_pending_calls("not run: the request failed");
  write_trace();
  json fields = {{"request_id", exchange_->request_id()},
                 {"latency_ms", std::chrono::duration_cast<std::chrono::milliseconds>(
                                    std::chrono::steady_clock::now() - started_at_)
                                    .count()},
                 {"route", renderer_->route()},
                 {"key", holds_.caller},
                 {"model", request_.model},
                 {"error_code", error.code},
                 {"retryable", error.retryable},
                 {"message", error.message}};
  if (!request_.ignored_params.empty()) fields["params_ignored"] = request_.ignored_params;
  log_.warn("request_failed", fields);
  if (streaming_) {
    exchange_->send(renderer_->stream_error(error));
    exchange_->end_stream();
  } else {
    exchange_->respond(render_api_error(exchange_->request(), error));
  }
  finish();
}

// Written before the answer's last bytes go out, so a client holding a response (or an error)
// can already find its trace; idempotent.
void TurnSession::write_trace() {
  if (!trace_) return;
  settings_.trace->write(exchange_->request_id(), std::string(renderer_->route()), *trace_);
  trace_.reset();
}

void TurnSession::account_tokens() {
  if (!usage_) return;
  const auto count = [](std::int64_t n) {
    return static_cast<std::uint64_t>(std::max<std::int64_t>(0, n));
  };
  settings_.stats->tokens.add(holds_.caller, request_.model,
                              {count(usage_->prompt_tokens), count(usage_->cached_tokens),
                               count(usage_->completion_tokens), count(usage_->reasoning_tokens)});
  if (holds_.permit) holds_.permit->charge(usage_->total_tokens);
}

void TurnSession::finish() {
  finished_ = true;
  account_tokens();
  answer_pending_calls(kCallReturned);  // no worker request is left waiting on us
  write_trace();
  if (streaming_) --settings_.stats->streams_active;
  deadline_.cancel();
  keepalive_.cancel();
  settle_.cancel();
  if (!thread_id_.empty()) {
    router_.detach(thread_id_);
    // Done with the thread: without this the worker keeps every ephemeral thread loaded for its
    // whole life (about 1 MiB each, measured); unsubscribed, it may unload it.
    if (!channel_->closed()) {
      channel_->request("thread/unsubscribe", {{"threadId", thread_id_}}, kInterruptTimeout,
                        [](RpcOutcome) {});
    }
  }
  holds_.ticket.reset();
  holds_.permit.reset();
  // Let go of ourselves once the current call stack has unwound.
  boost::asio::post(io_, [self = std::move(self_)] {});
}

}  // namespace cxp::proxy
