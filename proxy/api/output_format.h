#pragma once

#include <cstddef>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>

#include "proxy/api/api_error.h"

namespace cxp::proxy {

// The largest schema a request may give, as JSON text (docs/api.md).
inline constexpr std::size_t kMaxSchemaBytes = 128 * 1024;

// What the caller asked the answer to be. codex gives the model a schema in strict mode only
// (turn/start.outputSchema → text.format {json_schema, strict: true}), so a schema is accepted
// only when strict mode can enforce it, whatever the caller's `strict` says; json_object is asked
// of the model as a strict schema of one string, `json`, whose text the proxy hands back.
struct OutputFormat {
  enum class Kind { kText, kJsonSchema, kJsonObject };
  Kind kind = Kind::kText;
  std::string name;            // json_schema: the caller's name (echoed)
  std::string description;     // json_schema: the caller's description (given to the model)
  nlohmann::json schema;       // json_schema: the caller's schema
  std::optional<bool> strict;  // json_schema: as the caller sent it

  // turn/start.outputSchema: null for text.
  nlohmann::json worker_schema() const;
  // The Responses API's text.format echo.
  nlohmann::json echo() const;
};

// Reads chat `response_format`: {type: "text"} | {type: "json_object"} | {type: "json_schema",
// json_schema: {name, schema, strict, description}}. Errors name the field.
std::optional<ApiError> read_response_format(const nlohmann::json& root, OutputFormat& out);
// Reads the Responses API's `text.format`: {type: "text" | "json_object"} | {type: "json_schema",
// name, schema, strict, description}.
std::optional<ApiError> read_text_format(const nlohmann::json& root, OutputFormat& out);

// Why OpenAI's strict structured outputs refuse `schema` ("<where>: <rule>"), or "" when they
// accept it: a root of type object; in every object `additionalProperties: false` and every
// property required; no allOf/oneOf/not/if/then/else/dependent*/patternProperties/
// unevaluated*/propertyNames/min-maxProperties/contains; local $ref only; depth <= 10, <= 5000
// properties and <= 1000 enum values in all.
std::string strict_schema_problem(const nlohmann::json& schema);

// True when `text` (any case) says "json": OpenAI refuses json_object unless the messages do.
bool mentions_json(std::string_view text);

// The model answers a json_object request as {"json": "<the object's JSON text>"}; this turns
// that answer back into the object's text, delta by delta (a string cut anywhere, escapes and
// surrogate pairs included). An answer of any other shape passes through unchanged.
class JsonObjectUnwrapper {
 public:
  // The part of the object's text that `delta` completes.
  std::string feed(std::string_view delta);
  // At the end of the answer: text still held (an answer that never matched the shape).
  std::string finish();

 private:
  enum class State { kPrefix, kString, kDone, kRaw };
  std::string decode(std::string_view text);

  State state_ = State::kPrefix;
  std::string pending_;  // kPrefix: the answer so far; kString: an escape cut by the delta
  std::uint32_t high_surrogate_ = 0;  // a \\u escape of a high surrogate waiting for its low half
};

}  // namespace cxp::proxy
