#include "proxy/api/model_failure.h"

#include <algorithm>
#include <array>
#include <string_view>

#include "common/json_fields.h"
#include "common/utf8.h"

namespace cxp::proxy {
namespace {

using nlohmann::json;

constexpr std::array<std::string_view, 9> kPermanentKinds = {
    "unauthorized",          "badRequest",         "modelNotFound",
    "contextWindowExceeded", "cyberPolicy",        "misalignmentPolicyViolation",
    "inferenceHookDenied",   "usageLimitExceeded", "sessionBudgetExceeded"};
constexpr std::array<int, 5> kPermanentStatuses = {400, 401, 403, 404, 422};

const json& info_of(const json& error) {
  static const json kNull;
  if (!error.is_object()) return kNull;
  const auto found = error.find("codexErrorInfo");
  return found == error.end() ? kNull : *found;
}

// The upstream HTTP status inside an object-shaped codexErrorInfo, or 0.
int http_status_of(const json& info) {
  if (!info.is_object() || info.empty()) return 0;
  const auto& detail = info.begin().value();
  if (!detail.is_object()) return 0;
  const auto status = detail.find("httpStatusCode");
  return status != detail.end() && status->is_number_integer() ? status->get<int>() : 0;
}

}  // namespace

std::string model_failure_kind(const json& turn_error) {
  const auto& info = info_of(turn_error);
  if (info.is_string()) return info.get<std::string>();
  if (info.is_object() && !info.empty()) return info.begin().key();
  return "unknown";
}

ApiError model_failure(const json& turn_error) {
  ApiError e;
  e.status = 502;
  e.type = "server_error";
  e.code = "model_error";
  std::string reason;
  if (turn_error.is_object()) {
    reason = string_field(turn_error, "message");
    const auto details = turn_error.find("additionalDetails");
    if (details != turn_error.end() && details->is_string() && !details->get<std::string>().empty())
      reason += (reason.empty() ? "" : ": ") + details->get<std::string>();
  }
  if (reason.empty()) reason = "no reason given";
  reason = utf8_prefix(reason, 2000);
  e.message = "the model provider failed: " + reason;
  const auto kind = model_failure_kind(turn_error);
  const int status = http_status_of(info_of(turn_error));
  const bool permanent =
      std::find(kPermanentKinds.begin(), kPermanentKinds.end(), kind) != kPermanentKinds.end() ||
      std::find(kPermanentStatuses.begin(), kPermanentStatuses.end(), status) !=
          kPermanentStatuses.end();
  e.retryable = !permanent;
  return e;
}

}  // namespace cxp::proxy
