#include "proxy/access/access_control.h"

#include <malloc.h>

#include <algorithm>

#include "common/config_value.h"

namespace cxp::proxy {

CallerPermit::CallerPermit(KeyLimiter& limiter, KeySetPtr set, const ApiKey& key)
    : limiter_(limiter), set_(std::move(set)), key_(key) {}

CallerPermit::~CallerPermit() {
  limiter_.release(key_.name);
}

void CallerPermit::charge(std::int64_t tokens) {
  limiter_.charge(key_, tokens);
}

namespace {

// The files of `settings`, in the order AccessControl keeps them.
std::vector<std::pair<std::string, std::string>> files_of(const AccessSettings& s) {
  std::vector<std::pair<std::string, std::string>> out;
  const std::pair<const char*, const std::string*> all[] = {
      {"PROXY_API_KEYS_FILE", &s.api_keys_file},
      {"PROXY_API_KEY_FILE", &s.api_key_file},
      {"PROXY_ADMIN_TOKEN_FILE", &s.admin_token_file},
      {"PROXY_METRICS_TOKEN_FILE", &s.metrics_token_file}};
  for (const auto& [setting, path] : all) {
    if (!path->empty()) out.emplace_back(setting, *path);
  }
  return out;
}

void one_of(const std::string& value, const std::string& file, const char* value_setting,
            const char* file_setting) {
  if (!value.empty() && !file.empty()) {
    throw ConfigError(std::string(value_setting) + " and " + file_setting +
                      ": set one of them, not both");
  }
}

}  // namespace

AccessControl::AccessControl(boost::asio::io_context& io, AccessSettings settings,
                             std::vector<std::string> served_models, KeyLimiter::Clock clock)
    : io_(io),
      settings_(std::move(settings)),
      served_models_(std::move(served_models)),
      timer_(io),
      clock_(clock),
      limiter_(std::move(clock)) {
  one_of(settings_.api_key, settings_.api_key_file, "PROXY_API_KEY", "PROXY_API_KEY_FILE");
  one_of(settings_.admin_token, settings_.admin_token_file, "PROXY_ADMIN_TOKEN",
         "PROXY_ADMIN_TOKEN_FILE");
  one_of(settings_.metrics_token, settings_.metrics_token_file, "PROXY_METRICS_TOKEN",
         "PROXY_METRICS_TOKEN_FILE");
  for (auto& [setting, path] : files_of(settings_)) {
    watched_.push_back({SecretFile(setting, path), FileStatus{setting}, ""});
  }
  contents_.resize(watched_.size());
  load_at_start();
}

void AccessControl::start() {
  if (!watched_.empty()) schedule();
}

void AccessControl::stop() {
  stopped_ = true;
  timer_.cancel();
}

void AccessControl::schedule() {
  timer_.expires_after(settings_.poll);
  timer_.async_wait([this](boost::system::error_code ec) {
    if (ec || stopped_) return;
    if (poll() && observer_) observer_();
    schedule();
  });
}

KeySetPtr AccessControl::build_keys(const std::vector<std::string>& contents) const {
  KeySet keys;
  std::string default_key = settings_.api_key;
  std::string default_source = "PROXY_API_KEY";
  for (std::size_t i = 0; i < watched_.size(); ++i) {
    const auto& file = watched_[i].file;
    const std::string source = file.setting() + "=" + file.path();
    if (file.setting() == "PROXY_API_KEYS_FILE") {
      keys = KeySet::parse(contents[i], source, served_models_);
    } else if (file.setting() == "PROXY_API_KEY_FILE") {
      default_key = token_of(contents[i], source);
      default_source = source;
    }
  }
  if (!default_key.empty()) keys.add(std::string(kDefaultKeyName), default_key, default_source);
  return std::make_shared<const KeySet>(std::move(keys));
}

AccessControl::InForce AccessControl::in_force(const std::vector<std::string>& contents) const {
  InForce out{build_keys(contents), settings_.admin_token, settings_.metrics_token};
  for (std::size_t i = 0; i < watched_.size(); ++i) {
    const auto& file = watched_[i].file;
    const std::string source = file.setting() + "=" + file.path();
    if (file.setting() == "PROXY_ADMIN_TOKEN_FILE") out.admin_token = token_of(contents[i], source);
    if (file.setting() == "PROXY_METRICS_TOKEN_FILE") {
      out.metrics_token = token_of(contents[i], source);
    }
  }
  return out;
}

void AccessControl::commit(std::vector<std::string> contents, InForce in_force) {
  // Parsing a large keys file (a YAML tree of every key) leaves freed memory in the heap's arenas:
  // give it back, so that a pod's resident size follows its keys, not its largest parse.
  struct Trim {
    ~Trim() { malloc_trim(0); }
  } trim;
  const auto keep = [&](const std::string& current, const std::string& next, Previous& previous) {
    if (!current.empty() && current != next) previous = {current, clock_() + settings_.token_grace};
  };
  keep(admin_token_, in_force.admin_token, previous_admin_);
  keep(metrics_token_, in_force.metrics_token, previous_metrics_);
  contents_ = std::move(contents);
  keys_ = std::move(in_force.keys);
  admin_token_ = std::move(in_force.admin_token);
  metrics_token_ = std::move(in_force.metrics_token);
  limiter_.retain(*keys_);
}

void AccessControl::load_at_start() {
  for (std::size_t i = 0; i < watched_.size(); ++i) {
    contents_[i] = watched_[i].file.changed().value_or(std::string());
    ++watched_[i].status.loaded;
  }
  auto in_force_now = in_force(contents_);
  commit(contents_, std::move(in_force_now));
}

bool AccessControl::poll() {
  bool changed = false;
  for (std::size_t i = 0; i < watched_.size(); ++i) {
    auto& watched = watched_[i];
    try {
      auto content = watched.file.changed();
      if (!content) continue;
      // The other files as they are in force, this one as it is now.
      auto trial = contents_;
      trial[i] = std::move(*content);
      auto next = in_force(trial);
      commit(std::move(trial), std::move(next));
      ++watched.status.loaded;
      watched.status.valid = true;
      watched.problem.clear();
      log_.info("secret_file_loaded", {{"setting", watched.file.setting()},
                                       {"path", watched.file.path()},
                                       {"keys", keys_->keys().size()}});
    } catch (const ConfigError& e) {
      ++watched.status.failed;
      watched.status.valid = false;
      watched.problem = e.what();
      log_.warn("secret_file_invalid", {{"setting", watched.file.setting()},
                                        {"path", watched.file.path()},
                                        {"message", e.what()},
                                        {"kept", "the last good content stays in force"}});
    }
    changed = true;
  }
  return changed;
}

std::variant<AccessControl::Caller, ApiError> AccessControl::authenticate(
    std::string_view authorization) const {
  Caller caller{keys_, nullptr};
  if (keys_->empty()) return caller;
  constexpr std::string_view kBearer = "Bearer ";
  const bool has_bearer =
      authorization.size() > kBearer.size() && authorization.substr(0, kBearer.size()) == kBearer;
  if (has_bearer) caller.key = keys_->find(authorization.substr(kBearer.size()));
  if (caller.key) return caller;
  ApiError e;
  e.status = 401;
  e.code = "invalid_api_key";
  e.message = has_bearer ? "Incorrect API key provided."
                         : "Missing bearer token in the Authorization header.";
  return e;
}

std::variant<PermitPtr, ApiError> AccessControl::admit(const Caller& caller,
                                                       const std::string& model) {
  if (!caller.key) return PermitPtr();
  const auto& key = *caller.key;
  if (!key.may_use(model)) {
    ApiError e;
    e.status = 404;
    e.code = "model_not_found";
    e.param = "model";
    e.message =
        "The model '" + model.substr(0, 200) + "' does not exist or you do not have access to it.";
    return e;
  }
  if (const auto refusal = limiter_.admit(key)) {
    count_refusal(key.name, refusal->limit);
    ApiError e;
    e.status = 429;
    e.type = refusal->limit == "tokens" ? "tokens" : "requests";
    e.code = "rate_limit_exceeded";
    e.message =
        refusal->message + ". Please try again in " + reset_duration(refusal->retry_after) + ".";
    e.retryable = true;
    e.retry_after_s =
        static_cast<int>(std::max<std::int64_t>(1, (refusal->retry_after.count() + 999) / 1000));
    return e;
  }
  return std::make_shared<CallerPermit>(limiter_, caller.set, key);
}

std::vector<std::pair<std::string, std::string>> AccessControl::rate_headers(const Caller& caller) {
  if (!caller.key) return {};
  return limiter_.headers(*caller.key);
}

std::vector<std::string> AccessControl::models_for(const Caller& caller) const {
  std::vector<std::string> out;
  for (const auto& model : served_models_) {
    if (!caller.key || caller.key->may_use(model)) out.push_back(model);
  }
  return out;
}

std::vector<std::string> AccessControl::accepted(const std::string& current,
                                                 const Previous& previous) const {
  std::vector<std::string> out;
  if (!current.empty()) out.push_back(current);
  if (!previous.token.empty() && previous.token != current && clock_() < previous.until) {
    out.push_back(previous.token);
  }
  return out;
}

std::string AccessControl::problem() const {
  std::string out;
  for (const auto& watched : watched_) {
    if (!watched.problem.empty()) out += (out.empty() ? "" : "; ") + watched.problem;
  }
  return out;
}

std::vector<std::string> AccessControl::secrets() const {
  std::vector<std::string> out;
  for (const auto& key : keys_->keys()) {
    if (!key.plaintext.empty()) out.push_back(key.plaintext);
  }
  for (const auto* token : {&admin_token_, &metrics_token_}) {
    if (!token->empty()) out.push_back(*token);
  }
  return out;
}

std::vector<AccessControl::FileStatus> AccessControl::files() const {
  std::vector<FileStatus> out;
  for (const auto& watched : watched_) out.push_back(watched.status);
  return out;
}

void AccessControl::count_refusal(const std::string& key, const std::string& limit) {
  for (auto& [labels, count] : refusals_) {
    if (labels.first == key && labels.second == limit) {
      ++count;
      return;
    }
  }
  refusals_.push_back({{key, limit}, 1});
}

}  // namespace cxp::proxy
