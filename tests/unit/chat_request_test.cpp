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

namespace {
const std::string kPng =
    "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQ"
    "GAhKmMIQAAAABJRU5ErkJggg==";

std::string with_parts(const std::string& parts, const std::string& role = "user") {
  return R"({"messages":[{"role":")" + role + R"(","content":[)" + parts + "]}]}";
}

std::string image(const std::string& url, const std::string& detail = "") {
  return R"({"type":"image_url","image_url":{"url":")" + url + "\"" +
         (detail.empty() ? "" : R"(,"detail":")" + detail + "\"") + "}}";
}
}  // namespace

TEST_CASE("image parts of a user message are kept in order with their detail (auto by default)") {
  auto r = ok(with_parts(R"({"type":"text","text":"a"},)" + image(kPng, "high") +
                         R"(,{"type":"text","text":"b"},)" + image(kPng) + "," +
                         image("data:image/jpeg;base64,/9j/4AAQSkZJRgAB") + "," +
                         image("data:image/gif;base64,R0lGODlhAQABAA==") + "," +
                         image("data:image/webp;base64,UklGRiQAAABXRUJQVlA4IA==", "original")));
  REQUIRE(r.input.size() == 7);
  CHECK(r.input[0].text == "a");
  CHECK(r.input[1].image->detail == "high");
  CHECK(r.input[1].image->url == kPng);
  CHECK(r.input[2].text == "b");
  CHECK(r.input[3].image->detail == "auto");
  CHECK(r.input[6].image->detail == "original");
  CHECK(r.input_text() == "ab");
  // An image of an earlier user message stays in the history.
  auto h = ok(R"({"messages":[{"role":"user","content":[)" + image(kPng) +
              R"(]},{"role":"assistant","content":"seen"},{"role":"user","content":"and?"}]})");
  REQUIRE(h.history.size() == 2);
  CHECK(history_item_json(h.history[0])["content"][0] ==
        nlohmann::json{{"type", "input_image"}, {"image_url", kPng}, {"detail", "auto"}});
}

TEST_CASE("images the worker cannot take are a 400 naming the part and saying why") {
  const auto at = std::string("messages[0].content[0]");
  auto remote = error_of(with_parts(image("https://example.com/cat.png")));
  CHECK(remote.param == at + ".image_url.url");
  CHECK(remote.message.find("data URL") != std::string::npos);
  CHECK(error_of(with_parts(image("data:image/png;base64,!!!!"))).message.find("base64") !=
        std::string::npos);
  CHECK(error_of(with_parts(image("data:image/png;base64,/9j/4AAQSkZJRgAB")))
            .message.find("not a png image") != std::string::npos);
  CHECK(error_of(with_parts(image("data:image/tiff;base64,AAAA"))).message.find("tiff") !=
        std::string::npos);
  CHECK(error_of(with_parts(image("data:image/png,abc"))).message.find("malformed") !=
        std::string::npos);
  auto low = error_of(with_parts(image(kPng, "low")));
  CHECK(low.param == at + ".image_url.detail");
  CHECK(low.message.find("low") != std::string::npos);
  CHECK(error_of(with_parts(image(kPng), "system")).message.find("user messages only") !=
        std::string::npos);
  CHECK(error_of(with_parts(R"({"type":"input_audio","input_audio":{}})"))
            .message.find("no files or audio") != std::string::npos);

  std::string seventeen;
  for (int i = 0; i < 17; ++i) seventeen += (i ? "," : "") + image(kPng);
  auto many = error_of(with_parts(seventeen));
  CHECK(many.param == "messages[0].content[16].image_url.url");
  CHECK(many.message.find("PROXY_MAX_IMAGES") != std::string::npos);
  ParseOptions small = kOptions;
  small.images.max_bytes = 100;
  auto parsed = parse_chat_request(with_parts(image(kPng) + "," + image(kPng)), small);
  REQUIRE(std::holds_alternative<ApiError>(parsed));
  CHECK(std::get<ApiError>(parsed).message.find("PROXY_MAX_IMAGE_BYTES") != std::string::npos);
}

TEST_CASE("generation parameters: effort, stop, and the fields codex cannot honour") {
  auto r = ok(R"({"messages":[{"role":"user","content":"x"}],"reasoning_effort":"minimal",
                  "stop":["a","b"],"temperature":0.1,"max_tokens":9})");
  CHECK(r.effort == "minimal");
  CHECK(r.stop == std::vector<std::string>{"a", "b"});
  CHECK(r.ignored_params == std::vector<std::string>{"max_tokens", "temperature"});
  CHECK(ok(R"({"messages":[{"role":"user","content":"x"}],"stop":"##"})").stop ==
        std::vector<std::string>{"##"});
  CHECK(error_of(R"({"messages":[{"role":"user","content":"x"}],"reasoning_effort":"ultra"})")
            .param == "reasoning_effort");
  CHECK(error_of(R"({"messages":[{"role":"user","content":"x"}],"stop":["a","b","c","d","e"]})")
            .param == "stop");
  CHECK(error_of(R"({"messages":[{"role":"user","content":"x"}],"stop":["a",""]})").param ==
        "stop[1]");
}
