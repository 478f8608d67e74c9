#include "proxy/api/responses_request.h"

#include <doctest/doctest.h>

using namespace cxp::proxy;
using nlohmann::json;
using Kind = HistoryItem::Kind;

namespace {
const ParseOptions kOptions{{"gpt-5"}, "gpt-5", {}};

ApiError error_of(std::string_view body) {
  auto parsed = parse_responses_request(body, kOptions);
  REQUIRE(std::holds_alternative<ApiError>(parsed));
  return std::get<ApiError>(parsed);
}

TurnRequest ok(std::string_view body) {
  auto parsed = parse_responses_request(body, kOptions);
  if (auto* e = std::get_if<ApiError>(&parsed)) FAIL(e->message);
  return std::get<TurnRequest>(parsed);
}
}  // namespace

TEST_CASE("a string input is one user turn; usage is always reported") {
  const auto r = ok(R"({"model":"gpt-5","input":"hi","instructions":"be brief","stream":true})");
  CHECK(r.input_text() == "hi");
  CHECK(r.instructions == "be brief");
  CHECK(r.history.empty());
  CHECK(r.stream);
  CHECK(r.include_usage);
}

TEST_CASE("input items: messages, a function round trip, reasoning ignored, instructions joined") {
  const auto r = ok(R"({"instructions":"I","input":[
      {"role":"developer","content":"D"},
      {"type":"message","role":"user","content":[{"type":"input_text","text":"weather?"}]},
      {"type":"reasoning","id":"rs_1","summary":[]},
      {"type":"function_call","call_id":"c1","name":"get_weather","arguments":"{}"},
      {"type":"function_call_output","call_id":"c1","output":"sunny"}],
    "tools":[{"type":"function","name":"get_weather","parameters":{"type":"object"}}],
    "tool_choice":{"type":"function","name":"get_weather"}})");
  CHECK(r.instructions == "I\n\nD");
  CHECK(r.input.empty());
  REQUIRE(r.history.size() == 3);
  CHECK(r.history[0].kind == Kind::kUserMessage);
  CHECK(r.history[2].kind == Kind::kFunctionCallOutput);
  CHECK(r.tool_choice == "get_weather");
}

TEST_CASE("what codex-proxy cannot serve is refused naming the field") {
  CHECK(error_of(R"({"input":"x","previous_response_id":"resp_1"})").message.find("stores no") !=
        std::string::npos);
  CHECK(error_of(R"({"input":"x","conversation":"c"})").param == "conversation");
  CHECK(error_of(R"({})").param == "input");
  CHECK(error_of(R"({"input":5})").param == "input");
  CHECK(
      error_of(R"({"input":[{"role":"user","content":[{"type":"input_image","image_url":"x"}]}]})")
          .param == "input[0].content[0].image_url");
  CHECK(error_of(R"({"input":[{"role":"user","content":[{"type":"input_file","file_id":"f"}]}]})")
            .param == "input[0].content[0].type");
  CHECK(error_of(R"({"input":[{"type":"item_reference","id":"x"}]})").param == "input[0].type");
  CHECK(error_of(R"({"input":[{"type":"function_call_output","call_id":"zz","output":"1"}]})")
            .param == "input[0].call_id");
  CHECK(error_of(R"({"input":"x","tools":[{"name":"no type"}]})").param == "tools[0].type");
  CHECK(error_of(R"({"input":"x","tools":[{"type":"function","name":"a"},
                                          {"type":"function","name":"a"}]})")
            .param == "tools[1]");
  CHECK(error_of(R"({"input":"x","tool_choice":{"type":"function","name":"nope"}})").param ==
        "tool_choice");
  CHECK(error_of(R"({"input":"x","model":"gpt-9"})").code == "model_not_found");
  CHECK(error_of(R"({"input":[{"role":"system","content":"only"}]})").param == "input");
}

TEST_CASE("hosted tools and namespaces are left out and named, function tools kept") {
  const auto r = ok(R"({"input":"x","tools":[{"type":"web_search","external_web_access":false},
      {"type":"namespace","name":"multi_agent_v1","tools":[]},
      {"type":"function","name":"exec_command","parameters":{"type":"object"}}]})");
  REQUIRE(r.tools.size() == 1);
  CHECK(r.tools[0].name == "exec_command");
  CHECK(r.ignored_tools == std::vector<std::string>{"web_search", "namespace:multi_agent_v1"});
}

TEST_CASE("input_image items, reasoning effort and summary") {
  const std::string png =
      "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQ"
      "GAhKmMIQAAAABJRU5ErkJggg==";
  auto r = ok(R"({"input":[{"role":"user","content":[{"type":"input_text","text":"what is it?"},
                 {"type":"input_image","image_url":")" +
              png + R"(","detail":"high"}]}],
                 "reasoning":{"effort":"high","summary":"concise"}})");
  REQUIRE(r.input.size() == 2);
  CHECK(r.input[1].image->detail == "high");
  CHECK(r.effort == "high");
  CHECK(r.summary == "concise");
  CHECK(ok(R"({"input":"x","reasoning":{"generate_summary":"auto"}})").summary == "auto");
  CHECK(error_of(
            R"({"input":[{"role":"user","content":[{"type":"input_image","file_id":"file-1"}]}]})")
            .param == "input[0].content[0].file_id");
  CHECK(error_of(R"({"input":"x","reasoning":{"effort":"max"}})").param == "reasoning.effort");
  CHECK(error_of(R"({"input":"x","reasoning":{"summary":"long"}})").param == "reasoning.summary");
  CHECK(error_of(R"({"input":"x","reasoning":"high"})").param == "reasoning");
}
