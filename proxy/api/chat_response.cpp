#include "proxy/api/chat_response.h"

#include <nlohmann/json.hpp>

#include "common/json_fields.h"

namespace cxp::proxy {
namespace {

using nlohmann::json;

json usage_json(const TokenUsage& usage) {
  return {{"prompt_tokens", usage.prompt_tokens},
          {"completion_tokens", usage.completion_tokens},
          {"total_tokens", usage.total_tokens},
          {"prompt_tokens_details", {{"cached_tokens", usage.cached_tokens}}},
          {"completion_tokens_details", {{"reasoning_tokens", usage.reasoning_tokens}}}};
}

json chunk(const CompletionMeta& meta, json choices) {
  return {{"id", meta.id},
          {"object", "chat.completion.chunk"},
          {"created", meta.created},
          {"model", meta.model},
          {"choices", std::move(choices)}};
}

json tool_call_json(const ToolCallOut& call) {
  return {{"id", call.id},
          {"type", "function"},
          {"function", {{"name", call.name}, {"arguments", call.arguments}}}};
}

std::string dump(const json& value) {
  return value.dump(-1, ' ', false, json::error_handler_t::replace);
}

std::string event(const json& payload) {
  return "data: " + dump(payload) + "\n\n";
}

json choice_delta(json delta, json finish_reason = nullptr) {
  return json::array(
      {{{"index", 0}, {"delta", std::move(delta)}, {"finish_reason", std::move(finish_reason)}}});
}

}  // namespace

std::string render_completion(const CompletionMeta& meta, const std::string& content,
                              const std::vector<ToolCallOut>& tool_calls,
                              const std::string& finish_reason,
                              const std::optional<TokenUsage>& usage) {
  // refusal: codex passes no model refusal on, so there is never one to report.
  json message = {{"role", "assistant"}, {"content", content}, {"refusal", nullptr}};
  if (!tool_calls.empty()) {
    if (content.empty()) message["content"] = nullptr;
    message["tool_calls"] = json::array();
    for (const auto& call : tool_calls) message["tool_calls"].push_back(tool_call_json(call));
  }
  json body = {
      {"id", meta.id},
      {"object", "chat.completion"},
      {"created", meta.created},
      {"model", meta.model},
      {"choices",
       json::array({{{"index", 0}, {"message", message}, {"finish_reason", finish_reason}}})},
      {"usage", usage_json(usage.value_or(TokenUsage{}))}};
  return dump(body);
}

std::string sse_role_chunk(const CompletionMeta& meta) {
  return event(
      chunk(meta, choice_delta({{"role", "assistant"}, {"content", ""}, {"refusal", nullptr}})));
}

std::string sse_content_chunk(const CompletionMeta& meta, const std::string& delta) {
  return event(chunk(meta, choice_delta({{"content", delta}})));
}

std::string sse_tool_call_chunk(const CompletionMeta& meta, std::size_t index,
                                const ToolCallOut& call) {
  json head = {{"index", index},
               {"id", call.id},
               {"type", "function"},
               {"function", {{"name", call.name}, {"arguments", ""}}}};
  json arguments = {{"index", index}, {"function", {{"arguments", call.arguments}}}};
  return event(chunk(meta, choice_delta({{"tool_calls", json::array({head})}}))) +
         event(chunk(meta, choice_delta({{"tool_calls", json::array({arguments})}})));
}

std::string sse_finish_chunk(const CompletionMeta& meta, const std::string& finish_reason) {
  return event(chunk(meta, choice_delta(json::object(), finish_reason)));
}

std::string sse_usage_chunk(const CompletionMeta& meta, const TokenUsage& usage) {
  auto payload = chunk(meta, json::array());
  payload["usage"] = usage_json(usage);
  return event(payload);
}

std::string sse_error_event(const std::string& error_json) {
  return "data: " + error_json + "\n\n";
}
std::string sse_done() {
  return "data: [DONE]\n\n";
}
std::string sse_keepalive() {
  return ": keepalive\n\n";
}

std::optional<TokenUsage> usage_from_notification(const json& params) {
  if (!params.is_object()) return std::nullopt;
  const auto usage = params.find("tokenUsage");
  if (usage == params.end() || !usage->is_object()) return std::nullopt;
  // The thread's total: each request has a thread of its own, so that is every model call of the
  // turn (`last` is only the latest call's).
  auto last = usage->find("total");
  if (last == usage->end() || !last->is_object()) last = usage->find("last");
  if (last == usage->end() || !last->is_object()) return std::nullopt;
  // Counts of another type read as absent (a worker's frame never throws).
  TokenUsage out;
  out.prompt_tokens = int_field(*last, "inputTokens", 0);
  out.completion_tokens = int_field(*last, "outputTokens", 0);
  out.total_tokens = int_field(*last, "totalTokens", out.prompt_tokens + out.completion_tokens);
  out.cached_tokens = int_field(*last, "cachedInputTokens", 0);
  out.reasoning_tokens = int_field(*last, "reasoningOutputTokens", 0);
  return out;
}

}  // namespace cxp::proxy
