// A tiny HTTP/1.1 listener for Prometheus scrapes on an admin port:
//   GET /metrics  -> 200, text/plain; version=0.0.4, the registry rendered
//   other paths   -> 404; other methods -> 405
// One connection at a time on one thread, "Connection: close" after each
// response, a 2 s read/write timeout per connection and an 8 KiB limit on
// the request head: enough for a scraper, useless as an attack surface.
//
// Thread-safety: Start/Stop from one thread; bound_port from any.
#ifndef LUMOKEYS_SERVER_OBSERVABILITY_METRICS_HTTP_H_
#define LUMOKEYS_SERVER_OBSERVABILITY_METRICS_HTTP_H_

#include <atomic>
#include <string>
#include <thread>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "server/observability/metrics.h"

namespace lumo::metrics {

// True for "127.x.x.x:port", "localhost:port" and "[::1]:port".
bool IsLoopbackAddress(absl::string_view host_port);

// The start-up check both processes apply to --metrics_listen: OK when empty
// (no listener), loopback, or `allow_remote`; else INVALID_ARGUMENT whose
// message names --metrics_listen and --metrics_allow_remote.
absl::Status CheckMetricsListen(absl::string_view metrics_listen,
                                bool allow_remote);

class MetricsHttpServer {
 public:
  // `registry` is borrowed and must outlive the server (or Stop()).
  explicit MetricsHttpServer(const Registry* registry);
  ~MetricsHttpServer();  // Stop()
  MetricsHttpServer(const MetricsHttpServer&) = delete;
  MetricsHttpServer& operator=(const MetricsHttpServer&) = delete;

  // Binds `host_port` ("127.0.0.1:9464", "[::1]:0"; port 0 picks one) and
  // starts serving. INVALID_ARGUMENT for a malformed address (the host must
  // be an IP literal or "localhost"); UNAVAILABLE, naming the address, when
  // it cannot bind; FAILED_PRECONDITION when already started.
  absl::Status Start(absl::string_view host_port);
  // The bound port once started, else 0.
  int bound_port() const { return port_.load(); }
  // Stops accepting and joins the thread (a scrape in progress finishes
  // first). Idempotent.
  void Stop();

 private:
  void Loop();
  void Serve(int fd);

  const Registry* const registry_;
  int listen_fd_ = -1;
  std::atomic<int> port_{0};
  std::atomic<bool> stopping_{false};
  std::thread thread_;
};

}  // namespace lumo::metrics

#endif  // LUMOKEYS_SERVER_OBSERVABILITY_METRICS_HTTP_H_
