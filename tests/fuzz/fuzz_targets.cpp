#include "tests/fuzz/fuzz_targets.h"

#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <algorithm>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <thread>

#include "common/config_value.h"
#include "common/http/http_server.h"
#include "common/json_fields.h"
#include "common/kube/kube_config.h"
#include "common/telemetry/redaction.h"
#include "controller/codexproxy_spec.h"
#include "controller/render.h"
#include "proxy/api/chat_request.h"
#include "proxy/api/chat_response.h"
#include "proxy/api/model_failure.h"
#include "proxy/api/output_format.h"
#include "proxy/api/responses_request.h"
#include "proxy/api/stop_sequences.h"
#include "proxy/api/turn_request.h"
#include "proxy/reporter/pod_report.h"
#include "proxy/rpc/json_rpc_message.h"
#include "proxy/rpc/line_splitter.h"

namespace cxp::fuzz {
namespace {

using nlohmann::json;

std::string_view text_of(const std::uint8_t* data, std::size_t size) {
  return {reinterpret_cast<const char*>(data), size};
}

// A broken invariant: abort, so that libFuzzer (and the unit replay) report it.
void require(bool holds, const char* what) {
  if (!holds) {
    std::fprintf(stderr, "fuzz invariant broken: %s\n", what);
    std::abort();
  }
}

bool is_json(const std::string& text) {
  return !json::parse(text, nullptr, false).is_discarded();
}

const proxy::ParseOptions kOptions{{"gpt-5", "codex"}, "gpt-5", {}};

// An API request parser: an error is a 4xx envelope naming what is wrong; a request renders.
template <typename Parse>
int api_request(std::string_view body, Parse parse) {
  auto parsed = parse(body, kOptions);
  if (const auto* error = std::get_if<proxy::ApiError>(&parsed)) {
    require(error->status >= 400 && error->status < 500, "a refused request answers 4xx");
    require(!error->message.empty(), "a refusal says why");
    require(is_json(proxy::api_error_json(*error)), "the error envelope is JSON");
    return 0;
  }
  const auto& request = std::get<proxy::TurnRequest>(parsed);
  require(!proxy::validate_turn_request(request, "messages").has_value(),
          "a parsed request is valid");
  (void)request.format.worker_schema().dump();
  for (const auto& item : request.history) (void)proxy::history_item_json(item).dump();
  return 0;
}

// A model's answer as deltas: the first byte says where the deltas are cut. The json_object
// unwrapper gives the same text however the answer is cut, and the stop sequences ("\n\n", the
// input's second and third bytes) give a prefix of the answer that holds no stop sequence.
int answer_stream(const std::uint8_t* data, std::size_t size) {
  if (size < 3) return 0;
  const auto answer = text_of(data + 1, size - 1);
  const std::size_t step = 1 + data[0] % 17;
  proxy::JsonObjectUnwrapper whole;
  std::string expected = whole.feed(answer);
  expected += whole.finish();
  proxy::JsonObjectUnwrapper cut;
  std::string unwrapped;
  for (std::size_t at = 0; at < answer.size(); at += step)
    unwrapped += cut.feed(answer.substr(at, step));
  unwrapped += cut.finish();
  require(unwrapped == expected, "the unwrapped answer does not depend on how the deltas cut it");
  const std::vector<std::string> stops{"\n\n", std::string(answer.substr(0, 2))};
  proxy::StopSequences stop(stops);
  std::string out;
  for (std::size_t at = 0; at < answer.size() && !stop.stopped(); at += step) {
    out += stop.feed(answer.substr(at, step));
  }
  out += stop.finish();
  require(answer.compare(0, out.size(), out) == 0, "the cut answer is a prefix of the answer");
  for (const auto& s : stops) require(out.find(s) == std::string::npos, "no stop sequence is sent");
  (void)proxy::strict_schema_problem(json::parse(answer, nullptr, false));
  return 0;
}

int chat_request(const std::uint8_t* data, std::size_t size) {
  return api_request(text_of(data, size), proxy::parse_chat_request);
}

int responses_request(const std::uint8_t* data, std::size_t size) {
  return api_request(text_of(data, size), proxy::parse_responses_request);
}

// The worker's stdout: split into lines (fed in two pieces, as reads arrive), each classified;
// tool calls and failures rendered as a client receives them.
int worker_lines(const std::uint8_t* data, std::size_t size) {
  const auto text = text_of(data, size);
  proxy::LineSplitter splitter(4096);
  const std::size_t cut = size == 0 ? 0 : data[0] % (size + 1);
  auto lines = splitter.feed(text.substr(0, cut));
  for (auto& line : splitter.feed(text.substr(cut))) lines.push_back(std::move(line));
  lines.push_back(splitter.take_partial());
  proxy::CompletionMeta meta{"chatcmpl-fuzz", 1, "gpt-5"};
  for (const auto& line : lines) {
    require(line.size() <= 4096, "no line past the splitter's bound");
    const auto message = proxy::parse_rpc_line(line);
    if (const auto* request = std::get_if<proxy::RpcServerRequest>(&message)) {
      const auto& p = request->params;
      const auto arguments = proxy::tool_arguments_text(field_of(p, "arguments"));
      if (arguments) {
        require(is_json(*arguments), "tool arguments handed to a client are JSON");
        const proxy::ToolCallOut call{string_field(p, "callId"), string_field(p, "tool"),
                                      *arguments};
        require(is_json(proxy::render_completion(meta, "", {call}, "tool_calls", std::nullopt)),
                "a completion with the call is JSON");
        (void)proxy::sse_tool_call_chunk(meta, 0, call);
      }
      (void)proxy::render_rpc_result_reply(request->id, {{"success", false}});
      (void)proxy::render_rpc_error_reply(request->id, -32601, request->method);
    } else if (const auto* note = std::get_if<proxy::RpcNotification>(&message)) {
      (void)proxy::usage_from_notification(note->params);
      (void)bool_field(note->params, "willRetry", false);
      const auto& turn = field_of(note->params, "turn");
      const auto failure = proxy::model_failure(field_of(note->params, "error").is_object()
                                                    ? field_of(note->params, "error")
                                                    : field_of(turn, "error"));
      require(failure.status == 502 && is_json(proxy::api_error_json(failure)),
              "a model failure is a 502 envelope");
    }
  }
  return 0;
}

const telemetry::Redactor& redactor() {
  static const telemetry::Redactor instance({"sk-configured-secret-42", "admin-token-9876"});
  return instance;
}

bool holds_secret(const std::string& text) {
  return text.find("sk-configured-secret-42") != std::string::npos ||
         text.find("admin-token-9876") != std::string::npos;
}

// Strings under credential keys are masked whole, at any depth.
void require_masked(const json& value, bool under_credential) {
  if (value.is_object()) {
    for (const auto& [key, child] : value.items()) {
      require_masked(child, under_credential || telemetry::Redactor::is_credential_key(key));
    }
  } else if (value.is_array()) {
    for (const auto& child : value) require_masked(child, under_credential);
  } else if (value.is_string() && under_credential) {
    require(value.get<std::string>() == telemetry::Redactor::kMask, "a credential value is masked");
  }
}

// No configured secret survives; a JSON document keeps its shape and loses its credentials.
int redactor_target(const std::uint8_t* data, std::size_t size) {
  const std::string text(text_of(data, size));
  const auto redacted = redactor().redact(text);
  require(!holds_secret(redacted), "configured secrets are removed from text");
  auto document = json::parse(text, nullptr, false);
  if (!document.is_discarded()) {
    redactor().redact_json(document);
    require_masked(document, false);
    require(!holds_secret(document.dump(-1, ' ', false, json::error_handler_t::replace)),
            "configured secrets are removed from JSON");
  }
  return 0;
}

// A kubeconfig file: loads, or a ConfigError naming the file.
int kubeconfig(const std::uint8_t* data, std::size_t size) {
  static const std::string path = "/tmp/cxp-fuzz-kubeconfig-" + std::to_string(::getpid());
  {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
  }
  try {
    const auto config = kube::load_kubeconfig(path);
    require(!config.server.empty(), "a loaded kubeconfig has a server");
  } catch (const ConfigError& error) {
    require(std::string(error.what()).find(path) != std::string::npos, "the error names the file");
  }
  return 0;
}

// A CodexProxy object: wrong types are problems, never exceptions; a usable spec renders.
int codexproxy_spec(const std::uint8_t* data, std::size_t size) {
  const auto object = json::parse(text_of(data, size), nullptr, false);
  if (object.is_discarded()) return 0;
  std::vector<std::string> problems;
  const auto proxy = controller::parse_codexproxy(object, problems);
  for (auto problem : controller::validate_spec(proxy.spec)) problems.push_back(std::move(problem));
  (void)controller::referenced_secrets(proxy.spec);
  if (problems.empty() && !proxy.name.empty()) {
    const auto objects = controller::render_objects(proxy, std::nullopt);
    require(!objects.empty(), "a usable CodexProxy renders its objects");
    (void)controller::restart_hash(proxy.spec);
  }
  return 0;
}

// The settings ConfigMap's data (a map of strings, as the API server guarantees): bad values
// keep the previous settings and become problems naming the key.
int live_settings(const std::uint8_t* data, std::size_t size) {
  const auto parsed = json::parse(text_of(data, size), nullptr, false);
  if (parsed.is_discarded() || !parsed.is_object()) return 0;
  json configmap_data = json::object();
  for (const auto& [key, value] : parsed.items()) {
    configmap_data[key] = value.is_string()
                              ? value.get<std::string>()
                              : value.dump(-1, ' ', false, json::error_handler_t::replace);
  }
  proxy::LiveSettings previous;
  previous.retry_after_s = 7;
  std::vector<std::string> problems;
  const auto settings = proxy::parse_live_settings(configmap_data, previous, problems);
  require(settings.retry_after_s >= 0 && settings.retry_after_s <= 86400, "retry-after in bounds");
  require(settings.trace_ttl_s >= 1 && settings.trace_max_files >= 1, "trace bounds hold");
  require(settings.generation >= 0, "generation is not negative");
  for (const auto& problem : problems) {
    require(problem.find("ConfigMap key ") != std::string::npos, "a problem names its key");
  }
  return 0;
}

// The HTTP server: raw bytes on a real connection to a real session (one GET route, one POST
// route that echoes, one that streams), then the client's half-close. The server must answer or
// close within its timeouts, whatever arrived; a connection still open 5 s later is a hang.
class ServerUnderFuzz {
 public:
  ServerUnderFuzz() {
    router_.add_simple(boost::beast::http::verb::get, "/readyz", [](const http::HttpRequest& r) {
      return http::make_response(r, 200, "application/json", "{}");
    });
    router_.add_simple(boost::beast::http::verb::post, "/echo", [](const http::HttpRequest& r) {
      return http::make_response(r, 200, "application/octet-stream", r.body());
    });
    router_.add(boost::beast::http::verb::post, "/stream", [](const http::ExchangePtr& exchange) {
      http::HttpResponse head{boost::beast::http::status::ok, exchange->request().version()};
      head.set(boost::beast::http::field::content_type, "text/event-stream");
      exchange->start_stream(std::move(head));
      exchange->send("data: one\n\n");
      exchange->send("data: [DONE]\n\n");
      exchange->end_stream();
    });
    http::HttpServerLimits limits;
    limits.max_body_bytes = 4096;
    limits.max_header_bytes = 2048;
    limits.read_timeout = std::chrono::milliseconds(500);
    limits.idle_timeout = std::chrono::milliseconds(500);
    limits.write_timeout = std::chrono::milliseconds(500);
    server_.emplace(io_, router_, limits);
    server_->listen("127.0.0.1", 0);
    thread_ = std::thread([this] { io_.run(); });
    thread_.detach();  // lives as long as the process
  }

  void feed(std::string_view bytes) {
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    require(fd >= 0, "a client socket");
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(server_->port());
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    // connect() interrupted by a signal goes on in the background: wait until it is done.
    int connected = ::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address);
    while (connected != 0 && (errno == EINTR || errno == EALREADY)) {
      connected = ::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address);
      if (connected != 0 && errno == EISCONN) connected = 0;
    }
    require(connected == 0, "connect");
    timeval timeout{5, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
    ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof timeout);
    // libFuzzer's timer signals interrupt blocking calls (EINTR): those are retried.
    std::size_t sent = 0;
    while (sent < bytes.size()) {
      const auto n = ::send(fd, bytes.data() + sent, bytes.size() - sent, MSG_NOSIGNAL);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) break;  // the server closed early (a refused request): fine
      sent += static_cast<std::size_t>(n);
    }
    ::shutdown(fd, SHUT_WR);
    char buffer[4096];
    for (;;) {
      const auto n = ::recv(fd, buffer, sizeof buffer, 0);
      if (n == 0) break;  // closed: done
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) {
        if (errno != ECONNRESET) std::fprintf(stderr, "recv: %s\n", std::strerror(errno));
        require(errno == ECONNRESET, "the server closes the connection within its timeouts");
        break;
      }
    }
    ::close(fd);
  }

 private:
  boost::asio::io_context io_;
  http::HttpRouter router_;
  std::optional<http::HttpServer> server_;
  std::thread thread_;
};

int http_server(const std::uint8_t* data, std::size_t size) {
  static ServerUnderFuzz* server = new ServerUnderFuzz();  // never destroyed: its thread runs on
  server->feed(text_of(data, size));
  return 0;
}

}  // namespace

const std::vector<FuzzTarget>& fuzz_targets() {
  static const std::vector<FuzzTarget> targets{
      {"chat_request", chat_request},   {"responses_request", responses_request},
      {"worker_lines", worker_lines},   {"redactor", redactor_target},
      {"kubeconfig", kubeconfig},       {"codexproxy_spec", codexproxy_spec},
      {"live_settings", live_settings}, {"http_server", http_server},
      {"answer_stream", answer_stream},
  };
  return targets;
}

const FuzzTarget* find_fuzz_target(std::string_view name) {
  const auto& targets = fuzz_targets();
  const auto found = std::find_if(targets.begin(), targets.end(),
                                  [&](const FuzzTarget& t) { return t.name == name; });
  return found == targets.end() ? nullptr : &*found;
}

}  // namespace cxp::fuzz
