#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "common/kube/api_result.h"
#include "common/kube/kube_config.h"
#include "common/kube/resource.h"

namespace cxp::kube {

struct ListOptions {
  std::string label_selector;
  std::string field_selector;
  std::string resource_version;
  int limit = 500;  // page size; list_each follows `continue`
};

struct WatchOptions {
  std::string label_selector;
  std::string field_selector;
  std::string resource_version;
  int timeout_seconds = 300;  // the server ends the watch after this; the client waits 30 s longer
  bool bookmarks = true;
};

struct WatchEvent {
  std::string type;  // ADDED, MODIFIED, DELETED, BOOKMARK
  nlohmann::json object;
};

struct ClientOptions {
  std::string user_agent = "codexproxy";
  std::chrono::milliseconds request_timeout{30000};  // every non-watch request
  double qps = 50;                                   // client-side token bucket
  double burst = 100;
};

// A synchronous Kubernetes API client over cpprestsdk. Thread-safe: calls may come from several
// threads at once. Every request has a timeout; watches end when the server closes them, on
// error, or when cancel() is called. No call blocks forever.
class KubeClient {
 public:
  explicit KubeClient(KubeConfig config, ClientOptions options = {});
  ~KubeClient();
  KubeClient(const KubeClient&) = delete;
  KubeClient& operator=(const KubeClient&) = delete;

  ApiResult get(const Resource& resource, std::string_view ns, std::string_view name);
  // One page.
  ApiResult list(const Resource& resource, std::string_view ns, const ListOptions& options,
                 std::string_view continue_token = "");
  // All pages, each item handed to `on_item` as its page arrives (one page is held at a time);
  // object = the first page's without items: {"metadata": {"resourceVersion": ...}}.
  ApiResult list_each(const Resource& resource, std::string_view ns, const ListOptions& options,
                      const std::function<void(nlohmann::json& item)>& on_item);
  ApiResult create(const Resource& resource, std::string_view ns, const nlohmann::json& object);
  // PUT: optimistic concurrency through metadata.resourceVersion.
  ApiResult replace(const Resource& resource, std::string_view ns, std::string_view name,
                    const nlohmann::json& object);
  ApiResult remove(const Resource& resource, std::string_view ns, std::string_view name);
  // Server-side apply (application/apply-patch+yaml) as `field_manager`, on the object or on a
  // subresource such as "status".
  ApiResult apply(const Resource& resource, std::string_view ns, std::string_view name,
                  const nlohmann::json& object, std::string_view field_manager,
                  std::string_view subresource = "", bool force = true);
  // RFC 6902 JSON patch.
  ApiResult json_patch(const Resource& resource, std::string_view ns, std::string_view name,
                       const nlohmann::json& operations, std::string_view subresource = "");

  // Streams watch events into `on_event` until the server ends the watch (ok result), the watch
  // fails (the error; kGone when the resourceVersion is too old, in the status or as an ERROR
  // event), or cancel() is called (kTransport, reason "cancelled").
  ApiResult watch(const Resource& resource, std::string_view ns, const WatchOptions& options,
                  const std::function<void(const WatchEvent&)>& on_event);

  // Called after every request with the HTTP method and status (0: no answer).
  using RequestObserver = std::function<void(std::string_view method, int status)>;
  void set_request_observer(RequestObserver observer);

  // Cancels in-flight calls and makes every later call fail at once (for shutdown).
  void cancel();
  bool cancelled() const { return cancelled_.load(); }

  const KubeConfig& config() const { return config_; }

 private:
  struct Impl;
  ApiResult send(std::string_view method, const std::string& path_query, const std::string& body,
                 const std::string& content_type);
  std::string bearer_token();
  void take_token();

  KubeConfig config_;
  ClientOptions options_;
  std::unique_ptr<Impl> impl_;
  std::atomic<bool> cancelled_{false};
  RequestObserver observer_;

  std::mutex token_mutex_;  // guards the cached token and the rate-limit bucket below
  std::string cached_token_;
  std::chrono::steady_clock::time_point token_read_at_{};
  double bucket_tokens_;
  std::chrono::steady_clock::time_point bucket_at_;
};

}  // namespace cxp::kube
