#pragma once

#include <chrono>

namespace cxp {

// The contract between a proxy pod and the controller (docs/architecture.md, "How pods report"):
// each pod keeps a coordination.k8s.io/v1 Lease named after itself, in its own namespace, owned
// by its Pod. The Lease's renewTime is the pod's heartbeat; its annotation kPodReportAnnotation
// holds the pod's report (JSON: the fields of a status.pods entry but `name`), rewritten only
// when the report changes. The controller copies the reports into the CodexProxy's status.pods.
inline constexpr const char* kPodReportAnnotation = "codexproxy.io/report";
// The Lease's labels: the same as the pod's (app.kubernetes.io/name=codex-proxy and
// codexproxy.io/name=<CodexProxy>), so the controller watches them with one selector.
inline constexpr const char* kPodAppLabel = "app.kubernetes.io/name";
inline constexpr const char* kPodAppValue = "codex-proxy";
inline constexpr const char* kCodexProxyLabel = "codexproxy.io/name";
// A pod renews its Lease this often by default (PROXY_HEARTBEAT_S); the Lease's duration is
// kLeaseDurationFactor heartbeats, after which the controller counts the pod's report as stale.
inline constexpr std::chrono::seconds kDefaultHeartbeat{30};
inline constexpr int kLeaseDurationFactor = 3;

}  // namespace cxp
