#include "server/tls/server_tls.h"

#include <fcntl.h>
#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <fstream>
#include <sstream>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "grpcpp/security/tls_certificate_provider.h"
#include "grpcpp/security/tls_credentials_options.h"

namespace lumo::tls {
namespace {

// How often gRPC's watcher re-reads the in-memory files; bounds how long a
// reload takes to reach new handshakes.
constexpr unsigned int kRefreshSeconds = 1;

absl::StatusOr<std::string> ReadFile(const std::string& path,
                                     absl::string_view flag) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return absl::NotFoundError(absl::StrCat(flag, ": cannot read ", path));
  }
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

struct BioDeleter {
  void operator()(BIO* b) const { BIO_free(b); }
};
struct X509Deleter {
  void operator()(X509* x) const { X509_free(x); }
};
struct PkeyDeleter {
  void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};

std::unique_ptr<BIO, BioDeleter> MemBio(const std::string& pem) {
  return std::unique_ptr<BIO, BioDeleter>(
      BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
}

// Number of certificates in a PEM bundle (0 if the first does not parse).
int CountCertificates(const std::string& pem) {
  auto bio = MemBio(pem);
  int count = 0;
  while (bio != nullptr) {
    std::unique_ptr<X509, X509Deleter> cert(
        PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
    if (cert == nullptr) break;
    ++count;
  }
  ERR_clear_error();
  return count;
}

// An anonymous in-memory file holding `contents`; -1 on failure.
int NewMemfd(const char* name, const std::string& contents) {
  const int fd = memfd_create(name, MFD_CLOEXEC);
  if (fd < 0) return -1;
  size_t done = 0;
  while (done < contents.size()) {
    const ssize_t n = write(fd, contents.data() + done, contents.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      close(fd);
      return -1;
    }
    done += static_cast<size_t>(n);
  }
  return fd;
}

// Makes `*fd` (a stable descriptor number) refer to a new in-memory file
// with `contents`, atomically for readers opening /proc/self/fd/N.
absl::Status ReplaceMemfd(int* fd, const char* name,
                          const std::string& contents) {
  const int fresh = NewMemfd(name, contents);
  if (fresh < 0) {
    return absl::ErrnoToStatus(errno, "cannot create an in-memory file");
  }
  if (*fd < 0) {
    *fd = fresh;
    return absl::OkStatus();
  }
  if (dup3(fresh, *fd, O_CLOEXEC) < 0) {
    const int e = errno;
    close(fresh);
    return absl::ErrnoToStatus(e, "cannot swap an in-memory file");
  }
  close(fresh);
  return absl::OkStatus();
}

std::string FdPath(int fd) { return absl::StrCat("/proc/self/fd/", fd); }

}  // namespace

absl::Status ValidatePem(const std::string& cert_pem,
                         const std::string& key_pem,
                         const std::string& client_ca_pem) {
  auto cert_bio = MemBio(cert_pem);
  std::unique_ptr<X509, X509Deleter> cert(
      cert_bio == nullptr
          ? nullptr
          : PEM_read_bio_X509(cert_bio.get(), nullptr, nullptr, nullptr));
  ERR_clear_error();
  if (cert == nullptr) {
    return absl::InvalidArgumentError(
        "--tls_cert_file: no PEM certificate in the file");
  }
  auto key_bio = MemBio(key_pem);
  std::unique_ptr<EVP_PKEY, PkeyDeleter> key(
      key_bio == nullptr
          ? nullptr
          : PEM_read_bio_PrivateKey(key_bio.get(), nullptr, nullptr, nullptr));
  ERR_clear_error();
  if (key == nullptr) {
    return absl::InvalidArgumentError(
        "--tls_key_file: no unencrypted PEM private key in the file");
  }
  if (X509_check_private_key(cert.get(), key.get()) != 1) {
    ERR_clear_error();
    return absl::InvalidArgumentError(
        "--tls_key_file: the private key does not belong to the certificate "
        "in --tls_cert_file");
  }
  if (!client_ca_pem.empty() && CountCertificates(client_ca_pem) == 0) {
    return absl::InvalidArgumentError(
        "--tls_client_ca_file: no PEM certificate in the file");
  }
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<ReloadableServerTls>>
ReloadableServerTls::Create(ServerTlsFiles files) {
  std::unique_ptr<ReloadableServerTls> tls(
      new ReloadableServerTls(std::move(files)));
  absl::Status loaded = tls->Reload();
  if (!loaded.ok()) return loaded;
  return tls;
}

ReloadableServerTls::~ReloadableServerTls() {
  absl::MutexLock lock(&mu_);
  for (int fd : {identity_fd_, ca_fd_}) {
    if (fd >= 0) close(fd);
  }
}

absl::Status ReloadableServerTls::Reload() {
  absl::StatusOr<std::string> cert =
      ReadFile(files_.cert_file, "--tls_cert_file");
  if (!cert.ok()) return cert.status();
  absl::StatusOr<std::string> key = ReadFile(files_.key_file, "--tls_key_file");
  if (!key.ok()) return key.status();
  std::string ca;
  if (!files_.client_ca_file.empty()) {
    absl::StatusOr<std::string> read =
        ReadFile(files_.client_ca_file, "--tls_client_ca_file");
    if (!read.ok()) {
      OPENSSL_cleanse(key->data(), key->size());
      return read.status();
    }
    ca = *std::move(read);
  }
  absl::Status valid = ValidatePem(*cert, *key, ca);
  // One file holds the chain and the key, so the watcher can never pair a
  // new certificate with an old key (PEM readers skip the other blocks).
  std::string identity = valid.ok() ? absl::StrCat(*cert, "\n", *key) : "";
  OPENSSL_cleanse(key->data(), key->size());
  if (!valid.ok()) return valid;

  absl::MutexLock lock(&mu_);
  absl::Status swapped =
      ReplaceMemfd(&identity_fd_, "lumokeys-tls-identity", identity);
  OPENSSL_cleanse(identity.data(), identity.size());
  if (!swapped.ok()) return swapped;
  if (!ca.empty()) {
    swapped = ReplaceMemfd(&ca_fd_, "lumokeys-tls-client-ca", ca);
    if (!swapped.ok()) return swapped;
  }
  return absl::OkStatus();
}

absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>>
ReloadableServerTls::Credentials(bool require_client_cert) {
  if (require_client_cert && !has_client_ca()) {
    return absl::FailedPreconditionError(
        "client certificates need --tls_client_ca_file");
  }
  std::string identity_path;
  std::string ca_path;
  {
    absl::MutexLock lock(&mu_);
    identity_path = FdPath(identity_fd_);
    if (require_client_cert) ca_path = FdPath(ca_fd_);
  }
  auto provider =
      std::make_shared<grpc::experimental::FileWatcherCertificateProvider>(
          identity_path, identity_path, ca_path, kRefreshSeconds);
  grpc::experimental::TlsServerCredentialsOptions options(provider);
  options.watch_identity_key_cert_pairs();
  if (require_client_cert) {
    options.watch_root_certs();
    options.set_cert_request_type(
        GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY);
  } else {
    options.set_cert_request_type(GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE);
  }
  return grpc::experimental::TlsServerCredentials(options);
}

}  // namespace lumo::tls
