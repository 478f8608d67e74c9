#include "proxy/api/chat_response.h"

#include <doctest/doctest.h>

#include <nlohmann/json.hpp>

using namespace cxp::proxy;
using nlohmann::json;

namespace {
const CompletionMeta kMeta{"chatcmpl-r1", 1700000000, "gpt-5"};

json payload(const std::string& event) {
  REQUIRE(event.rfind("data: ", 0) == 0);
  REQUIRE(event.size() > 8);
  REQUIRE(event.substr(event.size() - 2) == "\n\n");
  return json::parse(event.substr(6, event.size() - 8));
}
}  // namespace

TEST_CASE("a completion has the OpenAI shape") {
  const auto body = json::parse(render_completion(kMeta, "hi", {}, "stop", TokenUsage{3, 2, 5}));
  CHECK(body["object"] == "chat.completion");
  CHECK(body["id"] == "chatcmpl-r1");
  CHECK(body["choices"][0]["message"] ==
        json{{"role", "assistant"}, {"content", "hi"}, {"refusal", nullptr}});
  CHECK(body["choices"][0]["finish_reason"] == "stop");
  CHECK(body["usage"] == json{{"prompt_tokens", 3},
                              {"completion_tokens", 2},
                              {"total_tokens", 5},
                              {"prompt_tokens_details", {{"cached_tokens", 0}}},
                              {"completion_tokens_details", {{"reasoning_tokens", 0}}}});
  const auto detailed =
      json::parse(render_completion(kMeta, "hi", {}, "stop", TokenUsage{30, 20, 50, 12, 7}));
  CHECK(detailed["usage"]["prompt_tokens_details"]["cached_tokens"] == 12);
  CHECK(detailed["usage"]["completion_tokens_details"]["reasoning_tokens"] == 7);
}

TEST_CASE("stream chunks: role, content, finish, usage, done") {
  auto role = payload(sse_role_chunk(kMeta));
  CHECK(role["object"] == "chat.completion.chunk");
  CHECK(role["choices"][0]["delta"]["role"] == "assistant");
  CHECK(role["choices"][0]["finish_reason"].is_null());
  CHECK(payload(sse_content_chunk(kMeta, "x\"y"))["choices"][0]["delta"]["content"] == "x\"y");
  auto finish = payload(sse_finish_chunk(kMeta, "stop"));
  CHECK(finish["choices"][0]["delta"] == json::object());
  CHECK(finish["choices"][0]["finish_reason"] == "stop");
  auto usage = payload(sse_usage_chunk(kMeta, TokenUsage{1, 2, 3}));
  CHECK(usage["choices"].empty());
  CHECK(usage["usage"]["total_tokens"] == 3);
  CHECK(sse_done() == "data: [DONE]\n\n");
  CHECK(sse_keepalive().rfind(":", 0) == 0);
}

TEST_CASE("invalid UTF-8 from the worker never breaks a chunk") {
  CHECK_NOTHROW(payload(sse_content_chunk(kMeta, std::string("\xff\xfe ok", 5))));
}

TEST_CASE("token usage is the thread's total: every model call of the turn, not only the last") {
  const json params = {
      {"tokenUsage",
       {{"total",
         {{"inputTokens", 100},
          {"outputTokens", 9},
          {"totalTokens", 109},
          {"cachedInputTokens", 40},
          {"reasoningOutputTokens", 3}}},
        {"last", {{"inputTokens", 7}, {"outputTokens", 5}, {"totalTokens", 12}}}}}};
  const auto usage = usage_from_notification(params);
  REQUIRE(usage);
  CHECK(usage->prompt_tokens == 100);
  CHECK(usage->completion_tokens == 9);
  CHECK(usage->total_tokens == 109);
  CHECK(usage->cached_tokens == 40);
  CHECK(usage->reasoning_tokens == 3);
  // A worker that reports only `last` is read from it.
  const auto last_only = usage_from_notification(
      json{{"tokenUsage", {{"last", {{"inputTokens", 7}, {"outputTokens", 5}}}}}});
  REQUIRE(last_only);
  CHECK(last_only->total_tokens == 12);
  CHECK_FALSE(usage_from_notification(json::object()));
  CHECK_FALSE(usage_from_notification(json{{"tokenUsage", 5}}));
}

TEST_CASE("tool calls: null content in the message; streamed as a head delta then arguments") {
  const std::vector<ToolCallOut> calls{{"call_0_r1", "get_weather", "{\"city\":\"Paris\"}"}};
  const auto body = json::parse(render_completion(kMeta, "", calls, "tool_calls", std::nullopt));
  const auto& message = body["choices"][0]["message"];
  CHECK(message["content"].is_null());
  CHECK(message["tool_calls"][0]["id"] == "call_0_r1");
  CHECK(message["tool_calls"][0]["type"] == "function");
  CHECK(message["tool_calls"][0]["function"]["arguments"] == "{\"city\":\"Paris\"}");
  CHECK(body["choices"][0]["finish_reason"] == "tool_calls");
  const auto chunks = sse_tool_call_chunk(kMeta, 0, calls[0]);
  const auto split = chunks.find("\n\n") + 2;
  const auto head = payload(chunks.substr(0, split))["choices"][0]["delta"]["tool_calls"][0];
  CHECK(head["index"] == 0);
  CHECK(head["id"] == "call_0_r1");
  CHECK(head["function"]["name"] == "get_weather");
  CHECK(head["function"]["arguments"] == "");
  const auto rest = payload(chunks.substr(split))["choices"][0]["delta"]["tool_calls"][0];
  CHECK(rest["index"] == 0);
  CHECK(rest["function"]["arguments"] == "{\"city\":\"Paris\"}");
}
