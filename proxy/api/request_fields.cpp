#include "proxy/api/request_fields.h"

#include <algorithm>

namespace cxp::proxy {
namespace {

using nlohmann::json;
constexpr auto H = FieldUse::kHonoured;
constexpr auto I = FieldUse::kIgnored;
constexpr auto R = FieldUse::kRefused;
constexpr std::string_view kNoLogprobs =
    "not supported: the worker (codex) returns no token log probabilities";
constexpr std::string_view kStateless =
    "not supported — codex-proxy stores no responses; send the whole conversation in `input`";

// What codex 0.169 can do with each field decides its row (docs/api.md says how and why).
const std::vector<RequestField> kFields = {
    {"chat", "messages", H, "", "", ""},
    {"chat", "model", H, "", "", ""},
    {"chat", "stream", H, "", "", ""},
    {"chat", "stream_options.include_usage", H, "", "", ""},
    {"chat", "stream_options.include_obfuscation", I, "true", "false", ""},
    {"chat", "tools", H, "", "", ""},
    {"chat", "tool_choice", H, "", "", ""},
    {"chat", "parallel_tool_calls", H, "", "", ""},
    {"chat", "n", H, "", "", ""},
    {"chat", "response_format", H, "", "", ""},
    {"chat", "reasoning_effort", H, "", "", ""},
    {"chat", "stop", H, "", "", ""},
    {"chat", "max_tokens", I, "100", "", ""},
    {"chat", "max_completion_tokens", I, "100", "", ""},
    {"chat", "temperature", I, "0.2", "", ""},
    {"chat", "top_p", I, "0.5", "", ""},
    {"chat", "frequency_penalty", I, "0.5", "", ""},
    {"chat", "presence_penalty", I, "0.5", "", ""},
    {"chat", "logit_bias", I, "{\"50256\":-100}", "", ""},
    {"chat", "seed", I, "7", "", ""},
    {"chat", "user", I, "\"user-1\"", "", ""},
    {"chat", "safety_identifier", I, "\"user-1\"", "", ""},
    {"chat", "prompt_cache_key", I, "\"key\"", "", ""},
    {"chat", "prompt_cache_retention", I, "\"24h\"", "", ""},
    {"chat", "metadata", I, "{\"team\":\"a\"}", "", ""},
    {"chat", "store", I, "true", "false", ""},
    {"chat", "service_tier", I, "\"flex\"", "", ""},
    {"chat", "verbosity", I, "\"low\"", "", ""},
    {"chat", "web_search_options", I, "{}", "", ""},
    {"chat", "prediction", I, "{\"type\":\"content\",\"content\":\"x\"}", "", ""},
    {"chat", "logprobs", R, "true", "false", kNoLogprobs},
    {"chat", "top_logprobs", R, "2", "0", kNoLogprobs},
    {"chat", "modalities", R, "[\"text\",\"audio\"]", "[\"text\"]",
     "only [\"text\"] is supported: the worker answers in text"},
    {"chat", "audio", R, "{\"voice\":\"alloy\",\"format\":\"wav\"}", "",
     "audio output is not supported: the worker answers in text"},
    {"chat", "functions", R, "[{\"name\":\"f\"}]", "",
     "deprecated by OpenAI and not supported; send the functions as `tools` of type function"},
    {"chat", "function_call", R, "\"auto\"", "",
     "deprecated by OpenAI and not supported; use `tool_choice`"},

    {"responses", "input", H, "", "", ""},
    {"responses", "instructions", H, "", "", ""},
    {"responses", "model", H, "", "", ""},
    {"responses", "stream", H, "", "", ""},
    {"responses", "tools", H, "", "", ""},
    {"responses", "tool_choice", H, "", "", ""},
    {"responses", "parallel_tool_calls", H, "", "", ""},
    {"responses", "text.format", H, "", "", ""},
    {"responses", "reasoning.effort", H, "", "", ""},
    {"responses", "reasoning.summary", H, "", "", ""},
    {"responses", "reasoning.generate_summary", H, "", "", ""},
    {"responses", "text.verbosity", I, "\"low\"", "", ""},
    {"responses", "max_output_tokens", I, "100", "", ""},
    {"responses", "max_tool_calls", I, "3", "", ""},
    {"responses", "temperature", I, "0.2", "", ""},
    {"responses", "top_p", I, "0.5", "", ""},
    {"responses", "truncation", I, "\"auto\"", "\"disabled\"", ""},
    {"responses", "user", I, "\"user-1\"", "", ""},
    {"responses", "safety_identifier", I, "\"user-1\"", "", ""},
    {"responses", "prompt_cache_key", I, "\"key\"", "", ""},
    {"responses", "prompt_cache_retention", I, "\"24h\"", "", ""},
    {"responses", "metadata", I, "{\"team\":\"a\"}", "", ""},
    {"responses", "store", I, "true", "false", ""},
    {"responses", "service_tier", I, "\"flex\"", "", ""},
    {"responses", "include", I, "[\"reasoning.encrypted_content\"]", "[]", ""},
    {"responses", "stream_options.include_obfuscation", I, "true", "false", ""},
    // Hosted tools (web_search, file_search, …): left out of the turn, named in tools_ignored.
    {"responses", "tools.hosted", I, "", "", ""},
    {"responses", "top_logprobs", R, "2", "0", kNoLogprobs},
    {"responses", "background", R, "true", "false",
     "not supported: codex-proxy stores no responses; send the request in the foreground"},
    {"responses", "previous_response_id", R, "\"resp_1\"", "", kStateless},
    {"responses", "conversation", R, "\"conv_1\"", "", kStateless},
    {"responses", "prompt", R, "{\"id\":\"pmpt_1\"}", "",
     "stored prompts are not supported: codex-proxy stores nothing; send the instructions and "
     "input"},
};

const json* find_path(const json& root, std::string_view path) {
  const json* node = &root;
  std::size_t start = 0;
  while (true) {
    if (!node->is_object()) return nullptr;
    const auto dot = path.find('.', start);
    const auto it = node->find(std::string(path.substr(start, dot - start)));
    if (it == node->end()) return nullptr;
    node = &*it;
    if (dot == std::string_view::npos) return node;
    start = dot + 1;
  }
}

}  // namespace

const std::vector<RequestField>& request_fields() {
  return kFields;
}

const std::vector<std::string_view>& ignored_field_paths() {
  static const std::vector<std::string_view> paths = [] {
    std::vector<std::string_view> out;
    for (const auto& field : kFields) {
      if (field.use == FieldUse::kIgnored &&
          std::find(out.begin(), out.end(), field.path) == out.end()) {
        out.push_back(field.path);
      }
    }
    return out;
  }();
  return paths;
}

std::optional<ApiError> refused_field(const json& root, std::string_view api) {
  for (const auto& field : kFields) {
    if (field.api != api || field.use != FieldUse::kRefused) continue;
    const json* value = find_path(root, field.path);
    if (value == nullptr || value->is_null()) continue;
    if (!field.noop.empty() && *value == json::parse(field.noop)) continue;
    ApiError e;
    e.status = 400;
    e.code = "invalid_request_error";
    e.param = std::string(field.path);
    e.message = std::string(field.path) + ": " + std::string(field.why);
    return e;
  }
  return std::nullopt;
}

std::vector<std::string> ignored_fields(const json& root, std::string_view api) {
  std::vector<std::string> out;
  for (const auto& field : kFields) {
    if (field.api != api || field.use != FieldUse::kIgnored) continue;
    const json* value = find_path(root, field.path);
    if (value == nullptr || value->is_null()) continue;
    if (!field.noop.empty() && *value == json::parse(field.noop)) continue;
    out.emplace_back(field.path);
  }
  return out;
}

}  // namespace cxp::proxy
