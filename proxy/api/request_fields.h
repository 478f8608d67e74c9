#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "proxy/api/api_error.h"

namespace cxp::proxy {

// What codex-proxy does with a field of a request: passes it to the model (honoured), accepts it
// without effect and says so (ignored: the request's log line `params_ignored` and
// codex_params_ignored_total{param}), or answers 400 naming it (refused).
enum class FieldUse { kHonoured, kIgnored, kRefused };

// One request field of the OpenAI API that codex-proxy knows. docs/api.md's parameter table lists
// the same rows (a unit test holds them together); the metric's `param` label takes only the
// ignored paths of this table.
struct RequestField {
  std::string_view api;   // "chat" (/v1/chat/completions) or "responses" (/v1/responses)
  std::string_view path;  // dotted, e.g. "stream_options.include_usage"
  FieldUse use;
  // A value that asks for something (tests send it: an ignored field is reported, a refused one
  // is a 400 naming `path`); "" for honoured fields.
  std::string_view sample;
  // JSON text of the value that asks for nothing codex-proxy does not already do (an ignored field
  // with this value is not reported, e.g. store: false; a refused one is accepted, e.g.
  // logprobs: false); "" when every value counts.
  std::string_view noop;
  // Refused fields: why, as the 400 says it after "<path>: ".
  std::string_view why;
};

const std::vector<RequestField>& request_fields();

// The paths of the table's ignored fields (the metric's label values), each once.
const std::vector<std::string_view>& ignored_field_paths();

// The 400 for the first refused field of `api` that `root` sets (not null, not its no-op value).
std::optional<ApiError> refused_field(const nlohmann::json& root, std::string_view api);

// The ignored fields of `api` that `root` sets to something other than null or their no-op value,
// in table order.
std::vector<std::string> ignored_fields(const nlohmann::json& root, std::string_view api);

}  // namespace cxp::proxy
