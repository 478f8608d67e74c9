#include "proxy/api/chat_request.h"

#include <nlohmann/json.hpp>

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
    request.messages.push_back({role_name, std::get<std::string>(std::move(text))});
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
  if (const auto tools = root.find("tools");
      tools != root.end() && !tools->is_null() && !(tools->is_array() && tools->empty())) {
    return invalid("tools", "tools: tool calling is not supported by this proxy version");
  }
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
