#include <doctest/doctest.h>
#include <unistd.h>

#include <boost/asio/io_context.hpp>
#include <filesystem>
#include <fstream>

#include "common/config_value.h"
#include "proxy/access/access_control.h"
#include "proxy/access/api_keys.h"
#include "proxy/access/key_limiter.h"

using namespace cxp::proxy;
using namespace std::chrono_literals;

namespace {

const std::vector<std::string> kServed{"gpt-5", "fast"};

std::string parse_error(const std::string& text) {
  try {
    KeySet::parse(text, "keys.yaml", kServed);
  } catch (const cxp::ConfigError& e) {
    return e.what();
  }
  return "";
}

struct FakeClock {
  std::chrono::steady_clock::time_point now{};
  KeyLimiter::Clock fn() {
    return [this] { return now; };
  }
};

ApiKey limited(std::uint64_t rpm, std::uint64_t tpm, std::uint64_t concurrent) {
  ApiKey key;
  key.name = "team";
  key.limits = {rpm, tpm, concurrent};
  return key;
}

// A temporary directory removed at the end of the test.
struct TempDir {
  std::filesystem::path path = std::filesystem::temp_directory_path() /
                               ("cxp-access-" + std::to_string(::getpid()) + "-" +
                                std::to_string(reinterpret_cast<std::uintptr_t>(this)));
  TempDir() { std::filesystem::create_directories(path); }
  ~TempDir() { std::filesystem::remove_all(path); }
  std::string write(const std::string& name, const std::string& content) const {
    const auto file = path / name;
    std::ofstream(file) << content;
    return file.string();
  }
};

}  // namespace

TEST_CASE("a keys file: names, keys or their SHA-256, limits and models, in YAML or JSON") {
  const auto set = KeySet::parse(R"(
keys:
- name: team-a
  key: sk-team-a-secret-1
  limits: {requestsPerMinute: 60, tokensPerMinute: 1000, concurrentTurns: 2}
  models: [fast]
- name: team-b
  sha256: 5E884898DA28047151D0E56F8DC6292773603D0D6AABBDD62A11EF721D1542D8
)",
                                 "keys.yaml", kServed);
  REQUIRE(set.keys().size() == 2);
  const auto* a = set.find("sk-team-a-secret-1");
  REQUIRE(a != nullptr);
  CHECK(a->name == "team-a");
  CHECK(a->limits == KeyLimits{60, 1000, 2});
  CHECK(a->may_use("fast"));
  CHECK_FALSE(a->may_use("gpt-5"));
  REQUIRE(set.find("password") != nullptr);  // sha256 of "password"
  CHECK(set.find("password")->name == "team-b");
  CHECK(set.find("password")->plaintext.empty());
  CHECK(set.find("sk-team-a-secret-") == nullptr);
  CHECK(set.find("") == nullptr);
  // JSON, and a bare list
  const auto json = KeySet::parse(R"([{"name":"j","key":"sk-json-key-1"}])", "keys.json", kServed);
  CHECK(json.find("sk-json-key-1")->may_use("gpt-5"));
}

TEST_CASE("a bad keys file names the file, the line and the problem") {
  CHECK(parse_error("keys: [").find("keys.yaml line") == 0);
  CHECK(parse_error("keys: {a: 1}").find("expected a list") != std::string::npos);
  CHECK(parse_error("- name: a\n  key: sk-aaaaaaaa1\n- name: a\n  key: sk-bbbbbbbb2\n") ==
        "keys.yaml line 3: a second key named 'a'");
  CHECK(parse_error("- name: a\n  key: sk-same-key-1\n- name: b\n  key: sk-same-key-1\n") ==
        "keys.yaml line 3: key 'b' is the same key as 'a'");
  CHECK(parse_error("- name: a\n  key: short\n") ==
        "keys.yaml line 2: a key is 8-1024 bytes without whitespace");
  CHECK(parse_error("- name: a\n  sha256: xyz\n").find("line 2: sha256") != std::string::npos);
  CHECK(parse_error("- name: a\n").find("either key or sha256") != std::string::npos);
  CHECK(parse_error("- name: invalid\n  key: sk-aaaaaaaa1\n").find("name:") != std::string::npos);
  CHECK(parse_error("- name: a b\n  key: sk-aaaaaaaa1\n").find("line 1: name") !=
        std::string::npos);
  CHECK(parse_error("- name: a\n  key: sk-aaaaaaaa1\n  models: [gpt-9]\n") ==
        "keys.yaml line 3: models: 'gpt-9' is not served (gpt-5, fast)");
  CHECK(parse_error("- name: a\n  key: sk-aaaaaaaa1\n  limits: {rpm: 5}\n")
            .find("unknown limit 'rpm'") != std::string::npos);
  CHECK(parse_error("- name: a\n  key: sk-aaaaaaaa1\n  limits: {requestsPerMinute: -1}\n")
            .find("requestsPerMinute") != std::string::npos);
  CHECK(parse_error("- name: a\n  key: sk-aaaaaaaa1\n  team: x\n").find("unknown field 'team'") !=
        std::string::npos);
}

TEST_CASE("requests per minute refill continuously and the refusal says when to come back") {
  FakeClock clock;
  KeyLimiter limiter(clock.fn());
  const auto key = limited(60, 0, 0);
  for (int i = 0; i < 60; ++i) {
    REQUIRE_FALSE(limiter.admit(key));
    limiter.release(key.name);
  }
  const auto refusal = limiter.admit(key);
  REQUIRE(refusal);
  CHECK(refusal->limit == "requests");
  CHECK(refusal->retry_after == 1000ms);  // one request a second
  clock.now += 1s;
  CHECK_FALSE(limiter.admit(key));
  const auto headers = limiter.headers(key);
  REQUIRE(headers.size() == 3);
  CHECK(headers[0] == std::pair<std::string, std::string>{"x-ratelimit-limit-requests", "60"});
  CHECK(headers[1] == std::pair<std::string, std::string>{"x-ratelimit-remaining-requests", "0"});
  CHECK(headers[2] == std::pair<std::string, std::string>{"x-ratelimit-reset-requests", "1m0s"});
}

TEST_CASE("tokens are charged after the turn; the key waits until its minute paid the debt back") {
  FakeClock clock;
  KeyLimiter limiter(clock.fn());
  const auto key = limited(0, 600, 0);
  REQUIRE_FALSE(limiter.admit(key));
  limiter.charge(key, 900);  // more than the minute allows: the bucket goes below zero
  limiter.release(key.name);
  const auto refusal = limiter.admit(key);
  REQUIRE(refusal);
  CHECK(refusal->limit == "tokens");
  CHECK(refusal->retry_after == 30100ms);  // 301 tokens at 10 a second
  clock.now += 30100ms;
  CHECK_FALSE(limiter.admit(key));
}

TEST_CASE("concurrent turns count from admission to release; other keys are untouched") {
  FakeClock clock;
  KeyLimiter limiter(clock.fn());
  const auto key = limited(0, 0, 2);
  auto other = limited(0, 0, 2);
  other.name = "other";
  CHECK_FALSE(limiter.admit(key));
  CHECK_FALSE(limiter.admit(key));
  CHECK(limiter.admit(key)->limit == "concurrent");
  CHECK_FALSE(limiter.admit(other));
  limiter.release(key.name);
  CHECK_FALSE(limiter.admit(key));
}

TEST_CASE("each pod enforces its share of the CodexProxy's limits, rounded up") {
  FakeClock clock;
  KeyLimiter limiter(clock.fn());
  limiter.set_share(3);
  const auto key = limited(10, 0, 4);  // 4 per pod per minute, 2 concurrent
  for (int i = 0; i < 4; ++i) {
    REQUIRE_FALSE(limiter.admit(key));
    limiter.release(key.name);
  }
  CHECK(limiter.admit(key)->limit == "requests");
  CHECK(limiter.headers(key)[0].second == "4");
  CHECK(reset_duration(250ms) == "250ms");
  CHECK(reset_duration(1500ms) == "1.5s");
  CHECK(reset_duration(360000ms) == "6m0s");
}

TEST_CASE("files are re-read when they change; a bad content keeps the last good one in force") {
  TempDir dir;
  const auto keys = dir.write("keys.yaml", "- name: a\n  key: sk-first-key-1\n");
  const auto admin = dir.write("admin", "admin-token-1\n");
  boost::asio::io_context io;
  AccessSettings settings;
  settings.api_keys_file = keys;
  settings.admin_token_file = admin;
  settings.api_key = "sk-default-key-1";
  AccessControl access(io, settings, kServed);
  CHECK(access.admin_token() == "admin-token-1");
  CHECK(std::get<AccessControl::Caller>(access.authenticate("Bearer sk-first-key-1")).name() ==
        "a");
  CHECK(std::get<AccessControl::Caller>(access.authenticate("Bearer sk-default-key-1")).name() ==
        "default");
  CHECK(std::get<ApiError>(access.authenticate("Bearer nope")).status == 401);
  CHECK(std::get<ApiError>(access.authenticate("")).message.find("Missing") == 0);

  int told = 0;
  access.set_observer([&] { ++told; });
  // A rotation: the new key in, the old one out.
  dir.write("keys.yaml", "- name: a\n  key: sk-second-key-2\n");
  dir.write("admin", "admin-token-2");
  access.start();
  io.run_for(1500ms);
  CHECK(told >= 1);
  CHECK(
      std::holds_alternative<AccessControl::Caller>(access.authenticate("Bearer sk-second-key-2")));
  CHECK(std::holds_alternative<ApiError>(access.authenticate("Bearer sk-first-key-1")));
  CHECK(access.admin_token() == "admin-token-2");
  // The previous token stays good through the rotation's grace.
  CHECK(access.admin_tokens() == std::vector<std::string>{"admin-token-2", "admin-token-1"});
  CHECK(access.problem().empty());
  // A broken content: reported with its line, the last good keys stay.
  dir.write("keys.yaml", "- name: a\n  key: sk-third-key-3\n- name: a\n  key: sk-fourth-key-4\n");
  io.restart();
  io.run_for(1500ms);
  CHECK(access.problem() == "PROXY_API_KEYS_FILE=" + keys + " line 3: a second key named 'a'");
  CHECK(
      std::holds_alternative<AccessControl::Caller>(access.authenticate("Bearer sk-second-key-2")));
  const auto files = access.files();
  REQUIRE(files.size() == 2);
  CHECK_FALSE(files[0].valid);
  CHECK(files[0].failed == 1);
  CHECK(files[1].valid);
  const auto secrets = access.secrets();
  CHECK(std::find(secrets.begin(), secrets.end(), "sk-second-key-2") != secrets.end());
  CHECK(std::find(secrets.begin(), secrets.end(), "admin-token-2") != secrets.end());
  access.stop();
}

TEST_CASE("at start a bad file stops the pod naming it; a value and a file of one setting clash") {
  TempDir dir;
  boost::asio::io_context io;
  AccessSettings bad;
  bad.api_keys_file = dir.write("keys.yaml", "- name: a\n  key: short\n");
  CHECK_THROWS_WITH_AS(AccessControl(io, bad, kServed),
                       doctest::Contains("keys.yaml line 2: a key is 8-1024 bytes"),
                       cxp::ConfigError);
  AccessSettings missing;
  missing.metrics_token_file = (dir.path / "nope").string();
  CHECK_THROWS_WITH_AS(AccessControl(io, missing, kServed),
                       doctest::Contains("PROXY_METRICS_TOKEN_FILE="), cxp::ConfigError);
  AccessSettings both;
  both.admin_token = "x";
  both.admin_token_file = dir.write("admin", "y");
  CHECK_THROWS_WITH_AS(AccessControl(io, both, kServed),
                       doctest::Contains("PROXY_ADMIN_TOKEN and PROXY_ADMIN_TOKEN_FILE"),
                       cxp::ConfigError);
}

TEST_CASE("admission: the key's models, then its limits; an anonymous caller has none") {
  TempDir dir;
  boost::asio::io_context io;
  AccessSettings settings;
  settings.api_keys_file =
      dir.write("keys.yaml",
                "- {name: a, key: sk-key-a-0001, models: [fast], limits: {concurrentTurns: 1}}\n");
  AccessControl access(io, settings, kServed);
  const auto caller = std::get<AccessControl::Caller>(access.authenticate("Bearer sk-key-a-0001"));
  const auto denied = std::get<ApiError>(access.admit(caller, "gpt-5"));
  CHECK(denied.status == 404);
  CHECK(denied.code == "model_not_found");
  auto permit = std::get<PermitPtr>(access.admit(caller, "fast"));
  REQUIRE(permit);
  const auto busy = std::get<ApiError>(access.admit(caller, "fast"));
  CHECK(busy.status == 429);
  CHECK(busy.code == "rate_limit_exceeded");
  CHECK(busy.retry_after_s == 1);
  permit.reset();  // the request ended
  CHECK(std::get<PermitPtr>(access.admit(caller, "fast")));
  CHECK(access.models_for(caller) == std::vector<std::string>{"fast"});
  CHECK(access.refusals().front().first == std::pair<std::string, std::string>{"a", "concurrent"});

  AccessControl open(io, AccessSettings{}, kServed);
  const auto anyone = std::get<AccessControl::Caller>(open.authenticate(""));
  CHECK(anyone.name() == "anonymous");
  CHECK(std::get<PermitPtr>(open.admit(anyone, "gpt-5")) == nullptr);
}

TEST_CASE("a rotated token is accepted for the grace only") {
  TempDir dir;
  FakeClock clock;
  boost::asio::io_context io;
  AccessSettings settings;
  settings.metrics_token_file = dir.write("metrics", "old-token");
  settings.token_grace = 60s;
  settings.poll = 100ms;
  AccessControl access(io, settings, kServed, clock.fn());
  CHECK(access.metrics_tokens() == std::vector<std::string>{"old-token"});
  dir.write("metrics", "new-token");
  access.start();
  io.run_for(300ms);
  CHECK(access.metrics_tokens() == std::vector<std::string>{"new-token", "old-token"});
  clock.now += 61s;
  CHECK(access.metrics_tokens() == std::vector<std::string>{"new-token"});
  access.stop();
}
