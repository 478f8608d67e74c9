#include "proxy/api/chat_request.h"

#include <algorithm>
#include <nlohmann/json.hpp>
#include <optional>

namespace cxp::proxy {
namespace {

using nlohmann::json;

ApiError invalid(std::string param, std::string message) {
  ApiError e;
  e.status = 400;
  e.code = "invalid_request_error";
  e.param = std::move(param);
  e.message = std::move(message);
  return e;
}

std::string type_name(const json& value) {
  return value.is_null() ? "null" : std::string(value.type_name());
}

// Content is a string, null, or an array of {type:"text", text} parts.
std::variant<std::string, ApiError> content_text(const json& content, const std::string& param) {
  if (content.is_null()) return std::string();
  if (content.is_string()) return content.get<std::string>();
  if (!content.is_array()) {
    return invalid(param, param + ": expected a string or an array of content parts, found " +
                              type_name(content));
  }
  std::string text;
  for (std::size_t i = 0; i < content.size(); ++i) {
    const auto& part = content[i];
    const std::string where = param + "[" + std::to_string(i) + "]";
    if (!part.is_object() || !part.contains("type") || !part["type"].is_string()) {
      return invalid(where, where + ": expected an object with a string \"type\"");
    }
    const auto type = part["type"].get<std::string>();
    if (type != "text") {
      return invalid(where + ".type", where + ".type: content part type '" + type +
                                          "' is not supported; only 'text' is");
    }
    if (!part.contains("text") || !part["text"].is_string()) {
      return invalid(where + ".text", where + ".text: expected a string");
    }
    text += part["text"].get<std::string>();
  }
  return text;
}

bool valid_function_name(const std::string& name) {
  if (name.empty() || name.size() > 64) return false;
  for (char c : name) {
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-')) return false;
  }
  return true;
}

// An assistant message's earlier tool calls become text in the calling convention; a tool result
// is labelled with the call it answers.
std::optional<ApiError> parse_message_tool_fields(const json& m, const std::string& where,
                                                  ChatMessage& message) {
  if (message.role == "tool") {
    if (const auto id = m.find("tool_call_id"); id != m.end() && id->is_string()) {
      message.role = "tool result " + id->get<std::string>().substr(0, 128);
    }
    return std::nullopt;
  }
  const auto calls = m.find("tool_calls");
  if (message.role != "assistant" || calls == m.end() || calls->is_null()) return std::nullopt;
  if (!calls->is_array())
    return invalid(where + ".tool_calls", where + ".tool_calls: expected an array");
  for (std::size_t i = 0; i < calls->size(); ++i) {
    const auto& call = (*calls)[i];
    const std::string at = where + ".tool_calls[" + std::to_string(i) + "]";
    if (!call.is_object() || !call.contains("function") || !call["function"].is_object() ||
        !call["function"].contains("name") || !call["function"]["name"].is_string()) {
      return invalid(
          at, at + ": expected {\"type\":\"function\",\"function\":{\"name\",\"arguments\"}}");
    }
    const auto& function = call["function"];
    json rendered = {{"name", function["name"]}};
    const auto arguments = function.value("arguments", json("{}"));
    const auto parsed = arguments.is_string()
                            ? json::parse(arguments.get<std::string>(), nullptr, false)
                            : arguments;
    rendered["arguments"] = parsed.is_discarded() ? arguments : parsed;
    if (!message.content.empty()) message.content += "\n";
    message.content += "<tool_call>" + rendered.dump() + "</tool_call>";
  }
  return std::nullopt;
}

std::optional<ApiError> parse_tools(const json& root, ChatRequest& request) {
  const auto tools = root.find("tools");
  if (tools != root.end() && !tools->is_null()) {
    if (!tools->is_array())
      return invalid("tools", "tools: expected an array, found " + type_name(*tools));
    for (std::size_t i = 0; i < tools->size(); ++i) {
      const auto& tool = (*tools)[i];
      const std::string at = "tools[" + std::to_string(i) + "]";
      if (!tool.is_object() || tool.value("type", "") != "function") {
        return invalid(at + ".type", at + ".type: only \"function\" tools are supported");
      }
      const auto function = tool.find("function");
      if (function == tool.end() || !function->is_object()) {
        return invalid(at + ".function", at + ".function: expected an object");
      }
      const auto name = function->value("name", json());
      if (!name.is_string() || !valid_function_name(name.get<std::string>())) {
        return invalid(at + ".function.name",
                       at + ".function.name: expected 1-64 characters of [A-Za-z0-9_-]");
      }
      ToolSpec spec{name.get<std::string>(), "", "{}"};
      if (const auto d = function->find("description"); d != function->end() && d->is_string()) {
        spec.description = d->get<std::string>();
      }
      if (const auto p = function->find("parameters"); p != function->end() && !p->is_null()) {
        if (!p->is_object())
          return invalid(at + ".function.parameters",
                         at + ".function.parameters: expected an object");
        spec.parameters_json = p->dump();
      }
      request.tools.push_back(std::move(spec));
    }
  }
  const auto choice = root.find("tool_choice");
  if (choice == root.end() || choice->is_null()) return std::nullopt;
  if (choice->is_string()) {
    const auto value = choice->get<std::string>();
    if (value != "none" && value != "auto" && value != "required") {
      return invalid("tool_choice",
                     "tool_choice: expected none, auto, required or a function object");
    }
    request.tool_choice = value;
  } else if (choice->is_object() && choice->contains("function") &&
             (*choice)["function"].is_object() &&
             (*choice)["function"].value("name", json()).is_string()) {
    request.tool_choice = (*choice)["function"]["name"].get<std::string>();
    const bool known =
        std::any_of(request.tools.begin(), request.tools.end(),
                    [&](const ToolSpec& t) { return t.name == request.tool_choice; });
    if (!known)
      return invalid("tool_choice",
                     "tool_choice: no tool named '" + request.tool_choice.substr(0, 64) + "'");
  } else {
    return invalid("tool_choice",
                   "tool_choice: expected none, auto, required or a function object");
  }
  if (request.tool_choice != "none" && request.tool_choice != "auto" && request.tools.empty()) {
    return invalid("tool_choice", "tool_choice: requires tools");
  }
  return std::nullopt;
}

std::string tool_instructions(const ChatRequest& request) {
  std::string out = "You can call these tools:\n";
  for (const auto& tool : request.tools) {
    out += "- " + tool.name;
    if (!tool.description.empty()) out += ": " + tool.description;
    out += "\n  parameters (JSON Schema): " + tool.parameters_json + "\n";
  }
  out +=
      "To call a tool, write one block per call, exactly in this form, with the arguments as a "
      "JSON object:\n"
      "<tool_call>{\"name\": \"<tool name>\", \"arguments\": {...}}</tool_call>\n"
      "Results come back in a later message labelled [tool result <id>].";
  if (request.tool_choice == "required") {
    out += "\nYou must call at least one tool in this answer.";
  } else if (request.tool_choice != "auto") {
    out += "\nYou must call the tool " + request.tool_choice + " in this answer.";
  }
  return out;
}

}  // namespace

std::variant<ChatRequest, ApiError> parse_chat_request(std::string_view body,
                                                       const std::vector<std::string>& models,
                                                       const std::string& default_model) {
  const json root = json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (root.is_discarded()) return invalid("", "request body is not valid JSON");
  if (!root.is_object())
    return invalid("", "request body must be a JSON object, found " + type_name(root));

  ChatRequest request;
  if (const auto model = root.find("model"); model != root.end() && !model->is_null()) {
    if (!model->is_string())
      return invalid("model", "model: expected a string, found " + type_name(*model));
    request.model = model->get<std::string>();
  } else {
    request.model = default_model;
  }
  if (std::find(models.begin(), models.end(), request.model) == models.end()) {
    ApiError e = invalid("model", "The model '" + request.model.substr(0, 200) +
                                      "' does not exist; GET /v1/models lists the served models");
    e.status = 404;
    e.code = "model_not_found";
    return e;
  }

  const auto messages = root.find("messages");
  if (messages == root.end()) return invalid("messages", "messages: required");
  if (!messages->is_array()) {
    return invalid("messages", "messages: expected an array, found " + type_name(*messages));
  }
  if (messages->empty()) return invalid("messages", "messages: must contain at least one message");
  for (std::size_t i = 0; i < messages->size(); ++i) {
    const auto& m = (*messages)[i];
    const std::string where = "messages[" + std::to_string(i) + "]";
    if (!m.is_object())
      return invalid(where, where + ": expected an object, found " + type_name(m));
    const auto role = m.find("role");
    if (role == m.end() || !role->is_string())
      return invalid(where + ".role", where + ".role: expected a string");
    const auto role_name = role->get<std::string>();
    if (role_name != "system" && role_name != "developer" && role_name != "user" &&
        role_name != "assistant" && role_name != "tool") {
      return invalid(where + ".role", where + ".role: unknown role '" + role_name.substr(0, 64) +
                                          "'; expected system, developer, user, assistant or tool");
    }
    auto text = content_text(m.contains("content") ? m["content"] : json(), where + ".content");
    if (auto* error = std::get_if<ApiError>(&text)) return *error;
    ChatMessage message{role_name, std::get<std::string>(std::move(text))};
    if (auto error = parse_message_tool_fields(m, where, message)) return *error;
    request.messages.push_back(std::move(message));
  }

  if (const auto n = root.find("n"); n != root.end() && !n->is_null()) {
    if (!n->is_number_integer())
      return invalid("n", "n: expected an integer, found " + type_name(*n));
    if (n->get<std::int64_t>() != 1)
      return invalid("n", "n: only 1 choice per request is supported");
  }
  if (const auto stream = root.find("stream"); stream != root.end() && !stream->is_null()) {
    if (!stream->is_boolean())
      return invalid("stream", "stream: expected a boolean, found " + type_name(*stream));
    request.stream = stream->get<bool>();
  }
  if (const auto options = root.find("stream_options");
      options != root.end() && !options->is_null()) {
    if (!options->is_object())
      return invalid("stream_options", "stream_options: expected an object");
    if (const auto usage = options->find("include_usage");
        usage != options->end() && !usage->is_null()) {
      if (!usage->is_boolean()) {
        return invalid("stream_options.include_usage",
                       "stream_options.include_usage: expected a boolean");
      }
      request.include_usage = usage->get<bool>();
    }
  }
  if (auto error = parse_tools(root, request)) return *error;
  return request;
}

TurnInput render_turn_input(const ChatRequest& request) {
  TurnInput input;
  std::vector<const ChatMessage*> conversation;
  for (const auto& message : request.messages) {
    if (message.role == "system" || message.role == "developer") {
      if (!input.instructions.empty()) input.instructions += "\n\n";
      input.instructions += message.content;
    } else {
      conversation.push_back(&message);
    }
  }
  if (request.tools_active()) {
    if (!input.instructions.empty()) input.instructions += "\n\n";
    input.instructions += tool_instructions(request);
  }
  if (conversation.size() == 1 && conversation.front()->role == "user") {
    input.text = conversation.front()->content;
    return input;
  }
  for (const auto* message : conversation) {
    if (!input.text.empty()) input.text += "\n\n";
    input.text += "[" + message->role + "]\n" + message->content;
  }
  return input;
}

}  // namespace cxp::proxy
