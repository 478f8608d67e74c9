#include "proxy/api/request_fields.h"

#include <doctest/doctest.h>

#include <fstream>
#include <set>
#include <sstream>
#include <tuple>

#include "proxy/api/chat_request.h"
#include "proxy/api/responses_request.h"

using namespace cxp::proxy;
using nlohmann::json;

namespace {

const ParseOptions kOptions{{"gpt-5"}, "gpt-5", {}};

std::string use_name(FieldUse use) {
  switch (use) {
    case FieldUse::kHonoured:
      return "honoured";
    case FieldUse::kIgnored:
      return "ignored";
    case FieldUse::kRefused:
      return "refused";
  }
  return "?";
}

// A request of `api` that asks for nothing special, with `path` set to `value`.
std::string request_with(std::string_view api, std::string_view path, const json& value) {
  json root = api == "chat" ? json{{"messages", {{{"role", "user"}, {"content", "hi"}}}}}
                            : json{{"input", "hi"}};
  json* node = &root;
  std::size_t start = 0;
  for (auto dot = path.find('.'); dot != std::string_view::npos; dot = path.find('.', start)) {
    node = &(*node)[std::string(path.substr(start, dot - start))];
    start = dot + 1;
  }
  (*node)[std::string(path.substr(start))] = value;
  return root.dump();
}

std::variant<TurnRequest, ApiError> parse(std::string_view api, const std::string& body) {
  return api == "chat" ? parse_chat_request(body, kOptions)
                       : parse_responses_request(body, kOptions);
}

}  // namespace

TEST_CASE("docs/api.md lists every request field with what codex-proxy does with it") {
  std::ifstream file(std::string(CXP_SOURCE_DIR) + "/docs/api.md");
  REQUIRE(file);
  std::set<std::tuple<std::string, std::string, std::string>> documented;
  std::string line;
  while (std::getline(file, line)) {
    // | chat | `temperature` | ignored | … |
    for (const std::string api : {"chat", "responses"}) {
      const std::string head = "| " + api + " | `";
      if (line.rfind(head, 0) != 0) continue;
      const auto path_end = line.find('`', head.size());
      const auto use_start = line.find("| ", path_end) + 2;
      const auto use_end = line.find(' ', use_start);
      documented.emplace(api, line.substr(head.size(), path_end - head.size()),
                         line.substr(use_start, use_end - use_start));
    }
  }
  std::set<std::tuple<std::string, std::string, std::string>> code;
  for (const auto& field : request_fields()) {
    code.emplace(std::string(field.api), std::string(field.path), use_name(field.use));
  }
  for (const auto& row : code) {
    INFO(std::get<0>(row) << " " << std::get<1>(row) << " " << std::get<2>(row));
    CHECK(documented.count(row) == 1);
  }
  CHECK(documented == code);
}

TEST_CASE("an ignored field is reported by its path; its no-op value and null are not") {
  for (const auto& field : request_fields()) {
    if (field.use != FieldUse::kIgnored || field.sample.empty()) continue;
    INFO(field.api << " " << field.path);
    auto parsed = parse(field.api, request_with(field.api, field.path, json::parse(field.sample)));
    REQUIRE(std::holds_alternative<TurnRequest>(parsed));
    const auto& ignored = std::get<TurnRequest>(parsed).ignored_params;
    CHECK(ignored == std::vector<std::string>{std::string(field.path)});
    CHECK(std::get<TurnRequest>(parse(field.api, request_with(field.api, field.path, nullptr)))
              .ignored_params.empty());
    if (!field.noop.empty()) {
      CHECK(std::get<TurnRequest>(
                parse(field.api, request_with(field.api, field.path, json::parse(field.noop))))
                .ignored_params.empty());
    }
  }
}

TEST_CASE("a refused field is a 400 naming it; its no-op value is accepted") {
  for (const auto& field : request_fields()) {
    if (field.use != FieldUse::kRefused) continue;
    INFO(field.api << " " << field.path);
    REQUIRE_FALSE(field.sample.empty());
    auto parsed = parse(field.api, request_with(field.api, field.path, json::parse(field.sample)));
    REQUIRE(std::holds_alternative<ApiError>(parsed));
    CHECK(std::get<ApiError>(parsed).status == 400);
    CHECK(std::get<ApiError>(parsed).param == field.path);
    CHECK(std::get<ApiError>(parsed).message.size() > field.path.size() + 10);
    if (!field.noop.empty()) {
      CHECK(std::holds_alternative<TurnRequest>(
          parse(field.api, request_with(field.api, field.path, json::parse(field.noop)))));
    }
  }
}

TEST_CASE("hosted tools of the Responses API are reported as ignored") {
  auto parsed = parse_responses_request(
      R"({"input":"hi","tools":[{"type":"web_search"},{"type":"function","name":"f"}]})", kOptions);
  REQUIRE(std::holds_alternative<TurnRequest>(parsed));
  CHECK(std::get<TurnRequest>(parsed).ignored_params == std::vector<std::string>{"tools.hosted"});
}

TEST_CASE("the ignored paths are the metric's bounded label values, each once") {
  const auto& paths = ignored_field_paths();
  CHECK(std::set<std::string_view>(paths.begin(), paths.end()).size() == paths.size());
  CHECK(std::find(paths.begin(), paths.end(), "temperature") != paths.end());
  CHECK(std::find(paths.begin(), paths.end(), "messages") == paths.end());
}
