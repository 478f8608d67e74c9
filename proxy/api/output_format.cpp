#include "proxy/api/output_format.h"

#include <algorithm>
#include <array>
#include <cctype>

#include "proxy/api/turn_request.h"

namespace cxp::proxy {
namespace {

using nlohmann::json;

constexpr int kMaxDepth = 10;
constexpr std::size_t kMaxProperties = 5000;
constexpr std::size_t kMaxEnumValues = 1000;
constexpr std::array<std::string_view, 17> kUnsupported = {"allOf",
                                                           "not",
                                                           "oneOf",
                                                           "if",
                                                           "then",
                                                           "else",
                                                           "dependentRequired",
                                                           "dependentSchemas",
                                                           "patternProperties",
                                                           "unevaluatedProperties",
                                                           "unevaluatedItems",
                                                           "propertyNames",
                                                           "minProperties",
                                                           "maxProperties",
                                                           "contains",
                                                           "minContains",
                                                           "maxContains"};
constexpr std::array<std::string_view, 7> kTypes = {"string", "number", "integer", "boolean",
                                                    "object", "array",  "null"};
// What the model fills for a json_object request: one string holding the object's JSON text.
constexpr std::string_view kWrapperKey = "json";
// How much of an answer may precede the wrapper's string (whitespace) before it counts as not one.
constexpr std::size_t kMaxPrefixBytes = 256;

std::vector<std::string> types_of(const json& node) {
  std::vector<std::string> out;
  const auto type = node.find("type");
  if (type == node.end()) return out;
  if (type->is_string()) out.push_back(type->get<std::string>());
  if (type->is_array()) {
    for (const auto& t : *type) out.push_back(t.is_string() ? t.get<std::string>() : t.dump());
  }
  return out;
}

bool has_type(const std::vector<std::string>& types, std::string_view type) {
  return std::find(types.begin(), types.end(), type) != types.end();
}

struct SchemaWalk {
  std::size_t property_count = 0;
  std::size_t enum_values = 0;
  std::string problem;

  bool fail(const std::string& where, const std::string& what) {
    problem = (where.empty() ? std::string("the root") : where) + ": " + what;
    return false;
  }

  bool walk(const json& node, const std::string& where, int depth) {
    if (!node.is_object())
      return fail(where, "expected a schema object, found " + json_type_name(node));
    if (depth > kMaxDepth) {
      return fail(where, "nests deeper than " + std::to_string(kMaxDepth) + " levels");
    }
    for (const auto keyword : kUnsupported) {
      if (node.contains(std::string(keyword))) {
        return fail(where, "\"" + std::string(keyword) + "\" is not supported in strict mode");
      }
    }
    if (const auto ref = node.find("$ref"); ref != node.end()) {
      if (!ref->is_string() || ref->get_ref<const std::string&>().rfind('#', 0) != 0) {
        return fail(where, "only local \"$ref\" (\"#/...\") is supported");
      }
    }
    const auto types = types_of(node);
    for (const auto& type : types) {
      if (std::find(kTypes.begin(), kTypes.end(), type) == kTypes.end()) {
        return fail(where, "type '" + type.substr(0, 64) + "' is not a JSON Schema type");
      }
    }
    if (const auto values = node.find("enum"); values != node.end()) {
      if (!values->is_array()) return fail(where, "\"enum\" must be an array");
      enum_values += values->size();
      if (enum_values > kMaxEnumValues) {
        return fail(where, "more than " + std::to_string(kMaxEnumValues) + " enum values in all");
      }
    }
    if (has_type(types, "object") || node.contains("properties")) {
      if (!object_rules(node, where, depth)) return false;
    }
    if (const auto items = node.find("items"); items != node.end()) {
      if (!walk(*items, where + (where.empty() ? "" : ".") + "items", depth + 1)) return false;
    }
    if (const auto any = node.find("anyOf"); any != node.end()) {
      if (!any->is_array() || any->empty())
        return fail(where, "\"anyOf\" must be a non-empty array");
      for (std::size_t i = 0; i < any->size(); ++i) {
        if (!walk((*any)[i],
                  where + (where.empty() ? "" : ".") + "anyOf[" + std::to_string(i) + "]", depth)) {
          return false;
        }
      }
    }
    for (const char* defs : {"$defs", "definitions"}) {
      const auto found = node.find(defs);
      if (found == node.end()) continue;
      if (!found->is_object())
        return fail(where, std::string("\"") + defs + "\" must be an object");
      for (const auto& [key, sub] : found->items()) {
        if (!walk(sub, where + (where.empty() ? "" : ".") + defs + "." + key.substr(0, 64),
                  depth)) {
          return false;
        }
      }
    }
    return true;
  }

  bool object_rules(const json& node, const std::string& where, int depth) {
    const auto props = node.find("properties");
    const json empty = json::object();
    const json& properties = props == node.end() ? empty : *props;
    if (!properties.is_object()) return fail(where, "\"properties\" must be an object");
    const auto additional = node.find("additionalProperties");
    if (additional == node.end() || *additional != false) {
      return fail(where, "needs \"additionalProperties\": false");
    }
    const auto required = node.find("required");
    for (const auto& [key, sub] : properties.items()) {
      const bool listed =
          required != node.end() && required->is_array() &&
          std::find(required->begin(), required->end(), json(key)) != required->end();
      if (!listed) {
        return fail(where,
                    "property '" + key.substr(0, 64) +
                        "' is not in \"required\" (strict mode requires every property; make "
                        "an optional one nullable, e.g. \"type\": [\"string\", \"null\"])");
      }
    }
    property_count += properties.size();
    if (property_count > kMaxProperties) {
      return fail(where, "more than " + std::to_string(kMaxProperties) + " properties in all");
    }
    for (const auto& [key, sub] : properties.items()) {
      if (!walk(sub, where + (where.empty() ? "" : ".") + "properties." + key.substr(0, 64),
                depth + 1)) {
        return false;
      }
    }
    return true;
  }
};

std::optional<ApiError> read_schema_spec(const json& spec, const std::string& prefix,
                                         OutputFormat& out) {
  const auto name = spec.find("name");
  const bool name_ok =
      name != spec.end() && name->is_string() && !name->get_ref<const std::string&>().empty() &&
      name->get_ref<const std::string&>().size() <= 64 &&
      std::all_of(name->get_ref<const std::string&>().begin(),
                  name->get_ref<const std::string&>().end(), [](char c) {
                    return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '_' || c == '-';
                  });
  if (!name_ok) {
    return invalid_request(prefix + ".name",
                           prefix + ".name: expected 1-64 characters of [A-Za-z0-9_-]");
  }
  out.name = name->get<std::string>();
  if (const auto d = spec.find("description"); d != spec.end() && !d->is_null()) {
    if (!d->is_string()) {
      return invalid_request(prefix + ".description", prefix + ".description: expected a string");
    }
    out.description = d->get<std::string>();
  }
  if (const auto s = spec.find("strict"); s != spec.end() && !s->is_null()) {
    if (!s->is_boolean()) {
      return invalid_request(prefix + ".strict", prefix + ".strict: expected a boolean");
    }
    out.strict = s->get<bool>();
  }
  const auto schema = spec.find("schema");
  const std::string param = prefix + ".schema";
  if (schema == spec.end() || schema->is_null()) {
    return invalid_request(param, param + ": required (the JSON Schema the answer must follow)");
  }
  if (!schema->is_object()) {
    return invalid_request(
        param, param + ": expected a JSON Schema object, found " + json_type_name(*schema));
  }
  if (schema->dump().size() > kMaxSchemaBytes) {
    return invalid_request(
        param, param + ": larger than " + std::to_string(kMaxSchemaBytes / 1024) + " KiB of JSON");
  }
  if (const auto problem = strict_schema_problem(*schema); !problem.empty()) {
    return invalid_request(
        param, param + ": " + problem + ". codex gives every schema to the model in strict mode" +
                   (out.strict.value_or(false) ? "" : " (strict: false cannot be honoured)") +
                   ", which needs \"additionalProperties\": false and every property required in "
                   "each object");
  }
  out.schema = *schema;
  out.kind = OutputFormat::Kind::kJsonSchema;
  return std::nullopt;
}

// {type: text | json_object | json_schema}; for json_schema, its fields are read from `spec`.
std::optional<ApiError> read_format_object(const json& format, const std::string& param,
                                           const json* spec, const std::string& spec_prefix,
                                           OutputFormat& out) {
  if (!format.is_object()) {
    return invalid_request(param, param + ": expected an object, found " + json_type_name(format));
  }
  const auto type = format.value("type", json());
  if (type == "text") return std::nullopt;
  if (type == "json_object") {
    out.kind = OutputFormat::Kind::kJsonObject;
    return std::nullopt;
  }
  if (type == "json_schema") {
    if (spec == nullptr || !spec->is_object()) {
      return invalid_request(spec_prefix, spec_prefix + ": expected an object");
    }
    return read_schema_spec(*spec, spec_prefix, out);
  }
  return invalid_request(param + ".type",
                         param + ".type: expected \"text\", \"json_object\" or \"json_schema\"");
}

void append_utf8(std::string& out, std::uint32_t code) {
  if (code < 0x80) {
    out.push_back(static_cast<char>(code));
  } else if (code < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (code >> 6)));
    out.push_back(static_cast<char>(0x80 | (code & 0x3F)));
  } else if (code < 0x10000) {
    out.push_back(static_cast<char>(0xE0 | (code >> 12)));
    out.push_back(static_cast<char>(0x80 | ((code >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (code & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xF0 | (code >> 18)));
    out.push_back(static_cast<char>(0x80 | ((code >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((code >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (code & 0x3F)));
  }
}

constexpr std::uint32_t kReplacement = 0xFFFD;

}  // namespace

std::string strict_schema_problem(const json& schema) {
  if (!schema.is_object() || schema.contains("anyOf") ||
      types_of(schema) != std::vector<std::string>{"object"}) {
    return "the root must be {\"type\": \"object\", …}";
  }
  SchemaWalk walk;
  walk.walk(schema, "", 1);
  return walk.problem;
}

json OutputFormat::worker_schema() const {
  switch (kind) {
    case Kind::kText:
      return nullptr;
    case Kind::kJsonSchema: {
      json out = schema;
      // The model reads the schema; the caller's description of it travels inside.
      if (!description.empty() && !out.contains("description")) out["description"] = description;
      return out;
    }
    case Kind::kJsonObject:
      return {
          {"type", "object"},
          {"properties",
           {{kWrapperKey,
             {{"type", "string"}, {"description", "The answer: one JSON object, as JSON text."}}}}},
          {"required", json::array({kWrapperKey})},
          {"additionalProperties", false}};
  }
  return nullptr;
}

json OutputFormat::echo() const {
  switch (kind) {
    case Kind::kText:
      return {{"type", "text"}};
    case Kind::kJsonObject:
      return {{"type", "json_object"}};
    case Kind::kJsonSchema: {
      json out = {{"type", "json_schema"},
                  {"name", name},
                  {"schema", schema},
                  {"strict", strict ? json(*strict) : json(nullptr)}};
      if (!description.empty()) out["description"] = description;
      return out;
    }
  }
  return nullptr;
}

std::optional<ApiError> read_response_format(const json& root, OutputFormat& out) {
  const auto format = root.find("response_format");
  if (format == root.end() || format->is_null()) return std::nullopt;
  const json* spec =
      format->is_object() && format->contains("json_schema") ? &format->at("json_schema") : nullptr;
  return read_format_object(*format, "response_format", spec, "response_format.json_schema", out);
}

std::optional<ApiError> read_text_format(const json& root, OutputFormat& out) {
  const auto text = root.find("text");
  if (text == root.end() || text->is_null()) return std::nullopt;
  if (!text->is_object()) {
    return invalid_request("text", "text: expected an object, found " + json_type_name(*text));
  }
  const auto format = text->find("format");
  if (format == text->end() || format->is_null()) return std::nullopt;
  return read_format_object(*format, "text.format", &*format, "text.format", out);
}

bool mentions_json(std::string_view text) {
  for (std::size_t i = 0; i + 4 <= text.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(text[i])) == 'j' &&
        std::tolower(static_cast<unsigned char>(text[i + 1])) == 's' &&
        std::tolower(static_cast<unsigned char>(text[i + 2])) == 'o' &&
        std::tolower(static_cast<unsigned char>(text[i + 3])) == 'n') {
      return true;
    }
  }
  return false;
}

std::string JsonObjectUnwrapper::feed(std::string_view delta) {
  switch (state_) {
    case State::kRaw:
      return std::string(delta);
    case State::kDone:
      return "";
    case State::kString:
      return decode(delta);
    case State::kPrefix:
      break;
  }
  pending_.append(delta);
  // {"json":" with any whitespace between the tokens.
  static constexpr std::string_view kTokens[] = {"{", "\"json\"", ":", "\""};
  std::size_t at = 0;
  for (const auto token : kTokens) {
    while (at < pending_.size() && std::isspace(static_cast<unsigned char>(pending_[at])) != 0)
      ++at;
    const auto have = std::min(token.size(), pending_.size() - at);
    // Not the wrapper (or only whitespace for too long): the answer as it came.
    if (pending_.compare(at, have, token, 0, have) != 0 ||
        (have < token.size() && pending_.size() > kMaxPrefixBytes)) {
      state_ = State::kRaw;
      return std::exchange(pending_, std::string());
    }
    if (have < token.size()) return "";  // the next delta decides
    at += token.size();
  }
  state_ = State::kString;
  const std::string rest = pending_.substr(at);
  pending_.clear();
  return decode(rest);
}

std::string JsonObjectUnwrapper::decode(std::string_view delta) {
  const std::string text = std::exchange(pending_, std::string()) + std::string(delta);
  std::string out;
  const auto lone_surrogate = [&] {
    if (high_surrogate_ != 0) append_utf8(out, kReplacement);
    high_surrogate_ = 0;
  };
  std::size_t i = 0;
  while (i < text.size() && state_ == State::kString) {
    const char c = text[i];
    if (c != '\\') {
      lone_surrogate();
      if (c == '"') {
        state_ = State::kDone;
      } else {
        out.push_back(c);
      }
      ++i;
      continue;
    }
    if (i + 1 >= text.size() || (text[i + 1] == 'u' && i + 6 > text.size())) {
      pending_ = text.substr(i);  // an escape the next delta finishes
      break;
    }
    const char e = text[i + 1];
    if (e != 'u') {
      lone_surrogate();
      switch (e) {
        case 'n':
          out.push_back('\n');
          break;
        case 't':
          out.push_back('\t');
          break;
        case 'r':
          out.push_back('\r');
          break;
        case 'b':
          out.push_back('\b');
          break;
        case 'f':
          out.push_back('\f');
          break;
        default:
          out.push_back(e);  // \" \\ \/ (and anything else, as written)
      }
      i += 2;
      continue;
    }
    std::uint32_t unit = 0;
    bool hex = true;
    for (std::size_t k = i + 2; k < i + 6; ++k) {
      const int digit = std::isxdigit(static_cast<unsigned char>(text[k])) == 0
                            ? -1
                            : (std::isdigit(static_cast<unsigned char>(text[k])) != 0
                                   ? text[k] - '0'
                                   : std::tolower(static_cast<unsigned char>(text[k])) - 'a' + 10);
      if (digit < 0) hex = false;
      unit = unit * 16 + static_cast<std::uint32_t>(std::max(digit, 0));
    }
    i += 6;
    if (!hex) {
      lone_surrogate();
      append_utf8(out, kReplacement);
    } else if (unit >= 0xDC00 && unit <= 0xDFFF && high_surrogate_ != 0) {
      append_utf8(out, 0x10000 + ((high_surrogate_ - 0xD800) << 10) + (unit - 0xDC00));
      high_surrogate_ = 0;
    } else if (unit >= 0xD800 && unit <= 0xDBFF) {
      lone_surrogate();
      high_surrogate_ = unit;
    } else {
      lone_surrogate();
      append_utf8(out, unit >= 0xDC00 && unit <= 0xDFFF ? kReplacement : unit);
    }
  }
  return out;
}

std::string JsonObjectUnwrapper::finish() {
  if (state_ == State::kPrefix) {
    state_ = State::kRaw;
    return std::exchange(pending_, std::string());
  }
  pending_.clear();
  return "";
}

}  // namespace cxp::proxy
