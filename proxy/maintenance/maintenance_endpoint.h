#pragma once

#include <string>

#include "common/http/http_router.h"
#include "proxy/maintenance/maintenance_switch.h"

namespace cxp::proxy {

// GET|POST /internal/maintenance, guarded by PROXY_ADMIN_TOKEN (bearer). Without a configured token
// the endpoint answers 404 (and startup logs a warning). POST body: {"enabled":bool,
// "retry_after_s":int (optional, 0-86400)}. Both answer the current state.
void register_maintenance_endpoint(http::HttpRouter& router, MaintenanceSwitch& maintenance,
                                   const std::string& admin_token);

}  // namespace cxp::proxy
