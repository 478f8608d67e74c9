#pragma once

#include <functional>

#include "common/kube/informer.h"
#include "common/kube/kube_client.h"
#include "common/telemetry/json_log.h"
#include "proxy/reporter/pod_report.h"

namespace cxp::proxy {

// Watches this pod's ConfigMap `<codexproxy>-settings` (only that one: a field selector, which
// is also all its Role allows) and passes every new version's live settings to `apply`, on the
// watch thread. A deleted ConfigMap keeps the last settings (the controller recreates it).
class SettingsWatch {
 public:
  using Apply = std::function<void(const LiveSettings&)>;
  SettingsWatch(kube::KubeClient& client, const PodIdentity& pod, LiveSettings initial,
                Apply apply);

  void start() { informer_.start(); }
  void stop() { informer_.stop(); }
  bool synced() const { return informer_.synced(); }

 private:
  void on_change(kube::Informer::Change change, const nlohmann::json& configmap);

  kube::Informer informer_;
  LiveSettings current_;  // watch thread only
  Apply apply_;
  telemetry::JsonLog log_{"settings_watch"};
};

}  // namespace cxp::proxy
