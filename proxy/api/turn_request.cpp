#include "proxy/api/turn_request.h"

#include <algorithm>
#include <cctype>
#include <set>

namespace cxp::proxy {

using nlohmann::json;

ApiError invalid_request(std::string param, std::string message) {
  ApiError e;
  e.status = 400;
  e.code = "invalid_request_error";
  e.param = std::move(param);
  e.message = std::move(message);
  return e;
}

std::string json_type_name(const json& value) {
  return value.is_null() ? "null" : std::string(value.type_name());
}

namespace {

bool is_image_part(std::string_view type) {
  return type == "image_url" || type == "input_image";
}

bool is_file_or_audio_part(std::string_view type) {
  return type == "file" || type == "input_file" || type == "input_audio" || type == "audio";
}

// Reads the parts of a message's content, handing each to `on_part(part, at, type)`; a string is
// one text part. Errors name the part.
std::optional<ApiError> each_part(
    const json& content, const std::string& where,
    const std::function<std::optional<ApiError>(const json&, const std::string&,
                                                const std::string&)>& on_part) {
  if (content.is_string()) return on_part(json{{"text", content}}, where, "text");
  if (!content.is_array()) {
    return invalid_request(where, where +
                                      ": expected a string or an array of content parts, found " +
                                      json_type_name(content));
  }
  for (std::size_t i = 0; i < content.size(); ++i) {
    const auto& part = content[i];
    const std::string at = where + "[" + std::to_string(i) + "]";
    const auto type = part.is_object() ? part.value("type", json()) : json();
    if (!type.is_string()) {
      return invalid_request(at, at + ": expected an object with a string \"type\"");
    }
    if (auto error = on_part(part, at, type.get<std::string>())) return error;
  }
  return std::nullopt;
}

std::optional<ApiError> text_part(const json& part, const std::string& at, std::string& out) {
  const auto text = part.find("text");
  if (text == part.end() || !text->is_string()) {
    return invalid_request(at + ".text", at + ".text: expected a string");
  }
  out += text->get<std::string>();
  return std::nullopt;
}

ApiError unsupported_part(const std::string& at, const std::string& kind,
                          const std::vector<std::string>& accepted_types, bool images_here) {
  std::string accepted;
  for (const auto& t : accepted_types) accepted += (accepted.empty() ? "'" : ", '") + t + "'";
  std::string why = "is not supported here (" + accepted + " are)";
  if (is_image_part(kind) && !images_here) why = "is accepted in user messages only";
  if (is_file_or_audio_part(kind)) {
    why = "is not supported: the worker (codex 0.169) takes text and images, no files or audio";
  }
  return invalid_request(at + ".type",
                         at + ".type: content part type '" + kind.substr(0, 64) + "' " + why);
}

}  // namespace

std::string text_of(const std::vector<MessagePart>& parts) {
  std::string text;
  for (const auto& part : parts) {
    if (!part.image) text += part.text;
  }
  return text;
}

std::variant<std::string, ApiError> content_text(const json& content, const std::string& where,
                                                 const std::vector<std::string>& text_types,
                                                 bool null_ok) {
  if (content.is_null() && null_ok) return std::string();
  std::string text;
  auto error = each_part(
      content, where, [&](const json& part, const std::string& at, const std::string& kind) {
        if (std::find(text_types.begin(), text_types.end(), kind) == text_types.end() &&
            kind != "text") {
          return std::optional<ApiError>(unsupported_part(at, kind, text_types, false));
        }
        return text_part(part, at, text);
      });
  if (error) return *error;
  return text;
}

std::variant<std::vector<MessagePart>, ApiError> user_content(
    const json& content, const std::string& where, const std::vector<std::string>& text_types,
    std::string_view image_type, const ImagePartReader& read_image_part) {
  std::vector<MessagePart> parts;
  auto error =
      each_part(content, where,
                [&](const json& part, const std::string& at,
                    const std::string& kind) -> std::optional<ApiError> {
                  if (kind == image_type) {
                    MessagePart image;
                    image.image.emplace();
                    if (auto bad = read_image_part(part, at, *image.image)) return bad;
                    parts.push_back(std::move(image));
                    return std::nullopt;
                  }
                  if (std::find(text_types.begin(), text_types.end(), kind) == text_types.end() &&
                      kind != "text") {
                    auto accepted = text_types;
                    accepted.emplace_back(image_type);
                    return unsupported_part(at, kind, accepted, true);
                  }
                  std::string text;
                  if (auto bad = text_part(part, at, text)) return bad;
                  // Adjacent text parts make one (as content_text joins them); empty text is
                  // nothing.
                  if (text.empty()) return std::nullopt;
                  if (!parts.empty() && !parts.back().image) {
                    parts.back().text += text;
                  } else {
                    parts.push_back({std::move(text), std::nullopt});
                  }
                  return std::nullopt;
                });
  if (error) return *error;
  return parts;
}

std::optional<ApiError> read_effort(const json& value, const std::string& param, std::string& out) {
  if (value.is_null()) return std::nullopt;
  static const std::vector<std::string> kEfforts = {"none",   "minimal", "low",
                                                    "medium", "high",    "xhigh"};
  if (!value.is_string() ||
      std::find(kEfforts.begin(), kEfforts.end(), value.get<std::string>()) == kEfforts.end()) {
    return invalid_request(param, param +
                                      ": expected \"none\", \"minimal\", \"low\", \"medium\", "
                                      "\"high\" or \"xhigh\", found " +
                                      value.dump().substr(0, 64));
  }
  out = value.get<std::string>();
  return std::nullopt;
}

std::variant<json, ApiError> parse_body_object(std::string_view body) {
  json root = json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (root.is_discarded()) return invalid_request("", "request body is not valid JSON");
  if (!root.is_object()) {
    return invalid_request("", "request body must be a JSON object, found " + json_type_name(root));
  }
  return root;
}

std::optional<ApiError> read_model(const json& root, const std::vector<std::string>& models,
                                   const std::string& default_model, TurnRequest& request) {
  request.model = default_model;
  if (const auto model = root.find("model"); model != root.end() && !model->is_null()) {
    if (!model->is_string()) {
      return invalid_request("model", "model: expected a string, found " + json_type_name(*model));
    }
    request.model = model->get<std::string>();
  }
  if (std::find(models.begin(), models.end(), request.model) != models.end()) return std::nullopt;
  ApiError e =
      invalid_request("model", "The model '" + request.model.substr(0, 200) +
                                   "' does not exist; GET /v1/models lists the served models");
  e.status = 404;
  e.code = "model_not_found";
  return e;
}

std::optional<ApiError> read_tool_choice(const json& root, const char* name_path,
                                         const char* object_form, TurnRequest& request) {
  if (auto error = read_flag(root, "parallel_tool_calls", request.parallel_tool_calls))
    return error;
  const auto choice = root.find("tool_choice");
  if (choice == root.end() || choice->is_null()) return std::nullopt;
  const json::json_pointer name(name_path);
  if (choice->is_string() && (*choice == "none" || *choice == "auto" || *choice == "required")) {
    request.tool_choice = choice->get<std::string>();
  } else if (choice->is_object() && choice->contains(name) && choice->at(name).is_string()) {
    request.tool_choice = choice->at(name).get<std::string>();
  } else {
    return invalid_request(
        "tool_choice", std::string("tool_choice: expected none, auto, required or ") + object_form);
  }
  return std::nullopt;
}

std::optional<ApiError> read_tools(
    const json& root,
    const std::function<std::optional<ApiError>(const json&, const std::string&)>& visit) {
  const auto tools = root.find("tools");
  if (tools == root.end() || tools->is_null()) return std::nullopt;
  if (!tools->is_array())
    return invalid_request("tools", "tools: expected an array, found " + json_type_name(*tools));
  for (std::size_t i = 0; i < tools->size(); ++i) {
    if (auto error = visit((*tools)[i], "tools[" + std::to_string(i) + "]")) return error;
  }
  return std::nullopt;
}

std::optional<ApiError> read_flag(const json& root, const char* field, bool& out) {
  const auto found = root.find(field);
  if (found == root.end() || found->is_null()) return std::nullopt;
  if (!found->is_boolean()) {
    return invalid_request(
        field, std::string(field) + ": expected a boolean, found " + json_type_name(*found));
  }
  out = found->get<bool>();
  return std::nullopt;
}

std::vector<ToolSpec> TurnRequest::offered_tools() const {
  if (tool_choice == "none") return {};
  if (tool_choice == "auto" || tool_choice == "required") return tools;
  std::vector<ToolSpec> named;
  std::copy_if(tools.begin(), tools.end(), std::back_inserter(named),
               [&](const ToolSpec& t) { return t.name == tool_choice; });
  return named;
}

std::string TurnRequest::tool_choice_instructions() const {
  if (tool_choice == "required" && !tools.empty()) {
    return "You must call at least one of the provided functions in this answer.";
  }
  if (tool_choice != "none" && tool_choice != "auto" && tool_choice != "required") {
    return "You must call the function `" + tool_choice + "` in this answer.";
  }
  return "";
}

json history_item_json(const HistoryItem& item) {
  switch (item.kind) {
    case HistoryItem::Kind::kUserMessage: {
      json content = json::array();
      for (const auto& part : item.parts) {
        if (part.image) {
          content.push_back({{"type", "input_image"},
                             {"image_url", part.image->url},
                             {"detail", part.image->detail}});
        } else {
          content.push_back({{"type", "input_text"}, {"text", part.text}});
        }
      }
      if (content.empty()) content.push_back({{"type", "input_text"}, {"text", ""}});
      return {{"type", "message"}, {"role", "user"}, {"content", std::move(content)}};
    }
    case HistoryItem::Kind::kAssistantMessage:
      return {{"type", "message"},
              {"role", "assistant"},
              {"content", json::array({{{"type", "output_text"}, {"text", item.text}}})}};
    case HistoryItem::Kind::kFunctionCall:
      return {{"type", "function_call"},
              {"call_id", item.call_id},
              {"name", item.name},
              {"arguments", item.arguments}};
    case HistoryItem::Kind::kFunctionCallOutput:
      return {{"type", "function_call_output"}, {"call_id", item.call_id}, {"output", item.text}};
  }
  return json::object();
}

void split_last_user_message(std::vector<HistoryItem> conversation, TurnRequest& request) {
  if (!conversation.empty() && conversation.back().kind == HistoryItem::Kind::kUserMessage) {
    request.input = std::move(conversation.back().parts);
    conversation.pop_back();
  }
  request.history = std::move(conversation);
}

std::optional<ApiError> parse_tool(const json& name, const json& description,
                                   const json& parameters, const std::string& where,
                                   const std::vector<ToolSpec>& earlier, ToolSpec& out) {
  const std::string text = name.is_string() ? name.get<std::string>() : std::string();
  const bool name_ok =
      !text.empty() && text.size() <= 64 && std::all_of(text.begin(), text.end(), [](char c) {
        return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '_' || c == '-';
      });
  if (!name_ok) {
    return invalid_request(where + ".name",
                           where + ".name: expected 1-64 characters of [A-Za-z0-9_-]");
  }
  out.name = text;
  if (std::any_of(earlier.begin(), earlier.end(),
                  [&](const ToolSpec& t) { return t.name == text; })) {
    return invalid_request(
        where, where + ": a second function named '" + text + "'; names must be distinct");
  }
  if (description.is_string()) out.description = description.get<std::string>();
  if (!parameters.is_null()) {
    if (!parameters.is_object()) {
      return invalid_request(where + ".parameters",
                             where + ".parameters: expected a JSON Schema object");
    }
    const auto type = parameters.find("type");
    if (type != parameters.end() && *type != "object") {
      return invalid_request(where + ".parameters.type",
                             where +
                                 ".parameters.type: a function's arguments are an object; "
                                 "expected \"object\", found " +
                                 type->dump().substr(0, 64));
    }
    const auto properties = parameters.find("properties");
    if (properties != parameters.end() && !properties->is_object()) {
      return invalid_request(where + ".parameters.properties",
                             where + ".parameters.properties: expected an object");
    }
    const auto required = parameters.find("required");
    if (required != parameters.end() && !required->is_array()) {
      return invalid_request(where + ".parameters.required",
                             where + ".parameters.required: expected an array of names");
    }
    out.parameters = parameters;
  }
  if (!out.parameters.contains("type")) out.parameters["type"] = "object";
  return std::nullopt;
}

std::optional<ApiError> validate_turn_request(const TurnRequest& request,
                                              const std::string& conversation_param) {
  std::set<std::string> names;
  for (const auto& tool : request.tools) names.insert(tool.name);
  const auto& choice = request.tool_choice;
  if (choice != "none" && choice != "auto" && !names.count(choice)) {
    if (choice == "required") {
      if (names.empty()) return invalid_request("tool_choice", "tool_choice: requires tools");
    } else {
      return invalid_request("tool_choice",
                             "tool_choice: no function named '" + choice.substr(0, 64) + "'");
    }
  }
  if (request.input.empty() && request.history.empty()) {
    return invalid_request(conversation_param, "the conversation has nothing to answer");
  }
  if (request.format.kind == OutputFormat::Kind::kJsonObject) {
    // OpenAI's rule, mirrored: JSON mode needs the messages to ask for JSON.
    bool asked = mentions_json(request.instructions) || mentions_json(request.input_text());
    for (const auto& item : request.history) {
      asked = asked || mentions_json(item.text) || mentions_json(text_of(item.parts));
    }
    if (!asked) {
      return invalid_request(conversation_param,
                             conversation_param +
                                 " must contain the word 'json' in some form, to use a response "
                                 "format of type 'json_object'");
    }
  }
  return std::nullopt;
}

std::optional<std::string> tool_arguments_text(const nlohmann::json& arguments) {
  if (arguments.is_null()) return std::string("{}");
  if (!arguments.is_string()) return arguments.dump();
  const auto& text = arguments.get_ref<const std::string&>();
  if (nlohmann::json::parse(text, nullptr, false).is_discarded()) return std::nullopt;
  return text;
}

}  // namespace cxp::proxy
