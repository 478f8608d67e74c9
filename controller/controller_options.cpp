#include "controller/controller_options.h"

#include "common/config_value.h"

namespace cxp::controller {

std::string controller_usage() {
  return "usage: codexproxy-controller [flags]\n\n"
         "Reconciles CodexProxy resources (codexproxy.io/v1alpha1) into the objects that run\n"
         "codex-proxy pods. Flags:\n"
         "  --kubeconfig PATH                  credentials (else $KUBECONFIG, in-cluster, "
         "~/.kube/config)\n"
         "  --namespace NS                     watch only NS (default: all namespaces)\n"
         "  --leader-elect[=false]             Lease-based leader election (default on, at any\n"
         "                                     replica count; =false for development only: two\n"
         "                                     controllers without it fight over every object)\n"
         "  --leader-election-namespace NS     namespace of the Lease (default: POD_NAMESPACE)\n"
         "  --leader-election-id NAME          name of the Lease (codexproxy-controller-leader)\n"
         "  --metrics-bind-address ADDR        /metrics (default :8443; 0 disables)\n"
         "  --metrics-secure[=false]           /metrics over HTTPS, each scraper's token checked\n"
         "                                     with TokenReview + SubjectAccessReview (get\n"
         "                                     /metrics); =false: plain HTTP, no check (default "
         "on)\n"
         "  --metrics-cert-dir DIR             tls.crt and tls.key for it (re-read on change);\n"
         "                                     default: a self-signed certificate\n"
         "  --health-probe-bind-address ADDR   /healthz and /readyz (default :8081; 0 disables)\n"
         "  --max-concurrent-reconciles N      parallel reconciles (default 8)\n"
         "  --kube-api-qps Q, --kube-api-burst B   client-side API rate limit (0 = none, the\n"
         "                                         default: the API server's priority and "
         "fairness\n"
         "                                         limits; burst 100)\n"
         "  --log-level debug|info|warn|error\n"
         "  --version, --help\n";
}

ControllerOptions parse_controller_options(const std::vector<std::string>& args) {
  ControllerOptions options;
  for (std::size_t i = 0; i < args.size(); ++i) {
    std::string flag = args[i];
    std::string value;
    bool has_value = false;
    if (const auto equals = flag.find('='); equals != std::string::npos) {
      value = flag.substr(equals + 1);
      flag = flag.substr(0, equals);
      has_value = true;
    }
    const auto take = [&]() -> std::string {
      if (has_value) return value;
      if (i + 1 >= args.size()) throw ConfigError("flag " + flag + ": a value is required");
      return args[++i];
    };
    if (flag == "--kubeconfig") {
      options.kubeconfig = take();
    } else if (flag == "--namespace") {
      options.namespace_name = take();
    } else if (flag == "--leader-elect") {
      options.leader_elect = has_value ? parse_boolean(flag, value) : true;
    } else if (flag == "--leader-election-namespace") {
      options.leader_election_namespace = take();
    } else if (flag == "--leader-election-id") {
      options.leader_election_id = take();
    } else if (flag == "--metrics-bind-address") {
      options.metrics_bind_address = take();
      parse_bind_address(flag, options.metrics_bind_address);
    } else if (flag == "--metrics-secure") {
      options.metrics_secure = has_value ? parse_boolean(flag, value) : true;
    } else if (flag == "--metrics-cert-dir") {
      options.metrics_cert_dir = take();
    } else if (flag == "--health-probe-bind-address") {
      options.health_probe_bind_address = take();
      parse_bind_address(flag, options.health_probe_bind_address);
    } else if (flag == "--max-concurrent-reconciles") {
      options.max_concurrent_reconciles = static_cast<int>(parse_integer(flag, take(), 1, 64));
    } else if (flag == "--kube-api-qps") {
      options.kube_api_qps = static_cast<double>(parse_integer(flag, take(), 0, 10000));
    } else if (flag == "--kube-api-burst") {
      options.kube_api_burst = static_cast<double>(parse_integer(flag, take(), 1, 10000));
    } else if (flag == "--log-level") {
      options.log_level = take();
    } else if (flag == "--version") {
      options.show_version = true;
    } else if (flag == "--help" || flag == "-h") {
      options.show_help = true;
    } else {
      throw ConfigError("unknown flag '" + args[i] + "' (see --help)");
    }
  }
  return options;
}

BindAddress parse_bind_address(const std::string& flag, const std::string& text) {
  BindAddress out;
  if (text == "0") {
    out.disabled = true;
    return out;
  }
  const auto colon = text.rfind(':');
  if (colon == std::string::npos) {
    throw ConfigError("flag " + flag + ": expected [host]:port or 0, found '" + text + "'");
  }
  out.host = text.substr(0, colon);
  if (out.host.empty()) out.host = "0.0.0.0";
  if (out.host.size() > 2 && out.host.front() == '[' && out.host.back() == ']') {
    out.host = out.host.substr(1, out.host.size() - 2);
  }
  out.port = static_cast<std::uint16_t>(parse_integer(flag, text.substr(colon + 1), 0, 65535));
  return out;
}

}  // namespace cxp::controller
