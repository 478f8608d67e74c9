#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/http/http_exchange.h"
#include "common/telemetry/json_log.h"
#include "common/telemetry/redaction.h"
#include "proxy/access/access_control.h"
#include "proxy/api/admission_gate.h"
#include "proxy/api/answer_text.h"
#include "proxy/api/api_error.h"
#include "proxy/api/api_stats.h"
#include "proxy/api/reasoning_items.h"
#include "proxy/api/turn_renderer.h"
#include "proxy/api/turn_request.h"
#include "proxy/api/turn_router.h"
#include "proxy/rpc/json_rpc_channel.h"
#include "proxy/trace/trace_buffer.h"

namespace cxp::proxy {

struct TurnSettings {
  std::chrono::milliseconds request_timeout{120000};
  std::chrono::milliseconds keepalive{15000};
  // After a function call, how long to wait for the end of the model's response (the app server's
  // rawResponse/completed) before answering with the calls gathered so far.
  std::chrono::milliseconds tool_call_settle{1000};
  std::string cwd = "/";
  std::string worker_model;  // CODEX_MODEL: what the worker runs, whichever alias the client named
  // The model's instructions when the caller sends no system or developer message
  // (WORKER_DEFAULT_INSTRUCTIONS; empty: none, never codex's own prompt).
  std::string default_instructions;
  // Function names codex keeps for itself: such a function is offered under another name.
  std::vector<std::string> reserved_tool_names;
  // Told when a turn starts on a worker (its lifetime counts turns).
  std::function<void(const JsonRpcChannel*)> on_turn_started;
  ApiStats* stats = nullptr;     // shared by all requests; required
  TraceBuffer* trace = nullptr;  // optional: records the request's JSON-RPC frames when enabled
  // Removes the proxy's secrets (and the model key) from error messages sent to clients; required.
  const telemetry::Redactor* redactor = nullptr;
};

// One API request played as one turn on a new ephemeral thread of the worker — the single path
// both /v1/chat/completions and /v1/responses take; a TurnRenderer turns it into the endpoint's
// JSON or SSE. thread/start (instructions, the caller's functions as dynamic tools), then
// thread/inject_items (the conversation so far, natively: messages, function calls and outputs),
// then turn/start (the latest user message, or nothing when the turn goes on from tool outputs).
//
// The model's function calls arrive as worker requests (item/tool/call): a declared function is
// passed to the client, an undeclared one refused to the model. When the model's response ends
// (rawResponse/completed, or `tool_call_settle` after the last call), the turn is interrupted and
// the calls answered as not run — the client runs them and sends their outputs in its next request.
//
// Ends exactly once: completed, failed (error envelope or a stream error event), timed out (504,
// the turn interrupted), or abandoned by the client (the turn interrupted). Holds its admission
// ticket until it ends; leaves no worker request unanswered.
class TurnSession : public TurnListener, public std::enable_shared_from_this<TurnSession> {
 public:
  // What a request holds until it ends: its worker slot, its key's permit (concurrency, tokens;
  // null for an anonymous caller) and the key's name (logs, token metrics).
  struct Holds {
    AdmissionGate::TicketPtr ticket;
    PermitPtr permit;
    std::string caller;
  };
  TurnSession(boost::asio::io_context& io, http::ExchangePtr exchange, TurnRequest request,
              std::unique_ptr<TurnRenderer> renderer, std::shared_ptr<JsonRpcChannel> channel,
              TurnRouter& router, TurnSettings settings, Holds holds);

  void start();

  void on_worker_notification(const RpcNotification& notification) override;
  void on_worker_request(const RpcServerRequest& request, JsonRpcChannel& channel) override;
  void on_worker_lost(const std::string& reason) override;

 private:
  void start_thread();
  void inject_history();
  void start_turn();
  void on_turn_started(RpcOutcome outcome);
  // turn/start answered after the request ended (client gone, deadline): the turn runs for nobody.
  void interrupt_late_turn(const RpcOutcome& outcome);
  void on_turn_completed(const nlohmann::json& params);
  void on_tool_call(const RpcServerRequest& request);
  // Ends the request with its function calls once the model's response is over and every call it
  // made has arrived (counted from the raw response items).
  void maybe_finish_with_tool_calls();
  void finish_with_tool_calls();
  void answer_pending_calls(std::string_view why);
  // A delta of the model's answer, as the caller gets it (answer_); a stop sequence ends the turn.
  void text(const std::string& delta);
  void deliver(const std::string& text);
  // At the end of the answer: the text answer_ still holds.
  void flush_text();
  // Sends the stream's head and what the answer has so far (once; the turn started, or ended
  // before its start was answered).
  void begin_stream();
  void emit(std::string bytes);
  void schedule_keepalive();
  void on_deadline();
  void on_client_gone();
  void interrupt_turn();
  void complete(const std::string& finish_reason);
  void fail(const ApiError& error);
  void finish();
  // The turn's tokens: counted for the key and model, charged to the key's limit.
  void account_tokens();
  void write_trace();
  void trace(std::string_view direction, const nlohmann::json& frame);
  void rpc(std::string_view method, nlohmann::json params, std::function<void(RpcOutcome)> done);
  bool failed_step(const RpcOutcome& outcome, std::string_view method);
  // The caller's name of a function the model called by `worker_name` ("" when not offered).
  std::string caller_name(const std::string& worker_name) const;

  boost::asio::io_context& io_;
  http::ExchangePtr exchange_;
  TurnRequest request_;
  std::unique_ptr<TurnRenderer> renderer_;
  std::vector<ToolSpec> offered_;
  std::map<std::string, std::string> worker_names_;  // caller's function name → name the model sees
  std::shared_ptr<JsonRpcChannel> channel_;
  TurnRouter& router_;
  TurnSettings settings_;
  Holds holds_;
  boost::asio::steady_timer deadline_;
  boost::asio::steady_timer keepalive_;
  boost::asio::steady_timer settle_;
  telemetry::JsonLog log_{"api"};
  std::string thread_id_;
  std::string turn_id_;
  std::string text_;
  std::vector<ToolCallOut> calls_;
  ReasoningItems reasoning_;
  AnswerText answer_;
  std::vector<nlohmann::json> pending_calls_;  // ids of item/tool/call requests not answered yet
  std::vector<std::string> announced_calls_;   // call ids of the model's response, in its order
  bool response_done_ = false;                 // rawResponse/completed arrived
  nlohmann::json model_error_;                 // the latest final `error` notification of the turn
  std::optional<TokenUsage> usage_;
  std::optional<TraceRecording> trace_;  // set when the trace buffer is on at the request's start
  std::shared_ptr<TurnSession> self_;    // keeps the session alive until it ends
  bool streaming_ = false;
  bool finished_ = false;
  std::chrono::steady_clock::time_point started_at_;
};

}  // namespace cxp::proxy
