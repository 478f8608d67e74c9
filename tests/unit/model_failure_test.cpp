#include "proxy/api/model_failure.h"

#include <doctest/doctest.h>

#include <nlohmann/json.hpp>

using cxp::proxy::model_failure;
using nlohmann::json;

TEST_CASE("a provider outage is a retryable 502 model_error carrying the provider's reason") {
  const auto e = model_failure({{"message", "stream disconnected before completion"},
                                {"codexErrorInfo", "other"},
                                {"additionalDetails", "error decoding response body"}});
  CHECK(e.status == 502);
  CHECK(e.code == "model_error");
  CHECK(e.retryable);
  CHECK(e.message.find("stream disconnected before completion: error decoding response body") !=
        std::string::npos);
}

TEST_CASE("a refusal by the provider itself is not retryable") {
  CHECK_FALSE(
      model_failure({{"message", "bad key"}, {"codexErrorInfo", "unauthorized"}}).retryable);
  CHECK_FALSE(
      model_failure({{"message", "unexpected status 401"},
                     {"codexErrorInfo", {{"httpConnectionFailed", {{"httpStatusCode", 401}}}}}})
          .retryable);
  CHECK(model_failure({{"message", "overloaded"},
                       {"codexErrorInfo", {{"httpConnectionFailed", {{"httpStatusCode", 503}}}}}})
            .retryable);
  CHECK(
      cxp::proxy::model_failure_kind(
          {{"codexErrorInfo", {{"responseStreamDisconnected", {{"httpStatusCode", nullptr}}}}}}) ==
      "responseStreamDisconnected");
}

TEST_CASE("a failure without details still says what happened, and huge reasons are cut") {
  CHECK(model_failure(json()).message == "the model provider failed: no reason given");
  CHECK(model_failure({{"message", std::string(10000, 'x')}}).message.size() < 2100);
}
