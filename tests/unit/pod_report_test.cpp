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

TEST_CASE("the heartbeat Lease is named after the pod, owned by it, and carries the report") {
  PodIdentity pod{"demo-abc", "team", "demo", "uid-1"};
  CHECK(pod.field_manager() == "codex-proxy-demo-abc");
  CHECK(pod.settings_configmap() == "demo-settings");
  PodReport report;
  report.ready = true;
  report.worker_state = "ready";
  const auto lease = render_pod_lease(
      pod, report, std::chrono::system_clock::from_time_t(1800000000), std::chrono::seconds(90));
  CHECK(lease["kind"] == "Lease");
  CHECK(lease["metadata"]["name"] == "demo-abc");
  CHECK(lease["metadata"]["namespace"] == "team");
  CHECK(lease["metadata"]["labels"] ==
        json{{"app.kubernetes.io/name", "codex-proxy"}, {"codexproxy.io/name", "demo"}});
  CHECK(lease["metadata"]["ownerReferences"] ==
        json::array(
            {{{"apiVersion", "v1"}, {"kind", "Pod"}, {"name", "demo-abc"}, {"uid", "uid-1"}}}));
  CHECK(lease["spec"] == json{{"holderIdentity", "demo-abc"},
                              {"leaseDurationSeconds", 90},
                              {"renewTime", "2027-01-15T08:00:00.000000Z"}});
  const auto entry =
      json::parse(lease["metadata"]["annotations"]["codexproxy.io/report"].get<std::string>());
  CHECK(entry["ready"] == true);
  CHECK(entry["workerState"] == "ready");
  CHECK_FALSE(entry.contains("name"));
  CHECK_FALSE(entry.contains("lastExitCode"));  // no worker has exited yet
  pod.pod_uid.clear();                          // outside a pod: no owner
  CHECK_FALSE(render_pod_lease(pod, report, std::chrono::system_clock::now(),
                               std::chrono::seconds(3))["metadata"]
                  .contains("ownerReferences"));
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
  auto report = make_pod_report(WorkerSnapshot{}, false, 3, bad.problem);
  const auto entry = render_pod_report(report);
  CHECK(entry["settingsError"] == bad.problem);
  CHECK_NOTHROW((void)entry.dump());
  const auto good = parse_live_settings(json{{"maintenance.enabled", "true"}}, bad, problems);
  CHECK(good.problem.empty());
  report = make_pod_report(WorkerSnapshot{}, true, 4, good.problem);
  CHECK(render_pod_report(report)["settingsError"] == "");
}

TEST_CASE("utf8_prefix never cuts a character in two") {
  CHECK(cxp::utf8_prefix("short", 64) == "short");
  CHECK(cxp::utf8_prefix("abcdef", 3) == "abc…");
  const std::string accents = "éééé";  // 2 bytes each
  CHECK(cxp::utf8_prefix(accents, 3) == "é…");
  CHECK(nlohmann::json(cxp::utf8_prefix(accents, 5)).dump() == "\"éé…\"");
}
