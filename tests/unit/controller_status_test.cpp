#include <doctest/doctest.h>

#include "common/utc_time.h"
#include "controller/conditions.h"
#include "controller/status.h"

using namespace cxp::controller;
using nlohmann::json;
using std::chrono::seconds;

namespace {

const auto kNow = std::chrono::system_clock::from_time_t(1800000000);

// A pod's report whose heartbeat Lease (90 s) was last seen renewed `age` ago.
PodHeartbeat entry(const std::string& name, bool ready, const std::string& state, int restarts,
                   std::chrono::seconds age, std::int64_t generation = 1) {
  const auto lease = seconds(90);
  return {{{"name", name},
           {"ready", ready},
           {"workerState", state},
           {"restartsTotal", restarts},
           {"settingsGeneration", generation},
           {"maintenance", false}},
          age < lease
              ? std::optional(std::chrono::duration_cast<std::chrono::milliseconds>(lease - age))
              : std::nullopt};
}

json rolled_out(int replicas) {
  return {{"metadata", {{"generation", 1}}},
          {"status",
           {{"observedGeneration", 1}, {"replicas", replicas}, {"updatedReplicas", replicas}}}};
}

struct Fixture {
  CodexProxy proxy;
  StatusInputs inputs;
  Fixture(std::vector<PodHeartbeat> pods, std::set<std::string> live) {
    proxy.name = "demo";
    proxy.generation = 4;
    proxy.spec.replicas = 2;
    inputs.reports = std::move(pods);
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
  Fixture f(std::vector<PodHeartbeat>({entry("a", true, "ready", 1, seconds(5)),
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
  CHECK(result.status["pods"].size() == 2);
  CHECK(result.status["podsOmitted"] == 0);
}

TEST_CASE("a stale heartbeat stops counting as ready") {
  Fixture f(std::vector<PodHeartbeat>({entry("a", true, "ready", 0, seconds(5)),
                                       entry("b", true, "ready", 0, seconds(200))}),
            {"a", "b"});
  const auto result = f.run();
  CHECK(result.status["ready"] == "1/2");
  CHECK(reason(result.status, "Available") == "PartiallyReady");
  CHECK(find_condition(result.status["conditions"], "Available")->value("message", "").find("b") !=
        std::string::npos);
}

TEST_CASE("a pod in backoff degrades the CodexProxy, naming the pod") {
  Fixture f(std::vector<PodHeartbeat>({entry("a", false, "backoff", 4, seconds(1)),
                                       entry("b", true, "ready", 0, seconds(1))}),
            {"a", "b"});
  const auto result = f.run();
  CHECK(result.status["phase"] == "Degraded");
  CHECK(reason(result.status, "Degraded") == "WorkerBackoff");
  CHECK(find_condition(result.status["conditions"], "Degraded")->value("message", "").find("a") !=
        std::string::npos);
}

TEST_CASE("reports of pods that are gone are not listed and do not count") {
  Fixture f(std::vector<PodHeartbeat>({entry("a", true, "ready", 0, seconds(1)),
                                       entry("gone", true, "ready", 9, seconds(30))}),
            {"a", "new"});
  const auto result = f.run();
  CHECK(result.status["pods"].size() == 1);
  CHECK(result.status["pods"][0]["name"] == "a");
  CHECK(result.status["restartsTotal"] == 0);
  CHECK(result.status["replicas"] == 2);  // "new" exists but has not reported yet
  CHECK(find_condition(result.status["conditions"], "Available")
            ->value("message", "")
            .find("no fresh heartbeat from new") != std::string::npos);
}

TEST_CASE("a stale pod's entry says so and is not ready; it clears once the heartbeat is back") {
  Fixture f(std::vector<PodHeartbeat>({entry("a", true, "ready", 0, seconds(1)),
                                       entry("b", true, "ready", 0, seconds(91))}),
            {"a", "b"});
  auto result = f.run();
  CHECK(result.status["pods"][1]["stale"] == true);
  CHECK(result.status["pods"][1]["ready"] == false);
  CHECK_FALSE(result.status["pods"][0].contains("stale"));
  f.proxy.status = result.status;
  f.inputs.reports[1].fresh_for = std::chrono::milliseconds(90000);
  result = f.run();
  CHECK_FALSE(result.status["pods"][1].contains("stale"));
  CHECK_FALSE(status_up_to_date(f.proxy.status, result.status));  // `stale` must be removed
  CHECK(result.status["readyReplicas"] == 2);
}

TEST_CASE("status.pods is bounded: beyond the limit only the pods that are not ready") {
  std::vector<PodHeartbeat> pods;
  std::set<std::string> live;
  for (int i = 0; i < 200; ++i) {
    char name[16];
    std::snprintf(name, sizeof name, "p%03d", i);
    pods.push_back(entry(name, i % 50 != 7, i % 50 != 7 ? "ready" : "backoff", 1, seconds(1)));
    live.insert(name);
  }
  Fixture f(pods, live);
  f.proxy.spec.replicas = 200;
  auto result = f.run();
  CHECK(result.status["readyReplicas"] == 196);  // counts are over every pod
  CHECK(result.status["restartsTotal"] == 200);
  CHECK(result.status["pods"].size() == 4);
  CHECK(result.status["pods"][0]["name"] == "p007");
  CHECK(result.status["podsOmitted"] == 196);
  // at most the limit even when many are not ready; exactly kMaxListedPods pods: all listed
  for (auto& pod : f.inputs.reports) pod.entry["ready"] = false;
  result = f.run();
  CHECK(result.status["pods"].size() == kMaxListedPods);
  CHECK(result.status["podsOmitted"] == 200 - static_cast<int>(kMaxListedPods));
  f.inputs.reports.resize(kMaxListedPods);
  for (auto& pod : f.inputs.reports) pod.entry["ready"] = true;
  result = f.run();
  CHECK(result.status["pods"].size() == kMaxListedPods);
  CHECK(result.status["podsOmitted"] == 0);
}

TEST_CASE("the written status is up to date whatever the order of status.pods") {
  Fixture f(std::vector<PodHeartbeat>({entry("a", true, "ready", 0, seconds(1)),
                                       entry("b", true, "ready", 0, seconds(1))}),
            {"a", "b"});
  const auto result = f.run();
  auto current = result.status;
  std::swap(current["pods"][0], current["pods"][1]);
  CHECK(status_up_to_date(current, result.status));
  current["pods"].push_back({{"name", "old"}});  // an entry someone else wrote
  CHECK_FALSE(status_up_to_date(current, result.status));
}

TEST_CASE("pods behind the settings generation keep the CodexProxy progressing") {
  Fixture f(std::vector<PodHeartbeat>({entry("a", true, "ready", 0, seconds(1), 5),
                                       entry("b", true, "ready", 0, seconds(1), 4)}),
            {"a", "b"});
  f.inputs.settings_generation = 5;
  auto result = f.run();
  CHECK(result.status["phase"] == "Progressing");
  CHECK(reason(result.status, "Progressing") == "ApplyingSettings");
  f.inputs.reports[1].entry["settingsGeneration"] = 5;
  result = f.run();
  CHECK(reason(result.status, "Progressing") == "Complete");
  CHECK(result.status["phase"] == "Available");
}

TEST_CASE("an invalid spec wins over everything and the transition time moves only on change") {
  Fixture f({}, {});
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
  Fixture f(std::vector<PodHeartbeat>({entry("a", true, "ready", 0, seconds(1))}), {"a", "b"});
  f.proxy.spec.maintenance_enabled = true;
  f.inputs.reports[0].entry["maintenance"] = true;
  const auto result = f.run();
  const auto* condition = find_condition(result.status["conditions"], "Maintenance");
  CHECK(condition->at("status") == "True");
  CHECK(condition->at("reason") == "Enabling");
  CHECK(condition->at("message") == "in force on 1 of 2 pods");
  CHECK(result.status["maintenance"] == "1/2");  // the MAINTENANCE column while switching
}

TEST_CASE("the MAINTENANCE column shows what the pods applied: True, False, or in-force/pods") {
  Fixture f(std::vector<PodHeartbeat>({entry("a", true, "ready", 0, seconds(1)),
                                       entry("b", true, "ready", 0, seconds(1))}),
            {"a", "b"});
  const auto column = [&] { return f.run().status["maintenance"].get<std::string>(); };
  CHECK(column() == "False");
  f.proxy.spec.maintenance_enabled = true;  // patched: no pod has applied it yet
  CHECK(column() == "0/2");
  f.inputs.reports[0].entry["maintenance"] = true;
  CHECK(column() == "1/2");
  f.inputs.reports[1].entry["maintenance"] = true;
  CHECK(column() == "True");
  CHECK(reason(f.run().status, "Maintenance") == "Enabled");
  f.proxy.spec.maintenance_enabled = false;  // switching back: 2 pods still in maintenance
  CHECK(column() == "2/2");
  CHECK(reason(f.run().status, "Maintenance") == "Disabling");
  f.inputs.reports[0].entry["maintenance"] = false;
  f.inputs.reports[1].entry["maintenance"] = false;
  CHECK(column() == "False");
}

TEST_CASE("InsecureConfig names every open endpoint and does not change the phase") {
  Fixture f(std::vector<PodHeartbeat>({entry("a", true, "ready", 0, seconds(1))}), {"a"});
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
  Fixture f(std::vector<PodHeartbeat>({entry("a", true, "ready", 0, seconds(1))}), {"a"});
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
  Fixture f({}, {});
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
  Fixture f(std::vector<PodHeartbeat>({entry("a", true, "ready", 0, seconds(1))}), {"a", "b"});
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
  Fixture f({}, {});
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

TEST_CASE("the Autoscaling condition says what the HPA says of itself") {
  Fixture f({entry("a", true, "ready", 0, seconds(5)), entry("b", true, "ready", 0, seconds(5))},
            {"a", "b"});
  CHECK(reason(f.run().status, "Autoscaling") == "NotRequested");
  f.proxy.spec.autoscaling.enabled = true;
  f.proxy.spec.autoscaling.max_replicas = 5;
  CHECK(reason(f.run().status, "Autoscaling") == "Pending");
  // No custom metrics API: the HPA cannot read its metric, the replicas stay.
  f.inputs.autoscaler =
      json{{"status",
            {{"currentReplicas", 2},
             {"desiredReplicas", 2},
             {"conditions",
              json::array(
                  {{{"type", "AbleToScale"}, {"status", "True"}, {"reason", "SucceededGetScale"}},
                   {{"type", "ScalingActive"},
                    {"status", "False"},
                    {"reason", "FailedGetPodsMetric"},
                    {"message",
                     "the HPA was unable to compute the replica count: unable to get metric "
                     "codex_turns_in_flight: no custom metrics API registered"}}})}}}};
  auto status = f.run().status;
  const auto* condition = find_condition(status["conditions"], "Autoscaling");
  REQUIRE(condition);
  CHECK(condition->value("status", "") == "False");
  CHECK(condition->value("reason", "") == "FailedGetPodsMetric");
  CHECK(condition->value("message", "").find("no custom metrics API") != std::string::npos);
  CHECK(status["phase"] == "Available");  // informational: the pods serve
  f.inputs.autoscaler = json{{"status",
                              {{"currentReplicas", 2},
                               {"desiredReplicas", 4},
                               {"conditions", json::array({{{"type", "ScalingActive"},
                                                            {"status", "True"},
                                                            {"reason", "ValidMetricFound"}}})}}}};
  status = f.run().status;
  condition = find_condition(status["conditions"], "Autoscaling");
  CHECK(condition->value("reason", "") == "ScalingActive");
  CHECK(condition->value("message", "").find("desired 4 replicas (current 2, 1-5)") !=
        std::string::npos);
}

TEST_CASE("with engine KEDA the Autoscaling condition is the ScaledObject's Ready") {
  Fixture f({entry("a", true, "ready", 0, seconds(5))}, {"a"});
  f.proxy.spec.autoscaling.enabled = true;
  f.proxy.spec.autoscaling.engine = "KEDA";
  f.proxy.spec.autoscaling.max_replicas = 4;
  CHECK(reason(f.run().status, "Autoscaling") == "Pending");
  f.inputs.scaled_object = json{{"status", {{"conditions", json::array()}}}};
  CHECK(find_condition(f.run().status["conditions"], "Autoscaling")
            ->value("message", "")
            .find("is KEDA's operator running?") != std::string::npos);
  f.inputs.scaled_object = json{
      {"status",
       {{"conditions", json::array({{{"type", "Ready"},
                                     {"status", "False"},
                                     {"reason", "ScaledObjectCheckFailed"},
                                     {"message", "Trigger prometheus: no serverAddress"}}})}}}};
  auto condition = *find_condition(f.run().status["conditions"], "Autoscaling");
  CHECK(condition["reason"] == "ScaledObjectCheckFailed");
  CHECK(condition["status"] == "False");
  f.inputs.scaled_object =
      json{{"status",
            {{"conditions", json::array({{{"type", "Ready"},
                                          {"status", "True"},
                                          {"message", "ScaledObject is defined correctly"}}})}}}};
  condition = *find_condition(f.run().status["conditions"], "Autoscaling");
  CHECK(condition["reason"] == "ScaledObjectReady");
}
