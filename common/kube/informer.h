#pragma once

#include <atomic>
#include <condition_variable>
#include <functional>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "common/kube/kube_client.h"
#include "common/kube/resource.h"
#include "common/telemetry/json_log.h"

namespace cxp::kube {

// A list-watch cache of one resource type (optionally one namespace and a selector), like
// client-go's informer: lists, then watches from the list's resourceVersion with bookmarks;
// relists on 410 Gone; reconnects with jittered backoff after errors. Every change (add, update,
// delete, and differences found by a relist) is passed to the handler, which should only enqueue
// work. To save memory, objects are cached as compact JSON text (parsed on get/list: a few
// microseconds for the objects we keep), without managedFields, and cut by the transform, if any,
// to the fields their users read (client-go's SetTransform).
class Informer {
 public:
  enum class Change { kAdded, kUpdated, kDeleted };
  using Handler = std::function<void(Change change, const nlohmann::json& object)>;
  // Cuts an object down before it is cached and handed to the handler; metadata.name,
  // metadata.namespace and metadata.resourceVersion must stay.
  using Transform = std::function<void(nlohmann::json& object)>;

  Informer(KubeClient& client, Resource resource, std::string ns, std::string label_selector = "",
           std::string field_selector = "");
  ~Informer();

  void set_handler(Handler handler) { handler_ = std::move(handler); }  // before start()
  void set_transform(Transform transform) { transform_ = std::move(transform); }  // before start()
  // Keeps the value of this label of each object apart, so that list(ns, value) reads only the
  // objects that carry it. Before start().
  void set_index_label(std::string label) { index_label_ = std::move(label); }
  void start();
  // Ends the loop; the owner cancels the client first so that a running watch returns at once.
  void stop();

  bool synced() const { return synced_.load(); }
  // Stores an object the caller just wrote (the API's answer), unless the cache already holds a
  // newer version: a reconcile right after a write then sees it without waiting for the watch.
  void remember(nlohmann::json object);
  std::optional<nlohmann::json> get(const std::string& ns, const std::string& name) const;
  std::vector<nlohmann::json> list(const std::string& ns = "") const;
  // The objects of `ns` whose index label (set_index_label) has `value`.
  std::vector<nlohmann::json> list(const std::string& ns, const std::string& value) const;
  std::size_t size() const;
  const Resource& resource() const { return resource_; }

 private:
  void run();
  bool relist();
  void apply_event(const WatchEvent& event);
  struct Entry {
    std::string text;     // the object, compact JSON
    std::string version;  // metadata.resourceVersion
    std::string index;    // the value of index_label_
  };
  // Strips and transforms `object` (in place) and makes its cache entry.
  Entry prepare(nlohmann::json& object) const;
  std::vector<nlohmann::json> list_matching(const std::string& ns, const std::string* value) const;
  void sleep_for(std::chrono::milliseconds delay);

  KubeClient& client_;
  Resource resource_;
  std::string namespace_;
  std::string label_selector_;
  std::string field_selector_;
  Handler handler_;
  Transform transform_;
  std::string index_label_;
  telemetry::JsonLog log_{"informer"};
  std::mt19937_64 rng_{std::random_device{}()};
  std::string resource_version_;  // informer thread only

  mutable std::mutex mutex_;  // guards cache_ and stopping_ (the condition variable's predicate)
  std::condition_variable wake_;
  std::map<std::string, Entry> cache_;  // "namespace/name" → object
  bool stopping_ = false;
  std::atomic<bool> synced_{false};
  std::thread thread_;
};

std::string object_key(const nlohmann::json& object);

}  // namespace cxp::kube
