#include "proxy/api/tool_call_extractor.h"

#include <doctest/doctest.h>

#include <nlohmann/json.hpp>

using namespace cxp::proxy;

namespace {

struct Result {
  std::string text;
  std::vector<ExtractedToolCall> calls;
};

Result run(const std::vector<std::string_view>& pieces, ToolBufferCounters& counters,
           bool well_formed = true) {
  ToolCallExtractor extractor(counters);
  Result result;
  auto take = [&](ExtractedOutput out) {
    if (well_formed) CHECK(out.text.find("<tool_call>") == std::string::npos);  // never half a call
    result.text += out.text;
    for (auto& call : out.calls) result.calls.push_back(std::move(call));
  };
  for (auto piece : pieces) take(extractor.feed(piece));
  auto tail = extractor.finish();
  result.text += tail.text;
  for (auto& call : tail.calls) result.calls.push_back(std::move(call));
  return result;
}

}  // namespace

TEST_CASE("a tool call is extracted whole at every possible split of the stream") {
  const std::string stream =
      "Let me check. <tool_call>{\"name\": \"get_weather\", \"arguments\": {\"city\": "
      "\"Paris\"}}</tool_call>"
      "<tool_call>{\"name\":\"noop\"}</tool_call> done";
  for (std::size_t a = 0; a <= stream.size(); ++a) {
    for (std::size_t b = a; b <= stream.size(); b += 7) {
      ToolBufferCounters counters;
      const auto r =
          run({std::string_view(stream).substr(0, a), std::string_view(stream).substr(a, b - a),
               std::string_view(stream).substr(b)},
              counters);
      REQUIRE(r.calls.size() == 2);
      CHECK(r.calls[0].name == "get_weather");
      CHECK(nlohmann::json::parse(r.calls[0].arguments) == nlohmann::json{{"city", "Paris"}});
      CHECK(r.calls[1].name == "noop");
      CHECK(r.calls[1].arguments == "{}");
      CHECK(r.text == "Let me check.  done");
      CHECK(counters.started == 2);
      CHECK(counters.flushed == 2);
      CHECK(counters.aborted == 0);
    }
  }
}

TEST_CASE("one character at a time") {
  const std::string stream =
      "x<tool_call>{\"name\":\"f\",\"arguments\":\"{\\\"a\\\":1}\"}</tool_call>y";
  std::vector<std::string_view> pieces;
  for (std::size_t i = 0; i < stream.size(); ++i)
    pieces.push_back(std::string_view(stream).substr(i, 1));
  ToolBufferCounters counters;
  const auto r = run(pieces, counters);
  REQUIRE(r.calls.size() == 1);
  CHECK(r.calls[0].arguments == "{\"a\":1}");
  CHECK(r.text == "xy");
}

TEST_CASE("text that only looks like the start of a tag is released") {
  ToolBufferCounters counters;
  ToolCallExtractor extractor(counters);
  auto out = extractor.feed("a <tool");
  CHECK(out.text == "a ");
  out = extractor.feed("box> b");
  CHECK(out.text == "<toolbox> b");
  CHECK(counters.started == 0);
}

TEST_CASE("a stream that ends inside a call gives the text back and counts an abort") {
  ToolBufferCounters counters;
  const auto r = run({"before <tool_call>{\"name\": \"f\", \"argu"}, counters, false);
  CHECK(r.calls.empty());
  CHECK(r.text == "before <tool_call>{\"name\": \"f\", \"argu");
  CHECK(counters.started == 1);
  CHECK(counters.aborted == 1);
}

TEST_CASE("a malformed call is given back as text and the stream goes on") {
  ToolBufferCounters counters;
  const auto r =
      run({"<tool_call>not json</tool_call> and <tool_call>{\"name\":\"ok\"}</tool_call>"},
          counters, false);
  REQUIRE(r.calls.size() == 1);
  CHECK(r.calls[0].name == "ok");
  CHECK(r.text == "<tool_call>not json</tool_call> and ");
  CHECK(counters.aborted == 1);
  CHECK(counters.flushed == 1);
}

TEST_CASE("a call that grows without bound is given back") {
  ToolBufferCounters counters;
  ToolCallExtractor extractor(counters);
  extractor.feed("<tool_call>");
  const std::string chunk(64 * 1024, 'z');
  std::string released;
  for (int i = 0; i < 20; ++i) released += extractor.feed(chunk).text;
  CHECK(counters.aborted == 1);
  CHECK(released.size() > ToolCallExtractor::kMaxCallBytes);
}
