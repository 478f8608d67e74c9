#pragma once

#include <functional>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "proxy/api/api_error.h"
#include "proxy/api/image_input.h"
#include "proxy/api/output_format.h"

namespace cxp::proxy {

// A function the model may call.
struct ToolSpec {
  std::string name;
  std::string description;
  nlohmann::json parameters = nlohmann::json::object();  // JSON Schema of the arguments
};

// One part of a user message, in the caller's order: text, or an image.
struct MessagePart {
  std::string text;
  std::optional<ImageInput> image;
};

// The text parts of a message, joined.
std::string text_of(const std::vector<MessagePart>& parts);

// One item of the conversation before the turn, as the model will see it (a Responses API item).
struct HistoryItem {
  enum class Kind { kUserMessage, kAssistantMessage, kFunctionCall, kFunctionCallOutput };
  Kind kind = Kind::kUserMessage;
  std::string text;                // an assistant message's text, or the function's output
  std::string call_id;             // function call and output
  std::string name;                // function call
  std::string arguments;           // function call: JSON text
  std::vector<MessagePart> parts;  // a user message's content
};

// What both parsers need besides the body: the served models and the bounds of a request.
struct ParseOptions {
  std::vector<std::string> models;  // the names a request may use
  std::string default_model;        // a request without `model`
  ImageLimits images;
};

// What both /v1/chat/completions and /v1/responses ask of the worker: one turn on a new thread.
// The endpoints differ in how they parse this and render the answer, not in how it is played.
struct TurnRequest {
  std::string model;         // the name the client used (one of the served models)
  std::string instructions;  // system and developer messages → the thread's base instructions
  std::vector<HistoryItem> history;  // the conversation before the turn (injected)
  // The turn's user message (text and images); empty: the turn goes on from the history (tool
  // outputs).
  std::vector<MessagePart> input;
  std::vector<ToolSpec> tools;
  std::string tool_choice = "auto";  // "none", "auto", "required", or a function name
  bool parallel_tool_calls = true;
  bool stream = false;
  bool include_usage = false;  // chat: stream_options.include_usage (responses: always)
  // Tools of the request the worker cannot offer (Responses API hosted tools such as web_search,
  // tool namespaces): left out, named in the log.
  std::vector<std::string> ignored_tools;
  OutputFormat format;            // response_format / text.format
  std::string effort;             // reasoning effort; "": the worker's default
  std::string summary;            // reasoning summary (Responses API); "": none
  std::vector<std::string> stop;  // chat `stop`: the answer ends before the first match
  // Fields of the request that have no effect (request_fields.h): logged and counted.
  std::vector<std::string> ignored_params;

  std::string input_text() const { return text_of(input); }

  // The tools the model is offered (none with tool_choice "none"; only the named one).
  std::vector<ToolSpec> offered_tools() const;
  // Developer instructions that carry tool_choice "required" or a named function ("" otherwise):
  // the app server has no tool_choice, so the model is told.
  std::string tool_choice_instructions() const;
};

// A history item as the Responses API item codex injects into the thread.
nlohmann::json history_item_json(const HistoryItem& item);

// Splits a conversation into the turn's input and its history: a conversation that ends with a
// user message is answered as that message's turn; any other ending (tool outputs, an assistant
// message) makes a turn that goes on from the history, without new input.
void split_last_user_message(std::vector<HistoryItem> conversation, TurnRequest& request);

// Reads one function of a request: `name` 1-64 of [A-Za-z0-9_-] and not one of `earlier`'s,
// `parameters` a JSON Schema object (type "object" when a type is given). `where` names the field
// in errors ("tools[0]").
std::optional<ApiError> parse_tool(const nlohmann::json& name, const nlohmann::json& description,
                                   const nlohmann::json& parameters, const std::string& where,
                                   const std::vector<ToolSpec>& earlier, ToolSpec& out);

// Checks what both endpoints share once a request is read: a named tool_choice that exists,
// something for the turn to do, and a json_object request whose messages say "JSON" (as OpenAI
// requires; `conversation_param` names them: "messages" or "input"). Errors name the field.
std::optional<ApiError> validate_turn_request(const TurnRequest& request,
                                              const std::string& conversation_param);

// A reasoning effort OpenAI's API takes: none, minimal, low, medium, high or xhigh (codex passes
// any word through, and maps some of its own, e.g. "ultra", to others). `param` names the field.
std::optional<ApiError> read_effort(const nlohmann::json& value, const std::string& param,
                                    std::string& out);

// 400 invalid_request_error naming `param`.
ApiError invalid_request(std::string param, std::string message);

// Readers both endpoints' parsers share.
// The JSON object of a request body, or the 400 that says why not.
std::variant<nlohmann::json, ApiError> parse_body_object(std::string_view body);
// `model` (default when absent), which must be served: 404 model_not_found otherwise.
std::optional<ApiError> read_model(const nlohmann::json& root,
                                   const std::vector<std::string>& models,
                                   const std::string& default_model, TurnRequest& request);
// `tool_choice`: "none", "auto", "required", or an object naming a function at `name_path`
// ("/function/name" in chat, "/name" in the Responses API); `object_form` shows that object in the
// error. Also `parallel_tool_calls`.
std::optional<ApiError> read_tool_choice(const nlohmann::json& root, const char* name_path,
                                         const char* object_form, TurnRequest& request);
// The optional `tools` array: `visit(tool, "tools[i]")` for each entry, stopping at the first
// error; absent or null is no tools, anything but an array is refused.
std::optional<ApiError> read_tools(
    const nlohmann::json& root,
    const std::function<std::optional<ApiError>(const nlohmann::json&, const std::string&)>& visit);
// An optional boolean field (absent or null: `out` stays).
std::optional<ApiError> read_flag(const nlohmann::json& root, const char* field, bool& out);
// The text of a message's content: a string, or an array of parts whose `type` is one of
// `text_types` (each with a string `text`), concatenated; null is "" when `null_ok`. Other part
// types (images, files, audio) are refused naming the part.
std::variant<std::string, ApiError> content_text(const nlohmann::json& content,
                                                 const std::string& where,
                                                 const std::vector<std::string>& text_types,
                                                 bool null_ok);
// Reads an image part (`part` is its object, `at` its path) into `out`.
using ImagePartReader = std::function<std::optional<ApiError>(
    const nlohmann::json& part, const std::string& at, ImageInput& out)>;
// A user message's content: a string, or text parts and image parts (of type `image_type`, read
// by `read_image_part`) in order. Files and audio are refused naming the part.
std::variant<std::vector<MessagePart>, ApiError> user_content(
    const nlohmann::json& content, const std::string& where,
    const std::vector<std::string>& text_types, std::string_view image_type,
    const ImagePartReader& read_image_part);
// "null", "string", "array", … for error messages.
std::string json_type_name(const nlohmann::json& value);

// The arguments of a worker's tool call as the JSON text a client receives: an absent argument
// is "{}", a JSON value its text; a string must itself be JSON (nullopt when it is not).
std::optional<std::string> tool_arguments_text(const nlohmann::json& arguments);

}  // namespace cxp::proxy
