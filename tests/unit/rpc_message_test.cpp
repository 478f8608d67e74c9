#include <doctest/doctest.h>

#include "proxy/rpc/json_rpc_message.h"

using namespace cxp::proxy;

TEST_CASE("responses, errors, notifications and server requests are told apart") {
  auto m = parse_rpc_line(R"({"id":3,"result":{"thread":{"id":"t"}}})");
  REQUIRE(std::holds_alternative<RpcResponse>(m));
  CHECK(std::get<RpcResponse>(m).id == 3);
  CHECK(std::get<RpcResponse>(m).ok);
  CHECK(std::get<RpcResponse>(m).result["thread"]["id"] == "t");

  m = parse_rpc_line(
      R"({"jsonrpc":"2.0","id":4,"error":{"code":-32600,"message":"Not initialized"}})");
  REQUIRE(std::holds_alternative<RpcResponse>(m));
  CHECK_FALSE(std::get<RpcResponse>(m).ok);
  CHECK(std::get<RpcResponse>(m).error["code"] == -32600);

  m = parse_rpc_line(R"({"method":"item/agentMessage/delta","params":{"delta":"Hi"},"extra":1})");
  REQUIRE(std::holds_alternative<RpcNotification>(m));
  CHECK(std::get<RpcNotification>(m).params["delta"] == "Hi");

  m = parse_rpc_line(R"({"id":"srv-1","method":"execCommandApproval","params":{}})");
  REQUIRE(std::holds_alternative<RpcServerRequest>(m));
}

TEST_CASE("garbage lines are reported as malformed, never thrown") {
  for (const char* line : {"", "not json", "[1,2]", "42", R"({"method":5})",
                           R"({"id":"x","result":1})", "{\"id\":1,", "\xff\xfe"}) {
    CHECK(std::holds_alternative<RpcMalformed>(parse_rpc_line(line)));
  }
}

TEST_CASE("requests are rendered without a jsonrpc field") {
  const auto line =
      render_rpc_request(7, "initialize", {{"clientInfo", {{"name", "codex-proxy"}}}});
  const auto parsed = nlohmann::json::parse(line);
  CHECK(parsed["id"] == 7);
  CHECK(parsed["method"] == "initialize");
  CHECK_FALSE(parsed.contains("jsonrpc"));
  CHECK(line.find('\n') == std::string::npos);
  CHECK(nlohmann::json::parse(render_rpc_notification("initialized", nullptr)) ==
        nlohmann::json{{"method", "initialized"}});
}
