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

Informer::Entry Informer::prepare(json& object) const {
  strip(object);
  if (transform_) transform_(object);
  Entry entry;
  entry.text = object.dump();
  entry.version = resource_version_of(object);
  if (!index_label_.empty()) {
    const auto metadata = object.find("metadata");
    if (metadata != object.end() && metadata->is_object()) {
      const auto labels = metadata->find("labels");
      if (labels != metadata->end() && labels->is_object()) {
        const auto value = labels->find(index_label_);
        if (value != labels->end() && value->is_string()) entry.index = value->get<std::string>();
      }
    }
  }
  return entry;
}

void Informer::remember(json object) {
  if (!object.is_object() || !object.contains("metadata")) return;
  auto entry = prepare(object);
  const auto key = object_key(object);
  std::lock_guard lock(mutex_);
  const auto found = cache_.find(key);
  if (found != cache_.end()) {
    // resourceVersions are opaque, but etcd's are integers: keep whichever is newer.
    try {
      if (std::stoull(found->second.version) >= std::stoull(entry.version)) return;
    } catch (const std::exception&) {
      return;
    }
  }
  cache_[key] = std::move(entry);
}

std::optional<json> Informer::get(const std::string& ns, const std::string& name) const {
  std::string text;
  {
    std::lock_guard lock(mutex_);
    const auto found = cache_.find(ns + "/" + name);
    if (found == cache_.end()) return std::nullopt;
    text = found->second.text;
  }
  return json::parse(text);  // outside the lock: we wrote it, it parses
}

std::vector<json> Informer::list_matching(const std::string& ns, const std::string* value) const {
  std::vector<std::string> texts;
  {
    std::lock_guard lock(mutex_);
    const std::string prefix = ns.empty() ? "" : ns + "/";
    for (auto it = cache_.lower_bound(prefix); it != cache_.end(); ++it) {
      if (!prefix.empty() && it->first.compare(0, prefix.size(), prefix) != 0) break;
      if (value == nullptr || it->second.index == *value) texts.push_back(it->second.text);
    }
  }
  std::vector<json> out;
  out.reserve(texts.size());
  for (const auto& text : texts) out.push_back(json::parse(text));
  return out;
}

std::vector<json> Informer::list(const std::string& ns) const {
  return list_matching(ns, nullptr);
}

std::vector<json> Informer::list(const std::string& ns, const std::string& value) const {
  return list_matching(ns, &value);
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
  // Each item is cut down to its cache entry as its page arrives: a relist of thousands of
  // objects never holds them all as parsed JSON.
  std::map<std::string, Entry> fresh;
  const auto result = client_.list_each(resource_, namespace_, options, [&](json& item) {
    // Items of a list carry no kind/apiVersion; restore them so handlers see whole objects.
    item["kind"] = resource_.kind;
    item["apiVersion"] = resource_.api_version();
    auto entry = prepare(item);
    fresh.insert_or_assign(object_key(item), std::move(entry));
  });
  if (!result.ok()) {
    log_.warn("list_failed", {{"resource", resource_.plural}, {"error", result.describe()}});
    return false;
  }
  std::vector<std::pair<Change, std::string>> changes;  // the objects as cached text
  {
    std::lock_guard lock(mutex_);
    for (const auto& [key, entry] : cache_) {
      if (!fresh.count(key)) changes.emplace_back(Change::kDeleted, entry.text);
    }
    for (const auto& [key, entry] : fresh) {
      const auto old = cache_.find(key);
      if (old == cache_.end()) {
        changes.emplace_back(Change::kAdded, entry.text);
      } else if (old->second.version != entry.version) {
        changes.emplace_back(Change::kUpdated, entry.text);
      }
    }
    cache_ = std::move(fresh);
  }
  resource_version_ = result.object["metadata"].value("resourceVersion", "");
  synced_ = true;
  if (handler_) {
    for (const auto& [change, text] : changes) handler_(change, json::parse(text));
  }
  return true;
}

void Informer::apply_event(const WatchEvent& event) {
  const auto version = resource_version_of(event.object);
  if (!version.empty()) resource_version_ = version;
  if (event.type == "BOOKMARK") return;
  json object = event.object;
  auto entry = prepare(object);
  const auto key = object_key(object);
  Change change;
  {
    std::lock_guard lock(mutex_);
    if (event.type == "DELETED") {
      cache_.erase(key);
      change = Change::kDeleted;
    } else {
      const auto [it, inserted] = cache_.insert_or_assign(key, std::move(entry));
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
