#include "controller/controller_metrics.h"

#include <prometheus/text_serializer.h>

#include <sstream>

#include "controller/work_queue.h"

namespace cxp::controller {

using prometheus::BuildCounter;
using prometheus::BuildGauge;
using prometheus::BuildHistogram;

ControllerMetrics::ControllerMetrics(std::string api_host, std::string lease_name)
    : api_host_(std::move(api_host)),
      reconcile_total_(BuildCounter()
                           .Name("controller_runtime_reconcile_total")
                           .Help("Total number of reconciliations per controller and result")
                           .Register(*registry_)),
      reconcile_errors_(BuildCounter()
                            .Name("controller_runtime_reconcile_errors_total")
                            .Help("Total number of reconciliation errors per controller")
                            .Register(*registry_)
                            .Add({{"controller", kController}})),
      reconcile_time_(BuildHistogram()
                          .Name("controller_runtime_reconcile_time_seconds")
                          .Help("Length of time per reconciliation per controller")
                          .Register(*registry_)
                          .Add({{"controller", kController}},
                               prometheus::Histogram::BucketBoundaries{
                                   0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30})),
      active_workers_(BuildGauge()
                          .Name("controller_runtime_active_workers")
                          .Help("Number of currently used workers per controller")
                          .Register(*registry_)
                          .Add({{"controller", kController}})),
      depth_(BuildGauge()
                 .Name("workqueue_depth")
                 .Help("Current depth of workqueue")
                 .Register(*registry_)
                 .Add({{"name", kController}})),
      adds_(BuildCounter()
                .Name("workqueue_adds_total")
                .Help("Total number of adds handled by workqueue")
                .Register(*registry_)
                .Add({{"name", kController}})),
      retries_(BuildCounter()
                   .Name("workqueue_retries_total")
                   .Help("Total number of retries handled by workqueue")
                   .Register(*registry_)
                   .Add({{"name", kController}})),
      leader_(BuildGauge()
                  .Name("leader_election_master_status")
                  .Help("Gauge of if the reporting system is master of the relevant lease, 0 "
                        "indicates backup, 1 indicates master")
                  .Register(*registry_)
                  .Add({{"name", lease_name}})),
      requests_(BuildCounter()
                    .Name("rest_client_requests_total")
                    .Help("Number of HTTP requests, partitioned by status code, method, and host")
                    .Register(*registry_)),
      writes_(BuildCounter()
                  .Name("codexproxy_controller_object_writes_total")
                  .Help("Writes (server-side applies and patches) to objects the controller "
                        "manages, by resource")
                  .Register(*registry_)),
      process_(*registry_) {
  BuildGauge()
      .Name("codexproxy_controller_build_info")
      .Help("1, labelled with the controller's version")
      .Register(*registry_)
      .Add({{"version", CXP_VERSION}})
      .Set(1);
  for (const char* result : {"success", "error", "requeue", "requeue_after"}) {
    reconcile_total_.Add({{"controller", kController}, {"result", result}});
  }
}

void ControllerMetrics::observe_reconcile(std::string_view result, double seconds) {
  reconcile_total_.Add({{"controller", kController}, {"result", std::string(result)}}).Increment();
  if (result == "error") reconcile_errors_.Increment();
  reconcile_time_.Observe(seconds);
}

void ControllerMetrics::observe_request(std::string_view method, int status) {
  requests_
      .Add({{"code", status == 0 ? "<error>" : std::to_string(status)},
            {"host", api_host_},
            {"method", std::string(method)}})
      .Increment();
}

void ControllerMetrics::observe_object_write(std::string_view resource) {
  writes_.Add({{"resource", std::string(resource)}}).Increment();
}

void ControllerMetrics::set_leading(bool leading) {
  leader_.Set(leading ? 1 : 0);
}

void ControllerMetrics::set_active_workers(int workers) {
  active_workers_.Set(workers);
}

std::string ControllerMetrics::scrape(const WorkQueue& queue) {
  {
    std::lock_guard lock(scrape_mutex_);
    depth_.Set(static_cast<double>(queue.depth()));
    const auto adds = queue.adds_total();
    const auto retries = queue.retries_total();
    adds_.Increment(static_cast<double>(adds - adds_seen_));
    retries_.Increment(static_cast<double>(retries - retries_seen_));
    adds_seen_ = adds;
    retries_seen_ = retries;
    process_.update();
  }
  std::ostringstream out;
  prometheus::TextSerializer().Serialize(out, registry_->Collect());
  return out.str();
}

}  // namespace cxp::controller
