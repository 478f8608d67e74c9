#pragma once

#include <optional>
#include <string_view>

#include "common/http/http_types.h"

namespace cxp::http {

// The operator endpoints' token check: no Authorization header → 401, a wrong bearer token → 403
// (compared in constant time), the right one → nullopt. `setting` names the variable that holds
// the token, for the error message.
std::optional<HttpResponse> refuse_without_bearer(const HttpRequest& request,
                                                  std::string_view token, std::string_view setting);

}  // namespace cxp::http
