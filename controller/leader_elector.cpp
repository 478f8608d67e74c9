#include "controller/leader_elector.h"

#include "common/utc_time.h"

namespace cxp::controller {

using nlohmann::json;
using Clock = std::chrono::steady_clock;

LeaderElector::LeaderElector(kube::KubeClient& client, LeaderElectionConfig config)
    : client_(client), config_(std::move(config)) {}

LeaderElector::~LeaderElector() {
  stop_and_release();
}

void LeaderElector::start(std::function<void()> on_started, std::function<void()> on_stopped) {
  on_started_ = std::move(on_started);
  on_stopped_ = std::move(on_stopped);
  thread_ = std::thread([this] { run(); });
}

bool LeaderElector::wait(std::chrono::milliseconds delay) {
  std::unique_lock lock(mutex_);
  return !wake_.wait_for(lock, delay, [this] { return stopping_; });
}

json LeaderElector::lease_spec(const json& previous, bool taking_over) const {
  const auto now = format_utc(std::chrono::system_clock::now(), UtcFormat::kMicros);
  json spec = previous.is_object() ? previous : json::object();
  spec["holderIdentity"] = config_.identity;
  spec["leaseDurationSeconds"] =
      std::chrono::duration_cast<std::chrono::seconds>(config_.lease_duration).count();
  spec["renewTime"] = now;
  if (taking_over) {
    spec["acquireTime"] = now;
    spec["leaseTransitions"] = spec.value("leaseTransitions", 0) + (previous.is_object() ? 1 : 0);
  }
  return spec;
}

bool LeaderElector::try_acquire_or_renew() {
  namespace res = kube::resources;
  auto current = client_.get(res::kLeases, config_.namespace_name, config_.lease_name);
  if (current.error == kube::ErrorKind::kNotFound) {
    json lease = {
        {"apiVersion", "coordination.k8s.io/v1"},
        {"kind", "Lease"},
        {"metadata", {{"name", config_.lease_name}, {"namespace", config_.namespace_name}}},
        {"spec", lease_spec(json(), true)}};
    auto created = client_.create(res::kLeases, config_.namespace_name, lease);
    if (!created.ok()) {
      log_.warn("lease_create_failed", {{"error", created.describe()}});
      return false;
    }
    last_lease_ = created.object;
    return true;
  }
  if (!current.ok()) {
    log_.warn("lease_get_failed", {{"error", current.describe()}});
    return false;
  }
  const auto& spec = current.object.value("spec", json::object());
  const auto holder = spec.value("holderIdentity", "");
  const auto record = holder + "|" + spec.value("renewTime", "");
  const auto now = Clock::now();
  if (record != observed_record_) {
    observed_record_ = record;
    observed_at_ = now;
  }
  const bool mine = holder == config_.identity;
  const auto duration = std::chrono::seconds(spec.value("leaseDurationSeconds", 15));
  if (!mine && !holder.empty() && now < observed_at_ + duration) return false;  // held by another
  json lease = current.object;
  lease["spec"] = lease_spec(spec, !mine);
  auto updated = client_.replace(res::kLeases, config_.namespace_name, config_.lease_name, lease);
  if (!updated.ok()) {
    // 409: someone else wrote it first; we will look again after retry_period.
    if (updated.error != kube::ErrorKind::kConflict) {
      log_.warn("lease_update_failed", {{"error", updated.describe()}});
    }
    return false;
  }
  last_lease_ = updated.object;
  if (!mine)
    log_.info("lease_acquired", {{"lease", config_.lease_name}, {"previous_holder", holder}});
  return true;
}

void LeaderElector::run() {
  std::uniform_real_distribution<double> jitter(1.0, 1.2);
  // Acquire.
  for (;;) {
    if (try_acquire_or_renew()) break;
    const auto delay = std::chrono::milliseconds(
        static_cast<std::int64_t>(config_.retry_period.count() * jitter(rng_)));
    if (!wait(delay)) return;
  }
  leading_ = true;
  log_.info("started_leading", {{"identity", config_.identity}, {"lease", config_.lease_name}});
  if (on_started_) on_started_();
  // Renew.
  auto last_renew = Clock::now();
  while (wait(config_.retry_period)) {
    if (try_acquire_or_renew()) {
      last_renew = Clock::now();
      continue;
    }
    if (Clock::now() - last_renew >= config_.renew_deadline) {
      leading_ = false;
      log_.error("stopped_leading",
                 {{"identity", config_.identity},
                  {"reason", "could not renew the lease within the renew deadline"}});
      if (on_stopped_) on_stopped_();
      return;
    }
  }
}

void LeaderElector::stop_and_release() {
  {
    std::lock_guard lock(mutex_);
    if (stopping_) return;
    stopping_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
  if (!leading_.exchange(false) || !last_lease_.is_object()) return;
  // Hand over: an empty holder and a 1 s duration let a standby take over at once.
  json lease = last_lease_;
  lease["spec"]["holderIdentity"] = "";
  lease["spec"]["leaseDurationSeconds"] = 1;
  lease["spec"]["renewTime"] = format_utc(std::chrono::system_clock::now(), UtcFormat::kMicros);
  // A client of its own: the shared one may have been cancelled to end stuck calls at shutdown.
  kube::ClientOptions options;
  options.user_agent = "codexproxy-controller/" CXP_VERSION;
  options.request_timeout = std::chrono::seconds(5);
  kube::KubeClient client(client_.config(), options);
  const auto result =
      client.replace(kube::resources::kLeases, config_.namespace_name, config_.lease_name, lease);
  if (result.ok()) {
    log_.info("lease_released", {{"lease", config_.lease_name}});
  } else {
    log_.warn("lease_release_failed", {{"error", result.describe()}});
  }
}

}  // namespace cxp::controller
