#pragma once

#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "proxy/api/api_error.h"
#include "proxy/api/turn_request.h"

namespace cxp::proxy {

// Parses and validates a POST /v1/responses body (the OpenAI Responses API) into the turn it asks
// for. Function tools are offered to the model; other tool types (hosted tools such as web_search,
// namespaces) are left out and listed in TurnRequest::ignored_tools. `input` is a string or a list
// of items: messages (role user, assistant, system, developer;
// content a string or input_text/output_text parts), function_call and function_call_output
// (which must answer an earlier function_call of the list); reasoning items are accepted and
// ignored. `instructions`, system and developer messages become the instructions. `tools`,
// `tool_choice` ("none", "auto", "required", {"type":"function","name"}),
// `parallel_tool_calls`, `stream`. codex-proxy stores no responses: `previous_response_id` and
// `conversation` are refused with a 400 saying so. Unknown fields are ignored; every error names
// the field at fault.
//
// Generation parameters: `text.format` (structured outputs), `reasoning.effort`,
// `reasoning.summary`, `input_image` parts of user messages (data URLs); the fields codex cannot
// honour are reported in TurnRequest::ignored_params or refused (request_fields.h).
std::variant<TurnRequest, ApiError> parse_responses_request(std::string_view body,
                                                            const ParseOptions& options);

}  // namespace cxp::proxy
