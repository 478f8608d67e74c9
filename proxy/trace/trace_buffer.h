#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "common/settings_table.h"
#include "common/telemetry/json_log.h"
#include "common/telemetry/redaction.h"

namespace cxp::proxy {

struct TraceSettings {
  bool enabled = false;
  std::filesystem::path dir = ".codex-api/trace-buffer";
  std::chrono::seconds ttl{settings::kTraceTtlSeconds.default_value};
  std::uint32_t max_files = settings::kTraceMaxFiles.default_value;
};

// The JSON-RPC frames of one request, collected while it runs (bounded).
class TraceRecording {
 public:
  static constexpr std::size_t kMaxFrames = 4000;

  void add(std::string_view direction, const nlohmann::json& frame);
  const nlohmann::json& frames() const { return frames_; }
  std::uint64_t dropped() const { return dropped_; }

 private:
  nlohmann::json frames_ = nlohmann::json::array();
  std::uint64_t dropped_ = 0;
};

// A file name part from an untrusted request id: [A-Za-z0-9._-] only, no leading dot, at most 64
// characters; anything else becomes '_'.
std::string trace_file_id(std::string_view request_id);

// Writes one redacted file per request, `{timestamp}-{request id}.json`, to a temporary name then
// renamed (readers never see half a file), and prunes by age (TTL) and count. Failures (full disk,
// unwritable directory) are logged and counted; they never fail the request.
class TraceBuffer {
 public:
  using Clock = std::function<std::chrono::system_clock::time_point()>;

  TraceBuffer(
      TraceSettings settings, telemetry::Redactor redactor,
      Clock clock = [] { return std::chrono::system_clock::now(); });

  bool enabled() const;
  // Live settings (from the CodexProxy's ConfigMap): on/off, TTL and count bound. Logged when
  // they change; a tighter bound prunes at once.
  void apply(bool enabled, std::chrono::seconds ttl, std::uint32_t max_files);

  void write(const std::string& request_id, std::string_view route,
             const TraceRecording& recording);
  // Removes files older than the TTL, then the oldest beyond max_files. Returns how many went.
  std::size_t prune();
  // The secrets to redact from now on (a credential file changed).
  void set_redactor(telemetry::Redactor redactor);

  std::size_t files() const { return files_.load(); }
  std::uint64_t pruned_ttl() const { return pruned_ttl_.load(); }
  std::uint64_t pruned_count() const { return pruned_count_.load(); }
  std::uint64_t write_errors() const { return write_errors_.load(); }

  // Finds the trace file of `request_id` in `dir` (the newest if several); empty when none.
  static std::filesystem::path find(const std::filesystem::path& dir, std::string_view request_id);

 private:
  std::vector<std::filesystem::directory_entry> trace_files() const;

  TraceSettings settings_;
  telemetry::Redactor redactor_;
  Clock clock_;
  telemetry::JsonLog log_{"trace_buffer"};
  mutable std::mutex mutex_;  // guards settings_ (live settings) and redactor_; serialises writes
                              // and prunes (one directory, one writer at a time)
  std::atomic<std::size_t> files_{0};
  std::atomic<std::uint64_t> pruned_ttl_{0};
  std::atomic<std::uint64_t> pruned_count_{0};
  std::atomic<std::uint64_t> write_errors_{0};
  std::uint64_t sequence_ = 0;
};

}  // namespace cxp::proxy
