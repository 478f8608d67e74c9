#include <csignal>
#include <cstdlib>
#include <iostream>

#include "common/config_value.h"
#include "common/kube/kube_config.h"
#include "common/telemetry/json_log.h"
#include "controller/controller_app.h"
#include "controller/controller_options.h"

int main(int argc, char** argv) {
  std::signal(SIGPIPE, SIG_IGN);
  using namespace cxp;
  controller::ControllerOptions options;
  try {
    options = controller::parse_controller_options(std::vector<std::string>(argv + 1, argv + argc));
    telemetry::configure_json_log(telemetry::parse_log_level("--log-level", options.log_level),
                                  telemetry::Redactor());
  } catch (const ConfigError& error) {
    std::cerr << "codexproxy-controller: " << error.what() << "\n";
    return 2;
  }
  if (options.show_help) {
    std::cout << controller::controller_usage();
    return 0;
  }
  if (options.show_version) {
    std::cout << "codexproxy-controller " << CXP_VERSION << "\n";
    return 0;
  }
  telemetry::JsonLog log("controller");
  try {
    auto config = kube::resolve_kube_config(options.kubeconfig);
    if (options.leader_election_namespace.empty()) {
      const char* pod_namespace = std::getenv("POD_NAMESPACE");
      options.leader_election_namespace =
          pod_namespace != nullptr && *pod_namespace ? pod_namespace : config.namespace_name;
    }
    controller::ControllerApp app(std::move(options), std::move(config));
    return app.run();
  } catch (const ConfigError& error) {
    log.error("startup_failed", {{"error", error.what()}});
    return 1;
  } catch (const std::exception& error) {
    log.error("startup_failed", {{"error", error.what()}});
    return 1;
  }
}
