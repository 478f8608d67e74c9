#include <chrono>

#include "proxy/api/turn_renderer.h"

namespace cxp::proxy {
namespace {

std::int64_t unix_now() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

class ChatRenderer final : public TurnRenderer {
 public:
  ChatRenderer(const std::string& request_id, const TurnRequest& request)
      : meta_{"chatcmpl-" + request_id, unix_now(), request.model},
        include_usage_(request.include_usage) {}

  std::string_view route() const override { return "/v1/chat/completions"; }
  std::string stream_start() override { return sse_role_chunk(meta_); }
  std::string text_delta(std::string_view delta) override {
    return sse_content_chunk(meta_, std::string(delta));
  }
  std::string tool_call(std::size_t index, const ToolCallOut& call) override {
    return sse_tool_call_chunk(meta_, index, call);
  }
  std::string stream_end(const TurnOutcome& outcome) override {
    std::string out = sse_finish_chunk(meta_, outcome.finish_reason);
    if (include_usage_) out += sse_usage_chunk(meta_, outcome.usage.value_or(TokenUsage{}));
    return out + sse_done();
  }
  std::string stream_error(const ApiError& error) override {
    return sse_error_event(api_error_json(error)) + sse_done();
  }
  std::string body(const TurnOutcome& outcome) override {
    return render_completion(meta_, outcome.text, outcome.calls, outcome.finish_reason,
                             outcome.usage);
  }

 private:
  CompletionMeta meta_;
  bool include_usage_;
};

}  // namespace

std::unique_ptr<TurnRenderer> make_chat_renderer(const std::string& request_id,
                                                 const TurnRequest& request) {
  return std::make_unique<ChatRenderer>(request_id, request);
}

}  // namespace cxp::proxy
