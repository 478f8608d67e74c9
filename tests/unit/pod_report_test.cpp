#include "proxy/reporter/pod_report.h"

#include <doctest/doctest.h>

#include "common/utf8.h"

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

TEST_CASE("live settings: the problems go into the pod's entry, bounded, and clear when fixed") {
  std::vector<std::string> problems;
  const std::string huge(1 << 20, 'x');  // a hand-edited 1 MiB value
  const auto bad = parse_live_settings(
      json{{"maintenance.enabled", huge}, {"traceBuffer.ttlSeconds", "é" + huge}}, LiveSettings{},
      problems);
  CHECK(bad.problem.find("maintenance.enabled") != std::string::npos);
  CHECK(bad.problem.find("traceBuffer.ttlSeconds") != std::string::npos);
  CHECK(bad.problem.size() <= kMaxSettingsError + 3);
  CHECK(problems[0].size() < 200);  // the value is quoted in part only
  const PodIdentity pod{"demo-abc", "ns", "demo"};
  auto report = make_pod_report(WorkerSnapshot{}, false, 3, bad.problem);
  const auto entry =
      render_pod_status(pod, report, std::chrono::system_clock::now())["status"]["pods"][0];
  CHECK(entry["settingsError"] == bad.problem);
  CHECK_NOTHROW((void)render_pod_status(pod, report, std::chrono::system_clock::now()).dump());
  const auto good = parse_live_settings(json{{"maintenance.enabled", "true"}}, bad, problems);
  CHECK(good.problem.empty());
  report = make_pod_report(WorkerSnapshot{}, true, 4, good.problem);
  CHECK(render_pod_status(pod, report,
                          std::chrono::system_clock::now())["status"]["pods"][0]["settingsError"] ==
        "");
}

TEST_CASE("utf8_prefix never cuts a character in two") {
  CHECK(cxp::utf8_prefix("short", 64) == "short");
  CHECK(cxp::utf8_prefix("abcdef", 3) == "abc…");
  const std::string accents = "éééé";  // 2 bytes each
  CHECK(cxp::utf8_prefix(accents, 3) == "é…");
  CHECK(nlohmann::json(cxp::utf8_prefix(accents, 5)).dump() == "\"éé…\"");
}
