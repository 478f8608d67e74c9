#include <doctest/doctest.h>

#include "common/utc_time.h"
#include "controller/conditions.h"
#include "controller/status.h"

using namespace cxp::controller;
using nlohmann::json;
using std::chrono::seconds;

namespace {

const auto kNow = std::chrono::system_clock::from_time_t(1800000000);

json entry(const std::string& name, bool ready, const std::string& state, int restarts,
           std::chrono::seconds age, std::int64_t generation = 1) {
  return {{"name", name},
          {"ready", ready},
          {"workerState", state},
          {"restartsTotal", restarts},
          {"settingsGeneration", generation},
          {"maintenance", false},
          {"lastHeartbeatTime", cxp::format_utc(kNow - age, cxp::UtcFormat::kSeconds)}};
}

json rolled_out(int replicas) {
  return {{"metadata", {{"generation", 1}}},
          {"status",
           {{"observedGeneration", 1}, {"replicas", replicas}, {"updatedReplicas", replicas}}}};
}

struct Fixture {
  CodexProxy proxy;
  StatusInputs inputs;
  Fixture(json pods, std::set<std::string> live) {
    proxy.name = "demo";
    proxy.generation = 4;
    proxy.spec.replicas = 2;
    proxy.status = {{"pods", pods}};
    inputs.proxy = &proxy;
    inputs.deployment = rolled_out(2);
    inputs.live_pods = std::move(live);
    inputs.settings_generation = 1;
    inputs.now = kNow;
  }
  StatusResult run() { return compute_status(inputs); }
};

std::string reason(const json& status, const char* type) {
  return find_condition(status["conditions"], type)->value("reason", "");
}

}  // namespace

TEST_CASE("ready pods with fresh heartbeats make the CodexProxy available") {
  Fixture f(json::array({entry("a", true, "ready", 1, seconds(5)),
                         entry("b", true, "ready", 2, seconds(20))}),
            {"a", "b"});
  const auto result = f.run();
  CHECK(result.status["ready"] == "2/2");
  CHECK(result.status["readyReplicas"] == 2);
  CHECK(result.status["restartsTotal"] == 3);
  CHECK(result.status["phase"] == "Available");
  CHECK(result.status["observedGeneration"] == 4);
  CHECK(condition_is_true(result.status["conditions"], "Available"));
  CHECK_FALSE(condition_is_true(result.status["conditions"], "Degraded"));
  // re-checked when the older heartbeat would go stale
  REQUIRE(result.recheck_after);
  CHECK(*result.recheck_after == std::chrono::milliseconds(70000));
}

TEST_CASE("a stale heartbeat stops counting as ready") {
  Fixture f(json::array({entry("a", true, "ready", 0, seconds(5)),
                         entry("b", true, "ready", 0, seconds(200))}),
            {"a", "b"});
  const auto result = f.run();
  CHECK(result.status["ready"] == "1/2");
  CHECK(reason(result.status, "Available") == "PartiallyReady");
  CHECK(find_condition(result.status["conditions"], "Available")->value("message", "").find("b") !=
        std::string::npos);
}

TEST_CASE("a pod in backoff degrades the CodexProxy, naming the pod") {
  Fixture f(json::array({entry("a", false, "backoff", 4, seconds(1)),
                         entry("b", true, "ready", 0, seconds(1))}),
            {"a", "b"});
  const auto result = f.run();
  CHECK(result.status["phase"] == "Degraded");
  CHECK(reason(result.status, "Degraded") == "WorkerBackoff");
  CHECK(find_condition(result.status["conditions"], "Degraded")->value("message", "").find("a") !=
        std::string::npos);
}

TEST_CASE("entries of pods that are gone are orphans after a short grace") {
  Fixture f(json::array({entry("a", true, "ready", 0, seconds(1)),
                         entry("gone", true, "ready", 9, seconds(30)),
                         entry("new", true, "ready", 0, seconds(1))}),
            {"a"});
  const auto result = f.run();
  CHECK(result.orphan_entries == std::vector<std::string>{"gone"});
  CHECK(result.status["restartsTotal"] == 0);  // orphans do not count
  REQUIRE(result.recheck_after);
  CHECK(*result.recheck_after <=
        std::chrono::milliseconds(4000));  // "new" is re-judged after its grace
}

TEST_CASE("pods behind the settings generation keep the CodexProxy progressing") {
  Fixture f(json::array({entry("a", true, "ready", 0, seconds(1), 5),
                         entry("b", true, "ready", 0, seconds(1), 4)}),
            {"a", "b"});
  f.inputs.settings_generation = 5;
  auto result = f.run();
  CHECK(result.status["phase"] == "Progressing");
  CHECK(reason(result.status, "Progressing") == "ApplyingSettings");
  f.proxy.status["pods"][1]["settingsGeneration"] = 5;
  result = f.run();
  CHECK(reason(result.status, "Progressing") == "Complete");
  CHECK(result.status["phase"] == "Available");
}

TEST_CASE("an invalid spec wins over everything and the transition time moves only on change") {
  Fixture f(json::array(), {});
  f.inputs.spec_problems = {"spec.image: bad"};
  auto first = f.run();
  CHECK(reason(first.status, "Degraded") == "InvalidSpec");
  CHECK(first.status["phase"] == "Degraded");
  f.proxy.status = first.status;
  f.inputs.now = kNow + seconds(60);
  const auto second = f.run();
  CHECK(status_up_to_date(f.proxy.status, second.status));  // nothing to write
  CHECK(find_condition(second.status["conditions"], "Degraded")->at("lastTransitionTime") ==
        cxp::format_utc(kNow, cxp::UtcFormat::kSeconds));
  f.inputs.spec_problems.clear();
  const auto third = f.run();
  CHECK(find_condition(third.status["conditions"], "Degraded")->at("lastTransitionTime") ==
        cxp::format_utc(kNow + seconds(60), cxp::UtcFormat::kSeconds));
}

TEST_CASE("the Maintenance condition follows the spec and says how many pods have it in force") {
  Fixture f(json::array({entry("a", true, "ready", 0, seconds(1))}), {"a", "b"});
  f.proxy.spec.maintenance_enabled = true;
  f.proxy.status["pods"][0]["maintenance"] = true;
  const auto result = f.run();
  const auto* condition = find_condition(result.status["conditions"], "Maintenance");
  CHECK(condition->at("status") == "True");
  CHECK(condition->at("reason") == "Enabling");
  CHECK(condition->at("message") == "in force on 1 of 2 pods");
  CHECK(result.status["maintenance"] == "1/2");  // the MAINTENANCE column while switching
}

TEST_CASE("the MAINTENANCE column shows what the pods applied: True, False, or in-force/pods") {
  Fixture f(json::array({entry("a", true, "ready", 0, seconds(1)),
                         entry("b", true, "ready", 0, seconds(1))}),
            {"a", "b"});
  const auto column = [&] { return f.run().status["maintenance"].get<std::string>(); };
  CHECK(column() == "False");
  f.proxy.spec.maintenance_enabled = true;  // patched: no pod has applied it yet
  CHECK(column() == "0/2");
  f.proxy.status["pods"][0]["maintenance"] = true;
  CHECK(column() == "1/2");
  f.proxy.status["pods"][1]["maintenance"] = true;
  CHECK(column() == "True");
  CHECK(reason(f.run().status, "Maintenance") == "Enabled");
  f.proxy.spec.maintenance_enabled = false;  // switching back: 2 pods still in maintenance
  CHECK(column() == "2/2");
  CHECK(reason(f.run().status, "Maintenance") == "Disabling");
  f.proxy.status["pods"][0]["maintenance"] = false;
  f.proxy.status["pods"][1]["maintenance"] = false;
  CHECK(column() == "False");
}

TEST_CASE("InsecureConfig names every open endpoint and does not change the phase") {
  Fixture f(json::array({entry("a", true, "ready", 0, seconds(1))}), {"a"});
  const auto open = f.run();
  const auto* condition = find_condition(open.status["conditions"], "InsecureConfig");
  CHECK(condition->at("status") == "True");
  CHECK(condition->at("reason") == "OpenEndpoints");
  for (const char* field : {"spec.apiKeySecret", "spec.adminTokenSecret", "spec.metrics.enabled"}) {
    CHECK(condition->at("message").get<std::string>().find(field) != std::string::npos);
  }
  f.proxy.spec.api_key_secret.name = "api";
  f.proxy.spec.admin_token_secret.name = "admin";
  f.proxy.spec.metrics_enabled = false;
  const auto secured = f.run();
  CHECK(reason(secured.status, "InsecureConfig") == "AsExpected");
  CHECK(open.status["phase"] == secured.status["phase"]);
}

TEST_CASE("a missing Secret degrades the CodexProxy as CredentialsMissing naming it") {
  Fixture f(json::array({entry("a", true, "ready", 0, seconds(1))}), {"a"});
  f.inputs.credential_problems = {
      "spec.worker.credentials.apiKeySecret: Secret 'openai' in namespace 'ns' does not exist"};
  const auto result = f.run();
  CHECK(reason(result.status, "Degraded") == "CredentialsMissing");
  CHECK(find_condition(result.status["conditions"], "Degraded")
            ->value("message", "")
            .find("Secret 'openai'") != std::string::npos);
  CHECK(reason(result.status, "Progressing") == "CredentialsMissing");
  CHECK(result.status["phase"] == "Degraded");
  // The pod that runs keeps counting: nothing was rolled.
  CHECK(result.status["readyReplicas"] == 1);
}

TEST_CASE("a Deployment that cannot create pods degrades the CodexProxy with the API's reason") {
  Fixture f(json::array(), {});
  const std::string refused =
      "pods \"demo-1\" is forbidden: no PriorityClass with name gold was found";
  f.inputs.deployment = rolled_out(0);
  (*f.inputs.deployment)["status"]["conditions"] = json::array({{{"type", "ReplicaFailure"},
                                                                 {"status", "True"},
                                                                 {"reason", "FailedCreate"},
                                                                 {"message", refused}}});
  auto result = f.run();
  CHECK(result.status["phase"] == "Degraded");
  CHECK(reason(result.status, "Degraded") == "PodsNotCreated");
  CHECK(find_condition(result.status["conditions"], "Degraded")->value("message", "") ==
        "the Deployment cannot create pods: " + refused);
  // a long message is capped, and a resolved failure clears the condition
  (*f.inputs.deployment)["status"]["conditions"][0]["message"] = std::string(5000, 'x');
  result = f.run();
  CHECK(find_condition(result.status["conditions"], "Degraded")->value("message", "").size() <
        1100);
  (*f.inputs.deployment)["status"]["conditions"][0]["status"] = "False";
  f.proxy.status = result.status;
  CHECK(reason(f.run().status, "Degraded") == "AsExpected");
}

TEST_CASE("pods the scheduler cannot place are named in Progressing with the scheduler's reason") {
  Fixture f(json::array({entry("a", true, "ready", 0, seconds(1))}), {"a", "b"});
  (*f.inputs.deployment)["status"]["updatedReplicas"] = 1;
  f.inputs.unschedulable = {
      {"b", "0/3 nodes are available: 3 node(s) didn't match Pod's node affinity/selector."}};
  const auto result = f.run();
  CHECK(reason(result.status, "Progressing") == "RollingOut");
  const auto message =
      find_condition(result.status["conditions"], "Progressing")->value("message", "");
  CHECK(message.find("1 pod(s) cannot be scheduled, e.g. b: 0/3 nodes are available") !=
        std::string::npos);
}

TEST_CASE("the ServiceMonitor condition says whether the pods are scraped, and why not") {
  Fixture f(json::array(), {});
  CHECK(reason(f.run().status, "ServiceMonitor") == "NotRequested");
  f.proxy.spec.service_monitor_enabled = true;
  auto result = f.run();
  CHECK(reason(result.status, "ServiceMonitor") == "APIMissing");
  CHECK(find_condition(result.status["conditions"], "ServiceMonitor")
            ->value("message", "")
            .find("monitoring.coreos.com/v1") != std::string::npos);
  CHECK(result.status["phase"] != "Degraded");  // informational: the pods serve either way
  f.inputs.monitoring_api = true;
  result = f.run();
  CHECK(condition_is_true(result.status["conditions"], "ServiceMonitor"));
  CHECK(reason(result.status, "ServiceMonitor") == "Created");
}
