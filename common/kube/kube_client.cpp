#include "common/kube/kube_client.h"

#include <cpprest/containerstream.h>
#include <cpprest/http_client.h>
#include <pplx/pplxtasks.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <boost/asio/ssl/context.hpp>
#include <system_error>
#include <thread>

namespace cxp::kube {
namespace {

namespace http = web::http;
using nlohmann::json;

constexpr auto kTokenRefresh = std::chrono::seconds(60);

// The certificates of `ca_pem` in one X509 store, shared by every connection of a client;
// null when it holds none (no CA given, or not PEM).
std::shared_ptr<X509_STORE> ca_store(const std::string& ca_pem) {
  if (ca_pem.empty()) return nullptr;
  std::shared_ptr<X509_STORE> store(X509_STORE_new(), X509_STORE_free);
  std::unique_ptr<BIO, decltype(&BIO_free)> bio(
      BIO_new_mem_buf(ca_pem.data(), static_cast<int>(ca_pem.size())), BIO_free);
  if (!store || !bio) return nullptr;
  int added = 0;
  while (X509* cert = PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr)) {
    if (X509_STORE_add_cert(store.get(), cert) == 1) ++added;
    X509_free(cert);
  }
  ERR_clear_error();  // the end of the PEM text reads as an error
  return added > 0 ? store : nullptr;
}

http::client::http_client_config make_http_config(const KubeConfig& config,
                                                  std::chrono::milliseconds timeout) {
  http::client::http_client_config http_config;
  http_config.set_timeout(std::chrono::duration_cast<std::chrono::microseconds>(timeout));
  http_config.set_validate_certificates(!config.insecure_skip_tls_verify);
  const auto ca = config.ca_pem;
  const auto cert = config.client_cert_pem;
  const auto key = config.client_key_pem;
  auto trusted = ca_store(ca);
  http_config.set_ssl_context_callback([ca, cert, key, trusted](boost::asio::ssl::context& context) {
    if (trusted) {
      // Only the kubeconfig's CA, as client-go does; the store cpprestsdk filled from the
      // system's default paths (~1 MB per connection) is replaced by the one shared store.
      SSL_CTX_set1_cert_store(context.native_handle(), trusted.get());
    } else if (!ca.empty()) {
      context.add_certificate_authority(boost::asio::buffer(ca));  // throws: not PEM
    }
    if (!cert.empty()) {
      context.use_certificate_chain(boost::asio::buffer(cert));
      context.use_private_key(boost::asio::buffer(key), boost::asio::ssl::context::pem);
    }
  });
  return http_config;
}

// Fills status/error/reason/message from an answer that is not 2xx (a metav1.Status, usually).
void fill_error(ApiResult& result, int status, const std::string& body) {
  result.status = status;
  result.error = error_kind_for_status(status);
  const auto parsed = json::parse(body, nullptr, false);
  if (parsed.is_object()) {
    result.reason = parsed.value("reason", "");
    result.message = parsed.value("message", "");
  }
  if (result.reason.empty()) result.reason = to_string(result.error);
  if (result.message.empty()) result.message = body.substr(0, 512);
}

void fill_exception(ApiResult& result, const std::exception& error) {
  result.status = 0;
  result.error = ErrorKind::kTransport;
  result.reason = "transport error";
  result.message = error.what();
  if (const auto* http_error = dynamic_cast<const http::http_exception*>(&error)) {
    if (http_error->error_code() == std::errc::timed_out) {
      result.error = ErrorKind::kTimeout;
      result.reason = "timeout";
    }
  }
}

std::string query_string(std::initializer_list<std::pair<const char*, std::string>> params) {
  std::string out;
  for (const auto& [name, value] : params) {
    if (value.empty()) continue;
    out += out.empty() ? "?" : "&";
    out += name;
    out += "=";
    out += url_encode(value);
  }
  return out;
}

}  // namespace

struct KubeClient::Impl {
  Impl(const KubeConfig& config, std::chrono::milliseconds timeout)
      : client(web::uri(config.server), make_http_config(config, timeout)) {}
  http::client::http_client client;
  pplx::cancellation_token_source cancel;
};

KubeClient::KubeClient(KubeConfig config, ClientOptions options)
    : config_(std::move(config)),
      options_(std::move(options)),
      impl_(std::make_unique<Impl>(config_, options_.request_timeout)),
      bucket_tokens_(options_.burst),
      bucket_at_(std::chrono::steady_clock::now()) {}

KubeClient::~KubeClient() {
  cancel();
}

void KubeClient::set_request_observer(RequestObserver observer) {
  observer_ = std::move(observer);
}

void KubeClient::cancel() {
  if (!cancelled_.exchange(true)) impl_->cancel.cancel();
}

std::string KubeClient::bearer_token() {
  if (config_.token_file.empty()) return config_.token;
  std::lock_guard lock(token_mutex_);
  const auto now = std::chrono::steady_clock::now();
  if (cached_token_.empty() || now - token_read_at_ > kTokenRefresh) {
    try {
      cached_token_ = current_token(config_);
      token_read_at_ = now;
    } catch (const std::exception&) {
      // Keep the last good token; the API server will say 401 if it is no longer valid.
    }
  }
  return cached_token_;
}

void KubeClient::take_token() {
  if (options_.qps <= 0) return;
  std::unique_lock lock(token_mutex_);
  for (;;) {
    const auto now = std::chrono::steady_clock::now();
    const double elapsed = std::chrono::duration<double>(now - bucket_at_).count();
    bucket_tokens_ = std::min(options_.burst, bucket_tokens_ + elapsed * options_.qps);
    bucket_at_ = now;
    if (bucket_tokens_ >= 1.0 || cancelled_) {
      bucket_tokens_ -= 1.0;
      return;
    }
    const auto wait = std::chrono::duration<double>((1.0 - bucket_tokens_) / options_.qps);
    lock.unlock();
    std::this_thread::sleep_for(wait);
    lock.lock();
  }
}

ApiResult KubeClient::send(std::string_view method, const std::string& path_query,
                           const std::string& body, const std::string& content_type) {
  ApiResult result;
  result.request = std::string(method) + " " + path_query.substr(0, path_query.find('?'));
  if (cancelled_) {
    result.error = ErrorKind::kTransport;
    result.reason = "cancelled";
    return result;
  }
  take_token();
  http::http_request request{http::method(method)};
  request.set_request_uri(path_query);
  request.headers().add("Accept", "application/json");
  request.headers().add("User-Agent", options_.user_agent);
  if (const auto token = bearer_token(); !token.empty()) {
    request.headers().add("Authorization", "Bearer " + token);
  }
  if (!body.empty() || !content_type.empty()) request.set_body(body, content_type);
  try {
    auto response = impl_->client.request(request, impl_->cancel.get_token()).get();
    const auto text = response.extract_utf8string(true).get();
    const int status = response.status_code();
    if (status >= 200 && status < 300) {
      result.status = status;
      result.object = text.empty() ? json::object() : json::parse(text, nullptr, false);
      if (result.object.is_discarded()) {
        result.error = ErrorKind::kOther;
        result.reason = "bad response";
        result.message = "the API server's answer is not JSON";
      }
    } else {
      fill_error(result, status, text);
    }
  } catch (const pplx::task_canceled&) {
    result.error = ErrorKind::kTransport;
    result.reason = "cancelled";
  } catch (const std::exception& error) {
    fill_exception(result, error);
  }
  if (observer_) observer_(method, result.status);
  return result;
}

ApiResult KubeClient::get(const Resource& resource, std::string_view ns, std::string_view name) {
  return send("GET", resource.path(ns, name), "", "");
}

ApiResult KubeClient::list(const Resource& resource, std::string_view ns,
                           const ListOptions& options, std::string_view continue_token) {
  const auto query =
      query_string({{"labelSelector", options.label_selector},
                    {"fieldSelector", options.field_selector},
                    {"resourceVersion", options.resource_version},
                    {"limit", options.limit > 0 ? std::to_string(options.limit) : ""},
                    {"continue", std::string(continue_token)}});
  return send("GET", resource.path(ns) + query, "", "");
}

ApiResult KubeClient::list_each(const Resource& resource, std::string_view ns,
                                const ListOptions& options,
                                const std::function<void(json& item)>& on_item) {
  ApiResult first;
  std::string next;
  do {
    ApiResult page = list(resource, ns, options, next);
    if (!page.ok()) return page;  // 410 here means the continue token expired: caller relists
    for (auto& item : page.object["items"]) on_item(item);
    next = page.object["metadata"].value("continue", "");
    if (first.status == 0) {
      first = std::move(page);
      first.object.erase("items");
      first.object["metadata"].erase("continue");
    }
  } while (!next.empty());
  return first;
}

ApiResult KubeClient::create(const Resource& resource, std::string_view ns, const json& object) {
  return send("POST", resource.path(ns), object.dump(), "application/json");
}

ApiResult KubeClient::replace(const Resource& resource, std::string_view ns, std::string_view name,
                              const json& object) {
  return send("PUT", resource.path(ns, name), object.dump(), "application/json");
}

ApiResult KubeClient::remove(const Resource& resource, std::string_view ns, std::string_view name) {
  return send("DELETE", resource.path(ns, name), "", "");
}

ApiResult KubeClient::apply(const Resource& resource, std::string_view ns, std::string_view name,
                            const json& object, std::string_view field_manager,
                            std::string_view subresource, bool force) {
  const auto query =
      query_string({{"fieldManager", std::string(field_manager)}, {"force", force ? "true" : ""}});
  return send("PATCH", resource.path(ns, name, subresource) + query, object.dump(),
              "application/apply-patch+yaml");
}

ApiResult KubeClient::json_patch(const Resource& resource, std::string_view ns,
                                 std::string_view name, const json& operations,
                                 std::string_view subresource) {
  return send("PATCH", resource.path(ns, name, subresource), operations.dump(),
              "application/json-patch+json");
}

ApiResult KubeClient::watch(const Resource& resource, std::string_view ns,
                            const WatchOptions& options,
                            const std::function<void(const WatchEvent&)>& on_event) {
  ApiResult result;
  const auto path = resource.path(ns);
  result.request = "WATCH " + path;
  if (cancelled_) {
    result.error = ErrorKind::kTransport;
    result.reason = "cancelled";
    return result;
  }
  take_token();
  const auto query = query_string({{"watch", "true"},
                                   {"labelSelector", options.label_selector},
                                   {"fieldSelector", options.field_selector},
                                   {"resourceVersion", options.resource_version},
                                   {"allowWatchBookmarks", options.bookmarks ? "true" : ""},
                                   {"timeoutSeconds", std::to_string(options.timeout_seconds)}});
  // A client per watch: its timeout covers the whole watch (the server ends it first).
  http::client::http_client client(
      web::uri(config_.server),
      make_http_config(config_, std::chrono::seconds(options.timeout_seconds + 30)));
  http::http_request request{http::methods::GET};
  request.set_request_uri(path + query);
  request.headers().add("Accept", "application/json");
  request.headers().add("User-Agent", options_.user_agent);
  if (const auto token = bearer_token(); !token.empty()) {
    request.headers().add("Authorization", "Bearer " + token);
  }
  try {
    auto response = client.request(request, impl_->cancel.get_token()).get();
    const int status = response.status_code();
    if (observer_) observer_("WATCH", status);
    if (status != 200) {
      fill_error(result, status, response.extract_utf8string(true).get());
      return result;
    }
    result.status = status;
    auto body = response.body();
    for (;;) {
      concurrency::streams::container_buffer<std::string> line;
      const auto size = body.read_line(line).get();
      if (size == 0) {
        if (body.is_eof()) break;
        continue;
      }
      auto event = json::parse(line.collection(), nullptr, false);
      if (!event.is_object() || !event.contains("type")) continue;
      const auto type = event["type"].get<std::string>();
      if (type == "ERROR") {
        const auto& status_object = event["object"];
        fill_error(result, status_object.value("code", 500), status_object.dump());
        return result;
      }
      on_event(WatchEvent{type, std::move(event["object"])});
      if (cancelled_) break;
    }
    if (cancelled_) {
      result.error = ErrorKind::kTransport;
      result.reason = "cancelled";
    }
  } catch (const pplx::task_canceled&) {
    result.error = ErrorKind::kTransport;
    result.reason = "cancelled";
  } catch (const std::exception& error) {
    fill_exception(result, error);
    if (cancelled_) result.reason = "cancelled";
  }
  return result;
}

}  // namespace cxp::kube
