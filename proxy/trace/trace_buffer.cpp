#include "proxy/trace/trace_buffer.h"

#include <algorithm>
#include <ctime>
#include <fstream>

#include "common/private_file.h"
#include "common/utc_time.h"

namespace cxp::proxy {

namespace fs = std::filesystem;

namespace {

constexpr std::string_view kSuffix = ".json";

std::string compact_timestamp(std::chrono::system_clock::time_point when) {
  return format_utc(when, UtcFormat::kCompact);
}

// An image's data (a data URL, up to PROXY_MAX_IMAGE_BYTES) is kept out of traces: its header
// and size say which image it was; 100 traces of 8 MiB images would otherwise fill a disk.
nlohmann::json without_image_data(const nlohmann::json& value) {
  constexpr std::size_t kKeep = 256;
  if (value.is_string()) {
    const auto& text = value.get_ref<const std::string&>();
    const auto comma = text.find(',');
    if (text.size() <= kKeep || text.rfind("data:", 0) != 0 || comma == std::string::npos) {
      return value;
    }
    return text.substr(0, comma + 1) + "[" + std::to_string(text.size() - comma - 1) +
           " bytes not traced]";
  }
  if (!value.is_structured()) return value;
  nlohmann::json out = value;
  for (auto& element : out) element = without_image_data(element);
  return out;
}

}  // namespace

void TraceRecording::add(std::string_view direction, const nlohmann::json& frame) {
  if (frames_.size() >= kMaxFrames) {
    ++dropped_;
    return;
  }
  frames_.push_back({{"direction", direction}, {"frame", without_image_data(frame)}});
}

std::string trace_file_id(std::string_view request_id) {
  std::string id;
  for (char c : request_id.substr(0, 64)) {
    const bool safe =
        std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.';
    id.push_back(safe ? c : '_');
  }
  if (id.empty()) id = "_";
  if (id.front() == '.') id.front() = '_';
  return id;
}

TraceBuffer::TraceBuffer(TraceSettings settings, telemetry::Redactor redactor, Clock clock)
    : settings_(std::move(settings)), redactor_(std::move(redactor)), clock_(std::move(clock)) {}

void TraceBuffer::set_redactor(telemetry::Redactor redactor) {
  std::lock_guard lock(mutex_);
  redactor_ = std::move(redactor);
}

bool TraceBuffer::enabled() const {
  std::lock_guard lock(mutex_);
  return settings_.enabled;
}

std::vector<fs::directory_entry> TraceBuffer::trace_files() const {
  std::vector<fs::directory_entry> out;
  std::error_code ec;
  for (fs::directory_iterator it(settings_.dir, ec), end; !ec && it != end; it.increment(ec)) {
    const auto name = it->path().filename().string();
    if (it->is_regular_file(ec) && name.size() > kSuffix.size() && name.ends_with(kSuffix) &&
        name[0] != '.') {
      out.push_back(*it);
    }
  }
  return out;
}

void TraceBuffer::write(const std::string& request_id, std::string_view route,
                        const TraceRecording& recording) {
  std::unique_lock lock(mutex_);
  if (!settings_.enabled) return;  // read under the lock: apply() may have just turned it off
  const auto now = clock_();
  const auto name = compact_timestamp(now) + "-" + trace_file_id(request_id) + std::string(kSuffix);
  nlohmann::json document = {{"request_id", request_id},
                             {"route", route},
                             {"timestamp", compact_timestamp(now)},
                             {"frames", recording.frames()},
                             {"frames_dropped", recording.dropped()}};
  // Key-aware first (a credential key's whole value, and each string's text as written), then
  // the file's text as a whole.
  redactor_.redact_json(document);
  const std::string text =
      redactor_.redact(document.dump(2, ' ', false, nlohmann::json::error_handler_t::replace));
  std::error_code ec;
  fs::create_directories(settings_.dir, ec);
  const fs::path temp = settings_.dir / ("." + name + ".tmp" + std::to_string(++sequence_));
  // Prompts and answers: readable by the pod's user only (mode 0600).
  const bool ok = !ec && !write_private_file(settings_.dir / name, temp, text, /*durable=*/false);
  if (!ok) {
    ++write_errors_;
    log_.warn("trace_write_failed", {{"request_id", request_id},
                                     {"error_code", "trace_write_failed"},
                                     {"dir", settings_.dir.string()}});
    return;
  }
  lock.unlock();
  prune();
}

void TraceBuffer::apply(bool enabled, std::chrono::seconds ttl, std::uint32_t max_files) {
  bool tighter = false;
  {
    std::lock_guard lock(mutex_);
    if (settings_.enabled == enabled && settings_.ttl == ttl && settings_.max_files == max_files)
      return;
    tighter = ttl < settings_.ttl || max_files < settings_.max_files;
    settings_.enabled = enabled;
    settings_.ttl = ttl;
    settings_.max_files = max_files;
  }
  log_.info("trace_settings_applied",
            {{"enabled", enabled}, {"ttl_s", ttl.count()}, {"max_files", max_files}});
  if (tighter) prune();
}

std::size_t TraceBuffer::prune() {
  std::lock_guard lock(mutex_);
  auto files = trace_files();
  const auto now = fs::file_time_type::clock::now();
  std::size_t removed = 0;
  std::error_code ec;
  std::vector<fs::directory_entry> kept;
  for (const auto& file : files) {
    const auto written = file.last_write_time(ec);
    if (!ec && now - written > settings_.ttl) {
      if (fs::remove(file.path(), ec)) {
        ++removed;
        ++pruned_ttl_;
        log_.info("trace_pruned", {{"reason", "ttl"}, {"file", file.path().filename().string()}});
      }
    } else {
      kept.push_back(file);
    }
  }
  if (kept.size() > settings_.max_files) {
    // Oldest first: by modification time, then by name (which starts with the UTC timestamp).
    std::sort(kept.begin(), kept.end(), [](const auto& a, const auto& b) {
      std::error_code ignored;
      const auto ta = a.last_write_time(ignored);
      const auto tb = b.last_write_time(ignored);
      return ta != tb ? ta < tb : a.path().filename() < b.path().filename();
    });
    const auto excess = kept.size() - settings_.max_files;
    for (std::size_t i = 0; i < excess; ++i) {
      if (fs::remove(kept[i].path(), ec)) {
        ++removed;
        ++pruned_count_;
        log_.info("trace_pruned",
                  {{"reason", "count"}, {"file", kept[i].path().filename().string()}});
      }
    }
    kept.erase(kept.begin(), kept.begin() + static_cast<std::ptrdiff_t>(excess));
  }
  files_ = kept.size();
  return removed;
}

fs::path TraceBuffer::find(const fs::path& dir, std::string_view request_id) {
  constexpr std::size_t kTimestampLength = 20;  // 20261122T221722.123Z
  const std::string wanted = trace_file_id(request_id) + std::string(kSuffix);
  fs::path best;
  std::error_code ec;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    const auto name = it->path().filename().string();
    const bool match = name.size() > kTimestampLength + 1 && name[kTimestampLength] == '-' &&
                       name.compare(kTimestampLength + 1, std::string::npos, wanted) == 0;
    if (match && (best.empty() || name > best.filename().string())) {
      best = it->path();
    }
  }
  return best;
}

}  // namespace cxp::proxy
