#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace cxp::proxy {

// Cuts an answer at the first of the caller's stop sequences (chat `stop`), even when one spans
// deltas: the tail that could still begin a stop sequence is held back until the next delta
// decides, and text is released only on UTF-8 character boundaries. The stop sequence itself is
// never sent, as OpenAI does.
class StopSequences {
 public:
  explicit StopSequences(std::vector<std::string> stops);

  // The text that can be sent now; once a stop sequence matched, the text before it and nothing
  // after (stopped() turns true).
  std::string feed(std::string_view delta);
  // At the end of the answer: the text held back.
  std::string finish();
  bool stopped() const { return stopped_; }
  bool active() const { return !stops_.empty(); }

 private:
  std::vector<std::string> stops_;
  std::string held_;
  bool stopped_ = false;
};

}  // namespace cxp::proxy
