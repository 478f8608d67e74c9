#include "proxy/worker/codex_options.h"

#include <doctest/doctest.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "common/codex_config.h"
#include "common/config_value.h"
#include "proxy/worker/codex_home.h"

using cxp::ConfigError;
using cxp::proxy::CodexOptions;
using cxp::proxy::parse_config_overrides;
using cxp::proxy::worker_command;

namespace {

// The values of every `-c` flag of a command, in order.
std::vector<std::string> flags(const std::vector<std::string>& argv) {
  std::vector<std::string> out;
  for (std::size_t i = 0; i + 1 < argv.size(); ++i) {
    if (argv[i] == "-c") out.push_back(argv[++i]);
  }
  return out;
}

bool has(const std::vector<std::string>& values, const std::string& value) {
  return std::find(values.begin(), values.end(), value) != values.end();
}

std::string error_of(const std::string& text) {
  try {
    parse_config_overrides("WORKER_CONFIG_OVERRIDES", text);
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST_CASE("the worker runs app-server with the safe defaults, its built-in tools off") {
  CodexOptions options;
  options.bin = "/opt/codex";
  const auto argv = worker_command(options);
  REQUIRE(argv.size() >= 2);
  CHECK(argv[0] == "/opt/codex");
  CHECK(argv[1] == "app-server");
  std::vector<std::string> expected = cxp::proxy::safe_codex_defaults();
  for (const auto& setting : cxp::proxy::faithful_codex_defaults()) expected.push_back(setting);
  for (const auto& setting : cxp::proxy::builtin_tools_off()) expected.push_back(setting);
  CHECK(flags(argv) == expected);
  CHECK(has(flags(argv), "features.plugins=false"));
}

TEST_CASE("a defined provider becomes the codexproxy model provider with quoted TOML strings") {
  CodexOptions options;
  options.provider.base_url = "http://127.0.0.1:9/v1";
  options.provider.name = "Gateway \"internal\"";
  options.provider.env_key = "GATEWAY_KEY";
  const auto f = flags(worker_command(options));
  CHECK(has(f, "model_provider=\"codexproxy\""));
  CHECK(has(f, "model_providers.codexproxy.base_url=\"http://127.0.0.1:9/v1\""));
  CHECK(has(f, "model_providers.codexproxy.wire_api=\"responses\""));
  CHECK(has(f, "model_providers.codexproxy.env_key=\"GATEWAY_KEY\""));
  CHECK(has(f, "model_providers.codexproxy.name=\"Gateway \\\"internal\\\"\""));
}

TEST_CASE("overrides come last and replace a default of the same key instead of repeating it") {
  CodexOptions options;
  options.provider.base_url = "https://api.openai.com/v1";
  options.overrides = {"features.plugins=true", "model_providers.codexproxy.request_max_retries=0"};
  const auto f = flags(worker_command(options));
  CHECK(std::count_if(f.begin(), f.end(), [](const std::string& s) {
          return s.rfind("features.plugins=", 0) == 0;
        }) == 1);
  CHECK(f.back() == "model_providers.codexproxy.request_max_retries=0");
  CHECK(has(f, "features.plugins=true"));
}

TEST_CASE("WORKER_CONFIG_OVERRIDES: one key=value per line, comments and blanks skipped") {
  const auto parsed = parse_config_overrides(
      "X", "# tuning\nmodel_reasoning_effort = \"high\"\n\n  features.shell_snapshot=false  \n");
  CHECK(parsed == std::vector<std::string>{"model_reasoning_effort=\"high\"",
                                           "features.shell_snapshot=false"});
}

TEST_CASE("malformed overrides are refused naming the variable and the line") {
  CHECK(error_of("no equals sign").find("WORKER_CONFIG_OVERRIDES line 1") != std::string::npos);
  CHECK(error_of("ok=1\nbad key=1").find("line 2") != std::string::npos);
  CHECK(error_of("a..b=1").find("dotted key") != std::string::npos);
  CHECK(error_of("key=").find("empty") != std::string::npos);
  CHECK(error_of("key=\x01").find("control characters") != std::string::npos);
  std::string many;
  for (int i = 0; i < 65; ++i) many += "k" + std::to_string(i) + "=1\n";
  CHECK(error_of(many).find("at most 64") != std::string::npos);
  CHECK(error_of("k=" + std::string(5000, 'v')).find("at most 4096") != std::string::npos);
}

TEST_CASE(
    "provider URLs must be http(s) with a host and nothing a TOML string would need escaped") {
  CHECK(cxp::is_http_url("https://example.openai.azure.com/openai/v1"));
  CHECK(cxp::is_http_url("http://127.0.0.1:8080/v1"));
  CHECK_FALSE(cxp::is_http_url("ftp://example.com"));
  CHECK_FALSE(cxp::is_http_url("https:///v1"));
  CHECK_FALSE(cxp::is_http_url("https://exa mple.com"));
  CHECK_FALSE(cxp::is_http_url("https://example.com/\"x"));
  CHECK_FALSE(cxp::is_http_url("https://user:pw@example.com"));
  CHECK_FALSE(cxp::is_http_url("example.com"));
}

TEST_CASE("the worker's environment is an allow-list: never the proxy's secrets or Kubernetes") {
  CodexOptions options;
  options.codex_home = "/var/lib/codex";
  options.provider.base_url = "https://api.openai.com/v1";
  options.provider.env_key = "GATEWAY_KEY";
  options.env_passthrough = {"RUST_LOG"};
  const auto env = cxp::proxy::worker_environment(
      options, {"PATH=/bin", "CODEX_HOME=/old", "PROXY_API_KEY=sk-proxy", "PROXY_ADMIN_TOKEN=adm",
                "KUBERNETES_SERVICE_HOST=10.0.0.1", "POD_NAME=p", "GATEWAY_KEY=gw", "LC_ALL=C",
                "OPENAI_API_KEY=sk-unused", "RUST_LOG=info", "AWS_SECRET_ACCESS_KEY=x", "HOME=/h",
                "HTTPS_PROXY=http://egress:3128"});
  CHECK(env == std::vector<std::string>{"PATH=/bin", "GATEWAY_KEY=gw", "LC_ALL=C", "RUST_LOG=info",
                                        "HOME=/h", "HTTPS_PROXY=http://egress:3128",
                                        "CODEX_HOME=/var/lib/codex"});
  // Without a provider of ours, codex's own variables for a key pass.
  CHECK(cxp::proxy::worker_environment(CodexOptions{}, {"OPENAI_API_KEY=k", "CODEX_HOME=/c"}) ==
        std::vector<std::string>{"OPENAI_API_KEY=k", "CODEX_HOME=/c"});
}

TEST_CASE("built-in tools are off unless enabled, and the passthrough refuses the proxy's names") {
  CodexOptions options;
  auto f = flags(worker_command(options));
  CHECK(has(f, "features.shell_tool=false"));
  CHECK(has(f, "web_search=\"disabled\""));
  CHECK(has(f, "features.shell_snapshot=false"));
  options.builtin_tools = true;
  f = flags(worker_command(options));
  CHECK_FALSE(has(f, "features.shell_tool=false"));
  CHECK(has(f, "features.plugins=false"));                     // the safe defaults stay
  CHECK(has(f, "shell_environment_policy.inherit=\"core\""));  // commands never see the key
  CHECK(cxp::proxy::parse_env_passthrough("X", " RUST_LOG, AZURE_TENANT ,") ==
        std::vector<std::string>{"RUST_LOG", "AZURE_TENANT"});
  CHECK_THROWS_WITH_AS(cxp::proxy::parse_env_passthrough("WORKER_ENV_PASSTHROUGH", "PROXY_API_KEY"),
                       doctest::Contains("WORKER_ENV_PASSTHROUGH"), ConfigError);
  CHECK_THROWS_WITH_AS(cxp::proxy::parse_env_passthrough("X", "1BAD"),
                       doctest::Contains("variable names"), ConfigError);
}

TEST_CASE("CODEX_HOME is created private and auth.json is installed with mode 0600") {
  namespace fs = std::filesystem;
  const fs::path root = fs::temp_directory_path() / ("cxp-home-" + std::to_string(::getpid()));
  fs::remove_all(root);
  const auto home = root / "nested" / "codex";
  const auto source = root / "auth-source.json";
  fs::create_directories(root);
  std::ofstream(source) << R"({"OPENAI_API_KEY":null,"tokens":{"access_token":"x"}})";
  cxp::proxy::prepare_codex_home(home.string(), source.string());
  CHECK(fs::is_directory(home));
  CHECK((fs::status(home).permissions() & fs::perms::others_all) == fs::perms::none);
  CHECK((fs::status(home / "auth.json").permissions() &
         (fs::perms::group_all | fs::perms::others_all)) == fs::perms::none);
  std::ifstream copied(home / "auth.json");
  CHECK(std::string(std::istreambuf_iterator<char>(copied), {}).find("access_token") !=
        std::string::npos);

  std::ofstream(source) << "not json sk-secret-value";
  try {
    cxp::proxy::prepare_codex_home(home.string(), source.string());
    FAIL("a non-JSON auth.json was accepted");
  } catch (const ConfigError& e) {
    CHECK(std::string(e.what()).find("WORKER_AUTH_JSON") != std::string::npos);
    CHECK(std::string(e.what()).find("sk-secret-value") == std::string::npos);
  }
  std::ofstream(root / "file") << "x";
  CHECK_THROWS_WITH_AS(cxp::proxy::prepare_codex_home((root / "file").string(), ""),
                       doctest::Contains("CODEX_HOME"), ConfigError);
  CHECK_THROWS_WITH_AS(cxp::proxy::prepare_codex_home("", source.string()),
                       doctest::Contains("requires CODEX_HOME"), ConfigError);
  fs::remove_all(root);
}
