#include <csignal>
#include <cstdlib>
#include <iostream>
#include <optional>
#include <string>

#include "common/config_value.h"
#include "common/telemetry/json_log.h"
#include "proxy/proxy_config.h"
#include "proxy/proxy_server.h"

namespace {

int usage(std::ostream& out, int code) {
  out << "usage: codex-proxy [--config FILE]\n"
         "       codex-proxy --version\n\n"
         "Serves an OpenAI-compatible API in front of a supervised `$CODEX_BIN app-server` "
         "worker.\n"
         "Settings come from FILE (YAML) and are overridden by environment variables;\n"
         "see docs/configuration.md.\n";
  return code;
}

}  // namespace

int main(int argc, char** argv) {
  // A worker that dies while we write to its stdin must give us EPIPE, not kill the proxy.
  std::signal(SIGPIPE, SIG_IGN);
  std::optional<std::string> config_path;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--help" || arg == "-h") return usage(std::cout, 0);
    if (arg == "--version") {
      std::cout << "codex-proxy " << CXP_VERSION << "\n";
      return 0;
    }
    if (arg == "--config" && i + 1 < argc) {
      config_path = argv[++i];
    } else if (arg.rfind("--config=", 0) == 0) {
      config_path = arg.substr(9);
    } else {
      std::cerr << "codex-proxy: unknown argument '" << arg << "'\n";
      return usage(std::cerr, 2);
    }
  }
  cxp::telemetry::JsonLog log("proxy");
  try {
    auto config = cxp::proxy::load_proxy_config(config_path,
                                                [](const char* name) { return std::getenv(name); });
    cxp::telemetry::configure_json_log(config.log_level,
                                       cxp::telemetry::Redactor(config.secrets()));
    cxp::proxy::ProxyServer server(std::move(config));
    return server.run();
  } catch (const cxp::ConfigError& e) {
    log.error("config_invalid", {{"error_code", "config_invalid"}, {"message", e.what()}});
    std::cerr << "codex-proxy: invalid configuration: " << e.what() << "\n";
    return 2;
  } catch (const std::exception& e) {
    log.error("startup_failed", {{"error_code", "startup_failed"}, {"message", e.what()}});
    std::cerr << "codex-proxy: " << e.what() << "\n";
    return 1;
  }
}
