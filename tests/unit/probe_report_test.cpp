#include "proxy/health/probe_report.h"

#include <doctest/doctest.h>

#include <nlohmann/json.hpp>

using namespace cxp::proxy;
using nlohmann::json;
using namespace std::chrono_literals;

namespace {

WorkerSnapshot snapshot_in(WorkerState state) {
  WorkerSnapshot s;
  s.state = state;
  s.state_since = std::chrono::steady_clock::time_point{} + 10s;
  if (state == WorkerState::kReady || state == WorkerState::kHandshaking ||
      state == WorkerState::kDraining) {
    s.pid = 321;
  }
  if (state == WorkerState::kReady) s.handshake_ms = 42ms;
  if (state == WorkerState::kBackoff || state == WorkerState::kFailed) {
    s.restarts_total = 4;
    s.restart_streak = 3;
    s.backoff_ms = 900ms;
    s.last_exit_signal = 9;
    s.last_error = "worker killed by signal 9 (SIGKILL)";
  }
  return s;
}

const WorkerState kAll[] = {
    WorkerState::kStarting, WorkerState::kHandshaking, WorkerState::kReady, WorkerState::kBackoff,
    WorkerState::kDraining, WorkerState::kStopped,     WorkerState::kFailed};

}  // namespace

TEST_CASE("readyz is 200 only when ready, and its JSON has every contract field in every state") {
  for (const auto state : kAll) {
    CAPTURE(to_string(state));
    const auto snap = snapshot_in(state);
    const ProbeInput in{snap, false, snap.state_since + 1500ms};
    const auto probe = readiness_probe(in, false);
    CHECK(probe.status == (state == WorkerState::kReady ? 200 : 503));
    CHECK(probe.content_type == "application/json");
    const auto body = json::parse(probe.body);
    CHECK(body["ready"] == (state == WorkerState::kReady));
    CHECK(body["reason"] == std::string(to_string(state)));
    CHECK(body["maintenance"] == false);
    const auto& w = body["worker"];
    for (const char* key : {"state", "pid", "restarts_total", "restart_streak", "backoff_ms",
                            "last_exit_code", "last_exit_signal", "handshake_ms"}) {
      CHECK_MESSAGE(w.contains(key), key);
    }
    CHECK(w["state"] == std::string(to_string(state)));
    CHECK(w["state_age_ms"] == 1500);
  }
}

TEST_CASE("backoff facts appear in readyz") {
  const auto snap = snapshot_in(WorkerState::kBackoff);
  const auto body = json::parse(readiness_probe({snap, false, snap.state_since}, false).body);
  CHECK(body["worker"]["restarts_total"] == 4);
  CHECK(body["worker"]["restart_streak"] == 3);
  CHECK(body["worker"]["backoff_ms"] == 900);
  CHECK(body["worker"]["last_exit_signal"] == 9);
  CHECK(body["worker"]["last_exit_code"].is_null());
  CHECK(body["worker"]["pid"].is_null());
  CHECK(body["worker"]["last_error"] == "worker killed by signal 9 (SIGKILL)");
}

TEST_CASE("maintenance is reported but does not fail readiness") {
  const auto snap = snapshot_in(WorkerState::kReady);
  const auto probe = readiness_probe({snap, true, snap.state_since}, false);
  CHECK(probe.status == 200);
  CHECK(json::parse(probe.body)["maintenance"] == true);
}

TEST_CASE("verbose readyz uses kube-apiserver style check lines") {
  auto snap = snapshot_in(WorkerState::kReady);
  auto probe = readiness_probe({snap, false, snap.state_since}, true);
  CHECK(probe.content_type.rfind("text/plain", 0) == 0);
  CHECK(probe.body.find("[+]ping ok\n") != std::string::npos);
  CHECK(probe.body.find("[+]worker ok\n") != std::string::npos);
  CHECK(probe.body.find("readyz check passed") != std::string::npos);

  snap = snapshot_in(WorkerState::kBackoff);
  probe = readiness_probe({snap, false, snap.state_since}, true);
  CHECK(probe.status == 503);
  CHECK(probe.body.find("[-]worker failed: worker backoff") != std::string::npos);
  CHECK(probe.body.find("readyz check failed") != std::string::npos);

  snap = snapshot_in(WorkerState::kDraining);
  probe = readiness_probe({snap, false, snap.state_since}, true);
  CHECK(probe.body.find("[-]shutdown failed") != std::string::npos);
}

TEST_CASE("livez fails only when the supervisor gave up") {
  for (const auto state : kAll) {
    CAPTURE(to_string(state));
    const auto snap = snapshot_in(state);
    const auto probe = liveness_probe({snap, false, snap.state_since}, false);
    CHECK(probe.status == (state == WorkerState::kFailed ? 503 : 200));
    CHECK(json::parse(probe.body)["live"] == (state != WorkerState::kFailed));
  }
  const auto failed = snapshot_in(WorkerState::kFailed);
  const auto verbose = liveness_probe({failed, false, failed.state_since}, true);
  CHECK(verbose.body.find("[-]supervisor failed: gave up after 3") != std::string::npos);
}

TEST_CASE("healthz is always 200 and sums up both probes") {
  for (const auto state : kAll) {
    const auto snap = snapshot_in(state);
    const auto probe = health_summary({snap, false, snap.state_since});
    CHECK(probe.status == 200);
    const auto body = json::parse(probe.body);
    CHECK(body["live"] == (state != WorkerState::kFailed));
    CHECK(body["ready"] == (state == WorkerState::kReady));
    CHECK(body["worker"]["state"] == std::string(to_string(state)));
  }
}

TEST_CASE("readyz and healthz show the worker's slots and queue, which never fail readiness") {
  const auto snap = snapshot_in(WorkerState::kReady);
  const ProbeInput in{snap, false, snap.state_since, snap.state_since, AdmissionLoad{4, 4, 7, 64}};
  const auto ready = readiness_probe(in, false);
  CHECK(ready.status == 200);
  const auto capacity = json::parse(ready.body)["capacity"];
  CHECK(capacity == json{{"in_flight", 4}, {"slots", 4}, {"queued", 7}, {"queue_max", 64}});
  CHECK(json::parse(health_summary(in).body)["capacity"] == capacity);
  CHECK(readiness_probe(in, true).body.find("[+]capacity 4/4 turns in flight, 7/64 queued") !=
        std::string::npos);
}
