// The process plumbing both binaries (lumokeys-server, lumokeys-gateway)
// share, so that their main() only wires: start the process (core dumps
// off, flags from every source, logging, signal mask), fail with one fatal
// log line, serve the metrics listener, and wait for SIGHUP (reload) and
// SIGTERM/SIGINT (stop). docs/operations.md "Signals and draining".
//
// Thread-safety: Start and BlockProcessSignals run once, in main() before
// any other thread exists; WaitForStopSignal is called by the main thread
// only; the rest is thread-safe.
#ifndef LUMOKEYS_SERVER_SHARED_PROCESS_PROCESS_H_
#define LUMOKEYS_SERVER_SHARED_PROCESS_PROCESS_H_

#include <vector>

#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "server/observability/metrics_http.h"

namespace lumo::process {

// What a binary tells Start about itself.
struct ProcessInfo {
  // Prefix of the environment variables that set its flags
  // ("LUMO_SERVER_"); see flag_config.h.
  absl::string_view env_prefix;
  // The start of --help: what the binary is and how it is invoked.
  absl::string_view usage;
};

// Starts a binary, in this order: core dumps off (hardening.h; before any
// secret is read), flags from the config file, the environment and the
// command line (flag_config.h; a bad setting exits with status 2),
// --log_level and the metrics-listener flags applied, Abseil's mutex
// deadlock detection off (Debian's Abseil keeps it on, costing a lock graph
// update per lock), then BlockProcessSignals. Exits with status 1 and a
// fatal log line when core dumps cannot be turned off or a logging flag is
// wrong. Returns the positional arguments, argv[0] first.
std::vector<char*> Start(int argc, char** argv, const ProcessInfo& info);

// Blocks SIGTERM, SIGINT and SIGHUP in the calling thread, so that every
// thread created afterwards inherits the mask and only WaitForStopSignal
// takes them, and ignores SIGPIPE (a peer that closed its socket is an
// error return on that socket, not the end of the process).
void BlockProcessSignals();

// Waits for the signals BlockProcessSignals blocked: runs `reload` on the
// calling thread for each SIGHUP, and returns the number of the first
// SIGTERM or SIGINT.
int WaitForStopSignal(absl::FunctionRef<void()> reload);

// Writes a fatal log line with `message` and exits with status 1.
[[noreturn]] void Fatal(absl::string_view message);

// Starts `server` on --metrics_listen when it is set and logs
// {"msg":"serving metrics","metrics_listen":...,"metrics_port":N}; does
// nothing when it is unset. INVALID_ARGUMENT / UNAVAILABLE from
// MetricsHttpServer::Start, prefixed with "--metrics_listen: ".
absl::Status StartMetricsListener(metrics::MetricsHttpServer& server);

// Logs the outcome of a SIGHUP reload of the TLS files: info "TLS files
// reloaded", or error "TLS reload failed, keeping the old certificate:
// <reason>".
void LogTlsReload(const absl::Status& reloaded);

}  // namespace lumo::process

#endif  // LUMOKEYS_SERVER_SHARED_PROCESS_PROCESS_H_
