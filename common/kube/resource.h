#pragma once

#include <string>
#include <string_view>

namespace cxp::kube {

// One API resource type: where its objects live in the REST path space.
struct Resource {
  std::string group;    // "" for the core group
  std::string version;  // "v1"
  std::string plural;   // "configmaps"
  std::string kind;     // "ConfigMap"
  bool namespaced = true;

  std::string api_version() const { return group.empty() ? version : group + "/" + version; }
  // /api/v1/namespaces/ns/configmaps[/name[/subresource]]; an empty namespace means all namespaces.
  std::string path(std::string_view ns = "", std::string_view name = "",
                   std::string_view subresource = "") const;
};

namespace resources {
extern const Resource kCodexProxies;
extern const Resource kConfigMaps;
extern const Resource kDeployments;
extern const Resource kServices;
extern const Resource kPodDisruptionBudgets;
extern const Resource kServiceAccounts;
extern const Resource kRoles;
extern const Resource kRoleBindings;
extern const Resource kPods;
extern const Resource kSecrets;
extern const Resource kEvents;
extern const Resource kLeases;
extern const Resource kNetworkPolicies;           // networking.k8s.io/v1
extern const Resource kEndpointSlices;            // discovery.k8s.io/v1 (the API server's, read)
extern const Resource kHorizontalPodAutoscalers;  // autoscaling/v2
extern const Resource kScaledObjects;             // keda.sh/v1alpha1 (KEDA)
extern const Resource kServiceMonitors;           // monitoring.coreos.com/v1 (Prometheus Operator)
extern const Resource kTokenReviews;              // authentication.k8s.io/v1 (create only)
extern const Resource kSubjectAccessReviews;      // authorization.k8s.io/v1 (create only)
}  // namespace resources

// Percent-encodes a query parameter value.
std::string url_encode(std::string_view text);

}  // namespace cxp::kube
