#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace cxp::controller {

// The controller's command line, with controller-runtime's flag names.
struct ControllerOptions {
  std::string kubeconfig;      // --kubeconfig (else $KUBECONFIG, in-cluster, ~/.kube/config)
  std::string namespace_name;  // --namespace: watch one namespace; empty = all
  bool leader_elect = true;    // --leader-elect (on by default; =false for development only)
  std::string leader_election_namespace;  // --leader-election-namespace (else POD_NAMESPACE, else
                                          // the kubeconfig's namespace)
  std::string leader_election_id = "codexproxy-controller-leader";  // --leader-election-id
  std::string metrics_bind_address = ":8443";  // --metrics-bind-address ("0" disables)
  bool metrics_secure = true;    // --metrics-secure: HTTPS + TokenReview/SubjectAccessReview
  std::string metrics_cert_dir;  // --metrics-cert-dir: tls.crt + tls.key; else self-signed
  std::string health_probe_bind_address = ":8081";  // --health-probe-bind-address ("0" disables)
  int max_concurrent_reconciles = 8;                // --max-concurrent-reconciles
  double kube_api_qps = 0;  // --kube-api-qps; 0: no client-side limit (the server's APF applies)
  double kube_api_burst = 100;     // --kube-api-burst
  std::string log_level = "info";  // --log-level
  bool show_version = false;       // --version
  bool show_help = false;          // --help
};

// Parses argv (without argv[0]); throws cxp::ConfigError naming the flag on a bad one.
ControllerOptions parse_controller_options(const std::vector<std::string>& args);
std::string controller_usage();

struct BindAddress {
  std::string host;
  std::uint16_t port = 0;
  bool disabled = false;
};
// ":8080" → 0.0.0.0:8080, "127.0.0.1:0" → an ephemeral port, "0" → disabled.
BindAddress parse_bind_address(const std::string& flag, const std::string& text);

}  // namespace cxp::controller
