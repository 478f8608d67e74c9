#pragma once

#include <string>

namespace cxp::kube {

// Where and how to reach the API server: the parts of a kubeconfig context (or of the in-cluster
// ServiceAccount mount) that this client supports. PEM material is held in memory.
struct KubeConfig {
  std::string server;           // https://host:port
  std::string ca_pem;           // empty: system trust store
  std::string client_cert_pem;  // client certificate authentication (with client_key_pem)
  std::string client_key_pem;
  std::string token;       // bearer token given inline
  std::string token_file;  // bearer token re-read from this file (projected tokens rotate)
  std::string namespace_name = "default";
  bool insecure_skip_tls_verify = false;
  std::string source;  // where this came from, for error messages ("kubeconfig /x", "in-cluster")
};

// Loads the current context (or `context` when not empty) of a kubeconfig file. Relative file
// paths in it are relative to the file's folder; *-data fields are base64. Throws cxp::ConfigError
// saying which file and which field is wrong.
KubeConfig load_kubeconfig(const std::string& path, const std::string& context = "");

// The in-cluster config: KUBERNETES_SERVICE_HOST/PORT and the ServiceAccount mount under `mount`.
// Throws cxp::ConfigError when not running in a pod.
KubeConfig in_cluster_config(
    const std::string& mount = "/var/run/secrets/kubernetes.io/serviceaccount");

// The usual resolution order: an explicit path, else $KUBECONFIG, else in-cluster, else
// ~/.kube/config. Throws cxp::ConfigError naming what was tried.
KubeConfig resolve_kube_config(const std::string& explicit_path);

// The bearer token to send now: `token`, or the current content of `token_file` (trimmed).
std::string current_token(const KubeConfig& config);

}  // namespace cxp::kube
