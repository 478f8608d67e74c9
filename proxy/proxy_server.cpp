#include "proxy/proxy_server.h"

#include <signal.h>
#include <unistd.h>

#include <boost/asio/ip/address.hpp>
#include <map>
#include <random>

#include "common/http/bearer_gate.h"
#include "common/utf8.h"
#include "proxy/health/probe_report.h"
#include "proxy/maintenance/maintenance_endpoint.h"

namespace cxp::proxy {

namespace beast_http = boost::beast::http;

std::vector<std::string> insecure_settings(const ProxyConfig& config) {
  std::vector<std::string> insecure;
  if (config.api_key.empty() && config.api_key_file.empty() && config.api_keys_file.empty()) {
    insecure.emplace_back("PROXY_API_KEY");  // /v1/* accept any caller
  }
  if (config.admin_token.empty() && config.admin_token_file.empty()) {
    insecure.emplace_back("PROXY_ADMIN_TOKEN");  // no maintenance API
  }
  boost::system::error_code ec;
  const auto address = boost::asio::ip::make_address(config.host, ec);
  if (config.enable_metrics && config.metrics_token.empty() && config.metrics_token_file.empty() &&
      !ec && !address.is_loopback()) {
    insecure.emplace_back("PROXY_METRICS_TOKEN");  // metrics open on a non-loopback address
  }
  return insecure;
}

AccessSettings access_settings(const ProxyConfig& config) {
  AccessSettings s;
  s.api_key = config.api_key;
  s.api_key_file = config.api_key_file;
  s.api_keys_file = config.api_keys_file;
  s.admin_token = config.admin_token;
  s.admin_token_file = config.admin_token_file;
  s.metrics_token = config.metrics_token;
  s.metrics_token_file = config.metrics_token_file;
  s.poll = config.secret_files_poll;
  s.token_grace = config.token_rotation_grace;
  return s;
}

SupervisorSettings supervisor_settings(const ProxyConfig& config) {
  SupervisorSettings s;
  s.command = worker_command(config.codex);
  std::vector<std::string> inherited;
  for (char** entry = environ; entry != nullptr && *entry != nullptr; ++entry) {
    inherited.emplace_back(*entry);
  }
  s.environment = worker_environment(config.codex, inherited);
  s.restart.backoff_initial = config.worker_backoff_initial;
  s.restart.backoff_max = config.worker_backoff_max;
  s.restart.restart_max = config.worker_restart_max;
  s.restart.stable_after = config.worker_stable_after;
  s.recycle.max_turns = config.worker_max_turns;
  s.recycle.max_rss_bytes = std::uint64_t{config.worker_max_rss_mb} * 1024 * 1024;
  // A retiring worker's turns may run to their own time limit, and a little more.
  s.retire_grace = config.worker_request_timeout + std::chrono::seconds(5);
  s.startup_timeout = config.worker_startup_timeout;
  s.handshake_timeout = config.worker_handshake_timeout;
  s.shutdown_grace = config.worker_shutdown_grace;
  s.client_name = "codex-proxy";
  s.client_version = CXP_VERSION;
  return s;
}

ProxyServer::ProxyServer(ProxyConfig config)
    : config_(std::move(config)),
      supervisor_(io_, supervisor_settings(config_), std::random_device{}()),
      maintenance_({config_.maintenance, config_.maintenance_retry_after_s}),
      trace_(TraceSettings{config_.trace_buffer, config_.trace_dir, config_.trace_ttl,
                           config_.trace_max_files},
             telemetry::Redactor(config_.secrets())),
      trace_prune_timer_(io_),
      load_report_timer_(io_),
      access_(io_, access_settings(config_), config_.served_models()),
      api_(io_, config_, supervisor_, maintenance_, &trace_, access_),
      metrics_(api_.models(), insecure_settings(config_)),
      server_(io_, router_, http::HttpServerLimits{.max_body_bytes = config_.max_body_bytes}),
      // Probes, scrapes and the maintenance switch: small requests, few connections.
      ops_server_(io_, ops_router_,
                  http::HttpServerLimits{.max_body_bytes = 64 * 1024,
                                         .body_limit_name = "the ops port's limit",
                                         .max_connections = 256}),
      signals_(io_, SIGTERM, SIGINT) {
  register_routes();
  access_.set_observer([this] { on_access_changed(); });
  on_access_changed();
  if (config_.reports_to_cluster()) {
    const PodIdentity pod{config_.pod_name, config_.pod_namespace, config_.codexproxy_name,
                          config_.pod_uid};
    auto kube_config = config_.kubeconfig.empty() ? kube::in_cluster_config()
                                                  : kube::load_kubeconfig(config_.kubeconfig);
    LiveSettings initial;
    initial.maintenance = config_.maintenance;
    initial.retry_after_s = config_.maintenance_retry_after_s;
    initial.trace_enabled = config_.trace_buffer;
    initial.trace_ttl_s = config_.trace_ttl.count();
    initial.trace_max_files = config_.trace_max_files;
    cluster_ = std::make_unique<ClusterLink>(
        std::move(kube_config), pod, config_.heartbeat, initial, io_,
        [this](const LiveSettings& settings) { apply_live_settings(settings); });
    supervisor_.set_state_observer([this](const WorkerSnapshot&) { report_state(); });
    maintenance_.set_observer([this](const MaintenanceState&) { report_state(); });
  }
}

void ProxyServer::report_state() {
  if (cluster_) {
    std::string problem = settings_problem_;
    if (const auto access = access_.problem(); !access.empty()) {
      problem += (problem.empty() ? "" : "; ") + access;
    }
    cluster_->report(make_pod_report(supervisor_.snapshot(), maintenance_.state().enabled,
                                     settings_generation_, utf8_prefix(problem, kMaxSettingsError),
                                     api_.load().in_flight));
  }
}

std::vector<std::string> ProxyServer::secrets() const {
  auto out = config_.secrets();
  for (auto& secret : access_.secrets()) out.push_back(std::move(secret));
  return out;
}

void ProxyServer::on_access_changed() {
  // A key or token read from a file is redacted like those of the environment.
  telemetry::configure_json_log(config_.log_level, telemetry::Redactor(secrets()));
  trace_.set_redactor(telemetry::Redactor(secrets()));
  api_.set_redactor(telemetry::Redactor(secrets()));
  report_state();
}

void ProxyServer::apply_live_settings(const LiveSettings& settings) {
  maintenance_.set({settings.maintenance, settings.retry_after_s}, "codexproxy_settings");
  access_.set_share(settings.limit_pods);
  trace_.apply(settings.trace_enabled, std::chrono::seconds(settings.trace_ttl_s),
               settings.trace_max_files);
  settings_problem_ = settings.problem;
  if (settings.generation != settings_generation_) {
    settings_generation_ = settings.generation;
    log_.info("settings_applied", {{"settings_generation", settings.generation},
                                   {"maintenance_mode", settings.maintenance},
                                   {"trace_buffer", settings.trace_enabled}});
  }
  report_state();
}

void ProxyServer::register_routes() {
  auto probe_input = [this] {
    return ProbeInput{supervisor_.snapshot(), maintenance_.state().enabled,
                      std::chrono::steady_clock::now(), started_at_, api_.load()};
  };
  auto respond = [](const http::HttpRequest& request, const ProbeResponse& probe) {
    return http::make_response(request, probe.status, probe.content_type, probe.body);
  };
  // The API port serves /v1/* only; everything an operator or the kubelet calls is on the ops
  // port, so that a NetworkPolicy can admit monitoring without admitting callers (and back).
  ops_router_.add_simple(beast_http::verb::get, "/readyz", [=](const http::HttpRequest& request) {
    return respond(
        request, readiness_probe(probe_input(), http::has_query_flag(request.target(), "verbose")));
  });
  ops_router_.add_simple(beast_http::verb::get, "/livez", [=](const http::HttpRequest& request) {
    return respond(
        request, liveness_probe(probe_input(), http::has_query_flag(request.target(), "verbose")));
  });
  ops_router_.add_simple(beast_http::verb::get, "/healthz", [=](const http::HttpRequest& request) {
    return respond(request, health_summary(probe_input()));
  });
  api_.register_routes(router_);
  register_maintenance_endpoint(ops_router_, maintenance_,
                                [this] { return access_.admin_tokens(); });
  if (config_.enable_metrics) {
    ops_router_.add_simple(
        beast_http::verb::get, "/metrics",
        [this](const http::HttpRequest& request) { return serve_metrics(request); });
  }
  api_.set_queue_wait_observer(
      [this](std::chrono::milliseconds waited) { metrics_.observe_queue_wait(waited); });
  for (auto* server : {&server_, &ops_server_}) {
    server->set_request_observer(
        [this](const http::HttpServer::ObservedRequest& r) { metrics_.observe_request(r); });
  }
}

http::HttpResponse ProxyServer::serve_metrics(const http::HttpRequest& request) {
  if (const auto tokens = access_.metrics_tokens(); !tokens.empty()) {
    if (auto refusal = http::refuse_without_bearer(request, tokens,
                                                   config_.metrics_token_file.empty()
                                                       ? "PROXY_METRICS_TOKEN"
                                                       : "PROXY_METRICS_TOKEN_FILE")) {
      return *refusal;
    }
  }
  const MetricsSources sources{supervisor_.snapshot(),
                               maintenance_.state().enabled,
                               api_.stats().maintenance_refused.load(),
                               api_.stats().streams_active.load(),
                               api_.stats().tool_buffer,
                               trace_.files(),
                               trace_.pruned_ttl(),
                               trace_.pruned_count(),
                               trace_.write_errors(),
                               cluster_ ? cluster_->reports_written() : 0,
                               cluster_ ? cluster_->reports_failed() : 0,
                               api_.stats().params_ignored,
                               api_.stats().tokens,
                               access_.refusals(),
                               access_.files(),
                               api_.load(),
                               api_.stats().admission_refused};
  return http::make_response(request, 200, "text/plain; version=0.0.4; charset=utf-8",
                             metrics_.scrape(sources));
}

int ProxyServer::run() {
  server_.listen(config_.host, config_.port);
  ops_server_.listen(config_.host, config_.ops_port);
  log_.info("listening", {{"host", config_.host},
                          {"port", server_.port()},
                          {"ops_port", ops_server_.port()},
                          {"version", CXP_VERSION},
                          {"worker_command", config_.codex.bin + " app-server"}});
  signals_.async_wait([this](boost::system::error_code ec, int signal) {
    if (!ec) on_signal(signal);
  });
  // One warning at start naming every setting left open (the same list as codex_insecure_config).
  if (const auto insecure = insecure_settings(config_); !insecure.empty()) {
    static const std::map<std::string, std::string> consequence = {
        {"PROXY_API_KEY", "no API key: /v1/* accept any caller"},
        {"PROXY_ADMIN_TOKEN", "no admin token: /internal/maintenance answers 404"},
        {"PROXY_METRICS_TOKEN", "no metrics token: /metrics answer anyone who reaches the pod"}};
    std::string message;
    for (const auto& setting : insecure) {
      message += (message.empty() ? "" : "; ") + consequence.at(setting);
    }
    log_.warn("insecure_config", {{"settings", insecure}, {"message", message}});
  }
  trace_.prune();
  schedule_trace_prune();
  access_.start();
  if (cluster_) {
    cluster_->start();
    report_state();
    schedule_load_report();
    log_.info("cluster_link_started", {{"pod", config_.pod_name},
                                       {"namespace", config_.pod_namespace},
                                       {"codexproxy", config_.codexproxy_name}});
  }
  supervisor_.start();
  io_.run();
  if (cluster_) cluster_->stop(std::chrono::seconds(2));  // the final (stopped) state, if it can
  log_.info("exited", {{"worker_state", to_string(supervisor_.snapshot().state)}});
  return 0;
}

void ProxyServer::schedule_trace_prune() {
  trace_prune_timer_.expires_after(std::chrono::seconds(60));
  trace_prune_timer_.async_wait([this](boost::system::error_code ec) {
    if (ec) return;
    trace_.prune();
    schedule_trace_prune();
  });
}

void ProxyServer::schedule_load_report() {
  load_report_timer_.expires_after(config_.heartbeat);
  load_report_timer_.async_wait([this](boost::system::error_code ec) {
    if (ec) return;
    report_state();
    schedule_load_report();
  });
}

void ProxyServer::on_signal(int signal) {
  ++signals_seen_;
  signals_.async_wait([this](boost::system::error_code ec, int signal) {
    if (!ec) on_signal(signal);
  });
  if (signals_seen_ > 1) {
    log_.warn("shutdown_forced", {{"signal", signal}});
    supervisor_.force_stop();
    return;
  }
  log_.info("shutdown_started",
            {{"signal", signal}, {"grace_ms", config_.worker_shutdown_grace.count()}});
  supervisor_.shutdown([this] {
    server_.stop();
    ops_server_.stop();
    signals_.cancel();
    trace_prune_timer_.cancel();
    load_report_timer_.cancel();
    access_.stop();
    io_.stop();
  });
}

}  // namespace cxp::proxy
