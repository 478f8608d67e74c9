// codex-fake-worker: a scripted stand-in for `codex app-server` (newline-delimited JSON-RPC over
// stdio, no "jsonrpc" field). It plays turns without a model so that tests and the demo can run
// offline. Behaviour is scripted by environment variables; see tests/fake-worker/README.md.
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

using nlohmann::json;

namespace {

struct Script {
  long startup_delay_ms = 0;
  std::string handshake_fail;  // "", "error", "exit", "hang"
  long crash_after_turns = -1;
  int exit_code = 1;
  std::string reply = "Hello from codex-fake-worker.";
  long token_delay_ms = 0;
  long turn_start_delay_ms = 0;  // turn/start is answered this late (a client may leave meanwhile)
  long retry_errors = 0;         // `error` notifications with willRetry:true before each reply
  std::string turn_fail;         // each turn fails with this message (an `error`, status failed)
  long hang_turns = 0;           // the first N turns never finish on their own; -1 = all of them
  std::string log_path;
  long shutdown_delay_ms = 0;  // on SIGTERM or stdin EOF, linger this long before exiting
  bool garbage = false;        // emit junk on stdout and a stderr flood before serving
};

long g_shutdown_delay_ms = 0;

std::int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::int64_t now_s() {
  return now_ms() / 1000;
}

void linger_then_exit(int) {
  timespec delay{g_shutdown_delay_ms / 1000, (g_shutdown_delay_ms % 1000) * 1000000L};
  while (nanosleep(&delay, &delay) != 0) {
  }
  _exit(0);
}

long env_long(const char* name, long fallback) {
  const char* value = std::getenv(name);
  if (value == nullptr || *value == '\0') return fallback;
  char* end = nullptr;
  const long parsed = std::strtol(value, &end, 10);
  if (*end != '\0') {
    std::cerr << "codex-fake-worker: " << name << ": expected an integer, found '" << value
              << "'\n";
    std::exit(2);
  }
  return parsed;
}

std::string env_string(const char* name, std::string fallback) {
  const char* value = std::getenv(name);
  return value == nullptr ? fallback : std::string(value);
}

Script load_script() {
  Script s;
  s.startup_delay_ms = env_long("FAKE_CODEX_STARTUP_DELAY_MS", 0);
  s.handshake_fail = env_string("FAKE_CODEX_HANDSHAKE_FAIL", "");
  if (s.handshake_fail == "1" || s.handshake_fail == "true") s.handshake_fail = "error";
  if (s.handshake_fail == "0" || s.handshake_fail == "false") s.handshake_fail = "";
  s.crash_after_turns = env_long("FAKE_CODEX_CRASH_AFTER_TURNS", -1);
  s.exit_code = static_cast<int>(env_long("FAKE_CODEX_EXIT_CODE", 1));
  s.reply = env_string("FAKE_CODEX_REPLY", s.reply);
  s.token_delay_ms = env_long("FAKE_CODEX_TOKEN_DELAY_MS", 0);
  s.turn_start_delay_ms = env_long("FAKE_CODEX_TURN_START_DELAY_MS", 0);
  s.retry_errors = env_long("FAKE_CODEX_RETRY_ERRORS", 0);
  s.turn_fail = env_string("FAKE_CODEX_TURN_FAIL", "");
  const std::string hang = env_string("FAKE_CODEX_HANG_TURNS", "0");
  s.hang_turns = (hang == "all" || hang == "true") ? -1 : env_long("FAKE_CODEX_HANG_TURNS", 0);
  s.log_path = env_string("FAKE_CODEX_LOG", "");
  s.shutdown_delay_ms = env_long("FAKE_CODEX_SHUTDOWN_DELAY_MS", 0);
  s.garbage = env_string("FAKE_CODEX_GARBAGE", "") == "1";
  return s;
}

// Splits the reply into word-sized deltas that keep their leading spaces.
std::vector<std::string> tokens_of(const std::string& text) {
  std::vector<std::string> out;
  std::string current;
  for (char c : text) {
    if (c == ' ' && !current.empty() && current.back() != ' ') {
      out.push_back(current);
      current.clear();
    }
    current.push_back(c);
  }
  if (!current.empty()) out.push_back(current);
  return out;
}

class FakeWorker {
 public:
  explicit FakeWorker(Script script) : script_(std::move(script)) {}

  int run() {
    if (script_.shutdown_delay_ms > 0) {
      g_shutdown_delay_ms = script_.shutdown_delay_ms;
      std::signal(SIGTERM, linger_then_exit);
    }
    if (script_.startup_delay_ms > 0) {
      std::this_thread::sleep_for(std::chrono::milliseconds(script_.startup_delay_ms));
    }
    if (script_.garbage) emit_garbage();
    std::string line;
    while (std::getline(std::cin, line)) {
      if (line.empty()) continue;
      handle_line(line);
    }
    // stdin closed: the supervisor is shutting us down. Let running turns stop.
    for (auto& [id, turn] : turns_) turn->interrupted = true;
    for (auto& thread : turn_threads_) thread.join();
    if (script_.shutdown_delay_ms > 0) linger_then_exit(0);
    return 0;
  }

  // Junk a broken worker might print: invalid JSON, wrong shapes, a line over the proxy's 16 MiB
  // limit, a response to an unknown id, and a stderr flood that carries secrets.
  void emit_garbage() {
    std::cout << "this is not json\n[1,2,3]\n{\"id\":999,\"result\":{}}\n{\"method\":42}\n";
    std::cout << std::string(17 * 1024 * 1024, 'x') << "\n" << std::flush;
    std::cerr << "long line " << std::string(5000, 'L') << "\n";
    for (int i = 0; i < 1000; ++i) {
      std::cerr << "\x1b[31mERROR\x1b[0m noise " << i
                << " Authorization: Bearer sk-fakesecret0123456789 token=hunter2hunter2\n";
    }
  }

 private:
  struct Turn {
    std::string thread_id;
    std::string turn_id;
    std::atomic<bool> interrupted{false};
  };

  void record(const std::string& what) {
    if (script_.log_path.empty()) return;
    std::lock_guard lock(out_mutex_);
    std::ofstream(script_.log_path, std::ios::app) << what << '\n';
  }

  void send(const json& message) {
    std::lock_guard lock(out_mutex_);
    std::cout << message.dump() << '\n' << std::flush;
  }

  void reply(const json& id, json result) { send({{"id", id}, {"result", std::move(result)}}); }

  void fail(const json& id, int code, const std::string& message) {
    send({{"id", id}, {"error", {{"code", code}, {"message", message}}}});
  }

  void notify(const std::string& method, json params) {
    send({{"method", method}, {"params", std::move(params)}});
  }

  void handle_line(const std::string& line) {
    json message;
    try {
      message = json::parse(line);
    } catch (const json::exception&) {
      fail(nullptr, -32700, "Parse error");
      return;
    }
    if (!message.is_object() || !message.contains("method") || !message["method"].is_string()) {
      if (message.is_object() && message.contains("id"))
        fail(message["id"], -32600, "Invalid request");
      return;
    }
    const std::string method = message["method"];
    record(method);
    const json params = message.value("params", json::object());
    if (!message.contains("id")) {
      if (method == "initialized" && initialize_answered_) initialized_ = true;
      return;
    }
    const json id = message["id"];
    if (method == "initialize") return on_initialize(id);
    if (!initialized_) return fail(id, -32600, "Not initialized");
    if (method == "thread/start") return on_thread_start(id, params);
    if (method == "turn/start") return on_turn_start(id, params);
    if (method == "turn/interrupt") return on_turn_interrupt(id, params);
    if (method == "thread/unsubscribe") return reply(id, {{"status", "unsubscribed"}});
    if (method == "thread/inject_items") {
      if (threads_.count(params.value("threadId", "")) == 0) {
        return fail(id, -32602, "thread not found: " + params.value("threadId", ""));
      }
      return reply(id, json::object());
    }
    fail(id, -32601, "Method not found: " + method);
  }

  void on_initialize(const json& id) {
    if (initialize_answered_) return fail(id, -32600, "Already initialized");
    if (script_.handshake_fail == "exit") std::exit(script_.exit_code);
    if (script_.handshake_fail == "hang") return;
    if (script_.handshake_fail == "error") return fail(id, -32603, "scripted handshake failure");
    initialize_answered_ = true;
    const char* home = std::getenv("CODEX_HOME");
    reply(id, {{"userAgent", "codex-fake-worker/0.1.0"},
               {"codexHome", home != nullptr ? home : "/nonexistent/.codex"},
               {"platformFamily", "unix"},
               {"platformOs", "linux"}});
  }

  // A thread object as the real app server renders it (the fields its schema requires).
  json thread_object(const std::string& thread_id, const json& params) const {
    return {{"id", thread_id},
            {"sessionId", thread_id},
            {"preview", ""},
            {"ephemeral", params.value("ephemeral", false)},
            {"projectId", nullptr},
            {"modelProvider", "fake"},
            {"model", params.value("model", "gpt-5")},
            {"createdAt", now_s()},
            {"updatedAt", now_s()},
            {"status", {{"type", "idle"}}},
            {"path", nullptr},
            {"cwd", params.value("cwd", "/")},
            {"cliVersion", "0.1.0"},
            {"source", "appServer"},
            {"turns", json::array()}};
  }

  void on_thread_start(const json& id, const json& params) {
    const std::string thread_id = "thr_fake_" + std::to_string(++thread_count_);
    const json thread = thread_object(thread_id, params);
    threads_[thread_id] = true;
    reply(id, {{"thread", thread},
               {"model", params.value("model", "gpt-5")},
               {"modelProvider", "fake"},
               {"cwd", params.value("cwd", "/")},
               {"approvalPolicy", params.value("approvalPolicy", "never")},
               {"approvalsReviewer", "user"},
               {"sandbox", {{"type", "readOnly"}, {"networkAccess", false}}},
               {"reasoningEffort", nullptr}});
    notify("thread/started", {{"thread", thread}});
    // The real server warns when it has no metadata for the model; the proxy must ignore it.
    notify("warning", {{"threadId", thread_id},
                       {"message", "Model metadata for `" + params.value("model", "gpt-5") +
                                       "` not found (codex-fake-worker)."}});
  }

  void on_turn_start(const json& id, const json& params) {
    const std::string thread_id = params.value("threadId", "");
    if (threads_.count(thread_id) == 0) {
      return fail(id, -32602, "thread not found: " + thread_id);
    }
    const long index = turn_count_++;
    auto turn = std::make_shared<Turn>();
    turn->thread_id = thread_id;
    turn->turn_id = "turn_fake_" + std::to_string(index + 1);
    turns_[turn->turn_id] = turn;
    json turn_json = {{"id", turn->turn_id},
                      {"status", "inProgress"},
                      {"items", json::array()},
                      {"error", nullptr}};
    if (script_.turn_start_delay_ms > 0) {
      std::this_thread::sleep_for(std::chrono::milliseconds(script_.turn_start_delay_ms));
    }
    reply(id, {{"turn", turn_json}});
    notify("thread/status/changed",
           {{"threadId", thread_id},
            {"status", {{"type", "active"}, {"activeFlags", json::array()}}}});
    notify("turn/started", {{"threadId", thread_id}, {"turn", turn_json}});
    const bool crash = script_.crash_after_turns >= 0 && index >= script_.crash_after_turns;
    const bool hang = script_.hang_turns < 0 || index < script_.hang_turns;
    std::string prompt;
    for (const auto& item : params.value("input", json::array())) {
      if (item.is_object() && item.value("type", "") == "text") prompt += item.value("text", "");
    }
    turn_threads_.emplace_back(
        [this, turn, crash, hang, prompt] { play_turn(*turn, crash, hang, prompt); });
  }

  void on_turn_interrupt(const json& id, const json& params) {
    const auto found = turns_.find(params.value("turnId", ""));
    if (found == turns_.end()) return fail(id, -32602, "turn not found");
    found->second->interrupted = true;
    reply(id, json::object());
  }

  void play_turn(Turn& turn, bool crash, bool hang, const std::string& prompt) {
    const std::string item_id = "msg_" + turn.turn_id;
    const std::string text = script_.reply == "{echo}" ? prompt : script_.reply;
    const auto tokens = tokens_of(text);
    const auto started_ms = now_ms();
    for (long i = 0; i < script_.retry_errors && !turn.interrupted; ++i) {
      notify("error",
             {{"threadId", turn.thread_id},
              {"turnId", turn.turn_id},
              {"willRetry", true},
              {"error",
               {{"message", "Reconnecting... " + std::to_string(i + 1) + "/5"},
                {"codexErrorInfo", {{"responseStreamDisconnected", {{"httpStatusCode", nullptr}}}}},
                {"additionalDetails", "codex-fake-worker: a scripted retry"}}}});
    }
    if (!script_.turn_fail.empty()) return finish_turn(turn, "failed", json::array(), started_ms);
    json item = {{"type", "agentMessage"}, {"id", item_id}, {"text", ""}};
    notify("item/started", {{"threadId", turn.thread_id},
                            {"turnId", turn.turn_id},
                            {"startedAtMs", started_ms},
                            {"item", item}});
    std::string said;
    std::size_t sent = 0;
    for (const auto& token : tokens) {
      if (turn.interrupted) break;
      if (crash && sent * 2 >= tokens.size() && sent > 0) std::_Exit(script_.exit_code);
      notify("item/agentMessage/delta", {{"threadId", turn.thread_id},
                                         {"turnId", turn.turn_id},
                                         {"itemId", item_id},
                                         {"delta", token}});
      said += token;
      ++sent;
      if (script_.token_delay_ms > 0) {
        std::this_thread::sleep_for(std::chrono::milliseconds(script_.token_delay_ms));
      }
    }
    if (crash) std::_Exit(script_.exit_code);
    while (hang && !turn.interrupted) std::this_thread::sleep_for(std::chrono::milliseconds(5));
    item["text"] = said;
    notify("item/completed", {{"threadId", turn.thread_id},
                              {"turnId", turn.turn_id},
                              {"completedAtMs", now_ms()},
                              {"item", item}});
    if (turn.interrupted) return finish_turn(turn, "interrupted", json::array({item}), started_ms);
    const long input_tokens = static_cast<long>(prompt.size() / 4 + 1);
    const long output_tokens = static_cast<long>(sent);
    json usage = {{"inputTokens", input_tokens},
                  {"cachedInputTokens", 0},
                  {"outputTokens", output_tokens},
                  {"reasoningOutputTokens", 0},
                  {"totalTokens", input_tokens + output_tokens}};
    notify("thread/tokenUsage/updated",
           {{"threadId", turn.thread_id},
            {"turnId", turn.turn_id},
            {"tokenUsage", {{"total", usage}, {"last", usage}, {"modelContextWindow", 200000}}}});
    finish_turn(turn, "completed", json::array({item}), started_ms);
  }

  // turn/completed, as the real server sends it (a failed turn is announced by an `error` first).
  void finish_turn(const Turn& turn, const std::string& status, json items,
                   std::int64_t started_ms) {
    json error = nullptr;
    if (status == "failed") {
      error = {{"message", script_.turn_fail},
               {"codexErrorInfo", "internalServerError"},
               {"additionalDetails", nullptr}};
      notify("error", {{"threadId", turn.thread_id},
                       {"turnId", turn.turn_id},
                       {"willRetry", false},
                       {"error", error}});
    }
    notify("thread/status/changed", {{"threadId", turn.thread_id}, {"status", {{"type", "idle"}}}});
    notify("turn/completed", {{"threadId", turn.thread_id},
                              {"turn",
                               {{"id", turn.turn_id},
                                {"status", status},
                                {"items", std::move(items)},
                                {"error", error},
                                {"startedAt", started_ms / 1000},
                                {"completedAt", now_s()},
                                {"durationMs", now_ms() - started_ms}}}});
  }

  Script script_;
  std::mutex out_mutex_;  // guards stdout and the request log: turn threads write concurrently
  bool initialize_answered_ = false;
  bool initialized_ = false;
  long thread_count_ = 0;
  long turn_count_ = 0;
  std::map<std::string, bool> threads_;
  std::map<std::string, std::shared_ptr<Turn>> turns_;
  std::vector<std::thread> turn_threads_;
};

int usage() {
  std::cerr << "usage: codex-fake-worker app-server [-c key=value ...]\n";
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) return usage();
  const std::string command = argv[1];
  if (command == "--version") {
    std::cout << "codex-fake-worker 0.1.0\n";
    return 0;
  }
  if (command != "app-server") return usage();
  for (int i = 2; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "-c" && i + 1 < argc) {
      ++i;  // config overrides are accepted and ignored, as the real CLI would apply them
      continue;
    }
    std::cerr << "codex-fake-worker: unexpected argument '" << arg << "'\n";
    return 2;
  }
  std::cerr << "codex-fake-worker: app server ready on stdio (pid " << getpid() << ")\n";
  std::ios::sync_with_stdio(false);
  // cin is tied to cout: every read would flush cout from the main thread, outside out_mutex_,
  // racing the turn threads' writes (seen as two messages glued on one line under load).
  std::cin.tie(nullptr);
  return FakeWorker(load_script()).run();
}
