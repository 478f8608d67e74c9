#include <algorithm>
#include <chrono>
#include <nlohmann/json.hpp>
#include <optional>

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
    echo_["text"] = {{"format", request.format.echo()}};
    echo_["reasoning"] = {
        {"effort", request.effort.empty() ? json(nullptr) : json(request.effort)},
        {"summary", request.summary.empty() ? json(nullptr) : json(request.summary)}};
  }

  std::string_view route() const override { return "/v1/responses"; }

  std::string stream_start() override {
    const auto response = object("in_progress", json::array(), std::nullopt, json(nullptr));
    std::string out = event("response.created", {{"response", response}});
    return out + event("response.in_progress", {{"response", response}});
  }

  std::string reasoning_started(const std::string& id) override {
    std::string out = close_message() + close_reasoning();
    reasoning_ = ReasoningOut{id, {}, false};
    reasoning_index_ = output_.size();
    return out + event("response.output_item.added",
                       {{"output_index", reasoning_index_}, {"item", reasoning_item(*reasoning_)}});
  }

  std::string reasoning_delta(const std::string& id, std::size_t index,
                              std::string_view delta) override {
    std::string out;
    if (!reasoning_ || reasoning_->id != id) out += reasoning_started(id);
    while (reasoning_->summary.size() <= index) {
      if (!reasoning_->summary.empty()) out += close_summary_part();
      reasoning_->summary.emplace_back();
      out += event("response.reasoning_summary_part.added",
                   {{"item_id", id},
                    {"output_index", reasoning_index_},
                    {"summary_index", reasoning_->summary.size() - 1},
                    {"part", summary_part("")}});
    }
    reasoning_->summary[index] += delta;
    return out + event("response.reasoning_summary_text.delta", {{"item_id", id},
                                                                 {"output_index", reasoning_index_},
                                                                 {"summary_index", index},
                                                                 {"delta", std::string(delta)}});
  }

  std::string reasoning_done(const ReasoningOut& item) override {
    std::string out;
    if (!reasoning_ || reasoning_->id != item.id) out += reasoning_started(item.id);
    // The whole summary as the worker finished it: parts not streamed yet are sent now.
    for (std::size_t i = 0; i < item.summary.size(); ++i) {
      const std::string have = i < reasoning_->summary.size() ? reasoning_->summary[i] : "";
      const auto& whole = item.summary[i];
      if (whole.size() > have.size() && whole.compare(0, have.size(), have) == 0) {
        out += reasoning_delta(item.id, i, std::string_view(whole).substr(have.size()));
      }
    }
    return out + close_reasoning();
  }

  std::string text_delta(std::string_view delta) override {
    std::string out = close_reasoning() + open_message();
    text_ += delta;
    return out + event("response.output_text.delta", {{"item_id", message_id_},
                                                      {"output_index", message_index_},
                                                      {"content_index", 0},
                                                      {"delta", std::string(delta)},
                                                      {"logprobs", json::array()}});
  }

  std::string tool_call(std::size_t, const ToolCallOut& call) override {
    std::string out = close_reasoning() + close_message();
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
    std::string out = close_reasoning();
    const bool answered = std::any_of(output_.begin(), output_.end(),
                                      [](const json& item) { return item["type"] != "reasoning"; });
    if (outcome.calls.empty() && !message_open_ && !answered) {
      out += open_message();  // an empty answer is still one (empty) message
    }
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
    for (const auto& item : outcome.reasoning) output.push_back(reasoning_item(item));
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

  static json summary_part(const std::string& text) {
    return {{"type", "summary_text"}, {"text", text}};
  }

  static json reasoning_item(const ReasoningOut& item) {
    json summary = json::array();
    for (const auto& part : item.summary) summary.push_back(summary_part(part));
    return {{"type", "reasoning"}, {"id", item.id}, {"summary", std::move(summary)}};
  }

  std::string close_summary_part() {
    const auto index = reasoning_->summary.size() - 1;
    const auto& text = reasoning_->summary.back();
    std::string out =
        event("response.reasoning_summary_text.done", {{"item_id", reasoning_->id},
                                                       {"output_index", reasoning_index_},
                                                       {"summary_index", index},
                                                       {"text", text}});
    return out + event("response.reasoning_summary_part.done", {{"item_id", reasoning_->id},
                                                                {"output_index", reasoning_index_},
                                                                {"summary_index", index},
                                                                {"part", summary_part(text)}});
  }

  std::string close_reasoning() {
    if (!reasoning_) return "";
    std::string out = reasoning_->summary.empty() ? std::string() : close_summary_part();
    output_.push_back(reasoning_item(*reasoning_));
    reasoning_.reset();
    return out + event("response.output_item.done",
                       {{"output_index", reasoning_index_}, {"item", output_.back()}});
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
  std::optional<ReasoningOut> reasoning_;  // the open reasoning item (streaming)
  std::size_t reasoning_index_ = 0;
  std::size_t message_index_ = 0;
  std::int64_t sequence_ = 0;
};

}  // namespace

std::unique_ptr<TurnRenderer> make_responses_renderer(const std::string& request_id,
                                                      const TurnRequest& request) {
  return std::make_unique<ResponsesRenderer>(request_id, request);
}

}  // namespace cxp::proxy
