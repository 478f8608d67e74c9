#pragma once

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include <atomic>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>

#include "common/telemetry/process_metrics.h"

namespace cxp::controller {

class WorkQueue;

// The controller's /metrics, with controller-runtime's and client-go's series names so existing
// dashboards work: controller_runtime_reconcile_total{controller,result},
// controller_runtime_reconcile_errors_total, controller_runtime_reconcile_time_seconds,
// workqueue_depth/adds_total/retries_total{name}, leader_election_master_status{name},
// rest_client_requests_total{code,host,method}; plus codexproxy_controller_object_writes_total
// {resource} (writes to managed objects: what "no write in steady state" is measured with).
// Thread-safe.
class ControllerMetrics {
 public:
  static constexpr const char* kController = "codexproxy";

  ControllerMetrics(std::string api_host, std::string lease_name);

  void observe_reconcile(std::string_view result, double seconds);
  void observe_request(std::string_view method, int status);
  void observe_object_write(std::string_view resource);
  void set_leading(bool leading);
  void set_active_workers(int workers);
  std::string scrape(const WorkQueue& queue);

 private:
  std::shared_ptr<prometheus::Registry> registry_ = std::make_shared<prometheus::Registry>();
  std::string api_host_;
  prometheus::Family<prometheus::Counter>& reconcile_total_;
  prometheus::Counter& reconcile_errors_;
  prometheus::Histogram& reconcile_time_;
  prometheus::Gauge& active_workers_;
  prometheus::Gauge& depth_;
  prometheus::Counter& adds_;
  prometheus::Counter& retries_;
  prometheus::Gauge& leader_;
  prometheus::Family<prometheus::Counter>& requests_;
  prometheus::Family<prometheus::Counter>& writes_;
  telemetry::ProcessMetrics process_;  // process_* series
  std::mutex
      scrape_mutex_;  // guards the last queue totals below and process_ (scrapes may overlap)
  std::uint64_t adds_seen_ = 0;
  std::uint64_t retries_seen_ = 0;
};

}  // namespace cxp::controller
