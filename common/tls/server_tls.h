#pragma once

#include <boost/asio/ssl/context.hpp>
#include <chrono>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

namespace cxp::tls {

// The TLS side of an HTTPS endpoint (TLS 1.2+), as controller-runtime's secure metrics serve it:
// a certificate and key from files (`tls.crt` and `tls.key` of a directory, e.g. a cert-manager
// Secret volume), re-read when they change, else a self-signed certificate made at start (P-256,
// one year; clients then skip verification or pin it).
class ServerTls {
 public:
  // Throws cxp::ConfigError naming `setting` and the file when a file is missing or invalid.
  static std::unique_ptr<ServerTls> from_directory(const std::filesystem::path& directory,
                                                   const std::string& setting);
  static std::unique_ptr<ServerTls> self_signed(const std::vector<std::string>& dns_names);

  std::shared_ptr<boost::asio::ssl::context> context() const { return context_; }
  // Re-reads the files when their modification time changed (call it from the serving thread,
  // between handshakes). Returns true when a new certificate is in use; a bad new pair is
  // refused (the old one stays) and reported through `error`.
  bool reload_if_changed(std::string& error);
  bool from_files() const { return !directory_.empty(); }
  // The certificate in use, PEM (for tests and logs: it is public).
  std::string certificate_pem() const;

 private:
  ServerTls();
  void load(const std::string& setting);

  std::shared_ptr<boost::asio::ssl::context> context_;
  std::filesystem::path directory_;
  std::filesystem::file_time_type loaded_cert_time_{};
  std::filesystem::file_time_type loaded_key_time_{};
};

}  // namespace cxp::tls
