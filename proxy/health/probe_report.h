#pragma once

#include <chrono>
#include <string>

#include "proxy/api/admission_gate.h"
#include "proxy/supervisor/worker_state.h"

namespace cxp::proxy {

// A rendered probe answer.
struct ProbeResponse {
  int status = 200;
  std::string content_type;
  std::string body;
};

// What the probes look at: the one supervisor snapshot plus the maintenance switch.
struct ProbeInput {
  const WorkerSnapshot& worker;
  bool maintenance = false;
  std::chrono::steady_clock::time_point now;
  std::chrono::steady_clock::time_point started{};  // the process's start (uptime in /healthz)
  AdmissionLoad load{};  // the worker's slots and their queue (shown, never affects readiness)
};

// /readyz: 200 only when the worker finished its handshake and is not backing off or draining.
// Maintenance does not fail readiness (clients should get the 503 envelope, not a dead endpoint).
ProbeResponse readiness_probe(const ProbeInput& input, bool verbose);
// /livez: the process and its event loop answer; fails only once the supervisor gave up.
ProbeResponse liveness_probe(const ProbeInput& input, bool verbose);
// /healthz: always 200 while the process answers; the body sums up liveness and readiness.
ProbeResponse health_summary(const ProbeInput& input);

// Machine-readable reason the proxy is (not) ready: "ready", "starting", "handshaking", "backoff",
// "draining", "stopped", "failed".
std::string readiness_reason(const WorkerSnapshot& worker);

}  // namespace cxp::proxy
