#include "controller/heartbeats.h"

#include <algorithm>
#include <array>
#include <string_view>

#include "common/json_fields.h"
#include "common/kube/informer.h"
#include "common/pod_heartbeat.h"
#include "common/utf8.h"

namespace cxp::controller {

using nlohmann::json;

namespace {

std::string report_text(const json& lease) {
  return string_field(field_of(field_of(lease, "metadata"), "annotations"), kPodReportAnnotation);
}

}  // namespace

HeartbeatClock::Seen HeartbeatClock::observe(const json& lease, Clock::time_point now) {
  const auto key = kube::object_key(lease);
  const auto& spec = field_of(lease, "spec");
  const auto renew = string_field(spec, "renewTime");
  const auto duration = std::chrono::seconds(std::clamp(
      int_field(spec, "leaseDurationSeconds", kMinDuration), kMinDuration, kMaxDuration));
  auto report = report_text(lease);
  std::lock_guard lock(mutex_);
  const auto found = beats_.find(key);
  if (found == beats_.end()) {
    beats_[key] = Beat{renew, std::move(report), duration, now};
    return Seen::kReportChanged;
  }
  auto& beat = found->second;
  const bool was_fresh = now < beat.observed + beat.duration;
  const bool report_changed = beat.report != report;
  if (beat.renew_time != renew) beat.observed = now;
  beat.renew_time = renew;
  beat.duration = duration;
  beat.report = std::move(report);
  if (report_changed) return Seen::kReportChanged;
  return was_fresh ? Seen::kRenewed : Seen::kRevived;
}

void HeartbeatClock::forget(const std::string& key) {
  std::lock_guard lock(mutex_);
  beats_.erase(key);
}

std::optional<std::chrono::milliseconds> HeartbeatClock::fresh_for(const std::string& key,
                                                                   Clock::time_point now) const {
  std::lock_guard lock(mutex_);
  const auto found = beats_.find(key);
  if (found == beats_.end()) return std::nullopt;
  const auto expires = found->second.observed + found->second.duration;
  if (now >= expires) return std::nullopt;
  return std::chrono::duration_cast<std::chrono::milliseconds>(expires - now);
}

std::chrono::milliseconds ReportWindow::delay(const std::string& key, Clock::time_point now) {
  std::lock_guard lock(mutex_);
  if (flush_.size() > kPruneAbove) {
    for (auto it = flush_.begin(); it != flush_.end();) {
      it = it->second + window_ <= now ? flush_.erase(it) : std::next(it);
    }
  }
  auto [it, added] = flush_.try_emplace(key, now);
  if (added || it->second + window_ <= now) {
    it->second = now;  // quiet for a window: at once
    return std::chrono::milliseconds(0);
  }
  // A flush is scheduled (later than now: it takes this change too) or was done less than a
  // window ago (the next one at the window's end).
  if (it->second < now) it->second += window_;
  return std::chrono::ceil<std::chrono::milliseconds>(it->second - now);
}

std::size_t ReportWindow::size() const {
  std::lock_guard lock(mutex_);
  return flush_.size();
}

json pod_entry_from_lease(const std::string& pod_name, const json& lease) {
  json entry = {{"name", pod_name}};
  json report;
  try {
    report = json::parse(report_text(lease));
  } catch (const json::exception&) {
    return entry;  // unreadable: the pod's entry names it, nothing more
  }
  static constexpr std::array<std::string_view, 7> kStates = {
      "starting", "handshaking", "ready", "backoff", "draining", "stopped", "failed"};
  const auto state = string_field(report, "workerState");
  if (std::find(kStates.begin(), kStates.end(), state) != kStates.end()) {
    entry["workerState"] = state;
  }
  if (const auto& ready = field_of(report, "ready"); ready.is_boolean()) entry["ready"] = ready;
  if (const auto& m = field_of(report, "maintenance"); m.is_boolean()) entry["maintenance"] = m;
  const auto count = [&](const char* key, std::int64_t max) {
    const auto& value = field_of(report, key);
    if (value.is_number_integer())
      entry[key] = std::clamp<std::int64_t>(value.get<std::int64_t>(), 0, max);
  };
  count("restartsTotal", INT64_MAX);
  count("restartStreak", INT32_MAX);
  count("backoffMs", INT64_MAX);
  count("recyclesTotal", INT64_MAX);
  count("settingsGeneration", INT64_MAX);
  count("inFlight", INT32_MAX);
  if (const auto& code = field_of(report, "lastExitCode"); code.is_number_integer()) {
    entry["lastExitCode"] =
        std::clamp<std::int64_t>(code.get<std::int64_t>(), INT32_MIN, INT32_MAX);
  }
  if (const auto& error = field_of(report, "settingsError"); error.is_string()) {
    entry["settingsError"] = utf8_prefix(error.get<std::string>(), 2000);
  }
  return entry;
}

}  // namespace cxp::controller
