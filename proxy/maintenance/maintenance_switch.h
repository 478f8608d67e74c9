#pragma once

#include <string>

#include "common/telemetry/json_log.h"

namespace cxp::proxy {

struct MaintenanceState {
  bool enabled = false;
  int retry_after_s = 120;
};

// The one maintenance switch. Set at startup from PROXY_MAINTENANCE_MODE, toggled by
// /internal/maintenance (and later by the operator's settings); every change is logged
// (`maintenance_toggled`) and read by the API gate, the probes and the metrics.
class MaintenanceSwitch {
 public:
  explicit MaintenanceSwitch(MaintenanceState initial) : state_(initial) {}

  const MaintenanceState& state() const { return state_; }
  // Applies a new state; `source` says who asked ("admin_api", "config", …).
  void set(MaintenanceState next, const std::string& source);

 private:
  MaintenanceState state_;
  telemetry::JsonLog log_{"maintenance"};
};

}  // namespace cxp::proxy
