#pragma once

#include <string>

namespace cxp::proxy {

// Makes the worker's CODEX_HOME usable before its first start: creates the directory (mode 0700)
// when it is missing and checks that it is a writable directory — codex keeps its state there and
// exits at start without it. With `auth_json_source` (a ChatGPT login's auth.json, typically a
// read-only Secret mount) the file is copied to CODEX_HOME/auth.json with mode 0600, where codex
// can refresh it. Throws cxp::ConfigError naming CODEX_HOME or WORKER_AUTH_JSON; file contents are
// never part of a message.
void prepare_codex_home(const std::string& codex_home, const std::string& auth_json_source);

}  // namespace cxp::proxy
