#include "proxy/api/openai_api.h"

#include <algorithm>
#include <boost/beast/http/field.hpp>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "common/secure_compare.h"

namespace cxp::proxy {

namespace beast_http = boost::beast::http;

namespace {

constexpr int kNotReadyRetryAfterS = 2;
constexpr int kQueueFullRetryAfterS = 1;

bool is_json_content_type(std::string_view value) {
  const auto semicolon = value.find(';');
  auto type = value.substr(0, semicolon);
  while (!type.empty() && type.back() == ' ') type.remove_suffix(1);
  std::string lower(type);
  for (auto& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return lower == "application/json";
}

std::vector<std::string> served_models(const ProxyConfig& config) {
  std::vector<std::string> models{config.codex_model};
  for (const auto& alias : config.model_aliases) {
    if (std::find(models.begin(), models.end(), alias) == models.end()) models.push_back(alias);
  }
  return models;
}

}  // namespace

OpenAiApi::OpenAiApi(boost::asio::io_context& io, const ProxyConfig& config,
                     WorkerSupervisor& supervisor, const MaintenanceSwitch& maintenance,
                     TraceBuffer* trace)
    : io_(io),
      config_(config),
      supervisor_(supervisor),
      maintenance_(maintenance),
      models_(served_models(config)),
      gate_(std::make_shared<AdmissionGate>(io, config.worker_max_concurrency, config.queue_max,
                                            config.queue_timeout)),
      redactor_(config.secrets()) {
  chat_settings_.request_timeout = config.worker_request_timeout;
  chat_settings_.keepalive = config.sse_keepalive;
  chat_settings_.worker_model = config.codex_model;
  chat_settings_.stats = &stats_;
  chat_settings_.trace = trace;
  chat_settings_.redactor = &redactor_;
  std::error_code ec;
  chat_settings_.cwd = std::filesystem::current_path(ec).string();
  if (ec) chat_settings_.cwd = "/";
  supervisor_.set_notification_sink([this](const RpcNotification& note) { turns_.route(note); });
  supervisor_.set_worker_lost_handler(
      [this](const std::string& reason) { turns_.worker_lost(reason); });
  supervisor_.set_in_flight_source([this] { return in_flight(); });
}

void OpenAiApi::register_routes(http::HttpRouter& router) {
  router.add(beast_http::verb::post, "/v1/chat/completions",
             [this](const http::ExchangePtr& exchange) { chat_completions(exchange); });
  router.add_simple(beast_http::verb::get, "/v1/models", [this](const http::HttpRequest& request) {
    if (auto refusal = gatekeeper(request)) return render_api_error(request, *refusal);
    return models(request);
  });
}

std::optional<ApiError> OpenAiApi::gatekeeper(const http::HttpRequest& request) const {
  if (!config_.api_key.empty()) {
    const auto header = request[beast_http::field::authorization];
    const bool has_bearer = header.rfind("Bearer ", 0) == 0;
    if (!bearer_matches(header, config_.api_key)) {
      ApiError e;
      e.status = 401;
      e.code = "invalid_api_key";
      e.message = has_bearer ? "Incorrect API key provided."
                             : "Missing bearer token in the Authorization header.";
      return e;
    }
  }
  if (const auto& state = maintenance_.state(); state.enabled) {
    ApiError e;
    e.status = 503;
    e.type = "server_error";
    e.code = "maintenance";
    e.message = "the proxy is in maintenance mode; retry later";
    e.retryable = true;
    e.retry_after_s = state.retry_after_s;
    return e;
  }
  return std::nullopt;
}

http::HttpResponse OpenAiApi::models(const http::HttpRequest& request) const {
  nlohmann::json data = nlohmann::json::array();
  for (const auto& model : models_) {
    data.push_back(
        {{"id", model}, {"object", "model"}, {"created", 0}, {"owned_by", "codex-proxy"}});
  }
  return http::make_response(request, 200, "application/json",
                             nlohmann::json{{"object", "list"}, {"data", data}}.dump());
}

void OpenAiApi::refuse(const http::ExchangePtr& exchange, const ApiError& error) const {
  log_.info("request_refused", {{"request_id", exchange->request_id()},
                                {"route", "/v1/chat/completions"},
                                {"status", error.status},
                                {"error_code", error.code},
                                {"retryable", error.retryable},
                                {"maintenance_mode", maintenance_.state().enabled}});
  exchange->respond(render_api_error(exchange->request(), error));
}

void OpenAiApi::chat_completions(const http::ExchangePtr& exchange) {
  const auto& request = exchange->request();
  log_.info("request_received", {{"request_id", exchange->request_id()},
                                 {"route", "/v1/chat/completions"},
                                 {"body_bytes", request.body().size()}});
  if (auto refusal = gatekeeper(request)) return refuse(exchange, *refusal);
  if (!is_json_content_type(request[beast_http::field::content_type])) {
    ApiError e;
    e.status = 415;
    e.code = "unsupported_media_type";
    e.message = "Content-Type must be application/json, found '" +
                std::string(request[beast_http::field::content_type]).substr(0, 100) + "'";
    return refuse(exchange, e);
  }
  auto parsed = parse_chat_request(request.body(), models_, config_.codex_model);
  if (auto* error = std::get_if<ApiError>(&parsed)) {
    if (error->code == "model_not_found") exchange->set_model("?");  // labelled "other"
    return refuse(exchange, *error);
  }
  auto chat = std::get<ChatRequest>(std::move(parsed));
  exchange->set_model(chat.model);

  auto cancel_wait = gate_->acquire([this, exchange, chat](AdmissionGate::TicketPtr ticket,
                                                           AdmissionGate::Refusal refusal) mutable {
    if (!ticket) {
      ApiError e;
      e.status = 429;
      e.type = "rate_limit_error";
      e.code = refusal == AdmissionGate::Refusal::kQueueFull ? "queue_full" : "queue_timeout";
      e.message =
          refusal == AdmissionGate::Refusal::kQueueFull
              ? "too many requests in flight (WORKER_MAX_CONCURRENCY and PROXY_QUEUE_MAX reached)"
              : "waited longer than PROXY_QUEUE_TIMEOUT_MS for a free worker slot";
      e.retryable = true;
      e.retry_after_s = kQueueFullRetryAfterS;
      return refuse(exchange, e);
    }
    if (exchange->client_gone()) return;
    auto channel = supervisor_.channel();
    if (!channel) {
      ApiError e;
      e.status = 503;
      e.type = "server_error";
      e.code = "worker_not_ready";
      e.message = "the worker is not ready (state: " +
                  std::string(to_string(supervisor_.snapshot().state)) + "); retry shortly";
      e.retryable = true;
      e.retry_after_s = kNotReadyRetryAfterS;
      return refuse(exchange, e);
    }
    std::make_shared<ChatCompletion>(io_, exchange, std::move(chat), std::move(channel), turns_,
                                     chat_settings_, std::move(ticket))
        ->start();
  });
  exchange->on_client_gone(std::move(cancel_wait));
}

}  // namespace cxp::proxy
