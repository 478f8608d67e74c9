#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "common/telemetry/json_log.h"
#include "proxy/access/api_keys.h"
#include "proxy/access/key_limiter.h"
#include "proxy/access/secret_file.h"
#include "proxy/api/api_error.h"

namespace cxp::proxy {

// Where the proxy's credentials come from: a value at start (env or YAML), or a file re-read while
// it runs (a mounted Secret key). One of each pair at most.
struct AccessSettings {
  std::string api_key;                   // PROXY_API_KEY: a key named `default`
  std::string api_key_file;              // PROXY_API_KEY_FILE: the same, from a file
  std::string api_keys_file;             // PROXY_API_KEYS_FILE: named keys with limits
  std::string admin_token;               // PROXY_ADMIN_TOKEN
  std::string admin_token_file;          // PROXY_ADMIN_TOKEN_FILE
  std::string metrics_token;             // PROXY_METRICS_TOKEN
  std::string metrics_token_file;        // PROXY_METRICS_TOKEN_FILE
  std::chrono::milliseconds poll{1000};  // PROXY_SECRET_FILES_POLL_MS
  // After a token file changes, its previous token is still accepted this long
  // (PROXY_TOKEN_ROTATION_GRACE_S): a scraper that still sends it is not locked out.
  std::chrono::seconds token_grace{300};
};

// A request admitted for a key, from admission to its end: holds the key's concurrency slot and
// charges the turn's tokens. Released when destroyed.
class CallerPermit {
 public:
  CallerPermit(KeyLimiter& limiter, KeySetPtr set, const ApiKey& key);
  ~CallerPermit();
  CallerPermit(const CallerPermit&) = delete;
  CallerPermit& operator=(const CallerPermit&) = delete;
  void charge(std::int64_t tokens);

 private:
  KeyLimiter& limiter_;
  KeySetPtr set_;  // keeps key_ alive across a reload
  const ApiKey& key_;
};
using PermitPtr = std::shared_ptr<CallerPermit>;

// Who may call codex-proxy, and how much: the API keys (PROXY_API_KEY[_FILE] as `default`,
// PROXY_API_KEYS_FILE's named keys) and each key's limits and models; the admin and metrics
// tokens. Files are polled and re-read when they change; a file that does not read or parse keeps
// the last good content in force and is reported (log, codex_secret_file_* metrics, problem()).
// At start every configured file must be good: the constructor throws cxp::ConfigError naming it
// and the line. Single-threaded: the io thread.
class AccessControl {
 public:
  AccessControl(
      boost::asio::io_context& io, AccessSettings settings, std::vector<std::string> served_models,
      KeyLimiter::Clock clock = [] { return std::chrono::steady_clock::now(); });

  // Starts polling the files.
  void start();
  void stop();

  // The caller of a /v1 request: a key, or nobody when no key is configured (anonymous).
  struct Caller {
    KeySetPtr set;
    const ApiKey* key = nullptr;
    std::string name() const { return key ? key->name : std::string(kAnonymousCaller); }
  };
  // From the request's Authorization header; 401 invalid_api_key when keys are configured and it
  // holds none of them.
  std::variant<Caller, ApiError> authenticate(std::string_view authorization) const;
  // Admits a request of `caller` for `model`: 404 model_not_found when the key may not use it
  // (OpenAI's answer), 429 rate_limit_exceeded with Retry-After past a limit; else a permit
  // (nullptr for an anonymous caller).
  std::variant<PermitPtr, ApiError> admit(const Caller& caller, const std::string& model);
  // OpenAI's x-ratelimit-* headers for the caller's limited dimensions.
  std::vector<std::pair<std::string, std::string>> rate_headers(const Caller& caller);
  // The served models a caller may use.
  std::vector<std::string> models_for(const Caller& caller) const;
  // How many pods share the limits (the live settings' limits.pods).
  void set_share(std::uint64_t pods) { limiter_.set_share(pods); }

  bool keys_required() const { return !keys_->empty(); }
  const std::string& admin_token() const { return admin_token_; }
  const std::string& metrics_token() const { return metrics_token_; }
  // The tokens accepted now: the current one, and the previous one within its grace.
  std::vector<std::string> admin_tokens() const { return accepted(admin_token_, previous_admin_); }
  std::vector<std::string> metrics_tokens() const {
    return accepted(metrics_token_, previous_metrics_);
  }
  // Why a file's latest content is not in force ("; "-joined), "" when all are.
  std::string problem() const;
  // Every secret value in force, for redaction.
  std::vector<std::string> secrets() const;
  // Told after every reload or change of problem().
  void set_observer(std::function<void()> observer) { observer_ = std::move(observer); }

  // One configured file, for the codex_secret_file_* metrics.
  struct FileStatus {
    std::string setting;
    bool valid = true;
    std::uint64_t loaded = 0;  // contents applied (the first included)
    std::uint64_t failed = 0;  // contents refused
  };
  std::vector<FileStatus> files() const;
  // Refusals by key name and limit, for codex_ratelimit_refused_total.
  const std::vector<std::pair<std::pair<std::string, std::string>, std::uint64_t>>& refusals()
      const {
    return refusals_;
  }

 private:
  struct Watched {
    SecretFile file;
    FileStatus status;
    std::string problem;
  };
  // What a set of file contents puts in force; throws cxp::ConfigError naming the file at fault.
  struct InForce {
    KeySetPtr keys;
    std::string admin_token;
    std::string metrics_token;
  };
  InForce in_force(const std::vector<std::string>& contents) const;
  void commit(std::vector<std::string> contents, InForce in_force);
  // Every file must read and parse: throws cxp::ConfigError naming the first that does not.
  void load_at_start();
  // Re-reads each file; a changed one is put in force, or refused and reported. True when a file
  // changed (applied or refused).
  bool poll();
  void schedule();
  KeySetPtr build_keys(const std::vector<std::string>& contents) const;
  void count_refusal(const std::string& key, const std::string& limit);
  // A token replaced by a rotation, accepted until `until`.
  struct Previous {
    std::string token;
    std::chrono::steady_clock::time_point until{};
  };
  std::vector<std::string> accepted(const std::string& current, const Previous& previous) const;

  boost::asio::io_context& io_;
  AccessSettings settings_;
  std::vector<std::string> served_models_;
  boost::asio::steady_timer timer_;
  std::vector<Watched> watched_;       // the files configured, in a fixed order
  std::vector<std::string> contents_;  // the latest good content of each watched file
  KeySetPtr keys_ = std::make_shared<const KeySet>();
  std::string admin_token_;
  std::string metrics_token_;
  Previous previous_admin_;
  Previous previous_metrics_;
  KeyLimiter::Clock clock_;
  KeyLimiter limiter_;
  std::vector<std::pair<std::pair<std::string, std::string>, std::uint64_t>> refusals_;
  std::function<void()> observer_;
  bool stopped_ = false;
  telemetry::JsonLog log_{"access"};
};

}  // namespace cxp::proxy
