#include <chrono>
#include <nlohmann/json.hpp>

#include "proxy/api/turn_renderer.h"

namespace cxp::proxy {
namespace {

using nlohmann::json;

std::int64_t unix_now() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string dump(const json& value) {
  return value.dump(-1, ' ', false, json::error_handler_t::replace);
}

json usage_json(const TokenUsage& u) {
  return {{"input_tokens", u.prompt_tokens},
          {"input_tokens_details", {{"cached_tokens", u.cached_tokens}}},
          {"output_tokens", u.completion_tokens},
          {"output_tokens_details", {{"reasoning_tokens", u.reasoning_tokens}}},
          {"total_tokens", u.total_tokens}};
}

json function_call_item(const ToolCallOut& call, const char* status) {
  return {{"type", "function_call"}, {"id", "fc_" + call.id},       {"call_id", call.id},
          {"name", call.name},       {"arguments", call.arguments}, {"status", status}};
}

class ResponsesRenderer final : public TurnRenderer {
 public:
  ResponsesRenderer(const std::string& request_id, const TurnRequest& request)
      : id_("resp_" + request_id),
        base_message_id_("msg_" + request_id),
        message_id_(base_message_id_),
        created_(unix_now()) {
    echo_ = {
        {"model", request.model},
        {"instructions", request.instructions.empty() ? json(nullptr) : json(request.instructions)},
        {"tool_choice", request.tool_choice == "none" || request.tool_choice == "auto" ||
                                request.tool_choice == "required"
                            ? json(request.tool_choice)
                            : json{{"type", "function"}, {"name", request.tool_choice}}},
        {"parallel_tool_calls", request.parallel_tool_calls}};
    json tools = json::array();
    for (const auto& tool : request.tools) {
      tools.push_back({{"type", "function"},
                       {"name", tool.name},
                       {"description", tool.description},
                       {"parameters", tool.parameters},
                       {"strict", false}});
    }
    echo_["tools"] = std::move(tools);
  }

  std::string_view route() const override { return "/v1/responses"; }

  std::string stream_start() override {
    const auto response = object("in_progress", json::array(), std::nullopt, json(nullptr));
    std::string out = event("response.created", {{"response", response}});
    return out + event("response.in_progress", {{"response", response}});
  }

  std::string text_delta(std::string_view delta) override {
    std::string out = open_message();
    text_ += delta;
    return out + event("response.output_text.delta", {{"item_id", message_id_},
                                                      {"output_index", message_index_},
                                                      {"content_index", 0},
                                                      {"delta", std::string(delta)},
                                                      {"logprobs", json::array()}});
  }

  std::string tool_call(std::size_t, const ToolCallOut& call) override {
    std::string out = close_message();
    const auto index = output_.size();
    out += event("response.output_item.added",
                 {{"output_index", index}, {"item", function_call_item(call, "in_progress")}});
    out +=
        event("response.function_call_arguments.delta",
              {{"item_id", "fc_" + call.id}, {"output_index", index}, {"delta", call.arguments}});
    out += event("response.function_call_arguments.done", {{"item_id", "fc_" + call.id},
                                                           {"output_index", index},
                                                           {"name", call.name},
                                                           {"arguments", call.arguments}});
    output_.push_back(function_call_item(call, "completed"));
    out += event("response.output_item.done", {{"output_index", index}, {"item", output_.back()}});
    return out;
  }

  std::string stream_end(const TurnOutcome& outcome) override {
    std::string out = outcome.calls.empty() && !message_open_ && output_.empty()
                          ? open_message()  // an empty answer is still one (empty) message
                          : std::string();
    out += close_message();
    return out + event("response.completed",
                       {{"response", object("completed", output_, outcome.usage, json(nullptr))}});
  }

  std::string stream_error(const ApiError& error) override {
    const json detail = {{"code", error.code}, {"message", error.message}};
    return event("response.failed",
                 {{"response", object("failed", output_, std::nullopt, detail)}});
  }

  std::string body(const TurnOutcome& outcome) override {
    json output = json::array();
    if (!outcome.text.empty() || outcome.calls.empty())
      output.push_back(message_item(outcome.text));
    for (const auto& call : outcome.calls) output.push_back(function_call_item(call, "completed"));
    return dump(object("completed", output, outcome.usage, json(nullptr)));
  }

 private:
  json object(const char* status, const json& output, const std::optional<TokenUsage>& usage,
              const json& error) const {
    json response = {{"id", id_},
                     {"object", "response"},
                     {"created_at", created_},
                     {"status", status},
                     {"error", error},
                     {"incomplete_details", nullptr},
                     {"output", output},
                     {"usage", usage ? usage_json(*usage) : json(nullptr)},
                     {"store", false},
                     {"metadata", json::object()},
                     {"text", {{"format", {{"type", "text"}}}}},
                     {"truncation", "disabled"}};
    response.update(echo_);
    return response;
  }

  json message_item(const std::string& text) const {
    return {
        {"type", "message"},
        {"id", message_id_},
        {"status", "completed"},
        {"role", "assistant"},
        {"content",
         json::array({{{"type", "output_text"}, {"text", text}, {"annotations", json::array()}}})}};
  }

  std::string event(const char* type, json payload) {
    payload["type"] = type;
    payload["sequence_number"] = sequence_++;
    return std::string("event: ") + type + "\ndata: " + dump(payload) + "\n\n";
  }

  std::string open_message() {
    if (message_open_) return "";
    message_open_ = true;
    message_index_ = output_.size();
    text_.clear();
    // A second message (text after function calls) gets an id of its own.
    message_id_ =
        base_message_id_ + (message_index_ > 0 ? "_" + std::to_string(message_index_) : "");
    json item = message_item("");
    item["status"] = "in_progress";
    item["content"] = json::array();
    // One statement per event: their sequence numbers follow the order they are written in.
    std::string out =
        event("response.output_item.added", {{"output_index", message_index_}, {"item", item}});
    return out + event("response.content_part.added",
                       {{"item_id", message_id_},
                        {"output_index", message_index_},
                        {"content_index", 0},
                        {"part",
                         {{"type", "output_text"}, {"text", ""}, {"annotations", json::array()}}}});
  }

  std::string close_message() {
    if (!message_open_) return "";
    message_open_ = false;
    const json part = {{"type", "output_text"}, {"text", text_}, {"annotations", json::array()}};
    std::string out = event("response.output_text.done", {{"item_id", message_id_},
                                                          {"output_index", message_index_},
                                                          {"content_index", 0},
                                                          {"text", text_},
                                                          {"logprobs", json::array()}});
    out += event("response.content_part.done", {{"item_id", message_id_},
                                                {"output_index", message_index_},
                                                {"content_index", 0},
                                                {"part", part}});
    output_.push_back(message_item(text_));
    out += event("response.output_item.done",
                 {{"output_index", message_index_}, {"item", output_.back()}});
    return out;
  }

  std::string id_;
  std::string base_message_id_;
  std::string message_id_;  // of the open (or last) message
  std::int64_t created_;
  json echo_;
  json output_ = json::array();  // items finished so far (streaming)
  std::string text_;             // of the open message
  bool message_open_ = false;
  std::size_t message_index_ = 0;
  std::int64_t sequence_ = 0;
};

}  // namespace

std::unique_ptr<TurnRenderer> make_responses_renderer(const std::string& request_id,
                                                      const TurnRequest& request) {
  return std::make_unique<ResponsesRenderer>(request_id, request);
}

}  // namespace cxp::proxy
