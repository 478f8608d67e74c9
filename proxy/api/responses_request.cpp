#include "proxy/api/responses_request.h"

#include <algorithm>
#include <nlohmann/json.hpp>
#include <set>

namespace cxp::proxy {
namespace {

using nlohmann::json;

std::string type_name(const json& value) {
  return value.is_null() ? "null" : std::string(value.type_name());
}

// A message's content: a string, or parts of type input_text, output_text or text.
std::variant<std::string, ApiError> content_text(const json& content, const std::string& where) {
  if (content.is_string()) return content.get<std::string>();
  if (!content.is_array()) {
    return invalid_request(
        where,
        where + ": expected a string or an array of content parts, found " + type_name(content));
  }
  std::string text;
  for (std::size_t i = 0; i < content.size(); ++i) {
    const auto& part = content[i];
    const std::string at = where + "[" + std::to_string(i) + "]";
    const auto type = part.is_object() ? part.value("type", json()) : json();
    if (!type.is_string())
      return invalid_request(at, at + ": expected an object with a string \"type\"");
    const auto kind = type.get<std::string>();
    if (kind != "input_text" && kind != "output_text" && kind != "text") {
      return invalid_request(at + ".type", at + ".type: content of type '" + kind.substr(0, 64) +
                                               "' is not supported; only text is (input_text, "
                                               "output_text)");
    }
    if (!part.value("text", json()).is_string())
      return invalid_request(at + ".text", at + ".text: expected a string");
    text += part["text"].get<std::string>();
  }
  return text;
}

std::optional<ApiError> parse_input_items(const json& items, std::string& instructions,
                                          std::vector<HistoryItem>& conversation) {
  std::set<std::string> call_ids;
  for (std::size_t i = 0; i < items.size(); ++i) {
    const auto& item = items[i];
    const std::string where = "input[" + std::to_string(i) + "]";
    if (!item.is_object()) return invalid_request(where, where + ": expected an object");
    const std::string type = item.value("type", json("message")).is_string()
                                 ? item.value("type", std::string("message"))
                                 : std::string();
    if (type == "message") {
      const auto role = item.value("role", json());
      if (!role.is_string())
        return invalid_request(where + ".role", where + ".role: expected a string");
      auto text = content_text(item.value("content", json()), where + ".content");
      if (auto* error = std::get_if<ApiError>(&text)) return *error;
      auto content = std::get<std::string>(std::move(text));
      const auto name = role.get<std::string>();
      if (name == "system" || name == "developer") {
        if (!instructions.empty()) instructions += "\n\n";
        instructions += content;
      } else if (name == "user" || name == "assistant") {
        conversation.push_back({name == "user" ? HistoryItem::Kind::kUserMessage
                                               : HistoryItem::Kind::kAssistantMessage,
                                std::move(content), "", "", ""});
      } else {
        return invalid_request(where + ".role",
                               where + ".role: unknown role '" + name.substr(0, 64) +
                                   "'; expected user, assistant, system or developer");
      }
    } else if (type == "function_call") {
      const auto call_id = item.value("call_id", json());
      const auto name = item.value("name", json());
      const auto arguments = item.value("arguments", json("{}"));
      if (!call_id.is_string() || !name.is_string() || !arguments.is_string()) {
        return invalid_request(
            where, where + ": a function_call needs string call_id, name and arguments");
      }
      call_ids.insert(call_id.get<std::string>());
      conversation.push_back({HistoryItem::Kind::kFunctionCall, "", call_id.get<std::string>(),
                              name.get<std::string>(), arguments.get<std::string>()});
    } else if (type == "function_call_output") {
      const auto call_id = item.value("call_id", json());
      if (!call_id.is_string())
        return invalid_request(where + ".call_id", where + ".call_id: expected a string");
      if (!call_ids.count(call_id.get<std::string>())) {
        return invalid_request(where + ".call_id",
                               where + ".call_id: '" + call_id.get<std::string>().substr(0, 128) +
                                   "' answers no earlier function_call of input");
      }
      const auto output = item.value("output", json(""));
      std::string text;
      if (output.is_string()) {
        text = output.get<std::string>();
      } else {
        auto parts = content_text(output, where + ".output");
        if (auto* error = std::get_if<ApiError>(&parts)) return *error;
        text = std::get<std::string>(std::move(parts));
      }
      conversation.push_back({HistoryItem::Kind::kFunctionCallOutput, std::move(text),
                              call_id.get<std::string>(), "", ""});
    } else if (type == "reasoning") {
      continue;  // a model's reasoning of an earlier response: the worker reasons anew
    } else {
      return invalid_request(where + ".type", where + ".type: input items of type '" +
                                                  type.substr(0, 64) +
                                                  "' are not supported (messages, function_call, "
                                                  "function_call_output and reasoning are)");
    }
  }
  return std::nullopt;
}

std::optional<ApiError> parse_tools(const json& root, TurnRequest& request) {
  const auto tools = root.find("tools");
  if (tools != root.end() && !tools->is_null()) {
    if (!tools->is_array())
      return invalid_request("tools", "tools: expected an array, found " + type_name(*tools));
    for (std::size_t i = 0; i < tools->size(); ++i) {
      const auto& tool = (*tools)[i];
      const std::string at = "tools[" + std::to_string(i) + "]";
      if (!tool.is_object() || !tool.value("type", json()).is_string()) {
        return invalid_request(at + ".type",
                               at + ".type: expected a tool object with a string type");
      }
      if (tool["type"] != "function") {
        // A hosted tool (web_search, file_search, …) or a namespace: codex-proxy's worker cannot
        // run these for the caller. The request goes on without it, as with any provider that
        // lacks a tool (e.g. the Codex CLI's web_search).
        if (request.ignored_tools.size() < 32) {
          request.ignored_tools.push_back(tool["type"].get<std::string>().substr(0, 64) +
                                          (tool.value("name", json()).is_string()
                                               ? ":" + tool["name"].get<std::string>().substr(0, 64)
                                               : std::string()));
        }
        continue;
      }
      ToolSpec spec;
      if (auto error = parse_tool(tool.value("name", json()), tool.value("description", json()),
                                  tool.value("parameters", json()), at, request.tools, spec)) {
        return error;
      }
      request.tools.push_back(std::move(spec));
    }
  }
  if (const auto parallel = root.find("parallel_tool_calls");
      parallel != root.end() && !parallel->is_null()) {
    if (!parallel->is_boolean())
      return invalid_request("parallel_tool_calls", "parallel_tool_calls: expected a boolean");
    request.parallel_tool_calls = parallel->get<bool>();
  }
  const auto choice = root.find("tool_choice");
  if (choice == root.end() || choice->is_null()) return std::nullopt;
  if (choice->is_string() && (*choice == "none" || *choice == "auto" || *choice == "required")) {
    request.tool_choice = choice->get<std::string>();
  } else if (choice->is_object() && choice->value("type", "") == "function" &&
             choice->value("name", json()).is_string()) {
    request.tool_choice = (*choice)["name"].get<std::string>();
  } else {
    return invalid_request("tool_choice",
                           "tool_choice: expected none, auto, required or "
                           "{\"type\":\"function\",\"name\":…}");
  }
  return std::nullopt;
}

}  // namespace

std::variant<TurnRequest, ApiError> parse_responses_request(std::string_view body,
                                                            const std::vector<std::string>& models,
                                                            const std::string& default_model) {
  const json root = json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (root.is_discarded()) return invalid_request("", "request body is not valid JSON");
  if (!root.is_object())
    return invalid_request("", "request body must be a JSON object, found " + type_name(root));
  for (const char* stateful : {"previous_response_id", "conversation"}) {
    if (const auto found = root.find(stateful); found != root.end() && !found->is_null()) {
      return invalid_request(stateful,
                             std::string(stateful) +
                                 ": not supported — codex-proxy stores no responses; send "
                                 "the whole conversation in `input`");
    }
  }

  TurnRequest request;
  request.include_usage = true;
  if (const auto model = root.find("model"); model != root.end() && !model->is_null()) {
    if (!model->is_string())
      return invalid_request("model", "model: expected a string, found " + type_name(*model));
    request.model = model->get<std::string>();
  } else {
    request.model = default_model;
  }
  if (std::find(models.begin(), models.end(), request.model) == models.end()) {
    ApiError e =
        invalid_request("model", "The model '" + request.model.substr(0, 200) +
                                     "' does not exist; GET /v1/models lists the served models");
    e.status = 404;
    e.code = "model_not_found";
    return e;
  }
  if (const auto instructions = root.find("instructions");
      instructions != root.end() && !instructions->is_null()) {
    if (!instructions->is_string())
      return invalid_request("instructions", "instructions: expected a string");
    request.instructions = instructions->get<std::string>();
  }
  const auto input = root.find("input");
  if (input == root.end() || input->is_null()) return invalid_request("input", "input: required");
  std::vector<HistoryItem> conversation;
  if (input->is_string()) {
    conversation.push_back(
        {HistoryItem::Kind::kUserMessage, input->get<std::string>(), "", "", ""});
  } else if (input->is_array()) {
    if (auto error = parse_input_items(*input, request.instructions, conversation)) return *error;
  } else {
    return invalid_request(
        "input", "input: expected a string or an array of items, found " + type_name(*input));
  }
  split_last_user_message(std::move(conversation), request);
  if (const auto stream = root.find("stream"); stream != root.end() && !stream->is_null()) {
    if (!stream->is_boolean())
      return invalid_request("stream", "stream: expected a boolean, found " + type_name(*stream));
    request.stream = stream->get<bool>();
  }
  if (auto error = parse_tools(root, request)) return *error;
  if (auto error = validate_turn_request(request)) {
    if (error->param == "messages") error->param = "input";
    return *error;
  }
  return request;
}

}  // namespace cxp::proxy
