#include "common/kube/kube_config.h"

#include <cpprest/asyncrt_utils.h>
#include <yaml-cpp/yaml.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "common/config_value.h"

namespace cxp::kube {
namespace {

namespace fs = std::filesystem;

std::string read_file(const fs::path& path, const std::string& what) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw ConfigError(what + ": cannot read file " + path.string());
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

std::string trim(std::string text) {
  const auto first = text.find_first_not_of(" \t\r\n");
  if (first == std::string::npos) return "";
  const auto last = text.find_last_not_of(" \t\r\n");
  return text.substr(first, last - first + 1);
}

std::string decode_base64(const std::string& text, const std::string& what) {
  try {
    const auto bytes = utility::conversions::from_base64(trim(text));
    return std::string(bytes.begin(), bytes.end());
  } catch (const std::exception&) {
    throw ConfigError(what + ": expected base64 data");
  }
}

// `<field>-data` (base64) or `<field>` (a path relative to the kubeconfig's folder).
std::string file_or_data(const YAML::Node& node, const std::string& field, const fs::path& base,
                         const std::string& where) {
  if (const auto data = node[field + "-data"]; data && !data.IsNull()) {
    return decode_base64(data.as<std::string>(), where + ": " + field + "-data");
  }
  if (const auto file = node[field]; file && !file.IsNull()) {
    fs::path path = file.as<std::string>();
    if (path.is_relative()) path = base / path;
    return read_file(path, where + ": " + field);
  }
  return "";
}

YAML::Node find_named(const YAML::Node& list, const std::string& name, const std::string& kind,
                      const std::string& where) {
  if (list && list.IsSequence()) {
    for (const auto& item : list) {
      if (item["name"] && item["name"].as<std::string>() == name) return item[kind];
    }
  }
  throw ConfigError(where + ": no " + kind + " named '" + name + "'");
}

}  // namespace

KubeConfig load_kubeconfig(const std::string& path, const std::string& context) {
  const std::string where = "kubeconfig " + path;
  YAML::Node root;
  try {
    root = YAML::LoadFile(path);
  } catch (const YAML::Exception& error) {
    throw ConfigError(where + ": " + error.what());
  }
  const fs::path base = fs::path(path).parent_path();
  try {
    if (!root.IsMap()) throw ConfigError(where + ": not a YAML mapping");
    std::string context_name = context;
    if (context_name.empty()) {
      if (!root["current-context"]) throw ConfigError(where + ": no current-context");
      context_name = root["current-context"].as<std::string>();
    }
    const auto ctx = find_named(root["contexts"], context_name, "context", where);
    if (!ctx || !ctx["cluster"])
      throw ConfigError(where + ": context '" + context_name + "' names no cluster");
    const auto cluster_name = ctx["cluster"].as<std::string>();
    const auto cluster = find_named(root["clusters"], cluster_name, "cluster", where);
    KubeConfig config;
    config.source = where;
    if (!cluster["server"])
      throw ConfigError(where + ": cluster '" + cluster_name + "' has no server");
    config.server = cluster["server"].as<std::string>();
    config.ca_pem = file_or_data(cluster, "certificate-authority", base, where);
    if (cluster["insecure-skip-tls-verify"]) {
      config.insecure_skip_tls_verify = cluster["insecure-skip-tls-verify"].as<bool>();
    }
    if (ctx["namespace"]) config.namespace_name = ctx["namespace"].as<std::string>();
    if (ctx["user"]) {
      const auto user = find_named(root["users"], ctx["user"].as<std::string>(), "user", where);
      if (user) {
        config.client_cert_pem = file_or_data(user, "client-certificate", base, where);
        config.client_key_pem = file_or_data(user, "client-key", base, where);
        if (user["token"]) config.token = user["token"].as<std::string>();
        if (user["tokenFile"]) {
          fs::path token_path = user["tokenFile"].as<std::string>();
          config.token_file = (token_path.is_relative() ? base / token_path : token_path).string();
        }
        if (user["exec"] || user["auth-provider"]) {
          throw ConfigError(where + ": user '" + ctx["user"].as<std::string>() +
                            "' uses exec/auth-provider credentials, which are not supported; use a "
                            "token or a client certificate");
        }
      }
    }
    if (config.client_cert_pem.empty() != config.client_key_pem.empty()) {
      throw ConfigError(where + ": client-certificate and client-key must be given together");
    }
    return config;
  } catch (const YAML::Exception& error) {
    throw ConfigError(where + ": " + error.what());
  }
}

KubeConfig in_cluster_config(const std::string& mount) {
  const char* host = std::getenv("KUBERNETES_SERVICE_HOST");
  const char* port = std::getenv("KUBERNETES_SERVICE_PORT");
  if (host == nullptr || port == nullptr || *host == '\0') {
    throw ConfigError("in-cluster config: KUBERNETES_SERVICE_HOST/PORT are not set (not in a pod)");
  }
  KubeConfig config;
  config.source = "in-cluster";
  std::string host_text = host;
  if (host_text.find(':') != std::string::npos) host_text = "[" + host_text + "]";  // IPv6
  config.server = "https://" + host_text + ":" + port;
  config.ca_pem = read_file(fs::path(mount) / "ca.crt", "in-cluster config");
  config.token_file = (fs::path(mount) / "token").string();
  current_token(config);  // fail now, not at the first request, when it is unreadable
  std::error_code ignored;
  if (fs::exists(fs::path(mount) / "namespace", ignored)) {
    config.namespace_name = trim(read_file(fs::path(mount) / "namespace", "in-cluster config"));
  }
  return config;
}

KubeConfig resolve_kube_config(const std::string& explicit_path) {
  if (!explicit_path.empty()) return load_kubeconfig(explicit_path);
  if (const char* env = std::getenv("KUBECONFIG"); env != nullptr && *env != '\0') {
    std::string first = env;
    first = first.substr(0, first.find(':'));
    return load_kubeconfig(first);
  }
  if (std::getenv("KUBERNETES_SERVICE_HOST") != nullptr) return in_cluster_config();
  if (const char* home = std::getenv("HOME"); home != nullptr) {
    const fs::path path = fs::path(home) / ".kube" / "config";
    std::error_code ignored;
    if (fs::exists(path, ignored)) return load_kubeconfig(path.string());
  }
  throw ConfigError(
      "no Kubernetes credentials: pass --kubeconfig, set KUBECONFIG, run in a pod, or create "
      "~/.kube/config");
}

std::string current_token(const KubeConfig& config) {
  if (!config.token_file.empty())
    return trim(read_file(config.token_file, config.source + ": token file"));
  return config.token;
}

}  // namespace cxp::kube
