#include "proxy/api/chat_response.h"

#include <nlohmann/json.hpp>

namespace cxp::proxy {
namespace {

using nlohmann::json;

json usage_json(const TokenUsage& usage) {
  return {{"prompt_tokens", usage.prompt_tokens},
          {"completion_tokens", usage.completion_tokens},
          {"total_tokens", usage.total_tokens}};
}

json chunk(const CompletionMeta& meta, json choices) {
  return {{"id", meta.id},
          {"object", "chat.completion.chunk"},
          {"created", meta.created},
          {"model", meta.model},
          {"choices", std::move(choices)}};
}

std::string event(const json& payload) {
  return "data: " + payload.dump(-1, ' ', false, json::error_handler_t::replace) + "\n\n";
}

}  // namespace

std::string render_completion(const CompletionMeta& meta, const std::string& content,
                              const std::string& finish_reason,
                              const std::optional<TokenUsage>& usage) {
  json body = {{"id", meta.id},
               {"object", "chat.completion"},
               {"created", meta.created},
               {"model", meta.model},
               {"choices", json::array({{{"index", 0},
                                         {"message", {{"role", "assistant"}, {"content", content}}},
                                         {"finish_reason", finish_reason}}})},
               {"usage", usage_json(usage.value_or(TokenUsage{}))}};
  return body.dump(-1, ' ', false, json::error_handler_t::replace);
}

std::string sse_role_chunk(const CompletionMeta& meta) {
  return event(chunk(meta, json::array({{{"index", 0},
                                         {"delta", {{"role", "assistant"}, {"content", ""}}},
                                         {"finish_reason", nullptr}}})));
}

std::string sse_content_chunk(const CompletionMeta& meta, const std::string& delta) {
  return event(chunk(
      meta,
      json::array({{{"index", 0}, {"delta", {{"content", delta}}}, {"finish_reason", nullptr}}})));
}

std::string sse_finish_chunk(const CompletionMeta& meta, const std::string& finish_reason) {
  return event(chunk(
      meta,
      json::array({{{"index", 0}, {"delta", json::object()}, {"finish_reason", finish_reason}}})));
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
  const auto last = usage->find("last");
  if (last == usage->end() || !last->is_object()) return std::nullopt;
  TokenUsage out;
  out.prompt_tokens = last->value("inputTokens", std::int64_t{0});
  out.completion_tokens = last->value("outputTokens", std::int64_t{0});
  out.total_tokens = last->value("totalTokens", out.prompt_tokens + out.completion_tokens);
  return out;
}

}  // namespace cxp::proxy
