#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "proxy/api/output_format.h"
#include "proxy/api/stop_sequences.h"
#include "proxy/api/turn_request.h"

namespace cxp::proxy {

// The model's answer as the caller gets it, delta by delta: a json_object answer unwrapped from
// its strict wrapper, then cut at the first of the caller's stop sequences.
class AnswerText {
 public:
  explicit AnswerText(const TurnRequest& request);

  // The text that `delta` lets the caller have now ("" once stopped).
  std::string feed(std::string_view delta);
  // At the end of the answer: what is still held back.
  std::string finish();
  // A stop sequence matched: the answer is over.
  bool stopped() const { return stop_.stopped(); }

 private:
  std::optional<JsonObjectUnwrapper> unwrap_;
  StopSequences stop_;
};

}  // namespace cxp::proxy
