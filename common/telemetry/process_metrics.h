#pragma once

#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/registry.h>

namespace cxp::telemetry {

// The process_* series Prometheus' client libraries export, read from /proc/self at each scrape:
// process_cpu_seconds_total, process_resident_memory_bytes, process_virtual_memory_bytes,
// process_open_fds, process_max_fds, process_start_time_seconds. A value /proc cannot give (a
// hardened node) stays at its last reading.
class ProcessMetrics {
 public:
  explicit ProcessMetrics(prometheus::Registry& registry);
  void update();

 private:
  prometheus::Counter& cpu_;
  prometheus::Gauge& resident_;
  prometheus::Gauge& virtual_;
  prometheus::Gauge& open_fds_;
  prometheus::Gauge& max_fds_;
  prometheus::Gauge& start_time_;
};

}  // namespace cxp::telemetry
