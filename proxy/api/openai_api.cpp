#include "proxy/api/openai_api.h"

#include <algorithm>
#include <boost/beast/http/field.hpp>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "proxy/api/chat_request.h"
#include "proxy/api/responses_request.h"

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

}  // namespace

OpenAiApi::OpenAiApi(boost::asio::io_context& io, const ProxyConfig& config,
                     WorkerSupervisor& supervisor, const MaintenanceSwitch& maintenance,
                     TraceBuffer* trace, AccessControl& access)
    : io_(io),
      config_(config),
      supervisor_(supervisor),
      maintenance_(maintenance),
      access_(access),
      models_(config.served_models()),
      gate_(std::make_shared<AdmissionGate>(io, config.worker_max_concurrency, config.queue_max,
                                            config.queue_timeout)),
      redactor_(config.secrets()) {
  turn_settings_.request_timeout = config.worker_request_timeout;
  turn_settings_.keepalive = config.sse_keepalive;
  turn_settings_.worker_model = config.codex_model;
  turn_settings_.default_instructions = config.default_instructions;
  parse_options_.models = models_;
  parse_options_.default_model = config.codex_model;
  parse_options_.images = {config.max_images, config.max_image_bytes};
  turn_settings_.reserved_tool_names = reserved_tool_names(config.codex.builtin_tools);
  turn_settings_.stats = &stats_;
  turn_settings_.trace = trace;
  turn_settings_.redactor = &redactor_;
  std::error_code ec;
  turn_settings_.cwd = std::filesystem::current_path(ec).string();
  if (ec) turn_settings_.cwd = "/";
  supervisor_.set_notification_sink([this](const RpcNotification& note) { turns_.route(note); });
  supervisor_.set_request_sink([this](const RpcServerRequest& request, JsonRpcChannel& channel) {
    turns_.route_request(request, channel);
  });
  supervisor_.set_worker_lost_handler(
      [this](const std::string& reason, const JsonRpcChannel* channel) {
        turns_.worker_lost(channel, reason);
      });
  supervisor_.set_in_flight_source(
      [this](const JsonRpcChannel* channel) { return turns_.active(channel); });
  turn_settings_.on_turn_started = [this](const JsonRpcChannel* channel) {
    supervisor_.note_turn(channel);
  };
}

void OpenAiApi::register_routes(http::HttpRouter& router) {
  router.add(beast_http::verb::post, "/v1/chat/completions",
             [this](const http::ExchangePtr& exchange) {
               serve_turn(exchange, "/v1/chat/completions", parse_chat_request, make_chat_renderer);
             });
  router.add(beast_http::verb::post, "/v1/responses", [this](const http::ExchangePtr& exchange) {
    serve_turn(exchange, "/v1/responses", parse_responses_request, make_responses_renderer);
  });
  router.add(beast_http::verb::get, "/v1/models", [this](const http::ExchangePtr& exchange) {
    const auto& request = exchange->request();
    auto caller = gatekeeper(request);
    if (auto* refusal = std::get_if<ApiError>(&caller)) {
      exchange->set_caller(refusal->status == 401 ? std::string(kInvalidCaller)
                                                  : std::string(kAnonymousCaller));
      return exchange->respond(render_api_error(request, *refusal));
    }
    const auto& who = std::get<AccessControl::Caller>(caller);
    exchange->set_caller(who.name());
    exchange->respond(models(request, who));
  });
}

std::variant<AccessControl::Caller, ApiError> OpenAiApi::gatekeeper(
    const http::HttpRequest& request) const {
  auto caller = access_.authenticate(request[beast_http::field::authorization]);
  if (std::holds_alternative<ApiError>(caller)) return caller;
  if (const auto& state = maintenance_.state(); state.enabled) {
    ApiError e;
    e.status = 503;
    e.type = "server_error";
    e.code = "maintenance";
    e.message = "the proxy is in maintenance mode; retry later";
    e.retryable = true;
    e.retry_after_s = state.retry_after_s;
    stats_.maintenance_refused.fetch_add(1, std::memory_order_relaxed);
    return e;
  }
  return caller;
}

http::HttpResponse OpenAiApi::models(const http::HttpRequest& request,
                                     const AccessControl::Caller& caller) const {
  nlohmann::json data = nlohmann::json::array();
  for (const auto& model : access_.models_for(caller)) {
    data.push_back(
        {{"id", model}, {"object", "model"}, {"created", 0}, {"owned_by", "codex-proxy"}});
  }
  return http::make_response(request, 200, "application/json",
                             nlohmann::json{{"object", "list"}, {"data", data}}.dump());
}

void OpenAiApi::refuse(const http::ExchangePtr& exchange, std::string_view route,
                       const ApiError& error, std::string_view caller) const {
  log_.info("request_refused", {{"request_id", exchange->request_id()},
                                {"route", route},
                                {"key", caller},
                                {"status", error.status},
                                {"error_code", error.code},
                                {"retryable", error.retryable},
                                {"maintenance_mode", maintenance_.state().enabled}});
  stats_.admission_refused.count(error.code);
  exchange->respond(render_api_error(exchange->request(), error));
}

void OpenAiApi::serve_turn(const http::ExchangePtr& exchange, std::string_view route, Parser parse,
                           RendererFactory renderer) {
  const auto& request = exchange->request();
  log_.info("request_received", {{"request_id", exchange->request_id()},
                                 {"route", route},
                                 {"body_bytes", request.body().size()}});
  auto authenticated = gatekeeper(request);
  if (auto* refusal = std::get_if<ApiError>(&authenticated)) {
    const std::string who(refusal->status == 401 ? kInvalidCaller : kAnonymousCaller);
    exchange->set_caller(who);
    return refuse(exchange, route, *refusal, who);
  }
  const auto caller = std::get<AccessControl::Caller>(std::move(authenticated));
  exchange->set_caller(caller.name());
  if (!is_json_content_type(request[beast_http::field::content_type])) {
    ApiError e;
    e.status = 415;
    e.code = "unsupported_media_type";
    e.message = "Content-Type must be application/json, found '" +
                std::string(request[beast_http::field::content_type]).substr(0, 100) + "'";
    return refuse(exchange, route, e, caller.name());
  }
  auto parsed = parse(request.body(), parse_options_);
  if (auto* error = std::get_if<ApiError>(&parsed)) {
    if (error->code == "model_not_found") exchange->set_model("?");  // labelled "other"
    return refuse(exchange, route, *error, caller.name());
  }
  auto turn = std::get<TurnRequest>(std::move(parsed));
  exchange->set_model(turn.model);
  stats_.params_ignored.count(turn.ignored_params);
  // The key's own limits first: a key past them waits in no queue and takes no slot from others.
  auto admitted = access_.admit(caller, turn.model);
  for (auto& [name, value] : access_.rate_headers(caller)) exchange->add_header(name, value);
  if (auto* refusal = std::get_if<ApiError>(&admitted))
    return refuse(exchange, route, *refusal, caller.name());
  auto permit = std::get<PermitPtr>(std::move(admitted));

  auto cancel_wait = gate_->acquire([this, exchange, turn, route = std::string(route), renderer,
                                     permit = std::move(permit), caller = caller.name()](
                                        AdmissionGate::TicketPtr ticket,
                                        AdmissionGate::Refusal refusal,
                                        std::chrono::milliseconds waited) mutable {
    if (queue_wait_observer_ && refusal != AdmissionGate::Refusal::kQueueFull) {
      queue_wait_observer_(waited);
    }
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
      return refuse(exchange, route, e, caller);
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
      return refuse(exchange, route, e, caller);
    }
    auto rendering = renderer(exchange->request_id(), turn);
    std::make_shared<TurnSession>(
        io_, exchange, std::move(turn), std::move(rendering), std::move(channel), turns_,
        turn_settings_, TurnSession::Holds{std::move(ticket), std::move(permit), std::move(caller)})
        ->start();
  });
  exchange->on_client_gone(std::move(cancel_wait));
}

}  // namespace cxp::proxy
