#pragma once

#include <functional>
#include <string>

#include "common/telemetry/json_log.h"

namespace cxp::proxy {

struct MaintenanceState {
  bool enabled = false;
  int retry_after_s = 120;
};

// The one maintenance switch. Set at startup from PROXY_MAINTENANCE_MODE, toggled by
// /internal/maintenance and by the CodexProxy's settings ConfigMap; every change is logged
// (`maintenance_toggled`) and read by the API gate, the probes and the metrics.
class MaintenanceSwitch {
 public:
  explicit MaintenanceSwitch(MaintenanceState initial) : state_(initial) {}

  const MaintenanceState& state() const { return state_; }
  // Applies a new state; `source` says who asked ("admin_api", "config", …).
  void set(MaintenanceState next, const std::string& source);
  // Called after every change (the status reporter's feed).
  void set_observer(std::function<void(const MaintenanceState&)> observer) {
    observer_ = std::move(observer);
  }

 private:
  MaintenanceState state_;
  std::function<void(const MaintenanceState&)> observer_;
  telemetry::JsonLog log_{"maintenance"};
};

}  // namespace cxp::proxy
