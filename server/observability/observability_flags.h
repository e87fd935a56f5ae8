// The observability flags both processes (lumokeys-server and
// lumokeys-gateway) take, defined once: --log_level, --metrics_listen and
// --metrics_allow_remote (docs/operations.md "Metrics and logs"). A binary
// that links this library has the flags.
#ifndef LUMOKEYS_SERVER_OBSERVABILITY_OBSERVABILITY_FLAGS_H_
#define LUMOKEYS_SERVER_OBSERVABILITY_OBSERVABILITY_FLAGS_H_

#include <string>

#include "absl/status/status.h"

namespace lumo::observability {

// Sets the log level from --log_level and checks --metrics_listen against
// --metrics_allow_remote (CheckMetricsListen). INVALID_ARGUMENT naming the
// flag when either is wrong; nothing is changed then. Call once, after the
// flags are parsed and before anything logs.
absl::Status ApplyObservabilityFlags();

// --metrics_listen: the admin address serving /metrics, empty when off.
std::string MetricsListenFlag();

}  // namespace lumo::observability

#endif  // LUMOKEYS_SERVER_OBSERVABILITY_OBSERVABILITY_FLAGS_H_
