#include "proxy/api/responses_request.h"

#include <algorithm>
#include <nlohmann/json.hpp>
#include <set>

#include "proxy/api/request_fields.h"

namespace cxp::proxy {
namespace {

using nlohmann::json;

std::optional<ApiError> parse_input_items(const json& items, std::string& instructions,
                                          std::vector<HistoryItem>& conversation,
                                          const ImagePartReader& read_image_part) {
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
      const auto name = role.get<std::string>();
      if (name == "user") {
        auto parts =
            user_content(item.value("content", json()), where + ".content",
                         {"input_text", "output_text", "text"}, "input_image", read_image_part);
        if (auto* error = std::get_if<ApiError>(&parts)) return *error;
        HistoryItem user;
        user.parts = std::get<std::vector<MessagePart>>(std::move(parts));
        conversation.push_back(std::move(user));
        continue;
      }
      auto text = content_text(item.value("content", json()), where + ".content",
                               {"input_text", "output_text", "text"}, false);
      if (auto* error = std::get_if<ApiError>(&text)) return *error;
      auto content = std::get<std::string>(std::move(text));
      if (name == "system" || name == "developer") {
        if (!instructions.empty()) instructions += "\n\n";
        instructions += content;
      } else if (name == "assistant") {
        conversation.push_back(
            {HistoryItem::Kind::kAssistantMessage, std::move(content), "", "", "", {}});
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
      conversation.push_back({HistoryItem::Kind::kFunctionCall,
                              "",
                              call_id.get<std::string>(),
                              name.get<std::string>(),
                              arguments.get<std::string>(),
                              {}});
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
        auto parts =
            content_text(output, where + ".output", {"input_text", "output_text", "text"}, false);
        if (auto* error = std::get_if<ApiError>(&parts)) return *error;
        text = std::get<std::string>(std::move(parts));
      }
      conversation.push_back({HistoryItem::Kind::kFunctionCallOutput,
                              std::move(text),
                              call_id.get<std::string>(),
                              "",
                              "",
                              {}});
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
  auto error =
      read_tools(root, [&](const json& tool, const std::string& at) -> std::optional<ApiError> {
        if (!tool.is_object() || !tool.value("type", json()).is_string()) {
          return invalid_request(at + ".type",
                                 at + ".type: expected a tool object with a string type");
        }
        if (tool["type"] != "function") {
          // A hosted tool (web_search, file_search, …) or a namespace: codex-proxy's worker cannot
          // run these for the caller. The request goes on without it, as with any provider that
          // lacks a tool (e.g. the Codex CLI's web_search).
          if (request.ignored_tools.size() < 32) {
            request.ignored_tools.push_back(
                tool["type"].get<std::string>().substr(0, 64) +
                (tool.value("name", json()).is_string()
                     ? ":" + tool["name"].get<std::string>().substr(0, 64)
                     : std::string()));
          }
          return std::nullopt;
        }
        ToolSpec spec;
        if (auto bad = parse_tool(tool.value("name", json()), tool.value("description", json()),
                                  tool.value("parameters", json()), at, request.tools, spec)) {
          return bad;
        }
        request.tools.push_back(std::move(spec));
        return std::nullopt;
      });
  if (error) return error;
  return read_tool_choice(root, "/name", "{\"type\":\"function\",\"name\":…}", request);
}

// `reasoning`: {effort, summary} (generate_summary: summary's older name).
std::optional<ApiError> read_reasoning(const json& root, TurnRequest& request) {
  const auto reasoning = root.find("reasoning");
  if (reasoning == root.end() || reasoning->is_null()) return std::nullopt;
  if (!reasoning->is_object()) return invalid_request("reasoning", "reasoning: expected an object");
  if (auto error =
          read_effort(reasoning->value("effort", json()), "reasoning.effort", request.effort)) {
    return error;
  }
  for (const char* field : {"summary", "generate_summary"}) {
    const auto summary = reasoning->value(field, json());
    if (summary.is_null()) continue;
    const std::string param = std::string("reasoning.") + field;
    if (summary != "auto" && summary != "concise" && summary != "detailed" && summary != "none") {
      return invalid_request(param, param +
                                        ": expected \"auto\", \"concise\", \"detailed\" or "
                                        "\"none\"");
    }
    request.summary = summary.get<std::string>();
  }
  return std::nullopt;
}

}  // namespace

std::variant<TurnRequest, ApiError> parse_responses_request(std::string_view body,
                                                            const ParseOptions& options) {
  auto parsed = parse_body_object(body);
  if (auto* error = std::get_if<ApiError>(&parsed)) return *error;
  const json root = std::get<json>(std::move(parsed));
  if (auto error = refused_field(root, "responses")) return *error;

  TurnRequest request;
  request.include_usage = true;
  if (auto error = read_model(root, options.models, options.default_model, request)) return *error;
  ImageBudget images;
  const ImagePartReader read_image_part = [&](const json& part, const std::string& at,
                                              ImageInput& out) -> std::optional<ApiError> {
    // {"type":"input_image","image_url","detail"} (file_id: a stored file)
    if (part.contains("file_id") && !part["file_id"].is_null()) {
      return invalid_request(at + ".file_id",
                             at + ".file_id: stored files are not supported; send the image as a "
                                  "data URL in image_url");
    }
    return read_image(part.value("image_url", json()), part.value("detail", json()),
                      at + ".image_url", at + ".detail", options.images, images, out);
  };
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
    HistoryItem user;
    if (!input->get_ref<const std::string&>().empty())
      user.parts.push_back({input->get<std::string>(), {}});
    conversation.push_back(std::move(user));
  } else if (input->is_array()) {
    if (auto error =
            parse_input_items(*input, request.instructions, conversation, read_image_part)) {
      return *error;
    }
  } else {
    return invalid_request(
        "input", "input: expected a string or an array of items, found " + json_type_name(*input));
  }
  split_last_user_message(std::move(conversation), request);
  if (auto error = read_flag(root, "stream", request.stream)) return *error;
  if (auto error = parse_tools(root, request)) return *error;
  if (auto error = read_text_format(root, request.format)) return *error;
  if (auto error = read_reasoning(root, request)) return *error;
  if (auto error = validate_turn_request(request, "input")) return *error;
  request.ignored_params = ignored_fields(root, "responses");
  if (!request.ignored_tools.empty()) request.ignored_params.emplace_back("tools.hosted");
  return request;
}

}  // namespace cxp::proxy
