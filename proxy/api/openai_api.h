#pragma once

#include <boost/asio/io_context.hpp>
#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "common/http/http_router.h"
#include "proxy/access/access_control.h"
#include "proxy/api/admission_gate.h"
#include "proxy/api/api_stats.h"
#include "proxy/api/turn_request.h"
#include "proxy/api/turn_router.h"
#include "proxy/api/turn_session.h"
#include "proxy/maintenance/maintenance_switch.h"
#include "proxy/proxy_config.h"
#include "proxy/supervisor/worker_supervisor.h"

namespace cxp::proxy {

// The OpenAI-compatible surface: POST /v1/chat/completions, POST /v1/responses and GET /v1/models,
// with bearer auth, maintenance mode, worker readiness and admission control in front of each turn.
// Both POST endpoints take one path (serve_turn); they differ only in their parser and renderer.
class OpenAiApi {
 public:
  OpenAiApi(boost::asio::io_context& io, const ProxyConfig& config, WorkerSupervisor& supervisor,
            const MaintenanceSwitch& maintenance, TraceBuffer* trace, AccessControl& access);

  void register_routes(http::HttpRouter& router);
  AdmissionLoad load() const { return gate_->load(); }
  // Told how long each turn request waited for a slot (admitted, or refused when the wait ran
  // out); a request refused at once, or whose client left while it waited, is not told.
  void set_queue_wait_observer(std::function<void(std::chrono::milliseconds)> observer) {
    queue_wait_observer_ = std::move(observer);
  }
  const ApiStats& stats() const { return stats_; }
  const std::vector<std::string>& models() const { return models_; }
  // The secrets to remove from error messages (those of the files change while running).
  void set_redactor(telemetry::Redactor redactor) { redactor_ = std::move(redactor); }

 private:
  using Parser = std::variant<TurnRequest, ApiError> (*)(std::string_view body,
                                                         const ParseOptions& options);
  using RendererFactory = std::unique_ptr<TurnRenderer> (*)(const std::string& request_id,
                                                            const TurnRequest& request);
  void serve_turn(const http::ExchangePtr& exchange, std::string_view route, Parser parse,
                  RendererFactory renderer);
  http::HttpResponse models(const http::HttpRequest& request,
                            const AccessControl::Caller& caller) const;
  // Who is asking, or the refusal that applies before any work (auth, maintenance).
  std::variant<AccessControl::Caller, ApiError> gatekeeper(const http::HttpRequest& request) const;
  // Answers an error before any worker work, and logs it (request_refused).
  void refuse(const http::ExchangePtr& exchange, std::string_view route, const ApiError& error,
              std::string_view caller) const;

  boost::asio::io_context& io_;
  const ProxyConfig& config_;
  WorkerSupervisor& supervisor_;
  const MaintenanceSwitch& maintenance_;
  AccessControl& access_;
  std::vector<std::string> models_;
  ParseOptions parse_options_;
  std::shared_ptr<AdmissionGate> gate_;
  TurnRouter turns_;
  ApiStats stats_;
  telemetry::Redactor redactor_;  // the proxy's secrets and the model key, out of error messages
  TurnSettings turn_settings_;
  std::function<void(std::chrono::milliseconds)> queue_wait_observer_;
  telemetry::JsonLog log_{"api"};
};

}  // namespace cxp::proxy
