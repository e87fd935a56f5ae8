// TLS for the gRPC server: credentials built from PEM files that can be
// reloaded at run time (SIGHUP) without restarting the server.
//
// How reload works: the validated PEM bytes are kept in anonymous in-memory
// files (memfd) that gRPC's FileWatcherCertificateProvider watches through
// /proc/self/fd/N with a one-second refresh. Reload() re-reads the
// operator's files, validates them (each parses, the key matches the
// certificate) and only then swaps the in-memory files (dup2, atomic), so
// new handshakes use the new certificate within about a second while
// established connections keep theirs; a bad file set leaves the old one
// serving. The private key never touches the disk again.
#ifndef LUMOKEYS_SERVER_TLS_SERVER_TLS_H_
#define LUMOKEYS_SERVER_TLS_SERVER_TLS_H_

#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "grpcpp/security/server_credentials.h"

namespace lumo::tls {

struct ServerTlsFiles {
  std::string cert_file;       // PEM certificate chain (required)
  std::string key_file;        // PEM private key (required)
  std::string client_ca_file;  // PEM CA bundle for client certs ("" = none)
};

// Checks a PEM certificate chain, key and optional CA bundle:
// INVALID_ARGUMENT naming `what` ("--tls_cert_file" ...) when one does not
// parse or the key does not belong to the first certificate. Never includes
// file contents in messages.
absl::Status ValidatePem(const std::string& cert_pem,
                         const std::string& key_pem,
                         const std::string& client_ca_pem);

// Thread-safe. Must outlive every server built with its credentials.
class ReloadableServerTls {
 public:
  // Reads and validates the files. Errors name the flag of the bad file:
  // --tls_cert_file, --tls_key_file or --tls_client_ca_file.
  static absl::StatusOr<std::unique_ptr<ReloadableServerTls>> Create(
      ServerTlsFiles files);
  ~ReloadableServerTls();

  // TLS credentials serving the current certificate. With
  // `require_client_cert`, the handshake requires a client certificate that
  // chains to the client CA (mTLS); FAILED_PRECONDITION if no CA was given.
  absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> Credentials(
      bool require_client_cert);

  // Re-reads the same paths; on success new handshakes use the new files
  // within about a second. On error nothing changes.
  absl::Status Reload();

  bool has_client_ca() const { return !files_.client_ca_file.empty(); }

 private:
  explicit ReloadableServerTls(ServerTlsFiles files) : files_(files) {}

  ServerTlsFiles files_;
  absl::Mutex mu_;
  int identity_fd_ ABSL_GUARDED_BY(mu_) = -1;  // chain + key, one memfd
  int ca_fd_ ABSL_GUARDED_BY(mu_) = -1;
};

}  // namespace lumo::tls

#endif  // LUMOKEYS_SERVER_TLS_SERVER_TLS_H_
