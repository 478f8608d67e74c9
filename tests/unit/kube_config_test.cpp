#include "common/kube/kube_config.h"

#include <doctest/doctest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "common/config_value.h"
#include "common/kube/resource.h"

using namespace cxp::kube;
namespace fs = std::filesystem;

TEST_CASE("a kubeconfig's current context gives server, CA, client cert and namespace") {
  const auto dir = fs::temp_directory_path() / ("cxp-kubeconfig-" + std::to_string(::getpid()));
  fs::create_directories(dir);
  std::ofstream(dir / "ca.crt") << "CA PEM";
  std::ofstream(dir / "config") << R"(apiVersion: v1
kind: Config
current-context: b
clusters:
- {name: c1, cluster: {server: "https://10.0.0.1:6443", certificate-authority: ca.crt}}
users:
- {name: u1, user: {client-certificate-data: Q0VSVA==, client-key-data: S0VZ}}
- {name: u2, user: {token: abc}}
contexts:
- {name: a, context: {cluster: c1, user: u2}}
- {name: b, context: {cluster: c1, user: u1, namespace: team}}
)";
  const auto config = load_kubeconfig((dir / "config").string());
  CHECK(config.server == "https://10.0.0.1:6443");
  CHECK(config.ca_pem == "CA PEM");
  CHECK(config.client_cert_pem == "CERT");
  CHECK(config.client_key_pem == "KEY");
  CHECK(config.namespace_name == "team");
  const auto other = load_kubeconfig((dir / "config").string(), "a");
  CHECK(other.token == "abc");
  CHECK(other.namespace_name == "default");
  CHECK_THROWS_WITH_AS(load_kubeconfig((dir / "config").string(), "zzz"),
                       doctest::Contains("no context named 'zzz'"), cxp::ConfigError);
  CHECK_THROWS_WITH_AS(load_kubeconfig((dir / "missing").string()), doctest::Contains("missing"),
                       cxp::ConfigError);
  fs::remove_all(dir);
}

TEST_CASE("resource paths for core and named groups, namespaced and cluster-wide") {
  CHECK(resources::kConfigMaps.path("ns", "x") == "/api/v1/namespaces/ns/configmaps/x");
  CHECK(resources::kCodexProxies.path("ns", "p", "status") ==
        "/apis/codexproxy.io/v1alpha1/namespaces/ns/codexproxies/p/status");
  CHECK(resources::kDeployments.path() == "/apis/apps/v1/deployments");
  CHECK(url_encode("a=b,c d") == "a%3Db%2Cc%20d");
}
