#include "server/shared/process/process.h"

#include <signal.h>

#include <cstdlib>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "server/observability/log.h"
#include "server/observability/observability_flags.h"
#include "server/shared/process/flag_config.h"
#include "server/shared/process/hardening.h"

namespace lumo::process {
namespace {

sigset_t ProcessSignals() {
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGHUP);
  return signals;
}

}  // namespace

std::vector<char*> Start(int argc, char** argv, const ProcessInfo& info) {
  if (absl::Status hardened = DisableCoreDumps(); !hardened.ok()) {
    Fatal(hardened.message());
  }
  std::vector<char*> args = ParseFlags(argc, argv, info.env_prefix, info.usage);
  if (absl::Status applied = observability::ApplyObservabilityFlags();
      !applied.ok()) {
    Fatal(applied.message());
  }
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  BlockProcessSignals();
  return args;
}

void BlockProcessSignals() {
  const sigset_t signals = ProcessSignals();
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  signal(SIGPIPE, SIG_IGN);
}

int WaitForStopSignal(absl::FunctionRef<void()> reload) {
  const sigset_t signals = ProcessSignals();
  for (;;) {
    int signal_number = 0;
    if (sigwait(&signals, &signal_number) != 0) continue;
    if (signal_number != SIGHUP) return signal_number;
    reload();
  }
}

void Fatal(absl::string_view message) {
  log::Line(log::Level::kFatal, message);
  exit(1);
}

absl::Status StartMetricsListener(metrics::MetricsHttpServer& server) {
  const std::string address = observability::MetricsListenFlag();
  if (address.empty()) return absl::OkStatus();
  if (absl::Status started = server.Start(address); !started.ok()) {
    return absl::Status(started.code(),
                        absl::StrCat("--metrics_listen: ", started.message()));
  }
  log::Line(log::Level::kInfo, "serving metrics")
      .Str("metrics_listen", address)
      .Int("metrics_port", server.bound_port());
  return absl::OkStatus();
}

void LogTlsReload(const absl::Status& reloaded) {
  if (reloaded.ok()) {
    log::Info("TLS files reloaded");
  } else {
    log::Error(absl::StrCat("TLS reload failed, keeping the old certificate: ",
                            reloaded.message()));
  }
}

}  // namespace lumo::process
