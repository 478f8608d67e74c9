#include <sys/prctl.h>

#include <csignal>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <map>
#include <optional>
#include <string>

#include "common/config_value.h"
#include "common/telemetry/json_log.h"
#include "proxy/proxy_config.h"
#include "proxy/proxy_server.h"
#include "proxy/trace/trace_buffer.h"
#include "proxy/worker/codex_home.h"

namespace {

int usage(std::ostream& out, int code) {
  out << "usage: codex-proxy [--config FILE] [--kubeconfig FILE --pod-name NAME\n"
         "                   --pod-namespace NS --codexproxy-name NAME]\n"
         "       codex-proxy trace REQUEST_ID [--dir DIR]\n"
         "       codex-proxy --version\n\n"
         "Serves an OpenAI-compatible API in front of a supervised `$CODEX_BIN app-server` "
         "worker.\n"
         "Settings come from FILE (YAML) and are overridden by environment variables;\n"
         "see docs/configuration.md. With a pod name, namespace and CodexProxy name (flags or\n"
         "POD_NAME/POD_NAMESPACE/CODEXPROXY_NAME) it reports into that CodexProxy's status and\n"
         "applies its live settings, with --kubeconfig or the in-cluster ServiceAccount.\n";
  return code;
}

// The flags that say which CodexProxy this pod reports to (they override the settings of the
// same meaning: PROXY_KUBECONFIG, POD_NAME, POD_NAMESPACE, CODEXPROXY_NAME).
std::optional<std::string> kubernetes_flag(const std::string& arg) {
  for (const char* flag : {"--kubeconfig", "--pod-name", "--pod-namespace", "--codexproxy-name"}) {
    if (arg == flag) return arg;
  }
  return std::nullopt;
}

// `codex-proxy trace <req_id> [--dir D]`: prints the trace file of one request.
int print_trace(int argc, char** argv) {
  if (argc < 3) return usage(std::cerr, 2);
  std::string dir;
  const std::string request_id = argv[2];
  for (int i = 3; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--dir" && i + 1 < argc) {
      dir = argv[++i];
    } else {
      std::cerr << "codex-proxy trace: unknown argument '" << arg << "'\n";
      return 2;
    }
  }
  if (dir.empty()) {
    try {
      dir = cxp::proxy::load_proxy_config(std::nullopt, [](const char* n) {
              return std::getenv(n);
            }).trace_dir;
    } catch (const cxp::ConfigError& e) {
      std::cerr << "codex-proxy trace: " << e.what() << "\n";
      return 2;
    }
  }
  const auto path = cxp::proxy::TraceBuffer::find(dir, request_id);
  if (path.empty()) {
    std::cerr << "codex-proxy trace: no trace for request '" << request_id << "' in " << dir
              << "\n";
    return 1;
  }
  std::ifstream in(path);
  std::cout << in.rdbuf() << "\n";
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  // A worker that dies while we write to its stdin must give us EPIPE, not kill the proxy.
  std::signal(SIGPIPE, SIG_IGN);
  // The proxy's secrets (API key, admin and metrics tokens, the model key) live in its environment
  // and memory. Not dumpable: /proc/<pid>/environ, mem and ptrace are closed to other processes of
  // the same user — the worker and whatever a model runs through it.
  ::prctl(PR_SET_DUMPABLE, 0);
  if (argc >= 2 && std::string(argv[1]) == "trace") return print_trace(argc, argv);
  std::optional<std::string> config_path;
  std::map<std::string, std::string> kubernetes_flags;  // flag → value, applied over the settings
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
    } else if (const auto flag = kubernetes_flag(arg); flag && i + 1 < argc) {
      kubernetes_flags[*flag] = argv[++i];
    } else if (const auto eq = arg.find('=');
               eq != std::string::npos && kubernetes_flag(arg.substr(0, eq))) {
      kubernetes_flags[*kubernetes_flag(arg.substr(0, eq))] = arg.substr(eq + 1);
    } else {
      std::cerr << "codex-proxy: unknown argument '" << arg << "'\n";
      return usage(std::cerr, 2);
    }
  }
  cxp::telemetry::JsonLog log("proxy");
  try {
    auto config = cxp::proxy::load_proxy_config(config_path,
                                                [](const char* name) { return std::getenv(name); });
    for (const auto& [flag, value] : kubernetes_flags) {
      if (flag == "--kubeconfig") config.kubeconfig = value;
      if (flag == "--pod-name") config.pod_name = value;
      if (flag == "--pod-namespace") config.pod_namespace = value;
      if (flag == "--codexproxy-name") config.codexproxy_name = value;
    }
    cxp::proxy::validate_proxy_config(config);
    cxp::proxy::prepare_codex_home(config.codex.codex_home, config.worker_auth_json);
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
