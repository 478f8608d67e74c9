#include <doctest/doctest.h>

#include "controller/heartbeats.h"

using namespace cxp::controller;
using nlohmann::json;
using std::chrono::milliseconds;
using std::chrono::seconds;

namespace {

json lease(const std::string& renew, const std::string& report, int duration = 90) {
  return {{"metadata",
           {{"name", "demo-abc"},
            {"namespace", "team"},
            {"annotations", {{"codexproxy.io/report", report}}}}},
          {"spec", {{"renewTime", renew}, {"leaseDurationSeconds", duration}}}};
}

}  // namespace

TEST_CASE("a heartbeat is fresh for the Lease's duration after the controller saw it renewed") {
  HeartbeatClock clock;
  const auto t0 = HeartbeatClock::Clock::time_point{} + seconds(1000);
  CHECK_FALSE(clock.fresh_for("team/demo-abc", t0));
  CHECK(clock.observe(lease("T1", "{}"), t0) == HeartbeatClock::Seen::kReportChanged);
  CHECK(*clock.fresh_for("team/demo-abc", t0 + seconds(30)) == milliseconds(60000));
  // the same renewTime again (a relist) is not a renewal: the pod's clock is never read
  CHECK(clock.observe(lease("T1", "{}"), t0 + seconds(60)) == HeartbeatClock::Seen::kRenewed);
  CHECK(*clock.fresh_for("team/demo-abc", t0 + seconds(60)) == milliseconds(30000));
  CHECK_FALSE(clock.fresh_for("team/demo-abc", t0 + seconds(90)));
  // renewed after it expired: revived; renewed while fresh: nothing to do
  CHECK(clock.observe(lease("T2", "{}"), t0 + seconds(100)) == HeartbeatClock::Seen::kRevived);
  CHECK(clock.observe(lease("T3", "{}"), t0 + seconds(110)) == HeartbeatClock::Seen::kRenewed);
  CHECK(*clock.fresh_for("team/demo-abc", t0 + seconds(110)) == milliseconds(90000));
  CHECK(clock.observe(lease("T4", R"({"ready":true})"), t0 + seconds(120)) ==
        HeartbeatClock::Seen::kReportChanged);
  // a duration out of bounds is clamped
  clock.observe(lease("T5", R"({"ready":true})", 1000000), t0 + seconds(130));
  CHECK(*clock.fresh_for("team/demo-abc", t0 + seconds(130)) == milliseconds(3600000));
  clock.forget("team/demo-abc");
  CHECK_FALSE(clock.fresh_for("team/demo-abc", t0 + seconds(130)));
}

TEST_CASE("a pod's report is copied with the CRD's types and bounds only") {
  const auto entry =
      pod_entry_from_lease("demo-abc", lease("T", json{{"ready", true},
                                                       {"workerState", "ready"},
                                                       {"restartsTotal", -5},
                                                       {"restartStreak", 1e12},
                                                       {"backoffMs", "soon"},
                                                       {"settingsGeneration", 3},
                                                       {"settingsError", std::string(5000, 'x')},
                                                       {"lastExitCode", 137},
                                                       {"conditions", "forged"},
                                                       {"name", "someone-else"}}
                                                      .dump()));
  CHECK(entry["name"] == "demo-abc");
  CHECK(entry["ready"] == true);
  CHECK(entry["restartsTotal"] == 0);
  CHECK_FALSE(entry.contains("restartStreak"));  // not an integer
  CHECK_FALSE(entry.contains("backoffMs"));
  CHECK_FALSE(entry.contains("conditions"));
  CHECK(entry["settingsGeneration"] == 3);
  CHECK(entry["settingsError"].get<std::string>().size() <= 2048);
  CHECK(entry["lastExitCode"] == 137);
  CHECK_FALSE(
      pod_entry_from_lease("p", lease("T", R"({"workerState":"hacked"})")).contains("workerState"));
  CHECK(pod_entry_from_lease("p", lease("T", "not json")) == json{{"name", "p"}});
  CHECK(pod_entry_from_lease("p", json::array()) == json{{"name", "p"}});
}

TEST_CASE(
    "report changes reach the status at once after a quiet window, else at the window's end") {
  ReportWindow window(milliseconds(300));
  const auto t0 = ReportWindow::Clock::now();
  CHECK(window.delay("team/demo", t0) == milliseconds(0));  // the first change: at once
  // changes within the window: one flush at its end, whatever their number
  CHECK(window.delay("team/demo", t0 + milliseconds(10)) == milliseconds(290));
  CHECK(window.delay("team/demo", t0 + milliseconds(200)) == milliseconds(100));
  // during the scheduled flush's window: the one after it
  CHECK(window.delay("team/demo", t0 + milliseconds(350)) == milliseconds(250));
  // another CodexProxy is paced apart
  CHECK(window.delay("team/other", t0 + milliseconds(350)) == milliseconds(0));
  // quiet for a window after the last flush: at once again
  CHECK(window.delay("team/demo", t0 + milliseconds(900)) == milliseconds(0));
}

TEST_CASE("the report window forgets quiet CodexProxies, so its memory is bounded") {
  ReportWindow window(milliseconds(300));
  const auto t0 = ReportWindow::Clock::now();
  for (int i = 0; i < 5000; ++i) window.delay("ns/p" + std::to_string(i), t0);
  CHECK(window.size() == 5000);
  window.delay("ns/late", t0 + seconds(1));
  CHECK(window.size() == 1);
}
