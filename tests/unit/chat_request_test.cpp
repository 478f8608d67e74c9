#include "proxy/api/chat_request.h"

#include <doctest/doctest.h>

using namespace cxp::proxy;

namespace {
const ParseOptions kOptions{{"gpt-5"}, "gpt-5", {}};

ApiError error_of(std::string_view body) {
  auto parsed = parse_chat_request(body, kOptions);
  REQUIRE(std::holds_alternative<ApiError>(parsed));
  return std::get<ApiError>(parsed);
}

TurnRequest ok(std::string_view body) {
  auto parsed = parse_chat_request(body, kOptions);
  if (auto* e = std::get_if<ApiError>(&parsed)) FAIL(e->message);
  return std::get<TurnRequest>(parsed);
}

using Kind = HistoryItem::Kind;
}  // namespace

TEST_CASE("a minimal request gets the default model and no streaming") {
  const auto r = ok(R"({"messages":[{"role":"user","content":"hi"}]})");
  CHECK(r.model == "gpt-5");
  CHECK_FALSE(r.stream);
  CHECK(r.input_text() == "hi");
  CHECK(r.history.empty());
}

TEST_CASE("stream options, text parts and unknown fields") {
  const auto r = ok(R"({"model":"gpt-5","stream":true,"stream_options":{"include_usage":true},
    "temperature":0.3,"whatever":{"x":1},
    "messages":[{"role":"user","content":[{"type":"text","text":"a"},{"type":"text","text":"b"}]},
                {"role":"assistant","content":null}]})");
  CHECK(r.stream);
  CHECK(r.include_usage);
  // An assistant message without content or calls adds nothing: "ab" is the turn's input.
  CHECK(r.input_text() == "ab");
  CHECK(r.history.empty());
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
        "messages[0].content[0].image_url");
  CHECK(error_of(R"({"messages":[{"role":"user","content":[{"type":"file","file":{}}]}]})").param ==
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

TEST_CASE("instructions from system/developer; the last user message is the turn's input") {
  auto r = ok(R"({"messages":[{"role":"system","content":"S1"},{"role":"developer","content":"D"},
                             {"role":"user","content":"hello"}]})");
  CHECK(r.instructions == "S1\n\nD");
  CHECK(r.input_text() == "hello");
  CHECK(r.history.empty());

  r = ok(R"({"messages":[{"role":"user","content":"one"},{"role":"assistant","content":"two"},
                        {"role":"user","content":"three"}]})");
  CHECK(r.instructions.empty());
  CHECK(r.input_text() == "three");
  REQUIRE(r.history.size() == 2);
  CHECK(r.history[0].kind == Kind::kUserMessage);
  CHECK(r.history[1].kind == Kind::kAssistantMessage);
  CHECK(history_item_json(r.history[1]) ==
        nlohmann::json::parse(R"({"type":"message","role":"assistant",
                                 "content":[{"type":"output_text","text":"two"}]})"));
}

TEST_CASE("tool calls and results are function calls and outputs; the turn goes on after them") {
  const auto r = ok(
      R"({"tools":[{"type":"function","function":{"name":"get_weather","description":"Weather now",
      "parameters":{"type":"object","properties":{"city":{"type":"string"}}}}}],
    "tool_choice":"required", "parallel_tool_calls":false,
    "messages":[{"role":"user","content":"weather in Paris?"},
      {"role":"assistant","content":null,"tool_calls":[{"id":"c1","type":"function",
        "function":{"name":"get_weather","arguments":"{\"city\":\"Paris\"}"}}]},
      {"role":"tool","tool_call_id":"c1","content":"sunny"}]})");
  CHECK(r.input.empty());
  REQUIRE(r.history.size() == 3);
  CHECK(history_item_json(r.history[1]) ==
        nlohmann::json::parse(R"({"type":"function_call","call_id":"c1","name":"get_weather",
                                 "arguments":"{\"city\":\"Paris\"}"})"));
  CHECK(
      history_item_json(r.history[2]) ==
      nlohmann::json::parse(R"({"type":"function_call_output","call_id":"c1","output":"sunny"})"));
  CHECK(r.offered_tools().size() == 1);
  CHECK(r.tools[0].parameters["properties"]["city"]["type"] == "string");
  CHECK(r.tool_choice_instructions().find("must call at least one") != std::string::npos);
  CHECK_FALSE(r.parallel_tool_calls);
}

TEST_CASE("tool_choice none offers nothing, a named function only itself") {
  const std::string tools =
      R"("tools":[{"type":"function","function":{"name":"f"}},{"type":"function","function":{"name":"g"}}])";
  auto r =
      ok(R"({"tool_choice":"none",)" + tools + R"(,"messages":[{"role":"user","content":"x"}]})");
  CHECK(r.offered_tools().empty());
  CHECK(r.tool_choice_instructions().empty());
  r = ok(R"({"tool_choice":{"type":"function","function":{"name":"g"}},)" + tools +
         R"(,"messages":[{"role":"user","content":"x"}]})");
  REQUIRE(r.offered_tools().size() == 1);
  CHECK(r.offered_tools()[0].name == "g");
  CHECK(r.offered_tools()[0].parameters == nlohmann::json{{"type", "object"}});
  CHECK(r.tool_choice_instructions().find("`g`") != std::string::npos);
}

TEST_CASE("bad tools and tool messages are refused naming the field") {
  const std::string user = R"("messages":[{"role":"user","content":"x"}])";
  CHECK(error_of(R"({"tools":[{"type":"function","function":{"name":"f"}},
                              {"type":"function","function":{"name":"f"}}],)" +
                 user + "}")
            .param == "tools[1].function");
  CHECK(error_of(R"({"tools":[{"type":"function","function":{"name":"f","parameters":[]}}],)" +
                 user + "}")
            .param == "tools[0].function.parameters");
  CHECK(error_of(R"({"tools":[{"type":"function","function":{"name":"f",
                   "parameters":{"type":"string"}}}],)" +
                 user + "}")
            .param == "tools[0].function.parameters.type");
  CHECK(error_of(R"({"tools":[{"type":"function","function":{"name":"f"}}],
                    "tool_choice":{"type":"function","function":{"name":"g"}},)" +
                 user + "}")
            .param == "tool_choice");
  CHECK(error_of(R"({"tool_choice":"required",)" + user + "}").param == "tool_choice");
  const auto orphan = error_of(R"({"messages":[{"role":"user","content":"x"},
                                  {"role":"tool","tool_call_id":"nope","content":"1"}]})");
  CHECK(orphan.param == "messages[1].tool_call_id");
  CHECK(orphan.message.find("nope") != std::string::npos);
  CHECK(
      error_of(R"({"messages":[{"role":"assistant","tool_calls":[{"type":"function"}]}]})").param ==
      "messages[0].tool_calls[0]");
  CHECK(error_of(R"({"messages":[{"role":"system","content":"only instructions"}]})").param ==
        "messages");
}
