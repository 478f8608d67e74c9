#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/http/http_types.h"

namespace cxp::http {

// The operator endpoints' token check: no Authorization header → 401, a wrong bearer token → 403
// (compared in constant time), the right one → nullopt. `setting` names the variable that holds
// the token, for the error message.
std::optional<HttpResponse> refuse_without_bearer(const HttpRequest& request,
                                                  std::string_view token, std::string_view setting);
// The same with several tokens, any of which is right (a rotation's new and previous token).
std::optional<HttpResponse> refuse_without_bearer(const HttpRequest& request,
                                                  const std::vector<std::string>& tokens,
                                                  std::string_view setting);

}  // namespace cxp::http
