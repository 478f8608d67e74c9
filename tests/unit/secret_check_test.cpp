#include "controller/secret_check.h"

#include <doctest/doctest.h>

#include "controller/codexproxy_spec.h"

using namespace cxp::controller;
using nlohmann::json;

TEST_CASE("a missing Secret or key is named with its field; values are never shown") {
  const SecretUse use{"spec.worker.credentials.apiKeySecret", {"openai", "apiKey"}};
  CHECK(secret_key_problem("team", use, std::nullopt) ==
        "spec.worker.credentials.apiKeySecret: Secret 'openai' in namespace 'team' does not exist");
  const auto problem = secret_key_problem(
      "team", use, json{{"data", {{"token", "c2stc2VjcmV0"}, {"other", "eA=="}}}});
  CHECK(problem.find("has no key 'apiKey' (it has: other, token)") != std::string::npos);
  CHECK(problem.find("c2stc2VjcmV0") == std::string::npos);
  CHECK(secret_key_problem("team", use, json{{"data", {{"apiKey", "eA=="}}}}).empty());
  CHECK(secret_key_problem("team", use, json::object()).find("it has: none") != std::string::npos);
}

TEST_CASE("every Secret the pods need is listed with the field that names it") {
  CodexProxySpec spec;
  CHECK(referenced_secrets(spec).empty());
  spec.api_key_secret.name = "proxy-key";
  spec.credentials.auth_json.name = "codex-login";
  const auto uses = referenced_secrets(spec);
  REQUIRE(uses.size() == 2);
  CHECK(uses[0].field == "spec.apiKeySecret");
  CHECK(uses[1].field == "spec.worker.credentials.authJsonSecret");
  CHECK(uses[1].ref.key == "auth.json");
}
