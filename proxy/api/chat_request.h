#pragma once

#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "proxy/api/api_error.h"
#include "proxy/api/turn_request.h"

namespace cxp::proxy {

// Parses and validates a POST /v1/chat/completions body into the turn it asks for. Unknown fields
// are ignored. `default_model` fills a missing model; a model not in `models` is refused with 404
// model_not_found. Every error names the field at fault.
//
// system and developer messages become the instructions; the other messages the conversation, as
// the model sees it natively: user and assistant messages, an assistant's `tool_calls` as function
// calls, a `tool` message as the output of the call its `tool_call_id` names (which must be one
// of an earlier assistant message).
//
// Generation parameters: `response_format` (structured outputs), `reasoning_effort`, `stop` (up to
// 4 strings), image parts of user messages (data URLs); the fields codex cannot honour are
// reported in TurnRequest::ignored_params or refused (request_fields.h).
std::variant<TurnRequest, ApiError> parse_chat_request(std::string_view body,
                                                       const ParseOptions& options);

}  // namespace cxp::proxy
