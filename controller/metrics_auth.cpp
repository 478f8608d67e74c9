#include "controller/metrics_auth.h"

#include "common/digest.h"

namespace cxp::controller {

using nlohmann::json;
using Clock = std::chrono::steady_clock;

namespace {
constexpr std::chrono::seconds kAllowedTtl{60};
constexpr std::chrono::seconds kRefusedTtl{10};
constexpr std::size_t kMaxCached = 1024;
}  // namespace

const char* to_string(MetricsAuthorizer::Verdict verdict) {
  switch (verdict) {
    case MetricsAuthorizer::Verdict::kAllowed:
      return "allowed";
    case MetricsAuthorizer::Verdict::kUnauthenticated:
      return "unauthenticated";
    case MetricsAuthorizer::Verdict::kForbidden:
      return "forbidden";
    case MetricsAuthorizer::Verdict::kUnavailable:
      return "unavailable";
    case MetricsAuthorizer::Verdict::kBusy:
      return "busy";
  }
  return "unavailable";
}

MetricsAuthorizer::MetricsAuthorizer(kube::KubeClient& client, std::string path,
                                     std::size_t max_queued)
    : client_(client), path_(std::move(path)), max_queued_(max_queued) {
  thread_ = std::thread([this] { run(); });
}

MetricsAuthorizer::~MetricsAuthorizer() {
  stop();
}

void MetricsAuthorizer::stop() {
  {
    std::lock_guard lock(queue_mutex_);
    if (stopping_) return;
    stopping_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
  // Whoever still waits hears that no decision will come.
  for (auto& [token, done] : queue_)
    done({Verdict::kUnavailable, "", "the controller is stopping"});
  queue_.clear();
}

std::optional<MetricsAuthorizer::Decision> MetricsAuthorizer::cached(std::string_view token) {
  const auto key = to_hex(sha256(token));
  std::lock_guard lock(cache_mutex_);
  const auto found = cache_.find(key);
  if (found == cache_.end()) return std::nullopt;
  if (Clock::now() >= found->second.expires) {
    order_.erase(found->second.order);
    cache_.erase(found);
    return std::nullopt;
  }
  return found->second.decision;
}

void MetricsAuthorizer::remember(const std::string& key, const Decision& decision) {
  if (decision.verdict == Verdict::kUnavailable || decision.verdict == Verdict::kBusy) return;
  const auto ttl = decision.verdict == Verdict::kAllowed ? kAllowedTtl : kRefusedTtl;
  std::lock_guard lock(cache_mutex_);
  if (const auto found = cache_.find(key); found != cache_.end()) {
    order_.erase(found->second.order);
    cache_.erase(found);
  }
  while (cache_.size() >= kMaxCached) {
    cache_.erase(order_.front());
    order_.pop_front();
  }
  order_.push_back(key);
  cache_[key] = {decision, Clock::now() + ttl, std::prev(order_.end())};
}

void MetricsAuthorizer::review_async(std::string token, Done done) {
  {
    std::lock_guard lock(queue_mutex_);
    if (!stopping_ && queue_.size() < max_queued_) {
      queue_.emplace_back(std::move(token), std::move(done));
      wake_.notify_one();
      return;
    }
  }
  done({Verdict::kBusy, "", "too many reviews in flight"});
}

void MetricsAuthorizer::run() {
  for (;;) {
    std::pair<std::string, Done> item;
    {
      std::unique_lock lock(queue_mutex_);
      wake_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
      if (stopping_) return;
      item = std::move(queue_.front());
      queue_.pop_front();
    }
    // The same token may have been reviewed while this one waited.
    auto decision = cached(item.first);
    item.second(decision ? *decision : review(item.first));
  }
}

MetricsAuthorizer::Decision MetricsAuthorizer::review(std::string_view token) {
  namespace res = kube::resources;
  const auto key = to_hex(sha256(token));
  const json token_review = {{"apiVersion", "authentication.k8s.io/v1"},
                             {"kind", "TokenReview"},
                             {"spec", {{"token", std::string(token)}}}};
  auto reviewed = client_.create(res::kTokenReviews, "", token_review);
  if (!reviewed.ok()) {
    return {Verdict::kUnavailable, "", "TokenReview failed: " + reviewed.describe()};
  }
  const auto status = reviewed.object.value("status", json::object());
  if (!status.value("authenticated", false)) {
    Decision decision{Verdict::kUnauthenticated, "", "the token was not accepted"};
    remember(key, decision);
    return decision;
  }
  const auto user = status.value("user", json::object());
  const auto username = user.value("username", "");
  json spec = {{"user", username}, {"nonResourceAttributes", {{"path", path_}, {"verb", "get"}}}};
  if (user.contains("groups")) spec["groups"] = user["groups"];
  if (user.contains("uid")) spec["uid"] = user["uid"];
  if (user.contains("extra")) spec["extra"] = user["extra"];
  const json access_review = {
      {"apiVersion", "authorization.k8s.io/v1"}, {"kind", "SubjectAccessReview"}, {"spec", spec}};
  auto authorized = client_.create(res::kSubjectAccessReviews, "", access_review);
  if (!authorized.ok()) {
    return {Verdict::kUnavailable, username,
            "SubjectAccessReview failed: " + authorized.describe()};
  }
  const auto access = authorized.object.value("status", json::object());
  Decision decision;
  decision.user = username;
  if (access.value("allowed", false)) {
    decision.verdict = Verdict::kAllowed;
  } else {
    decision.verdict = Verdict::kForbidden;
    decision.detail = "user \"" + username + "\" may not get " + path_;
    if (const auto reason = access.value("reason", ""); !reason.empty()) {
      decision.detail += " (" + reason + ")";
    }
  }
  remember(key, decision);
  return decision;
}

}  // namespace cxp::controller
