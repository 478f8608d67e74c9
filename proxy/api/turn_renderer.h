#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "proxy/api/api_error.h"
#include "proxy/api/chat_response.h"
#include "proxy/api/turn_request.h"

namespace cxp::proxy {

// A reasoning item of the model: its id and the parts of its summary (empty unless the caller
// asked for a summary).
struct ReasoningOut {
  std::string id;
  std::vector<std::string> summary;
  bool done = false;
};

// What a finished turn produced.
struct TurnOutcome {
  std::string text;
  std::vector<ToolCallOut> calls;
  std::string finish_reason;  // "stop" or "tool_calls"
  std::optional<TokenUsage> usage;
  std::vector<ReasoningOut> reasoning;
};

// How one endpoint renders a turn: the only part of a request's path that differs between
// /v1/chat/completions and /v1/responses besides parsing. One renderer per request; it may keep
// what its stream format needs (open items, indexes). Every method returns the bytes to send.
class TurnRenderer {
 public:
  virtual ~TurnRenderer() = default;
  virtual std::string_view route() const = 0;
  // The first events of a streamed answer (sent once the turn started).
  virtual std::string stream_start() = 0;
  virtual std::string text_delta(std::string_view delta) = 0;
  virtual std::string tool_call(std::size_t index, const ToolCallOut& call) = 0;
  // The model's reasoning, when the endpoint shows it (the Responses API): an item begun, a delta
  // of its summary part `summary_index`, the item finished.
  virtual std::string reasoning_started(const std::string& /*id*/) { return ""; }
  virtual std::string reasoning_delta(const std::string& /*id*/, std::size_t /*summary_index*/,
                                      std::string_view /*delta*/) {
    return "";
  }
  virtual std::string reasoning_done(const ReasoningOut& /*item*/) { return ""; }
  // The last events: finish, usage, the stream's terminator.
  virtual std::string stream_end(const TurnOutcome& outcome) = 0;
  // A failure after the stream started: an error event and the terminator.
  virtual std::string stream_error(const ApiError& error) = 0;
  // The whole answer as one JSON body.
  virtual std::string body(const TurnOutcome& outcome) = 0;
};

// Chat completions: `chat.completion` / `chat.completion.chunk` objects, `data: [DONE]`.
std::unique_ptr<TurnRenderer> make_chat_renderer(const std::string& request_id,
                                                 const TurnRequest& request);
// The Responses API: a `response` object; typed events (`response.created` …
// `response.completed` / `response.failed`).
std::unique_ptr<TurnRenderer> make_responses_renderer(const std::string& request_id,
                                                      const TurnRequest& request);

}  // namespace cxp::proxy
