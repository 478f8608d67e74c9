#include <doctest/doctest.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <map>
#include <set>
#include <string>

#include "common/config_value.h"
#include "proxy/proxy_config.h"

using cxp::ConfigError;
using cxp::proxy::load_proxy_config;

namespace {

struct FakeEnv {
  std::map<std::string, std::string> values;
  std::function<const char*(const char*)> getter() const {
    return [this](const char* name) -> const char* {
      const auto found = values.find(name);
      return found == values.end() ? nullptr : found->second.c_str();
    };
  }
};

std::string error_of(const FakeEnv& env, std::optional<std::string> path = std::nullopt) {
  try {
    load_proxy_config(path, env.getter());
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST_CASE("defaults match the documented contract") {
  const auto config = load_proxy_config(std::nullopt, FakeEnv{}.getter());
  CHECK(config.port == 11435);
  CHECK(config.codex.bin == "codex");
  CHECK(config.worker_backoff_initial.count() == 250);
  CHECK(config.worker_backoff_max.count() == 5000);
  CHECK(config.worker_shutdown_grace.count() == 10000);
  CHECK(config.trace_dir == ".codex-api/trace-buffer");
  CHECK(config.trace_ttl.count() == 86400);
  CHECK(config.trace_max_files == 100);
  CHECK_FALSE(config.trace_buffer);
  CHECK_FALSE(config.maintenance);
}

TEST_CASE("environment values override defaults") {
  FakeEnv env{{{"PORT", "0"},
               {"WORKER_BACKOFF_INITIAL_MS", "10"},
               {"WORKER_BACKOFF_MAX_MS", "20"},
               {"PROXY_MAINTENANCE_MODE", "TRUE"},
               {"CODEX_BIN", "/opt/codex"},
               {"WORKER_RESTART_MAX", "0"}}};
  const auto config = load_proxy_config(std::nullopt, env.getter());
  CHECK(config.port == 0);
  CHECK(config.worker_backoff_initial.count() == 10);
  CHECK(config.worker_backoff_max.count() == 20);
  CHECK(config.maintenance);
  CHECK(config.codex.bin == "/opt/codex");
  CHECK(config.worker_restart_max == 0);
}

TEST_CASE("a malformed number names the variable and the value") {
  const auto message = error_of(FakeEnv{{{"WORKER_BACKOFF_MAX_MS", "abc"}}});
  CHECK(message.find("WORKER_BACKOFF_MAX_MS") != std::string::npos);
  CHECK(message.find("'abc'") != std::string::npos);
  CHECK(message.find("integer") != std::string::npos);
}

TEST_CASE("trailing garbage, negatives and overflow are refused") {
  CHECK(error_of(FakeEnv{{{"PORT", "80x"}}}).find("PORT") != std::string::npos);
  CHECK(error_of(FakeEnv{{{"PORT", "70000"}}}).find("between 0 and 65535") != std::string::npos);
  CHECK(error_of(FakeEnv{{{"WORKER_MAX_CONCURRENCY", "-1"}}}).find("WORKER_MAX_CONCURRENCY") !=
        std::string::npos);
  CHECK(error_of(FakeEnv{{{"WORKER_REQUEST_TIMEOUT_MS", "99999999999999999999999"}}})
            .find("WORKER_REQUEST_TIMEOUT_MS") != std::string::npos);
  CHECK(error_of(FakeEnv{{{"PORT", ""}}}).find("PORT") != std::string::npos);
}

TEST_CASE("backoff max below initial is refused naming WORKER_BACKOFF_MAX_MS") {
  const auto message =
      error_of(FakeEnv{{{"WORKER_BACKOFF_INITIAL_MS", "1000"}, {"WORKER_BACKOFF_MAX_MS", "500"}}});
  CHECK(message.find("WORKER_BACKOFF_MAX_MS") != std::string::npos);
  CHECK(message.find("500") != std::string::npos);
}

TEST_CASE("booleans accept the usual spellings only") {
  CHECK(cxp::parse_boolean("X", "yes"));
  CHECK(cxp::parse_boolean("X", " On "));
  CHECK_FALSE(cxp::parse_boolean("X", "0"));
  CHECK(error_of(FakeEnv{{{"PROXY_TRACE_BUFFER", "maybe"}}}).find("PROXY_TRACE_BUFFER") !=
        std::string::npos);
}

TEST_CASE("empty CODEX_BIN and unknown log level are refused") {
  CHECK(error_of(FakeEnv{{{"CODEX_BIN", ""}}}).find("CODEX_BIN") != std::string::npos);
  CHECK(error_of(FakeEnv{{{"PROXY_LOG_LEVEL", "loud"}}}).find("PROXY_LOG_LEVEL") !=
        std::string::npos);
}

TEST_CASE("YAML file values apply and the environment overrides them") {
  const std::string path = "config_test_" + std::to_string(::getpid()) + ".yaml";
  std::ofstream(path) << "port: 12000\nworker:\n  bin: /from/file\n  backoff:\n    initialMs: 100\n"
                         "    maxMs: 900\nmaintenance:\n  enabled: true\n";
  FakeEnv env{{{"WORKER_BACKOFF_MAX_MS", "800"}}};
  const auto config = load_proxy_config(path, env.getter());
  CHECK(config.port == 12000);
  CHECK(config.codex.bin == "/from/file");
  CHECK(config.worker_backoff_initial.count() == 100);
  CHECK(config.worker_backoff_max.count() == 800);
  CHECK(config.maintenance);

  std::ofstream(path) << "worker:\n  backoff:\n    maxMs: soon\n";
  const auto message = error_of(FakeEnv{}, path);
  CHECK(message.find("worker.backoff.maxMs") != std::string::npos);
  CHECK(message.find("soon") != std::string::npos);

  std::ofstream(path) << "worker: [unclosed\n";
  CHECK(error_of(FakeEnv{}, path).find("cannot read YAML") != std::string::npos);
  std::remove(path.c_str());
  CHECK(error_of(FakeEnv{}, "/nonexistent/codex-proxy.yaml").find("/nonexistent") !=
        std::string::npos);
}

TEST_CASE("every setting has a distinct environment variable and YAML key") {
  std::set<std::string_view> envs;
  std::set<std::string_view> keys;
  for (const auto& spec : cxp::proxy::proxy_settings()) {
    CHECK(envs.insert(spec.env).second);
    CHECK(keys.insert(spec.yaml_key).second);
    CHECK_FALSE(spec.description.empty());
  }
}

TEST_CASE("docs/configuration.md documents exactly the settings the proxy reads") {
  std::ifstream file(std::string(CXP_SOURCE_DIR) + "/docs/configuration.md");
  REQUIRE(file.good());
  const std::string doc((std::istreambuf_iterator<char>(file)), std::istreambuf_iterator<char>());
  std::set<std::string> documented;
  std::size_t pos = 0;
  while ((pos = doc.find("\n| `", pos)) != std::string::npos) {
    pos += 4;
    const auto end = doc.find('`', pos);
    documented.insert(doc.substr(pos, end - pos));
  }
  std::set<std::string> code;
  for (const auto& spec : cxp::proxy::proxy_settings()) {
    code.insert(std::string(spec.env));
    CHECK_MESSAGE(doc.find("`" + std::string(spec.yaml_key) + "`") != std::string::npos,
                  spec.yaml_key);
  }
  CHECK(documented == code);
}

TEST_CASE("model aliases are a trimmed, bounded, comma-separated list") {
  auto config =
      load_proxy_config(std::nullopt, FakeEnv{{{"PROXY_MODEL_ALIASES", " a, b ,,c "}}}.getter());
  CHECK(config.model_aliases == std::vector<std::string>{"a", "b", "c"});
  CHECK(error_of(FakeEnv{{{"PROXY_MODEL_ALIASES", std::string(200, 'm')}}})
            .find("PROXY_MODEL_ALIASES") != std::string::npos);
}

TEST_CASE("worker provider settings are validated naming the variable") {
  CHECK(error_of(FakeEnv{{{"WORKER_PROVIDER_BASE_URL", "not a url"}}})
            .find("WORKER_PROVIDER_BASE_URL") != std::string::npos);
  CHECK(error_of(FakeEnv{{{"WORKER_PROVIDER_WIRE_API", "chat"}}})
            .find("WORKER_PROVIDER_WIRE_API: expected 'responses'") != std::string::npos);
  CHECK(error_of(FakeEnv{{{"WORKER_PROVIDER_ENV_KEY", "1BAD"}}}).find("WORKER_PROVIDER_ENV_KEY") !=
        std::string::npos);
  CHECK(error_of(FakeEnv{{{"WORKER_PROVIDER_ENV_KEY", "PROXY_API_KEY"}}})
            .find("a variable of codex-proxy itself") != std::string::npos);
  CHECK(error_of(FakeEnv{{{"WORKER_AUTH_JSON", "/run/auth.json"}}}).find("requires CODEX_HOME") !=
        std::string::npos);
  CHECK(error_of(FakeEnv{{{"WORKER_CONFIG_OVERRIDES", "oops"}}}).find("WORKER_CONFIG_OVERRIDES") !=
        std::string::npos);
}

TEST_CASE("the model key named by the provider is read from the environment and redacted") {
  FakeEnv env{{{"WORKER_PROVIDER_BASE_URL", "http://127.0.0.1:1/v1"},
               {"WORKER_PROVIDER_ENV_KEY", "GATEWAY_KEY"},
               {"GATEWAY_KEY", "gw-secret-0123456789"},
               {"OPENAI_API_KEY", "sk-unused-0123456789"}}};
  const auto config = load_proxy_config(std::nullopt, env.getter());
  CHECK(config.codex.provider.base_url == "http://127.0.0.1:1/v1");
  CHECK(config.model_credential == "gw-secret-0123456789");
  const auto secrets = config.secrets();
  CHECK(std::find(secrets.begin(), secrets.end(), "gw-secret-0123456789") != secrets.end());
}
