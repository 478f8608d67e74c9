#include "proxy/api/answer_text.h"

namespace cxp::proxy {

AnswerText::AnswerText(const TurnRequest& request) : stop_(request.stop) {
  if (request.format.kind == OutputFormat::Kind::kJsonObject) unwrap_.emplace();
}

std::string AnswerText::feed(std::string_view delta) {
  if (stop_.stopped()) return "";
  return stop_.feed(unwrap_ ? unwrap_->feed(delta) : std::string(delta));
}

std::string AnswerText::finish() {
  if (stop_.stopped()) return "";
  std::string out = stop_.feed(unwrap_ ? unwrap_->finish() : std::string());
  return out + stop_.finish();
}

}  // namespace cxp::proxy
