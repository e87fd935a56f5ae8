// The connection pool figures a storage backend reports for the server's
// metrics (docs/operations.md "Metrics and logs"). A plain value.
#ifndef LUMOKEYS_SERVER_STORAGE_POOL_STATS_H_
#define LUMOKEYS_SERVER_STORAGE_POOL_STATS_H_

#include <cstdint>

#include "absl/time/time.h"

namespace lumo::storage {

struct PoolStats {
  // Round trips to the database on pooled sessions, and the statements
  // they carried (a statement batch is one round trip, several statements).
  uint64_t queries_executed = 0;
  uint64_t statements_executed = 0;
  int connections_open = 0;  // idle + in use (+ being opened)
  int connections_in_use = 0;
  uint64_t waits = 0;                  // acquires that found no free connection
  uint64_t acquire_timeouts = 0;       // of which gave up (UNAVAILABLE)
  absl::Duration wait_time;            // total time acquires spent waiting
  uint64_t connections_opened = 0;     // total over the pool's life
  uint64_t connections_discarded = 0;  // closed as broken or drained
  // Several database hosts (a cluster): the index, in the configured list,
  // of the host new connections open on first; how often it changed
  // (failovers and failbacks); how often it returned to the first host.
  uint64_t preferred_host = 0;
  uint64_t host_switches = 0;
  uint64_t failbacks = 0;
};

}  // namespace lumo::storage

#endif  // LUMOKEYS_SERVER_STORAGE_POOL_STATS_H_
