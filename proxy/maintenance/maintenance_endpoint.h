#pragma once

#include <functional>
#include <string>
#include <vector>

#include "common/http/http_router.h"
#include "proxy/maintenance/maintenance_switch.h"

namespace cxp::proxy {

// GET|POST /internal/maintenance, guarded by the admin tokens (bearer) that `admin_tokens` gives at
// each request (PROXY_ADMIN_TOKEN, or PROXY_ADMIN_TOKEN_FILE's content and, within the rotation
// grace, its previous one). Without a token the endpoint answers 404 (and startup logs a warning).
// POST body: {"enabled":bool, "retry_after_s":int (optional, 0-86400)}. Both answer the current
// state.
void register_maintenance_endpoint(http::HttpRouter& router, MaintenanceSwitch& maintenance,
                                   std::function<std::vector<std::string>()> admin_tokens);

}  // namespace cxp::proxy
