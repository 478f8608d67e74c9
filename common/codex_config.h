#pragma once

#include <string_view>

namespace cxp {

// The shapes of the worker's codex settings, judged the same way by codex-proxy (its env and YAML)
// and by the controller (a CodexProxy's spec, beyond what the CRD's CEL rules refuse).

// An http(s) URL with a host, without whitespace, quotes, backslashes, control characters or
// credentials in it (a model provider's base URL).
bool is_http_url(std::string_view url);

// A codex config key for `-c key=value`: dotted segments of [A-Za-z0-9_-].
bool is_codex_config_key(std::string_view key);

// An environment variable name: [A-Za-z_][A-Za-z0-9_]*, at most 128 characters.
bool is_env_var_name(std::string_view name);

// True when `name` is a variable codex-proxy reads itself or holds a secret of its own (PROXY_*,
// WORKER_*, CODEX_*, POD_*, PORT, KUBERNETES_*): a model key must live elsewhere.
bool is_reserved_env_var(std::string_view name);

}  // namespace cxp
