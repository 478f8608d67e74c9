#include "proxy/api/api_stats.h"

#include <algorithm>

#include "proxy/api/request_fields.h"

namespace cxp::proxy {

ParamsIgnoredCounters::ParamsIgnoredCounters()
    : names_(ignored_field_paths().begin(), ignored_field_paths().end()),
      counts_(std::make_unique<std::atomic<std::uint64_t>[]>(names_.size())) {}

void ParamsIgnoredCounters::count(const std::vector<std::string>& params) {
  for (const auto& param : params) {
    const auto found = std::find(names_.begin(), names_.end(), param);
    if (found != names_.end()) {
      counts_[static_cast<std::size_t>(found - names_.begin())].fetch_add(
          1, std::memory_order_relaxed);
    }
  }
}

std::vector<std::pair<std::string_view, std::uint64_t>> ParamsIgnoredCounters::totals() const {
  std::vector<std::pair<std::string_view, std::uint64_t>> out;
  for (std::size_t i = 0; i < names_.size(); ++i) {
    const auto total = counts_[i].load(std::memory_order_relaxed);
    if (total > 0) out.emplace_back(names_[i], total);
  }
  return out;
}

void AdmissionRefusals::count(std::string_view code) {
  for (std::size_t i = 0; i < kReasons.size(); ++i) {
    if (kReasons[i] == code) counts_[i].fetch_add(1, std::memory_order_relaxed);
  }
}

std::vector<std::pair<std::string_view, std::uint64_t>> AdmissionRefusals::totals() const {
  std::vector<std::pair<std::string_view, std::uint64_t>> out;
  for (std::size_t i = 0; i < kReasons.size(); ++i) {
    out.emplace_back(kReasons[i], counts_[i].load(std::memory_order_relaxed));
  }
  return out;
}

void TokenLedger::add(const std::string& key, const std::string& model, const TokenTotals& turn) {
  auto& total = totals_[{key, model}];
  total.input += turn.input;
  total.cached_input += turn.cached_input;
  total.output += turn.output;
  total.reasoning += turn.reasoning;
}

}  // namespace cxp::proxy
