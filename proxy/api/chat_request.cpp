#include "proxy/api/chat_request.h"

#include <algorithm>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>

#include "proxy/api/request_fields.h"

namespace cxp::proxy {
namespace {

using nlohmann::json;

constexpr std::size_t kMaxStops = 4;  // OpenAI's bound
constexpr std::size_t kMaxStopBytes = 256;

// An assistant message's tool calls become function calls of the conversation.
std::optional<ApiError> parse_assistant_calls(const json& m, const std::string& where,
                                              std::vector<HistoryItem>& out,
                                              std::set<std::string>& call_ids) {
  const auto calls = m.find("tool_calls");
  if (calls == m.end() || calls->is_null()) return std::nullopt;
  if (!calls->is_array())
    return invalid_request(where + ".tool_calls", where + ".tool_calls: expected an array");
  for (std::size_t i = 0; i < calls->size(); ++i) {
    const auto& call = (*calls)[i];
    const std::string at = where + ".tool_calls[" + std::to_string(i) + "]";
    if (!call.is_object() || !call.value("id", json()).is_string() || !call.contains("function") ||
        !call["function"].is_object() || !call["function"].value("name", json()).is_string()) {
      return invalid_request(
          at,
          at + ": expected {\"id\",\"type\":\"function\",\"function\":{\"name\",\"arguments\"}}");
    }
    const auto& function = call["function"];
    const auto arguments = function.value("arguments", json("{}"));
    HistoryItem item;
    item.kind = HistoryItem::Kind::kFunctionCall;
    item.call_id = call["id"].get<std::string>();
    item.name = function["name"].get<std::string>();
    item.arguments = arguments.is_string() ? arguments.get<std::string>() : arguments.dump();
    call_ids.insert(item.call_id);
    out.push_back(std::move(item));
  }
  return std::nullopt;
}

std::optional<ApiError> parse_tools(const json& root, TurnRequest& request) {
  auto error =
      read_tools(root, [&](const json& tool, const std::string& at) -> std::optional<ApiError> {
        if (!tool.is_object() || tool.value("type", "") != "function") {
          return invalid_request(at + ".type", at + ".type: only \"function\" tools are supported");
        }
        const auto function = tool.find("function");
        if (function == tool.end() || !function->is_object()) {
          return invalid_request(at + ".function", at + ".function: expected an object");
        }
        ToolSpec spec;
        if (auto bad = parse_tool(
                function->value("name", json()), function->value("description", json()),
                function->value("parameters", json()), at + ".function", request.tools, spec)) {
          return bad;
        }
        request.tools.push_back(std::move(spec));
        return std::nullopt;
      });
  if (error) return error;
  return read_tool_choice(root, "/function/name",
                          "{\"type\":\"function\",\"function\":{\"name\":…}}", request);
}

// `stop`: a string or up to 4 strings, each 1-256 characters.
std::optional<ApiError> read_stop(const json& root, TurnRequest& request) {
  const auto stop = root.find("stop");
  if (stop == root.end() || stop->is_null()) return std::nullopt;
  const json list = stop->is_string() ? json::array({*stop}) : *stop;
  if (!list.is_array() || list.size() > kMaxStops) {
    return invalid_request("stop", "stop: expected a string or an array of up to " +
                                       std::to_string(kMaxStops) + " strings");
  }
  for (std::size_t i = 0; i < list.size(); ++i) {
    const std::string at = stop->is_string() ? "stop" : "stop[" + std::to_string(i) + "]";
    if (!list[i].is_string() || list[i].get_ref<const std::string&>().empty() ||
        list[i].get_ref<const std::string&>().size() > kMaxStopBytes) {
      return invalid_request(
          at, at + ": expected a string of 1-" + std::to_string(kMaxStopBytes) + " bytes");
    }
    request.stop.push_back(list[i].get<std::string>());
  }
  return std::nullopt;
}

}  // namespace

std::variant<TurnRequest, ApiError> parse_chat_request(std::string_view body,
                                                       const ParseOptions& options) {
  auto parsed = parse_body_object(body);
  if (auto* error = std::get_if<ApiError>(&parsed)) return *error;
  const json root = std::get<json>(std::move(parsed));

  TurnRequest request;
  if (auto error = read_model(root, options.models, options.default_model, request)) return *error;
  if (auto error = refused_field(root, "chat")) return *error;
  ImageBudget images;
  const ImagePartReader read_image_part = [&](const json& part, const std::string& at,
                                              ImageInput& out) -> std::optional<ApiError> {
    // {"type":"image_url","image_url":{"url","detail"}} (or the URL as a string)
    const auto image = part.value("image_url", json());
    if (image.is_string()) {
      return read_image(image, json(), at + ".image_url", at + ".image_url.detail", options.images,
                        images, out);
    }
    if (!image.is_object()) {
      return invalid_request(at + ".image_url", at + ".image_url: expected {\"url\", \"detail\"}");
    }
    return read_image(image.value("url", json()), image.value("detail", json()),
                      at + ".image_url.url", at + ".image_url.detail", options.images, images, out);
  };

  const auto messages = root.find("messages");
  if (messages == root.end()) return invalid_request("messages", "messages: required");
  if (!messages->is_array()) {
    return invalid_request("messages",
                           "messages: expected an array, found " + json_type_name(*messages));
  }
  if (messages->empty())
    return invalid_request("messages", "messages: must contain at least one message");
  std::vector<HistoryItem> conversation;
  std::set<std::string> call_ids;
  for (std::size_t i = 0; i < messages->size(); ++i) {
    const auto& m = (*messages)[i];
    const std::string where = "messages[" + std::to_string(i) + "]";
    if (!m.is_object())
      return invalid_request(where, where + ": expected an object, found " + json_type_name(m));
    const auto role = m.find("role");
    if (role == m.end() || !role->is_string())
      return invalid_request(where + ".role", where + ".role: expected a string");
    const auto role_name = role->get<std::string>();
    const json content_field = m.contains("content") ? m["content"] : json();
    if (role_name == "user") {
      auto parts = user_content(content_field.is_null() ? json("") : content_field,
                                where + ".content", {"text"}, "image_url", read_image_part);
      if (auto* error = std::get_if<ApiError>(&parts)) return *error;
      HistoryItem item;
      item.parts = std::get<std::vector<MessagePart>>(std::move(parts));
      conversation.push_back(std::move(item));
      continue;
    }
    auto text = content_text(content_field, where + ".content", {"text"}, true);
    if (auto* error = std::get_if<ApiError>(&text)) return *error;
    auto content = std::get<std::string>(std::move(text));
    if (role_name == "system" || role_name == "developer") {
      if (!request.instructions.empty()) request.instructions += "\n\n";
      request.instructions += content;
    } else if (role_name == "assistant") {
      if (!content.empty()) {
        conversation.push_back(
            {HistoryItem::Kind::kAssistantMessage, std::move(content), "", "", "", {}});
      }
      if (auto error = parse_assistant_calls(m, where, conversation, call_ids)) return *error;
    } else if (role_name == "tool") {
      const auto id = m.find("tool_call_id");
      if (id == m.end() || !id->is_string()) {
        return invalid_request(where + ".tool_call_id", where + ".tool_call_id: expected a string");
      }
      if (!call_ids.count(id->get<std::string>())) {
        return invalid_request(where + ".tool_call_id",
                               where + ".tool_call_id: '" + id->get<std::string>().substr(0, 128) +
                                   "' answers no tool call of an earlier assistant message");
      }
      conversation.push_back({HistoryItem::Kind::kFunctionCallOutput,
                              std::move(content),
                              id->get<std::string>(),
                              "",
                              "",
                              {}});
    } else {
      return invalid_request(where + ".role",
                             where + ".role: unknown role '" + role_name.substr(0, 64) +
                                 "'; expected system, developer, user, assistant or tool");
    }
  }
  split_last_user_message(std::move(conversation), request);

  if (const auto n = root.find("n"); n != root.end() && !n->is_null()) {
    if (!n->is_number_integer())
      return invalid_request("n", "n: expected an integer, found " + json_type_name(*n));
    if (n->get<std::int64_t>() != 1)
      return invalid_request("n", "n: only 1 choice per request is supported");
  }
  if (auto error = read_flag(root, "stream", request.stream)) return *error;
  if (const auto options = root.find("stream_options");
      options != root.end() && !options->is_null()) {
    if (!options->is_object())
      return invalid_request("stream_options", "stream_options: expected an object");
    if (const auto usage = options->find("include_usage");
        usage != options->end() && !usage->is_null()) {
      if (!usage->is_boolean()) {
        return invalid_request("stream_options.include_usage",
                               "stream_options.include_usage: expected a boolean");
      }
      request.include_usage = usage->get<bool>();
    }
  }
  if (auto error = parse_tools(root, request)) return *error;
  if (auto error = read_response_format(root, request.format)) return *error;
  if (auto error =
          read_effort(root.value("reasoning_effort", json()), "reasoning_effort", request.effort)) {
    return *error;
  }
  if (auto error = read_stop(root, request)) return *error;
  if (auto error = validate_turn_request(request, "messages")) return *error;
  request.ignored_params = ignored_fields(root, "chat");
  return request;
}

}  // namespace cxp::proxy
