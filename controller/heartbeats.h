#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

namespace cxp::controller {

// When the controller last saw each pod's heartbeat Lease renewed, by its own steady clock: a
// report is fresh for the Lease's duration after the controller saw it renewed, whatever the
// pod's clock says (the node lifecycle controller's rule, KEP-589). A Lease first seen (e.g.
// after the controller starts) counts as renewed then: one duration of grace.
class HeartbeatClock {
 public:
  using Clock = std::chrono::steady_clock;
  enum class Seen {
    kReportChanged,  // new Lease, or its report changed: the status may change
    kRevived,        // renewed after it had expired: the pod counts again
    kRenewed,        // only renewed: nothing a status shows changed
  };

  Seen observe(const nlohmann::json& lease, Clock::time_point now);
  void forget(const std::string& key);  // "namespace/name"
  // How much longer the Lease `key` is fresh; nullopt when expired or never seen.
  std::optional<std::chrono::milliseconds> fresh_for(const std::string& key,
                                                     Clock::time_point now) const;

  // The Lease duration a pod may claim (seconds); out-of-range values are clamped.
  static constexpr std::int64_t kMinDuration = 1;
  static constexpr std::int64_t kMaxDuration = 3600;

 private:
  struct Beat {
    std::string renew_time;
    std::string report;
    std::chrono::seconds duration{0};
    Clock::time_point observed;
  };
  mutable std::mutex mutex_;
  std::map<std::string, Beat> beats_;
};

// Paces the status writes that the pods' report changes cause: at most one per CodexProxy per
// `window`. A change after a quiet window is written at once (leading edge); changes within the
// window wait for its end and go out together (trailing edge). Pure but for the lock: time is
// passed in.
class ReportWindow {
 public:
  using Clock = std::chrono::steady_clock;
  explicit ReportWindow(std::chrono::milliseconds window) : window_(window) {}
  // How long to wait before the reconcile that writes a report change of `key` (a CodexProxy).
  std::chrono::milliseconds delay(const std::string& key, Clock::time_point now);
  std::size_t size() const;

 private:
  static constexpr std::size_t kPruneAbove = 4096;  // keys of quiet CodexProxies are dropped
  std::chrono::milliseconds window_;
  mutable std::mutex mutex_;
  std::map<std::string, Clock::time_point> flush_;  // the latest flush, done or scheduled
};

// The report a pod's Lease carries, reduced to the fields of a status.pods entry with the types
// and bounds the CRD allows (a pod's annotation is not trusted to be well-formed); `name` set.
nlohmann::json pod_entry_from_lease(const std::string& pod_name, const nlohmann::json& lease);

}  // namespace cxp::controller
