// Process-wide protections both binaries (lumokeys-server and
// lumokeys-gateway) apply first thing, through process::Start (process.h;
// docs/hardening.md).
#ifndef LUMOKEYS_SERVER_SHARED_PROCESS_HARDENING_H_
#define LUMOKEYS_SERVER_SHARED_PROCESS_HARDENING_H_

#include "absl/status/status.h"

namespace lumo::process {

// No core dumps: the process memory holds peppers, tokens, database
// passwords and keys in transit. Sets RLIMIT_CORE to 0 (soft and hard, so
// the process cannot raise it again) and clears the dumpable flag
// (PR_SET_DUMPABLE 0), which also stops same-user processes without
// CAP_SYS_PTRACE from attaching to it or reading its /proc memory and
// environment. INTERNAL naming the call when the kernel refuses either.
// Call it before reading any secret; thread-safe, idempotent.
absl::Status DisableCoreDumps();

}  // namespace lumo::process

#endif  // LUMOKEYS_SERVER_SHARED_PROCESS_HARDENING_H_
