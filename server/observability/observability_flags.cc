#include "server/observability/observability_flags.h"

#include "absl/flags/flag.h"
#include "server/observability/log.h"
#include "server/observability/metrics_http.h"

ABSL_FLAG(std::string, log_level, "info",
          "Least severe log level written to stderr: debug|info|warning|error "
          "(per-call access lines are info; the server logs OK VerifyApiKey "
          "and health calls at debug)");
ABSL_FLAG(std::string, metrics_listen, "",
          "Admin address host:port serving Prometheus metrics at /metrics "
          "(plain HTTP); empty: no metrics listener");
ABSL_FLAG(bool, metrics_allow_remote, false,
          "Allow --metrics_listen on a non-loopback address");

namespace lumo::observability {

absl::Status ApplyObservabilityFlags() {
  log::Level level;
  if (!log::ParseLevel(absl::GetFlag(FLAGS_log_level), &level)) {
    return absl::InvalidArgumentError(
        "--log_level: expected debug, info, warning or error");
  }
  if (absl::Status ok = metrics::CheckMetricsListen(
          absl::GetFlag(FLAGS_metrics_listen),
          absl::GetFlag(FLAGS_metrics_allow_remote));
      !ok.ok()) {
    return ok;
  }
  log::SetMinLevel(level);
  return absl::OkStatus();
}

std::string MetricsListenFlag() { return absl::GetFlag(FLAGS_metrics_listen); }

}  // namespace lumo::observability
