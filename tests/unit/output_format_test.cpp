#include "proxy/api/output_format.h"

#include <doctest/doctest.h>

#include "proxy/api/chat_request.h"
#include "proxy/api/responses_request.h"

using namespace cxp::proxy;
using nlohmann::json;

namespace {

const ParseOptions kOptions{{"gpt-5"}, "gpt-5", {}};

json object_of(json properties) {
  json required = json::array();
  for (const auto& [key, value] : properties.items()) required.push_back(key);
  return {{"type", "object"},
          {"properties", std::move(properties)},
          {"required", std::move(required)},
          {"additionalProperties", false}};
}

std::variant<TurnRequest, ApiError> chat_with(const json& response_format,
                                              const std::string& say = "hi") {
  return parse_chat_request(json{{"messages", {{{"role", "user"}, {"content", say}}}},
                                 {"response_format", response_format}}
                                .dump(),
                            kOptions);
}

ApiError error_of(std::variant<TurnRequest, ApiError> parsed) {
  REQUIRE(std::holds_alternative<ApiError>(parsed));
  return std::get<ApiError>(parsed);
}

// Feeds `answer` cut at `cut` and returns what the unwrapper gives.
std::string unwrap(const std::string& answer, std::size_t cut) {
  JsonObjectUnwrapper unwrapper;
  std::string out = unwrapper.feed(answer.substr(0, cut));
  out += unwrapper.feed(answer.substr(cut));
  return out + unwrapper.finish();
}

}  // namespace

TEST_CASE("strict mode's rules: what OpenAI's structured outputs accept and refuse") {
  const json ok = object_of({{"name", {{"type", "string"}}},
                             {"tags", {{"type", "array"}, {"items", {{"type", "string"}}}}},
                             {"maybe", {{"type", json::array({"integer", "null"})}}},
                             {"kind", {{"enum", json::array({"a", "b"})}}},
                             {"node", {{"$ref", "#/$defs/node"}}}});
  json with_defs = ok;
  with_defs["$defs"]["node"] = object_of(
      {{"v", {{"anyOf", json::array({json{{"type", "string"}}, json{{"type", "null"}}})}}}});
  CHECK(strict_schema_problem(with_defs) == "");

  json optional = ok;
  optional["required"] = json::array({"kind", "maybe", "name", "node"});
  CHECK(strict_schema_problem(optional) ==
        "the root: property 'tags' is not in \"required\" (strict mode requires every property; "
        "make an optional one nullable, e.g. \"type\": [\"string\", \"null\"])");
  json open = ok;
  open.erase("additionalProperties");
  CHECK(strict_schema_problem(open).find("additionalProperties") != std::string::npos);
  json nested = object_of({{"inner", {{"type", "object"}, {"properties", json::object()}}}});
  CHECK(strict_schema_problem(nested).rfind("properties.inner:", 0) == 0);
  CHECK(strict_schema_problem(json{{"type", "array"}}).find("root") != std::string::npos);
  CHECK(strict_schema_problem(json{{"anyOf", json::array()}}).find("root") != std::string::npos);
  CHECK(strict_schema_problem(object_of({{"x", {{"oneOf", json::array()}}}}))
            .find("\"oneOf\" is not supported") != std::string::npos);
  CHECK(strict_schema_problem(object_of({{"x", {{"$ref", "https://example.com/s.json"}}}}))
            .find("local") != std::string::npos);
  CHECK(strict_schema_problem(object_of({{"x", {{"type", "date"}}}})).find("'date'") !=
        std::string::npos);
  json deep = object_of({{"v", {{"type", "string"}}}});
  for (int i = 0; i < 11; ++i) deep = object_of({{"d", deep}});
  CHECK(strict_schema_problem(deep).find("deeper") != std::string::npos);
}

TEST_CASE("a json_schema response format becomes the turn's output schema, description inside") {
  const json schema = object_of({{"city", {{"type", "string"}}}});
  auto parsed = chat_with({{"type", "json_schema"},
                           {"json_schema",
                            {{"name", "weather"},
                             {"description", "The weather"},
                             {"schema", schema},
                             {"strict", true}}}});
  REQUIRE(std::holds_alternative<TurnRequest>(parsed));
  const auto& format = std::get<TurnRequest>(parsed).format;
  CHECK(format.kind == OutputFormat::Kind::kJsonSchema);
  json expected = schema;
  expected["description"] = "The weather";
  CHECK(format.worker_schema() == expected);
  CHECK(format.echo()["name"] == "weather");
  CHECK(format.echo()["strict"] == true);

  // strict: false with a schema strict mode can enforce: honoured (strictly).
  CHECK(std::holds_alternative<TurnRequest>(
      chat_with({{"type", "json_schema"},
                 {"json_schema", {{"name", "w"}, {"schema", schema}, {"strict", false}}}})));
  // text: no constraint.
  CHECK(std::get<TurnRequest>(chat_with({{"type", "text"}})).format.worker_schema().is_null());
}

TEST_CASE("a schema codex cannot give the model is a 400 naming the field and saying why") {
  json optional = object_of({{"a", {{"type", "string"}}}, {"b", {{"type", "string"}}}});
  optional["required"] = json::array({"a"});
  const auto e = error_of(
      chat_with({{"type", "json_schema"}, {"json_schema", {{"name", "w"}, {"schema", optional}}}}));
  CHECK(e.param == "response_format.json_schema.schema");
  CHECK(e.message.find("'b' is not in \"required\"") != std::string::npos);
  CHECK(e.message.find("strict: false cannot be honoured") != std::string::npos);

  CHECK(error_of(
            chat_with({{"type", "json_schema"}, {"json_schema", {{"name", "w"}, {"schema", 5}}}}))
            .param == "response_format.json_schema.schema");
  CHECK(error_of(chat_with({{"type", "json_schema"}, {"json_schema", {{"schema", object_of({})}}}}))
            .param == "response_format.json_schema.name");
  CHECK(error_of(chat_with({{"type", "json_schema"}, {"json_schema", {{"name", "w"}}}})).param ==
        "response_format.json_schema.schema");
  CHECK(error_of(chat_with({{"type", "yaml"}})).param == "response_format.type");
  json huge =
      object_of({{"x", {{"type", "string"}, {"description", std::string(kMaxSchemaBytes, 'd')}}}});
  CHECK(error_of(chat_with(
                     {{"type", "json_schema"}, {"json_schema", {{"name", "w"}, {"schema", huge}}}}))
            .message.find("KiB") != std::string::npos);

  // The Responses API names its own fields.
  const auto r = parse_responses_request(
      json{{"input", "hi"},
           {"text", {{"format", {{"type", "json_schema"}, {"name", "w"}, {"schema", optional}}}}}}
          .dump(),
      kOptions);
  REQUIRE(std::holds_alternative<ApiError>(r));
  CHECK(std::get<ApiError>(r).param == "text.format.schema");
}

TEST_CASE("json_object needs the messages to say JSON, as OpenAI does, and asks a strict wrapper") {
  const auto e = error_of(chat_with({{"type", "json_object"}}, "give me an object"));
  CHECK(e.param == "messages");
  CHECK(e.message.find("json") != std::string::npos);
  auto parsed = chat_with({{"type", "json_object"}}, "answer in Json please");
  REQUIRE(std::holds_alternative<TurnRequest>(parsed));
  const auto wrapper = std::get<TurnRequest>(parsed).format.worker_schema();
  CHECK(strict_schema_problem(wrapper) == "");
  CHECK(wrapper["properties"]["json"]["type"] == "string");

  const auto r = parse_responses_request(
      R"({"input":"no mention","text":{"format":{"type":"json_object"}}})", kOptions);
  REQUIRE(std::holds_alternative<ApiError>(r));
  CHECK(std::get<ApiError>(r).param == "input");
  CHECK(std::holds_alternative<TurnRequest>(parse_responses_request(
      R"({"instructions":"Reply in JSON.","input":"hi","text":{"format":{"type":"json_object"}}})",
      kOptions)));
}

TEST_CASE("the json_object answer is unwrapped however the deltas cut it") {
  const std::string inner = "{\"a\": [1, \"\u00e9 \\\"q\\\" \U0001F600\"], \"b\": \"x\\ny\"}";
  const std::string wrapped = json{{"json", inner}}.dump(-1, ' ', true);  // \u escapes, surrogates
  REQUIRE(wrapped.find("\\ud83d\\ude00") != std::string::npos);
  for (std::size_t cut = 0; cut <= wrapped.size(); ++cut) {
    INFO("cut at " << cut);
    CHECK(unwrap(wrapped, cut) == inner);
  }
  // A long answer in one delta (found by fuzzing: the prefix's bound counted the whole delta).
  const std::string long_inner = json{{"text", std::string(1000, 'x')}}.dump();
  CHECK(unwrap(json{{"json", long_inner}}.dump(), 0) == long_inner);
  // With whitespace between the tokens, and trailing text after the string ignored.
  CHECK(unwrap(" { \"json\" :\n \"{}\" }  ", 4) == "{}");
  // Not the wrapper: the answer as it came.
  CHECK(unwrap("{\"other\": 1}", 3) == "{\"other\": 1}");
  CHECK(unwrap("plain text", 2) == "plain text");
  CHECK(unwrap("{\"js", 2) == "{\"js");  // ended inside the prefix
}
