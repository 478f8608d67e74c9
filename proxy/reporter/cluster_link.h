#pragma once

#include <boost/asio/io_context.hpp>
#include <functional>
#include <memory>

#include "common/kube/kube_client.h"
#include "common/telemetry/json_log.h"
#include "proxy/reporter/pod_report.h"
#include "proxy/reporter/settings_watch.h"
#include "proxy/reporter/status_reporter.h"

namespace cxp::proxy {

// The pod's connection to its CodexProxy: reports state in its heartbeat Lease and applies the live
// settings from the ConfigMap. API trouble never reaches serving: both run on their own threads;
// settings are handed to the io_context with post().
class ClusterLink {
 public:
  using OnSettings = std::function<void(const LiveSettings&)>;  // runs on the io_context

  ClusterLink(kube::KubeConfig config, PodIdentity pod, std::chrono::seconds heartbeat,
              LiveSettings initial, boost::asio::io_context& io, OnSettings on_settings);
  ~ClusterLink();

  void start();
  void report(const PodReport& report) { reporter_.update(report); }
  std::uint64_t reports_written() const { return reporter_.writes(); }
  std::uint64_t reports_failed() const { return reporter_.failures(); }
  // Sends the last report (waiting at most `flush`), then stops watching.
  void stop(std::chrono::milliseconds flush);

 private:
  kube::KubeClient client_;
  StatusReporter reporter_;
  SettingsWatch watch_;
  bool stopped_ = false;
  telemetry::JsonLog log_{"cluster_link"};
};

}  // namespace cxp::proxy
