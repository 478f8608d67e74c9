#include "proxy/reporter/pod_report.h"

#include <doctest/doctest.h>

using namespace cxp::proxy;
using nlohmann::json;

TEST_CASE("a pod's report is the supervisor snapshot: ready only in state ready") {
  WorkerSnapshot snapshot;
  snapshot.state = WorkerState::kBackoff;
  snapshot.restarts_total = 3;
  snapshot.restart_streak = 2;
  snapshot.backoff_ms = std::chrono::milliseconds(480);
  snapshot.last_exit_code = 1;
  auto report = make_pod_report(snapshot, true, 7);
  CHECK_FALSE(report.ready);
  CHECK(report.worker_state == "backoff");
  CHECK(report.restarts_total == 3);
  CHECK(report.backoff_ms == 480);
  CHECK(report.maintenance);
  CHECK(report.settings_generation == 7);
  snapshot.state = WorkerState::kReady;
  CHECK(make_pod_report(snapshot, false, 7).ready);
  snapshot.state = WorkerState::kDraining;
  CHECK_FALSE(make_pod_report(snapshot, false, 7).ready);
}

TEST_CASE("the apply body sets only this pod's entry of status.pods") {
  PodIdentity pod{"demo-abc", "team", "demo"};
  CHECK(pod.field_manager() == "codex-proxy-demo-abc");
  CHECK(pod.settings_configmap() == "demo-settings");
  PodReport report;
  report.ready = true;
  report.worker_state = "ready";
  const auto body =
      render_pod_status(pod, report, std::chrono::system_clock::from_time_t(1800000000));
  CHECK(body["metadata"] == json{{"name", "demo"}, {"namespace", "team"}});
  CHECK(body.size() == 4);  // apiVersion, kind, metadata, status
  CHECK(body["status"].size() == 1);
  const auto& entry = body["status"]["pods"][0];
  CHECK(entry["name"] == "demo-abc");
  CHECK(entry["ready"] == true);
  CHECK(entry["lastHeartbeatTime"] == "2027-01-15T08:00:00Z");
  CHECK_FALSE(entry.contains("lastExitCode"));  // no worker has exited yet
}

TEST_CASE("live settings: bad values keep the previous value and are named") {
  LiveSettings previous;
  previous.maintenance = true;
  previous.trace_max_files = 9;
  std::vector<std::string> problems;
  const auto settings = parse_live_settings(json{{"maintenance.enabled", "maybe"},
                                                 {"maintenance.retryAfterSeconds", "30"},
                                                 {"traceBuffer.enabled", "true"},
                                                 {"traceBuffer.maxFiles", "0"},
                                                 {"settingsGeneration", "12"}},
                                            previous, problems);
  CHECK(settings.maintenance);  // kept
  CHECK(settings.retry_after_s == 30);
  CHECK(settings.trace_enabled);
  CHECK(settings.trace_max_files == 9);  // kept
  CHECK(settings.generation == 12);
  REQUIRE(problems.size() == 2);
  CHECK(problems[0].find("maintenance.enabled") != std::string::npos);
  CHECK(problems[1].find("traceBuffer.maxFiles") != std::string::npos);
}
