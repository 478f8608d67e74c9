#pragma once

#include <cstddef>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "proxy/api/api_error.h"

namespace cxp::proxy {

// The images one request may carry (PROXY_MAX_IMAGES, PROXY_MAX_IMAGE_BYTES).
struct ImageLimits {
  std::size_t max_images = 16;
  std::size_t max_bytes = 8 * 1024 * 1024;  // decoded, all images of the request together
};

// What a request's images used so far.
struct ImageBudget {
  std::size_t images = 0;
  std::size_t bytes = 0;
};

// One image the caller sent: a data URL and its detail.
struct ImageInput {
  std::string url;
  std::string detail = "auto";
};

// Reads an image of a user message. `url` must be a data URL (`data:image/{png,jpeg,gif,webp};
// base64,…`) whose bytes are an image of that kind: codex 0.169 refuses remote URLs, and replaces
// an image it cannot read with a note to the model, so both are a 400 here. `detail` (null:
// "auto", OpenAI's default) is auto, high or original; codex drops "low" images, so low is
// refused. `where` names the part ("messages[0].content[1]"); `url_field` and `detail_field` its
// fields' paths. The image counts against `limits` in `used`.
std::optional<ApiError> read_image(const nlohmann::json& url, const nlohmann::json& detail,
                                   const std::string& url_field, const std::string& detail_field,
                                   const ImageLimits& limits, ImageBudget& used, ImageInput& out);

}  // namespace cxp::proxy
