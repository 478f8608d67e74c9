#include "proxy/reporter/settings_watch.h"

namespace cxp::proxy {

SettingsWatch::SettingsWatch(kube::KubeClient& client, const PodIdentity& pod, LiveSettings initial,
                             Apply apply)
    : informer_(client, kube::resources::kConfigMaps, pod.pod_namespace, "",
                "metadata.name=" + pod.settings_configmap()),
      current_(initial),
      apply_(std::move(apply)) {
  informer_.set_handler([this](kube::Informer::Change change, const nlohmann::json& configmap) {
    on_change(change, configmap);
  });
}

void SettingsWatch::on_change(kube::Informer::Change change, const nlohmann::json& configmap) {
  if (change == kube::Informer::Change::kDeleted) {
    log_.warn("settings_configmap_deleted",
              {{"configmap", configmap["metadata"].value("name", "")}});
    return;
  }
  std::vector<std::string> problems;
  current_ =
      parse_live_settings(configmap.value("data", nlohmann::json::object()), current_, problems);
  for (const auto& problem : problems) log_.warn("settings_value_invalid", {{"error", problem}});
  apply_(current_);
}

}  // namespace cxp::proxy
