#include "common/kube/resource.h"

#include <cstdio>

namespace cxp::kube {

std::string Resource::path(std::string_view ns, std::string_view name,
                           std::string_view subresource) const {
  std::string out = group.empty() ? "/api/" + version : "/apis/" + group + "/" + version;
  if (namespaced && !ns.empty()) out.append("/namespaces/").append(ns);
  out.append("/").append(plural);
  if (!name.empty()) {
    out.append("/").append(name);
    if (!subresource.empty()) out.append("/").append(subresource);
  }
  return out;
}

namespace resources {
const Resource kCodexProxies{"codexproxy.io", "v1alpha1", "codexproxies", "CodexProxy", true};
const Resource kConfigMaps{"", "v1", "configmaps", "ConfigMap", true};
const Resource kDeployments{"apps", "v1", "deployments", "Deployment", true};
const Resource kServices{"", "v1", "services", "Service", true};
const Resource kPodDisruptionBudgets{"policy", "v1", "poddisruptionbudgets", "PodDisruptionBudget",
                                     true};
const Resource kServiceAccounts{"", "v1", "serviceaccounts", "ServiceAccount", true};
const Resource kRoles{"rbac.authorization.k8s.io", "v1", "roles", "Role", true};
const Resource kRoleBindings{"rbac.authorization.k8s.io", "v1", "rolebindings", "RoleBinding",
                             true};
const Resource kPods{"", "v1", "pods", "Pod", true};
const Resource kSecrets{"", "v1", "secrets", "Secret", true};
const Resource kEvents{"", "v1", "events", "Event", true};
const Resource kLeases{"coordination.k8s.io", "v1", "leases", "Lease", true};
const Resource kNetworkPolicies{"networking.k8s.io", "v1", "networkpolicies", "NetworkPolicy",
                                true};
const Resource kEndpointSlices{"discovery.k8s.io", "v1", "endpointslices", "EndpointSlice", true};
const Resource kHorizontalPodAutoscalers{"autoscaling", "v2", "horizontalpodautoscalers",
                                         "HorizontalPodAutoscaler", true};
const Resource kScaledObjects{"keda.sh", "v1alpha1", "scaledobjects", "ScaledObject", true};
const Resource kServiceMonitors{"monitoring.coreos.com", "v1", "servicemonitors", "ServiceMonitor",
                                true};
const Resource kTokenReviews{"authentication.k8s.io", "v1", "tokenreviews", "TokenReview", false};
const Resource kSubjectAccessReviews{"authorization.k8s.io", "v1", "subjectaccessreviews",
                                     "SubjectAccessReview", false};
}  // namespace resources

std::string url_encode(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (const unsigned char c : text) {
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
        c == '_' || c == '.' || c == '~') {
      out.push_back(static_cast<char>(c));
    } else {
      char buf[4];
      std::snprintf(buf, sizeof buf, "%%%02X", c);
      out.append(buf);
    }
  }
  return out;
}

}  // namespace cxp::kube
