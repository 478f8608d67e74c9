#include "proxy/rpc/json_rpc_message.h"

namespace cxp::proxy {

RpcMessage parse_rpc_line(std::string_view line) {
  nlohmann::json message = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
  if (message.is_discarded()) return RpcMalformed{"not valid JSON"};
  if (!message.is_object()) return RpcMalformed{"not a JSON object"};
  const auto method = message.find("method");
  const auto id = message.find("id");
  if (method != message.end()) {
    if (!method->is_string()) return RpcMalformed{"\"method\" is not a string"};
    nlohmann::json params = message.value("params", nlohmann::json::object());
    if (id != message.end() && !id->is_null()) {
      return RpcServerRequest{*id, method->get<std::string>(), std::move(params)};
    }
    return RpcNotification{method->get<std::string>(), std::move(params)};
  }
  if (id == message.end() || !id->is_number_integer()) {
    return RpcMalformed{"response without an integer \"id\""};
  }
  RpcResponse response;
  response.id = id->get<std::int64_t>();
  if (const auto error = message.find("error"); error != message.end() && !error->is_null()) {
    response.ok = false;
    response.error = *error;
  } else {
    response.result = message.value("result", nlohmann::json());
  }
  return response;
}

std::string render_rpc_request(std::int64_t id, std::string_view method,
                               const nlohmann::json& params) {
  return nlohmann::json{{"id", id}, {"method", method}, {"params", params}}.dump();
}

std::string render_rpc_notification(std::string_view method, const nlohmann::json& params) {
  nlohmann::json message{{"method", method}};
  if (!params.is_null()) message["params"] = params;
  return message.dump();
}

std::string render_rpc_error_reply(const nlohmann::json& id, int code, std::string_view message) {
  return nlohmann::json{{"id", id}, {"error", {{"code", code}, {"message", message}}}}.dump();
}

std::string render_rpc_result_reply(const nlohmann::json& id, const nlohmann::json& result) {
  return nlohmann::json{{"id", id}, {"result", result}}.dump(
      -1, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace cxp::proxy
