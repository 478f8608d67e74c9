#pragma once

#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <list>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>

#include "common/kube/kube_client.h"

namespace cxp::controller {

// Who may read the controller's /metrics (controller-runtime's --metrics-secure): the bearer token
// is reviewed by the API server (TokenReview), then the user it names must be allowed `get` on the
// non-resource URL /metrics (SubjectAccessReview; the chart's `<release>-metrics-reader`
// ClusterRole grants it). Decisions are cached by the token's SHA-256 (allowed 60 s, refused 10 s,
// at most 1024 tokens), so a scraper costs the API server two requests a minute. Reviews run on a
// thread of their own behind a bounded queue: the serving thread never waits for the API server.
class MetricsAuthorizer {
 public:
  enum class Verdict { kAllowed, kUnauthenticated, kForbidden, kUnavailable, kBusy };
  struct Decision {
    Verdict verdict = Verdict::kUnavailable;
    std::string user;    // who the token belongs to (never the token)
    std::string detail;  // why not, for the answer and the log
  };
  using Done = std::function<void(const Decision&)>;

  explicit MetricsAuthorizer(kube::KubeClient& client, std::string path = "/metrics",
                             std::size_t max_queued = 16);
  ~MetricsAuthorizer();
  MetricsAuthorizer(const MetricsAuthorizer&) = delete;
  MetricsAuthorizer& operator=(const MetricsAuthorizer&) = delete;

  // A cached decision, if there is a fresh one (no API call).
  std::optional<Decision> cached(std::string_view token);
  // Reviews the token on the review thread and calls `done` there; with a full queue `done` is
  // called at once with kBusy.
  void review_async(std::string token, Done done);
  // The review itself (blocking; API calls). Public for tests.
  Decision review(std::string_view token);
  void stop();

 private:
  struct Entry {
    Decision decision;
    std::chrono::steady_clock::time_point expires;
    std::list<std::string>::iterator order;
  };
  void remember(const std::string& key, const Decision& decision);
  void run();

  kube::KubeClient& client_;
  std::string path_;
  std::size_t max_queued_;

  std::mutex cache_mutex_;
  std::unordered_map<std::string, Entry> cache_;  // by the token's SHA-256 (hex)
  std::list<std::string> order_;                  // oldest first

  std::mutex queue_mutex_;
  std::condition_variable wake_;
  std::deque<std::pair<std::string, Done>> queue_;
  bool stopping_ = false;
  std::thread thread_;
};

const char* to_string(MetricsAuthorizer::Verdict verdict);

}  // namespace cxp::controller
