#include "proxy/maintenance/maintenance_switch.h"

namespace cxp::proxy {

void MaintenanceSwitch::set(MaintenanceState next, const std::string& source) {
  const bool changed = next.enabled != state_.enabled || next.retry_after_s != state_.retry_after_s;
  state_ = next;
  if (changed) {
    log_.info("maintenance_toggled", {{"maintenance_mode", next.enabled},
                                      {"retry_after_s", next.retry_after_s},
                                      {"source", source}});
    if (observer_) observer_(state_);
  }
}

}  // namespace cxp::proxy
