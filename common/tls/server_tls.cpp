#include "common/tls/server_tls.h"

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "common/config_value.h"

namespace cxp::tls {

namespace asio = boost::asio;

namespace {

template <class T, void (*Free)(T*)>
struct Deleter {
  void operator()(T* p) const { Free(p); }
};
using PkeyPtr = std::unique_ptr<EVP_PKEY, Deleter<EVP_PKEY, EVP_PKEY_free>>;
using X509Ptr = std::unique_ptr<X509, Deleter<X509, X509_free>>;
using ExtPtr = std::unique_ptr<X509_EXTENSION, Deleter<X509_EXTENSION, X509_EXTENSION_free>>;

std::shared_ptr<asio::ssl::context> make_context() {
  auto context = std::make_shared<asio::ssl::context>(asio::ssl::context::tls_server);
  context->set_options(asio::ssl::context::default_workarounds | asio::ssl::context::no_sslv2 |
                       asio::ssl::context::no_sslv3 | asio::ssl::context::no_tlsv1 |
                       asio::ssl::context::no_tlsv1_1 | asio::ssl::context::single_dh_use);
  return context;
}

void add_extension(X509* certificate, int nid, const std::string& value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, certificate, certificate, nullptr, nullptr, 0);
  ExtPtr extension(X509V3_EXT_conf_nid(nullptr, &ctx, nid, value.c_str()));
  if (!extension || X509_add_ext(certificate, extension.get(), -1) != 1) {
    throw std::runtime_error("self-signed certificate: cannot add extension " + value);
  }
}

std::filesystem::file_time_type modified(const std::filesystem::path& path) {
  std::error_code ec;
  const auto time = std::filesystem::last_write_time(path, ec);
  return ec ? std::filesystem::file_time_type{} : time;
}

}  // namespace

ServerTls::ServerTls() : context_(make_context()) {}

std::unique_ptr<ServerTls> ServerTls::from_directory(const std::filesystem::path& directory,
                                                     const std::string& setting) {
  std::unique_ptr<ServerTls> tls(new ServerTls());
  tls->directory_ = directory;
  tls->load(setting);
  return tls;
}

void ServerTls::load(const std::string& setting) {
  // Kubelet-style Secret volumes swap a symlink: the files' own times change with each swap.
  const auto cert = directory_ / "tls.crt";
  const auto key = directory_ / "tls.key";
  const auto cert_time = modified(cert);
  const auto key_time = modified(key);
  auto context = make_context();
  boost::system::error_code ec;
  context->use_certificate_chain_file(cert.string(), ec);
  if (ec) throw ConfigError(setting + ": cannot use " + cert.string() + ": " + ec.message());
  context->use_private_key_file(key.string(), asio::ssl::context::pem, ec);
  if (ec) throw ConfigError(setting + ": cannot use " + key.string() + ": " + ec.message());
  if (SSL_CTX_check_private_key(context->native_handle()) != 1) {
    throw ConfigError(setting + ": " + key.string() + " is not the key of " + cert.string());
  }
  // The serving context is the same object (sessions hold a pointer to it): move the new
  // certificate and key into it.
  SSL_CTX* target = context_->native_handle();
  X509* certificate = SSL_CTX_get0_certificate(context->native_handle());
  EVP_PKEY* private_key = SSL_CTX_get0_privatekey(context->native_handle());
  STACK_OF(X509)* chain = nullptr;
  SSL_CTX_get0_chain_certs(context->native_handle(), &chain);
  if (SSL_CTX_use_certificate(target, certificate) != 1 ||
      SSL_CTX_use_PrivateKey(target, private_key) != 1 || SSL_CTX_set1_chain(target, chain) != 1) {
    throw ConfigError(setting + ": cannot use the certificate in " + directory_.string());
  }
  loaded_cert_time_ = cert_time;
  loaded_key_time_ = key_time;
}

bool ServerTls::reload_if_changed(std::string& error) {
  if (directory_.empty()) return false;
  if (modified(directory_ / "tls.crt") == loaded_cert_time_ &&
      modified(directory_ / "tls.key") == loaded_key_time_) {
    return false;
  }
  try {
    load("certificate directory");
    return true;
  } catch (const std::exception& e) {
    error = e.what();
    // Do not retry the same bad pair every poll; a further change is tried again.
    loaded_cert_time_ = modified(directory_ / "tls.crt");
    loaded_key_time_ = modified(directory_ / "tls.key");
    return false;
  }
}

std::unique_ptr<ServerTls> ServerTls::self_signed(const std::vector<std::string>& dns_names) {
  std::unique_ptr<ServerTls> tls(new ServerTls());
  PkeyPtr key(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256"));
  X509Ptr certificate(X509_new());
  if (!key || !certificate) throw std::runtime_error("self-signed certificate: out of memory");
  X509_set_version(certificate.get(), 2);
  unsigned char serial[16];
  RAND_bytes(serial, sizeof serial);
  serial[0] &= 0x7f;  // positive
  BIGNUM* number = BN_bin2bn(serial, sizeof serial, nullptr);
  BN_to_ASN1_INTEGER(number, X509_get_serialNumber(certificate.get()));
  BN_free(number);
  X509_gmtime_adj(X509_getm_notBefore(certificate.get()), -60);
  X509_gmtime_adj(X509_getm_notAfter(certificate.get()), 365L * 24 * 3600);
  X509_set_pubkey(certificate.get(), key.get());
  X509_NAME* name = X509_get_subject_name(certificate.get());
  const std::string common_name = dns_names.empty() ? "localhost" : dns_names.front();
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>(common_name.c_str()), -1, -1,
                             0);
  X509_set_issuer_name(certificate.get(), name);
  std::string alt_names;
  for (const auto& dns : dns_names) alt_names += (alt_names.empty() ? "DNS:" : ",DNS:") + dns;
  if (!alt_names.empty()) add_extension(certificate.get(), NID_subject_alt_name, alt_names);
  add_extension(certificate.get(), NID_basic_constraints, "critical,CA:FALSE");
  add_extension(certificate.get(), NID_key_usage, "critical,digitalSignature");
  add_extension(certificate.get(), NID_ext_key_usage, "serverAuth");
  if (X509_sign(certificate.get(), key.get(), EVP_sha256()) == 0) {
    throw std::runtime_error("self-signed certificate: signing failed");
  }
  SSL_CTX* target = tls->context_->native_handle();
  if (SSL_CTX_use_certificate(target, certificate.get()) != 1 ||
      SSL_CTX_use_PrivateKey(target, key.get()) != 1) {
    throw std::runtime_error("self-signed certificate: cannot use it");
  }
  return tls;
}

std::string ServerTls::certificate_pem() const {
  X509* certificate = SSL_CTX_get0_certificate(context_->native_handle());
  if (certificate == nullptr) return "";
  BIO* bio = BIO_new(BIO_s_mem());
  PEM_write_bio_X509(bio, certificate);
  char* data = nullptr;
  const long size = BIO_get_mem_data(bio, &data);
  std::string pem(data, static_cast<std::size_t>(size));
  BIO_free(bio);
  return pem;
}

}  // namespace cxp::tls
