#include "proxy/api/image_input.h"

#include <array>
#include <cstdint>
#include <string_view>

#include "proxy/api/turn_request.h"

namespace cxp::proxy {
namespace {

struct ImageKind {
  std::string_view mime;
  std::string_view magic;        // the file's first bytes
  std::size_t magic_offset = 0;  // where they are (WebP: "WEBP" after "RIFF" and a size)
};

constexpr std::array<ImageKind, 5> kKinds = {{{"image/png", "\x89PNG\r\n\x1a\n", 0},
                                              {"image/jpeg", "\xFF\xD8\xFF", 0},
                                              {"image/jpg", "\xFF\xD8\xFF", 0},
                                              {"image/gif", "GIF8", 0},
                                              {"image/webp", "WEBP", 8}}};

int base64_value(char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '+') return 62;
  if (c == '/') return 63;
  return -1;
}

// The decoded size of standard base64 text, or nullopt when it is not base64 (padding only at the
// end, length a multiple of 4). `head` gets the first decoded bytes (at most 16).
std::optional<std::size_t> base64_size(std::string_view text, std::string& head) {
  if (text.empty() || text.size() % 4 != 0) return std::nullopt;
  const std::size_t padding = text.back() != '=' ? 0 : (text[text.size() - 2] == '=' ? 2 : 1);
  std::uint32_t bits = 0;
  int count = 0;
  for (std::size_t i = 0; i < text.size() - padding; ++i) {
    const int v = base64_value(text[i]);
    if (v < 0) return std::nullopt;
    if (head.size() < 16) {
      bits = (bits << 6) | static_cast<std::uint32_t>(v);
      count += 6;
      if (count >= 8) {
        count -= 8;
        head.push_back(static_cast<char>((bits >> count) & 0xFF));
      }
    }
  }
  return text.size() / 4 * 3 - padding;
}

}  // namespace

std::optional<ApiError> read_image(const nlohmann::json& url, const nlohmann::json& detail,
                                   const std::string& url_field, const std::string& detail_field,
                                   const ImageLimits& limits, ImageBudget& used, ImageInput& out) {
  if (!url.is_string()) {
    return invalid_request(url_field, url_field + ": expected the image's URL, a string");
  }
  const auto& text = url.get_ref<const std::string&>();
  if (text.rfind("data:", 0) != 0) {
    return invalid_request(
        url_field, url_field +
                       ": only data URLs (data:image/png;base64,…) are supported; the worker "
                       "(codex 0.169) does not fetch remote images — send the image inline");
  }
  const auto comma = text.find(',');
  const std::string_view header = comma == std::string::npos
                                      ? std::string_view(text)
                                      : std::string_view(text).substr(5, comma - 5);
  const auto semicolon = header.find(';');
  const std::string_view mime = header.substr(0, semicolon);
  const ImageKind* kind = nullptr;
  for (const auto& k : kKinds) {
    if (k.mime == mime) kind = &k;
  }
  if (comma == std::string::npos || semicolon == std::string_view::npos ||
      header.substr(header.rfind(';') + 1) != "base64") {
    return invalid_request(
        url_field, url_field + ": a malformed data URL; expected data:<type>;base64,<data>");
  }
  if (kind == nullptr) {
    return invalid_request(url_field, url_field + ": images of type '" +
                                          std::string(mime.substr(0, 64)) +
                                          "' are not supported (png, jpeg, gif and webp are)");
  }
  std::string head;
  const auto size = base64_size(std::string_view(text).substr(comma + 1), head);
  if (!size) {
    return invalid_request(url_field, url_field + ": the data URL's data is not valid base64");
  }
  if (head.size() < kind->magic_offset + kind->magic.size() ||
      std::string_view(head).substr(kind->magic_offset, kind->magic.size()) != kind->magic) {
    return invalid_request(url_field, url_field + ": the data is not a " +
                                          std::string(kind->mime.substr(6)) + " image");
  }
  if (used.images + 1 > limits.max_images) {
    return invalid_request(url_field, url_field + ": more than " +
                                          std::to_string(limits.max_images) +
                                          " images in one request (PROXY_MAX_IMAGES)");
  }
  if (used.bytes + *size > limits.max_bytes) {
    return invalid_request(url_field, url_field + ": the request's images exceed " +
                                          std::to_string(limits.max_bytes) +
                                          " bytes (PROXY_MAX_IMAGE_BYTES)");
  }
  out.detail = "auto";
  if (!detail.is_null()) {
    if (!detail.is_string() ||
        (detail != "auto" && detail != "high" && detail != "original" && detail != "low")) {
      return invalid_request(detail_field,
                             detail_field + ": expected \"auto\", \"high\" or \"original\"");
    }
    if (detail == "low") {
      return invalid_request(
          detail_field, detail_field +
                            ": \"low\" cannot be honoured: the worker (codex 0.169) leaves out "
                            "low-detail images; use \"auto\", \"high\" or \"original\"");
    }
    out.detail = detail.get<std::string>();
  }
  ++used.images;
  used.bytes += *size;
  out.url = text;
  return std::nullopt;
}

}  // namespace cxp::proxy
