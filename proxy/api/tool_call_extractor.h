#pragma once

#include <atomic>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace cxp::proxy {

// Counters of the tool-call buffer, shared by every request (exported as metrics).
struct ToolBufferCounters {
  std::atomic<std::uint64_t> started{0};  // an opening <tool_call> tag was seen
  std::atomic<std::uint64_t> flushed{0};  // a complete, well-formed call was emitted
  std::atomic<std::uint64_t> aborted{
      0};  // the stream ended inside a call, or the call was malformed
};

struct ExtractedToolCall {
  std::string name;
  std::string arguments;  // JSON text of the arguments object
};

struct ExtractedOutput {
  std::string text;  // content that is safe to show now
  std::vector<ExtractedToolCall> calls;
};

// Finds tool calls in streamed model text written in the documented form
//   <tool_call>{"name": "…", "arguments": {…}}</tool_call>
// Text that might be the start of a tag is held back until it is known not to be, so a client
// never sees half a call, whatever the chunk boundaries. A call that never closes, is malformed, or
// grows beyond kMaxCallBytes is given back as plain text (and counted as aborted): nothing is lost.
class ToolCallExtractor {
 public:
  static constexpr std::string_view kOpen = "<tool_call>";
  static constexpr std::string_view kClose = "</tool_call>";
  static constexpr std::size_t kMaxCallBytes = 1024 * 1024;

  explicit ToolCallExtractor(ToolBufferCounters& counters) : counters_(counters) {}

  ExtractedOutput feed(std::string_view delta);
  // End of the stream: everything held back comes out.
  ExtractedOutput finish();

 private:
  void give_back_call(ExtractedOutput& out);

  ToolBufferCounters& counters_;
  std::string pending_;
  bool inside_ = false;
};

}  // namespace cxp::proxy
