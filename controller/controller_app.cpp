#include "controller/controller_app.h"

#include <unistd.h>

#include <algorithm>
#include <boost/asio/post.hpp>
#include <chrono>
#include <cstdlib>
#include <random>

#include "common/backoff.h"
#include "common/json_fields.h"
#include "controller/render.h"

namespace cxp::controller {

using nlohmann::json;
namespace res = kube::resources;
namespace beast_http = boost::beast::http;

namespace {

constexpr const char* kPodDeletionCostAnnotation = "controller.kubernetes.io/pod-deletion-cost";
// The field manager of the leader's mark on its own pod (server-side apply: applying no
// annotation removes the one this manager set, and nothing else).
constexpr const char* kLeaderFieldManager = "codexproxy-controller-leader";

std::string make_identity() {
  char host[256] = {};
  gethostname(host, sizeof host - 1);
  std::random_device device;
  char suffix[16];
  std::snprintf(suffix, sizeof suffix, "%08x", device());
  return std::string(host) + "_" + suffix;
}

std::string host_of(const std::string& server) {
  auto rest = server.substr(server.find("://") == std::string::npos ? 0 : server.find("://") + 3);
  return rest.substr(0, rest.find('/'));
}

// What the controller reads of a pod: who it is, whose it is, whether it is going, and whether the
// scheduler could place it. The rest (the whole spec, most of the status) is not cached.
// The members `keys` of `from` that it has (an object, or not: then none).
json pick(const json& from, std::initializer_list<const char*> keys) {
  json out = json::object();
  for (const char* key : keys) {
    if (const auto& value = field_of(from, key); !value.is_null()) out[key] = value;
  }
  return out;
}

void trim_pod(json& pod) {
  json metadata = pick(field_of(pod, "metadata"), {"name", "namespace", "uid", "resourceVersion",
                                                   "labels", "deletionTimestamp"});
  json conditions = json::array();
  for (const auto& condition : field_of(field_of(pod, "status"), "conditions")) {
    if (string_field(condition, "type") == "PodScheduled") conditions.push_back(condition);
  }
  json status = {{"conditions", std::move(conditions)}};
  if (const auto& phase = field_of(field_of(pod, "status"), "phase"); phase.is_string()) {
    status["phase"] = phase;
  }
  pod = {{"metadata", std::move(metadata)}, {"status", std::move(status)}};
}

// A pod's heartbeat Lease: its identity, the report and the renewal.
void trim_lease(json& lease) {
  json metadata =
      pick(field_of(lease, "metadata"), {"name", "namespace", "resourceVersion", "labels"});
  const auto& report =
      field_of(field_of(field_of(lease, "metadata"), "annotations"), kPodReportAnnotation);
  if (report.is_string()) metadata["annotations"] = {{kPodReportAnnotation, report}};
  json spec = pick(field_of(lease, "spec"), {"renewTime", "leaseDurationSeconds"});
  lease = {{"metadata", std::move(metadata)}, {"spec", std::move(spec)}};
}

kube::ClientOptions client_options(const ControllerOptions& options) {
  kube::ClientOptions out;
  out.user_agent = "codexproxy-controller/" CXP_VERSION;
  out.qps = options.kube_api_qps;
  out.burst = options.kube_api_burst;
  return out;
}

}  // namespace

ControllerApp::ControllerApp(ControllerOptions options, kube::KubeConfig config)
    : options_(std::move(options)),
      identity_(make_identity()),
      client_(std::move(config), client_options(options_)),
      metrics_(host_of(client_.config().server), options_.leader_election_id),
      events_(client_, kFieldManager, identity_),
      signals_(io_, SIGTERM, SIGINT) {
  client_.set_request_observer(
      [this](std::string_view method, int status) { metrics_.observe_request(method, status); });

  const auto& ns = options_.namespace_name;
  const std::string managed = std::string(kManagedByLabel) + "=" + kFieldManager;
  auto add = [&](const kube::Resource& resource, const std::string& selector) {
    informers_.push_back(std::make_unique<kube::Informer>(client_, resource, ns, selector));
    return informers_.back().get();
  };
  proxies_ = add(res::kCodexProxies, "");
  proxies_->set_handler([this](kube::Informer::Change change, const json& object) {
    // A status-only change (spec generation already observed) is our own status write: it is
    // looked at again a little later, spec changes at once.
    const auto generation = object["metadata"].value("generation", std::int64_t{0});
    const auto observed =
        object.value("status", json::object()).value("observedGeneration", std::int64_t{-1});
    if (change == kube::Informer::Change::kUpdated && generation == observed) {
      queue_.add_after(kube::object_key(object), kReportAggregation);
    } else {
      queue_.add(kube::object_key(object));
    }
  });
  Caches caches;
  caches.proxies = proxies_;
  for (const auto* resource :
       {&res::kConfigMaps, &res::kServiceAccounts, &res::kRoles, &res::kRoleBindings,
        &res::kServices, &res::kPodDisruptionBudgets, &res::kDeployments}) {
    auto* informer = add(*resource, managed);
    informer->set_handler(
        [this](kube::Informer::Change, const json& object) { enqueue_owner(object); });
    caches.owned[resource->plural] = informer;
  }
  for (auto* kind : optional_kinds()) {
    kind->informer = add(*kind->resource, managed);
    kind->informer->set_handler(
        [this](kube::Informer::Change, const json& object) { enqueue_owner(object); });
  }
  pods_ = add(res::kPods, std::string(kPodAppLabel) + "=" + kPodAppValue);
  pods_->set_index_label(kInstanceLabel);
  pods_->set_transform(trim_pod);
  pods_->set_handler([this](kube::Informer::Change, const json& object) { enqueue_owner(object); });
  caches.pods = pods_;
  leases_ = add(res::kLeases, std::string(kPodAppLabel) + "=" + kPodAppValue);
  leases_->set_transform(trim_lease);
  leases_->set_handler([this](kube::Informer::Change change, const json& object) {
    // A pod's report changed, or its heartbeat came back: the status changes. The first change
    // after a quiet window goes out at once, the changes of many pods within the window in one
    // status write at its end (ReportWindow). A mere renewal changes nothing the status shows
    // (expiry is found by the reconcile's recheck): no work.
    if (change == kube::Informer::Change::kDeleted) {
      heartbeats_.forget(kube::object_key(object));
    } else if (heartbeats_.observe(object, HeartbeatClock::Clock::now()) ==
               HeartbeatClock::Seen::kRenewed) {
      return;
    }
    const auto& metadata = object["metadata"];
    const auto owner = metadata.value("labels", json::object()).value(kInstanceLabel, "");
    if (!owner.empty()) {
      const auto key = metadata.value("namespace", "") + "/" + owner;
      queue_.add_after(key, report_window_.delay(key, ReportWindow::Clock::now()));
    }
  });
  caches.leases = leases_;
  caches.heartbeats = &heartbeats_;
  reconciler_ = std::make_unique<Reconciler>(client_, std::move(caches), events_, metrics_);

  health_router_.add_simple(
      beast_http::verb::get, "/healthz", [](const http::HttpRequest& request) {
        return http::make_response(request, 200, "text/plain; charset=utf-8", "ok\n");
      });
  health_router_.add_simple(
      beast_http::verb::get, "/readyz", [this](const http::HttpRequest& request) {
        // A standby is ready (as controller-runtime's are): it is a healthy replica, and a
        // rolling update must be able to count it. Which replica leads is in the verbose body.
        const bool synced = caches_synced();
        const bool leading = !options_.leader_elect || (elector_ && elector_->leading());
        const bool ok = synced && !stopping_;
        std::string body;
        if (http::has_query_flag(request.target(), "verbose")) {
          // Which caches have not synced (e.g. a ClusterRole without list on one of the kinds).
          body += std::string(synced ? "[+]" : "[-]") + "informers-synced " +
                  (synced ? "ok" : "failed: not synced: " + unsynced_resources()) + "\n";
          if (options_.leader_elect) {
            body += std::string("[+]leader-election ") + (leading ? "leading" : "standby") + "\n";
          }
          body += std::string(stopping_ ? "[-]shutdown stopping" : "[+]shutdown ok") + "\n";
          body += ok ? "readyz check passed\n" : "readyz check failed\n";
        } else {
          body = ok ? "ok\n" : "not ready\n";
        }
        return http::make_response(request, ok ? 200 : 503, "text/plain; charset=utf-8", body);
      });
  metrics_router_.add(beast_http::verb::get, "/metrics",
                      [this](const http::ExchangePtr& exchange) { serve_metrics(exchange); });
}

void ControllerApp::serve_metrics(const http::ExchangePtr& exchange) {
  const auto scrape = [this](const http::HttpRequest& request) {
    metrics_.set_active_workers(active_workers_.load());
    metrics_.set_leading(!options_.leader_elect || (elector_ && elector_->leading()));
    return http::make_response(request, 200, "text/plain; version=0.0.4; charset=utf-8",
                               metrics_.scrape(queue_));
  };
  if (!metrics_authorizer_) return exchange->respond(scrape(exchange->request()));
  const auto header = exchange->request()[boost::beast::http::field::authorization];
  constexpr std::string_view kBearer = "Bearer ";
  if (header.size() <= kBearer.size() || header.substr(0, kBearer.size()) != kBearer) {
    return exchange->respond(
        http::make_response(exchange->request(), 401, "text/plain; charset=utf-8",
                            "Unauthorized: send a ServiceAccount token (Authorization: Bearer)\n"));
  }
  const std::string token(header.substr(kBearer.size()));
  // Answers on the io thread, whichever thread decided.
  auto answer = [this, exchange, scrape](const MetricsAuthorizer::Decision& decision) {
    boost::asio::post(io_, [this, exchange, scrape, decision] {
      using Verdict = MetricsAuthorizer::Verdict;
      if (decision.verdict == Verdict::kAllowed)
        return exchange->respond(scrape(exchange->request()));
      if (denied_log_.allow(std::chrono::steady_clock::now())) {
        log_.warn("metrics_access_denied", {{"verdict", to_string(decision.verdict)},
                                            {"user", decision.user},
                                            {"detail", decision.detail}});
      }
      const int status = decision.verdict == Verdict::kUnauthenticated ? 401
                         : decision.verdict == Verdict::kForbidden     ? 403
                                                                       : 503;
      const std::string text = status == 401   ? "Unauthorized: " + decision.detail
                               : status == 403 ? "Forbidden: " + decision.detail
                                               : "Unavailable: " + decision.detail;
      exchange->respond(http::make_response(exchange->request(), status,
                                            "text/plain; charset=utf-8", text + "\n"));
    });
  };
  if (auto decision = metrics_authorizer_->cached(token)) return answer(*decision);
  metrics_authorizer_->review_async(token, std::move(answer));
}

// A certificate from files is re-read when it changes (cert-manager renews it in its Secret).
void ControllerApp::watch_certificate() {
  if (!metrics_tls_ || !metrics_tls_->from_files()) return;
  cert_reload_ = std::make_unique<boost::asio::steady_timer>(io_);
  cert_reload_->expires_after(std::chrono::seconds(10));
  cert_reload_->async_wait([this](boost::system::error_code ec) {
    if (ec || stopping_) return;
    std::string error;
    if (metrics_tls_->reload_if_changed(error)) {
      log_.info("metrics_certificate_reloaded", {{"dir", options_.metrics_cert_dir}});
    } else if (!error.empty()) {
      log_.error("metrics_certificate_refused",
                 {{"dir", options_.metrics_cert_dir}, {"error", error}});
    }
    watch_certificate();
  });
}

ControllerApp::~ControllerApp() {
  queue_.shut_down();
  for (auto& worker : workers_) {
    if (worker.joinable()) worker.join();
  }
}

void ControllerApp::enqueue_owner(const json& object) {
  const auto& metadata = object["metadata"];
  const auto owner = metadata.value("labels", json::object()).value(kInstanceLabel, "");
  if (!owner.empty()) queue_.add(metadata.value("namespace", "") + "/" + owner);
}

bool ControllerApp::caches_synced() const {
  return unsynced_resources().empty();
}

std::string ControllerApp::unsynced_resources() const {
  std::string out;
  for (const auto& informer : informers_) {
    const auto kinds = optional_kinds();
    if (std::any_of(kinds.begin(), kinds.end(), [&](const OptionalKind* kind) {
          return informer.get() == kind->informer && !kind->available;
        })) {
      continue;
    }
    if (!informer->synced()) out += (out.empty() ? "" : ", ") + informer->resource().plural;
  }
  return out;
}

bool ControllerApp::discover(const OptionalKind& kind) {
  const JitteredBackoff backoff(std::chrono::milliseconds(500), std::chrono::seconds(30));
  std::mt19937_64 rng{std::random_device{}()};
  kube::ListOptions options;
  options.limit = 1;
  const std::string prefix = kind.log_prefix;
  const json api = {{"api", kind.resource->api_version()}, {"kind", kind.resource->kind}};
  for (std::uint32_t failures = 0; !stopping_;) {
    const auto result = client_.list(*kind.resource, options_.namespace_name, options);
    if (result.ok()) {
      log_.info(prefix + "_found", api);
      return true;
    }
    if (result.error == kube::ErrorKind::kNotFound) {
      log_.info(prefix + "_absent", api);
      return false;
    }
    if (result.error == kube::ErrorKind::kForbidden) {
      log_.warn(prefix + "_forbidden",
                {{"kind", kind.resource->kind}, {"error", result.describe()}});
      return false;
    }
    const auto delay = backoff.delay(++failures, rng);
    log_.warn(prefix + "_discovery_failed",
              {{"error", result.describe()}, {"retry_in_ms", delay.count()}});
    for (auto waited = std::chrono::milliseconds(0); waited < delay && !stopping_;
         waited += std::chrono::milliseconds(50)) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  }
  return false;
}

// With leader election in a pod (POD_NAME and POD_NAMESPACE from the downward API), the leader
// marks its own pod with a higher pod-deletion-cost, so that a rolling update or a scale down
// removes the standbys first and the Lease changes hands once per rollout, not twice. A replica
// clears the mark when it starts (a container restarted after losing the Lease). Best effort: a
// missing `patch pods` permission (a chart before 0.2.0) is logged and changes nothing else.
void ControllerApp::mark_own_pod(bool leading) {
  const char* pod = std::getenv("POD_NAME");
  const char* ns = std::getenv("POD_NAMESPACE");
  if (!options_.leader_elect || pod == nullptr || *pod == '\0' || ns == nullptr || *ns == '\0')
    return;
  json annotations = json::object();
  if (leading) annotations[kPodDeletionCostAnnotation] = "100";
  const json patch = {
      {"apiVersion", "v1"},
      {"kind", "Pod"},
      {"metadata", {{"name", pod}, {"namespace", ns}, {"annotations", annotations}}}};
  auto result = client_.apply(res::kPods, ns, pod, patch, kLeaderFieldManager);
  if (!result.ok()) {
    log_.warn("pod_deletion_cost_not_set", {{"pod", pod}, {"error", result.describe()}});
  }
}

void ControllerApp::start_workers() {
  if (elector_) mark_own_pod(true);
  std::lock_guard lock(workers_mutex_);
  if (stopping_ || workers_started_.exchange(true)) return;
  log_.info("workers_started", {{"workers", options_.max_concurrent_reconciles}});
  for (int i = 0; i < options_.max_concurrent_reconciles; ++i) {
    ++running_workers_;
    workers_.emplace_back([this] {
      worker_loop();
      std::lock_guard lock(workers_mutex_);
      --running_workers_;
      workers_done_.notify_all();
    });
  }
}

void ControllerApp::worker_loop() {
  while (auto key = queue_.get()) {
    const auto slash = key->find('/');
    const auto ns = key->substr(0, slash);
    const auto name = key->substr(slash + 1);
    ++active_workers_;
    const auto started = std::chrono::steady_clock::now();
    ReconcileOutcome outcome;
    try {
      outcome = reconciler_->reconcile(ns, name);
    } catch (const std::exception& error) {  // a bug, not a crash loop: log and retry later
      outcome.result = ReconcileOutcome::Result::kError;
      outcome.error = std::string("unexpected: ") + error.what();
    }
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    --active_workers_;
    switch (outcome.result) {
      case ReconcileOutcome::Result::kSuccess:
        queue_.forget(*key);
        metrics_.observe_reconcile("success", seconds);
        break;
      case ReconcileOutcome::Result::kRequeueAfter:
        queue_.forget(*key);
        queue_.add_after(*key, outcome.after);
        metrics_.observe_reconcile(outcome.error.empty() ? "requeue_after" : "error", seconds);
        break;
      case ReconcileOutcome::Result::kError:
        log_.warn(
            "reconcile_failed",
            {{"codexproxy", *key}, {"error", outcome.error}, {"retry", queue_.failures(*key) + 1}});
        queue_.add_rate_limited(*key);
        metrics_.observe_reconcile("error", seconds);
        break;
    }
    queue_.done(*key);
  }
}

void ControllerApp::shutdown(int exit_code) {
  if (stopping_.exchange(true)) return;
  exit_code_ = exit_code;
  log_.info("shutting_down", {{"exit_code", exit_code}});
  signals_.cancel();
  // Stop taking work, let reconciles in flight finish (each API call has a timeout), then hand
  // the Lease over, then stop watching.
  std::thread([this] {
    queue_.shut_down();
    std::vector<std::thread> workers;
    {
      std::unique_lock lock(workers_mutex_);
      // Reconciles in flight may finish; past kShutdownGrace, cancelling the client fails their
      // API calls at once (the work is redone by whoever leads next).
      if (!workers_done_.wait_for(lock, kShutdownGrace, [this] { return running_workers_ == 0; })) {
        log_.warn("shutdown_cancelling_reconciles", {{"grace_s", kShutdownGrace.count()}});
        client_.cancel();
      }
      workers.swap(workers_);
    }
    for (auto& worker : workers) worker.join();
    if (elector_) elector_->stop_and_release();
    client_.cancel();
    if (metrics_authorizer_) metrics_authorizer_->stop();
    for (auto& informer : informers_) informer->stop();
    boost::asio::post(io_, [this] {
      if (health_server_) health_server_->stop();
      if (metrics_server_) metrics_server_->stop();
      if (cert_reload_) cert_reload_->cancel();
      io_.stop();
    });
  }).detach();
}

int ControllerApp::run() {
  const auto health =
      parse_bind_address("--health-probe-bind-address", options_.health_probe_bind_address);
  const auto metrics = parse_bind_address("--metrics-bind-address", options_.metrics_bind_address);
  http::HttpServerLimits limits;
  limits.max_connections = 64;
  if (!health.disabled) {
    health_server_ = std::make_unique<http::HttpServer>(io_, health_router_, limits);
    health_server_->listen(health.host, health.port);
  }
  if (!metrics.disabled) {
    if (options_.metrics_secure) {
      if (!options_.metrics_cert_dir.empty()) {
        metrics_tls_ =
            tls::ServerTls::from_directory(options_.metrics_cert_dir, "--metrics-cert-dir");
      } else {
        char host[256] = {};
        gethostname(host, sizeof host - 1);
        metrics_tls_ = tls::ServerTls::self_signed({host, "localhost"});
      }
      metrics_authorizer_ = std::make_unique<MetricsAuthorizer>(client_);
    }
    metrics_server_ = std::make_unique<http::HttpServer>(
        io_, metrics_router_, limits, metrics_tls_ ? metrics_tls_->context() : nullptr);
    metrics_server_->listen(metrics.host, metrics.port);
    watch_certificate();
  }
  log_.info("started",
            {{"version", CXP_VERSION},
             {"identity", identity_},
             {"api_server", client_.config().server},
             {"namespace", options_.namespace_name.empty() ? "<all>" : options_.namespace_name},
             {"leader_elect", options_.leader_elect},
             {"health_port", health_server_ ? health_server_->port() : 0},
             {"metrics_port", metrics_server_ ? metrics_server_->port() : 0},
             {"metrics_secure", metrics_authorizer_ != nullptr},
             {"metrics_certificate", !metrics_tls_                ? "none"
                                     : metrics_tls_->from_files() ? "files"
                                                                  : "self-signed"}});
  signals_.async_wait([this](boost::system::error_code ec, int signal) {
    if (ec) return;
    log_.info("signal_received", {{"signal", signal == SIGTERM ? "SIGTERM" : "SIGINT"}});
    shutdown(0);
  });
  if (!options_.leader_elect) {
    log_.warn("leader_election_disabled",
              {{"hint", "development only: a second controller would reconcile the same objects"}});
  }
  if (options_.leader_elect) {
    LeaderElectionConfig config;
    config.namespace_name = options_.leader_election_namespace;
    config.lease_name = options_.leader_election_id;
    config.identity = identity_;
    elector_ = std::make_unique<LeaderElector>(client_, config);
  }
  for (auto& informer : informers_) {
    const auto kinds = optional_kinds();
    if (std::none_of(kinds.begin(), kinds.end(),
                     [&](const OptionalKind* kind) { return informer.get() == kind->informer; })) {
      informer->start();
    }
  }

  // Workers start once the caches are synced and (with leader election) we lead.
  std::thread starter([this] {
    for (auto* kind : optional_kinds()) {
      if (!discover(*kind)) continue;
      reconciler_->own(*kind->resource, kind->informer);
      kind->available = true;
      // On the io thread, as shutdown is: an informer is never started while being stopped.
      boost::asio::post(io_, [this, kind] {
        if (!stopping_) kind->informer->start();
      });
    }
    while (!stopping_ && !caches_synced())
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    if (stopping_) return;
    log_.info("caches_synced", {{"codexproxies", proxies_->size()}});
    if (!options_.leader_elect) {
      start_workers();
      return;
    }
    mark_own_pod(false);
    elector_->start([this] { start_workers(); },
                    [this] { boost::asio::post(io_, [this] { shutdown(1); }); });
  });
  io_.run();
  starter.join();
  return exit_code_;
}

}  // namespace cxp::controller
