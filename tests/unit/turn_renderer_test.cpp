#include "proxy/api/turn_renderer.h"

#include <doctest/doctest.h>

#include <nlohmann/json.hpp>
#include <sstream>

using namespace cxp::proxy;
using nlohmann::json;

namespace {

// The (type, payload) of every `event:`/`data:` pair of a Responses stream.
std::vector<std::pair<std::string, json>> events(const std::string& stream) {
  std::vector<std::pair<std::string, json>> out;
  std::istringstream lines(stream);
  std::string line, type;
  while (std::getline(lines, line)) {
    if (line.rfind("event: ", 0) == 0) type = line.substr(7);
    if (line.rfind("data: ", 0) == 0) out.emplace_back(type, json::parse(line.substr(6)));
  }
  return out;
}

TurnRequest sample() {
  TurnRequest r;
  r.model = "gpt-5";
  r.tools = {{"get_weather", "weather", json{{"type", "object"}}}};
  return r;
}

}  // namespace

TEST_CASE("a Responses stream: created, a message's text, a function call, completed, in order") {
  auto renderer = make_responses_renderer("r1", sample());
  std::string stream = renderer->stream_start();
  stream += renderer->text_delta("Let me ");
  stream += renderer->text_delta("check.");
  stream += renderer->tool_call(0, {"call_1", "get_weather", R"({"city":"Paris"})"});
  stream += renderer->stream_end({"Let me check.",
                                  {{"call_1", "get_weather", "{}"}},
                                  "tool_calls",
                                  TokenUsage{10, 3, 13, 0, 0},
                                  {}});
  const auto all = events(stream);
  std::vector<std::string> types;
  for (const auto& [type, data] : all) {
    types.push_back(type);
    CHECK(data["type"] == type);  // the data names its event
  }
  CHECK(types == std::vector<std::string>{
                     "response.created", "response.in_progress", "response.output_item.added",
                     "response.content_part.added", "response.output_text.delta",
                     "response.output_text.delta", "response.output_text.done",
                     "response.content_part.done", "response.output_item.done",
                     "response.output_item.added", "response.function_call_arguments.delta",
                     "response.function_call_arguments.done", "response.output_item.done",
                     "response.completed"});
  for (std::size_t i = 0; i < all.size(); ++i) CHECK(all[i].second["sequence_number"] == i);
  const auto& done = all.back().second["response"];
  CHECK(done["id"] == "resp_r1");
  CHECK(done["status"] == "completed");
  REQUIRE(done["output"].size() == 2);
  CHECK(done["output"][0]["content"][0]["text"] == "Let me check.");
  CHECK(done["output"][1]["type"] == "function_call");
  CHECK(done["output"][1]["call_id"] == "call_1");
  CHECK(done["output"][1]["arguments"] == R"({"city":"Paris"})");
  CHECK(done["usage"]["total_tokens"] == 13);
  CHECK(done["tools"][0]["name"] == "get_weather");
}

TEST_CASE("a Responses failure mid-stream is response.failed with the error") {
  auto renderer = make_responses_renderer("r2", sample());
  ApiError e;
  e.code = "model_error";
  e.message = "the model provider failed: overloaded";
  const auto all = events(renderer->stream_start() + renderer->stream_error(e));
  CHECK(all.back().first == "response.failed");
  CHECK(all.back().second["response"]["status"] == "failed");
  CHECK(all.back().second["response"]["error"]["code"] == "model_error");
}

TEST_CASE("a Responses body: one message, then the function calls; an empty answer is a message") {
  auto renderer = make_responses_renderer("r3", sample());
  auto body = json::parse(renderer->body({"", {{"c", "get_weather", "{}"}}, "tool_calls", {}, {}}));
  REQUIRE(body["output"].size() == 1);
  CHECK(body["output"][0]["type"] == "function_call");
  body = json::parse(renderer->body({"", {}, "stop", {}, {}}));
  REQUIRE(body["output"].size() == 1);
  CHECK(body["output"][0]["type"] == "message");
  CHECK(body["object"] == "response");
}

TEST_CASE("a chat stream ends with finish, usage when asked, and [DONE]") {
  TurnRequest r = sample();
  r.include_usage = true;
  auto renderer = make_chat_renderer("r4", r);
  const auto end = renderer->stream_end({"x", {}, "stop", TokenUsage{1, 2, 3, 0, 0}, {}});
  CHECK(end.find("\"finish_reason\":\"stop\"") != std::string::npos);
  CHECK(end.find("\"completion_tokens\":2") != std::string::npos);
  CHECK(end.rfind("data: [DONE]\n\n") == end.size() - 14);
}
