#include "common/kube/informer.h"

#include "common/backoff.h"

namespace cxp::kube {
namespace {

using nlohmann::json;

std::string resource_version_of(const json& object) {
  const auto metadata = object.find("metadata");
  if (metadata == object.end() || !metadata->is_object()) return "";
  return metadata->value("resourceVersion", "");
}

void strip(json& object) {
  if (auto metadata = object.find("metadata"); metadata != object.end() && metadata->is_object()) {
    metadata->erase("managedFields");
  }
}

}  // namespace

std::string object_key(const json& object) {
  const auto& metadata = object.at("metadata");
  return metadata.value("namespace", "") + "/" + metadata.value("name", "");
}

Informer::Informer(KubeClient& client, Resource resource, std::string ns,
                   std::string label_selector, std::string field_selector)
    : client_(client),
      resource_(std::move(resource)),
      namespace_(std::move(ns)),
      label_selector_(std::move(label_selector)),
      field_selector_(std::move(field_selector)) {}

Informer::~Informer() {
  stop();
}

void Informer::start() {
  thread_ = std::thread([this] { run(); });
}

void Informer::stop() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void Informer::remember(json object) {
  if (!object.is_object() || !object.contains("metadata")) return;
  strip(object);
  const auto key = object_key(object);
  const auto version = resource_version_of(object);
  std::lock_guard lock(mutex_);
  const auto found = cache_.find(key);
  if (found != cache_.end()) {
    // resourceVersions are opaque, but etcd's are integers: keep whichever is newer.
    try {
      if (std::stoull(resource_version_of(found->second)) >= std::stoull(version)) return;
    } catch (const std::exception&) {
      return;
    }
  }
  cache_[key] = std::move(object);
}

std::optional<json> Informer::get(const std::string& ns, const std::string& name) const {
  std::lock_guard lock(mutex_);
  const auto found = cache_.find(ns + "/" + name);
  if (found == cache_.end()) return std::nullopt;
  return found->second;
}

std::vector<json> Informer::list(const std::string& ns) const {
  std::lock_guard lock(mutex_);
  std::vector<json> out;
  const std::string prefix = ns.empty() ? "" : ns + "/";
  for (auto it = cache_.lower_bound(prefix); it != cache_.end(); ++it) {
    if (!prefix.empty() && it->first.compare(0, prefix.size(), prefix) != 0) break;
    out.push_back(it->second);
  }
  return out;
}

std::size_t Informer::size() const {
  std::lock_guard lock(mutex_);
  return cache_.size();
}

void Informer::sleep_for(std::chrono::milliseconds delay) {
  std::unique_lock lock(mutex_);
  wake_.wait_for(lock, delay, [this] { return stopping_; });
}

bool Informer::relist() {
  ListOptions options;
  options.label_selector = label_selector_;
  options.field_selector = field_selector_;
  auto result = client_.list_all(resource_, namespace_, options);
  if (!result.ok()) {
    log_.warn("list_failed", {{"resource", resource_.plural}, {"error", result.describe()}});
    return false;
  }
  std::map<std::string, json> fresh;
  for (auto& item : result.object["items"]) {
    // Items of a list carry no kind/apiVersion; restore them so handlers see whole objects.
    item["kind"] = resource_.kind;
    item["apiVersion"] = resource_.api_version();
    strip(item);
    fresh.emplace(object_key(item), std::move(item));
  }
  std::vector<std::pair<Change, json>> changes;
  {
    std::lock_guard lock(mutex_);
    for (const auto& [key, object] : cache_) {
      if (!fresh.count(key)) changes.emplace_back(Change::kDeleted, object);
    }
    for (const auto& [key, object] : fresh) {
      const auto old = cache_.find(key);
      if (old == cache_.end()) {
        changes.emplace_back(Change::kAdded, object);
      } else if (resource_version_of(old->second) != resource_version_of(object)) {
        changes.emplace_back(Change::kUpdated, object);
      }
    }
    cache_ = std::move(fresh);
  }
  resource_version_ = result.object["metadata"].value("resourceVersion", "");
  synced_ = true;
  if (handler_) {
    for (const auto& [change, object] : changes) handler_(change, object);
  }
  return true;
}

void Informer::apply_event(const WatchEvent& event) {
  const auto version = resource_version_of(event.object);
  if (!version.empty()) resource_version_ = version;
  if (event.type == "BOOKMARK") return;
  json object = event.object;
  strip(object);
  const auto key = object_key(object);
  Change change;
  {
    std::lock_guard lock(mutex_);
    if (event.type == "DELETED") {
      cache_.erase(key);
      change = Change::kDeleted;
    } else {
      const auto [it, inserted] = cache_.insert_or_assign(key, object);
      change = inserted ? Change::kAdded : Change::kUpdated;
    }
  }
  if (handler_) handler_(change, object);
}

void Informer::run() {
  const JitteredBackoff backoff(std::chrono::milliseconds(500), std::chrono::seconds(30));
  std::uint32_t failures = 0;
  bool need_list = true;
  std::uniform_int_distribution<int> watch_seconds(240, 300);  // spread reconnects over time
  for (;;) {
    {
      std::lock_guard lock(mutex_);
      if (stopping_) return;
    }
    if (need_list) {
      if (!relist()) {
        sleep_for(backoff.delay(++failures, rng_));
        continue;
      }
      need_list = false;
    }
    WatchOptions options;
    options.label_selector = label_selector_;
    options.field_selector = field_selector_;
    options.resource_version = resource_version_;
    options.timeout_seconds = watch_seconds(rng_);
    std::size_t events = 0;
    const auto result = client_.watch(resource_, namespace_, options, [&](const WatchEvent& event) {
      ++events;
      apply_event(event);
    });
    if (client_.cancelled()) return;
    if (result.ok()) {
      failures = 0;
      continue;
    }
    if (result.error == ErrorKind::kGone) {
      log_.info("watch_expired_relisting", {{"resource", resource_.plural}});
      need_list = true;
      continue;
    }
    if (events > 0) failures = 0;
    log_.warn("watch_failed", {{"resource", resource_.plural}, {"error", result.describe()}});
    sleep_for(backoff.delay(++failures, rng_));
  }
}

}  // namespace cxp::kube
