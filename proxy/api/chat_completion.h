#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <memory>
#include <optional>
#include <string>

#include "common/http/http_exchange.h"
#include "common/telemetry/json_log.h"
#include "common/telemetry/redaction.h"
#include "proxy/api/admission_gate.h"
#include "proxy/api/api_error.h"
#include "proxy/api/chat_request.h"
#include "proxy/api/chat_response.h"
#include "proxy/api/tool_call_extractor.h"
#include "proxy/api/turn_router.h"
#include "proxy/rpc/json_rpc_channel.h"
#include "proxy/trace/trace_buffer.h"

namespace cxp::proxy {

// Counters of the API kept in one place and read by /metrics.
struct ApiStats {
  ToolBufferCounters tool_buffer;
  std::atomic<std::int64_t> streams_active{0};
};

struct ChatSettings {
  std::chrono::milliseconds request_timeout{120000};
  std::chrono::milliseconds keepalive{15000};
  std::string cwd = "/";
  std::string worker_model;   // CODEX_MODEL: what the worker runs, whichever alias the client named
  ApiStats* stats = nullptr;  // shared by all requests; required
  TraceBuffer* trace = nullptr;  // optional: records the request's JSON-RPC frames when enabled
  // Removes the proxy's secrets (and the model key) from error messages sent to clients; required.
  const telemetry::Redactor* redactor = nullptr;
};

// One chat completion: an ephemeral thread and one turn on the worker, its notifications mapped
// back to a JSON completion or an SSE stream. Ends exactly once: completed, failed (error envelope
// or SSE error event + [DONE]), timed out (504, the turn interrupted), or abandoned by the client
// (the turn interrupted). Holds its admission ticket until it ends.
class ChatCompletion : public TurnListener, public std::enable_shared_from_this<ChatCompletion> {
 public:
  ChatCompletion(boost::asio::io_context& io, http::ExchangePtr exchange, ChatRequest request,
                 std::shared_ptr<JsonRpcChannel> channel, TurnRouter& router, ChatSettings settings,
                 AdmissionGate::TicketPtr ticket);

  void start();

  void on_worker_notification(const RpcNotification& notification) override;
  void on_worker_lost(const std::string& reason) override;

 private:
  void on_thread_started(RpcOutcome outcome);
  void on_turn_started(RpcOutcome outcome);
  // turn/start answered after the request ended (client gone, deadline): the turn runs for nobody.
  void interrupt_late_turn(const RpcOutcome& outcome);
  void on_turn_completed(const nlohmann::json& params);
  void emit(std::string bytes);
  void take(ExtractedOutput output);  // model text after tool-call extraction
  void schedule_keepalive();
  void on_deadline();
  void on_client_gone();
  void interrupt_turn();
  void complete(const std::string& finish_reason);
  void fail(const ApiError& error);
  void finish();
  void write_trace();

  boost::asio::io_context& io_;
  http::ExchangePtr exchange_;
  ChatRequest request_;
  std::shared_ptr<JsonRpcChannel> channel_;
  TurnRouter& router_;
  ChatSettings settings_;
  AdmissionGate::TicketPtr ticket_;
  CompletionMeta meta_;
  boost::asio::steady_timer deadline_;
  boost::asio::steady_timer keepalive_;
  telemetry::JsonLog log_{"api"};
  std::string thread_id_;
  std::string turn_id_;
  std::string text_;
  std::optional<ToolCallExtractor> extractor_;
  std::optional<TraceRecording> trace_;  // set when the trace buffer is on at the request's start
  void trace(std::string_view direction, const nlohmann::json& frame);
  void rpc(std::string_view method, nlohmann::json params,
           std::function<void(RpcOutcome)> done);  // only when the request has active tools
  std::vector<ToolCallOut> calls_;
  nlohmann::json model_error_;  // the latest final `error` notification of the turn
  std::optional<TokenUsage> usage_;
  std::shared_ptr<ChatCompletion> self_;  // keeps the completion alive until it ends
  bool streaming_ = false;
  bool finished_ = false;
  std::chrono::steady_clock::time_point started_at_;
};

}  // namespace cxp::proxy
