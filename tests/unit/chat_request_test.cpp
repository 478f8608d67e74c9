#include "proxy/api/chat_request.h"

#include <doctest/doctest.h>

using namespace cxp::proxy;

namespace {
const std::vector<std::string> kModels{"gpt-5"};

ApiError error_of(std::string_view body) {
  auto parsed = parse_chat_request(body, kModels, "gpt-5");
  REQUIRE(std::holds_alternative<ApiError>(parsed));
  return std::get<ApiError>(parsed);
}

ChatRequest ok(std::string_view body) {
  auto parsed = parse_chat_request(body, kModels, "gpt-5");
  if (auto* e = std::get_if<ApiError>(&parsed)) FAIL(e->message);
  return std::get<ChatRequest>(parsed);
}
}  // namespace

TEST_CASE("a minimal request gets the default model and no streaming") {
  const auto r = ok(R"({"messages":[{"role":"user","content":"hi"}]})");
  CHECK(r.model == "gpt-5");
  CHECK_FALSE(r.stream);
  REQUIRE(r.messages.size() == 1);
  CHECK(r.messages[0].content == "hi");
}

TEST_CASE("stream options, text parts and unknown fields") {
  const auto r = ok(R"({"model":"gpt-5","stream":true,"stream_options":{"include_usage":true},
    "temperature":0.3,"whatever":{"x":1},
    "messages":[{"role":"user","content":[{"type":"text","text":"a"},{"type":"text","text":"b"}]},
                {"role":"assistant","content":null}]})");
  CHECK(r.stream);
  CHECK(r.include_usage);
  CHECK(r.messages[0].content == "ab");
  CHECK(r.messages[1].content.empty());
}

TEST_CASE("every client mistake names its field") {
  CHECK(error_of("{").message.find("not valid JSON") != std::string::npos);
  CHECK(error_of("[]").status == 400);
  CHECK(error_of(R"({})").param == "messages");
  CHECK(error_of(R"({"messages":{}})").param == "messages");
  CHECK(error_of(R"({"messages":[]})").param == "messages");
  CHECK(error_of(R"({"messages":[1]})").param == "messages[0]");
  CHECK(error_of(R"({"messages":[{"content":"x"}]})").param == "messages[0].role");
  CHECK(error_of(R"({"messages":[{"role":"robot","content":"x"}]})").param == "messages[0].role");
  CHECK(error_of(R"({"messages":[{"role":"user","content":{}}]})").param == "messages[0].content");
  CHECK(error_of(R"({"messages":[{"role":"user","content":[{"type":"image_url"}]}]})").param ==
        "messages[0].content[0].type");
  CHECK(error_of(R"({"messages":[{"role":"user","content":[{"type":"text"}]}]})").param ==
        "messages[0].content[0].text");
  CHECK(error_of(R"({"n":3,"messages":[{"role":"user","content":"x"}]})").param == "n");
  CHECK(error_of(R"({"stream":1,"messages":[{"role":"user","content":"x"}]})").param == "stream");
  CHECK(
      error_of(
          R"({"stream_options":{"include_usage":"y"},"messages":[{"role":"user","content":"x"}]})")
          .param == "stream_options.include_usage");
  CHECK(error_of(R"({"tools":[{"type":"function"}],"messages":[{"role":"user","content":"x"}]})")
            .param == "tools[0].function");
  CHECK(
      error_of(R"({"tools":[{"type":"code"}],"messages":[{"role":"user","content":"x"}]})").param ==
      "tools[0].type");
  CHECK(
      error_of(
          R"({"tools":[{"type":"function","function":{"name":"a b"}}],"messages":[{"role":"user","content":"x"}]})")
          .param == "tools[0].function.name");
  CHECK(
      error_of(R"({"tool_choice":"sometimes","messages":[{"role":"user","content":"x"}]})").param ==
      "tool_choice");
  const auto missing = error_of(R"({"model":"gpt-9","messages":[{"role":"user","content":"x"}]})");
  CHECK(missing.status == 404);
  CHECK(missing.code == "model_not_found");
  CHECK(missing.message.find("gpt-9") != std::string::npos);
}

TEST_CASE("rendering: instructions from system/developer, a lone user message passes as is") {
  auto r = ok(R"({"messages":[{"role":"system","content":"S1"},{"role":"developer","content":"D"},
                             {"role":"user","content":"hello"}]})");
  auto input = render_turn_input(r);
  CHECK(input.instructions == "S1\n\nD");
  CHECK(input.text == "hello");

  r = ok(R"({"messages":[{"role":"user","content":"one"},{"role":"assistant","content":"two"},
                        {"role":"tool","content":"3"},{"role":"user","content":"four"}]})");
  input = render_turn_input(r);
  CHECK(input.instructions.empty());
  CHECK(input.text == "[user]\none\n\n[assistant]\ntwo\n\n[tool]\n3\n\n[user]\nfour");
}

TEST_CASE(
    "tools: the instructions list them and the calling convention; history keeps earlier calls") {
  const auto r = ok(
      R"({"tools":[{"type":"function","function":{"name":"get_weather","description":"Weather now",
      "parameters":{"type":"object","properties":{"city":{"type":"string"}}}}}],
    "tool_choice":"required",
    "messages":[{"role":"user","content":"weather in Paris?"},
      {"role":"assistant","content":null,"tool_calls":[{"id":"c1","type":"function",
        "function":{"name":"get_weather","arguments":"{\"city\":\"Paris\"}"}}]},
      {"role":"tool","tool_call_id":"c1","content":"sunny"}]})");
  CHECK(r.tools_active());
  const auto input = render_turn_input(r);
  CHECK(input.instructions.find("- get_weather: Weather now") != std::string::npos);
  CHECK(input.instructions.find("<tool_call>{\"name\": \"<tool name>\"") != std::string::npos);
  CHECK(input.instructions.find("must call at least one tool") != std::string::npos);
  CHECK(input.text ==
        "[user]\nweather in Paris?\n\n[assistant]\n<tool_call>{\"arguments\":{\"city\":\"Paris\"},"
        "\"name\":\"get_weather\"}</tool_call>\n\n[tool result c1]\nsunny");
  const auto none =
      ok(R"({"tool_choice":"none","tools":[{"type":"function","function":{"name":"f"}}],
                           "messages":[{"role":"user","content":"x"}]})");
  CHECK_FALSE(none.tools_active());
  CHECK(render_turn_input(none).instructions.empty());
}
