#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <variant>

namespace cxp::proxy {

// One line from the worker, classified. Parsing is lenient, as the protocol asks: a "jsonrpc"
// field is accepted and ignored, unknown fields are ignored.
struct RpcResponse {
  std::int64_t id = 0;
  bool ok = true;
  nlohmann::json result;  // when ok
  nlohmann::json error;   // {"code","message",...} when !ok
};
struct RpcNotification {
  std::string method;
  nlohmann::json params;
};
struct RpcServerRequest {  // the worker asks us something (e.g. an approval)
  nlohmann::json id;
  std::string method;
  nlohmann::json params;
};
struct RpcMalformed {
  std::string reason;
};
using RpcMessage = std::variant<RpcResponse, RpcNotification, RpcServerRequest, RpcMalformed>;

RpcMessage parse_rpc_line(std::string_view line);

// Renders a request or notification line (no trailing newline). `id` < 0 means notification.
std::string render_rpc_request(std::int64_t id, std::string_view method,
                               const nlohmann::json& params);
std::string render_rpc_notification(std::string_view method, const nlohmann::json& params);
std::string render_rpc_error_reply(const nlohmann::json& id, int code, std::string_view message);
std::string render_rpc_result_reply(const nlohmann::json& id, const nlohmann::json& result);

}  // namespace cxp::proxy
