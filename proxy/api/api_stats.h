#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace cxp::proxy {

// Function calls of the model, counted across every request (exported as the codex_tool_buffer_*
// metrics): a call arrives from the worker (started), reaches the client (flushed), or is dropped
// — a function the request did not declare, or a turn that failed or timed out around it
// (aborted).
struct ToolBufferCounters {
  std::atomic<std::uint64_t> started{0};
  std::atomic<std::uint64_t> flushed{0};
  std::atomic<std::uint64_t> aborted{0};
};

// Requests that set a field codex-proxy accepts without effect, by field (exported as
// codex_params_ignored_total{param}; one counter per ignored field of request_fields.h).
class ParamsIgnoredCounters {
 public:
  ParamsIgnoredCounters();
  void count(const std::vector<std::string>& params);
  // (param, total) for every counted field.
  std::vector<std::pair<std::string_view, std::uint64_t>> totals() const;

 private:
  std::vector<std::string_view> names_;
  std::unique_ptr<std::atomic<std::uint64_t>[]> counts_;
};

// Tokens the model billed, by key name and model (codex_tokens_total{key,model,type}): cached
// input is part of input, reasoning part of output, as in OpenAI's usage. The io thread only.
struct TokenTotals {
  std::uint64_t input = 0;
  std::uint64_t cached_input = 0;
  std::uint64_t output = 0;
  std::uint64_t reasoning = 0;
};
class TokenLedger {
 public:
  void add(const std::string& key, const std::string& model, const TokenTotals& turn);
  const std::map<std::pair<std::string, std::string>, TokenTotals>& totals() const {
    return totals_;
  }

 private:
  std::map<std::pair<std::string, std::string>, TokenTotals> totals_;
};

// Turn requests refused for want of capacity or of leave to run now, by reason
// (codex_admission_refused_total{reason}): the reason is the `code` of the error envelope the
// client got, one of kReasons; other refusals (a bad request, a bad key) are not admission.
class AdmissionRefusals {
 public:
  static constexpr std::array<std::string_view, 5> kReasons = {
      "maintenance", "rate_limit_exceeded", "queue_full", "queue_timeout", "worker_not_ready"};
  void count(std::string_view code);  // any other code is ignored
  // (reason, total) for every reason, zeros included.
  std::vector<std::pair<std::string_view, std::uint64_t>> totals() const;

 private:
  std::array<std::atomic<std::uint64_t>, kReasons.size()> counts_{};
};

// Counters of the API kept in one place and read by /metrics.
struct ApiStats {
  TokenLedger tokens;
  ToolBufferCounters tool_buffer;
  ParamsIgnoredCounters params_ignored;
  std::atomic<std::int64_t> streams_active{0};
  // /v1 requests answered 503 because of maintenance mode (codex_maintenance_refused_total: what a
  // maintenance window turned away). Counted by the const gatekeeper, hence mutable.
  mutable std::atomic<std::uint64_t> maintenance_refused{0};
  mutable AdmissionRefusals admission_refused;  // counted by the const refuse()
};

}  // namespace cxp::proxy
