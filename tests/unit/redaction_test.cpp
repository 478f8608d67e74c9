#include "common/telemetry/redaction.h"

#include <doctest/doctest.h>

#include <nlohmann/json.hpp>
#include <random>

using cxp::telemetry::Redactor;

namespace {
bool leaks(const std::string& text, const std::string& secret) {
  return text.find(secret) != std::string::npos;
}
}  // namespace

TEST_CASE("bearer tokens are redacted in any letter case") {
  const Redactor r;
  CHECK(r.redact("Authorization: Bearer abc.def-123") == "Authorization: [REDACTED]");
  CHECK_FALSE(leaks(r.redact("header bearer tok_9f8e7d6c trailing"), "tok_9f8e7d6c"));
  CHECK_FALSE(leaks(r.redact("BEARER    zzzzzzzz"), "zzzzzzzz"));
}

TEST_CASE("sk- keys are redacted, short look-alikes are kept") {
  const Redactor r;
  CHECK(r.redact("key sk-proj-ABCDEFGH12345678 end") == "key sk-[REDACTED] end");
  CHECK(r.redact("task-sk-abc") == "task-sk-abc");
  CHECK(r.redact("sk-short") == "sk-short");
  CHECK_FALSE(leaks(r.redact("\"sk-ant-0123456789abcdef\""), "0123456789abcdef"));
}

TEST_CASE("credential keys are redacted in header, query, and JSON forms") {
  const Redactor r;
  CHECK_FALSE(
      leaks(r.redact(R"({"api_key": "hunter2hunter2", "model":"gpt-5"})"), "hunter2hunter2"));
  CHECK(r.redact(R"({"api_key": "hunter2hunter2", "model":"gpt-5"})").find("gpt-5") !=
        std::string::npos);
  CHECK_FALSE(leaks(r.redact("GET /x?token=abc123secret&x=1"), "abc123secret"));
  CHECK(r.redact("GET /x?token=abc123secret&x=1").find("&x=1") != std::string::npos);
  CHECK_FALSE(leaks(r.redact("Cookie: session=abcdef; theme=dark\nnext line"), "session=abcdef"));
  CHECK(r.redact("Cookie: a=b\nnext line").find("next line") != std::string::npos);
  CHECK_FALSE(leaks(r.redact("password=p@ss:w0rd more"), "p@ss:w0rd"));
  CHECK_FALSE(leaks(r.redact(R"({"x-api-key":"k-12345678"})"), "k-12345678"));
  CHECK_FALSE(leaks(r.redact(R"({"token":"with \"escaped\" quote-secret"})"), "quote-secret"));
}

TEST_CASE("words that merely contain a key name are left alone") {
  const Redactor r;
  CHECK(r.redact("max_tokens=100 tokens: 5") == "max_tokens=100 tokens: 5");
  CHECK(r.redact("the token was fine") == "the token was fine");
}

TEST_CASE("configured secrets are removed wherever they appear, longest first") {
  const Redactor r({"supersecretvalue", "supersecret", "abc"});
  const auto out = r.redact("x=supersecretvalue;y=supersecret;z=abc");
  CHECK_FALSE(leaks(out, "supersecret"));
  CHECK(out.find("abc") != std::string::npos);  // too short to be treated as a secret
}

TEST_CASE("redaction never throws or loops on hostile input") {
  const Redactor r({"needle-needle"});
  std::mt19937 rng(1234);
  const std::string alphabet = "ab:=\"' \n\\{}sk-Bearer tokenAuthorization;&\x1b\xff";
  for (int round = 0; round < 2000; ++round) {
    std::string input;
    const int length = static_cast<int>(rng() % 200);
    for (int i = 0; i < length; ++i) input.push_back(alphabet[rng() % alphabet.size()]);
    const auto out = r.redact(input);
    CHECK(out.size() <= input.size() * 12 + 16);
  }
  CHECK(r.redact("") == "");
  CHECK(r.redact("token=") == "token=");
  CHECK(r.redact("Authorization:") == "Authorization:");
  CHECK(r.redact("\"token\":\"") == "\"token\":\"");
}

TEST_CASE("credential keys are recognised by name, suffix and spelling, not by counts") {
  for (const char* key : {"token", "Authorization", "proxy-authorization", "SET-COOKIE", "api_key",
                          "X-Api-Key", "apikey", "admin_token", "metrics-token", "client_secret",
                          "db_password", "openai_api_key", "credentials", "id_token"}) {
    CHECK_MESSAGE(Redactor::is_credential_key(key), key);
  }
  for (const char* key : {"tokens", "max_tokens", "prompt_tokens", "token_count", "model",
                          "secretary", "passwords_checked", "turn_id", ""}) {
    CHECK_FALSE_MESSAGE(Redactor::is_credential_key(key), key);
  }
}

TEST_CASE("structured fields are redacted by key name at any depth") {
  const Redactor r;
  auto value = nlohmann::json::parse(R"({
    "token": "x",
    "model": "gpt-5",
    "usage": {"prompt_tokens": 12, "max_tokens": 100},
    "request": {"headers": {"Authorization": "Basic dXNlcjpwYXNz", "accept": "json"}},
    "list": [{"admin_token": "adm1n"}, {"credentials": {"user": "u", "pass": "p4ss"}}],
    "token_count": 3,
    "note": "see api_key=hunter2hunter2 here"
  })");
  r.redact_json(value);
  CHECK(value["token"] == "[REDACTED]");  // short values too: the key says what it is
  CHECK(value["model"] == "gpt-5");
  CHECK(value["usage"]["prompt_tokens"] == 12);
  CHECK(value["request"]["headers"]["Authorization"] == "[REDACTED]");
  CHECK(value["request"]["headers"]["accept"] == "json");
  CHECK(value["list"][0]["admin_token"] == "[REDACTED]");
  CHECK(value["list"][1]["credentials"]["user"] == "[REDACTED]");
  CHECK(value["list"][1]["credentials"]["pass"] == "[REDACTED]");
  CHECK(value["token_count"] == 3);
  CHECK(value["note"] == "see api_key=[REDACTED] here");
}

TEST_CASE("suffixed credential keys are redacted in text too") {
  const Redactor r;
  CHECK(r.redact("ADMIN_TOKEN=abcdef123 next") == "ADMIN_TOKEN=[REDACTED] next");
  CHECK(r.redact(R"({"metrics-token": "m3trics"})") == R"({"metrics-token": "[REDACTED]"})");
  CHECK(r.redact("max_tokens=100") == "max_tokens=100");
}

TEST_CASE("a configured secret in a JSON key is redacted too") {
  const Redactor r({"sk-configured-secret-42"});
  auto document = nlohmann::json::parse(
      R"({"outer":{"my sk-configured-secret-42 key":"v","token":"t"},"ok":"sk-configured-secret-42"})");
  r.redact_json(document);
  const auto text = document.dump();
  CHECK_FALSE(leaks(text, "sk-configured-secret-42"));
  CHECK(document["outer"]["my [REDACTED] key"] == "v");
  CHECK(document["outer"]["token"] == "[REDACTED]");
}
