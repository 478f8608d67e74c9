#pragma once

#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "proxy/api/api_error.h"

namespace cxp::proxy {

struct ChatMessage {
  std::string role;  // system, developer, user, assistant, tool
  std::string content;
};

// A function the model may call (`tools[].function`).
struct ToolSpec {
  std::string name;
  std::string description;
  std::string parameters_json;  // JSON Schema of the arguments, "{}" when absent
};

// A validated POST /v1/chat/completions body. Unknown fields are ignored.
struct ChatRequest {
  std::string model;
  std::vector<ChatMessage> messages;
  bool stream = false;
  bool include_usage = false;  // stream_options.include_usage
  std::vector<ToolSpec> tools;
  std::string tool_choice = "auto";  // "none", "auto", "required", or a function name

  bool tools_active() const { return !tools.empty() && tool_choice != "none"; }
};

// What one worker turn receives.
struct TurnInput {
  std::string instructions;  // system and developer messages, joined by blank lines
  std::string text;          // the conversation (see render_turn_input)
};

// Parses and validates a request body. `default_model` fills a missing model; a model not in
// `models` is refused with 404 model_not_found. Every error names the field at fault.
std::variant<ChatRequest, ApiError> parse_chat_request(std::string_view body,
                                                       const std::vector<std::string>& models,
                                                       const std::string& default_model);

// The conversation as one turn's text. A single user message is passed as it is; otherwise each
// non-instruction message becomes a block "[role]\n<content>" and blocks are separated by blank
// lines, ending with the latest message. With active tools, the instructions end with the tool
// list and the calling convention `<tool_call>{"name":…,"arguments":{…}}</tool_call>`; earlier
// assistant tool calls are rendered in that form and tool results as "[tool result <id>]"
// blocks (docs/api.md).
TurnInput render_turn_input(const ChatRequest& request);

}  // namespace cxp::proxy
