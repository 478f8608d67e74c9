#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

namespace cxp::proxy {

struct TokenUsage {
  std::int64_t prompt_tokens = 0;
  std::int64_t completion_tokens = 0;
  std::int64_t total_tokens = 0;
  std::int64_t cached_tokens = 0;     // of the prompt
  std::int64_t reasoning_tokens = 0;  // of the completion
};

// Identity shared by every chunk of one completion.
struct CompletionMeta {
  std::string id;  // "chatcmpl-<request id>"
  std::int64_t created = 0;
  std::string model;
};

struct ToolCallOut {
  std::string id;  // the model's call id (echoed back by the client with the function's output)
  std::string name;
  std::string arguments;  // JSON text
};

// Pure renderers of the OpenAI chat completion shapes. With tool calls, `content` is null when
// empty and `message.tool_calls` lists them.
std::string render_completion(const CompletionMeta& meta, const std::string& content,
                              const std::vector<ToolCallOut>& tool_calls,
                              const std::string& finish_reason,
                              const std::optional<TokenUsage>& usage);
// One tool call as OpenAI streams it: a delta with its index, id, type and name (arguments ""),
// then a delta with the arguments.
std::string sse_tool_call_chunk(const CompletionMeta& meta, std::size_t index,
                                const ToolCallOut& call);
// SSE events, each "data: <json>\n\n".
std::string sse_role_chunk(const CompletionMeta& meta);
std::string sse_content_chunk(const CompletionMeta& meta, const std::string& delta);
std::string sse_finish_chunk(const CompletionMeta& meta, const std::string& finish_reason);
std::string sse_usage_chunk(const CompletionMeta& meta, const TokenUsage& usage);
std::string sse_error_event(const std::string& error_json);
std::string sse_done();
std::string sse_keepalive();

// Reads thread/tokenUsage/updated params ({tokenUsage:{total|last:{inputTokens,
// cachedInputTokens, outputTokens, reasoningOutputTokens, totalTokens}}}): the thread's total.
std::optional<TokenUsage> usage_from_notification(const nlohmann::json& params);

}  // namespace cxp::proxy
